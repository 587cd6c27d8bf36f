"""The consortium profile: after deploy_consortium no single key administers the system. A
proposal (member votes, OpenZeppelin Governor) admits a member, grants a participant role and
publishes a template through the TimelockController, and takes effect only after the delay; the
deploying key can no longer do any of it."""
from __future__ import annotations

import pytest
from eth_utils import keccak
from web3.exceptions import ContractCustomError

from audit.events import ChainReader
from audit.trail import chain_entries
from chain import Member, Space
from chain.accounts import dev_account
from chain.governance import ADMIN_GOVERNED, Call, deploy_consortium
from chain.system import role_id
from chain.tx import Reverted
from did.identity import Identity
from did.registry import IdentityRegistryClient
from tests.support.chains import private_chain

DELAY = 3600
ADMIN_DELAY = 2 * 86400


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    with private_chain(tmp_path_factory.mktemp("governance")) as (settings, space):
        yield settings, space


def travel(space: Space, seconds: int = 0, blocks: int = 1) -> None:
    if seconds:
        space.w3.provider.make_request("evm_increaseTime", [seconds])
    space.w3.provider.make_request("anvil_mine", [blocks])


def test_a_proposal_admits_a_member_and_acts_only_after_the_delay(chain):
    settings, space = chain
    operator = dev_account(0)
    founders = [dev_account(i) for i in (6, 7, 8)]
    newcomer = Identity.create("newcomer", dev_account(9))
    IdentityRegistryClient(space.w3, space.c["IdentityRegistry"]).bind(newcomer)
    gov = deploy_consortium(settings, space, operator, [f.address for f in founders], min_delay=DELAY,
                            voting_delay=1, voting_period=5, quorum_percent=50)
    # the deploying key holds no operator role any more
    with pytest.raises((Reverted, ContractCustomError)) as err:
        space.grant_role(operator, Member("newcomer", newcomer.account, newcomer.did), "CONSUMER", keccak(text="vc"))
    assert "AccessControlUnauthorizedAccount" in str(err.value)
    travel(space, ADMIN_DELAY + 1)  # the admin hand-over delay of every contract
    templates, identity = space.c["CertificateTemplates"], space.c["IdentityRegistry"]
    calls = gov.accept_admin_calls() + gov.admit_calls(newcomer.address) + [
        Call.of(identity, "grantParticipantRole", newcomer.address, role_id("CONSUMER"), keccak(text="vc:newcomer"),
                0),
        Call.of(templates, "publish", "consortium terms", b"\x12\x20" + b"\x55" * 32, keccak(text="terms"), 3, 127,
                [7000, 1000, 1500, 500]),
    ]
    description = "Admit newcomer as a consumer; publish the consortium template; accept the admin roles"
    pid = gov.propose(founders[0], calls, description)
    assert gov.state(pid) == "pending"
    travel(space, blocks=2)
    gov.vote(founders[0], pid)
    gov.vote(founders[1], pid)
    gov.vote(founders[2], pid, support=0)
    travel(space, blocks=6)
    assert gov.state(pid) == "succeeded"
    gov.queue(founders[1], calls, description)
    assert gov.state(pid) == "queued"
    with pytest.raises((Reverted, ContractCustomError)):  # before the timelock's delay
        gov.execute(founders[2], calls, description)
    assert gov.membership.functions.tokenOf(newcomer.address).call() == 0
    travel(space, DELAY + 1)
    gov.execute(founders[2], calls, description)
    assert gov.state(pid) == "executed"
    assert gov.membership.functions.tokenOf(newcomer.address).call() != 0
    assert identity.functions.hasParticipantRole(newcomer.address, role_id("CONSUMER")).call()
    assert templates.functions.templateCount().call() >= 1
    for name in ADMIN_GOVERNED:
        assert space.c[name].functions.defaultAdmin().call() == gov.timelock.address, name
    # a member cannot move its vote to someone else
    with pytest.raises((Reverted, ContractCustomError)):
        space.send(founders[0], gov.membership.functions.transferFrom(founders[0].address, operator.address, 1))
    # the trail shows the proposal, the votes and the execution
    entries = chain_entries(ChainReader(space.w3, space.deployment))
    actions = [e.action for e in entries if e.contract in ("TdsGovernor", "Membership")]
    assert actions.count("vote") == 3 and "propose" in actions and "execute-proposal" in actions
    assert "admit-member" in actions
