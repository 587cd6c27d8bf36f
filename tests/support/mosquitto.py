"""A private Mosquitto broker for the tests: Debian's binary, its own config file, persistence
folder and free loopback port; stopped (SIGTERM, which saves the persistence file) and
restartable on the same port. The system service is never used. `make test` installs the
Debian package when it is missing (Makefile target ``mosquitto``)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from chain.node import free_port

BINARY = "/usr/sbin/mosquitto"


def mosquitto_bin() -> str | None:
    return BINARY if os.path.exists(BINARY) else shutil.which("mosquitto")


@dataclass
class MosquittoBroker:
    folder: Path
    port: int
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.folder / "mosquitto.conf"

    def start(self) -> "MosquittoBroker":
        binary = mosquitto_bin()
        if binary is None:
            raise RuntimeError("mosquitto not found: install Debian's 'mosquitto' package "
                               "(make test does, as root: 'make mosquitto')")
        log = open(self.folder / "broker.log", "ab")
        self.proc = subprocess.Popen([binary, "-c", str(self.config)], stdout=log, stderr=log,
                                     start_new_session=True)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.folder / 'broker.log').read_text()[-800:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("mosquitto did not open its port within 15 s")

    def stop(self) -> None:
        """SIGTERM: the broker writes its persistence file (sessions, queued messages) and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def start_mosquitto(tmp: Path) -> MosquittoBroker:
    """A broker on a free loopback port with persistence, unlimited in-flight and queued QoS 1
    messages (a manual-ack consumer holds a whole micro-batch unacknowledged)."""
    tmp.mkdir(parents=True, exist_ok=True)
    broker = MosquittoBroker(tmp, free_port())
    (tmp / "data").mkdir(exist_ok=True)
    user = ""
    if os.geteuid() == 0:
        # mosquitto drops root privileges to the 'mosquitto' user unless told to stay
        user = "user root\n"
    broker.config.write_text(
        f"{user}listener {broker.port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {tmp / 'data'}/\n"
        "autosave_interval 1\n"
        "max_inflight_messages 0\n"
        "max_queued_messages 0\n"
        "log_dest stderr\n"
        "log_type error\nlog_type warning\n")
    return broker.start()
