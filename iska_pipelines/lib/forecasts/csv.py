"""The forecasts file (SPEC §3–4): gid, fcat24, fcat48 and the point as lat/lon or geom."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from iska_pipelines.lib.db.schema import FCAT_TYPE
from iska_pipelines.lib.forecasts.geometry import parse_point
from iska_pipelines.lib.inbox.reading import (
    DECIMAL_4,
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
from iska_pipelines.lib.vocabulary import Reason

TRUE_WORDS = ["true", "t", "1", "yes", "y"]
FALSE_WORDS = ["false", "f", "0", "no", "n"]
ISSUED = pl.Datetime("us", "UTC")
COLUMNS = ["gid", "lat", "lon", "fcat24", "fcat48", "is_active", "issued_at"]
GID_PATTERN = r"^[+]?[0-9]{1,18}$"  # a positive whole number of at most 18 ASCII digits


def read_forecasts(path: Path, timezone: str = "UTC") -> ParsedFile:
    """Typed good rows (gid, lat, lon, fcat24, fcat48, is_active, issued_at) and refused rows.

    `issued_at` (SPEC §4) is the optional column's time, read like a subscription file's `ts`
    (without an offset: local to `timezone`), else the time the file was dropped (its mtime)."""
    frame, originals = read_text_table(path)
    has_latlon = "lat" in frame.columns and "lon" in frame.columns
    if not has_latlon and "geom" not in frame.columns:
        require_columns(frame, ["gid", "fcat24", "fcat48", "lat", "lon"], path.name, "forecasts")
        raise FileRefused(f"{path.name}: needs lat and lon columns or a geom column")
    require_columns(frame, ["gid", "fcat24", "fcat48"], path.name, "forecasts")

    typed = frame.with_columns(
        gid=pl.when(pl.col("gid").str.contains(GID_PATTERN)).then(pl.col("gid").cast(pl.Int64, strict=False)),
        fcat24=_decimal("fcat24"),
        fcat48=_decimal("fcat48"),
        is_active=_boolean("is_active") if "is_active" in frame.columns else pl.lit(None, pl.Boolean),
        issued_at=_issued_at(frame, path, timezone),
    )
    checks_point: list[tuple[pl.Expr, str]]
    if has_latlon:
        typed = typed.with_columns(lat=as_float("lat"), lon=as_float("lon"))
        checks_point = [
            (latitude_invalid(pl.col("lat")), Reason.INVALID_LAT),
            (longitude_invalid(pl.col("lon")), Reason.INVALID_LON),
        ]
    else:
        typed = _points_from_geom(typed)
        checks_point = [
            (pl.col("lat").is_null(), Reason.INVALID_GEOM),
            (latitude_invalid(pl.col("lat")), Reason.INVALID_LAT),
            (longitude_invalid(pl.col("lon")), Reason.INVALID_LON),
        ]
    active_given = pl.col("is_active").is_null() & (
        frame["is_active"].is_not_null() & (frame["is_active"] != "")
        if "is_active" in frame.columns
        else pl.lit(False)
    )
    checks = [
        (pl.col("gid").is_null() | (pl.col("gid") <= 0), Reason.INVALID_GID),
        *checks_point,
        (pl.col("fcat24").is_null() | pl.col("fcat48").is_null(), Reason.INVALID_FCAT),
        (active_given, Reason.INVALID_IS_ACTIVE),
        (pl.col("issued_at").is_null(), Reason.INVALID_ISSUED_AT),
    ]
    checked = typed.with_columns(first_failure(checks).alias(REASON))
    if _has_repeated_gid(checked["gid"]):
        # a gid that appears again: the last row wins, earlier rows are duplicates
        later_copy = ~pl.col("gid").is_last_distinct()
        checked = checked.with_columns(
            pl.when(pl.col("gid").is_not_null() & later_copy)
            .then(pl.lit(Reason.DUPLICATE_IN_FILE.value))
            .otherwise(pl.col(REASON))
            .alias(REASON)
        )
    good, refused = split_refused(checked.select(ROW, *COLUMNS, REASON), frame, originals)
    return ParsedFile(
        good=good.drop(ROW), refused=refused, rows_in=frame.height, source=frame, originals=originals
    )


def _issued_at(frame: pl.DataFrame, path: Path, timezone: str) -> pl.Expr:
    dropped = pl.lit(datetime.fromtimestamp(path.stat().st_mtime, UTC)).cast(ISSUED)
    if "issued_at" not in frame.columns:
        return dropped
    given = pl.col("issued_at").fill_null("").str.strip_chars()
    return pl.when(given == "").then(dropped).otherwise(parse_timestamp("issued_at", timezone).cast(ISSUED))


def _has_repeated_gid(gids: pl.Series) -> bool:
    """A cheap count first: a grid file rarely repeats a gid, and marking repeats costs a hash
    pass over the whole column."""
    distinct = gids.n_unique() - (1 if gids.null_count() else 0)
    return distinct < gids.count()


def _decimal(column: str) -> pl.Expr:
    text = pl.col(column)
    return pl.when(text.str.contains(DECIMAL_4)).then(text.cast(FCAT_TYPE, strict=False))


def _boolean(column: str) -> pl.Expr:
    text = pl.col(column).str.to_lowercase()
    return (
        pl.when(text.is_in(TRUE_WORDS))
        .then(pl.lit(True))
        .when(text.is_in(FALSE_WORDS))
        .then(pl.lit(False))
        .otherwise(pl.lit(None, pl.Boolean))
    )


def _points_from_geom(frame: pl.DataFrame) -> pl.DataFrame:
    """Parse each distinct geom once in Python (WKT and WKB both); join the points back."""
    distinct = frame.select(pl.col("geom").unique()).drop_nulls()["geom"].to_list()
    points = {text: parse_point(text) for text in distinct}
    lookup = pl.DataFrame(
        {
            "geom": list(points),
            "lat": [p[0] if p else None for p in points.values()],
            "lon": [p[1] if p else None for p in points.values()],
        },
        schema={"geom": pl.String, "lat": pl.Float64, "lon": pl.Float64},
    )
    return frame.join(lookup, on="geom", how="left", maintain_order="left")
