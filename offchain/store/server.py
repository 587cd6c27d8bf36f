"""The Kubo RPC subset a client needs, served from a :class:`BlockStore` on loopback.

Endpoints (all POST, as Kubo requires): ``version``, ``id``, ``add``, ``cat``, ``get`` (tar),
``block/stat``, ``block/get``, ``pin/add``, ``pin/rm``, ``pin/ls``, ``repo/gc``. Errors use
Kubo's shape (HTTP 500, ``{"Message", "Code", "Type": "error"}``) so ``ipfshttpclient`` raises
its usual ``ErrorResponse``. Uploads may be chunked (``ipfshttpclient`` streams them)."""
from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import mmap
import socket
import tarfile
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

from offchain.errors import DataPlaneError, StoreError
from offchain.store.blockstore import BlockStore
from chain.cid import b58encode, parse_cid

AGENT = "tds-embedded-store/0.1"
API_VERSION = "0.7.0"  # the RPC level implemented (the one ipfshttpclient 0.7 speaks)


class _RangeReader:
    """A read-only file view over ``[start, end)`` of a buffer (no copy of the whole part)."""

    def __init__(self, buf: mmap.mmap, start: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, start, end

    def read(self, size: int = -1) -> bytes:
        stop = self.end if size is None or size < 0 else min(self.end, self.pos + size)
        out = self.buf[self.pos:stop]
        self.pos = stop
        return out


def _multipart_parts(buf: mmap.mmap, boundary: bytes) -> Iterator[tuple[dict[str, str], _RangeReader]]:
    delim = b"--" + boundary
    pos = buf.find(delim)
    if pos < 0:
        raise StoreError("multipart body has no boundary")
    while True:
        pos += len(delim)
        if buf[pos:pos + 2] == b"--":
            return
        header_end = buf.find(b"\r\n\r\n", pos)
        if header_end < 0:
            raise StoreError("malformed multipart part (no header end)")
        headers = {}
        for line in buf[pos:header_end].decode("latin-1").split("\r\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body_start = header_end + 4
        nxt = buf.find(b"\r\n" + delim, body_start)
        if nxt < 0:
            raise StoreError("malformed multipart part (no closing boundary)")
        yield headers, _RangeReader(buf, body_start, nxt)
        pos = nxt + 2


def _flag(params: dict[str, list[str]], name: str, default: bool) -> bool:
    vals = params.get(name)
    return default if not vals else vals[-1].lower() in ("1", "true", "yes", "")


class _Handler(BaseHTTPRequestHandler):
    server_version = AGENT
    protocol_version = "HTTP/1.1"
    store: BlockStore  # set on the subclass

    def log_message(self, fmt: str, *args: object) -> None:  # quiet by default
        pass

    # plumbing --------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str = "application/json",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: object) -> None:
        self._send(200, json.dumps(obj).encode() + b"\n")

    def _error(self, message: str, status: int = 500) -> None:
        self._send(status, json.dumps({"Message": message, "Code": 0, "Type": "error"}).encode())

    def _body_to(self, sink: io.BufferedWriter) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                remaining = size
                while remaining:
                    piece = self.rfile.read(min(remaining, 1 << 20))
                    if not piece:
                        raise StoreError("connection closed inside a chunk")
                    sink.write(piece)
                    remaining -= len(piece)
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                piece = self.rfile.read(min(remaining, 1 << 20))
                if not piece:
                    raise StoreError("connection closed before the body ended")
                sink.write(piece)
                remaining -= len(piece)

    def do_GET(self) -> None:  # Kubo rejects GET on the RPC API
        self._error("405 - Method Not Allowed", 405)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query, keep_blank_values=True)
        route = url.path.rstrip("/")
        handler = _ROUTES.get(route)
        try:
            if handler is None:
                self._body_to(io.BytesIO())  # type: ignore[arg-type]
                self._error(f"404 page not found: {route}", 404)
                return
            handler(self, params)
        except (DataPlaneError, ValueError) as exc:
            self._error(str(exc))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # noqa: BLE001 - report, never drop the connection silently
            self._error(f"internal error: {type(exc).__name__}: {exc}")

    def _arg(self, params: dict[str, list[str]]) -> str:
        args = params.get("arg")
        if not args:
            raise StoreError("argument \"ipfs-path\" is required")
        return args[0]

    # endpoints -------------------------------------------------------------------------------
    def version(self, params: dict[str, list[str]]) -> None:
        self._body_to(io.BytesIO())  # type: ignore[arg-type]
        self._json({"Version": API_VERSION, "Commit": "tds", "Repo": "10", "System": "python",
                    "Golang": "none"})

    def ident(self, params: dict[str, list[str]]) -> None:
        self._body_to(io.BytesIO())  # type: ignore[arg-type]
        peer = hashlib.sha256(str(self.store.root.resolve()).encode()).hexdigest()
        self._json({"ID": f"tds-{peer[:32]}", "PublicKey": "", "Addresses": [],
                    "AgentVersion": AGENT, "ProtocolVersion": "ipfs/0.1.0"})

    def add(self, params: dict[str, list[str]]) -> None:
        version = int(params.get("cid-version", ["0"])[-1] or 0)
        raw_leaves = _flag(params, "raw-leaves", version == 1)
        chunker = params.get("chunker", ["size-262144"])[-1]
        if chunker not in ("", "size-262144", "default"):
            raise StoreError(f"chunker {chunker!r} is not supported (only size-262144)")
        if _flag(params, "wrap-with-directory", False):
            raise StoreError("wrap-with-directory is not supported by the embedded store")
        pin, only_hash = _flag(params, "pin", True), _flag(params, "only-hash", False)
        ctype = self.headers.get("Content-Type", "")
        if "boundary=" not in ctype:
            raise StoreError("add expects multipart/form-data")
        boundary = ctype.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
        lines = []
        with tempfile.TemporaryFile() as spool:
            self._body_to(spool)  # type: ignore[arg-type]
            spool.flush()
            if spool.tell() == 0:
                raise StoreError("empty request body")
            with mmap.mmap(spool.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                for headers, reader in _multipart_parts(buf, boundary):
                    if headers.get("content-type", "").startswith("application/x-directory"):
                        raise StoreError("directories are not supported by the embedded store")
                    disp = headers.get("content-disposition", "")
                    name = disp.split("filename=", 1)[1].strip('"') if "filename=" in disp else ""
                    res = self.store.add_stream(reader, version, pin, only_hash, raw_leaves)  # type: ignore[arg-type]
                    lines.append(json.dumps({"Name": name or res.cid, "Hash": res.cid,
                                             "Size": str(res.dag_size)}))
        self._send(200, ("\n".join(lines) + "\n").encode(), "application/json",
                   {"X-Chunked-Output": "1"})

    def _stream(self, chunks: Iterator[bytes], ctype: str = "text/plain") -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("X-Stream-Output", "1")
        self.end_headers()
        for piece in chunks:
            if piece:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def cat(self, params: dict[str, list[str]]) -> None:
        self._body_to(io.BytesIO())  # type: ignore[arg-type]
        cid = self._arg(params)
        offset = int(params.get("offset", ["0"])[-1] or 0)
        length = params.get("length")
        data = self.store.cat(cid)  # validates the whole DAG before the 200 goes out
        end = len(data) if not length else offset + int(length[-1])
        self._stream(iter([data[offset:end]]))

    def get(self, params: dict[str, list[str]]) -> None:
        self._body_to(io.BytesIO())  # type: ignore[arg-type]
        cid = parse_cid(self._arg(params)).encode()
        data = self.store.cat(cid)
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tf:
            info = tarfile.TarInfo(cid)
            info.size, info.mode = len(data), 0o644
            tf.addfile(info, io.BytesIO(data))
        self._stream(iter([out.getvalue()]), "application/x-tar")

    def block_stat(self, params: dict[str, list[str]]) -> None:
        self._body_to(io.BytesIO())  # type: ignore[arg-type]
        cid = parse_cid(self._arg(params))
        self._json({"Key": cid.encode(), "Size": self.store.block_size(cid)})

    def block_get(self, params: dict[str, list[str]]) -> None:
        self._body_to(io.BytesIO())  # type: ignore[arg-type]
        self._send(200, self.store.get_block(self._arg(params)), "application/octet-stream")

    def pin_add(self, params: dict[str, list[str]]) -> None:
        self._body_to(io.BytesIO())  # type: ignore[arg-type]
        pins = []
        for arg in params.get("arg", []):
            pins += self.store.pin_add(arg, _flag(params, "recursive", True))
        self._json({"Pins": pins})

    def pin_rm(self, params: dict[str, list[str]]) -> None:
        self._body_to(io.BytesIO())  # type: ignore[arg-type]
        pins = []
        for arg in params.get("arg", []):
            pins += self.store.pin_rm(arg)
        self._json({"Pins": pins})

    def pin_ls(self, params: dict[str, list[str]]) -> None:
        self._body_to(io.BytesIO())  # type: ignore[arg-type]
        pins = self.store.pin_ls()
        wanted = [parse_cid(a).encode() for a in params.get("arg", [])]
        kind = params.get("type", ["all"])[-1]
        keys = {c: {"Type": t} for c, t in pins.items()
                if (not wanted or c in wanted) and kind in ("all", t)}
        for c in wanted:
            if c not in keys:
                raise StoreError(f"path '{c}' is not pinned")
        self._json({"Keys": keys})

    def repo_gc(self, params: dict[str, list[str]]) -> None:
        self._body_to(io.BytesIO())  # type: ignore[arg-type]
        removed = self.store.gc()
        body = "".join(json.dumps({"Key": {"/": b58encode(bytes([0x12, 32]) + bytes.fromhex(d))}})
                       + "\n" for d in removed)
        self._send(200, body.encode(), "application/json", {"X-Chunked-Output": "1"})


_ROUTES: dict[str, Callable[[_Handler, dict[str, list[str]]], None]] = {
    "/api/v0/version": _Handler.version, "/api/v0/id": _Handler.ident,
    "/api/v0/add": _Handler.add, "/api/v0/cat": _Handler.cat, "/api/v0/get": _Handler.get,
    "/api/v0/block/stat": _Handler.block_stat, "/api/v0/block/get": _Handler.block_get,
    "/api/v0/pin/add": _Handler.pin_add, "/api/v0/pin/rm": _Handler.pin_rm,
    "/api/v0/pin/ls": _Handler.pin_ls, "/api/v0/repo/gc": _Handler.repo_gc,
}


def _check_loopback(host: str) -> None:
    try:
        addrs = {ai[4][0] for ai in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise StoreError(f"cannot resolve {host!r}: {exc}") from exc
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs):
        raise StoreError(f"refusing to serve the store on non-loopback address {host!r}")


class KuboRpcServer:
    """Serve a :class:`BlockStore` at ``http://host:port/api/v0`` (loopback only)."""

    def __init__(self, store: BlockStore, host: str = "127.0.0.1", port: int = 0) -> None:
        _check_loopback(host)
        handler = type("BoundHandler", (_Handler,), {"store": store})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.host, self.port = host, self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def multiaddr(self) -> str:
        """What ``ipfshttpclient.Client`` takes: ``/ip4/127.0.0.1/tcp/<port>/http``."""
        return f"/ip4/{self.host}/tcp/{self.port}/http"

    def start(self) -> "KuboRpcServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name=f"tds-store-{self.port}")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> "KuboRpcServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
