"""MQTT streams against a real Mosquitto broker (Debian binary, private config and port):
every published message is ingested exactly once across a broker restart and across a
consumer that crashes after committing a batch but before acknowledging it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from offchain.sources.mqtt import register_session
from offchain.sources.spec import SourceSpec
from tests.offchain.sources.readback import head_manifest, open_column
from tests.support.mosquitto import mosquitto_bin, start_mosquitto

SCHEMA = {"name": "plant", "fields": [
    {"name": "id", "type": "identifier", "nullable": False},
    {"name": "sensor", "type": "string"},
    {"name": "temp", "type": "decimal", "decimals": 2, "minimum": "-50", "maximum": "150"}]}
ONIONS = {"temp": ["eq", "ord"]}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if mosquitto_bin() is None:
        pytest.skip("mosquitto missing (make mosquitto)")
    b = start_mosquitto(tmp_path_factory.mktemp("mqtt"))
    yield b
    b.stop()


def publish(url: str, items: list, topic: str = "plant/a/readings") -> None:
    """Publish each item (dict → JSON, bytes as is) with QoS 1 and wait for the broker's PUBACKs."""
    host, port = url.split("//")[1].split(":")
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.time_ns()}", protocol=mqtt.MQTTv311)
    c.connect(host, int(port))
    c.loop_start()
    infos = [c.publish(topic, it if isinstance(it, bytes) else json.dumps(it), qos=1) for it in items]
    for info in infos:
        info.wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def readings(lo: int, hi: int) -> list[dict]:
    return [{"id": i, "sensor": f"s{i % 5}", "temp": round(20 + (i % 300) / 10, 2)} for i in range(lo, hi)]


def wait_rows(runner, name: str, rows: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while runner.state.head(name).rows < rows:
        assert time.time() < deadline, f"only {runner.state.head(name).rows} of {rows} rows arrived"
        time.sleep(0.1)


def test_exactly_once_across_broker_restart(broker, make_runner, store, keys):
    spec = SourceSpec("plant", "mqtt", broker.url, topic="plant/+/readings", key="id", schema=SCHEMA,
                      onions=ONIONS, batch_rows=100, batch_seconds=0.3)
    r = make_runner()
    r.state.add(spec)
    register_session(spec)                      # queued from now on, even before the first sync
    publish(broker.url, readings(0, 300) + [b"{not json", {"id": 9999, "sensor": "s", "temp": "hot"}])
    conn = r.connector(spec)
    stop = threading.Event()
    worker = threading.Thread(target=conn.run, kwargs={"stop": stop})
    worker.start()
    try:
        wait_rows(r, "plant", 100)
        broker.restart()                        # sessions and queued messages persist across it
        publish(broker.url, readings(300, 600))
        publish(broker.url, readings(250, 260))  # the publisher's own retries: same ids again
        wait_rows(r, "plant", 600)
        time.sleep(0.5)
    finally:
        stop.set()
        worker.join(10)
        conn.stop()
    ids = open_column(head_manifest(r, store, "plant"), keys, store.cat, "id")
    assert sorted(map(int, ids)) == list(range(600))
    reasons = sorted(q["reason"] for q in r.state.quarantine("plant"))
    assert len(reasons) == 2 and reasons[0].startswith("malformed JSON") and "not a valid decimal" in reasons[1]
    assert conn.stats.duplicates >= 10
    assert r.state.status("plant")["connection"] == "connected"


CRASHING_CONSUMER = """
import os, sys, warnings
warnings.simplefilter("ignore")
from pathlib import Path
from offchain.onion.keystore import Keystore
from offchain.sources import mqtt as M
from offchain.sources.runner import SourceHome, SourceRunner
from offchain.store.client import EmbeddedStore
tmp = Path(sys.argv[1])
original = M.MqttSource.process
def process(self, msgs):
    self.client.ack = lambda mid, qos: os._exit(17)   # commit the batch, then die before any PUBACK
    return original(self, msgs)
M.MqttSource.process = process
store = EmbeddedStore(tmp / "ipfs")
runner = SourceRunner(SourceHome(tmp / "sources"), Keystore.open(tmp / "keys.json", "pw"), store.add_bytes, store.cat)
runner.connector(runner.state.spec("crashy")).run(idle_timeout=20)
sys.exit(3)
"""


def test_exactly_once_across_consumer_crash(broker, make_runner, store, keys, tmp_path):
    spec = SourceSpec("crashy", "mqtt", broker.url, topic="plant/b/readings", key="id", schema=SCHEMA,
                      onions=ONIONS, batch_rows=150, batch_seconds=0.5)
    r = make_runner()
    r.state.add(spec)
    register_session(spec)
    publish(broker.url, readings(0, 400), topic="plant/b/readings")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    proc = subprocess.run([sys.executable, "-c", CRASHING_CONSUMER, str(tmp_path)], env=env, timeout=60,
                          capture_output=True, text=True)
    assert proc.returncode == 17, proc.stderr[-2000:]
    committed = r.state.head("crashy").rows
    assert 0 < committed < 400                   # one batch committed, none acknowledged
    conn = r.connector(spec)
    try:
        stats = conn.run(idle_timeout=2.0)
    finally:
        conn.stop()
    assert stats.duplicates >= committed         # the re-delivered, already committed messages
    ids = open_column(head_manifest(r, store, "crashy"), keys, store.cat, "id")
    assert sorted(map(int, ids)) == list(range(400))
