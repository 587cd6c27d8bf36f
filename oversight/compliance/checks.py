"""The compliance checks: pure functions from :class:`~oversight.compliance.facts.Facts` to
:class:`Violation` s (no I/O, so every rule is testable on hand-made facts).

* **source** — every live personal (sensitive/confidential) dataset's registration carries the
  hashes of its consent record and ownership proof, with sealed copies for the operator and the
  regulator (opened and re-hashed when the scan holds the regulator's identity);
* **use** — every key release in the anchored operation logs belongs to a job on chain, under that
  job's grant, within the job's paid operation classes, the grant's classes, the grant's field scope
  and the grant's asset, for a purpose the consent covers; every answer released on chain by a
  holder whose log the scan read has an anchored release record;
* **flow** — a domestic-only dataset is never under an active grant to a consumer whose credential
  names another jurisdiction (or none the scan can read); every service is reached over TLS.
"""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from chain.ops import DET_EQ, DOWNLOAD, HOM_AGG, OPE_RANGE, describe
from oversight.compliance.facts import AssetFact, Facts, ReleaseFact
from oversight.compliance.registration import is_personal

SEVERITIES = ("info", "warning", "severe", "critical")
CATEGORIES = ("source", "use", "flow")
ONION_BIT = {"eq": DET_EQ, "ord": OPE_RANGE, "hom": HOM_AGG, "blob": DOWNLOAD}
SCOPE_ONION = {"equality": "eq", "group_by": "eq", "join": "eq", "range": "ord", "order": "ord", "min": "ord",
               "max": "ord", "sum": "hom", "avg": "hom"}
TLS_SCHEMES = ("https", "wss", "grpcs", "tls", "mqtts")
LIVE = ("active", "frozen", "pending")


@dataclass(frozen=True)
class Violation:
    """One rule broken by one subject; ``key`` is stable across scans (the finding's identity)."""

    check: str
    category: str
    severity: str
    subject: str
    responsible: str
    detail: str
    fix: str
    evidence: tuple[str, ...] = ()
    discriminator: str = ""

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.check}|{self.subject}|{self.discriminator}".encode()).hexdigest()[:24]


# --- source ------------------------------------------------------------------------------------
def _source_asset(a: AssetFact, policy: str) -> list[Violation]:
    if a.state not in LIVE or not is_personal(a.classification):
        return []
    subject, ev = f"asset:{a.asset_id}", (a.evidence,)
    where = f"asset {a.asset_id} ({a.classification})"
    if a.registration is None:
        why = a.registration_error or f"its metadata CID {a.metadata_cid} is not a registration document"
        return [Violation("source.registration", "source", "critical", subject, a.holder,
                          f"{where} has no readable registration document: {why}; its consent record and ownership "
                          f"proof cannot be shown",
                          "re-register the dataset with 'tds asset register --consent FILE --ownership FILE' and "
                          "take this certificate offline", ev)]
    out = []
    reg = a.registration
    for doc, kind in ((reg.consent, "consent"), (reg.ownership, "ownership")):
        what = "data-subject consent record" if kind == "consent" else "ownership proof"
        if doc is None:
            marked = " (registered as non-compliant under the template's policy)" if reg.status == "non-compliant" else ""
            out.append(Violation(f"source.{kind}", "source", "critical" if kind == "consent" else "severe", subject,
                                 a.holder, f"{where} was registered without the hash of its {what}{marked}; "
                                           f"template {a.template_id} says '{policy}'",
                                 f"obtain the {what}, seal it to the operator and the regulator and re-register "
                                 f"(tds asset register --{kind} FILE); until then take the certificate offline", ev))
            continue
        status = a.documents.get(kind, "unchecked")
        if status.startswith(("mismatch", "unreadable", "no sealed copy")):
            out.append(Violation(f"source.{kind}-copy", "source", "severe", subject, a.holder,
                                 f"{where}: the {what} registered as {doc.hash}: {status}",
                                 f"store the {what} sealed to the operator and the regulator again, with the "
                                 f"registered hash", ev, discriminator=doc.hash))
    return out


def check_source(facts: Facts) -> list[Violation]:
    """Consent and ownership of every live personal dataset."""
    return [v for a in sorted(facts.assets.values(), key=lambda x: x.asset_id)
            for v in _source_asset(a, facts.policies.get(a.template_id, "refuse"))]


# --- use ---------------------------------------------------------------------------------------
def _in_scope(column: str, onion: str, scope: frozenset[str]) -> bool:
    for entry in scope:
        kind, _, col = entry.partition(":")
        if SCOPE_ONION.get(kind) == onion and col == column:
            return True
    return False


def _release_violations(r: ReleaseFact, facts: Facts) -> list[Violation]:
    ev = (f"log:{r.record_id}",)
    job = facts.jobs.get(r.job) if r.job is not None else None
    if job is None:
        return [Violation("use.unknown-job", "use", "critical", f"log:{r.record_id}", r.producer,
                          f"key release {r.record_id} ({r.source}) names job {r.job}, which is not on chain",
                          "stop releasing keys without a job on chain; explain the release to the regulator", ev)]
    subject = f"job:{job.job_id}"
    grant = facts.grants.get(job.grant_id)
    out = []
    if r.grant is not None and r.grant != job.grant_id:
        out.append(Violation("use.grant-mismatch", "use", "critical", subject, r.producer,
                             f"job {job.job_id} runs under grant {job.grant_id} on chain, but its key release was "
                             f"made under grant {r.grant}", "release keys only under the job's own grant", ev))
    if grant is None:
        return out
    asset = facts.assets.get(grant.asset_id)
    datasets = {asset.registration.dataset_id} if asset and asset.registration else None
    for dataset, column, onion in r.layers:
        bit = ONION_BIT.get(onion, 0)
        name = f"{onion} layer of {dataset}.{column}"
        if not bit & job.operation or not bit & grant.operations:
            out.append(Violation("use.operation", "use", "severe", subject, r.producer,
                                 f"job {job.job_id} was given the {name} ({describe(bit)}), beyond the job's "
                                 f"{describe(job.operation)} and grant {grant.grant_id}'s {describe(grant.operations)}",
                                 "release only layers of the operation classes the job paid for and the grant allows",
                                 ev + (job.evidence, grant.evidence), discriminator=f"{dataset}.{column}.{onion}"))
        elif grant.scope is not None and bit != DOWNLOAD and not _in_scope(column, onion, grant.scope):
            out.append(Violation("use.field-scope", "use", "severe", subject, r.producer,
                                 f"job {job.job_id} was given the {name}, outside grant {grant.grant_id}'s field scope "
                                 f"{sorted(grant.scope)}", "release only the fields the grant's terms document names",
                                 ev + (grant.evidence,), discriminator=f"{dataset}.{column}.{onion}"))
        if datasets is not None and dataset not in datasets:
            out.append(Violation("use.dataset", "use", "critical", subject, r.producer,
                                 f"job {job.job_id} was given a layer of dataset {dataset}, which is not grant "
                                 f"{grant.grant_id}'s asset {grant.asset_id} ({min(datasets)})",
                                 "release only layers of the granted asset's dataset", ev,
                                 discriminator=f"{dataset}.{column}.{onion}"))
    return out


def _purpose_violations(facts: Facts) -> list[Violation]:
    out = []
    used = {}
    for j in facts.jobs.values():
        used.setdefault(j.grant_id, []).append(j)
    for gid, jobs in sorted(used.items()):
        g = facts.grants.get(gid)
        a = facts.assets.get(g.asset_id) if g else None
        if g is None or a is None or a.registration is None or not a.registration.purposes:
            continue
        consented = a.registration.purposes
        if g.purpose in consented:
            continue
        shown = f"purpose {g.purpose!r}" if g.purpose is not None else "a purpose hash with no terms document"
        for j in sorted(jobs, key=lambda x: x.job_id):
            out.append(Violation("use.purpose", "use", "severe", f"job:{j.job_id}", a.holder,
                                 f"job {j.job_id} runs under grant {gid} for {shown}; the consent of asset "
                                 f"{a.asset_id} covers only {list(consented)}",
                                 "grant use only for a consented purpose (a terms document naming it); revoke "
                                 f"grant {gid}", (j.evidence, g.evidence)))
    return out


def check_use(facts: Facts) -> list[Violation]:
    """Every logged key release against the job and grant on chain; every release on chain logged."""
    out = [v for r in facts.releases for v in _release_violations(r, facts)]
    for r in facts.releases:
        if not r.anchored:
            out.append(Violation("use.unanchored", "use", "warning", f"log:{r.record_id}", r.producer,
                                 f"key release {r.record_id} ({r.source}) is not in an anchored batch",
                                 "close and anchor the operation log (Evidence.anchorBatch)", (f"log:{r.record_id}",)))
    logged = {r.job for r in facts.releases if r.anchored}
    for j in sorted(facts.jobs.values(), key=lambda x: x.job_id):
        if j.released_by is not None and j.released_by in facts.log_producers and j.job_id not in logged:
            out.append(Violation("use.unlogged-release", "use", "severe", f"job:{j.job_id}", j.released_by,
                                 f"job {j.job_id}'s answer was released on chain by {j.released_by}, but no anchored "
                                 f"key-release record of it is in that holder's operation log",
                                 "log every key release and anchor the log", (j.evidence,)))
    return out + _purpose_violations(facts)


# --- flow --------------------------------------------------------------------------------------
def _residency(facts: Facts) -> list[Violation]:
    out = []
    for g in sorted(facts.grants.values(), key=lambda x: x.grant_id):
        a = facts.assets.get(g.asset_id)
        res = a.registration.residency if a and a.registration else None
        if g.status != "active" or res is None or not res.domestic_only:
            continue
        c = facts.consumers.get(g.consumer)
        where = c.jurisdiction if c else None
        if where is not None and where.upper() == res.jurisdiction.upper():
            continue
        subject = f"grant:{g.grant_id}"
        if where is None:
            known = "no credential the scan could read" if not (c and c.credential_found) else "a credential naming no jurisdiction"
            out.append(Violation("flow.residency-unknown", "flow", "warning", subject, a.holder,
                                 f"asset {a.asset_id} is domestic-only ({res.jurisdiction}); grant {g.grant_id}'s "
                                 f"consumer {g.consumer} has {known}",
                                 "have the operator issue the consumer a credential naming its jurisdiction, or "
                                 f"revoke grant {g.grant_id}", (g.evidence,)))
            continue
        out.append(Violation("flow.residency", "flow", "critical", subject, a.holder,
                             f"asset {a.asset_id} is domestic-only ({res.jurisdiction}) but grant {g.grant_id} lets "
                             f"consumer {g.consumer}, credentialed in {where}, use it",
                             f"revoke grant {g.grant_id} (tds grant revoke {g.grant_id})", (g.evidence, a.evidence)))
    return out


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_tls(facts: Facts) -> list[Violation]:
    """Every endpoint's scheme is a TLS one (a loopback endpoint is reported as info only)."""
    out = []
    for e in facts.endpoints:
        parts = urlsplit(e.url)
        if parts.scheme.lower() in TLS_SCHEMES:
            continue
        local = _loopback(parts.hostname or "")
        out.append(Violation("flow.tls", "flow", "info" if local else "severe", f"endpoint:{e.owner}", e.owner,
                             f"the {e.kind} {e.name!r} of {e.owner} is reached at {e.url!r}, not over TLS",
                             f"serve it over https:// and update the endpoint "
                             f"({'NodeRegistry.setEndpoint' if 'node' in e.kind else 're-register the service URL'})",
                             (e.evidence,), discriminator=e.url))
    return out


def check_flow(facts: Facts) -> list[Violation]:
    """Residency of domestic-only datasets and TLS of every service."""
    return _residency(facts) + check_tls(facts)


def run_checks(facts: Facts, categories: tuple[str, ...] = CATEGORIES) -> list[Violation]:
    """The chosen checks, in a stable order."""
    fns = {"source": check_source, "use": check_use, "flow": check_flow}
    return [v for cat in CATEGORIES if cat in categories for v in fns[cat](facts)]
