"""AssetRegistry: ERC-721 data-asset certificates, states, transfers and catalog events."""
from conftest import DOWNLOAD, H, SPLIT, mint_params, reverts

ACTIVE, FROZEN, OFFLINE = 1, 2, 3
HOLDER, MONITOR, REGULATOR = 1, 2, 3


def test_mint_records_certificate_and_catalog_event(system):
    p = system.cast.provider
    tx = system.assets.mint(mint_params(system.template_id, classification=1), {"from": p})
    aid = tx.return_value
    assert system.assets.ownerOf(aid) == p and system.assets.assetCount() == aid
    a = system.assets.assetOf(aid)
    assert a["state"] == ACTIVE and a["classification"] == 1 and a["allowedOps"] == 63
    assert a["splitBps"] == SPLIT[0] | SPLIT[1] << 16 | SPLIT[2] << 32 | SPLIT[3] << 48
    ev = tx.events["AssetRegistered"]
    assert ev["assetId"] == aid and ev["provider"] == p and ev["contentCid"] == "0x1220" + "11" * 32
    assert ev["manifestHash"] == H("manifest")


def test_confidential_asset_never_allows_download(system):
    aid = system.assets.mint(mint_params(system.template_id, classification=3),
                             {"from": system.cast.provider}).return_value
    assert system.assets.assetOf(aid)["allowedOps"] == 63 & ~DOWNLOAD


def test_mint_refuses_unregistered_provider_empty_cid_retired_template(system):
    with reverts("ProviderNotRegistered", system.cast.consumer):
        system.assets.mint(mint_params(system.template_id), {"from": system.cast.consumer})
    with reverts("EmptyContentCid"):
        system.assets.mint(mint_params(system.template_id, cid=b""), {"from": system.cast.provider})
    system.templates.retire(system.template_id, {"from": system.cast.operator})
    with reverts("TemplateNotActive", system.template_id):
        system.assets.mint(mint_params(system.template_id), {"from": system.cast.provider})


def test_holder_freezes_and_unfreezes(system):
    aid, p = system.asset_id, system.cast.provider
    tx = system.assets.freeze(aid, 7, {"from": p})
    assert tx.events["AssetFrozen"]["reasonCode"] == 7 and system.assets.stateOf(aid) == FROZEN
    system.assets.unfreeze(aid, {"from": p})
    assert system.assets.stateOf(aid) == ACTIVE
    with reverts("AssetNotFrozen", aid):
        system.assets.unfreeze(aid, {"from": p})


def test_stranger_cannot_freeze(system):
    with reverts("NotAssetHolder", system.asset_id, system.cast.consumer):
        system.assets.freeze(system.asset_id, 1, {"from": system.cast.consumer})


def test_regulator_freeze_holds_against_holder(system):
    aid, p, reg = system.asset_id, system.cast.provider, system.cast.regulator
    system.assets.freeze(aid, 1, {"from": p})
    system.assets.freeze(aid, 2, {"from": reg})  # escalates the holder's freeze
    assert system.assets.assetOf(aid)["frozenBy"] == REGULATOR
    with reverts("FreezeHeldBy", aid, REGULATOR):
        system.assets.unfreeze(aid, {"from": p})
    with reverts("AssetNotActive", aid, FROZEN):
        system.assets.freeze(aid, 3, {"from": p})
    with reverts("AssetNotActive", aid, FROZEN):
        system.assets.takeOffline(aid, H("final"), {"from": p})
    system.assets.unfreeze(aid, {"from": reg})
    assert system.assets.stateOf(aid) == ACTIVE


def test_take_offline_is_final(system):
    aid, p = system.asset_id, system.cast.provider
    with reverts("NotAssetHolder", aid, system.cast.regulator):
        system.assets.takeOffline(aid, H("final"), {"from": system.cast.regulator})
    tx = system.assets.takeOffline(aid, H("final-record"), {"from": p})
    assert tx.events["AssetTakenOffline"]["finalRecordHash"] == H("final-record")
    assert system.assets.stateOf(aid) == OFFLINE
    with reverts("AssetNotActive", aid, OFFLINE):
        system.assets.takeOffline(aid, H("again"), {"from": p})
    with reverts("AssetNotActive", aid, OFFLINE):
        system.assets.updateQualityReport(aid, H("q2"), {"from": p})
    with reverts("AssetNotFrozen", aid):
        system.assets.unfreeze(aid, {"from": system.cast.regulator})


def test_quality_report_update(system):
    tx = system.assets.updateQualityReport(system.asset_id, H("q2"), {"from": system.cast.provider})
    assert system.assets.assetOf(system.asset_id)["qualityReportHash"] == H("q2")
    assert tx.events["QualityReportUpdated"]["qualityReportHash"] == H("q2")


def test_transfer_moves_holder_rights_to_registered_provider(system):
    aid, p, p2 = system.asset_id, system.cast.provider, system.cast.provider2
    system.assets.transferFrom(p, p2, aid, {"from": p})
    assert system.assets.ownerOf(aid) == p2
    with reverts("NotAssetHolder", aid, p):
        system.assets.freeze(aid, 1, {"from": p})
    system.assets.freeze(aid, 1, {"from": p2})


def test_transfer_refused_to_non_provider_when_frozen_or_not_transferable(system):
    aid, p = system.asset_id, system.cast.provider
    with reverts("RecipientNotProvider", aid, system.cast.consumer):
        system.assets.transferFrom(p, system.cast.consumer, aid, {"from": p})
    system.assets.freeze(aid, 1, {"from": p})
    with reverts("AssetNotActive", aid, FROZEN):
        system.assets.transferFrom(p, system.cast.provider2, aid, {"from": p})
    tid = system.templates.publish("use-only", b"\x01", H("t"), 1, 63, SPLIT,
                                   {"from": system.cast.operator}).return_value
    aid2 = system.assets.mint(mint_params(tid), {"from": p}).return_value
    with reverts("NotTransferable", aid2, 1):
        system.assets.transferFrom(p, system.cast.provider2, aid2, {"from": p})


def test_unknown_asset(system):
    with reverts("UnknownAsset", 999):
        system.assets.assetOf(999)
    assert system.assets.stateOf(999) == 0
