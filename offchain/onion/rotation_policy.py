"""Scheduled key rotation (000 §12.2.1.1): a policy (``--rotate-every 30d``) applied each time
``tds data rotate`` runs — from cron, or detached with ``--background`` — not a resident daemon.

The provider's datasets and their versions are tracked in ``$TDS_HOME/keys/datasets.json``
(written by ``tds data encrypt`` and by rotation): per dataset, every manifest version with its
CID, hash, key ids and state (``current`` / ``retired`` / ``destroyed``). A dataset is due when
the oldest key its current manifest uses was made (the keystore's ``created``) longer ago than
the period. Rotation re-encrypts it under fresh keys (:func:`rotate_dataset`), publishes the new
manifest and retires the old version's keys — except those another tracked version still uses.

Old keys are destroyed only when nothing may need them (:func:`destroy_unneeded`): a retired
version's keys go only if **no live grant** exists on any asset registered with that version's
manifest hash — live meaning status Active (a frozen grant can be unfrozen) and not past its
expiry, whether or not uses remain (a job may still be in flight) — and no current or still-
needed version shares the key. If the chain cannot be asked, nothing is destroyed.

A rotated version joins its dataset's hash chain like an appended one (its manifest's
``previous_version_hash`` and ``rotated_from`` name the version it replaces) and is recorded on
the certificate the same way (:func:`chain_version_anchor`: ``AssetRegistry.recordVersion(assetId,
new hash, replaced hash)`` through :mod:`chain.versions`, on each of the provider's certificates
whose latest version is the one replaced).
The index entry records the anchor (``anchors``: asset and transaction) or why it is still pending
(``anchor_error``); :func:`anchor_pending` retries those on the next run. A key service following
the keystore (:mod:`offchain.onion.keystore_watch`) serves an anchored new version without a restart.
"""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offchain.errors import DataPlaneError
from offchain.onion.dataset import EncryptedDataset
from offchain.onion.keystore import Keystore
from offchain.onion.rotation import manifest_key_ids, rotate_dataset

INDEX_FILE = "datasets.json"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
Progress = Callable[[str], None]
LiveGrants = Callable[[str], list[int]]
VersionAnchor = Callable[[list[str], str, "str | None"], list[dict[str, Any]]]
"""``anchor(earlier version hashes, new hash, replaced version's hash) -> [{"asset": id, "tx": hash}]``:
the new version recorded on chain for the certificate(s) of an earlier version (empty: none registered)."""


class RotationPolicyError(DataPlaneError):
    """A rotation period, a dataset or the dataset index could not be used; names which."""


def parse_period(text: str) -> int:
    """Seconds in ``30d``, ``12h``, ``2w``, ``90m`` or ``45s``."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text or "")
    if m is None or int(m[1]) == 0:
        raise RotationPolicyError(f"rotation period {text!r}: expected a positive number and a unit s, m, h, d "
                                  "or w, e.g. 30d")
    return int(m[1]) * _UNITS[m[2]]


class DatasetIndex:
    """The provider's datasets and their manifest versions (a JSON file written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.doc: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {"datasets": {}}
        except ValueError as exc:
            raise RotationPolicyError(f"{self.path}: not a dataset index ({exc})") from None

    @classmethod
    def of_keystore(cls, keystore_path: Path) -> DatasetIndex:
        """The index beside a data keystore (``keys/datasets.json``)."""
        return cls(Path(keystore_path).parent / INDEX_FILE)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, sort_keys=True, indent=1))
        os.replace(tmp, self.path)

    def versions(self, dataset_id: str) -> list[dict[str, Any]]:
        return self.doc["datasets"].get(dataset_id, [])

    def current(self) -> dict[str, dict[str, Any]]:
        """dataset id → its current version."""
        return {d: v for d, vs in self.doc["datasets"].items() for v in vs if v["state"] == "current"}

    def record(self, manifest: dict, cid: str, manifest_hash: str) -> dict[str, Any]:
        """Track ``manifest`` (published as ``cid``) as its dataset's current version."""
        versions = self.doc["datasets"].setdefault(manifest["dataset_id"], [])
        for v in versions:
            if v["state"] == "current" and v["cid"] != cid:
                v["state"] = "retired"
        entry = next((v for v in versions if v["cid"] == cid), None)
        if entry is None:
            entry = {"cid": cid, "hash": manifest_hash, "keys": sorted(manifest_key_ids(manifest)),
                     "made": int(time.time())}
            versions.append(entry)
        entry["state"] = "current"
        self.save()
        return entry

    def keys_in_use(self, states: tuple[str, ...] = ("current",)) -> set[str]:
        return {k for vs in self.doc["datasets"].values() for v in vs if v["state"] in states for k in v["keys"]}


def key_age(keystore: Keystore, key_ids: list[str], now: float) -> float | None:
    """Seconds since the oldest of ``key_ids`` was made (None if none is in the keystore)."""
    made = [keystore.entries[k]["created"] for k in key_ids if k in keystore.entries]
    return now - min(made) if made else None


def due(index: DatasetIndex, keystore: Keystore, every: int, now: float | None = None) -> list[tuple[str, float]]:
    """(dataset id, key age) of every tracked dataset whose current keys are older than ``every``."""
    now = time.time() if now is None else now
    out = []
    for dataset_id, version in sorted(index.current().items()):
        age = key_age(keystore, version["keys"], now)
        if age is not None and age >= every:
            out.append((dataset_id, age))
    return out


def _load(manifest_cid: str, fetch: Callable[[str], bytes]) -> EncryptedDataset:
    class _Objects(dict):
        def __missing__(self, cid: str) -> bytes:
            return fetch(cid)

    return EncryptedDataset(json.loads(fetch(manifest_cid)), _Objects())


def rotate_version(index: DatasetIndex, keystore: Keystore, store: Any, manifest_cid: str,
                   progress: Progress = lambda line: None, processes: int = 1,
                   anchor: VersionAnchor | None = None) -> dict[str, Any]:
    """Re-encrypt the dataset behind ``manifest_cid`` under fresh keys (of the profile its manifest
    records), publish it to ``store`` and make it current; the old version's keys are retired
    unless another current version uses them. With ``anchor`` the new version is anchored on chain
    like an appended one (the entry's ``anchors``, or ``anchor_error`` when that failed)."""
    old = _load(manifest_cid, store.cat)
    did = old.dataset_id
    if not any(v["cid"] == manifest_cid for v in index.versions(did)):
        index.record(old.manifest, manifest_cid, old.manifest_hash)  # a dataset made before the index
    keep = {k for d, v in index.current().items() if d != did for k in v["keys"]}
    chunks, done = len(old.manifest["chunks"]), {"column": 0, "chunk": 0}
    progress(f"{did}: re-encrypting version {manifest_cid} ({chunks} chunks)")

    def tick(stage: str, k: int) -> None:
        if stage in done:
            done[stage] += k
            total = len(old.manifest["columns"]) if stage == "column" else chunks
            progress(f"{did}: {stage} {done[stage]}/{total}")

    new = rotate_dataset(old, keystore, destroy_old=False, processes=processes, keep=frozenset(keep),
                         progress=tick)
    cid = new.publish(store.add_bytes)
    entry = index.record(new.manifest, cid, new.manifest_hash)
    entry["previous"] = old.manifest_hash
    index.save()
    retired = manifest_key_ids(old.manifest) - manifest_key_ids(new.manifest) - keep
    progress(f"{did}: new version {cid} ({new.manifest.get('crypto_profile', 'default')} profile), "
             f"{len(retired)} old keys retired")
    if anchor is None:
        progress(f"{did}: version {cid} not anchored (no wallet given): 'tds data rotate --identity NAME' "
                 f"anchors pending versions, or register it as a new asset with 'tds asset register {cid}'")
    else:
        anchor_entry(index, did, entry, anchor, progress)
    return entry


def anchor_entry(index: DatasetIndex, dataset_id: str, entry: dict[str, Any], anchor: VersionAnchor,
                 progress: Progress = lambda line: None) -> None:
    """Anchor one rotated version (``entry`` of ``dataset_id``) and record the outcome in the index."""
    earlier = [v["hash"] for v in index.versions(dataset_id) if v["cid"] != entry["cid"]]
    try:
        entry["anchors"] = anchor(earlier, entry["hash"], entry.get("previous"))
        entry.pop("anchor_error", None)
        where = ", ".join(f"asset {a['asset']} (tx {a['tx']})" for a in entry["anchors"]) or \
            "no asset is registered with an earlier version; register one with 'tds asset register'"
        progress(f"{dataset_id}: version {entry['cid']} anchored: {where}")
    except Exception as exc:  # noqa: BLE001 - the chain is an edge: record why, retry next run
        entry["anchor_error"] = f"{type(exc).__name__}: {exc}"
        progress(f"{dataset_id}: version {entry['cid']} not anchored yet ({entry['anchor_error']}); "
                 "the next 'tds data rotate' retries")
    index.save()


def anchor_pending(index: DatasetIndex, anchor: VersionAnchor, progress: Progress = lambda line: None) -> list[str]:
    """Anchor every rotated version not anchored yet (a failed or wallet-less earlier run); their CIDs."""
    done = []
    for dataset_id, versions in index.doc["datasets"].items():
        for v in versions:
            if v.get("previous") and "anchors" not in v and v["state"] != "destroyed":
                anchor_entry(index, dataset_id, v, anchor, progress)
                done += [v["cid"]] if "anchors" in v else []
    return done


def chain_version_anchor(assets: Any, evidence: Any, send: Callable[[Any], Any], provider: str,
                         from_block: int) -> VersionAnchor:
    """:data:`VersionAnchor` on chain: every certificate ``provider`` holds (Active or Frozen) that
    was registered with an earlier version's manifest hash, or recorded one, gets the new version
    with ``AssetRegistry.recordVersion(assetId, new hash, replaced hash)`` (chain.versions), sent
    with ``send``. ``evidence`` is no longer written (kept in the signature for callers); an older
    AssetRegistry without ``recordVersion`` raises :class:`chain.versions.VersionsNotSupported`."""
    from chain.versions import OUTSIDE_HISTORY, record_version, supports_versions

    def anchor(earlier: list[str], new_hash: str, previous: str | None = None) -> list[dict[str, Any]]:
        want = {bytes.fromhex(h.removeprefix("0x")) for h in earlier}
        found = {ev["args"]["assetId"] for ev in assets.events.AssetRegistered().get_logs(
            from_block=from_block, argument_filters={"provider": provider}) if bytes(ev["args"]["manifestHash"]) in want}
        if supports_versions(assets):
            found |= {ev["args"]["assetId"] for ev in assets.events.DatasetVersionRecorded().get_logs(
                from_block=from_block, argument_filters={"by": provider}) if bytes(ev["args"]["manifestHash"]) in want}
        out = []
        for asset in sorted(found):
            holder, state, _, _ = assets.functions.termsOf(asset).call()
            if holder.lower() != provider.lower() or state not in (1, 2):   # transferred, or closed
                continue
            tx = record_version(assets, send, asset, new_hash, previous)
            if tx != OUTSIDE_HISTORY:
                out.append({"asset": asset, "tx": tx})
        return out
    return anchor


def destroy_unneeded(index: DatasetIndex, keystore: Keystore, live_grants: LiveGrants | None,
                     progress: Progress = lambda line: None) -> dict[str, list[str]]:
    """Destroy the keys of retired versions no live grant needs (``live_grants(manifest hash)``
    lists them; None = the chain cannot be asked, so nothing is destroyed). Returns version CID →
    destroyed key ids."""
    out: dict[str, list[str]] = {}
    retired = [v for vs in index.doc["datasets"].values() for v in vs if v["state"] == "retired"]
    if live_grants is None:
        for v in retired:
            progress(f"version {v['cid']}: keys kept (the chain could not be asked about its grants)")
        return out
    needed: list[dict[str, Any]] = []
    for v in retired:
        grants = live_grants(v["hash"])
        if grants:
            needed.append(v)
            progress(f"version {v['cid']}: keys kept, live grant(s) {', '.join(map(str, grants))} still need them")
    in_use = index.keys_in_use() | {k for v in needed for k in v["keys"]}
    for v in retired:
        if v in needed:
            continue
        gone = [k for k in v["keys"] if k not in in_use and k in keystore.entries]
        for k in gone:
            keystore.destroy(k, save=False)
        v["state"] = "destroyed"
        v["destroyed"] = int(time.time())
        out[v["cid"]] = gone
        progress(f"version {v['cid']}: no live grant; {len(gone)} keys destroyed")
    keystore.save()
    index.save()
    return out


def chain_live_grants(assets: Any, authorizations: Any, from_block: int, now: Callable[[], int]) -> LiveGrants:
    """``live_grants(manifest hash)`` read from the chain: the Active, unexpired grants on every
    asset that is not offline (AssetState 3) and was registered with that manifest hash or
    recorded it as a later version (a query may name any version of a certificate's history)."""
    from chain.versions import supports_versions

    def live(manifest_hash: str) -> list[int]:
        want = bytes.fromhex(manifest_hash.removeprefix("0x"))
        ids = [ev["args"]["assetId"] for ev in assets.events.AssetRegistered().get_logs(from_block=from_block)
               if bytes(ev["args"]["manifestHash"]) == want]
        if supports_versions(assets):
            ids += [ev["args"]["assetId"] for ev in assets.events.DatasetVersionRecorded().get_logs(
                from_block=from_block, argument_filters={"manifestHash": want}) if ev["args"]["assetId"] not in ids]
        out, t = [], now()
        for asset in ids:
            if assets.functions.stateOf(asset).call() == 3:
                continue
            for ev in authorizations.events.GrantIssued().get_logs(from_block=from_block,
                                                                  argument_filters={"assetId": asset}):
                g = authorizations.functions.grantOf(ev["args"]["grantId"]).call()
                if g[4] == 1 and (g[10] == 0 or g[10] > t):
                    out.append(ev["args"]["grantId"])
        return sorted(out)
    return live
