// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IAuthorizations} from "../interfaces/IAuthorizations.sol";
import {IJobs} from "../interfaces/IJobs.sol";
import {JobsCore} from "./JobsCore.sol";

/// @title JobWorkflows
/// @notice Multi-step workflows under one grant: all steps paid up front, each step opened as a
///         job when the previous one completes; a failed, expired or refused step stops the
///         workflow and refunds the steps never opened.
abstract contract JobWorkflows is JobsCore {
    /// @notice Raised when a later workflow step could not be opened for lack of gas.
    error StepOpeningFailed(uint256 workflowId, uint8 step);

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
        IAuthorizations.Grant memory g = _grantOf(grantId);
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

    /// @inheritdoc IJobs
    function workflowOf(uint256 workflowId) external view returns (Workflow memory w) {
        w = _workflows[workflowId];
        if (w.status == WorkflowStatus.None) revert UnknownWorkflow(workflowId);
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
        _jobs[jobId] =
            Job(address(0), 0, uint32(deadline), JobStatus.Requested, uint8(_workflowOps[workflowId][step]), true, 0);
        _steps[jobId] = Step(uint32(workflowId), step);
        _emitStepRequested(jobId, workflowId, step, assetId, token, price);
        emit WorkflowStepOpened(workflowId, step, jobId);
    }

    /// @dev JobRequested for a workflow step, read back from the records just written (stack depth).
    function _emitStepRequested(
        uint256 jobId,
        uint256 workflowId,
        uint8 step,
        uint256 assetId,
        address token,
        uint96 price
    ) private {
        Job memory j = _jobs[jobId];
        emit JobRequested(
            jobId,
            _grantIdOf(jobId),
            _workflows[workflowId].consumer,
            assetId,
            j.operation,
            _workflowParams[workflowId][step],
            token,
            price,
            j.deadline
        );
    }

    /// @dev A step completed: open the next one, or finish the workflow.
    function _advance(uint256 workflowId, uint8 step) internal override {
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
            _stop(workflowId, next, REASON_NEXT_STEP_REFUSED, _grantOf(w.grantId));
        }
    }

    /// @dev Stop a workflow and refund what was paid for the steps never opened.
    function _stop(uint256 workflowId, uint8 step, uint16 reasonCode, IAuthorizations.Grant memory g) internal {
        Workflow storage w = _workflows[workflowId];
        uint96 refund = w.escrowLeft;
        w.escrowLeft = 0;
        w.status = WorkflowStatus.Failed;
        emit WorkflowStopped(workflowId, step, reasonCode, refund);
        _release(g.consumer, g.paymentToken, 0, refund, Share.Refund);
    }
}
