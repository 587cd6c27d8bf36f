"""The parties' side of N-party ECDH-PSI as pure state machines: messages in, messages out.

Party 0 is the *leader* (it learns the result and, in mode ``intersection``, seals the IDs to
the consumer); party N-1 is the *combiner*; parties 1..N-2 only relay. Every party holds a
fresh secret scalar k_i. ``X_i^S`` below is party i's hashed set blinded by the keys in S.

1. Each party hashes and blinds its own set with k_i; every later holder blinds it with its
   own key and shuffles it, along a fixed route:
   * the leader's set ``X_0``: 0 → 1 → … → N-1, then back to the leader (fully blinded).
     In mode ``intersection`` it is *not* shuffled, so the leader can map positions back to its
     IDs; in every other mode each relay shuffles it and the leader cannot.
   * a relay's set ``X_i`` (0 < i < N-1): i → i+1 → … → N-2 → 1 → … → i-1 → N-1.
   * the combiner's set ``X_{N-1}``: N-1 → 1 → … → N-2 → back to N-1 (not re-blinded).
2. The combiner now holds every non-leader set under K' = {k_1 … k_{N-1}}; it forms their
   intersection (modes ``intersection``, ``cardinality``) or union (``union_size``,
   ``difference_size``), shuffles it and sends it to the leader.
3. The leader blinds that set with k_0 and compares it with ``X_0`` under all keys:
   m = |X_0 ∩ C|. Size: ``intersection`` / ``cardinality``: m; ``union_size``:
   |X_0| + |C| − m; ``difference_size`` (IDs of the leader no other party holds): |X_0| − m.
4. The leader sends the size and the transcript hash to every party; each checks the hash.

No party ever holds two sets blinded under the same keys except the combiner (non-leader
sets under K') and the leader (its own set and C, both under all keys). docs/psi.md says
who learns what.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from offchain.canonical import canonical_json
from offchain.psi.ecdh import (
    POINT,
    blind_blob,
    hash_and_blind,
    new_scalar,
    random_order,
    shuffle_blob,
    split,
)
from offchain.psi.errors import (
    EmptyPsiSet,
    PsiConfigError,
    PsiProtocolError,
    UnknownPsiMode,
)

MODES = ("intersection", "cardinality", "union_size", "difference_size")
KINDS = ("set", "final", "combined", "result")
TRANSCRIPT_DOMAIN = b"tds-psi/v1/transcript"


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UnknownPsiMode(mode, MODES)
    return mode


def transcript_hash(session_id: str, parties: Sequence[str], mode: str, size: int) -> bytes:
    """SHA-256 binding session, parties (DIDs, in protocol order), mode and size: the billing
    receipt anchored on chain. Every party computes it and the leader's copy is checked."""
    body = canonical_json({"session": session_id, "parties": list(parties), "mode": mode, "size": size})
    return hashlib.sha256(TRANSCRIPT_DOMAIN + body).digest()


def route(origin: int, n: int) -> list[int]:
    """The parties whose keys blind ``origin``'s set, in order."""
    relays = list(range(1, n - 1))
    if origin == 0:
        return list(range(n))
    if origin == n - 1:
        return [n - 1] + relays
    k = relays.index(origin)
    return relays[k:] + relays[:k] + [n - 1]


@dataclass(frozen=True)
class Message:
    """One protocol message: a set of points in transit (``set``), the leader's set fully
    blinded (``final``), the combiner's set (``combined``), or the ``result``."""

    kind: str
    origin: int = -1
    applied: tuple[int, ...] = ()
    points: bytes = b""
    size: int | None = None
    transcript: bytes = b""

    def to_bytes(self) -> bytes:
        head = canonical_json({"kind": self.kind, "origin": self.origin, "applied": list(self.applied),
                               "size": self.size, "transcript": self.transcript.hex()})
        return len(head).to_bytes(4, "big") + head + self.points

    @classmethod
    def from_bytes(cls, raw: bytes, peer: str = "?") -> Message:
        try:
            n = int.from_bytes(raw[:4], "big")
            head = json.loads(raw[4:4 + n])
            msg = cls(head["kind"], int(head["origin"]), tuple(int(i) for i in head["applied"]),
                      bytes(raw[4 + n:]), head["size"], bytes.fromhex(head["transcript"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise PsiProtocolError(peer, f"undecodable message: {exc!r}") from None
        if msg.kind not in KINDS or len(msg.points) % POINT or not (msg.size is None or isinstance(msg.size, int)):
            raise PsiProtocolError(peer, f"malformed {msg.kind!r} message")
        return msg


Outgoing = tuple[int, Message]


@dataclass
class PartyMachine:
    """One party's state. ``start()`` gives its first messages; ``receive(sender, msg)`` the
    next ones; when ``done``, ``size`` (and for the leader in mode ``intersection``,
    ``intersection``) hold the result. ``items`` are normalised IDs; blanks and duplicates
    are dropped here."""

    index: int
    parties: list[str]
    session_id: str
    mode: str
    items: Sequence[str]
    processes: int = 1
    scalar: bytes = field(default_factory=new_scalar, repr=False)
    done: bool = field(default=False, init=False)
    size: int | None = field(default=None, init=False)
    intersection: list[str] | None = field(default=None, init=False)
    transcript: bytes | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        check_mode(self.mode)
        self.n = len(self.parties)
        if self.n < 2 or len(set(self.parties)) != self.n:
            raise PsiConfigError("PSI needs at least two parties with distinct DIDs")
        if not 0 <= self.index < self.n:
            raise PsiConfigError(f"party index {self.index} outside 0..{self.n - 1}")
        ids = list(dict.fromkeys(v for v in self.items if v))
        if not ids:
            raise EmptyPsiSet(self.parties[self.index])
        # the leader keeps its IDs in a random order that its blinded set follows
        self.items = [ids[i] for i in random_order(len(ids))]
        self._session = self.session_id.encode()
        self._seen: set[tuple[str, int]] = set()
        self._rest: dict[int, bytes] = {}
        self._final: bytes | None = None
        self._combined: bytes | None = None
        self._combined_size = 0

    @property
    def leader(self) -> bool:
        return self.index == 0

    @property
    def combiner(self) -> bool:
        return self.index == self.n - 1

    def awaiting(self) -> list[int]:
        """Parties a message is still expected from, the next one first (to name a silent peer)."""
        if self.done:
            return []
        if self.leader:
            return [self.n - 1]
        due = []
        for origin in range(self.n):
            path = route(origin, self.n)
            for k in range(1, len(path) + 1):
                here = path[k] == self.index if k < len(path) else (
                    origin != 0 and self.combiner and path[-1] != self.index)
                if here and ("set", origin) not in self._seen:
                    due.append(path[k - 1])
        return list(dict.fromkeys(due + [0]))

    # --- the protocol ------------------------------------------------------------------------
    def start(self) -> list[Outgoing]:
        points = hash_and_blind(self._session, self.items, self.scalar, self.processes)
        if not (self.leader and self.mode == "intersection"):
            points = shuffle_blob(points)
        return self._forward(self.index, (self.index,), points)

    def receive(self, sender: int, msg: Message) -> list[Outgoing]:
        peer = self.parties[sender] if 0 <= sender < self.n else f"party #{sender}"
        key = (msg.kind, msg.origin)
        if self.done or key in self._seen:
            raise PsiProtocolError(peer, f"unexpected second {msg.kind!r} message (origin {msg.origin})")
        self._seen.add(key)
        if msg.kind == "set":
            return self._on_set(sender, peer, msg)
        if msg.kind == "final":
            self._expect(self.leader and sender == self.n - 1 and list(msg.applied) == route(0, self.n),
                         peer, "a 'final' set goes from the combiner to the leader under every key")
            self._final = msg.points
            return self._finish()
        if msg.kind == "combined":
            self._expect(self.leader and sender == self.n - 1 and list(msg.applied) == list(range(1, self.n)),
                         peer, "the 'combined' set goes from the combiner to the leader under k_1..k_N-1")
            self._combined_size = len(msg.points) // POINT
            self._combined = blind_blob(msg.points, self.scalar, self.processes)
            return self._finish()
        self._expect(not self.leader and sender == 0 and isinstance(msg.size, int) and msg.size >= 0,
                     peer, "only the leader sends the result")
        mine = transcript_hash(self.session_id, self.parties, self.mode, msg.size)
        self._expect(msg.transcript == mine, peer, "the result's transcript hash does not match ours")
        self.size, self.transcript, self.done = msg.size, mine, True
        return []

    def _on_set(self, sender: int, peer: str, msg: Message) -> list[Outgoing]:
        path = route(msg.origin, self.n) if 0 <= msg.origin < self.n else []
        k = len(msg.applied)
        ok = bool(path) and 0 < k <= len(path) and list(msg.applied) == path[:k] and sender == path[k - 1]
        if ok and k == len(path):              # delivered at rest to the combiner
            ok = msg.origin != 0 and self.combiner
        elif ok:
            ok = path[k] == self.index
        self._expect(ok, peer, f"set of party #{msg.origin} under keys {list(msg.applied)} is not due here")
        if k == len(path):
            return self._at_rest(msg.origin, msg.points)
        points = blind_blob(msg.points, self.scalar, self.processes)
        if not (msg.origin == 0 and self.mode == "intersection"):
            points = shuffle_blob(points)
        return self._forward(msg.origin, msg.applied + (self.index,), points)

    def _forward(self, origin: int, applied: tuple[int, ...], points: bytes) -> list[Outgoing]:
        path = route(origin, self.n)
        if len(applied) < len(path):
            return [(path[len(applied)], Message("set", origin, applied, points))]
        if origin == 0:
            return [(0, Message("final", 0, applied, points))]
        if self.combiner:
            return self._at_rest(origin, points)
        return [(self.n - 1, Message("set", origin, applied, points))]

    def _at_rest(self, origin: int, points: bytes) -> list[Outgoing]:
        self._rest[origin] = points
        if len(self._rest) < self.n - 1:
            return []
        sets = [set(split(p)) for p in self._rest.values()]
        union = self.mode in ("union_size", "difference_size")
        combined = set.union(*sets) if union else set.intersection(*sets)
        self._rest = {}
        blob = shuffle_blob(b"".join(combined))
        return [(0, Message("combined", -1, tuple(range(1, self.n)), blob))]

    def _finish(self) -> list[Outgoing]:
        if self._final is None or self._combined is None:
            return []
        theirs = set(split(self._combined))
        hits = [i for i, p in enumerate(split(self._final)) if p in theirs]
        m, own = len(hits), len(self.items)
        self.size = {"intersection": m, "cardinality": m, "union_size": own + self._combined_size - m,
                     "difference_size": own - m}[self.mode]
        if self.mode == "intersection":
            self.intersection = sorted(self.items[i] for i in hits)
        self.transcript = transcript_hash(self.session_id, self.parties, self.mode, self.size)
        self.done = True
        self._final = self._combined = None
        return [(i, Message("result", size=self.size, transcript=self.transcript)) for i in range(1, self.n)]

    @staticmethod
    def _expect(ok: bool, peer: str, rule: str) -> None:
        if not ok:
            raise PsiProtocolError(peer, rule)

