"""DID-sealed, numbered frames: delivered whole and in order; tampered, misattributed,
replayed, foreign-session, oversized and malformed frames refused; lost peers named."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from did.envelope import Envelope
from did.identity import Identity
from offchain.psi.channel import (
    FrameOpener,
    FrameSealer,
    MemoryNetwork,
    TcpEndpoint,
    check_session_id,
    fragments,
)
from offchain.psi.errors import (
    FrameFromWrongSender,
    FrameReplayed,
    FrameTampered,
    FrameTooLarge,
    FrameWrongSession,
    MalformedFrame,
    PsiConfigError,
    PsiPeerLost,
)


@pytest.fixture(scope="module")
def ids() -> dict[str, Identity]:
    return {n: Identity.create(n) for n in ("alice", "bob", "carol", "mallory")}


def pair(ids, **kw):
    a, b = ids["alice"], ids["bob"]
    net = MemoryNetwork()
    ea = net.endpoint(a, "s-1", {b.did: b.x25519_public}, **kw)
    eb = net.endpoint(b, "s-1", {a.did: a.x25519_public}, **kw)
    return net, ea, eb


def test_messages_arrive_whole_and_in_order(ids):
    _, ea, eb = pair(ids, fragment=1000)
    payloads = [b"", b"x" * 999, bytes(range(256)) * 40, b"last"]
    for p in payloads:
        ea.send(ids["bob"].did, p)
    assert [eb.recv(1) for _ in payloads] == [(ids["alice"].did, p) for p in payloads]
    assert eb.recv(0.01) is None                        # silence: None, not an error


def frame(ids, sender="alice", recipient="bob", session="s-1", seq=0, body=b"\x00hello") -> bytes:
    s = FrameSealer(ids[sender], session, ids[recipient].did, ids[recipient].x25519_public)
    s.seq = seq
    return s.seal(body)


def opener(ids) -> FrameOpener:
    return FrameOpener(ids["bob"], "s-1", ids["alice"].did, max_frame=64 * 1024)


def test_a_good_frame_opens(ids):
    assert opener(ids).open(frame(ids)) == b"\x00hello"


def test_tampered_frame_is_refused(ids):
    env = Envelope.from_bytes(frame(ids))
    forged = Envelope(env.header, bytes([env.ciphertext[0] ^ 1]) + env.ciphertext[1:], env.signature)
    with pytest.raises(FrameTampered) as err:
        opener(ids).open(forged.to_bytes())
    assert err.value.peer == ids["alice"].did


def test_frame_from_a_wrong_did_is_refused(ids):
    with pytest.raises(FrameFromWrongSender) as err:
        opener(ids).open(frame(ids, sender="mallory"))
    assert err.value.sender == ids["mallory"].did


def test_replayed_and_skipped_frames_are_refused(ids):
    o = opener(ids)
    first = frame(ids, seq=0)
    o.open(first)
    with pytest.raises(FrameReplayed) as err:
        o.open(first)
    assert (err.value.seq, err.value.expected) == (0, 1)
    with pytest.raises(FrameReplayed):
        o.open(frame(ids, seq=5))


def test_frame_of_another_session_is_refused(ids):
    with pytest.raises(FrameWrongSession) as err:
        opener(ids).open(frame(ids, session="s-2"))
    assert err.value.session == "s-2"


def test_oversized_and_malformed_frames_are_refused(ids):
    with pytest.raises(FrameTooLarge):
        opener(ids).open(b"{" * (64 * 1024 + 1))
    for junk in (b"", b"not json", b'{"header": {}}'):
        with pytest.raises(MalformedFrame):
            opener(ids).open(junk)
    with pytest.raises(MalformedFrame):
        opener(ids).open(frame(ids, body=b"\x07unknown flag"))
    with pytest.raises(PsiConfigError):
        check_session_id("bad session|id")


def test_frame_not_for_us_is_refused(ids):
    with pytest.raises(FrameTampered):
        opener(ids).open(frame(ids, recipient="carol"))


def test_endpoint_surfaces_a_refusal_and_then_ignores_that_link(ids):
    net, _, eb = pair(ids)
    good = frame(ids, body=b"\x00one")
    net.inject(ids["bob"].did, ids["alice"].did, good)
    assert eb.recv(1) == (ids["alice"].did, b"one")
    net.inject(ids["bob"].did, ids["alice"].did, good)           # replayed
    with pytest.raises(FrameReplayed):
        eb.recv(1)
    net.inject(ids["bob"].did, ids["alice"].did, frame(ids, seq=1, body=b"\x00two"))
    assert eb.recv(0.01) is None                                 # link dropped after the refusal


def test_messages_over_the_limit_are_refused(ids):
    _, ea, eb = pair(ids, fragment=100, max_message=1000)
    ea.send(ids["bob"].did, b"y" * 1500)
    with pytest.raises(FrameTooLarge) as err:
        eb.recv(1)
    assert err.value.limit == 1000
    assert [f[0] for f in fragments(b"z" * 250, 100)] == [1, 1, 0]


def test_closing_an_endpoint_names_it_to_its_peers(ids):
    _, ea, eb = pair(ids)
    ea.close()
    with pytest.raises(PsiPeerLost) as err:
        eb.recv(1)
    assert err.value.peer == ids["alice"].did
    with pytest.raises(PsiPeerLost):
        eb.send(ids["alice"].did, b"hello?")


def tcp_mesh(ids, names, timeout=5.0):
    who = [ids[n] for n in names]
    eps = [TcpEndpoint(i, "s-1", {o.did: o.x25519_public for o in who if o is not i}) for i in who]
    addresses = {e.did: e.address for e in eps}
    threads = [threading.Thread(target=e.connect, args=(addresses, timeout)) for e in eps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eps


def test_tcp_mesh_delivers_between_every_pair(ids):
    eps = tcp_mesh(ids, ["alice", "bob", "carol"])
    try:
        big = bytes(3 * 2 ** 20 + 17)                         # several frames
        for src in eps:
            for dst in eps:
                if src is not dst:
                    src.send(dst.did, src.did.encode() + big)
        for dst in eps:
            got = sorted(dst.recv(5) for _ in range(2))
            assert got == sorted((s.did, s.did.encode() + big) for s in eps if s is not dst)
    finally:
        for e in eps:
            e.close()


def test_tcp_refuses_a_tampered_frame_and_an_oversized_length(ids):
    a, b = tcp_mesh(ids, ["alice", "bob"])
    try:
        sock = a._socks[b.did]
        env = Envelope.from_bytes(a._sealers[b.did].seal(b"\x00data"))
        forged = Envelope({**env.header, "purpose": "tds-psi/v1|s-1|9"}, env.ciphertext, env.signature).to_bytes()
        sock.sendall(len(forged).to_bytes(4, "big") + forged)
        with pytest.raises(FrameTampered):
            b.recv(5)
    finally:
        a.close(), b.close()
    a, b = tcp_mesh(ids, ["alice", "bob"])
    try:
        a._socks[b.did].sendall((2 ** 31).to_bytes(4, "big"))
        with pytest.raises(FrameTooLarge):
            b.recv(5)
    finally:
        a.close(), b.close()


def test_tcp_peer_that_disconnects_is_named(ids):
    a, b = tcp_mesh(ids, ["alice", "bob"])
    a.close()
    with pytest.raises(PsiPeerLost) as err:
        b.recv(5)
    assert err.value.peer == ids["alice"].did
    b.close()


def test_tcp_peer_that_never_connects_is_named_after_the_timeout(ids):
    a, b = ids["alice"], ids["bob"]
    lonely = TcpEndpoint(a, "s-1", {b.did: b.x25519_public})
    stranger = socket.create_connection(lonely.address)         # connects but never says hello
    t = time.monotonic()
    with pytest.raises(PsiPeerLost) as err:
        lonely.connect({b.did: ("127.0.0.1", 9)}, timeout=0.5)
    assert time.monotonic() - t < 3
    stranger.close()
    lonely.close()
    assert err.value.peer == b.did
