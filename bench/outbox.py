"""Planning one day's outbox for 1,000,000 paid subscribers on PostgreSQL (SPEC §12: under 30 s)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from bench import pg
from bench.gateways import _subscribers, today
from bench.measure import Sample
from bench.result import Line
from bench.sizes import Sizes
from iska_pipelines.lib.db.engine import engine_for
from iska_pipelines.lib.settings import DEFAULTS
from iska_pipelines.lib.sms.outbox import plan_outbox

TARGET_SECONDS = 30.0
GRID_POINTS = 10_000  # distinct texts to render


def measure(sizes: Sizes, _work: Path) -> list[Line]:
    seconds = Sample()
    with pg.scratch_database() as url:
        _subscribers(url, sizes.outbox, GRID_POINTS)
        engine = engine_for(url)
        with engine.begin() as connection:
            connection.execute(sa.text("ANALYZE subscriptions"))
            connection.execute(sa.text("ANALYZE forecasts"))
        for rep in range(sizes.repeats):
            day = today() - timedelta(days=rep)  # a fresh day each time (paid through tomorrow)
            started = time.perf_counter()
            with engine.begin() as connection:
                plan = plan_outbox(connection, day, DEFAULTS.catalog(), 30.0)
            seconds.add(time.perf_counter() - started)
            assert plan.planned == sizes.outbox, plan.summary()
    target = min(TARGET_SECONDS, TARGET_SECONDS * sizes.outbox / 1_000_000)
    return [
        Line(
            "SMS outbox: planning a day (classify, render, insert with fresh msgids), PostgreSQL",
            f"{sizes.outbox:,} paid subscribers",
            seconds,
            "s",
            "",
            None,
            "",
            f"< {target:g} s" + (" (scaled)" if sizes.outbox < 1_000_000 else ""),
            seconds.median < target,
        )
    ]
