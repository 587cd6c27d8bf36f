// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Operations
/// @notice The bitmask of operations a grant may allow over onion-encrypted data
///         (000 §7.2.1.1, §7.2.3.1). A job names exactly one operation; a grant or template holds a set.
library Operations {
    /// @dev Deterministic layer: equality tests and joins.
    uint16 internal constant DET_EQ = 1;
    /// @dev Order-preserving layer: range queries, order, min/max.
    uint16 internal constant OPE_RANGE = 2;
    /// @dev Additively homomorphic layer (Paillier): sum, count, mean.
    uint16 internal constant HOM_AGG = 4;
    /// @dev Secret-sharing multi-party computation.
    uint16 internal constant MPC = 8;
    /// @dev Federated learning.
    uint16 internal constant FL = 16;
    /// @dev Download of the (encrypted) data set itself.
    uint16 internal constant DOWNLOAD = 32;
    /// @dev Private set intersection of an ID column with other providers' (002 §3.4.4.2).
    uint16 internal constant PSI = 64;
    /// @dev Every defined operation.
    uint16 internal constant ALL = 127;

    /// @notice True if `ops` is a non-empty set of defined operations.
    function isValidSet(uint16 ops) internal pure returns (bool) {
        return ops != 0 && ops & ~ALL == 0;
    }

    /// @notice True if every operation in `ops` is in `allowed`.
    function isSubset(uint16 ops, uint16 allowed) internal pure returns (bool) {
        return ops & ~allowed == 0;
    }
}
