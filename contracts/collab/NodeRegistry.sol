// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IIdentityRegistry} from "../interfaces/IIdentityRegistry.sol";
import {INodeRegistry} from "../interfaces/INodeRegistry.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";

/// @title NodeRegistry
/// @notice Compute and party nodes of multi-party computation, each an account bound to a DID.
///         The OPERATOR role adds, disables, re-enables and removes nodes; nodes keep their endpoint
///         and send heartbeats themselves.
contract NodeRegistry is INodeRegistry, AccessControlDefaultAdminRules {
    /// @notice May add, disable, enable and remove nodes.
    bytes32 public constant OPERATOR_ROLE = TdsRoles.OPERATOR;
    /// @notice Longest allowed heartbeat interval.
    uint40 public constant MAX_HEARTBEAT_INTERVAL = 7 days;

    IIdentityRegistry private immutable _identity;
    mapping(address node => Node) private _nodes;
    mapping(address node => uint256) private _position; // 1-based index into _list
    address[] private _list;
    uint40 private _heartbeatInterval;

    /// @param admin default admin (2-day transfer delay) and first operator.
    /// @param identity the registry whose DID bindings nodes must have.
    /// @param interval_ seconds after which a silent node is flagged.
    constructor(address admin, IIdentityRegistry identity, uint40 interval_)
        AccessControlDefaultAdminRules(2 days, admin)
    {
        _identity = identity;
        _grantRole(OPERATOR_ROLE, admin);
        _setInterval(interval_);
    }

    /// @inheritdoc INodeRegistry
    function addNode(
        address node,
        NodeKind kind,
        string calldata name,
        string calldata endpoint,
        IIdentityRegistry.Identity calldata identity
    ) external onlyRole(OPERATOR_ROLE) {
        if (_nodes[node].state != NodeState.None) revert NodeExists(node);
        if (kind == NodeKind.None) revert InvalidNodeKind(uint8(kind));
        if (bytes(name).length == 0 || bytes(name).length > 64) revert InvalidNodeName();
        if (!_identity.isCurrentIdentity(node, identity)) {
            if (!_identity.isBound(node)) revert NodeIdentityMissing(node);
            revert IdentityMismatch(node);
        }
        uint40 now_ = uint40(block.timestamp);
        _nodes[node] =
            Node(kind, NodeState.Active, now_, now_, identity.didHash, identity.keyAgreementKey, name, endpoint);
        _list.push(node);
        _position[node] = _list.length;
        emit NodeAdded(node, kind, identity.didHash, name, endpoint, identity.keyAgreementKey);
    }

    /// @inheritdoc INodeRegistry
    function disableNode(address node, uint16 reasonCode) external onlyRole(OPERATOR_ROLE) {
        Node storage n = _active(node);
        n.state = NodeState.Disabled;
        emit NodeStateChanged(node, NodeState.Disabled, reasonCode, msg.sender);
    }

    /// @inheritdoc INodeRegistry
    function enableNode(address node) external onlyRole(OPERATOR_ROLE) {
        Node storage n = _existing(node);
        if (n.state != NodeState.Disabled) revert NodeExists(node);
        n.state = NodeState.Active;
        emit NodeStateChanged(node, NodeState.Active, 0, msg.sender);
    }

    /// @inheritdoc INodeRegistry
    function removeNode(address node) external onlyRole(OPERATOR_ROLE) {
        _existing(node);
        delete _nodes[node];
        uint256 pos = _position[node];
        address last = _list[_list.length - 1];
        _list[pos - 1] = last;
        _position[last] = pos;
        _list.pop();
        delete _position[node];
        emit NodeRemoved(node, msg.sender);
    }

    /// @inheritdoc INodeRegistry
    function setEndpoint(string calldata endpoint) external {
        _existing(msg.sender).endpoint = endpoint;
        emit NodeEndpointChanged(msg.sender, endpoint);
    }

    /// @inheritdoc INodeRegistry
    function heartbeat() external {
        uint40 now_ = uint40(block.timestamp);
        _active(msg.sender).lastHeartbeat = now_;
        emit NodeHeartbeat(msg.sender, now_);
    }

    /// @inheritdoc INodeRegistry
    function setHeartbeatInterval(uint40 interval) external onlyRole(OPERATOR_ROLE) {
        _setInterval(interval);
    }

    /// @inheritdoc INodeRegistry
    function nodeOf(address node) external view returns (Node memory) {
        return _existing(node);
    }

    /// @inheritdoc INodeRegistry
    function isActive(address node, NodeKind kind) external view returns (bool) {
        Node storage n = _nodes[node];
        return n.state == NodeState.Active && n.kind == kind;
    }

    /// @inheritdoc INodeRegistry
    function isLive(address node) external view returns (bool) {
        Node storage n = _nodes[node];
        return n.state == NodeState.Active && block.timestamp <= uint256(n.lastHeartbeat) + _heartbeatInterval;
    }

    /// @inheritdoc INodeRegistry
    function heartbeatInterval() external view returns (uint40) {
        return _heartbeatInterval;
    }

    /// @inheritdoc INodeRegistry
    function nodes() external view returns (address[] memory) {
        return _list;
    }

    function _existing(address node) private view returns (Node storage n) {
        n = _nodes[node];
        if (n.state == NodeState.None) revert UnknownNode(node);
    }

    function _active(address node) private view returns (Node storage n) {
        n = _existing(node);
        if (n.state != NodeState.Active) revert NodeNotActive(node, n.state);
    }

    function _setInterval(uint40 interval) private {
        if (interval == 0 || interval > MAX_HEARTBEAT_INTERVAL) revert InvalidHeartbeatInterval(interval);
        _heartbeatInterval = interval;
        emit HeartbeatIntervalSet(interval);
    }
}
