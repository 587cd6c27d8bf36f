// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721Votes} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721Votes.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title Membership
/// @notice Consortium membership (002 §3.7): one non-transferable token per member organisation,
///         one vote each in the TdsGovernor. Owned by the TimelockController, so members are
///         admitted and expelled only by an executed proposal. A member's vote counts from the
///         block after it is admitted (it delegates to itself on admission).
contract Membership is ERC721, ERC721Votes, Ownable {
    /// @notice Emitted when `member` joins (token `tokenId`) or leaves the consortium.
    event MemberAdmitted(address indexed member, uint256 indexed tokenId);
    event MemberExpelled(address indexed member, uint256 indexed tokenId);

    error AlreadyMember(address member);
    error NotMember(address member);
    error MembershipNotTransferable(uint256 tokenId);

    mapping(address member => uint256) private _tokenOf;
    uint256 private _count;

    /// @param owner_ the account admitting the founding members; the deployment hands ownership
    ///        to the timelock right after.
    constructor(address owner_) ERC721("TDS Consortium Membership", "TDSM") EIP712("TDS Membership", "1")
        Ownable(owner_)
    {}

    /// @notice Admit `member` (owner only: the timelock, i.e. an executed proposal).
    function admit(address member) external onlyOwner returns (uint256 tokenId) {
        if (_tokenOf[member] != 0) revert AlreadyMember(member);
        tokenId = ++_count;
        _tokenOf[member] = tokenId;
        _safeMint(member, tokenId);
        _delegate(member, member);
        emit MemberAdmitted(member, tokenId);
    }

    /// @notice Expel `member` (owner only).
    function expel(address member) external onlyOwner {
        uint256 tokenId = _tokenOf[member];
        if (tokenId == 0) revert NotMember(member);
        delete _tokenOf[member];
        _burn(tokenId);
        emit MemberExpelled(member, tokenId);
    }

    /// @notice The membership token of `member` (0 if none).
    function tokenOf(address member) external view returns (uint256) {
        return _tokenOf[member];
    }

    /// @dev Memberships are minted and burned, never transferred.
    function _update(address to, uint256 tokenId, address auth)
        internal
        override(ERC721, ERC721Votes)
        returns (address)
    {
        address from = _ownerOf(tokenId);
        if (from != address(0) && to != address(0)) revert MembershipNotTransferable(tokenId);
        return super._update(to, tokenId, auth);
    }

    function _increaseBalance(address account, uint128 amount) internal override(ERC721, ERC721Votes) {
        super._increaseBalance(account, amount);
    }
}
