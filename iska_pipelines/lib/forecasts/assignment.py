"""Keeping every active subscription on its nearest active grid point (`lid`, SPEC §4)."""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from iska_pipelines.lib.db.bulk import create_staging, load_staging, read_frame
from iska_pipelines.lib.db.locks import lock_subscriptions
from iska_pipelines.lib.db.schema import TIMESTAMP
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.forecasts.grid import NO_POINT, Grid
from iska_pipelines.lib.forecasts.storage import active_grid

STAGE = "stage_lids"
POSITIONS = {"id": pl.Int64, "lat": pl.Float64, "lon": pl.Float64}


def load_grid(connection: sa.Connection) -> Grid:
    points = active_grid(connection)
    return Grid(points["gid"].to_numpy(), points["lat"].to_numpy(), points["lon"].to_numpy())


def nearest_lids(grid: Grid, lats: pl.Series, lons: pl.Series, max_km: float) -> pl.Series:
    """The nearest gid per point, null where no active point lies within max_km."""
    gids, _ = grid.nearest(lats.to_numpy(), lons.to_numpy(), max_km)
    lids = pl.Series("lid", gids, dtype=pl.Int64)
    return pl.select(pl.when(lids != NO_POINT).then(lids)).to_series().alias("lid")


def with_nearest_lids(connection: sa.Connection, events: pl.DataFrame, max_km: float) -> pl.DataFrame:
    """Adds `lid` and `no_grid` (a grid exists but no point is within max_km).

    The lock comes before the grid is read: a forecasts write takes it too, so a grid change
    either commits before this read or waits for this transaction and then reassigns its rows.
    """
    lock_subscriptions(connection)
    grid = load_grid(connection)
    if len(grid) == 0 or events.height == 0:  # no grid yet: applied without a lid
        return events.with_columns(lid=pl.lit(None, pl.Int64), no_grid=pl.lit(False))
    lids = nearest_lids(grid, events["lat"], events["lon"], max_km)
    return events.with_columns(lids).with_columns(no_grid=pl.col("lid").is_null())


def reassign_active(connection: sa.Connection, max_km: float, grid: Grid | None = None) -> int:
    """Point every active subscription at its nearest grid point; returns how many changed."""
    positions = read_frame(
        connection, "SELECT id, lat, lon FROM subscriptions WHERE status = 'active'", POSITIONS
    )
    if positions.height == 0:  # nothing to point: skip loading the grid
        return 0
    grid = grid or load_grid(connection)
    lids = positions.select("id").with_columns(nearest_lids(grid, positions["lat"], positions["lon"], max_km))
    create_staging(connection, STAGE, {"id": "INTEGER PRIMARY KEY", "lid": "BIGINT"})
    load_staging(connection, STAGE, lids)
    result = connection.execute(
        sa.text(f"""
        UPDATE subscriptions SET lid = s.lid, updated_at = :now
        FROM {STAGE} s
        WHERE subscriptions.id = s.id
          AND (subscriptions.lid <> s.lid OR (subscriptions.lid IS NULL) <> (s.lid IS NULL))
    """).bindparams(sa.bindparam("now", utcnow(), type_=TIMESTAMP))
    )
    return int(result.rowcount or 0)
