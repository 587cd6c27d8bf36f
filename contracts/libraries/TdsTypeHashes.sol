// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAuthorizations} from "../interfaces/IAuthorizations.sol";

/// @title TdsTypeHashes
/// @notice Every EIP-712 type signed in the Trusted Data Space, kept together (iExec PoCo style):
///         grants signed by certificate holders (domain "TDS Authorizations", version "1") and
///         result attestations signed by compute-provider oracles (domain "TDS Jobs", version "1").
library TdsTypeHashes {
    /// @dev Field order equals IAuthorizations.GrantTerms followed by nonce and deadline.
    bytes32 internal constant GRANT_TYPEHASH = keccak256(
        "Grant(uint256 assetId,address consumer,bytes32 purposeHash,uint16 operations,uint8 kind,"
        "uint32 notBefore,uint32 expiry,uint32 maxUses,address paymentToken,uint96 pricePerUse,"
        "address algorithmProvider,uint256 nonce,uint256 deadline)"
    );

    /// @dev resultCidHash = keccak256(resultCid bytes).
    bytes32 internal constant JOB_RESULT_TYPEHASH =
        keccak256("JobResult(uint256 jobId,bytes32 resultHash,bytes32 resultCidHash)");

    /// @notice EIP-712 struct hash of signed grant terms. GrantTerms is all static fields, so
    ///         abi.encode lays them out exactly as the field-by-field encoding the standard requires.
    function hashGrant(IAuthorizations.GrantTerms calldata terms, uint256 nonce, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(GRANT_TYPEHASH, terms, nonce, deadline));
    }

    /// @notice EIP-712 struct hash of an oracle's result attestation.
    function hashJobResult(uint256 jobId, bytes32 resultHash, bytes32 resultCidHash) internal pure returns (bytes32) {
        return keccak256(abi.encode(JOB_RESULT_TYPEHASH, jobId, resultHash, resultCidHash));
    }
}
