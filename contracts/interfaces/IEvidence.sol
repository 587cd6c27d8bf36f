// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IEvidence
/// @notice Anchors Merkle roots of off-chain operation-log batches and single hashes (quality
///         reports, destruction proofs, key releases) — 000 §12.3.1. An anchor is a claim by its
///         producer (msg.sender): auditors weigh it by the producer's identity.
///         Leaf convention: leaf = keccak256(keccak256(record)); inner node = keccak256 of the
///         sorted pair (OpenZeppelin MerkleProof); an odd last node is carried up unchanged.
interface IEvidence {
    struct Batch {
        bytes32 root;
        address producer;
        uint32 count;
        uint40 periodStart;
        uint40 periodEnd;
        uint40 anchoredAt;
    }

    /// @notice Emitted when `producer` anchors batch `batchId` of `count` records.
    event BatchAnchored(
        uint256 indexed batchId, address indexed producer, bytes32 indexed root, uint32 count,
        uint40 periodStart, uint40 periodEnd, bytes batchRef
    );
    /// @notice Emitted when `producer` anchors a single `hash` of kind `kind` about `subjectId`
    ///         (the asset id for a quality report or final record, the grant id for a destruction
    ///         proof, the job id for a key release; 0 when the hash concerns no single subject).
    event HashAnchored(bytes32 indexed hash, address indexed producer, bytes32 indexed kind, uint256 subjectId);

    error EmptyBatch();
    error ZeroRoot();
    error ZeroHash();
    error InvalidPeriod(uint40 periodStart, uint40 periodEnd);
    error UnknownBatch(uint256 batchId);
    error HashAlreadyAnchored(bytes32 hash, address producer, uint40 anchoredAt);

    /// @notice Anchor a batch root; returns its id (ids start at 1). `batchRef` locates the batch (e.g. a CID).
    function anchorBatch(bytes32 root, uint32 count, uint40 periodStart, uint40 periodEnd, bytes calldata batchRef)
        external
        returns (uint256 batchId);

    /// @notice Anchor one hash under a kind tag (e.g. keccak256("DESTRUCTION_PROOF")), about no
    ///         particular subject (subjectId 0).
    function anchorHash(bytes32 hash, bytes32 kind) external;

    /// @notice Anchor one hash under a kind tag about `subjectId` (asset, grant or job id).
    function anchorHash(bytes32 hash, bytes32 kind, uint256 subjectId) external;

    /// @notice True if `leaf` (= keccak256(keccak256(record))) is in batch `batchId`.
    function verifyInclusion(uint256 batchId, bytes32 leaf, bytes32[] calldata proof) external view returns (bool);

    /// @notice Same as verifyInclusion, hashing the raw `record` into its leaf here.
    function verifyRecord(uint256 batchId, bytes calldata record, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /// @notice The batch `batchId` (reverts UnknownBatch).
    function batchOf(uint256 batchId) external view returns (Batch memory);

    /// @notice When `producer` anchored `hash` (0 if never).
    function anchoredAt(address producer, bytes32 hash) external view returns (uint40);

    /// @notice Number of batches anchored.
    function batchCount() external view returns (uint256);
}
