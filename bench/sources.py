"""Live-source benchmark: MQTT ingest, PostgreSQL full and incremental sync, SM4/AES-GCM.

    python -m bench.sources [--json] [--pg-rows 1000000] [--mqtt-msgs 20000] [--processes 2]
                            [--hom] [--pg-url URL] [--mqtt-url URL]

* ``mqtt_rows_per_s``: rows received from a Mosquitto broker (QoS 1, manual acks), typed,
  cleaned, scored, onion-encrypted, stored and committed as versions, per second (target ≥ 5,000).
  Baseline beside it: the broker→client delivery rate alone (paho, QoS 1, no processing).
* ``pg_sync_s``: full sync of ``--pg-rows`` rows from PostgreSQL (target: 1,000,000 ≤ 60 s);
  ``pg_incremental_s``: 10,000 new rows appended by watermark. Baseline: reading the same
  rows through SQLAlchemy alone. The per-stage split (read / type+quality / encrypt / store)
  says which layer bounds the sync.
* ``sm4_mb_per_s`` / ``aes_mb_per_s``: SM4-GCM and AES-256-GCM over 64 KiB chunks with
  ``cryptography``; each with the other (and ChaCha20-Poly1305) as baseline.

The default policy here puts the measure on ``eq`` + ``ord`` (no per-row Paillier); ``--hom``
adds the HOM onion and shows what per-row Paillier costs. Without ``--pg-url`` / ``--mqtt-url``
private servers are started from Debian's binaries (as the tests do). Table on stderr; with
``--json`` one JSON object on stdout."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

SCHEMA = {"name": "meter", "fields": [
    {"name": "id", "type": "identifier", "nullable": False},
    {"name": "device", "type": "string"},
    {"name": "ts", "type": "integer", "role": "timestamp", "minimum": 0, "maximum": 4_000_000_000},
    {"name": "value", "type": "decimal", "decimals": 1, "minimum": "0", "maximum": "100000"}]}


def onions(hom: bool) -> dict:
    return {"value": ["eq", "ord", "hom"] if hom else ["eq", "ord"], "ts": ["ord"]}


# --- symmetric ciphers -----------------------------------------------------------------------
def bench_ciphers(mib: int = 64) -> dict:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    chunk, n = os.urandom(64 * 1024), mib * 16

    def rate(fn: Callable[[bytes, bytes], Any]) -> float:
        fn(chunk, os.urandom(12))
        t = time.perf_counter()
        for _ in range(n):
            fn(chunk, os.urandom(12))
        return mib / (time.perf_counter() - t)

    sm4_key, aes_key = os.urandom(16), os.urandom(32)

    def sm4(data: bytes, nonce: bytes) -> bytes:
        enc = Cipher(algorithms.SM4(sm4_key), modes.GCM(nonce)).encryptor()
        return enc.update(data) + enc.finalize() + enc.tag

    def aes_cipher(data: bytes, nonce: bytes) -> bytes:   # same streaming API as SM4, for a fair ratio
        enc = Cipher(algorithms.AES(aes_key), modes.GCM(nonce)).encryptor()
        return enc.update(data) + enc.finalize() + enc.tag

    aead, chacha = AESGCM(aes_key), ChaCha20Poly1305(os.urandom(32))
    return {"sm4_gcm": rate(sm4), "aes_gcm_cipher": rate(aes_cipher),
            "aes_gcm": rate(lambda d, nn: aead.encrypt(nn, d, None)),
            "chacha20_poly1305": rate(lambda d, nn: chacha.encrypt(nn, d, None))}


def bench_layers(n: int = 20_000) -> dict:
    """Microseconds per value of each layer the sources' policy uses (which one bounds a sync)."""
    from offchain.onion import keys as K
    vals = list(range(1_700_000_000, 1_700_000_000 + n))
    det, order, rnd = K.new_det(), K.new_order(48), K.new_rnd()
    out = {}
    t = time.perf_counter()
    cts = det.encrypt_many(vals, "c")
    out["det_us"] = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    order.encrypt_many(vals, "c")
    out["ord_us"] = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    rnd.seal(b"".join(cts), b"h")
    out["rnd_us"] = (time.perf_counter() - t) / n * 1e6
    hom = K.new_hom()
    hom.encrypt(1)
    t = time.perf_counter()
    for v in vals[:300]:
        hom.encrypt(v)
    out["hom_us"] = (time.perf_counter() - t) / 300 * 1e6
    return out


# --- shared pieces ---------------------------------------------------------------------------
class Timed:
    """Wall time spent in named Appender stages (monkey-patched wrappers)."""

    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    def wrap(self, obj: Any, name: str, label: str) -> None:
        fn = getattr(obj, name)

        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.t[label] = self.t.get(label, 0.0) + time.perf_counter() - t0
        setattr(obj, name, timed)


def make_runner(folder: Path, processes: int) -> tuple[Any, Timed]:
    from offchain.onion.keystore import Keystore
    from offchain.sources.runner import SourceHome, SourceRunner
    from offchain.store.client import EmbeddedStore
    store = EmbeddedStore(folder / "ipfs")
    timed = Timed()
    add = store.add_bytes

    def add_bytes(b: bytes) -> str:
        t0 = time.perf_counter()
        try:
            return add(b)
        finally:
            timed.t["store"] = timed.t.get("store", 0.0) + time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keys = Keystore.create(folder / "keys.json", "bench", scrypt_n=2 ** 10)
    runner = SourceRunner(SourceHome(folder / "sources"), keys, add_bytes, store.cat, processes=processes)
    return runner, timed


def instrument(appender: Any, timed: Timed) -> Callable[[], None]:
    """Time the pipeline's stages; returns the function that removes the wrappers."""
    import offchain.sources.pipeline as P
    timed.wrap(appender, "prepare", "type+clean")
    orig_encrypt = P.encrypt_table
    orig_assess = P.assess

    def enc(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return orig_encrypt(*a, **kw)
        finally:
            timed.t["encrypt"] = timed.t.get("encrypt", 0.0) + time.perf_counter() - t0

    def ass(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return orig_assess(*a, **kw)
        finally:
            timed.t["quality"] = timed.t.get("quality", 0.0) + time.perf_counter() - t0
    P.encrypt_table, P.assess = enc, ass

    def restore() -> None:
        P.encrypt_table, P.assess = orig_encrypt, orig_assess
    return restore


# --- MQTT ------------------------------------------------------------------------------------
def bench_mqtt(url: str, msgs: int, folder: Path, processes: int, hom: bool, log: Callable[[str], None]) -> dict:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from offchain.sources.mqtt import register_session
    from offchain.sources.spec import SourceSpec
    host, port = url.split("//")[1].split(":")

    def publish(topic: str) -> float:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{topic}", protocol=mqtt.MQTTv311)
        c.max_inflight_messages_set(1000)
        c.connect(host, int(port))
        c.loop_start()
        t0 = time.perf_counter()
        infos = [c.publish(topic, json.dumps({"id": i, "device": f"d{i % 50}", "ts": 1_700_000_000 + i,
                                              "value": round((i % 9000) / 10, 1)}), qos=1) for i in range(msgs)]
        for info in infos:
            info.wait_for_publish(60)
        dt = time.perf_counter() - t0
        c.disconnect()
        c.loop_stop()
        return dt

    # baseline: delivery alone (persistent session, QoS 1, auto-ack)
    got = threading.Event()
    count = [0]
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-baseline", clean_session=False,
                      protocol=mqtt.MQTTv311)
    sub.on_connect = lambda c, u, f, r, p: c.subscribe("bench/base", qos=1)

    def on_msg(c: Any, u: Any, m: Any) -> None:
        count[0] += 1
        if count[0] == msgs:
            got.set()
    sub.on_message = on_msg
    sub.connect(host, int(port))
    sub.loop_start()
    time.sleep(0.5)
    sub.loop_stop()
    sub.disconnect()
    log(f"mqtt: publishing {msgs:,} messages twice (queued for persistent sessions) ...")
    publish("bench/base")
    runner, timed = make_runner(folder / "mqtt", processes)
    spec = SourceSpec("mqtt-bench", "mqtt", url, topic="bench/src", key="id", schema=SCHEMA, onions=onions(hom),
                      batch_rows=5000, batch_seconds=0.5)
    runner.state.add(spec)
    register_session(spec)
    publish_s = publish("bench/src")
    sub.connect(host, int(port))
    t0 = time.perf_counter()
    sub.loop_start()
    got.wait(120)
    base_s = time.perf_counter() - t0
    sub.loop_stop()
    sub.disconnect()
    conn = runner.connector(spec)
    restore = instrument(conn.appender, timed)
    log("mqtt: consuming, encrypting, committing ...")
    t0 = time.perf_counter()
    conn.start()
    stats = conn.run(max_messages=msgs)
    dt = time.perf_counter() - t0
    conn.stop()
    restore()
    rows = runner.state.head("mqtt-bench").rows
    runner.close()
    return {"msgs": msgs, "rows": rows, "seconds": dt, "rows_per_s": rows / dt, "versions": stats.versions,
            "delivery_only_msgs_per_s": msgs / base_s, "publish_msgs_per_s": msgs / publish_s,
            "stages_s": timed.t}


# --- PostgreSQL ------------------------------------------------------------------------------
def bench_pg(url: str, rows: int, folder: Path, processes: int, hom: bool, log: Callable[[str], None]) -> dict:
    from sqlalchemy import create_engine, text

    from offchain.sources.spec import SourceSpec
    e = create_engine(url)
    fill = ("SELECT i, 'd' || (i % 50), 1700000000 + i, ((i % 9000) / 10.0)::numeric(10,1) "
            "FROM generate_series({lo}, {hi}) AS i")
    log(f"postgres: loading {rows:,} rows ...")
    with e.begin() as c:
        for t in ("meter", "meter_inc"):
            c.execute(text(f"DROP TABLE IF EXISTS {t}"))
            c.execute(text(f"CREATE TABLE {t} (id bigint PRIMARY KEY, device text, ts bigint, value numeric(10,1))"))
        c.execute(text("INSERT INTO meter " + fill.format(lo=1, hi=rows)))
        c.execute(text("INSERT INTO meter_inc " + fill.format(lo=1, hi=50_000)))
    t0 = time.perf_counter()
    with e.connect() as c:
        n = sum(len(p) for p in c.execution_options(stream_results=True, yield_per=100_000).execute(
            text("SELECT * FROM meter")).mappings().partitions(100_000))
    read_s = time.perf_counter() - t0
    runner, timed = make_runner(folder / "pg", processes)
    runner.state.add(SourceSpec("pg-full", "postgres", url, table="meter", schema=SCHEMA, onions=onions(hom),
                                batch_rows=100_000))
    runner.state.add(SourceSpec("pg-inc", "postgres", url, table="meter_inc", watermark="id", schema=SCHEMA,
                                onions=onions(hom), batch_rows=100_000))
    conn = runner.connector(runner.state.spec("pg-full"))
    restore = instrument(conn.appender, timed)
    conn.progress = lambda k: log(f"  {k:,} rows")
    log("postgres: full sync ...")
    t0 = time.perf_counter()
    conn.sync()
    full_s = time.perf_counter() - t0
    conn.close()
    restore()
    runner.sync_once("pg-inc")
    with e.begin() as c:
        c.execute(text("INSERT INTO meter_inc " + fill.format(lo=50_001, hi=60_000)))
    t0 = time.perf_counter()
    rep = runner.sync_once("pg-inc")
    inc_s = time.perf_counter() - t0
    assert rep.rows == 10_000 and runner.state.head("pg-full").rows == n
    runner.close()
    e.dispose()
    return {"rows": n, "sync_s": full_s, "rows_per_s": n / full_s, "read_only_s": read_s,
            "incremental_rows": rep.rows, "incremental_s": inc_s, "stages_s": timed.t}


def render(r: dict) -> str:
    out = [f"{'measure':46} {'value':>16}  baseline / target"]

    def row(a: str, b: str, c: str = "") -> None:
        out.append(f"{a:46} {b:>16}  {c}")
    c, ly = r["ciphers"], r["layers"]
    row("layer cost per value: DET / order / RND / HOM", f"{ly['det_us']:.0f}/{ly['ord_us']:.0f}/"
        f"{ly['rnd_us']:.2f}/{ly['hom_us']:.0f} us", "policy: " + json.dumps(r["policy"]))
    row("SM4-GCM, 64 KiB chunks", f"{c['sm4_gcm']:.0f} MB/s", f"AES-256-GCM same API {c['aes_gcm_cipher']:.0f} MB/s "
        f"(SM4 {c['sm4_gcm'] / c['aes_gcm_cipher']:.2f}x)")
    row("AES-256-GCM (AESGCM), 64 KiB chunks", f"{c['aes_gcm']:.0f} MB/s", f"ChaCha20-Poly1305 {c['chacha20_poly1305']:.0f} MB/s")
    if "mqtt" in r:
        m = r["mqtt"]
        row(f"MQTT → versions ({m['msgs']:,} msgs, {m['versions']} versions)", f"{m['rows_per_s']:,.0f} rows/s",
            f"delivery only {m['delivery_only_msgs_per_s']:,.0f} msg/s; target >= 5,000 "
            + ("MET" if m["rows_per_s"] >= 5000 else "MISSED"))
        row("  stages (s)", "", ", ".join(f"{k} {v:.2f}" for k, v in sorted(m["stages_s"].items())))
    if "pg" in r:
        p = r["pg"]
        row(f"PostgreSQL full sync ({p['rows']:,} rows)", f"{p['sync_s']:.1f} s",
            f"read alone {p['read_only_s']:.1f} s; 1M rows <= 60 s "
            + ("MET" if p["rows"] >= 1_000_000 and p["sync_s"] <= 60 else "see rows/s")
            + f" ({p['rows_per_s']:,.0f} rows/s)")
        row("  stages (s)", "", ", ".join(f"{k} {v:.1f}" for k, v in sorted(p["stages_s"].items())))
        row(f"PostgreSQL incremental ({p['incremental_rows']:,} new rows)", f"{p['incremental_s']:.2f} s", "")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--pg-rows", type=int, default=1_000_000, help="rows for the full sync (0 skips PostgreSQL)")
    ap.add_argument("--mqtt-msgs", type=int, default=20_000, help="messages (0 skips MQTT)")
    ap.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--hom", action="store_true", help="add the per-row Paillier HOM onion to the measure")
    ap.add_argument("--pg-url", help="an existing PostgreSQL (SQLAlchemy URL); default: a private server")
    ap.add_argument("--mqtt-url", help="an existing broker mqtt://HOST:PORT (persistence, max_inflight_messages 0)")
    args = ap.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    folder = Path(tempfile.mkdtemp(prefix="tds-bench-sources-"))
    result: dict[str, Any] = {"ciphers": bench_ciphers(), "layers": bench_layers(), "policy": onions(args.hom)}
    stops: list[Callable[[], None]] = []
    try:
        if args.mqtt_msgs:
            url = args.mqtt_url
            if url is None:
                from tests.support.mosquitto import start_mosquitto
                broker = start_mosquitto(folder / "broker")
                stops.append(broker.stop)
                url = broker.url
            result["mqtt"] = bench_mqtt(url, args.mqtt_msgs, folder, args.processes, args.hom, log)
        if args.pg_rows:
            url = args.pg_url
            if url is None:
                from tests.support.postgres import start_postgres
                server = start_postgres(folder / "pg-server")
                stops.append(server.stop)
                url = server.url
            result["pg"] = bench_pg(url, args.pg_rows, folder, args.processes, args.hom, log)
    finally:
        for stop in stops:
            stop()
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    c = result["ciphers"]
    result.update(sm4_mb_per_s=c["sm4_gcm"], aes_mb_per_s=c["aes_gcm"],
                  sm4_baseline_aes_same_api_mb_per_s=c["aes_gcm_cipher"], aes_baseline_chacha_mb_per_s=c["chacha20_poly1305"])
    if "mqtt" in result:
        result.update(mqtt_msgs=result["mqtt"]["msgs"], mqtt_rows_per_s=result["mqtt"]["rows_per_s"],
                      mqtt_baseline_delivery_msgs_per_s=result["mqtt"]["delivery_only_msgs_per_s"])
    if "pg" in result:
        result.update(pg_rows=result["pg"]["rows"], pg_sync_s=result["pg"]["sync_s"],
                      pg_incremental_s=result["pg"]["incremental_s"], pg_baseline_read_s=result["pg"]["read_only_s"])
    print(render(result), file=sys.stderr)
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
