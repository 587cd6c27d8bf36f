"""The auditor's trail of one asset, rebuilt from chain events alone after a real lifecycle."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest
from click.testing import CliRunner
from eth_utils import keccak

from audit.events import Binding
from audit.events import ChainReader
from audit.trail import UnknownAsset, build_trail, catalog, job_summary
from audit.trail import asset_summary, chain_entries
from chain import Member, Space
from chain.accounts import dev_account
from chain.config import load_settings
from chain.connection import connect
from chain.node import EmbeddedNode, free_port
from chain.system import deploy_system
from did.binding import proof_bytes
from did.identity import Identity
from did.registry import IdentityRegistryClient
from tds.cli import cli
from tests.support.lifecycle import Lifecycle, did_for, shared_lifecycle


@pytest.fixture
def lc(request, tmp_path_factory) -> Lifecycle:
    return shared_lifecycle(request, tmp_path_factory)


@pytest.fixture
def reader(lc: Lifecycle) -> ChainReader:
    return ChainReader(lc.w3, lc.deployment)


def cli_env(lc: Lifecycle) -> dict[str, str]:
    url = lc.w3.provider.endpoint_uri
    return {"TDS_RPC_URL": url, "TDS_DEPLOYMENT": str(lc.settings.deployment_file),
            "TDS_HOME": str(lc.settings.home), "TDS_CHAIN_ID": ""}


def test_trail_tells_who_did_what_when(lc: Lifecycle, reader: ChainReader):
    trail = build_trail(reader, lc.asset)
    actions = [(e.action, e.event) for e in trail]
    expected = ["register", "apply", "grant", "approve", "grant", "request", "accept", "release", "complete", "credit",
                "request", "accept", "fail", "credit", "freeze", "unfreeze", "freeze", "unfreeze", "withdraw", "rate",
                "destroy", "anchor"] + (["anchor"] if lc.key_release else []) + [
                "revoke", "anchor", "transfer", "offline"]
    assert [a for a, _ in actions if a != "credit"] == [a for a in expected if a != "credit"]
    # 000 §12.3.1.2 fields on every entry; ids unique and real (tx hash : log index)
    assert len({e.id for e in trail}) == len(trail)
    for e in trail:
        assert e.id and e.actor and e.time > 0 and e.action and e.object and e.result in ("ok", "failed", "rejected")
        receipt = lc.w3.eth.get_transaction_receipt(e.tx)
        log = [lg for lg in receipt["logs"] if lg["logIndex"] == int(e.id.split(":")[1])][0]
        assert log["address"] == reader.contracts[e.contract].address
    assert [e.time for e in trail] == sorted(e.time for e in trail)
    by = {e.event: e for e in trail}
    assert by["AssetRegistered"].actor == lc.addr["provider"]
    assert by["AssetRegistered"].actor_did == did_for("provider")
    assert by["AssetRegistered"].detail["classification"] == "sensitive"
    assert by["JobCompleted"].actor_did == did_for("oracle") and by["JobCompleted"].object == {"job": lc.job_ok}
    assert by["AnswerReleased"].actor == lc.addr["provider"] and by["AnswerReleased"].object == {"job": lc.job_ok}
    assert by["JobFailed"].result == "failed" and by["JobFailed"].error_code == 7
    assert by["GrantFrozen"].actor == lc.addr["regulator"] and by["GrantFrozen"].detail["authority"] == "regulator"
    assert by["GrantFrozen"].actor_did == "role:regulator"
    assert by["GrantClosed"].detail["destructionProofHash"] == "0x" + __import__("eth_utils").keccak(
        lc.destruction_doc).hex()
    anchors = [e for e in trail if e.event == "HashAnchored"]
    assert anchors[0].detail["matches"] == f"grant:{lc.grant}:destruction"
    if lc.key_release:  # anchored about job A: found by its subject id, not by a recorded hash
        assert anchors[1].object["hash"] == "0x" + lc.key_release.hex() and anchors[1].detail["subjectId"] == lc.job_ok
    assert by["Transfer"].object["to"] == lc.addr["provider2"] and by["Transfer"].detail["to_did"] == did_for("provider2")
    assert by["AssetTakenOffline"].actor_did == did_for("provider2")
    assert by["Withdrawn"].actor == lc.addr["provider"]
    shares = sorted(e.detail["share"] for e in trail if e.event == "Credited")
    assert shares == ["algorithm-provider", "compute-provider", "operator", "provider", "refund"]


def test_other_assets_do_not_leak(lc: Lifecycle, reader: ChainReader):
    trail = build_trail(reader, lc.asset)
    assert all(e.object.get("job") != lc.other_job for e in trail)
    other = build_trail(reader, lc.other_asset)
    assert {e.object.get("job") for e in other if "job" in e.object} == {lc.other_job}
    assert all(e.object.get("asset") in (None, lc.other_asset) for e in other)


def test_unknown_asset_is_refused(reader: ChainReader):
    with pytest.raises(UnknownAsset, match="unknown asset 999"):
        build_trail(reader, 999)


def test_catalog_and_job_views(lc: Lifecycle, reader: ChainReader):
    cat = {a["assetId"]: a for a in catalog(reader)}
    assert set(cat) == {lc.asset, lc.other_asset}
    a = cat[lc.asset]
    assert a["state"] == "offline" and a["holder"] == lc.addr["provider2"] and a["provider"] == lc.addr["provider"]
    assert a["grants"] == [lc.grant, lc.signed_grant] and a["rating"]["count"] == 1
    job = job_summary(reader, lc.job_ok)
    assert job["status"] == "completed" and job["assetId"] == lc.asset
    assert [h["action"] for h in job["history"] if h["action"] != "credit"] == ["request", "accept", "release", "complete"]
    assert job_summary(reader, lc.job_failed)["status"] == "failed"
    assert job_summary(reader, 12345) is None


def test_cli_audit_asset(lc: Lifecycle):
    runner = CliRunner()
    res = runner.invoke(cli, ["audit", "asset", str(lc.asset), "--json"], env=cli_env(lc))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["asset"] == lc.asset and doc["trail"][0]["action"] == "register"
    res = runner.invoke(cli, ["audit", "asset", str(lc.asset)], env=cli_env(lc))
    assert res.exit_code == 0 and "register" in res.output and "offline" in res.output
    res = runner.invoke(cli, ["audit", "asset", "999"], env=cli_env(lc))
    assert res.exit_code != 0 and "unknown asset 999" in str(res.exception)
    res = runner.invoke(cli, ["audit", "asset", "abc"], env=cli_env(lc))
    assert res.exit_code == 2


# ---------------------------------------------------------------------------- DID squatting (issue 12, item 13)

@dataclass
class Squat:
    reader: ChainReader
    owner: Identity
    honest: Identity
    squatter: Any
    squat_asset: int
    honest_asset: int
    owner_asset: int


@pytest.fixture(scope="module")
def squat(tmp_path_factory) -> Squat:
    """Its own chain: an account binds another participant's DID (replaying that owner's real
    binding proof), gets a role from a careless operator and registers an asset; the owner binds its
    DID too (the squatter blocks no one) and registers one; an honest provider too."""
    tmp = tmp_path_factory.mktemp("audit-squat")
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    node.up(fresh=True)
    try:
        w3 = connect(settings)
        doc = deploy_system(settings, w3=w3)
        space, registry = Space(w3, doc), IdentityRegistryClient.from_deployment(w3, doc)
        op = dev_account(0)
        owner, honest, squatter = Identity.create("owner", dev_account(3)), Identity.create("honest", dev_account(5)), \
            dev_account(4)
        template = space.publish_template(op, "standard", b"terms", 3, 63, [7000, 1000, 1500, 500])

        def register(member: Member, tag: str) -> int:  # the operator sends through the registry client only
            registry.grant_participant_role(op, member.address, "PROVIDER", keccak(text=f"vc:{tag}"))
            return space.register_asset(member, b"\x12\x20" + keccak(text=tag), b"\x12\x20" + bytes(32),
                                        keccak(text=tag), "internal", keccak(text="q"), template)

        registry.bind(honest)
        honest_asset = register(Member("honest", honest.account, honest.did), "honest")
        replayed = proof_bytes(owner.binding_proof(w3.eth.chain_id))
        space.send(squatter, registry.contract.functions.bind(owner.did, owner.document_digest, owner.x25519_public,
                                                              replayed))
        squat_asset = register(Member("squatter", squatter, owner.did), "squatter")
        registry.bind(owner)  # not blocked by the squatter's earlier bind
        owner_asset = register(Member("owner", owner.account, owner.did), "owner")
        yield Squat(ChainReader(w3, doc), owner, honest, squatter, squat_asset, honest_asset, owner_asset)
    finally:
        node.down(save=False)


def test_squatter_actions_never_shown_under_the_did(squat: Squat):
    r, owner, squatter = squat.reader, squat.owner, squat.squatter
    registered = build_trail(r, squat.squat_asset)[0]
    assert registered.actor == squatter.address and registered.action == "register"
    assert registered.actor_did == "unverified:" + owner.did  # not the DID whose key it does not hold
    assert asset_summary(r, squat.squat_asset)["provider_did"] == "unverified:" + owner.did
    assert asset_summary(r, squat.squat_asset)["holder_did"] == "unverified:" + owner.did  # still unverified
    entries = chain_entries(r)
    assert entries and all(e.actor == owner.address for e in entries if e.actor_did == owner.did)
    for e in entries:  # nowhere in the audit log, nor as a payee or recipient
        assert not (e.actor == squatter.address and e.actor_did == owner.did)
    at = r.select("AssetRegistry", "AssetRegistered", assetId=squat.squat_asset)[0].position
    assert r.binding_of(squatter.address, at) == Binding(owner.did, False)
    assert r.binding_of(squatter.address) == Binding(owner.did, False)  # its record stays, never verified
    assert r.did_of(squatter.address) == "unverified:" + owner.did


def test_verified_bindings_shown_under_their_did(squat: Squat):
    r = squat.reader
    assert build_trail(r, squat.honest_asset)[0].actor_did == squat.honest.did
    owner_registered = build_trail(r, squat.owner_asset)[0]  # the owner's own action
    assert owner_registered.actor == squat.owner.address and owner_registered.actor_did == squat.owner.did
    assert r.binding_of(squat.owner.address) == Binding(squat.owner.did, True)
    assert asset_summary(r, squat.owner_asset)["holder_did"] == squat.owner.did
