// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IQualityRatings
/// @notice A consumer who used an asset under a grant rates it once per grant, 1–5
///         (002 §3.3.2 step 4); per-asset aggregates live on chain for the regulator's rankings.
interface IQualityRatings {
    /// @notice Emitted when `consumer` rates `assetId` `score` under `grantId`.
    event AssetRated(uint256 indexed assetId, uint256 indexed grantId, address indexed consumer, uint8 score);

    error InvalidScore(uint8 score);
    error NotGrantConsumer(uint256 grantId, address account);
    error NoCompletedJob(uint256 grantId);
    error AlreadyRated(uint256 grantId);

    /// @notice Consumer of `grantId` (with at least one use): rate its asset 1–5, once.
    function rate(uint256 grantId, uint8 score) external;

    /// @notice Aggregate for `assetId`: number of ratings, their sum, and the mean × 100.
    function ratingOf(uint256 assetId) external view returns (uint32 count, uint64 sum, uint256 meanTimes100);

    /// @notice True if `grantId` was rated.
    function isRated(uint256 grantId) external view returns (bool);
}
