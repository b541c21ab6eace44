"""`sms_job` end to end: real database (SQLite and PostgreSQL), the real simulator on 127.0.0.1."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa
from dagster._core.instance.ref import InstanceRef

from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import CATCH_UP_TAG
from iska_pipelines.defs.sms.resources import SmsOutbox
from iska_pipelines.defs.sms.schedules import sms_schedule
from iska_pipelines.defs.sms.sensors import sms_catch_up
from iska_pipelines.lib.db.schema import forecasts, subscriptions
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.settings import DEFAULT_SMS_TEMPLATE, DEFAULTS
from iska_pipelines.lib.sms.outbox import plan_outbox
from iska_pipelines_tests.conftest import sample_path
from iska_pipelines_tests.polling import wait_for
from iska_pipelines_tests.sms_runs import day_report, refused_url, run_sms_day
from iska_pipelines_tests.sms_world import add_forecast, add_subscriber, message, messages, today

ADDITIONS = """ts,msisdn,service_id,lat,lon
2026-01-05 08:00:00,233010000001,11,5.6,-0.2
2026-01-05 08:00:00,233010000002,11,6.7,-1.6
2026-01-05 08:00:00,233010000003,11,9.4,-0.8
2026-01-05 08:00:00,233010000004,21,10.0,-2.5
2026-01-05 08:00:00,233010000005,11,7.0,0.5
"""
CANCELLATIONS = "ts,msisdn\n2026-01-06 09:00:00,233010000003\n"
ROOT = Path(__file__).resolve().parents[1]
PAID, UNPAID, CANCELLED, STALE, NO_GRID = (f"23301000000{n}" for n in range(1, 6))


def sms_counts(simulator) -> dict[str, int]:
    return simulator.stats()["sms"]["messages"]


def ghana_with_five_subscribers(iska):
    """The sample grid and five subscribers through the real ingest; billing's and time's
    effects (paid, a forecast gone stale, a grid point lost) written as billing would."""
    iska.ingest(sample_path("forecasts_ghana.csv"))
    iska.ingest(ADDITIONS, name="2026-01-05_additions.csv")
    iska.ingest(CANCELLATIONS, name="2026-01-06_cancellations.csv")
    day = today()
    with iska.engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE subscriptions SET last_billing_date = :day, next_billing_date = :next "
                "WHERE msisdn <> :unpaid"
            ).bindparams(
                sa.bindparam("day", day, type_=sa.Date),
                sa.bindparam("next", day + timedelta(days=1), type_=sa.Date),
                unpaid=UNPAID,
            )
        )
        connection.execute(
            sa.text(
                "UPDATE forecasts SET issued_at = :old WHERE gid = "
                "(SELECT lid FROM subscriptions WHERE msisdn = :stale)"
            ).bindparams(
                sa.bindparam("old", utcnow() - timedelta(hours=31), type_=forecasts.c.issued_at.type),
                stale=STALE,
            )
        )
        connection.execute(sa.text("UPDATE subscriptions SET lid = NULL WHERE msisdn = :m"), {"m": NO_GRID})
    return day


def test_a_paid_subscriber_with_a_fresh_forecast_gets_exactly_one_sms_with_its_grid_points_text(
    iska, simulator
):
    day = ghana_with_five_subscribers(iska)
    urls = [simulator.sms_url(name) for name in "abc"]

    result = run_sms_day(iska.database_url, iska.instance, day, urls)

    assert sms_counts(simulator) == {PAID: 1}
    [sent] = messages(iska.engine, day)
    # the subscriber at 5.6, -0.2 is on grid point 100538: fcat24 0.2207, fcat48 0.4554
    assert iska.scalar("SELECT lid FROM subscriptions WHERE msisdn = :m", m=PAID) == 100538
    assert (sent.msisdn, sent.status, sent.attempts) == (PAID, "accepted", 1)
    assert sent.text == f"Iska {day.isoformat()}: next 24h 0.2207, next 48h 0.4554"
    assert sent.gateway in urls
    report = day_report(result)
    assert {k: report[k] for k in ("eligible", "sent", "accepted", "failed")} == {
        "eligible": 1,
        "sent": 1,
        "accepted": 1,
        "failed": 0,
    }
    assert {k: v for k, v in report.items() if k.startswith("skipped_")} == {
        "skipped_already_sent": 0,
        "skipped_cancelled": 1,
        "skipped_unpaid": 1,
        "skipped_no_grid_point": 1,
        "skipped_stale_forecast": 1,
        "skipped_too_late": 0,
    }
    assert report["messages_per_second"] > 0


def test_rerunning_the_days_partition_sends_nothing_new(engine, database_url, instance, simulator):
    day = today()
    add_forecast(engine, 1, "0.3000", "0.6000")
    for n in range(12):
        add_subscriber(engine, f"2330100001{n:02d}", 1, day=day)
    urls = [simulator.sms_url("a"), simulator.sms_url("b")]

    first = run_sms_day(database_url, instance, day, urls, batch_size=5)
    again = run_sms_day(database_url, instance, day, urls, batch_size=5)

    assert set(sms_counts(simulator).values()) == {1} and len(sms_counts(simulator)) == 12
    assert simulator.stats()["sms"]["counts"]["requests"] == 12
    # three batches of 5, but one sender: the in-process executor runs one step at a time
    assert (day_report(first)["accepted"], day_report(first)["batches"]) == (12, 1)
    assert day_report(again)["sent"] == 0 and day_report(again)["skipped_already_sent"] == 12
    assert {r.status for r in messages(engine, day)} == {"accepted"}


def test_a_url_that_refuses_connections_leaves_the_others_to_carry_everything(
    engine, database_url, instance, simulator
):
    day = today()
    add_forecast(engine, 1, "1.5000", "2.2500")
    for n in range(30):
        add_subscriber(engine, f"2330100002{n:02d}", 1, day=day)
    dead = refused_url("/sms/dead")
    urls = [simulator.sms_url("a"), dead, simulator.sms_url("b")]

    result = run_sms_day(database_url, instance, day, urls)

    counts = simulator.stats()["sms"]["counts"]
    assert day_report(result)["accepted"] == 30 and len(sms_counts(simulator)) == 30
    assert counts["via_a"] + counts["via_b"] == 30 and counts["via_a"] > 0 and counts["via_b"] > 0
    assert {r.gateway for r in messages(engine, day)} <= {urls[0], urls[2]}
    assert {r.attempts for r in messages(engine, day)} == {1}


def test_gateways_failing_the_first_two_tries_accept_the_third_with_the_same_msgid(
    engine, database_url, instance, simulator
):
    day = today()
    add_forecast(engine, 1, "1", "2")
    for n in range(6):
        add_subscriber(engine, f"2330100003{n:02d}", 1, day=day)
    simulator.configure(sms_errors_before_accept=2)  # the first 2 requests of each msgid: 500

    result = run_sms_day(database_url, instance, day, [simulator.sms_url(n) for n in "abc"])

    counts = simulator.stats()["sms"]["counts"]
    assert day_report(result)["accepted"] == 6
    assert {(r.status, r.attempts) for r in messages(engine, day)} == {("accepted", 3)}
    assert (counts["fault_scripted_5xx"], counts["accepted"], counts["requests"]) == (12, 6, 18)
    assert set(sms_counts(simulator).values()) == {1}


def test_a_message_refused_on_every_try_ends_failed_with_the_last_error(
    engine, database_url, instance, simulator
):
    day = today()
    add_forecast(engine, 1, "1", "2")
    add_subscriber(engine, "233010000401", 1, day=day)
    simulator.configure(sms_errors_before_accept=100)

    result = run_sms_day(database_url, instance, day, [simulator.sms_url("a")], max_tries=3)

    [row] = messages(engine, day)
    assert (row.status, row.attempts) == ("failed", 3)
    assert "HTTP 500" in row.last_error and "scripted failure" in row.last_error
    assert (day_report(result)["failed"], day_report(result)["accepted"]) == (1, 0)
    assert sms_counts(simulator) == {}


def test_a_message_the_gateway_rejects_ends_rejected_after_one_try(engine, database_url, instance, simulator):
    day = today()
    add_forecast(engine, 1, "1", "2")
    add_subscriber(engine, "233010000451", 1, day=day)
    simulator.configure(sms_reject_rate=1.0)

    result = run_sms_day(database_url, instance, day, [simulator.sms_url("a")])

    [row] = messages(engine, day)
    assert (row.status, row.attempts) == ("rejected", 1) and "subscriber barred" in row.last_error
    assert (day_report(result)["rejected"], day_report(result)["failed"]) == (1, 0)


def test_self_callback_marks_accepted_messages_delivered_through_the_real_callback_route(
    engine, database_url, instance, simulator, api
):
    day = today()
    add_forecast(engine, 1, "1", "2")
    add_subscriber(engine, "233010000501", 1, day=day)
    add_subscriber(engine, "233010000502", 1, day=day)
    simulator.configure(report_delay_seconds=3600)  # the gateway itself stays silent

    run_sms_day(
        database_url,
        instance,
        day,
        [simulator.sms_url("a")],
        public_url=api.base_url,
        callback_secret=api.callback_secret,
        self_callback=True,
    )

    rows = messages(engine, day)
    assert {r.status for r in rows} == {"delivered"}
    assert all(r.delivered_at is not None and r.accepted_at is not None for r in rows)
    assert iska_last_sms_dates(engine) == {r.msisdn: day for r in rows}


def iska_last_sms_dates(engine) -> dict:
    with engine.connect() as connection:
        return dict(
            connection.execute(
                sa.select(subscriptions.c.msisdn, subscriptions.c.last_successful_sms_date)
            ).all()
        )


def test_the_gateways_delivery_reports_reach_the_api_and_date_the_last_good_sms(
    engine, database_url, instance, simulator, api
):
    day = today()
    add_forecast(engine, 1, "1", "2")
    for n in range(4):
        add_subscriber(engine, f"2330100006{n:02d}", 1, day=day)
    simulator.configure(report_delay_seconds=0, report_statuses={"delivered": 1.0, "undelivered": 1.0})

    run_sms_day(
        database_url,
        instance,
        day,
        [simulator.sms_url("a")],
        public_url=api.base_url,
        callback_secret=api.callback_secret,
    )

    rows = wait_for(
        lambda: all(r.status != "accepted" for r in messages(engine, day)) and messages(engine, day)
    )
    delivered = {r.msisdn for r in rows if r.status == "delivered"}
    assert {r.status for r in rows} <= {"delivered", "undelivered"}
    assert {m for m, d in iska_last_sms_dates(engine).items() if d == day} == delivered


def test_expiry_runs_with_the_day_and_expires_messages_accepted_over_72_hours_ago(
    engine, database_url, instance, simulator
):
    old_day = today() - timedelta(days=4)
    add_forecast(engine, 1, "1", "2")
    add_subscriber(engine, "233010000701", 1, day=old_day)
    run_sms_day(database_url, instance, old_day, [simulator.sms_url("a")])
    [old] = messages(engine, old_day)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE sms_messages SET accepted_at = :at WHERE msgid = :m").bindparams(
                sa.bindparam("at", utcnow() - timedelta(hours=73), type_=forecasts.c.updated_at.type),
                m=old.msgid,
            )
        )

    result = run_sms_day(database_url, instance, today(), [simulator.sms_url("a")])

    assert message(engine, old.msgid).status == "expired"
    assert day_report(result)["expired"] == 1


def test_the_0500_run_on_2026_03_10_in_accra_requests_that_days_partition():
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 3, 10, 5, 0, tzinfo=ZoneInfo("Africa/Accra"))
    )
    requests = sms_schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2026-03-10"]
    assert (sms_schedule.cron_schedule, sms_schedule.execution_timezone) == ("0 5 * * *", "Africa/Accra")


def planned_but_unsent(engine, day, count: int) -> None:
    """A day whose run planned its messages and died before sending any."""
    add_forecast(engine, 1, "0.3000", "0.5000")
    for n in range(count):
        add_subscriber(engine, f"23305000000{n}", 1, day=day)
    with engine.begin() as connection:
        plan_outbox(connection, day, DEFAULTS.catalog(), 30.0)


def catch_up_requests(engine, database_url, instance, latest_hour: int):
    context = dg.build_sensor_context(
        instance=instance,
        resources={
            "database": IskaDatabase(url=database_url),
            "sms_outbox": SmsOutbox(template=DEFAULT_SMS_TEMPLATE, latest_hour=latest_hour),
        },
    )
    return sms_catch_up(context)


def test_the_catch_up_asks_for_a_run_of_a_day_left_with_pending_messages_before_its_cutoff(
    engine, database_url, instance
):
    day = today()
    planned_but_unsent(engine, day, 3)

    [request] = catch_up_requests(engine, database_url, instance, latest_hour=24)

    assert request.partition_key == day.isoformat()
    assert request.tags[CATCH_UP_TAG] == "send"


def test_past_the_cutoff_a_catch_up_run_ends_the_days_pending_messages_skipped_too_late(
    engine, database_url, instance, simulator
):
    day = today()
    planned_but_unsent(engine, day, 3)
    [request] = catch_up_requests(engine, database_url, instance, latest_hour=0)
    assert request.tags[CATCH_UP_TAG] == "close"

    result = run_sms_day(
        database_url, instance, day, [simulator.sms_url("a")], latest_hour=0, tags=request.tags
    )

    assert {m.status for m in messages(engine, day)} == {"skipped_too_late"}
    assert sms_counts(simulator) == {}
    assert (day_report(result)["skipped_too_late"], day_report(result)["pending"]) == (3, 0)


def test_a_run_that_is_not_a_catch_up_sends_the_day_whatever_the_hour(
    engine, database_url, instance, simulator
):
    day = today()
    planned_but_unsent(engine, day, 3)

    result = run_sms_day(database_url, instance, day, [simulator.sms_url("a")], latest_hour=0)

    assert day_report(result)["accepted"] == 3


def test_a_dead_sms_run_is_found_by_run_monitoring_and_retried_by_both_instances(tmp_path):
    """Both instances (make run's and the image's) monitor runs and retry crashed ones, and
    sms_job's max runtime is what ends a run whose worker died with nobody left to notice."""
    from iska_pipelines.defs.sms.jobs import sms_job

    for config in ("dagster.yaml", "deploy/dagster.yaml"):
        home = tmp_path / config.replace("/", "_")
        home.mkdir()
        text = (ROOT / config).read_text()
        if config.startswith("deploy"):  # its storage block needs a server; the rest is checked
            text = text.split("# Runs are launched", 1)[1].split("\n", 1)[1]
        (home / "dagster.yaml").write_text(text)
        with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
            assert instance.run_monitoring_enabled, config
            assert instance.run_retries_enabled and instance.run_retries_max_retries >= 1, config
    assert float(sms_job.tags["dagster/max_runtime"]) <= 2 * 3600
