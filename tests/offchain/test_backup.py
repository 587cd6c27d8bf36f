"""Backup, verify and restore of a TDS_HOME (issue 15): round trip, tamper detection that names
the file, wrong passphrase, Shamir k-of-n recovery, and the restore's refusals."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from offchain.backup.archive import ArchiveReader
from offchain.backup.errors import (
    ArchiveTampered,
    BackupError,
    NotAnArchive,
    RestoreRefused,
    ShareError,
    WrongBackupKey,
)
from offchain.backup.ops import create_backup, restore_backup, unlock_key, verify_backup
from offchain.backup.shamir import combine_shares, split_key
from offchain.keyservice.ledger import ReleaseLedger
from offchain.onion.keys import Keyring
from offchain.onion.keystore import Keystore
from offchain.store.blockstore import BlockStore
from oracle.journal import Journal

PW = "backup pass phrase"
CHUNK = 4096


def make_home(root: Path) -> dict:
    """A small provider + oracle home: keystore, identity, journal (open, WAL), release ledger,
    a store with pinned and unpinned content, an embedded chain and an index to leave out."""
    home = root / "home"
    ks = Keystore.create(home / "keys" / "provider.json", "ks-pw", scrypt_n=2 ** 10)
    ring = Keyring()
    from offchain.onion.keys import new_det, new_rnd
    ks.add_keyring(ring)
    ks.add(new_rnd())
    ks.add(new_det())
    (home / "identities").mkdir(parents=True)
    (home / "identities" / "provider.keys.json").write_bytes(os.urandom(3 * CHUNK + 100))  # spans chunks
    journal = Journal(home / "oracle" / "31337-abcdef12" / "journal.sqlite")
    journal.record_seen(7, 12, "0xabc", {"grant": 1})
    journal.transition(7, "accepted")
    ledger = ReleaseLedger(home / "provider" / "31337-abcdef12" / "ledger.sqlite")
    ledger.record_release(7, "0x" + "11" * 32, b"sealed answer", {"job": 7})
    store = BlockStore(home / "store")
    pinned = store.add_bytes(os.urandom(300_000)).cid        # several blocks
    loose = store.add_bytes(b"garbage nobody pinned", pin=False).cid
    (home / "chain").mkdir()
    (home / "chain" / "state.json").write_text("{}")
    (home / "chain" / "anvil.pid").write_text("1")
    (home / "index").mkdir()
    (home / "index" / "events.sqlite").write_bytes(b"cache")
    (home / "keys" / "stale.tmp").write_text("x")
    dep = root / "deployments" / "31337.json"
    dep.parent.mkdir()
    dep.write_text('{"chainId": 31337}')
    return {"home": home, "journal": journal, "ledger": ledger, "pinned": pinned, "loose": loose, "dep": dep,
            "keys": set(ks.entries)}


@pytest.fixture
def world(tmp_path):
    w = make_home(tmp_path)
    yield w
    w["journal"].close()
    w["ledger"].close()


def backup(w, tmp_path, **kw) -> Path:
    kw.setdefault("passphrase", PW)
    out = tmp_path / "b.tdsbackup"
    create_backup(w["home"], out, deployments=[w["dep"]], chunk_size=CHUNK, scrypt_n=2 ** 10, **kw)
    return out


def test_round_trip_restores_what_a_provider_needs_and_leaves_out_caches(world, tmp_path):
    w = world
    out = tmp_path / "b.tdsbackup"
    made = create_backup(w["home"], out, passphrase=PW, deployments=[w["dep"]], chunk_size=CHUNK, scrypt_n=2 ** 10)
    assert made.files >= 8 and not made.shares and oct(out.stat().st_mode & 0o777) == "0o600"
    checked = verify_backup(out, PW)
    assert (checked.files, checked.bytes, checked.key_id) == (made.files, made.bytes, made.key_id)
    new = tmp_path / "restored"
    done = restore_backup(out, new, PW)
    assert done.target == new and done.deployments == [new / "deployments" / "31337.json"]
    assert (new / "deployments" / "31337.json").read_text() == w["dep"].read_text()
    # keystores come back still encrypted, and open under their own password
    assert set(Keystore.open(new / "keys" / "provider.json", "ks-pw").entries) == w["keys"]
    assert oct((new / "keys" / "provider.json").stat().st_mode & 0o777) == "0o600"
    assert (new / "identities" / "provider.keys.json").read_bytes() == \
        (w["home"] / "identities" / "provider.keys.json").read_bytes()
    # journals and release logs: consistent snapshots, even while their writers hold them open
    j = Journal(new / "oracle" / "31337-abcdef12" / "journal.sqlite")
    assert j.get(7).state == "accepted"
    j.close()
    with ReleaseLedger(new / "provider" / "31337-abcdef12" / "ledger.sqlite") as led:
        assert led.released(7)[1] == b"sealed answer"
    # pins and the blocks they need; garbage, the chain's state and the index stay behind
    store = BlockStore(new / "store")
    assert store.cat(w["pinned"]) == BlockStore(w["home"] / "store").cat(w["pinned"])
    assert not store.has(w["loose"]) and store.pin_ls() == {w["pinned"]: "recursive"}
    assert not (new / "chain").exists() and not (new / "index").exists() and not (new / "keys" / "stale.tmp").exists()
    assert not [p for p in tmp_path.iterdir() if ".restore-" in p.name]


def test_include_chain_adds_the_node_state(world, tmp_path):
    out = backup(world, tmp_path, include_chain=True)
    restore_backup(out, tmp_path / "r", PW)
    assert (tmp_path / "r" / "chain" / "state.json").exists() and not (tmp_path / "r" / "chain" / "anvil.pid").exists()


def test_tampering_is_detected_and_names_the_file(world, tmp_path):
    out = backup(world, tmp_path)
    reader = ArchiveReader(out)
    manifest = reader.manifest(unlock_key(reader, PW))
    entry = next(f for f in manifest["files"] if f["name"] == "home/identities/provider.keys.json")
    index = (entry["start"] + entry["end"]) // 2 // CHUNK
    _, offset, length = reader.records[index]
    raw = bytearray(out.read_bytes())
    raw[offset + length // 2] ^= 0x01
    out.write_bytes(bytes(raw))
    with pytest.raises(ArchiveTampered, match="provider.keys.json") as err:
        verify_backup(out, PW)
    assert err.value.files == ["home/identities/provider.keys.json"]
    with pytest.raises(ArchiveTampered):
        restore_backup(out, tmp_path / "r", PW)
    assert not (tmp_path / "r").exists() and not [p for p in tmp_path.iterdir() if ".restore-" in p.name]


def test_truncation_and_a_changed_header_are_refused(world, tmp_path):
    out = backup(world, tmp_path)
    raw = out.read_bytes()
    reader = ArchiveReader(out)
    out.write_bytes(raw[:reader.records[-1][1] - 5])             # the manifest record cut off
    with pytest.raises(NotAnArchive, match="manifest|truncated"):
        verify_backup(out, PW)
    out.write_bytes(raw.replace(b'"include_chain":false', b'"include_chain":true '[:-1]))
    with pytest.raises((ArchiveTampered, NotAnArchive)):
        verify_backup(out, PW)


def test_wrong_passphrase_is_refused(world, tmp_path):
    out = backup(world, tmp_path)
    with pytest.raises(WrongBackupKey, match="wrong backup passphrase"):
        verify_backup(out, "not it")
    with pytest.raises(WrongBackupKey):
        restore_backup(out, tmp_path / "r", "not it")
    assert not (tmp_path / "r").exists()
    with pytest.raises(BackupError, match="passphrase or"):
        create_backup(world["home"], tmp_path / "x", scrypt_n=2 ** 10)


def test_shamir_k_of_n_recovers_and_k_minus_1_is_refused(world, tmp_path):
    out = tmp_path / "b.tdsbackup"
    made = create_backup(world["home"], out, shares=(3, 5), chunk_size=CHUNK)
    s = made.shares
    assert len(s) == 5 and all(x.startswith("tdsbk1-3of5-") for x in s)
    assert verify_backup(out, shares=[s[4], s[0], s[2]]).files == made.files
    restore_backup(out, tmp_path / "r", shares=[s[1], s[3], s[4]])
    assert (tmp_path / "r" / "keys" / "provider.json").exists()
    with pytest.raises(ShareError, match="2 distinct share.*3 of 5"):
        verify_backup(out, shares=[s[0], s[1]])
    with pytest.raises(ShareError, match="2 distinct"):
        verify_backup(out, shares=[s[0], s[1], s[1]])
    typo = s[2][:40] + ("0" if s[2][40] != "0" else "1") + s[2][41:]
    with pytest.raises(ShareError, match="mistyped"):
        verify_backup(out, shares=[s[0], s[1], typo])
    with pytest.raises(WrongBackupKey, match="no passphrase unlock"):
        verify_backup(out, PW)
    other = split_key(os.urandom(32), 3, 5)
    with pytest.raises(ShareError, match="belongs to key"):
        combine_shares([s[0], s[1], other[2]])
    with pytest.raises(ShareError, match="this archive needs key"):
        verify_backup(out, shares=other[:3])


def test_passphrase_and_shares_both_open_one_archive(world, tmp_path):
    out = backup(world, tmp_path, shares=(2, 3))
    assert verify_backup(out, PW).key_id == verify_backup(out, shares=combine_shares_input(out, tmp_path)).key_id


def combine_shares_input(out: Path, tmp_path: Path) -> list[str]:
    reader = ArchiveReader(out)
    assert reader.header["unlock"]["shares"] == {"k": 2, "n": 3}
    return split_key(unlock_key(reader, PW), 2, 3)[:2]  # a fresh split of the same key also opens it


def test_restore_refuses_a_non_empty_home_unless_forced(world, tmp_path):
    out = backup(world, tmp_path)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    with pytest.raises(RestoreRefused, match="not empty"):
        restore_backup(out, target, PW)
    assert (target / "mine.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    restore_backup(out, tmp_path / "empty", PW)               # an empty folder is fine
    done = restore_backup(out, target, PW, force=True)
    assert (done.moved_aside / "mine.txt").read_text() == "keep me"
    assert (target / "keys" / "provider.json").exists() and not (target / "mine.txt").exists()


def test_cli_create_verify_restore(world, tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from tds.cli.backup import backup as group
    monkeypatch.setenv("TDS_HOME", str(world["home"]))
    monkeypatch.setenv("TDS_DEPLOYMENT", str(world["dep"]))
    monkeypatch.setenv("BK_PW", PW)
    import offchain.backup.archive as A
    real = A.passphrase_unlock
    monkeypatch.setattr(A, "passphrase_unlock", lambda key, pw, n=None: real(key, pw, 2 ** 10))
    import offchain.backup.ops as O
    monkeypatch.setattr(O, "passphrase_unlock", A.passphrase_unlock)
    r = CliRunner()
    out = tmp_path / "cli.tdsbackup"
    res = r.invoke(group, ["create", str(out), "--shares", "2/3", "--passphrase-env", "BK_PW"])
    assert res.exit_code == 0, res.output
    shares = json.loads(res.stdout)["shares"]
    assert len(shares) == 3 and "any 2 restore it" in res.stderr
    res = r.invoke(group, ["verify", str(out), "--share", shares[0], "--share", shares[2]])
    assert res.exit_code == 0 and json.loads(res.stdout)["ok"] is True, res.output
    res = r.invoke(group, ["verify", str(out), "--share", shares[0]])
    assert res.exit_code == 1 and "2 of 3 are needed" in res.output
    res = r.invoke(group, ["restore", str(out), "--passphrase-env", "BK_PW"])     # TDS_HOME is not empty
    assert res.exit_code == 1 and "not empty" in res.output
    res = r.invoke(group, ["restore", str(out), "--home", str(tmp_path / "new"), "--passphrase-env", "BK_PW"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["deployments"] == [str(tmp_path / "new" / "deployments" / "31337.json")]
    res = r.invoke(group, ["create", str(out), "--passphrase-env", "BK_PW"])
    assert res.exit_code == 1 and "--force" in res.output


# ------------------------------------------------------------------ end to end: restore, then a job completes

def test_restored_home_completes_a_job(tmp_settings, tmp_path):
    """A provider-and-oracle home that already completed a job is backed up (its embedded chain
    left out), restored into a fresh TDS_HOME, and from that home alone — keystore, identities,
    store, release ledger, journal, deployment file — the next job completes exactly once."""
    from dataclasses import replace

    from chain.node import EmbeddedNode
    from chain.ops import HOM_AGG, OPE_RANGE
    from did.identity import Identity
    from offchain.keyservice.service import build_key_service
    from offchain.store.client import open_store
    from oracle.daemon import work_dir
    from oracle.pipeline import JobPipeline, result_cid_text
    from oracle.runner import OracleRunner
    from tds.sandbox import PRICE, build_world

    s = tmp_settings
    info = EmbeddedNode(s).up(fresh=True)
    try:
        w = build_world(s, s.home, rows=60)   # the world's store is the home's embedded store
        ks = Keystore.create(s.home / "keys" / "provider.json", "ks-pw", scrypt_n=2 ** 10)
        ks.add_keyring(w.key_service.service.keyring)
        for name in ("provider", "oracle"):
            w.identities[name].save(s.home / "identities", "id-pw", scrypt_n=2 ** 10)
        query = {"dataset": w.sales_id, "aggregates": [["sum", "amount"], ["count"]],
                 "where": [["range", "amount", 100, 700]]}

        def serve(settings):
            """The provider's key service and the oracle, built from ``settings.home`` only."""
            from chain.connection import connect
            w3 = connect(settings)
            store = open_store(settings.home)
            keyring = Keystore.open(settings.home / "keys" / "provider.json", "ks-pw").keyring()
            provider = Identity.load(settings.home / "identities", "provider", "id-pw")
            oracle = Identity.load(settings.home / "identities", "oracle", "id-pw")
            built = build_key_service(settings, w3, provider, keyring, store)
            jobs = w.space.c["Jobs"]
            journal = Journal(work_dir(settings, w3.eth.chain_id, jobs.address) / "journal.sqlite")
            return OracleRunner(w3, jobs, oracle.account, journal, JobPipeline(store, built.service, oracle.address),
                                start_block=w.space.deployment["block"]), built

        first = w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, query, w.store, value=PRICE)
        runner, built = serve(s)
        runner.run_once()
        assert runner.stats.posted == 1
        runner.journal.close()
        built.service.ledger.close()

        # requested now, taken by no oracle yet: its query document is pinned in the home's store
        second = w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, query, w.store, value=PRICE)
        out = tmp_path / "home.tdsbackup"
        made = create_backup(s.home, out, passphrase=PW, deployments=[s.deployment_file], scrypt_n=2 ** 10)

        fresh = tmp_path / "fresh-home"
        done = restore_backup(out, fresh, PW)
        assert done.files == made.files and not (fresh / "chain").exists()
        restored = replace(s, home=fresh, rpc_url=info.url, deployment_file=done.deployments[0])
        runner, built = serve(restored)
        runner.run_once()
        assert runner.stats.posted == 1, runner.journal.get(second)  # the second job only: the first is in the restored journal
        assert runner.journal.get(first).state == "posted" and runner.journal.get(second).state == "posted"
        ev = w.space.completion(second)
        sealed = open_store(fresh).cat(result_cid_text(ev["resultCid"]))
        sel = [a for _, _, a in w.sales_rows if 100 <= a <= 700]
        assert w.open(sealed, job_id=second)["answer"]["rows"][0] == [sum(sel), len(sel)]
        assert built.service.ledger.released(first) is not None   # the restored release log knows job 1
        runner.journal.close()
        # the rotation rule's chain check: the sales version's keys are needed while its grant lives
        from eth_utils import keccak

        from offchain.canonical import canonical_hash
        from offchain.onion.rotation_policy import chain_live_grants
        c, space = w.space.c, w.space
        live = chain_live_grants(c["AssetRegistry"], c["Authorizations"], space.deployment["block"],
                                 lambda: space.w3.eth.get_block("latest")["timestamp"])
        sales_hash = canonical_hash(w.key_service.service.manifests[w.sales_id])
        assert live(sales_hash) == [w.grant_id] and live("0x" + "00" * 32) == []
        space.send(w.provider.account, c["Authorizations"].functions.revoke(w.grant_id, keccak(text="rotated")))
        assert live(sales_hash) == []
    finally:
        EmbeddedNode(s).down()
