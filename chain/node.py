"""Lifecycle of the embedded anvil node: ``up`` on a free loopback port with a state folder,
pid file and log; ``down`` stops exactly that process; ``status`` reports it.

The node record (``node.json``: pid, port, url, process start time) identifies *our* process,
so a stale pid file (dead process, or a pid reused by another program) is detected and cleaned
instead of killing a stranger.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from chain.tools import anvil_executable
from chain.config import Settings
from chain.errors import NodeError

LOOPBACK = "127.0.0.1"
DEV_MNEMONIC = "test test test test test test test test test test test junk"


@dataclass(frozen=True)
class NodeInfo:
    """What ``tds chain status`` reports about the embedded node."""

    pid: int
    port: int
    url: str
    started_at: float
    proc_start: str
    state_file: str
    log_file: str


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True if nothing listens on ``host:port`` and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None, host: str = LOOPBACK) -> int:
    """``preferred`` if it is free, otherwise a port the kernel hands out."""
    if preferred and port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of ``pid`` (field 22 of /proc/<pid>/stat), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] == "Z":  # zombie: exited, not yet reaped
        return None
    return fields[19] if len(fields) > 19 else None


class EmbeddedNode:
    """The project's own anvil, managed through files in ``settings.chain_dir``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.dir = settings.chain_dir
        self.record = self.dir / "node.json"
        self.pid_file = self.dir / "anvil.pid"
        self.log_file = self.dir / "anvil.log"
        self.state_file = self.dir / "state.json"

    # -- queries -------------------------------------------------------------------------
    def _read_record(self) -> NodeInfo | None:
        try:
            data = json.loads(self.record.read_text())
            return NodeInfo(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            return None  # unreadable record: treated as stale

    def _alive(self, info: NodeInfo) -> bool:
        return _proc_start_time(info.pid) == info.proc_start

    def status(self) -> NodeInfo | None:
        """The running node, or None; a stale record (dead or reused pid) is removed."""
        info = self._read_record()
        if info is None:
            if self.pid_file.exists() or self.record.exists():
                self._clean()
            return None
        if not self._alive(info):
            self._clean()
            return None
        return info

    # -- transitions ---------------------------------------------------------------------
    def up(self, *, port: int | None = None, timeout: float = 20.0, fresh: bool = False) -> NodeInfo:
        """Start anvil (or return the one already running). ``fresh`` discards saved state."""
        running = self.status()
        if running is not None:
            return running
        self.dir.mkdir(parents=True, exist_ok=True)
        if fresh and self.state_file.exists():
            self.state_file.unlink()
        chosen = free_port(port or self.settings.chain_port)
        cmd = [
            anvil_executable(self.settings.node_modules),
            "--host", LOOPBACK,
            "--port", str(chosen),
            "--chain-id", "31337",
            "--accounts", "10",
            "--mnemonic", DEV_MNEMONIC,
            "--block-base-fee-per-gas", "0",
            "--gas-price", "0",
            "--state", str(self.state_file),
            "--state-interval", "5",
            "--steps-tracing",
        ]
        log = open(self.log_file, "ab")
        try:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        url = f"http://{LOOPBACK}:{chosen}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise NodeError(
                    f"anvil exited with code {proc.returncode} while starting; see {self.log_file}"
                )
            if _rpc_ready(url):
                break
            time.sleep(0.05)
        else:
            proc.kill()
            raise NodeError(f"anvil did not answer on {url} within {timeout:.0f}s; see {self.log_file}")
        info = NodeInfo(
            pid=proc.pid, port=chosen, url=url, started_at=time.time(),
            proc_start=_proc_start_time(proc.pid) or "", state_file=str(self.state_file),
            log_file=str(self.log_file),
        )
        self.pid_file.write_text(f"{proc.pid}\n")
        self.record.write_text(json.dumps(asdict(info), indent=2, sort_keys=True))
        return info

    def down(self, timeout: float = 10.0, *, save: bool = True) -> NodeInfo | None:
        """Stop exactly the recorded process (SIGINT lets anvil dump its state); None if none ran.
        ``save=False`` discards the chain instead (SIGKILL, no dump: a throwaway test chain whose
        traced state can take tens of seconds to write)."""
        info = self.status()
        if info is None:
            return None
        if not save:
            try:
                os.kill(info.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._wait_gone(info, timeout)
            self._clean()
            return info
        state = Path(info.state_file)
        saved = _save_state(info.url, state.with_suffix(".final"))  # everything mined so far
        try:
            os.kill(info.pid, signal.SIGINT)  # anvil dumps its state on Ctrl-C (SIGTERM skips the dump)
        except ProcessLookupError:
            pass
        self._wait_gone(info, timeout)
        if self._alive(info):
            os.kill(info.pid, signal.SIGKILL)
            _reap(info.pid)
        if saved is not None:
            # Put our dump in place only once anvil is gone: its own interval or exit dump may
            # otherwise land after ours and hold an older state (seen in CI: a lost transfer).
            saved.replace(state)
        self._clean()
        return info

    def _wait_gone(self, info: NodeInfo, timeout: float) -> None:
        """Reap and wait (at most ``timeout`` s) until the node's process has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._alive(info):
            _reap(info.pid)
            time.sleep(0.02)

    def _clean(self) -> None:
        for f in (self.record, self.pid_file):
            try:
                f.unlink()
            except FileNotFoundError:
                pass


def _reap(pid: int) -> None:
    """Collect our own child's exit status, if it is our child (no-op otherwise)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _save_state(url: str, path: Path) -> Path | None:
    """Write the node's full current state (``anvil_dumpState``) to ``path``; None if it is gone."""
    import gzip
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "anvil_dumpState", "params": []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            result = json.loads(resp.read()).get("result")
    except OSError:
        return None  # the node is already gone: its last interval dump is what there is
    if not (isinstance(result, str) and result.startswith("0x")):
        return None
    raw = bytes.fromhex(result[2:])
    path.write_bytes(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    return path


def _rpc_ready(url: str) -> bool:
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=0.5) as resp:
            return b"result" in resp.read()
    except OSError:
        return False
