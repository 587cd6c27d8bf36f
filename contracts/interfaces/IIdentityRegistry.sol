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
        bytes32 bindingProofHash; // keccak256 of the published binding proof (bind's bindingProof)
        uint64 boundAt;
    }

    /// @notice Emitted when `account` binds (or re-binds) itself to `did`. `bindingProof` is the
    ///         published two-way binding proof (canonical JSON, did/binding.py) and
    ///         `bindingProofHash` its keccak256. The EVM cannot check the DID's Ed25519 signature
    ///         in it, so a reader (the auditor's trail) verifies it off chain against the DID's key
    ///         before it shows the account under that DID.
    event IdentityBound(
        address indexed account,
        bytes32 indexed didHash,
        string did,
        bytes32 didDocDigest,
        bytes32 keyAgreementKey,
        bytes32 bindingProofHash,
        bytes bindingProof
    );
    /// @notice Emitted when an operator attests, having checked it off chain, that the binding
    ///         proof `bindingProofHash` of `didHash` to `account` verifies (the DID key signed it).
    ///         That account may then take the DID over from whoever holds it (`bind`).
    event BindingAttested(bytes32 indexed didHash, address indexed account, bytes32 bindingProofHash, address operator);
    /// @notice Emitted when `account`, attested by an operator, takes `didHash` over from `previous`
    ///         (a squatter: its identity record is cleared).
    event IdentitySuperseded(bytes32 indexed didHash, address indexed previous, address indexed account);
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

    error DidAlreadyBound(bytes32 didHash, address account);
    error EmptyDid();
    error NotBound(address account);
    error RoleNotHeld(address account, bytes32 role);
    error CredentialIsRevoked(bytes32 credentialHash);
    error InvalidValidity(uint64 validUntil);
    error BindingProofTooLong(uint256 length, uint256 maxLength);
    /// @notice Roles are granted only through `gate` (the onboarding review: an approved application).
    error GrantRequiresApplication(address account, bytes32 role, address gate);

    /// @notice Bind the sender's account to `did` (the account "signs the DID" by sending this) and
    ///         publish its binding proof (stored as keccak256(bindingProof), emitted in full).
    ///         First come, first served, except that an account an operator attested for `did`
    ///         with this very proof (`attestBinding`) takes the DID over from its current holder.
    function bind(string calldata did, bytes32 didDocDigest, bytes32 keyAgreementKey, bytes calldata bindingProof)
        external;

    /// @notice Operator only: attest that the binding proof `bindingProofHash` binding `didHash` to
    ///         `account` verifies (checked off chain: the DID key and the account both signed it).
    ///         `account == address(0)` withdraws the attestation of `didHash`.
    function attestBinding(bytes32 didHash, address account, bytes32 bindingProofHash) external;

    /// @notice The account an operator attested for `didHash`, with the proof hash (zero if none).
    function bindingAttestation(bytes32 didHash) external view returns (address account, bytes32 bindingProofHash);

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

    /// @notice The identity bound to `account` (didHash == 0 if none).
    function identityOf(address account) external view returns (Identity memory);

    /// @notice The account bound to `didHash` (zero address if none).
    function accountOfDid(bytes32 didHash) external view returns (address);

    /// @notice The credential hash backing `role` for `account`, and its expiry.
    function roleCredential(address account, bytes32 role) external view returns (bytes32 credentialHash, uint64 validUntil);

    /// @notice True if `credentialHash` was revoked.
    function isCredentialRevoked(bytes32 credentialHash) external view returns (bool);
}
