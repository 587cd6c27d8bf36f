"""Compliance scans on a real embedded chain: a clean world has no findings; each planted violation
(a personal dataset without its consent hash, a job beyond its grant's scope and purpose, a
domestic-only dataset granted abroad, an http:// service endpoint) is found; a finding is tracked
opened → acknowledged → fixed → verified, every transition anchored and proven on chain; the
regulator's report is exported as JSON and HTML; registration refuses or marks non-compliant as the
template says (through ``tds asset register``)."""
from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from eth_utils import keccak

from chain.ops import HOM_AGG, OPE_RANGE
from oversight.compliance.checks import run_checks
from oversight.compliance.facts import gather, load_credentials
from oversight.compliance.findings import (
    FindingStore,
    TransitionAnchor,
    TransitionRefused,
    check_anchored,
)
from oversight.compliance.registration import RegistrationRefused
from oversight.compliance.scan import FindingStillPresent, Scanner, scan, work_dir
from tests.support.chains import private_chain
from tests.support.compliance_world import PASSWORD, CWorld, build


class Inbox:
    """An HTTP receiver keeping every JSON body POSTed to it (the responsible party's webhook)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/findings"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("compliance")
    with private_chain(tmp) as (settings, space):
        yield build(settings, space, tmp)


@pytest.fixture(scope="module")
def inbox():
    box = Inbox()
    yield box
    box.server.shutdown()


def cli(w: CWorld, *args: Any, ok: bool = True) -> Any:
    from tds.cli import cli as root

    env = {"TDS_HOME": str(w.settings.home), "TDS_RPC_URL": f"http://127.0.0.1:{w.settings.chain_port}",
           "TDS_CHAIN_ID": None, "TDS_DEPLOYMENT": str(w.settings.deployment_file), "TDS_IPFS_API": None,
           "TDS_PROJECT_ROOT": str(w.settings.project_root), "TDS_KEYSTORE_PASSWORD": PASSWORD}
    r = CliRunner().invoke(root, [str(a) for a in args], env=env)
    if ok:
        assert r.exit_code == 0 and r.exception is None, (args, r.output, r.exception)
    return r


def facts(w: CWorld, **kw: Any) -> Any:
    return gather(w.w3, w.space.c, w.block, w.store.cat, oplogs=(w.log_dir,),
                  credentials=load_credentials([w.cred_dir]), **kw)


def test_clean_world_has_no_findings(world: CWorld, tmp_path: Path):
    f = facts(world, reader=world.ids["regulator"])
    patients = f.assets[world.assets["patients"]]
    assert patients.registration.consent is not None and patients.registration.residency.jurisdiction == "CN"
    assert patients.documents == {"consent": "opened", "ownership": "opened"}   # the regulator re-hashed both
    assert [r.anchored for r in f.releases] == [True]
    assert f.consumers[world.ids["consumer"].address].jurisdiction == "CN"
    assert run_checks(f) == []
    # and a full scan (with its store) opens nothing
    reg = world.ids["regulator"]
    s = Scanner(world.w3, world.space.c, world.block, world.store.cat, reg.account, reg.did,
                FindingStore(tmp_path / "f.sqlite"), TransitionAnchor(world.w3, world.space.c["Evidence"], tmp_path / "log"),
                (world.log_dir,), load_credentials([world.cred_dir]), reg)
    assert scan(s).opened == [] and s.store.list() == []


def test_registration_refused_or_non_compliant_as_the_template_says(world: CWorld, tmp_path: Path):
    manifest = {"dataset_id": "visits", "classification": {"dataset": "sensitive", "fields": {"name": "sensitive"}}}
    cid = world.store.add_bytes(json.dumps(manifest).encode())
    quality = ["--quality-hash", "0x" + keccak(text="q").hex(), "--min-quality", "0", "--dev-account", "3"]
    strict, lenient = world.templates["strict"], world.templates["lenient"]
    r = cli(world, "asset", "register", cid, "--template", strict, *quality, ok=False)
    assert isinstance(r.exception, RegistrationRefused) and "consent or ownership" in str(r.exception)
    # with both documents the strict template registers it, sealed to the operator and the regulator
    (tmp_path / "consent.txt").write_bytes(b"visit consent forms")
    (tmp_path / "owner.txt").write_bytes(b"clinic owns the visit log")
    ok = json.loads(cli(world, "asset", "register", cid, "--template", strict, "--consent", tmp_path / "consent.txt",
                        "--ownership", tmp_path / "owner.txt", "--domestic-only", "CN", "--json", *quality).output)
    assert ok["compliance"] == "compliant"
    f = facts(world, reader=world.ids["regulator"]).assets[ok["assetId"]]
    assert f.documents == {"consent": "opened", "ownership": "opened"} and f.registration.residency.domestic_only
    # the lenient template registers it without them, marked non-compliant: a planted source violation
    bad = json.loads(cli(world, "asset", "register", cid, "--template", lenient, "--json", *quality).output)
    assert bad["compliance"] == "non-compliant"
    world.assets["visits"] = bad["assetId"]


def test_scan_finds_every_planted_violation(world: CWorld, inbox: Inbox):
    w = world
    assert "visits" in w.assets, "runs after the registration test, which plants the source violation"
    # use: a job given an order layer (beyond HOM_AGG) and a field outside the grant's scope
    w.released_job("greedy", "care", [("patients", "amount", "hom"), ("patients", "age", "ord"),
                                      ("patients", "name", "hom")])
    # use: a grant (and its job) for a purpose the consent does not cover
    w.grant("ads", "patients", "consumer", "marketing", ["sum:amount"])
    w.released_job("ads", "ads", [("patients", "amount", "hom")])
    # flow: the domestic-only (CN) dataset granted to a consumer credentialed in the US
    w.grant("abroad", "patients", "foreign", "care research", ["sum:amount"])
    # flow: the compute node moves to a plain-http endpoint
    w.send("node", w.space.c["NodeRegistry"].functions.setEndpoint("http://compute-1.example.org:8080"))

    out = json.loads(cli(w, "compliance", "scan", "--oplog", w.log_dir, "--credentials", w.cred_dir, "--reader",
                         "regulator", "--webhook", f"{w.ids['provider'].address}={inbox.url}", "--json",
                         "--dev-account", "1").output)
    rows = json.loads(cli(w, "compliance", "findings", "--json").output)
    found = {(r["check"], r["subject"]) for r in rows}
    assert found == {("source.consent", f"asset:{w.assets['visits']}"),
                     ("source.ownership", f"asset:{w.assets['visits']}"),
                     ("use.operation", f"job:{w.jobs['greedy']}"), ("use.field-scope", f"job:{w.jobs['greedy']}"),
                     ("use.purpose", f"job:{w.jobs['ads']}"),
                     ("flow.residency", f"grant:{w.grants['abroad']}"),
                     ("flow.tls", f"endpoint:{w.ids['node'].address}")}, found
    assert len(out["opened"]) == len(rows) == 7 and out["failed"] == []
    by = {r["check"]: r for r in rows}
    assert by["source.consent"]["severity"] == "critical" and "non-compliant" in by["source.consent"]["detail"]
    assert by["use.operation"]["severity"] == "severe" and "OPE_RANGE" in by["use.operation"]["detail"]
    assert by["flow.residency"]["severity"] == "critical" and "US" in by["flow.residency"]["detail"]
    assert by["flow.tls"]["responsible"] == w.ids["node"].address
    assert all(r["state"] == "opened" and r["fix"] for r in rows)
    # pushed to the provider, with the suggested fix: everything it is responsible for, nothing else
    pushed = {b["id"]: b for b in inbox.bodies}
    assert set(pushed) == {r["id"] for r in rows if r["responsible"] == w.ids["provider"].address}
    assert all(b["type"] == "tds-finding/1" and b["suggested_fix"] for b in pushed.values())
    # a second scan opens nothing new and pushes nothing twice
    again = json.loads(cli(w, "compliance", "scan", "--oplog", w.log_dir, "--credentials", w.cred_dir, "--json",
                           "--webhook", f"{w.ids['provider'].address}={inbox.url}", "--dev-account", "1").output)
    assert again["opened"] == [] and again["delivered"] == [] and len(inbox.bodies) == len(pushed)


def test_facts_from_the_event_index_equal_those_from_the_chain(world: CWorld, tmp_path: Path):
    """With every planted violation in place, the facts gathered from the event index equal those
    gathered from the node; ``tds compliance scan`` reads the configured index (same findings), and
    an index of another deployment is refused with the way out."""
    from sqlalchemy import insert

    from audit.index import EventIndex
    from audit.index_tables import meta, open_engine
    from oversight.compliance.facts import facts_digest
    from oversight.compliance.facts_index import gather_indexed
    from oversight.index_source import IndexUnavailable
    from tds.cli import cli as root

    w = world
    assert "abroad" in w.grants, "runs after the scan test, which plants the use and flow violations"
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    index = EventIndex(w.w3, w.space.deployment, url)
    index.catch_up()
    kw: dict[str, Any] = {"oplogs": (w.log_dir,), "credentials": load_credentials([w.cred_dir]),
                          "reader": w.ids["regulator"]}
    from_chain = gather(w.w3, w.space.c, w.block, w.store.cat, **kw)
    from_index = gather_indexed(index, w.store.cat, from_block=w.block, **kw)
    assert from_index.block == index.indexed_block() == from_chain.block
    assert from_index == from_chain and facts_digest(from_index) == facts_digest(from_chain)
    assert len(from_index.jobs) >= 3 and from_index.endpoints and from_index.consumers
    assert sorted(v.key for v in run_checks(from_index)) == sorted(v.key for v in run_checks(from_chain))
    assert len(run_checks(from_index)) == 7

    env = {"TDS_HOME": str(w.settings.home), "TDS_RPC_URL": f"http://127.0.0.1:{w.settings.chain_port}",
           "TDS_CHAIN_ID": None, "TDS_DEPLOYMENT": str(w.settings.deployment_file), "TDS_IPFS_API": None,
           "TDS_PROJECT_ROOT": str(w.settings.project_root), "TDS_KEYSTORE_PASSWORD": PASSWORD}
    args = ["compliance", "scan", "--oplog", str(w.log_dir), "--credentials", str(w.cred_dir), "--json",
            "--dev-account", "1"]
    r = CliRunner().invoke(root, args, env={**env, "TDS_INDEX_URL": url})
    assert r.exit_code == 0, (r.output, r.exception)
    out = json.loads(r.output)
    assert out["source"] == "index" and out["violations"] == 7 and out["opened"] == []   # the chain's scan opened them

    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    with open_engine(other).begin() as conn:
        conn.execute(insert(meta).values(key="deployment", value="v2:1:0x0000000000000000000000000000000000000001"))
    r = CliRunner().invoke(root, args, env={**env, "TDS_INDEX_URL": other})
    assert isinstance(r.exception, IndexUnavailable) and "--from-chain" in str(r.exception), r.output
    r = CliRunner().invoke(root, [*args, "--from-chain"], env={**env, "TDS_INDEX_URL": other})
    assert r.exit_code == 0 and json.loads(r.output)["source"] == "chain", (r.output, r.exception)


def test_finding_tracked_to_closure_each_transition_anchored(world: CWorld, tmp_path: Path):
    w = world
    rows = json.loads(cli(w, "compliance", "findings", "--json").output)
    residency = next(r for r in rows if r["check"] == "flow.residency")
    fid = residency["id"]
    evidence = ["--oplog", w.log_dir, "--credentials", w.cred_dir]
    # only the responsible party acknowledges; verify needs a fix first
    r = cli(w, "compliance", "ack", fid, "--dev-account", "4", ok=False)
    assert isinstance(r.exception, TransitionRefused) and "responsibility" in str(r.exception)
    cli(w, "compliance", "ack", fid, "--note", "revoking the grant", "--dev-account", "3")
    r = cli(w, "compliance", "verify", fid, *evidence, "--dev-account", "1", ok=False)
    assert isinstance(r.exception, TransitionRefused)
    # the provider revokes the grant, reports the fix; the regulator verifies against a fresh scan
    w.send("provider", w.space.c["Authorizations"].functions.revoke(w.grants["abroad"], keccak(text="residency")))
    cli(w, "compliance", "fix", fid, "--note", "grant revoked", "--dev-account", "3")
    cli(w, "compliance", "verify", fid, *evidence, "--dev-account", "1")
    # a finding reported fixed but still there is not verified
    tls = next(r for r in rows if r["check"] == "flow.tls")["id"]
    cli(w, "compliance", "ack", tls, "--dev-account", "7")
    cli(w, "compliance", "fix", tls, "--dev-account", "7")
    r = cli(w, "compliance", "verify", tls, *evidence, "--dev-account", "1", ok=False)
    assert isinstance(r.exception, FindingStillPresent)

    store = FindingStore(work_dir(w.settings.home, w.w3.eth.chain_id, w.space.c["AssetRegistry"].address)
                         / "findings.sqlite")
    assert store.get(fid).state == "verified"
    steps = store.transitions(fid)
    assert [t.to_state for t in steps] == ["opened", "acknowledged", "fixed", "verified"]
    regulator, provider = w.ids["regulator"].address, w.ids["provider"].address
    proofs = [check_anchored(t, w.space.c["Evidence"], w.block) for t in steps]
    assert [p["producer"] for p in proofs] == [regulator, provider, provider, regulator]
    assert len({p["tx"] for p in proofs}) == 4
    assert all(json.loads(t.record)["object"]["to"] == t.to_state for t in steps)
    # the regulator's report: JSON with the proofs, and a printable page
    rep = json.loads(cli(w, "compliance", "report", "--format", "json").output)
    closed = next(f for f in rep["findings"] if f["id"] == fid)
    assert closed["state"] == "verified" and [t["anchor"]["tx"] for t in closed["transitions"]] == [p["tx"] for p in proofs]
    assert rep["counts"]["state"]["verified"] == 1
    cli(w, "compliance", "report", "--format", "html", "--out", tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and fid in page and "<script" not in page


def test_source_finding_fixed_by_an_amendment(world: CWorld, tmp_path: Path):
    w = world
    rows = {r["check"]: r for r in json.loads(cli(w, "compliance", "findings", "--json").output)}
    consent, ownership = rows["source.consent"]["id"], rows["source.ownership"]["id"]
    visits = w.assets["visits"]
    for fid in (consent, ownership):
        cli(w, "compliance", "ack", fid, "--dev-account", "3")
    (tmp_path / "consent.txt").write_bytes(b"visit consent forms, collected late")
    r = cli(w, "compliance", "amend", visits, "--consent", tmp_path / "consent.txt", "--dev-account", "4", ok=False)
    assert "only the holder" in str(r.exception)
    out = cli(w, "compliance", "amend", visits, "--consent", tmp_path / "consent.txt", "--dev-account", "3").output
    assert "non-compliant, still missing ownership" in out
    cli(w, "compliance", "fix", consent, "--dev-account", "3")
    cli(w, "compliance", "verify", consent, "--dev-account", "1")       # the consent hash is there now
    cli(w, "compliance", "fix", ownership, "--dev-account", "3")
    r = cli(w, "compliance", "verify", ownership, "--dev-account", "1", ok=False)
    assert isinstance(r.exception, FindingStillPresent)
    (tmp_path / "owner.txt").write_bytes(b"clinic owns the visit log")
    cli(w, "compliance", "amend", visits, "--ownership", tmp_path / "owner.txt", "--dev-account", "3")
    cli(w, "compliance", "verify", ownership, "--dev-account", "1")
    a = facts(w, reader=w.ids["regulator"]).assets[visits]
    assert a.amended and a.registration.status == "compliant"
    assert a.documents == {"consent": "opened", "ownership": "opened"}  # the first amendment's copy was kept
    from audit.index import EventIndex
    from oversight.compliance.facts_index import gather_indexed

    index = EventIndex(w.w3, w.space.deployment, f"sqlite:///{tmp_path / 'index.sqlite'}")
    index.catch_up()                                                    # the amendments read from the index too
    assert gather_indexed(index, w.store.cat, from_block=w.block, oplogs=(w.log_dir,),
                          credentials=load_credentials([w.cred_dir]), reader=w.ids["regulator"]) == \
        facts(w, reader=w.ids["regulator"])


def test_anchoring_is_checkable_a_forged_record_is_not(world: CWorld):
    store = FindingStore(work_dir(world.settings.home, world.w3.eth.chain_id,
                                  world.space.c["AssetRegistry"].address) / "findings.sqlite")
    t = next(t for f in store.list("verified") for t in store.transitions(f.id) if t.to_state == "verified")
    forged = replace(t, record=t.record.replace('"verified"', '"opened"'))
    from oversight.compliance.findings import NotAnchored

    with pytest.raises(NotAnchored):
        check_anchored(forged, world.space.c["Evidence"], world.block)
    assert OPE_RANGE & HOM_AGG == 0   # the planted order layer is a class the grant never had


def test_scan_refusals(world: CWorld):
    from oversight.compliance.schedule import BadSchedule
    from tds.cli.refusals import StateRefused

    r = cli(world, "compliance", "scan", "--schedule", "61 * * * *", "--dev-account", "1", ok=False)
    assert isinstance(r.exception, BadSchedule)
    r = cli(world, "compliance", "scan", "--dev-account", "3", ok=False)   # the provider is no scanning authority
    assert isinstance(r.exception, StateRefused) and "REGULATOR" in str(r.exception)
