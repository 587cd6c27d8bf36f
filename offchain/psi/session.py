"""Run one PSI session: every party's side in its own thread with its own channel endpoint (a
real TCP socket per party on loopback, or in-memory links), the intersection sealed to the
consumer, and the transcript hash the coordinator anchors on chain as the billing receipt.

The first party in ``parties`` is the leader (docs/psi.md: who learns what). Worker processes
are used when ``processes > 1``: call ``run_psi`` from under ``if __name__ == "__main__":`` in
scripts, as for any multiprocessing code.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from did.envelope import Envelope, open_envelope, seal
from did.identity import Identity
from offchain.canonical import canonical_json
from offchain.psi.channel import (
    PROTOCOL,
    Endpoint,
    MemoryNetwork,
    TcpEndpoint,
    check_session_id,
)
from offchain.psi.errors import PsiConfigError, PsiPeerLost, PsiProtocolError
from offchain.psi.protocol import Message, PartyMachine, check_mode

RESULT_PURPOSE = re.compile(r"^tds-psi/v1\|([A-Za-z0-9][A-Za-z0-9_.:-]{0,127})\|intersection$")


@dataclass
class PsiParty:
    """A data provider's side: its identity, its raw ID column and its normalisation rules."""

    identity: Identity
    ids: list[str]
    rules: list = field(default_factory=list)


@dataclass(frozen=True)
class PsiOutcome:
    """What a session produced. ``sealed_result`` (mode ``intersection`` only) is an envelope
    from the leader to the consumer, ``sealed_for`` the same for each extra recipient (by DID);
    ``transcript_hash`` binds session, parties, mode and size."""

    mode: str
    size: int
    parties: list[str]
    sealed_result: bytes | None
    transcript_hash: bytes
    sealed_for: dict[str, bytes] = field(default_factory=dict)


def serve_party(machine: PartyMachine, endpoint: Endpoint, timeout: float) -> None:
    """Drive one party's state machine over its endpoint until it is done. Silence longer than
    ``timeout`` seconds becomes :class:`PsiPeerLost` naming the party it waits for."""
    index = {did: i for i, did in enumerate(machine.parties)}

    def send(out: list[tuple[int, Message]]) -> None:
        for to, msg in out:
            endpoint.send(machine.parties[to], msg.to_bytes())

    send(machine.start())
    while not machine.done:
        try:
            got = endpoint.recv(timeout)
        except PsiPeerLost as exc:          # a peer that has finished its part may leave first
            if exc.peer in {machine.parties[i] for i in machine.awaiting()}:
                raise
            continue
        if got is None:
            raise PsiPeerLost(machine.parties[machine.awaiting()[0]], f"sent nothing for {timeout:g} s")
        did, payload = got
        send(machine.receive(index[did], Message.from_bytes(payload, did)))


def seal_intersection(leader: Identity, session_id: str, parties: list[str], ids: list[str],
                      consumer_did: str, consumer_key: bytes) -> bytes:
    """The intersection as an envelope from the leader to the consumer (canonical bytes)."""
    body = canonical_json({"session": session_id, "mode": "intersection", "parties": parties,
                           "size": len(ids), "ids": sorted(ids)})
    return seal(leader, consumer_did, consumer_key, body, f"{PROTOCOL}|{session_id}|intersection").to_bytes()


def open_intersection(consumer_identity: Identity, sealed_result: bytes, expected_sender_did: str) -> list[str]:
    """Check and open a sealed intersection (the consumer's side); returns the sorted IDs."""
    env = Envelope.from_bytes(sealed_result)
    match = RESULT_PURPOSE.match(env.purpose)
    if not match:
        raise PsiProtocolError(env.sender, f"envelope purpose {env.purpose!r} is not a PSI intersection")
    plain = open_envelope(consumer_identity, env, expected_sender=expected_sender_did, purpose=env.purpose)
    try:
        body = json.loads(plain)
        ids, size = body["ids"], body["size"]
        ok = (body["session"] == match.group(1) and body["mode"] == "intersection" and isinstance(ids, list)
              and all(isinstance(v, str) for v in ids) and size == len(ids))
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise PsiProtocolError(expected_sender_did, "the sealed intersection's contents are inconsistent")
    return ids


def _key_ok(did: str | None, key: bytes | None) -> bool:
    return bool(did) and isinstance(key, bytes) and len(key) == 32


def _check(session_id: str, parties: list[PsiParty], mode: str, consumer_did: str | None,
           consumer_key: bytes | None, transport: str, recipients: Sequence[tuple[str, bytes]]) -> list[str]:
    check_session_id(session_id)
    check_mode(mode)
    dids = [p.identity.did for p in parties]
    if len(dids) < 2 or len(set(dids)) != len(dids):
        raise PsiConfigError("PSI needs at least two parties with distinct DIDs")
    if recipients and (mode != "intersection" or not all(_key_ok(d, k) for d, k in recipients)):
        raise PsiConfigError("extra recipients (DID, 32-byte key-agreement key) only receive an intersection")
    if mode == "intersection" and not _key_ok(consumer_did, consumer_key) and not recipients:
        raise PsiConfigError("mode 'intersection' needs the consumer's DID and 32-byte key-agreement key")
    if consumer_did and not _key_ok(consumer_did, consumer_key):
        raise PsiConfigError("the consumer's key-agreement key (X25519, or SM2 x) must be 32 bytes")
    if transport not in ("tcp", "memory"):
        raise PsiConfigError(f"transport {transport!r} is unknown; use 'tcp' or 'memory'")
    return dids


def run_psi(session_id: str, parties: list[PsiParty], mode: str, consumer_did: str | None = None,
            consumer_key: bytes | None = None, processes: int = 1, transport: str = "tcp",
            timeout: float = 120.0, recipients: Sequence[tuple[str, bytes]] = ()) -> PsiOutcome:
    """Normalise every party's IDs, run the protocol between them and return the outcome.
    In mode ``intersection`` the leader seals the IDs to the consumer (if given) and to each
    extra ``(did, x25519 key)`` in ``recipients`` (e.g. the providers, for a later step).
    Raises the first refusal (a party's own error before a peer's :class:`PsiPeerLost`)."""
    from offchain.psi.party_run import PartyRun, agreed

    recipients = list(recipients or ())
    dids = _check(session_id, parties, mode, consumer_did, consumer_key, transport, recipients)
    keys = {p.identity.did: p.identity.key_agreement_key for p in parties}  # X25519, or SM2 x under sm
    peers = [{d: k for d, k in keys.items() if d != p.identity.did} for p in parties]
    endpoints: list[Any]
    addresses: dict[str, tuple[str, int]] | None = None
    if transport == "tcp":
        endpoints = [TcpEndpoint(p.identity, session_id, peers[i]) for i, p in enumerate(parties)]
        addresses = {ep.did: ep.address for ep in endpoints}
    else:
        net = MemoryNetwork()
        endpoints = [net.endpoint(p.identity, session_id, peers[i]) for i, p in enumerate(parties)]
    try:
        runs = [PartyRun(p, i, dids, session_id, mode, endpoints[i], processes) for i, p in enumerate(parties)]
    except BaseException:
        for ep in endpoints:
            ep.close()
        raise
    to = ([(None, consumer_did, consumer_key)] if mode == "intersection" and consumer_did and consumer_key else [])
    to += [(d, d, k) for d, k in recipients]
    for i, run in enumerate(runs):
        run.start(addresses, timeout, to if i == 0 else ())
    results: list[Any] = []
    errors: list[BaseException] = []
    for run in runs:
        try:
            results.append(run.result())
        except BaseException as exc:  # noqa: BLE001 - the first party's own error is raised below
            errors.append(exc)
    if errors:
        own = [e for e in errors if not isinstance(e, PsiPeerLost)]
        raise (own or errors)[0]
    leader = agreed(results)
    return PsiOutcome(mode, leader.size, dids, leader.sealed.get(None), leader.transcript,
                      {d: b for d, b in leader.sealed.items() if d is not None})
