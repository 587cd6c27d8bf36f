"""Live-source alerts (offchain/sources' alerts.jsonl) raised through the monitor: each line the
source monitor writes becomes one alert — in the anchored alert log and notified by webhook —
exactly once across a restart, and ``--discover`` finds the file under TDS_HOME."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chain import Space
from chain.accounts import dev_account
from chain.config import Settings
from offchain.sources.monitor import SourceMonitor
from offchain.sources.state import SourceState
from oversight.actions import WebhookNotifier
from oversight.monitor import Monitor, MonitorOptions
from oversight.rules import parse_rules
from oversight.source_alerts import discover_source_alerts, read_source_alerts
from tests.oversight.conftest import Receiver
from tests.support.chains import deployed_on

NO_RULES = "version: 1\nrules: []\n"


@pytest.fixture(scope="module")
def chain_env(embedded_node: Any, session_settings: Settings, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Settings, Space, Path]:
    """The system deployed afresh on the session's anvil, with this module's own home and deployment file."""
    return deployed_on(embedded_node.url, session_settings, tmp_path_factory.mktemp("source-alerts"))


def test_source_alerts_flow_through_the_monitor(chain_env: tuple[Settings, Space, Path]) -> None:
    settings, space, tmp = chain_env
    alerts_file = settings.sources_dir / "alerts.jsonl"
    sources = SourceMonitor(SourceState(settings.sources_dir / "state.sqlite"), alerts_file)
    sources.alert("plant-db", "connection_lost", 5, "connection refused on every URL")
    sources.alert("sensors", "quality_drift", 1, "overall 0.71, recent mean 0.93")
    assert discover_source_alerts(settings) == [alerts_file]
    receiver = Receiver()

    def monitor() -> Monitor:
        return Monitor(space.w3, space.deployment, dev_account(2), "did:key:monitor", parse_rules(NO_RULES),
                       tmp / "monitor", [WebhookNotifier(receiver.url)],
                       MonitorOptions(confirmations=0, source_alerts=(alerts_file,),
                                      start_block=space.w3.eth.block_number))
    try:
        mon = monitor()
        raised = mon.step().alerts
        assert [(a.rule, a.subject, a.severity, a.grants) for a in raised] == [
            ("source-connection_lost", "source:plant-db", "severe", ()),
            ("source-quality_drift", "source:sensors", "warning", ())]
        assert "connection refused on every URL" in raised[0].detail
        assert [a.id for a in mon.alert_log.alerts()] == [a.id for a in raised]   # the anchored alert log
        assert receiver.alert_ids() == [a.id for a in raised]                      # notified
        mon.close()

        mon = monitor()                                                            # a restart reads on
        assert mon.step().alerts == []
        sources.alert("plant-db", "failover", 1, "reading the standby")
        [again] = mon.step().alerts
        assert (again.rule, again.severity) == ("source-failover", "info")
        assert len(mon.alert_log.alerts()) == 3 and receiver.alert_ids()[-1] == again.id
        mon.close()
    finally:
        receiver.server.shutdown()


def test_monitor_run_discovers_the_alert_file(chain_env: tuple[Settings, Space, Path], embedded_node: Any) -> None:
    """``tds monitor run --discover`` finds the sources' alerts.jsonl under TDS_HOME and raises its lines."""
    from click.testing import CliRunner

    from did.identity import Identity
    from tds.cli import cli

    settings, _, tmp = chain_env
    Identity.create("monitor", dev_account(2)).save(settings.home / "identities", "pw", scrypt_n=2**10)
    rules = tmp / "no-rules.yaml"
    rules.write_text(NO_RULES)
    env = {"TDS_HOME": str(settings.home), "TDS_RPC_URL": embedded_node.url,
           "TDS_CHAIN_ID": None, "TDS_DEPLOYMENT": str(settings.deployment_file), "TDS_INDEX_URL": None,
           "TDS_IPFS_API": None, "PW": "pw"}
    r = CliRunner().invoke(cli, ["monitor", "run", "monitor", "--password-env", "PW", "--rules", str(rules),
                                 "--discover", "--from-chain", "--once", "--confirmations", "0"], env=env)
    assert r.exit_code == 0, (r.output, r.exception)
    assert "1 source alert file(s)" in r.output
    assert "source-connection_lost [severe] source:plant-db" in r.output and "source-failover [info]" in r.output


def test_a_partial_or_foreign_line_is_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b'not json\n{"source": "a", "kind": "sync_lag", "count": 3, "time": 1.0}\n{"source": "b"')
    alerts, offset = read_source_alerts(path, None)
    assert [(a.rule, a.severity) for a in alerts] == [("source-sync_lag", "warning")]
    assert offset == path.read_bytes().rfind(b"\n") + 1                            # the half-written line waits
    assert read_source_alerts(path, offset) == ([], offset)
    again, _ = read_source_alerts(path, None)
    assert [a.id for a in again] == [a.id for a in alerts]                         # same line, same id
