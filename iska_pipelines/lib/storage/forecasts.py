"""Set-based upsert of a forecasts file (SPEC §4): staging load, then UPDATE and INSERT."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa

from iska_pipelines.lib.storage.bulk import create_staging, load_staging, read_frame
from iska_pipelines.lib.storage.schema import TIMESTAMP
from iska_pipelines.lib.storage.timestamps import utcnow

STAGE = "stage_forecasts"
STAGE_COLUMNS = {
    "gid": "BIGINT",
    "lat": "DOUBLE PRECISION",
    "lon": "DOUBLE PRECISION",
    "fcat24": "NUMERIC(12, 4)",
    "fcat48": "NUMERIC(12, 4)",
    "is_active": "BOOLEAN",
}
GRID_SCHEMA = {"gid": pl.Int64, "lat": pl.Float64, "lon": pl.Float64}


@dataclass(frozen=True)
class ForecastUpsert:
    rows_inserted: int
    rows_updated: int
    grid_changed: bool  # points added, moved, or (de)activated: subscriptions need reassigning


def upsert_forecasts(connection: sa.Connection, frame: pl.DataFrame) -> ForecastUpsert:
    """Upsert by gid. Rows without an `is_active` value keep the stored one (new rows: active)."""
    if frame.height == 0:
        return ForecastUpsert(0, 0, False)
    if connection.execute(sa.text("SELECT NOT EXISTS (SELECT 1 FROM forecasts)")).scalar():
        # first grid: nothing to merge with, so the rows go straight in (one COPY on PostgreSQL)
        now = utcnow()
        load_staging(connection, "forecasts", frame.select(list(STAGE_COLUMNS)).with_columns(
            pl.col("is_active").fill_null(True),
            pl.lit(now).alias("created_at"), pl.lit(now).alias("updated_at"),
        ))
        return ForecastUpsert(frame.height, 0, True)
    create_staging(connection, STAGE, STAGE_COLUMNS)
    load_staging(connection, STAGE, frame.select(list(STAGE_COLUMNS)))
    existing, changed = connection.execute(sa.text(f"""
        SELECT count(f.gid),
               coalesce(sum(CASE WHEN f.gid IS NULL OR f.lat <> s.lat OR f.lon <> s.lon
                                  OR coalesce(s.is_active, f.is_active) <> f.is_active
                             THEN 1 ELSE 0 END), 0)
        FROM {STAGE} s LEFT JOIN forecasts f ON f.gid = s.gid
    """)).one()
    now = sa.bindparam("now", utcnow(), type_=TIMESTAMP)
    if existing:
        connection.execute(sa.text(f"""
            UPDATE forecasts SET lat = s.lat, lon = s.lon, fcat24 = s.fcat24, fcat48 = s.fcat48,
                   is_active = coalesce(s.is_active, forecasts.is_active), updated_at = :now
            FROM {STAGE} s WHERE forecasts.gid = s.gid
        """).bindparams(now))
    if existing < frame.height:
        only_new = "WHERE NOT EXISTS (SELECT 1 FROM forecasts f WHERE f.gid = s.gid)" if existing else ""
        connection.execute(sa.text(f"""
            INSERT INTO forecasts (gid, lat, lon, fcat24, fcat48, is_active, created_at, updated_at)
            SELECT s.gid, s.lat, s.lon, s.fcat24, s.fcat48, coalesce(s.is_active, TRUE), :now, :now
            FROM {STAGE} s {only_new}
        """).bindparams(now))
    return ForecastUpsert(frame.height - existing, existing, changed > 0)


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
    rows, distinct, bad = connection.execute(sa.text("""
        SELECT count(*), count(DISTINCT gid),
               coalesce(sum(CASE WHEN lat < -90 OR lat > 90 OR lon < -180 OR lon > 180
                            THEN 1 ELSE 0 END), 0)
        FROM forecasts
    """)).one()
    return TableHealth(rows, rows - distinct, bad)
