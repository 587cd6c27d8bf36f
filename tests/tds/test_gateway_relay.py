"""The gateway's relay and store against a node that refuses or reverts (issue 12, item 16): job
parameters are stored only once the node accepts the request and unpinned when it reverts; a
relayed offer the chain would refuse costs the relayer nothing; per-holder relay budgets."""
from __future__ import annotations

from typing import Any

import pytest
from eth_utils import keccak
from fastapi.testclient import TestClient

from chain import Member
from chain.accounts import dev_account
from chain.eip712 import GrantTerms, grant_typed_data, sign_typed
from chain.params import (
    canonical_params,
    params_cid,
    params_hash,
)
from did.challenge import ChallengeVerifier
from did.guard import ChallengeGuard
from tds.gateway import create_app
from tds.gateway.limits import RateLimit
from tests.tds.gateway_world import (  # noqa: F401
    DET_EQ,
    HOM_AGG,
    OPE_RANGE,
    PRICE,
    SECRET,
    ZERO,
    Clock,
    World,
    _fresh_nonce,
    apply_fn,
    auth,
    granted,
    offer,
    request_job,
    sealed,
    signed,
    world,
)


def _offer_for(w: World, asset: int, consumer: str, nonce: int, signer: str = "provider") -> dict[str, Any]:
    """A grant offer over ``asset`` for ``consumer`` (an address), signed by ``signer``."""
    now = w.now()
    terms = GrantTerms(asset, consumer, keccak(text="item16"), HOM_AGG, 0, 0, now + 30 * 86400, 3, ZERO, PRICE, ZERO)
    auth_c = w.space.c["Authorizations"]
    sig = sign_typed(grant_typed_data(terms, nonce, now + 3600, w.w3.eth.chain_id, auth_c.address),
                     w.ids[signer].account.key)
    body = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in terms.__dict__.items()}
    return {"terms": body, "nonce": nonce, "deadline": now + 3600, "signature": "0x" + sig.hex()}


def _salted(w: World, tag: str, transfers: int = 0) -> int:
    from chain.eip712 import offer_nonce

    return offer_nonce(transfers, int.from_bytes(keccak(text=f"{tag}{w.w3.eth.block_number}")[:20], "big"))


def _operator_grants(w: World, who: str, role: str) -> None:
    if not w.space.c["IdentityRegistry"].functions.hasParticipantRole(w.ids[who].address, keccak(text=role)).call():
        w.space.grant_role(dev_account(0), Member(who, w.ids[who].account, w.ids[who].did), role,
                           keccak(text=f"vc:{who}:{role}"))


def _new_asset(w: World, holder: str = "provider") -> int:
    _operator_grants(w, holder, "PROVIDER")
    member = Member(holder, w.ids[holder].account, w.ids[holder].did)
    return w.space.register_asset(member, b"\x12\x20" + keccak(text=f"a{w.w3.eth.block_number}"),
                                  b"\x12\x20" + bytes(32), keccak(text="m"), "internal", keccak(text="q"), 1)


def test_job_params_stored_only_once_the_node_accepts(world: World):
    """(a) A request that simulates but that the node refuses (a used nonce) leaves nothing in the
    store; the same signed request posted twice is sent once."""
    w = world
    grant = granted(w)
    query = sealed(w, {"op": "sum", "field": "node-refused"})
    digest = params_hash(canonical_params(query))
    fn = w.space.c["Jobs"].functions.requestJob(grant, HOM_AGG, digest, w.now() + 3600)
    stale = signed(w, "consumer", fn, value=PRICE, nonce=0)  # simulates fine; the node refuses the nonce
    r = w.client.post("/jobs", json={"rawTransaction": stale, "params": query}, headers=auth(w.client, w.ids["consumer"]))
    assert r.status_code == 409 and r.json()["error"] == "rejected-by-node", r.text
    assert set(r.json()) == {"error", "detail"} and "nonce" in r.json()["detail"]
    with pytest.raises(Exception):
        w.store.cat(params_cid(digest))  # nothing stored for it
    raw = signed(w, "consumer", fn, value=PRICE)
    first = w.client.post("/jobs", json={"rawTransaction": raw, "params": query},
                          headers=auth(w.client, w.ids["consumer"]))
    assert first.status_code == 201, first.text
    assert params_cid(digest) in w.store.blocks.pin_ls()  # stored (and pinned) once accepted and mined
    sent = w.w3.eth.get_transaction_count(w.ids["consumer"].address)
    again = w.client.post("/jobs", json={"rawTransaction": raw, "params": query},
                          headers=auth(w.client, w.ids["consumer"]))
    assert again.status_code == 201 and again.json()["jobId"] == first.json()["jobId"]
    assert w.w3.eth.get_transaction_count(w.ids["consumer"].address) == sent  # not sent twice


def test_job_params_unpinned_when_the_mined_request_reverts(world: World):
    """(a) Simulated and accepted, then mined after its deadline (the chain moved on): a 409 and
    the parameters are not left pinned in the store."""
    import threading

    from web3 import HTTPProvider, Web3

    w = world
    grant = granted(w)
    query = sealed(w, {"op": "sum", "field": "mined-late"})
    digest = params_hash(canonical_params(query))
    deadline = w.now() + 60
    raw = signed(w, "consumer", w.space.c["Jobs"].functions.requestJob(grant, HOM_AGG, digest, deadline), value=PRICE)
    headers = auth(w.client, w.ids["consumer"])
    miner = Web3(HTTPProvider(w.settings.rpc_url))
    tx_hash = keccak(bytes.fromhex(raw[2:]))

    def mine_after_the_deadline() -> None:
        from web3.exceptions import TransactionNotFound

        for _ in range(600):  # until the gateway has handed the transaction to the node
            try:
                miner.eth.get_transaction(tx_hash)
                break
            except TransactionNotFound:
                threading.Event().wait(0.01)
        miner.provider.make_request("evm_setNextBlockTimestamp", [deadline + 100])
        miner.provider.make_request("evm_mine", [])

    w.w3.provider.make_request("evm_setAutomine", [False])
    thread = threading.Thread(target=mine_after_the_deadline, daemon=True)
    try:
        thread.start()
        r = w.client.post("/jobs", json={"rawTransaction": raw, "params": query}, headers=headers)
    finally:
        thread.join(timeout=10)
        w.w3.provider.make_request("evm_setAutomine", [True])
    assert r.status_code == 409 and r.json()["error"] == "reverted", r.text
    assert w.w3.eth.get_transaction_receipt(tx_hash)["status"] == 0  # mined, reverted
    assert params_cid(digest) not in w.store.blocks.pin_ls()


def test_relayed_offer_the_chain_would_refuse_costs_the_relayer_nothing(world: World):
    """(b) Offers that pass the gateway's own checks but would revert: a 409 naming the contract
    error, and the relayer sends nothing."""
    w = world
    c, provider = w.client, w.ids["provider"]
    sent = w.w3.eth.get_transaction_count(w.relayer.address)
    # a consumer without the CONSUMER role
    r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["stranger"].address, _salted(w, "c")),
               headers=auth(c, provider))
    assert r.status_code == 409 and r.json()["error"] == "consumer-not-registered", r.text
    assert "ConsumerNotRegistered" in r.json()["detail"] and set(r.json()) == {"error", "detail"}
    # a holder whose PROVIDER role was revoked since it signed
    registry = w.space.c["IdentityRegistry"].functions
    w.space.send(dev_account(0), registry.revokeParticipantRole(provider.address, keccak(text="PROVIDER"),
                                                                 keccak(text="suspended")))
    try:
        r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, "p")),
                   headers=auth(c, provider))
        assert r.status_code == 409 and r.json()["error"] == "provider-not-registered", r.text
    finally:
        _operator_grants(w, "provider", "PROVIDER")
    # an offer signed before the certificate changed hands (there and back): OfferOutdated
    asset = _new_asset(w)
    old = _offer_for(w, asset, w.ids["consumer"].address, _salted(w, "o", transfers=0))
    _operator_grants(w, "stranger", "PROVIDER")
    assets = w.space.c["AssetRegistry"].functions
    w.space.send(provider.account, assets.transferFrom(provider.address, w.ids["stranger"].address, asset))
    w.space.send(w.ids["stranger"].account, assets.transferFrom(w.ids["stranger"].address, provider.address, asset))
    r = c.post("/grants", json=old, headers=auth(c, provider))
    assert r.status_code == 409 and r.json()["error"] == "offer-outdated", r.text
    assert "OfferOutdated" in r.json()["detail"]
    assert w.w3.eth.get_transaction_count(w.relayer.address) == sent  # none of them was sent
    fresh = _offer_for(w, asset, w.ids["consumer"].address, _salted(w, "n", transfers=2))
    r = c.post("/grants", json=fresh, headers=auth(c, provider))
    assert r.status_code == 201, r.text  # the holder's new offer, at the current transfer count


def test_offer_used_just_before_sending_is_not_paid_for(world: World):
    """(b) The simulation runs right before sending: an offer whose nonce was spent after the
    gateway's checks (here: cancelled on chain) is refused with InvalidAccountNonce, not sent;
    over HTTP, a cancelled offer is a 409 offer-cancelled."""
    from tds.gateway.errors import Conflict
    from tds.gateway.relay import Relay, RelayBudget, Relayer

    w = world
    provider = w.ids["provider"]
    nonce = _salted(w, "cancel")
    offer_body = _offer_for(w, w.asset, w.ids["consumer"].address, nonce)
    terms = GrantTerms(**{k: (bytes.fromhex(v[2:]) if k == "purposeHash" else v)
                          for k, v in offer_body["terms"].items()})
    auth_c = w.space.c["Authorizations"]
    fn = auth_c.functions.grantBySignature(terms.as_tuple(), nonce, offer_body["deadline"],
                                           bytes.fromhex(offer_body["signature"][2:]))
    assert auth_c.functions.nonces(provider.address, nonce >> 64).call() == nonce  # passes the gateway's check …
    w.space.send(provider.account, auth_c.functions.cancelOffer(nonce))  # … then the holder cancels it
    payer = dev_account(7)
    budget = RelayBudget()
    relay = Relay(w.w3, Relayer(payer, budget))
    before = w.w3.eth.get_transaction_count(payer.address)
    with pytest.raises(Conflict) as refused:
        relay.send_as_relayer(fn, provider.address)
    assert refused.value.code == "invalid-account-nonce" and "InvalidAccountNonce" in refused.value.detail
    assert w.w3.eth.get_transaction_count(payer.address) == before and not budget._live(provider.address, 0)
    r = w.client.post("/grants", json=offer_body, headers=auth(w.client, provider))
    assert r.status_code == 409 and r.json()["error"] == "offer-cancelled", r.text


def test_relay_budget_per_holder(world: World):
    """(c) Each holder gets so many relayed offers and so much gas per window; then a 429 with
    Retry-After, while other holders still relay; the window slides."""
    from tds.gateway.relay import RelayBudget, Relayer

    w = world
    clock = Clock()
    payer = dev_account(2)
    app = create_app(w.settings, store=w.store, guard=ChallengeGuard(ChallengeVerifier("gateway.test")),
                     guard_reads=False, relayer=Relayer(payer, RelayBudget(max_offers=2, window=600, clock=clock)),
                     rate_limit=RateLimit(per_second=1000, burst=1000))
    c = TestClient(app)
    provider, stranger = w.ids["provider"], w.ids["stranger"]
    theirs = _new_asset(w, "stranger")
    gas = []
    for tag in ("b1", "b2"):
        r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, tag)),
                   headers=auth(c, provider))
        assert r.status_code == 201 and r.json()["paidBy"] == payer.address, r.text
        gas.append(r.json()["gasUsed"])
    sent = w.w3.eth.get_transaction_count(payer.address)
    r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, "b3")),
               headers=auth(c, provider))
    assert r.status_code == 429 and r.json()["error"] == "relay-budget-offers", r.text
    assert r.headers["retry-after"] == "600" and set(r.json()) == {"error", "detail"}
    assert w.w3.eth.get_transaction_count(payer.address) == sent
    r = c.post("/grants", json=_offer_for(w, theirs, w.ids["consumer"].address, _salted(w, "s1"), signer="stranger"),
               headers=auth(c, stranger))
    assert r.status_code == 201, r.text  # another holder's budget is its own
    clock.t += 601
    r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, "b4")),
               headers=auth(c, provider))
    assert r.status_code == 201, r.text

    # gas: room for one offer, not two
    app = create_app(w.settings, store=w.store, guard=ChallengeGuard(ChallengeVerifier("gateway.test")),
                     guard_reads=False, rate_limit=RateLimit(per_second=1000, burst=1000),
                     relayer=Relayer(payer, RelayBudget(max_gas=int(max(gas) * 1.5), window=600, clock=clock)))
    c = TestClient(app)
    r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, "g1")),
               headers=auth(c, provider))
    assert r.status_code == 201, r.text
    r = c.post("/grants", json=_offer_for(w, w.asset, w.ids["consumer"].address, _salted(w, "g2")),
               headers=auth(c, provider))
    assert r.status_code == 429 and r.json()["error"] == "relay-budget-gas", r.text
    assert int(r.headers["retry-after"]) == 600
