"""Forecasts through the API: a one-row forecasts file (SPEC §4).

A write goes through the same upsert as a file and, when it adds, moves or (de)activates a
grid point, reassigns every active subscription in the same transaction. Delete means inactive:
the row stays, subscriptions move to their next nearest active point.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import polars as pl
import sqlalchemy as sa

from iska_pipelines.lib.db.schema import FCAT_TYPE, forecasts
from iska_pipelines.lib.db.timestamps import row_dict
from iska_pipelines.lib.errors import FieldError, InvalidRecord, RecordNotFound
from iska_pipelines.lib.forecasts.assignment import reassign_active
from iska_pipelines.lib.forecasts.rules import ForecastValues
from iska_pipelines.lib.forecasts.storage import upsert_forecasts

WRITTEN = ("gid", "lat", "lon", "fcat24", "fcat48", "is_active")


def list_forecasts(
    connection: sa.Connection, limit: int, offset: int, is_active: bool | None = None
) -> tuple[int, list[dict[str, Any]]]:
    where = [] if is_active is None else [forecasts.c.is_active == is_active]
    count = connection.execute(sa.select(sa.func.count()).select_from(forecasts).where(*where)).scalar_one()
    rows = connection.execute(
        sa.select(forecasts).where(*where).order_by(forecasts.c.gid).limit(limit).offset(offset)
    )
    return count, [row_dict(row) for row in rows]


def find_forecast(connection: sa.Connection, gid: int) -> dict[str, Any] | None:
    row = connection.execute(sa.select(forecasts).where(forecasts.c.gid == gid)).first()
    return None if row is None else row_dict(row)


def get_forecast(connection: sa.Connection, gid: int) -> dict[str, Any]:
    found = find_forecast(connection, gid)
    if found is None:
        raise RecordNotFound(f"no forecast with gid {gid}")
    return found


def save_forecast(
    connection: sa.Connection, values: ForecastValues, max_grid_distance_km: float
) -> dict[str, Any]:
    """Upsert one complete forecast (is_active None keeps the stored value; new rows are active)."""
    missing = [name for name in WRITTEN[:-1] if getattr(values, name) is None]
    if missing:
        raise InvalidRecord([FieldError(name, "required", "this field is required") for name in missing])
    frame = pl.DataFrame(
        [
            pl.Series("gid", [values.gid], pl.Int64),
            pl.Series("lat", [values.lat], pl.Float64),
            pl.Series("lon", [values.lon], pl.Float64),
            pl.Series("fcat24", [values.fcat24], FCAT_TYPE),
            pl.Series("fcat48", [values.fcat48], FCAT_TYPE),
            pl.Series("is_active", [values.is_active], pl.Boolean),
        ]
    )
    upsert = upsert_forecasts(connection, frame)
    if upsert.grid_changed:
        reassign_active(connection, max_grid_distance_km)
    assert values.gid is not None, "check_forecast requires it"
    return get_forecast(connection, values.gid)


def merged(stored: dict[str, Any], given: ForecastValues) -> ForecastValues:
    """PATCH: the stored forecast with the given fields replaced."""
    base = ForecastValues(**{name: stored[name] for name in WRITTEN})
    return replace(
        base, **{name: getattr(given, name) for name in WRITTEN if getattr(given, name) is not None}
    )


def deactivate_forecast(connection: sa.Connection, gid: int, max_grid_distance_km: float) -> dict[str, Any]:
    stored = get_forecast(connection, gid)
    return save_forecast(
        connection, replace(merged(stored, ForecastValues()), is_active=False), max_grid_distance_km
    )
