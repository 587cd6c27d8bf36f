// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
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
///         Storage: one slot per job (`Job`), written fresh by requestJob and updated in place by
///         every later step, so accepting a job writes no new slot. The grant id is the job id's
///         upper bits (job id = grantId << 32 | use index) and the escrowed amount is the grant's
///         price (immutable; every job under a grant, workflow steps too, escrows exactly that), so
///         neither is stored; a workflow step's workflow id and step number are kept apart
///         (`_steps`, written only for workflow jobs). jobOf reassembles the JobCore/JobExec view.
///         Released hashes live in the job's oracle's release slots (`_releasedHashes`), reused once
///         their job completes: a busy oracle's releases overwrite used slots (5,000 gas) instead of
///         creating one per job (22,100). The job's slot keeps which one (`releaseSlot`).
abstract contract JobsCore is IJobs, IJobDisputes, RevenueVault, EIP712 {
    /// @dev A job's one storage slot (160 + 32 + 32 + 8 + 8 + 8 + 8 = 256 bits). Timestamps are
    ///      uint32 (seconds, good until 2106; a deadline is at most MAX_JOB_TTL ahead).
    struct Job {
        address oracle; // 0 until accepted
        uint32 acceptedAt; // when accepted; once Released: when the release was recorded
        uint32 deadline;
        JobStatus status;
        uint8 operation; // one bit of Operations.ALL (127), checked by Authorizations.consume
        bool inWorkflow; // a workflow step: its workflow id and step are in _steps
        uint8 releaseSlot; // once Released: its hash is _releasedHashes[oracle][releaseSlot]
    }

    /// @dev A workflow step's place (written only for workflow jobs).
    struct Step {
        uint32 workflowId;
        uint8 step;
    }

    /// @dev A grant's settlement terms, loaded once per grant and transaction (a batch of
    ///      completions under one grant reads them once: nothing a completion does changes them).
    struct Terms {
        uint64 grantId; // 0: nothing loaded yet (grant ids start at 1)
        uint32 window; // the grant's dispute window (seconds)
        uint64 split; // the certificate's basis points
        address holder; // the certificate's holder
        IAuthorizations.Grant g;
    }

    /// @dev What a batch of releases checked once per grant and per oracle (the checks are views
    ///      and nothing in the batch changes their inputs, so each job's outcome is the same).
    struct ReleaseMemo {
        uint256 grantId;
        address holder;
        address oracle;
    }

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

    mapping(uint256 jobId => Job) internal _jobs;
    mapping(uint256 jobId => Step) internal _steps;
    mapping(uint256 workflowId => Workflow) internal _workflows;
    mapping(uint256 workflowId => uint16[]) internal _workflowOps;
    mapping(uint256 workflowId => bytes32[]) internal _workflowParams;
    /// @dev Per oracle, the released hashes of its Released jobs, by release slot (0..254). A slot is
    ///      never cleared: once its job completes it is reused by a later release.
    mapping(address oracle => mapping(uint256 slot => bytes32)) internal _releasedHashes;
    /// @dev 0 until a job under the grant completes; then 1 + the dispute window (seconds) read
    ///      from the certificate's template at that first completion and kept for the grant, so
    ///      later completions pay no template lookup.
    mapping(uint256 grantId => uint64) internal _grantWindow;
    mapping(address oracle => uint32) internal _failures;
    uint32 internal _workflowCount;
    /// @dev Appended after the older state, so every earlier slot keeps its number.
    mapping(uint256 jobId => Hold) internal _holds;
    /// @dev Per oracle: bit i (i < 255) set while release slot i holds a Released job's hash; bit 255
    ///      set at the first release and never cleared, so the word never returns to zero (a zero
    ///      word would make the next release pay for a new storage slot).
    mapping(address oracle => uint256) internal _releaseSlotsInUse;

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
        Job memory j = _jobs[jobId];
        if (j.status == JobStatus.None) revert UnknownJob(jobId);
        uint64 grantId = _grantIdOf(jobId);
        core = JobCore(grantId, _grantOf(grantId).pricePerUse, j.deadline, j.status, uint16(j.operation));
        exec.oracle = j.oracle;
        exec.acceptedAt = j.acceptedAt;
        if (j.inWorkflow) (exec.workflowId, exec.step) = (_steps[jobId].workflowId, _steps[jobId].step);
    }

    /// @inheritdoc IJobs
    function resultDigest(uint256 jobId, bytes32 resultHash, bytes32 resultCidHash) public view returns (bytes32) {
        return _hashTypedDataV4(TdsTypeHashes.hashJobResult(jobId, resultHash, resultCidHash));
    }

    /// @inheritdoc IJobs
    function checkRelease(uint256 jobId, address oracle) external view {
        _checkRelease(jobId, _acceptedBy(jobId, oracle), _newMemo());
    }

    /// @inheritdoc IJobs
    function releasedHash(uint256 jobId) external view returns (bytes32) {
        Job storage j = _jobs[jobId];
        return j.status == JobStatus.Released ? _releasedHashOf(j) : bytes32(0);
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

    /// @dev The grant a job was requested under (job id = grantId << 32 | use index).
    function _grantIdOf(uint256 jobId) internal pure returns (uint64) {
        return uint64(jobId >> 32);
    }

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
    function _acceptedBy(uint256 jobId, address oracle) internal view returns (Job storage j) {
        j = _jobs[jobId];
        JobStatus s = j.status;
        if (s != JobStatus.Accepted) {
            if (s == JobStatus.None) revert UnknownJob(jobId);
            if (s == JobStatus.Released) revert AnswerAlreadyReleased(jobId);
            revert JobNotOpen(jobId, s);
        }
        if (oracle != address(0) && j.oracle != oracle) revert NotJobOracle(jobId, oracle);
    }

    /// @dev A Released job.
    function _releasedJob(uint256 jobId) internal view returns (Job storage j) {
        j = _jobs[jobId];
        JobStatus s = j.status;
        if (s != JobStatus.Released) {
            if (s == JobStatus.None) revert UnknownJob(jobId);
            if (s == JobStatus.Accepted) revert ResultNotReleased(jobId);
            revert JobNotOpen(jobId, s);
        }
    }

    /// @dev A memo that has checked nothing yet (no grant id reaches type(uint256).max >> 32).
    function _newMemo() internal pure returns (ReleaseMemo memory m) {
        m.grantId = type(uint256).max;
    }

    /// @dev Every term a release of the Accepted job `j` needs, now: deadline, the grant's and
    ///      asset's state and the participants' roles (Authorizations.checkRelease), and the
    ///      oracle's role; leaves the asset's holder in `m.holder`. The grant's and the oracle's
    ///      checks are skipped when `m` holds them from an earlier job of the same transaction.
    function _checkRelease(uint256 jobId, Job storage j, ReleaseMemo memory m) internal view {
        uint32 deadline = j.deadline;
        if (block.timestamp > deadline) revert JobDeadlinePassed(jobId, deadline, block.timestamp);
        uint64 grantId = _grantIdOf(jobId);
        if (grantId != m.grantId) {
            (m.holder,) = _authorizations.checkRelease(grantId);
            m.grantId = grantId;
        }
        address oracle = j.oracle;
        if (oracle != m.oracle) {
            if (!_identity.hasParticipantRole(oracle, TdsRoles.COMPUTE_PROVIDER)) revert OracleRoleRevoked(jobId, oracle);
            m.oracle = oracle;
        }
        _freeReleaseSlot(oracle);
    }

    /// @dev `oracle`'s release slots in use and the lowest free one (as a bit); reverts if all
    ///      255 hold answers it has not posted yet.
    function _freeReleaseSlot(address oracle) internal view returns (uint256 used, uint256 free) {
        used = _releaseSlotsInUse[oracle];
        unchecked {
            free = ~used & (used + 1); // the lowest clear bit
        }
        if (free == 0 || free == 1 << 255) revert ReleaseSlotsFull(oracle);
    }

    /// @dev Keep `resultHash` in a free release slot of `oracle`; returns the slot.
    function _takeReleaseSlot(address oracle, bytes32 resultHash) internal returns (uint8 slot) {
        (uint256 used, uint256 free) = _freeReleaseSlot(oracle);
        slot = uint8(Math.log2(free));
        _releaseSlotsInUse[oracle] = used | free | (1 << 255);
        _releasedHashes[oracle][slot] = resultHash;
    }

    /// @dev The hash released for the Released job `j`.
    function _releasedHashOf(Job storage j) internal view returns (bytes32) {
        return _releasedHashes[j.oracle][j.releaseSlot];
    }

    /// @dev Mark `jobId` completed with `resultHash`/`resultCid` (posted by `by`), pay the split
    ///      (compute share to `computePayee`), free its release slot and advance its workflow.
    function _complete(
        uint256 jobId,
        Job storage j,
        address by,
        bytes32 resultHash,
        bytes calldata resultCid,
        address computePayee,
        Terms memory t
    ) internal {
        j.status = JobStatus.Completed;
        address oracle = j.oracle;
        _releaseSlotsInUse[oracle] &= ~(uint256(1) << j.releaseSlot); // the slot's hash may be overwritten now
        emit JobCompleted(jobId, by, resultHash, resultCid);
        _settle(jobId, _grantIdOf(jobId), oracle, computePayee, t);
        if (j.inWorkflow) _advance(_steps[jobId].workflowId, _steps[jobId].step);
    }

    /// @dev Count a failure or abandonment against `oracle` (visible to monitoring).
    function _chargeFailure(address oracle, uint256 jobId, uint16 reasonCode) internal {
        uint32 n = _failures[oracle] + 1;
        _failures[oracle] = n;
        emit OracleFailureRecorded(oracle, jobId, reasonCode, n);
    }

    /// @dev Release the escrowed amount of job `jobId` (the grant's price) by the certificate's
    ///      basis points, the compute share to `payee`; under a dispute window only the operator's
    ///      share, the rest is held (JobDisputes; `jobOracle` is the job's accepting oracle).
    function _settle(uint256 jobId, uint64 grantId, address jobOracle, address payee, Terms memory t) internal {
        _loadTerms(t, grantId);
        if (t.window == 0) _paySplit(jobId, t, payee);
        else _hold(jobId, t, payee != jobOracle);
    }

    /// @dev Fill `t` with `grantId`'s settlement terms unless it holds them already.
    function _loadTerms(Terms memory t, uint64 grantId) internal {
        if (t.grantId == grantId) return;
        t.g = _grantOf(grantId);
        t.window = _windowOf(grantId, t.g.assetId);
        (t.holder, t.split) = _termsOf(t.g.assetId);
        t.grantId = grantId;
    }

    /// @dev Credit the four shares of the grant's price to holder, algorithm provider, `oracle` and treasury.
    function _paySplit(uint256 jobId, Terms memory t, address oracle) private {
        IAuthorizations.Grant memory g = t.g;
        address holder = t.holder;
        (uint256 p, uint256 a, uint256 c, uint256 o) = RevenueSplit.shares(g.pricePerUse, t.split);
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

    /// @dev Credit the operator's share of the grant's price and hold the rest for `window` seconds.
    function _hold(uint256 jobId, Terms memory t, bool computeToHolder) private {
        IAuthorizations.Grant memory g = t.g;
        uint96 amount = g.pricePerUse;
        (,,, uint256 o) = RevenueSplit.shares(amount, t.split);
        uint96 held = amount - uint96(o);
        uint40 until = uint40(block.timestamp) + t.window;
        _holds[jobId] = Hold(held, until, HoldStatus.Held, computeToHolder);
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
