"""The didkit wrapper: sync calls from plain code and from inside a running event loop, clean exit."""
from __future__ import annotations

import asyncio
import subprocess
import sys

from did import _didkit
from did.identity import Identity

SCRIPT = """
from did.identity import Identity
from did.credentials import OfflineTrust, issue_role_credential, verify_role_credential
op, a = Identity.create("op"), Identity.create("a")
vc = issue_role_credential(op, a.did, "PROVIDER", "Acme", days=1)
assert verify_role_credential(vc, OfflineTrust({op.did})).role == "PROVIDER"
print("ok")
"""


def test_plain_script_exits_cleanly():
    """didkit aborts at interpreter exit in plain scripts without the workaround (TOOLCHAIN.md)."""
    for _ in range(3):
        res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
        assert (res.returncode, res.stdout.strip()) == (0, "ok"), res.stderr


def test_callable_from_inside_an_event_loop():
    ident = Identity.create("loop")

    async def handler() -> str:  # e.g. a FastAPI endpoint calling the sync API
        return _didkit.verification_method(ident.jwk)

    assert asyncio.run(handler()) == ident.verification_method


def test_cli_runs_exit_cleanly(tmp_path):
    """`tds id credential issue|verify` call didkit and exit through click: no abort at exit."""
    import json
    import os
    from pathlib import Path

    tds = str(Path(sys.executable).parent / "tds")
    env = dict(os.environ, TDS_HOME=str(tmp_path / "home"), PW="pw")

    def tds_run(*args: str) -> str:
        res = subprocess.run([tds, *args], capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 0, (args, res.returncode, res.stderr[-500:])
        return res.stdout

    for name in ("op", "al"):  # low scrypt work factor (recorded in the files) keeps the runs short
        Identity.create(name).save(tmp_path / "home" / "identities", "pw", scrypt_n=2 ** 10)
    op = json.loads(tds_run("id", "show", "op", "--json"))
    vc = str(tmp_path / "vc.json")
    tds_run("id", "credential", "issue", "--operator", "op", "--subject", "al", "--role", "PROVIDER",
            "--org", "Acme", "--days", "1", "--out", vc, "--password-env", "PW")
    for _ in range(2):  # the abort at exit was intermittent: run more than once
        assert "valid: PROVIDER" in tds_run("id", "credential", "verify", vc, "--offline", "--trust", op["did"])
