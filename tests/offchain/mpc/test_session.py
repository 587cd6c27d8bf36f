"""Joint statistics on three real compute-node processes, compared with numpy / statistics on
the plaintext; the k-rule, refused bundles and a node killed mid-run."""
from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from offchain.mpc.errors import BundleRefused, MinGroupRefused, MpcNodeLost
from offchain.mpc.session import JointSpec, open_outputs, outputs_hash, run_joint
from offchain.mpc.sharing import share_inputs

CATEGORIES = ["north", "south", "east"]    # the conftest's categories fixture

TOL = 1e-4      # inputs are rounded to 2**-16; results agree to well within this


def bundles_for(cast, tables, session: str, columns=("x", "y", "region")) -> dict[str, list[bytes]]:
    return {p.did: share_inputs({c: t[c] for c in columns}, cast.keys, p, session, categories={"region": CATEGORIES})
            for p, t in zip(cast.providers, tables)}


def run(cast, spec, bundles, tmp_path: Path, session: str, timeout: float = 60):
    out = run_joint(session, spec, bundles, cast.nodes, cast.consumer.did, cast.consumer.x25519_public,
                    tmp_path, timeout=timeout)
    assert len(out.output_hash) == 32 and out.output_hash == outputs_hash(out.sealed_outputs)
    return out, open_outputs(cast.consumer, out.sealed_outputs, out.nodes)


def no_node_left(tmp_path: Path, session: str) -> bool:
    for pid_file in (tmp_path / session).glob("node*.pid"):
        try:
            os.kill(int(pid_file.read_text()), 0)
        except ProcessLookupError:
            continue
        return False
    return True


def test_horizontal_statistics_match_plaintext(cast, tables, categories, tmp_path: Path) -> None:
    assert categories == CATEGORIES
    spec = JointSpec(["count", "sum", "mean", "variance", "stddev", "min", "max", "median", "percentiles",
                      "pearson", "crosstab"], columns=["x"], percentiles=[10, 25, 90], pearson=("x", "y"),
                     group_by="region", categories=CATEGORIES, min_group=5)
    _, res = run(cast, spec, bundles_for(cast, tables, "h1"), tmp_path, "h1")
    x = np.concatenate([t["x"] for t in tables])
    y = np.concatenate([t["y"] for t in tables])
    region = np.concatenate([t["region"] for t in tables])
    assert res["count"] == len(x) == 75
    assert res["sum"]["x"] == pytest.approx(x.sum(), abs=len(x) * TOL)
    assert res["mean"]["x"] == pytest.approx(statistics.mean(x), abs=TOL)
    assert res["variance"]["x"] == pytest.approx(statistics.variance(x), rel=TOL)
    assert res["stddev"]["x"] == pytest.approx(statistics.stdev(x), rel=TOL)
    assert res["min"]["x"] == pytest.approx(x.min(), abs=TOL)
    assert res["max"]["x"] == pytest.approx(x.max(), abs=TOL)
    assert res["median"]["x"] == pytest.approx(statistics.median(x), abs=TOL)
    for q in (10, 25, 90):
        assert res["percentile"]["x"][f"{q:g}"] == pytest.approx(np.percentile(x, q), abs=TOL)
    assert res["pearson"]["x,y"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=TOL)
    for cat in CATEGORIES:
        assert res["crosstab"]["region"]["count"][cat] == int((region == cat).sum())
        assert res["crosstab"]["region"]["sum"]["x"][cat] == pytest.approx(x[region == cat].sum(), abs=len(x) * TOL)
    assert not (tmp_path / "h1" / "node0.out").read_bytes().count(b'"x"')   # sealed: no plaintext names


def test_vertical_statistics_on_aligned_rows(cast, tables, tmp_path: Path) -> None:
    """Provider 0 holds x, provider 1 holds y, provider 2 holds the region of the same 25 rows."""
    rows = 25
    parts = [{"x": tables[0]["x"][:rows]}, {"y": tables[0]["y"][:rows]}, {"region": tables[0]["region"][:rows]}]
    bundles = {p.did: share_inputs(cols, cast.keys, p, "v1", categories={"region": CATEGORIES})
               for p, cols in zip(cast.providers, parts)}
    spec = JointSpec(["count", "sum", "mean", "variance", "stddev", "pearson", "crosstab"], columns=["x", "y"],
                     layout="vertical", pearson=("x", "y"), group_by="region", categories=CATEGORIES, min_group=2)
    _, res = run(cast, spec, bundles, tmp_path, "v1")
    x, y, region = (np.array(parts[0]["x"]), np.array(parts[1]["y"]), np.array(parts[2]["region"]))
    assert res["count"] == rows
    for name, col in (("x", x), ("y", y)):
        assert res["sum"][name] == pytest.approx(col.sum(), abs=rows * TOL)
        assert res["mean"][name] == pytest.approx(col.mean(), abs=TOL)
        assert res["variance"][name] == pytest.approx(statistics.variance(col), rel=TOL)
        assert res["stddev"][name] == pytest.approx(statistics.stdev(col), rel=TOL)
    assert res["pearson"]["x,y"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=TOL)
    for cat in CATEGORIES:           # key of provider 2, values of providers 0 and 1
        assert res["crosstab"]["region"]["count"][cat] == int((region == cat).sum())
        assert res["crosstab"]["region"]["sum"]["y"][cat] == pytest.approx(y[region == cat].sum(), abs=rows * TOL)


def test_small_group_is_refused_and_nothing_is_output(cast, tables, tmp_path: Path) -> None:
    region = np.concatenate([t["region"] for t in tables])
    smallest = min(int((region == c).sum()) for c in CATEGORIES)
    spec = JointSpec(["count", "crosstab"], columns=["x"], group_by="region", categories=CATEGORIES,
                     min_group=smallest + 1)
    with pytest.raises(MinGroupRefused) as err:
        run(cast, spec, bundles_for(cast, tables, "k1", ("x", "region")), tmp_path, "k1")
    assert err.value.k == smallest + 1
    assert not list((tmp_path / "k1").glob("node*.out")) and no_node_left(tmp_path, "k1")
    spec_total = JointSpec(["count", "sum"], columns=["x"], min_group=76)        # 75 rows in all
    with pytest.raises(MinGroupRefused):
        run(cast, spec_total, bundles_for(cast, tables, "k2", ("x",)), tmp_path, "k2")


def test_tampered_bundle_and_wrong_sender_are_refused(cast, tables, tmp_path: Path) -> None:
    spec = JointSpec(["count", "sum"], columns=["x"])
    bundles = bundles_for(cast, tables, "b1", ("x",))
    victim = cast.providers[1].did
    raw = bytearray(bundles[victim][2])
    pos = raw.index(b'"ciphertext":"') + 30
    raw[pos] = ord("A") if raw[pos] != ord("A") else ord("B")
    tampered = {**bundles, victim: bundles[victim][:2] + [bytes(raw)]}
    with pytest.raises(BundleRefused) as err:
        run(cast, spec, tampered, tmp_path, "b1")
    assert err.value.node == 2 and err.value.provider == victim
    forged = share_inputs({"x": tables[1]["x"]}, cast.keys, cast.stranger, "b2")   # sealed by another DID
    bundles = bundles_for(cast, tables, "b2", ("x",))
    with pytest.raises(BundleRefused, match="expected"):
        run(cast, spec, {**bundles, victim: forged}, tmp_path, "b2")
    assert no_node_left(tmp_path, "b2")


def test_node_killed_mid_run_fails_cleanly_and_rerun_succeeds(cast, tables, tmp_path: Path) -> None:
    spec = JointSpec(["count", "mean", "stddev", "median", "percentiles"], columns=["x"], percentiles=[5, 95])
    bundles = bundles_for(cast, tables, "f1", ("x",))
    caught: list[BaseException] = []

    def coordinator() -> None:
        try:
            run(cast, spec, bundles, tmp_path, "f1", timeout=30)
        except BaseException as exc:      # noqa: BLE001 - handed to the test thread
            caught.append(exc)

    th = threading.Thread(target=coordinator)
    started = time.time()
    th.start()
    marker = tmp_path / "f1" / "node1.started"
    while not marker.exists():
        assert time.time() - started < 20, "node 1 never connected"
        time.sleep(0.01)
    os.kill(int((tmp_path / "f1" / "node1.pid").read_text()), signal.SIGKILL)
    th.join(timeout=15)
    assert not th.is_alive() and time.time() - started < 25
    assert len(caught) == 1 and isinstance(caught[0], MpcNodeLost), caught
    assert caught[0].node == 1 and caught[0].did == cast.nodes[1].did and "SIGKILL" in str(caught[0])
    assert no_node_left(tmp_path, "f1") and not list((tmp_path / "f1").glob("node*.out"))
    _, res = run(cast, spec, bundles, tmp_path, "f1")                              # the rerun
    x = np.concatenate([t["x"] for t in tables])
    assert res["median"]["x"] == pytest.approx(statistics.median(x), abs=TOL)
