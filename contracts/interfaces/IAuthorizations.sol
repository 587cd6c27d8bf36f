// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAssetRegistry} from "./IAssetRegistry.sol";

/// @title IAuthorizations
/// @notice Usage agreements over data-asset certificates (000 §7.2.3, 002 §3.4.3). A grant fixes
///         consumer, purpose, operations, validity window, maximum uses, price per use and payment
///         asset. Three ways in: direct grant, application + approval, or the provider's EIP-712
///         signature submitted by anyone. Only the Jobs contract consumes uses.
interface IAuthorizations {
    enum GrantStatus { None, Active, Revoked, Closed }
    /// @dev PerTask: counts tasks up to maxUses. PerPeriod: valid for [notBefore, expiry]
    ///      (expiry required), maxUses = 0 means unlimited within the period.
    enum GrantKind { PerTask, PerPeriod }
    enum ApplicationStatus { None, Pending, Approved, Rejected }
    /// @dev How a grant came to be (in GrantIssued).
    enum GrantOrigin { Direct, Application, Signature }

    /// @notice Terms a provider grants or signs. Field order is the EIP-712 `Grant` field order.
    struct GrantTerms {
        uint256 assetId;
        address consumer;
        bytes32 purposeHash;
        uint16 operations;
        uint8 kind; // GrantKind
        uint32 notBefore;
        uint32 expiry; // 0 = no expiry (PerTask only)
        uint32 maxUses; // 0 = unlimited (PerPeriod only)
        address paymentToken; // address(0) = native coin
        uint96 pricePerUse;
        address algorithmProvider; // address(0) = its share goes to the provider
    }

    /// @dev Three storage slots; slot 0 is the only one a use writes. Operations fit in a byte
    ///      (seven defined bits), asset ids in 32 bits and timestamps in 32 bits (until 2106).
    struct Grant {
        address consumer;
        uint32 uses;
        uint32 maxUses;
        uint8 operations;
        GrantStatus status;
        IAssetRegistry.FreezeAuthority frozenBy;
        GrantKind kind;
        address algorithmProvider;
        uint32 assetId;
        uint32 notBefore;
        uint32 expiry;
        address paymentToken;
        uint96 pricePerUse;
    }

    struct Application {
        address consumer;
        uint16 operations;
        GrantKind kind;
        ApplicationStatus status;
        uint32 maxUses;
        uint32 assetId;
        uint32 notBefore;
        uint32 expiry;
        bytes32 purposeHash;
    }

    /// @notice Emitted when grant `grantId` over `assetId` is issued to `consumer`.
    event GrantIssued(
        uint256 indexed grantId,
        uint256 indexed assetId,
        address indexed consumer,
        address provider,
        GrantOrigin origin,
        GrantTerms terms
    );
    /// @notice Emitted when `consumer` applies for the use of `assetId` for `purposeHash`.
    event ApplicationSubmitted(
        uint256 indexed applicationId, uint256 indexed assetId, address indexed consumer, bytes32 purposeHash,
        uint16 operations, uint8 kind, uint32 notBefore, uint32 expiry, uint32 maxUses
    );
    /// @notice Emitted when the provider rejects application `applicationId`.
    event ApplicationRejected(uint256 indexed applicationId, address indexed provider, bytes32 reasonHash);
    /// @notice Emitted when the provider approves application `applicationId` as grant `grantId`.
    event ApplicationApproved(uint256 indexed applicationId, uint256 indexed grantId, address indexed provider);
    /// @notice Emitted when the certificate holder revokes `grantId` (final).
    event GrantRevoked(uint256 indexed grantId, address indexed by, bytes32 reasonHash);
    /// @notice Emitted when `by` freezes `grantId`; a monitor freeze is an alert with `reasonCode`
    ///         (the reason lives in this event only, not in storage).
    event GrantFrozen(
        uint256 indexed grantId, address indexed by, IAssetRegistry.FreezeAuthority authority, uint16 reasonCode
    );
    /// @notice Emitted when `by` lifts the freeze on `grantId`.
    event GrantUnfrozen(uint256 indexed grantId, address indexed by, IAssetRegistry.FreezeAuthority liftedAuthority);
    /// @notice Emitted when the consumer closes `grantId` with proof that its copies were destroyed.
    event GrantClosed(uint256 indexed grantId, address indexed consumer, bytes32 destructionProofHash);
    /// @notice Emitted when the Jobs contract gives back a use of `grantId` consumed by job `jobId`
    ///         that failed or was abandoned through no fault of the consumer.
    event UseRestored(uint256 indexed grantId, uint256 indexed jobId, uint32 restored);
    /// @notice Emitted when `holder` cancels its signed offer with keyed nonce `nonce` before anyone submits it.
    event OfferCancelled(address indexed holder, uint256 nonce);
    /// @notice Emitted when the admin allows or disallows an ERC-20 payment token.
    event PaymentTokenSet(address indexed token, bool allowed);

    error UnknownGrant(uint256 grantId);
    error GrantNotActive(uint256 grantId, GrantStatus status);
    error NotGrantConsumer(uint256 grantId, address account);
    error GrantIsFrozen(uint256 grantId, IAssetRegistry.FreezeAuthority frozenBy);
    error GrantNotYetValid(uint256 grantId, uint32 notBefore, uint256 nowTs);
    error GrantExpired(uint256 grantId, uint32 expiry, uint256 nowTs);
    error OperationNotAllowed(uint256 grantId, uint16 operation, uint16 allowed);
    error UsesExhausted(uint256 grantId, uint32 uses, uint32 maxUses);
    error AssetNotUsable(uint256 assetId, IAssetRegistry.AssetState state);
    error NotAssetHolder(uint256 assetId, address account);
    error OperationsOutOfScope(uint256 assetId, uint16 requested, uint16 allowed);
    error InvalidOperation(uint16 operation);
    error InvalidValidity(uint32 notBefore, uint32 expiry, uint256 nowTs);
    error InvalidMaxUses(uint8 kind, uint32 maxUses);
    error InvalidGrantKind(uint8 kind);
    error ConsumerNotRegistered(address consumer);
    error PaymentTokenNotAllowed(address token);
    error AssetIdTooLarge(uint256 assetId);
    error SignatureExpired(uint256 deadline, uint256 nowTs);
    error InvalidGrantSignature(address provider, address recovered);
    error UnknownApplication(uint256 applicationId);
    error ApplicationNotPending(uint256 applicationId, ApplicationStatus status);
    error NotFreezeAuthority(uint256 grantId, address account);
    error AlreadyFrozen(uint256 grantId, IAssetRegistry.FreezeAuthority frozenBy);
    error GrantNotFrozen(uint256 grantId);
    error FreezeHeldBy(uint256 grantId, IAssetRegistry.FreezeAuthority frozenBy);
    error ProviderNotRegistered(address provider);
    error OfferOutdated(uint256 assetId, uint32 signedEpoch, uint32 currentEpoch);
    error JobsRoleNeedsContract(address account);

    /// @notice Certificate holder: grant `terms` directly; returns the grant id.
    function grant(GrantTerms calldata terms) external returns (uint256 grantId);

    /// @notice Anyone (usually the consumer): submit terms signed by the certificate holder (EIP-712).
    /// @param nonce the holder's keyed nonce (NoncesKeyed: key << 64 | sequence); the key's top
    ///        32 bits are the certificate's transfer count when signed, so outstanding offers die
    ///        when the certificate changes hands.
    function grantBySignature(GrantTerms calldata terms, uint256 nonce, uint256 deadline, bytes calldata signature)
        external
        returns (uint256 grantId);

    /// @notice Consumer: apply for the use of an asset; returns the application id.
    function applyFor(
        uint256 assetId,
        bytes32 purposeHash,
        uint16 operations,
        uint8 kind,
        uint32 notBefore,
        uint32 expiry,
        uint32 maxUses
    ) external returns (uint256 applicationId);

    /// @notice Certificate holder: approve an application, adding the price terms; returns the grant id.
    function approve(uint256 applicationId, address paymentToken, uint96 pricePerUse, address algorithmProvider)
        external
        returns (uint256 grantId);

    /// @notice Certificate holder: reject an application.
    function reject(uint256 applicationId, bytes32 reasonHash) external;

    /// @notice Certificate holder: revoke a grant for good.
    function revoke(uint256 grantId, bytes32 reasonHash) external;

    /// @notice Holder, monitor or regulator: freeze a grant (a monitor freeze is an alert, 000 §12.2.3.2).
    function freeze(uint256 grantId, uint16 reasonCode) external;

    /// @notice Lift a freeze: the holder lifts its own, a regulator lifts any.
    function unfreeze(uint256 grantId) external;

    /// @notice Consumer: close the grant with a destruction-proof hash (000 §5.2.5).
    function close(uint256 grantId, bytes32 destructionProofHash) external;

    /// @notice Certificate holder: cancel a signed offer by using its keyed nonce (the key's
    ///         sequence must be the next one); any offer signed with it is refused from then on.
    function cancelOffer(uint256 nonce) external;

    /// @notice Jobs contract only: give back one use of `grantId` consumed by job `jobId`.
    function restoreUse(uint256 grantId, uint256 jobId) external;

    /// @notice Reverts with the named reason unless an answer under `grantId` may be released now:
    ///         grant active and not frozen, asset active, consumer holds CONSUMER and the
    ///         certificate holder holds PROVIDER. Returns the holder and the consumer.
    function checkRelease(uint256 grantId) external view returns (address holder, address consumer);

    /// @notice Jobs contract only: check every term, count one use; returns the use index and price.
    function consume(uint256 grantId, address consumer, uint16 operation)
        external
        returns (uint32 useIndex, uint256 assetId, address paymentToken, uint96 price);

    /// @notice Admin: allow or disallow an ERC-20 payment token (the native coin is always allowed).
    function setPaymentToken(address token, bool allowed) external;

    /// @notice The grant `grantId` (reverts UnknownGrant).
    function grantOf(uint256 grantId) external view returns (Grant memory);

    /// @notice The application `applicationId` (reverts UnknownApplication).
    function applicationOf(uint256 applicationId) external view returns (Application memory);

    /// @notice True if `grantId` would let `consumer` run `operation` right now (no revert).
    function isUsable(uint256 grantId, address consumer, uint16 operation) external view returns (bool);

    /// @notice EIP-712 digest of signed grant terms (what the holder's wallet signs).
    function grantDigest(GrantTerms calldata terms, uint256 nonce, uint256 deadline) external view returns (bytes32);

    /// @notice Number of grants issued (ids run 1..grantCount).
    function grantCount() external view returns (uint256);

    /// @notice Uses of `grantId` given back so far (uses − restored is what counts against maxUses).
    function restoredUses(uint256 grantId) external view returns (uint32);

    /// @notice True if `token` may be a payment asset.
    function isPaymentTokenAllowed(address token) external view returns (bool);
}
