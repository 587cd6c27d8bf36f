// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";
import {IAuthorizations} from "../interfaces/IAuthorizations.sol";
import {IIdentityRegistry} from "../interfaces/IIdentityRegistry.sol";
import {IJobs} from "../interfaces/IJobs.sol";
import {RevenueSplit} from "../libraries/RevenueSplit.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";
import {TdsTypeHashes} from "../libraries/TdsTypeHashes.sol";
import {RevenueVault} from "../payments/RevenueVault.sol";

/// @title JobsCore
/// @notice The storage, constants, views and shared internals of the Jobs contract (see Jobs):
///         job records, escrow and the four-way split, release checks and oracle failure counts.
abstract contract JobsCore is IJobs, RevenueVault, EIP712 {
    /// @notice Workflow stop reason: a step's deadline passed and the consumer reclaimed it.
    uint16 public constant REASON_EXPIRED = 0xFFFE;
    /// @notice Workflow stop reason: the grant refused the next step (frozen, revoked, exhausted…).
    uint16 public constant REASON_NEXT_STEP_REFUSED = 0xFFFF;
    /// @notice Longest a job may stay open.
    uint40 public constant MAX_JOB_TTL = 90 days;
    /// @notice Most steps in one workflow.
    uint256 public constant MAX_STEPS = 16;
    /// @notice Most jobs in one acceptJobs or completeJobs batch.
    uint256 public constant MAX_BATCH = 64;
    /// @notice failJob reason codes from here up are not the consumer's fault: the use is given back.
    uint16 public constant ORACLE_FAULT_FROM = 0x100;

    IIdentityRegistry internal immutable _identity;
    IAuthorizations internal immutable _authorizations;
    IAssetRegistry internal immutable _assets;
    address internal immutable _treasury;
    uint40 internal immutable _acceptTimeout;

    mapping(uint256 jobId => JobCore) internal _core;
    mapping(uint256 jobId => JobExec) internal _exec;
    mapping(uint256 workflowId => Workflow) internal _workflows;
    mapping(uint256 workflowId => uint16[]) internal _workflowOps;
    mapping(uint256 workflowId => bytes32[]) internal _workflowParams;
    mapping(uint256 jobId => bytes32) internal _released;
    mapping(uint256 grantId => bool) internal _completedUnder;
    mapping(address oracle => uint32) internal _failures;
    uint32 internal _workflowCount;

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

    // ------------------------------------------------------------------ views

    /// @inheritdoc IJobs
    function jobOf(uint256 jobId) external view returns (JobCore memory core, JobExec memory exec) {
        core = _core[jobId];
        if (core.status == JobStatus.None) revert UnknownJob(jobId);
        exec = _exec[jobId];
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
        internal
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
    function _releasedJob(uint256 jobId) internal view returns (JobCore storage c, JobExec storage e) {
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
        internal
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
    ) internal {
        c.status = JobStatus.Completed;
        emit JobCompleted(jobId, by, resultHash, resultCid);
        uint64 grantId = c.grantId;
        if (!_completedUnder[grantId]) _completedUnder[grantId] = true;
        _settle(jobId, grantId, c.amount, computePayee);
        uint32 workflowId = e.workflowId;
        if (workflowId != 0) _advance(workflowId, e.step);
    }

    /// @dev Count a failure or abandonment against `oracle` (visible to monitoring).
    function _chargeFailure(address oracle, uint256 jobId, uint16 reasonCode) internal {
        uint32 n = _failures[oracle] + 1;
        _failures[oracle] = n;
        emit OracleFailureRecorded(oracle, jobId, reasonCode, n);
    }

    /// @dev Release the escrowed `amount` of job `jobId` by the certificate's basis points.
    function _settle(uint256 jobId, uint64 grantId, uint96 amount, address oracle) internal {
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

    /// @dev A workflow step completed: open the next one or finish (JobWorkflows).
    function _advance(uint256 workflowId, uint8 step) internal virtual;

}
