"""Dataset versions recorded by the certificate (issue 15): a live source appending versions
records each on its asset with ``AssetRegistry.recordVersion`` (chain.versions), in order, as the
manifests' hash chain; a non-holder and a fork are refused by name; the event index, the trail
and ``tds asset versions`` show the history. A real chain (anvil), real ciphertext and manifests."""
from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner
from eth_utils import keccak
from sqlalchemy import select

from audit.events import ChainReader
from audit.index import EventIndex
from audit.index_entities import EntityReads
from audit.index_tables import assets, dataset_versions
from audit.trail import build_trail
from chain.accounts import dev_account
from chain.cid import parse_cid
from chain.space import Member
from chain.tx import Reverted
from chain.versions import (ALREADY_RECORDED, OUTSIDE_HISTORY, VersionOutOfOrder, history, record_version,
                            recorded_check)
from did.identity import Identity
from did.registry import IdentityRegistryClient
from offchain.onion.keystore import Keystore
from offchain.sources.runner import SourceHome, SourceRunner
from offchain.sources.spec import SourceSpec
from offchain.store.client import open_store
from tests.support.chains import private_chain

SCHEMA = {"name": "pay", "fields": [
    {"name": "id", "type": "identifier", "nullable": False},
    {"name": "region", "type": "string", "allowed": ["north", "south"]},
    {"name": "amount", "type": "integer", "minimum": 0, "maximum": 1000}]}
PROVIDER, STRANGER = 3, 4


def _rows(db, lo: int, hi: int) -> None:
    with sqlite3.connect(db) as c:
        c.execute("create table if not exists pay (id integer, region text, amount integer)")
        c.executemany("insert into pay values (?,?,?)", [(i, "north", i % 1000) for i in range(lo, hi)])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A chain with two registered providers; the provider syncs a SQLite source once (version 1),
    registers the dataset with that manifest, then appends versions 2 and 3 with a runner that
    records each on the certificate."""
    tmp = tmp_path_factory.mktemp("chain-versions")
    with private_chain(tmp) as (settings, space):
        op, registry = dev_account(0), IdentityRegistryClient(space.w3, space.c["IdentityRegistry"])
        for i, name in ((PROVIDER, "provider"), (STRANGER, "stranger")):
            ident = Identity.create(name, dev_account(i))
            registry.bind(ident)
            space.grant_role(op, Member(name, ident.account, ident.did), "PROVIDER", keccak(text=f"vc:{name}"))
        template = space.publish_template(op, "standard", b"terms", 3, 63, [7000, 1000, 1500, 500])
        store = open_store(settings.home, None)
        keys = Keystore.create(tmp / "keys.json", "pw", scrypt_n=2 ** 10)
        home = SourceHome(settings.sources_dir)
        db = tmp / "pay.sqlite"
        _rows(db, 1, 21)
        first = SourceRunner(home, keys, store.add_bytes, store.cat)       # no asset yet: nothing to record
        first.state.add(SourceSpec("pay", "sqlite", str(db), table="pay", watermark="id", schema=SCHEMA,
                                   onions={"amount": ["hom"]}))
        first.sync_once("pay")
        v1 = first.state.versions("pay")[0]
        first.close()
        provider = Member("provider", dev_account(PROVIDER), "")
        asset = space.register_asset(provider, parse_cid(v1.manifest_cid).to_bytes(), b"\x12\x20" + bytes(32),
                                     bytes.fromhex(v1.manifest_hash[2:]), "internal", keccak(text="q"), template)
        send = lambda fn: space.send(provider.account, fn)  # noqa: E731
        runner = SourceRunner(home, keys, store.add_bytes, store.cat,
                              anchor=lambda h, prev: record_version(space.c["AssetRegistry"], send, asset, h, prev))
        reports = []
        for lo, hi in ((21, 31), (31, 36)):
            _rows(db, lo, hi)
            reports.append(runner.sync_once("pay"))
        versions = runner.state.versions("pay")
        runner.close()
        yield settings, space, asset, versions, reports, store, send, db, tmp / "keys.json"


def test_appended_versions_are_on_chain_in_order(world):
    settings, space, asset, versions, reports, store, send, db, keystore = world
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[0].anchored_tx == ALREADY_RECORDED              # the registered manifest is version 0
    assert all(v.anchored_tx.startswith("0x") for v in versions[1:])
    chain = history(space.c["AssetRegistry"], asset)
    assert [c.version for c in chain] == [0, 1, 2]
    assert [c.manifest_hash for c in chain] == [v.manifest_hash for v in versions]
    assert [c.previous_hash for c in chain[1:]] == [v.previous_hash for v in versions[1:]] == \
        [v.manifest_hash for v in versions[:-1]]                     # the manifests' hash chain, on chain
    assert [c.tx for c in chain[1:]] == [v.anchored_tx for v in versions[1:]]
    assert {c.by for c in chain[1:]} == {dev_account(PROVIDER).address}
    # nothing is sent twice: a version already on the certificate is recognised
    assert record_version(space.c["AssetRegistry"], send, asset, versions[2].manifest_hash,
                          versions[2].previous_hash) == ALREADY_RECORDED
    # the key service's check (follows a rotation only once recorded by the provider)
    check = recorded_check(space.c["AssetRegistry"], space.c["Evidence"], dev_account(PROVIDER).address)
    assert check(versions[2].manifest_hash) and not check("0x" + keccak(text="never recorded").hex())
    assert not recorded_check(space.c["AssetRegistry"], space.c["Evidence"],
                              dev_account(STRANGER).address)(versions[2].manifest_hash)


def test_non_holder_and_fork_refused_by_name(world):
    settings, space, asset, versions, reports, store, send, db, keystore = world
    reg, stranger = space.c["AssetRegistry"], dev_account(STRANGER)
    new = "0x" + keccak(text="a stranger's version").hex()
    with pytest.raises(Reverted) as exc:
        record_version(reg, lambda fn: space.send(stranger, fn), asset, new, versions[2].manifest_hash)
    assert exc.value.error == "NotAssetHolder"
    with pytest.raises(VersionOutOfOrder, match="latest is version 2"):   # a fork off version 1, refused before sending
        record_version(reg, send, asset, new, versions[1].manifest_hash)
    with pytest.raises(Reverted) as exc:                                 # and by the contract itself
        send(reg.functions.recordVersion(asset, bytes.fromhex(new[2:]), bytes.fromhex(versions[1].manifest_hash[2:])))
    assert exc.value.error == "VersionOutOfOrder"
    # a version whose previous is not in this certificate's history is not this asset's: nothing sent
    assert record_version(reg, send, asset, new, "0x" + keccak(text="another dataset").hex()) == OUTSIDE_HISTORY
    assert reg.functions.versionCount(asset).call() == 3


def test_index_and_trail_show_the_versions(world, tmp_path):
    settings, space, asset, versions, reports, store, send, db, keystore = world
    idx = EventIndex(space.w3, space.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    with idx.engine.connect() as conn:
        rows = conn.execute(select(dataset_versions).where(dataset_versions.c.asset_id == asset)
                            .order_by(dataset_versions.c.version)).all()
        latest = conn.execute(select(assets.c.latest_version).where(assets.c.asset_id == asset)).scalar()
    assert [(r.version, r.manifest_hash, r.previous_hash) for r in rows] == \
        [(i, v.manifest_hash, v.previous_hash if i else None) for i, v in enumerate(versions)]
    assert latest == 2 and [r.tx for r in rows[1:]] == [v.anchored_tx for v in versions[1:]]
    _, trail = EntityReads(space.w3, space.deployment, idx.engine).asset_trail(asset)
    shown = [(e.action, e.detail["version"], e.detail["manifestHash"]) for e in trail if e.action == "version"]
    assert shown == [("version", i, v.manifest_hash) for i, v in enumerate(versions) if i]
    direct = build_trail(ChainReader(space.w3, space.deployment), asset)        # from the chain alone
    assert [e.to_dict() for e in direct if e.action == "version"] == \
        [e.to_dict() for e in trail if e.action == "version"]
    # the explorer's asset page, over the same index
    from types import SimpleNamespace

    from tds.gateway.explorer.data import ExplorerData
    from tds.gateway.explorer.pages import asset_page
    data = ExplorerData(None, SimpleNamespace(index=idx, reads=EntityReads(space.w3, space.deployment, idx.engine)),
                        None, None)
    page = str(asset_page(data, asset))
    assert "Dataset versions" in page and "2 (of 3 recorded)" in page
    assert all(v.manifest_hash in page for v in versions) and all(v.anchored_tx in page for v in versions[1:])
    assert data.find_hash(versions[2].manifest_hash) == [("asset", str(asset))]   # the search finds a later version


def test_cli_syncs_lists_and_checks_the_history(world, monkeypatch):
    """'tds source sync --asset' records the next version; 'tds asset versions' lists all four,
    each checked against its manifest (found through the source's history file)."""
    settings, space, asset, versions, reports, store, send, db, keystore = world
    from tds.cli import cli
    for name, value in (("TDS_HOME", settings.home), ("TDS_RPC_URL", space.w3.provider.endpoint_uri),
                        ("TDS_DEPLOYMENT", settings.deployment_file), ("TDS_KEYSTORE_PASSWORD", "pw")):
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("TDS_IPFS_API", raising=False)
    _rows(db, 36, 40)
    res = CliRunner().invoke(cli, ["source", "sync", "pay", "--once", "--asset", str(asset), "--dev-account",
                                   str(PROVIDER), "--data-keystore", str(keystore)])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["versions"] == [4] and len(report["anchored"]) == 1 and report["anchored"][0].startswith("0x")
    res = CliRunner().invoke(cli, ["asset", "versions", str(asset), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["latest"] == 3
    from offchain.sources.state import SourceState
    state = SourceState(settings.sources_dir / "state.sqlite")
    every = state.versions("pay")
    state.close()
    assert [(v["version"], v["manifest_hash"], v["manifest_cid"], v["check"], v["tx"]) for v in out["versions"]] == \
        [(i, v.manifest_hash, v.manifest_cid, "ok", v.anchored_tx if i else None) for i, v in enumerate(every)]
    res = CliRunner().invoke(cli, ["asset", "versions", str(asset)])
    assert res.exit_code == 0 and [line.split()[:3] for line in res.output.splitlines()] == \
        [[f"v{i}", v.manifest_hash, "ok"] for i, v in enumerate(every)]
    res = CliRunner().invoke(cli, ["asset", "versions", "999"])
    assert res.exit_code != 0 and "asset 999 does not exist" in str(res.exception)   # named by 'tds' main


def test_an_older_deployments_evidence_anchors_are_still_read(world, monkeypatch, tmp_path):
    """Before the certificate recorded versions they were Evidence anchors (kind DATASET_VERSION,
    subject the asset). Real anchors on the real chain; only the capability probe is told the
    registry is an older one (its runtime code lacks recordVersion), as on such a deployment."""
    import chain.versions as cv
    settings, space, asset, versions, reports, store, send, db, keystore = world
    provider, reg, ev = dev_account(PROVIDER), space.c["AssetRegistry"], space.c["Evidence"]
    assert cv.supports_versions(reg)
    old = keccak(text="an older deployment's version")
    space.send(provider, ev.functions.anchorHash(old, keccak(text=cv.DATASET_VERSION_KIND), asset))
    trail = build_trail(ChainReader(space.w3, space.deployment), asset)
    assert [(e.action, e.detail["hash"]) for e in trail if e.event == "HashAnchored"] == [("anchor", "0x" + old.hex())]
    idx = EventIndex(space.w3, space.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()                                   # the index's trail fetches it too (subject = the asset)
    _, indexed = EntityReads(space.w3, space.deployment, idx.engine).asset_trail(asset)
    assert [e.to_dict() for e in indexed if e.event == "HashAnchored"] == \
        [e.to_dict() for e in trail if e.event == "HashAnchored"]
    monkeypatch.setattr(cv, "supports_versions", lambda assets: False)
    listed = history(reg, asset, evidence=ev)
    assert [(v.version, v.manifest_hash, v.source) for v in listed] == \
        [(0, versions[0].manifest_hash, "AssetRegistered"), (1, "0x" + old.hex(), "Evidence")]
    assert recorded_check(reg, ev, provider.address)("0x" + old.hex())
    with pytest.raises(cv.VersionsNotSupported, match="redeploy"):
        record_version(reg, send, asset, "0x" + keccak(text="new").hex(), versions[2].manifest_hash)


def test_key_service_serves_the_recorded_versions(world):
    """The key service (``RecordedVersions``, as ``tds provider serve`` wires it) serves every version
    the certificate records, named by the chain's numbering (``<id>@v<n>``, 0 = registered) with the
    bare id on the newest; a record whose manifest is not this provider's, or does not hash as
    recorded, is not served and does not move the latest. Real ciphertext answered per version."""
    settings, space, asset, versions, reports, store, send, db, keystore = world
    from offchain.keyservice.release import Grant, KeyService
    from offchain.keyservice.versions import RecordedVersions
    from offchain.onion.dataset import manifest_hash
    from offchain.query.engine import Engine
    from offchain.query.plan import Agg, Query
    from offchain.sources.versions import known_manifests

    reg = space.c["AssetRegistry"]
    chain = history(reg, asset)
    registered = json.loads(store.cat(versions[0].manifest_cid))
    base = registered["dataset_id"]

    def fresh(known):
        manifests = {base: registered}
        return manifests, RecordedVersions(reg, manifests, {asset: {base}}, known, store.cat)

    manifests, rv = fresh(lambda: known_manifests(settings.home, settings.sources_dir))
    assert rv.refresh() == len(chain) - 1
    assert [manifest_hash(manifests[f"{base}@v{c.version}"]) for c in chain] == [c.manifest_hash for c in chain]
    assert manifests[base] is manifests[f"{base}@v{chain[-1].version}"]
    assert rv.refresh() == 0                                    # nothing new recorded: nothing reloaded
    ks = KeyService(Keystore.open(keystore, "pw").keyring(), manifests)
    aggs = (Agg("count"), Agg("sum", "amount"))

    def answer(q: Query) -> list:
        grant = Grant.covering(q, q.operations())
        enc, peeled = ks.prepare(q, grant)
        return ks.open(q, grant, Engine(ks.manifests, store.cat, peeled).run(enc)).answer["rows"]

    assert answer(Query(f"{base}@v0", aggs)) == [[20, sum(i % 1000 for i in range(1, 21))]]
    assert answer(Query(f"{base}@v1", aggs)) == [[30, sum(i % 1000 for i in range(1, 31))]]
    assert answer(Query(base, aggs))[0][0] == 35 + 4 * (len(chain) - 3)  # the newest recorded version

    # version 1's hash pointing at version 2's manifest (a wrong local record): v1 not served, the
    # latest stays on v0, v2 (which names v1's recorded hash) is still served by name
    wrong = known_manifests(settings.home, settings.sources_dir) | {chain[1].manifest_hash.lower(): versions[2].manifest_cid}
    manifests, rv = fresh(lambda: wrong)
    rv.refresh()
    assert f"{base}@v1" not in manifests and manifests[base] is registered
    assert manifest_hash(manifests[f"{base}@v2"]) == chain[2].manifest_hash
    manifests, rv = fresh(lambda: {})                           # no records at all: only version 0
    assert rv.refresh() == 0 and set(manifests) == {base, f"{base}@v0"}
