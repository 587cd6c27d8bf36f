"""README.md's commands run, so the documentation cannot rot.

Convention (also stated in a comment at the top of README.md): every ```sh / ```bash block is
preceded, on the line just above, by ``<!-- readme-test -->`` (run it) or
``<!-- readme-test: skip (why) -->`` (show it only: ``make`` itself, external services). The
runnable blocks are joined, in document order, into one bash script run with ``set -e`` from the
project root, in a private HOME / TDS_HOME with the chain and Brownie's ``tds-anvil`` network on a
free port (:func:`tests.tds.test_brownie_scripts.brownie_env`), so nothing clashes with a
developer's chain or other tests.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from chain.node import EmbeddedNode, free_port
from chain.config import PROJECT_ROOT, load_settings
from tests.tds.test_brownie_scripts import ANSI, brownie_env, private_brownie_home

README = PROJECT_ROOT / "README.md"
SHELLS = {"sh", "bash", "shell"}
RUN = re.compile(r"^<!--\s*readme-test\s*-->$")
SKIP = re.compile(r"^<!--\s*readme-test:\s*skip\b.*-->$")
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass
class Block:
    line: int          # 1-based line of the opening fence
    lang: str
    marker: str        # "run", "skip" or "" (none)
    text: str


def blocks(text: str) -> list[Block]:
    """Every fenced block of ``text`` with the marker on the line above it."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1).lower()
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        above = lines[start - 1].strip() if start else ""
        marker = "run" if RUN.match(above) else "skip" if SKIP.match(above) else ""
        out.append(Block(start + 1, lang, marker, "\n".join(lines[start + 1:j])))
        i = j + 1
    return out


def runnable(text: str) -> list[Block]:
    return [b for b in blocks(text) if b.lang in SHELLS and b.marker == "run"]


def script_of(selected: list[Block]) -> str:
    """One bash script: each block announced by its README line, so a failure names its block."""
    parts = ["set -eo pipefail", f"cd {PROJECT_ROOT}"]
    for b in selected:
        parts += [f"echo '::readme-block line {b.line}'", b.text]
    parts.append("echo '::readme-done'")
    return "\n".join(parts) + "\n"


def test_convention_parses_markers():
    sample = "\n".join(["<!-- readme-test -->", "```sh", "echo run", "```", "",
                        "<!-- readme-test: skip (needs Kubo) -->", "```bash", "ipfs daemon", "```",
                        "```sh", "echo unmarked", "```", "```python", "print(1)", "```"])
    found = blocks(sample)
    assert [(b.lang, b.marker) for b in found] == [("sh", "run"), ("bash", "skip"), ("sh", ""), ("python", "")]
    assert [b.text for b in runnable(sample)] == ["echo run"]
    assert "echo '::readme-block line 2'\necho run" in script_of(runnable(sample))


def test_every_shell_block_is_marked():
    text = README.read_text()
    unmarked = [b.line for b in blocks(text) if b.lang in SHELLS and not b.marker]
    assert not unmarked, (f"README.md shell blocks at lines {unmarked} carry no marker: put "
                          f"'<!-- readme-test -->' or '<!-- readme-test: skip (why) -->' on the line above")
    selected = runnable(text)
    assert selected, "README.md has no runnable shell block"
    for b in selected:  # the README test is part of `make test`: running make from it would recurse
        assert not re.search(r"^\s*make\b", b.text, re.M), f"README.md line {b.line}: runnable block calls make"


@pytest.mark.slow
def test_readme_commands_run(tmp_path: Path):
    selected = runnable(README.read_text())
    port = free_port()
    env = brownie_env(tmp_path, port)
    settings = replace(load_settings(), home=Path(env["TDS_HOME"]), chain_port=port, rpc_url=None, chain_id=None,
                       ipfs_api=None, deployment_file=Path(env["TDS_DEPLOYMENT"]))
    private_brownie_home(env, settings)
    script = tmp_path / "readme.sh"
    script.write_text(script_of(selected))
    try:
        res = subprocess.run(["bash", str(script)], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                             timeout=280)
    finally:
        EmbeddedNode(settings).down()  # a block that failed before `tds chain down` leaves the chain up
    out = ANSI.sub("", res.stdout + res.stderr)
    block = re.findall(r"::readme-block line (\d+)", res.stdout)
    where = f"README.md block at line {block[-1]}" if block else "README.md before any block"
    assert res.returncode == 0, f"{where} failed (exit {res.returncode}):\n{out[-5000:]}"
    assert "::readme-done" in res.stdout
    # what the commands printed, as the README promises
    assert "matches the plaintext answer" in out
    assert "PASS:" in out and "verifications hold" in out
    assert "valid: PROVIDER" in out
    assert re.search(r"job \d+ completed with result hash 0x[0-9a-f]{64}", out)
