"""Forecast numbers as the SMS writes them.

Numbers are rendered from the stored `Decimal` (NUMERIC(12,4)) and never pass through a float,
so a stored 0.3000 reads `0.3`, never `0.30000000000000004`. Trailing zeros after the point are
dropped (0.7500 -> `0.75`, 2.0000 -> `2`): the value is exactly the stored one, written the
shortest way, which keeps the message short and matches how the grid files usually write it.
The templates themselves, their languages and their length check live in templates.py; GSM-7
and segments in encoding.py.
"""

from __future__ import annotations

from decimal import Decimal

STORED_PLACES = Decimal("0.0001")


def format_number(value: Decimal | int | str) -> str:
    """A stored forecast value, exact, without trailing zeros or exponent (see module doc)."""
    if isinstance(value, float):
        raise TypeError("forecast values are Decimals; a float would add noise")
    number = Decimal(value).quantize(STORED_PLACES)
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
