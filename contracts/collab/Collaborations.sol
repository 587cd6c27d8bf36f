// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";
import {IAuthorizations} from "../interfaces/IAuthorizations.sol";
import {ICollaborations} from "../interfaces/ICollaborations.sol";
import {IIdentityRegistry} from "../interfaces/IIdentityRegistry.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {Operations} from "../libraries/Operations.sol";
import {RevenueSplit} from "../libraries/RevenueSplit.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";
import {RevenueVault} from "../payments/RevenueVault.sol";

/// @title Collaborations
/// @notice Collaboration jobs across providers, run as a DAG of steps (see ICollaborations).
///         Holds the JOBS role in Authorizations (to count and give back grant uses) and its own
///         escrow and pull balances (RevenueVault).
contract Collaborations is ICollaborations, RevenueVault {
    /// @notice Most steps in one collaboration.
    uint256 public constant MAX_STEPS = 16;
    /// @notice Most grants one step may consume.
    uint256 public constant MAX_GRANTS_PER_STEP = 8;
    /// @notice Most compute nodes of one step.
    uint256 public constant MAX_NODES_PER_STEP = 8;
    /// @notice Longest a step may stay open.
    uint40 public constant MAX_STEP_TTL = 30 days;
    /// @notice failStep reason codes from here up are the nodes' fault: the uses are given back.
    uint16 public constant NODE_FAULT_FROM = 0x100;
    /// @notice Termination reason: the initiator cancelled after a step's deadline.
    uint16 public constant REASON_CANCELLED = 0xFFFE;

    IIdentityRegistry private immutable _identity;
    IAuthorizations private immutable _authorizations;
    IAssetRegistry private immutable _assets;
    INodeRegistry private immutable _nodeRegistry;
    address private immutable _treasury;

    mapping(uint256 id => Collaboration) private _collabs;
    mapping(uint256 id => mapping(uint8 step => Step)) private _steps;
    mapping(uint256 id => mapping(uint8 step => uint256[])) private _uses; // useId = grantId << 32 | index
    mapping(uint256 id => mapping(uint8 step => uint96[])) private _prices;
    mapping(uint256 id => mapping(uint8 step => address[])) private _stepNodes;
    uint256 private _count;

    constructor(
        IIdentityRegistry identity,
        IAuthorizations authorizations,
        IAssetRegistry assets,
        INodeRegistry nodeRegistry,
        address treasury_
    ) {
        _identity = identity;
        _authorizations = authorizations;
        _assets = assets;
        _nodeRegistry = nodeRegistry;
        _treasury = treasury_;
    }

    // ------------------------------------------------------------------ lifecycle

    /// @inheritdoc ICollaborations
    function requestCollaboration(bytes32 descriptionHash, StepRequest[] calldata steps, uint40 stepTimeout)
        external
        payable
        returns (uint256 id)
    {
        uint256 n = steps.length;
        if (n == 0 || n > MAX_STEPS) revert InvalidCollaboration(n);
        if (stepTimeout == 0 || stepTimeout > MAX_STEP_TTL) revert InvalidCollaboration(n);
        id = ++_count;
        Collaboration storage c = _collabs[id];
        c.initiator = msg.sender;
        c.status = CollabStatus.Running;
        c.stepCount = uint8(n);
        c.stepTimeout = stepTimeout;
        c.descriptionHash = descriptionHash;
        bool tokenSet;
        uint256 total;
        for (uint8 i = 0; i < n; ++i) {
            (uint96 amount, address token) = _recordStep(id, i, steps[i]);
            if (!tokenSet) {
                c.paymentToken = token;
                tokenSet = true;
            } else if (token != c.paymentToken) {
                revert MixedPaymentTokens(steps[i].grantIds[0], c.paymentToken, token);
            }
            total += amount;
        }
        emit CollaborationRequested(id, msg.sender, descriptionHash, uint8(n), c.paymentToken, total, stepTimeout);
        for (uint8 i = 0; i < n; ++i) {
            if (steps[i].dependsOn == 0) _open(id, i);
        }
        _collect(c.paymentToken, msg.sender, total);
    }

    /// @inheritdoc ICollaborations
    function completeStep(uint256 id, uint8 step, bytes32 resultHash, bytes calldata resultCid) external {
        (Collaboration storage c, Step storage s) = _openStepBy(id, step, msg.sender);
        if (resultHash == bytes32(0)) revert EmptyStepResult(id, step);
        if (s.output ? resultCid.length == 0 : resultCid.length != 0) {
            if (s.output) revert EmptyStepResult(id, step);
            revert IntermediateResultPublished(id, step);
        }
        if (!_nodeRegistry.isActive(msg.sender, INodeRegistry.NodeKind.Compute)) {
            revert ComputeNodeNotActive(step, msg.sender);
        }
        if (!_identity.hasParticipantRole(msg.sender, TdsRoles.COMPUTE_PROVIDER)) {
            revert NodeNotComputeProvider(step, msg.sender);
        }
        uint256[] storage uses = _uses[id][step];
        for (uint256 k = 0; k < uses.length; ++k) {
            _authorizations.checkRelease(uses[k] >> 32); // frozen, revoked, offline: no release
        }
        s.status = StepStatus.Completed;
        s.resultHash = resultHash;
        c.completedMask |= uint32(1) << step;
        emit StepCompleted(id, step, msg.sender, resultHash, resultCid);
        _pay(id, step, c.paymentToken, msg.sender);
        _openDependents(id, c);
    }

    /// @inheritdoc ICollaborations
    function failStep(uint256 id, uint8 step, uint16 reasonCode) external {
        (, Step storage s) = _openStepBy(id, step, msg.sender);
        s.status = StepStatus.Failed;
        _terminate(id, step, reasonCode, reasonCode >= NODE_FAULT_FROM);
    }

    /// @inheritdoc ICollaborations
    function cancel(uint256 id) external {
        Collaboration storage c = _running(id);
        if (c.initiator != msg.sender) revert NotInitiator(id, msg.sender);
        uint8 stopped;
        for (uint8 i = 0; i < c.stepCount; ++i) {
            Step storage s = _steps[id][i];
            if (s.status != StepStatus.Open) continue;
            if (block.timestamp <= s.deadline) revert StepStillRunning(id, i, s.deadline);
            stopped = i;
        }
        _terminate(id, stopped, REASON_CANCELLED, true);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ICollaborations
    function checkStep(uint256 id, uint8 step, uint256 grantId) external view {
        _running(id);
        Step storage s = _steps[id][step];
        if (s.status != StepStatus.Open) revert StepNotOpen(id, step, s.status);
        if (block.timestamp > s.deadline) revert StepDeadlinePassed(id, step, s.deadline);
        uint256[] storage uses = _uses[id][step];
        for (uint256 k = 0; k < uses.length; ++k) {
            if (uses[k] >> 32 == grantId) {
                _authorizations.checkRelease(grantId);
                return;
            }
        }
        revert GrantNotInStep(id, step, grantId);
    }

    /// @inheritdoc ICollaborations
    function collaborationOf(uint256 id) external view returns (Collaboration memory c) {
        c = _collabs[id];
        if (c.status == CollabStatus.None) revert UnknownCollaboration(id);
    }

    /// @inheritdoc ICollaborations
    function stepOf(uint256 id, uint8 step)
        external
        view
        returns (Step memory s, uint256[] memory grantIds, address[] memory nodes)
    {
        if (_collabs[id].status == CollabStatus.None) revert UnknownCollaboration(id);
        s = _steps[id][step];
        if (s.status == StepStatus.None) revert InvalidStep(step);
        uint256[] storage uses = _uses[id][step];
        grantIds = new uint256[](uses.length);
        for (uint256 k = 0; k < uses.length; ++k) grantIds[k] = uses[k] >> 32;
        nodes = _stepNodes[id][step];
    }

    /// @inheritdoc ICollaborations
    function collaborationCount() external view returns (uint256) {
        return _count;
    }

    // ------------------------------------------------------------------ internals

    /// @dev Check step `i`'s shape and nodes, consume its grants; returns its escrow and token.
    function _recordStep(uint256 id, uint8 i, StepRequest calldata r) private returns (uint96 amount, address token) {
        if (r.dependsOn >> i != 0) revert StepDependsOnLater(i, r.dependsOn);
        if (!Operations.isValidSet(r.operation)) revert InvalidStep(i);
        uint256 g = r.grantIds.length;
        if (g == 0 || g > MAX_GRANTS_PER_STEP) revert TooManyGrants(i, g);
        uint256 m = r.nodes.length;
        if (m == 0 || m > MAX_NODES_PER_STEP) revert InvalidStep(i);
        for (uint256 k = 0; k < m; ++k) {
            address node = r.nodes[k];
            if (!_nodeRegistry.isActive(node, INodeRegistry.NodeKind.Compute)) revert ComputeNodeNotActive(i, node);
            if (!_identity.hasParticipantRole(node, TdsRoles.COMPUTE_PROVIDER)) revert NodeNotComputeProvider(i, node);
        }
        for (uint256 k = 0; k < g; ++k) {
            uint256 grantId = r.grantIds[k];
            for (uint256 j = 0; j < k; ++j) {
                if (r.grantIds[j] == grantId) revert DuplicateGrant(i, grantId);
            }
            (uint32 useIndex, uint256 assetId, address t, uint96 price) = _consume(i, grantId, r.operation);
            if (k == 0) token = t;
            else if (t != token) revert MixedPaymentTokens(grantId, token, t);
            uint256 useId = (grantId << 32) | useIndex;
            _uses[id][i].push(useId);
            _prices[id][i].push(price);
            amount += price;
            emit StepGrantConsumed(id, i, grantId, useId, assetId, price);
        }
        _steps[id][i] = Step(StepStatus.Pending, r.operation, r.dependsOn, r.output, 0, amount, r.paramsHash, 0);
        _stepNodes[id][i] = r.nodes;
    }

    /// @dev One use of `grantId`, every term checked by Authorizations; a refusal names the grant.
    function _consume(uint8 step, uint256 grantId, uint16 operation)
        private
        returns (uint32, uint256, address, uint96)
    {
        try _authorizations.consume(grantId, msg.sender, operation) returns (
            uint32 useIndex, uint256 assetId, address token, uint96 price
        ) {
            return (useIndex, assetId, token, price);
        } catch (bytes memory reason) {
            revert GrantRefused(step, grantId, reason);
        }
    }

    function _open(uint256 id, uint8 step) private {
        Step storage s = _steps[id][step];
        uint40 deadline = uint40(block.timestamp) + _collabs[id].stepTimeout;
        s.status = StepStatus.Open;
        s.deadline = deadline;
        emit StepOpened(id, step, s.operation, s.paramsHash, _stepNodes[id][step], deadline);
    }

    /// @dev Open every pending step whose inputs are all complete; finish when all steps are.
    function _openDependents(uint256 id, Collaboration storage c) private {
        uint32 done = c.completedMask;
        uint8 n = c.stepCount;
        if (done == (uint32(1) << n) - 1) {
            c.status = CollabStatus.Completed;
            emit CollaborationCompleted(id);
            return;
        }
        for (uint8 i = 0; i < n; ++i) {
            Step storage s = _steps[id][i];
            if (s.status == StepStatus.Pending && s.dependsOn & done == s.dependsOn) _open(id, i);
        }
    }

    /// @dev Pay each grant use of a completed step at its price and its asset's split.
    function _pay(uint256 id, uint8 step, address token, address coordinator) private {
        uint256[] storage uses = _uses[id][step];
        uint96[] storage prices = _prices[id][step];
        for (uint256 k = 0; k < uses.length; ++k) {
            uint256 useId = uses[k];
            IAuthorizations.Grant memory g = _authorizations.grantOf(useId >> 32);
            (address holder,,, uint64 split) = _assets.termsOf(g.assetId);
            (uint256 p, uint256 a, uint256 cmp, uint256 o) = RevenueSplit.shares(prices[k], split);
            if (g.algorithmProvider == address(0)) {
                p += a;
                a = 0;
            }
            _release(holder, token, useId, p, Share.Provider);
            _release(g.algorithmProvider, token, useId, a, Share.AlgorithmProvider);
            _release(coordinator, token, useId, cmp, Share.ComputeProvider);
            _release(_treasury, token, useId, o, Share.Operator);
        }
    }

    /// @dev Stop `id`: refund every step that did not complete; give their uses back when the
    ///      initiator is not at fault (`restore`), and always for steps that never ran.
    function _terminate(uint256 id, uint8 step, uint16 reasonCode, bool restore) private {
        Collaboration storage c = _collabs[id];
        c.status = CollabStatus.Terminated;
        uint256 refund;
        for (uint8 i = 0; i < c.stepCount; ++i) {
            Step storage s = _steps[id][i];
            StepStatus st = s.status;
            if (st == StepStatus.Completed) continue;
            refund += s.amount;
            bool ran = st == StepStatus.Failed;
            if (st != StepStatus.Failed) s.status = StepStatus.Cancelled;
            if (restore || !ran) {
                uint256[] storage uses = _uses[id][i];
                for (uint256 k = 0; k < uses.length; ++k) _authorizations.restoreUse(uses[k] >> 32, uses[k]);
            }
        }
        emit CollaborationTerminated(id, step, reasonCode, msg.sender, refund);
        _release(c.initiator, c.paymentToken, id, refund, Share.Refund);
    }

    function _running(uint256 id) private view returns (Collaboration storage c) {
        c = _collabs[id];
        if (c.status != CollabStatus.Running) {
            if (c.status == CollabStatus.None) revert UnknownCollaboration(id);
            revert CollaborationNotRunning(id, c.status);
        }
    }

    /// @dev Open step `step` of running `id`, before its deadline, reported by its coordinator.
    function _openStepBy(uint256 id, uint8 step, address account)
        private
        view
        returns (Collaboration storage c, Step storage s)
    {
        c = _running(id);
        s = _steps[id][step];
        if (s.status != StepStatus.Open) revert StepNotOpen(id, step, s.status);
        if (_stepNodes[id][step][0] != account) revert NotStepCoordinator(id, step, account);
        if (block.timestamp > s.deadline) revert StepDeadlinePassed(id, step, s.deadline);
    }
}
