"""Packing many bounded integers into one Paillier plaintext so one ciphertext sums a vector.

Each slot holds ``value - low`` (so negatives work) of a fixed-point value scaled by
``10^decimals``; its width is the bits needed for ``(high - low) · max_rows``, so the sum of up
to ``max_rows`` vectors can never carry into the next slot. Every value is range-checked before
encryption (:class:`SlotRangeError`) and every aggregation is checked against ``max_rows``
(:class:`PackingOverflow`) before it runs. Slot 0 is a count slot (always 1 per row), which
also lets the decryptor check the claimed number of rows."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Sequence

from offchain.errors import PackingOverflow, SlotRangeError

COUNT_SLOT = "__count__"


@dataclass(frozen=True)
class Slot:
    """One packed value: integer range [low, high] after scaling by 10**decimals."""

    name: str
    low: int
    high: int
    decimals: int = 0

    @property
    def scale(self) -> int:
        return 10 ** self.decimals

    def to_int(self, value: int | Decimal, row: int | None = None) -> int:
        """Scale a (fixed-point) value to its integer form; refuses lost precision / range."""
        scaled = value * self.scale if self.decimals else value
        if isinstance(scaled, Decimal):
            if scaled != scaled.to_integral_value():
                raise SlotRangeError(self.name, row, value, self.low_value, self.high_value)
            scaled = int(scaled)
        if not isinstance(scaled, int) or isinstance(scaled, bool) or not self.low <= scaled <= self.high:
            raise SlotRangeError(self.name, row, value, self.low_value, self.high_value)
        return scaled

    @property
    def low_value(self) -> Decimal | int:
        return Decimal(self.low).scaleb(-self.decimals) if self.decimals else self.low

    @property
    def high_value(self) -> Decimal | int:
        return Decimal(self.high).scaleb(-self.decimals) if self.decimals else self.high

    def to_dict(self) -> dict:
        return {"name": self.name, "low": self.low, "high": self.high, "decimals": self.decimals}


@dataclass(frozen=True)
class PackingLayout:
    """Slot widths and offsets for vectors summed over at most ``max_rows`` rows."""

    slots: tuple[Slot, ...]
    max_rows: int
    widths: tuple[int, ...]

    @classmethod
    def create(cls, slots: Sequence[Slot], max_rows: int, plaintext_bits: int,
               with_count: bool = True) -> "PackingLayout":
        """Size each slot for ``max_rows`` rows; refuse a layout that does not fit."""
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        all_slots = ((Slot(COUNT_SLOT, 0, 1),) if with_count else ()) + tuple(slots)
        widths = tuple(max(1, ((s.high - s.low) * max_rows).bit_length()) for s in all_slots)
        if sum(widths) > plaintext_bits - 1:
            raise PackingOverflow(max_rows, cls._max_rows_for(all_slots, plaintext_bits))
        return cls(all_slots, max_rows, widths)

    @staticmethod
    def _max_rows_for(slots: Sequence[Slot], plaintext_bits: int) -> int:
        lo, hi = 1, 1 << 64
        while lo < hi:
            mid = (lo + hi + 1) // 2
            bits = sum(max(1, ((s.high - s.low) * mid).bit_length()) for s in slots)
            lo, hi = (mid, hi) if bits <= plaintext_bits - 1 else (lo, mid - 1)
        return lo

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.slots]

    @property
    def has_count(self) -> bool:
        return bool(self.slots) and self.slots[0].name == COUNT_SLOT

    @property
    def bits(self) -> int:
        return sum(self.widths)

    def encode(self, values: Sequence[int | Decimal], row: int | None = None) -> int:
        """Pack one row's values (without the count slot, which is added as 1)."""
        data_slots = self.slots[1:] if self.has_count else self.slots
        if len(values) != len(data_slots):
            raise ValueError(f"expected {len(data_slots)} values, got {len(values)}")
        plain, shift = (1, self.widths[0]) if self.has_count else (0, 0)
        for slot, width, value in zip(data_slots, self.widths[1:] if self.has_count else self.widths,
                                      values):
            plain |= (slot.to_int(value, row) - slot.low) << shift
            shift += width
        return plain

    def check_rows(self, rows: int) -> None:
        """Raise before aggregating more rows than the slots were sized for."""
        if rows > self.max_rows:
            raise PackingOverflow(rows, self.max_rows)

    def decode_sums(self, plain: int, rows: int | None = None) -> dict[str, int | Decimal]:
        """Unpack a summed plaintext. ``rows`` defaults to the count slot; each sum is
        corrected for the ``low`` offset and rescaled."""
        raw, shift = [], 0
        for width in self.widths:
            raw.append((plain >> shift) & ((1 << width) - 1))
            shift += width
        if plain >> shift:
            raise PackingOverflow(rows or -1, self.max_rows)
        if rows is None:
            if not self.has_count:
                raise ValueError("layout has no count slot; pass rows")
            rows = raw[0]
        self.check_rows(rows)
        out: dict[str, int | Decimal] = {}
        for slot, value in zip(self.slots, raw):
            total = value + rows * slot.low
            out[slot.name] = Decimal(total).scaleb(-slot.decimals) if slot.decimals else total
        return out

    def to_dict(self) -> dict:
        return {"slots": [s.to_dict() for s in self.slots], "max_rows": self.max_rows,
                "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, d: dict) -> "PackingLayout":
        return cls(tuple(Slot(s["name"], int(s["low"]), int(s["high"]), int(s["decimals"]))
                         for s in d["slots"]), int(d["max_rows"]), tuple(int(w) for w in d["widths"]))
