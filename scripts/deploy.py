"""Deploy and wire the whole Trusted Data Space with Brownie, then write the deployment file
(deployments/<chain id>.json, or $TDS_DEPLOYMENT) that the Python packages read.

    brownie run scripts/deploy.py --network tds-anvil        (after 'tds chain up')

The first of the lifecycle scripts (see scripts/_common.py for the order); the next is
scripts/identities.py. Accounts on a development network: accounts[0] = operator (deployer,
admin, treasury), accounts[1] = regulator, accounts[2] = monitor. On any other network the keys
come from the identities ``operator``, ``regulator`` and (optionally, else the operator)
``monitor`` made beforehand with ``tds id new NAME --private-key-env VAR`` (passphrase in
$TDS_KEYSTORE_PASSWORD). The wiring is the same as chain.system.deploy_system (see its table).
"""
from brownie import (AssetRegistry, Authorizations, Collaborations, CertificateTemplates, Credits, Evidence,
                     IdentityRegistry, Jobs, NodeRegistry, Onboarding, QualityRatings, accounts, web3)
from eth_utils import keccak

from chain.deploy import write_deployment
from chain.config import load_settings
from chain.system import DEFAULT_ACCEPT_TIMEOUT, DEFAULT_HEARTBEAT_INTERVAL, SYSTEM_CONTRACTS, SystemRoles

from ._common import check_persistent_chain, is_development, run_line, signer_from_identity


def role(name: str) -> bytes:
    return keccak(text=name)


def deploy(operator, regulator, monitor, treasury=None, accept_timeout: int = DEFAULT_ACCEPT_TIMEOUT) -> dict:
    """Deploy the eleven contracts, grant the system roles; return {name: contract}."""
    treasury = treasury or operator
    tx = {"from": operator}
    c = {}
    c["IdentityRegistry"] = IdentityRegistry.deploy(operator, tx)
    c["CertificateTemplates"] = CertificateTemplates.deploy(operator, tx)
    c["AssetRegistry"] = AssetRegistry.deploy(operator, c["IdentityRegistry"], c["CertificateTemplates"], tx)
    c["Authorizations"] = Authorizations.deploy(operator, c["IdentityRegistry"], c["AssetRegistry"], tx)
    c["Jobs"] = Jobs.deploy(c["IdentityRegistry"], c["Authorizations"], c["AssetRegistry"], c["CertificateTemplates"],
                            treasury, accept_timeout, tx)
    c["Credits"] = Credits.deploy(operator, regulator, tx)
    c["QualityRatings"] = QualityRatings.deploy(c["Authorizations"], c["Jobs"], tx)
    c["Evidence"] = Evidence.deploy(tx)
    c["NodeRegistry"] = NodeRegistry.deploy(operator, c["IdentityRegistry"], DEFAULT_HEARTBEAT_INTERVAL, tx)
    c["Collaborations"] = Collaborations.deploy(c["IdentityRegistry"], c["Authorizations"], c["AssetRegistry"],
                                                c["NodeRegistry"], treasury, tx)
    c["Onboarding"] = Onboarding.deploy(operator, c["IdentityRegistry"], tx)
    c["AssetRegistry"].grantRole(role("REGULATOR"), regulator, tx)
    c["AssetRegistry"].grantRole(role("REVIEWER"), operator, tx)
    c["Authorizations"].grantRole(role("REGULATOR"), regulator, tx)
    c["Authorizations"].grantRole(role("MONITOR"), monitor, tx)
    c["Authorizations"].grantRole(role("JOBS"), c["Jobs"], tx)
    c["Authorizations"].grantRole(role("JOBS"), c["Collaborations"], tx)
    c["Authorizations"].setPaymentToken(c["Credits"], True, tx)
    c["IdentityRegistry"].grantRole(role("OPERATOR"), c["Onboarding"], tx)
    c["Onboarding"].grantRole(role("REVIEWER"), operator, tx)
    return c


def main() -> dict:
    check_persistent_chain()
    if is_development():
        operator, regulator, monitor = accounts[0], accounts[1], accounts[2]
    else:
        operator, regulator = signer_from_identity("operator"), signer_from_identity("regulator")
        monitor = signer_from_identity("monitor", default=operator)
    block = web3.eth.block_number
    contracts = deploy(operator, regulator, monitor)
    assert set(contracts) == set(SYSTEM_CONTRACTS)
    roles = SystemRoles(operator=operator.address, regulator=regulator.address, monitor=monitor.address,
                        treasury=operator.address)
    artifacts = {name: {"abi": contract.abi} for name, contract in contracts.items()}
    path = load_settings().deployment_path(web3.eth.chain_id)
    doc = write_deployment(path, web3, contracts, artifacts, block,
                           {"roles": roles.__dict__, "acceptTimeout": DEFAULT_ACCEPT_TIMEOUT})
    print(f"deployment written to {path}")
    for name, entry in doc["contracts"].items():
        print(f"  {name:22} {entry['address']}")
    print(f"next: {run_line('identities')}")
    return doc
