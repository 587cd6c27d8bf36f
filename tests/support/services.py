"""Test helpers: a world whose provider key service and content store are served over HTTP, and
``tds oracle run`` as a real subprocess against it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from offchain.store.blockstore import BlockStore
from offchain.store.server import KuboRpcServer
from chain.node import EmbeddedNode
from offchain.keyservice.service import build_key_service
from tds.sandbox import World, build_world

PASSWORD = "oracle-test-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedApp:
    """A FastAPI app on a free loopback port, in a thread."""

    def __init__(self, app: Any):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("key service did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class ServedWorld:
    world: World
    settings: Any
    node: EmbeddedNode
    key_service: ServedApp
    store_server: KuboRpcServer
    rpc_url: str
    spawned: list[subprocess.Popen] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        s = self.settings
        return {**os.environ, "TDS_HOME": str(s.home), "TDS_RPC_URL": self.rpc_url,
                "TDS_DEPLOYMENT": str(s.deployment_file), "TDS_IPFS_API": self.store_server.multiaddr,
                "TDS_PROJECT_ROOT": str(s.project_root), "TDS_ORACLE_PASSWORD": PASSWORD}

    def spawn_oracle(self, log: Path, *extra: str, threads: int = 4) -> subprocess.Popen:
        cmd = [sys.executable, "-c", "from tds.cli import main; main()", "oracle", "run", "oracle",
               "--password-env", "TDS_ORACLE_PASSWORD", "--key-service", self.key_service.url,
               "--confirmations", "0", "--threads", str(threads), *extra]
        fh = open(log, "ab")
        proc = subprocess.Popen(cmd, env=self.env(), stdout=fh, stderr=subprocess.STDOUT,
                                cwd=self.settings.project_root, start_new_session=True)
        self.spawned.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.spawned:  # a failed test must not leave a daemon behind
            if proc.poll() is None:
                kill9(proc)
        self.key_service.stop()
        self.store_server.stop()
        self.node.down(save=False)


def serve_world(settings: Any, tmp: Path, rows: int = 200, max_uses: int = 1000) -> ServedWorld:
    node = EmbeddedNode(settings)
    info = node.up(fresh=True)
    world = build_world(settings, tmp, rows=rows, max_uses=max_uses)
    world.identities["oracle"].save(settings.home / "identities", PASSWORD, scrypt_n=2**10)
    built = build_key_service(settings, world.space.w3, world.identities["provider"], None, world.store,
                              service=world.key_service)
    store_server = KuboRpcServer(BlockStore(tmp / "store")).start()
    return ServedWorld(world, settings, node, ServedApp(built.app), store_server, info.url)


def kill9(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
