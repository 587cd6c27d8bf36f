"""Identity step: every participant gets a DID bound to its wallet, and the operator issues the
role credentials (recorded on chain by their hash).

    brownie run scripts/identities.py --network tds-anvil        (after scripts/deploy.py)

Participants: operator (accounts[0]), regulator (1), provider-a (3), consumer (4), oracle (5),
provider-b (7). On a development network each identity is made from the anvil dev key of its
account; elsewhere it must already exist (``tds id new NAME --private-key-env VAR``). Keystores go
to ``$TDS_HOME/identities/<name>/``, credentials to ``$TDS_HOME/scripts/credentials/<name>.json``
(check one with ``tds id credential verify FILE``). Starts the script state for this deployment;
re-running it on the same deployment changes nothing that is already done.
"""
from __future__ import annotations

import json

from did.credentials import credential_hash, issue_role_credential
from did.errors import IdentityNotFound
from did.identity import Identity
from did.registry import IdentityRegistryClient

from ._common import CAST, DEV_SCRYPT_N, ROLES, Step, dev_account_for, fail, is_development, passphrase


def _identity(step: Step, name: str) -> Identity:
    """Load NAME's identity, or (development networks only) create it from its dev key."""
    try:
        return Identity.load(step.identity_root, name, passphrase())
    except IdentityNotFound:
        if not is_development():
            fail(f"no identity {name!r} under {step.identity_root}; create it with "
                 f"'tds id new {name} --private-key-env VAR' (a funded key on this chain) first")
    ident = Identity.create(name, dev_account_for(name))
    ident.save(step.identity_root, passphrase(), scrypt_n=DEV_SCRYPT_N)
    return ident


def main() -> dict:
    step = Step("identities", fresh_state=True)
    registry = IdentityRegistryClient(step.w3, step.space.c["IdentityRegistry"])
    ids = {name: _identity(step, name) for name in CAST}
    for name, ident in ids.items():
        if registry.account_of_did(ident.did) != ident.address:
            registry.bind(ident)
            ident.save_public(step.identity_root)  # keeps the binding proof beside the DID document
        step.state["participants"][name] = {"account": CAST[name], "address": ident.address, "did": ident.did,
                                            "identity": str(step.identity_root / name)}
        step.say(f"  {name:11} {ident.address}  {ident.did}")
    folder = step.work / "credentials"
    folder.mkdir(parents=True, exist_ok=True)
    for name, role in ROLES.items():
        entry = step.state["participants"][name]
        if not registry.has_participant_role(ids[name].address, role):
            vc = issue_role_credential(ids["operator"], ids[name].did, role, f"{name} org", days=365,
                                       subject_account=ids[name].address)
            registry.grant_from_credential(ids["operator"].account, vc)
            path = folder / f"{name}.json"
            path.write_text(json.dumps(vc, indent=1, sort_keys=True) + "\n")
            entry.update(role=role, credential=str(path), credentialHash="0x" + credential_hash(vc).hex())
        step.say(f"  {name:11} holds {role} (credential {entry.get('credentialHash', '?')[:18]}…)")
    missing = [n for n, r in ROLES.items() if not registry.has_participant_role(ids[n].address, r)]
    if missing:
        fail(f"roles not recorded on chain for {missing}")
    step.done(participants=len(ids), credentials=len(ROLES))
    step.say(f"{len(ids)} DIDs bound, {len(ROLES)} role credentials recorded; state in {step.state_path}")
    return step.state
