"""Dataset versions recorded by the certificate (issue 15, docs/sources.md "Appending means versions").

One place for the chain side of a dataset version: ``AssetRegistry.recordVersion(assetId, manifest
hash, previous hash)`` by the certificate's holder (version 0 is the registered manifest; each
version names the one before it, so the on-chain history is the manifests' hash chain), the
history read back (:func:`history`), and the check a key service makes before serving a new
version (:func:`recorded_check`).

Deployments made before the contract recorded versions anchored them with
``Evidence.anchorHash(hash, keccak("DATASET_VERSION"), assetId)``. Those anchors are still *read*
(:func:`history` lists them, :func:`recorded_check` accepts them); new versions are only
*written* through the contract — an AssetRegistry without ``recordVersion`` is refused by name
(:class:`VersionsNotSupported`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_utils import function_signature_to_4byte_selector, keccak

from chain.errors import TdsError

DATASET_VERSION_KIND = "DATASET_VERSION"          # the Evidence kind of versions on older deployments
ZERO_HASH = "0x" + "00" * 32
ALREADY_RECORDED = "already-recorded"
OUTSIDE_HISTORY = "outside-history"
_SELECTOR = function_signature_to_4byte_selector("recordVersion(uint256,bytes32,bytes32)")
Send = Callable[[Any], Any]                        # a contract function -> its receipt


class VersionsNotSupported(TdsError):
    """The deployed AssetRegistry predates ``recordVersion`` (redeploy, or read its Evidence anchors)."""


class VersionOutOfOrder(TdsError):
    """A version whose previous hash is not the certificate's latest version (a fork of the history)."""


@dataclass(frozen=True)
class ChainVersion:
    """One version of a certificate's dataset as the chain holds it."""

    version: int
    manifest_hash: str
    previous_hash: str | None
    by: str | None
    tx: str | None
    block: int | None
    source: str = "AssetRegistry"                  # or "Evidence" (an older deployment's anchor)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _b32(h: str | bytes) -> bytes:
    return bytes(h) if isinstance(h, (bytes, bytearray)) else bytes.fromhex(h.removeprefix("0x"))


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def supports_versions(assets: Any) -> bool:
    """Whether the deployed AssetRegistry has ``recordVersion`` (its runtime code holds the selector)."""
    return _SELECTOR in bytes(assets.w3.eth.get_code(assets.address))


def latest(assets: Any, asset_id: int) -> tuple[int, str]:
    """(version, manifest hash) of the certificate's latest version."""
    n, h = assets.functions.latestVersion(asset_id).call()
    return n, _hex(h)


def record_version(assets: Any, send: Send, asset_id: int, manifest_hash: str,
                   previous_hash: str | None) -> str:
    """Record ``manifest_hash`` as the next version of ``asset_id`` (sent with ``send`` by its holder).

    Returns the transaction hash, :data:`ALREADY_RECORDED` when the certificate holds it already,
    or :data:`OUTSIDE_HISTORY` when neither it nor ``previous_hash`` is in the certificate's
    history (a version older than the registered manifest, or of another dataset: nothing to
    record). Raises :class:`VersionOutOfOrder` when ``previous_hash`` is in the history but not
    its latest version, and :class:`VersionsNotSupported` on an older AssetRegistry."""
    if not supports_versions(assets):
        raise VersionsNotSupported(f"the AssetRegistry at {assets.address} has no recordVersion: it predates "
                                   "recorded versions; redeploy the contracts to record dataset versions")
    h, prev = _b32(manifest_hash), _b32(previous_hash or ZERO_HASH)
    if assets.functions.versionOf(asset_id, h).call()[0]:
        return ALREADY_RECORDED
    n, head = latest(assets, asset_id)
    if _b32(head) != prev:
        known, at = assets.functions.versionOf(asset_id, prev).call()
        if not known:
            return OUTSIDE_HISTORY
        raise VersionOutOfOrder(f"asset {asset_id}: version {manifest_hash} follows version {at} "
                                f"({_hex(prev)}), but the certificate's latest is version {n} ({head})")
    receipt = send(assets.functions.recordVersion(asset_id, h, prev))
    return _hex(receipt["transactionHash"])


def history(assets: Any, asset_id: int, *, evidence: Any = None, from_block: int = 0) -> list[ChainVersion]:
    """The certificate's versions, 0 first: the contract's history (with each record's event) or,
    on an older deployment, the registered manifest followed by its Evidence DATASET_VERSION anchors."""
    a = assets.functions.assetOf(asset_id).call()
    registered = [ChainVersion(0, _hex(a[9]), None, None, None, None, "AssetRegistered")]
    if supports_versions(assets):
        events = {int(e["args"]["version"]): e for e in assets.events.DatasetVersionRecorded().get_logs(
            from_block=from_block, argument_filters={"assetId": asset_id})}
        count = assets.functions.versionCount(asset_id).call()
        out = list(registered)
        for n in range(1, count):
            h, e = _hex(assets.functions.versionHash(asset_id, n).call()), events.get(n)
            out.append(ChainVersion(n, h, _hex(e["args"]["previousHash"]) if e else None,
                                    e["args"]["by"] if e else None, _hex(e["transactionHash"]) if e else None,
                                    e["blockNumber"] if e else None))
        return out
    if evidence is None:
        return registered
    kind, out = keccak(text=DATASET_VERSION_KIND), list(registered)
    for e in evidence.events.HashAnchored().get_logs(from_block=from_block):
        if bytes(e["args"]["kind"]) == kind and int(e["args"]["subjectId"]) == asset_id:
            out.append(ChainVersion(len(out), _hex(e["args"]["hash"]), out[-1].manifest_hash, e["args"]["producer"],
                                    _hex(e["transactionHash"]), e["blockNumber"], "Evidence"))
    return out


def recorded_check(assets: Any, evidence: Any, holder: str, from_block: int = 0) -> Callable[[str], bool]:
    """``check(manifest hash)``: True when ``holder`` recorded that hash as a version of one of its
    certificates (the contract), or anchored it as DATASET_VERSION (an older deployment's Evidence)."""
    kind = keccak(text=DATASET_VERSION_KIND)

    def check(manifest_hash: str) -> bool:
        h = _b32(manifest_hash)
        if supports_versions(assets):
            for e in assets.events.DatasetVersionRecorded().get_logs(
                    from_block=from_block, argument_filters={"manifestHash": h, "by": holder}):
                if assets.functions.versionOf(e["args"]["assetId"], h).call()[0]:
                    return True
            return False
        return any(bytes(e["args"]["kind"]) == kind for e in evidence.events.HashAnchored().get_logs(
            from_block=from_block, argument_filters={"producer": holder, "hash": h}))
    return check
