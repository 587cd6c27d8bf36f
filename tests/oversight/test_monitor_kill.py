"""A monitor process SIGKILLed right after its freeze was mined (before its journal knew), then
``tds monitor run NAME --once`` restarted from the journal: one alert, one freeze, every
notification delivered."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from oversight.alerts import AlertLog

BURST = """version: 1
rules:
  - {id: burst, kind: burst, severity: severe, actions: [notify, freeze], reason_code: 0xA001,
     params: {per: grant, max_events: 5, window_s: 60}}
"""

CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    from chain.accounts import dev_account
    from chain.connection import connect
    from chain.config import load_settings
    from chain.deploy import read_deployment
    from oversight.actions import WebhookNotifier
    from oversight.monitor import Monitor, MonitorOptions, work_dir
    from oversight.rules import load_rules

    args = json.loads(sys.argv[1])
    settings = load_settings()
    w3 = connect(settings)
    doc = read_deployment(settings.deployment_path(w3.eth.chain_id), w3.eth.chain_id)
    folder = work_dir(settings, w3.eth.chain_id, doc["contracts"]["Authorizations"]["address"])

    def crash(point):
        if point == "frozen":                     # the freeze is mined; the journal does not know yet
            os.kill(os.getpid(), signal.SIGKILL)

    mon = Monitor(w3, doc, dev_account(2), args["did"], load_rules(Path(args["rules"])), folder,
                  [WebhookNotifier(args["webhook"])],
                  MonitorOptions(confirmations=1, poll_s=0.05, start_block=args["start"]), crash=crash)
    mon.run(once=True)
""")


def test_sigkill_after_the_freeze_then_cli_restart(env, tmp_path):
    home = tmp_path / "home"                       # a monitor home of its own (journal, alert log)
    env.monitor.save(home / "identities", "pw", scrypt_n=2**10)
    rules = tmp_path / "rules.yaml"
    rules.write_text(BURST)
    start = env.w3.eth.block_number + 1
    grant = env.fresh_grant("sigkill")
    for _ in range(6):
        env.request(grant)
    env.mine()
    variables = {k: v for k, v in {**os.environ, **env.vars, "TDS_HOME": str(home),
                                   "TDS_KEYSTORE_PASSWORD": "pw"}.items() if v is not None}
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(
        {"did": env.monitor.did, "rules": str(rules), "webhook": env.receiver.url, "start": start})],
        env=variables, cwd=env.settings.project_root, capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert len(env.freezes_on_chain(grant)) == 1 and env.frozen_by(grant) == 2
    assert env.receiver.bodies == [] or all(b["subject"] != f"grant:{grant}" for b in env.receiver.bodies)

    cli = subprocess.run([sys.executable, "-c", "from tds.cli import main; main()", "monitor", "run", "monitor", "--once", "--rules",
                          str(rules), "--webhook", env.receiver.url, "--poll", "0.05"],
                         env=variables, cwd=env.settings.project_root, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert "0 freezes sent" in cli.stderr                  # the restart found the freeze on chain
    folder = home / "oversight" / env.folder.name
    (alert,) = AlertLog(folder / "alerts", "", "").alerts()
    assert alert.subject == f"grant:{grant}"
    assert len(env.freezes_on_chain(grant)) == 1
    assert [b["id"] for b in env.receiver.bodies].count(alert.id) == 1
    (freeze,) = AlertLog(folder / "alerts", "", "").freezes()
    assert freeze["outcome"] == "already-frozen" and freeze["tx"] == env.freezes_on_chain(grant)[0][
        "transactionHash"].to_0x_hex()
