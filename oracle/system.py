"""Deploying the whole system to the configured chain and writing the deployment file."""
from __future__ import annotations

from typing import Any

from oracle.chain.accounts import dev_account
from oracle.chain.compiler import compile_project
from oracle.chain.connection import connect
from oracle.chain.deploy import deploy_artifact, write_deployment
from oracle.chain.tx import Sender
from oracle.config import Settings


def _deployable(artifact: dict[str, Any]) -> bool:
    ctor = next((e for e in artifact["abi"] if e.get("type") == "constructor"), None)
    return artifact["bytecode"] not in ("0x", "") and not (ctor and ctor.get("inputs"))


def deploy_system(settings: Settings) -> dict[str, Any]:
    """Compile, deploy every concrete contract under contracts/ and write the deployment file."""
    artifacts = compile_project(settings)
    w3 = connect(settings)
    sender = Sender(w3, dev_account(0))
    block = w3.eth.block_number
    deployed = {name: deploy_artifact(sender, art) for name, art in artifacts.items() if _deployable(art)}
    return write_deployment(settings.deployment_path(w3.eth.chain_id), w3, deployed, artifacts, block)
