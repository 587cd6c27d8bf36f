"""The deployed system as a participant command sees it: the configured chain, its deployment
file, typed views of assets, grants and jobs, and the checks every command makes before it
signs (so most refusals name the problem before a transaction is even built)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from tds.cli.refusals import (ASSET_STATES, FREEZE_AUTHORITIES, GRANT_STATES, JOB_STATES, GrantExpired,
                                 NoDeployment, NotYours, StateRefused, UnknownAsset, UnknownGrant, UnknownJob,
                                 iso)
from tds.cli.wallet import WalletChoice
from chain.config import Settings, load_settings
from chain.ops import describe
from chain import Space

ZERO_ADDRESS = "0x" + "00" * 20
CLASSIFICATIONS = ("public", "internal", "sensitive", "confidential")
GRANT_KINDS = ("per-task", "per-period")


@dataclass(frozen=True)
class AssetView:
    asset_id: int
    holder: str
    template_id: int
    classification: str
    state: str
    frozen_by: str
    minted_at: int
    allowed_ops: int
    manifest_hash: bytes
    quality_report_hash: bytes

    def to_dict(self) -> dict[str, Any]:
        return {"assetId": self.asset_id, "holder": self.holder, "templateId": self.template_id,
                "classification": self.classification, "state": self.state, "frozenBy": self.frozen_by,
                "mintedAt": iso(self.minted_at), "allowedOps": describe(self.allowed_ops),
                "manifestHash": "0x" + self.manifest_hash.hex(),
                "qualityReportHash": "0x" + self.quality_report_hash.hex()}


@dataclass(frozen=True)
class GrantView:
    grant_id: int
    consumer: str
    uses: int
    max_uses: int
    operations: int
    status: str
    frozen_by: str
    kind: str
    algorithm_provider: str
    asset_id: int
    not_before: int
    expiry: int
    payment_token: str
    price: int

    @property
    def unlimited(self) -> bool:
        return self.max_uses == 2**32 - 1

    def to_dict(self) -> dict[str, Any]:
        return {"grantId": self.grant_id, "assetId": self.asset_id, "consumer": self.consumer,
                "status": self.status, "frozenBy": self.frozen_by, "kind": self.kind,
                "operations": describe(self.operations), "uses": self.uses,
                "maxUses": None if self.unlimited else self.max_uses,
                "notBefore": iso(self.not_before) if self.not_before else None,
                "expiry": iso(self.expiry) if self.expiry else None,
                "paymentToken": self.payment_token, "pricePerUse": str(self.price),
                "algorithmProvider": self.algorithm_provider}


@dataclass(frozen=True)
class JobView:
    job_id: int
    grant_id: int
    amount: int
    deadline: int
    status: str
    operation: int
    oracle: str
    accepted_at: int

    def to_dict(self) -> dict[str, Any]:
        return {"jobId": self.job_id, "grantId": self.grant_id, "status": self.status,
                "operation": describe(self.operation), "amount": str(self.amount), "deadline": iso(self.deadline),
                "oracle": None if self.oracle == ZERO_ADDRESS else self.oracle}


@dataclass
class Deployed:
    """The connected chain and its deployment, with one cached signing account."""

    settings: Settings
    w3: Web3
    deployment: dict[str, Any]
    space: Space
    _account: LocalAccount | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings | None = None) -> "Deployed":
        """Connect and read the deployment; refuse with the command to run when there is none."""
        from chain.connection import connect
        from chain.deploy import read_deployment
        from chain.errors import DeploymentError

        settings = settings or load_settings()
        w3 = connect(settings)
        chain_id = w3.eth.chain_id
        path = settings.deployment_path(chain_id)
        if not path.exists():
            raise NoDeployment(f"no TDS deployment for chain {chain_id} ({path} is missing): run 'tds deploy' "
                               f"(or point TDS_DEPLOYMENT at the deployment file)")
        try:
            doc = read_deployment(path, chain_id)
        except DeploymentError as exc:
            raise NoDeployment(f"{exc}; run 'tds deploy' for chain {chain_id}") from None
        space = Space(w3, doc)
        if not w3.eth.get_code(space.c["Jobs"].address):
            raise NoDeployment(f"the deployment file {path} names contracts that are not on chain {chain_id} "
                               f"(was the chain reset?): run 'tds deploy'")
        return cls(settings, w3, doc, space)

    @property
    def chain_id(self) -> int:
        return int(self.deployment["chainId"])

    @property
    def c(self) -> dict[str, Any]:
        return self.space.c

    def signer(self, wallet: WalletChoice) -> LocalAccount:
        if self._account is None:
            self._account = wallet.account(self.chain_id)
        return self._account

    def send(self, account: LocalAccount, fn: Any, value: int = 0) -> Any:
        return self.space.send(account, fn, value=value)

    def now(self) -> int:
        return self.space.now()

    def store(self) -> Any:
        from offchain.store.client import open_store

        return open_store(self.settings.home, self.settings.ipfs_api)

    # --- assets ---------------------------------------------------------------------------
    def asset(self, asset_id: int) -> AssetView:
        reg = self.c["AssetRegistry"].functions
        count = reg.assetCount().call()
        if not 1 <= asset_id <= count:
            raise UnknownAsset(asset_id, count)
        a = reg.assetOf(asset_id).call()
        holder = reg.ownerOf(asset_id).call()
        return AssetView(asset_id, holder, a[0], CLASSIFICATIONS[a[1]], ASSET_STATES[a[2]], FREEZE_AUTHORITIES[a[3]],
                         a[4], a[5], bytes(a[9]), bytes(a[10]))

    def registration(self, asset_id: int) -> dict[str, Any]:
        """The AssetRegistered event of ``asset_id`` (content and metadata CIDs)."""
        logs = self.c["AssetRegistry"].events.AssetRegistered().get_logs(
            from_block=self.deployment["block"], argument_filters={"assetId": asset_id})
        if not logs:
            raise UnknownAsset(asset_id, self.c["AssetRegistry"].functions.assetCount().call())
        return dict(logs[0]["args"])

    def held_by(self, asset: AssetView, account: str) -> None:
        if asset.holder != account:
            raise NotYours(f"asset {asset.asset_id} is not yours: its certificate is held by {asset.holder}, "
                           f"you sign as {account}; use the holder's wallet")

    # --- grants ---------------------------------------------------------------------------
    def grant(self, grant_id: int) -> GrantView:
        auth = self.c["Authorizations"].functions
        count = auth.grantCount().call()
        if not 1 <= grant_id <= count:
            raise UnknownGrant(grant_id, count)
        g = auth.grantOf(grant_id).call()
        return GrantView(grant_id, g[0], g[1], g[2], g[3], GRANT_STATES[g[4]], FREEZE_AUTHORITIES[g[5]],
                         GRANT_KINDS[g[6]], g[7], g[8], g[9], g[10], g[11], g[12])

    def grant_provider(self, grant_id: int) -> str:
        """Who issued the grant (the holder at the time): from its GrantIssued event."""
        logs = self.c["Authorizations"].events.GrantIssued().get_logs(
            from_block=self.deployment["block"], argument_filters={"grantId": grant_id})
        if not logs:
            raise UnknownGrant(grant_id, self.c["Authorizations"].functions.grantCount().call())
        return logs[0]["args"]["provider"]

    def usable_grant(self, g: GrantView, consumer: str, operation: int | None = None) -> None:
        """Every check ``Authorizations.consume`` makes, as a sentence, before paying for a job."""
        if g.consumer != consumer:
            raise NotYours(f"grant {g.grant_id} is not yours: it was issued to {g.consumer}, you sign as {consumer}")
        if g.status != "active":
            raise StateRefused(f"grant {g.grant_id} is {g.status}; apply for a new grant ('tds grant apply')")
        if g.frozen_by != "nobody":
            raise StateRefused(f"grant {g.grant_id} is frozen by {g.frozen_by}; it must be lifted first "
                               f"('tds grant unfreeze {g.grant_id}')")
        now = self.now()
        if g.not_before and now < g.not_before:
            raise StateRefused(f"grant {g.grant_id} is valid only from {iso(g.not_before)}")
        if g.expiry and now > g.expiry:
            raise GrantExpired(g.grant_id, g.expiry)
        if g.uses >= g.max_uses:
            raise StateRefused(f"grant {g.grant_id} has used all {g.max_uses} of its uses; apply for a new grant")
        if operation is not None and (operation & ~g.operations or not operation):
            raise StateRefused(f"grant {g.grant_id} allows {describe(g.operations)}; the job needs "
                               f"{describe(operation)}")
        state = self.asset(g.asset_id).state
        if state != "active":
            raise StateRefused(f"asset {g.asset_id} of grant {g.grant_id} is {state}; no job can use it now")

    # --- jobs -----------------------------------------------------------------------------
    def job(self, job_id: int) -> JobView:
        core, exe = self.c["Jobs"].functions.jobOf(job_id).call()
        if core[3] == 0:
            raise UnknownJob(job_id)
        return JobView(job_id, core[0], core[1], core[2], JOB_STATES[core[3]], core[4], exe[0], exe[1])

    def job_failure(self, job_id: int) -> int | None:
        logs = self.c["Jobs"].events.JobFailed().get_logs(from_block=self.deployment["block"],
                                                          argument_filters={"jobId": job_id})
        return logs[-1]["args"]["reasonCode"] if logs else None
