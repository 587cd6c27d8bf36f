import pytest

from offchain.errors import DatasetFormatError
from offchain.onion.chunks import ChunkHeader, join_varlen, pack_object, split_fixed, split_varlen, unpack_object


def test_chunk_roundtrip_and_rejections():
    h = ChunkHeader("ds", "col", "eq", 3, 2, {"rnd": "rnd:1"})
    obj = pack_object(h, b"body")
    assert unpack_object(obj)[0] == h and unpack_object(obj)[2] == b"body"
    assert split_varlen(join_varlen([b"", b"ab"])) == [b"", b"ab"]
    with pytest.raises(DatasetFormatError):
        split_varlen(b"\x00\x00\x00\x05ab")
    with pytest.raises(DatasetFormatError):
        split_fixed(b"abc", 2)
    with pytest.raises(DatasetFormatError):
        unpack_object(obj[:4] + b"\x02" + obj[5:])
