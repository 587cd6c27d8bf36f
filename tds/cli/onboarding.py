"""``tds id apply|applications|review|admit``: participant onboarding under operator review
(application → review → credential; contracts/identity/Onboarding.sol, :mod:`chain.onboarding`).

The applicant's document and the reviewer's reasons go to the content store (CIDv1) and their
sha-256 on chain. Approving as an account that also holds the Onboarding OPERATOR role issues the
role credential (signed with the operator's DID key, naming the applicant's verified bound
account) and admits the applicant — the role is granted in the IdentityRegistry — in one flow;
a reviewer without it leaves the approved application to an operator's ``tds id admit``.
"""
from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from chain.config import Settings, load_settings
from chain.onboarding import (
    MAX_DOCUMENT,
    PARTICIPANT_ROLES,
    OnboardingClient,
    RoleApplication,
    document_cid,
    document_hash,
)
from chain.tx import Reverted
from did.errors import DidNotBound, IdentityError
from did.identity import Identity
from tds.cli.identity import identity
from tds.cli.output import emit_json
from tds.cli.refusals import StateRefused, onchain

HINTS = {"ApplicantNotBound": "bind it first with 'tds id bind {name}'",
         "RoleAlreadyHeld": "it already holds that role",
         "ApplicationAlreadyOpen": "an application of it for that role is still open ('tds id applications')"}


class OnboardingRefused(IdentityError):
    """An onboarding step the chain or the records refuse (names the application and the reason)."""


def _load(settings: Settings, name: str, password_env: str | None) -> Identity:
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise IdentityError(f"environment variable {password_env} (from --password-env) is not set")
    else:
        password = click.prompt(f"password for identity {name!r}", hide_input=True)
    return Identity.load(settings.home / "identities", name, password)


def _open(settings: Settings) -> tuple[Any, dict[str, Any], OnboardingClient]:
    from chain.connection import connect
    from chain.deploy import read_deployment

    w3 = connect(settings)
    deployment = read_deployment(settings.deployment_path(w3.eth.chain_id), w3.eth.chain_id)
    return w3, deployment, OnboardingClient.from_deployment(w3, deployment)


def _store(settings: Settings) -> Any:
    from offchain.store.client import open_store

    return open_store(settings.home)


def _put(settings: Settings, data: bytes) -> str:
    """Store ``data`` (CIDv1) and check its CID is the one its sha-256 names on chain."""
    cid = _store(settings).add_bytes(data, cid_version=1)
    cid = cid if isinstance(cid, str) else cid.cid
    if cid != document_cid(document_hash(data)):
        raise OnboardingRefused(f"the content store gave {cid} for a {len(data)}-byte document, not the raw CIDv1 "
                                f"{document_cid(document_hash(data))} its hash names")
    return cid


def _line(a: RoleApplication) -> str:
    when = datetime.fromtimestamp(a.submitted_at, tz=UTC).strftime("%Y-%m-%d %H:%M")
    return f"{a.id:>4}  {a.state:9} {a.role:18} {a.applicant}  {when} UTC  document {document_cid(a.document_hash)}"


@identity.command("apply")
@click.argument("name")
@click.option("--role", type=click.Choice(PARTICIPANT_ROLES, case_sensitive=False), required=True)
@click.option("--document", "document", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help=f"The application document (at most {MAX_DOCUMENT // 1024} KiB; JSON with 'organization' and "
                   "'jurisdiction' lets the reviewer issue the credential from it).")
@click.option("--password-env", metavar="VAR")
@click.option("--json", "as_json", is_flag=True)
def id_apply(name: str, role: str, document: Path, password_env: str | None, as_json: bool) -> None:
    """Apply, as the bound identity NAME, for a participant ROLE: the document goes to the content
    store, its hash on chain; the application waits for the operator's review."""
    settings = load_settings()
    data = document.read_bytes()
    if len(data) > MAX_DOCUMENT:
        raise OnboardingRefused(f"{document} is {len(data)} bytes; an application document is at most {MAX_DOCUMENT} "
                                "(store large annexes separately and name their CIDs in it)")
    ident = _load(settings, name, password_env)
    _, _, onb = _open(settings)
    cid = _put(settings, data)
    try:
        app_id, r = onb.apply(ident.account, role, document_hash(data))
    except Reverted as exc:
        hint = HINTS.get(exc.error)
        if hint is None:
            raise
        raise OnboardingRefused(f"{name} ({ident.address}) cannot apply for {role.upper()}: {hint.format(name=name)} "
                                f"[{exc.error}]") from None
    if as_json:
        emit_json({"application": app_id, "role": role.upper(), "applicant": ident.address, "did": ident.did,
                   "documentCid": cid, "tx": "0x" + bytes(r["transactionHash"]).hex()})
    else:
        click.echo(f"application {app_id}: {ident.did} ({ident.address}) for {role.upper()}, document {cid}; "
                   "pending the operator's review")


@identity.command("applications")
@click.option("--pending", is_flag=True, help="Only those waiting for review.")
@click.option("--applicant", default=None, help="Only this account's.")
@click.option("--json", "as_json", is_flag=True)
def id_applications(pending: bool, applicant: str | None, as_json: bool) -> None:
    """Participant applications and their state (pending, approved, admitted, rejected)."""
    _, _, onb = _open(load_settings())
    found = onb.applications(pending=pending, applicant=applicant)
    if as_json:
        out = []
        for a in found:
            d = a.to_json()
            d["decision"] = onb.decision(a.id) if a.review != "pending" else None
            out.append(d)
        emit_json(out)
    elif not found:
        click.echo("no pending applications" if pending else "no applications")
    else:
        click.echo("\n".join(_line(a) for a in found))


def _applicant_did(w3: Any, deployment: dict[str, Any], a: RoleApplication) -> tuple[str, dict[str, Any]]:
    """The DID the applicant applied under and its published binding proof, verified against the DID's key."""
    from did.registry import IdentityRegistryClient

    registry = IdentityRegistryClient.from_deployment(w3, deployment)
    rec = registry.identity_of(a.applicant)
    if rec is None or rec.did_hash != a.did_hash:
        raise DidNotBound(f"application {a.id}: {a.applicant} is no longer bound to the DID it applied under")
    proof = registry.verified_binding_proof(rec)
    if proof is None:
        raise DidNotBound(f"application {a.id}: {a.applicant} bound {rec.did} without a binding proof signed by the "
                          "DID's key (a squatter?): no credential is issued")
    return rec.did, proof


def _document_fields(settings: Settings, a: RoleApplication) -> dict[str, Any]:
    try:
        doc = json.loads(_store(settings).cat(document_cid(a.document_hash)))
    except Exception:  # noqa: BLE001  (not in this store, or not JSON: the reviewer names the fields)
        return {}
    return doc if isinstance(doc, dict) else {}


def admit_application(settings: Settings, w3: Any, deployment: dict[str, Any], onb: OnboardingClient,
                      operator: Identity, a: RoleApplication, org: str | None, jurisdiction: str | None,
                      days: float, out: Path | None) -> dict[str, Any]:
    """Issue the role credential of approved application ``a`` and admit its applicant (grant the role)."""
    from did.credentials import credential_hash, issue_role_credential

    if a.state != "approved":
        raise StateRefused(f"application {a.id} is {a.state}, not approved: nothing to admit")
    did, proof = _applicant_did(w3, deployment, a)
    fields = _document_fields(settings, a)
    org = org or fields.get("organization")
    if not org:
        raise OnboardingRefused(f"application {a.id}: its document names no 'organization'; pass --org")
    vc = issue_role_credential(operator, did, a.role, str(org), days=days, subject_account=a.applicant,
                               binding_proof=proof, jurisdiction=jurisdiction or fields.get("jurisdiction"))
    text = (json.dumps(vc, indent=1, sort_keys=True) + "\n").encode()
    cid = _store(settings).add_bytes(text, cid_version=1)
    cid = cid if isinstance(cid, str) else cid.cid
    path = out or settings.home / "credentials" / f"application-{a.id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text)
    until = int(datetime.fromisoformat(vc["expirationDate"]).timestamp())
    r = onb.admit(operator.account, a.id, credential_hash(vc), until)
    return {"credentialHash": "0x" + credential_hash(vc).hex(), "credentialCid": cid, "credential": str(path),
            "subject": did, "validUntil": until, "tx": "0x" + bytes(r["transactionHash"]).hex()}


def _pending(onb: OnboardingClient, application_id: int) -> RoleApplication:
    a = onb.application(application_id)
    if a.state != "pending":
        raise StateRefused(f"application {application_id} is already {a.state}, not pending review")
    return a


_CREDENTIAL_OPTIONS = [
    click.option("--org", default=None, help="Organization named in the credential (default: the document's)."),
    click.option("--jurisdiction", default=None, metavar="CODE", help="Default: the document's 'jurisdiction'."),
    click.option("--days", type=click.FloatRange(min=0, min_open=True), default=365.0, show_default=True,
                 help="Validity of the credential."),
    click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Write the credential here (default $TDS_HOME/credentials/application-N.json)."),
]


def _credential_options(fn: Any) -> Any:
    for opt in reversed(_CREDENTIAL_OPTIONS):
        fn = opt(fn)
    return fn


@identity.command("review")
@click.argument("application_id", type=click.IntRange(min=1))
@click.option("--approve/--reject", "approve", required=True, help="The decision.")
@click.option("--reason", required=True, help="Your reasons (the text goes to the store, its sha-256 on chain).")
@click.option("--operator", "operator_name", required=True, help="Local identity of the reviewer (REVIEWER).")
@_credential_options
@click.option("--password-env", metavar="VAR")
@click.option("--json", "as_json", is_flag=True)
@onchain
def id_review(application_id: int, approve: bool, reason: str, operator_name: str, org: str | None,
              jurisdiction: str | None, days: float, out: Path | None, password_env: str | None,
              as_json: bool) -> None:
    """Reviewer: approve or reject a pending application with reasons. Approving as an operator also
    issues the role credential and admits the applicant (the role is granted on chain)."""
    settings = load_settings()
    w3, deployment, onb = _open(settings)
    a = _pending(onb, application_id)
    op = _load(settings, operator_name, password_env)
    record = json.dumps({"application": application_id, "applicant": a.applicant, "role": a.role,
                         "approved": approve, "reason": reason, "reviewer": op.did}, sort_keys=True).encode()
    reasons_cid = _put(settings, record)
    r = onb.decide(op.account, application_id, approve, document_hash(record))
    result: dict[str, Any] = {"application": application_id, "approved": approve, "reasonsCid": reasons_cid,
                              "tx": "0x" + bytes(r["transactionHash"]).hex()}
    if approve and onb.is_operator(op.address):
        result["admitted"] = admit_application(settings, w3, deployment, onb, op, onb.application(application_id),
                                               org, jurisdiction, days, out)
    if as_json:
        emit_json(result)
        return
    click.echo(f"application {application_id} {'approved' if approve else 'rejected'} (reasons {reasons_cid})")
    if "admitted" in result:
        adm = result["admitted"]
        click.echo(f"credential {adm['credentialHash']} issued to {adm['subject']} -> {adm['credential']} "
                   f"(store {adm['credentialCid']}); {a.role} granted on chain")
    elif approve:
        click.echo(f"awaiting admission: an operator runs 'tds id admit {application_id} --operator NAME'")


@identity.command("admit")
@click.argument("application_id", type=click.IntRange(min=1))
@click.option("--operator", "operator_name", required=True, help="Local identity of the issuing operator.")
@_credential_options
@click.option("--password-env", metavar="VAR")
@click.option("--json", "as_json", is_flag=True)
@onchain
def id_admit(application_id: int, operator_name: str, org: str | None, jurisdiction: str | None, days: float,
             out: Path | None, password_env: str | None, as_json: bool) -> None:
    """Operator: issue the role credential of an approved application and grant its role on chain."""
    settings = load_settings()
    w3, deployment, onb = _open(settings)
    a = onb.application(application_id)
    op = _load(settings, operator_name, password_env)
    adm = admit_application(settings, w3, deployment, onb, op, a, org, jurisdiction, days, out)
    if as_json:
        emit_json({"application": application_id, **adm})
    else:
        click.echo(f"application {application_id}: credential {adm['credentialHash']} issued to {adm['subject']} -> "
                   f"{adm['credential']}; {a.role} granted on chain")
