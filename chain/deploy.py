"""Deploying compiled artifacts and reading/writing the deployment file
(addresses, ABIs, chain id, block) that every Python package reads."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from chain.revert import register_abi
from chain.tx import Sender
from chain.errors import DeploymentError


def deploy_artifact(sender: Sender, artifact: dict[str, Any], *args: Any) -> Contract:
    """Deploy one artifact with constructor ``args``; return the bound contract."""
    w3 = sender.w3
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    register_abi(artifact["abi"])
    receipt = sender.send(factory.constructor(*args))
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def write_deployment(path: Path, w3: Web3, contracts: dict[str, Contract], artifacts: dict[str, dict[str, Any]],
                     block: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the deployment file; return its content."""
    doc = {
        "chainId": w3.eth.chain_id,
        "block": block,
        "contracts": {
            name: {"address": c.address, "abi": artifacts[name]["abi"]}
            for name, c in sorted(contracts.items())
        },
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return doc


def read_deployment(path: Path, chain_id: int | None = None) -> dict[str, Any]:
    """Read a deployment file, checking it is for ``chain_id`` when given."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeploymentError(f"no deployment file at {path}: deploy first with 'tds deploy'") from None
    except ValueError as exc:
        raise DeploymentError(f"deployment file {path} is not valid JSON: {exc}") from None
    if chain_id is not None and doc.get("chainId") != chain_id:
        raise DeploymentError(f"deployment file {path} is for chain {doc.get('chainId')}, not {chain_id}")
    return doc


def bind(w3: Web3, deployment: dict[str, Any], name: str) -> Contract:
    """The deployed contract ``name`` from a deployment document."""
    try:
        entry = deployment["contracts"][name]
    except KeyError:
        raise DeploymentError(f"contract {name} is not in the deployment; redeploy with 'tds deploy'") from None
    register_abi(entry["abi"])
    return w3.eth.contract(address=entry["address"], abi=entry["abi"])
