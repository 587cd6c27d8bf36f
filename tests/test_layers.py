"""The package layout holds: imports point one way, down this stack, and never up.

    tds  →  oracle  →  offchain  →  audit  →  did  →  chain

A package may import itself and any package below it (docs/architecture.md says what each
holds). The check reads every import statement, including those inside functions."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STACK = ["chain", "did", "audit", "offchain", "oracle", "tds"]  # bottom → top
RANK = {name: i for i, name in enumerate(STACK)}


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) for every absolute import in ``source`` naming a project package."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in RANK]
    return found


def upward_imports(package: str) -> list[str]:
    """Every import in ``package`` of a package above it, as 'file:line imports pkg'."""
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, target in imported_packages(path.read_text()):
            if RANK[target] > RANK[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target} (above {package})")
    return bad


@pytest.mark.parametrize("package", STACK)
def test_no_package_imports_one_above_it(package: str) -> None:
    assert upward_imports(package) == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    assert imported_packages("def f():\n    from tds.cli import main\n") == [(2, "tds")]
    assert imported_packages("import oracle.runner as r\nfrom . import x\nimport json\n") == [(1, "oracle")]


def test_oracle_holds_only_the_compute_provider() -> None:
    lines = sum(len(p.read_text().splitlines()) for p in (ROOT / "oracle").rglob("*.py"))
    assert lines < 3000, f"oracle/ has {lines} lines: move what is not the compute provider out"
