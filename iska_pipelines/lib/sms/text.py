"""The forecast text: `ISKA_SMS_TEMPLATE` rendering and the one-SMS (GSM-7) check.

Numbers are rendered from the stored `Decimal` (NUMERIC(12,4)) and never pass through a float,
so a stored 0.3000 reads `0.3`, never `0.30000000000000004`. Trailing zeros after the point are
dropped (0.7500 -> `0.75`, 2.0000 -> `2`): the value is exactly the stored one, written the
shortest way, which keeps the message short and matches how the grid files usually write it.
"""

from __future__ import annotations

import string
from datetime import date
from decimal import Decimal

from iska_pipelines.lib.errors import ConfigurationError

SMS_SEPTETS = 160
FIELDS = ("date", "fcat24", "fcat48")
# the widest values a field can take: NUMERIC(12,4) and an ISO date
WIDEST = {"date": "2026-12-31", "fcat24": "-99999999.9999", "fcat48": "-99999999.9999"}
STORED_PLACES = Decimal("0.0001")

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + char: two)
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


def septets(text: str) -> int:
    """Length of `text` in GSM-7 septets; ValueError names the first character GSM-7 lacks."""
    total = 0
    for char in text:
        if char in GSM7_BASIC:
            total += 1
        elif char in GSM7_EXTENSION:
            total += 2
        else:
            raise ValueError(f"{char!r} is not in the GSM-7 alphabet")
    return total


def format_number(value: Decimal | int | str) -> str:
    """A stored forecast value, exact, without trailing zeros or exponent (see module doc)."""
    if isinstance(value, float):
        raise TypeError("forecast values are Decimals; a float would add noise")
    number = Decimal(value).quantize(STORED_PLACES)
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def render(template: str, day: date, fcat24: Decimal, fcat48: Decimal) -> str:
    return template.format(date=day.isoformat(), fcat24=format_number(fcat24),
                           fcat48=format_number(fcat48))


def validate_template(template: str, variable: str = "ISKA_SMS_TEMPLATE") -> str:
    """Fail at start-up when the template could ever need more than one GSM-7 SMS."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ConfigurationError(f"{variable} is not a valid template: {error}") from None
    unknown = sorted({n for n in names if n not in FIELDS})
    if unknown:
        raise ConfigurationError(
            f"{variable} uses unknown field(s) {', '.join('{' + n + '}' for n in unknown)}; "
            f"allowed: {{date}}, {{fcat24}}, {{fcat48}}")
    try:
        widest = template.format(**WIDEST)
    except (ValueError, IndexError, KeyError) as error:
        raise ConfigurationError(f"{variable} is not a valid template: {error}") from None
    try:
        length = septets(widest)
    except ValueError as error:
        raise ConfigurationError(f"{variable} must fit one GSM-7 SMS: {error}") from None
    if length > SMS_SEPTETS:
        raise ConfigurationError(
            f"{variable} must fit one GSM-7 SMS ({SMS_SEPTETS} septets); with the widest "
            f"values it takes {length}")
    return template
