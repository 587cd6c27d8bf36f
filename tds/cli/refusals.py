"""Why a participant command refused, in words that say what to do next.

Two sources: the command's own checks before anything is signed (one exception class per
reason, carrying the offending value), and the contracts' custom errors, which
:func:`advise` turns from ``GrantExpired(grantId=3, expiry=…, nowTs=…)`` into a sentence with
the fix. Every class is an :class:`chain.errors.TdsError`, so ``tds`` prints one line.
"""
from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Any, Callable

from chain.errors import TdsError
from chain.jobstatus import NAMES

ASSET_STATES = ("none", "active", "frozen", "offline", "pending", "rejected")
GRANT_STATES = ("none", "active", "revoked", "closed")
APPLICATION_STATES = ("none", "pending", "approved", "rejected")
FREEZE_AUTHORITIES = ("nobody", "the holder", "the monitor", "a regulator")
JOB_STATES = NAMES


class ParticipantError(TdsError):
    """Base class of the participant commands' refusals."""


class NoDeployment(ParticipantError):
    """The chain has no deployment of the system (or the file names contracts not on it)."""


class WalletError(ParticipantError):
    """No usable signing key: none chosen, unreadable keystore, dev key on a real chain."""


class UnknownAsset(ParticipantError):
    def __init__(self, asset_id: int, count: int):
        super().__init__(f"asset {asset_id} does not exist ({count} registered; list them with 'tds catalog')")
        self.asset_id = asset_id


class UnknownGrant(ParticipantError):
    def __init__(self, grant_id: int, count: int):
        super().__init__(f"grant {grant_id} does not exist ({count} issued; 'tds grant show ID' shows one)")
        self.grant_id = grant_id


class UnknownApplication(ParticipantError):
    def __init__(self, application_id: int):
        super().__init__(f"application {application_id} does not exist (the consumer's 'tds grant apply' "
                         f"prints its id)")
        self.application_id = application_id


class UnknownJob(ParticipantError):
    def __init__(self, job_id: int):
        super().__init__(f"job {job_id} does not exist ('tds job request' prints the id of a new job)")
        self.job_id = job_id


class NotYours(ParticipantError):
    """The signing account is not the one the chain expects for this action."""


class StateRefused(ParticipantError):
    """The asset, grant or job is in a state that does not allow the action."""


class GrantExpired(StateRefused):
    def __init__(self, grant_id: int, expiry: int):
        super().__init__(f"grant {grant_id} expired at {iso(expiry)}; apply for a new one "
                         f"('tds grant apply ASSET ...') or ask the provider to sign new terms")
        self.grant_id, self.expiry = grant_id, expiry


class SignedGrantExpired(StateRefused):
    def __init__(self, deadline: int):
        super().__init__(f"the signed grant offer expired at {iso(deadline)} (its deadline); "
                         f"ask the provider to sign it again ('tds grant sign ...')")
        self.deadline = deadline


class InsufficientFunds(ParticipantError):
    """The account cannot pay: too little coin or credits, or a --value that is not the price."""


class BadSignature(ParticipantError):
    """A signature that is malformed or does not recover to the account that must have signed."""


class BadInput(ParticipantError):
    """A value on the command line or in a file that cannot be used as given."""


class Refused(ParticipantError):
    """A contract reverted with a custom error; the message says what it means and what to do."""

    def __init__(self, message: str, error: str, args: dict[str, str]):
        super().__init__(message)
        self.error = error
        self.error_args = args


def iso(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _authority(v: str) -> str:
    return FREEZE_AUTHORITIES[int(v)] if v.isdigit() and int(v) < len(FREEZE_AUTHORITIES) else v


def _state(names: tuple[str, ...], v: str) -> str:
    return names[int(v)] if v.isdigit() and int(v) < len(names) else v


def _ops(v: str) -> str:
    from chain.ops import describe

    return describe(int(v)) if v.isdigit() else v


# error name -> message template over the decoded arguments (a = dict of name -> text)
ADVICE: dict[str, Callable[[dict[str, str]], str]] = {
    # Authorizations
    "UnknownGrant": lambda a: f"grant {a['grantId']} does not exist",
    "GrantNotActive": lambda a: f"grant {a['grantId']} is {_state(GRANT_STATES, a['status'])}; it cannot be used "
                                f"or changed any more (apply for a new grant)",
    "NotGrantConsumer": lambda a: f"grant {a['grantId']} is not yours: {a['account']} is not its consumer; "
                                  f"sign with the consumer's wallet",
    "GrantIsFrozen": lambda a: f"grant {a['grantId']} is frozen by {_authority(a['frozenBy'])}; it must be lifted "
                               f"first ('tds grant unfreeze {a['grantId']}' by the holder or a regulator)",
    "GrantNotYetValid": lambda a: f"grant {a['grantId']} is valid only from {iso(int(a['notBefore']))}; wait",
    "GrantExpired": lambda a: f"grant {a['grantId']} expired at {iso(int(a['expiry']))}; apply for a new grant "
                              f"('tds grant apply')",
    "OperationNotAllowed": lambda a: f"grant {a['grantId']} allows {_ops(a['allowed'])}, not "
                                     f"{_ops(a['operation'])}; request only those operations (--ops)",
    "UsesExhausted": lambda a: f"grant {a['grantId']} has used all {a['maxUses']} of its uses; apply for a new "
                               f"grant",
    "AssetNotUsable": lambda a: f"asset {a['assetId']} is {_state(ASSET_STATES, a['state'])}; no grant or job "
                                f"can use it now",
    "NotAssetHolder": lambda a: f"asset {a['assetId']} is not yours: {a['account']} does not hold its "
                                f"certificate; sign with the holder's wallet",
    "OperationsOutOfScope": lambda a: f"asset {a['assetId']} allows {_ops(a['allowed'])}; "
                                      f"{_ops(a['requested'])} is out of its scope",
    "InvalidOperation": lambda a: f"{a['operation']} is not a valid operation set (use DET_EQ, OPE_RANGE, "
                                  f"HOM_AGG, MPC, FL, DOWNLOAD, PSI)",
    "InvalidValidity": lambda a: f"the validity window (notBefore {a['notBefore']}, expiry {a['expiry']}) is "
                                 f"empty or already over; choose a later expiry (--days)",
    "InvalidMaxUses": lambda a: "a per-task grant needs --max-uses of at least 1",
    "InvalidGrantKind": lambda a: f"grant kind {a['kind']} is unknown (per-task or per-period)",
    "ConsumerNotRegistered": lambda a: f"{a['consumer']} holds no CONSUMER role; the operator must issue one "
                                       f"('tds id credential issue --role CONSUMER --grant')",
    "PaymentTokenNotAllowed": lambda a: f"{a['token']} is not an allowed payment token (use the native coin or "
                                        f"the Credits token)",
    "SignatureExpired": lambda a: f"the signed grant offer expired at {iso(int(a['deadline']))}; ask the "
                                  f"provider to sign it again ('tds grant sign')",
    "InvalidGrantSignature": lambda a: f"the signature recovers to {a['recovered']}, not to the asset holder "
                                       f"{a['provider']}; the holder must sign ('tds grant sign')",
    "InvalidAccountNonce": lambda a: "this signed grant offer was already used or cancelled by its holder (its "
                                     "nonce is spent); ask the provider to sign a new one",
    "OfferOutdated": lambda a: f"the offer over asset {a['assetId']} was signed when its certificate had changed "
                               f"hands {a['signedEpoch']} time(s); it has changed hands since ({a['currentEpoch']}), "
                               f"which voids every older offer: ask the current holder to sign a new one "
                               f"('tds grant sign')",
    "UnknownApplication": lambda a: f"application {a['applicationId']} does not exist",
    "ApplicationNotPending": lambda a: f"application {a['applicationId']} is already "
                                       f"{_state(APPLICATION_STATES, a['status'])}",
    "NotFreezeAuthority": lambda a: f"{a['account']} may not freeze grant {a['grantId']} (only its asset "
                                    f"holder, the monitor or a regulator)",
    "AlreadyFrozen": lambda a: f"grant {a['grantId']} is already frozen by {_authority(a['frozenBy'])}",
    "GrantNotFrozen": lambda a: f"grant {a['grantId']} is not frozen",
    "FreezeHeldBy": lambda a: f"the freeze is held by {_authority(a.get('frozenBy', a.get('authority', '')))}; "
                              f"only that authority (or a regulator) can lift it",
    # AssetRegistry, templates
    "ProviderNotRegistered": lambda a: f"{a['account']} holds no PROVIDER role; the operator must issue one "
                                       f"('tds id credential issue --role PROVIDER --grant')",
    "EmptyContentCid": lambda a: "the content CID is empty",
    "UnknownAsset": lambda a: f"asset {a['assetId']} does not exist (list them with 'tds catalog')",
    "AssetNotActive": lambda a: f"asset {a['assetId']} is {_state(ASSET_STATES, a['state'])}",
    "AssetNotFrozen": lambda a: f"asset {a['assetId']} is not frozen",
    "UnknownTemplate": lambda a: f"certificate template {a['templateId']} does not exist (the operator publishes "
                                 f"templates)",
    "TemplateNotActive": lambda a: f"certificate template {a['templateId']} does not exist or was retired; "
                                   f"choose another --template",
    "ERC721NonexistentToken": lambda a: f"asset {a['tokenId']} does not exist (list them with 'tds catalog')",
    # Jobs, vault, ratings
    "UnknownJob": lambda a: f"job {a['jobId']} does not exist",
    "InvalidDeadline": lambda a: f"job deadline {a['deadline']} is in the past or more than 90 days ahead (--ttl)",
    "JobNotOpen": lambda a: f"job {a['jobId']} is already {_state(JOB_STATES, a['status'])}",
    "NotJobConsumer": lambda a: f"job {a['jobId']} is not yours: {a['account']} did not request it",
    "JobNotExpired": lambda a: f"job {a['jobId']} runs until {iso(int(a['deadline']))}; reclaim it after that",
    "WrongPaymentAmount": lambda a: f"this job costs {a['expected']} wei, {a['sent']} was sent; omit --value to "
                                    f"pay the grant's price",
    "NothingToWithdraw": lambda a: f"{a['payee']} has nothing to withdraw in this token ('tds earnings balance')",
    "NativeTransferFailed": lambda a: f"sending {a['amount']} wei to {a['payee']} failed (a contract payee must "
                                      f"accept the native coin)",
    "InvalidScore": lambda a: f"score {a['score']} is out of range: rate 1 to 5",
    "NoCompletedJob": lambda a: f"grant {a['grantId']} has no completed job yet; rate it after one completes",
    "AlreadyRated": lambda a: f"grant {a['grantId']} was already rated (one rating per grant)",
    "ERC20InsufficientBalance": lambda a: f"{a['sender']} holds {a['balance']} credits, {a['needed']} are needed; "
                                          f"ask the regulator for an allocation",
    "ERC20InsufficientAllowance": lambda a: f"the Jobs contract may spend {a['allowance']} of your credits, "
                                            f"{a['needed']} are needed",
    "AccessControlUnauthorizedAccount": lambda a: f"{a['account']} lacks the role this action needs",
}

_DESCRIPTION = re.compile(r"^(\w+)\((.*)\)$", re.S)


def parse_description(description: str) -> tuple[str, dict[str, str]]:
    """``Name(a=1, b=0xab)`` -> ``("Name", {"a": "1", "b": "0xab"})`` (the form of
    :func:`chain.revert.describe_revert`)."""
    m = _DESCRIPTION.match(description.strip())
    if not m:
        return description, {}
    args: dict[str, str] = {}
    for part in m.group(2).split(", ") if m.group(2) else []:
        key, sep, value = part.partition("=")
        if sep:
            args[key] = _checksummed(value)
    return m.group(1), args


def _checksummed(value: str) -> str:
    from eth_utils import is_hex_address, to_checksum_address

    return to_checksum_address(value) if is_hex_address(value) else value


def advise(description: str) -> Refused:
    """The :class:`Refused` error for a decoded revert description."""
    name, args = parse_description(description)
    template = ADVICE.get(name)
    try:
        message = template(args) if template else None
    except (KeyError, ValueError, IndexError):
        message = None
    message = message or f"the contract refused: {description}"
    return Refused(f"{message} [{name}]" if template else message, name, args)


def onchain(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a contract's custom-error revert (sent or called) into a :class:`Refused` error."""

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

        from chain.revert import describe_revert
        from chain.tx import Reverted

        try:
            return fn(*a, **kw)
        except Reverted as exc:
            raise advise(str(exc).removeprefix("reverted: ")) from None
        except ContractCustomError as exc:
            raise advise(describe_revert(exc.data)) from None
        except ContractLogicError as exc:  # a require string or a panic (not expected from these contracts)
            raise Refused(f"the contract refused: {exc}", "ContractLogicError", {}) from None
        except Web3RPCError as exc:
            if "insufficient funds" in str(exc).lower():
                raise InsufficientFunds(f"insufficient funds for gas: the signing account cannot pay this "
                                        f"transaction ({exc})") from None
            raise

    return wrapper
