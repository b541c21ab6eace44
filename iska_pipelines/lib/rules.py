"""One API record checked by the same rules as one CSV row (SPEC §3).

The values are turned into the text a CSV cell would carry and run through the very Polars
expressions the file readers use, so a value the API accepts is one a file would accept, and the
refusal reason is the same word. Unlike a file row, every failing field is reported at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import polars as pl

from iska_pipelines.lib.db.schema import FCAT_TYPE
from iska_pipelines.lib.errors import FieldError, InvalidRecord
from iska_pipelines.lib.forecasts.csv import FALSE_WORDS, GID_PATTERN, TRUE_WORDS
from iska_pipelines.lib.forecasts.geometry import parse_point
from iska_pipelines.lib.inbox.reading import DECIMAL_4, as_float, latitude_invalid, longitude_invalid
from iska_pipelines.lib.settings import DEFAULT_LANGUAGES, DEFAULTS
from iska_pipelines.lib.sms.languages import normalise
from iska_pipelines.lib.subscriptions.csv import normalised_msisdn, parse_timestamp, too_far_ahead
from iska_pipelines.lib.vocabulary import PLAN_CODES, Plan, Reason

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


def _row(**cells: str | None) -> pl.DataFrame:
    return pl.DataFrame({name: [value] for name, value in cells.items()},
                        schema={name: pl.String for name in cells})


def _error(field: str, reason: Reason) -> FieldError:
    return FieldError(field, str(reason), MESSAGES[reason])


def _required(values: dict[str, object], names: list[str]) -> list[FieldError]:
    return [FieldError(name, "required", "this field is required")
            for name in names if cell(values.get(name)) in (None, "")]


# --- subscriptions ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SubscriptionValues:
    """Checked values; None where the field was not given."""

    msisdn: str | None = None
    plan: Plan | None = None
    lat: float | None = None
    lon: float | None = None
    ts: datetime | None = None
    language: str | None = None


def check_subscription(values: dict[str, object], timezone: str, required: Sequence[str] = (),
                       max_future_minutes: float = DEFAULTS.max_future_minutes,
                       now: datetime | None = None,
                       languages: frozenset[str] = DEFAULT_LANGUAGES) -> SubscriptionValues:
    """Check the given fields of a subscription; raises InvalidRecord listing every bad one.

    A ts more than `max_future_minutes` ahead of `now` (default: this moment) is `future_ts`.
    """
    errors = _required(values, list(required))
    missing = {e.field for e in errors}
    given = {name for name in ("msisdn", "plan", "lat", "lon", "ts")
             if values.get(name) is not None and name not in missing}
    row = _row(**{name: cell(values.get(name)) for name in ("msisdn", "plan", "lat", "lon", "ts")})
    typed = row.select(
        msisdn=normalised_msisdn("msisdn"), ts=parse_timestamp("ts", timezone),
        lat=as_float("lat"), lon=as_float("lon"),
    ).with_columns(lat_bad=latitude_invalid(pl.col("lat")), lon_bad=longitude_invalid(pl.col("lon")),
                   ts_ahead=too_far_ahead(pl.col("ts"), max_future_minutes, now))
    parsed = typed.row(0, named=True)
    plan = PLAN_CODES.get((cell(values.get("plan")) or "").lower())
    failures = {
        "msisdn": (parsed["msisdn"] is None, Reason.INVALID_MSISDN),
        "plan": (plan is None, Reason.INVALID_PLAN),
        "lat": (parsed["lat_bad"], Reason.INVALID_LAT),
        "lon": (parsed["lon_bad"], Reason.INVALID_LON),
        "ts": (parsed["ts"] is None, Reason.INVALID_TS),
    }
    if parsed["ts_ahead"]:
        failures["ts"] = (True, Reason.FUTURE_TS)
    language = normalise(cell(values.get("language")) or "") or None  # empty: not chosen
    if language is not None:
        given.add("language")
        failures["language"] = (language not in languages, Reason.INVALID_LANGUAGE)
    errors += [_error(name, reason) for name, (failed, reason) in failures.items()
               if name in given and failed]
    if errors:
        raise InvalidRecord(errors)
    return SubscriptionValues(
        msisdn=parsed["msisdn"] if "msisdn" in given else None,
        plan=plan if "plan" in given else None,
        lat=parsed["lat"] if "lat" in given else None,
        lon=parsed["lon"] if "lon" in given else None,
        ts=parsed["ts"] if "ts" in given else None,
        language=language,
    )


# --- forecasts --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ForecastValues:
    gid: int | None = None
    lat: float | None = None
    lon: float | None = None
    fcat24: Decimal | None = None
    fcat48: Decimal | None = None
    is_active: bool | None = None


def check_forecast(values: dict[str, object], required: Sequence[str] = ()) -> ForecastValues:
    """Check the given fields of a forecast (the point as lat/lon or geom)."""
    names = ("gid", "lat", "lon", "fcat24", "fcat48", "is_active")
    geom = cell(values.get("geom"))
    cells = {name: cell(values.get(name)) for name in names}
    if cells["is_active"] == "":  # as in a file: an empty is_active keeps the stored value
        cells["is_active"] = None
    errors: list[FieldError] = []
    if geom not in (None, "") and cells["lat"] in (None, "") and cells["lon"] in (None, ""):
        point = parse_point(geom)
        if point is None:
            errors.append(_error("geom", Reason.INVALID_GEOM))
        else:
            cells["lat"], cells["lon"] = repr(point[0]), repr(point[1])
    errors += _required({**values, **cells}, list(required))
    missing = {e.field for e in errors}
    given = {name for name in names if cells[name] is not None and name not in missing}
    text = _row(**cells)
    typed = text.select(
        gid=pl.when(pl.col("gid").str.contains(GID_PATTERN)).then(pl.col("gid").cast(pl.Int64, strict=False)),
        lat=as_float("lat"), lon=as_float("lon"),
        fcat24=pl.when(pl.col("fcat24").str.contains(DECIMAL_4)).then(pl.col("fcat24").cast(FCAT_TYPE, strict=False)),
        fcat48=pl.when(pl.col("fcat48").str.contains(DECIMAL_4)).then(pl.col("fcat48").cast(FCAT_TYPE, strict=False)),
        is_active=pl.when(pl.col("is_active").str.to_lowercase().is_in(TRUE_WORDS)).then(pl.lit(True))
        .when(pl.col("is_active").str.to_lowercase().is_in(FALSE_WORDS)).then(pl.lit(False)),
    ).with_columns(lat_bad=latitude_invalid(pl.col("lat")), lon_bad=longitude_invalid(pl.col("lon")))
    parsed = typed.row(0, named=True)
    failures = {
        "gid": (parsed["gid"] is None or parsed["gid"] <= 0, Reason.INVALID_GID),
        "lat": (parsed["lat_bad"], Reason.INVALID_LAT),
        "lon": (parsed["lon_bad"], Reason.INVALID_LON),
        "fcat24": (parsed["fcat24"] is None, Reason.INVALID_FCAT),
        "fcat48": (parsed["fcat48"] is None, Reason.INVALID_FCAT),
        "is_active": (parsed["is_active"] is None, Reason.INVALID_IS_ACTIVE),
    }
    errors += [_error(name, reason) for name, (failed, reason) in failures.items()
               if name in given and failed]
    if errors:
        raise InvalidRecord(errors)
    return ForecastValues(**{name: parsed[name] if name in given else None for name in names})
