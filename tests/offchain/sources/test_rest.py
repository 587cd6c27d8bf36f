"""REST feeds against a local HTTP server started by the test: bearer and basic auth (a wrong
secret is refused by name and not retried), pagination by next links, incremental pulls by a
since-parameter, XML records, failover from a failing primary to the standby."""
from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from offchain.sources.errors import SourceAuthRefused, SourceConfigError
from offchain.sources.monitor import read_alerts
from offchain.sources.spec import SourceSpec
from tests.offchain.sources.readback import head_manifest, open_column

SCHEMA = {"name": "orders", "fields": [
    {"name": "id", "type": "identifier", "nullable": False},
    {"name": "region", "type": "string"},
    {"name": "day", "type": "date"}]}
RECORDS: list[dict] = [{"id": i, "region": f"r{i % 3}", "day": f"2026-01-{1 + i % 28:02d}"} for i in range(1, 121)]
PAGE = 50


class Feed(BaseHTTPRequestHandler):
    def log_message(self, *a):  # quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        self.server.calls.append(self.path)  # type: ignore[attr-defined]
        if u.path == "/down":
            return self._send(503, b"maintenance")
        if u.path == "/xml":
            if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"alice:s3cret").decode():
                return self._send(401, b"")
            items = "".join(f"<order id='{r['id']}'><region>{r['region']}</region><day>{r['day']}</day></order>"
                            for r in RECORDS[:30])
            return self._send(200, f"<orders>{items}</orders>".encode(), "application/xml")
        if self.headers.get("Authorization") != "Bearer tok-123":
            return self._send(401, b'{"error": "bad token"}')
        since, start = int(q.get("since", 0)), int(q.get("cursor", 0))
        if "cursor" in q:
            since = int(q["after"])
        rows = [r for r in RECORDS if r["id"] > since][start:start + PAGE]
        more = len([r for r in RECORDS if r["id"] > since]) > start + PAGE
        doc = {"data": {"items": rows}, "next": f"/feed?after={since}&cursor={start + PAGE}" if more else None}
        self._send(200, json.dumps(doc).encode())


@pytest.fixture
def feed():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    server.calls = []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_port}", server
    server.shutdown()
    server.server_close()


def test_bearer_pagination_and_since(feed, make_runner, store, keys, monkeypatch):
    base, server = feed
    r = make_runner()
    r.state.add(SourceSpec("orders", "rest", f"{base}/down", standby=f"{base}/feed", auth="bearer",
                           items="data.items", watermark="id", schema=SCHEMA))
    with pytest.raises(SourceConfigError, match="TDS_SOURCE_ORDERS_TOKEN"):
        r.sync_once("orders")
    monkeypatch.setenv("TDS_SOURCE_ORDERS_TOKEN", "wrong")
    with pytest.raises(SourceAuthRefused, match="refused the credentials.*TDS_SOURCE_ORDERS_TOKEN"):
        r.sync_once("orders")
    assert sum(c.startswith("/feed") for c in server.calls) == 1          # refused: not retried
    monkeypatch.setenv("TDS_SOURCE_ORDERS_TOKEN", "tok-123")
    rep = r.sync_once("orders")
    assert rep.rows == 120 and r.state.head("orders").watermark == 120
    assert {"/feed?after=0&cursor=50", "/feed?after=0&cursor=100"} <= set(server.calls)   # pagination
    assert r.state.status("orders")["using_standby"] is True
    kinds = [a.kind for a in read_alerts(r.home.alerts_file)]
    assert kinds == ["auth_refused", "failover"]
    RECORDS.extend({"id": i, "region": "r9", "day": "2026-02-01"} for i in range(121, 131))
    try:
        server.calls.clear()
        assert r.sync_once("orders").rows == 10
        assert "/feed?since=120" in server.calls                           # incremental by since
    finally:
        del RECORDS[120:]
    ids = open_column(head_manifest(r, store, "orders"), keys, store.cat, "id")
    assert sorted(map(int, ids)) == list(range(1, 131))


def test_xml_with_basic_auth_and_keys(feed, make_runner, store, keys, monkeypatch):
    base, _ = feed
    r = make_runner()
    r.state.add(SourceSpec("xml", "rest", f"{base}/xml", auth="basic", user="alice", items="order", key="id",
                           schema=SCHEMA))
    monkeypatch.setenv("TDS_SOURCE_XML_PASSWORD", "nope")
    with pytest.raises(SourceAuthRefused, match="401"):
        r.sync_once("xml")
    monkeypatch.setenv("TDS_SOURCE_XML_PASSWORD", "s3cret")
    assert r.sync_once("xml").rows == 30
    assert r.sync_once("xml").rows == 0                                    # same keys: nothing new
    ids = open_column(head_manifest(r, store, "xml"), keys, store.cat, "id")
    assert sorted(map(int, ids)) == list(range(1, 31))
