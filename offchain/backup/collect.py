"""What a backup of a TDS_HOME holds, and how each file is read consistently.

Everything under the home is included except what can be rebuilt or is not the provider's:

* ``chain/`` — the embedded node's state (the chain is the consortium's; ``include_chain`` adds it);
* ``index/`` — the event index, a cache rebuilt from the chain (``tds index run``);
* caches and transients: ``__pycache__``, ``cache`` folders, ``*.tmp``/``*.part``, ``*.pid``,
  ``*.lock``, ``*.log`` of the embedded node, earlier ``*.tdsbackup`` archives, and SQLite's
  ``-wal``/``-shm``/``-journal`` files
  (each database is copied through SQLite's backup API, so it is consistent even while an oracle
  or a key service writes to it);
* ``store/``: not copied wholesale — ``pins.json`` and every block reachable from a pin (the
  content the provider must keep: its datasets' ciphertext and manifests, quality reports,
  sealed answers it pinned); unpinned blocks are garbage ``gc`` would delete anyway.

Keystores (data keys, identities, wallets) are copied as they are: still encrypted under their
own passwords. Deployment files (outside the home by default) go in as ``deployment/<name>``.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from chain.cid import parse_cid
from offchain.store.blockstore import BlockStore
from offchain.store.unixfs import walk_dag

SQLITE_MAGIC = b"SQLite format 3\x00"
SKIP_DIRS = frozenset({"__pycache__", "cache", ".cache"})
SKIP_SUFFIXES = (".tmp", ".part", ".pid", ".lock", "-wal", "-shm", "-journal", ".tdsbackup")
HOME, DEPLOYMENT = "home/", "deployment/"


@dataclass(frozen=True)
class Entry:
    """One file to back up: its name in the archive and where it is read from."""

    name: str
    source: Path
    sqlite: bool = False


def _skipped(rel: Path) -> bool:
    if any(part in SKIP_DIRS for part in rel.parts[:-1]):
        return True
    name = rel.name
    return ".tmp" in name or name.endswith(SKIP_SUFFIXES) or (rel.parts[0] == "chain" and name.endswith(".log"))


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def _pinned_blocks(root: Path) -> Iterator[Entry]:
    """pins.json and the blocks every pin needs (a recursive pin: its whole DAG)."""
    if not (root / "pins.json").exists():
        return
    store = BlockStore(root)
    yield Entry(HOME + "store/pins.json", root / "pins.json")
    live: set[str] = set()
    for text, kind in sorted(store.pin_ls().items()):
        cid = parse_cid(text)
        digests = [c.digest.hex() for c in walk_dag(cid, store.get_block)] if kind == "recursive" else [cid.digest.hex()]
        live.update(digests)
    for hexd in sorted(live):
        yield Entry(f"{HOME}store/blocks/{hexd[:2]}/{hexd}", root / "blocks" / hexd[:2] / hexd)


def collect(home: Path, deployments: list[Path] = (), include_chain: bool = False) -> list[Entry]:
    """Every file a backup of ``home`` holds, in archive order (sorted, deterministic)."""
    home = Path(home)
    out: list[Entry] = []
    skip_top = {"index", "store"} | (set() if include_chain else {"chain"})
    for path in sorted(home.rglob("*")):
        rel = path.relative_to(home)
        if rel.parts[0] in skip_top or path.is_symlink() or not path.is_file() or _skipped(rel):
            continue
        out.append(Entry(HOME + rel.as_posix(), path, _is_sqlite(path)))
    out += _pinned_blocks(home / "store")
    seen = set()
    for dep in deployments:
        dep = Path(dep)
        if dep.is_file() and dep.name not in seen:
            seen.add(dep.name)
            out.append(Entry(DEPLOYMENT + dep.name, dep))
    return out


IN_MEMORY = 64 << 20


class Snapshot:
    """A stable copy of one entry's bytes, read once: SQLite through its backup API (consistent
    while an oracle or key service writes), a small file into memory, a large one into
    ``scratch``. ``sha256`` and ``size`` describe exactly what :meth:`open` returns."""

    def __init__(self, entry: Entry, scratch: Path) -> None:
        self.entry, self._tmp, self._data = entry, None, None
        if entry.sqlite or entry.source.stat().st_size > IN_MEMORY:
            fd, name = tempfile.mkstemp(dir=scratch)
            os.close(fd)
            self._tmp = Path(name)
            if entry.sqlite:
                self._tmp.unlink()
                _sqlite_copy(entry.source, self._tmp)
            else:
                shutil.copyfile(entry.source, self._tmp)
            digest, size = hashlib.sha256(), 0
            with open(self._tmp, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
                    size += len(block)
        else:
            self._data = entry.source.read_bytes()
            digest, size = hashlib.sha256(self._data), len(self._data)
        self.sha256, self.size = digest.hexdigest(), size

    def open(self) -> BinaryIO:
        """The snapshot's bytes as a binary file object."""
        return io.BytesIO(self._data) if self._data is not None else open(self._tmp, "rb")

    def __enter__(self) -> Snapshot:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)


def _sqlite_copy(source: Path, target: Path) -> None:
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        shutil.copyfile(source, target)
        return
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # the copy is one self-contained file
    finally:
        dst.close()
        src.close()
