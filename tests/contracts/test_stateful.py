"""Hypothesis stateful test over random sequences of grants, uses (jobs), completions, failures,
reclaims, revocations, freezes (grant and asset), time passing and withdrawals.

Invariants held after every step:
- the shares credited for a completed job sum exactly to its payment;
- value is conserved: what the Jobs contract holds = Σ pull balances + Σ escrow of open jobs
  (native coin and Credits), and Σ credited = Σ paid − Σ escrow;
- a grant's uses never exceed maxUses and equal the number of accepted requests;
- nothing is used while frozen, revoked, closed, expired or offline: every request the model
  refuses reverts with the named error the model predicts, and counts nothing;
- withdraw cannot be re-entered: the ReentrancyProbe payee receives exactly its credit, once.
"""
from itertools import count

from brownie import ReentrancyProbe, accounts, chain, web3
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from conftest import (DET_EQ, DOWNLOAD, HOM_AGG, H, ZERO, complete, mint_params, now, release, reverts, terms)

OPS = [DET_EQ, HOM_AGG, DOWNLOAD]
DAY = 86400


class Model:
    def __init__(self):
        self.grants = {}  # gid -> dict
        self.jobs = {}  # jid -> dict(amount, token, status, gid, deadline)
        self.asset_frozen = {}
        self.asset_offline = {}
        self.paid = {}  # token -> total paid in
        self.credited = {}  # token -> total credited


IDX = st.integers(min_value=0, max_value=255)
PRICE = st.integers(min_value=0, max_value=10**15)
USES = st.integers(min_value=1, max_value=4)
FLAG = st.booleans()


class TdsMachine(RuleBasedStateMachine):
    """Brownie 1.22's own `state_machine` helper is broken by its mypyc build (it cannot subclass
    the user's class), so this is a plain Hypothesis machine: the class is configured once on the
    deployed system, a chain snapshot is taken, and every example starts by reverting to it."""

    @classmethod
    def configure(cls, system):
        c = system.cast
        cls.s = system
        cls.probe = ReentrancyProbe.deploy(system.jobs, {"from": c.operator})
        cls.asset2 = system.assets.mint(mint_params(system.template_id), {"from": c.provider}).return_value
        for consumer in (c.consumer, c.consumer2):
            system.credits.mint(consumer, 10**24, H("alloc"), {"from": c.regulator})
            system.credits.approve(system.jobs, 2**256 - 1, {"from": consumer})
        cls.payees = [c.provider, c.algorithm, c.oracle, c.operator, c.consumer, c.consumer2, cls.probe]
        chain.snapshot()

    def __init__(self):
        super().__init__()
        chain.revert()  # back to the configured state (Brownie keeps the snapshot for the next example)
        self._fresh_nonces()
        self.m = Model()
        self.m.asset_frozen = {self.s.asset_id: False, self.asset2: False}
        self.m.asset_offline = {self.s.asset_id: False, self.asset2: False}

    # ------------------------------------------------------------ helpers
    _examples = count(1)

    def _fresh_nonces(self):
        """Move every account's nonce forward by a per-example amount. After a revert, an example
        that repeats an earlier one's first steps would re-send byte-identical transactions (same
        nonce, same calldata, gas price 0); Brownie's history still holds the reverted copy under
        that hash and reports the new one as "dropped without known replacement". Fresh nonces
        make every transaction hash unique across examples."""
        bump = 1000 * next(self._examples)
        for acct in accounts:
            web3.provider.make_request("anvil_setNonce", [acct.address, hex(acct.nonce + bump)])

    def _pick(self, d, idx):
        keys = sorted(d)
        return keys[idx % len(keys)] if keys else None

    def _token(self, flag):
        return self.s.credits.address if flag else ZERO

    # ------------------------------------------------------------ rules
    @initialize(price=PRICE, uses=USES)
    def start_with_grants(self, price, uses):
        """Every example starts with a native-coin grant and a Credits grant to use."""
        self.rule_grant(0, price, uses, False)
        self.rule_grant(5, price + 1, uses, True)

    @rule(idx=IDX, price=PRICE, uses=USES, flag=FLAG)
    def rule_grant(self, idx, price, uses, flag):
        c = self.s.cast
        asset = [self.s.asset_id, self.asset2][idx % 2]
        if self.m.asset_frozen[asset] or self.m.asset_offline[asset]:
            return
        consumer = [c.consumer, c.consumer2][(idx // 2) % 2]
        algo = [c.algorithm.address, ZERO, self.probe.address][(idx // 4) % 3]
        expiry = now() + (DAY if idx % 3 == 0 else 10 * DAY)
        t = terms(self.s, assetId=asset, consumer=consumer.address, maxUses=uses, pricePerUse=price,
                  paymentToken=self._token(flag), algorithmProvider=algo, expiry=expiry)
        gid = self.s.auth.grant(t, {"from": c.provider}).return_value
        self.m.grants[gid] = dict(asset=asset, consumer=consumer, max=uses, uses=0, restored=0, price=price,
                                  token=self._token(flag), expiry=expiry, status="active", frozen=False)

    @rule(idx=IDX, flag=FLAG)
    def rule_request(self, idx, flag):
        gid = self._pick(self.m.grants, idx)
        if gid is None:
            return
        g = self.m.grants[gid]
        c = self.s.cast
        consumer = g["consumer"] if flag or idx % 5 else (c.consumer2 if g["consumer"] == c.consumer else c.consumer)
        op = OPS[idx % 3]
        expected = self._expected_refusal(gid, g, consumer, op)
        value = g["price"] if g["token"] == ZERO else 0
        deadline = now() + 3600
        if expected:
            with reverts(expected):
                self.s.jobs.requestJob(gid, op, H("p"), deadline, {"from": consumer, "value": value})
            return
        jid = self.s.jobs.requestJob(gid, op, H("p"), deadline, {"from": consumer, "value": value}).return_value
        g["uses"] += 1
        self.m.jobs[jid] = dict(amount=g["price"], token=g["token"], status="requested", gid=gid, deadline=deadline)
        self.m.paid[g["token"]] = self.m.paid.get(g["token"], 0) + g["price"]

    def _expected_refusal(self, gid, g, consumer, op):
        if g["status"] != "active":
            return "GrantNotActive"
        if consumer != g["consumer"]:
            return "NotGrantConsumer"
        if g["frozen"]:
            return "GrantIsFrozen"
        if now() + 1 > g["expiry"]:
            return "GrantExpired"
        if op == DOWNLOAD:
            return "OperationNotAllowed"
        if g["uses"] - g["restored"] >= g["max"]:
            return "UsesExhausted"
        if self.m.asset_frozen[g["asset"]] or self.m.asset_offline[g["asset"]]:
            return "AssetNotUsable"
        return None

    @rule(idx=IDX)
    def rule_complete(self, idx):
        open_jobs = {j: v for j, v in self.m.jobs.items() if v["status"] == "requested" and v["deadline"] > now() + 5}
        jid = self._pick(open_jobs, idx)
        if jid is None:
            return
        j = self.m.jobs[jid]
        self.s.jobs.acceptJob(jid, {"from": self.s.cast.oracle})
        g = self.m.grants[j["gid"]]
        refusal = ("GrantNotActive" if g["status"] != "active" else "GrantIsFrozen" if g["frozen"] else
                   "AssetNotUsable" if self.m.asset_frozen[g["asset"]] or self.m.asset_offline[g["asset"]] else None)
        if refusal:  # the key service's release is refused on chain: the job stays accepted until reclaimed
            with reverts(refusal):
                release(self.s, jid)
            j["status"] = "accepted"
            return
        tx = complete(self.s, jid)
        shares = [e["amount"] for e in tx.events["Credited"]] if "Credited" in tx.events else []
        assert sum(shares) == j["amount"], "credited shares must sum exactly to the payment"
        j["status"] = "done"
        self.m.credited[j["token"]] = self.m.credited.get(j["token"], 0) + j["amount"]

    @rule(idx=IDX)
    def rule_fail(self, idx):
        open_jobs = {j: v for j, v in self.m.jobs.items() if v["status"] == "requested" and v["deadline"] > now() + 5}
        jid = self._pick(open_jobs, idx)
        if jid is None:
            return
        self.s.jobs.acceptJob(jid, {"from": self.s.cast.oracle2})
        self.s.jobs.failJob(jid, 1, {"from": self.s.cast.oracle2})
        j = self.m.jobs[jid]
        j["status"] = "done"
        self.m.credited[j["token"]] = self.m.credited.get(j["token"], 0) + j["amount"]

    @rule(idx=IDX)
    def rule_reclaim(self, idx):
        late = {j: v for j, v in self.m.jobs.items() if v["status"] in ("requested", "accepted")
                and v["deadline"] < now()}
        jid = self._pick(late, idx)
        if jid is None:
            return
        j = self.m.jobs[jid]
        consumer = self.m.grants[j["gid"]]["consumer"]
        self.s.jobs.reclaim(jid, {"from": consumer})
        self.m.grants[j["gid"]]["restored"] += 1  # abandoned, not the consumer's doing: the use comes back
        j["status"] = "done"
        self.m.credited[j["token"]] = self.m.credited.get(j["token"], 0) + j["amount"]

    @rule(idx=IDX, flag=FLAG)
    def rule_revoke_or_close(self, idx, flag):
        gid = self._pick(self.m.grants, idx)
        if gid is None or self.m.grants[gid]["status"] != "active":
            return
        g = self.m.grants[gid]
        if flag:
            self.s.auth.revoke(gid, H("r"), {"from": self.s.cast.provider})
            g["status"] = "revoked"
        else:
            self.s.auth.close(gid, H("destroyed"), {"from": g["consumer"]})
            g["status"] = "closed"

    @rule(idx=IDX, flag=FLAG)
    def rule_freeze_grant(self, idx, flag):
        gid = self._pick(self.m.grants, idx)
        if gid is None or self.m.grants[gid]["status"] != "active":
            return
        g = self.m.grants[gid]
        c = self.s.cast
        if g["frozen"]:
            self.s.auth.unfreeze(gid, {"from": c.regulator})
            g["frozen"] = False
        else:
            self.s.auth.freeze(gid, 7, {"from": c.monitor if flag else c.provider})
            g["frozen"] = True

    @rule(idx=IDX)
    def rule_freeze_asset(self, idx):
        asset = [self.s.asset_id, self.asset2][idx % 2]
        if self.m.asset_offline[asset]:
            return
        if self.m.asset_frozen[asset]:
            self.s.assets.unfreeze(asset, {"from": self.s.cast.regulator})
        else:
            self.s.assets.freeze(asset, 3, {"from": self.s.cast.regulator})
        self.m.asset_frozen[asset] = not self.m.asset_frozen[asset]

    @rule(idx=IDX)
    def rule_take_offline(self, idx):
        asset = self.asset2
        if idx % 7 or self.m.asset_offline[asset] or self.m.asset_frozen[asset]:
            return
        self.s.assets.takeOffline(asset, H("final"), {"from": self.s.cast.provider})
        self.m.asset_offline[asset] = True

    @rule(flag=FLAG)
    def rule_time_passes(self, flag):
        chain.sleep(2 * DAY if flag else 2 * 3600)
        chain.mine()

    @rule(idx=IDX, flag=FLAG)
    def rule_withdraw(self, idx, flag):
        payee = self.payees[idx % len(self.payees)]
        token = self._token(flag)
        owed = self.s.jobs.balanceOf(payee, token)
        if payee == self.probe:
            if token != ZERO or owed == 0:
                return
            before = self.probe.received()
            self.probe.pull({"from": self.s.cast.operator})
            assert self.probe.received() - before == owed and not self.probe.reentered()
        elif owed == 0:
            with reverts("NothingToWithdraw"):
                self.s.jobs.withdraw(token, {"from": payee})
        else:
            self.s.jobs.withdraw(token, {"from": payee})
        assert self.s.jobs.balanceOf(payee, token) == 0

    # ------------------------------------------------------------ invariants
    @invariant()
    def invariant_uses_within_limits(self):
        for gid, g in self.m.grants.items():
            on_chain = self.s.auth.grantOf(gid)
            assert on_chain["uses"] == g["uses"] and on_chain["maxUses"] == g["max"]
            assert self.s.auth.restoredUses(gid) == g["restored"] and g["uses"] - g["restored"] <= g["max"]

    @invariant()
    def invariant_value_conserved(self):
        for token in (ZERO, self.s.credits.address):
            held = self.s.jobs.balance() if token == ZERO else self.s.credits.balanceOf(self.s.jobs)
            balances = sum(self.s.jobs.balanceOf(p, token) for p in self.payees)
            escrow = sum(j["amount"] for j in self.m.jobs.values() if j["token"] == token and j["status"] != "done")
            assert held == balances + escrow
            assert self.m.credited.get(token, 0) == self.m.paid.get(token, 0) - escrow


def test_stateful(system):
    """About a minute on two cores. Shrinking is off to keep a failing run inside the suite's time
    budget; the failing step sequence is still printed (and saved in Hypothesis' database)."""
    TdsMachine.configure(system)
    run_state_machine_as_test(TdsMachine, settings=settings(max_examples=20, stateful_step_count=30, phases=[Phase.explicit, Phase.reuse, Phase.generate],
                                                            deadline=None))
