"""Access records written by the services themselves and read by the monitor: the key service's
real HTTP requests trip ``network_region`` through the record it wrote (and a rule allowing
loopback stays quiet); the gateway's records name status and refusal code; the log is bounded by
rotation and the monitor's tail reads every record exactly once across rotations."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from chain import Space
from chain.accounts import dev_account
from chain.config import Settings
from chain.node import free_port
from did.bound_http import BoundHttpClient
from did.identity import Identity
from did.registry import IdentityRegistryClient
from offchain.keyservice.access_log import AccessLog, rotated_segments
from oversight.access_logs import AccessLogTail, discover_access_logs
from oversight.monitor import Monitor, MonitorOptions
from oversight.rules import parse_rules
from tests.support.chains import deployed_on

RULES = """
version: 1
rules:
  - id: region
    kind: network_region
    severity: severe
    actions: [notify]
    params: {allowed: [%s]}
"""
JOB = (7 << 32) | 1          # grant 7, use 1


def _serve(app: Any) -> tuple[Any, str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def chain_env(embedded_node: Any, session_settings: Settings, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Settings, Space, Path]:
    """The system deployed afresh on the session's anvil, with this module's own home and deployment file."""
    return deployed_on(embedded_node.url, session_settings, tmp_path_factory.mktemp("access-log"))


def _monitor(space: Space, folder: Path, allowed: str, logs: tuple[Path, ...]) -> Monitor:
    return Monitor(space.w3, space.deployment, dev_account(2), "did:key:monitor", parse_rules(RULES % allowed),
                   folder, [], MonitorOptions(confirmations=0, poll_s=0.05, access_logs=logs, anchor=False,
                                              start_block=space.w3.eth.block_number))


def test_key_service_request_trips_network_region(chain_env: tuple[Settings, Space, Path]) -> None:
    from offchain.keyservice.service import build_key_service
    from offchain.onion.keys import Keyring
    from offchain.store.client import open_store

    settings, space, tmp = chain_env
    built = build_key_service(settings, space.w3, Identity.create("provider", dev_account(3)), Keyring(),
                              open_store(settings.home))
    server, base = _serve(built.app)
    stranger = Identity.create("stranger", dev_account(4))      # bound, but no COMPUTE_PROVIDER role
    IdentityRegistryClient(space.w3, space.c["IdentityRegistry"]).bind(stranger)
    try:
        assert httpx.get(f"{base}/v1/health").status_code == 200
        refused = httpx.post(f"{base}/v1/jobs/{JOB}/prepare", json={})
        assert refused.status_code == 401
        assert BoundHttpClient(base, stranger).post(f"/v1/jobs/{JOB}/prepare", {}).status_code == 403
    finally:
        server.should_exit = True
    built.app.state.access_log.flush()
    [path] = discover_access_logs(settings)                      # $TDS_HOME/provider/<chain>-<jobs>/access.jsonl
    written = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["client_ip"], r["status"], r["job"], r["grant"], r["error"]) for r in written] == [
        ("127.0.0.1", 200, None, None, None), ("127.0.0.1", 401, JOB, 7, "AuthenticationRequired"),
        ("127.0.0.1", 200, None, None, None),                   # the client's GET /v1/challenge
        ("127.0.0.1", 403, JOB, 7, "RoleMismatch")]
    assert (written[3]["did"], written[3]["account"], written[3]["consumer"]) == (stranger.did, stranger.address, None)
    assert written[1]["did"] is None

    outside = _monitor(space, tmp / "mon-outside", '"10.0.0.0/8"', (path,))
    alerts = outside.step().alerts
    assert {a.rule for a in alerts} == {"region"} and len(alerts) == 2  # one per subject (cool-down per subject)
    assert {a.evidence for a in alerts} == {(f"log:{written[0]['id']}",), (f"log:{written[1]['id']}",)}
    assert any(a.subject == "grant:7" and "access from 127.0.0.1" in a.detail for a in alerts)
    assert outside.step().alerts == []                           # each record once
    outside.close()

    inside = _monitor(space, tmp / "mon-inside", '"10.0.0.0/8", "127.0.0.0/8"', (path,))
    assert inside.step().alerts == []
    inside.close()


def test_gateway_records_status_and_refusal(chain_env: tuple[Settings, Space, Path]) -> None:
    from tds.gateway import create_app
    from tds.gateway.access_log import gateway_access_log, install_access_log

    settings, _, _ = chain_env
    app = create_app(settings)                                   # no guard: the write side answers 503
    log = install_access_log(app, gateway_access_log(settings))
    server, base = _serve(app)
    try:
        assert httpx.get(f"{base}/auditor").status_code == 200
        assert httpx.get(f"{base}/auth/challenge").status_code == 503
    finally:
        server.should_exit = True
    log.flush()
    records, _ = AccessLogTail(gateway_access_log(settings)).read(None)
    assert [(r.source, r.path, r.status, r.error, r.client_ip) for r in records] == [
        ("gateway", "/auditor", 200, None, "127.0.0.1"), ("gateway", "/auth/challenge", 503, "authentication-off",
                                                          "127.0.0.1")]
    assert gateway_access_log(settings) in discover_access_logs(settings)


def test_rotation_bounds_the_log_and_the_tail_reads_each_record_once(tmp_path: Path) -> None:
    path = tmp_path / "access.jsonl"
    log = AccessLog(path, "keyservice", max_bytes=800, keep=3, flush_s=60)
    tail, pos, seen = AccessLogTail(path), None, []
    for batch in range(12):
        for use in (1, 2):
            log.add(time.time(), "10.1.2.3", "POST", f"/v1/jobs/{(batch << 32) | use}/prepare", 409, None, None,
                    "GrantRefused")
        log.flush()
        if batch % 3 == 2:                                       # the monitor polls now and then
            got, pos = tail.read(pos)
            seen += got
    got, pos = tail.read(pos)
    seen += got
    log.close()
    assert [int(r.id.rsplit("-", 1)[1]) for r in seen] == list(range(1, 25))   # every record once, in order
    assert [(r.grant, r.job & 0xFFFFFFFF, r.error) for r in seen[:2]] == [(0, 1, "GrantRefused"), (0, 2, "GrantRefused")]
    assert 1 <= len(rotated_segments(path)) <= 3                 # bounded: the oldest rotated files are gone
    assert sum(p.stat().st_size for _, p in rotated_segments(path)) + path.stat().st_size <= 800 * 4
    kept, _ = AccessLogTail(path).read(None)                     # a new reader starts from what is kept
    assert 0 < len(kept) < 24 and kept[-1].id == seen[-1].id
