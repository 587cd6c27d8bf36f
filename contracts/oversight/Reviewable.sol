// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Reviewable
/// @notice Operator review of a registration (000 §5.3.3, §9.3), for any registry: a subject that
///         needs review starts Pending (`_requestReview`); an account holding REVIEWER approves or
///         rejects it with the hash of its reasons; the registry reacts in `_onReviewed`. Asset
///         certificates use it today; algorithm and model registries can inherit it unchanged.
abstract contract Reviewable {
    /// @notice May approve or reject pending registrations (the operator's reviewers).
    bytes32 public constant REVIEWER_ROLE = keccak256("REVIEWER");

    enum ReviewStatus { None, Pending, Approved, Rejected }

    mapping(uint256 subjectId => ReviewStatus) private _reviews;

    /// @notice Emitted when `subjectId` (registered by `submitter`) waits for review.
    event ReviewRequested(uint256 indexed subjectId, address indexed submitter);
    /// @notice Emitted when `reviewer` approves or rejects `subjectId`; `reasonHash` is the hash of its
    ///         written reasons (kept off chain).
    event ReviewDecided(uint256 indexed subjectId, bool approved, address indexed reviewer, bytes32 reasonHash);

    error NotPendingReview(uint256 subjectId, ReviewStatus status);

    /// @notice Approve a pending registration.
    function approveRegistration(uint256 subjectId, bytes32 reasonHash) external {
        _checkReviewer();
        _decide(subjectId, true, reasonHash);
    }

    /// @notice Reject a pending registration with the hash of the reasons.
    function rejectRegistration(uint256 subjectId, bytes32 reasonHash) external {
        _checkReviewer();
        _decide(subjectId, false, reasonHash);
    }

    /// @notice The review status of `subjectId` (None: it never needed one).
    function reviewOf(uint256 subjectId) external view returns (ReviewStatus) {
        return _reviews[subjectId];
    }

    function _requestReview(uint256 subjectId, address submitter) internal {
        _reviews[subjectId] = ReviewStatus.Pending;
        emit ReviewRequested(subjectId, submitter);
    }

    /// @dev The review status of `subjectId`, for the registry's own checks.
    function _reviewStatus(uint256 subjectId) internal view returns (ReviewStatus) {
        return _reviews[subjectId];
    }

    function _decide(uint256 subjectId, bool approved, bytes32 reasonHash) private {
        _checkSubject(subjectId);
        ReviewStatus s = _reviews[subjectId];
        if (s != ReviewStatus.Pending) revert NotPendingReview(subjectId, s);
        _reviews[subjectId] = approved ? ReviewStatus.Approved : ReviewStatus.Rejected;
        emit ReviewDecided(subjectId, approved, msg.sender, reasonHash);
        _onReviewed(subjectId, approved);
    }

    /// @dev Revert unless the caller may review (the registry's access control: REVIEWER_ROLE).
    function _checkReviewer() internal view virtual;

    /// @dev Revert with the registry's own error for a subject it does not know (default: no check,
    ///      an unknown subject is simply not pending).
    function _checkSubject(uint256 /* subjectId */) internal view virtual {}

    /// @dev The registry's reaction to a decision (activate, or mark rejected).
    function _onReviewed(uint256 subjectId, bool approved) internal virtual;
}
