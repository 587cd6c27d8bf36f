// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";
import {IAuthorizations} from "../interfaces/IAuthorizations.sol";
import {ICertificateTemplates} from "../interfaces/ICertificateTemplates.sol";
import {IIdentityRegistry} from "../interfaces/IIdentityRegistry.sol";
import {IJobs} from "../interfaces/IJobs.sol";
import {JobDisputes} from "./JobDisputes.sol";
import {JobsCore} from "./JobsCore.sol";
import {JobWorkflows} from "./JobWorkflows.sol";

/// @title Jobs
/// @notice Computation jobs and multi-step workflows, with escrow and the four-way split.
///         Job: Requested → Accepted → Completed | Failed; Requested/Accepted → Reclaimed after
///         the deadline; an Accepted job whose oracle is silent for `acceptTimeout` may be
///         accepted again by another registered oracle. requestJob takes the price into escrow
///         and fixes the split (the certificate's immutable basis points); completion releases
///         the shares to provider (current certificate holder), algorithm provider, the
///         completing oracle and the operator treasury as pull balances; failure and reclaim
///         refund the consumer's pull balance.
///         Release path: the provider's key service records the release (`recordRelease`, all
///         terms re-checked) before the sealed answer leaves it; a Released job completes only
///         with that answer (by its oracle, or by anyone via `settleReleased` once the oracle is
///         late) and can no longer be failed, reclaimed or taken over.
///         Disputes (JobDisputes): under a template with a dispute window, completion pays the
///         operator's share and holds the rest; the consumer may dispute within the window and the
///         regulator decides (refund, release or split); undisputed shares are released after it.
contract Jobs is JobWorkflows, JobDisputes {
    /// @param templates the CertificateTemplates catalogue (each template's dispute window).
    /// @param treasury_ payee of the operator share.
    /// @param acceptTimeout_ seconds of oracle silence after which another oracle may take a job over.
    constructor(
        IIdentityRegistry identity,
        IAuthorizations authorizations,
        IAssetRegistry assets,
        ICertificateTemplates templates,
        address treasury_,
        uint40 acceptTimeout_
    ) JobsCore(identity, authorizations, assets, templates, treasury_, acceptTimeout_) {}

    // ------------------------------------------------------------------ jobs

    /// @inheritdoc IJobs
    function requestJob(uint256 grantId, uint16 operation, bytes32 paramsHash, uint40 deadline)
        external
        payable
        returns (uint256 jobId)
    {
        if (deadline <= block.timestamp || deadline > block.timestamp + MAX_JOB_TTL) {
            revert InvalidDeadline(deadline, block.timestamp);
        }
        (uint32 useIndex, uint256 assetId, address token, uint96 price) =
            _authorizations.consume(grantId, msg.sender, operation);
        jobId = (grantId << 32) | useIndex;
        _core[jobId] = JobCore(uint64(grantId), price, deadline, JobStatus.Requested, operation);
        emit JobRequested(jobId, grantId, msg.sender, assetId, operation, paramsHash, token, price, deadline);
        _collect(token, msg.sender, price);
    }

    /// @inheritdoc IJobs
    function acceptJob(uint256 jobId) external {
        _requireComputeProvider(msg.sender);
        JobCore storage c = _core[jobId];
        JobStatus s = c.status;
        JobExec storage e = _exec[jobId];
        address previous;
        if (s == JobStatus.Accepted) {
            uint40 takeoverAt = e.acceptedAt + _acceptTimeout;
            if (block.timestamp < takeoverAt || e.oracle == msg.sender) {
                revert JobAlreadyAccepted(jobId, e.oracle, takeoverAt);
            }
            previous = e.oracle;
        } else if (s != JobStatus.Requested) {
            if (s == JobStatus.None) revert UnknownJob(jobId);
            if (s == JobStatus.Released) revert AnswerAlreadyReleased(jobId);
            revert JobNotOpen(jobId, s);
        }
        if (block.timestamp > c.deadline) revert JobDeadlinePassed(jobId, c.deadline, block.timestamp);
        if (previous != address(0)) _chargeFailure(previous, jobId, 0);
        c.status = JobStatus.Accepted;
        e.oracle = msg.sender;
        e.acceptedAt = uint40(block.timestamp);
        emit JobAccepted(jobId, msg.sender, previous);
    }

    /// @inheritdoc IJobs
    function recordRelease(uint256 jobId, bytes32 resultHash) external {
        (JobCore storage c, JobExec storage e) = _acceptedBy(jobId, address(0));
        address oracle = e.oracle;
        (address holder,) = _checkRelease(jobId, c, oracle);
        if (holder != msg.sender) revert NotReleasingProvider(jobId, msg.sender);
        if (resultHash == bytes32(0)) revert EmptyResult(jobId);
        _released[jobId] = resultHash;
        c.status = JobStatus.Released;
        e.acceptedAt = uint40(block.timestamp); // from now on: when the release was recorded
        emit AnswerReleased(jobId, msg.sender, oracle, resultHash);
    }

    /// @inheritdoc IJobs
    function acceptJobs(uint256[] calldata jobIds) external returns (uint256 accepted) {
        uint256 n = jobIds.length;
        if (n == 0 || n > MAX_BATCH) revert InvalidBatch(n);
        _requireComputeProvider(msg.sender);
        for (uint256 i = 0; i < n; ++i) {
            uint256 jobId = jobIds[i];
            JobCore storage c = _core[jobId];
            // only open, unexpired jobs; one another oracle took first is skipped, not a revert
            if (c.status != JobStatus.Requested || block.timestamp > c.deadline) continue;
            c.status = JobStatus.Accepted;
            JobExec storage e = _exec[jobId];
            e.oracle = msg.sender;
            e.acceptedAt = uint40(block.timestamp);
            emit JobAccepted(jobId, msg.sender, address(0));
            accepted |= uint256(1) << i;
        }
    }

    /// @inheritdoc IJobs
    function completeJob(uint256 jobId, bytes calldata resultCid, bytes32 resultHash, bytes calldata signature)
        external
    {
        _requireComputeProvider(msg.sender);
        _completeAsOracle(jobId, resultCid, resultHash, signature);
    }

    /// @inheritdoc IJobs
    function completeJobs(JobResult[] calldata results) external {
        uint256 n = results.length;
        if (n == 0 || n > MAX_BATCH) revert InvalidBatch(n);
        _requireComputeProvider(msg.sender);
        for (uint256 i = 0; i < n; ++i) {
            JobResult calldata r = results[i];
            _completeAsOracle(r.jobId, r.resultCid, r.resultHash, r.signature);
        }
    }

    /// @dev The job's oracle posts the released answer (every check of completeJob but the role).
    function _completeAsOracle(uint256 jobId, bytes calldata resultCid, bytes32 resultHash,
                               bytes calldata signature) private {
        (JobCore storage c, JobExec storage e) = _releasedJob(jobId);
        if (e.oracle != msg.sender) revert NotJobOracle(jobId, msg.sender);
        if (resultCid.length == 0) revert EmptyResult(jobId);
        bytes32 released = _released[jobId];
        if (resultHash != released) revert ResultMismatch(jobId, released, resultHash);
        bytes32 digest = resultDigest(jobId, resultHash, keccak256(resultCid));
        if (!SignatureChecker.isValidSignatureNowCalldata(msg.sender, digest, signature)) {
            revert InvalidResultSignature(jobId, msg.sender);
        }
        _complete(jobId, c, e, msg.sender, resultHash, resultCid, msg.sender);
    }

    /// @inheritdoc IJobs
    function settleReleased(uint256 jobId, bytes calldata resultCid) external {
        (JobCore storage c, JobExec storage e) = _releasedJob(jobId);
        uint256 at = uint256(e.acceptedAt) + _acceptTimeout;
        if (at > c.deadline) at = c.deadline;
        if (block.timestamp <= at) revert SettlementTooEarly(jobId, at);
        if (resultCid.length == 0) revert EmptyResult(jobId);
        IAuthorizations.Grant memory g = _grantOf(c.grantId);
        (address holder,) = _termsOf(g.assetId);
        emit JobSettledWithoutOracle(jobId, msg.sender, e.oracle);
        _chargeFailure(e.oracle, jobId, 0);
        _complete(jobId, c, e, msg.sender, _released[jobId], resultCid, holder);
    }

    /// @inheritdoc IJobs
    function failJob(uint256 jobId, uint16 reasonCode) external {
        (JobCore storage c, JobExec storage e) = _acceptedBy(jobId, msg.sender);
        c.status = JobStatus.Failed;
        emit JobFailed(jobId, msg.sender, reasonCode);
        IAuthorizations.Grant memory g = _grantOf(c.grantId);
        _release(g.consumer, g.paymentToken, jobId, c.amount, Share.Refund);
        if (reasonCode >= ORACLE_FAULT_FROM) {
            _restoreUse(c.grantId, jobId);
            _chargeFailure(msg.sender, jobId, reasonCode);
        }
        if (e.workflowId != 0) _stop(e.workflowId, e.step, reasonCode, g);
    }

    /// @inheritdoc IJobs
    function reclaim(uint256 jobId) external {
        JobCore storage c = _core[jobId];
        JobStatus s = c.status;
        if (s != JobStatus.Requested && s != JobStatus.Accepted) {
            if (s == JobStatus.None) revert UnknownJob(jobId);
            if (s == JobStatus.Released) revert AnswerAlreadyReleased(jobId);
            revert JobNotOpen(jobId, s);
        }
        IAuthorizations.Grant memory g = _grantOf(c.grantId);
        if (g.consumer != msg.sender) revert NotJobConsumer(jobId, msg.sender);
        if (block.timestamp <= c.deadline) revert JobNotExpired(jobId, c.deadline, block.timestamp);
        c.status = JobStatus.Reclaimed;
        emit JobReclaimed(jobId, msg.sender, c.amount);
        _release(msg.sender, g.paymentToken, jobId, c.amount, Share.Refund);
        // abandoned: not the consumer's doing, so the use comes back; an oracle that accepted
        // and went silent is charged a failure
        _restoreUse(c.grantId, jobId);
        JobExec storage e = _exec[jobId];
        if (s == JobStatus.Accepted) _chargeFailure(e.oracle, jobId, REASON_EXPIRED);
        if (e.workflowId != 0) _stop(e.workflowId, e.step, REASON_EXPIRED, g);
    }
}
