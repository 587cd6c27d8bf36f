"""The PSI message channel: DID-sealed, numbered frames between the parties of one session.

A message is cut into fragments; each fragment travels as one frame, a sealed envelope
(:mod:`did.envelope`: Ed25519-signed by the sender's DID, AES-GCM to the recipient's X25519
key) whose purpose is ``"tds-psi/v1|<session id>|<sequence number>"``. Over TCP a frame is
a 4-byte big-endian length and the envelope's canonical bytes. The receiver refuses, each with
its own exception: a frame over the size limit (before reading it), bytes that are not an
envelope, an envelope signed by another DID than the peer of that link, one that does not
authenticate, one of another session, and one whose sequence number is not the next (a replay,
or a frame missing). After a refusal the link is dropped; a closed link becomes
:class:`PsiPeerLost` naming the peer.

Two transports share this logic: :class:`TcpEndpoint` (a listening socket per party on
loopback; the party with the smaller DID dials and opens with a sealed hello frame) and
:class:`MemoryEndpoint` (in-process, frames handed over as bytes, used by tests).
"""
from __future__ import annotations

import queue
import re
import socket
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping

from did.envelope import Envelope, open_envelope, seal
from did.errors import IdentityError, MalformedEnvelope
from did.identity import Identity
from offchain.psi.errors import (
    ChannelError,
    FrameFromWrongSender,
    FrameReplayed,
    FrameTampered,
    FrameTooLarge,
    FrameWrongSession,
    MalformedFrame,
    PsiConfigError,
    PsiPeerLost,
)

PROTOCOL = "tds-psi/v1"
MAX_FRAME = 4 * 2 ** 20          # bytes of one sealed frame
FRAGMENT = 2 ** 20               # plaintext bytes per frame (base64 inside the envelope: ~1.4 MiB)
MAX_MESSAGE = 512 * 2 ** 20      # bytes of one reassembled message
_LAST, _MORE, _HELLO = 0, 1, 2   # first plaintext byte of a frame
_LEN = struct.Struct(">I")
SESSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not SESSION_RE.match(session_id):
        raise PsiConfigError(f"session id {session_id!r} is invalid: 1-128 of letters, digits, '_.:-'")
    return session_id


def frame_purpose(session_id: str, seq: int) -> str:
    return f"{PROTOCOL}|{session_id}|{seq}"


class FrameSealer:
    """Seals the frames one party sends to one peer, numbered 0, 1, 2 ..."""

    def __init__(self, me: Identity, session_id: str, peer: str, peer_key: bytes) -> None:
        self.me, self.session_id, self.peer, self.peer_key = me, check_session_id(session_id), peer, peer_key
        self.seq = 0

    def seal(self, plaintext: bytes) -> bytes:
        env = seal(self.me, self.peer, self.peer_key, plaintext, frame_purpose(self.session_id, self.seq))
        self.seq += 1
        return env.to_bytes()


class FrameOpener:
    """Checks and opens the frames one party receives from one peer, in sequence."""

    def __init__(self, me: Identity, session_id: str, peer: str, max_frame: int = MAX_FRAME) -> None:
        self.me, self.session_id, self.peer, self.max_frame = me, check_session_id(session_id), peer, max_frame
        self.expected = 0

    def open(self, body: bytes) -> bytes:
        if len(body) > self.max_frame:
            raise FrameTooLarge(self.peer, len(body), self.max_frame)
        try:
            env = Envelope.from_bytes(bytes(body))
        except MalformedEnvelope as exc:
            raise MalformedFrame(self.peer, str(exc)) from None
        if env.sender != self.peer:
            raise FrameFromWrongSender(self.peer, env.sender)
        try:
            plaintext = open_envelope(self.me, env, expected_sender=self.peer)
        except IdentityError as exc:
            raise FrameTampered(self.peer, str(exc)) from None
        proto, _, rest = env.purpose.partition("|")
        session, _, seq = rest.rpartition("|")
        if proto != PROTOCOL or not seq.isdigit() or not session:
            raise MalformedFrame(self.peer, f"purpose {env.purpose!r} is not a PSI frame purpose")
        if session != self.session_id:
            raise FrameWrongSession(self.peer, session, self.session_id)
        if int(seq) != self.expected:
            raise FrameReplayed(self.peer, int(seq), self.expected)
        if not plaintext or plaintext[0] not in (_LAST, _MORE, _HELLO):
            raise MalformedFrame(self.peer, "unknown fragment flag")
        self.expected += 1
        return plaintext


def fragments(payload: bytes, size: int = FRAGMENT) -> Iterator[bytes]:
    """The frame plaintexts carrying ``payload``: a flag byte (more / last) and a slice."""
    view = memoryview(payload)
    for start in range(0, max(len(payload), 1), size):
        last = start + size >= len(payload)
        yield bytes((_LAST if last else _MORE,)) + bytes(view[start:start + size])


class Endpoint(ABC):
    """One party's end of the channel: ``send`` to a peer DID, ``recv`` the next whole message."""

    def __init__(self, me: Identity, session_id: str, peers: Mapping[str, bytes], *, max_frame: int = MAX_FRAME,
                 max_message: int = MAX_MESSAGE, fragment: int = FRAGMENT) -> None:
        if me.did in peers:
            raise PsiConfigError(f"{me.did} is listed as its own peer")
        self.me, self.did, self.session_id = me, me.did, check_session_id(session_id)
        self.peers = dict(peers)
        self.max_frame, self.max_message, self.fragment = max_frame, max_message, fragment
        self._sealers = {p: FrameSealer(me, session_id, p, k) for p, k in self.peers.items()}
        self._openers = {p: FrameOpener(me, session_id, p, max_frame) for p in self.peers}
        self._partial: dict[str, list[bytes]] = {p: [] for p in self.peers}
        self._failed: set[str] = set()
        self._inbox: queue.Queue[tuple[str, bytes] | Exception] = queue.Queue()
        self._closed = False

    def send(self, peer: str, payload: bytes) -> None:
        """Seal ``payload`` to ``peer`` (in as many frames as needed) and transmit it."""
        if peer not in self._sealers:
            raise PsiConfigError(f"{peer} is not a peer of this session")
        for plaintext in fragments(payload, self.fragment):
            self._transmit(peer, self._sealers[peer].seal(plaintext))

    def recv(self, timeout: float | None = None) -> tuple[str, bytes] | None:
        """The next whole message as (peer DID, payload); None after ``timeout`` seconds of
        silence. Raises the refusal of a bad frame, or :class:`PsiPeerLost`."""
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, Exception):
            raise item
        return item

    def _deliver(self, peer: str, body: bytes) -> bool:
        """Check one received frame; queue the message it completes. False: link refused."""
        if peer in self._failed or self._closed:
            return False
        try:
            plaintext = self._openers[peer].open(body)
            if plaintext[0] == _HELLO:
                raise MalformedFrame(peer, "a hello frame after the link was set up")
            part = self._partial[peer]
            part.append(plaintext[1:])
            if sum(map(len, part)) > self.max_message:
                raise FrameTooLarge(peer, sum(map(len, part)), self.max_message, "message")
            if plaintext[0] == _LAST:
                self._partial[peer] = []
                self._inbox.put((peer, b"".join(part)))
            return True
        except ChannelError as exc:
            self._fail(peer, exc)
            return False

    def _fail(self, peer: str, exc: Exception) -> None:
        if peer not in self._failed and not self._closed:
            self._failed.add(peer)
            self._inbox.put(exc)

    @abstractmethod
    def _transmit(self, peer: str, body: bytes) -> None: ...

    @abstractmethod
    def close(self) -> None: ...


# --- in memory -------------------------------------------------------------------------------
class MemoryNetwork:
    """In-process links between :class:`MemoryEndpoint` s (tests, single-process runs)."""

    def __init__(self) -> None:
        self.endpoints: dict[str, MemoryEndpoint] = {}

    def endpoint(self, me: Identity, session_id: str, peers: Mapping[str, bytes], **kw: int) -> MemoryEndpoint:
        ep = MemoryEndpoint(self, me, session_id, peers, **kw)
        self.endpoints[me.did] = ep
        return ep

    def inject(self, to: str, link: str, body: bytes) -> None:
        """Hand ``body`` to ``to`` as if it arrived on the link from ``link`` (tests)."""
        self.endpoints[to]._frame_in(link, body)


class MemoryEndpoint(Endpoint):
    def __init__(self, network: MemoryNetwork, me: Identity, session_id: str, peers: Mapping[str, bytes],
                 **kw: int) -> None:
        super().__init__(me, session_id, peers, **kw)
        self.network = network

    def _frame_in(self, peer: str, body: bytes) -> None:
        if peer not in self.peers:
            return
        if len(body) > self.max_frame:
            self._fail(peer, FrameTooLarge(peer, len(body), self.max_frame))
        else:
            self._deliver(peer, body)

    def _transmit(self, peer: str, body: bytes) -> None:
        other = self.network.endpoints.get(peer)
        if other is None or other._closed:
            raise PsiPeerLost(peer, "its endpoint is closed")
        other._frame_in(self.did, body)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for peer in self.peers:
            other = self.network.endpoints.get(peer)
            if other is not None:
                other._fail(self.did, PsiPeerLost(self.did, "closed its endpoint"))


# --- TCP -------------------------------------------------------------------------------------
def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = conn.recv_into(view[got:], n - got)
        if k == 0:
            return None
        got += k
    return bytes(buf)


class TcpEndpoint(Endpoint):
    """A party's TCP endpoint: listens on ``host`` (loopback by default) from construction;
    :meth:`connect` links it to every peer, then a reader thread per link checks frames."""

    def __init__(self, me: Identity, session_id: str, peers: Mapping[str, bytes], host: str = "127.0.0.1",
                 **kw: int) -> None:
        super().__init__(me, session_id, peers, **kw)
        self._listener = socket.create_server((host, 0))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._socks: dict[str, socket.socket] = {}
        self._locks = {p: threading.Lock() for p in self.peers}

    def connect(self, addresses: Mapping[str, tuple[str, int]], timeout: float = 30.0) -> None:
        """Dial the peers whose DID sorts below ours, accept the others; ``timeout`` seconds in
        all, else :class:`PsiPeerLost` naming a peer that did not show up."""
        deadline = time.monotonic() + timeout
        for peer in sorted(p for p in self.peers if p < self.did):
            try:
                conn = socket.create_connection(addresses[peer], timeout=max(0.1, deadline - time.monotonic()))
            except (OSError, KeyError) as exc:
                raise PsiPeerLost(peer, f"could not connect: {exc!r}") from None
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks[peer] = conn
            self._transmit(peer, self._sealers[peer].seal(bytes((_HELLO,))))
        waiting = {p for p in self.peers if p > self.did}
        refused = ""
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PsiPeerLost(min(waiting), f"did not connect within {timeout:g} s{refused}")
            self._listener.settimeout(left)
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            try:                     # a silent stranger holds the accept loop for 2 s at most
                conn.settimeout(max(0.1, min(2.0, deadline - time.monotonic())))
                peer = self._hello(conn, waiting)
            except (ChannelError, OSError) as exc:
                refused = f" (refused a connection: {exc})"
                conn.close()
                continue
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks[peer] = conn
            waiting.discard(peer)
        self._listener.close()
        for peer, conn in self._socks.items():
            threading.Thread(target=self._read_loop, args=(peer, conn), daemon=True,
                             name=f"psi-read-{peer[-6:]}").start()

    def _hello(self, conn: socket.socket, waiting: set[str]) -> str:
        head = _recv_exact(conn, _LEN.size)
        if head is None:
            raise MalformedFrame("?", "connection closed before the hello frame")
        size = _LEN.unpack(head)[0]
        if size > self.max_frame:
            raise FrameTooLarge("?", size, self.max_frame)
        body = _recv_exact(conn, size) or b""
        try:
            claimed = Envelope.from_bytes(body).sender
        except MalformedEnvelope as exc:
            raise MalformedFrame("?", str(exc)) from None
        if claimed not in waiting:
            raise FrameFromWrongSender("an expected peer", claimed)
        if self._openers[claimed].open(body) != bytes((_HELLO,)):
            raise MalformedFrame(claimed, "the first frame is not a hello")
        return claimed

    def _read_loop(self, peer: str, conn: socket.socket) -> None:
        try:
            while True:
                head = _recv_exact(conn, _LEN.size)
                if head is None:
                    self._fail(peer, PsiPeerLost(peer, "closed the connection"))
                    return
                size = _LEN.unpack(head)[0]
                if size > self.max_frame:
                    self._fail(peer, FrameTooLarge(peer, size, self.max_frame))
                    return
                body = _recv_exact(conn, size)
                if body is None:
                    self._fail(peer, PsiPeerLost(peer, "closed the connection in the middle of a frame"))
                    return
                if not self._deliver(peer, body):
                    return
        except OSError as exc:
            self._fail(peer, PsiPeerLost(peer, f"connection error: {exc!r}"))
        finally:
            if not self._closed:
                conn.close()

    def _transmit(self, peer: str, body: bytes) -> None:
        conn = self._socks.get(peer)
        if conn is None:
            raise PsiPeerLost(peer, "not connected")
        try:
            with self._locks[peer]:
                conn.sendall(_LEN.pack(len(body)) + body)
        except OSError as exc:
            raise PsiPeerLost(peer, f"connection error while sending: {exc!r}") from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for conn in list(self._socks.values()):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self._listener.close()
