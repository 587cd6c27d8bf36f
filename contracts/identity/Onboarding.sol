// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IIdentityRegistry} from "../interfaces/IIdentityRegistry.sol";
import {IOnboarding} from "../interfaces/IOnboarding.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";
import {Reviewable} from "../oversight/Reviewable.sol";

/// @title Onboarding
/// @notice Participant onboarding: application → review → credential (000 §5.3.3, §9.3). A bound
///         account applies for a participant role with the hash of its application document; the
///         application is a Reviewable subject, Pending until a REVIEWER approves or rejects it with
///         the hash of its reasons; an OPERATOR then admits the approved applicant, which grants the
///         role in the IdentityRegistry backed by the credential the operator issued off chain.
/// @dev Needs the IdentityRegistry's OPERATOR role (granted when the system is wired). When the
///      registry's application gate names this contract, every participant role is granted through
///      an approved application.
contract Onboarding is IOnboarding, AccessControlDefaultAdminRules, Reviewable {
    /// @notice Delay before a new admin may accept the admin role (two-step transfer).
    uint48 public constant ADMIN_TRANSFER_DELAY = 2 days;
    /// @notice AccessControl role of the accounts that admit approved applicants (issue credentials).
    bytes32 public constant OPERATOR_ROLE = TdsRoles.OPERATOR;

    IIdentityRegistry private immutable _identity;
    mapping(uint256 roleApplicationId => RoleApplication) private _applications;
    mapping(address account => mapping(bytes32 role => uint256 roleApplicationId)) private _open;
    uint256 private _count;

    /// @param admin the operator's admin account (DEFAULT_ADMIN_ROLE and OPERATOR_ROLE).
    /// @param identity the IdentityRegistry applicants are bound in and roles are granted in.
    constructor(address admin, IIdentityRegistry identity) AccessControlDefaultAdminRules(ADMIN_TRANSFER_DELAY, admin) {
        _identity = identity;
        _grantRole(OPERATOR_ROLE, admin);
    }

    /// @inheritdoc IOnboarding
    function applyForRole(bytes32 role, bytes32 documentHash, IIdentityRegistry.Identity calldata identity)
        external
        returns (uint256 roleApplicationId)
    {
        if (!TdsRoles.isParticipantRole(role)) revert UnknownParticipantRole(role);
        if (documentHash == bytes32(0)) revert EmptyDocumentHash();
        _checkIdentity(msg.sender, identity);
        bytes32 didHash = identity.didHash;
        if (_identity.hasParticipantRole(msg.sender, role)) revert RoleAlreadyHeld(msg.sender, role);
        uint256 open = _open[msg.sender][role];
        if (open != 0) revert ApplicationAlreadyOpen(msg.sender, role, open);
        roleApplicationId = ++_count;
        _applications[roleApplicationId] = RoleApplication({
            applicant: msg.sender,
            role: role,
            didHash: didHash,
            documentHash: documentHash,
            submittedAt: uint64(block.timestamp),
            admitted: false
        });
        _open[msg.sender][role] = roleApplicationId;
        emit RoleApplicationSubmitted(roleApplicationId, msg.sender, role, didHash, documentHash);
        _requestReview(roleApplicationId, msg.sender);
    }

    /// @inheritdoc IOnboarding
    function admit(
        uint256 roleApplicationId,
        bytes32 credentialHash,
        uint64 validUntil,
        IIdentityRegistry.Identity calldata applicantIdentity
    ) external onlyRole(OPERATOR_ROLE) {
        RoleApplication storage a = _existing(roleApplicationId);
        ReviewStatus status = _reviewStatus(roleApplicationId);
        if (status != ReviewStatus.Approved) revert ApplicationNotApproved(roleApplicationId, uint8(status));
        if (a.admitted) revert ApplicationAlreadyAdmitted(roleApplicationId);
        _checkIdentity(a.applicant, applicantIdentity);
        if (applicantIdentity.didHash != a.didHash) revert ApplicantRebound(roleApplicationId, a.applicant);
        a.admitted = true;
        delete _open[a.applicant][a.role];
        _identity.grantParticipantRole(a.applicant, a.role, credentialHash, validUntil);
        emit RoleApplicationAdmitted(roleApplicationId, a.applicant, a.role, credentialHash, validUntil, msg.sender);
    }

    /// @inheritdoc IOnboarding
    function roleApplicationOf(uint256 roleApplicationId) external view returns (RoleApplication memory) {
        return _existing(roleApplicationId);
    }

    /// @inheritdoc IOnboarding
    function roleApplicationCount() external view returns (uint256) {
        return _count;
    }

    /// @inheritdoc IOnboarding
    function openRoleApplication(address account, bytes32 role) external view returns (uint256) {
        return _open[account][role];
    }

    /// @inheritdoc IOnboarding
    function identityRegistry() external view returns (address) {
        return address(_identity);
    }

    /// @dev `identity` must be `account`'s current one: `ApplicantNotBound` if it has none, else
    ///      `IdentityMismatch` when the registry's commitment differs.
    function _checkIdentity(address account, IIdentityRegistry.Identity calldata identity) private view {
        if (_identity.isCurrentIdentity(account, identity)) return;
        if (!_identity.isBound(account)) revert ApplicantNotBound(account);
        revert IdentityMismatch(account);
    }

    function _existing(uint256 roleApplicationId) private view returns (RoleApplication storage a) {
        a = _applications[roleApplicationId];
        if (a.applicant == address(0)) revert UnknownRoleApplication(roleApplicationId);
    }

    /// @dev Reviewers hold REVIEWER_ROLE (granted by the admin; the operator's review desk).
    function _checkReviewer() internal view override {
        _checkRole(REVIEWER_ROLE);
    }

    /// @dev A decision on an id no application has is `UnknownRoleApplication`, not "not pending".
    function _checkSubject(uint256 roleApplicationId) internal view override {
        _existing(roleApplicationId);
    }

    /// @dev A rejected applicant may apply again; an approved one waits for admission.
    function _onReviewed(uint256 roleApplicationId, bool approved) internal override {
        if (!approved) {
            RoleApplication storage a = _applications[roleApplicationId];
            delete _open[a.applicant][a.role];
        }
    }
}
