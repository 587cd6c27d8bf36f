"""The key service's HTTP hardening (issue 12, item 14), on the real app over loopback HTTP with a
real chain: the body limit counts the bytes actually read (chunked and lying bodies too), callers
are rate-limited per address before authentication and per DID after it, every presentation burns
its challenge, and a presentation authenticates only the request (method, path, body) it signed."""
from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import replace

import pytest
import requests

from chain.config import load_settings
from chain.node import EmbeddedNode, free_port
from chain.ops import HOM_AGG, OPE_RANGE
from did.challenge import ChallengeVerifier, RequestBinding
from did.guard import HEADER, encode_presentation, presentation_header
from did.keys import b64u_decode
from did.registry import IdentityRegistryClient
from did.sealing import ChainDirectory
from offchain.keyservice.api import ServiceLimits, create_key_service_app
from tds.sandbox import PRICE, build_world
from tests.support.services import ServedApp

QUERY = {"aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", 100, 700]]}
SMALL = 64 * 1024


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keyservice-http")
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    node.up(fresh=True)
    try:
        yield build_world(settings, tmp, rows=60)
    finally:
        node.down(save=False)


@pytest.fixture(scope="module")
def job(world) -> int:
    """A job the world's oracle accepted (so prepare answers 200 for it)."""
    w = world
    q = {"dataset": w.sales_id, **QUERY}
    job_id = w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, q, w.store, value=PRICE)
    w.space.send(w.oracle.account, w.space.c["Jobs"].functions.acceptJob(job_id))
    return job_id


def make_app(w, limits: ServiceLimits | None = None):
    c = w.space.c
    return create_key_service_app(w.key_service, w.identities["provider"],
                                  IdentityRegistryClient(w.space.w3, c["IdentityRegistry"]),
                                  ChainDirectory(c["IdentityRegistry"], w.space.deployment["block"]),
                                  ChallengeVerifier(f"keyservice:{w.provider.address.lower()}"), limits)


@pytest.fixture(scope="module")
def served(world):
    app = ServedApp(make_app(world, ServiceLimits(max_body_bytes=SMALL)))
    yield app
    app.stop()


def body_of(w) -> bytes:
    return json.dumps({"query": {"dataset": w.sales_id, **QUERY}}, separators=(",", ":")).encode()


def challenge(url: str) -> str:
    return requests.get(url + "/v1/challenge", timeout=10).json()["www_authenticate"]


def post(url: str, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(url + path, data=body, headers={"content-type": "application/json", **headers}, timeout=30)


def refused(r: requests.Response, status: int, kind: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:300])
    err = r.json()
    assert set(err) == {"error", "kind"} and err["kind"] == kind, err
    return err


# --- (d) a presentation is bound to its request -------------------------------------------------
def test_bound_presentation_admits_exactly_its_request(world, served, job):
    w, url = world, served.url
    path, body = f"/v1/jobs/{job}/prepare", body_of(world)
    hdr = presentation_header(w.identities["oracle"], challenge(url), request=RequestBinding.of("POST", path, body))
    r = post(url, path, body, hdr)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["sealed_keys"] and r.json()["encrypted_query"]


def test_presentation_for_one_request_refused_for_another(world, served, job):
    w, url, oracle = world, served.url, world.identities["oracle"]
    path, body = f"/v1/jobs/{job}/prepare", body_of(world)
    # captured for this job's prepare, replayed for another job: refused, with a fresh challenge
    captured = presentation_header(oracle, challenge(url), request=RequestBinding.of("POST", path, body))
    r = post(url, f"/v1/jobs/{job + 1}/prepare", body, captured)
    err = refused(r, 401, "RequestMismatch")
    assert f"/v1/jobs/{job}/prepare" in err["error"] and r.headers["WWW-Authenticate"].startswith("TDS-Challenge")
    # ... or for another endpoint (authentication runs before the body is even validated)
    captured = presentation_header(oracle, challenge(url), request=RequestBinding.of("POST", path, body))
    release = json.dumps({"query": {"dataset": w.sales_id, **QUERY}, "result": {}}).encode()
    refused(post(url, f"/v1/jobs/{job}/release", release, captured), 401, "RequestMismatch")
    # the same endpoint with another body
    captured = presentation_header(oracle, challenge(url), request=RequestBinding.of("POST", path, body))
    other = body.replace(b'"amount",100', b'"amount",0')
    assert other != body
    refused(post(url, path, other, captured), 401, "RequestMismatch")
    # the same request under another method (a 405 never reaches the guard, so test the binding's method)
    captured = presentation_header(oracle, challenge(url), request=RequestBinding.of("PUT", path, body))
    refused(post(url, path, body, captured), 401, "RequestMismatch")
    # an answer that names no request at all
    refused(post(url, path, body, presentation_header(oracle, challenge(url))), 401, "RequestNotBound")
    # no answer: the kind says what to do
    refused(post(url, path, body, {}), 401, "AuthenticationRequired")


# --- (c) every attempt burns its challenge ------------------------------------------------------
def test_failed_presentation_burns_its_challenge(world, served, job):
    w, url, oracle = world, served.url, world.identities["oracle"]
    path, body = f"/v1/jobs/{job}/prepare", body_of(world)
    right = RequestBinding.of("POST", path, body)
    # bound to another body: refused; the genuine answer to the same challenge comes too late
    www = challenge(url)
    refused(post(url, path, body, presentation_header(oracle, www, request=RequestBinding.of("POST", path, b"{}"))),
            401, "RequestMismatch")
    refused(post(url, path, body, presentation_header(oracle, www, request=right)), 401, "ChallengeReplayed")
    # a forged signature (the proof of another holder's key): refused, and the nonce is gone
    www = challenge(url)
    forged = json.loads(b64u_decode(presentation_header(oracle, www, request=right)[HEADER]))
    forged["holder"] = w.identities["consumer"].did
    refused(post(url, path, body, {HEADER: encode_presentation(forged)}), 401, "TamperedPresentation")
    refused(post(url, path, body, presentation_header(oracle, www, request=right)), 401, "ChallengeReplayed")
    # a verified caller without the role: 403, and its challenge cannot be answered again
    www = challenge(url)
    refused(post(url, path, body, presentation_header(w.identities["consumer"], www, request=right)), 403,
            "RoleMismatch")
    refused(post(url, path, body, presentation_header(oracle, www, request=right)), 401, "ChallengeReplayed")
    # a fresh challenge still works
    assert post(url, path, body, presentation_header(oracle, challenge(url), request=right)).status_code == 200


# --- (a) the body limit applies to the bytes read -----------------------------------------------
def _raw_http(port: int, head: bytes, chunks: list[bytes]) -> tuple[int, dict]:
    """Send a request byte by byte over a socket; the status and JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        try:
            for c in chunks:
                s.sendall(c)
        except OSError:
            pass  # the server stopped reading at the limit and answered
        raw = b""
        try:
            while not (b"\r\n\r\n" in raw and len(raw.split(b"\r\n\r\n", 1)[1]) >= _length(raw)):
                part = s.recv(65536)
                if not part:
                    break
                raw += part
        except OSError:
            pass
    head_part, _, payload = raw.partition(b"\r\n\r\n")
    return int(head_part.split()[1]), json.loads(payload[:_length(raw)])


def _length(raw: bytes) -> int:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 1 << 30


def test_body_limit_counts_chunked_bodies(world, served, job):
    path = f"/v1/jobs/{job}/prepare"
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n").encode()
    piece = b"x" * 8192
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * (3 * SMALL // len(piece)) + [b"0\r\n\r\n"]
    status, err = _raw_http(served.port, head, chunks)
    assert status == 413 and err["kind"] == "PayloadTooLarge" and str(SMALL) in err["error"]
    # a declared length over the limit is refused before a byte of body is read
    r = requests.post(served.url + path, data=b"{" + b" " * (SMALL + 10) + b"}", timeout=10,
                      headers={"content-type": "application/json"})
    refused(r, 413, "PayloadTooLarge")


def test_chunked_body_under_the_limit_is_read_and_bound(world, served, job):
    """A chunked body below the limit passes, and its digest is what the presentation signed."""
    w, url = world, served.url
    path, body = f"/v1/jobs/{job}/prepare", body_of(world)
    hdr = presentation_header(w.identities["oracle"], challenge(url), request=RequestBinding.of("POST", path, body))
    pieces = (body[i:i + 50] for i in range(0, len(body), 50))  # a generator: requests sends it chunked
    r = requests.post(url + path, data=pieces, headers={"content-type": "application/json", **hdr}, timeout=30)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 200, r.text[:300]


def test_body_longer_than_its_header_is_cut_at_the_limit(world):
    """At the ASGI level (what a proxy or HTTP/2 front end hands on) the header may lie: the bytes count."""
    app = make_app(world, ServiceLimits(max_body_bytes=SMALL))
    sent: list[dict] = []
    parts = [{"type": "http.request", "body": b"x" * 40_000, "more_body": True} for _ in range(4)]
    given = 0

    async def receive() -> dict:
        nonlocal given
        given += 1
        return parts[given - 1] if given <= len(parts) else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/jobs/1/prepare", "raw_path": b"/v1/jobs/1/prepare", "query_string": b"", "root_path": "",
             "headers": [(b"content-length", b"10"), (b"content-type", b"application/json")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert start["status"] == 413 and body["kind"] == "PayloadTooLarge"
    assert given == 2  # stopped reading as soon as the count passed the limit


# --- (b) rate limits ----------------------------------------------------------------------------
def test_rate_limited_per_address_before_authentication(world):
    app = ServedApp(make_app(world, ServiceLimits(ip_per_second=0.05, ip_burst=4)))
    try:
        for _ in range(4):
            assert requests.get(app.url + "/v1/challenge", timeout=10).status_code == 200
        r = requests.post(app.url + "/v1/jobs/1/prepare", data=b"{}", timeout=10)  # not even authenticated
        refused(r, 429, "RateLimited")
        assert int(r.headers["Retry-After"]) >= 1 and "ip:127.0.0.1" in r.json()["error"]
        refused(requests.get(app.url + "/v1/challenge", timeout=10), 429, "RateLimited")
    finally:
        app.stop()


def test_rate_limited_per_did_after_authentication(world, job):
    w = world
    app = ServedApp(make_app(world, ServiceLimits(did_per_second=0.05, did_burst=2)))
    try:
        path, body = f"/v1/jobs/{job}/prepare", body_of(world)
        right = RequestBinding.of("POST", path, body)

        def call(who: str) -> requests.Response:
            return post(app.url, path, body, presentation_header(w.identities[who], challenge(app.url), request=right))

        assert [call("oracle").status_code for _ in range(2)] == [200, 200]
        r = call("oracle")
        err = refused(r, 429, "RateLimited")
        assert w.identities["oracle"].did in err["error"] and int(r.headers["Retry-After"]) >= 1
        # another DID from the same address has its own bucket: it gets past the limit (and is refused for its role)
        refused(call("consumer"), 403, "RoleMismatch")
    finally:
        app.stop()


def test_token_bucket_refills():
    from offchain.keyservice.limits import RateLimited, TokenBucket

    now = [100.0]
    bucket = TokenBucket(per_second=2.0, burst=2, clock=lambda: now[0])
    bucket.take("a"), bucket.take("a")
    with pytest.raises(RateLimited) as info:
        bucket.take("a")
    assert info.value.retry_after == 1
    bucket.take("b")  # keys are independent
    now[0] += 0.5
    bucket.take("a")  # one token back after 1/per_second
    with pytest.raises(ValueError):
        TokenBucket(per_second=0, burst=1)

