// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IEvidence} from "../interfaces/IEvidence.sol";

/// @title Evidence
/// @notice Anchors Merkle roots of operation-log batches and single hashes (000 §12.3.1).
///         Leaves are keccak256(keccak256(record)); pairs are hashed sorted (OpenZeppelin
///         MerkleProof's commutative keccak), so a proof is the list of siblings leaf → root.
contract Evidence is IEvidence {
    mapping(uint256 batchId => Batch) private _batches;
    mapping(address producer => mapping(bytes32 hash => uint40)) private _anchoredAt;
    uint256 private _count;

    /// @inheritdoc IEvidence
    function anchorBatch(bytes32 root, uint32 count, uint40 periodStart, uint40 periodEnd, bytes calldata batchRef)
        external
        returns (uint256 batchId)
    {
        if (root == bytes32(0)) revert ZeroRoot();
        if (count == 0) revert EmptyBatch();
        if (periodEnd < periodStart || periodEnd > block.timestamp) revert InvalidPeriod(periodStart, periodEnd);
        batchId = ++_count;
        _batches[batchId] = Batch(root, msg.sender, count, periodStart, periodEnd, uint40(block.timestamp));
        emit BatchAnchored(batchId, msg.sender, root, count, periodStart, periodEnd, batchRef);
    }

    /// @inheritdoc IEvidence
    function anchorHash(bytes32 hash, bytes32 kind) external {
        _anchorHash(hash, kind, 0);
    }

    /// @inheritdoc IEvidence
    function anchorHash(bytes32 hash, bytes32 kind, uint256 subjectId) external {
        _anchorHash(hash, kind, subjectId);
    }

    /// @inheritdoc IEvidence
    function verifyInclusion(uint256 batchId, bytes32 leaf, bytes32[] calldata proof) public view returns (bool) {
        return MerkleProof.verifyCalldata(proof, _existing(batchId).root, leaf);
    }

    /// @inheritdoc IEvidence
    function verifyRecord(uint256 batchId, bytes calldata record, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return verifyInclusion(batchId, keccak256(bytes.concat(keccak256(record))), proof);
    }

    /// @inheritdoc IEvidence
    function batchOf(uint256 batchId) external view returns (Batch memory) {
        return _existing(batchId);
    }

    /// @inheritdoc IEvidence
    function anchoredAt(address producer, bytes32 hash) external view returns (uint40) {
        return _anchoredAt[producer][hash];
    }

    /// @inheritdoc IEvidence
    function batchCount() external view returns (uint256) {
        return _count;
    }

    /// @dev A producer anchors a given hash once; the first anchor's time is kept.
    function _anchorHash(bytes32 hash, bytes32 kind, uint256 subjectId) private {
        if (hash == bytes32(0)) revert ZeroHash();
        uint40 previous = _anchoredAt[msg.sender][hash];
        if (previous != 0) revert HashAlreadyAnchored(hash, msg.sender, previous);
        _anchoredAt[msg.sender][hash] = uint40(block.timestamp);
        emit HashAnchored(hash, msg.sender, kind, subjectId);
    }

    function _existing(uint256 batchId) private view returns (Batch storage b) {
        b = _batches[batchId];
        if (b.root == bytes32(0)) revert UnknownBatch(batchId);
    }
}
