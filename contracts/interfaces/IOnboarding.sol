// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IIdentityRegistry} from "./IIdentityRegistry.sol";

/// @title IOnboarding
/// @notice Participant onboarding under operator review (000 §5.3.3, §9.3): a bound account applies
///         for a participant role with the hash of its application document; a REVIEWER approves or
///         rejects it (Reviewable, with the hash of the reasons); an OPERATOR then admits an approved
///         applicant: the role is granted in the IdentityRegistry, backed by the credential it issued.
/// @dev Application ids are Reviewable subject ids. Document and reasons hashes are the sha-256
///      digests of the documents, so each is found in the content store by its CIDv1 (raw).
interface IOnboarding {
    /// @notice One application for a participant role.
    struct RoleApplication {
        address applicant;
        bytes32 role;          // keccak256 of the upper-case role name
        bytes32 didHash;       // the DID the applicant was bound to when applying
        bytes32 documentHash;  // sha-256 of the application document (content store, CIDv1 raw)
        uint64 submittedAt;
        bool admitted;         // the role was granted on the strength of this application
    }

    /// @notice Emitted when `applicant` (bound to `didHash`) applies for `role`.
    event RoleApplicationSubmitted(
        uint256 indexed roleApplicationId,
        address indexed applicant,
        bytes32 indexed role,
        bytes32 didHash,
        bytes32 documentHash
    );
    /// @notice Emitted when `operator` admits an approved applicant: `role` is granted to it in the
    ///         IdentityRegistry backed by `credentialHash` (valid until `validUntil`, 0 = no expiry).
    event RoleApplicationAdmitted(
        uint256 indexed roleApplicationId,
        address indexed applicant,
        bytes32 indexed role,
        bytes32 credentialHash,
        uint64 validUntil,
        address operator
    );

    /// @notice `role` is not one of the seven participant roles.
    error UnknownParticipantRole(bytes32 role);
    /// @notice `account` has no DID bound in the IdentityRegistry (it runs `bind` first).
    error ApplicantNotBound(address account);
    /// @notice `account` already holds `role` (valid, unrevoked).
    error RoleAlreadyHeld(address account, bytes32 role);
    /// @notice `account` has application `roleApplicationId` for `role` still pending or awaiting admission.
    error ApplicationAlreadyOpen(address account, bytes32 role, uint256 roleApplicationId);
    /// @notice An application must carry the hash of its document.
    error EmptyDocumentHash();
    /// @notice No application has id `roleApplicationId`.
    error UnknownRoleApplication(uint256 roleApplicationId);
    /// @notice Application `roleApplicationId` is not approved (status: Reviewable.ReviewStatus).
    error ApplicationNotApproved(uint256 roleApplicationId, uint8 status);
    /// @notice Application `roleApplicationId` was already admitted.
    error ApplicationAlreadyAdmitted(uint256 roleApplicationId);
    /// @notice The applicant of `roleApplicationId` is now bound to another DID than the one it applied with.
    error ApplicantRebound(uint256 roleApplicationId, address applicant);
    /// @notice The identity given for `account` is not its current one in the IdentityRegistry
    ///         (the commitment differs: take the fields from its latest `IdentityBound`).
    error IdentityMismatch(address account);

    /// @notice Apply for participant `role` with the sha-256 of the application document; the
    ///         application waits for review. The sender must be bound, must not hold the role and
    ///         must have no other open application for it. `identity` is the sender's current
    ///         identity (its latest `IdentityBound`), checked against the registry's commitment
    ///         (`IdentityMismatch`); the application records its DID hash.
    /// @return roleApplicationId the new application's id (also its review subject id).
    function applyForRole(bytes32 role, bytes32 documentHash, IIdentityRegistry.Identity calldata identity)
        external
        returns (uint256 roleApplicationId);

    /// @notice Operator only: admit the applicant of an approved application — grant its role in the
    ///         IdentityRegistry backed by the credential `credentialHash` the operator issued.
    ///         `applicantIdentity` is the applicant's current identity (checked against the registry's
    ///         commitment, `IdentityMismatch`); it must still name the DID applied under (`ApplicantRebound`).
    function admit(
        uint256 roleApplicationId,
        bytes32 credentialHash,
        uint64 validUntil,
        IIdentityRegistry.Identity calldata applicantIdentity
    ) external;

    /// @notice The application `roleApplicationId` (reverts `UnknownRoleApplication`).
    function roleApplicationOf(uint256 roleApplicationId) external view returns (RoleApplication memory);

    /// @notice How many applications were ever submitted (ids are 1..count).
    function roleApplicationCount() external view returns (uint256);

    /// @notice The open (pending or approved, not admitted) application of `account` for `role`; 0 if none.
    function openRoleApplication(address account, bytes32 role) external view returns (uint256);

    /// @notice The IdentityRegistry roles are granted in.
    function identityRegistry() external view returns (address);
}
