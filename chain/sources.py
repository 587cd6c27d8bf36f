"""Publishing what a deployment was built from, so anyone can verify it as explorers do.

Beside the deployment file, ``<deployment>.sources/`` holds each deployed contract's solc metadata
JSON (``<Name>.metadata.json``) and every source file that metadata names, at the same relative
path (``contracts/…``, ``node_modules/@openzeppelin/…``); a Sourcify instance or ``tds audit
contracts`` recompiles from exactly these and compares with the code on chain. With a content
store, the metadata and sources are added to it too (their CIDs go into ``sources.json``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_utils import keccak

from chain.config import Settings
from chain.errors import TdsError


class SourcesError(TdsError):
    """A metadata file names a source that cannot be found, or whose content does not hash to it."""


def sources_folder(deployment_path: Path) -> Path:
    return deployment_path.with_name(deployment_path.name + ".sources")


def metadata_of(artifact: dict[str, Any]) -> dict[str, Any]:
    meta = artifact["metadata"]
    return json.loads(meta) if isinstance(meta, str) else meta


def metadata_text(artifact: dict[str, Any]) -> str:
    """The metadata exactly as solc emitted it (its hash is in the bytecode's CBOR tail)."""
    meta = artifact["metadata"]
    return meta if isinstance(meta, str) else json.dumps(meta, separators=(",", ":"))


def find_source(settings: Settings, name: str) -> Path:
    """A source named in metadata, under the project root (contracts/, node_modules/)."""
    path = settings.project_root / name
    if not path.is_file():
        raise SourcesError(f"source {name} named in the metadata is not in {settings.project_root}")
    return path


def publish_sources(settings: Settings, artifacts: dict[str, dict[str, Any]], names: list[str],
                    deployment_path: Path, store: Any | None = None) -> Path:
    """Write the metadata and sources of ``names`` beside the deployment (and into ``store``)."""
    folder = sources_folder(deployment_path)
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"contracts": {}, "sources": {}}
    for name in names:
        art = artifacts[name]
        text = metadata_text(art)
        (folder / f"{name}.metadata.json").write_text(text)
        entry: dict[str, Any] = {"sourceName": art["sourceName"], "metadata": f"{name}.metadata.json"}
        if store is not None:
            entry["metadataCid"] = store.add_bytes(text.encode())
        index["contracts"][name] = entry
        for src, info in metadata_of(art)["sources"].items():
            if src in index["sources"]:
                continue
            content = find_source(settings, src).read_bytes()
            if "0x" + keccak(content).hex() != info["keccak256"]:
                raise SourcesError(f"{src} changed since it was compiled (keccak256 differs from the metadata)")
            target = folder / src
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            index["sources"][src] = {"keccak256": info["keccak256"]} | (
                {"cid": store.add_bytes(content)} if store is not None else {})
    (folder / "sources.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return folder
