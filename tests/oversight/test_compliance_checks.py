"""The compliance checks as pure functions over hand-made facts, the registration document and the
template's policy, the findings state machine, the report's escaping and the cron schedule — no chain."""
from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from audit.oplog import OpRecord
from chain.ops import DET_EQ, HOM_AGG, OPE_RANGE
from did.identity import Identity
from oversight.compliance.checks import (
    Violation,
    check_flow,
    check_source,
    check_use,
    run_checks,
)
from oversight.compliance.facts import (
    AssetFact,
    ConsumerFact,
    EndpointFact,
    Facts,
    GrantFact,
    JobFact,
    ReleaseFact,
)
from oversight.compliance.findings import FindingStore, TransitionRefused
from oversight.compliance.registration import (
    MalformedRegistration,
    MalformedTemplateTerms,
    RegistrationDoc,
    RegistrationRefused,
    Residency,
    SealedDocument,
    decide,
    open_document,
    parse_template_policy,
    raw_cid,
    seal_document,
    template_terms,
)
from oversight.compliance.report import build_report, render_html
from oversight.compliance.schedule import (
    BadSchedule,
    next_run,
    parse_schedule,
    run_schedule,
)

P, C, F, N = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, "0x" + "44" * 20
DOC = SealedDocument("consent", "0x" + "ab" * 32, {"operator": "b1", "regulator": "b2"})
OWN = SealedDocument("ownership", "0x" + "cd" * 32, {"operator": "b3", "regulator": "b4"})


def reg(**kw: Any) -> RegistrationDoc:
    base = {"dataset_id": "patients", "manifest_cid": "Qm", "manifest_hash": "0x00", "classification": "sensitive",
            "consent": DOC, "ownership": OWN, "purposes": ("care research",), "residency": Residency("CN"),
            "endpoints": ("https://p.example/keys",)}
    return RegistrationDoc(**{**base, **kw})


def world(**kw: Any) -> Facts:
    """A clean world: one personal asset with its documents, a grant in purpose and scope, a job
    whose anchored release stays within both, a consumer credentialed in the asset's jurisdiction."""
    asset = AssetFact(1, P, P, 1, "sensitive", "active", "bafy", "0xa:0", reg(),
                      documents={"consent": "opened", "ownership": "opened"})
    grant = GrantFact(1, 1, C, P, HOM_AGG, "active", "0x", "0xg:0", "care research", frozenset({"sum:amount", "count"}))
    job = JobFact(1, 1, 1, C, HOM_AGG, "released", "0xj:0", released_by=P)
    release = ReleaseFact("r1", P, 1, 1, (("patients", "amount", "hom"),), True, "batch-000000.jsonl")
    base = {"block": 10, "time": 0, "assets": {1: asset}, "policies": {1: "refuse"}, "grants": {1: grant},
            "jobs": {1: job}, "releases": (release,), "log_producers": frozenset({P}),
            "consumers": {C: ConsumerFact(C, "0xc", True, "CN")},
            "endpoints": (EndpointFact(N, "compute node", "c1", "https://c1.example:8443", "0xn:0"),)}
    return Facts(**{**base, **kw})


def checks(vs: list[Violation]) -> set[tuple[str, str]]:
    return {(v.check, v.subject) for v in vs}


def test_clean_facts_have_no_violation():
    assert run_checks(world()) == []


def test_source_checks():
    f = world()
    a = f.assets[1]
    no_consent = replace(a, registration=reg(consent=None, status="non-compliant", missing=("consent",)))
    out = check_source(world(assets={1: no_consent}))
    assert checks(out) == {("source.consent", "asset:1")} and out[0].severity == "critical"
    assert "non-compliant" in out[0].detail and out[0].responsible == P and out[0].fix
    assert checks(check_source(world(assets={1: replace(a, registration=None, registration_error="gone")}))) == \
        {("source.registration", "asset:1")}
    bad_copy = replace(a, documents={"consent": "mismatch: other bytes", "ownership": "opened"})
    assert checks(check_source(world(assets={1: bad_copy}))) == {("source.consent-copy", "asset:1")}
    # not personal, or offline: nothing to show
    assert check_source(world(assets={1: replace(no_consent, classification="internal")})) == []
    assert check_source(world(assets={1: replace(no_consent, state="offline")})) == []


def test_use_checks():
    f = world()
    greedy = replace(f.releases[0], layers=(("patients", "amount", "hom"), ("patients", "age", "ord"),
                                            ("patients", "name", "hom"), ("other", "x", "hom")))
    out = check_use(world(releases=(greedy,)))
    assert sorted(v.check for v in out) == ["use.dataset", "use.field-scope", "use.field-scope", "use.operation"]
    assert len({v.key for v in out}) == 4
    assert checks(check_use(world(releases=(replace(greedy, layers=(), grant=2),)))) == {("use.grant-mismatch", "job:1")}
    assert checks(check_use(world(releases=(replace(greedy, layers=(), job=99),)))) == \
        {("use.unknown-job", "log:r1"), ("use.unlogged-release", "job:1")}
    assert checks(check_use(world(releases=(replace(f.releases[0], anchored=False),)))) == \
        {("use.unanchored", "log:r1"), ("use.unlogged-release", "job:1")}
    # the consent covers only "care research"
    ads = replace(f.grants[1], purpose="marketing")
    assert checks(check_use(world(grants={1: ads}))) == {("use.purpose", "job:1")}
    # a grant with classes beyond the job: the job still only gets what it paid for
    wide = replace(f.grants[1], operations=HOM_AGG | OPE_RANGE | DET_EQ, scope=None)
    order = replace(f.releases[0], layers=(("patients", "age", "ord"),))
    assert checks(check_use(world(grants={1: wide}, releases=(order,)))) == {("use.operation", "job:1")}


def test_flow_checks():
    f = world()
    assert checks(check_flow(world(consumers={C: ConsumerFact(C, "0xc", True, "US")}))) == {("flow.residency", "grant:1")}
    unknown = check_flow(world(consumers={C: ConsumerFact(C, None, False, None)}))
    assert checks(unknown) == {("flow.residency-unknown", "grant:1")} and unknown[0].severity == "warning"
    revoked = replace(f.grants[1], status="revoked")
    assert check_flow(world(grants={1: revoked}, consumers={C: ConsumerFact(C, "0xc", True, "US")})) == []
    eps = (EndpointFact(N, "compute node", "c1", "http://c1.example:8080", "0xn:0"),
           EndpointFact(P, "party node", "p1", "http://127.0.0.1:9000", "0xp:0"),
           EndpointFact(F, "party node", "f1", "wss://f1.example", "0xf:0"))
    out = check_flow(world(endpoints=eps))
    assert [(v.subject, v.severity) for v in out] == [(f"endpoint:{N}", "severe"), (f"endpoint:{P}", "info")]


def test_registration_document_round_trip_and_policy():
    doc = reg()
    again = RegistrationDoc.from_bytes(doc.to_bytes())
    assert again == doc and raw_cid(doc.to_bytes()).version == 1
    with pytest.raises(MalformedRegistration, match="not a tds-registration/1"):
        RegistrationDoc.from_bytes(b'{"format": "x"}')
    with pytest.raises(MalformedRegistration, match="field"):
        RegistrationDoc.from_bytes(b'{"format": "tds-registration/1"}')
    assert parse_template_policy(template_terms("t", "register-non-compliant")) == "register-non-compliant"
    # no policy stated: registered non-compliant (reported by every scan), never silently compliant
    assert parse_template_policy(None) == "register-non-compliant"
    assert parse_template_policy(b"terms v1") == "register-non-compliant"
    with pytest.raises(MalformedTemplateTerms):
        template_terms("t", "maybe")
    assert decide("d", "internal", {}, "refuse", 1) == ("compliant", ())
    assert decide("d", "sensitive", {"consent": DOC, "ownership": OWN}, "refuse", 1) == ("compliant", ())
    assert decide("d", "confidential", {"consent": DOC}, "register-non-compliant", 1) == ("non-compliant", ("ownership",))
    with pytest.raises(RegistrationRefused, match="consent or ownership"):
        decide("d", "sensitive", {}, "refuse", 2)


def test_sealed_documents_open_only_for_their_recipient_and_hash():
    sender, op, regulator = Identity.create("p"), Identity.create("op"), Identity.create("reg")
    blocks: dict[str, bytes] = {}

    def add(data: bytes, cid_version: int = 0) -> str:
        cid = raw_cid(data).encode()
        blocks[cid] = data
        return cid

    doc = seal_document(sender, "consent", b"the forms", {"operator": (op.did, op.x25519_public),
                                                          "regulator": (regulator.did, regulator.x25519_public)}, add)
    assert open_document(regulator, doc, "regulator", blocks.__getitem__) == b"the forms"
    assert open_document(op, doc, "operator", blocks.__getitem__) == b"the forms"
    with pytest.raises(Exception, match="sealed to"):
        open_document(op, doc, "regulator", blocks.__getitem__)
    from oversight.compliance.registration import DocumentMismatch

    with pytest.raises(DocumentMismatch):
        open_document(regulator, replace(doc, hash="0x" + "00" * 32), "regulator", blocks.__getitem__)


class FakeAnchor:
    """Stands in for TransitionAnchor (the chain test proves the real one)."""

    def __init__(self) -> None:
        self.records: list[OpRecord] = []

    def __call__(self, account: Any, did: str, obj: dict[str, Any]) -> tuple[OpRecord, Path, bytes]:
        r = OpRecord("finding", did, account.address, obj)
        self.records.append(r)
        return r, Path("batch-x.jsonl"), b"\x01" * 32


class Acct:
    def __init__(self, address: str) -> None:
        self.address = address


def test_state_machine_and_report_escaping(tmp_path: Path):
    store, anchor = FindingStore(tmp_path / "f.sqlite"), FakeAnchor()
    v = Violation("flow.tls", "flow", "severe", f"endpoint:{N}", N, "<script>alert(1)</script> & \"x\"",
                  "use https", ("0xn:0",))
    f = store.open(v, 1, 0.0, Acct(F), "did:regulator", anchor)
    assert f.state == "opened" and store.seen(v, 2, 1.0).last_block == 2
    with pytest.raises(TransitionRefused, match="responsibility"):
        store.transition(f.id, "acknowledged", Acct(P), "did:p", anchor)
    with pytest.raises(TransitionRefused, match="not verified"):
        store.transition(f.id, "verified", Acct(F), "did:regulator", anchor)
    for to in ("acknowledged", "fixed"):
        store.transition(f.id, to, Acct(N), "did:node", anchor, note=f"<b>{to}</b>")
    store.transition(f.id, "verified", Acct(F), "did:regulator", anchor)
    assert [t.to_state for t in store.transitions(f.id)] == ["opened", "acknowledged", "fixed", "verified"]
    assert [r.object["to"] for r in anchor.records] == ["opened", "acknowledged", "fixed", "verified"]
    assert len({r.object["finding_hash"] for r in anchor.records}) == 1
    assert store.get(f.id[:8]).id == f.id
    rep = build_report(store, {"chainId": 31337, "contracts": {"AssetRegistry": {"address": "0xabc"}}})
    assert rep["counts"]["state"]["verified"] == 1 and json.loads(json.dumps(rep)) == rep
    page = render_html(rep)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;" in page
    assert "&lt;b&gt;fixed&lt;/b&gt;" in page


def test_schedule():
    assert parse_schedule("*/15  * * * *") == "*/15 * * * *"
    for bad in ("61 * * * *", "* * * *", "every day"):
        with pytest.raises(BadSchedule):
            parse_schedule(bad)
    t = dt.datetime(2026, 1, 1, 3, 7, tzinfo=dt.UTC)
    assert next_run("0 3 * * *", t) == dt.datetime(2026, 1, 2, 3, 0, tzinfo=dt.UTC)
    # a fake clock: each run advances it past the slot; three runs at three slots
    clock = [dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=dt.UTC)]
    ran: list[dt.datetime] = []

    def job() -> None:
        ran.append(clock[0])

    stop = threading.Event()
    original_wait = stop.wait

    def fake_wait(seconds: float) -> bool:
        clock[0] += dt.timedelta(seconds=seconds)
        return original_wait(0)

    stop.wait = fake_wait  # type: ignore[method-assign]
    assert run_schedule("* * * * *", job, stop, now=lambda: clock[0], max_runs=3) == 3
    assert [r.minute for r in ran] == [1, 2, 3]


def test_credential_names_a_jurisdiction_and_still_verifies(tmp_path: Path):
    from did.credentials import (
        OfflineTrust,
        issue_role_credential,
        verify_role_credential,
    )
    from oversight.compliance.facts import load_credentials

    op, subject = Identity.create("op"), Identity.create("c")
    vc = issue_role_credential(op, subject.did, "CONSUMER", "Acme", days=1, subject_account=subject.address,
                               jurisdiction="us")
    assert vc["credentialSubject"]["jurisdiction"] == "US"
    assert verify_role_credential(vc, OfflineTrust({op.did})).role == "CONSUMER"
    (tmp_path / "c.json").write_text(json.dumps(vc))
    (tmp_path / "junk.json").write_text("not json")
    from did.credentials import credential_hash

    assert list(load_credentials([tmp_path])) == ["0x" + credential_hash(vc).hex()]


def test_facts_digest_covers_every_fact():
    """Equal facts (however read) give equal digests; a change in any field, however deep, another."""
    from dataclasses import replace

    from oversight.compliance.facts import facts_digest

    f = world()
    assert facts_digest(f) == facts_digest(world()) and facts_digest(f).startswith("0x")
    job = replace(f.jobs[1], status="completed")
    deeper = replace(f.assets[1], registration=reg(purposes=("marketing",)))
    scope = replace(f.grants[1], scope=frozenset({"sum:amount"}))
    for changed in (world(jobs={1: job}), world(assets={1: deeper}), world(grants={1: scope}), world(time=1)):
        assert facts_digest(changed) != facts_digest(f)
