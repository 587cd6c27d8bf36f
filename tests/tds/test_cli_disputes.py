"""Disputes end to end on the embedded chain, through the command line (tds/cli/disputes.py over
chain/disputes.py): a template with a dispute window; a completed job disputed by its consumer and
fully refunded by the regulator (the payees get nothing, the consumer's balance comes back), with
the refusals a participant meets; and the undisputed path released after the window."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from eth_utils import keccak
from web3.logs import DISCARD

import tds.cli.disputes  # noqa: F401  (registers the commands until tds.cli imports it)
from chain import Member, Space
from chain.accounts import dev_account
from chain.disputes import HoldStatus, dispute_window, hold_of, set_dispute_window
from chain.eip712 import ZERO_ADDRESS, GrantTerms, job_result_typed_data, sign_typed
from chain.ops import HOM_AGG
from did.identity import Identity
from did.registry import IdentityRegistryClient
from tds.cli import cli
from tds.cli.refusals import NotYours, StateRefused
from tests.support.chains import private_chain

PRICE = 10**15
SPLIT = [7000, 1000, 1500, 500]  # provider, algorithm (none here: to the provider), compute, operator
WINDOW = 2 * 86400
PROVIDER, CONSUMER, ORACLE, REGULATOR, OPERATOR = 3, 4, 5, 1, 0


class World:
    def __init__(self, settings: Any, space: Space):
        self.settings, self.space = settings, space
        self.jobs = space.c["Jobs"]
        self.acct = {i: dev_account(i) for i in (OPERATOR, REGULATOR, PROVIDER, CONSUMER, ORACLE)}
        self.env = {"TDS_HOME": str(settings.home), "TDS_RPC_URL": f"http://127.0.0.1:{settings.chain_port}",
                    "TDS_CHAIN_ID": None, "TDS_DEPLOYMENT": str(settings.deployment_file), "TDS_IPFS_API": None,
                    "TDS_PROJECT_ROOT": str(settings.project_root), "TDS_INDEX_URL": None}

    def send(self, who: int, fn: Any, value: int = 0) -> Any:
        return self.space.send(self.acct[who], fn, value=value)

    def cli(self, *args: Any) -> Any:
        return CliRunner().invoke(cli, [str(a) for a in args], env=self.env)

    def ok(self, *args: Any) -> str:
        r = self.cli(*args)
        assert r.exit_code == 0 and r.exception is None, (args, r.output, r.exception)
        return r.stdout

    def refused(self, kind: type, needle: str, *args: Any) -> None:
        r = self.cli(*args)
        assert isinstance(r.exception, kind) and needle in str(r.exception), (args, r.output, repr(r.exception))

    def balance(self, who: int) -> int:
        return self.jobs.functions.balanceOf(self.acct[who].address, ZERO_ADDRESS).call()

    def completed_job(self, grant_id: int, tag: str) -> int:
        """Requested by the consumer, accepted, released by the provider's key service, completed."""
        deadline = self.space.now() + 3600
        r = self.send(CONSUMER, self.jobs.functions.requestJob(grant_id, HOM_AGG, keccak(text=tag), deadline),
                      value=PRICE)
        job = self.jobs.events.JobRequested().process_receipt(r, errors=DISCARD)[0]["args"]["jobId"]
        self.send(ORACLE, self.jobs.functions.acceptJob(job))
        rh, cid = keccak(text=f"answer:{tag}"), b"\x01\x55\x12\x20" + keccak(text=f"cid:{tag}")
        self.send(PROVIDER, self.jobs.functions.recordRelease(job, rh))
        sig = sign_typed(job_result_typed_data(job, rh, cid, self.space.w3.eth.chain_id, self.jobs.address),
                         self.acct[ORACLE].key)
        self.send(ORACLE, self.jobs.functions.completeJob(job, cid, rh, sig))
        return job


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, int]]:
    with private_chain(tmp_path_factory.mktemp("disputes")) as (settings, space):
        w = World(settings, space)
        registry = IdentityRegistryClient(space.w3, space.c["IdentityRegistry"])
        for i, name, role in [(PROVIDER, "provider", "PROVIDER"), (CONSUMER, "consumer", "CONSUMER"),
                              (ORACLE, "oracle", "COMPUTE_PROVIDER")]:
            ident = Identity.create(name, w.acct[i])
            registry.bind(ident)
            space.grant_role(w.acct[OPERATOR], Member(name, w.acct[i], ident.did), role, keccak(text=f"vc:{name}"))
        template = space.publish_template(w.acct[OPERATOR], "disputable", b"terms with a window", 3, 63, SPLIT)
        set_dispute_window(space, w.acct[OPERATOR], template, WINDOW)
        assert dispute_window(space, template) == WINDOW
        provider = Member("provider", w.acct[PROVIDER], "")
        asset = space.register_asset(provider, b"\x01\x55\x12\x20" + keccak(text="content"),
                                     b"\x01\x55\x12\x20" + keccak(text="meta"), keccak(text="manifest"), "internal",
                                     keccak(text="quality"), template)
        auth = space.c["Authorizations"]
        terms = GrantTerms(asset, w.acct[CONSUMER].address, keccak(text="study"), HOM_AGG, 0, 0,
                           space.now() + 30 * 86400, 10, ZERO_ADDRESS, PRICE, ZERO_ADDRESS)
        r = w.send(PROVIDER, auth.functions.grant(terms.as_tuple()))
        grant = auth.events.GrantIssued().process_receipt(r, errors=DISCARD)[0]["args"]["grantId"]
        yield w, grant


def test_dispute_refunds_the_consumer(world: tuple[World, int]) -> None:
    w, grant = world
    job = w.completed_job(grant, "disputed")
    held = PRICE - PRICE * SPLIT[3] // 10000
    h = hold_of(w.space, job)
    assert (h.status, h.amount) == (HoldStatus.HELD, held)
    before = {i: w.balance(i) for i in (PROVIDER, ORACLE, CONSUMER)}
    assert before[PROVIDER] == before[ORACLE] == 0  # nothing credited while the window is open

    w.refused(NotYours, "is not yours", "job", "dispute", job, "--reason", "x", "--dev-account", PROVIDER)
    out = json.loads(w.ok("job", "dispute", job, "--reason", "the sum omits March", "--json",
                          "--dev-account", CONSUMER))
    assert out["held"] == held and hold_of(w.space, job).status == HoldStatus.DISPUTED
    w.refused(StateRefused, "already disputed", "job", "dispute", job, "--reason", "again", "--dev-account", CONSUMER)
    w.refused(StateRefused, "under dispute", "job", "release-held", job, "--dev-account", PROVIDER)

    listed = json.loads(w.ok("regulator", "disputes", "--json"))
    assert [(d["jobId"], d["reason"], d["reasonCid"]) for d in listed] == [(job, "the sum omits March",
                                                                           out["reasonCid"])]
    w.refused(StateRefused, "does not hold REGULATOR", "regulator", "decide", job, "--refund", "--reason", "r",
              "--dev-account", CONSUMER)
    decided = json.loads(w.ok("regulator", "decide", job, "--refund", "--reason", "the answer misses a month",
                              "--json", "--dev-account", REGULATOR))
    assert (decided["refunded"], decided["released"]) == (held, 0)
    assert w.balance(CONSUMER) == before[CONSUMER] + held  # the consumer's money is back
    assert w.balance(PROVIDER) == 0 and w.balance(ORACLE) == 0  # the payees get nothing
    assert json.loads(w.ok("regulator", "disputes", "--json")) == []
    w.refused(StateRefused, "no open dispute", "regulator", "decide", job, "--release", "--reason", "r",
              "--dev-account", REGULATOR)


def test_undisputed_shares_released_after_the_window(world: tuple[World, int]) -> None:
    w, grant = world
    job = w.completed_job(grant, "undisputed")
    w.refused(StateRefused, "may be disputed until", "job", "release-held", job, "--dev-account", PROVIDER)
    w.space.w3.provider.make_request("evm_increaseTime", [WINDOW + 10])
    w.space.w3.provider.make_request("evm_mine", [])
    w.refused(StateRefused, "closed", "job", "dispute", job, "--reason", "late", "--dev-account", CONSUMER)
    w.ok("job", "release-held", "--dev-account", PROVIDER)  # every releasable job that pays the provider
    assert hold_of(w.space, job).status == HoldStatus.RELEASED
    assert w.balance(PROVIDER) == PRICE * (SPLIT[0] + SPLIT[1]) // 10000  # no algorithm provider: its share too
    assert w.balance(ORACLE) == PRICE * SPLIT[2] // 10000


def test_index_and_trail_record_the_disputes(world: tuple[World, int], tmp_path) -> None:
    """The index's disputes table equals the contract's holds; the trail names who disputed and decided."""
    from sqlalchemy import select

    from audit.events import ChainReader
    from audit.index import EventIndex
    from audit.index_tables import disputes
    from audit.trail import build_trail

    w, grant = world
    idx = EventIndex(w.space.w3, w.space.deployment, f"sqlite:///{tmp_path / 'i.sqlite'}")
    idx.catch_up()
    with idx.engine.connect() as conn:
        rows = {r.job_id: r for r in conn.execute(select(disputes))}
    assert len(rows) == 2
    for job, r in rows.items():
        h = hold_of(w.space, job)
        assert (r.status, int(r.held), r.disputable_until, r.grant_id) == (h.status.name.lower(), h.amount, h.until,
                                                                           grant)
    resolved = next(r for r in rows.values() if r.status == "resolved")
    assert (resolved.refund_bps, int(resolved.refunded), int(resolved.released)) == (10000, int(resolved.held), 0)
    assert resolved.consumer == w.acct[CONSUMER].address and resolved.arbitrator == w.acct[REGULATOR].address
    asset = w.space.c["Authorizations"].functions.grantOf(grant).call()[8]
    trail = build_trail(ChainReader(w.space.w3, w.space.deployment), asset)
    by_action = {e.action: e for e in trail}
    assert by_action["dispute"].actor == w.acct[CONSUMER].address and by_action["dispute"].result == "disputed"
    assert by_action["decide-dispute"].actor == w.acct[REGULATOR].address
    assert by_action["decide-dispute"].result == "refunded"
    assert {"hold-payment", "release-held"} <= set(by_action)
