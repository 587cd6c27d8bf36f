// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IRevenueVault} from "../interfaces/IRevenueVault.sol";

/// @title RevenueVault
/// @notice Escrow and pull payments for the native coin (token address(0)) and ERC-20 tokens.
///         Payments enter escrow; settlement or refund moves them into per-payee balances
///         (one mapping payee → token → amount); only `withdraw` sends value out.
abstract contract RevenueVault is IRevenueVault, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    mapping(address payee => mapping(address token => uint256)) private _balances;

    /// @inheritdoc IRevenueVault
    /// @dev Checks-effects-interactions and a (transient) reentrancy guard: the balance is zeroed
    ///      before the transfer, and the guard refuses any nested call into the vault.
    function withdraw(address token) external nonReentrant returns (uint256 amount) {
        amount = _balances[msg.sender][token];
        if (amount == 0) revert NothingToWithdraw(msg.sender, token);
        _balances[msg.sender][token] = 0;
        emit Withdrawn(msg.sender, token, amount);
        if (token == address(0)) {
            (bool ok,) = payable(msg.sender).call{value: amount}("");
            if (!ok) revert NativeTransferFailed(msg.sender, amount);
        } else {
            IERC20(token).safeTransfer(msg.sender, amount);
        }
    }

    /// @inheritdoc IRevenueVault
    function balanceOf(address payee, address token) external view returns (uint256) {
        return _balances[payee][token];
    }

    /// @dev Take `amount` of `token` from `from` into escrow: msg.value for the native coin,
    ///      transferFrom for an ERC-20 (the caller must have approved this contract).
    ///      Call it last (it is the interaction). Escrow per job is the job's `amount`; there is
    ///      no running total (it would cross zero and cost a fresh SSTORE on every busy-idle cycle):
    ///      held = contract balance − Σ payee balances.
    function _collect(address token, address from, uint256 amount) internal {
        if (token == address(0)) {
            if (msg.value != amount) revert WrongPaymentAmount(amount, msg.value);
        } else {
            if (msg.value != 0) revert WrongPaymentAmount(0, msg.value);
            if (amount != 0) {
                // balance-delta check: a token that takes a fee on transfer would leave the
                // escrow short of what the split pays out
                uint256 before = IERC20(token).balanceOf(address(this));
                IERC20(token).safeTransferFrom(from, address(this), amount);
                uint256 received = IERC20(token).balanceOf(address(this)) - before;
                if (received != amount) revert FeeOnTransferToken(token, amount, received);
            }
        }
    }

    /// @dev Move `amount` of `token` out of a job's escrow into `payee`'s withdrawable balance.
    function _release(address payee, address token, uint256 jobId, uint256 amount, Share share) internal {
        if (amount == 0) return;
        _balances[payee][token] += amount;
        emit Credited(payee, token, jobId, amount, share);
    }
}
