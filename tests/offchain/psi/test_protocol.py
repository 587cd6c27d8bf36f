"""The parties' state machines without sockets: results equal the plaintext set operations,
cardinality mode lets nobody map matches to IDs, and protocol violations are refused."""
from __future__ import annotations

from collections import deque
from itertools import combinations

import pytest

from offchain.psi.ecdh import blind, hash_to_point, split
from offchain.psi.errors import (
    EmptyPsiSet,
    PsiConfigError,
    PsiProtocolError,
    UnknownPsiMode,
)
from offchain.psi.protocol import MODES, Message, PartyMachine, route, transcript_hash

DIDS = [f"did:example:{c}" for c in "abcdef"]


def expected(sets: list[set[str]], mode: str) -> int:
    lead, others = sets[0], sets[1:]
    return {"intersection": len(set.intersection(*sets)), "cardinality": len(set.intersection(*sets)),
            "union_size": len(set.union(*sets)), "difference_size": len(lead - set.union(*others))}[mode]


def run(sets: list[list[str]], mode: str, log: list | None = None) -> list[PartyMachine]:
    """Deliver every message in order; ``log`` collects (sender, recipient, message)."""
    dids = DIDS[:len(sets)]
    machines = [PartyMachine(i, dids, "sess-1", mode, ids) for i, ids in enumerate(sets)]
    queue: deque = deque()
    for m in machines:
        queue.extend((m.index, to, msg) for to, msg in m.start())
    while queue:
        sender, to, msg = queue.popleft()
        if log is not None:
            log.append((sender, to, msg))
        wire = Message.from_bytes(msg.to_bytes())
        queue.extend((to, nxt, out) for nxt, out in machines[to].receive(sender, wire))
    assert all(m.done for m in machines)
    return machines


SETS = [[f"id{i}" for i in range(60)], [f"id{i}" for i in range(20, 90)],
        [f"id{i}" for i in range(10, 80, 2)], [f"id{i}" for i in range(0, 100, 3)]]


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("mode", MODES)
def test_results_equal_python_set_operations(n, mode):
    sets = SETS[:n]
    machines = run(sets, mode)
    want = expected([set(s) for s in sets], mode)
    assert {m.size for m in machines} == {want}
    assert {m.transcript for m in machines} == {transcript_hash("sess-1", DIDS[:n], mode, want)}
    if mode == "intersection":
        assert machines[0].intersection == sorted(set.intersection(*map(set, sets)))
    assert all(m.intersection is None for m in machines[1 if mode == "intersection" else 0:])


def test_duplicates_and_blanks_are_not_ids():
    machines = run([["a", "a", "", "b", "c"], ["b", "b", "c", "", "d"]], "union_size")
    assert machines[0].size == 4


def test_cardinality_mode_reveals_no_ids():
    """No message carries an ID or its bare hash, and the leader's fully blinded set comes back
    shuffled: in mode intersection it is aligned with the leader's IDs, in cardinality not."""
    ids = [[f"id{i}" for i in range(200)], [f"id{i}" for i in range(100, 300)]]
    for mode, aligned in (("intersection", True), ("cardinality", False)):
        log: list = []
        machines = run(ids, mode, log)
        hashes = {hash_to_point(b"sess-1", v) for s in ids for v in s}
        for _, _, msg in log:
            assert not hashes & set(split(msg.points))
            assert not any(v.encode() in msg.points for v in ("id1", "id150"))
        final = next(msg for _, _, msg in log if msg.kind == "final")
        leader = machines[0]
        mine = blind(blind([hash_to_point(b"sess-1", v) for v in leader.items], leader.scalar), machines[1].scalar)
        assert sorted(mine) == sorted(split(final.points))
        assert (mine == split(final.points)) is aligned
        assert (leader.intersection is not None) is aligned


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_routes_visit_every_party_once_and_no_relay_can_compare_two_sets(n):
    """The leader's set takes every key; the others take k_1..k_N-1 and end at the combiner.
    Apart from the combiner, no party ever holds two sets under the same keys (its own set
    under its own key counts too), so relays learn nothing about overlaps."""
    held: dict[int, list[frozenset]] = {p: [frozenset({p})] for p in range(n)}
    for origin in range(n):
        path = route(origin, n)
        assert path[0] == origin and sorted(path) == list(range(0 if origin == 0 else 1, n))
        for k in range(1, len(path)):
            held[path[k]].append(frozenset(path[:k]))        # what arrives at path[k]
    held[0] += [frozenset(range(n)), frozenset(range(1, n))]  # 'final' and 'combined'
    for party in range(n - 1):                                  # all but the combiner
        assert len(held[party]) == len(set(held[party])), (n, party, held[party])


def make(i: int, n: int = 2, mode: str = "cardinality") -> PartyMachine:
    return PartyMachine(i, DIDS[:n], "sess-1", mode, ["a", "b"])


def test_messages_out_of_route_are_refused():
    leader, other = make(0), make(1)
    out = dict(leader.start())
    msg = out[1]
    with pytest.raises(PsiProtocolError) as err:
        leader.receive(1, msg)                                  # the leader's own set, back too early
    assert err.value.peer == DIDS[1]
    three = make(1, 3)
    with pytest.raises(PsiProtocolError):
        three.receive(2, msg)                                   # right message, wrong sender
    other.receive(0, msg)
    with pytest.raises(PsiProtocolError):
        other.receive(0, msg)                                   # a second copy


def test_a_result_with_another_transcript_is_refused():
    other = make(1)
    other.start()
    bad = Message("result", size=3, transcript=transcript_hash("sess-1", DIDS[:2], "cardinality", 4))
    with pytest.raises(PsiProtocolError):
        other.receive(0, bad)


def test_undecodable_messages_are_refused():
    for raw in (b"", b"\x00\x00\x00\x02{}", Message("set", 0, (0,), b"x" * 33).to_bytes(),
                Message("gossip").to_bytes()):
        with pytest.raises(PsiProtocolError):
            Message.from_bytes(raw, "did:example:x")


def test_bad_sessions_are_refused():
    with pytest.raises(EmptyPsiSet) as err:
        PartyMachine(1, DIDS[:2], "s", "cardinality", ["", ""])
    assert err.value.party == DIDS[1]
    with pytest.raises(UnknownPsiMode):
        PartyMachine(0, DIDS[:2], "s", "jaccard", ["a"])
    with pytest.raises(PsiConfigError):
        PartyMachine(0, DIDS[:1], "s", "cardinality", ["a"])
    with pytest.raises(PsiConfigError):
        PartyMachine(0, [DIDS[0], DIDS[0]], "s", "cardinality", ["a"])


def test_transcript_binds_every_field():
    base = transcript_hash("s", DIDS[:2], "cardinality", 5)
    assert len(base) == 32
    variants = [transcript_hash("t", DIDS[:2], "cardinality", 5), transcript_hash("s", DIDS[1::-1], "cardinality", 5),
                transcript_hash("s", DIDS[:2], "intersection", 5), transcript_hash("s", DIDS[:2], "cardinality", 6)]
    assert len({base, *variants}) == 5
    assert all(a != b for a, b in combinations(variants, 2))
