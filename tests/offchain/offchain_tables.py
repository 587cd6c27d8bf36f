"""Shared plaintext tables for the data-plane tests."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from offchain.ingest.schema import Field, Schema
from offchain.ingest.table import Table

ORDERS = Schema((Field("cid", "identifier"), Field("region", "string"),
                 Field("amount", "decimal", decimals=2, minimum="-1000", maximum="1000"),
                 Field("qty", "integer", minimum=-50, maximum=50), Field("day", "date")),
                name="orders")


def orders_table(n: int = 120) -> Table:
    rows = [[f"c{i % 7}", ["north", "south", "east"][i % 3], Decimal(i * 37 % 500 - 100) / 4,
             i % 11 - 3, dt.date(2024, 1, 1) + dt.timedelta(i % 30)] for i in range(n)]
    return Table.from_rows(ORDERS, rows)
