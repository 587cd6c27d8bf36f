// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IJobs} from "./IJobs.sol";

/// @title IJobDisputes
/// @notice Disputes of completed jobs (000 §5.3.3, §8.3). Under a template with a dispute window
///         (CertificateTemplates.setDisputeWindow), completing a job credits only the operator's
///         share; the provider's, algorithm provider's and oracle's shares are held in escrow until
///         the window ends. The job's consumer may dispute within the window (a reason document's
///         sha-256 on chain); the arbitrator — an account holding REGULATOR in Authorizations — decides
///         from the evidence: refund (10,000 bps), release (0) or a pro-rata split, with a decision
///         document's hash on chain. Undisputed held shares are released to the payees by anyone
///         once the window has passed. With window 0 (the default) nothing is held or disputable.
interface IJobDisputes {
    /// @dev Held (1) after completion with a window; Disputed (2) once the consumer disputes;
    ///      Released (3) after the window undisputed; Resolved (4) after the arbitrator's decision.
    enum HoldStatus { None, Held, Disputed, Released, Resolved }

    /// @dev One slot per held job (written only under a template with a dispute window).
    struct Hold {
        uint96 amount; // provider + algorithm provider + compute shares, still in escrow
        uint40 until; // end of the dispute window
        HoldStatus status;
        bool computeToHolder; // settled without its oracle: the compute share goes to the holder
    }

    /// @notice Emitted when job `jobId` completes under a dispute window: `amount` (every share but
    ///         the operator's) stays in escrow until `disputableUntil`.
    event PaymentHeld(uint256 indexed jobId, uint256 amount, uint40 disputableUntil);
    /// @notice Emitted when the consumer disputes job `jobId`; `reasonHash` is the sha-256 of the
    ///         reason document (in the content store as the CIDv1 raw of that digest, like paramsHash).
    event JobDisputed(uint256 indexed jobId, address indexed consumer, bytes32 reasonHash);
    /// @notice Emitted when `arbitrator` decides the dispute of `jobId`: `refunded` to the consumer
    ///         (`refundBps` of the held amount) and `released` to the payees pro rata;
    ///         `decisionHash` is the sha-256 of the decision document (CIDv1 raw, as reasonHash).
    event DisputeResolved(
        uint256 indexed jobId,
        address indexed arbitrator,
        uint16 refundBps,
        uint256 refunded,
        uint256 released,
        bytes32 decisionHash
    );
    /// @notice Emitted when the held shares of undisputed job `jobId` are released to the payees.
    event HeldPaymentReleased(uint256 indexed jobId, address indexed by, uint256 amount);

    error JobNotCompleted(uint256 jobId, IJobs.JobStatus status);
    /// @dev Completed without a dispute window: the shares were paid at completion.
    error JobNotDisputable(uint256 jobId);
    error DisputeWindowClosed(uint256 jobId, uint40 until);
    error DisputeWindowOpen(uint256 jobId, uint40 until);
    error AlreadyDisputed(uint256 jobId, HoldStatus status);
    error JobUnderDispute(uint256 jobId);
    error NoOpenDispute(uint256 jobId, HoldStatus status);
    error NothingHeld(uint256 jobId, HoldStatus status);
    error NotArbitrator(address account);
    error InvalidRefundBps(uint16 refundBps);

    /// @notice The job's consumer: dispute completed job `jobId` within its window (wrong or missing
    ///         result); the held shares stay in escrow until the arbitrator decides.
    /// @param reasonHash sha-256 of the reason document (stored in the content store).
    function disputeJob(uint256 jobId, bytes32 reasonHash) external;

    /// @notice Arbitrator (REGULATOR in Authorizations): decide the open dispute of `jobId`.
    ///         `refundBps` of the held amount goes back to the consumer (10,000 = full refund, which
    ///         also gives the grant use back; 0 = release to the payees), the rest to the payees pro rata.
    /// @param decisionHash sha-256 of the decision document (stored in the content store).
    function resolveDispute(uint256 jobId, uint16 refundBps, bytes32 decisionHash) external;

    /// @notice Anyone (a payee, usually): release the held shares of undisputed jobs whose window
    ///         has passed to the payees' balances (the certificate's holder now, the algorithm
    ///         provider, the completing oracle). Any entry that cannot be released reverts the batch.
    function releaseHeld(uint256[] calldata jobIds) external;

    /// @notice The hold of job `jobId` (status None: nothing was ever held).
    function holdOf(uint256 jobId) external view returns (Hold memory);
}
