"""Human units for the explorer, as pure functions: amounts with a token's decimals, times,
shortened addresses and hashes, and the names of operations, roles, states and reason codes."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from eth_utils import keccak

ZERO_ADDRESS = "0x" + "00" * 20
ROLE_NAMES = ("PROVIDER", "CONSUMER", "OPERATOR", "REGULATOR", "DEVELOPER", "ALGORITHM_PROVIDER", "COMPUTE_PROVIDER",
              "MONITOR", "JOBS", "DEFAULT_ADMIN_ROLE", "ORACLE", "REVIEWER", "MINTER", "NODE_OPERATOR")
OPERATIONS = {1: "DET_EQ", 2: "OPE_RANGE", 4: "HOM_AGG", 8: "MPC", 16: "FL", 32: "DOWNLOAD", 64: "PSI"}
FREEZE_REASONS = {0xA001: "burst", 0xA002: "out of hours", 0xA003: "beyond scope", 0xA004: "oracle failures",
                  0xA005: "quality drop", 0xA006: "network region"}
ENUMS = {"classification": ("public", "internal", "sensitive", "confidential"),
         "authority": ("none", "holder", "monitor", "regulator"),
         "liftedAuthority": ("none", "holder", "monitor", "regulator"),
         "origin": ("direct", "application", "signature"),
         "share": ("provider", "algorithm-provider", "compute-provider", "operator", "refund")}
TIME_KEYS = ("periodStart", "periodEnd", "notBefore", "expiry", "deadline", "validUntil", "at", "time", "timestamp")
JOB_FAIL_REASONS = {1: "bad parameters", 2: "query invalid", 3: "operation not paid", 4: "policy refused",
                    5: "release refused", 6: "data unavailable", 16: "grant not active", 17: "grant frozen",
                    18: "asset not usable", 19: "role revoked", 20: "deadline passed", 21: "dataset not granted",
                    0x101: "oracle result rejected", 0x102: "oracle's compute cluster lost"}


def wei_text(amount: int | str | None, decimals: int = 18, symbol: str = "ETH") -> str:
    """``amount`` base units as a decimal with ``decimals`` (trailing zeros dropped) and the symbol."""
    if amount is None or amount == "":
        return "—"
    value = Decimal(int(amount)).scaleb(-decimals)
    text = format(value.normalize(), "f") if value else "0"
    return f"{text} {symbol}"


def short(value: str | None, head: int = 6, tail: int = 4) -> str:
    """``0x1234…abcd``: an address or hash shortened for display (the full value goes in a title)."""
    if not value:
        return ""
    value = str(value)
    if len(value) <= head + tail + 1:
        return value
    return value[:head] + "…" + value[-tail:]


def short_did(did: str | None) -> str:
    """A DID with its method kept and its key shortened: ``did:key:z6Mk…a1b2``."""
    if not did:
        return ""
    prefix, _, rest = did.rpartition(":")
    return f"{prefix}:{short(rest, 6, 4)}" if prefix and len(rest) > 14 else did


def iso_utc(ts: int | None) -> str:
    """Unix seconds as ISO-8601 UTC (``2026-12-02T04:10:00Z``); the page's script shows local time."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(int(ts), tz=UTC).isoformat().replace("+00:00", "Z")


def operations_text(mask: int | list[int] | None) -> str:
    """A grant or job operation bitmask as names: ``OPE_RANGE+HOM_AGG`` (a list: one per step)."""
    if mask is None:
        return "—"
    if isinstance(mask, (list, tuple)):
        return ", ".join(operations_text(m) for m in mask)
    names = [name for bit, name in OPERATIONS.items() if int(mask) & bit]
    rest = int(mask) & ~sum(OPERATIONS)
    if rest:
        names.append(hex(rest))
    return "+".join(names) or "none"


@lru_cache(maxsize=1)
def _role_table() -> dict[str, str]:
    table = {"0x" + keccak(text=n).hex(): n for n in ROLE_NAMES}
    table["0x" + "00" * 32] = "DEFAULT_ADMIN_ROLE"
    return table


def role_name(role: str | bytes) -> str:
    """The name of a role id (keccak256 of its name), or the id itself."""
    if isinstance(role, (bytes, bytearray)):
        role = "0x" + bytes(role).hex()
    if not str(role).startswith("0x"):  # already a name (the index stores names it knows)
        return str(role)
    return _role_table().get(str(role).lower(), str(role))


def reason_text(kind: str, code: int | None) -> str:
    """A reason code with its name: ``17 (grant frozen)``; ``kind`` is ``job`` or ``freeze``."""
    if code is None:
        return "—"
    table = JOB_FAIL_REASONS if kind == "job" else FREEZE_REASONS
    name = table.get(int(code))
    return f"{code} ({name})" if name else f"{code} (0x{int(code):x})"


def job_parts(job_id: int) -> tuple[int, int]:
    """(grant id, use index) of a job id (``grantId << 32 | use``)."""
    return int(job_id) >> 32, int(job_id) & 0xFFFFFFFF


def plain_value(value: Any) -> Any:
    """A JSON/CSV friendly scalar: bytes as 0x-hex, containers kept."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return value


def humanize_amounts(text: str, decimals: int = 18, symbol: str = "ETH", min_digits: int = 10) -> str:
    """``text`` with every integer of ``min_digits`` or more digits (base-unit amounts) in token units."""
    import re

    return re.sub(r"\b\d{" + str(min_digits) + r",}\b", lambda m: wei_text(int(m.group(0)), decimals, symbol), text)


def enum_text(key: str, value: Any) -> str | None:
    """The name of an enum argument (``classification`` 2 → ``sensitive (2)``), or None if ``key`` is no enum."""
    names = ENUMS.get(key)
    if names is None or isinstance(value, bool) or not isinstance(value, int):
        return None
    return f"{names[value]} ({value})" if 0 <= value < len(names) else str(value)


def bytes_text(value: str) -> str | None:
    """0x-hex bytes that are printable UTF-8 (a file name, a reference) as text, else None."""
    try:
        text = bytes.fromhex(value[2:]).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return text if text and text.isprintable() else None
