"""The console tests' world: a real chain with the system deployed, bound participants with roles,
a registered asset, a content store, the gateway app with the test wallet's route mounted, and
the oracle's part of a job done for real (accept, seal to the consumer's on-chain key, complete)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eth_utils import keccak

from chain import Member, Space
from chain.accounts import dev_account
from chain.cid import parse_cid
from chain.config import load_settings
from chain.connection import connect
from chain.eip712 import job_result_typed_data, sign_typed
from chain.node import EmbeddedNode, free_port
from chain.params import open_params, params_cid
from chain.system import deploy_system
from did.challenge import ChallengeVerifier
from did.envelope import seal
from did.guard import ChallengeGuard
from did.identity import Identity
from did.registry import IdentityRegistryClient
from did.sealing import RESULT_PURPOSE
from offchain.store.client import EmbeddedStore
from tds.gateway import create_app
from tds.gateway.limits import RateLimit
from tests.tds.console_wallet import TestWallet, mount_test_wallet

ROLES = {"provider": (3, "PROVIDER"), "consumer": (4, "CONSUMER"), "oracle": (5, "COMPUTE_PROVIDER"),
         "stranger": (8, None)}
PASSWORD = "console-test-password"


@dataclass
class ConsoleWorld:
    w3: Any
    space: Space
    ids: dict[str, Identity]
    asset: int
    store: EmbeddedStore
    app: Any
    wallet: TestWallet
    key_file: Path  # the consumer's did-keys.json (opened in the page with PASSWORD)

    def now(self) -> int:
        return self.space.now()

    def use(self, who: str) -> None:
        """Select ``who``'s account in the test wallet."""
        self.wallet.account = self.ids[who].account

    def query_of(self, job_id: int) -> dict[str, Any]:
        """The job's query, as the provider's key service opens its sealed parameters."""
        ev = self.space.c["Jobs"].events.JobRequested().get_logs(from_block=0, argument_filters={"jobId": job_id})
        raw = self.store.cat(params_cid(bytes(ev[0]["args"]["paramsHash"])))
        return open_params(json.loads(raw), self.ids["provider"].x25519)

    def complete(self, job_id: int, payload: dict[str, Any]) -> bytes:
        """The oracle's part, for real: accept, seal the answer to the consumer's on-chain key, store, complete."""
        jobs, oracle = self.space.c["Jobs"], self.ids["oracle"]
        self.space.send(oracle.account, jobs.functions.acceptJob(job_id))
        sealed = seal(self.ids["provider"], self.ids["consumer"].did,
                      self.space.key_agreement_key(self.ids["consumer"].address),
                      json.dumps(payload).encode(), RESULT_PURPOSE).to_bytes()
        cid = parse_cid(self.store.add_bytes(sealed, cid_version=1)).to_bytes()
        self.space.send(self.ids["provider"].account, jobs.functions.recordRelease(job_id, keccak(sealed)))
        sig = sign_typed(job_result_typed_data(job_id, keccak(sealed), cid, self.w3.eth.chain_id, jobs.address),
                         oracle.account.key)
        self.space.send(oracle.account, jobs.functions.completeJob(job_id, cid, keccak(sealed), sig))
        return sealed


@contextmanager
def console_world(tmp: Path) -> Iterator[ConsoleWorld]:
    """Start a node, deploy, bind the participants, register one asset; stop the node afterwards."""
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    node.up(fresh=True)
    try:
        w3 = connect(settings)
        doc = deploy_system(settings, w3=w3)
        space = Space(w3, doc)
        registry = IdentityRegistryClient.from_deployment(w3, doc)
        ids = {name: Identity.create(name, dev_account(i)) for name, (i, _) in ROLES.items()}
        operator = dev_account(0)
        for name, (_, role) in ROLES.items():
            registry.bind(ids[name])
            if role:
                registry.grant_participant_role(operator, ids[name].address, role, keccak(text=f"vc:{name}"))
        template = space.publish_template(operator, "standard", b"terms", 3, 63, [7000, 1000, 1500, 500])
        provider = Member("provider", ids["provider"].account, ids["provider"].did)
        asset = space.register_asset(provider, b"\x12\x20" + bytes(32), b"\x12\x20" + b"\1" * 32, keccak(text="m"),
                                     "sensitive", keccak(text="q"), template)
        store = EmbeddedStore(tmp / "store")
        live = replace(settings, rpc_url=w3.provider.endpoint_uri)
        app = create_app(live, store=store, guard=ChallengeGuard(ChallengeVerifier("console.test")), guard_reads=False,
                         rate_limit=RateLimit(per_second=1000, burst=1000))
        wallet = TestWallet(w3, ids["consumer"].account)
        mount_test_wallet(app, wallet)
        folder = ids["consumer"].save(tmp / "identities", PASSWORD, scrypt_n=2**10)
        yield ConsoleWorld(w3, space, ids, asset, store, app, wallet, folder / "did-keys.json")
    finally:
        node.down()
