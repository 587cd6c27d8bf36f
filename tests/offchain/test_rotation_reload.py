"""Rotation on a live data space (issue 15): the rotated version is recorded on the certificate
like an appended one (AssetRegistry.recordVersion, version n+1 naming version n) and joins its hash chain,
and the running key service — following its keystore file — serves it at the next job, with the
new keys, no restart; destroyed keys leave its memory too, and a version nobody anchored is not
followed."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from offchain.onion.dataset import EncryptedDataset, manifest_hash
from offchain.onion.keystore import Keystore
from offchain.onion.keystore_watch import WatchedKeyring
from offchain.onion.rotation import manifest_key_ids
from offchain.onion.rotation_policy import (DatasetIndex, anchor_pending, chain_version_anchor, destroy_unneeded,
                                            rotate_version)
from offchain.keyservice.service import build_key_service
from offchain.query.plan import Query
from offchain.query.engine import Engine
from tds.cli.data import _version_anchor
from tds.sandbox import PRICE, build_world

SUM_RANGE = {"aggregates": [["sum", "amount"], ["count"]], "where": [["range", "amount", 100, 700]]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from chain.config import load_settings
    from chain.node import EmbeddedNode, free_port

    tmp = tmp_path_factory.mktemp("rotation-reload")
    settings = replace(load_settings(), home=tmp / "home", chain_port=free_port(), rpc_url=None, chain_id=None,
                       deployment_file=tmp / "deployment.json")
    node = EmbeddedNode(settings)
    url = node.up(fresh=True).url
    w = build_world(settings, tmp, rows=60)
    yield w, settings, tmp, url
    node.down(save=False)


def answer(w, query: dict) -> list:
    """One job through the key service, as the oracle runs it; the answer the consumer opens."""
    job = w.space.request_job(w.consumer, w.grant_id, 2 | 4, query, w.store, value=PRICE)
    w.space.send(w.oracle.account, w.space.c["Jobs"].functions.acceptJob(job))
    q = Query.from_dict(query)
    enc, peeled, manifests = w.key_service.prepare(job, q, w.oracle.address)
    sealed = w.key_service.release(job, q, Engine(manifests, w.store.cat, peeled).run(enc), w.oracle.address)
    return w.open(sealed, job_id=job)["answer"]["rows"]


def test_rotation_is_anchored_and_served_without_restart(world, monkeypatch):
    import offchain.onion.keys as K
    import offchain.onion.keystore as KS
    monkeypatch.setattr(K, "new_hom", lambda *a, **k: K.generate_keypair(768, 128))   # the rotated Paillier key
    monkeypatch.setattr(KS, "DEFAULT_SCRYPT_N", 2 ** 10)                               # test-only KDF cost
    w, settings, tmp, url = world
    service, provider = w.key_service, w.identities["provider"]
    path = tmp / "home" / "keys" / "provider.json"
    Keystore.create(path, "pw", scrypt_n=2 ** 10).add_keyring(service.service.keyring)
    old = service.service.manifests[w.sales_id]
    for m in (service.service.manifests[w.customers_id], old):       # both tracked ('tds data encrypt' does it)
        cid = w.store.add_bytes(EncryptedDataset(m, {}).manifest_bytes)
        DatasetIndex.of_keystore(path).record(m, cid, manifest_hash(m))
    old_cid = cid
    keyring = WatchedKeyring(path, "pw")                  # what 'tds provider serve' holds
    service.service.keyring = keyring
    build_key_service(settings, w.space.w3, provider, keyring, w.store, service=service)
    query = {"dataset": w.sales_id, **SUM_RANGE}
    before = answer(w, query)

    # 'tds data rotate --identity provider', another process: rotate, publish, anchor
    c = w.space.c
    anchor = chain_version_anchor(c["AssetRegistry"], c["Evidence"], lambda fn: w.space.send(w.provider.account, fn),
                                  w.provider.address, w.space.deployment["block"])
    ks, index = Keystore.open(path, "pw"), DatasetIndex.of_keystore(path)
    entry = rotate_version(index, ks, w.store, old_cid, anchor=anchor)
    new = json.loads(w.store.cat(entry["cid"]))
    assert new["previous_version_hash"] == new["rotated_from"] == manifest_hash(old) == entry["previous"]
    asset = next(a for a, ids in service.datasets_by_asset.items() if w.sales_id in ids)
    assert [a["asset"] for a in entry["anchors"]] == [asset]
    [ev] = c["AssetRegistry"].events.DatasetVersionRecorded().get_logs(
        from_block=0, argument_filters={"manifestHash": bytes.fromhex(entry["hash"][2:])})
    assert (ev["args"]["assetId"], ev["args"]["version"], ev["args"]["previousHash"], ev["args"]["by"]) == \
        (asset, 1, bytes.fromhex(manifest_hash(old)[2:]), w.provider.address)
    assert c["AssetRegistry"].functions.latestVersion(asset).call() == [1, bytes.fromhex(entry["hash"][2:])]

    assert answer(w, query) == before                     # the next job: the new version, the new keys
    assert keyring.reloads == 1 and manifest_hash(service.service.manifests[w.sales_id]) == entry["hash"]
    assert manifest_key_ids(new) <= set(keyring.keys)

    destroyed = destroy_unneeded(index, ks, lambda h: [])[old_cid]   # no live grant needs the old keys
    assert destroyed and set(destroyed) <= set(keyring.keys)
    assert keyring.refresh() and keyring.reloads == 2     # the next lookup re-reads the file: ...
    assert not set(destroyed) & set(keyring.keys)         # ... the destroyed keys are gone from the service

    # a version the provider did not anchor: its keys load, but the service keeps the anchored one
    unanchored = rotate_version(index, ks, w.store, entry["cid"])
    assert "anchors" not in unanchored and answer(w, query) == before
    assert manifest_hash(service.service.manifests[w.sales_id]) == entry["hash"]

    # 'tds data rotate --dev-account 3' (the provider's wallet) anchors it later: followed then
    for name, value in (("TDS_HOME", tmp / "home"), ("TDS_RPC_URL", url), ("TDS_DEPLOYMENT", settings.deployment_file)):
        monkeypatch.setenv(name, str(value))
    assert anchor_pending(index, _version_anchor(None, 3)) == [unanchored["cid"]]
    assert answer(w, query) == before and manifest_hash(service.service.manifests[w.sales_id]) == unanchored["hash"]
    assert c["AssetRegistry"].functions.latestVersion(asset).call()[0] == 2   # the chain's history: v0 → v1 → v2
