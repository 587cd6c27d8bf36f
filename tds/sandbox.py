"""A small, complete data space on one chain for tests, benchmarks and the demo: the deployed
system, bound participants with roles, a provider with two encrypted tables (sales, customers)
registered as assets, a consumer holding a grant signed by the provider, and the provider's key
service. Everything real: chain, ciphertext, signatures. The identities and the datasets are of the
cryptography profile in force (``TDS_CRYPTO_PROFILE``: Ed25519/X25519 or SM2, docs/crypto-profile.md)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_utils import keccak

from did.identity import Identity, create_identity
from did.registry import IdentityRegistryClient

from offchain.ingest.classification import Classification
from offchain.ingest.schema import Field, Schema
from offchain.ingest.table import Table
from offchain.keyservice.release import KeyService
from offchain.onion.dataset import encrypt_table
from offchain.onion.keys import Keyring, new_hom
from offchain.onion.policy import default_policy
from chain.cid import parse_cid
from offchain.store.client import EmbeddedStore
from audit.oplog import OpLog
from chain.accounts import dev_account
from chain.connection import connect
from oracle.journal import Journal
from chain.ops import DET_EQ, HOM_AGG, OPE_RANGE
from oracle.pipeline import JobPipeline
from offchain.keyservice.provider import ProviderKeyService
from oracle.runner import OracleRunner
from did.sealing import ChainDirectory, open_result, provider_sealer
from chain import Member, Space
from chain.system import deploy_system
from chain.params import params_key

SALES = Schema((Field("customer", "identifier"), Field("region", "string"),
                Field("amount", "integer", minimum=0, maximum=100000)), name="sales")
CUSTOMERS = Schema((Field("customer", "identifier"), Field("segment", "string")), name="customers")
PRICE = 10**15


def sales_rows(n: int) -> list[list[Any]]:
    return [[f"c{i % 50}", ["north", "south", "east"][i % 3], (i * 7919) % 1000] for i in range(n)]


@dataclass
class World:
    space: Space
    store: EmbeddedStore
    provider: Member
    consumer: Member
    oracle: Member
    operator: Any
    sales_id: str
    customers_id: str
    sales_rows: list[list[Any]]
    grant_id: int
    key_service: ProviderKeyService
    identities: dict[str, Identity] = field(default_factory=dict)

    def open(self, sealed: bytes, who: str = "consumer", job_id: int | None = None) -> dict[str, Any]:
        """Open a sealed answer as ``who`` (checks it came from the provider, and given ``job_id``
        that it was released for that job)."""
        return open_result(self.identities[who], sealed, self.identities["provider"].did, job_id=job_id)

    def runner(self, journal_path: Path, oracle: Member | None = None, **kw: Any) -> OracleRunner:
        oracle = oracle or self.oracle
        pipeline = JobPipeline(self.store, self.key_service, oracle.address)
        return OracleRunner(self.space.w3, self.space.c["Jobs"], oracle.account, Journal(journal_path), pipeline,
                            start_block=self.space.deployment["block"], **kw)


def build_world(settings, tmp: Path, rows: int = 200, hom_bits: int = 1024, max_uses: int = 1000,
                sensitive: tuple[str, ...] = ()) -> World:
    """The world; ``sensitive`` names sales columns classified sensitive (release rules apply)."""
    w3 = connect(settings)
    doc = deploy_system(settings, w3=w3)
    space = Space(w3, doc)
    operator = dev_account(0)
    ids = {name: create_identity(name, dev_account(i)) for name, i in [("provider", 3), ("consumer", 4), ("oracle", 5)]}
    provider, consumer, oracle = (Member(n, ids[n].account, ids[n].did) for n in ("provider", "consumer", "oracle"))
    registry = IdentityRegistryClient(w3, space.c["IdentityRegistry"])
    for m, role in [(provider, "PROVIDER"), (consumer, "CONSUMER"), (oracle, "COMPUTE_PROVIDER")]:
        registry.bind(ids[m.name])
        space.grant_role(operator, m, role, keccak(text=f"vc:{m.name}"))
    seal = provider_sealer(ids["provider"], ChainDirectory(space.c["IdentityRegistry"], doc["block"]))
    template = space.publish_template(operator, "standard", b"terms v1", 3, 63, [7000, 1000, 1500, 500])

    store = EmbeddedStore(tmp / "store")
    ring = Keyring()
    hom = new_hom(hom_bits)
    sales_table = Table.from_rows(SALES, sales_rows(rows))
    cls = Classification("sensitive" if sensitive else "internal",
                         {f: "sensitive" if f in sensitive else "internal" for f in SALES.names})
    sales = encrypt_table(sales_table, default_policy(SALES, cls, min_group_size=3), cls, ring, hom_key=hom)
    det_keys = {}
    cust_cls = Classification("internal", {f: "internal" for f in CUSTOMERS.names})
    customers = encrypt_table(Table.from_rows(CUSTOMERS, [[f"c{i}", ["gold", "basic"][i % 2]] for i in range(50)]),
                              default_policy(CUSTOMERS, cust_cls, min_group_size=3), cust_cls, ring, hom_key=hom,
                              det_keys=det_keys)
    assets = {}
    for ds in (sales, customers):
        manifest_cid = ds.publish(store.add_bytes)
        assets[ds.dataset_id] = space.register_asset(
            provider, parse_cid(manifest_cid).to_bytes(), parse_cid(manifest_cid).to_bytes(),
            bytes.fromhex(ds.manifest_hash[2:]), "internal", keccak(text="quality"), template)
    service = KeyService(ring, {sales.dataset_id: sales.manifest, customers.dataset_id: customers.manifest})
    ks = ProviderKeyService(space.c["Jobs"], space.c["Authorizations"], space.c["AssetRegistry"], provider.address,
                            provider.did, service, {a: {d} for d, a in assets.items()}, seal,
                            OpLog(tmp / "provider-log", provider.did), fetch=store.cat,
                            sender=space.sender(provider.account), from_block=space.deployment["block"],
                            params_key=params_key(ids["provider"]))
    grant_id = space.grant_by_signature(provider, consumer, assets[sales.dataset_id], DET_EQ | OPE_RANGE | HOM_AGG,
                                        max_uses=max_uses, price=PRICE, purpose="quarterly analysis")
    return World(space, store, provider, consumer, oracle, operator, sales.dataset_id, customers.dataset_id,
                 sales_rows(rows), grant_id, ks, ids)
