"""``tds gov``: the consortium profile from the command line (docs/governance.md).

``setup`` hands a development deployment to a governed timelock (the operator's one-time step);
``propose`` builds a proposal from named actions (admit a member, grant a participant role, accept
the contracts' admin roles, or any contract call by name); ``vote``, ``queue`` and ``execute`` act
on a proposal by id — the calls and description are read back from its ``ProposalCreated``
event, so nothing has to be kept beside the chain; ``status`` lists the proposals."""
from __future__ import annotations

import json
from typing import Any

import click
from eth_utils import is_address, keccak, to_checksum_address

from tds.cli.deployed import Deployed
from tds.cli.output import console, emit_json
from tds.cli.refusals import BadInput, onchain
from tds.cli.wallet import WalletChoice, wallet_options

SUPPORT = {"against": 0, "for": 1, "abstain": 2}
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _address(value: str, what: str) -> str:
    if not is_address(value):
        raise BadInput(f"{what} {value!r} is not an address (0x followed by 40 hex digits)")
    return to_checksum_address(value)


def _consortium(d: Deployed) -> Any:
    from chain.governance import Consortium

    return Consortium.of(d.space)


@click.group("gov")
def gov() -> None:
    """Consortium governance: proposals, member votes, a timelock delay (002 §3.7)."""


@gov.command("setup")
@click.option("--member", "members", multiple=True, required=True, metavar="ADDRESS",
              help="A founding member organisation's account (one vote each; repeatable).")
@click.option("--min-delay", type=click.IntRange(0, None), default=86_400, show_default=True,
              help="Seconds the timelock waits between queue and execute.")
@click.option("--voting-delay", type=click.IntRange(0, None), default=1, show_default=True, help="Blocks.")
@click.option("--voting-period", type=click.IntRange(1, None), default=50, show_default=True, help="Blocks.")
@click.option("--quorum", type=click.IntRange(1, 100), default=50, show_default=True, help="Percent of members.")
@wallet_options
@onchain
def gov_setup(members: tuple[str, ...], min_delay: int, voting_delay: int, voting_period: int, quorum: int,
              wallet: WalletChoice) -> None:
    """Operator: hand this deployment to a Governor and TimelockController owned by the members."""
    from chain.governance import deploy_consortium

    d = Deployed.open()
    if d.deployment.get("profile") == "consortium":
        raise BadInput("this deployment is already governed (profile: consortium)")
    founders = [_address(m, "--member") for m in members]
    g = deploy_consortium(d.settings, d.space, d.signer(wallet), founders, min_delay=min_delay,
                          voting_delay=voting_delay, voting_period=voting_period, quorum_percent=quorum)
    console.print(f"governed: Membership {g.membership.address}, TdsTimelock {g.timelock.address}, TdsGovernor "
                  f"{g.governor.address}; {len(founders)} members. The contracts' admin roles pass to the timelock "
                  f"once accepted: 'tds gov propose \"accept admin\" --accept-admin' after their transfer delay.")


@gov.command("propose")
@click.argument("description")
@click.option("--admit", "admits", multiple=True, metavar="ADDRESS", help="Admit a member (repeatable).")
@click.option("--grant-role", "roles", multiple=True, nargs=2, metavar="ROLE ADDRESS",
              help="Grant a participant role (CONSUMER, PROVIDER, COMPUTE_PROVIDER, REGULATOR, …; repeatable).")
@click.option("--accept-admin", is_flag=True, help="The timelock accepts every governed contract's admin role.")
@click.option("--call", "calls", multiple=True, nargs=3, metavar="CONTRACT FUNCTION ARGS_JSON",
              help='Any call by name, e.g. --call CertificateTemplates setReviewRequired "[3, true]" (repeatable).')
@_JSON
@wallet_options
@onchain
def gov_propose(description: str, admits: tuple[str, ...], roles: tuple[tuple[str, str], ...], accept_admin: bool,
                calls: tuple[tuple[str, str, str], ...], as_json: bool, wallet: WalletChoice) -> None:
    """Member: propose the actions given, under DESCRIPTION (it identifies the proposal)."""
    from chain.deploy import bind
    from chain.governance import Call
    from chain.system import role_id

    d = Deployed.open()
    g = _consortium(d)
    actions: list[Call] = []
    if accept_admin:
        actions += g.accept_admin_calls()
    for a in admits:
        actions += g.admit_calls(_address(a, "--admit"))
    for role, who in roles:
        account = _address(who, "--grant-role")
        actions.append(Call.of(d.c["IdentityRegistry"], "grantParticipantRole", account, role_id(role.upper()),
                               keccak(text=f"gov:{role.upper()}:{account}:{description}"), 0,
                               label=f"grant {role.upper()} to {account}"))
    for name, fn, raw in calls:
        if name not in d.deployment["contracts"]:
            raise BadInput(f"--call: no contract {name!r} in the deployment (one of "
                           f"{', '.join(sorted(d.deployment['contracts']))})")
        contract = bind(d.w3, d.deployment, name)
        try:
            args = json.loads(raw)
            actions.append(Call.of(contract, fn, *(args if isinstance(args, list) else [args])))
        except (ValueError, TypeError) as exc:
            raise BadInput(f"--call {name} {fn} {raw}: {exc}") from None
    if not actions:
        raise BadInput("nothing to propose: give --admit, --grant-role, --accept-admin or --call")
    pid = g.propose(d.signer(wallet), actions, description)
    out = {"proposalId": str(pid), "description": description, "calls": [c.label for c in actions],
           "state": g.state(pid)}
    if as_json:
        emit_json(out)
        return
    console.print(f"proposal {pid}: {len(actions)} call(s), {out['state']}", markup=False)
    for c in actions:
        console.print(f"  {c.label}", markup=False)


@gov.command("vote")
@click.argument("proposal", type=int)
@click.option("--support", type=click.Choice(list(SUPPORT)), default="for", show_default=True)
@wallet_options
@onchain
def gov_vote(proposal: int, support: str, wallet: WalletChoice) -> None:
    """Member: vote on PROPOSAL."""
    d = Deployed.open()
    g = _consortium(d)
    g.vote(d.signer(wallet), proposal, SUPPORT[support])
    console.print(f"voted {support} on {proposal}; now {g.state(proposal)}", markup=False)


@gov.command("queue")
@click.argument("proposal", type=int)
@wallet_options
@onchain
def gov_queue(proposal: int, wallet: WalletChoice) -> None:
    """Anyone: queue a succeeded PROPOSAL in the timelock (its delay starts)."""
    d = Deployed.open()
    g = _consortium(d)
    calls, description = g.proposal_calls(proposal)
    g.queue(d.signer(wallet), calls, description)
    delay = g.timelock.functions.getMinDelay().call()
    console.print(f"proposal {proposal} queued; executable in {delay} s", markup=False)


@gov.command("execute")
@click.argument("proposal", type=int)
@wallet_options
@onchain
def gov_execute(proposal: int, wallet: WalletChoice) -> None:
    """Anyone: execute a queued PROPOSAL once the timelock's delay has passed."""
    d = Deployed.open()
    g = _consortium(d)
    calls, description = g.proposal_calls(proposal)
    g.execute(d.signer(wallet), calls, description)
    console.print(f"proposal {proposal} executed ({len(calls)} call(s))", markup=False)


@gov.command("status")
@_JSON
def gov_status(as_json: bool) -> None:
    """Every proposal with its state and votes."""
    d = Deployed.open()
    rows = _consortium(d).proposals()
    if as_json:
        emit_json([{**r, "id": str(r["id"])} for r in rows])
        return
    for r in rows:
        console.print(f"{r['id']}  {r['state']:9} for {r['for']} against {r['against']} abstain {r['abstain']}  "
                      f"{r['description']}", markup=False)
