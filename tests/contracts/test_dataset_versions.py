"""AssetRegistry dataset versions (issue 15, "appending means versions"): the certificate records
each version's manifest hash as a hash chain — version 0 is the registered manifest, version n+1
names version n as its previous — written by the current holder only, while Active or Frozen."""
from conftest import H, mint_params, reverts

import brownie

ACTIVE, FROZEN, OFFLINE, PENDING, REJECTED = 1, 2, 3, 4, 5
ZERO32 = "0x" + "00" * 32


def test_versions_form_a_hash_chain_from_the_registered_manifest(system):
    aid, p, a = system.asset_id, system.cast.provider, system.assets
    assert a.versionCount(aid) == 1 and a.versionHash(aid, 0) == H("manifest")
    assert tuple(a.latestVersion(aid)) == (0, H("manifest"))
    tx = a.recordVersion(aid, H("v1"), H("manifest"), {"from": p})
    assert tx.return_value == 1
    ev = tx.events["DatasetVersionRecorded"]
    assert (ev["assetId"], ev["version"], ev["manifestHash"], ev["previousHash"], ev["by"]) == \
        (aid, 1, H("v1"), H("manifest"), p)
    assert a.recordVersion(aid, H("v2"), H("v1"), {"from": p}).return_value == 2
    assert a.versionCount(aid) == 3 and tuple(a.latestVersion(aid)) == (2, H("v2"))
    assert [a.versionHash(aid, n) for n in range(3)] == [H("manifest"), H("v1"), H("v2")]
    assert tuple(a.versionOf(aid, H("v1"))) == (True, 1) and tuple(a.versionOf(aid, H("manifest"))) == (True, 0)
    assert tuple(a.versionOf(aid, H("never"))) == (False, 0)
    assert a.assetOf(aid)["manifestHash"] == H("manifest")      # the registered manifest stays version 0
    with reverts("UnknownVersion", aid, 3):
        a.versionHash(aid, 3)


def test_only_the_current_holder_records(system):
    aid, p, p2, a = system.asset_id, system.cast.provider, system.cast.provider2, system.assets
    for stranger in (system.cast.consumer, system.cast.regulator, system.cast.operator):
        with reverts("NotAssetHolder", aid, stranger):
            a.recordVersion(aid, H("v1"), H("manifest"), {"from": stranger})
    a.transferFrom(p, p2, aid, {"from": p})
    with reverts("NotAssetHolder", aid, p):                     # the former holder no longer may
        a.recordVersion(aid, H("v1"), H("manifest"), {"from": p})
    assert a.recordVersion(aid, H("v1"), H("manifest"), {"from": p2}).events["DatasetVersionRecorded"]["by"] == p2


def test_unknown_asset_and_empty_hash_refused(system):
    with reverts("UnknownAsset", 999):
        system.assets.recordVersion(999, H("v1"), H("manifest"), {"from": system.cast.provider})
    for view in (lambda: system.assets.versionCount(999), lambda: system.assets.latestVersion(999),
                 lambda: system.assets.versionHash(999, 0), lambda: system.assets.versionOf(999, H("v1"))):
        with reverts("UnknownAsset", 999):
            view()
    with reverts("EmptyManifestHash", system.asset_id):
        system.assets.recordVersion(system.asset_id, ZERO32, H("manifest"), {"from": system.cast.provider})


def test_previous_must_be_the_latest(system):
    aid, p, a = system.asset_id, system.cast.provider, system.assets
    with reverts("VersionOutOfOrder", aid, H("manifest"), H("elsewhere")):
        a.recordVersion(aid, H("v1"), H("elsewhere"), {"from": p})
    a.recordVersion(aid, H("v1"), H("manifest"), {"from": p})
    with reverts("VersionOutOfOrder", aid, H("v1"), H("manifest")):   # a fork off version 0
        a.recordVersion(aid, H("v1b"), H("manifest"), {"from": p})
    assert a.versionCount(aid) == 2


def test_duplicate_hash_refused(system):
    aid, p, a = system.asset_id, system.cast.provider, system.assets
    with reverts("DuplicateVersion", aid, H("manifest"), 0):
        a.recordVersion(aid, H("manifest"), H("manifest"), {"from": p})
    a.recordVersion(aid, H("v1"), H("manifest"), {"from": p})
    a.recordVersion(aid, H("v2"), H("v1"), {"from": p})
    with reverts("DuplicateVersion", aid, H("v1"), 1):                # no cycle back to an older version
        a.recordVersion(aid, H("v1"), H("v2"), {"from": p})
    with reverts("DuplicateVersion", aid, H("v2"), 2):
        a.recordVersion(aid, H("v2"), H("v2"), {"from": p})


def test_frozen_certificate_keeps_its_history_offline_does_not(system):
    """A freeze stops use, not the holder's record of what it holds (a regulator's freeze too);
    an offline certificate is closed: no version after its final record."""
    aid, p, a = system.asset_id, system.cast.provider, system.assets
    a.freeze(aid, 9, {"from": system.cast.regulator})
    assert a.stateOf(aid) == FROZEN
    a.recordVersion(aid, H("v1"), H("manifest"), {"from": p})
    a.unfreeze(aid, {"from": system.cast.regulator})
    a.takeOffline(aid, H("final"), {"from": p})
    with reverts("AssetNotActive", aid, OFFLINE):
        a.recordVersion(aid, H("v2"), H("v1"), {"from": p})
    assert tuple(a.latestVersion(aid)) == (1, H("v1"))


def test_pending_and_rejected_certificates_take_no_versions(system):
    c, a = system.cast, system.assets
    op = c.operator
    tid = system.templates.publish("reviewed", b"\x12\x20" + b"\x66" * 32, H("terms"), 1 | 2, 63,
                                   [7000, 1000, 1500, 500], {"from": op}).return_value
    system.templates.setReviewRequired(tid, True, {"from": op})
    a.grantRole(H("REVIEWER"), op, {"from": op})
    aid = a.mint(mint_params(tid), {"from": c.provider}).return_value
    with reverts("AssetNotActive", aid, PENDING):
        a.recordVersion(aid, H("v1"), H("manifest"), {"from": c.provider})
    a.rejectRegistration(aid, H("no consent"), {"from": op})
    with reverts("AssetNotActive", aid, REJECTED):
        a.recordVersion(aid, H("v1"), H("manifest"), {"from": c.provider})


def test_histories_are_per_asset(system):
    """Two certificates over the same manifest keep separate histories."""
    p, a = system.cast.provider, system.assets
    aid2 = a.mint(mint_params(system.template_id), {"from": p}).return_value
    a.recordVersion(system.asset_id, H("v1"), H("manifest"), {"from": p})
    assert tuple(a.latestVersion(aid2)) == (0, H("manifest")) and tuple(a.versionOf(aid2, H("v1"))) == (False, 0)
    a.recordVersion(aid2, H("v1"), H("manifest"), {"from": p})
    assert tuple(a.latestVersion(aid2)) == (1, H("v1"))


def test_record_version_gas(system):
    """Gas of recordVersion: the first version after registration, and a later one."""
    aid, p, a = system.asset_id, system.cast.provider, system.assets
    first = a.recordVersion(aid, H("v1"), H("manifest"), {"from": p}).gas_used
    later = a.recordVersion(aid, H("v2"), H("v1"), {"from": p}).gas_used
    print(f"recordVersion gas: first {first}, later {later}")
    assert later < first < 120_000
    assert brownie.network.is_connected()
