"""Delivering answers: the provider seals each released answer to the consumer's key-agreement
key as published on chain, and the consumer opens it (did.envelope: X25519 + HKDF + AES-GCM,
sender-signed with the provider's DID key; under the ``sm`` profile SM2 + SM3 KDF + SM4-GCM, the
on-chain key being the ``x`` of the consumer's SM2 agreement key)."""
from __future__ import annotations

import json
import threading
from typing import Any, Callable

from web3.contract import Contract

from chain.identities import BoundIdentity, commitment_of, current_identity
from did.envelope import open_envelope, seal
from did.identity import Identity
from chain.errors import TdsError

RESULT_PURPOSE = "tds/job-result"


class UnknownParticipant(TdsError):
    """An address with no identity bound in the IdentityRegistry."""


class ChainDirectory:
    """Address → (DID, X25519 key) from the IdentityRegistry: the account's commitment and its
    latest ``IdentityBound`` event (:func:`chain.identities.current_identity`).

    The commitment is read on every call, so an answer is always sealed to the participant's
    current key: a re-bind (key rotation) takes effect at once. The record behind a commitment
    (an event scan) is cached, keyed by the account and that commitment."""

    def __init__(self, registry: Contract, from_block: int = 0):
        self.registry = registry
        self.from_block = from_block
        self._records: dict[tuple[str, bytes], BoundIdentity] = {}
        self._lock = threading.Lock()

    def resolve(self, address: str) -> tuple[str, bytes]:
        commitment, _ = commitment_of(self.registry, address)
        if commitment == b"\0" * 27:
            raise UnknownParticipant(f"{address} has no identity bound on chain; it must run 'tds id bind' first")
        with self._lock:
            rec = self._records.get((address, commitment))
        if rec is None:
            rec = current_identity(self.registry, address, self.from_block)
            if rec is None:
                raise UnknownParticipant(f"no IdentityBound event for {address}'s current identity")
            with self._lock:  # under the commitment it matched (a re-bind since the read: the newer one)
                self._records[(address, rec.commitment)] = rec
        return rec.did, rec.key_agreement_key


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def provider_sealer(provider: Identity, directory: ChainDirectory) -> Callable[[dict[str, Any], str], bytes]:
    """``seal(payload, consumer_address) -> envelope bytes`` for the key service."""

    def _seal(payload: dict[str, Any], consumer: str) -> bytes:
        did, key = directory.resolve(consumer)
        return seal(provider, did, key, canonical(payload), RESULT_PURPOSE).to_bytes()

    return _seal


class WrongJobAnswer(TdsError):
    """A sealed answer that was released for another job than the one it was posted for."""


def open_result(consumer: Identity, sealed: bytes, provider_did: str | None = None,
                job_id: int | None = None) -> dict[str, Any]:
    """The consumer's side: check the sender's (the provider's) signature, decrypt the answer and,
    given ``job_id``, check that the provider released it for that very job (an older answer
    re-posted for a new job is refused here as well as on chain)."""
    payload = json.loads(open_envelope(consumer, sealed, expected_sender=provider_did, purpose=RESULT_PURPOSE))
    if job_id is not None and payload.get("job") != job_id:
        raise WrongJobAnswer(f"the sealed answer was released for job {payload.get('job')}, not job {job_id}; "
                             "do not trust it")
    return payload
