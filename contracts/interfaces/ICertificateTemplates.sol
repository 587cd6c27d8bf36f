// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ICertificateTemplates
/// @notice Certificate templates the operator publishes (002 §3.4.6.1): the rights a certificate
///         confers, the operations grants under it may allow, and the default revenue split.
///         Templates are immutable once published (a change is a new template); they can be retired.
interface ICertificateTemplates {
    /// @dev One storage slot of terms plus the digest of the full template text.
    struct Template {
        uint16 rights; // bitmask: RIGHT_USE=1, RIGHT_TRANSFER=2, RIGHT_OPERATE=4
        uint16 allowedOps; // Operations bitmask
        uint64 splitBps; // RevenueSplit-packed provider/algorithm/compute/operator basis points
        bool active;
        uint40 publishedAt;
        bytes32 termsHash; // digest of the full template document (stored off chain under termsCid)
    }

    /// @notice Emitted when the operator publishes template `templateId`.
    event TemplatePublished(
        uint32 indexed templateId,
        address indexed operator,
        string name,
        bytes termsCid,
        bytes32 termsHash,
        uint16 rights,
        uint16 allowedOps,
        uint16[4] splitBps
    );
    /// @notice Emitted when template `templateId` is retired (no new certificates under it).
    event TemplateRetired(uint32 indexed templateId, address indexed operator);
    /// @notice Emitted when the operator makes certificates under `templateId` need (or no longer
    ///         need) the operator's approval before they become Active.
    event TemplateReviewSet(uint32 indexed templateId, bool required, address indexed operator);
    /// @notice Emitted when the operator sets the dispute window of `templateId`: for that many
    ///         seconds after a job under it completes, the consumer may dispute it while the
    ///         provider's, algorithm provider's and oracle's shares stay in escrow (0 = no disputes).
    event TemplateDisputeWindowSet(uint32 indexed templateId, uint32 window, address indexed operator);

    error EmptyTemplateName();
    error InvalidSplit(uint256 totalBps);
    error InvalidOperationSet(uint16 operations);
    error InvalidRights(uint16 rights);
    error UnknownTemplate(uint32 templateId);
    error TemplateNotActive(uint32 templateId);
    error InvalidDisputeWindow(uint32 window, uint32 maxWindow);

    /// @notice Operator only: publish a template; returns its id (ids start at 1).
    /// @param splitBps provider, algorithm provider, compute provider, operator shares; sum 10,000.
    function publish(
        string calldata name,
        bytes calldata termsCid,
        bytes32 termsHash,
        uint16 rights,
        uint16 allowedOps,
        uint16[4] calldata splitBps
    ) external returns (uint32 templateId);

    /// @notice Operator only: retire a template; certificates already minted keep their terms.
    function retire(uint32 templateId) external;

    /// @notice Operator only: certificates minted under `templateId` from now on start Pending and
    ///         become Active only when a reviewer approves them (AssetRegistry, Reviewable).
    function setReviewRequired(uint32 templateId, bool required) external;

    /// @notice True if certificates under `templateId` need the operator's approval.
    function reviewRequired(uint32 templateId) external view returns (bool);

    /// @notice Operator only: jobs under certificates of `templateId` may be disputed for `window`
    ///         seconds after they complete (at most MAX_DISPUTE_WINDOW; 0 = paid out at completion,
    ///         the default). A grant keeps the window in force when its first job completed (Jobs).
    function setDisputeWindow(uint32 templateId, uint32 window) external;

    /// @notice Seconds during which a completed job under `templateId` may be disputed (0 = none).
    function disputeWindow(uint32 templateId) external view returns (uint32);

    /// @notice The template `templateId` (reverts UnknownTemplate).
    function templateOf(uint32 templateId) external view returns (Template memory);

    /// @notice Terms a mint needs, in one storage read: active flag, rights, operations, split.
    function mintTerms(uint32 templateId)
        external
        view
        returns (bool active, uint16 rights, uint16 allowedOps, uint64 splitBps);

    /// @notice Number of templates published so far.
    function templateCount() external view returns (uint32);
}
