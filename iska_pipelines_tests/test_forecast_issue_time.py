"""Forecast freshness is the issue time (SPEC §4): the file's `issued_at` column, else the time the
file was dropped; never the time a row was last written, so re-running an old file cannot make
its forecasts fresh, and a re-run that changes no value changes no row."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import polars as pl
import pytest
import sqlalchemy as sa

from iska_pipelines.lib.db.schema import FCAT_TYPE, forecasts
from iska_pipelines.lib.db.timestamps import as_utc, utcnow
from iska_pipelines.lib.forecasts.storage import upsert_forecasts
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.outbox import plan_outbox
from iska_pipelines.lib.vocabulary import SkipReason
from iska_pipelines_tests.sms_world import add_subscriber, today

TEMPLATE = "Iska {date}: next 24h {fcat24}, next 48h {fcat48}"
GRID = "gid,lat,lon,fcat24,fcat48\n1,5.6,-0.2,0.2207,0.4554\n"
HOUR = 3600.0


def issued_at(iska) -> datetime:
    with iska.engine.connect() as connection:
        return as_utc(
            connection.execute(sa.select(forecasts.c.issued_at).where(forecasts.c.gid == 1)).scalar_one()
        )


def plan_today(iska):
    day = today()
    with iska.engine.begin() as connection:
        return plan_outbox(
            connection, day, Settings.from_env({"ISKA_SMS_TEMPLATE": TEMPLATE}).catalog(), 30.0
        )


def subscriber_on_the_grid(iska) -> None:
    add_subscriber(iska.engine, "233040000001", 1, day=today())


def test_an_issued_at_column_is_the_forecasts_issue_time(iska):
    issued = "2026-01-05T06:00:00+01:00"
    iska.ingest(
        GRID.replace("fcat48\n", "fcat48,issued_at\n").replace("0.4554\n", f"0.4554,{issued}\n"),
        name="grid.csv",
        folder="forecasts",
    )
    assert issued_at(iska) == datetime.fromisoformat(issued)


def test_without_issued_at_the_time_the_file_was_dropped_is_the_issue_time(iska):
    dropped = time.time() - 40 * HOUR
    iska.ingest(GRID, name="grid.csv", folder="forecasts", mtime=dropped)
    assert abs(issued_at(iska).timestamp() - dropped) < 1


def test_re_running_an_old_forecasts_file_leaves_its_rows_untouched_and_its_forecasts_stale(iska):
    applied = iska.ingest(GRID, name="grid.csv", folder="forecasts", mtime=time.time() - 40 * HOUR)
    subscriber_on_the_grid(iska)
    written = iska.scalar("SELECT updated_at FROM forecasts WHERE gid = 1")

    again = iska.run(applied.dagster_run.tags["dagster/partition"])

    assert again.success
    assert iska.scalar("SELECT updated_at FROM forecasts WHERE gid = 1") == written
    plan = plan_today(iska)
    assert (plan.planned, plan.skipped[SkipReason.STALE_FORECAST]) == (0, 1)


def test_a_forecast_issued_long_ago_but_written_just_now_is_stale(iska):
    issued = (utcnow() - timedelta(hours=31)).isoformat()
    iska.ingest(
        GRID.replace("fcat48\n", "fcat48,issued_at\n").replace("0.4554\n", f"0.4554,{issued}\n"),
        name="grid.csv",
        folder="forecasts",
    )
    subscriber_on_the_grid(iska)
    plan = plan_today(iska)
    assert (plan.planned, plan.skipped[SkipReason.STALE_FORECAST]) == (0, 1)


def test_re_applying_a_whole_grid_rewrites_only_the_rows_that_changed(engine):
    """12,000 rows: on PostgreSQL the daily whole-grid path (truncate and refill) is taken."""
    issued = utcnow() - timedelta(hours=2)
    grid = pl.DataFrame(
        {
            "gid": range(1, 12_001),
            "lat": [5.0] * 12_000,
            "lon": [-1.0] * 12_000,
            "fcat24": ["0.5000"] * 12_000,
            "fcat48": ["0.2500"] * 12_000,
            "is_active": [True] * 12_000,
            "issued_at": [issued] * 12_000,
        }
    ).with_columns(
        pl.col("fcat24", "fcat48").cast(FCAT_TYPE), pl.col("issued_at").cast(pl.Datetime("us", "UTC"))
    )
    with engine.begin() as connection:
        upsert_forecasts(connection, grid)
    with engine.connect() as connection:
        before = dict(connection.execute(sa.select(forecasts.c.gid, forecasts.c.updated_at)).all())

    with engine.begin() as connection:
        again = upsert_forecasts(
            connection,
            grid.with_columns(
                pl.when(pl.col("gid") == 7)
                .then(pl.lit("0.9000").cast(FCAT_TYPE))
                .otherwise(pl.col("fcat24"))
                .alias("fcat24")
            ),
        )

    with engine.connect() as connection:
        after = dict(connection.execute(sa.select(forecasts.c.gid, forecasts.c.updated_at)).all())
    assert again.rows_updated == 1
    assert [gid for gid in before if after[gid] != before[gid]] == [7]


@pytest.mark.parametrize("rows", [3, 12_000], ids=["small-file", "whole-grid"])
def test_a_forecast_issued_before_the_stored_one_never_replaces_it(engine, rows):
    """Re-running yesterday's grid after today's must not put yesterday's values back: every
    table stays as it was, and today's forecasts stay fresh."""

    def grid(issued, fcat):
        return pl.DataFrame(
            {
                "gid": range(1, rows + 1),
                "lat": [5.0] * rows,
                "lon": [-1.0] * rows,
                "fcat24": [fcat] * rows,
                "fcat48": [fcat] * rows,
                "is_active": [True] * rows,
                "issued_at": [issued] * rows,
            }
        ).with_columns(
            pl.col("fcat24", "fcat48").cast(FCAT_TYPE), pl.col("issued_at").cast(pl.Datetime("us", "UTC"))
        )

    today, yesterday = utcnow() - timedelta(hours=1), utcnow() - timedelta(hours=25)
    with engine.begin() as connection:
        upsert_forecasts(connection, grid(yesterday, "0.1000"))
        upsert_forecasts(connection, grid(today, "0.9000"))
    with engine.connect() as connection:
        before = connection.execute(sa.select(forecasts).order_by(forecasts.c.gid)).all()
    with engine.begin() as connection:
        again = upsert_forecasts(connection, grid(yesterday, "0.1000"))
    with engine.connect() as connection:
        after = connection.execute(sa.select(forecasts).order_by(forecasts.c.gid)).all()
    assert (again.rows_inserted, again.rows_updated) == (0, 0)
    assert after == before
    assert {str(row.fcat24) for row in after} == {"0.9000"}
