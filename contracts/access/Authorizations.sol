// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {NoncesKeyed} from "@openzeppelin/contracts/utils/NoncesKeyed.sol";
import {IAssetRegistry} from "../interfaces/IAssetRegistry.sol";
import {IAuthorizations} from "../interfaces/IAuthorizations.sol";
import {IIdentityRegistry} from "../interfaces/IIdentityRegistry.sol";
import {Operations} from "../libraries/Operations.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";
import {TdsTypeHashes} from "../libraries/TdsTypeHashes.sol";

/// @title Authorizations
/// @notice Usage agreements (grants) over data-asset certificates. The certificate's current
///         holder is the provider: it grants, approves, signs, revokes and freezes. A grant's
///         uses are consumed only by the Jobs contract (JOBS role), which checks every term here.
///         Grant: Active → (Frozen ⇄ Active) → Revoked | Closed. Expiry and exhaustion are
///         checked at use time, not stored.
contract Authorizations is IAuthorizations, AccessControlDefaultAdminRules, EIP712, NoncesKeyed {
    /// @notice Regulators: freeze any grant, lift any freeze.
    bytes32 public constant REGULATOR_ROLE = TdsRoles.REGULATOR;
    /// @notice The operator's monitoring service: freeze a grant with an alert reason code.
    bytes32 public constant MONITOR_ROLE = TdsRoles.MONITOR;
    /// @notice The Jobs contract: the only caller of `consume`.
    bytes32 public constant JOBS_ROLE = TdsRoles.JOBS;

    /// @notice Delay before a new admin may accept the admin role (two-step transfer).
    uint48 public constant ADMIN_TRANSFER_DELAY = 2 days;

    IIdentityRegistry private immutable _identity;
    IAssetRegistry private immutable _assets;

    mapping(uint256 grantId => Grant) private _grants;
    mapping(uint256 applicationId => Application) private _applications;
    mapping(address token => bool) private _paymentTokens;
    mapping(uint256 grantId => uint32) private _restored;
    uint128 private _grantCount;
    uint128 private _applicationCount;

    /// @param admin the operator's admin account (DEFAULT_ADMIN_ROLE: wires roles and payment
    ///        tokens; handed over in two steps with ADMIN_TRANSFER_DELAY).
    constructor(address admin, IIdentityRegistry identity, IAssetRegistry assets)
        EIP712("TDS Authorizations", "1")
        AccessControlDefaultAdminRules(ADMIN_TRANSFER_DELAY, admin)
    {
        _identity = identity;
        _assets = assets;
    }

    // ------------------------------------------------------------------ issuing

    /// @inheritdoc IAuthorizations
    function grant(GrantTerms calldata terms) external returns (uint256) {
        address holder = _checkTerms(terms);
        if (holder != msg.sender) revert NotAssetHolder(terms.assetId, msg.sender);
        return _issue(terms, holder, GrantOrigin.Direct);
    }

    /// @inheritdoc IAuthorizations
    function grantBySignature(GrantTerms calldata terms, uint256 nonce, uint256 deadline, bytes calldata signature)
        external
        returns (uint256)
    {
        if (block.timestamp > deadline) revert SignatureExpired(deadline, block.timestamp);
        address holder = _checkTerms(terms);
        uint32 epoch = _assets.transfersOf(terms.assetId);
        if (uint32(nonce >> 224) != epoch) revert OfferOutdated(terms.assetId, uint32(nonce >> 224), epoch);
        bytes32 digest = _hashTypedDataV4(TdsTypeHashes.hashGrant(terms, nonce, deadline));
        (address recovered,,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (recovered != holder && !SignatureChecker.isValidERC1271SignatureNow(holder, digest, signature)) {
            revert InvalidGrantSignature(holder, recovered);
        }
        _useCheckedNonce(holder, nonce);
        return _issue(terms, holder, GrantOrigin.Signature);
    }

    /// @inheritdoc IAuthorizations
    function applyFor(
        uint256 assetId,
        bytes32 purposeHash,
        uint16 operations,
        uint8 kind,
        uint32 notBefore,
        uint32 expiry,
        uint32 maxUses
    ) external returns (uint256 applicationId) {
        GrantTerms memory t = GrantTerms(
            assetId, msg.sender, purposeHash, operations, kind, notBefore, expiry, maxUses, address(0), 0, address(0)
        );
        _checkTerms(t);
        applicationId = ++_applicationCount;
        _applications[applicationId] = Application({
            consumer: msg.sender,
            operations: operations,
            kind: GrantKind(kind),
            status: ApplicationStatus.Pending,
            maxUses: maxUses,
            assetId: uint32(assetId),
            notBefore: notBefore,
            expiry: expiry,
            purposeHash: purposeHash
        });
        emit ApplicationSubmitted(
            applicationId, assetId, msg.sender, purposeHash, operations, kind, notBefore, expiry, maxUses
        );
    }

    /// @inheritdoc IAuthorizations
    function approve(uint256 applicationId, address paymentToken, uint96 pricePerUse, address algorithmProvider)
        external
        returns (uint256 grantId)
    {
        Application storage a = _pendingApplication(applicationId);
        GrantTerms memory t = GrantTerms(
            a.assetId, a.consumer, a.purposeHash, a.operations, uint8(a.kind), a.notBefore, a.expiry, a.maxUses,
            paymentToken, pricePerUse, algorithmProvider
        );
        address holder = _checkTerms(t);
        if (holder != msg.sender) revert NotAssetHolder(t.assetId, msg.sender);
        a.status = ApplicationStatus.Approved;
        grantId = _issue(t, holder, GrantOrigin.Application);
        emit ApplicationApproved(applicationId, grantId, msg.sender);
    }

    /// @inheritdoc IAuthorizations
    function reject(uint256 applicationId, bytes32 reasonHash) external {
        Application storage a = _pendingApplication(applicationId);
        (address holder,,,) = _assets.termsOf(a.assetId);
        if (holder != msg.sender) revert NotAssetHolder(a.assetId, msg.sender);
        a.status = ApplicationStatus.Rejected;
        emit ApplicationRejected(applicationId, msg.sender, reasonHash);
    }

    // ------------------------------------------------------------------ lifecycle

    /// @inheritdoc IAuthorizations
    function revoke(uint256 grantId, bytes32 reasonHash) external {
        Grant storage g = _activeGrant(grantId);
        (address holder,,,) = _assets.termsOf(g.assetId);
        if (holder != msg.sender) revert NotAssetHolder(g.assetId, msg.sender);
        g.status = GrantStatus.Revoked;
        emit GrantRevoked(grantId, msg.sender, reasonHash);
    }

    /// @inheritdoc IAuthorizations
    /// @dev A higher authority may escalate a lower one's freeze (holder < monitor < regulator).
    function freeze(uint256 grantId, uint16 reasonCode) external {
        Grant storage g = _activeGrant(grantId);
        IAssetRegistry.FreezeAuthority authority = _authorityOf(grantId, g.assetId, msg.sender);
        if (g.frozenBy >= authority) revert AlreadyFrozen(grantId, g.frozenBy);
        g.frozenBy = authority;
        emit GrantFrozen(grantId, msg.sender, authority, reasonCode);
    }

    /// @inheritdoc IAuthorizations
    /// @dev The monitor only raises alerts; lifting a monitor or regulator freeze needs a regulator.
    function unfreeze(uint256 grantId) external {
        Grant storage g = _activeGrant(grantId);
        IAssetRegistry.FreezeAuthority held = g.frozenBy;
        if (held == IAssetRegistry.FreezeAuthority.None) revert GrantNotFrozen(grantId);
        IAssetRegistry.FreezeAuthority authority = _authorityOf(grantId, g.assetId, msg.sender);
        if (authority == IAssetRegistry.FreezeAuthority.Monitor || authority < held) revert FreezeHeldBy(grantId, held);
        g.frozenBy = IAssetRegistry.FreezeAuthority.None;
        emit GrantUnfrozen(grantId, msg.sender, held);
    }

    /// @inheritdoc IAuthorizations
    function close(uint256 grantId, bytes32 destructionProofHash) external {
        Grant storage g = _activeGrant(grantId);
        if (g.consumer != msg.sender) revert NotGrantConsumer(grantId, msg.sender);
        g.status = GrantStatus.Closed;
        emit GrantClosed(grantId, msg.sender, destructionProofHash);
    }

    /// @inheritdoc IAuthorizations
    function cancelOffer(uint256 nonce) external {
        _useCheckedNonce(msg.sender, nonce);
        emit OfferCancelled(msg.sender, nonce);
    }

    /// @inheritdoc IAuthorizations
    function restoreUse(uint256 grantId, uint256 jobId) external onlyRole(JOBS_ROLE) {
        uint32 restored = _restored[grantId] + 1;
        _restored[grantId] = restored;
        emit UseRestored(grantId, jobId, restored);
    }

    /// @inheritdoc IAuthorizations
    function checkRelease(uint256 grantId) external view returns (address holder, address consumer) {
        Grant storage g = _activeGrant(grantId);
        if (g.frozenBy != IAssetRegistry.FreezeAuthority.None) revert GrantIsFrozen(grantId, g.frozenBy);
        IAssetRegistry.AssetState state;
        (holder, state,,) = _assets.termsOf(g.assetId);
        if (state != IAssetRegistry.AssetState.Active) revert AssetNotUsable(g.assetId, state);
        consumer = g.consumer;
        if (!_identity.hasParticipantRole(consumer, TdsRoles.CONSUMER)) revert ConsumerNotRegistered(consumer);
        if (!_identity.hasParticipantRole(holder, TdsRoles.PROVIDER)) revert ProviderNotRegistered(holder);
    }

    /// @inheritdoc IAuthorizations
    function consume(uint256 grantId, address consumer, uint16 operation)
        external
        onlyRole(JOBS_ROLE)
        returns (uint32 useIndex, uint256 assetId, address paymentToken, uint96 price)
    {
        Grant storage g = _activeGrant(grantId);
        if (g.consumer != consumer) revert NotGrantConsumer(grantId, consumer);
        if (g.frozenBy != IAssetRegistry.FreezeAuthority.None) revert GrantIsFrozen(grantId, g.frozenBy);
        if (block.timestamp < g.notBefore) revert GrantNotYetValid(grantId, g.notBefore, block.timestamp);
        uint32 expiry = g.expiry;
        if (expiry != 0 && block.timestamp > expiry) revert GrantExpired(grantId, expiry, block.timestamp);
        uint16 ops = g.operations;  // widened from the stored byte
        if (!Operations.isValidSet(operation) || !Operations.isSubset(operation, ops)) {
            revert OperationNotAllowed(grantId, operation, ops);
        }
        useIndex = g.uses;
        // uses only grows (job ids are grantId << 32 | use index); given-back uses are counted
        // apart and read only when the grant would otherwise be exhausted
        if (useIndex >= g.maxUses && useIndex - _restored[grantId] >= g.maxUses) {
            revert UsesExhausted(grantId, useIndex - _restored[grantId], g.maxUses);
        }
        assetId = g.assetId;
        IAssetRegistry.AssetState state = _assets.stateOf(assetId);
        if (state != IAssetRegistry.AssetState.Active) revert AssetNotUsable(assetId, state);
        if (!_identity.hasParticipantRole(consumer, TdsRoles.CONSUMER)) revert ConsumerNotRegistered(consumer);
        g.uses = useIndex + 1;
        return (useIndex, assetId, g.paymentToken, g.pricePerUse);
    }

    /// @inheritdoc IAuthorizations
    function setPaymentToken(address token, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (token == address(0)) revert PaymentTokenNotAllowed(token);
        _paymentTokens[token] = allowed;
        emit PaymentTokenSet(token, allowed);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IAuthorizations
    function grantOf(uint256 grantId) external view returns (Grant memory) {
        Grant storage g = _grants[grantId];
        if (g.status == GrantStatus.None) revert UnknownGrant(grantId);
        return g;
    }

    /// @inheritdoc IAuthorizations
    function applicationOf(uint256 applicationId) external view returns (Application memory) {
        Application storage a = _applications[applicationId];
        if (a.status == ApplicationStatus.None) revert UnknownApplication(applicationId);
        return a;
    }

    /// @inheritdoc IAuthorizations
    function isUsable(uint256 grantId, address consumer, uint16 operation) external view returns (bool) {
        Grant storage g = _grants[grantId];
        return g.status == GrantStatus.Active && g.consumer == consumer
            && g.frozenBy == IAssetRegistry.FreezeAuthority.None && block.timestamp >= g.notBefore
            && (g.expiry == 0 || block.timestamp <= g.expiry) && Operations.isValidSet(operation)
            && Operations.isSubset(operation, g.operations) && g.uses - _restored[grantId] < g.maxUses
            && _assets.stateOf(g.assetId) == IAssetRegistry.AssetState.Active
            && _identity.hasParticipantRole(consumer, TdsRoles.CONSUMER);
    }

    /// @inheritdoc IAuthorizations
    function grantDigest(GrantTerms calldata terms, uint256 nonce, uint256 deadline) external view returns (bytes32) {
        return _hashTypedDataV4(TdsTypeHashes.hashGrant(terms, nonce, deadline));
    }

    /// @inheritdoc IAuthorizations
    function grantCount() external view returns (uint256) {
        return _grantCount;
    }

    /// @inheritdoc IAuthorizations
    function restoredUses(uint256 grantId) external view returns (uint32) {
        return _restored[grantId];
    }

    /// @inheritdoc IAuthorizations
    function isPaymentTokenAllowed(address token) public view returns (bool) {
        return token == address(0) || _paymentTokens[token];
    }

    // ------------------------------------------------------------------ internals

    /// @dev Validate terms against the certificate and the registry; return the certificate holder.
    function _checkTerms(GrantTerms memory t) private view returns (address holder) {
        if (t.assetId > type(uint32).max) revert AssetIdTooLarge(t.assetId);
        IAssetRegistry.AssetState state;
        uint16 allowed;
        (holder, state, allowed,) = _assets.termsOf(t.assetId);
        if (state != IAssetRegistry.AssetState.Active) revert AssetNotUsable(t.assetId, state);
        if (!Operations.isValidSet(t.operations)) revert InvalidOperation(t.operations);
        if (!Operations.isSubset(t.operations, allowed)) revert OperationsOutOfScope(t.assetId, t.operations, allowed);
        if (t.kind > uint8(GrantKind.PerPeriod)) revert InvalidGrantKind(t.kind);
        if (t.expiry != 0 && (t.expiry <= t.notBefore || t.expiry <= block.timestamp)) {
            revert InvalidValidity(t.notBefore, t.expiry, block.timestamp);
        }
        if (t.kind == uint8(GrantKind.PerTask)) {
            if (t.maxUses == 0) revert InvalidMaxUses(t.kind, t.maxUses);
        } else if (t.expiry == 0) {
            revert InvalidValidity(t.notBefore, t.expiry, block.timestamp);
        }
        if (!isPaymentTokenAllowed(t.paymentToken)) revert PaymentTokenNotAllowed(t.paymentToken);
        if (!_identity.hasParticipantRole(t.consumer, TdsRoles.CONSUMER)) revert ConsumerNotRegistered(t.consumer);
        if (!_identity.hasParticipantRole(holder, TdsRoles.PROVIDER)) revert ProviderNotRegistered(holder);
    }

    /// @dev The role that consumes grant uses may be held by contracts only (the Jobs contract),
    ///      never by an externally-owned account.
    function _grantRole(bytes32 role, address account) internal override returns (bool) {
        if (role == JOBS_ROLE && account.code.length == 0) revert JobsRoleNeedsContract(account);
        return super._grantRole(role, account);
    }

    function _issue(GrantTerms memory t, address holder, GrantOrigin origin) private returns (uint256 grantId) {
        grantId = ++_grantCount;
        _grants[grantId] = Grant({
            consumer: t.consumer,
            uses: 0,
            maxUses: t.maxUses == 0 ? type(uint32).max : t.maxUses,
            operations: uint8(t.operations), // isValidSet checked: six defined bits
            status: GrantStatus.Active,
            frozenBy: IAssetRegistry.FreezeAuthority.None,
            kind: GrantKind(t.kind),
            algorithmProvider: t.algorithmProvider,
            assetId: uint32(t.assetId),
            notBefore: t.notBefore,
            expiry: t.expiry,
            paymentToken: t.paymentToken,
            pricePerUse: t.pricePerUse
        });
        emit GrantIssued(grantId, t.assetId, t.consumer, holder, origin, t);
    }

    function _activeGrant(uint256 grantId) private view returns (Grant storage g) {
        g = _grants[grantId];
        GrantStatus s = g.status;
        if (s != GrantStatus.Active) {
            if (s == GrantStatus.None) revert UnknownGrant(grantId);
            revert GrantNotActive(grantId, s);
        }
    }

    function _pendingApplication(uint256 applicationId) private view returns (Application storage a) {
        a = _applications[applicationId];
        if (a.status != ApplicationStatus.Pending) {
            if (a.status == ApplicationStatus.None) revert UnknownApplication(applicationId);
            revert ApplicationNotPending(applicationId, a.status);
        }
    }

    function _authorityOf(uint256 grantId, uint256 assetId, address account)
        private
        view
        returns (IAssetRegistry.FreezeAuthority)
    {
        if (hasRole(REGULATOR_ROLE, account)) return IAssetRegistry.FreezeAuthority.Regulator;
        if (hasRole(MONITOR_ROLE, account)) return IAssetRegistry.FreezeAuthority.Monitor;
        (address holder,,,) = _assets.termsOf(assetId);
        if (holder == account) return IAssetRegistry.FreezeAuthority.Holder;
        revert NotFreezeAuthority(grantId, account);
    }
}
