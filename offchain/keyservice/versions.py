"""The dataset versions a key service serves: every version its certificates record on chain.

A certificate's history (``AssetRegistry.recordVersion``, :mod:`chain.versions`) holds manifest
hashes only; the manifests come from this provider's own records (its live sources' version
histories and the dataset index beside the keystore: :func:`offchain.sources.versions.known_manifests`)
and the content store. A version is served only when its manifest hashes as recorded and names
the version before it (``previous_version_hash``), so the store or a local file cannot substitute
other data. Names follow the certificate: ``<id>@v<n>`` is the certificate's version ``n``
(0 = the registered manifest, as ``tds asset versions`` and the explorer number them), and the
bare ``<id>`` moves to the newest version of an unbroken chain from version 0.

:meth:`RecordedVersions.refresh` is cheap when nothing changed (one ``versionCount`` call per
certificate); ``tds provider serve`` calls it between anchoring rounds, so versions a running
source appends and records are served without a restart."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from chain.versions import history, supports_versions
from offchain.onion.dataset import manifest_hash
from offchain.query.plan import VERSION_SEP

log = logging.getLogger("tds.provider")

Fetch = Callable[[str], bytes]


class RecordedVersions:
    """Adds the recorded versions of the provider's certificates to a key service's manifests."""

    def __init__(self, assets: Any, manifests: dict[str, dict], by_asset: dict[int, set[str]],
                 known: Callable[[], dict[str, str]], fetch: Fetch, from_block: int = 0) -> None:
        self.assets, self.manifests, self.by_asset = assets, manifests, by_asset
        self.known, self.fetch, self.from_block = known, fetch, from_block
        self._base = {a: next(iter(ids)) for a, ids in by_asset.items() if len(ids) == 1}
        self._seen: dict[int, int] = {}             # asset → versions already looked at
        self._supported: bool | None = None

    def refresh(self) -> int:
        """Look at every certificate whose history grew; return how many versions were added."""
        if self._supported is None:
            self._supported = supports_versions(self.assets)
        if not self._supported:
            return 0
        added = 0
        for asset_id, base in self._base.items():
            count = int(self.assets.functions.versionCount(asset_id).call())
            if count <= self._seen.get(asset_id, 1):
                continue
            n, complete = self._load(asset_id, base)
            added += n
            if complete:        # else look again next time: a manifest may reach the store later
                self._seen[asset_id] = count
        return added

    def _load(self, asset_id: int, base: str) -> tuple[int, bool]:
        versions = history(self.assets, asset_id, from_block=self.from_block)
        registered = self.manifests.get(f"{base}{VERSION_SEP}0") or self.manifests.get(base)
        if registered is None or manifest_hash(registered).lower() != versions[0].manifest_hash.lower():
            return 0, True    # the service already moved on (a rotation it followed), or another dataset
        self.manifests.setdefault(f"{base}{VERSION_SEP}0", registered)
        by_hash, added, unbroken, latest = self.known(), 0, True, None
        for before, v in zip(versions, versions[1:]):
            name = f"{base}{VERSION_SEP}{v.version}"
            manifest = self.manifests.get(name) or self._manifest(asset_id, base, v.version, v.manifest_hash,
                                                                   by_hash, before.manifest_hash)
            if manifest is None:
                unbroken = False
                continue
            if name not in self.manifests:
                self.manifests[name] = manifest
                added += 1
            if unbroken:
                latest = (v.version, manifest)
        if latest is not None and self.manifests.get(base) is not latest[1]:
            self.manifests[base] = latest[1]        # the newest of an unbroken chain from version 0
            log.info("asset %s: serving dataset %s version %s as the latest", asset_id, base, latest[0])
        return added, unbroken

    def _manifest(self, asset_id: int, base: str, version: int, recorded: str, by_hash: dict[str, str],
                  previous: str) -> dict | None:
        """Version ``version``'s manifest, if this provider knows its CID, it hashes to ``recorded``
        and it is dataset ``base`` naming ``previous`` (the certificate's version before it)."""
        cid = by_hash.get(recorded.lower())
        if cid is None:
            log.warning("asset %s version %s (%s): no manifest of this hash in this provider's records",
                        asset_id, version, recorded)
            return None
        try:
            manifest = json.loads(self.fetch(cid))
        except Exception as exc:  # noqa: BLE001 - the store is an edge: skip, try again next refresh
            log.warning("asset %s version %s: manifest %s not readable (%s)", asset_id, version, cid, exc)
            return None
        if (not isinstance(manifest, dict) or manifest.get("dataset_id") != base
                or manifest_hash(manifest).lower() != recorded.lower()
                or str(manifest.get("previous_version_hash") or "").lower() != previous.lower()):
            log.warning("asset %s version %s: manifest %s does not hash as recorded or does not follow "
                        "version %s; not served", asset_id, version, cid, version - 1)
            return None
        return manifest
