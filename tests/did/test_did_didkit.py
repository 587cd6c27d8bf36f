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
