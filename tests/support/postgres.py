"""A private PostgreSQL server for the tests: Debian's binaries, a fresh cluster in a temporary
folder, a free loopback port, stopped at the end. As root (CI) the server runs as the Debian
``postgres`` user (PostgreSQL refuses to run as root). `make test` installs the Debian package
when it is missing (Makefile target ``postgres``)."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from chain.node import free_port


def pg_bin(name: str) -> str | None:
    """The newest installed PostgreSQL server binary ``name`` (initdb, pg_ctl), or None."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return found[-1] if found else shutil.which(name)


@dataclass
class PostgresServer:
    folder: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/tds"

    def _run(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, *cmd], capture_output=True, text=True, timeout=timeout)

    def stop(self) -> None:
        self._run(pg_bin("pg_ctl") or "pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")
        if self.as_user:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres(tmp: Path) -> PostgresServer:
    """initdb + pg_ctl start on a free port; a database ``tds`` for user ``postgres`` (trust on
    loopback, the cluster is private to this test run). Raises RuntimeError naming the fix."""
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("PostgreSQL server binaries not found: install Debian's 'postgresql' package "
                           "(make test does, as root: 'make postgres')")
    as_user: list[str] = []
    tmp.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # pytest's folders are root's alone: the server's own folder sits directly under /tmp
        import tempfile

        as_user = ["runuser", "-u", "postgres", "--"]
        tmp = Path(tempfile.mkdtemp(prefix="tds-postgres-"))
        shutil.chown(tmp, "postgres", "postgres")
        os.chmod(tmp, 0o700)
    server = PostgresServer(tmp, free_port(), as_user)
    data = tmp / "data"
    r = server._run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
    if r.returncode != 0:
        raise RuntimeError(f"initdb failed: {r.stderr[-800:]}")
    opts = f"-p {server.port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
    r = server._run(pg_ctl, "-D", str(data), "-o", opts, "-l", str(tmp / "server.log"), "-w", "start")
    if r.returncode != 0:
        log = (tmp / "server.log").read_text() if (tmp / "server.log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {r.stderr[-400:]} {log[-800:]}")
    import psycopg

    deadline = time.time() + 30
    while True:
        try:
            with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                                 autocommit=True) as conn:
                conn.execute("CREATE DATABASE tds")
            return server
        except psycopg.OperationalError:
            if time.time() > deadline:
                server.stop()
                raise
            time.sleep(0.2)
