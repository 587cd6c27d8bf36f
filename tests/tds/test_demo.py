"""The main job runs end to end on a private chain and every step verifies."""
from __future__ import annotations

from chain.node import EmbeddedNode
from tds.demo import run_demo


def test_demo_lifecycle_verifies(tmp_settings):
    node = EmbeddedNode(tmp_settings)
    node.up(fresh=True)
    try:
        lines: list[str] = []
        rep = run_demo(tmp_settings, say=lines.append, rows=120)
    finally:
        node.down()
    failed = [s for s in rep.steps if not s["ok"]]
    assert not failed, failed
    names = [s["step"] for s in rep.steps]
    for step in ("identities", "register sales", "authorize", "job range SUM", "job GROUP BY COUNT",
                 "job JOIN across assets refused",
                 "withdraw", "close", "anchor log batch"):
        assert step in names
    assert any("answer matches the plaintext" in line for line in lines)
