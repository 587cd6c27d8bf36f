"""MQTT streams (000 §9.2.1) with paho-mqtt 2.x: QoS 1, a persistent session, manual acks.

The consumer connects with a fixed client id and ``clean_session=False`` and subscribes in
``on_connect`` (so a reconnect re-subscribes); the broker keeps queuing while it is away.
Messages (a JSON object, or a JSON array of objects) are gathered into micro-batches of at
most ``batch_rows`` rows or ``batch_seconds``; each batch is typed, cleaned, scored, encrypted
and committed as a version together with the keys of its messages, and only *then* is each
message acknowledged (``manual_ack``). A crash before the commit loses nothing (the broker
re-delivers); a crash between commit and ack re-delivers messages whose keys are already
committed, which are dropped and acknowledged: at-least-once delivery, exactly-once effect.
A message's key is the ``key`` field when the source names one, else SHA-256 of topic and
payload (identical payloads on one topic then count as one message). Messages received over
an earlier connection are committed but not acked (their packet ids are stale); their
re-delivery is recognised by key and acked."""
from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from offchain.sources.errors import SourceConfigError
from offchain.sources.monitor import Backoff, SourceMonitor
from offchain.sources.pipeline import Appender, BatchResult
from offchain.sources.spec import SourceSpec
from offchain.sources.state import Quarantined


@dataclass
class _Msg:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received: float


@dataclass
class StreamStats:
    messages: int = 0
    rows: int = 0
    duplicates: int = 0
    quarantined: int = 0
    versions: int = 0


def broker_address(url: str) -> tuple[str, int]:
    u = urlparse(url if "://" in url else f"mqtt://{url}")
    if u.scheme not in ("mqtt", "tcp"):
        raise SourceConfigError("?", "--url", f"{url!r}: use mqtt://HOST:PORT")
    return u.hostname or "127.0.0.1", u.port or 1883


def message_key(topic: str, payload: bytes, doc: Any, key_field: str | None) -> str:
    if key_field and isinstance(doc, dict) and doc.get(key_field) is not None:
        return f"k:{doc[key_field]}"
    return "h:" + hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()


class MqttSource:
    """Consumes one MQTT source into its :class:`Appender`."""

    def __init__(self, spec: SourceSpec, appender: Appender, monitor: SourceMonitor,
                 backoff: Backoff = Backoff(), progress: Callable[[int], None] | None = None,
                 batch_rows: int | None = None) -> None:
        if spec.kind != "mqtt" or not spec.topic:
            raise SourceConfigError(spec.name, "--kind", "not an MQTT source with a topic")
        self.spec, self.appender, self.monitor, self.backoff = spec, appender, monitor, backoff
        self.progress = progress or (lambda n: None)
        self.batch_rows = batch_rows or min(spec.batch_rows, 5000)
        self._q: "queue.Queue[_Msg]" = queue.Queue()
        self._generation = 0
        self._connected = threading.Event()
        self.client: mqtt.Client | None = None
        self._stopping = False
        self._url = spec.url
        self.stats = StreamStats()

    @property
    def client_id(self) -> str:
        return f"tds-source-{self.spec.name}"

    # connection ------------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            return
        self._generation += 1
        client.subscribe(self.spec.topic, qos=1)
        self._connected.set()
        self.monitor.connected(self.spec.name, self._url, standby=self._url != self.spec.url)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()
        if self._stopping:
            return
        self.monitor.failed(self.spec.name, self._url, ConnectionError(f"broker disconnected: {reason}"))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._q.put(_Msg(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation, time.time()))

    def _connect(self, url: str) -> mqtt.Client:
        host, port = broker_address(url)
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False,
                        manual_ack=True, protocol=mqtt.MQTTv311)
        c.on_connect, c.on_disconnect, c.on_message = self._on_connect, self._on_disconnect, self._on_message
        c.reconnect_delay_set(0.1, 5)
        c.max_inflight_messages_set(1000)
        c.connect(host, port, keepalive=30)
        c.loop_start()
        if not self._connected.wait(10):
            c.loop_stop()
            c.disconnect()
            raise ConnectionError(f"no CONNACK from {url}")
        return c

    def start(self) -> None:
        """Connect (primary, then standby) with backoff; subscriptions follow in on_connect."""
        def go(url: str) -> mqtt.Client:
            self._url = url
            return self._connect(url)
        self._stopping = False
        self.client = self.monitor.call(self.spec.name, self.spec.urls(), go, self.backoff)

    def stop(self) -> None:
        if self.client is not None:
            self._stopping = True
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None

    # batches ---------------------------------------------------------------------------------
    def _gather(self, deadline: float) -> list[_Msg]:
        msgs: list[_Msg] = []
        rows = 0
        while rows < self.batch_rows:
            timeout = deadline - time.time() if msgs else max(0.0, deadline - time.time())
            try:
                m = self._q.get(timeout=max(0.0, timeout))
            except queue.Empty:
                break
            msgs.append(m)
            rows += 1 if not m.payload.startswith(b"[") else max(1, m.payload.count(b"{"))
            if msgs and time.time() >= deadline:
                break
        return msgs

    def process(self, msgs: list[_Msg]) -> BatchResult | None:
        """Commit one micro-batch, then acknowledge its messages."""
        records: list[Any] = []
        origins: list[str] = []
        keys: list[str] = []
        bad: list[Quarantined] = []
        docs = []
        for m in msgs:
            try:
                doc: Any = json.loads(m.payload)
            except (ValueError, UnicodeDecodeError) as exc:
                doc, err = None, exc
            else:
                err = None
            docs.append((m, doc, err, message_key(m.topic, m.payload, doc, self.spec.key)))
        seen = self.appender.state.has_seen(self.spec.name, {k for *_, k in docs})
        batch_keys: set[str] = set()
        for m, doc, err, key in docs:
            if key in seen or key in batch_keys:
                self.stats.duplicates += 1
                continue
            batch_keys.add(key)
            keys.append(key)
            origin = f"{m.topic}#{key[:18]}"
            if err is not None:
                bad.append(Quarantined(origin, m.payload.decode("utf-8", "replace")[:2000], f"malformed JSON: {err}"))
            elif isinstance(doc, list):
                records += doc
                origins += [f"{origin}[{i}]" for i in range(len(doc))]
            else:
                records.append(doc)
                origins.append(origin)
        result = None
        if keys:
            started = min(m.received for m in msgs)
            result = self.appender.append(records, origins, keys=keys, quarantined=bad, started=started)
            self.stats.rows += result.rows
            self.stats.quarantined += result.quarantined
            self.stats.versions += result.version is not None
        self.stats.messages += len(msgs)
        client = self.client
        if client is not None:
            for m in msgs:
                if m.generation == self._generation and m.qos > 0:
                    client.ack(m.mid, m.qos)
        self.progress(self.stats.rows)
        return result

    def run(self, *, stop: threading.Event | None = None, max_messages: int | None = None,
            idle_timeout: float | None = None) -> StreamStats:
        """Consume until ``stop`` is set, ``max_messages`` were handled, or nothing arrived for
        ``idle_timeout`` seconds."""
        if self.client is None:
            self.start()
        last = time.time()
        while not (stop and stop.is_set()):
            if max_messages is not None and self.stats.messages - self.stats.duplicates >= max_messages:
                break
            msgs = self._gather(time.time() + self.spec.batch_seconds)
            if not msgs:
                if idle_timeout is not None and time.time() - last > idle_timeout:
                    break
                continue
            last = time.time()
            self.process(msgs)
        return self.stats


def register_session(spec: SourceSpec, timeout: float = 10) -> None:
    """Create the source's persistent session on the broker (subscribe once), so messages
    published before the first sync are queued for it rather than dropped."""
    host, port = broker_address(spec.url)
    done = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"tds-source-{spec.name}", clean_session=False,
                    manual_ack=True, protocol=mqtt.MQTTv311)
    c.on_connect = lambda cl, u, f, r, p: cl.subscribe(spec.topic, qos=1)
    c.on_subscribe = lambda cl, u, mid, codes, p: done.set()
    c.connect(host, port, keepalive=30)
    c.loop_start()
    try:
        if not done.wait(timeout):
            raise ConnectionError(f"could not subscribe at {spec.url}")
    finally:
        c.disconnect()
        c.loop_stop()
