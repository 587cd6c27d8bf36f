"""The gateway write tests' world: a real chain with the system deployed, bound participants with
roles, a registered asset, a content store, the gateway app with DID challenge auth and a relayer;
helpers that sign transactions and offers in the participants' own wallets."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import pytest
from eth_utils import keccak
from fastapi.testclient import TestClient

from chain import Member, Space
from chain.accounts import dev_account
from chain.config import load_settings
from chain.connection import connect
from chain.eip712 import GrantTerms, grant_typed_data, sign_typed
from chain.node import EmbeddedNode, free_port
from chain.params import (
    canonical_params,
    params_hash,
    seal_params,
)
from chain.system import deploy_system
from did.challenge import ChallengeVerifier
from did.guard import ChallengeGuard
from did.identity import Identity
from did.registry import IdentityRegistryClient
from offchain.store.client import EmbeddedStore
from tds.gateway import create_app
from tds.gateway.limits import RateLimit

DET_EQ, OPE_RANGE, HOM_AGG = 1, 2, 4
PRICE = 10**15
ZERO = "0x" + "00" * 20
SECRET = "PLAINTEXT-ROW alice 1987-03-04 salary 91234"  # what must never leave the gateway in clear
ROLES = {"provider": (3, "PROVIDER"), "consumer": (4, "CONSUMER"), "oracle": (5, "COMPUTE_PROVIDER"),
         "stranger": (8, None), "regulator": (1, None)}



@dataclass
class World:
    w3: Any
    space: Space
    ids: dict[str, Identity]
    asset: int
    store: EmbeddedStore
    settings: Any
    client: TestClient
    relayer: Any

    def now(self) -> int:
        return self.space.now()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("gateway-writes")
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
        ids["unbound"] = Identity.create("unbound", dev_account(9))
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
        relayer = dev_account(6)  # the operator's relayer: no role, just funded
        app = create_app(live, store=store, guard=ChallengeGuard(ChallengeVerifier("gateway.test")), guard_reads=False,
                         relayer=relayer, rate_limit=RateLimit(per_second=1000, burst=1000))
        yield World(w3, space, ids, asset, store, live, TestClient(app), relayer)
    finally:
        node.down(save=False)


def auth(client: TestClient, who: Identity) -> dict[str, str]:
    """Answer a fresh challenge of the gateway as ``who``."""
    from did.guard import presentation_header

    return presentation_header(who, client.get("/auth/challenge").json()["www_authenticate"])


def signed(w: World, who: str, fn: Any, *, value: int = 0, chain_id: int | None = None, nonce: int | None = None) -> str:
    """``fn`` as a raw transaction signed in ``who``'s wallet (the gateway never sees the key)."""
    acct = w.ids[who].account if who in w.ids else who
    tx = fn.build_transaction({"from": acct.address, "value": value, "gas": 600_000,
                               "nonce": w.w3.eth.get_transaction_count(acct.address) if nonce is None else nonce,
                               "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
                               "chainId": chain_id or w.w3.eth.chain_id})
    return "0x" + bytes(acct.sign_transaction(tx).raw_transaction).hex()


def apply_fn(w: World, operations: int = HOM_AGG | OPE_RANGE, asset: int | None = None) -> Any:
    return w.space.c["Authorizations"].functions.applyFor(asset or w.asset, keccak(text="study"), operations, 0, 0,
                                                          w.now() + 30 * 86400, 5)


def offer(w: World, signer: str = "provider", *, nonce: int = 0, deadline: int | None = None) -> dict[str, Any]:
    deadline = deadline if deadline is not None else w.now() + 3600
    expiry = w.now() + 30 * 86400
    terms = GrantTerms(w.asset, w.ids["consumer"].address, keccak(text="offer"), HOM_AGG, 0, 0, expiry, 3, ZERO, PRICE,
                       ZERO)
    auth_c = w.space.c["Authorizations"]
    sig = sign_typed(grant_typed_data(terms, nonce, deadline, w.w3.eth.chain_id, auth_c.address),
                     w.ids[signer].account.key)
    body = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in terms.__dict__.items()}
    return {"terms": body, "nonce": nonce, "deadline": deadline, "signature": "0x" + sig.hex()}


def granted(w: World) -> int:
    r = w.client.post("/grants", json=offer(w, nonce=_fresh_nonce(w)), headers=auth(w.client, w.ids["provider"]))
    assert r.status_code == 201, r.text
    return r.json()["grantId"]


def _fresh_nonce(w: World) -> int:
    """A new keyed nonce for an offer over ``w.asset``: its transfer count on top (offers die when the
    certificate changes hands), then a 160-bit salt, sequence 0 (chain.eip712.offer_nonce)."""
    from chain.eip712 import offer_nonce

    transfers = w.space.c["AssetRegistry"].functions.transfersOf(w.asset).call()
    return offer_nonce(transfers, int.from_bytes(keccak(text=f"k{w.now()}{w.w3.eth.block_number}")[:20], "big"))


def sealed(w: World, query: dict[str, Any]) -> dict[str, Any]:
    """The job parameters as a consumer's client sends them: sealed to the provider's key service."""
    return json.loads(seal_params(query, [w.space.key_agreement_key(w.ids["provider"].address)]))


def request_job(w: World, grant: int, query: dict[str, Any]) -> Any:
    query = sealed(w, query)
    digest = params_hash(canonical_params(query))
    fn = w.space.c["Jobs"].functions.requestJob(grant, HOM_AGG, digest, w.now() + 3600)
    return w.client.post("/jobs", json={"rawTransaction": signed(w, "consumer", fn, value=PRICE), "params": query},
                         headers=auth(w.client, w.ids["consumer"]))


class Clock:
    """A settable time source for the rate limiter."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t
