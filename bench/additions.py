"""Additions against a full grid, including nearest-grid assignment, beside per-row SQL search."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from bench import data, pg
from bench.forecasts import materialize
from bench.measure import Sample
from bench.result import Line
from bench.sizes import Sizes
from iska_pipelines.lib.db.engine import engine_for
from iska_pipelines.lib.forecasts.csv import read_forecasts
from iska_pipelines.lib.forecasts.grid import Grid
from iska_pipelines.lib.forecasts.storage import active_grid, upsert_forecasts

# the old system's search: every grid point's great-circle distance, per subscriber
NEAREST_SQL = """
    SELECT gid FROM forecasts WHERE is_active
    ORDER BY 2 * 6371.0088 * asin(sqrt(
        power(sin(radians(lat - %(lat)s) / 2), 2)
        + cos(radians(%(lat)s)) * cos(radians(lat)) * power(sin(radians(lon - %(lon)s) / 2), 2)))
    LIMIT 1
"""


def load_grid_file(url: str, path: Path) -> None:
    with engine_for(url).begin() as connection:
        upsert_forecasts(connection, read_forecasts(path).good)


def clear_subscriptions(url: str) -> None:
    with engine_for(url).begin() as connection:
        connection.exec_driver_sql("DELETE FROM subscriptions")


def nearest_in_memory(url: str, lats: np.ndarray, lons: np.ndarray) -> tuple[float, float]:
    """(seconds to read the active grid, seconds to build the tree and search every point)."""
    started = time.perf_counter()
    with engine_for(url).connect() as connection:
        points = active_grid(connection)
    read = time.perf_counter()
    Grid(points["gid"].to_numpy(), points["lat"].to_numpy(), points["lon"].to_numpy()).nearest(
        lats, lons, 50.0
    )
    return read - started, time.perf_counter() - read


def nearest_per_row_sql(url: str, lats: np.ndarray, lons: np.ndarray) -> float:
    connection = pg.raw_connection(url)
    try:
        with connection.cursor() as cursor:
            started = time.perf_counter()
            for lat, lon in zip(lats, lons, strict=True):
                cursor.execute(NEAREST_SQL, {"lat": float(lat), "lon": float(lon)})
                cursor.fetchone()
            return time.perf_counter() - started
    finally:
        connection.close()


def measure(sizes: Sizes, work: Path, grid_file: Path, sqlite: bool = True) -> list[Line]:
    people = data.additions(sizes.additions)
    additions = data.write_csv(work / "files" / "bench_additions.csv", people)
    lats, lons = people["lat"].to_numpy(), people["lon"].to_numpy()
    sample_n = min(sizes.nearest_sql_sample, people.height)
    factor = people.height / sample_n
    step, rss, grid_read, search, per_row = Sample(), Sample(), Sample(), Sample(), Sample()
    with pg.scratch_database() as url:
        load_grid_file(url, grid_file)
        for _ in range(sizes.repeats):
            clear_subscriptions(url)
            run = materialize(url, work / "pg-additions", additions, kind="additions")
            step.add(run["seconds"])
            rss.add(run["peak_rss_mb"])
            read, searched = nearest_in_memory(url, lats, lons)
            grid_read.add(read)
            search.add(searched)
            per_row.add(nearest_per_row_sql(url, lats[:sample_n], lons[:sample_n]) * factor)
        shutil.rmtree(work / "pg-additions", ignore_errors=True)
    size = f"{people.height:,} rows, {_grid_rows(grid_file):,}-point grid"
    lines = [
        Line(
            "Additions file: asset step incl. nearest-grid assignment and the write (PostgreSQL)",
            size,
            step,
            "s",
            target="< 5 s",
            met=step.median < 5,
        ),
        Line("Additions file: peak RSS of the run's process", size, rss, "MB"),
        Line(
            "Nearest-point search alone (cKDTree build + query, in memory)",
            size,
            search,
            "s",
            "per-row nearest-point SQL (extrapolated)",
            per_row,
            f"search is {per_row.median / search.median:,.0f}× faster" if search.median else "",
            "< 1 s",
            search.median < 1,
        ),
        Line("Reading the active grid from the database for the search", size, grid_read, "s"),
        Line(
            "Old method: per-row `ORDER BY great-circle distance LIMIT 1` (extrapolated)",
            f"{sample_n}-row sample ×{factor:,.0f}",
            per_row,
            "s",
            "the asset step",
            step,
            f"asset is {per_row.median / step.median:,.0f}× faster" if step.median else "",
        ),
    ]
    if sqlite:
        lines.append(_sqlite(sizes, work, grid_file, additions, size))
    return lines


def _sqlite(sizes: Sizes, work: Path, grid_file: Path, additions: Path, size: str) -> Line:
    folder = work / "sqlite-additions"
    url = f"sqlite:///{folder / 'iska.sqlite3'}"
    step = Sample()
    load_grid_file(url, grid_file)
    for _ in range(sizes.repeats):
        clear_subscriptions(url)
        step.add(materialize(url, folder / "data", additions, kind="additions")["seconds"])
    shutil.rmtree(folder, ignore_errors=True)
    return Line("Additions file: asset step (SQLite)", size, step, "s")


def _grid_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1
