// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IRevenueVault} from "../interfaces/IRevenueVault.sol";

/// @title ReentrancyProbe
/// @notice Test-only payee: when paid by `withdraw`, it tries to call `withdraw` again and
///         records what happened. Used by the test suite to show withdraw cannot be re-entered.
contract ReentrancyProbe {
    IRevenueVault public immutable vault;
    bool public reentered;
    bytes public lastError;
    uint256 public received;

    constructor(IRevenueVault vault_) {
        vault = vault_;
    }

    /// @notice Withdraw this contract's native balance from the vault.
    function pull() external {
        vault.withdraw(address(0));
    }

    receive() external payable {
        received += msg.value;
        try vault.withdraw(address(0)) {
            reentered = true;
        } catch (bytes memory err) {
            lastError = err;
        }
    }
}
