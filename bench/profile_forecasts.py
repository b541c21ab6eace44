"""Where a forecasts file's time goes, phase by phase, in this process (no Dagster around it).

`python -m bench.profile_forecasts [rows]`: a first load and a daily update of a generated grid
on a throwaway PostgreSQL database, with the time of each phase of the asset's work.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from bench import data, pg
from iska_pipelines.lib.db import bulk
from iska_pipelines.lib.db.engine import engine_for
from iska_pipelines.lib.forecasts import storage as forecasts
from iska_pipelines.lib.forecasts.csv import read_forecasts
from iska_pipelines.lib.inbox.folders import sha256_of


class Phases:
    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def wrap(self, module, name: str, label: str):
        original = getattr(module, name)

        def timed(*args, **kwargs):
            with self.phase(label):
                return original(*args, **kwargs)

        setattr(module, name, timed)


def profile(url: str, path: Path) -> dict[str, float]:
    phases = Phases()
    engine = engine_for(url)
    phases.wrap(forecasts, "copy_binary", "COPY (binary) into forecasts")
    phases.wrap(forecasts, "read_binary", "read stored grid (binary COPY out)")
    try:
        with phases.phase("sha256 of the file"):
            sha256_of(path)
        with phases.phase("read + validate CSV (Polars)"):
            parsed = read_forecasts(path)
        with phases.phase("upsert, total"), engine.begin() as connection:
            forecasts.upsert_forecasts(connection, parsed.good)
        with phases.phase("asset checks (table_health)"), engine.connect() as connection:
            forecasts.table_health(connection)
    finally:
        forecasts.copy_binary, forecasts.read_binary = bulk.copy_binary, bulk.read_binary
    return dict(phases.seconds)


def main() -> int:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as folder:
        grid = data.forecast_grid(rows)
        day1 = data.write_forecasts(Path(folder) / "day1.csv", grid)
        day2 = data.write_forecasts(Path(folder) / "day2.csv", data.with_new_values(grid, 7))
        with pg.scratch_database() as url:
            for label, path in (("first load", day1), ("daily update", day2)):
                print(f"{label}:")
                for phase, seconds in profile(url, path).items():
                    print(f"  {phase:40s} {seconds:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
