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

    /// @notice What an account binds: the registry stores only a commitment to these four hashes
    ///         (`identityCommitment`); the fields themselves are in the account's latest
    ///         `IdentityBound` event, and `isCurrentIdentity` checks a copy of them.
    struct Identity {
        bytes32 didHash;          // keccak256(bytes(did))
        bytes32 didDocDigest;     // sha2-256 digest of the DID document's CIDv0 (multihash body)
        bytes32 keyAgreementKey;  // X25519 public key results are sealed to
        bytes32 bindingProofHash; // keccak256 of the published binding proof (bind's bindingProof)
    }

    /// @notice Emitted when `account` binds (or re-binds) itself to `did`: every field of the record,
    ///         which the registry keeps only as a commitment. The binding proof itself (canonical
    ///         JSON, did/binding.py) is not logged again: it is the `bindingProof` argument of the
    ///         `bind` call in this transaction's input, whose keccak256 is `bindingProofHash`. The
    ///         EVM cannot check the DID's signature in it, so a reader accepts the account under
    ///         `did` only after verifying that proof off chain.
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
    /// @notice Emitted when the admin sets (or, with the zero address, clears) the application gate.
    event ApplicationGateSet(address gate, address by);

    error EmptyDid();
    error NotBound(address account);
    error RoleNotHeld(address account, bytes32 role);
    error CredentialIsRevoked(bytes32 credentialHash);
    error InvalidValidity(uint64 validUntil);
    error BindingProofTooLong(uint256 length, uint256 maxLength);
    /// @notice Roles are granted only through `gate` (the onboarding review: an approved application).
    error GrantRequiresApplication(address account, bytes32 role, address gate);

    /// @notice Bind the sender's account to `did` (the account "signs the DID" by sending this) and
    ///         publish its binding proof (in the call data; committed to as keccak256(bindingProof)).
    ///         Any account may bind any DID: uniqueness is not enforced on chain, a reader accepts a
    ///         binding only when its published proof verifies (signed by the DID's key for this account).
    ///         Re-binding overwrites the sender's commitment.
    function bind(string calldata did, bytes32 didDocDigest, bytes32 keyAgreementKey, bytes calldata bindingProof)
        external;

    /// @notice Operator only: grant `role` to a bound `account`, backed by credential `credentialHash`.
    function grantParticipantRole(address account, bytes32 role, bytes32 credentialHash, uint64 validUntil) external;

    /// @notice Admin only: accept `grantParticipantRole` from `gate` alone (the Onboarding contract:
    ///         every role then needs an approved application); the zero address lifts the gate.
    function setApplicationGate(address gate) external;

    /// @notice The application gate (zero: any OPERATOR grants roles directly).
    function applicationGate() external view returns (address);

    /// @notice Operator only: revoke `role` from `account`.
    function revokeParticipantRole(address account, bytes32 role, bytes32 reasonHash) external;

    /// @notice Operator only: revoke a credential by hash; roles backed by it stop counting.
    function revokeCredential(bytes32 credentialHash, bytes32 reasonHash) external;

    /// @notice True if `account` holds `role`, unexpired, backed by an unrevoked credential.
    function hasParticipantRole(address account, bytes32 role) external view returns (bool);

    /// @notice The commitment to `account`'s current identity (`identityCommitment`) and when it was
    ///         bound; both zero if the account never bound.
    function commitmentOf(address account) external view returns (bytes27 commitment, uint40 boundAt);

    /// @notice True if `account` has bound a DID.
    function isBound(address account) external view returns (bool);

    /// @notice True if `identity` is exactly `account`'s current identity (its commitment matches).
    function isCurrentIdentity(address account, Identity calldata identity) external view returns (bool);

    /// @notice The commitment `bind` stores for `identity`: the first 27 bytes of
    ///         keccak256(abi.encode(didHash, didDocDigest, keyAgreementKey, bindingProofHash)).
    function identityCommitment(Identity calldata identity) external pure returns (bytes27);

    /// @notice The credential hash backing `role` for `account`, and its expiry.
    function roleCredential(address account, bytes32 role) external view returns (bytes32 credentialHash, uint64 validUntil);

    /// @notice True if `credentialHash` was revoked.
    function isCredentialRevoked(bytes32 credentialHash) external view returns (bool);
}
