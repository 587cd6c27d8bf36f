// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title ICredits
/// @notice Points the regulator mints as initial allocations (002 §3.3.2); usable as a payment asset.
interface ICredits is IERC20 {
    /// @notice Emitted when the regulator allocates `amount` to `to` (memo: allocation round, etc.).
    event CreditsAllocated(address indexed to, uint256 amount, bytes32 indexed memo);

    error AllocationLengthMismatch(uint256 recipients, uint256 amounts);

    /// @notice Regulator only: mint `amount` to `to`.
    function mint(address to, uint256 amount, bytes32 memo) external;

    /// @notice Regulator only: mint initial allocations in one transaction.
    function allocate(address[] calldata to, uint256[] calldata amounts, bytes32 memo) external;
}
