"""One API record checked by the same rules as one CSV row (SPEC §3): the shared part.

The values are turned into the text a CSV cell would carry and run through the very Polars
expressions the file readers use, so a value the API accepts is one a file would accept, and the
refusal reason is the same word. Unlike a file row, every failing field is reported at once.
(forecasts/rules.py and subscriptions/rules.py hold each kind's checks.)
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from iska_pipelines.lib.errors import FieldError
from iska_pipelines.lib.vocabulary import Reason

MESSAGES = {
    Reason.INVALID_GID: "must be a positive whole number of at most 18 digits",
    Reason.INVALID_FCAT: "must be a decimal number with at most 4 decimal places",
    Reason.INVALID_LAT: "must be a latitude in degrees, from -90 to 90",
    Reason.INVALID_LON: "must be a longitude in degrees, from -180 to 180",
    Reason.INVALID_GEOM: "must be a WKT/EWKT POINT(lon lat) or hex (E)WKB point in WGS 84",
    Reason.INVALID_IS_ACTIVE: "must be true or false",
    Reason.INVALID_MSISDN: "must be 8 to 15 digits (spaces, a leading + or 00 are removed)",
    Reason.INVALID_TS: "must be YYYY-MM-DD HH:MM:SS or ISO 8601 (offset at most ±14:00)",
    Reason.FUTURE_TS: "must not be further ahead of now than ISKA_MAX_FUTURE_MINUTES",
    Reason.INVALID_PLAN: "must be 11 or daily, 21 or weekly",
    Reason.INVALID_LANGUAGE: "must be an ISO 639 code (en, fr, tw, ee, ha, dag, ...)",
    Reason.INVALID_REGION: "must be a region code of ISKA_REGIONS_FILE (GH, NG, ...)",
}


def cell(value: object) -> str | None:
    """The text a CSV cell would hold for a JSON value (None stays missing)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str, Decimal)):
        return str(value).strip()
    return "\x00"  # lists, objects: never a valid cell


def one_row(**cells: str | None) -> pl.DataFrame:
    return pl.DataFrame(
        {name: [value] for name, value in cells.items()}, schema={name: pl.String for name in cells}
    )


def error(field: str, reason: Reason) -> FieldError:
    return FieldError(field, str(reason), MESSAGES[reason])


def missing_required(values: dict[str, object], names: list[str]) -> list[FieldError]:
    return [
        FieldError(name, "required", "this field is required")
        for name in names
        if cell(values.get(name)) in (None, "")
    ]
