// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";
import {ICertificateTemplates} from "../interfaces/ICertificateTemplates.sol";
import {IIdentityRegistry} from "../interfaces/IIdentityRegistry.sol";
import {Operations} from "../libraries/Operations.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";
import {Reviewable} from "../oversight/Reviewable.sol";

/// @title AssetRegistry
/// @notice Data-asset certificates as ERC-721 tokens. Minting needs the PROVIDER role and an active
///         template; the certificate snapshots the template's rights, operations and split.
///         States: Active → Frozen ⇄ Active → Offline (final). Transfers move the holder's rights
///         (revocation, freezing, revenue of settlements after the transfer) to the new holder.
///         Under a template that requires review a certificate starts Pending and becomes Active
///         when a REVIEWER approves it, or Rejected (final) (Reviewable). The holder records each later
///         version of the dataset (`recordVersion`): a hash chain from the registered manifest (version 0).
contract AssetRegistry is IAssetRegistry, ERC721, AccessControlDefaultAdminRules, Reviewable {
    /// @notice AccessControl role of regulators (freeze/unfreeze any certificate).
    bytes32 public constant REGULATOR_ROLE = TdsRoles.REGULATOR;
    uint16 private constant _RIGHT_TRANSFER = 2;
    /// @notice Delay before a new admin may accept the admin role (two-step transfer).
    uint48 public constant ADMIN_TRANSFER_DELAY = 2 days;

    IIdentityRegistry private immutable _identity;
    ICertificateTemplates private immutable _templates;
    mapping(uint256 assetId => Asset) private _assets;
    uint256 private _count;
    /// @dev Versions recorded after the registered manifest (version 0, `Asset.manifestHash`).
    mapping(uint256 assetId => uint32) private _versions;
    mapping(uint256 assetId => mapping(uint32 version => bytes32)) private _versionHashes;
    mapping(uint256 assetId => mapping(bytes32 manifestHash => uint32)) private _versionNumbers;

    /// @param admin the operator's admin account.
    /// @param identity the IdentityRegistry holding participant roles.
    /// @param templates the CertificateTemplates catalogue.
    constructor(address admin, IIdentityRegistry identity, ICertificateTemplates templates)
        ERC721("Trusted Data Space Asset Certificate", "TDSA")
        AccessControlDefaultAdminRules(ADMIN_TRANSFER_DELAY, admin)
    {
        _identity = identity;
        _templates = templates;
    }

    /// @inheritdoc IAssetRegistry
    function mint(MintParams calldata p) external returns (uint256 assetId) {
        if (!_identity.hasParticipantRole(msg.sender, TdsRoles.PROVIDER)) revert ProviderNotRegistered(msg.sender);
        if (p.contentCid.length == 0) revert EmptyContentCid();
        (bool active, uint16 rights, uint16 ops, uint64 split) = _templates.mintTerms(p.templateId);
        if (!active) revert ICertificateTemplates.TemplateNotActive(p.templateId);
        if (p.classification == Classification.Confidential) ops &= ~Operations.DOWNLOAD;
        assetId = ++_count;
        _record(assetId, p, rights, ops, split);
        _mint(msg.sender, assetId);
        emit AssetRegistered(
            assetId,
            msg.sender,
            p.templateId,
            p.classification,
            p.contentCid,
            p.metadataCid,
            p.manifestHash,
            p.qualityReportHash
        );
        if (_assets[assetId].state == AssetState.Pending) _requestReview(assetId, msg.sender);
    }

    /// @dev Store a new certificate: Pending when its template requires the operator's review.
    function _record(uint256 assetId, MintParams calldata p, uint16 rights, uint16 ops, uint64 split) private {
        _assets[assetId] = Asset({
            templateId: p.templateId,
            classification: p.classification,
            state: _templates.reviewRequired(p.templateId) ? AssetState.Pending : AssetState.Active,
            frozenBy: FreezeAuthority.None,
            mintedAt: uint40(block.timestamp),
            allowedOps: ops,
            rights: rights,
            splitBps: split,
            transfers: 0,
            manifestHash: p.manifestHash,
            qualityReportHash: p.qualityReportHash
        });
    }

    /// @dev Reviewers hold REVIEWER_ROLE (granted by the admin; the operator's review desk).
    function _checkReviewer() internal view override {
        _checkRole(REVIEWER_ROLE);
    }

    /// @dev A reviewer's decision on a Pending certificate.
    function _onReviewed(uint256 assetId, bool approved) internal override {
        _assets[assetId].state = approved ? AssetState.Active : AssetState.Rejected;
    }

    /// @inheritdoc IAssetRegistry
    function freeze(uint256 assetId, uint16 reasonCode) external {
        Asset storage a = _existing(assetId);
        FreezeAuthority authority = _authorityOf(assetId, msg.sender);
        if (a.state != AssetState.Active) {
            if (a.state != AssetState.Frozen || a.frozenBy >= authority) revert AssetNotActive(assetId, a.state);
        }
        a.state = AssetState.Frozen;
        a.frozenBy = authority;
        emit AssetFrozen(assetId, msg.sender, authority, reasonCode);
    }

    /// @inheritdoc IAssetRegistry
    function unfreeze(uint256 assetId) external {
        Asset storage a = _existing(assetId);
        if (a.state != AssetState.Frozen) revert AssetNotFrozen(assetId);
        FreezeAuthority held = a.frozenBy;
        if (_authorityOf(assetId, msg.sender) < held) revert FreezeHeldBy(assetId, held);
        a.state = AssetState.Active;
        a.frozenBy = FreezeAuthority.None;
        emit AssetUnfrozen(assetId, msg.sender, held);
    }

    /// @inheritdoc IAssetRegistry
    /// @dev Allowed from Active or a holder's own freeze; a regulator's freeze must be lifted first.
    function takeOffline(uint256 assetId, bytes32 finalRecordHash) external {
        Asset storage a = _existing(assetId);
        _requireHolder(assetId);
        AssetState s = a.state;
        if (s == AssetState.Offline || (s == AssetState.Frozen && a.frozenBy > FreezeAuthority.Holder)) {
            revert AssetNotActive(assetId, s);
        }
        a.state = AssetState.Offline;
        a.frozenBy = FreezeAuthority.None;
        emit AssetTakenOffline(assetId, msg.sender, finalRecordHash);
    }

    /// @inheritdoc IAssetRegistry
    function updateQualityReport(uint256 assetId, bytes32 qualityReportHash) external {
        Asset storage a = _existing(assetId);
        _requireHolder(assetId);
        if (a.state == AssetState.Offline) revert AssetNotActive(assetId, a.state);
        a.qualityReportHash = qualityReportHash;
        emit QualityReportUpdated(assetId, msg.sender, qualityReportHash);
    }

    /// @inheritdoc IAssetRegistry
    function recordVersion(uint256 assetId, bytes32 manifestHash, bytes32 previousHash)
        external
        returns (uint32 version)
    {
        Asset storage a = _existing(assetId);
        _requireHolder(assetId);
        if (a.state != AssetState.Active && a.state != AssetState.Frozen) revert AssetNotActive(assetId, a.state);
        if (manifestHash == bytes32(0)) revert EmptyManifestHash(assetId);
        uint32 latest = _versions[assetId];
        bytes32 expected = latest == 0 ? a.manifestHash : _versionHashes[assetId][latest];
        if (previousHash != expected) revert VersionOutOfOrder(assetId, expected, previousHash);
        if (manifestHash == a.manifestHash) revert DuplicateVersion(assetId, manifestHash, 0);
        uint32 seen = _versionNumbers[assetId][manifestHash];
        if (seen != 0) revert DuplicateVersion(assetId, manifestHash, seen);
        version = latest + 1;
        _versions[assetId] = version;
        _versionHashes[assetId][version] = manifestHash;
        _versionNumbers[assetId][manifestHash] = version;
        emit DatasetVersionRecorded(assetId, version, manifestHash, previousHash, msg.sender);
    }

    /// @inheritdoc IAssetRegistry
    function versionCount(uint256 assetId) external view returns (uint32) {
        _existing(assetId);
        return _versions[assetId] + 1;
    }

    /// @inheritdoc IAssetRegistry
    function versionHash(uint256 assetId, uint32 version) external view returns (bytes32) {
        Asset storage a = _existing(assetId);
        if (version == 0) return a.manifestHash;
        if (version > _versions[assetId]) revert UnknownVersion(assetId, version);
        return _versionHashes[assetId][version];
    }

    /// @inheritdoc IAssetRegistry
    function latestVersion(uint256 assetId) external view returns (uint32 version, bytes32 manifestHash) {
        Asset storage a = _existing(assetId);
        version = _versions[assetId];
        manifestHash = version == 0 ? a.manifestHash : _versionHashes[assetId][version];
    }

    /// @inheritdoc IAssetRegistry
    function versionOf(uint256 assetId, bytes32 manifestHash) external view returns (bool known, uint32 version) {
        Asset storage a = _existing(assetId);
        if (manifestHash == a.manifestHash) return (true, 0);
        version = _versionNumbers[assetId][manifestHash];
        known = version != 0;
    }

    /// @inheritdoc IAssetRegistry
    function assetOf(uint256 assetId) external view returns (Asset memory) {
        return _existing(assetId);
    }

    /// @inheritdoc IAssetRegistry
    function stateOf(uint256 assetId) external view returns (AssetState) {
        return _assets[assetId].state;
    }

    /// @inheritdoc IAssetRegistry
    function termsOf(uint256 assetId)
        external
        view
        returns (address holder, AssetState state, uint16 allowedOps, uint64 splitBps)
    {
        Asset storage a = _assets[assetId];
        return (_ownerOf(assetId), a.state, a.allowedOps, a.splitBps);
    }

    /// @inheritdoc IAssetRegistry
    function assetCount() external view returns (uint256) {
        return _count;
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, AccessControlDefaultAdminRules)
        returns (bool)
    {
        return ERC721.supportsInterface(interfaceId) || AccessControlDefaultAdminRules.supportsInterface(interfaceId);
    }

    /// @inheritdoc IAssetRegistry
    function transfersOf(uint256 assetId) external view returns (uint32) {
        return _assets[assetId].transfers;
    }

    /// @dev Transfers (not the mint) need an active, transferable certificate and a registered provider
    ///      as recipient; burning is not supported (Offline is the end of life).
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        if (from != address(0)) {
            Asset storage a = _assets[tokenId];
            if (a.state != AssetState.Active) revert AssetNotActive(tokenId, a.state);
            if (a.rights & _RIGHT_TRANSFER == 0) revert NotTransferable(tokenId, a.rights);
            if (to == address(0) || !_identity.hasParticipantRole(to, TdsRoles.PROVIDER)) {
                revert RecipientNotProvider(tokenId, to);
            }
            a.transfers += 1;
        }
    }

    function _existing(uint256 assetId) private view returns (Asset storage a) {
        a = _assets[assetId];
        if (a.state == AssetState.None) revert UnknownAsset(assetId);
    }

    function _requireHolder(uint256 assetId) private view {
        if (_ownerOf(assetId) != msg.sender) revert NotAssetHolder(assetId, msg.sender);
    }

    /// @dev Holder < Monitor < Regulator; anyone else may not freeze.
    function _authorityOf(uint256 assetId, address account) private view returns (FreezeAuthority) {
        if (hasRole(REGULATOR_ROLE, account)) return FreezeAuthority.Regulator;
        if (_ownerOf(assetId) == account) return FreezeAuthority.Holder;
        revert NotAssetHolder(assetId, account);
    }
}
