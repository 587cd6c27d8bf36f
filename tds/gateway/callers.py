"""Who is calling: the DID a challenge–response proved, and the account it is bound to on chain.

The guard (:class:`did.guard.ChallengeGuard`) proves the caller controls a DID key. What the
caller may *sign for* is decided by the IdentityRegistry and the DID's key together: the account
whose *current* binding names the DID and whose published binding proof verifies (the DID's key
signed that this account is its account: ``IdentityRegistryClient.verified_account_of_did``; the
latest such bind if several). Any account may bind any DID on chain, so an account bound to the
DID without that proof (a squatter) is never the caller's. A transaction or grant offer relayed for
the caller must be signed by exactly that account, so a DID cannot act with someone else's
account, and an account cannot act behind someone else's DID.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import keccak, to_checksum_address

from tds.gateway.errors import Forbidden

PRIVILEGED_ROLES = ("OPERATOR", "REGULATOR", "MONITOR")  # may query every audit event (000 §12.3.1.3)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its DID, the account bound to it on chain, the credential roles
    its presentation carried (if the guard verified any)."""

    did: str
    account: str
    roles: frozenset[str] = frozenset()


def did_of(proven: Any) -> str:
    """The DID a guard returned (:class:`did.challenge.Authenticated` or a plain string)."""
    return proven if isinstance(proven, str) else proven.did


_CLIENTS: dict[str, Any] = {}  # registry address -> IdentityRegistryClient (it caches checked proofs)


def bound_account(identity_registry: Any, did: str, from_block: int = 0) -> str:
    """The account ``did`` signs with: its verified current binding on chain; :class:`Forbidden`
    when no account's current binding of ``did`` carries a proof the DID's key signed."""
    from did.registry import IdentityRegistryClient

    client = _CLIENTS.get(identity_registry.address)
    if client is None or client.w3 is not identity_registry.w3:  # one per node: tx hashes repeat across dev chains
        client = IdentityRegistryClient(identity_registry.w3, identity_registry, from_block)
        _CLIENTS[identity_registry.address] = client
    account = client.verified_account_of_did(did)
    if account is None:
        raise Forbidden("did-not-bound", f"{did} is not bound on chain to an account with a binding proof signed by "
                                         "the DID's key: bind it first ('tds id bind') so the gateway knows which "
                                         "account signs for it")
    return to_checksum_address(account)


def is_privileged(reader: Any, account: str, index_reads: Any = None) -> bool:
    """True for the deployment's operator / regulator / monitor accounts, or a holder of one of
    those participant roles in the IdentityRegistry — read from the event index when
    ``index_reads`` (an :class:`audit.index_entities.EntityReads`) is given, else by ``eth_call``."""
    roles = reader.deployment.get("roles") or {}
    if any(str(roles.get(r.lower(), "")).lower() == account.lower() for r in PRIVILEGED_ROLES):
        return True
    if index_reads is not None:
        import time

        return index_reads.holds_role(account, PRIVILEGED_ROLES, time.time())
    ident = reader.contracts["IdentityRegistry"].functions
    return any(ident.hasParticipantRole(account, keccak(text=r)).call() for r in PRIVILEGED_ROLES)
