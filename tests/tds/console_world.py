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
    template: int = 1
    home: Path | None = None
    plain_app: Any = None  # the gateway without an event index (the same as app unless indexed)

    @property
    def ledger(self) -> Any:
        """The console's ledger file (nonces, pending parameter blocks), as the gateway keeps it."""
        from tds.gateway.console.ledger import ConsoleLedger

        return ConsoleLedger(self.home / "console" / "ledger.sqlite")

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

    def reported_asset(self, report: dict[str, Any], stored: dict[str, Any] | None = None) -> int:
        """An asset whose manifest names its quality report in the store, as ``tds data encrypt``
        leaves them; the chain records the hash of ``report``, the store holds ``stored`` (default:
        the same report; another one makes a mismatch)."""
        from offchain.canonical import canonical_hash, canonical_json

        report_cid = self.store.add_bytes(canonical_json(stored if stored is not None else report))
        manifest = json.dumps({"dataset": "salaries", "quality_report_cid": report_cid}).encode()
        content = parse_cid(self.store.add_bytes(manifest)).to_bytes()
        provider = Member("provider", self.ids["provider"].account, self.ids["provider"].did)
        return self.space.register_asset(provider, content, content, keccak(manifest), "internal",
                                         bytes.fromhex(canonical_hash(report)[2:]), self.template)

    def collaboration(self, payload: dict[str, Any], price: int = 10**15) -> tuple[int, bytes]:
        """A one-step MPC collaboration of the consumer over a grant on the world's asset, run by the
        oracle's account as compute node and completed with ``payload`` sealed to the consumer (the
        coordinator's part, for real: a ``tds-collab-result/1`` envelope as PSI outputs are)."""
        from chain import collab as cc
        from chain.eip712 import GrantTerms

        node, consumer = self.ids["oracle"], self.ids["consumer"]
        if node.address not in self.space.c["NodeRegistry"].functions.nodes().call():
            cc.add_node(self.space, dev_account(0), node.address, cc.NodeKind.COMPUTE, "node-1", "tds-node://node-1")
        auth = self.space.c["Authorizations"]
        terms = GrantTerms(self.asset, consumer.address, keccak(text="joint"), 8, 0, 0, self.now() + 86400, 1,
                           "0x" + "00" * 20, price, "0x" + "00" * 20)
        r = self.space.send(self.ids["provider"].account, auth.functions.grant(terms.as_tuple()))
        grant = auth.events.GrantIssued().process_receipt(r)[0]["args"]["grantId"]
        step = cc.StepRequest(8, 0, True, keccak(text="step document"), (grant,), (node.address,))
        collab = cc.request_collaboration(self.space, consumer.account, keccak(text="description"), [step], 3600,
                                          price)
        session = f"c{self.w3.eth.chain_id}-{collab}-s0"
        body = json.dumps({"format": "tds-collab-result/1", "session": session, **payload}, sort_keys=True)
        sealed = seal(node, consumer.did, self.space.key_agreement_key(consumer.address), body.encode(),
                      f"tds-collab-result/1|{session}").to_bytes()
        cid = parse_cid(self.store.add_bytes(sealed, cid_version=1)).to_bytes()
        cc.complete_step(self.space, node.account, collab, 0, keccak(sealed), cid)
        return collab, sealed


@contextmanager
def following(index: Any) -> Iterator[None]:
    """Follow the chain into ``index`` in a thread (as ``tds gateway`` does) until the block ends."""
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=index.run, kwargs={"stop": stop.is_set, "idle": 0.25, "on_error": lambda e: None},
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@contextmanager
def console_world(tmp: Path, indexed: bool = False) -> Iterator[ConsoleWorld]:
    """Start a node, deploy, bind the participants, register one asset; stop the node afterwards.
    ``indexed``: the gateway serves its reads from an event index it follows (``app``), and
    ``plain_app`` is the same gateway without one (the page then reads logs through the wallet)."""
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
        index = None
        if indexed:
            from audit.index import EventIndex

            index = EventIndex(w3, doc, f"sqlite:///{tmp / 'index.sqlite'}")
        wallet = TestWallet(w3, ids["consumer"].account)
        apps = []
        for idx in ([index, None] if indexed else [None]):
            app = create_app(live, store=store, guard=ChallengeGuard(ChallengeVerifier("console.test")),
                             guard_reads=False, rate_limit=RateLimit(per_second=1000, burst=1000), index=idx)
            mount_test_wallet(app, wallet)
            apps.append(app)
        folder = ids["consumer"].save(tmp / "identities", PASSWORD, scrypt_n=2**10)
        world = ConsoleWorld(w3, space, ids, asset, store, apps[0], wallet, folder / "did-keys.json", template,
                             settings.home, apps[-1])
        if index is None:
            yield world
        else:
            with following(index):
                yield world
    finally:
        node.down(save=False)
