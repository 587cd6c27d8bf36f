// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title RevenueSplit
/// @notice A four-way revenue split in basis points, packed in one uint64
///         (provider | algorithm provider << 16 | compute provider << 32 | operator << 48),
///         so a certificate carries its split in the same storage slot as its state.
library RevenueSplit {
    uint16 internal constant TOTAL_BPS = 10_000;

    /// @notice Pack four basis-point shares.
    function pack(uint16 providerBps, uint16 algorithmBps, uint16 computeBps, uint16 operatorBps)
        internal
        pure
        returns (uint64)
    {
        return uint64(providerBps) | (uint64(algorithmBps) << 16) | (uint64(computeBps) << 32)
            | (uint64(operatorBps) << 48);
    }

    /// @notice Unpack into (provider, algorithm provider, compute provider, operator) basis points.
    function unpack(uint64 packed) internal pure returns (uint16, uint16, uint16, uint16) {
        return (uint16(packed), uint16(packed >> 16), uint16(packed >> 32), uint16(packed >> 48));
    }

    /// @notice Sum of the four shares (valid splits sum to exactly 10,000).
    function total(uint64 packed) internal pure returns (uint256) {
        (uint16 p, uint16 a, uint16 c, uint16 o) = unpack(packed);
        return uint256(p) + a + c + o;
    }

    /// @notice Split `amount`; rounding dust goes to the provider so the shares sum exactly to `amount`.
    function shares(uint256 amount, uint64 packed)
        internal
        pure
        returns (uint256 provider, uint256 algorithm, uint256 compute, uint256 operator)
    {
        (, uint16 a, uint16 c, uint16 o) = unpack(packed);
        algorithm = amount * a / TOTAL_BPS;
        compute = amount * c / TOTAL_BPS;
        operator = amount * o / TOTAL_BPS;
        provider = amount - algorithm - compute - operator;
    }
}
