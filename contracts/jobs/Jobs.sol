// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";
import {IAuthorizations} from "../interfaces/IAuthorizations.sol";
import {IIdentityRegistry} from "../interfaces/IIdentityRegistry.sol";
import {IJobs} from "../interfaces/IJobs.sol";
import {RevenueSplit} from "../libraries/RevenueSplit.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";
import {TdsTypeHashes} from "../libraries/TdsTypeHashes.sol";
import {RevenueVault} from "../payments/RevenueVault.sol";

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
contract Jobs is IJobs, RevenueVault, EIP712 {
    /// @notice Workflow stop reason: a step's deadline passed and the consumer reclaimed it.
    uint16 public constant REASON_EXPIRED = 0xFFFE;
    /// @notice Workflow stop reason: the grant refused the next step (frozen, revoked, exhausted…).
    uint16 public constant REASON_NEXT_STEP_REFUSED = 0xFFFF;
    /// @notice Longest a job may stay open.
    uint40 public constant MAX_JOB_TTL = 90 days;
    /// @notice Most steps in one workflow.
    uint256 public constant MAX_STEPS = 16;
    /// @notice failJob reason codes from here up are not the consumer's fault: the use is given back.
    uint16 public constant ORACLE_FAULT_FROM = 0x100;

    /// @notice Raised when a later workflow step could not be opened for lack of gas.
    error StepOpeningFailed(uint256 workflowId, uint8 step);

    IIdentityRegistry private immutable _identity;
    IAuthorizations private immutable _authorizations;
    IAssetRegistry private immutable _assets;
    address private immutable _treasury;
    uint40 private immutable _acceptTimeout;

    mapping(uint256 jobId => JobCore) private _core;
    mapping(uint256 jobId => JobExec) private _exec;
    mapping(uint256 workflowId => Workflow) private _workflows;
    mapping(uint256 workflowId => uint16[]) private _workflowOps;
    mapping(uint256 workflowId => bytes32[]) private _workflowParams;
    mapping(uint256 jobId => bytes32) private _released;
    mapping(uint256 grantId => bool) private _completedUnder;
    mapping(address oracle => uint32) private _failures;
    uint32 private _workflowCount;

    /// @param treasury_ payee of the operator share.
    /// @param acceptTimeout_ seconds of oracle silence after which another oracle may take a job over.
    constructor(
        IIdentityRegistry identity,
        IAuthorizations authorizations,
        IAssetRegistry assets,
        address treasury_,
        uint40 acceptTimeout_
    ) EIP712("TDS Jobs", "1") {
        if (treasury_ == address(0)) revert InvalidTreasury();
        _identity = identity;
        _authorizations = authorizations;
        _assets = assets;
        _treasury = treasury_;
        _acceptTimeout = acceptTimeout_;
    }

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
        if (!_identity.hasParticipantRole(msg.sender, TdsRoles.COMPUTE_PROVIDER)) revert NotComputeProvider(msg.sender);
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
    function completeJob(uint256 jobId, bytes calldata resultCid, bytes32 resultHash, bytes calldata signature)
        external
    {
        (JobCore storage c, JobExec storage e) = _releasedJob(jobId);
        if (e.oracle != msg.sender) revert NotJobOracle(jobId, msg.sender);
        if (!_identity.hasParticipantRole(msg.sender, TdsRoles.COMPUTE_PROVIDER)) revert NotComputeProvider(msg.sender);
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
        IAuthorizations.Grant memory g = _authorizations.grantOf(c.grantId);
        (address holder,,,) = _assets.termsOf(g.assetId);
        emit JobSettledWithoutOracle(jobId, msg.sender, e.oracle);
        _chargeFailure(e.oracle, jobId, 0);
        _complete(jobId, c, e, msg.sender, _released[jobId], resultCid, holder);
    }

    /// @inheritdoc IJobs
    function failJob(uint256 jobId, uint16 reasonCode) external {
        (JobCore storage c, JobExec storage e) = _acceptedBy(jobId, msg.sender);
        c.status = JobStatus.Failed;
        emit JobFailed(jobId, msg.sender, reasonCode);
        IAuthorizations.Grant memory g = _authorizations.grantOf(c.grantId);
        _release(g.consumer, g.paymentToken, jobId, c.amount, Share.Refund);
        if (reasonCode >= ORACLE_FAULT_FROM) {
            _authorizations.restoreUse(c.grantId, jobId);
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
        IAuthorizations.Grant memory g = _authorizations.grantOf(c.grantId);
        if (g.consumer != msg.sender) revert NotJobConsumer(jobId, msg.sender);
        if (block.timestamp <= c.deadline) revert JobNotExpired(jobId, c.deadline, block.timestamp);
        c.status = JobStatus.Reclaimed;
        emit JobReclaimed(jobId, msg.sender, c.amount);
        _release(msg.sender, g.paymentToken, jobId, c.amount, Share.Refund);
        // abandoned: not the consumer's doing, so the use comes back; an oracle that accepted
        // and went silent is charged a failure
        _authorizations.restoreUse(c.grantId, jobId);
        JobExec storage e = _exec[jobId];
        if (s == JobStatus.Accepted) _chargeFailure(e.oracle, jobId, REASON_EXPIRED);
        if (e.workflowId != 0) _stop(e.workflowId, e.step, REASON_EXPIRED, g);
    }

    // ------------------------------------------------------------------ workflows

    /// @inheritdoc IJobs
    function requestWorkflow(
        uint256 grantId,
        uint16[] calldata operations,
        bytes32[] calldata paramsHashes,
        uint40 stepTimeout
    ) external payable returns (uint256 workflowId) {
        uint256 n = operations.length;
        if (n == 0 || n > MAX_STEPS || n != paramsHashes.length) revert InvalidWorkflow(n, paramsHashes.length);
        if (stepTimeout == 0 || stepTimeout > MAX_JOB_TTL) revert InvalidDeadline(stepTimeout, block.timestamp);
        IAuthorizations.Grant memory g = _authorizations.grantOf(grantId);
        if (g.consumer != msg.sender) revert IAuthorizations.NotGrantConsumer(grantId, msg.sender);
        uint96 total = SafeCast.toUint96(uint256(g.pricePerUse) * n);
        if (_workflowCount == type(uint32).max) revert TooManyWorkflows();
        workflowId = ++_workflowCount;
        _workflows[workflowId] = Workflow({
            grantId: uint64(grantId),
            stepCount: uint8(n),
            current: 0,
            status: WorkflowStatus.Running,
            stepTimeout: stepTimeout,
            escrowLeft: total,
            consumer: msg.sender
        });
        _workflowOps[workflowId] = operations;
        _workflowParams[workflowId] = paramsHashes;
        emit WorkflowRequested(workflowId, grantId, msg.sender, operations, paramsHashes, stepTimeout);
        _collect(_openFirstStep(workflowId, grantId, operations[0]), msg.sender, total);
    }

    /// @notice The operations and parameter hashes of every step of `workflowId`.
    function workflowSteps(uint256 workflowId)
        external
        view
        returns (uint16[] memory operations, bytes32[] memory paramsHashes)
    {
        return (_workflowOps[workflowId], _workflowParams[workflowId]);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IJobs
    function jobOf(uint256 jobId) external view returns (JobCore memory core, JobExec memory exec) {
        core = _core[jobId];
        if (core.status == JobStatus.None) revert UnknownJob(jobId);
        exec = _exec[jobId];
    }

    /// @inheritdoc IJobs
    function workflowOf(uint256 workflowId) external view returns (Workflow memory w) {
        w = _workflows[workflowId];
        if (w.status == WorkflowStatus.None) revert UnknownWorkflow(workflowId);
    }

    /// @inheritdoc IJobs
    function resultDigest(uint256 jobId, bytes32 resultHash, bytes32 resultCidHash) public view returns (bytes32) {
        return _hashTypedDataV4(TdsTypeHashes.hashJobResult(jobId, resultHash, resultCidHash));
    }

    /// @inheritdoc IJobs
    function checkRelease(uint256 jobId, address oracle) external view {
        (JobCore storage c, JobExec storage e) = _acceptedBy(jobId, oracle);
        _checkRelease(jobId, c, e.oracle);
    }

    /// @inheritdoc IJobs
    function releasedHash(uint256 jobId) external view returns (bytes32) {
        return _released[jobId];
    }

    /// @inheritdoc IJobs
    function oracleFailures(address oracle) external view returns (uint32) {
        return _failures[oracle];
    }

    /// @inheritdoc IJobs
    function hasCompletedJob(uint256 grantId) external view returns (bool) {
        return _completedUnder[grantId];
    }

    /// @inheritdoc IJobs
    function acceptTimeout() external view returns (uint40) {
        return _acceptTimeout;
    }

    /// @inheritdoc IJobs
    function treasury() external view returns (address) {
        return _treasury;
    }

    // ------------------------------------------------------------------ internals

    /// @dev An Accepted job (by `oracle`, unless it is address(0)).
    function _acceptedBy(uint256 jobId, address oracle)
        private
        view
        returns (JobCore storage c, JobExec storage e)
    {
        c = _core[jobId];
        e = _exec[jobId];
        JobStatus s = c.status;
        if (s != JobStatus.Accepted) {
            if (s == JobStatus.None) revert UnknownJob(jobId);
            if (s == JobStatus.Released) revert AnswerAlreadyReleased(jobId);
            revert JobNotOpen(jobId, s);
        }
        if (oracle != address(0) && e.oracle != oracle) revert NotJobOracle(jobId, oracle);
    }

    /// @dev A Released job.
    function _releasedJob(uint256 jobId) private view returns (JobCore storage c, JobExec storage e) {
        c = _core[jobId];
        e = _exec[jobId];
        JobStatus s = c.status;
        if (s != JobStatus.Released) {
            if (s == JobStatus.None) revert UnknownJob(jobId);
            if (s == JobStatus.Accepted) revert ResultNotReleased(jobId);
            revert JobNotOpen(jobId, s);
        }
    }

    /// @dev Every term a release needs, now: deadline, the grant's and asset's state and the
    ///      participants' roles (Authorizations.checkRelease), and the oracle's role.
    function _checkRelease(uint256 jobId, JobCore storage c, address oracle)
        private
        view
        returns (address holder, address consumer)
    {
        if (block.timestamp > c.deadline) revert JobDeadlinePassed(jobId, c.deadline, block.timestamp);
        (holder, consumer) = _authorizations.checkRelease(c.grantId);
        if (!_identity.hasParticipantRole(oracle, TdsRoles.COMPUTE_PROVIDER)) revert OracleRoleRevoked(jobId, oracle);
    }

    /// @dev Mark `jobId` completed with `resultHash`/`resultCid` (posted by `by`), pay the split
    ///      (compute share to `computePayee`) and advance its workflow.
    function _complete(
        uint256 jobId,
        JobCore storage c,
        JobExec storage e,
        address by,
        bytes32 resultHash,
        bytes calldata resultCid,
        address computePayee
    ) private {
        c.status = JobStatus.Completed;
        emit JobCompleted(jobId, by, resultHash, resultCid);
        uint64 grantId = c.grantId;
        if (!_completedUnder[grantId]) _completedUnder[grantId] = true;
        _settle(jobId, grantId, c.amount, computePayee);
        uint32 workflowId = e.workflowId;
        if (workflowId != 0) _advance(workflowId, e.step);
    }

    /// @dev Count a failure or abandonment against `oracle` (visible to monitoring).
    function _chargeFailure(address oracle, uint256 jobId, uint16 reasonCode) private {
        uint32 n = _failures[oracle] + 1;
        _failures[oracle] = n;
        emit OracleFailureRecorded(oracle, jobId, reasonCode, n);
    }

    /// @dev Release the escrowed `amount` of job `jobId` by the certificate's basis points.
    function _settle(uint256 jobId, uint64 grantId, uint96 amount, address oracle) private {
        IAuthorizations.Grant memory g = _authorizations.grantOf(grantId);
        (address holder,,, uint64 split) = _assets.termsOf(g.assetId);
        (uint256 p, uint256 a, uint256 c, uint256 o) = RevenueSplit.shares(amount, split);
        address algorithm = g.algorithmProvider;
        if (algorithm == address(0)) {
            p += a;
            a = 0;
        }
        address token = g.paymentToken;
        _release(holder, token, jobId, p, Share.Provider);
        _release(algorithm, token, jobId, a, Share.AlgorithmProvider);
        _release(oracle, token, jobId, c, Share.ComputeProvider);
        _release(_treasury, token, jobId, o, Share.Operator);
    }

    /// @dev Count the first step's use (every term checked, reverting) and open it; returns the payment token.
    function _openFirstStep(uint256 workflowId, uint256 grantId, uint16 operation) private returns (address) {
        (uint32 useIndex, uint256 assetId, address token, uint96 price) =
            _authorizations.consume(grantId, msg.sender, operation);
        _openStep(workflowId, 0, useIndex, assetId, token, price);
        return token;
    }

    /// @dev Record step `step` of `workflowId` as a job paid from the workflow's escrow.
    function _openStep(uint256 workflowId, uint8 step, uint32 useIndex, uint256 assetId, address token, uint96 price)
        private
    {
        Workflow storage w = _workflows[workflowId];
        uint256 jobId = (uint256(w.grantId) << 32) | useIndex;
        uint40 deadline = uint40(block.timestamp) + w.stepTimeout;
        w.escrowLeft -= price;
        w.current = step;
        _core[jobId] = JobCore(w.grantId, price, deadline, JobStatus.Requested, _workflowOps[workflowId][step]);
        _exec[jobId] = JobExec(address(0), 0, uint32(workflowId), step);
        _emitStepRequested(jobId, workflowId, step, assetId, token);
        emit WorkflowStepOpened(workflowId, step, jobId);
    }

    /// @dev JobRequested for a workflow step, read back from the records just written (stack depth).
    function _emitStepRequested(uint256 jobId, uint256 workflowId, uint8 step, uint256 assetId, address token)
        private
    {
        JobCore memory c = _core[jobId];
        emit JobRequested(
            jobId,
            c.grantId,
            _workflows[workflowId].consumer,
            assetId,
            c.operation,
            _workflowParams[workflowId][step],
            token,
            c.amount,
            c.deadline
        );
    }

    /// @dev A step completed: open the next one, or finish the workflow.
    function _advance(uint256 workflowId, uint8 step) private {
        Workflow storage w = _workflows[workflowId];
        uint8 next = step + 1;
        if (next == w.stepCount) {
            w.status = WorkflowStatus.Completed;
            emit WorkflowCompleted(workflowId);
            return;
        }
        try _authorizations.consume(w.grantId, w.consumer, _workflowOps[workflowId][next]) returns (
            uint32 useIndex, uint256 assetId, address token, uint96 price
        ) {
            _openStep(workflowId, next, useIndex, assetId, token, price);
        } catch (bytes memory reason) {
            if (reason.length == 0) revert StepOpeningFailed(workflowId, next);
            _stop(workflowId, next, REASON_NEXT_STEP_REFUSED, _authorizations.grantOf(w.grantId));
        }
    }

    /// @dev Stop a workflow and refund what was paid for the steps never opened.
    function _stop(uint256 workflowId, uint8 step, uint16 reasonCode, IAuthorizations.Grant memory g) private {
        Workflow storage w = _workflows[workflowId];
        uint96 refund = w.escrowLeft;
        w.escrowLeft = 0;
        w.status = WorkflowStatus.Failed;
        emit WorkflowStopped(workflowId, step, reasonCode, refund);
        _release(g.consumer, g.paymentToken, 0, refund, Share.Refund);
    }
}
