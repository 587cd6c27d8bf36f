// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IIdentityRegistry} from "../interfaces/IIdentityRegistry.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";

/// @title IdentityRegistry
/// @notice Account ↔ DID binding, DID-document digest, X25519 key-agreement key, and the
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

    /// @dev An operator's attestation that `account`'s binding proof for a DID verifies.
    struct Attestation {
        address account;
        bytes32 bindingProofHash;
    }

    mapping(address account => Identity) private _identities;
    mapping(bytes32 didHash => address) private _accountOfDid;
    mapping(address account => mapping(bytes32 role => RoleRecord)) private _roles;
    mapping(bytes32 credentialHash => bool) private _revokedCredentials;
    mapping(bytes32 didHash => Attestation) private _attestations;
    /// @dev When set, the only account whose `grantParticipantRole` is accepted (the onboarding review).
    address private _applicationGate;

    /// @param admin the operator's admin account (DEFAULT_ADMIN_ROLE and OPERATOR_ROLE).
    constructor(address admin) AccessControlDefaultAdminRules(ADMIN_TRANSFER_DELAY, admin) {
        _grantRole(OPERATOR_ROLE, admin);
    }

    /// @inheritdoc IIdentityRegistry
    /// @dev Re-binding with the same DID rotates the document digest, key and proof in place;
    ///      binding another DID releases the previous one. A DID held by another account is
    ///      refused (`DidAlreadyBound`) unless an operator attested the sender for it with this
    ///      very proof: then the holder (a squatter, since the DID key signed the sender's proof)
    ///      loses its record. The attestation check is off the common path, so a normal bind
    ///      pays only for publishing its proof.
    function bind(string calldata did, bytes32 didDocDigest, bytes32 keyAgreementKey, bytes calldata bindingProof)
        external
    {
        if (bytes(did).length == 0) revert EmptyDid();
        if (bindingProof.length > MAX_BINDING_PROOF) {
            revert BindingProofTooLong(bindingProof.length, MAX_BINDING_PROOF);
        }
        bytes32 didHash = keccak256(bytes(did));
        bytes32 proofHash = keccak256(bindingProof);
        address holder = _accountOfDid[didHash];
        if (holder != address(0) && holder != msg.sender) _supersede(didHash, holder, proofHash);
        Identity storage id = _identities[msg.sender];
        bytes32 previous = id.didHash;
        if (previous != didHash) {
            if (previous != bytes32(0)) delete _accountOfDid[previous];
            _accountOfDid[didHash] = msg.sender;
            id.didHash = didHash;
        }
        id.didDocDigest = didDocDigest;
        id.keyAgreementKey = keyAgreementKey;
        id.bindingProofHash = proofHash;
        id.boundAt = uint64(block.timestamp);
        emit IdentityBound(msg.sender, didHash, did, didDocDigest, keyAgreementKey, proofHash, bindingProof);
    }

    /// @dev Take `didHash` from `holder` for the sender, if an operator attested the sender's proof.
    function _supersede(bytes32 didHash, address holder, bytes32 proofHash) private {
        Attestation storage a = _attestations[didHash];
        if (a.account != msg.sender || a.bindingProofHash != proofHash) revert DidAlreadyBound(didHash, holder);
        delete _attestations[didHash];
        delete _identities[holder];
        emit IdentitySuperseded(didHash, holder, msg.sender);
    }

    /// @inheritdoc IIdentityRegistry
    function attestBinding(bytes32 didHash, address account, bytes32 bindingProofHash)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (account == address(0)) {
            delete _attestations[didHash];
        } else {
            _attestations[didHash] = Attestation(account, bindingProofHash);
        }
        emit BindingAttested(didHash, account, bindingProofHash, msg.sender);
    }

    /// @inheritdoc IIdentityRegistry
    function bindingAttestation(bytes32 didHash) external view returns (address account, bytes32 bindingProofHash) {
        Attestation storage a = _attestations[didHash];
        return (a.account, a.bindingProofHash);
    }

    /// @inheritdoc IIdentityRegistry
    function grantParticipantRole(address account, bytes32 role, bytes32 credentialHash, uint64 validUntil)
        external
        onlyRole(OPERATOR_ROLE)
    {
        address gate = _applicationGate;
        if (gate != address(0) && msg.sender != gate) revert GrantRequiresApplication(account, role, gate);
        if (!TdsRoles.isParticipantRole(role)) revert UnknownParticipantRole(role);
        if (_identities[account].didHash == bytes32(0)) revert NotBound(account);
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
    function identityOf(address account) external view returns (Identity memory) {
        return _identities[account];
    }

    /// @inheritdoc IIdentityRegistry
    function accountOfDid(bytes32 didHash) external view returns (address) {
        return _accountOfDid[didHash];
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
