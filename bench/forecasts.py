"""Forecast file through the asset, beside a plain COPY (the floor) and the old per-row method."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

from bench import data, pg
from bench.measure import Sample, run_child
from bench.result import Line
from bench.sizes import Sizes

FLOOR_TABLE = """CREATE TABLE copy_floor (gid BIGINT PRIMARY KEY, lat DOUBLE PRECISION,
    lon DOUBLE PRECISION, fcat24 NUMERIC(12, 4), fcat48 NUMERIC(12, 4))"""
OLD_TABLE = "CREATE TABLE old_method (LIKE forecasts INCLUDING ALL)"


def copy_floor(url: str, path: Path) -> float:
    """A plain COPY of the file's rows into an empty table of the same shape (with its key)."""
    connection = pg.raw_connection(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS copy_floor")
            cursor.execute(FLOOR_TABLE)
            connection.commit()
            started = time.perf_counter()
            with path.open() as handle:
                cursor.copy_expert("COPY copy_floor FROM STDIN WITH (FORMAT csv, HEADER true)", handle)
            connection.commit()
            seconds = time.perf_counter() - started
            cursor.execute("DROP TABLE copy_floor")
            connection.commit()
        return seconds
    finally:
        connection.close()


def old_method(url: str, path: Path, table: str) -> float:
    """The old system: each row read, then SELECT by gid and INSERT or UPDATE, one transaction."""
    connection = pg.raw_connection(url)
    try:
        with connection.cursor() as cursor:
            started = time.perf_counter()
            with path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    gid = int(row["gid"])
                    cursor.execute(f"SELECT gid FROM {table} WHERE gid = %s", (gid,))
                    values = (float(row["lat"]), float(row["lon"]), row["fcat24"], row["fcat48"])
                    if cursor.fetchone():
                        cursor.execute(
                            f"UPDATE {table} SET lat = %s, lon = %s, fcat24 = %s, fcat48 = %s, "
                            "updated_at = now() WHERE gid = %s",
                            (*values, gid),
                        )
                    else:
                        cursor.execute(
                            f"INSERT INTO {table} (gid, lat, lon, fcat24, fcat48, is_active, "
                            "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, true, now(), now())",
                            (gid, *values),
                        )
            connection.commit()
            return time.perf_counter() - started
    finally:
        connection.close()


def materialize(url: str, data_dir: Path, path: Path, kind: str = "forecasts") -> dict:
    return run_child(
        "materialize", {"database_url": url, "data_dir": str(data_dir), "file": str(path), "kind": kind}
    )


def measure(sizes: Sizes, work: Path, sqlite: bool = True) -> list[Line]:
    grid = data.forecast_grid(sizes.grid)
    day1 = data.write_forecasts(work / "files" / "forecasts_day1.csv", grid)
    day2 = data.write_forecasts(work / "files" / "forecasts_day2.csv", data.with_new_values(grid, seed=7))
    sample_n = min(sizes.old_method_sample, grid.height)
    sample1 = data.write_forecasts(work / "files" / "old_sample_day1.csv", grid.head(sample_n))
    sample2 = data.write_forecasts(
        work / "files" / "old_sample_day2.csv", data.with_new_values(grid.head(sample_n), seed=7)
    )
    factor = grid.height / sample_n
    first, daily, floor = Sample(), Sample(), Sample()
    first_rss, daily_rss = Sample(), Sample()
    old_insert, old_update = Sample(), Sample()
    for rep in range(sizes.repeats):
        with pg.scratch_database() as url:
            data_dir = work / f"pg-{rep}"
            floor.add(copy_floor(url, day1))
            run = materialize(url, data_dir, day1)
            first.add(run["seconds"])
            first_rss.add(run["peak_rss_mb"])
            run = materialize(url, data_dir, day2)
            daily.add(run["seconds"])
            daily_rss.add(run["peak_rss_mb"])
            connection = pg.raw_connection(url)
            with connection, connection.cursor() as cursor:
                cursor.execute(OLD_TABLE)
            connection.close()
            old_insert.add(old_method(url, sample1, "old_method") * factor)
            old_update.add(old_method(url, sample2, "forecasts") * factor)
            shutil.rmtree(data_dir, ignore_errors=True)
    rows = f"{grid.height:,} rows"
    lines = [
        Line(
            "Forecasts file, first load: asset step (PostgreSQL)",
            rows,
            first,
            "s",
            "plain COPY into an empty table",
            floor,
            _ratio(first, floor),
            "≤ 2.5× COPY",
            first.median <= 2.5 * floor.median,
        ),
        Line(
            "Forecasts file, daily update of every gid: asset step (PostgreSQL)",
            rows,
            daily,
            "s",
            "plain COPY into an empty table",
            floor,
            _ratio(daily, floor),
            "≤ 2.5× COPY",
            daily.median <= 2.5 * floor.median,
        ),
        Line(
            "Forecasts file, first load: peak RSS of the run's process",
            rows,
            first_rss,
            "MB",
            target="< 600 MB",
            met=first_rss.high < 600,
        ),
        Line(
            "Forecasts file, daily update: peak RSS of the run's process",
            rows,
            daily_rss,
            "MB",
            target="< 600 MB",
            met=daily_rss.high < 600,
        ),
        Line(
            "Old method, first load: per-row SELECT then INSERT, one transaction (extrapolated)",
            f"{sample_n:,}-row sample ×{factor:,.0f}",
            old_insert,
            "s",
            "the asset step, first load",
            first,
            _ratio(old_insert, first, "asset is {:.1f}× faster"),
        ),
        Line(
            "Old method, daily update: per-row SELECT then UPDATE, one transaction (extrapolated)",
            f"{sample_n:,}-row sample ×{factor:,.0f}",
            old_update,
            "s",
            "the asset step, daily update",
            daily,
            _ratio(old_update, daily, "asset is {:.1f}× faster"),
        ),
    ]
    if sqlite:
        lines += _sqlite(sizes, work, day1, day2, rows)
    return lines


def _sqlite(sizes: Sizes, work: Path, day1: Path, day2: Path, rows: str) -> list[Line]:
    first, daily = Sample(), Sample()
    for rep in range(sizes.repeats):
        folder = work / f"sqlite-{rep}"
        url = f"sqlite:///{folder / 'iska.sqlite3'}"
        first.add(materialize(url, folder / "data", day1)["seconds"])
        daily.add(materialize(url, folder / "data", day2)["seconds"])
        shutil.rmtree(folder, ignore_errors=True)
    return [
        Line("Forecasts file, first load: asset step (SQLite)", rows, first, "s"),
        Line("Forecasts file, daily update: asset step (SQLite)", rows, daily, "s"),
    ]


def _ratio(result: Sample, reference: Sample, text: str = "{:.2f}×") -> str:
    return text.format(result.median / reference.median) if reference.median else ""
