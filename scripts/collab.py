"""Collaboration step (multi-party, after scripts/deploy.py): three banks, three compute nodes and a
consumer join the deployment; the consumer submits a collaboration description (PSI over the
banks' customer ids → joint statistics of the matched customers' balances → a dependent statistic),
the coordinating compute node runs every step, and the consumer opens the sealed outputs.

    brownie run scripts/collab.py --network tds-anvil

On a development network the participants are fresh accounts funded by accounts[0] (the operator);
the same steps on another network go through ``tds collab validate|submit|status|result``
with each participant's own identity."""
from __future__ import annotations

from ._common import Step, fail, is_development


def main() -> dict:
    if not is_development():
        fail("scripts/collab.py builds its own participants on a development network; elsewhere use "
             "'tds collab validate|submit FILE' with the participants' identities")
    step = Step("collab", fresh_state=True)
    from tds.demo_collab import run_collab_section

    results: list[dict] = []

    def record(name: str, ok: bool = True, **detail) -> None:
        results.append({"step": name, "ok": ok, **detail})

    run_collab_section(step.space, step.store, step.work / "collab", record, step.say)
    ok = bool(results) and all(r["ok"] for r in results)
    step.state["collab"] = {"ok": ok, "steps": results}
    step.done(ok=ok)
    if not ok:
        fail("the collaboration did not verify: " + "; ".join(r["step"] for r in results if not r["ok"]))
    step.say("collaboration verified: the consumer's answers equal the plaintext answers")
    return step.state["collab"]
