"""What a plan costs, as an asynchronous gateway is asked for it (SPEC §18): an amount and an
ISO 4217 currency, written `0.20 GHS` in BILLING_PRICE_DAILY / BILLING_PRICE_WEEKLY.

The synchronous `iska` protocol sends a plan code and leaves the price to the carrier; MoMo's
requesttopay carries the amount itself, so a typo here is money: it is checked at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

CURRENCY = re.compile(r"[A-Z]{3}")
MAX_DECIMALS = 2


@dataclass(frozen=True, slots=True)
class Price:
    amount: Decimal
    currency: str

    @property
    def amount_text(self) -> str:
        """The amount as MoMo wants it: a string, no exponent (`0.20`, `1`)."""
        return format(self.amount, "f")


def parse_price(text: str) -> Price:
    """`<amount> <currency>`, e.g. `0.20 GHS`; ValueError saying what is wrong."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError("must be an amount and a currency, e.g. '0.20 GHS'")
    amount_text, currency = parts
    try:
        amount = Decimal(amount_text)
    except InvalidOperation:
        raise ValueError(f"{amount_text!r} is not an amount") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError("the amount must be more than 0")
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int), "a finite Decimal has an integer exponent"
    if -exponent > MAX_DECIMALS:
        raise ValueError(f"the amount has more than {MAX_DECIMALS} decimals")
    if not CURRENCY.fullmatch(currency):
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code (three capital letters)")
    return Price(amount, currency)
