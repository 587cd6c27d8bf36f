// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title TdsRoles
/// @notice Role identifiers shared by every contract of the Trusted Data Space. Participant roles
///         (held in the IdentityRegistry, credential-backed) and system roles (OpenZeppelin
///         AccessControl roles granted at deployment) are both keccak256 of the upper-case name.
library TdsRoles {
    // Participant roles (IdentityRegistry, backed by an operator-issued credential).
    bytes32 internal constant PROVIDER = keccak256("PROVIDER");
    bytes32 internal constant CONSUMER = keccak256("CONSUMER");
    bytes32 internal constant OPERATOR = keccak256("OPERATOR");
    bytes32 internal constant REGULATOR = keccak256("REGULATOR");
    bytes32 internal constant DEVELOPER = keccak256("DEVELOPER");
    bytes32 internal constant ALGORITHM_PROVIDER = keccak256("ALGORITHM_PROVIDER");
    bytes32 internal constant COMPUTE_PROVIDER = keccak256("COMPUTE_PROVIDER");

    // System roles (AccessControl, granted by the deployer when wiring the system).
    /// @dev The operator's monitoring service: may freeze grants with an alert reason code.
    bytes32 internal constant MONITOR = keccak256("MONITOR");
    /// @dev The Jobs contract: the only caller allowed to consume a grant's uses.
    bytes32 internal constant JOBS = keccak256("JOBS");

    /// @notice True if `role` is one of the seven participant roles.
    function isParticipantRole(bytes32 role) internal pure returns (bool) {
        return role == PROVIDER || role == CONSUMER || role == OPERATOR || role == REGULATOR || role == DEVELOPER
            || role == ALGORITHM_PROVIDER || role == COMPUTE_PROVIDER;
    }
}
