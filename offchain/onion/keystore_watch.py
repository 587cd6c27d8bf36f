"""A keyring that follows its keystore file, so a running key service sees a rotation at once.

``tds data rotate`` (another process, maybe a cron job) adds fresh keys to the keystore, retires
the old ones and, with ``--destroy-old``, removes them. :meth:`WatchedKeyring.refresh` compares
the file's identity (inode, size, modification time in ns — the keystore is replaced atomically,
so any save changes the inode) with what was read; on a change it re-opens the file (one scrypt
derivation) and swaps its keys in one step: new keys appear, destroyed ones are gone from memory
too. Listeners (:meth:`WatchedKeyring.on_reload`) then run — the key service's follows the
dataset index to serve the rotated version (:func:`follow_rotated_versions`); they also run when
a file named with :meth:`WatchedKeyring.watch` changes (the dataset index, rewritten when a
pending version is anchored later).

The key service calls :meth:`~WatchedKeyring.refresh` once per job, when it prepares it, and pins
the dataset versions for that job (:meth:`offchain.keyservice.provider.ProviderKeyService._prepare`):
lookups inside a request never reload, so one job never mixes two versions.

A reload that fails (a passphrase changed underneath, an unreadable file) keeps the keys held so
far and is retried on the next lookup; it is logged, never silent."""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable

from offchain.errors import KeystoreLocked
from offchain.onion.dataset import manifest_hash
from offchain.onion.keys import Keyring
from offchain.onion.keystore import Keystore
from offchain.onion.rotation_policy import DatasetIndex

log = logging.getLogger("tds.keystore")
Listener = Callable[["WatchedKeyring"], None]
__all__ = ["WatchedKeyring", "follow_rotated_versions"]


class WatchedKeyring(Keyring):
    """The keys of the keystore at ``path`` (retired ones included: they serve older versions until
    destroyed), re-read whenever the file changes."""

    def __init__(self, path: Path | str, passphrase: str, *, include_retired: bool = True) -> None:
        super().__init__()
        self.path, self._passphrase, self._retired = Path(path), passphrase, include_retired
        self._lock = threading.RLock()
        self._seen: tuple[int, int, int] | None = None
        self._others: dict[Path, tuple[int, int, int] | None] = {}
        self._listeners: list[Listener] = []
        self.reloads = 0
        if not self.refresh():
            raise KeystoreLocked(f"{self.path}: no keystore to follow")

    def _stamp(self, path: Path | None = None) -> tuple[int, int, int] | None:
        try:
            st = os.stat(path or self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def on_reload(self, listener: Listener) -> None:
        """Call ``listener(self)`` after every reload that changed the keys."""
        self._listeners.append(listener)

    def watch(self, path: Path | str) -> None:
        """Also run the listeners when ``path`` changes (the keys are not re-read for it)."""
        self._others[Path(path)] = self._stamp(Path(path))

    def _others_changed(self) -> bool:
        now = {p: self._stamp(p) for p in self._others}
        changed, self._others = now != self._others, now
        return changed

    def refresh(self) -> bool:
        """Re-open the keystore if the file changed since it was read; True when keys are held."""
        with self._lock:
            stamp, others = self._stamp(), self._others_changed()
            if stamp is None or stamp == self._seen:
                if others and self._seen is not None:
                    for listener in self._listeners:
                        listener(self)
                return self._seen is not None
            try:
                ring = Keystore.open(self.path, self._passphrase).keyring(include_retired=self._retired)
            except KeystoreLocked as exc:
                if self._seen is None:
                    raise                       # the first read: wrong passphrase, unreadable file
                log.warning("keystore %s changed but did not open (%s); keeping the keys held", self.path, exc)
                return self._seen is not None
            first, self.keys, self._seen = self._seen is None, ring.keys, stamp
            if not first:
                self.reloads += 1
                log.info("keystore %s reloaded: %d keys", self.path, len(self.keys))
                for listener in self._listeners:
                    listener(self)
            return True


def follow_rotated_versions(manifests: dict[str, dict], index_path: Path, fetch: Callable[[str], bytes],
                            accept: Callable[[str], bool]) -> Listener:
    """A listener that moves ``manifests`` (dataset id → manifest served) to each dataset's current
    version in the dataset index, when that version is a rotation of the one served (its
    ``previous_version_hash`` is the served manifest's hash — the hash chain), its bytes hash as
    the index says, and ``accept(hash)`` holds — the key service passes
    :func:`chain.versions.recorded_check`: the provider recorded it on its certificate
    (``AssetRegistry.recordVersion``)."""

    def listener(_: WatchedKeyring) -> None:
        try:
            current = DatasetIndex(index_path).current()
        except Exception as exc:  # noqa: BLE001 - a bad index must not take the service down
            log.warning("dataset index %s unreadable (%s); versions unchanged", index_path, exc)
            return
        for dataset_id, served in list(manifests.items()):
            version = current.get(dataset_id)
            if version is None or version["hash"] == manifest_hash(served):
                continue
            try:
                new: dict[str, Any] = json.loads(fetch(version["cid"]))
            except Exception as exc:  # noqa: BLE001 - the store is an edge
                log.warning("%s: version %s not in the store (%s)", dataset_id, version["cid"], exc)
                continue
            if (manifest_hash(new) != version["hash"] or new.get("previous_version_hash") != manifest_hash(served)
                    or not accept(version["hash"])):
                log.warning("%s: version %s is not a recorded rotation of the one served; not followed",
                            dataset_id, version["cid"])
                continue
            manifests[dataset_id] = new
            log.info("%s: now serving rotated version %s", dataset_id, version["cid"])
    return listener
