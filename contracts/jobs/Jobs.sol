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
        _jobs[jobId] = Job(address(0), 0, uint32(deadline), JobStatus.Requested, uint8(operation), false, 0);
        emit JobRequested(jobId, grantId, msg.sender, assetId, operation, paramsHash, token, price, deadline);
        _collect(token, msg.sender, price);
    }

    /// @inheritdoc IJobs
    function acceptJob(uint256 jobId) external {
        _requireComputeProvider(msg.sender);
        Job storage j = _jobs[jobId];
        JobStatus s = j.status;
        address previous;
        if (s == JobStatus.Accepted) {
            uint40 takeoverAt = uint40(j.acceptedAt) + _acceptTimeout;
            if (block.timestamp < takeoverAt || j.oracle == msg.sender) {
                revert JobAlreadyAccepted(jobId, j.oracle, takeoverAt);
            }
            previous = j.oracle;
        } else if (s != JobStatus.Requested) {
            if (s == JobStatus.None) revert UnknownJob(jobId);
            if (s == JobStatus.Released) revert AnswerAlreadyReleased(jobId);
            revert JobNotOpen(jobId, s);
        }
        if (block.timestamp > j.deadline) revert JobDeadlinePassed(jobId, j.deadline, block.timestamp);
        if (previous != address(0)) _chargeFailure(previous, jobId, 0);
        j.status = JobStatus.Accepted;
        j.oracle = msg.sender;
        j.acceptedAt = uint32(block.timestamp);
        emit JobAccepted(jobId, msg.sender, previous);
    }

    /// @inheritdoc IJobs
    function recordRelease(uint256 jobId, bytes32 resultHash) external {
        _recordRelease(jobId, resultHash, _newMemo());
    }

    /// @inheritdoc IJobs
    function recordReleases(uint256[] calldata jobIds, bytes32[] calldata resultHashes) external {
        uint256 n = jobIds.length;
        if (n == 0 || n > MAX_BATCH || n != resultHashes.length) revert InvalidBatch(n);
        ReleaseMemo memory m = _newMemo();
        for (uint256 i = 0; i < n; ++i) {
            _recordRelease(jobIds[i], resultHashes[i], m);
        }
    }

    /// @dev The job's asset holder records the release of `resultHash` (every term re-checked;
    ///      `m` carries the grant's and oracle's checks between the jobs of one batch).
    function _recordRelease(uint256 jobId, bytes32 resultHash, ReleaseMemo memory m) private {
        Job storage j = _acceptedBy(jobId, address(0));
        _checkRelease(jobId, j, m);
        if (m.holder != msg.sender) revert NotReleasingProvider(jobId, msg.sender);
        if (resultHash == bytes32(0)) revert EmptyResult(jobId);
        address oracle = j.oracle;
        j.releaseSlot = _takeReleaseSlot(oracle, resultHash);
        j.status = JobStatus.Released;
        j.acceptedAt = uint32(block.timestamp); // from now on: when the release was recorded
        emit AnswerReleased(jobId, msg.sender, oracle, resultHash);
    }

    /// @inheritdoc IJobs
    function acceptJobs(uint256[] calldata jobIds) external returns (uint256 accepted) {
        uint256 n = jobIds.length;
        if (n == 0 || n > MAX_BATCH) revert InvalidBatch(n);
        _requireComputeProvider(msg.sender);
        for (uint256 i = 0; i < n; ++i) {
            uint256 jobId = jobIds[i];
            Job storage j = _jobs[jobId];
            // only open, unexpired jobs; one another oracle took first is skipped, not a revert
            if (j.status != JobStatus.Requested || block.timestamp > j.deadline) continue;
            j.status = JobStatus.Accepted;
            j.oracle = msg.sender;
            j.acceptedAt = uint32(block.timestamp);
            emit JobAccepted(jobId, msg.sender, address(0));
            accepted |= uint256(1) << i;
        }
    }

    /// @inheritdoc IJobs
    function completeJob(uint256 jobId, bytes calldata resultCid, bytes32 resultHash, bytes calldata signature)
        external
    {
        _requireComputeProvider(msg.sender);
        Terms memory t;
        _completeAsOracle(jobId, resultCid, resultHash, signature, t);
    }

    /// @inheritdoc IJobs
    function completeJobs(JobResult[] calldata results) external {
        uint256 n = results.length;
        if (n == 0 || n > MAX_BATCH) revert InvalidBatch(n);
        _requireComputeProvider(msg.sender);
        Terms memory t; // a grant's terms, read once for its jobs in the batch
        for (uint256 i = 0; i < n; ++i) {
            JobResult calldata r = results[i];
            _completeAsOracle(r.jobId, r.resultCid, r.resultHash, r.signature, t);
        }
    }

    /// @dev The job's oracle posts the released answer (every check of completeJob but the role).
    function _completeAsOracle(uint256 jobId, bytes calldata resultCid, bytes32 resultHash,
                               bytes calldata signature, Terms memory t) private {
        Job storage j = _releasedJob(jobId);
        if (j.oracle != msg.sender) revert NotJobOracle(jobId, msg.sender);
        if (resultCid.length == 0) revert EmptyResult(jobId);
        bytes32 released = _releasedHashOf(j);
        if (resultHash != released) revert ResultMismatch(jobId, released, resultHash);
        bytes32 digest = resultDigest(jobId, resultHash, keccak256(resultCid));
        if (!SignatureChecker.isValidSignatureNowCalldata(msg.sender, digest, signature)) {
            revert InvalidResultSignature(jobId, msg.sender);
        }
        _complete(jobId, j, msg.sender, resultHash, resultCid, msg.sender, t);
    }

    /// @inheritdoc IJobs
    function settleReleased(uint256 jobId, bytes calldata resultCid) external {
        Job storage j = _releasedJob(jobId);
        uint256 at = uint256(j.acceptedAt) + _acceptTimeout;
        if (at > j.deadline) at = j.deadline;
        if (block.timestamp <= at) revert SettlementTooEarly(jobId, at);
        if (resultCid.length == 0) revert EmptyResult(jobId);
        Terms memory t;
        _loadTerms(t, _grantIdOf(jobId));
        address oracle = j.oracle;
        emit JobSettledWithoutOracle(jobId, msg.sender, oracle);
        _chargeFailure(oracle, jobId, 0);
        _complete(jobId, j, msg.sender, _releasedHashOf(j), resultCid, t.holder, t);
    }

    /// @inheritdoc IJobs
    function failJob(uint256 jobId, uint16 reasonCode) external {
        Job storage j = _acceptedBy(jobId, msg.sender);
        j.status = JobStatus.Failed;
        emit JobFailed(jobId, msg.sender, reasonCode);
        uint64 grantId = _grantIdOf(jobId);
        IAuthorizations.Grant memory g = _grantOf(grantId);
        _release(g.consumer, g.paymentToken, jobId, g.pricePerUse, Share.Refund);
        if (reasonCode >= ORACLE_FAULT_FROM) {
            _restoreUse(grantId, jobId);
            _chargeFailure(msg.sender, jobId, reasonCode);
        }
        if (j.inWorkflow) _stop(_steps[jobId].workflowId, _steps[jobId].step, reasonCode, g);
    }

    /// @inheritdoc IJobs
    function reclaim(uint256 jobId) external {
        Job storage j = _jobs[jobId];
        JobStatus s = j.status;
        if (s != JobStatus.Requested && s != JobStatus.Accepted) {
            if (s == JobStatus.None) revert UnknownJob(jobId);
            if (s == JobStatus.Released) revert AnswerAlreadyReleased(jobId);
            revert JobNotOpen(jobId, s);
        }
        uint64 grantId = _grantIdOf(jobId);
        IAuthorizations.Grant memory g = _grantOf(grantId);
        if (g.consumer != msg.sender) revert NotJobConsumer(jobId, msg.sender);
        if (block.timestamp <= j.deadline) revert JobNotExpired(jobId, j.deadline, block.timestamp);
        j.status = JobStatus.Reclaimed;
        emit JobReclaimed(jobId, msg.sender, g.pricePerUse);
        _release(msg.sender, g.paymentToken, jobId, g.pricePerUse, Share.Refund);
        // abandoned: not the consumer's doing, so the use comes back; an oracle that accepted
        // and went silent is charged a failure
        _restoreUse(grantId, jobId);
        if (s == JobStatus.Accepted) _chargeFailure(j.oracle, jobId, REASON_EXPIRED);
        if (j.inWorkflow) _stop(_steps[jobId].workflowId, _steps[jobId].step, REASON_EXPIRED, g);
    }
}
