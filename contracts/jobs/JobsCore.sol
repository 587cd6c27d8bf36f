// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";
import {IAuthorizations} from "../interfaces/IAuthorizations.sol";
import {ICertificateTemplates} from "../interfaces/ICertificateTemplates.sol";
import {IIdentityRegistry} from "../interfaces/IIdentityRegistry.sol";
import {IJobDisputes} from "../interfaces/IJobDisputes.sol";
import {IJobs} from "../interfaces/IJobs.sol";
import {RevenueSplit} from "../libraries/RevenueSplit.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";
import {TdsTypeHashes} from "../libraries/TdsTypeHashes.sol";
import {RevenueVault} from "../payments/RevenueVault.sol";

/// @title JobsCore
/// @notice The storage, constants, views and shared internals of the Jobs contract (see Jobs):
///         job records, escrow and the four-way split (or, under a dispute window, the operator's
///         share paid and the rest held: JobDisputes), release checks and oracle failure counts.
abstract contract JobsCore is IJobs, IJobDisputes, RevenueVault, EIP712 {
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
    ICertificateTemplates internal immutable _templates;
    address internal immutable _treasury;
    uint40 internal immutable _acceptTimeout;

    mapping(uint256 jobId => JobCore) internal _core;
    mapping(uint256 jobId => JobExec) internal _exec;
    mapping(uint256 workflowId => Workflow) internal _workflows;
    mapping(uint256 workflowId => uint16[]) internal _workflowOps;
    mapping(uint256 workflowId => bytes32[]) internal _workflowParams;
    mapping(uint256 jobId => bytes32) internal _released;
    /// @dev 0 until a job under the grant completes; then 1 + the dispute window (seconds) read
    ///      from the certificate's template at that first completion and kept for the grant, so
    ///      later completions pay no template lookup.
    mapping(uint256 grantId => uint64) internal _grantWindow;
    mapping(address oracle => uint32) internal _failures;
    uint32 internal _workflowCount;
    /// @dev Appended after the older state, so every earlier slot keeps its number.
    mapping(uint256 jobId => Hold) internal _holds;

    /// @param templates the CertificateTemplates catalogue (dispute windows).
    /// @param treasury_ payee of the operator share.
    /// @param acceptTimeout_ seconds of oracle silence after which another oracle may take a job over.
    constructor(
        IIdentityRegistry identity,
        IAuthorizations authorizations,
        IAssetRegistry assets,
        ICertificateTemplates templates,
        address treasury_,
        uint40 acceptTimeout_
    ) EIP712("TDS Jobs", "1") {
        if (treasury_ == address(0)) revert InvalidTreasury();
        _identity = identity;
        _authorizations = authorizations;
        _assets = assets;
        _templates = templates;
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
        return _grantWindow[grantId] != 0;
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

    /// @dev The grant record (one call site for the whole contract keeps the code small).
    function _grantOf(uint256 grantId) internal view returns (IAuthorizations.Grant memory) {
        return _authorizations.grantOf(grantId);
    }

    /// @dev The certificate's current holder and its split.
    function _termsOf(uint256 assetId) internal view returns (address holder, uint64 split) {
        (holder,,, split) = _assets.termsOf(assetId);
    }

    /// @dev Give a grant use back (the job counted for nothing).
    function _restoreUse(uint256 grantId, uint256 jobId) internal {
        _authorizations.restoreUse(grantId, jobId);
    }

    /// @dev Revert unless `account` holds the COMPUTE_PROVIDER participant role.
    function _requireComputeProvider(address account) internal view {
        if (!_identity.hasParticipantRole(account, TdsRoles.COMPUTE_PROVIDER)) revert NotComputeProvider(account);
    }

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
        _settle(jobId, c.grantId, c.amount, computePayee);
        uint32 workflowId = e.workflowId;
        if (workflowId != 0) _advance(workflowId, e.step);
    }

    /// @dev Count a failure or abandonment against `oracle` (visible to monitoring).
    function _chargeFailure(address oracle, uint256 jobId, uint16 reasonCode) internal {
        uint32 n = _failures[oracle] + 1;
        _failures[oracle] = n;
        emit OracleFailureRecorded(oracle, jobId, reasonCode, n);
    }

    /// @dev Release the escrowed `amount` of job `jobId` by the certificate's basis points; under
    ///      a dispute window only the operator's share, the rest is held (JobDisputes).
    function _settle(uint256 jobId, uint64 grantId, uint96 amount, address oracle) internal {
        IAuthorizations.Grant memory g = _grantOf(grantId);
        uint32 window = _windowOf(grantId, g.assetId);
        if (window == 0) _paySplit(jobId, g, amount, oracle);
        else _hold(jobId, g, amount, window, oracle);
    }

    /// @dev Credit the four shares of `amount` to holder, algorithm provider, `oracle` and treasury.
    function _paySplit(uint256 jobId, IAuthorizations.Grant memory g, uint96 amount, address oracle) private {
        (address holder, uint64 split) = _termsOf(g.assetId);
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

    /// @dev Credit the operator's share of `amount` and hold the rest for `window` seconds.
    function _hold(uint256 jobId, IAuthorizations.Grant memory g, uint96 amount, uint32 window, address oracle)
        private
    {
        (, uint64 split) = _termsOf(g.assetId);
        (,,, uint256 o) = RevenueSplit.shares(amount, split);
        uint96 held = amount - uint96(o);
        uint40 until = uint40(block.timestamp) + window;
        _holds[jobId] = Hold(held, until, HoldStatus.Held, oracle != _exec[jobId].oracle);
        emit PaymentHeld(jobId, held, until);
        _release(_treasury, g.paymentToken, jobId, o, Share.Operator);
    }

    /// @dev The grant's dispute window: fixed at its first completion from the certificate's template.
    function _windowOf(uint64 grantId, uint256 assetId) private returns (uint32 window) {
        uint64 memo = _grantWindow[grantId];
        if (memo != 0) return uint32(memo - 1);
        window = _templates.disputeWindow(_assets.assetOf(assetId).templateId);
        _grantWindow[grantId] = uint64(window) + 1;
    }

    /// @dev A workflow step completed: open the next one or finish (JobWorkflows).
    function _advance(uint256 workflowId, uint8 step) internal virtual;

}
