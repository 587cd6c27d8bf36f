"""The Brownie lifecycle scripts run in order against a real anvil, each as its own
``brownie run`` process, and leave the chain in the state the lifecycle promises.

Isolation: a private HOME, so Brownie's ``~/.brownie/network-config.yaml`` and py-solc-x's
``~/.solcx`` are this test's own — :func:`private_brownie_home` writes what ``tds setup`` would
(``tds-anvil`` on a free port, the compiler front-end) without the slow ``brownie networks``
round trips; a private TDS_HOME and deployment file; and an anvil on that port started by
:class:`chain.node.EmbeddedNode`, the same one ``tds chain up`` starts.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import brownie
import pytest
import yaml
from web3 import HTTPProvider, Web3

from did.registry import IdentityRegistryClient
from offchain.store.client import open_store
from audit.verify import overall, verify_all
from chain.compiler import solc_wrapper_text
from chain.deploy import read_deployment
from chain.node import EmbeddedNode, free_port
from chain.setup import brownie_networks
from chain.config import PROJECT_ROOT, SOLC_VERSION, Settings, load_settings
from oracle.runner import COMPLETED
from chain import Space

BIN = Path(sys.executable).parent
STEPS = ["deploy", "identities", "register", "grant", "request", "compute", "result", "withdraw", "rate", "destroy",
         "audit"]
ARGS = {"register": ["main", "120"]}  # fewer sample rows: the test checks the wiring, not the scale
ZERO = "0x" + "00" * 20
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def brownie_env(tmp: Path, port: int) -> dict[str, str]:
    """Environment of a private TDS installation on ``port``: own HOME, TDS_HOME, deployment file,
    the venv and node_modules/.bin first on PATH, no external chain or Kubo from the caller."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TDS_RPC_URL", "TDS_CHAIN_ID", "TDS_IPFS_API", "TDS_KEYSTORE_PASSPHRASE",
                        "TDS_KEYSTORE_PASSWORD", "SOLCX_BINARY_PATH", "TDS_PROJECT_ROOT")}
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), TDS_HOME=str(tmp / "tds-home"), TDS_CHAIN_PORT=str(port),
               TDS_DEPLOYMENT=str(tmp / "deployment.json"), NO_COLOR="1", PYTHONUNBUFFERED="1",
               PATH=os.pathsep.join([str(BIN), str(PROJECT_ROOT / "node_modules" / ".bin"), env.get("PATH", "")]))
    return env


def private_brownie_home(env: dict[str, str], settings: Settings) -> None:
    """What ``tds setup`` puts under HOME, written directly: Brownie's network list with the
    project's networks (:func:`chain.setup.brownie_networks`) and the solc front-end."""
    home = Path(env["HOME"])
    solc = home / ".solcx" / f"solc-v{SOLC_VERSION}"
    solc.parent.mkdir(parents=True, exist_ok=True)
    solc.write_text(solc_wrapper_text(settings))
    solc.chmod(0o755)
    config = yaml.safe_load((Path(brownie.__file__).parent / "data" / "network-config.yaml").read_text())
    for name, want in brownie_networks(settings).items():
        cmd_settings = {k: v for k, v in want.items() if k not in ("cmd", "host")}
        config["development"].append({"name": name, "id": name, "cmd": want["cmd"], "host": want["host"],
                                      "cmd_settings": cmd_settings})
    (home / ".brownie").mkdir(parents=True, exist_ok=True)
    (home / ".brownie" / "network-config.yaml").write_text(yaml.safe_dump(config))


def run(cmd: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    res.stdout, res.stderr = ANSI.sub("", res.stdout), ANSI.sub("", res.stderr)
    return res


def brownie_run(step: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return run([str(BIN / "brownie"), "run", f"scripts/{step}.py", *args, "--network", "tds-anvil"], env)


@pytest.fixture(scope="module")
def scripts_chain(tmp_path_factory: pytest.TempPathFactory):
    """A private TDS setup with its own anvil; yields (env, settings, node url)."""
    tmp = tmp_path_factory.mktemp("brownie-scripts")
    port = free_port()
    env = brownie_env(tmp, port)
    settings = replace(load_settings(), home=Path(env["TDS_HOME"]), chain_port=port, rpc_url=None, chain_id=None,
                       ipfs_api=None, deployment_file=Path(env["TDS_DEPLOYMENT"]))
    private_brownie_home(env, settings)
    node = EmbeddedNode(settings)
    info = node.up(port=port, fresh=True)
    assert info.port == port, f"anvil took port {info.port}, Brownie's tds-anvil points at {port}"
    try:
        yield env, settings, info.url
    finally:
        node.down()


def test_every_lifecycle_script_runs_in_order(scripts_chain):
    env, settings, url = scripts_chain
    outputs = {}
    for i, step in enumerate(STEPS):
        res = brownie_run(step, env, *ARGS.get(step, []))
        outputs[step] = res.stdout + res.stderr
        assert res.returncode == 0, f"scripts/{step}.py failed:\n{outputs[step][-4000:]}"
        if step == "deploy":
            # a later step with no state yet names the script to run first, in one line, and exits 1
            early = brownie_run("grant", env)
            assert early.returncode == 1
            assert "run 'brownie run scripts/identities.py --network tds-anvil' first" in early.stdout + early.stderr
    assert "matches the plaintext answer" in outputs["result"]
    assert "PASS:" in outputs["audit"]

    # --- what the chain says, read independently of the scripts ----------------------------
    state = json.loads((settings.home / "scripts" / "state.json").read_text())
    w3 = Web3(HTTPProvider(url))
    deployment = read_deployment(settings.deployment_file, w3.eth.chain_id)
    assert state["deployment"]["jobs"] == deployment["contracts"]["Jobs"]["address"]
    space = Space(w3, deployment)
    jobs = state["jobs"]
    assert len(jobs) == 1
    core, _exec = space.job(jobs[0]["id"])
    assert core[3] == COMPLETED
    completion = space.completion(jobs[0]["id"])
    assert completion is not None and completion["oracle"] == state["participants"]["oracle"]["address"]
    # earnings withdrawn: nothing left in the vault, and what left it is what the consumer paid
    for name in ("provider-a", "oracle", "operator"):
        address = state["participants"][name]["address"]
        assert space.c["Jobs"].functions.balanceOf(address, ZERO).call() == 0
        assert state["withdrawn"][name] > 0
    assert sum(state["withdrawn"].values()) == jobs[0]["price"]
    # both grants (by signature, by application) closed with the proofs' hashes on chain
    assert {g["origin"] for g in state["grants"].values()} == {"signature", "application"}
    for name, grant in state["grants"].items():
        assert space.c["Authorizations"].functions.grantOf(grant["id"]).call()[4] == 3  # Closed
    assert space.c["QualityRatings"].functions.isRated(state["grants"]["sales"]["id"]).call()
    # every participant's DID bound to its account; the operator's role credentials recorded
    registry = IdentityRegistryClient(w3, space.c["IdentityRegistry"])
    for name, p in state["participants"].items():
        assert registry.account_of_did(p["did"]) == p["address"], name
        if "role" in p:
            assert registry.has_participant_role(p["address"], p["role"]), name
    assert {p.get("role") for p in state["participants"].values()} >= {"PROVIDER", "CONSUMER", "COMPUTE_PROVIDER",
                                                                       "REGULATOR"}
    # the auditor's verification, run here from the chain, the logs and the documents alone
    documents = {f"grant:{p['grant']}:destruction": Path(p["file"]).read_bytes()
                 for p in state["destruction"].values()}
    verdicts = verify_all(w3, deployment, logs_dir=settings.home / "scripts" / "logs",
                          fetch=open_store(settings.home).cat, documents=documents)
    assert overall(verdicts), [v for v in verdicts if not v["ok"]]
    steps = {v["step"] for v in verdicts if v["status"] == "pass"}
    assert {"signature", "result-hash", "payment", "batch-root", "batch-inclusion", "document"} <= steps


def test_collaboration_script(scripts_chain):
    """scripts/collab.py: the multi-party section through Brownie on the same deployment."""
    env, settings, url = scripts_chain
    res = brownie_run("collab", env)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "collaboration verified" in out and "equal to the plaintext answers" in out
    w3 = Web3(HTTPProvider(url))
    space = Space(w3, read_deployment(settings.deployment_file, w3.eth.chain_id))
    assert space.c["Collaborations"].functions.collaborationCount().call() >= 1
