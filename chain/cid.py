"""CIDs as Kubo prints them: multihash sha2-256, CIDv0 (base58btc) and CIDv1 (base32 lower,
multibase prefix ``b``), codecs dag-pb (0x70) and raw (0x55)."""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from chain.errors import InvalidCid

DAG_PB = 0x70
RAW = 0x55
SHA2_256 = 0x12
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def varint(n: int) -> bytes:
    """Unsigned LEB128 (protobuf / multiformats varint)."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a varint at ``pos``; returns (value, next position)."""
    shift = value = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


def b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        if c not in _B58_INDEX:
            raise ValueError(f"not base58: {c!r}")
        n = n * 58 + _B58_INDEX[c]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


@dataclass(frozen=True)
class Cid:
    """A content identifier: version, codec and sha2-256 digest."""

    version: int
    codec: int
    digest: bytes

    @property
    def multihash(self) -> bytes:
        return bytes([SHA2_256, len(self.digest)]) + self.digest

    def to_bytes(self) -> bytes:
        """Binary CID (what dag-pb links carry)."""
        if self.version == 0:
            return self.multihash
        return varint(1) + varint(self.codec) + self.multihash

    def encode(self) -> str:
        """Text form: ``Qm...`` for v0, ``b...`` (base32 lower, no padding) for v1."""
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + base64.b32encode(self.to_bytes()).decode().lower().rstrip("=")

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.encode()


def cid_for(block: bytes, version: int, codec: int) -> Cid:
    """The CID of a block (v0 only allows dag-pb)."""
    if version == 0 and codec != DAG_PB:
        raise ValueError("CIDv0 is dag-pb only")
    return Cid(version, codec, hashlib.sha256(block).digest())


def parse_cid(text: str) -> Cid:
    """Parse a v0 (``Qm...``) or base32 v1 (``b...``) CID, or raise :class:`InvalidCid`."""
    text = text.strip()
    if text.startswith("/ipfs/"):
        text = text[len("/ipfs/"):]
    text = text.split("/", 1)[0]
    try:
        if len(text) == 46 and text.startswith("Qm"):
            mh = b58decode(text)
            return Cid(0, DAG_PB, _digest(mh))
        if text.startswith("b"):
            body = text[1:].upper()
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
            version, pos = read_varint(raw, 0)
            codec, pos = read_varint(raw, pos)
            if version != 1:
                raise ValueError(f"unsupported CID version {version}")
            return Cid(1, codec, _digest(raw[pos:]))
    except (ValueError, base64.binascii.Error) as exc:  # type: ignore[attr-defined]
        raise InvalidCid(text, str(exc)) from exc
    raise InvalidCid(text, "expected a CIDv0 (Qm...) or base32 CIDv1 (b...)")


def cid_from_bytes(raw: bytes) -> Cid:
    """Decode a binary CID as stored in a dag-pb link."""
    if len(raw) == 34 and raw[0] == SHA2_256:
        return Cid(0, DAG_PB, _digest(raw))
    version, pos = read_varint(raw, 0)
    codec, pos = read_varint(raw, pos)
    return Cid(version, codec, _digest(raw[pos:]))


def _digest(mh: bytes) -> bytes:
    if len(mh) != 34 or mh[0] != SHA2_256 or mh[1] != 32:
        raise ValueError("only sha2-256 multihashes are supported")
    return mh[2:]
