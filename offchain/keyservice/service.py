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
from offchain.keyservice.auditor import QueryAuditor
from offchain.keyservice.ledger import ReleaseLedger
from offchain.keyservice.privacy import PrivacyLedger
from offchain.onion.policy import ReleaseRules
from offchain.keyservice.release import KeyService
from offchain.onion.keys import Keyring
from offchain.onion.keystore_watch import WatchedKeyring, follow_rotated_versions
from chain.versions import recorded_check
from offchain.onion.rotation_policy import DatasetIndex
from audit.oplog import OpLog
from chain.deploy import bind, read_deployment
from chain.tx import Sender
from chain.config import Settings
from chain.params import params_key
from audit.anchor import Anchorer
from offchain.keyservice.api import create_key_service_app
from offchain.keyservice.provider import ProviderKeyService, discover_datasets
from offchain.keyservice.versions import RecordedVersions
from offchain.sources.versions import known_manifests
from did.sealing import ChainDirectory, provider_sealer

log = logging.getLogger("tds.provider")


@dataclass
class BuiltKeyService:
    service: ProviderKeyService
    app: FastAPI
    anchorer: Anchorer
    versions: RecordedVersions | None = None

    def refresh_versions(self) -> int:
        """Serve versions recorded on the certificates since the last look (never raises)."""
        if self.versions is None:
            return 0
        try:
            return self.versions.refresh()
        except Exception as exc:  # the node is an edge: the next round looks again
            log.warning("reading recorded dataset versions failed: %s: %s", type(exc).__name__, exc)
            return 0

    def anchor_safely(self) -> int:
        try:
            return self.anchorer.anchor()
        except Exception as exc:  # the batch file stays; the next round anchors it
            log.warning("anchoring the release log failed: %s: %s", type(exc).__name__, exc)
            return 0


@dataclass(frozen=True)
class ReleasePolicy:
    """The provider's release settings (``tds provider serve`` options)."""

    rules: ReleaseRules = ReleaseRules()   # trusted consumers, minimum price for leaky layers
    auditor: bool = True                   # the query auditor against differencing
    require_terms: bool = False            # refuse grants without a terms document


def build_key_service(settings: Settings, w3: Web3, provider: Identity, keyring: Keyring, store: Any,
                      service: ProviderKeyService | None = None,
                      policy: ReleasePolicy = ReleasePolicy()) -> BuiltKeyService:
    """The provider's key service for the current deployment (``service`` overrides discovery).
    A :class:`~offchain.onion.keystore_watch.WatchedKeyring` is followed: a rotation saved to the
    keystore is served at the next request — new keys, destroyed ones gone, and the rotated version
    once the provider recorded it on the certificate (``chain.versions.recorded_check``). Its release
    ledger, query-auditor history and privacy budgets live in files under
    ``$TDS_HOME/provider/<chain>-<jobs>/`` and survive restarts."""
    deployment = read_deployment(settings.deployment_path(w3.eth.chain_id), w3.eth.chain_id)
    c = {n: bind(w3, deployment, n) for n in ("Jobs", "Authorizations", "AssetRegistry", "IdentityRegistry",
                                              "Evidence")}
    directory = ChainDirectory(c["IdentityRegistry"], deployment["block"])
    folder = settings.home / "provider" / f"{w3.eth.chain_id}-{c['Jobs'].address.lower()[2:10]}"
    sender = Sender(w3, provider.account)   # one nonce sequence for releases and anchoring
    by_asset_discovered = service is None
    if service is None:
        manifests, by_asset = discover_datasets(c["AssetRegistry"], store.cat, provider.address, deployment["block"])
        service = ProviderKeyService(c["Jobs"], c["Authorizations"], c["AssetRegistry"], provider.address,
                                     provider.did, KeyService(keyring, manifests, rules=policy.rules), by_asset,
                                     provider_sealer(provider, directory), OpLog(folder / "log", provider.did),
                                     fetch=store.cat, sender=sender, from_block=deployment["block"],
                                     ledger=ReleaseLedger(folder / "ledger.sqlite"),
                                     auditor=QueryAuditor(folder / "auditor.sqlite") if policy.auditor else None,
                                     privacy=PrivacyLedger(folder / "privacy.sqlite"),
                                     require_terms=policy.require_terms, params_key=params_key(provider))
    versions = None
    if by_asset_discovered:   # every version the certificates record (chain numbering)
        versions = RecordedVersions(c["AssetRegistry"], service.service.manifests, service.datasets_by_asset,
                                    lambda: known_manifests(settings.home, settings.sources_dir), store.cat,
                                    deployment["block"])
        versions.refresh()
    if isinstance(keyring, WatchedKeyring):   # a rotation on disk takes effect without a restart
        index = DatasetIndex.of_keystore(keyring.path).path
        keyring.on_reload(follow_rotated_versions(service.service.manifests, index, store.cat, recorded_check(
            c["AssetRegistry"], c["Evidence"], provider.address, deployment["block"])))
        keyring.watch(index)
    registry = IdentityRegistryClient(w3, c["IdentityRegistry"], int(deployment["block"] or 0))
    verifier = ChallengeVerifier(domain=f"keyservice:{provider.address.lower()}")
    app = create_key_service_app(service, provider, registry, directory, verifier,
                                 access_log=folder / "access.jsonl")  # tailed by `tds monitor run`
    oplog = service.oplog or OpLog(folder / "log", provider.did)
    anchorer = Anchorer(oplog, c["Evidence"], service.sender or sender, w3, deployment["block"])
    return BuiltKeyService(service, app, anchorer, versions)
