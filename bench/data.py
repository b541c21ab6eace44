"""Benchmark inputs: a regular forecast grid, and random subscribers inside it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

# roughly Ghana: the grid and every subscriber lie inside this box
SOUTH, NORTH, WEST, EAST = 4.5, 11.5, -3.5, 1.5


@dataclass(frozen=True)
class GridShape:
    rows: int
    cols: int

    @property
    def points(self) -> int:
        return self.rows * self.cols

    @classmethod
    def for_points(cls, points: int) -> GridShape:
        rows = max(1, round(np.sqrt(points)))
        return cls(rows, max(1, points // rows))


def forecast_grid(points: int, seed: int = 1) -> pl.DataFrame:
    """gid 1..n in row-major order over a regular lat/lon lattice, rainfall with 4 decimals."""
    shape = GridShape.for_points(points)
    rng = np.random.default_rng(seed)
    lats = np.linspace(SOUTH, NORTH, shape.rows)
    lons = np.linspace(WEST, EAST, shape.cols)
    lat, lon = np.meshgrid(lats, lons, indexing="ij")
    n = shape.points
    return pl.DataFrame(
        {
            "gid": np.arange(1, n + 1, dtype=np.int64),
            "lat": np.round(lat.ravel(), 6),
            "lon": np.round(lon.ravel(), 6),
            "fcat24": np.round(rng.uniform(0, 80, n), 4),
            "fcat48": np.round(rng.uniform(0, 80, n), 4),
        }
    )


def write_forecasts(path: Path, grid: pl.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.write_csv(path, float_precision=None)
    return path


def with_new_values(grid: pl.DataFrame, seed: int) -> pl.DataFrame:
    """The next day's file: same gids and points, new forecast values."""
    rng = np.random.default_rng(seed)
    n = grid.height
    return grid.with_columns(
        fcat24=pl.Series(np.round(rng.uniform(0, 80, n), 4)),
        fcat48=pl.Series(np.round(rng.uniform(0, 80, n), 4)),
    )


def additions(count: int, seed: int = 2, first_msisdn: int = 233_200_000_000) -> pl.DataFrame:
    """New daily/weekly subscribers at random points inside the grid's box."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, 6, 0, 0)
    seconds = np.sort(rng.integers(0, 86_400, count))
    return pl.DataFrame(
        {
            "ts": [(start + timedelta(seconds=int(s))).strftime("%Y-%m-%d %H:%M:%S") for s in seconds],
            "msisdn": [str(first_msisdn + i) for i in range(count)],
            "service_id": rng.choice([11, 21], count),
            "lat": np.round(rng.uniform(SOUTH, NORTH, count), 6),
            "lon": np.round(rng.uniform(WEST, EAST, count), 6),
        }
    )


def write_csv(path: Path, frame: pl.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    return path
