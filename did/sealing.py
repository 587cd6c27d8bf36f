"""Delivering answers: the provider seals each released answer to the consumer's key-agreement
key as published on chain, and the consumer opens it (did.envelope: X25519 + HKDF + AES-GCM,
sender-signed with the provider's DID key)."""
from __future__ import annotations

import json
import threading
from typing import Any, Callable

from web3.contract import Contract

from did.envelope import open_envelope, seal
from did.identity import Identity
from chain.errors import TdsError

RESULT_PURPOSE = "tds/job-result"


class UnknownParticipant(TdsError):
    """An address with no identity bound in the IdentityRegistry."""


class ChainDirectory:
    """Address → (DID, X25519 key) from the IdentityRegistry: its view and IdentityBound events."""

    def __init__(self, registry: Contract, from_block: int = 0):
        self.registry = registry
        self.from_block = from_block
        self._cache: dict[str, tuple[str, bytes]] = {}
        self._lock = threading.Lock()

    def resolve(self, address: str) -> tuple[str, bytes]:
        with self._lock:
            hit = self._cache.get(address)
        if hit:
            return hit
        ident = self.registry.functions.identityOf(address).call()
        if ident[0] == b"\0" * 32:
            raise UnknownParticipant(f"{address} has no identity bound on chain; it must run 'tds id bind' first")
        logs = self.registry.events.IdentityBound().get_logs(from_block=self.from_block,
                                                           argument_filters={"account": address})
        did = next((e["args"]["did"] for e in reversed(logs) if bytes(e["args"]["didHash"]) == bytes(ident[0])), None)
        if did is None:
            raise UnknownParticipant(f"no IdentityBound event for {address}'s current DID")
        entry = (did, bytes(ident[2]))
        with self._lock:
            self._cache[address] = entry
        return entry


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def provider_sealer(provider: Identity, directory: ChainDirectory) -> Callable[[dict[str, Any], str], bytes]:
    """``seal(payload, consumer_address) -> envelope bytes`` for the key service."""

    def _seal(payload: dict[str, Any], consumer: str) -> bytes:
        did, key = directory.resolve(consumer)
        return seal(provider, did, key, canonical(payload), RESULT_PURPOSE).to_bytes()

    return _seal


def open_result(consumer: Identity, sealed: bytes, provider_did: str | None = None) -> dict[str, Any]:
    """The consumer's side: check the sender's signature and decrypt the answer."""
    return json.loads(open_envelope(consumer, sealed, expected_sender=provider_did, purpose=RESULT_PURPOSE))
