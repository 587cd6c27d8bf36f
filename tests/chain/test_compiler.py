"""The solc front-end behind py-solc-x and Brownie; reproducible artifacts; clear errors."""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from chain.compiler import FRONTEND, compile_project, install_frontend, run_solc, standard_input
from chain.config import SOLC_VERSION
from chain.errors import CompilationError

def test_frontend_version_is_native_form():
    out = subprocess.run(["node", str(FRONTEND), "--version"], capture_output=True, text=True, check=True).stdout
    assert f"Version: {SOLC_VERSION}+commit." in out and out.strip().endswith(".Linux.g++")


def test_solcx_sees_installed_compiler(tmp_settings):
    import solcx

    path = install_frontend(tmp_settings)
    assert path.name == f"solc-v{SOLC_VERSION}" and os.access(path, os.X_OK)
    assert str(solcx.get_solcx_install_folder() / path.name) == str(path)
    assert any(str(v) == SOLC_VERSION for v in solcx.get_installed_solc_versions())


def test_py_solc_x_compiles_openzeppelin_import(fixture_project, tmp_settings):
    settings = fixture_project("Token.sol")
    out = run_solc(standard_input(settings), settings)
    token = out["contracts"]["contracts/Token.sol"]["FixtureToken"]
    assert token["evm"]["bytecode"]["object"]
    assert "node_modules/@openzeppelin/contracts/token/ERC20/ERC20.sol" in out["sources"]


def test_compile_is_reproducible_and_keeps_metadata(fixture_project, tmp_settings):
    settings = fixture_project("Token.sol")
    arts = compile_project(settings)
    first = (settings.artifacts_dir / "FixtureToken.json").read_bytes()
    compile_project(settings, force=True)
    assert (settings.artifacts_dir / "FixtureToken.json").read_bytes() == first
    meta = json.loads(arts["FixtureToken"]["metadata"])
    assert meta["compiler"]["version"].startswith(SOLC_VERSION)
    assert meta["settings"]["optimizer"]["enabled"] is True
    # the metadata's source hashes let anyone re-verify the build against the sources
    src = (settings.contracts_dir / "Token.sol").read_text()
    from eth_utils import keccak

    assert meta["sources"]["contracts/Token.sol"]["keccak256"] == "0x" + keccak(text=src).hex()
    # and the deployed bytecode ends with the CBOR-encoded metadata hash solc appends
    assert arts["FixtureToken"]["deployedBytecode"].endswith(SOLC_VERSION_CBOR_SUFFIX())


def SOLC_VERSION_CBOR_SUFFIX() -> str:
    major, minor, patch = (int(x) for x in SOLC_VERSION.split("."))
    return f"64736f6c6343{major:02x}{minor:02x}{patch:02x}0033"


def test_compile_error_names_file_and_line(fixture_project, tmp_settings):
    settings = fixture_project("Broken.sol")
    with pytest.raises(CompilationError) as err:
        compile_project(settings)
    msg = str(err.value)
    assert "Undeclared identifier" in msg and "contracts/Broken.sol:6" in msg


def test_cli_compile_error_exits_nonzero(fixture_project, tmp_settings):
    settings = fixture_project("Broken.sol")
    tds = Path(os.sys.executable).with_name("tds")
    env = {**os.environ, "TDS_PROJECT_ROOT": str(settings.project_root)}
    res = subprocess.run([str(tds), "compile"], capture_output=True, text=True, env=env)
    assert res.returncode == 1
    assert "error:" in res.stderr and "Broken.sol:6" in res.stderr and "Traceback" not in res.stderr


def test_brownie_compiles_openzeppelin_import(fixture_project, tmp_settings):
    """Brownie finds the front-end as solc-v<version> and compiles an OpenZeppelin import."""
    settings = fixture_project("Token.sol")
    install_frontend(tmp_settings)
    brownie = Path(os.sys.executable).with_name("brownie")
    res = subprocess.run([str(brownie), "compile"], cwd=settings.project_root, capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    build = json.loads((settings.project_root / "build" / "contracts" / "FixtureToken.json").read_text())
    assert build["compiler"]["version"].startswith(SOLC_VERSION)
    assert build["bytecode"]
