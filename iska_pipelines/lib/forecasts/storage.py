"""Set-based upsert of a forecasts file (SPEC §4): staging load, then UPDATE and INSERT.

On PostgreSQL the rows travel in binary COPY (the server parses no text), and two cases that
cover a whole grid skip the row-by-row path:
- the first grid goes straight into the empty table;
- a file that covers most of the stored grid (the daily case) rewrites the table: the stored
  rows are read once, merged with the file's rows here, and the table is truncated and refilled
  with one COPY. Updating a million rows in place writes a new version of every tuple and index
  entry, one WAL record per row; INSERT ... SELECT is likewise per row, where COPY writes pages.
Files of REWRITE_MIN_ROWS rows or more load with COPY FREEZE into a table emptied in the same
transaction, so the rows need no hint-bit pass on first read. The price: the table is locked
against writers from the start of such a file's transaction, and
against everyone from the TRUNCATE until the commit (a few seconds for a million rows), and a
REPEATABLE READ transaction that began earlier and had not read `forecasts` yet would see the
new rows (PostgreSQL's documented caveat for TRUNCATE and FREEZE; ISKA reads in READ COMMITTED).

Only rows whose values (issue time included) differ from the stored ones are written; the others
keep their `updated_at`, so re-running an applied file leaves the table as it was. Every write takes the subscriptions lock
first, so nearest-point assignment never interleaves with a grid change.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa

from iska_pipelines.lib.db.bulk import (
    ColumnType,
    copy_binary,
    create_staging,
    load_staging,
    read_binary,
    read_frame,
)
from iska_pipelines.lib.db.locks import lock_subscriptions
from iska_pipelines.lib.db.schema import FCAT_TYPE, TIMESTAMP
from iska_pipelines.lib.db.timestamps import utcnow

STAGE = "stage_forecasts"
STAGE_COLUMNS = {
    "gid": "BIGINT",
    "lat": "DOUBLE PRECISION",
    "lon": "DOUBLE PRECISION",
    "fcat24": "NUMERIC(12, 4)",
    "fcat48": "NUMERIC(12, 4)",
    "is_active": "BOOLEAN",
    "issued_at": "TIMESTAMP WITH TIME ZONE",
}
GRID_SCHEMA: dict[str, ColumnType] = {"gid": pl.Int64, "lat": pl.Float64, "lon": pl.Float64}
# what the rewrite reads of every stored row (fixed width: binary COPY, no text)
UTC_TIME = pl.Datetime("us", "UTC")
# fcats as integer ten-thousandths, a missing issue time as the epoch: all fixed width
STORED = """SELECT gid, lat, lon, (fcat24 * 10000)::bigint AS fcat24_units,
                   (fcat48 * 10000)::bigint AS fcat48_units, is_active,
                   coalesce(issued_at, 'epoch'::timestamptz) AS issued_at, created_at, updated_at
            FROM forecasts"""
STORED_SCHEMA: dict[str, ColumnType] = {
    "gid": pl.Int64,
    "lat": pl.Float64,
    "lon": pl.Float64,
    "fcat24_units": pl.Int64,
    "fcat48_units": pl.Int64,
    "is_active": pl.Boolean,
    "issued_at": UTC_TIME,
    "created_at": UTC_TIME,
    "updated_at": UTC_TIME,
}
ROW_SCHEMA: dict[str, ColumnType] = {
    "gid": pl.Int64,
    "lat": pl.Float64,
    "lon": pl.Float64,
    "fcat24": FCAT_TYPE,
    "fcat48": FCAT_TYPE,
    "is_active": pl.Boolean,
    "issued_at": UTC_TIME,
    "created_at": UTC_TIME,
    "updated_at": UTC_TIME,
}
# a row is rewritten only when one of these differs: a re-run leaves `updated_at` alone (SPEC §4),
# and never by a forecast issued before the stored one (re-running an old file after a newer
# one must not put yesterday's forecast back)
CHANGED = """(forecasts.lat <> s.lat OR forecasts.lon <> s.lon OR forecasts.fcat24 <> s.fcat24
              OR forecasts.fcat48 <> s.fcat48
              OR coalesce(s.is_active, forecasts.is_active) <> forecasts.is_active
              OR forecasts.issued_at IS NULL OR forecasts.issued_at <> s.issued_at)
             AND (forecasts.issued_at IS NULL OR s.issued_at >= forecasts.issued_at)"""
KEPT = "stage_forecasts_kept"
# a file with at least this many rows per stored row rewrites the table (PostgreSQL)
REWRITE_FRACTION = 0.5
REWRITE_MIN_ROWS = 10_000


@dataclass(frozen=True)
class ForecastUpsert:
    rows_inserted: int
    rows_updated: int
    grid_changed: bool  # points added, moved, or (de)activated: subscriptions need reassigning


def upsert_forecasts(connection: sa.Connection, frame: pl.DataFrame) -> ForecastUpsert:
    """Upsert by gid. Rows without an `is_active` value keep the stored one (new rows: active);
    rows without an `issued_at` (an API write) are issued now. Unchanged rows are not written."""
    if frame.height == 0:
        return ForecastUpsert(0, 0, False)
    lock_subscriptions(connection)  # before any other lock: subscription writers take it first too
    postgres = connection.dialect.name == "postgresql"
    whole_grid = postgres and frame.height >= REWRITE_MIN_ROWS  # may truncate: writers wait
    if whole_grid:
        connection.exec_driver_sql("LOCK TABLE forecasts IN EXCLUSIVE MODE")  # readers only
    if "issued_at" not in frame.columns:
        frame = frame.with_columns(pl.lit(utcnow()).cast(UTC_TIME).alias("issued_at"))
    rows = frame.select(list(STAGE_COLUMNS))
    if not connection.execute(sa.text("SELECT EXISTS (SELECT 1 FROM forecasts)")).scalar():
        # first grid: nothing to merge with, so the rows go straight in
        now = utcnow()
        rows = rows.with_columns(
            pl.col("is_active").fill_null(True),
            pl.lit(now).alias("created_at"),
            pl.lit(now).alias("updated_at"),
        )
        if whole_grid:
            _refill(connection, rows)
        elif postgres:
            copy_binary(connection, "forecasts", rows)
        else:
            load_staging(connection, "forecasts", rows)
        return ForecastUpsert(frame.height, 0, True)
    if whole_grid:
        stored = int(connection.execute(sa.text("SELECT count(*) FROM forecasts")).scalar_one())
        if frame.height >= REWRITE_FRACTION * stored:
            return _rewrite(connection, rows)
    create_staging(connection, STAGE, STAGE_COLUMNS)
    load_staging(connection, STAGE, rows)
    existing, changed = connection.execute(
        sa.text(f"""
        SELECT count(f.gid),
               coalesce(sum(CASE WHEN f.gid IS NULL OR f.lat <> s.lat OR f.lon <> s.lon
                                  OR coalesce(s.is_active, f.is_active) <> f.is_active
                             THEN 1 ELSE 0 END), 0)
        FROM {STAGE} s LEFT JOIN forecasts f ON f.gid = s.gid
    """)
    ).one()
    stamp = sa.bindparam("now", utcnow(), type_=TIMESTAMP)
    updated = 0
    if existing:
        updated = connection.execute(
            sa.text(f"""
            UPDATE forecasts SET lat = s.lat, lon = s.lon, fcat24 = s.fcat24, fcat48 = s.fcat48,
                   is_active = coalesce(s.is_active, forecasts.is_active), issued_at = s.issued_at,
                   updated_at = :now
            FROM {STAGE} s WHERE forecasts.gid = s.gid AND {CHANGED}
        """).bindparams(stamp)
        ).rowcount
    if existing < frame.height:
        only_new = "WHERE NOT EXISTS (SELECT 1 FROM forecasts f WHERE f.gid = s.gid)" if existing else ""
        connection.execute(
            sa.text(f"""
            INSERT INTO forecasts (gid, lat, lon, fcat24, fcat48, is_active, issued_at, created_at,
                                   updated_at)
            SELECT s.gid, s.lat, s.lon, s.fcat24, s.fcat48, coalesce(s.is_active, TRUE), s.issued_at,
                   :now, :now
            FROM {STAGE} s {only_new}
        """).bindparams(stamp)
        )
    return ForecastUpsert(frame.height - existing, updated, changed > 0)


def _rewrite(connection: sa.Connection, rows: pl.DataFrame) -> ForecastUpsert:
    """Merge the stored grid with the file's rows here, then truncate and refill (PostgreSQL)."""
    now = utcnow()
    stored = read_binary(connection, STORED, STORED_SCHEMA)
    joined = rows.join(
        stored.rename(lambda c: c if c == "gid" else f"{c}_was"), on="gid", how="left", maintain_order="left"
    )
    # a stored row issued after the file's keeps every value it has, like gids the file omits
    older = (pl.col("issued_at") < pl.col("issued_at_was")).fill_null(False)
    superseded = joined.filter(older).select("gid")
    joined = joined.filter(~older)
    is_active = pl.coalesce("is_active", "is_active_was")
    existed = pl.col("created_at_was").is_not_null()
    moved = (
        ~existed
        | (pl.col("lat") != pl.col("lat_was"))
        | (pl.col("lon") != pl.col("lon_was"))
        | (is_active != pl.col("is_active_was"))
    )
    rewritten = existed & (
        moved
        | (_units("fcat24") != pl.col("fcat24_units_was"))
        | (_units("fcat48") != pl.col("fcat48_units_was"))
        | (pl.col("issued_at") != pl.col("issued_at_was"))
    ).fill_null(True)
    existing, changed, updated = joined.select(
        existed.sum().alias("existing"), moved.sum().alias("changed"), rewritten.sum().alias("updated")
    ).row(0)
    existing += superseded.height
    merged = joined.select(
        "gid",
        "lat",
        "lon",
        "fcat24",
        "fcat48",
        is_active.fill_null(True).alias("is_active"),
        "issued_at",
        pl.col("created_at_was").fill_null(pl.lit(now)).alias("created_at"),
        pl.when(existed & ~rewritten)
        .then(pl.col("updated_at_was"))
        .otherwise(pl.lit(now))
        .alias("updated_at"),
    )
    del joined
    absent = pl.concat([stored.select("gid").join(rows.select("gid"), on="gid", how="anti"), superseded])
    del stored
    if absent.height:  # gids the file does not mention keep every value they have
        merged = pl.concat([merged, _stored_rows(connection, absent)], how="vertical_relaxed")
    _refill(connection, merged.sort("gid"))
    return ForecastUpsert(rows.height - existing, updated, changed > 0)


def _units(column: str) -> pl.Expr:
    return (pl.col(column).cast(pl.Float64) * 10_000).round().cast(pl.Int64)


def _stored_rows(connection: sa.Connection, gids: pl.DataFrame) -> pl.DataFrame:
    create_staging(connection, KEPT, {"gid": "BIGINT"})
    copy_binary(connection, KEPT, gids)
    return read_frame(
        connection,
        f"""
        SELECT f.gid, f.lat, f.lon, f.fcat24, f.fcat48, f.is_active, f.issued_at, f.created_at,
               f.updated_at
        FROM forecasts f JOIN {KEPT} k ON k.gid = f.gid
    """,
        ROW_SCHEMA,
    )


def _refill(connection: sa.Connection, rows: pl.DataFrame) -> None:
    """Empty the table and COPY the rows in, frozen (FREEZE needs the TRUNCATE in this
    transaction, even when the table is empty already)."""
    connection.exec_driver_sql("TRUNCATE forecasts")
    copy_binary(connection, "forecasts", rows, freeze=True)


def active_grid(connection: sa.Connection) -> pl.DataFrame:
    return read_frame(
        connection, "SELECT gid, lat, lon FROM forecasts WHERE is_active ORDER BY gid", GRID_SCHEMA
    )


@dataclass(frozen=True)
class TableHealth:
    rows: int
    duplicate_gids: int
    out_of_range: int


def table_health(connection: sa.Connection) -> TableHealth:
    rows, distinct, bad = connection.execute(
        sa.text("""
        SELECT count(*), count(DISTINCT gid),
               coalesce(sum(CASE WHEN lat < -90 OR lat > 90 OR lon < -180 OR lon > 180
                            THEN 1 ELSE 0 END), 0)
        FROM forecasts
    """)
    ).one()
    return TableHealth(rows, rows - distinct, bad)
