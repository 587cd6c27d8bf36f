// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IAuthorizations} from "../interfaces/IAuthorizations.sol";
import {IJobDisputes} from "../interfaces/IJobDisputes.sol";
import {RevenueSplit} from "../libraries/RevenueSplit.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";
import {JobsCore} from "./JobsCore.sol";

/// @title JobDisputes
/// @notice The consumer's dispute of a completed job, the arbitrator's decision and the release
///         of undisputed held shares (see IJobDisputes). The shares were held by JobsCore._settle
///         when the job completed under a dispute window.
abstract contract JobDisputes is JobsCore {
    /// @inheritdoc IJobDisputes
    function disputeJob(uint256 jobId, bytes32 reasonHash) external {
        JobStatus s = _jobs[jobId].status;
        if (s != JobStatus.Completed) {
            if (s == JobStatus.None) revert UnknownJob(jobId);
            revert JobNotCompleted(jobId, s);
        }
        if (_grantOf(_grantIdOf(jobId)).consumer != msg.sender) revert NotJobConsumer(jobId, msg.sender);
        Hold storage h = _holds[jobId];
        HoldStatus hs = h.status;
        if (hs == HoldStatus.None) revert JobNotDisputable(jobId);
        if (hs == HoldStatus.Disputed || hs == HoldStatus.Resolved) revert AlreadyDisputed(jobId, hs);
        if (block.timestamp > h.until) revert DisputeWindowClosed(jobId, h.until);
        h.status = HoldStatus.Disputed;
        emit JobDisputed(jobId, msg.sender, reasonHash);
    }

    /// @inheritdoc IJobDisputes
    function resolveDispute(uint256 jobId, uint16 refundBps, bytes32 decisionHash) external {
        if (!IAccessControl(address(_authorizations)).hasRole(TdsRoles.REGULATOR, msg.sender)) {
            revert NotArbitrator(msg.sender);
        }
        if (refundBps > RevenueSplit.TOTAL_BPS) revert InvalidRefundBps(refundBps);
        Hold storage h = _holds[jobId];
        HoldStatus hs = h.status;
        if (hs != HoldStatus.Disputed) {
            if (_jobs[jobId].status == JobStatus.None) revert UnknownJob(jobId);
            revert NoOpenDispute(jobId, hs);
        }
        h.status = HoldStatus.Resolved;
        uint256 held = h.amount;
        uint256 refund = held * refundBps / RevenueSplit.TOTAL_BPS;
        emit DisputeResolved(jobId, msg.sender, refundBps, refund, held - refund, decisionHash);
        uint64 grantId = _grantIdOf(jobId);
        IAuthorizations.Grant memory g = _grantOf(grantId);
        _release(g.consumer, g.paymentToken, jobId, refund, Share.Refund);
        _pay(jobId, g, h, held - refund);
        // a full refund: the result counted for nothing, so the use comes back
        if (refundBps == RevenueSplit.TOTAL_BPS) _restoreUse(grantId, jobId);
    }

    /// @inheritdoc IJobDisputes
    function releaseHeld(uint256[] calldata jobIds) external {
        uint256 n = jobIds.length;
        if (n == 0 || n > MAX_BATCH) revert InvalidBatch(n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 jobId = jobIds[i];
            Hold storage h = _holds[jobId];
            HoldStatus hs = h.status;
            if (hs != HoldStatus.Held) {
                if (hs == HoldStatus.Disputed) revert JobUnderDispute(jobId);
                if (_jobs[jobId].status == JobStatus.None) revert UnknownJob(jobId);
                revert NothingHeld(jobId, hs);
            }
            if (block.timestamp <= h.until) revert DisputeWindowOpen(jobId, h.until);
            h.status = HoldStatus.Released;
            emit HeldPaymentReleased(jobId, msg.sender, h.amount);
            _pay(jobId, _grantOf(_grantIdOf(jobId)), h, h.amount);
        }
    }

    /// @inheritdoc IJobDisputes
    function holdOf(uint256 jobId) external view returns (Hold memory) {
        return _holds[jobId];
    }

    /// @dev Credit `kept` of the held amount of `jobId` to the payees, pro rata to their shares:
    ///      the certificate's holder now, the algorithm provider, the completing oracle (or the
    ///      holder if the job was settled without its oracle). Rounding dust goes to the holder.
    function _pay(uint256 jobId, IAuthorizations.Grant memory g, Hold storage h, uint256 kept) private {
        if (kept == 0) return;
        (address holder, uint64 split) = _termsOf(g.assetId);
        (uint256 p, uint256 a, uint256 c,) = RevenueSplit.shares(g.pricePerUse, split);
        address algorithm = g.algorithmProvider;
        if (algorithm == address(0)) {
            p += a;
            a = 0;
        }
        uint256 held = h.amount;
        if (kept != held) {
            a = a * kept / held;
            c = c * kept / held;
            p = kept - a - c;
        }
        address token = g.paymentToken;
        _release(holder, token, jobId, p, Share.Provider);
        _release(algorithm, token, jobId, a, Share.AlgorithmProvider);
        _release(h.computeToHolder ? holder : _jobs[jobId].oracle, token, jobId, c, Share.ComputeProvider);
    }
}
