// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IRevenueVault
/// @notice Pull payments: settled shares and refunds accumulate per payee and token
///         (address(0) = native coin) and leave only through `withdraw`.
interface IRevenueVault {
    /// @dev Why an amount was credited.
    enum Share { Provider, AlgorithmProvider, ComputeProvider, Operator, Refund }

    /// @notice Emitted when `amount` of `token` is credited to `payee` for job `jobId`.
    event Credited(address indexed payee, address indexed token, uint256 indexed jobId, uint256 amount, Share share);
    /// @notice Emitted when `payee` withdraws `amount` of `token`.
    event Withdrawn(address indexed payee, address indexed token, uint256 amount);

    /// @dev A token that delivered less than the amount transferred (fee on transfer, rebasing): refused.
    error FeeOnTransferToken(address token, uint256 amount, uint256 received);
    error NothingToWithdraw(address payee, address token);
    error NativeTransferFailed(address payee, uint256 amount);
    error WrongPaymentAmount(uint256 expected, uint256 sent);

    /// @notice Send the sender its whole balance of `token` (address(0) = native coin).
    function withdraw(address token) external returns (uint256 amount);

    /// @notice Withdrawable balance of `payee` in `token`.
    function balanceOf(address payee, address token) external view returns (uint256);
}
