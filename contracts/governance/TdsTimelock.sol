// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title TdsTimelock
/// @notice OpenZeppelin's TimelockController, unchanged: on a consortium deployment it holds the
///         admin and operator roles of every contract; the TdsGovernor is its only proposer,
///         anyone may execute a queued operation once its delay has passed.
contract TdsTimelock is TimelockController {
    /// @param minDelay seconds between queuing and execution.
    /// @param proposers accounts allowed to queue (the governor).
    /// @param executors accounts allowed to execute (address(0): anyone).
    /// @param admin optional setup admin (address(0): none — the timelock administers itself).
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
