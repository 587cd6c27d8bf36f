"""Credits: ERC-20 points the regulator allocates."""
from conftest import H, reverts


def test_regulator_mints_and_allocates(system, accounts):
    c, reg = system.credits, system.cast.regulator
    tx = c.mint(accounts[4], 500, H("round-1"), {"from": reg})
    assert c.balanceOf(accounts[4]) == 500 and tx.events["CreditsAllocated"]["memo"] == H("round-1")
    c.allocate([accounts[5], accounts[6]], [10, 20], H("round-1"), {"from": reg})
    assert c.balanceOf(accounts[5]) == 10 and c.balanceOf(accounts[6]) == 20 and c.totalSupply() == 530


def test_only_regulator_mints(system, accounts):
    with reverts("AccessControlUnauthorizedAccount", system.cast.operator, H("REGULATOR")):
        system.credits.mint(accounts[4], 1, H("x"), {"from": system.cast.operator})


def test_allocate_refuses_mismatched_lists(system, accounts):
    with reverts("AllocationLengthMismatch", 2, 1):
        system.credits.allocate([accounts[1], accounts[2]], [1], H("x"), {"from": system.cast.regulator})
