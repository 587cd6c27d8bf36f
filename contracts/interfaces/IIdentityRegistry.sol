// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IIdentityRegistry
/// @notice Binds each participant's chain account to its DID, DID-document digest and X25519
///         key-agreement key, and records the roles the operator grants on the strength of an
///         off-chain Verifiable Credential (whose hash is stored). Roles and credentials are
///         revocable; every change is an event an auditor can filter on.
/// @dev The off-chain half lives in the Python package `did` (did/registry.py is its client).
interface IIdentityRegistry {
    /// @notice Participant roles (keccak256 of the upper-case name).
    /// PROVIDER, CONSUMER, OPERATOR, REGULATOR, DEVELOPER, ALGORITHM_PROVIDER, COMPUTE_PROVIDER

    struct Identity {
        bytes32 didHash;          // keccak256(bytes(did))
        bytes32 didDocDigest;     // sha2-256 digest of the DID document's CIDv0 (multihash body)
        bytes32 keyAgreementKey;  // X25519 public key results are sealed to
        bytes32 bindingProofHash; // keccak256 of the DID controller's signed statement over the account
        uint64 boundAt;
    }

    /// @notice Emitted when `account` binds (or re-binds) itself to `did`.
    event IdentityBound(
        address indexed account,
        bytes32 indexed didHash,
        string did,
        bytes32 didDocDigest,
        bytes32 keyAgreementKey,
        bytes32 bindingProofHash
    );
    /// @notice Emitted when the operator grants `role` to `account` backed by credential `credentialHash`.
    event ParticipantRoleGranted(
        address indexed account, bytes32 indexed role, bytes32 indexed credentialHash, uint64 validUntil, address operator
    );
    /// @notice Emitted when `role` is revoked from `account`.
    event ParticipantRoleRevoked(address indexed account, bytes32 indexed role, bytes32 reasonHash, address by);
    /// @notice Emitted when a credential is revoked (status visible to every verifier).
    event CredentialRevoked(bytes32 indexed credentialHash, bytes32 reasonHash, address by);

    error DidAlreadyBound(bytes32 didHash, address account);
    error EmptyDid();
    error NotBound(address account);
    error RoleNotHeld(address account, bytes32 role);
    error CredentialIsRevoked(bytes32 credentialHash);
    error InvalidValidity(uint64 validUntil);

    /// @notice Bind the sender's account to `did` (the account "signs the DID" by sending this).
    function bind(string calldata did, bytes32 didDocDigest, bytes32 keyAgreementKey, bytes32 bindingProofHash) external;

    /// @notice Operator only: grant `role` to a bound `account`, backed by credential `credentialHash`.
    function grantParticipantRole(address account, bytes32 role, bytes32 credentialHash, uint64 validUntil) external;

    /// @notice Operator only: revoke `role` from `account`.
    function revokeParticipantRole(address account, bytes32 role, bytes32 reasonHash) external;

    /// @notice Operator only: revoke a credential by hash; roles backed by it stop counting.
    function revokeCredential(bytes32 credentialHash, bytes32 reasonHash) external;

    /// @notice True if `account` holds `role`, unexpired, backed by an unrevoked credential.
    function hasParticipantRole(address account, bytes32 role) external view returns (bool);

    /// @notice The identity bound to `account` (didHash == 0 if none).
    function identityOf(address account) external view returns (Identity memory);

    /// @notice The account bound to `didHash` (zero address if none).
    function accountOfDid(bytes32 didHash) external view returns (address);

    /// @notice The credential hash backing `role` for `account`, and its expiry.
    function roleCredential(address account, bytes32 role) external view returns (bytes32 credentialHash, uint64 validUntil);

    /// @notice True if `credentialHash` was revoked.
    function isCredentialRevoked(bytes32 credentialHash) external view returns (bool);
}
