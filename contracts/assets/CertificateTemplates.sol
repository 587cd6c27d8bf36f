// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {ICertificateTemplates} from "../interfaces/ICertificateTemplates.sol";
import {Operations} from "../libraries/Operations.sol";
import {RevenueSplit} from "../libraries/RevenueSplit.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";

/// @title CertificateTemplates
/// @notice The operator's catalogue of certificate templates (002 §3.4.6.1): rights scope,
///         allowed operations and default revenue split. Immutable once published; retirable.
contract CertificateTemplates is ICertificateTemplates, AccessControlDefaultAdminRules {
    /// @notice Delay before a new admin may accept the admin role (two-step transfer).
    uint48 public constant ADMIN_TRANSFER_DELAY = 2 days;
    /// @notice AccessControl role of the accounts that publish and retire templates.
    bytes32 public constant OPERATOR_ROLE = TdsRoles.OPERATOR;
    /// @notice Right to use the data under grants.
    uint16 public constant RIGHT_USE = 1;
    /// @notice Right to transfer the certificate (and with it the holder's rights, 002 §3.4.6.3).
    uint16 public constant RIGHT_TRANSFER = 2;
    /// @notice Right to operate the asset commercially (resell derived products).
    uint16 public constant RIGHT_OPERATE = 4;
    uint16 private constant _ALL_RIGHTS = 7;
    /// @notice Longest dispute window a template may set.
    uint32 public constant MAX_DISPUTE_WINDOW = 90 days;

    mapping(uint32 templateId => Template) private _templates;
    uint32 private _count;
    mapping(uint32 templateId => bool) private _reviewRequired;
    mapping(uint32 templateId => uint32) private _disputeWindow;

    /// @param admin the operator's admin account (DEFAULT_ADMIN_ROLE and OPERATOR_ROLE).
    constructor(address admin) AccessControlDefaultAdminRules(ADMIN_TRANSFER_DELAY, admin) {
        _grantRole(OPERATOR_ROLE, admin);
    }

    /// @inheritdoc ICertificateTemplates
    function publish(
        string calldata name,
        bytes calldata termsCid,
        bytes32 termsHash,
        uint16 rights,
        uint16 allowedOps,
        uint16[4] calldata splitBps
    ) external onlyRole(OPERATOR_ROLE) returns (uint32 templateId) {
        if (bytes(name).length == 0) revert EmptyTemplateName();
        if (!Operations.isValidSet(allowedOps)) revert InvalidOperationSet(allowedOps);
        if (rights & RIGHT_USE == 0 || rights & ~_ALL_RIGHTS != 0) revert InvalidRights(rights);
        uint64 split = RevenueSplit.pack(splitBps[0], splitBps[1], splitBps[2], splitBps[3]);
        uint256 total = RevenueSplit.total(split);
        if (total != RevenueSplit.TOTAL_BPS) revert InvalidSplit(total);
        templateId = ++_count;
        _templates[templateId] = Template({
            rights: rights,
            allowedOps: allowedOps,
            splitBps: split,
            active: true,
            publishedAt: uint40(block.timestamp),
            termsHash: termsHash
        });
        emit TemplatePublished(templateId, msg.sender, name, termsCid, termsHash, rights, allowedOps, splitBps);
    }

    /// @inheritdoc ICertificateTemplates
    function retire(uint32 templateId) external onlyRole(OPERATOR_ROLE) {
        Template storage t = _existing(templateId);
        if (!t.active) revert TemplateNotActive(templateId);
        t.active = false;
        emit TemplateRetired(templateId, msg.sender);
    }

    /// @inheritdoc ICertificateTemplates
    function setReviewRequired(uint32 templateId, bool required) external onlyRole(OPERATOR_ROLE) {
        _existing(templateId);
        _reviewRequired[templateId] = required;
        emit TemplateReviewSet(templateId, required, msg.sender);
    }

    /// @inheritdoc ICertificateTemplates
    function reviewRequired(uint32 templateId) external view returns (bool) {
        return _reviewRequired[templateId];
    }

    /// @inheritdoc ICertificateTemplates
    function setDisputeWindow(uint32 templateId, uint32 window) external onlyRole(OPERATOR_ROLE) {
        _existing(templateId);
        if (window > MAX_DISPUTE_WINDOW) revert InvalidDisputeWindow(window, MAX_DISPUTE_WINDOW);
        _disputeWindow[templateId] = window;
        emit TemplateDisputeWindowSet(templateId, window, msg.sender);
    }

    /// @inheritdoc ICertificateTemplates
    function disputeWindow(uint32 templateId) external view returns (uint32) {
        return _disputeWindow[templateId];
    }

    /// @inheritdoc ICertificateTemplates
    function templateOf(uint32 templateId) external view returns (Template memory) {
        return _existing(templateId);
    }

    /// @inheritdoc ICertificateTemplates
    function mintTerms(uint32 templateId)
        external
        view
        returns (bool active, uint16 rights, uint16 allowedOps, uint64 splitBps)
    {
        Template storage t = _templates[templateId];
        return (t.active, t.rights, t.allowedOps, t.splitBps);
    }

    /// @inheritdoc ICertificateTemplates
    function templateCount() external view returns (uint32) {
        return _count;
    }

    function _existing(uint32 templateId) private view returns (Template storage t) {
        t = _templates[templateId];
        if (t.publishedAt == 0) revert UnknownTemplate(templateId);
    }
}
