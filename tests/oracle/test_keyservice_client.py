"""The oracle's key-service client against real key services over loopback HTTP (issue 12, items 14d
and 20): it binds each presentation to its request, and opens layer keys only when the DID the
chain binds to the asset's holder sealed them — a key service run under any other identity is
refused by name, even when it is reachable at the provider's URL and passes every other check."""
from __future__ import annotations

from dataclasses import replace

import pytest

from chain.config import load_settings
from chain.node import EmbeddedNode, free_port
from chain.ops import HOM_AGG, OPE_RANGE
from did.challenge import ChallengeVerifier
from did.errors import EnvelopeAuthError
from did.identity import Identity
from did.registry import IdentityRegistryClient
from did.sealing import ChainDirectory
from offchain.keyservice.api import ServiceLimits, create_key_service_app
from offchain.query.plan import Query
from oracle.keyservice_client import (HttpKeyService, KeyServiceRouter, KeyServiceUnavailable, KeysNotFromProvider,
                                      ProviderDidUnknown)
from tds.sandbox import PRICE, build_world
from tests.support.services import ServedApp

QUERY = {"aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", 100, 700]]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keyservice-client")
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    node.up(fresh=True)
    try:
        w = build_world(settings, tmp, rows=60)
        q = {"dataset": w.sales_id, **QUERY}
        job = w.space.request_job(w.consumer, w.grant_id, OPE_RANGE | HOM_AGG, q, w.store, value=PRICE)
        w.space.send(w.oracle.account, w.space.c["Jobs"].functions.acceptJob(job))
        yield w, job
    finally:
        node.down()


def directory(w) -> ChainDirectory:
    return ChainDirectory(w.space.c["IdentityRegistry"], w.space.deployment["block"])


def serve(w, sealer: Identity, limits: ServiceLimits | None = None) -> ServedApp:
    """The real key-service app of the world's provider, sealing layer keys as ``sealer``."""
    c = w.space.c
    return ServedApp(create_key_service_app(w.key_service, sealer, IdentityRegistryClient(w.space.w3, c["IdentityRegistry"]),
                                            directory(w), ChallengeVerifier(f"keyservice:{w.provider.address.lower()}"),
                                            limits))


def router(w, url: str, with_directory: bool = True) -> KeyServiceRouter:
    c = w.space.c
    return KeyServiceRouter(c["Jobs"], c["Authorizations"], c["AssetRegistry"],
                            {w.provider.address: HttpKeyService(url, w.identities["oracle"])},
                            directory=directory(w) if with_directory else None)


def query(w) -> Query:
    return Query.from_dict({"dataset": w.sales_id, **QUERY})


def test_keys_sealed_by_the_holders_did_are_opened(world):
    w, job = world
    served = serve(w, w.identities["provider"])
    try:
        r = router(w, served.url)
        assert r.provider_did_of(job) == w.identities["provider"].did  # from the chain, not from the service
        enc, peeled, manifests = r.prepare(job, query(w), w.oracle.address)
        assert peeled.keys and w.sales_id in manifests and enc.datasets
    finally:
        served.stop()


def test_keys_sealed_by_another_identity_are_refused(world):
    """A key service at the provider's URL that passes every chain check but seals as someone else."""
    w, job = world
    impostor = Identity.create("impostor")
    served = serve(w, impostor)
    try:
        with pytest.raises(KeysNotFromProvider) as info:
            router(w, served.url).prepare(job, query(w), w.oracle.address)
        assert impostor.did in str(info.value) and w.identities["provider"].did in str(info.value)
        assert isinstance(info.value, EnvelopeAuthError)
        # pinned to the holder's DID directly, the client refuses it just the same
        with pytest.raises(KeysNotFromProvider):
            HttpKeyService(served.url, w.identities["oracle"]).prepare(job, query(w), w.oracle.address,
                                                                        provider_did=w.identities["provider"].did)
    finally:
        served.stop()


def test_no_unchecked_keys_without_a_chain_directory(world):
    w, job = world
    served = serve(w, w.identities["provider"])
    try:
        with pytest.raises(ProviderDidUnknown, match="directory"):
            router(w, served.url, with_directory=False).prepare(job, query(w), w.oracle.address)
        with pytest.raises(ProviderDidUnknown):
            HttpKeyService(served.url, w.identities["oracle"]).prepare(job, query(w), w.oracle.address)
    finally:
        served.stop()


def test_rate_limited_oracle_retries_instead_of_failing_the_job(world):
    """429 maps to KeyServiceUnavailable (a ConnectionError): the runner retries, it does not failJob."""
    w, job = world
    served = serve(w, w.identities["provider"], ServiceLimits(did_per_second=0.05, did_burst=1))
    try:
        r = router(w, served.url)
        r.prepare(job, query(w), w.oracle.address)
        with pytest.raises(KeyServiceUnavailable, match="rate-limiting"):
            r.prepare(job, query(w), w.oracle.address)
    finally:
        served.stop()
