"""The consortium profile (002 §3.7): no single key administers the contracts.

``deploy_consortium`` adds a Membership token (one vote per member organisation), an OpenZeppelin
TimelockController (``TdsTimelock``) and Governor (``TdsGovernor``) to a deployed system, admits
the founding members, gives the timelock the OPERATOR role of every contract that has one (and
takes it from the deploying key), hands Membership to the timelock, and starts the two-step
transfer of every contract's admin role to the timelock (``AccessControlDefaultAdminRules``: the
timelock accepts it by a first proposal once that delay has passed — ``accept_admin_calls``).
From then on admitting a member, granting a role, publishing a template, changing a fee or the
treasury are proposals: propose → vote → queue → (timelock delay) → execute.

The development profile (``tds deploy``, the demo) keeps one operator key and says so."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.contract import Contract
from web3.logs import DISCARD

from chain.compiler import compile_project
from chain.config import Settings
from chain.deploy import deploy_artifact
from chain.space import Space
from chain.system import role_id

ZERO = "0x" + "00" * 20
# contracts whose admin role moves to the timelock, and those with an OPERATOR role it takes over
ADMIN_GOVERNED = ("IdentityRegistry", "CertificateTemplates", "AssetRegistry", "Authorizations", "Credits",
                  "NodeRegistry", "Onboarding")
OPERATED = ("IdentityRegistry", "CertificateTemplates", "NodeRegistry", "Onboarding")
STATES = ("pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed")
DEV_PROFILE_NOTE = ("development profile: one operator key administers every contract "
                    "(a consortium deployment hands admin and operator roles to a governed timelock: "
                    "chain.governance.deploy_consortium)")


@dataclass(frozen=True)
class Call:
    """One call a proposal makes: target contract, value, calldata (and a label for people)."""

    target: str
    data: bytes
    value: int = 0
    label: str = ""

    @classmethod
    def of(cls, contract: Contract, fn: str, *args: Any, label: str = "") -> "Call":
        return cls(contract.address, bytes.fromhex(contract.encode_abi(fn, args=list(args))[2:]), 0,
                   label or f"{fn}{tuple(args)}")


@dataclass
class Consortium:
    space: Space
    membership: Contract
    timelock: Contract
    governor: Contract

    @classmethod
    def of(cls, space: Space) -> "Consortium":
        """The governance contracts the deployment file records (a consortium profile)."""
        from chain.deploy import bind
        from chain.errors import DeploymentError

        if space.deployment.get("profile") != "consortium":
            raise DeploymentError("this deployment is the development profile (one operator key): run "
                                  "'tds gov setup --member ADDRESS …' to hand it to a governed timelock")
        return cls(space, *(bind(space.w3, space.deployment, n) for n in ("Membership", "TdsTimelock", "TdsGovernor")))

    def proposal_calls(self, proposal_id: int) -> tuple[list[Call], str]:
        """The calls and description of a proposal, read back from its ``ProposalCreated`` event."""
        from chain.errors import TdsError

        logs = self.governor.events.ProposalCreated().get_logs(from_block=self.space.deployment.get("block", 0))
        for e in logs:
            a = e["args"]
            if a["proposalId"] == proposal_id:
                return ([Call(t, bytes(d), v) for t, v, d in zip(a["targets"], a["values"], a["calldatas"])],
                        a["description"])
        raise TdsError(f"proposal {proposal_id} is unknown to the governor at {self.governor.address}")

    def proposals(self) -> list[dict[str, Any]]:
        """Every proposal: id, proposer, description, state, votes (against, for, abstain)."""
        out = []
        for e in self.governor.events.ProposalCreated().get_logs(from_block=self.space.deployment.get("block", 0)):
            a = e["args"]
            against, for_, abstain = self.governor.functions.proposalVotes(a["proposalId"]).call()
            out.append({"id": a["proposalId"], "proposer": a["proposer"], "description": a["description"],
                        "state": self.state(a["proposalId"]), "for": for_, "against": against, "abstain": abstain,
                        "voteStart": a["voteStart"], "voteEnd": a["voteEnd"], "calls": len(a["targets"])})
        return out

    # -- proposals ----------------------------------------------------------------------------
    def propose(self, member: LocalAccount, calls: Sequence[Call], description: str) -> int:
        r = self.space.send(member, self.governor.functions.propose(
            [c.target for c in calls], [c.value for c in calls], [c.data for c in calls], description))
        return self.governor.events.ProposalCreated().process_receipt(r, errors=DISCARD)[0]["args"]["proposalId"]

    def vote(self, member: LocalAccount, proposal_id: int, support: int = 1) -> Any:
        """support: 0 against, 1 for, 2 abstain."""
        return self.space.send(member, self.governor.functions.castVote(proposal_id, support))

    def queue(self, anyone: LocalAccount, calls: Sequence[Call], description: str) -> Any:
        return self.space.send(anyone, self.governor.functions.queue(
            [c.target for c in calls], [c.value for c in calls], [c.data for c in calls],
            keccak(text=description)))

    def execute(self, anyone: LocalAccount, calls: Sequence[Call], description: str) -> Any:
        return self.space.send(anyone, self.governor.functions.execute(
            [c.target for c in calls], [c.value for c in calls], [c.data for c in calls],
            keccak(text=description)), value=sum(c.value for c in calls))

    def state(self, proposal_id: int) -> str:
        return STATES[self.governor.functions.state(proposal_id).call()]

    # -- common proposals ---------------------------------------------------------------------
    def accept_admin_calls(self) -> list[Call]:
        """The timelock accepts the admin role of every governed contract (after their delay)."""
        return [Call.of(self.space.c[n], "acceptDefaultAdminTransfer", label=f"{n}: accept admin")
                for n in ADMIN_GOVERNED]

    def admit_calls(self, member: str) -> list[Call]:
        return [Call.of(self.membership, "admit", member, label=f"admit {member}")]


def deploy_consortium(settings: Settings, space: Space, deployer: LocalAccount, members: Sequence[str], *,
                      min_delay: int = 86_400, voting_delay: int = 1, voting_period: int = 50,
                      quorum_percent: int = 50) -> Consortium:
    """Add governance to ``space``'s system and hand it the contracts (see the module docstring)."""
    artifacts = compile_project(settings)
    sender = space.sender(deployer)
    membership = deploy_artifact(sender, artifacts["Membership"], deployer.address)
    timelock = deploy_artifact(sender, artifacts["TdsTimelock"], min_delay, [], [ZERO], deployer.address)
    governor = deploy_artifact(sender, artifacts["TdsGovernor"], membership.address, timelock.address,
                               voting_delay, voting_period, quorum_percent)
    for m in members:
        sender.send(membership.functions.admit(m))
    sender.send(membership.functions.transferOwnership(timelock.address))
    for role in ("PROPOSER_ROLE", "CANCELLER_ROLE"):
        sender.send(timelock.functions.grantRole(getattr(timelock.functions, role)().call(), governor.address))
    operator_role = role_id("OPERATOR")
    for name in OPERATED:
        c = space.c[name]
        sender.send(c.functions.grantRole(operator_role, timelock.address))
        sender.send(c.functions.revokeRole(operator_role, deployer.address))
    for name in ADMIN_GOVERNED:
        sender.send(space.c[name].functions.beginDefaultAdminTransfer(timelock.address))
    # the deployer gives up the timelock's own admin role: the timelock administers itself
    sender.send(timelock.functions.renounceRole(timelock.functions.DEFAULT_ADMIN_ROLE().call(), deployer.address))
    _record(settings, space, {"Membership": membership, "TdsTimelock": timelock, "TdsGovernor": governor},
            artifacts)
    return Consortium(space, membership, timelock, governor)


def _record(settings: Settings, space: Space, contracts: dict[str, Contract],
            artifacts: dict[str, dict[str, Any]]) -> None:
    """Add the governance contracts to the deployment file (readers and the trail then see them)."""
    path = settings.deployment_path(space.w3.eth.chain_id)
    doc = json.loads(path.read_text())
    for name, c in contracts.items():
        doc["contracts"][name] = {"address": c.address, "abi": artifacts[name]["abi"]}
    doc["profile"] = "consortium"
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    space.deployment.update(doc)
