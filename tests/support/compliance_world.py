"""A small data space for the compliance scans, on a private embedded chain (tests/support/chains.py):
everything real — identities bound on chain, role credentials issued by the operator (with a
jurisdiction), templates whose terms documents carry the compliance policy, registrations whose
consent record and ownership proof are sealed to the operator and the regulator, grants with terms
documents, jobs accepted and released on chain, the provider's key-release log anchored through
Evidence, a compute node in the NodeRegistry.

The clean world (``build``) has no violation; ``plant_*`` add one each.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import keccak
from web3.logs import DISCARD

from audit.anchor import Anchorer
from audit.oplog import OpLog, OpRecord
from chain import Member, Space
from chain.accounts import dev_account
from chain.collab import NodeKind, add_node
from chain.config import Settings
from chain.ops import HOM_AGG
from did.credentials import issue_role_credential
from did.identity import Identity
from did.registry import IdentityRegistryClient
from did.sealing import ChainDirectory
from offchain.keyservice.terms import GrantTermsDoc, publish_terms
from offchain.store.client import EmbeddedStore, embedded_root
from oversight.compliance.registration import (
    RegistrationDoc,
    Residency,
    publish_registration,
    publish_template,
    seal_document,
    template_terms,
)

PASSWORD = "compliance-test-password"
PRICE = 10**15
SPLIT = [7000, 1000, 1500, 500]
ACCOUNTS = {"operator": 0, "regulator": 1, "provider": 3, "consumer": 4, "oracle": 5, "foreign": 6, "node": 7}


@dataclass
class CWorld:
    settings: Settings
    space: Space
    store: EmbeddedStore
    ids: dict[str, Identity]
    tmp: Path
    templates: dict[str, int] = field(default_factory=dict)
    assets: dict[str, int] = field(default_factory=dict)
    grants: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)

    @property
    def w3(self) -> Any:
        return self.space.w3

    @property
    def block(self) -> int:
        return int(self.space.deployment["block"])

    @property
    def log_dir(self) -> Path:
        return self.tmp / "provider-log"

    @property
    def cred_dir(self) -> Path:
        return self.tmp / "credentials"

    def member(self, name: str) -> Member:
        return Member(name, self.ids[name].account, self.ids[name].did)

    def send(self, who: str, fn: Any, value: int = 0) -> Any:
        return self.space.send(self.ids[who].account, fn, value=value)

    def register(self, name: str, level: str, template: str, *, consent: bytes | None = None,
                 ownership: bytes | None = None, purposes: tuple[str, ...] = (), residency: str | None = None,
                 endpoints: tuple[str, ...] = (), status: str = "compliant", missing: tuple[str, ...] = ()) -> int:
        """Register dataset ``name`` the way ``tds asset register`` does (registration document as metadata)."""
        manifest = json.dumps({"dataset_id": name, "classification": {"dataset": level}}).encode()
        manifest_cid = self.store.add_bytes(manifest)
        roles = self.space.deployment["roles"]
        directory = ChainDirectory(self.space.c["IdentityRegistry"], self.block)
        recipients = {r: directory.resolve(roles[r]) for r in ("operator", "regulator")}
        docs = {k: seal_document(self.ids["provider"], k, v, recipients, self.store.add_bytes)
                for k, v in (("consent", consent), ("ownership", ownership)) if v is not None}
        doc = RegistrationDoc(name, manifest_cid, "0x" + keccak(manifest).hex(), level, docs.get("consent"),
                              docs.get("ownership"), purposes, Residency(residency) if residency else None, endpoints,
                              status, missing)
        meta = publish_registration(doc, self.store.add_bytes).to_bytes()
        from chain.cid import parse_cid

        self.assets[name] = self.space.register_asset(self.member("provider"), parse_cid(manifest_cid).to_bytes(), meta,
                                                      keccak(manifest), level, keccak(text="quality"),
                                                      self.templates[template])
        return self.assets[name]

    def grant(self, tag: str, asset: str, consumer: str, purpose: str, scope: list[str] | None,
              ops: int = HOM_AGG) -> int:
        terms = GrantTermsDoc(purpose, frozenset(scope) if scope is not None else None)
        digest = publish_terms(terms, self.store.add_bytes)
        self.grants[tag] = self.space.grant_by_signature(self.member("provider"), self.member(consumer),
                                                         self.assets[asset], ops, max_uses=100, price=PRICE,
                                                         purpose=f"{purpose} {tag}", purpose_hash=digest)
        return self.grants[tag]

    def released_job(self, tag: str, grant: str, layers: list[tuple[str, str, str]], op: int = HOM_AGG) -> int:
        """Request, accept and release a job on chain; log and anchor the key service's release."""
        jobs = self.space.c["Jobs"]
        g = self.grants[grant]
        consumer = self.space.c["Authorizations"].functions.grantOf(g).call()[0]
        who = next(n for n, i in self.ids.items() if i.address == consumer)
        r = self.send(who, jobs.functions.requestJob(g, op, os.urandom(32), self.space.now() + 3600), value=PRICE)
        job = jobs.events.JobRequested().process_receipt(r, errors=DISCARD)[0]["args"]["jobId"]
        self.send("oracle", jobs.functions.acceptJob(job))
        self.send("provider", jobs.functions.recordRelease(job, keccak(text=f"answer {job}")))
        p = self.ids["provider"]
        log = OpLog(self.log_dir, p.did)
        log.append(OpRecord("key-release", p.did, p.address, {   # the shape ProviderKeyService._log writes
            "job": job, "grant": str(g), "requester": self.ids["oracle"].address,
            "layers": [{"key_id": f"k{i}", "dataset": d, "column": c, "onion": o} for i, (d, c, o) in enumerate(layers)]}))
        Anchorer(log, self.space.c["Evidence"], self.space.sender(p.account), self.w3, self.block).anchor()
        self.jobs[tag] = job
        return job


def build(settings: Settings, space: Space, tmp: Path) -> CWorld:
    """The clean world: one personal, domestic-only dataset registered with its documents, a grant to
    a domestic consumer within the consented purpose and field scope, one released job logged and
    anchored, a compute node reached over https."""
    ids = {n: Identity.create(n, dev_account(i)) for n, i in ACCOUNTS.items()}
    store = EmbeddedStore(embedded_root(settings.home))
    w = CWorld(settings, space, store, ids, tmp)
    registry = IdentityRegistryClient(space.w3, space.c["IdentityRegistry"])
    for ident in ids.values():
        registry.bind(ident)
    ids["regulator"].save(settings.home / "identities", PASSWORD, scrypt_n=2**10)
    operator = ids["operator"].account
    w.cred_dir.mkdir(parents=True)
    for name, role, where in [("provider", "PROVIDER", None), ("oracle", "COMPUTE_PROVIDER", None),
                              ("consumer", "CONSUMER", "CN"), ("foreign", "CONSUMER", "US")]:
        vc = issue_role_credential(ids["operator"], ids[name].did, role, f"{name} org", days=30,
                                   subject_account=ids[name].address, jurisdiction=where)
        (w.cred_dir / f"{name}.json").write_text(json.dumps(vc))
        registry.grant_participant_role(operator, ids[name].address, role, vc)
    sender = space.sender(operator)
    for name, policy in (("lenient", "register-non-compliant"), ("strict", "refuse")):
        w.templates[name] = publish_template(sender, space.c["CertificateTemplates"], name,
                                             template_terms(name, policy), store.add_bytes, 3, 63, SPLIT)
    w.register("patients", "sensitive", "strict", consent=b"consent of 1,200 patients, signed forms",
               ownership=b"hospital owns the register, deed 42", purposes=("care research",), residency="CN",
               endpoints=("https://provider.example.org/keys",))
    w.grant("care", "patients", "consumer", "care research", ["sum:amount", "count"])
    w.released_job("care", "care", [("patients", "amount", "hom")])
    add_node(space, operator, ids["node"].address, NodeKind.COMPUTE, "compute-1", "https://compute-1.example.org:8443")
    return w
