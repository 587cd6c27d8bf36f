"""Register step: the operator publishes a certificate template; each provider ingests a sample
file (clean, quality report, classification), onion-encrypts it with the default policy into the
content store and mints a data-asset certificate.

    brownie run scripts/register.py --network tds-anvil              (after scripts/identities.py)
    brownie run scripts/register.py main 200 --network tds-anvil     (200 sales rows instead of 600)

provider-a registers ``sales.csv`` (the dataset the consumer's jobs run on), provider-b
``branches.xlsx``. Sample files are written to ``$TDS_HOME/scripts/inputs/``; the data keys go
into each provider's encrypted keystore ``$TDS_HOME/keys/<provider>.json`` (the one
``tds provider serve NAME --keystore …`` reads); only ciphertext and the quality report enter
the store (embedded under ``$TDS_HOME/store``, or Kubo at ``$TDS_IPFS_API``).
"""
from __future__ import annotations

from offchain.ingest.cleaning import clean
from offchain.ingest.quality import assess
from offchain.ingest.readers import read_table
from offchain.onion.dataset import encrypt_table
from offchain.onion.keys import Keyring
from offchain.onion.keystore import Keystore
from offchain.onion.policy import default_policy
from chain.cid import parse_cid
from tds.demo import write_samples
from chain.ops import DET_EQ, HOM_AGG, OPE_RANGE

from ._common import DATASETS, Step, passphrase

SPLIT_BPS = [7000, 1000, 1500, 500]  # provider, algorithm provider, compute provider, operator


def main(rows: str = "600") -> dict:
    step = Step("register")
    step.need("identities", "participants", "operator")
    files = write_samples(step.work / "inputs", int(rows))
    if "template" not in step.state:
        step.state["template"] = step.space.publish_template(
            step.identity("operator").account, "standard analytics", b"TDS standard terms v1", 3,
            DET_EQ | OPE_RANGE | HOM_AGG, SPLIT_BPS)
        step.save()
    template = step.state["template"]
    step.say(f"certificate template #{template} (split provider/algorithm/compute/operator {SPLIT_BPS} bp)")
    assets = step.state.setdefault("assets", {})
    for name, (owner, schema, rules) in DATASETS.items():
        if name in assets:
            step.say(f"  {name}: already certificate #{assets[name]['asset']}")
            continue
        table, log = clean(read_table(files[name], schema), rules())
        report = assess(table, log)
        cls = report.classification
        ring = Keyring()
        ds = encrypt_table(table, default_policy(schema, cls, min_group_size=3), cls, ring, quality_hash=report.hash)
        keystore = step.settings.home / "keys" / f"{owner}.json"
        ks = Keystore.open(keystore, passphrase()) if keystore.exists() else Keystore.create(keystore, passphrase())
        ks.add_keyring(ring)
        manifest_cid = ds.publish(step.store.add_bytes)
        report_cid = step.store.add_bytes(report.canonical())
        report_file = step.work / "quality" / f"{name}.json"
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.write_bytes(report.canonical())
        asset = step.space.register_asset(step.member(owner), parse_cid(manifest_cid).to_bytes(),
                                          parse_cid(report_cid).to_bytes(), bytes.fromhex(ds.manifest_hash[2:]),
                                          cls.dataset, bytes.fromhex(report.hash[2:]), template)
        assets[name] = {"asset": asset, "owner": owner, "dataset": ds.dataset_id, "manifestCid": manifest_cid,
                        "manifestHash": ds.manifest_hash, "qualityReportCid": report_cid,
                        "qualityReportHash": report.hash, "qualityReport": str(report_file),
                        "classification": cls.dataset, "rows": table.num_rows, "file": str(files[name]),
                        "keystore": str(keystore), "cleaning": [e.rule for e in log]}
        step.save()
        step.say(f"  {owner}: {files[name].name} → {table.num_rows} rows, quality {report.overall}, {cls.dataset}, "
                 f"manifest {manifest_cid[:16]}…, certificate #{asset}")
    step.done(assets={n: a["asset"] for n, a in assets.items()})
    return assets
