// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IAssetRegistry
/// @notice ERC-721 data-asset certificates (002 §3.4.6.2–3, 000 §10.4.1). Large and variable data
///         (content CID, metadata CID) travels in the AssetRegistered event; storage keeps digests.
interface IAssetRegistry {
    enum Classification { Public, Internal, Sensitive, Confidential }
    /// @dev Pending and Rejected (operator review) were appended: the other values keep their numbers.
    enum AssetState { None, Active, Frozen, Offline, Pending, Rejected }
    /// @dev Who froze an asset or grant; a higher authority's freeze cannot be lifted by a lower one.
    enum FreezeAuthority { None, Holder, Monitor, Regulator }

    /// @dev Slot 0 packs everything a grant or job check reads; two digests follow. The content
    ///      and metadata CIDs live in the AssetRegistered event (chain data, as immutable as storage).
    struct Asset {
        uint32 templateId;
        Classification classification;
        AssetState state;
        FreezeAuthority frozenBy;
        uint40 mintedAt;
        uint16 allowedOps; // template operations, minus DOWNLOAD for confidential data
        uint16 rights; // template rights snapshot
        uint64 splitBps; // template split snapshot (RevenueSplit packing)
        uint32 transfers; // times the certificate changed hands (signed offers name it: they die on transfer)
        bytes32 manifestHash;
        bytes32 qualityReportHash;
    }

    struct MintParams {
        bytes contentCid; // CID of the ciphertext (binary CID bytes)
        bytes metadataCid; // CID of the public metadata document
        bytes32 manifestHash;
        Classification classification;
        bytes32 qualityReportHash;
        uint32 templateId;
    }

    /// @notice Catalog entry: emitted when `provider` mints certificate `assetId`.
    event AssetRegistered(
        uint256 indexed assetId,
        address indexed provider,
        uint32 indexed templateId,
        Classification classification,
        bytes contentCid,
        bytes metadataCid,
        bytes32 manifestHash,
        bytes32 qualityReportHash
    );
    /// @notice Emitted when `by` freezes `assetId` under `authority` for `reasonCode`.
    event AssetFrozen(uint256 indexed assetId, address indexed by, FreezeAuthority authority, uint16 reasonCode);
    /// @notice Emitted when `by` lifts the freeze on `assetId`.
    event AssetUnfrozen(uint256 indexed assetId, address indexed by, FreezeAuthority liftedAuthority);
    /// @notice Emitted when the holder takes `assetId` offline for good with a final record (000 §9.4.3).
    event AssetTakenOffline(uint256 indexed assetId, address indexed by, bytes32 finalRecordHash);
    /// @notice Emitted when the holder publishes a new quality report for `assetId`.
    event QualityReportUpdated(uint256 indexed assetId, address indexed by, bytes32 qualityReportHash);
    /// @notice Emitted when holder `by` records `version` of the dataset behind `assetId`: its manifest
    ///         hash and the hash of the version before it (version 0 is the registered manifest).
    event DatasetVersionRecorded(
        uint256 indexed assetId,
        uint32 version,
        bytes32 indexed manifestHash,
        bytes32 previousHash,
        address indexed by
    );

    error ProviderNotRegistered(address account);
    error EmptyContentCid();
    error UnknownAsset(uint256 assetId);
    error NotAssetHolder(uint256 assetId, address account);
    error AssetNotActive(uint256 assetId, AssetState state);
    error AssetNotFrozen(uint256 assetId);
    error FreezeHeldBy(uint256 assetId, FreezeAuthority authority);
    error NotTransferable(uint256 assetId, uint16 rights);
    error RecipientNotProvider(uint256 assetId, address to);
    error EmptyManifestHash(uint256 assetId);
    error VersionOutOfOrder(uint256 assetId, bytes32 expectedPrevious, bytes32 given);
    error DuplicateVersion(uint256 assetId, bytes32 manifestHash, uint32 version);
    error UnknownVersion(uint256 assetId, uint32 version);

    /// @notice Mint a certificate to the sender (who must hold the PROVIDER role).
    function mint(MintParams calldata params) external returns (uint256 assetId);

    /// @notice Holder or regulator: freeze `assetId` (no new grants, no use, no transfer).
    function freeze(uint256 assetId, uint16 reasonCode) external;

    /// @notice Lift a freeze; the holder may lift only its own freeze, a regulator any.
    function unfreeze(uint256 assetId) external;

    /// @notice Holder only: take `assetId` offline for good, anchoring the final record hash.
    function takeOffline(uint256 assetId, bytes32 finalRecordHash) external;

    /// @notice Holder only: publish a new quality report digest.
    function updateQualityReport(uint256 assetId, bytes32 qualityReportHash) external;

    /// @notice Holder only: record the next version of the dataset behind `assetId` (002 §3.4.6: a
    ///         dataset grows by new chunks under a new manifest). `previousHash` must be the latest
    ///         recorded manifest hash, so the on-chain history is the same hash chain as the manifests'
    ///         `previous_version_hash`. Allowed while Active or Frozen (a freeze stops use, not the
    ///         record of what the holder holds); refused Pending, Rejected or Offline.
    /// @return version the new version's number (1 for the first one after the registered manifest).
    function recordVersion(uint256 assetId, bytes32 manifestHash, bytes32 previousHash)
        external
        returns (uint32 version);

    /// @notice Number of versions of `assetId`, the registered manifest (version 0) included (reverts UnknownAsset).
    function versionCount(uint256 assetId) external view returns (uint32);

    /// @notice Manifest hash of version `version` of `assetId` (reverts UnknownAsset, or
    ///         UnknownVersion when no such version exists yet).
    function versionHash(uint256 assetId, uint32 version) external view returns (bytes32);

    /// @notice The latest version of `assetId` and its manifest hash (reverts UnknownAsset).
    function latestVersion(uint256 assetId) external view returns (uint32 version, bytes32 manifestHash);

    /// @notice Whether `manifestHash` is a version of `assetId`, and which (false, 0 when it is not).
    function versionOf(uint256 assetId, bytes32 manifestHash) external view returns (bool known, uint32 version);

    /// @notice The certificate record of `assetId` (reverts UnknownAsset).
    function assetOf(uint256 assetId) external view returns (Asset memory);

    /// @notice The state of `assetId` (None if it does not exist).
    function stateOf(uint256 assetId) external view returns (AssetState);

    /// @notice What grants and settlements read: holder, state, allowed operations, split.
    function termsOf(uint256 assetId)
        external
        view
        returns (address holder, AssetState state, uint16 allowedOps, uint64 splitBps);

    /// @notice Times `assetId` changed hands (the epoch that signed grant offers must name).
    function transfersOf(uint256 assetId) external view returns (uint32);

    /// @notice Number of certificates minted (ids run 1..assetCount).
    function assetCount() external view returns (uint256);
}
