"""The package layout holds: imports point one way, down this stack, and never up or sideways.

    tds  →  oracle | oversight  →  offchain  →  audit  →  did  →  chain

A package may import itself and any package on a lower level (docs/architecture.md says what
each holds); two packages on one level (the compute provider and the monitor) never import each
other. The check reads every import statement, including those inside functions."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEVELS = [["chain"], ["did"], ["audit"], ["offchain"], ["oracle", "oversight"], ["tds"]]  # bottom → top
STACK = [name for level in LEVELS for name in level]
RANK = {name: i for i, level in enumerate(LEVELS) for name in level}


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


def forbidden(package: str, target: str) -> bool:
    """True if ``package`` may not import ``target``: it sits above it, or beside it."""
    return target != package and RANK[target] >= RANK[package]


def upward_imports(package: str) -> list[str]:
    """Every import in ``package`` of a package above or beside it, as 'file:line imports pkg'."""
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, target in imported_packages(path.read_text()):
            if forbidden(package, target):
                where = "beside" if RANK[target] == RANK[package] else "above"
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target} ({where} {package})")
    return bad


@pytest.mark.parametrize("package", STACK)
def test_no_package_imports_one_above_it(package: str) -> None:
    assert upward_imports(package) == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    assert imported_packages("def f():\n    from tds.cli import main\n") == [(2, "tds")]
    assert imported_packages("import oracle.runner as r\nfrom . import x\nimport json\n") == [(1, "oracle")]
    assert imported_packages("from oversight.rules import Rule\n") == [(1, "oversight")]


def test_packages_beside_each_other_never_import_each_other() -> None:
    assert forbidden("oversight", "oracle") and forbidden("oracle", "oversight")
    assert forbidden("oversight", "tds") and not forbidden("tds", "oversight")
    assert not forbidden("oversight", "audit") and not forbidden("oversight", "offchain")
    assert forbidden("audit", "oversight") and not forbidden("oversight", "oversight")


def test_oracle_holds_only_the_compute_provider() -> None:
    lines = sum(len(p.read_text().splitlines()) for p in (ROOT / "oracle").rglob("*.py"))
    assert lines < 3000, f"oracle/ has {lines} lines: move what is not the compute provider out"
