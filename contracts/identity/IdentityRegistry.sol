// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IIdentityRegistry} from "../interfaces/IIdentityRegistry.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";

/// @title IdentityRegistry
/// @notice Account → DID binding (a commitment per account, the record in its `IdentityBound`
///         event), DID-document digest, X25519 key-agreement key, and the
///         participant roles the operator grants on the strength of an off-chain credential
///         (002 §3.4.1). Operators are the AccessControl OPERATOR role; the admin appoints them.
contract IdentityRegistry is IIdentityRegistry, AccessControlDefaultAdminRules {
    /// @notice Delay before a new admin may accept the admin role (two-step transfer).
    uint48 public constant ADMIN_TRANSFER_DELAY = 2 days;
    /// @notice AccessControl role of the accounts that grant and revoke participant roles.
    bytes32 public constant OPERATOR_ROLE = TdsRoles.OPERATOR;

    /// @dev Both fields in one slot would need a shorter credential digest; we keep the full hash.
    struct RoleRecord {
        bytes32 credentialHash;
        uint64 validUntil; // 0 = no expiry
    }

    /// @notice Raised when the operator grants a role that is not one of the seven participant roles.
    error UnknownParticipantRole(bytes32 role);
    /// @notice Raised when a role would be backed by no credential at all.
    error EmptyCredentialHash(address account, bytes32 role);

    /// @notice Largest binding proof `bind` publishes (a did:key proof is about 480 bytes).
    uint256 public constant MAX_BINDING_PROOF = 2048;

    /// @dev Per account ONE slot: `identityCommitment` of its record in the high 27 bytes, the
    ///      uint40 `boundAt` in the low 5 (a first bind writes one fresh slot, issue 14).
    mapping(address account => bytes32) private _commitments;
    mapping(address account => mapping(bytes32 role => RoleRecord)) private _roles;
    mapping(bytes32 credentialHash => bool) private _revokedCredentials;
    /// @dev When set, the only account whose `grantParticipantRole` is accepted (the onboarding review).
    address private _applicationGate;

    /// @param admin the operator's admin account (DEFAULT_ADMIN_ROLE and OPERATOR_ROLE).
    constructor(address admin) AccessControlDefaultAdminRules(ADMIN_TRANSFER_DELAY, admin) {
        _grantRole(OPERATOR_ROLE, admin);
    }

    /// @inheritdoc IIdentityRegistry
    /// @dev Writes only the sender's commitment slot and logs the record; no DID index, so no
    ///      uniqueness: a squatter's bind blocks no one (readers check the published proof).
    function bind(string calldata did, bytes32 didDocDigest, bytes32 keyAgreementKey, bytes calldata bindingProof)
        external
    {
        if (bytes(did).length == 0) revert EmptyDid();
        if (bindingProof.length > MAX_BINDING_PROOF) {
            revert BindingProofTooLong(bindingProof.length, MAX_BINDING_PROOF);
        }
        bytes32 didHash = keccak256(bytes(did));
        bytes32 proofHash = keccak256(bindingProof);
        bytes27 c = _commit(didHash, didDocDigest, keyAgreementKey, proofHash);
        _commitments[msg.sender] = bytes32(c) | bytes32(uint256(uint40(block.timestamp)));
        emit IdentityBound(msg.sender, didHash, did, didDocDigest, keyAgreementKey, proofHash);
    }

    /// @dev 27 bytes of keccak256: a second preimage (another record matching someone's commitment)
    ///      costs 2^216, a collision between two records of one's own 2^108, and would only let an
    ///      account present one of two records it chose itself.
    function _commit(bytes32 didHash, bytes32 didDocDigest, bytes32 keyAgreementKey, bytes32 proofHash)
        private
        pure
        returns (bytes27)
    {
        return bytes27(keccak256(abi.encode(didHash, didDocDigest, keyAgreementKey, proofHash)));
    }

    /// @inheritdoc IIdentityRegistry
    function grantParticipantRole(address account, bytes32 role, bytes32 credentialHash, uint64 validUntil)
        external
        onlyRole(OPERATOR_ROLE)
    {
        address gate = _applicationGate;
        if (gate != address(0) && msg.sender != gate) revert GrantRequiresApplication(account, role, gate);
        if (!TdsRoles.isParticipantRole(role)) revert UnknownParticipantRole(role);
        if (_commitments[account] == bytes32(0)) revert NotBound(account);
        if (credentialHash == bytes32(0)) revert EmptyCredentialHash(account, role);
        if (_revokedCredentials[credentialHash]) revert CredentialIsRevoked(credentialHash);
        if (validUntil != 0 && validUntil <= block.timestamp) revert InvalidValidity(validUntil);
        _roles[account][role] = RoleRecord(credentialHash, validUntil);
        emit ParticipantRoleGranted(account, role, credentialHash, validUntil, msg.sender);
    }

    /// @inheritdoc IIdentityRegistry
    function setApplicationGate(address gate) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _applicationGate = gate;
        emit ApplicationGateSet(gate, msg.sender);
    }

    /// @inheritdoc IIdentityRegistry
    function applicationGate() external view returns (address) {
        return _applicationGate;
    }

    /// @inheritdoc IIdentityRegistry
    function revokeParticipantRole(address account, bytes32 role, bytes32 reasonHash)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (_roles[account][role].credentialHash == bytes32(0)) revert RoleNotHeld(account, role);
        delete _roles[account][role];
        emit ParticipantRoleRevoked(account, role, reasonHash, msg.sender);
    }

    /// @inheritdoc IIdentityRegistry
    function revokeCredential(bytes32 credentialHash, bytes32 reasonHash) external onlyRole(OPERATOR_ROLE) {
        if (_revokedCredentials[credentialHash]) revert CredentialIsRevoked(credentialHash);
        _revokedCredentials[credentialHash] = true;
        emit CredentialRevoked(credentialHash, reasonHash, msg.sender);
    }

    /// @inheritdoc IIdentityRegistry
    function hasParticipantRole(address account, bytes32 role) public view returns (bool) {
        RoleRecord storage r = _roles[account][role];
        bytes32 cred = r.credentialHash;
        if (cred == bytes32(0)) return false;
        uint64 until = r.validUntil;
        if (until != 0 && until < block.timestamp) return false;
        return !_revokedCredentials[cred];
    }

    /// @inheritdoc IIdentityRegistry
    function commitmentOf(address account) external view returns (bytes27 commitment, uint40 boundAt) {
        bytes32 slot = _commitments[account];
        return (bytes27(slot), uint40(uint256(slot)));
    }

    /// @inheritdoc IIdentityRegistry
    function isBound(address account) external view returns (bool) {
        return _commitments[account] != bytes32(0);
    }

    /// @inheritdoc IIdentityRegistry
    function isCurrentIdentity(address account, Identity calldata identity) external view returns (bool) {
        bytes32 slot = _commitments[account];
        return slot != bytes32(0) && bytes27(slot) == identityCommitment(identity);
    }

    /// @inheritdoc IIdentityRegistry
    function identityCommitment(Identity calldata identity) public pure returns (bytes27) {
        return _commit(identity.didHash, identity.didDocDigest, identity.keyAgreementKey, identity.bindingProofHash);
    }

    /// @inheritdoc IIdentityRegistry
    function roleCredential(address account, bytes32 role)
        external
        view
        returns (bytes32 credentialHash, uint64 validUntil)
    {
        RoleRecord storage r = _roles[account][role];
        return (r.credentialHash, r.validUntil);
    }

    /// @inheritdoc IIdentityRegistry
    function isCredentialRevoked(bytes32 credentialHash) external view returns (bool) {
        return _revokedCredentials[credentialHash];
    }
}
