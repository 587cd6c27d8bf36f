"""``tds id ...``: identities (DIDs bound to chain accounts) and role credentials.

Output is plain ``click.echo``: rich would render the ``:key:`` inside ``did:key:`` as an emoji.

Keystores live under ``$TDS_HOME/identities/<name>/``. Passwords come from ``--password-env VAR``
(the name of an environment variable) or an interactive prompt — never from the command line.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from eth_utils import is_address

from did.credentials import (ROLES, OfflineTrust, credential_hash, issue_role_credential,
                             parse_role_credential, verify_role_credential)
from did.errors import DidNotBound, IdentityError, IdentityExists, MalformedCredential, UnknownDid
from did.identity import Identity, create_identity, list_identities, read_public
from did.proofs import did_profile
from tds.cli.output import emit_json
from chain.config import Settings, load_settings

REVOCATION_FILE = "revoked.json"


def _root(settings: Settings) -> Path:
    return settings.home / "identities"


def _password(env: str | None, name: str, confirm: bool = False) -> str:
    if env:
        value = os.environ.get(env)
        if value is None:
            raise IdentityError(f"environment variable {env} (from --password-env) is not set")
        return value
    return click.prompt(f"password for identity {name!r}", hide_input=True, confirmation_prompt=confirm)


def _registry(settings: Settings):
    from did.registry import IdentityRegistryClient
    from chain.connection import connect
    from chain.deploy import read_deployment

    w3 = connect(settings)
    deployment = read_deployment(settings.deployment_path(w3.eth.chain_id), w3.eth.chain_id)
    return IdentityRegistryClient.from_deployment(w3, deployment)


def _read_credential(path: Path) -> dict[str, Any]:
    try:
        vc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise MalformedCredential(f"no credential file at {path}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedCredential(f"{path} is not a JSON credential: {exc}") from None
    parse_role_credential(vc)
    return vc


def _read_binding(path: Path | None) -> dict[str, Any] | None:
    """A binding proof file: the proof itself, or a ``public.json`` / ``tds id show --json`` holding one."""
    if path is None:
        return None
    try:
        obj = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DidNotBound(f"no binding proof file at {path}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DidNotBound(f"{path} is not a JSON binding proof: {exc}") from None
    proof = obj.get("binding", obj) if isinstance(obj, dict) else None
    if not isinstance(proof, dict) or "statement" not in proof:
        raise DidNotBound(f"{path} holds no binding proof (run 'tds id bind' for that identity first)")
    return proof


def _subject(settings: Settings, subject: str) -> tuple[str, dict[str, Any] | None, str | None]:
    """A DID, or the name of a local identity: then its binding proof (if bound) or else its
    address from this machine's own key folder names the account."""
    if subject.startswith("did:"):
        did_profile(subject)   # an Ed25519 or SM2 did:key (UnknownDid otherwise)
        return subject, None, None
    try:
        pub = read_public(_root(settings), subject)
    except IdentityError:
        raise UnknownDid(f"subject {subject!r} is neither a did:key DID nor a local identity name") from None
    return pub["did"], pub.get("binding"), pub["address"]


@click.group("id")
def identity() -> None:
    """Identities (DIDs), role credentials, chain binding."""


@identity.command("new")
@click.argument("name")
@click.option("--password-env", metavar="VAR", help="Read the keystore password from environment variable VAR.")
@click.option("--dev-account", type=int, default=None, metavar="N",
              help="Use funded anvil dev account N as the Ethereum key (embedded chain only).")
@click.option("--private-key-env", metavar="VAR", help="Import the Ethereum private key from environment variable VAR.")
@click.option("--json", "as_json", is_flag=True)
def id_new(name: str, password_env: str | None, dev_account: int | None, private_key_env: str | None,
           as_json: bool) -> None:
    """Create an identity: did:key (Ed25519) and X25519 key — SM2 for both under TDS_CRYPTO_PROFILE=sm —
    and an Ethereum account; store them encrypted."""
    from eth_account import Account

    settings = load_settings()
    account = None
    if dev_account is not None and private_key_env:
        raise IdentityError("use either --dev-account or --private-key-env, not both")
    if dev_account is not None:
        from chain.accounts import dev_account as dev

        account = dev(dev_account)
    elif private_key_env:
        raw = os.environ.get(private_key_env)
        if not raw:
            raise IdentityError(f"environment variable {private_key_env} (from --private-key-env) is not set")
        try:
            account = Account.from_key(raw.strip())
        except (ValueError, TypeError) as exc:
            raise IdentityError(f"{private_key_env} does not hold a valid Ethereum private key: {exc}") from None
    ident = create_identity(name, account)
    if (_root(settings) / name).exists():
        raise IdentityExists(f"identity {name!r} already exists in {_root(settings) / name}; choose another name")
    folder = ident.save(_root(settings), _password(password_env, name, confirm=True))
    if as_json:
        emit_json({"name": name, "did": ident.did, "address": ident.address, "profile": ident.profile,
                   "folder": str(folder)})
    else:
        click.echo(f"identity {name}: {ident.did}\naccount {ident.address}\nkeys in {folder}")


@identity.command("show")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
def id_show(name: str | None, as_json: bool) -> None:
    """Show an identity's public data (DID, account, document CID, binding); no NAME lists them."""
    settings = load_settings()
    if name is None:
        names = list_identities(_root(settings))
        if as_json:
            emit_json(names)
        else:
            click.echo("\n".join(names) if names else "no identities; create one with 'tds id new NAME'")
        return
    pub = read_public(_root(settings), name)
    if as_json:
        emit_json(pub)
        return
    bound = pub.get("binding")
    click.echo(f"name      {pub['name']}\nDID       {pub['did']}\naccount   {pub['address']}\n"
                  f"document  {pub['documentCid']} (digest {pub['documentDigest']})\n"
                  f"{'sm2 ka' if pub.get('profile') == 'sm' else 'x25519':<10}{pub['keyAgreementKey']}\n"
                  f"binding   {'chain ' + str(bound['statement']['chainId']) if bound else 'not bound yet'}")


@identity.command("bind")
@click.argument("name")
@click.option("--password-env", metavar="VAR")
def id_bind(name: str, password_env: str | None) -> None:
    """Bind NAME's account and DID on chain (IdentityRegistry.bind, sent by that account), publishing
    its binding proof. Another account's binding of the same DID never blocks it: readers take only
    the binding whose proof the DID's key signed."""
    settings = load_settings()
    ident = Identity.load(_root(settings), name, _password(password_env, name))
    client = _registry(settings)
    receipt = client.bind(ident)
    ident.save_public(_root(settings))
    others = [b.account for b in client.bindings_of_did(ident.did) if b.account != ident.address]
    note = f"; also bound, without a proof from this DID's key: {', '.join(others)}" if others else ""
    click.echo(f"bound {ident.did} <-> {ident.address} on chain {client.chain_id} "
                  f"(tx 0x{receipt['transactionHash'].hex()}, block {receipt['blockNumber']}{note})")


@identity.group("credential")
def credential() -> None:
    """Role credentials issued by the operator."""


@credential.command("issue")
@click.option("--operator", "operator_name", required=True, help="Local identity of the issuing operator.")
@click.option("--subject", required=True, help="Subject DID, or the name of a local identity.")
@click.option("--role", type=click.Choice(ROLES, case_sensitive=False), required=True)
@click.option("--org", required=True, help="Organization the subject acts for.")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=365.0, show_default=True)
@click.option("--subject-account", default=None, help="Ethereum account to name in the credential.")
@click.option("--jurisdiction", default=None, metavar="CODE",
              help="Where the subject is established (e.g. CN); compliance scans check residency against it.")
@click.option("--binding", "binding_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The subject's binding proof (or its 'tds id show --json'); names the bound account.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--grant", is_flag=True, help="Also grant the role on chain (subject must be bound).")
@click.option("--password-env", metavar="VAR")
def credential_issue(operator_name: str, subject: str, role: str, org: str, days: float,
                     subject_account: str | None, jurisdiction: str | None, binding_file: Path | None,
                     out: Path | None, grant: bool, password_env: str | None) -> None:
    """Issue (sign) a role credential; write it to --out or stdout."""
    settings = load_settings()
    subject_did, binding, local_account = _subject(settings, subject)
    binding = _read_binding(binding_file) or binding
    if binding is None and subject_account is None:
        subject_account = local_account
    if subject_account:
        if not is_address(subject_account):
            raise IdentityError(f"--subject-account {subject_account!r} is not an Ethereum address")
    op = Identity.load(_root(settings), operator_name, _password(password_env, operator_name))
    vc = issue_role_credential(op, subject_did, role, org, days=days, subject_account=subject_account,
                               binding_proof=binding, jurisdiction=jurisdiction)
    text = json.dumps(vc, indent=1, sort_keys=True) + "\n"
    if grant:
        receipt = _registry(settings).grant_from_credential(op.account, vc, binding)
        click.echo(f"granted {role.upper()} on chain (tx 0x{receipt['transactionHash'].hex()})", err=True)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"credential 0x{credential_hash(vc).hex()} ({role.upper()} for {subject_did}) -> {out}")


@credential.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--trust", "anchors", multiple=True, help="Trusted operator DID (repeatable). Required with --offline.")
@click.option("--offline", is_flag=True, help="No chain: trust --trust DIDs, revocations from the local list.")
@click.option("--holder-account", default=None, help="Check the subject DID is bound to this account.")
@click.option("--binding", "binding_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The subject's binding proof (needed with --holder-account when the credential names no account).")
@click.option("--role", type=click.Choice(ROLES, case_sensitive=False), default=None)
@click.option("--json", "as_json", is_flag=True)
def credential_verify(file: Path, anchors: tuple[str, ...], offline: bool, holder_account: str | None,
                      binding_file: Path | None, role: str | None, as_json: bool) -> None:
    """Verify a role credential with public data only (the chain, or pinned DIDs offline)."""
    settings = load_settings()
    vc = _read_credential(file)
    if offline:
        if not anchors:
            raise IdentityError("--offline needs at least one --trust OPERATOR_DID (the chain names operators otherwise)")
        trust: Any = OfflineTrust.load(anchors, _root(settings) / REVOCATION_FILE)
        source = "local revocation list"
    else:
        from did.registry import ChainTrust

        client = _registry(settings)
        trust = ChainTrust(client, anchors or None)
        source = f"IdentityRegistry on chain {client.chain_id}"
    if holder_account is not None and not is_address(holder_account):
        raise IdentityError(f"--holder-account {holder_account!r} is not an Ethereum address")
    binding = _read_binding(binding_file)
    if binding is not None:
        trust.add_binding(binding)
    v = verify_role_credential(vc, trust, holder_account=holder_account, role=role)
    if as_json:
        emit_json({"valid": True, "subject": v.subject_did, "role": v.role, "organization": v.organization,
                   "issuer": v.issuer, "validFrom": v.valid_from.isoformat(), "validUntil": v.valid_until.isoformat(),
                   "credentialHash": "0x" + v.credential_hash.hex(), "revocationSource": source})
    else:
        click.echo(f"valid: {v.role} for {v.subject_did} ({v.organization}), issued by {v.issuer}, "
                      f"until {v.valid_until:%Y-%m-%d %H:%M} UTC; revocation checked against {source}")


@credential.command("revoke")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--operator", "operator_name", default=None, help="Operator identity (required on chain).")
@click.option("--reason", default=None)
@click.option("--offline", is_flag=True, help="Only add it to this machine's local revocation list.")
@click.option("--password-env", metavar="VAR")
def credential_revoke(file: Path, operator_name: str | None, reason: str | None, offline: bool,
                      password_env: str | None) -> None:
    """Revoke a credential: on chain (visible to every verifier) or in the local list."""
    settings = load_settings()
    vc = _read_credential(file)
    h = credential_hash(vc)
    if offline:
        OfflineTrust.load((), _root(settings) / REVOCATION_FILE).revoke(h)
        click.echo(f"revoked 0x{h.hex()} in {_root(settings) / REVOCATION_FILE} (this machine only)")
        return
    if not operator_name:
        raise IdentityError("revoking on chain needs --operator NAME (an account with the OPERATOR role)")
    op = Identity.load(_root(settings), operator_name, _password(password_env, operator_name))
    client = _registry(settings)
    receipt = client.revoke_credential(op.account, h, reason)
    click.echo(f"revoked 0x{h.hex()} on chain {client.chain_id} (tx 0x{receipt['transactionHash'].hex()})")
