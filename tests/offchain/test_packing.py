from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from offchain.errors import PackingOverflow, SlotRangeError
from offchain.onion.packing import COUNT_SLOT, PackingLayout, Slot

SLOTS = [Slot("a", -1000, 1000), Slot("b", -500, 500, decimals=2), Slot("c", 0, 2 ** 32)]


@given(st.lists(st.tuples(st.integers(-1000, 1000), st.integers(-500, 500), st.integers(0, 2 ** 32)),
                min_size=1, max_size=30))
@settings(max_examples=30, deadline=None)
def test_packed_sums_with_negatives_and_fixed_point(hom_key, rows):
    layout = PackingLayout.create(SLOTS, 64, hom_key.public.bits - 1)
    pk = hom_key.public
    cts = [hom_key.encrypt(layout.encode([a, Decimal(b) / 100, c], i)) for i, (a, b, c) in enumerate(rows)]
    sums = layout.decode_sums(hom_key.decrypt(pk.sum(cts)))
    assert sums[COUNT_SLOT] == len(rows)
    assert sums["a"] == sum(r[0] for r in rows)
    assert sums["b"] == Decimal(sum(r[1] for r in rows)) / 100
    assert sums["c"] == sum(r[2] for r in rows)


def test_out_of_slot_range_refused_before_encryption():
    layout = PackingLayout.create(SLOTS, 64, 1023)
    with pytest.raises(SlotRangeError) as e:
        layout.encode([1001, 0, 0], row=7)
    assert (e.value.column, e.value.row, e.value.value) == ("a", 7, 1001)
    with pytest.raises(SlotRangeError):
        layout.encode([0, Decimal("0.001"), 0])   # precision would be lost
    with pytest.raises(SlotRangeError):
        layout.encode([0, Decimal("5.01"), 0])    # above 500 hundredths


def test_overflow_detected_before_aggregation():
    layout = PackingLayout.create(SLOTS, 64, 1023)
    layout.check_rows(64)
    with pytest.raises(PackingOverflow) as e:
        layout.check_rows(65)
    assert e.value.max_rows == 64


def test_layout_too_wide_is_refused_with_the_limit():
    with pytest.raises(PackingOverflow) as e:
        PackingLayout.create([Slot(f"s{i}", 0, 2 ** 60) for i in range(40)], 2 ** 20, 2047)
    assert e.value.max_rows < 2 ** 20


def test_layout_roundtrip():
    layout = PackingLayout.create(SLOTS, 1000, 2047)
    assert PackingLayout.from_dict(layout.to_dict()) == layout
