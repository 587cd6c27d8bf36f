"""Shared fixtures for the contract suite: the whole system deployed and wired once per
module on Brownie's anvil, every test isolated by a chain snapshot, EIP-712 signing with the
participants' own keys (eth-account), and a `reverts` helper that checks the *named* custom error."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import brownie
import pytest
from brownie import (AssetRegistry, Authorizations, CertificateTemplates, Credits, Evidence, IdentityRegistry,
                     Jobs, QualityRatings, accounts, chain)
from brownie.exceptions import VirtualMachineError
from eth_utils import keccak

from chain.accounts import dev_account
from chain.eip712 import (GRANT_FIELDS, GrantTerms, grant_typed_data, job_result_typed_data,
                                     sign_typed)

ZERO = "0x0000000000000000000000000000000000000000"


def _patient_confirmation() -> None:
    """Brownie declares a transaction dropped ("Tx dropped without known replacement") when the
    sender's nonce is used but the receipt lookup fails once; a loaded anvil can answer the nonce a
    moment before the receipt is queryable. Wait (up to 10 s) for the receipt of a transaction
    whose nonce was used before handing over to Brownie's own loop, which then finds it."""
    import time

    from brownie import web3
    from brownie.network.transaction import TransactionReceipt
    from web3.exceptions import TransactionNotFound

    original = TransactionReceipt._await_confirmation
    if getattr(original, "_patient", False):
        return

    def patient(self, block_number=None, required_confs=1):
        if self.nonce is not None and not block_number:
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    receipt = web3.eth.get_transaction_receipt(self.txid)
                    if receipt is not None and receipt["blockHash"] is not None:
                        block_number = receipt["blockNumber"]
                        break
                except TransactionNotFound:
                    pass
                if web3.eth.get_transaction_count(str(self.sender)) <= self.nonce:
                    break  # still pending: Brownie's loop waits for it as usual
                time.sleep(0.1)
        return original(self, block_number, required_confs)

    patient._patient = True
    TransactionReceipt._await_confirmation = patient


_patient_confirmation()
H = lambda text: "0x" + keccak(text=text).hex()  # noqa: E731 - short role/label hashes
ROLES = {n: H(n) for n in ("PROVIDER", "CONSUMER", "OPERATOR", "REGULATOR", "DEVELOPER", "ALGORITHM_PROVIDER",
                           "COMPUTE_PROVIDER", "MONITOR", "JOBS")}
DET_EQ, OPE_RANGE, HOM_AGG, MPC, FL, DOWNLOAD = 1, 2, 4, 8, 16, 32
PER_TASK, PER_PERIOD = 0, 1
SPLIT = [7000, 1000, 1500, 500]  # provider, algorithm provider, compute provider, operator
PRICE = 10**15
ACCEPT_TIMEOUT = 3600

TERM_FIELDS = [name for name, _ in GRANT_FIELDS]


@dataclass
class Cast:
    """Who is who (brownie accounts = anvil dev accounts = chain.accounts.dev_account(i))."""
    operator: Any
    regulator: Any
    monitor: Any
    provider: Any
    consumer: Any
    oracle: Any
    algorithm: Any
    provider2: Any
    consumer2: Any
    oracle2: Any


@dataclass
class System:
    identity: Any
    templates: Any
    assets: Any
    auth: Any
    jobs: Any
    credits: Any
    ratings: Any
    evidence: Any
    cast: Cast
    template_id: int
    asset_id: int


def _bind(identity, acct, did: str) -> None:
    identity.bind(did, H(did + "#doc"), H(did + "#x25519"), H(did + "#proof"), {"from": acct})
    BOUND[str(acct)] = ("0x" + keccak(text=did).hex(), H(did + "#doc"), H(did + "#x25519"),
                        "0x" + keccak(bytes.fromhex(H(did + "#proof")[2:])).hex())


BOUND: dict[str, tuple] = {}  # account -> the Identity struct its fixture bind committed to


def identity_of(acct) -> tuple:
    """The ``IIdentityRegistry.Identity`` a fixture account was bound with (NodeRegistry, Onboarding take it)."""
    return BOUND[str(acct)]


def _grant_role(identity, operator, acct, role: str) -> None:
    identity.grantParticipantRole(acct, ROLES[role], H(f"vc:{role}:{acct.address}"), 0, {"from": operator})


def mint_params(template_id: int, classification: int = 2, cid: bytes = b"\x12\x20" + b"\x11" * 32) -> tuple:
    return (cid, b"\x12\x20" + b"\x22" * 32, H("manifest"), classification, H("quality"), template_id)


@pytest.fixture(scope="session")
def cast() -> Cast:
    a = accounts
    return Cast(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9])


@pytest.fixture(scope="module")
def system(module_isolation, cast: Cast) -> System:
    """The whole system, deployed and wired once per module (Brownie resets the chain per module)."""
    op = cast.operator
    identity = IdentityRegistry.deploy(op, {"from": op})
    templates = CertificateTemplates.deploy(op, {"from": op})
    assets = AssetRegistry.deploy(op, identity, templates, {"from": op})
    auth = Authorizations.deploy(op, identity, assets, {"from": op})
    jobs = Jobs.deploy(identity, auth, assets, templates, op, ACCEPT_TIMEOUT, {"from": op})
    credits = Credits.deploy(op, cast.regulator, {"from": op})
    ratings = QualityRatings.deploy(auth, jobs, {"from": op})
    evidence = Evidence.deploy({"from": op})
    assets.grantRole(ROLES["REGULATOR"], cast.regulator, {"from": op})
    auth.grantRole(ROLES["REGULATOR"], cast.regulator, {"from": op})
    auth.grantRole(ROLES["MONITOR"], cast.monitor, {"from": op})
    auth.grantRole(ROLES["JOBS"], jobs, {"from": op})
    auth.setPaymentToken(credits, True, {"from": op})
    for i, (acct, roles) in enumerate([
        (cast.provider, ["PROVIDER"]), (cast.provider2, ["PROVIDER"]), (cast.consumer, ["CONSUMER"]),
        (cast.consumer2, ["CONSUMER"]), (cast.oracle, ["COMPUTE_PROVIDER"]), (cast.oracle2, ["COMPUTE_PROVIDER"]),
        (cast.algorithm, ["ALGORITHM_PROVIDER"]), (cast.regulator, ["REGULATOR"]),
    ]):
        _bind(identity, acct, f"did:key:z6Mk-test-{i}")
        for r in roles:
            _grant_role(identity, op, acct, r)
    tx = templates.publish("standard", b"\x12\x20" + b"\x33" * 32, H("terms"), 1 | 2, 63, SPLIT, {"from": op})
    template_id = tx.return_value
    tx = assets.mint(mint_params(template_id), {"from": cast.provider})
    return System(identity, templates, assets, auth, jobs, credits, ratings, evidence, cast, template_id,
                  tx.return_value)


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    """Every test starts from the session's freshly wired system."""


def now() -> int:
    """Timestamp of the latest block (the next transaction's block.timestamp is at least this)."""
    return chain[-1].timestamp


def terms(system: System, **over) -> tuple:
    """Grant terms as the tuple the contracts take (defaults: 3 paid DET/HOM uses, native coin)."""
    t = dict(assetId=system.asset_id, consumer=system.cast.consumer.address, purposeHash=H("purpose:stats"),
             operations=DET_EQ | HOM_AGG, kind=PER_TASK, notBefore=0, expiry=now() + 30 * 86400, maxUses=3,
             paymentToken=ZERO, pricePerUse=PRICE, algorithmProvider=system.cast.algorithm.address)
    t.update(over)
    return tuple(t[f] for f in TERM_FIELDS)


def sign_grant(system: System, signer_index: int, t: tuple, nonce: int, deadline: int, *,
               chain_id: int | None = None, verifying: str | None = None) -> bytes:
    """The certificate holder's wallet signing grant terms (EIP-712, eth-account)."""
    values = dict(zip(TERM_FIELDS, t))
    values["purposeHash"] = bytes.fromhex(str(values["purposeHash"])[2:])
    data = grant_typed_data(GrantTerms(**values), nonce, deadline, chain_id or chain.id,
                            verifying or system.auth.address)
    return sign_typed(data, dev_account(signer_index).key)


def sign_result(system: System, signer_index: int, job_id: int, result_hash: str, cid: bytes, *,
                chain_id: int | None = None, verifying: str | None = None) -> bytes:
    """An oracle attesting a result (EIP-712 JobResult)."""
    data = job_result_typed_data(job_id, bytes.fromhex(result_hash[2:]), cid, chain_id or chain.id,
                                 verifying or system.jobs.address)
    return sign_typed(data, dev_account(signer_index).key)


def _fmt(v: Any) -> str:
    """Format an expected argument the way Brownie prints a decoded custom error."""
    if hasattr(v, "address"):
        return v.address
    if isinstance(v, bytes) and len(v) == 32:
        return str(bytes(v))
    if isinstance(v, str) and v.startswith("0x") and len(v) == 66:
        return str(bytes.fromhex(v[2:]))
    return str(v)


@contextmanager
def reverts(error: str, *args: Any):
    """Expect a revert with custom error `error`; with args, also its exact arguments
    (addresses compare case-insensitively, as Brownie prints them in lower case)."""
    try:
        yield
    except VirtualMachineError as exc:
        msg = exc.revert_msg or ""
        name = msg.split(":", 1)[0]
        assert name == error, f"expected {error}, reverted with {msg!r}"
        if args:
            want = f"{error}: " + ", ".join(_fmt(a) for a in args)
            assert msg.lower() == want.lower(), f"expected {want!r}, got {msg!r}"
    else:
        raise AssertionError(f"did not revert (expected {error})")


def grant_direct(system: System, **over) -> int:
    return system.auth.grant(terms(system, **over), {"from": system.cast.provider}).return_value


def request(system: System, grant_id: int, op: int = HOM_AGG, value: int = PRICE, sender=None, ttl: int = 3600):
    return system.jobs.requestJob(grant_id, op, H("params"), now() + ttl,
                                  {"from": sender or system.cast.consumer, "value": value})


def result_hash(job_id: int) -> str:
    return H(f"result:{job_id}")


def release(system: System, job_id: int, rh: str | None = None):
    """The holder of the job's asset (its key service) records the release of the answer."""
    grant = system.auth.grantOf(system.jobs.jobOf(job_id)[0]["grantId"])
    holder = system.assets.ownerOf(grant["assetId"])
    return system.jobs.recordRelease(job_id, rh or result_hash(job_id), {"from": holder})


def complete(system: System, job_id: int, oracle=None, oracle_index: int = 5, cid: bytes = b"\x12\x20" + b"\x44" * 32):
    """Release (if not yet released) and post the answer as the job's oracle."""
    oracle = oracle or system.cast.oracle
    rh = result_hash(job_id)
    if system.jobs.jobOf(job_id)[0]["status"] == 2:  # Accepted: the key service records the release first
        release(system, job_id, rh)
    return system.jobs.completeJob(job_id, cid, rh, sign_result(system, oracle_index, job_id, rh, cid),
                                   {"from": oracle})
