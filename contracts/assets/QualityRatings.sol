// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAuthorizations} from "../interfaces/IAuthorizations.sol";
import {IJobs} from "../interfaces/IJobs.sol";
import {IQualityRatings} from "../interfaces/IQualityRatings.sol";

/// @title QualityRatings
/// @notice Consumers rate the assets they used, once per grant, 1–5 (002 §3.3.2 step 4); a
///         rating needs at least one completed job under the grant (a paid request is not a use).
contract QualityRatings is IQualityRatings {
    struct Aggregate {
        uint32 count;
        uint64 sum;
    }

    IAuthorizations private immutable _authorizations;
    IJobs private immutable _jobs;
    mapping(uint256 assetId => Aggregate) private _aggregates;
    mapping(uint256 grantId => bool) private _rated;

    constructor(IAuthorizations authorizations, IJobs jobs) {
        _authorizations = authorizations;
        _jobs = jobs;
    }

    /// @inheritdoc IQualityRatings
    /// @dev Allowed whatever the grant's status (a closed or revoked grant was still used).
    function rate(uint256 grantId, uint8 score) external {
        if (score < 1 || score > 5) revert InvalidScore(score);
        IAuthorizations.Grant memory g = _authorizations.grantOf(grantId);
        if (g.consumer != msg.sender) revert NotGrantConsumer(grantId, msg.sender);
        if (!_jobs.hasCompletedJob(grantId)) revert NoCompletedJob(grantId);
        if (_rated[grantId]) revert AlreadyRated(grantId);
        _rated[grantId] = true;
        Aggregate storage a = _aggregates[g.assetId];
        a.count += 1;
        a.sum += score;
        emit AssetRated(g.assetId, grantId, msg.sender, score);
    }

    /// @inheritdoc IQualityRatings
    function ratingOf(uint256 assetId) external view returns (uint32 count, uint64 sum, uint256 meanTimes100) {
        Aggregate storage a = _aggregates[assetId];
        count = a.count;
        sum = a.sum;
        meanTimes100 = count == 0 ? 0 : uint256(sum) * 100 / count;
    }

    /// @inheritdoc IQualityRatings
    function isRated(uint256 grantId) external view returns (bool) {
        return _rated[grantId];
    }
}
