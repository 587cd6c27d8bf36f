"""Wiring one provider's key service from the chain, its data keys and the content store: the
datasets it registered (found from chain events), sealing to consumers by their on-chain keys,
its release log and the log's anchoring, and the HTTP app (:mod:`offchain.keyservice.api`)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from web3 import Web3

from did.challenge import ChallengeVerifier
from did.identity import Identity
from did.registry import IdentityRegistryClient
from offchain.keyservice.release import KeyService
from offchain.onion.keys import Keyring
from audit.oplog import OpLog
from chain.deploy import bind, read_deployment
from chain.tx import Sender
from chain.config import Settings
from audit.anchor import Anchorer
from offchain.keyservice.api import create_key_service_app
from offchain.keyservice.provider import ProviderKeyService, discover_datasets
from did.sealing import ChainDirectory, provider_sealer

log = logging.getLogger("tds.provider")


@dataclass
class BuiltKeyService:
    service: ProviderKeyService
    app: FastAPI
    anchorer: Anchorer

    def anchor_safely(self) -> int:
        try:
            return self.anchorer.anchor()
        except Exception as exc:  # the batch file stays; the next round anchors it
            log.warning("anchoring the release log failed: %s: %s", type(exc).__name__, exc)
            return 0


def build_key_service(settings: Settings, w3: Web3, provider: Identity, keyring: Keyring, store: Any,
                      service: ProviderKeyService | None = None) -> BuiltKeyService:
    """The provider's key service for the current deployment (``service`` overrides discovery)."""
    deployment = read_deployment(settings.deployment_path(w3.eth.chain_id), w3.eth.chain_id)
    c = {n: bind(w3, deployment, n) for n in ("Jobs", "Authorizations", "AssetRegistry", "IdentityRegistry",
                                              "Evidence")}
    directory = ChainDirectory(c["IdentityRegistry"], deployment["block"])
    folder = settings.home / "provider" / f"{w3.eth.chain_id}-{c['Jobs'].address.lower()[2:10]}"
    if service is None:
        manifests, by_asset = discover_datasets(c["AssetRegistry"], store.cat, provider.address, deployment["block"])
        service = ProviderKeyService(c["Jobs"], c["Authorizations"], c["AssetRegistry"], provider.address,
                                     provider.did, KeyService(keyring, manifests), by_asset,
                                     provider_sealer(provider, directory), OpLog(folder / "log", provider.did))
    registry = IdentityRegistryClient(w3, c["IdentityRegistry"])
    verifier = ChallengeVerifier(domain=f"keyservice:{provider.address.lower()}")
    app = create_key_service_app(service, provider, registry, directory, verifier)
    oplog = service.oplog or OpLog(folder / "log", provider.did)
    anchorer = Anchorer(oplog, c["Evidence"], Sender(w3, provider.account), w3, deployment["block"])
    return BuiltKeyService(service, app, anchorer)
