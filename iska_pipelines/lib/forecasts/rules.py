"""One forecast record from the API, checked by the CSV rules of SPEC §3 (inbox/record_checks.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from iska_pipelines.lib.db.schema import FCAT_TYPE
from iska_pipelines.lib.errors import FieldError, InvalidRecord
from iska_pipelines.lib.forecasts.csv import FALSE_WORDS, GID_PATTERN, TRUE_WORDS
from iska_pipelines.lib.forecasts.geometry import parse_point
from iska_pipelines.lib.inbox.reading import DECIMAL_4, as_float, latitude_invalid, longitude_invalid
from iska_pipelines.lib.inbox.record_checks import cell, error, missing_required, one_row
from iska_pipelines.lib.vocabulary import Reason


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
            errors.append(error("geom", Reason.INVALID_GEOM))
        else:
            cells["lat"], cells["lon"] = repr(point[0]), repr(point[1])
    errors += missing_required({**values, **cells}, list(required))
    missing = {e.field for e in errors}
    given = {name for name in names if cells[name] is not None and name not in missing}
    text = one_row(**cells)
    typed = text.select(
        gid=pl.when(pl.col("gid").str.contains(GID_PATTERN)).then(pl.col("gid").cast(pl.Int64, strict=False)),
        lat=as_float("lat"),
        lon=as_float("lon"),
        fcat24=pl.when(pl.col("fcat24").str.contains(DECIMAL_4)).then(
            pl.col("fcat24").cast(FCAT_TYPE, strict=False)
        ),
        fcat48=pl.when(pl.col("fcat48").str.contains(DECIMAL_4)).then(
            pl.col("fcat48").cast(FCAT_TYPE, strict=False)
        ),
        is_active=pl.when(pl.col("is_active").str.to_lowercase().is_in(TRUE_WORDS))
        .then(pl.lit(True))
        .when(pl.col("is_active").str.to_lowercase().is_in(FALSE_WORDS))
        .then(pl.lit(False)),
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
    errors += [error(name, reason) for name, (failed, reason) in failures.items() if name in given and failed]
    if errors:
        raise InvalidRecord(errors)
    return ForecastValues(**{name: parsed[name] if name in given else None for name in names})
