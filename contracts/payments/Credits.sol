// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ICredits} from "../interfaces/ICredits.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";

/// @title Credits
/// @notice ERC-20 points of the data space (002 §3.3.2): the regulator mints initial allocations;
///         grants may price uses in Credits instead of the native coin. The supply is capped
///         (MAX_SUPPLY, ERC20Capped): no regulator key can inflate it past the cap; raising it
///         needs a new token, i.e. the consortium's decision (governance comes with oversight).
contract Credits is ICredits, ERC20Capped, AccessControlDefaultAdminRules {
    /// @notice Delay before a new admin may accept the admin role (two-step transfer).
    uint48 public constant ADMIN_TRANSFER_DELAY = 2 days;
    /// @notice Most Credits that can ever exist (one billion, 18 decimals).
    uint256 public constant MAX_SUPPLY = 1_000_000_000 ether;
    /// @notice AccessControl role of the accounts that mint allocations.
    bytes32 public constant REGULATOR_ROLE = TdsRoles.REGULATOR;

    /// @param admin the operator's admin account (appoints regulators).
    /// @param regulator the first regulator.
    constructor(address admin, address regulator)
        ERC20("Trusted Data Space Credits", "TDSC")
        ERC20Capped(MAX_SUPPLY)
        AccessControlDefaultAdminRules(ADMIN_TRANSFER_DELAY, admin)
    {
        _grantRole(REGULATOR_ROLE, regulator);
    }

    /// @inheritdoc ICredits
    function mint(address to, uint256 amount, bytes32 memo) external onlyRole(REGULATOR_ROLE) {
        _mint(to, amount);
        emit CreditsAllocated(to, amount, memo);
    }

    /// @inheritdoc ICredits
    function allocate(address[] calldata to, uint256[] calldata amounts, bytes32 memo)
        external
        onlyRole(REGULATOR_ROLE)
    {
        if (to.length != amounts.length) revert AllocationLengthMismatch(to.length, amounts.length);
        for (uint256 i; i < to.length; ++i) {
            _mint(to[i], amounts[i]);
            emit CreditsAllocated(to[i], amounts[i], memo);
        }
    }
}
