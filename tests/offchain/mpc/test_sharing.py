"""Provider-side sharing and consumer-side reconstruction (no MPC runtime, no processes)."""
from __future__ import annotations

import numpy as np
import pytest

from offchain.mpc import sharing as sh
from offchain.mpc.errors import (
    BundleRefused,
    InputOutOfRange,
    OutputRefused,
    UnknownCategory,
)


def test_shamir_split_reconstructs_from_any_t_plus_1_shares() -> None:
    secrets = np.array([0, 1, sh.ROW_PRIME - 1, 123456789], dtype=object)
    shares = sh.shamir_split(secrets, 1, 3, sh.ROW_PRIME)
    for xs in ((1, 2), (1, 3), (2, 3), (1, 2, 3)):
        assert sh.reconstruct({x: shares[x - 1] for x in xs}, sh.ROW_PRIME, 1) == list(secrets)


def test_single_shares_look_random() -> None:
    shares = sh.shamir_split(np.zeros(1000, dtype=object), 1, 3, sh.ROW_PRIME)
    assert len(set(shares[0])) == 1000 and max(shares[0]) > sh.ROW_PRIME // 2


def test_inconsistent_output_shares_are_refused() -> None:
    shares = sh.shamir_split(np.array([42], dtype=object), 1, 3, sh.ROW_PRIME)
    points = {1: shares[0], 2: shares[1], 3: (shares[2] + 1) % sh.ROW_PRIME}
    with pytest.raises(OutputRefused, match="inconsistent"):
        sh.reconstruct(points, sh.ROW_PRIME, 1)


def test_fixed_point_encoding_and_range() -> None:
    enc = sh.encode_fixed("x", [1.5, -2.25, 0])
    assert [sh.to_signed(int(v), sh.ROW_PRIME) / 2 ** sh.FRAC_BITS for v in enc] == [1.5, -2.25, 0]
    with pytest.raises(InputOutOfRange) as err:
        sh.encode_fixed("x", [1.0, float("nan")])
    assert err.value.row == 1 and err.value.column == "x"
    with pytest.raises(InputOutOfRange):
        sh.encode_fixed("x", [sh.MAX_ABS])
    with pytest.raises(UnknownCategory):
        sh.encode_onehot("g", ["a", "z"], ["a", "b"])


def test_bundle_opens_only_for_its_node_sender_and_session(cast, tables) -> None:
    p = cast.providers[0]
    bundles = sh.share_inputs({"x": tables[0]["x"]}, cast.keys, p, "sess-a")
    opened = [sh.open_bundle(n, i, b, p.did, "sess-a", 3) for i, (n, b) in enumerate(zip(cast.nodes, bundles))]
    x = sh.reconstruct({i + 1: o.columns["x"] for i, o in enumerate(opened)}, sh.ROW_PRIME, 1)
    assert np.allclose([sh.to_signed(v, sh.ROW_PRIME) / 2 ** 16 for v in x], tables[0]["x"], atol=1e-4)
    with pytest.raises(BundleRefused, match="expected"):          # claimed sender is someone else
        sh.open_bundle(cast.nodes[0], 0, bundles[0], cast.providers[1].did, "sess-a", 3)
    with pytest.raises(BundleRefused):                            # replayed into another session
        sh.open_bundle(cast.nodes[0], 0, bundles[0], p.did, "sess-b", 3)
    with pytest.raises(BundleRefused):                            # another node's bundle
        sh.open_bundle(cast.nodes[1], 1, bundles[0], p.did, "sess-a", 3)
    raw = bytearray(bundles[0])
    pos = raw.index(b'"ciphertext":"') + 20
    raw[pos] = ord("A") if raw[pos] != ord("A") else ord("B")
    with pytest.raises(BundleRefused, match="altered|decrypt|verify"):
        sh.open_bundle(cast.nodes[0], 0, bytes(raw), p.did, "sess-a", 3)
