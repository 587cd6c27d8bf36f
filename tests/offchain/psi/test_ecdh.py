"""Hash to a u-coordinate, blinding that commutes, low-order points refused, parallel = serial."""
from __future__ import annotations

import os

import pytest

from offchain.psi.ecdh import (
    POINT,
    blind,
    blind_blob,
    hash_and_blind,
    hash_to_point,
    new_scalar,
    shuffle_blob,
    split,
)
from offchain.psi.errors import LowOrderPoint

IDS = [f"1380013{i:04d}" for i in range(50)]


def test_hash_to_point_is_deterministic_and_domain_separated():
    p = hash_to_point(b"session-1", "13800138000")
    assert len(p) == POINT and p[31] & 0x80 == 0
    assert p == hash_to_point(b"session-1", "13800138000")
    assert p != hash_to_point(b"session-2", "13800138000")
    assert p != hash_to_point(b"session-1", "13800138001")
    # the session is length-prefixed: moving bytes between session and value changes the point
    assert hash_to_point(b"ab", "c") != hash_to_point(b"a", "bc")


def test_scalars_are_fresh():
    scalars = {new_scalar() for _ in range(20)}
    assert len(scalars) == 20 and all(len(k) == 32 for k in scalars)


def test_blinding_commutes():
    a, b, c = new_scalar(), new_scalar(), new_scalar()
    points = [hash_to_point(b"s", v) for v in IDS] + [os.urandom(32) for _ in range(20)]
    assert blind(blind(points, a), b) == blind(blind(points, b), a)
    assert blind(blind(blind(points, a), b), c) == blind(blind(blind(points, c), a), b)
    assert blind(points, a) != blind(points, b)


def test_equal_ids_meet_only_under_the_same_keys():
    a, b = new_scalar(), new_scalar()
    mine = blind(blind([hash_to_point(b"s", v) for v in IDS[:30]], a), b)
    theirs = blind(blind([hash_to_point(b"s", v) for v in IDS[20:]], b), a)
    assert len(set(mine) & set(theirs)) == 10
    once = blind([hash_to_point(b"s", v) for v in IDS[20:]], b)
    assert not set(mine) & set(once)


def test_hash_and_blind_equals_hash_then_blind():
    k = new_scalar()
    assert split(hash_and_blind(b"s", IDS, k)) == blind([hash_to_point(b"s", v) for v in IDS], k)


def test_parallel_blinding_equals_serial():
    k = new_scalar()
    values = [f"id-{i}" for i in range(2500)]           # more than one chunk: goes to the pool
    serial = hash_and_blind(b"s", values, k, processes=1)
    assert hash_and_blind(b"s", values, k, processes=2) == serial
    k2 = new_scalar()
    assert blind_blob(serial, k2, processes=2) == blind_blob(serial, k2, processes=1)


@pytest.mark.parametrize("low", [bytes(32), (1).to_bytes(32, "little")])
def test_low_order_points_are_refused_with_their_index(low):
    points = [hash_to_point(b"s", v) for v in IDS[:5]]
    points.insert(3, low)
    with pytest.raises(LowOrderPoint) as err:
        blind(points, new_scalar())
    assert err.value.index == 3


def test_low_order_point_found_in_a_worker_chunk():
    blob = bytearray(os.urandom(32 * 2500))
    blob[32 * 2000:32 * 2001] = bytes(32)
    with pytest.raises(LowOrderPoint) as err:
        blind_blob(bytes(blob), new_scalar(), processes=2)
    assert err.value.index == 2000


def test_shuffle_is_a_permutation_that_moves_points():
    blob = b"".join(os.urandom(32) for _ in range(1000))
    mixed = shuffle_blob(blob)
    assert sorted(split(mixed)) == sorted(split(blob)) and mixed != blob


def test_malformed_inputs_are_refused():
    with pytest.raises(ValueError):
        split(b"x" * 33)
    with pytest.raises(ValueError):
        blind([b"short"], new_scalar())
    with pytest.raises(ValueError):
        blind_blob(bytes(32), b"short")
