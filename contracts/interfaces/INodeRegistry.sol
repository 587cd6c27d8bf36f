// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IIdentityRegistry} from "./IIdentityRegistry.sol";

/// @title INodeRegistry
/// @notice The nodes that take part in multi-party computation (002 §3.4.2.2, §3.4.5.2 (1)): compute
///         nodes (secret-sharing MPC, PSI coordination) and providers' party nodes. The operator adds,
///         disables, re-enables and removes nodes; a node keeps its service endpoint current and sends
///         heartbeats; a reader flags a node whose last heartbeat is older than `heartbeatInterval`.
interface INodeRegistry {
    enum NodeKind { None, Compute, Party }
    enum NodeState { None, Active, Disabled }

    struct Node {
        NodeKind kind;
        NodeState state;
        uint40 registeredAt;
        uint40 lastHeartbeat;
        bytes32 didHash;         // keccak256 of the DID the account is bound to in the IdentityRegistry
        bytes32 keyAgreementKey; // X25519 key peers seal messages to (the account's bound key)
        string name;
        string endpoint;
    }

    /// @notice Emitted when the operator adds `node` (an account bound to `did`).
    event NodeAdded(address indexed node, NodeKind kind, bytes32 indexed didHash, string name, string endpoint,
        bytes32 keyAgreementKey);
    /// @notice Emitted when the operator disables `node` (`reasonCode` says why) or re-enables it.
    event NodeStateChanged(address indexed node, NodeState state, uint16 reasonCode, address operator);
    /// @notice Emitted when the operator removes `node`.
    event NodeRemoved(address indexed node, address operator);
    /// @notice Emitted when `node` moves its service endpoint.
    event NodeEndpointChanged(address indexed node, string endpoint);
    /// @notice Emitted on each heartbeat of `node` (`at` = block time).
    event NodeHeartbeat(address indexed node, uint40 at);
    /// @notice Emitted when the operator changes the heartbeat interval.
    event HeartbeatIntervalSet(uint40 interval);

    error UnknownNode(address node);
    error NodeExists(address node);
    error NodeNotActive(address node, NodeState state);
    error NodeIdentityMissing(address node);
    /// @notice The identity given for `account` is not its current one in the IdentityRegistry.
    error IdentityMismatch(address account);
    error InvalidNodeKind(uint8 kind);
    error InvalidNodeName();
    error InvalidHeartbeatInterval(uint40 interval);

    /// @notice Add `node` (operator only); the account must be bound to a DID in the IdentityRegistry
    ///         (`NodeIdentityMissing`) and `identity` must be its current identity (its latest
    ///         `IdentityBound`, checked against the registry's commitment: `IdentityMismatch`), whose
    ///         DID hash and key-agreement key become the node's.
    function addNode(
        address node,
        NodeKind kind,
        string calldata name,
        string calldata endpoint,
        IIdentityRegistry.Identity calldata identity
    ) external;

    /// @notice Disable `node` with a reason (operator only): it may not be named in new collaborations.
    function disableNode(address node, uint16 reasonCode) external;

    /// @notice Re-enable a disabled `node` (operator only).
    function enableNode(address node) external;

    /// @notice Remove `node` from the registry (operator only); it may be added again later.
    function removeNode(address node) external;

    /// @notice The calling node moves its service endpoint.
    function setEndpoint(string calldata endpoint) external;

    /// @notice The calling node reports that it is alive.
    function heartbeat() external;

    /// @notice Set the interval after which a node without heartbeat is flagged (operator only).
    function setHeartbeatInterval(uint40 interval) external;

    /// @notice The record of `node` (reverts UnknownNode).
    function nodeOf(address node) external view returns (Node memory);

    /// @notice True if `node` is registered as `kind` and active.
    function isActive(address node, NodeKind kind) external view returns (bool);

    /// @notice True if `node` is active and its last heartbeat is within `heartbeatInterval`.
    function isLive(address node) external view returns (bool);

    /// @notice Seconds of silence after which a node is flagged.
    function heartbeatInterval() external view returns (uint40);

    /// @notice Every registered node address, in registration order (removed ones excluded).
    function nodes() external view returns (address[] memory);
}
