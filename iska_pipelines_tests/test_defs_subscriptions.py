"""Subscription files through the real sensor and asset (SPEC §2–5)."""

from __future__ import annotations

import csv
import sqlite3
import threading
import time

import dagster as dg
import numpy as np
import pytest
import sqlalchemy as sa

from iska_pipelines.lib.grid import haversine_km
from iska_pipelines.lib.inbox import partition_key, sha256_of
from iska_pipelines.lib.ingest import IngestRules, ingest_file
from iska_pipelines.lib.csv.subscriptions import read_subscription_file
from iska_pipelines.lib.subscription_ingest import apply_subscriptions
from iska_pipelines.lib.storage.subscriptions import SUBSCRIPTIONS_LOCK_ID
from iska_pipelines.lib.vocabulary import FileKind
from iska_pipelines_tests.conftest import sample_path
from iska_pipelines_tests.driver import materialization_metadata

DATE_ORDER = ["2021-02-05_additions.csv", "2021-02-06_additions.csv",
              "2021-02-06_deletions.csv", "2021-02-06_locupdates.csv"]
FINAL_COLUMNS = ("msisdn, plan, status, cancel_reason, lat, lon, lid, sub_date, unsub_date, "
                 "next_billing_date, last_event_at, failed_billing_count")


def read_fixture(name: str) -> list[dict]:
    with sample_path(name).open(newline="") as handle:
        return list(csv.DictReader(handle))


def ghana_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = read_fixture("forecasts_ghana.csv")
    return (np.array([int(r["gid"]) for r in rows]), np.array([float(r["lat"]) for r in rows]),
            np.array([float(r["lon"]) for r in rows]))


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
    stored = {m: (lat, lon, lid) for m, lat, lon, lid in
              iska.rows("SELECT msisdn, lat, lon, lid FROM subscriptions")}
    moved = read_fixture("2021-02-06_locupdates.csv")
    assert len(moved) == 25
    for row in moved:
        lat, lon, lid = stored[row["msisdn"]]
        assert (lat, lon) == (float(row["lat"]), float(row["lon"]))
        assert lid == nearest_by_brute_force(lat, lon)
    files = iska.rows("SELECT name, rows_in, rows_applied, rows_refused FROM ingested_files "
                      "WHERE kind <> 'forecasts'")
    assert sorted((n, i) for n, i, _, _ in files) == sorted(
        [(n, len(read_fixture(n))) for n in DATE_ORDER])
    assert all(rows_in == applied + refused_ for _, rows_in, applied, refused_ in files)
    metadata = materialization_metadata(results[2])
    assert (metadata["rows_in"], metadata["cancelled"], metadata["rows_refused"]) == (25, 25, 0)


def test_another_arrival_order_gives_the_same_subscription_table(iska, database_url, tmp_path):
    apply_in_order(iska, DATE_ORDER)
    expected = iska.rows(f"SELECT {FINAL_COLUMNS} FROM subscriptions ORDER BY msisdn")

    from iska_pipelines_tests.driver import Iska
    from iska_pipelines.lib.storage.database import engine_for

    with engine_for(database_url).begin() as connection:
        for table in ("subscriptions", "forecasts", "ingested_files"):
            connection.execute(sa.text(f"DELETE FROM {table}"))
    other_order = ["2021-02-06_additions.csv", "2021-02-05_additions.csv",
                   "2021-02-06_locupdates.csv", "2021-02-06_deletions.csv"]
    (tmp_path / "other_dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "other_dagster")) as instance:
        other = Iska(database_url=database_url, data_dir=tmp_path / "other", instance=instance)
        apply_in_order(other, other_order)
    stale = {row["msisdn"] for name, kind in [("2021-02-06_locupdates.csv", "updates"),
                                             ("2021-02-06_deletions.csv", "cancellations")]
             for row in refused(other, name, kind) if row["reason"] == "stale_event"}
    actual = other.rows(f"SELECT {FINAL_COLUMNS} FROM subscriptions ORDER BY msisdn")
    assert [r for r in actual if r[0] not in stale] == [r for r in expected if r[0] not in stale]
    assert len(actual) == 150


def test_cancellation_then_re_addition_reactivates_with_the_declines_behind_it_forgotten(iska):
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a1_additions.csv")
    with iska.engine.begin() as connection:  # declined three times before cancelling
        connection.execute(sa.text("UPDATE subscriptions SET failed_billing_count = 3"))
    iska.ingest("msisdn,ts\n233240000001,2026-01-02 08:00:00\n", name="c_cancel.csv")
    assert iska.rows("SELECT status, cancel_reason FROM subscriptions") == [("cancelled", "user")]
    result = iska.ingest(additions([("233240000001", "2026-01-03 08:00:00", 21, 6.0, -0.5)]),
                         name="a2_additions.csv")
    assert materialization_metadata(result)["reactivated"] == 1
    status, reason, plan, unsub, failed = iska.rows(
        "SELECT status, cancel_reason, plan, unsub_date, failed_billing_count FROM subscriptions")[0]
    assert (status, reason, plan, unsub, failed) == ("active", None, "weekly", None, 0)


def test_an_addition_older_than_the_cancellation_is_a_stale_event(iska):
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a1_additions.csv")
    iska.ingest("msisdn,ts\n233240000001,2026-01-05 08:00:00\n", name="c_cancel.csv")
    result = iska.ingest(additions([("233240000001", "2026-01-03 08:00:00", 11, 5.6, -0.2)]),
                         name="late_additions.csv")
    assert result.success
    assert materialization_metadata(result)["refused_stale_event"] == 1
    assert [r["reason"] for r in refused(iska, "late_additions.csv", "additions")] == ["stale_event"]
    assert iska.rows("SELECT status FROM subscriptions") == [("cancelled",)]


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
    assert reasons == ["invalid_msisdn", "invalid_msisdn", "invalid_msisdn", "invalid_ts",
                       "invalid_lat", "invalid_plan", "duplicate_in_file"]
    metadata = materialization_metadata(result)
    assert (metadata["rows_in"], metadata["rows_applied"], metadata["rows_refused"]) == (47, 40, 7)
    assert iska.scalar("SELECT count(*) FROM subscriptions") == 40


def test_unknown_msisdns_in_cancellations_and_updates_are_refused(iska):
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a_additions.csv")
    cancel = iska.ingest("msisdn,ts\n233240000001,2026-01-02 08:00:00\n233249999999,2026-01-02 08:00:00\n",
                         name="x_cancel.csv")
    update = iska.ingest("msisdn,ts,lat,lon\n233249999998,2026-01-02 08:00:00,5.0,-1.0\n",
                         name="x_update.csv")
    assert materialization_metadata(cancel)["refused_unknown_msisdn"] == 1
    assert materialization_metadata(update)["refused_unknown_msisdn"] == 1
    assert [r["msisdn"] for r in refused(iska, "x_cancel.csv", "cancellations")] == ["233249999999"]


def test_several_events_for_one_msisdn_in_a_file_apply_in_ts_order(iska):
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2)]), name="a_additions.csv")
    result = iska.ingest("msisdn,ts,lat,lon\n233240000001,2026-01-03 08:00:00,7.0,-1.0\n"
                         "233240000001,2026-01-02 08:00:00,6.0,-1.0\n", name="two_updates.csv")
    assert materialization_metadata(result)["updated"] == 2
    assert iska.rows("SELECT lat, lon FROM subscriptions") == [(7.0, -1.0)]


def test_msisdns_keep_their_digits_and_lose_plus_00_and_spaces(iska):
    rows = [("+233 24 000 0001", "2026-01-01 08:00:00", 11, 5.6, -0.2),
            ("00233240000002", "2026-01-01 08:00:00", "weekly", 5.6, -0.2),
            ("233010000055", "2026-01-01T08:00:00+00:00", "daily", 5.6, -0.2)]
    iska.ingest(additions(rows), name="formats_additions.csv")
    assert iska.rows("SELECT msisdn FROM subscriptions ORDER BY msisdn") == [
        ("233010000055",), ("233240000001",), ("233240000002",)]


def test_a_subscriber_far_from_every_grid_point_is_refused_when_a_grid_exists(iska):
    iska.ingest(sample_path("forecasts_ghana.csv"))
    result = iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2),
                                    ("233240000002", "2026-01-01 08:00:00", 11, 0.0, 30.0)]),
                         name="far_additions.csv")
    assert materialization_metadata(result)["refused_no_grid_point_nearby"] == 1
    assert iska.rows("SELECT msisdn FROM subscriptions") == [("233240000001",)]


def test_additions_before_any_forecast_get_a_lid_when_the_grid_arrives(iska):
    iska.ingest(sample_path("2021-02-05_additions.csv"))
    assert iska.scalar("SELECT count(lid) FROM subscriptions") == 0
    result = iska.ingest(sample_path("forecasts_ghana.csv"))
    assert materialization_metadata(result)["subscriptions_reassigned"] == 100
    for msisdn, lat, lon, lid in iska.rows("SELECT msisdn, lat, lon, lid FROM subscriptions"):
        assert lid == nearest_by_brute_force(lat, lon)


def test_a_forecasts_file_that_shifts_the_grid_reassigns_subscribers_in_the_same_run(iska):
    iska.ingest("gid,lat,lon,fcat24,fcat48\n1,5.0,0.0,0.1,0.2\n2,6.0,0.0,0.1,0.2\n", name="grid_forecast.csv")
    iska.ingest(additions([("233240000001", "2026-01-01 08:00:00", 11, 5.25, 0.0),
                           ("233240000002", "2026-01-01 08:00:00", 11, 5.8, 0.0)]), name="a_additions.csv")
    assert iska.rows("SELECT msisdn, lid FROM subscriptions ORDER BY msisdn") == [
        ("233240000001", 1), ("233240000002", 2)]
    # point 3 appears next to the first subscriber, point 2 is switched off
    result = iska.ingest("gid,lat,lon,fcat24,fcat48,is_active\n3,5.4,0.0,0.1,0.2,true\n"
                         "2,6.0,0.0,0.1,0.2,false\n", name="grid2_forecast.csv")
    assert materialization_metadata(result)["subscriptions_reassigned"] == 2
    assert iska.rows("SELECT msisdn, lid FROM subscriptions ORDER BY msisdn") == [
        ("233240000001", 3), ("233240000002", 3)]


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
    worker = threading.Thread(target=lambda: outcome.append(ingest_file(
        engine, iska.folders, key, lambda p: read_subscription_file(p, FileKind.ADDITIONS, rules.timezone),
        lambda c, parsed: apply_subscriptions(c, parsed, FileKind.ADDITIONS, rules), rules)))
    worker.start()
    deadline = time.monotonic() + 30
    waiting = 0
    while time.monotonic() < deadline and not waiting:
        waiting = holder.execute(sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar()
    assert waiting == 1, "the second writer should be queued behind the lock"
    assert holder.execute(sa.text("SELECT count(*) FROM subscriptions")).scalar() == 0
    transaction.commit()
    holder.close()
    worker.join(timeout=60)
    assert outcome and outcome[0].rows_applied == 100


def test_a_typo_year_in_ts_is_refused_and_never_locks_the_subscriber_out(iska):
    msisdns = [f"23324000000{i}" for i in range(1, 6)]
    iska.ingest(additions([(m, "2026-01-01 08:00:00", 11, 5.6, -0.2) for m in msisdns]), name="a_additions.csv")
    years = ["2062"] + ["2026"] * 4  # the first row's year is a typo
    typo = iska.ingest("msisdn,ts,lat,lon\n" + "".join(
        f"{m},{y}-01-02 08:00:00,7.0,-1.0\n" for m, y in zip(msisdns, years)), name="typo_update.csv")
    assert typo.success and materialization_metadata(typo)["refused_future_ts"] == 1
    assert [r["reason"] for r in refused(iska, "typo_update.csv", "updates")] == ["future_ts"]
    cancel = iska.ingest(f"msisdn,ts\n{msisdns[0]},2026-01-03 08:00:00\n", name="c_cancel.csv")
    assert materialization_metadata(cancel)["cancelled"] == 1
    assert iska.rows("SELECT status, lat FROM subscriptions WHERE msisdn = :m", m=msisdns[0]) == [
        ("cancelled", 5.6)]


def test_a_small_file_ending_in_blank_lines_is_applied_not_refused(iska):
    content = additions([("233240000001", "2026-01-01 08:00:00", 11, 5.6, -0.2),
                         ("233240000002", "2026-01-01 08:00:00", 21, 5.7, -0.3)]) + "\n ,,,,\n,,,,\n\n"
    result = iska.ingest(content, name="blank_tail_additions.csv")
    assert result.success
    metadata = materialization_metadata(result)
    assert (metadata["rows_in"], metadata["rows_applied"], metadata["rows_refused"]) == (2, 2, 0)
    assert iska.scalar("SELECT count(*) FROM subscriptions") == 2
