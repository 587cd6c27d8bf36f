"""Every deployment publishes its contracts' solc metadata and sources; `tds audit contracts`
recompiles from them alone and finds a full match (metadata hash included) for every contract on
chain; a changed source gives a partial match (comment) or a mismatch (code), and a missing
publication is reported, each as a failure."""
from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from audit.contracts import verify_contract
from chain.connection import connect
from chain.sources import sources_folder
from chain.system import SYSTEM_CONTRACTS, deploy_system
from tds.cli import cli


def test_every_deployed_contract_is_a_full_match(embedded_node, session_settings, tmp_path):
    settings = session_settings
    w3 = connect(settings)
    doc = deploy_system(settings, w3=w3)
    folder = sources_folder(settings.deployment_path(w3.eth.chain_id))
    index = json.loads((folder / "sources.json").read_text())
    assert set(index["contracts"]) == set(SYSTEM_CONTRACTS)
    assert any(s.startswith("node_modules/@openzeppelin/") for s in index["sources"])
    env = {"TDS_HOME": str(settings.home), "TDS_RPC_URL": embedded_node.url, "TDS_CHAIN_ID": None,
           "TDS_DEPLOYMENT": str(settings.deployment_file), "TDS_PROJECT_ROOT": str(settings.project_root)}
    r = CliRunner().invoke(cli, ["audit", "contracts", "--json"], env=env)
    assert r.exit_code == 0, r.output
    verdicts = json.loads(r.output)
    assert [v["match"] for v in verdicts] == ["full"] * len(SYSTEM_CONTRACTS), verdicts

    # a copy of the published folder with one source changed
    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    evidence = tampered / "contracts/evidence/Evidence.sol"
    meta = json.loads((tampered / "Evidence.metadata.json").read_text())
    text = evidence.read_text()
    evidence.write_text(text.replace("if (root == bytes32(0)) revert ZeroRoot();", "root;"))
    from eth_utils import keccak

    meta["sources"]["contracts/evidence/Evidence.sol"]["keccak256"] = "0x" + keccak(evidence.read_bytes()).hex()
    (tampered / "Evidence.metadata.json").write_text(json.dumps(meta))
    v = verify_contract(w3, settings, tampered, "Evidence", doc["contracts"]["Evidence"]["address"])
    assert v.match == "mismatch" and not v.ok
    evidence.write_text(text + "\n// a comment changes only the metadata hash\n")
    meta["sources"]["contracts/evidence/Evidence.sol"]["keccak256"] = "0x" + keccak(evidence.read_bytes()).hex()
    (tampered / "Evidence.metadata.json").write_text(json.dumps(meta))
    v = verify_contract(w3, settings, tampered, "Evidence", doc["contracts"]["Evidence"]["address"])
    assert v.match == "partial" and not v.ok
    (tampered / "Jobs.metadata.json").unlink()
    v = verify_contract(w3, settings, tampered, "Jobs", doc["contracts"]["Jobs"]["address"])
    assert v.match == "missing"
