// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ICredits} from "../interfaces/ICredits.sol";
import {TdsRoles} from "../libraries/TdsRoles.sol";

/// @title Credits
/// @notice ERC-20 points of the data space (002 §3.3.2): the regulator mints initial allocations;
///         grants may price uses in Credits instead of the native coin.
contract Credits is ICredits, ERC20, AccessControl {
    /// @notice AccessControl role of the accounts that mint allocations.
    bytes32 public constant REGULATOR_ROLE = TdsRoles.REGULATOR;

    /// @param admin the operator's admin account (appoints regulators).
    /// @param regulator the first regulator.
    constructor(address admin, address regulator) ERC20("Trusted Data Space Credits", "TDSC") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
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
