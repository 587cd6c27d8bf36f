"""Canonical binary form of one columnar chunk object.

``b"TDSC" | version (1 byte) | header length (4 bytes, big endian) | header | body``. The
header is canonical JSON naming dataset, column, onion, chunk index, row count and key ids;
for RND-wrapped onions the body is AES-GCM-sealed with the header as associated data, so a
chunk cannot be moved to another column, chunk position or dataset. Inner payloads are
length-prefixed (variable width) or fixed-width concatenations."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable

from offchain.canonical import canonical_json
from offchain.errors import DatasetFormatError

MAGIC, VERSION = b"TDSC", 1


@dataclass(frozen=True)
class ChunkHeader:
    dataset: str
    column: str
    onion: str
    chunk: int
    rows: int
    keys: dict

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "column": self.column, "onion": self.onion,
                "chunk": self.chunk, "rows": self.rows, "keys": self.keys}

    def encode(self) -> bytes:
        return canonical_json(self.to_dict())


def pack_object(header: ChunkHeader, body: bytes) -> bytes:
    h = header.encode()
    return MAGIC + bytes([VERSION]) + struct.pack(">I", len(h)) + h + body


def unpack_object(raw: bytes) -> tuple[ChunkHeader, bytes, memoryview]:
    """Returns (header, header bytes as authenticated, body — a zero-copy view)."""
    import json
    if raw[:4] != MAGIC or len(raw) < 9 or raw[4] != VERSION:
        raise DatasetFormatError("not a tds chunk object (bad magic/version)")
    (hlen,) = struct.unpack(">I", raw[5:9])
    hbytes = bytes(raw[9:9 + hlen])
    try:
        d = json.loads(hbytes)
        header = ChunkHeader(d["dataset"], d["column"], d["onion"], int(d["chunk"]), int(d["rows"]), d["keys"])
    except (ValueError, KeyError) as exc:
        raise DatasetFormatError(f"chunk header unreadable: {exc}") from exc
    if header.encode() != hbytes:
        raise DatasetFormatError("chunk header is not canonical")
    return header, hbytes, memoryview(raw)[9 + hlen:]


def join_varlen(items: Iterable[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(x)) + x for x in items)


def split_varlen(buf: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(buf):
        (n,) = struct.unpack_from(">I", buf, pos)
        pos += 4
        out.append(buf[pos:pos + n])
        pos += n
    if pos != len(buf):
        raise DatasetFormatError("truncated variable-length payload")
    return out


def split_fixed(buf: bytes, width: int) -> list[bytes]:
    if len(buf) % width:
        raise DatasetFormatError(f"payload length {len(buf)} is not a multiple of {width}")
    return [buf[i:i + width] for i in range(0, len(buf), width)]
