"""Subscription files (SPEC §3, §5): additions, cancellations and location updates.

The original service's files are supported as they are: quoted header and fields, the plan in
`service_id`, msisdns that are not valid E.164 numbers (kept exactly, digits only).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from iska_pipelines.lib.inbox.reading import (
    EVENT,
    REASON,
    ROW,
    FileRefused,
    ParsedFile,
    as_float,
    first_failure,
    latitude_invalid,
    longitude_invalid,
    parse_timestamp,
    read_text_table,
    require_columns,
    split_refused,
)
from iska_pipelines.lib.regions.config import Regions
from iska_pipelines.lib.settings import DEFAULT_LANGUAGES, DEFAULT_REGIONS, DEFAULTS
from iska_pipelines.lib.vocabulary import PLAN_CODES, FileKind, Reason

PLAN_COLUMNS = ("service_id", "original_sub_plan", "sub_plan", "plan")


def required_columns(kind: FileKind) -> list[str]:
    if kind is FileKind.CANCELLATIONS:
        return ["msisdn", "ts"]
    return ["msisdn", "ts", "lat", "lon"]


def read_subscription_file(
    path: Path,
    kind: FileKind,
    timezone: str,
    max_future_minutes: float = DEFAULTS.max_future_minutes,
    now: datetime | None = None,
    languages: frozenset[str] = DEFAULT_LANGUAGES,
    regions: Regions = DEFAULT_REGIONS,
) -> ParsedFile:
    """Good rows: `_row`, msisdn, ts (UTC), and lat, lon (+ plan, language and region for
    additions: the optional `language` column, lower-cased, empty when not given, a code not in
    `languages` refused as `invalid_language`; the optional `region` column as configured, a
    code of no region refused as `invalid_region`, and `region_guess`, the region of the
    msisdn's longest prefix, else the default region).

    A ts without an offset is local time in the row's region (`timezone` when there is one
    region). A ts more than `max_future_minutes` ahead of `now` (default: the time of reading)
    is refused as `future_ts`.
    """
    frame, originals = read_text_table(path)
    require_columns(frame, required_columns(kind), path.name, str(kind))
    columns = ["msisdn", "ts"]
    typed = frame.with_columns(msisdn=normalised_msisdn("msisdn"))
    typed = typed.with_columns(
        region=region_code(frame, "region", regions)
        if kind is FileKind.ADDITIONS
        else pl.lit(None, pl.String),
        region_guess=region_of_msisdn(pl.col("msisdn"), regions),
        _region_given=region_given(frame, "region"),  # the column as written, before `region`
    )
    typed = typed.with_columns(ts=local_timestamp("ts", timezone, regions))
    checks: list[tuple[pl.Expr, str]] = [
        (pl.col("msisdn").is_null(), Reason.INVALID_MSISDN),
        (pl.col("ts").is_null(), Reason.INVALID_TS),
        (too_far_ahead(pl.col("ts"), max_future_minutes, now), Reason.FUTURE_TS),
    ]
    if kind is not FileKind.CANCELLATIONS:
        typed = typed.with_columns(lat=as_float("lat"), lon=as_float("lon"))
        checks += [
            (latitude_invalid(pl.col("lat")), Reason.INVALID_LAT),
            (longitude_invalid(pl.col("lon")), Reason.INVALID_LON),
        ]
        columns += ["lat", "lon"]
    if kind is FileKind.ADDITIONS:
        plan_column = next((c for c in PLAN_COLUMNS if c in frame.columns), None)
        if plan_column is None:
            raise FileRefused(
                f"{path.name} is not an additions file: missing the plan column "
                "(service_id or original_sub_plan)"
            )
        codes = pl.DataFrame({"_code": list(PLAN_CODES), "plan": [str(p) for p in PLAN_CODES.values()]})
        typed = (
            typed.with_columns(_code=pl.col(plan_column).str.to_lowercase())
            .join(codes, on="_code", how="left", maintain_order="left")
            .drop("_code")
        )
        checks.append((pl.col("plan").is_null(), Reason.INVALID_PLAN))
        typed = typed.with_columns(language=language_code(frame, "language"))
        checks.append(
            (
                pl.col("language").is_not_null() & ~pl.col("language").is_in(list(languages)),
                Reason.INVALID_LANGUAGE,
            )
        )
        checks.append((pl.col("_region_given") & pl.col("region").is_null(), Reason.INVALID_REGION))
        columns += ["plan", "language", "region", "region_guess"]
    checked = typed.with_columns(first_failure(checks).alias(REASON))
    # an exact repeat (same msisdn and ts) is refused; the first copy counts
    repeat = pl.col(ROW) != pl.col(ROW).min().over("msisdn", "ts")
    checked = checked.with_columns(
        pl.when(pl.col(REASON).is_null() & repeat)
        .then(pl.lit(Reason.DUPLICATE_IN_FILE.value))
        .otherwise(pl.col(REASON))
        .alias(REASON)
    )
    # rows refused for their own reason do not make later copies duplicates
    checked = _recheck_duplicates(checked)
    good, refused = split_refused(checked.select(ROW, *columns, REASON), frame, originals)
    return ParsedFile(good=good, refused=refused, rows_in=frame.height, source=frame, originals=originals)


def language_code(frame: pl.DataFrame, column: str) -> pl.Expr:
    """The optional column, trimmed and lower-cased; blank or absent is null (not chosen)."""
    if column not in frame.columns:
        return pl.lit(None, pl.String)
    code = pl.col(column).str.strip_chars().str.to_lowercase()  # as languages.normalise
    return pl.when(code.str.len_chars() > 0).then(code)


def region_given(frame: pl.DataFrame, column: str) -> pl.Expr:
    """The optional column holds something (blank or absent: not chosen)."""
    if column not in frame.columns:
        return pl.lit(False)
    return pl.col(column).str.strip_chars().str.len_chars().fill_null(0) > 0


def region_code(frame: pl.DataFrame, column: str, regions: Regions) -> pl.Expr:
    """The optional column as a configured code (case ignored); null when blank, absent or
    unknown (`region_given` tells the last apart)."""
    if column not in frame.columns:
        return pl.lit(None, pl.String)
    wanted = pl.col(column).str.strip_chars().str.to_uppercase()
    expr = pl.lit(None, pl.String)
    for code in reversed(regions.codes):
        expr = pl.when(wanted == code.upper()).then(pl.lit(code)).otherwise(expr)
    return expr


def region_of_msisdn(msisdn: pl.Expr, regions: Regions) -> pl.Expr:
    """The region of the longest prefix the msisdn starts with, else the default region."""
    expr = pl.lit(regions.default.code)
    for prefix, code in reversed(regions.prefixes_longest_first()):
        expr = pl.when(msisdn.str.starts_with(prefix)).then(pl.lit(code)).otherwise(expr)
    return expr


def local_timestamp(column: str, timezone: str, regions: Regions) -> pl.Expr:
    """`ts` in UTC; without an offset, local time in the row's region (`region`, else
    `region_guess`); with one region, in `timezone`."""
    if not regions.several:
        return parse_timestamp(column, timezone)
    region = pl.coalesce(pl.col("region"), pl.col("region_guess"))
    expr = parse_timestamp(column, regions.default.timezone)
    for other in regions.all[1:]:
        expr = pl.when(region == other.code).then(parse_timestamp(column, other.timezone)).otherwise(expr)
    return expr


def _recheck_duplicates(checked: pl.DataFrame) -> pl.DataFrame:
    valid_first = (
        checked.filter(pl.col(REASON).is_null() | (pl.col(REASON) == Reason.DUPLICATE_IN_FILE))
        .group_by("msisdn", "ts")
        .agg(pl.col(ROW).min().alias("_first"))
    )
    return (
        checked.join(valid_first, on=["msisdn", "ts"], how="left", maintain_order="left", nulls_equal=False)
        .with_columns(
            pl.when((pl.col(REASON) == Reason.DUPLICATE_IN_FILE) & (pl.col(ROW) == pl.col("_first")))
            .then(pl.lit(None, pl.String))
            .otherwise(pl.col(REASON))
            .alias(REASON)
        )
        .drop("_first")
    )


def normalised_msisdn(column: str) -> pl.Expr:
    """Digits as received, without spaces, a leading + or 00; 8-15 ASCII digits, else null
    (the regex engine's \\d would also take Arabic-Indic or full-width digits)."""
    digits = pl.col(column).str.replace_all(r"\s+", "").str.replace(r"^\+", "").str.replace(r"^00", "")
    return pl.when(digits.str.contains(r"^[0-9]{8,15}$")).then(digits)


def too_far_ahead(ts: pl.Expr, max_future_minutes: float, now: datetime | None = None) -> pl.Expr:
    """A ts more than `max_future_minutes` after `now` (default: this moment)."""
    limit = (now or datetime.now(UTC)).astimezone(UTC) + timedelta(minutes=max_future_minutes)
    return ts > pl.lit(limit, dtype=EVENT)
