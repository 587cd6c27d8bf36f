"""tds gov setup|propose|vote|queue|execute|status on a real chain: the operator hands the
deployment to a Governor and a timelock; a member's proposal admits a member and grants it a role,
members vote, and it takes effect only after the timelock's delay; the trail shows each step."""
from __future__ import annotations

import json

import pytest

from chain.system import role_id
from chain.errors import DeploymentError
from tds.cli.refusals import BadInput, Refused
from tests.tds.collab_env import collab_env

pytestmark = pytest.mark.slow
DELAY = 3600
FOUNDERS = (6, 7, 8)   # dev accounts of the founding member organisations


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with collab_env(tmp_path_factory.mktemp("cli-gov"), rows=10, common=3) as e:
        yield e


def travel(space, seconds: int = 0, blocks: int = 1) -> None:
    if seconds:
        space.w3.provider.make_request("evm_increaseTime", [seconds])
    space.w3.provider.make_request("anvil_mine", [blocks])


def test_a_member_proposal_takes_effect_only_after_votes_and_the_delay(env):
    from chain.accounts import dev_account

    w = env.world
    space = w.space
    r = env.run("gov", "status")
    assert isinstance(r.exception, DeploymentError) and "development profile" in str(r.exception)
    members = [dev_account(i).address for i in FOUNDERS]
    env.ok("gov", "setup", *[a for m in members for a in ("--member", m)], "--min-delay", DELAY,
           "--voting-period", 5, "--dev-account", 0)
    env.refused(BadInput, "already governed", "gov", "setup", "--member", members[0], "--dev-account", 0)
    newcomer = w.nodes["node-3"].address
    env.refused(BadInput, "nothing to propose", "gov", "propose", "empty", "--dev-account", FOUNDERS[0])
    out = json.loads(env.ok("gov", "propose", "admit node-3's organisation as a consumer member", "--admit", newcomer,
                            "--grant-role", "CONSUMER", newcomer, "--json", "--dev-account", FOUNDERS[0]).stdout)
    pid = out["proposalId"]
    assert out["state"] == "pending" and len(out["calls"]) == 2
    travel(space, blocks=2)
    env.ok("gov", "vote", pid, "--dev-account", FOUNDERS[0])
    env.ok("gov", "vote", pid, "--dev-account", FOUNDERS[1])
    env.ok("gov", "vote", pid, "--support", "against", "--dev-account", FOUNDERS[2])
    env.refused(Refused, "GovernorAlreadyCastVote", "gov", "vote", pid, "--dev-account", FOUNDERS[2])
    travel(space, blocks=6)
    env.ok("gov", "queue", pid, "--dev-account", FOUNDERS[1])
    env.refused(Refused, "TimelockUnexpectedOperationState", "gov", "execute", pid, "--dev-account", FOUNDERS[2])
    identity = space.c["IdentityRegistry"].functions
    assert not identity.hasParticipantRole(newcomer, role_id("CONSUMER")).call()
    travel(space, DELAY + 1)
    env.ok("gov", "execute", pid, "--dev-account", FOUNDERS[2])
    assert identity.hasParticipantRole(newcomer, role_id("CONSUMER")).call()
    rows = json.loads(env.ok("gov", "status", "--json").stdout)
    assert [(r["id"], r["state"], r["for"], r["against"]) for r in rows] == [(pid, "executed", 2, 1)]
    # the operator's key no longer grants roles: only the governed timelock does
    from chain.accounts import dev_account as dev
    with pytest.raises(Exception, match="AccessControlUnauthorizedAccount"):
        space.send(dev(0), space.c["IdentityRegistry"].functions.grantParticipantRole(
            w.nodes["node-2"].address, role_id("CONSUMER"), b"\x01" * 32, 0))
