"""Deploying the whole system to the configured chain, wiring it, and writing the deployment file.

Wiring (who may do what) — the same as ``scripts/deploy.py`` does through Brownie:

| contract             | constructor                                              | roles granted                     |
|----------------------|----------------------------------------------------------|-----------------------------------|
| IdentityRegistry     | admin = operator                                          | OPERATOR → operator               |
| CertificateTemplates | admin = operator                                          | OPERATOR → operator               |
| AssetRegistry        | admin, IdentityRegistry, CertificateTemplates             | REGULATOR → regulator, REVIEWER → operator |
| Authorizations       | admin, IdentityRegistry, AssetRegistry                    | REGULATOR, MONITOR, JOBS → Jobs   |
| Jobs                 | IdentityRegistry, Authorizations, AssetRegistry, CertificateTemplates, treasury, acceptTimeout | — (arbitrator: REGULATOR in Authorizations) |
| Credits              | admin, regulator                                          | REGULATOR → regulator             |
| QualityRatings       | Authorizations, Jobs                                      | —                                 |
| Evidence             | —                                                         | —                                 |
| NodeRegistry         | admin, IdentityRegistry, heartbeat interval               | OPERATOR → operator               |
| Collaborations       | IdentityRegistry, Authorizations, AssetRegistry, NodeRegistry, treasury | JOBS (Authorizations) |
| Onboarding           | admin, IdentityRegistry                                   | REVIEWER, OPERATOR → operator; OPERATOR (IdentityRegistry) → Onboarding |

Credits is allowed as a payment token in Authorizations. Participant roles (provider, consumer,
compute provider …) are granted later, per participant, in the IdentityRegistry.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract

from chain.accounts import dev_account
from chain.compiler import compile_project
from chain.connection import connect
from chain.deploy import deploy_artifact, write_deployment
from chain.sources import publish_sources
from chain.tx import Sender
from chain.config import Settings

DEFAULT_ACCEPT_TIMEOUT = 3600  # seconds of oracle silence before another oracle may take a job over
DEFAULT_HEARTBEAT_INTERVAL = 600  # seconds after which a node without heartbeat is flagged
SYSTEM_CONTRACTS = ("IdentityRegistry", "CertificateTemplates", "AssetRegistry", "Authorizations", "Jobs",
                    "Credits", "QualityRatings", "Evidence", "NodeRegistry", "Collaborations", "Onboarding")


def role_id(name: str) -> bytes:
    """Role identifier: keccak256 of the upper-case role name (as in contracts/libraries/TdsRoles.sol)."""
    return keccak(text=name)


@dataclass(frozen=True)
class SystemRoles:
    """Accounts the wiring hands system roles to (addresses)."""

    operator: str  # deployer, admin of every contract, template publisher, role issuer
    regulator: str  # freezes/unfreezes anything, mints Credits
    monitor: str  # the operator's monitoring service: freezes grants with an alert reason code
    treasury: str  # payee of the operator share of every split


def default_roles(operator: LocalAccount) -> SystemRoles:
    """On the embedded chain: operator = its own key, regulator = dev account 1, monitor = dev account 2."""
    return SystemRoles(operator=operator.address, regulator=dev_account(1).address,
                       monitor=dev_account(2).address, treasury=operator.address)


def deploy_contracts(sender: Sender, artifacts: dict[str, dict[str, Any]], roles: SystemRoles,
                     accept_timeout: int = DEFAULT_ACCEPT_TIMEOUT) -> dict[str, Contract]:
    """Deploy the ten contracts with their constructor arguments (no role wiring yet)."""
    admin = roles.operator
    c: dict[str, Contract] = {}
    c["IdentityRegistry"] = deploy_artifact(sender, artifacts["IdentityRegistry"], admin)
    c["CertificateTemplates"] = deploy_artifact(sender, artifacts["CertificateTemplates"], admin)
    c["AssetRegistry"] = deploy_artifact(sender, artifacts["AssetRegistry"], admin, c["IdentityRegistry"].address,
                                         c["CertificateTemplates"].address)
    c["Authorizations"] = deploy_artifact(sender, artifacts["Authorizations"], admin,
                                          c["IdentityRegistry"].address, c["AssetRegistry"].address)
    c["Jobs"] = deploy_artifact(sender, artifacts["Jobs"], c["IdentityRegistry"].address,
                                c["Authorizations"].address, c["AssetRegistry"].address,
                                c["CertificateTemplates"].address, roles.treasury, accept_timeout)
    c["Credits"] = deploy_artifact(sender, artifacts["Credits"], admin, roles.regulator)
    c["QualityRatings"] = deploy_artifact(sender, artifacts["QualityRatings"], c["Authorizations"].address,
                                          c["Jobs"].address)
    c["Evidence"] = deploy_artifact(sender, artifacts["Evidence"])
    c["NodeRegistry"] = deploy_artifact(sender, artifacts["NodeRegistry"], admin, c["IdentityRegistry"].address,
                                        DEFAULT_HEARTBEAT_INTERVAL)
    c["Collaborations"] = deploy_artifact(sender, artifacts["Collaborations"], c["IdentityRegistry"].address,
                                          c["Authorizations"].address, c["AssetRegistry"].address,
                                          c["NodeRegistry"].address, roles.treasury)
    c["Onboarding"] = deploy_artifact(sender, artifacts["Onboarding"], admin, c["IdentityRegistry"].address)
    return c


def wire(sender: Sender, c: dict[str, Contract], roles: SystemRoles) -> None:
    """Grant the system roles and link the payment token (sender must be the admin)."""
    auth = c["Authorizations"]
    sender.send(c["AssetRegistry"].functions.grantRole(role_id("REGULATOR"), roles.regulator))
    sender.send(c["AssetRegistry"].functions.grantRole(role_id("REVIEWER"), roles.operator))
    sender.send(auth.functions.grantRole(role_id("REGULATOR"), roles.regulator))
    sender.send(auth.functions.grantRole(role_id("MONITOR"), roles.monitor))
    sender.send(auth.functions.grantRole(role_id("JOBS"), c["Jobs"].address))
    sender.send(auth.functions.grantRole(role_id("JOBS"), c["Collaborations"].address))
    sender.send(auth.functions.setPaymentToken(c["Credits"].address, True))
    sender.send(c["IdentityRegistry"].functions.grantRole(role_id("OPERATOR"), c["Onboarding"].address))
    sender.send(c["Onboarding"].functions.grantRole(role_id("REVIEWER"), roles.operator))


def check_wiring(c: dict[str, Contract], roles: SystemRoles) -> list[str]:
    """Problems with the wiring (empty when every role and link is in place)."""
    auth = c["Authorizations"]
    expect = [
        (c["IdentityRegistry"].functions.hasRole(role_id("OPERATOR"), roles.operator), "registry operator"),
        (c["CertificateTemplates"].functions.hasRole(role_id("OPERATOR"), roles.operator), "templates operator"),
        (c["AssetRegistry"].functions.hasRole(role_id("REGULATOR"), roles.regulator), "assets regulator"),
        (c["AssetRegistry"].functions.hasRole(role_id("REVIEWER"), roles.operator), "assets reviewer"),
        (auth.functions.hasRole(role_id("REGULATOR"), roles.regulator), "authorizations regulator"),
        (auth.functions.hasRole(role_id("MONITOR"), roles.monitor), "authorizations monitor"),
        (auth.functions.hasRole(role_id("JOBS"), c["Jobs"].address), "authorizations jobs"),
        (auth.functions.hasRole(role_id("JOBS"), c["Collaborations"].address), "authorizations collaborations"),
        (c["NodeRegistry"].functions.hasRole(role_id("OPERATOR"), roles.operator), "node registry operator"),
        (auth.functions.isPaymentTokenAllowed(c["Credits"].address), "credits payment token"),
        (c["Credits"].functions.hasRole(role_id("REGULATOR"), roles.regulator), "credits regulator"),
        (c["IdentityRegistry"].functions.hasRole(role_id("OPERATOR"), c["Onboarding"].address), "onboarding operator"),
        (c["Onboarding"].functions.hasRole(role_id("REVIEWER"), roles.operator), "onboarding reviewer"),
    ]
    problems = [label for fn, label in expect if not fn.call()]
    if c["Jobs"].functions.treasury().call() != roles.treasury:
        problems.append("jobs treasury")
    return problems


def deploy_system(settings: Settings, *, operator: LocalAccount | None = None, roles: SystemRoles | None = None,
                  accept_timeout: int = DEFAULT_ACCEPT_TIMEOUT, w3: Web3 | None = None) -> dict[str, Any]:
    """Compile, deploy and wire the system; write and return the deployment document.

    The document is what every Python package reads: ``chainId``, ``block`` (where to start
    following events), ``contracts{name: {address, abi}}``, plus ``roles`` and ``acceptTimeout``.
    """
    artifacts = compile_project(settings)
    w3 = w3 or connect(settings)
    operator = operator or dev_account(0)
    roles = roles or default_roles(operator)
    sender = Sender(w3, operator)
    block = w3.eth.block_number
    contracts = deploy_contracts(sender, artifacts, roles, accept_timeout)
    wire(sender, contracts, roles)
    extra = {"roles": asdict(roles), "acceptTimeout": accept_timeout}
    path = settings.deployment_path(w3.eth.chain_id)
    doc = write_deployment(path, w3, contracts, artifacts, block, extra)
    publish_sources(settings, artifacts, sorted(contracts), path)  # for `tds audit contracts`, Sourcify
    return doc
