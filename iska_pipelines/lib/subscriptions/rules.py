"""One subscription record from the API, checked by the CSV rules of SPEC §3 (inbox/record_checks.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from iska_pipelines.lib.errors import InvalidRecord
from iska_pipelines.lib.inbox.reading import as_float, latitude_invalid, longitude_invalid, parse_timestamp
from iska_pipelines.lib.inbox.record_checks import cell, error, missing_required, one_row
from iska_pipelines.lib.regions.config import Regions
from iska_pipelines.lib.settings import DEFAULT_LANGUAGES, DEFAULT_REGIONS, DEFAULTS
from iska_pipelines.lib.sms.languages import normalise
from iska_pipelines.lib.subscriptions.csv import normalised_msisdn, too_far_ahead
from iska_pipelines.lib.vocabulary import PLAN_CODES, Plan, Reason


@dataclass(frozen=True)
class SubscriptionValues:
    """Checked values; None where the field was not given."""

    msisdn: str | None = None
    plan: Plan | None = None
    lat: float | None = None
    lon: float | None = None
    ts: datetime | None = None
    language: str | None = None
    region: str | None = None


def check_subscription(
    values: dict[str, object],
    timezone: str,
    required: Sequence[str] = (),
    max_future_minutes: float = DEFAULTS.max_future_minutes,
    now: datetime | None = None,
    languages: frozenset[str] = DEFAULT_LANGUAGES,
    regions: Regions = DEFAULT_REGIONS,
) -> SubscriptionValues:
    """Check the given fields of a subscription; raises InvalidRecord listing every bad one.

    A ts without an offset is local time in the subscriber's region (the `region` given, else
    the msisdn's prefix's; `timezone` when there is one region). A ts more than
    `max_future_minutes` ahead of `now` (default: this moment) is `future_ts`.
    """
    errors = missing_required(values, list(required))
    missing = {e.field for e in errors}
    given = {
        name
        for name in ("msisdn", "plan", "lat", "lon", "ts")
        if values.get(name) is not None and name not in missing
    }
    row = one_row(**{name: cell(values.get(name)) for name in ("msisdn", "plan", "lat", "lon", "ts")})
    asked = (cell(values.get("region")) or "").strip()  # empty: not chosen
    region = regions.canonical(asked) if asked else None
    typed = row.select(
        msisdn=normalised_msisdn("msisdn"),
        ts=parse_timestamp("ts", local_zone(row, region, timezone, regions)),
        lat=as_float("lat"),
        lon=as_float("lon"),
    ).with_columns(
        lat_bad=latitude_invalid(pl.col("lat")),
        lon_bad=longitude_invalid(pl.col("lon")),
        ts_ahead=too_far_ahead(pl.col("ts"), max_future_minutes, now),
    )
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
    if asked:
        given.add("region")
        failures["region"] = (region is None, Reason.INVALID_REGION)
    errors += [error(name, reason) for name, (failed, reason) in failures.items() if name in given and failed]
    if errors:
        raise InvalidRecord(errors)
    return SubscriptionValues(
        msisdn=parsed["msisdn"] if "msisdn" in given else None,
        plan=plan if "plan" in given else None,
        lat=parsed["lat"] if "lat" in given else None,
        lon=parsed["lon"] if "lon" in given else None,
        ts=parsed["ts"] if "ts" in given else None,
        language=language,
        region=region,
    )


def local_zone(row: pl.DataFrame, region: str | None, timezone: str, regions: Regions) -> str:
    """The time zone of a ts without an offset: the region's, or `timezone` with one region."""
    if not regions.several:
        return timezone
    if region is not None:
        return regions.get(region).timezone
    msisdn = row.select(normalised_msisdn("msisdn")).item()
    return regions.for_msisdn(msisdn or "").timezone
