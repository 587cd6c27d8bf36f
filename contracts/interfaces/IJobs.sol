// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IJobs
/// @notice Computation jobs under a grant (SPEC step 6–7, 002 §3.3.3, §3.4.6.5). requestJob checks
///         the grant, counts the use, takes the price into escrow and fixes the split; completion
///         by the accepting oracle releases the shares to the payees' pull balances; failure or a
///         passed deadline refunds the consumer. Job id = grantId << 32 | use index.
///         Release path: the provider's key service records on chain that it released the answer
///         (`recordRelease`, every term re-checked in that transaction) before it hands the sealed
///         answer out; from then on the job cannot end in a refund, only the released answer can
///         complete it, and anyone may settle it if the oracle does not post.
interface IJobs {
    /// @dev Released (7) was appended: the existing values keep their numbers.
    enum JobStatus { None, Requested, Accepted, Completed, Failed, Reclaimed, Cancelled, Released }
    enum WorkflowStatus { None, Running, Completed, Failed }

    /// @dev What jobOf returns of the request (the job's one storage slot, the grant id from the job
    ///      id's upper bits and the amount from the grant's immutable price).
    struct JobCore {
        uint64 grantId;
        uint96 amount;
        uint40 deadline;
        JobStatus status;
        uint16 operation;
    }

    /// @dev What jobOf returns of the execution (oracle and acceptedAt from the job's slot; workflow
    ///      id and step, for a workflow step, from a mapping written when the step opens).
    struct JobExec {
        address oracle;
        uint40 acceptedAt;
        uint32 workflowId;
        uint8 step;
    }

    struct Workflow {
        uint64 grantId;
        uint8 stepCount;
        uint8 current;
        WorkflowStatus status;
        uint40 stepTimeout;
        uint96 escrowLeft; // paid for steps not yet opened
        address consumer;
    }

    /// @notice Emitted when `consumer` requests job `jobId` under `grantId` over `assetId`;
    ///         `amount` is in escrow. Everything an oracle needs is here: the query parameters are
    ///         the content-addressed block whose sha2-256 is `paramsHash` (CIDv1, raw codec,
    ///         sha2-256 multihash of that digest), so no other call or event is needed.
    event JobRequested(
        uint256 indexed jobId,
        uint256 indexed grantId,
        address indexed consumer,
        uint256 assetId,
        uint16 operation,
        bytes32 paramsHash,
        address paymentToken,
        uint256 amount,
        uint40 deadline
    );
    /// @notice Emitted when `oracle` accepts `jobId` (`previousOracle` != 0 on a takeover of a silent oracle).
    event JobAccepted(uint256 indexed jobId, address indexed oracle, address previousOracle);
    /// @notice Emitted when `oracle` completes `jobId` with a result sealed to the consumer.
    event JobCompleted(uint256 indexed jobId, address indexed oracle, bytes32 indexed resultHash, bytes resultCid);
    /// @notice Emitted when `oracle` reports that `jobId` failed; the consumer is refunded.
    event JobFailed(uint256 indexed jobId, address indexed oracle, uint16 reasonCode);
    /// @notice Emitted when the consumer reclaims the payment of `jobId` after its deadline.
    event JobReclaimed(uint256 indexed jobId, address indexed consumer, uint256 amount);
    /// @notice Emitted when the holder of the job's asset (`provider`) records that its key service
    ///         released the answer whose keccak256 is `resultHash` to `oracle` for job `jobId`.
    event AnswerReleased(uint256 indexed jobId, address indexed provider, address indexed oracle, bytes32 resultHash);
    /// @notice Emitted when `settler` completes a released job its oracle did not post in time; the
    ///         compute share goes to the provider, who had to post.
    event JobSettledWithoutOracle(uint256 indexed jobId, address indexed settler, address indexed oracle);
    /// @notice Emitted on every failure or abandonment charged to `oracle` (`failures` is its total),
    ///         so that monitoring can act on an oracle that accepts and fails repeatedly.
    event OracleFailureRecorded(address indexed oracle, uint256 indexed jobId, uint16 reasonCode, uint32 failures);
    /// @notice Emitted when `consumer` starts workflow `workflowId` of `operations.length` steps.
    event WorkflowRequested(
        uint256 indexed workflowId,
        uint256 indexed grantId,
        address indexed consumer,
        uint16[] operations,
        bytes32[] paramsHashes,
        uint40 stepTimeout
    );
    /// @notice Emitted when step `step` of `workflowId` opens as job `jobId`.
    event WorkflowStepOpened(uint256 indexed workflowId, uint8 step, uint256 indexed jobId);
    /// @notice Emitted when the last step of `workflowId` completes.
    event WorkflowCompleted(uint256 indexed workflowId);
    /// @notice Emitted when `workflowId` stops at `step` (step failed, expired, or next step refused).
    event WorkflowStopped(uint256 indexed workflowId, uint8 step, uint16 reasonCode, uint256 refunded);

    error UnknownJob(uint256 jobId);
    error InvalidDeadline(uint40 deadline, uint256 nowTs);
    error NotComputeProvider(address account);
    error JobNotOpen(uint256 jobId, JobStatus status);
    error JobAlreadyAccepted(uint256 jobId, address oracle, uint40 takeoverAt);
    error NotJobOracle(uint256 jobId, address account);
    error JobDeadlinePassed(uint256 jobId, uint40 deadline, uint256 nowTs);
    error JobNotExpired(uint256 jobId, uint40 deadline, uint256 nowTs);
    error NotJobConsumer(uint256 jobId, address account);
    error EmptyResult(uint256 jobId);
    error InvalidResultSignature(uint256 jobId, address oracle);
    error InvalidWorkflow(uint256 steps, uint256 paramsHashes);
    error UnknownWorkflow(uint256 workflowId);
    error AnswerAlreadyReleased(uint256 jobId);
    error ResultNotReleased(uint256 jobId);
    error ResultMismatch(uint256 jobId, bytes32 released, bytes32 posted);
    error NotReleasingProvider(uint256 jobId, address account);
    error OracleRoleRevoked(uint256 jobId, address oracle);
    error SettlementTooEarly(uint256 jobId, uint256 settleableAt);
    error InvalidTreasury();
    error TooManyWorkflows();
    error InvalidBatch(uint256 size);
    /// @dev `oracle` holds 255 released answers it has not posted: a release to it waits until it
    ///      completes one (or anyone settles one, settleReleased).
    error ReleaseSlotsFull(address oracle);

    /// @notice One job's answer in a batch (see completeJobs).
    struct JobResult {
        uint256 jobId;
        bytes resultCid;
        bytes32 resultHash;
        bytes signature;
    }

    /// @notice Consumer: request one job under `grantId` (pay `pricePerUse` in native coin as
    ///         msg.value, or have approved the ERC-20 payment token).
    function requestJob(uint256 grantId, uint16 operation, bytes32 paramsHash, uint40 deadline)
        external
        payable
        returns (uint256 jobId);

    /// @notice Registered compute provider: accept a requested job, or take over an accepted one
    ///         whose oracle stayed silent for `acceptTimeout`.
    function acceptJob(uint256 jobId) external;

    /// @notice Registered compute provider: accept every job of `jobIds` that is still Requested and
    ///         before its deadline, in one transaction (takeovers go through acceptJob). Jobs another
    ///         oracle already holds are skipped, so several oracles may claim from the same list
    ///         without reverting. Returns a bitmask of the accepted positions (JobAccepted per job).
    function acceptJobs(uint256[] calldata jobIds) external returns (uint256 accepted);

    /// @notice The accepting oracle: complete several released jobs in one transaction, each
    ///         checked and paid exactly as by completeJob; any invalid entry reverts the batch.
    function completeJobs(JobResult[] calldata results) external;

    /// @notice Holder of the job's asset (its key service): record that the answer whose keccak256
    ///         is `resultHash` was released to the job's oracle. Every term is re-checked here
    ///         (grant active and not frozen, asset active, consumer, provider and oracle roles
    ///         held); the job becomes Released and can no longer fail, be reclaimed or be taken over.
    ///         The hash is kept in one of the oracle's 255 release slots until the job completes
    ///         (ReleaseSlotsFull while all hold answers the oracle has not posted).
    function recordRelease(uint256 jobId, bytes32 resultHash) external;

    /// @notice Holder of the jobs' assets (its key service): record the releases of several answers
    ///         in one transaction, `resultHashes[i]` for `jobIds[i]`, each checked exactly as by
    ///         recordRelease (AnswerReleased per job); any invalid entry reverts the whole batch.
    ///         1 ≤ length ≤ MAX_BATCH and equal lengths, else InvalidBatch(jobIds.length).
    function recordReleases(uint256[] calldata jobIds, bytes32[] calldata resultHashes) external;

    /// @notice The accepting oracle: post the released answer's CID, its hash (must equal the
    ///         released one) and an EIP-712 `JobResult` signature; releases the split to the payees.
    function completeJob(uint256 jobId, bytes calldata resultCid, bytes32 resultHash, bytes calldata signature)
        external;

    /// @notice Anyone (the provider, usually): complete a Released job whose oracle did not post
    ///         within `acceptTimeout` of the release (or by the deadline); `resultCid` locates the
    ///         sealed answer whose hash was released. The compute share goes to the provider.
    function settleReleased(uint256 jobId, bytes calldata resultCid) external;

    /// @notice The accepting oracle: report failure (refused once the answer was released); the
    ///         consumer is refunded and a workflow stops. A reason code at or above
    ///         `ORACLE_FAULT_FROM` is not the consumer's fault: the grant use is given back.
    function failJob(uint256 jobId, uint16 reasonCode) external;

    /// @notice Consumer: after the deadline, reclaim the payment of an unfinished job (not of a
    ///         released one); the grant use is given back and an accepting oracle is charged a failure.
    function reclaim(uint256 jobId) external;

    /// @notice Consumer: start a multi-step workflow; every step is paid up front, each step
    ///         counts a use when it opens, a completed step opens the next, a failure stops the flow.
    function requestWorkflow(
        uint256 grantId,
        uint16[] calldata operations,
        bytes32[] calldata paramsHashes,
        uint40 stepTimeout
    ) external payable returns (uint256 workflowId);

    /// @notice Job record (both slots).
    function jobOf(uint256 jobId) external view returns (JobCore memory core, JobExec memory exec);

    /// @notice Workflow record.
    function workflowOf(uint256 workflowId) external view returns (Workflow memory);

    /// @notice EIP-712 digest an oracle signs for a result.
    function resultDigest(uint256 jobId, bytes32 resultHash, bytes32 resultCidHash) external view returns (bytes32);

    /// @notice Reverts with the named reason unless job `jobId` may have its answer released to
    ///         `oracle` now (what `recordRelease` checks, for the key service to ask first).
    function checkRelease(uint256 jobId, address oracle) external view;

    /// @notice keccak256 of the answer released for `jobId` while it is Released (zero before the
    ///         release and once completed: JobCompleted carries the hash then).
    function releasedHash(uint256 jobId) external view returns (bytes32);

    /// @notice Failures and abandonments charged to `oracle` so far.
    function oracleFailures(address oracle) external view returns (uint32);

    /// @notice True once a job under `grantId` has completed (a rating needs one).
    function hasCompletedJob(uint256 grantId) external view returns (bool);

    /// @notice Seconds after acceptance before another oracle may take a job over.
    function acceptTimeout() external view returns (uint40);

    /// @notice The operator's payee address (operator share).
    function treasury() external view returns (address);
}
