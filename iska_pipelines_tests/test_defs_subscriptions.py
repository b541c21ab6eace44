"""Subscription files through the real sensor and asset (SPEC §2–5)."""

from __future__ import annotations

import csv
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pytest
import sqlalchemy as sa
import time_machine

from iska_pipelines.lib.billing.due import billing_day
from iska_pipelines.lib.billing.gateway import BillingClient
from iska_pipelines.lib.billing.run import BillingRules, bill_due
from iska_pipelines.lib.db.locks import SUBSCRIPTIONS_LOCK_ID
from iska_pipelines.lib.db.schema import subscriptions as subscriptions_table
from iska_pipelines.lib.db.timestamps import as_utc
from iska_pipelines.lib.forecasts.csv import read_forecasts
from iska_pipelines.lib.forecasts.grid import haversine_km
from iska_pipelines.lib.forecasts.ingest import apply_forecasts
from iska_pipelines.lib.inbox.folders import partition_key, sha256_of
from iska_pipelines.lib.inbox.ingest import (
    IngestRules,
    applied_before,
    archive_applied,
    record_applied,
    refusing_whole_file,
    take_file,
)
from iska_pipelines.lib.inbox.reading import enforce_reject_limit
from iska_pipelines.lib.subscriptions.csv import read_subscription_file
from iska_pipelines.lib.subscriptions.ingest import apply_subscriptions
from iska_pipelines.lib.vocabulary import FileKind
from iska_pipelines_tests.conftest import sample_path
from iska_pipelines_tests.driver import materialization_metadata
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN

DATE_ORDER = [
    "2021-02-05_additions.csv",
    "2021-02-06_additions.csv",
    "2021-02-06_deletions.csv",
    "2021-02-06_locupdates.csv",
]
FINAL_COLUMNS = (
    "msisdn, plan, status, cancel_reason, lat, lon, lid, sub_date, unsub_date, "
    "next_billing_date, last_event_at, failed_billing_count"
)


def read_fixture(name: str) -> list[dict]:
    with sample_path(name).open(newline="") as handle:
        return list(csv.DictReader(handle))


def ghana_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = read_fixture("forecasts_ghana.csv")
    return (
        np.array([int(r["gid"]) for r in rows]),
        np.array([float(r["lat"]) for r in rows]),
        np.array([float(r["lon"]) for r in rows]),
    )


def nearest_by_brute_force(lat: float, lon: float) -> int:
    gids, lats, lons = ghana_grid()
    distances = haversine_km(lat, lon, lats, lons)
    return int(gids[np.abs(distances - distances.min()) < 1e-6].min())


def apply_in_order(iska, names: list[str]) -> list:
    iska.ingest(sample_path("forecasts_ghana.csv"))
    return [iska.ingest(sample_path(name)) for name in names]


def refused(iska, name: str, kind: str) -> list[dict]:
    path = iska.folders.archive / kind / f"{name}.rejected.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def additions(rows: list[tuple], header: str = "msisdn,ts,service_id,lat,lon") -> str:
    return header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows)


def subscription(iska, msisdn: str) -> sa.Row:
    with iska.engine.connect() as connection:
        return connection.execute(
            sa.select(subscriptions_table).where(subscriptions_table.c.msisdn == msisdn)
        ).one()


def cancel_for_billing(engine: sa.Engine, simulator, msisdn: str, declines: int) -> None:
    """Decline every charge of `msisdn` until billing cancels it, the way billing_job does it."""
    simulator.configure(script={msisdn: ["failure"] * declines})
    client = BillingClient(simulator.billing_url, SIMULATOR_TOKEN, pool_size=2, timeout_seconds=5)
    for _ in range(declines):  # retry_minutes=0: the next try is due at once
        bill_due(engine, client, BillingRules(max_tries=declines, retry_minutes=0))


def every_table(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of every ISKA table, as stored (timestamps to the microsecond)."""
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        dump = {}
        for name in sorted(inspector.get_table_names()):
            order = ", ".join(str(i + 1) for i in range(len(inspector.get_columns(name))))
            dump[name] = [
                tuple(row) for row in connection.execute(sa.text(f"SELECT * FROM {name} ORDER BY {order}"))
            ]
        return dump


def partition_of(result: dg.ExecuteInProcessResult) -> str:
    return result.dagster_run.tags["dagster/partition"]


def test_the_four_sample_files_in_date_order_give_the_expected_subscribers(iska):
    results = apply_in_order(iska, DATE_ORDER)
    assert all(r.success for r in results)
    counts = dict(iska.rows("SELECT status, count(*) FROM subscriptions GROUP BY status"))
    assert counts == {"active": 125, "cancelled": 25}
    assert iska.scalar("SELECT count(*) FROM subscriptions WHERE cancel_reason = 'user'") == 25
    plans = dict(iska.rows("SELECT msisdn, plan FROM subscriptions"))
    for name in DATE_ORDER[:2]:
        for row in read_fixture(name):
            assert plans[row["msisdn"]] == {"11": "daily", "21": "weekly"}[row["service_id"]]
    stored = {
        m: (lat, lon, lid)
        for m, lat, lon, lid in iska.rows("SELECT msisdn, lat, lon, lid FROM subscriptions")
    }
    moved = read_fixture("2021-02-06_locupdates.csv")
    assert len(moved) == 25
    for row in moved:
        lat, lon, lid = stored[row["msisdn"]]
        assert (lat, lon) == (float(row["lat"]), float(row["lon"]))
        assert lid == nearest_by_brute_force(lat, lon)
    files = iska.rows(
        "SELECT name, rows_in, rows_applied, rows_refused FROM ingested_files WHERE kind <> 'forecasts'"
    )
    assert sorted((n, i) for n, i, _, _ in files) == sorted([(n, len(read_fixture(n))) for n in DATE_ORDER])
    assert all(rows_in == applied + refused_ for _, rows_in, applied, refused_ in files)
    metadata = materialization_metadata(results[2])
    assert (metadata["rows_in"], metadata["cancelled"], metadata["rows_refused"]) == (25, 25, 0)


def test_another_arrival_order_gives_the_same_subscription_table(iska, database_url, tmp_path):
    apply_in_order(iska, DATE_ORDER)
    expected = iska.rows(f"SELECT {FINAL_COLUMNS} FROM subscriptions ORDER BY msisdn")

    from iska_pipelines.lib.db.engine import engine_for
    from iska_pipelines_tests.driver import Iska

    with engine_for(database_url).begin() as connection:
        for table in ("subscriptions", "forecasts", "ingested_files"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
    other_order = [
        "2021-02-06_additions.csv",
        "2021-02-05_additions.csv",
        "2021-02-06_locupdates.csv",
        "2021-02-06_deletions.csv",
    ]
    (tmp_path / "other_dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "other_dagster")) as instance:
        other = Iska(database_url=database_url, data_dir=tmp_path / "other", instance=instance)
        apply_in_order(other, other_order)
    stale = {
        row["msisdn"]
        for name, kind in [
            ("2021-02-06_locupdates.csv", "updates"),
            ("2021-02-06_deletions.csv", "cancellations"),
        ]
        for row in refused(other, name, kind)
        if row["reason"] == "stale_event"
    }
    actual = other.rows(f"SELECT {FINAL_COLUMNS} FROM subscriptions ORDER BY msisdn")
    assert [r for r in actual if r[0] not in stale] == [r for r in expected if r[0] not in stale]
    assert len(actual) == 150


def test_a_subscriber_cancelled_for_billing_and_added_again_starts_a_new_period_with_the_counters_reset(
    iska, simulator
):
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a1_additions.csv")
    cancel_for_billing(iska.engine, simulator, "233240000001", declines=2)
    assert iska.rows("SELECT status, cancel_reason, failed_billing_count FROM subscriptions") == [
        ("cancelled", "billing", 2)
    ]
    again = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)  # after the cancellation
    result = iska.ingest(
        additions([("233240000001", again.strftime("%Y-%m-%dT%H:%M:%SZ"), 21, 6.0, -0.5)]),
        name="a2_additions.csv",
    )
    assert materialization_metadata(result)["reactivated"] == 1
    row = subscription(iska, "233240000001")
    assert (row.status, row.cancel_reason, row.plan, row.unsub_date) == ("active", None, "weekly", None)
    assert (row.failed_billing_count, as_utc(row.sub_date)) == (0, again)
    assert row.next_billing_date == billing_day(datetime.now(UTC), "Africa/Accra")  # due now


def a_history_of_every_kind(iska, simulator) -> dict[str, str]:
    """A grid; four subscribers added; one cancelled for billing, the others charged; one moved,
    one cancelled by file. Returns each kind's partition key."""
    keys = {
        "forecasts": partition_of(
            iska.ingest(
                "gid,lat,lon,fcat24,fcat48\n1,5.0,0.0,0.1,0.2\n2,6.0,0.0,0.1,0.2\n", name="grid_forecast.csv"
            )
        )
    }
    keys["additions"] = partition_of(
        iska.ingest(
            additions([(f"23324000000{i}", "2026-01-01 08:00:00", 11, 5.1, 0.0) for i in range(1, 5)]),
            name="a_additions.csv",
        )
    )
    cancel_for_billing(iska.engine, simulator, "233240000001", declines=2)
    keys["updates"] = partition_of(
        iska.ingest("msisdn,ts,lat,lon\n233240000002,2026-01-02 08:00:00,5.9,0.0\n", name="u_update.csv")
    )
    keys["cancellations"] = partition_of(
        iska.ingest("msisdn,ts\n233240000003,2026-01-03 08:00:00\n", name="c_cancel.csv")
    )
    assert iska.rows(
        "SELECT msisdn, status, cancel_reason, lid, last_billing_date IS NOT NULL "
        "FROM subscriptions ORDER BY msisdn"
    ) == [
        ("233240000001", "cancelled", "billing", 1, False),
        ("233240000002", "active", None, 2, True),
        ("233240000003", "cancelled", "user", 1, True),
        ("233240000004", "active", None, 1, True),
    ]
    return keys


def test_re_running_an_additions_file_does_not_reactivate_a_subscriber_cancelled_for_billing_since(
    iska, simulator
):
    keys = a_history_of_every_kind(iska, simulator)
    assert iska.run(keys["additions"]).success
    row = subscription(iska, "233240000001")
    assert (row.status, row.cancel_reason, row.failed_billing_count) == ("cancelled", "billing", 2)


def test_a_late_additions_file_older_than_a_billing_cancellation_is_a_stale_event(iska, simulator):
    """Needs billing to move last_event_at when it cancels (SPEC §5), as a file event would."""
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a1_additions.csv")
    before_the_cancellation = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    cancel_for_billing(iska.engine, simulator, "233240000001", declines=2)
    result = iska.ingest(
        additions([("233240000001", before_the_cancellation.strftime("%Y-%m-%dT%H:%M:%SZ"), 11, 5.6, -0.2)]),
        name="late_additions.csv",
    )
    assert [r["reason"] for r in refused(iska, "late_additions.csv", "additions")] == ["stale_event"]
    assert materialization_metadata(result)["reactivated"] == 0
    assert subscription(iska, "233240000001").status == "cancelled"


@pytest.mark.parametrize("kind", ["forecasts", "additions", "updates", "cancellations"])
def test_re_running_an_applied_partition_leaves_every_table_as_it_was(iska, simulator, kind):
    """ingested_files included: a re-run is recorded in its Dagster run; the file's row keeps
    the account of when it was applied."""
    keys = a_history_of_every_kind(iska, simulator)
    before = every_table(iska.engine)
    assert iska.run(keys[kind]).success
    assert every_table(iska.engine) == before


def test_an_addition_older_than_the_cancellation_is_a_stale_event(iska):
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a1_additions.csv")
    iska.ingest("msisdn,ts\n233240000001,2026-01-05 08:00:00\n", name="c_cancel.csv")
    result = iska.ingest(
        additions([("233240000001", "2026-01-03 08:00:00", 11, 5.6, -0.2)]), name="late_additions.csv"
    )
    assert result.success
    assert materialization_metadata(result)["refused_stale_event"] == 1
    assert [r["reason"] for r in refused(iska, "late_additions.csv", "additions")] == ["stale_event"]
    assert iska.rows("SELECT status FROM subscriptions") == [("cancelled",)]


def test_a_new_files_event_at_the_instant_of_the_last_one_applied_still_applies(iska):
    """Only older events are stale (SPEC §5); a same-second update from a new file counts."""
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a_additions.csv")
    result = iska.ingest(
        "msisdn,ts,lat,lon\n233240000001,2026-01-01 08:00:00,7.0,-1.0\n", name="same_update.csv"
    )
    assert materialization_metadata(result)["updated"] == 1
    assert iska.rows("SELECT lat, lon FROM subscriptions") == [(7.0, -1.0)]


def test_re_running_a_file_whose_instant_a_later_file_took_changes_nothing(iska):
    added = iska.ingest(
        additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a_additions.csv"
    )
    iska.ingest("msisdn,ts\n233240000001,2026-01-01 08:00:00\n", name="same_second_cancel.csv")
    assert iska.rows("SELECT status FROM subscriptions") == [("cancelled",)]
    assert iska.run(partition_of(added)).success
    assert iska.rows("SELECT status, lat FROM subscriptions") == [("cancelled", 5.6)]


@pytest.mark.parametrize(
    "early, name",
    [
        ("msisdn,ts\n233240000001,2026-01-02 08:00:00\n", "early_deletions.csv"),
        ("msisdn,ts,lat,lon\n233240000001,2026-01-02 08:00:00,7.0,-1.0\n", "early_updates.csv"),
    ],
    ids=["cancellation", "update"],
)
def test_re_running_a_file_refused_as_unknown_before_the_addition_arrived_changes_nothing(iska, early, name):
    """A cancellation or update that came before its subscriber's addition is `unknown_msisdn`;
    running its partition again after the addition gives the same result, not a late apply."""
    first = iska.ingest(early, name=name)
    assert materialization_metadata(first)["refused_unknown_msisdn"] == 1
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a_additions.csv")
    before = iska.rows("SELECT status, lat, lon, last_event_at, updated_at FROM subscriptions")
    again = iska.run(partition_of(first))
    assert again.success
    assert materialization_metadata(again)["refused_unknown_msisdn"] == 1
    assert iska.rows("SELECT status, lat, lon, last_event_at, updated_at FROM subscriptions") == before
    assert before[0][:3] == ("active", 5.6, -0.2)


def test_bad_subscription_rows_are_refused_with_their_reasons(iska):
    good = [(f"2332400{i:05d}", "2026-01-01 08:00:00", 11, 5.6, -0.2) for i in range(40)]
    bad = [
        ("23324ABC0001", "2026-01-01 08:00:00", 11, 5.6, -0.2),
        ("2332401", "2026-01-01 08:00:00", 11, 5.6, -0.2),
        ("2332400000000001", "2026-01-01 08:00:00", 11, 5.6, -0.2),
        ("233240099001", "2021-13-01 00:00:00", 11, 5.6, -0.2),
        ("233240099002", "2026-01-01 08:00:00", 11, "north", -0.2),
        ("233240099003", "2026-01-01 08:00:00", 31, 5.6, -0.2),
        good[0],
    ]
    result = iska.ingest(additions(good + bad), name="mixed_additions.csv")
    assert result.success
    reasons = [r["reason"] for r in refused(iska, "mixed_additions.csv", "additions")]
    assert reasons == [
        "invalid_msisdn",
        "invalid_msisdn",
        "invalid_msisdn",
        "invalid_ts",
        "invalid_lat",
        "invalid_plan",
        "duplicate_in_file",
    ]
    metadata = materialization_metadata(result)
    assert (metadata["rows_in"], metadata["rows_applied"], metadata["rows_refused"]) == (47, 40, 7)
    assert iska.scalar("SELECT count(*) FROM subscriptions") == 40


def test_unknown_msisdns_in_cancellations_and_updates_are_refused(iska):
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a_additions.csv")
    cancel = iska.ingest(
        "msisdn,ts\n233240000001,2026-01-02 08:00:00\n233249999999,2026-01-02 08:00:00\n", name="x_cancel.csv"
    )
    update = iska.ingest(
        "msisdn,ts,lat,lon\n233249999998,2026-01-02 08:00:00,5.0,-1.0\n", name="x_update.csv"
    )
    assert materialization_metadata(cancel)["refused_unknown_msisdn"] == 1
    assert materialization_metadata(update)["refused_unknown_msisdn"] == 1
    assert [r["msisdn"] for r in refused(iska, "x_cancel.csv", "cancellations")] == ["233249999999"]


def test_several_events_for_one_msisdn_in_a_file_apply_in_ts_order(iska):
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a_additions.csv")
    result = iska.ingest(
        "msisdn,ts,lat,lon\n233240000001,2026-01-03 08:00:00,7.0,-1.0\n"
        "233240000001,2026-01-02 08:00:00,6.0,-1.0\n",
        name="two_updates.csv",
    )
    assert materialization_metadata(result)["updated"] == 2
    assert iska.rows("SELECT lat, lon FROM subscriptions") == [(7.0, -1.0)]


def test_msisdns_keep_their_digits_and_lose_plus_00_and_spaces(iska):
    rows = [
        ("+233 24 000 0001", "2026-01-01 08:00:00", 11, 5.6, -0.2),
        ("00233240000002", "2026-01-01 08:00:00", "weekly", 5.6, -0.2),
        ("233010000055", "2026-01-01T08:00:00+00:00", "daily", 5.6, -0.2),
    ]
    iska.ingest(additions(rows), name="formats_additions.csv")
    assert iska.rows("SELECT msisdn FROM subscriptions ORDER BY msisdn") == [
        ("233010000055",),
        ("233240000001",),
        ("233240000002",),
    ]


def test_a_subscriber_far_from_every_grid_point_is_refused_when_a_grid_exists(iska):
    iska.ingest(sample_path("forecasts_ghana.csv"))
    result = iska.ingest(
        additions(
            [
                ("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2),
                ("233240000002", "2026-01-01 08:00:00", 11, 0.0, 30.0),
            ]
        ),
        name="far_additions.csv",
    )
    assert materialization_metadata(result)["refused_no_grid_point_nearby"] == 1
    assert iska.rows("SELECT msisdn FROM subscriptions") == [("233240000001",)]


def test_additions_before_any_forecast_get_a_lid_when_the_grid_arrives(iska):
    iska.ingest(sample_path("2021-02-05_additions.csv"))
    assert iska.scalar("SELECT count(lid) FROM subscriptions") == 0
    result = iska.ingest(sample_path("forecasts_ghana.csv"))
    assert materialization_metadata(result)["subscriptions_reassigned"] == 100
    for _msisdn, lat, lon, lid in iska.rows("SELECT msisdn, lat, lon, lid FROM subscriptions"):
        assert lid == nearest_by_brute_force(lat, lon)


def test_a_forecasts_file_that_shifts_the_grid_reassigns_subscribers_in_the_same_run(iska):
    iska.ingest("gid,lat,lon,fcat24,fcat48\n1,5.0,0.0,0.1,0.2\n2,6.0,0.0,0.1,0.2\n", name="grid_forecast.csv")
    iska.ingest(
        additions(
            [
                ("233240000001", "2026-01-01 08:00:00", 11, 5.25, 0.0),
                ("233240000002", "2026-01-01 08:00:00", 11, 5.8, 0.0),
            ]
        ),
        name="a_additions.csv",
    )
    assert iska.rows("SELECT msisdn, lid FROM subscriptions ORDER BY msisdn") == [
        ("233240000001", 1),
        ("233240000002", 2),
    ]
    # point 3 appears next to the first subscriber, point 2 is switched off
    result = iska.ingest(
        "gid,lat,lon,fcat24,fcat48,is_active\n3,5.4,0.0,0.1,0.2,true\n2,6.0,0.0,0.1,0.2,false\n",
        name="grid2_forecast.csv",
    )
    assert materialization_metadata(result)["subscriptions_reassigned"] == 2
    assert iska.rows("SELECT msisdn, lid FROM subscriptions ORDER BY msisdn") == [
        ("233240000001", 3),
        ("233240000002", 3),
    ]


def test_a_second_subscription_writer_waits_for_the_first_to_commit(iska, database_url):
    """Files never interleave, even if two runs start at once: the database lock holds them."""
    engine = iska.engine
    if engine.dialect.name == "sqlite":
        # ISKA's SQLite transactions take the write lock when they begin
        with engine.begin():
            other = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            other.close()
        return
    path = iska.drop(sample_path("2021-02-05_additions.csv"), folder="additions")
    key = partition_key(FileKind.ADDITIONS, path.name, sha256_of(path))
    holder = engine.connect()
    transaction = holder.begin()
    holder.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": SUBSCRIPTIONS_LOCK_ID})
    rules = IngestRules()
    outcome = []
    worker = threading.Thread(
        target=lambda: outcome.append(
            ingest_with(
                engine,
                iska.folders,
                key,
                lambda p, _t: read_subscription_file(p, FileKind.ADDITIONS, rules.timezone),
                lambda c, parsed, _rerun: apply_subscriptions(c, parsed, FileKind.ADDITIONS, rules),
            )
        )
    )
    worker.start()
    deadline = time.monotonic() + 30
    waiting = 0
    while time.monotonic() < deadline and not waiting:
        waiting = holder.execute(
            sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).scalar()
    assert waiting == 1, "the second writer should be queued behind the lock"
    assert holder.execute(sa.text("SELECT count(*) FROM subscriptions")).scalar() == 0
    transaction.commit()
    holder.close()
    worker.join(timeout=60)
    assert outcome and outcome[0].rows_applied == 100


def test_a_typo_year_in_ts_is_refused_and_never_locks_the_subscriber_out(iska):
    msisdns = [f"23324000000{i}" for i in range(1, 6)]
    iska.ingest(
        additions([(m, "2026-01-01 08:00:00", 11, 5.6, -0.2) for m in msisdns]), name="a_additions.csv"
    )
    years = ["2062"] + ["2026"] * 4  # the first row's year is a typo
    typo = iska.ingest(
        "msisdn,ts,lat,lon\n"
        + "".join(f"{m},{y}-01-02 08:00:00,7.0,-1.0\n" for m, y in zip(msisdns, years, strict=True)),
        name="typo_update.csv",
    )
    assert typo.success and materialization_metadata(typo)["refused_future_ts"] == 1
    assert [r["reason"] for r in refused(iska, "typo_update.csv", "updates")] == ["future_ts"]
    cancel = iska.ingest(f"msisdn,ts\n{msisdns[0]},2026-01-03 08:00:00\n", name="c_cancel.csv")
    assert materialization_metadata(cancel)["cancelled"] == 1
    assert iska.rows("SELECT status, lat FROM subscriptions WHERE msisdn = :m", m=msisdns[0]) == [
        ("cancelled", 5.6)
    ]


def test_a_small_file_ending_in_blank_lines_is_applied_not_refused(iska):
    content = (
        additions(
            [
                ("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2),
                ("233240000002", "2026-01-01 08:00:00", 21, 5.7, -0.3),
            ]
        )
        + "\n ,,,,\n,,,,\n\n"
    )
    result = iska.ingest(content, name="blank_tail_additions.csv")
    assert result.success
    metadata = materialization_metadata(result)
    assert (metadata["rows_in"], metadata["rows_applied"], metadata["rows_refused"]) == (2, 2, 0)
    assert iska.scalar("SELECT count(*) FROM subscriptions") == 2


def ingest_with(engine: sa.Engine, folders, key: str, parse, apply):
    """An ingest asset's steps, with the reading and the applying handed in so a test can pause
    them inside the file's transaction."""
    taken = take_file(engine, folders, key)
    with refusing_whole_file(engine, folders, taken):
        parsed = parse(taken.path, taken.taken_at)
        enforce_reject_limit(parsed, IngestRules().max_reject_fraction, taken.name)
    with engine.begin() as connection:
        rerun_of = applied_before(connection, taken)
        applied = record_applied(connection, taken, parsed, apply(connection, parsed, rerun_of), rerun_of)
    return archive_applied(folders, taken, applied)


def pause_after(apply, reached: threading.Event, release: threading.Event):
    """`apply` inside the file's transaction, then wait there (before the commit) until released."""

    def paused(connection, parsed, rerun):
        applied = apply(connection, parsed, rerun)
        reached.set()
        assert release.wait(60), "never released"
        return applied

    return paused


def ingest_in_thread(iska, name: str, content: str, folder: str, apply) -> threading.Thread:
    path = iska.drop(content, name=name, folder=folder)
    kind = FileKind(folder)
    key = partition_key(kind, path.name, sha256_of(path))
    rules = IngestRules()
    parse = (
        (lambda p, _t: read_forecasts(p))
        if kind is FileKind.FORECASTS
        else (lambda p, t: read_subscription_file(p, kind, rules.timezone, rules.max_future_minutes, t))
    )
    worker = threading.Thread(target=ingest_with, args=(iska.engine, iska.folders, key, parse, apply))
    worker.start()
    return worker


def blocked_or_done(engine: sa.Engine, worker: threading.Thread) -> str:
    """Watch the second writer until it finishes or queues behind an advisory lock."""
    deadline = time.monotonic() + 60
    with engine.connect() as observer:
        while time.monotonic() < deadline:
            if observer.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar():
                return "blocked"
            worker.join(timeout=0.01)
            if not worker.is_alive():
                return "done"
    raise AssertionError("the second writer neither finished nor queued")


ONE_POINT = "gid,lat,lon,fcat24,fcat48\n1,5.0,0.0,0.1,0.2\n"
# point 2 appears beside the subscriber and point 1 is switched off
MOVED = "gid,lat,lon,fcat24,fcat48,is_active\n2,5.3,0.0,0.1,0.2,true\n1,5.0,0.0,0.1,0.2,false\n"
NEAR_POINT_2 = additions([("233240000001", "2026-01-01 08:00:00", 11, 5.3, 0.0)])
INTERLEAVING = "SQLite's BEGIN IMMEDIATE serialises whole transactions; PostgreSQL needs the lock"


def test_additions_that_read_the_grid_before_a_grid_change_commits_end_on_the_new_grid(iska):
    if iska.engine.dialect.name == "sqlite":
        pytest.skip(INTERLEAVING)
    iska.ingest(ONE_POINT, name="grid_forecast.csv")
    rules = IngestRules()
    grid_read, release = threading.Event(), threading.Event()
    adding = ingest_in_thread(
        iska,
        "a_additions.csv",
        NEAR_POINT_2,
        "additions",
        pause_after(
            lambda c, parsed, _rerun: apply_subscriptions(c, parsed, FileKind.ADDITIONS, rules),
            grid_read,
            release,
        ),
    )
    assert grid_read.wait(60)
    moving = ingest_in_thread(
        iska,
        "grid2_forecast.csv",
        MOVED,
        "forecasts",
        lambda c, parsed, _rerun: apply_forecasts(c, parsed, rules),
    )
    try:
        assert blocked_or_done(iska.engine, moving) == "blocked", "the grid change must wait"
    finally:
        release.set()
        adding.join(60)
        moving.join(60)
    assert iska.rows("SELECT msisdn, lid FROM subscriptions") == [("233240000001", 2)]


def test_additions_arriving_while_a_grid_change_is_uncommitted_end_on_the_new_grid(iska):
    if iska.engine.dialect.name == "sqlite":
        pytest.skip(INTERLEAVING)
    iska.ingest(ONE_POINT, name="grid_forecast.csv")
    rules = IngestRules()
    grid_written, release = threading.Event(), threading.Event()
    moving = ingest_in_thread(
        iska,
        "grid2_forecast.csv",
        MOVED,
        "forecasts",
        pause_after(lambda c, parsed, _rerun: apply_forecasts(c, parsed, rules), grid_written, release),
    )
    assert grid_written.wait(60)
    adding = ingest_in_thread(
        iska,
        "a_additions.csv",
        NEAR_POINT_2,
        "additions",
        lambda c, parsed, _rerun: apply_subscriptions(c, parsed, FileKind.ADDITIONS, rules),
    )
    try:
        assert blocked_or_done(iska.engine, adding) == "blocked", "the additions must wait for the grid"
    finally:
        release.set()
        moving.join(60)
        adding.join(60)
    assert iska.rows("SELECT msisdn, lid FROM subscriptions") == [("233240000001", 2)]


def test_re_running_a_file_later_judges_its_rows_as_the_first_run_did(iska):
    """A row refused as future_ts stays refused when its partition is run again hours later,
    once that ts is in the past: a re-run gives the same result (SPEC §2)."""
    start = datetime.now(UTC).replace(microsecond=0)
    ahead = (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with time_machine.travel(start, tick=False):
        first = iska.ingest(
            additions(
                [
                    ("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2),
                    ("233240000002", "2026-01-01 08:00:00", 11, 5.6, -0.2),
                    ("233240000003", "2026-01-01 08:00:00", 11, 5.6, -0.2),
                    ("233240000004", "2026-01-01 08:00:00", 11, 5.6, -0.2),
                    ("233240000009", ahead, 11, 5.6, -0.2),
                ]
            ),
            name="ahead_additions.csv",
        )
        assert materialization_metadata(first)["refused_future_ts"] == 1
        before = every_table(iska.engine)
    with time_machine.travel(start + timedelta(hours=3), tick=False):
        again = iska.run(partition_of(first))
    assert again.success
    assert materialization_metadata(again)["refused_future_ts"] == 1
    assert every_table(iska.engine) == before
