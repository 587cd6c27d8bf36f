"""Request and response bodies of the gateway (the OpenAPI schemas at ``/openapi.json``).

Trail and audit entries are :class:`audit.trail.TrailEntry` itself (a dataclass FastAPI
serialises as is), so the audit field list lives in one place.
"""
from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from audit.trail import TrailEntry
from chain.eip712 import GRANT_FIELDS, GrantTerms

HEX = r"^0x[0-9a-fA-F]*$"


class ErrorBody(BaseModel):
    """Every refusal: a stable code and what was wrong."""

    error: str = Field(description="stable code, e.g. unknown-asset, invalid-input, rate-limited")
    detail: str = Field(description="what was wrong and how to fix it")


class Challenge(BaseModel):
    challenge: str = Field(description="the nonce to sign (with the domain) in a DID presentation")
    domain: str
    expires: int = Field(description="unix seconds after which the challenge is refused")
    www_authenticate: str = Field(description="the same, as the WWW-Authenticate value a 401 carries")


class Registration(BaseModel):
    block: int
    tx: str
    time: str


class Rating(BaseModel):
    count: int
    sum: int
    mean: float


class AssetSummary(BaseModel):
    assetId: int
    provider: str
    provider_did: str | None
    holder: str
    holder_did: str | None
    state: str = Field(description="active, frozen or offline")
    templateId: int
    classification: str
    contentCid: str = Field(description="CID bytes (0x) of the encrypted content; never the plaintext")
    metadataCid: str
    manifestHash: str
    qualityReportHash: str
    allowedOps: int = Field(description="bit set of operations the certificate allows")
    registered: Registration
    grants: list[int]
    jobs: list[int]
    rating: Rating


class Verdict(BaseModel):
    step: str
    subject: str
    ok: bool
    status: str = Field(description="pass, fail or skip")
    detail: str
    refs: dict[str, Any] = {}


class VerifyReport(BaseModel):
    ok: bool
    chainId: int
    asset: int | None
    verdicts: list[Verdict]


class TrailReport(BaseModel):
    asset: int
    chainId: int
    trail: list[TrailEntry]
    indexedBlock: int | None = Field(default=None, description="block the event index was complete up to (index-backed gateways)")


class AuditEvents(BaseModel):
    chainId: int
    total: int = Field(description="entries matching the filters (before offset/limit)")
    offset: int
    events: list[TrailEntry] = Field(description="000 §12.3.1.2 fields: id, actor, time, action, object, result")
    indexedBlock: int | None = Field(default=None, description="block the event index was complete up to (index-backed gateways)")


class ResultRef(BaseModel):
    resultCid: str
    resultHash: str
    oracle: str


class JobSummary(BaseModel):
    jobId: int
    grantId: int
    assetId: int | None
    consumer: str
    operation: int
    paramsHash: str
    paymentToken: str
    amount: str = Field(description="wei (decimal string)")
    deadline: int
    status: str = Field(description="requested, accepted, completed, failed or reclaimed")
    result: ResultRef | None = Field(description="where the sealed result is and its hash; never the plaintext")
    history: list[TrailEntry]
    indexedBlock: int | None = Field(default=None, description="block the event index was complete up to (index-backed gateways)")


class Alert(BaseModel):
    kind: str = Field(description="grant-frozen, asset-frozen (monitor or regulator) or oracle-failure")
    subject: int
    by: str
    authority: str | None
    reasonCode: int | None
    failures: int | None
    block: int
    tx: str
    liftedBlock: int | None


class GrantSummary(BaseModel):
    grantId: int
    assetId: int
    consumer: str
    provider: str
    status: str = Field(description="active, revoked or closed")
    frozen: bool
    uses: int = Field(description="uses consumed (never falls; job ids are grantId << 32 | use)")
    restored: int = Field(description="uses given back after failures not charged to the consumer")
    maxUses: int
    terms: dict[str, Any] | None
    issued: dict[str, Any]
    jobs: list[dict[str, Any]]
    collaborationUses: list[dict[str, Any]]
    alerts: list[Alert]
    history: list[TrailEntry]
    indexedBlock: int | None


class CollaborationStep(BaseModel):
    step: int
    status: str = Field(description="pending, open, completed, failed or cancelled")
    operation: int | None
    paramsHash: str | None
    nodes: list[str]
    deadline: int | None
    coordinator: str | None
    resultHash: str | None = Field(description="the step's anchored result hash (completed steps)")
    resultCid: str | None


class CollaborationSummary(BaseModel):
    collaborationId: int
    initiator: str
    status: str = Field(description="running, completed or terminated")
    stepCount: int
    paymentToken: str | None
    amount: str | None
    stepTimeout: int | None
    descriptionHash: str | None
    stoppedStep: int | None
    reasonCode: int | None
    refund: str | None
    requested: dict[str, int]
    endedBlock: int | None
    steps: list[CollaborationStep]
    grantUses: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    history: list[TrailEntry]
    indexedBlock: int | None


class RawTransactionIn(BaseModel):
    rawTransaction: str = Field(pattern=HEX, max_length=2 * 16 * 1024 + 2,
                                description="the signed transaction (0x-hex), signed by the caller's bound account")


class JobIn(RawTransactionIn):
    params: dict[str, Any] = Field(description="the job's parameters sealed to the asset holder's key service "
                                               "(format tds-params/1, chain.params.seal_params); their sha-256 "
                                               "(canonical JSON) must be the transaction's paramsHash. At most "
                                               "256 KiB. Plaintext queries are refused (400 params-not-sealed).")


def _terms_model() -> type[BaseModel]:
    """IAuthorizations.GrantTerms as a request body, field for field from :class:`GrantTerms`
    (uint fields as integers; bytes32 and addresses as 0x-hex)."""
    types = dict(GRANT_FIELDS)
    spec: dict[str, Any] = {}
    for f in fields(GrantTerms):
        py = int if types[f.name].startswith("uint") else str
        spec[f.name] = (py, ... if f.default is MISSING else f.default)
    return create_model("GrantTermsIn", __doc__="IAuthorizations.GrantTerms (bytes32 and addresses as 0x-hex).",
                        **spec)


GrantTermsIn = _terms_model()


class GrantIn(BaseModel):
    terms: GrantTermsIn  # type: ignore[valid-type]
    nonce: int = Field(ge=0, lt=2 ** 256, description="keyed nonce: key << 64 | sequence (OZ NoncesKeyed)")
    deadline: int = Field(ge=0, lt=2 ** 256, description="unix seconds; the offer is void after it")
    signature: str = Field(pattern=HEX, max_length=2 + 2 * 1024,
                           description="the holder's EIP-712 signature over Grant(terms, nonce, deadline)")


class Relayed(BaseModel):
    txHash: str
    status: Literal["mined", "pending"] = Field(description="pending: not mined within the gateway's wait")
    block: int | None = None
    gasUsed: int | None = None
    paidBy: str = Field(description="the account that paid the gas (the signer, or the gateway's relayer)")


class ApplicationOut(Relayed):
    applicationId: int | None
    assetId: int
    consumer: str


class GrantOut(Relayed):
    grantId: int | None
    assetId: int
    consumer: str
    provider: str


class JobOut(Relayed):
    jobId: int | None
    grantId: int
    paramsHash: str
    paramsCid: str = Field(description="CIDv1 (raw) where the oracle reads the parameters")
