"""UnixFS files in dag-pb, built exactly as Kubo's ``ipfs add`` defaults build them.

Defaults matched: fixed 262144-byte chunks, the *balanced* layout with at most 174 links per
node, CIDv0 with dag-pb leaves (UnixFS ``File`` nodes carrying the bytes) or, for
``--cid-version 1``, raw leaves (codec 0x55) under dag-pb internal nodes. A file of one chunk
is that leaf itself (so a small CIDv1 file is ``bafkrei...``). dag-pb is serialised
canonically: links (field 2) before data (field 1); each link writes Hash, Name (empty) and
Tsize (the serialised size of the whole sub-DAG)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable, Iterator

from chain.cid import DAG_PB, RAW, Cid, cid_for, cid_from_bytes, read_varint, varint

CHUNK_SIZE = 262144
MAX_LINKS = 174
T_RAW, T_DIRECTORY, T_FILE = 0, 1, 2

PutBlock = Callable[[Cid, bytes], None]


# --- protobuf ---------------------------------------------------------------------------------
def _field_bytes(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def encode_unixfs(kind: int, data: bytes | None, filesize: int | None,
                  blocksizes: Iterable[int] = ()) -> bytes:
    """UnixFS ``Data`` message: Type=1, Data=2, filesize=3, blocksizes=4 (unpacked)."""
    out = _field_varint(1, kind)
    if data:
        out += _field_bytes(2, data)
    if filesize is not None:
        out += _field_varint(3, filesize)
    for size in blocksizes:
        out += _field_varint(4, size)
    return out


@dataclass(frozen=True)
class Link:
    cid: Cid
    tsize: int
    name: str = ""


def encode_dag_pb(links: list[Link], data: bytes | None) -> bytes:
    """PBNode: all links (field 2) first, then data (field 1) — the canonical order."""
    out = b""
    for link in links:
        body = _field_bytes(1, link.cid.to_bytes()) + _field_bytes(2, link.name.encode())
        body += _field_varint(3, link.tsize)
        out += _field_bytes(2, body)
    if data is not None:
        out += _field_bytes(1, data)
    return out


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
            yield number, value
        elif wire == 2:
            size, pos = read_varint(buf, pos)
            yield number, buf[pos:pos + size]
            pos += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


@dataclass
class Node:
    links: list[Link] = field(default_factory=list)
    data: bytes | None = None


def decode_dag_pb(block: bytes) -> Node:
    node = Node()
    for number, value in _fields(block):
        if number == 1:
            node.data = bytes(value)  # type: ignore[arg-type]
        elif number == 2:
            cid, name, tsize = None, "", 0
            for n2, v2 in _fields(value):  # type: ignore[arg-type]
                if n2 == 1:
                    cid = cid_from_bytes(bytes(v2))  # type: ignore[arg-type]
                elif n2 == 2:
                    name = bytes(v2).decode()  # type: ignore[arg-type]
                elif n2 == 3:
                    tsize = int(v2)  # type: ignore[arg-type]
            if cid is None:
                raise ValueError("dag-pb link without a hash")
            node.links.append(Link(cid, tsize, name))
    return node


@dataclass
class UnixfsData:
    kind: int
    data: bytes = b""
    filesize: int | None = None
    blocksizes: list[int] = field(default_factory=list)


def decode_unixfs(buf: bytes) -> UnixfsData:
    out = UnixfsData(kind=-1)
    for number, value in _fields(buf):
        if number == 1:
            out.kind = int(value)  # type: ignore[arg-type]
        elif number == 2:
            out.data = bytes(value)  # type: ignore[arg-type]
        elif number == 3:
            out.filesize = int(value)  # type: ignore[arg-type]
        elif number == 4:
            out.blocksizes.append(int(value))  # type: ignore[arg-type]
    return out


# --- building ---------------------------------------------------------------------------------
def read_chunks(stream: BinaryIO, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Fixed-size chunks; an empty stream yields one empty chunk (as Kubo does)."""
    first = True
    while True:
        chunk = stream.read(size)
        while chunk and len(chunk) < size:  # short reads from pipes / sockets
            more = stream.read(size - len(chunk))
            if not more:
                break
            chunk += more
        if not chunk:
            if first:
                yield b""
            return
        first = False
        yield chunk


@dataclass
class _Built:
    cid: Cid
    tsize: int      # serialised size of the whole sub-DAG
    filesize: int   # file bytes below this node


class _Builder:
    def __init__(self, chunks: Iterator[bytes], cid_version: int, raw_leaves: bool,
                 put: PutBlock) -> None:
        self.chunks, self.version, self.raw, self.put = chunks, cid_version, raw_leaves, put
        self.pending: bytes | None = next(chunks, b"")
        self.done = False

    def _next_chunk(self) -> bytes:
        chunk = self.pending if self.pending is not None else b""
        nxt = next(self.chunks, None)
        self.pending = nxt
        self.done = nxt is None
        return chunk

    def leaf(self) -> _Built:
        chunk = self._next_chunk()
        if self.raw:
            cid = cid_for(chunk, 1, RAW)
            self.put(cid, chunk)
            return _Built(cid, len(chunk), len(chunk))
        block = encode_dag_pb([], encode_unixfs(T_FILE, chunk, len(chunk)))
        cid = cid_for(block, self.version, DAG_PB)
        self.put(cid, block)
        return _Built(cid, len(block), len(chunk))

    def internal(self, children: list[_Built]) -> _Built:
        sizes = [c.filesize for c in children]
        data = encode_unixfs(T_FILE, None, sum(sizes), sizes)
        block = encode_dag_pb([Link(c.cid, c.tsize) for c in children], data)
        cid = cid_for(block, self.version, DAG_PB)
        self.put(cid, block)
        return _Built(cid, len(block) + sum(c.tsize for c in children), sum(sizes))

    def fill(self, children: list[_Built], depth: int) -> None:
        while len(children) < MAX_LINKS and not self.done:
            if depth == 1:
                children.append(self.leaf())
            else:
                grandchildren: list[_Built] = []
                self.fill(grandchildren, depth - 1)
                children.append(self.internal(grandchildren))

    def build(self) -> _Built:
        root = self.leaf()
        depth = 1
        while not self.done:
            children = [root]
            self.fill(children, depth)
            root = self.internal(children)
            depth += 1
        return root


def build_file(chunks: Iterable[bytes], cid_version: int, put: PutBlock,
               raw_leaves: bool | None = None) -> tuple[Cid, int, int]:
    """Build the balanced UnixFS DAG of a file; every block goes to ``put``.
    ``raw_leaves`` defaults as in Kubo: on for CIDv1, off for CIDv0.
    Returns (root CID, cumulative DAG size, file size)."""
    if cid_version not in (0, 1):
        raise ValueError("cid_version must be 0 or 1")
    raw = cid_version == 1 if raw_leaves is None else raw_leaves
    built = _Builder(iter(chunks), cid_version, raw, put).build()
    return built.cid, built.tsize, built.filesize


def file_cid(data: bytes, cid_version: int = 0, raw_leaves: bool | None = None) -> str:
    """The CID ``ipfs add`` would print for these bytes (nothing stored)."""
    import io
    cid, _, _ = build_file(read_chunks(io.BytesIO(data)), cid_version, lambda c, b: None,
                           raw_leaves)
    return cid.encode()


def iter_file(root: Cid, get: Callable[[Cid], bytes]) -> Iterator[bytes]:
    """Stream a UnixFS file's bytes depth-first from its root."""
    block = get(root)
    if root.codec == RAW:
        yield block
        return
    node = decode_dag_pb(block)
    meta = decode_unixfs(node.data or b"")
    if meta.kind not in (T_FILE, T_RAW):
        raise ValueError(f"{root.encode()} is not a UnixFS file (type {meta.kind})")
    if meta.data:
        yield meta.data
    for link in node.links:
        yield from iter_file(link.cid, get)


def walk_dag(root: Cid, get: Callable[[Cid], bytes]) -> Iterator[Cid]:
    """Every CID reachable from ``root`` (root included)."""
    stack = [root]
    while stack:
        cid = stack.pop()
        yield cid
        if cid.codec == DAG_PB:
            stack.extend(link.cid for link in decode_dag_pb(get(cid)).links)
