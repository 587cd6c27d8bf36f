"""A real chain with a small data space, a real SMTP server and a real HTTP receiver for the
oversight tests (one of each per module)."""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from chain.accounts import dev_account
from chain.config import Settings, load_settings
from chain.node import EmbeddedNode, free_port
from chain.ops import DET_EQ, HOM_AGG, OPE_RANGE
from did.identity import Identity
from did.registry import IdentityRegistryClient
from oversight.actions import MailNotifier, WebhookNotifier
from oversight.monitor import Monitor, MonitorOptions, work_dir
from oversight.rules import parse_rules
from tds.sandbox import PRICE, World, build_world

PASSWORD = "oversight-test-password"
MAIL_TO = "regulator@example.org"


class Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def alert_ids(self) -> list[str]:
        return [m["X-Tds-Alert"] for m in self.messages]


class Receiver:
    """An HTTP server in a thread that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alert_ids(self) -> list[str]:
        return [b["id"] for b in self.bodies]


@dataclass
class Env:
    world: World
    settings: Settings
    rpc_url: str
    monitor: Identity
    mailbox: Mailbox
    smtp_port: int
    receiver: Receiver
    vars: dict[str, str | None]
    grants: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def w3(self) -> Any:
        return self.world.space.w3

    @property
    def folder(self) -> Path:
        return work_dir(self.settings, self.w3.eth.chain_id, self.world.space.c["Authorizations"].address)

    def notifiers(self) -> list[Any]:
        return [WebhookNotifier(self.receiver.url), MailNotifier("127.0.0.1", self.smtp_port, [MAIL_TO])]

    def make_monitor(self, rules: str, *, folder: Path | None = None, start_block: int, crash: Any = None,
                     oplogs: tuple[Path, ...] = (), access_logs: tuple[Path, ...] = (), index: Any = None) -> Monitor:
        return Monitor(self.w3, self.world.space.deployment, self.monitor.account, self.monitor.did,
                       parse_rules(rules), folder or self.folder, self.notifiers(),
                       MonitorOptions(confirmations=1, poll_s=0.05, start_block=start_block, oplogs=oplogs,
                                      access_logs=access_logs), crash=crash, index=index)

    def fresh_grant(self, tag: str) -> int:
        w = self.world
        asset = w.space.c["Authorizations"].functions.grantOf(w.grant_id).call()[8]
        self.grants += 1
        return w.space.grant_by_signature(w.provider, w.consumer, asset, DET_EQ | OPE_RANGE | HOM_AGG, max_uses=1000,
                                          price=PRICE, purpose=f"oversight {tag} {self.grants}")

    def request(self, grant: int) -> Any:
        """A job request (parameters are a random hash: the monitor never reads them)."""
        w = self.world
        return w.space.send(w.consumer.account, w.space.c["Jobs"].functions.requestJob(
            grant, HOM_AGG, os.urandom(32), w.space.now() + 3600), value=PRICE)

    def mine(self) -> None:
        self.w3.provider.make_request("evm_mine", [])

    def frozen_by(self, grant: int) -> int:
        return self.world.space.c["Authorizations"].functions.grantOf(grant).call()[5]

    def freezes_on_chain(self, grant: int) -> list[Any]:
        return self.world.space.c["Authorizations"].events.GrantFrozen().get_logs(
            from_block=self.world.space.deployment["block"],
            argument_filters={"grantId": grant, "by": self.monitor.address})

    def cli(self, *args: Any, home: Path | None = None) -> Any:
        env = dict(self.vars, TDS_HOME=str(home)) if home else self.vars
        from tds.cli import cli

        r = CliRunner().invoke(cli, [str(a) for a in args], env=env)
        assert r.exit_code == 0 and r.exception is None, (args, r.output, r.exception)
        return r


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("oversight")
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    info = node.up(fresh=True)
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    receiver = Receiver()
    try:
        world = build_world(settings, tmp, rows=30)
        monitor = Identity.create("monitor", dev_account(2))     # holds MONITOR (chain/system.py wiring)
        IdentityRegistryClient(world.space.w3, world.space.c["IdentityRegistry"]).bind(monitor)
        monitor.save(settings.home / "identities", PASSWORD, scrypt_n=2**10)
        variables = {"TDS_HOME": str(settings.home), "TDS_RPC_URL": info.url, "TDS_CHAIN_ID": None,
                     "TDS_DEPLOYMENT": str(settings.deployment_file), "TDS_IPFS_API": None,
                     "TDS_PROJECT_ROOT": str(settings.project_root), "TDS_KEYSTORE_PASSWORD": PASSWORD}
        yield Env(world, settings, info.url, monitor, mailbox, smtp_port, receiver, variables,
                  extra={"provider_log": tmp / "provider-log"})  # the world's key service logs there
    finally:
        receiver.server.shutdown()
        smtp.stop()
        node.down()

