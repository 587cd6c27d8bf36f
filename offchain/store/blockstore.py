"""On-disk block store with pins and garbage collection.

Blocks live in ``<root>/blocks/<2 hex>/<sha256 hex>`` (keyed by digest, so a CIDv0 and a
dag-pb CIDv1 of the same node share one file); pins in ``<root>/pins.json`` as
``{cid: "recursive" | "direct"}``. Writes are atomic (temp file + rename)."""
from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from offchain.errors import BlockNotFound, StoreError
from chain.cid import Cid, parse_cid
from offchain.store.unixfs import build_file, iter_file, read_chunks, walk_dag


@dataclass(frozen=True)
class AddResult:
    """What ``ipfs add`` reports: the CID, the cumulative DAG size and the file size."""

    cid: str
    dag_size: int
    file_size: int


class BlockStore:
    """A content-addressed store whose file CIDs equal Kubo's default ``ipfs add``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.blocks = self.root / "blocks"
        self.blocks.mkdir(parents=True, exist_ok=True)
        self._pins_file = self.root / "pins.json"
        self._lock = threading.RLock()

    # blocks ----------------------------------------------------------------------------------
    def _path(self, cid: Cid) -> Path:
        hexd = cid.digest.hex()
        return self.blocks / hexd[:2] / hexd

    def put_block(self, cid: Cid, data: bytes) -> None:
        path = self._path(cid)
        if path.exists():
            return
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get_block(self, cid: Cid | str) -> bytes:
        cid = parse_cid(cid) if isinstance(cid, str) else cid
        try:
            return self._path(cid).read_bytes()
        except FileNotFoundError:
            raise BlockNotFound(cid.encode()) from None

    def has(self, cid: Cid | str) -> bool:
        cid = parse_cid(cid) if isinstance(cid, str) else cid
        return self._path(cid).exists()

    def block_size(self, cid: Cid | str) -> int:
        cid = parse_cid(cid) if isinstance(cid, str) else cid
        try:
            return self._path(cid).stat().st_size
        except FileNotFoundError:
            raise BlockNotFound(cid.encode()) from None

    # files -----------------------------------------------------------------------------------
    def add_stream(self, stream: BinaryIO, cid_version: int = 0, pin: bool = True,
                   only_hash: bool = False, raw_leaves: bool | None = None) -> AddResult:
        """Chunk, build and store a file; pins it recursively unless ``pin`` is false.
        ``raw_leaves`` defaults as Kubo's does (on for CIDv1)."""
        put = (lambda c, b: None) if only_hash else self.put_block
        with self._lock:
            cid, dag_size, size = build_file(read_chunks(stream), cid_version, put, raw_leaves)
            result = AddResult(cid.encode(), dag_size, size)
            if pin and not only_hash:
                self.pin_add(result.cid)
        return result

    def add_bytes(self, data: bytes, cid_version: int = 0, pin: bool = True) -> AddResult:
        return self.add_stream(io.BytesIO(data), cid_version, pin)

    def add_file(self, path: Path | str, cid_version: int = 0, pin: bool = True) -> AddResult:
        with open(path, "rb") as fh:
            return self.add_stream(fh, cid_version, pin)

    def iter_cat(self, cid: str) -> Iterator[bytes]:
        return iter_file(parse_cid(cid), self.get_block)

    def cat(self, cid: str) -> bytes:
        return b"".join(self.iter_cat(cid))

    # pins and GC -----------------------------------------------------------------------------
    def _read_pins(self) -> dict[str, str]:
        try:
            return json.loads(self._pins_file.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise StoreError(f"{self._pins_file} is corrupt: {exc}") from exc

    def _write_pins(self, pins: dict[str, str]) -> None:
        # a temporary name of this writer's own: several stores (processes, or a server beside a
        # client in one process) may write the same pin file
        tmp = self._pins_file.with_name(f"pins.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(pins, sort_keys=True, indent=1))
        os.replace(tmp, self._pins_file)

    @contextlib.contextmanager
    def _pins_locked(self) -> Iterator[None]:
        """This store's lock and an exclusive lock on the pin file's lock file, so a read-modify-
        write of the pins by another store on the same folder is never lost."""
        with self._lock, open(self._pins_file.with_name("pins.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def pin_add(self, cid: str, recursive: bool = True) -> list[str]:
        """Pin a CID (all its blocks must be present for a recursive pin)."""
        parsed = parse_cid(cid)
        with self._pins_locked():
            if recursive:
                for c in walk_dag(parsed, self.get_block):  # raises BlockNotFound if incomplete
                    pass
            elif not self.has(parsed):
                raise BlockNotFound(cid)
            pins = self._read_pins()
            pins[parsed.encode()] = "recursive" if recursive else pins.get(parsed.encode(), "direct")
            self._write_pins(pins)
        return [parsed.encode()]

    def pin_rm(self, cid: str) -> list[str]:
        parsed = parse_cid(cid).encode()
        with self._pins_locked():
            pins = self._read_pins()
            if parsed not in pins:
                raise StoreError(f"{parsed} is not pinned")
            del pins[parsed]
            self._write_pins(pins)
        return [parsed]

    def pin_ls(self) -> dict[str, str]:
        with self._lock:
            return dict(self._read_pins())

    def all_blocks(self) -> Iterator[Path]:
        for sub in self.blocks.iterdir():
            if sub.is_dir():
                yield from (p for p in sub.iterdir() if ".tmp" not in p.name)

    def gc(self) -> list[str]:
        """Delete every block not reachable from a pin; returns the removed digests (hex)."""
        with self._lock:
            live: set[str] = set()
            for text, kind in self._read_pins().items():
                root = parse_cid(text)
                if kind == "recursive":
                    live.update(c.digest.hex() for c in walk_dag(root, self.get_block))
                else:
                    live.add(root.digest.hex())
            removed = []
            for path in list(self.all_blocks()):
                if path.name not in live:
                    path.unlink()
                    removed.append(path.name)
            return removed
