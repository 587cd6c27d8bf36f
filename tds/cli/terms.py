"""How grant and payment terms are typed on the command line: operation sets
(``DET_EQ,HOM_AGG`` or ``eq,sum`` or ``5``), amounts (``10000000000000000``, ``0.01ether``,
``5gwei``) and payment tokens (``native``, ``credits`` or an address). Pure parsing."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from eth_utils import is_address, to_checksum_address

from tds.cli.refusals import BadInput
from chain.ops import ALL as ALL_OPS, DET_EQ, DOWNLOAD, FL, HOM_AGG, MPC, NAMES, OPE_RANGE, PSI

_ALIASES = {"eq": DET_EQ, "equality": DET_EQ, "det": DET_EQ, "join": DET_EQ, "group_by": DET_EQ,
            "range": OPE_RANGE, "order": OPE_RANGE, "ope": OPE_RANGE, "ord": OPE_RANGE,
            "sum": HOM_AGG, "count": HOM_AGG, "avg": HOM_AGG, "hom": HOM_AGG, "agg": HOM_AGG,
            "mpc": MPC, "fl": FL, "download": DOWNLOAD, "psi": PSI, "intersect": PSI}
_UNITS = {"wei": 0, "gwei": 9, "ether": 18, "eth": 18}


def parse_ops(text: str) -> int:
    """An operation bitmask from names or a number; refuses unknown names and an empty set."""
    text = text.strip()
    if text.isdigit():
        mask = int(text)
        if not 0 < mask <= ALL_OPS:
            raise BadInput(f"operation mask {mask} is out of range (1 to {ALL_OPS})")
        return mask
    by_name = {n.lower(): bit for bit, n in NAMES.items()} | _ALIASES
    mask = 0
    for part in filter(None, (p.strip().lower() for p in text.replace("|", ",").split(","))):
        if part not in by_name:
            raise BadInput(f"unknown operation {part!r}: use {', '.join(NAMES.values())} "
                           f"(or eq, range, sum, count, join, group_by)")
        mask |= by_name[part]
    if not mask:
        raise BadInput("no operation given: e.g. --ops DET_EQ,HOM_AGG")
    return mask


def parse_amount(text: str) -> int:
    """Wei from ``123``, ``0.01ether``, ``5 gwei``."""
    t = text.strip().lower().replace(" ", "")
    unit = next((u for u in sorted(_UNITS, key=len, reverse=True) if t.endswith(u) and t != u), None)
    number = t[: -len(unit)] if unit else t
    try:
        value = Decimal(number) * (Decimal(10) ** _UNITS[unit or "wei"])
    except (InvalidOperation, ValueError):
        raise BadInput(f"{text!r} is not an amount: use wei (10000) or a unit (0.01ether, 5gwei)") from None
    if value < 0 or value != value.to_integral_value():
        raise BadInput(f"{text!r} is not a whole, non-negative number of wei")
    if value >= 2**96:
        raise BadInput(f"{text!r} is larger than a price can be (uint96)")
    return int(value)


def parse_token(text: str, credits_address: str) -> str:
    """``native`` -> the zero address, ``credits`` -> the Credits contract, or an address."""
    t = text.strip()
    if t.lower() in ("native", "eth", "coin"):
        return "0x" + "00" * 20
    if t.lower() == "credits":
        return credits_address
    if is_address(t):
        return to_checksum_address(t)
    raise BadInput(f"--token {text!r}: use native, credits or a token address")


def parse_address(text: str, option: str) -> str:
    if not is_address(text.strip()):
        raise BadInput(f"{option} {text!r} is not an Ethereum address (0x + 40 hex digits)")
    return to_checksum_address(text.strip())
