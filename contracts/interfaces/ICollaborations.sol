// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ICollaborations
/// @notice Multi-party computation as a workflow DAG (002 §3.4.5): one request consumes a grant on
///         every asset every step reads (assets of several providers), in one transaction, and takes
///         the sum of their prices into escrow. A step opens when every step it depends on has
///         completed; its coordinator (the step's first compute node) completes it with the hash of
///         its result — anchored per step, while an intermediate result itself is never published —
///         and each of the step's grants is then paid at its own price and split. A failed step, or a
///         cancel after a step's deadline, terminates the collaboration: every step that did not
///         complete is refunded and their uses given back, and `CollaborationTerminated` tells every
///         participant's node to stop and clean up.
interface ICollaborations {
    enum CollabStatus { None, Running, Completed, Terminated }
    /// @dev Pending: waiting for its inputs; Open: may run; Completed; Failed; Cancelled (never ran).
    enum StepStatus { None, Pending, Open, Completed, Failed, Cancelled }

    /// @notice One step as requested.
    struct StepRequest {
        uint16 operation;     // one Operations bit (PSI, MPC …) every grant of the step must allow
        uint32 dependsOn;     // bitmask of earlier steps whose outputs this step reads
        bool output;          // its result is delivered (sealed) to the initiator; else intermediate
        bytes32 paramsHash;   // sha2-256 of the step's parameter document
        uint256[] grantIds;   // one grant per asset the step reads, all held by the initiator
        address[] nodes;      // active compute nodes that run it; nodes[0] coordinates and reports
    }

    struct Step {
        StepStatus status;
        uint16 operation;
        uint32 dependsOn;
        bool output;
        uint40 deadline;      // set when the step opens
        uint96 amount;        // escrow of this step: the sum of its grants' prices
        bytes32 paramsHash;
        bytes32 resultHash;   // anchored on completion
    }

    struct Collaboration {
        address initiator;
        CollabStatus status;
        uint8 stepCount;
        uint32 completedMask;
        uint40 stepTimeout;
        address paymentToken;
        bytes32 descriptionHash;
    }

    /// @notice Emitted when `initiator` starts collaboration `id` from the description whose sha2-256
    ///         is `descriptionHash`; `amount` (all steps) is in escrow.
    event CollaborationRequested(uint256 indexed id, address indexed initiator, bytes32 descriptionHash,
        uint8 stepCount, address paymentToken, uint256 amount, uint40 stepTimeout);
    /// @notice Emitted once per grant use a step consumed; `useId` = grantId << 32 | use index.
    event StepGrantConsumed(uint256 indexed id, uint8 step, uint256 indexed grantId, uint256 useId,
        uint256 assetId, uint256 price);
    /// @notice Emitted when step `step` of `id` may run (`nodes[0]` coordinates), by `deadline`.
    event StepOpened(uint256 indexed id, uint8 step, uint16 operation, bytes32 paramsHash, address[] nodes,
        uint40 deadline);
    /// @notice Emitted when `coordinator` completes a step: `resultHash` anchors its result;
    ///         `resultCid` (output steps only) is the result sealed to the initiator.
    event StepCompleted(uint256 indexed id, uint8 step, address indexed coordinator, bytes32 resultHash,
        bytes resultCid);
    /// @notice Emitted when every step of `id` has completed.
    event CollaborationCompleted(uint256 indexed id);
    /// @notice Emitted when `id` stops at `step` (failed, or cancelled by `by`): every participant's node
    ///         stops and cleans up; `refund` went back to the initiator.
    event CollaborationTerminated(uint256 indexed id, uint8 step, uint16 reasonCode, address by, uint256 refund);

    error InvalidCollaboration(uint256 steps);
    error InvalidStep(uint8 step);
    error StepDependsOnLater(uint8 step, uint32 dependsOn);
    error TooManyGrants(uint8 step, uint256 count);
    error GrantRefused(uint8 step, uint256 grantId, bytes reason);
    error GrantsNotAllowed(uint256 grantId, address consumer);
    error MixedPaymentTokens(uint256 grantId, address expected, address actual);
    error DuplicateGrant(uint8 step, uint256 grantId);
    error ComputeNodeNotActive(uint8 step, address node);
    error NodeNotComputeProvider(uint8 step, address node);
    error UnknownCollaboration(uint256 id);
    error CollaborationNotRunning(uint256 id, CollabStatus status);
    error StepNotOpen(uint256 id, uint8 step, StepStatus status);
    error NotStepCoordinator(uint256 id, uint8 step, address account);
    error StepDeadlinePassed(uint256 id, uint8 step, uint40 deadline);
    error StepStillRunning(uint256 id, uint8 step, uint40 deadline);
    error NotInitiator(uint256 id, address account);
    error IntermediateResultPublished(uint256 id, uint8 step);
    error EmptyStepResult(uint256 id, uint8 step);
    error GrantNotInStep(uint256 id, uint8 step, uint256 grantId);
    error TooManyCollaborations();

    /// @notice Start a collaboration: validate the DAG and nodes, consume one use of every grant of
    ///         every step (reverting with GrantRefused naming the grant that refused), escrow the total
    ///         and open the steps that depend on nothing.
    function requestCollaboration(bytes32 descriptionHash, StepRequest[] calldata steps, uint40 stepTimeout)
        external
        payable
        returns (uint256 id);

    /// @notice The step's coordinator reports success with the hash of its result (and, for an output
    ///         step, the CID of the result sealed to the initiator). Every grant of the step must still
    ///         allow a release; each is paid; the steps depending on it open.
    function completeStep(uint256 id, uint8 step, bytes32 resultHash, bytes calldata resultCid) external;

    /// @notice The step's coordinator reports failure: the collaboration terminates with refunds.
    function failStep(uint256 id, uint8 step, uint16 reasonCode) external;

    /// @notice The initiator stops a collaboration whose open steps are all past their deadline.
    function cancel(uint256 id) external;

    /// @notice Reverts unless `grantId` is part of open step `step` of `id` and still allows a release:
    ///         what a provider's node checks before it contributes its data.
    function checkStep(uint256 id, uint8 step, uint256 grantId) external view;

    /// @notice The collaboration record (reverts UnknownCollaboration).
    function collaborationOf(uint256 id) external view returns (Collaboration memory);

    /// @notice Step `step` of `id` with its grants and nodes.
    function stepOf(uint256 id, uint8 step)
        external
        view
        returns (Step memory s, uint256[] memory grantIds, address[] memory nodes);

    /// @notice Number of collaborations so far.
    function collaborationCount() external view returns (uint256);
}
