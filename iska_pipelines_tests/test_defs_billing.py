"""billing_job end to end: subscribers arrive through the inbox, charges go to the real
simulator on 127.0.0.1, and the outcome is read back from ISKA's database and the simulator's
/stats (SPEC §6). Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from iska_pipelines.defs.billing.jobs import billing_job, charge_due_subscriptions
from iska_pipelines.defs.billing.resources import BillingGateway, BillingPolicy
from iska_pipelines.defs.billing.schedules import billing_schedule
from iska_pipelines.defs.billing.sensors import billing_after_additions
from iska_pipelines.defs.inbox.jobs import ingest_subscriptions
from iska_pipelines.defs.resources import SETTINGS, IskaDatabase
from iska_pipelines.defs.subscriptions.assets import subscriptions as subscriptions_asset
from iska_pipelines.lib.billing.due import billing_day
from iska_pipelines.lib.db.engine import engine_for
from iska_pipelines.lib.db.schema import billing_attempts, subscriptions
from iska_pipelines.lib.db.timestamps import as_utc, utcnow
from iska_pipelines.lib.vocabulary import PLAN_CODES
from iska_pipelines_tests.driver import materialization_metadata
from iska_pipelines_tests.simulator_server import SIMULATOR_TOKEN

DAILY, WEEKLY = 11, 21
TIMEZONE = "Africa/Accra"


def additions_csv(plans: dict[str, int], ts: str = "2024-01-05 08:00:00") -> str:
    rows = "".join(f"{msisdn},{ts},{code},5.6,-0.2\n" for msisdn, code in plans.items())
    return "msisdn,ts,service_id,lat,lon\n" + rows


def just_now() -> str:
    """A `ts` for an event happening now (after everything the test did so far)."""
    return utcnow().strftime("%Y-%m-%d %H:%M:%S.%fZ")


def msisdns(count: int, start: int = 1) -> list[str]:
    return [f"2330200{n:05d}" for n in range(start, start + count)]


@dataclass
class Billing:
    """Runs billing_job in process against the simulator, and reads what it did.

    Subscribers arrive through the inbox when `iska` (the ingest driver) is given; otherwise they
    are written as an applied additions file leaves them (active, due today), which is quicker.
    """

    database_url: str
    simulator: object
    iska: object | None = None
    gateway: dict = field(
        default_factory=lambda: {
            "concurrency": 8,
            "timeout_seconds": 0.5,
            "tries": 2,
            "backoff_seconds": 0.02,
        }
    )
    policy: dict = field(default_factory=lambda: {"max_tries": 5, "retry_minutes": 60})
    files: int = 0
    # billing runs keep their events in memory: an on-disk test instance is slow to write
    instance: dg.DagsterInstance = field(default_factory=dg.DagsterInstance.ephemeral)

    @property
    def engine(self) -> sa.Engine:
        return engine_for(self.database_url)

    def subscribe(self, plans: dict[str, int], ts: str = "2024-01-05 08:00:00") -> str | None:
        """Returns the partition key of the additions file when they came through the inbox."""
        if self.iska is not None:
            self.files += 1
            added = self.iska.ingest(additions_csv(plans, ts), name=f"batch{self.files}_additions.csv")
            assert added.success
            return added.dagster_run.tags["dagster/partition"]
        now = utcnow()
        with self.engine.begin() as connection:
            connection.execute(
                sa.insert(subscriptions),
                [
                    {
                        "msisdn": msisdn,
                        "plan": PLAN_CODES[str(code)].value,
                        "status": "active",
                        "lat": 5.6,
                        "lon": -0.2,
                        "sub_date": now,
                        "next_billing_date": today(),
                        "failed_billing_count": 0,
                        "last_event_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for msisdn, code in plans.items()
                ],
            )

    def insert_subscription(self, **columns) -> None:
        """A row written straight into the database, bypassing every check of the file path."""
        now = utcnow()
        with self.engine.begin() as connection:
            connection.execute(
                sa.insert(subscriptions),
                {
                    "plan": "daily",
                    "status": "active",
                    "lat": 5.6,
                    "lon": -0.2,
                    "sub_date": now,
                    "next_billing_date": today(),
                    "failed_billing_count": 0,
                    "last_event_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                | columns,
            )

    def resources(self, **gateway) -> dict:
        settings = {"url": self.simulator.billing_url, "token": SIMULATOR_TOKEN} | self.gateway | gateway
        return {
            "database": IskaDatabase(url=self.database_url),
            "billing_gateway": BillingGateway(**settings),
            "billing_policy": BillingPolicy(**self.policy),
        }

    def run(self, **gateway) -> dg.ExecuteInProcessResult:
        return billing_job.execute_in_process(
            resources=self.resources(**gateway), instance=self.instance, raise_on_error=False
        )

    def subscription(self, msisdn: str) -> sa.Row:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(subscriptions).where(subscriptions.c.msisdn == msisdn)).one()

    def attempts(self) -> list[sa.Row]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.select(billing_attempts).order_by(billing_attempts.c.id)))

    def an_interval_passes(self) -> None:
        """Move every attempt back past ISKA_BILLING_RETRY_MINUTES, as if that time had gone by."""
        shift = timedelta(minutes=self.policy["retry_minutes"] + 1)
        with self.engine.begin() as connection:
            for row in connection.execute(
                sa.select(billing_attempts.c.id, billing_attempts.c.attempted_at)
            ).all():
                connection.execute(
                    sa.update(billing_attempts)
                    .where(billing_attempts.c.id == row.id)
                    .values(attempted_at=as_utc(row.attempted_at) - shift)
                )


@pytest.fixture
def billing(database_url, simulator) -> Billing:
    return Billing(database_url, simulator)


@pytest.fixture
def billing_via_inbox(iska, simulator) -> Billing:
    return Billing(iska.database_url, simulator, iska=iska)


def today():
    return billing_day(utcnow(), TIMEZONE)


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    if result.success:
        (output,) = [
            e
            for e in result.events_for_node(charge_due_subscriptions.name)
            if e.event_type_value == "STEP_OUTPUT"
        ]
        return {k: v.value for k, v in output.event_specific_data.metadata.items()}
    failure = result.failure_data_for_node(charge_due_subscriptions.name).user_failure_data
    return {k: v.value for k, v in failure.metadata.items()}


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success, "the run was expected to fail"
    return result.failure_data_for_node(charge_due_subscriptions.name).user_failure_data.description


# --- charging -------------------------------------------------------------------------------


def test_new_daily_and_weekly_subscribers_are_charged_once_and_billed_again_a_day_or_a_week_later(
    billing_via_inbox,
):
    billing = billing_via_inbox
    daily, weekly = msisdns(2)
    billing.subscribe({daily: DAILY, weekly: WEEKLY})

    first = billing.run()
    assert first.success
    assert metadata(first) | {"duration_seconds": 0, "charges_per_second": 0} == {
        "due": 2,
        "charged": 2,
        "declined": 0,
        "transport_errors": 0,
        "cancelled": 0,
        "auth_errors": 0,
        "not_sendable": 0,
        "not_sent": 0,
        "duration_seconds": 0,
        "charges_per_second": 0,
    }
    for msisdn, days in ((daily, 1), (weekly, 7)):
        row = billing.subscription(msisdn)
        assert (row.last_billing_date, row.next_billing_date) == (today(), today() + timedelta(days=days))
        assert row.failed_billing_count == 0

    second = billing.run()
    assert second.success and metadata(second)["due"] == 0
    assert billing.simulator.charges() == {daily: 1, weekly: 1}
    assert [a.outcome for a in billing.attempts()] == ["success", "success"]


def test_charges_go_out_concurrently(billing):
    billing.subscribe({m: DAILY for m in msisdns(16)})
    billing.simulator.configure(latency_ms=300)
    started = time.monotonic()
    result = billing.run(concurrency=16)
    assert result.success and metadata(result)["charged"] == 16
    assert time.monotonic() - started < 16 * 0.3 / 2  # one at a time would take 4.8 s


def test_a_subscriber_declined_up_to_the_limit_is_cancelled_for_billing(billing):
    (msisdn,) = msisdns(1)
    billing.subscribe({msisdn: DAILY})
    billing.simulator.configure(decline_rate=1.0)
    billing.policy["max_tries"] = 3  # MAX_BILLING_TRY_LIMIT
    for declines in range(1, 4):
        assert billing.run().success
        assert billing.subscription(msisdn).failed_billing_count == declines
        if declines == 1:
            assert metadata(billing.run())["due"] == 0  # resting for ISKA_BILLING_RETRY_MINUTES
        billing.an_interval_passes()

    row = billing.subscription(msisdn)
    assert (row.status, row.cancel_reason) == ("cancelled", "billing")
    assert row.unsub_date is not None and row.last_billing_date is None
    assert metadata(billing.run())["due"] == 0
    assert billing.simulator.stats()["billing"]["declines"] == {msisdn: 3}
    assert [a.outcome for a in billing.attempts()] == ["declined"] * 3


def test_a_subscriber_who_pays_on_the_third_try_stays_active_with_the_count_reset(billing):
    (msisdn,) = msisdns(1)
    billing.subscribe({msisdn: WEEKLY})
    billing.simulator.configure(script={msisdn: ["failure", "failure", "success"]})
    for _ in range(3):
        assert billing.run().success
        billing.an_interval_passes()

    row = billing.subscription(msisdn)
    assert (row.status, row.failed_billing_count, row.last_billing_date) == ("active", 0, today())
    assert row.next_billing_date == today() + timedelta(days=7)
    assert [a.outcome for a in billing.attempts()] == ["declined", "declined", "success"]
    assert len({a.idempotency_key for a in billing.attempts()}) == 3  # each try a new intent


def decline_until_cancelled(billing: Billing, msisdn: str) -> None:
    """MAX_BILLING_TRY_LIMIT declines, an interval apart; the last one cancels (just now)."""
    billing.simulator.configure(decline_rate=1.0)
    for declines in range(1, billing.policy["max_tries"] + 1):
        assert billing.run().success
        if declines < billing.policy["max_tries"]:
            billing.an_interval_passes()
    row = billing.subscription(msisdn)
    assert (row.status, row.cancel_reason) == ("cancelled", "billing")


def test_a_subscriber_cancelled_for_billing_and_re_added_the_same_day_is_really_charged(billing_via_inbox):
    billing = billing_via_inbox
    (msisdn,) = msisdns(1)
    billing.policy["max_tries"] = 2
    billing.subscribe({msisdn: DAILY})
    decline_until_cancelled(billing, msisdn)

    billing.simulator.configure(decline_rate=0.0)
    billing.subscribe({msisdn: DAILY}, ts=just_now())  # a new subscription period: no key reused
    row = billing.subscription(msisdn)
    assert (row.status, row.failed_billing_count, row.next_billing_date) == ("active", 0, today())
    rejoined = billing.run()

    assert rejoined.success and metadata(rejoined)["charged"] == 1
    assert billing.simulator.charges() == {msisdn: 1}
    assert billing.simulator.billing_counts().get("replays", 0) == 0
    row = billing.subscription(msisdn)
    assert (row.status, row.failed_billing_count, row.last_billing_date) == ("active", 0, today())


def test_a_billing_cancellation_is_not_undone_by_re_running_the_older_additions_file(billing_via_inbox):
    billing = billing_via_inbox
    (msisdn,) = msisdns(1)
    billing.policy["max_tries"] = 1
    added = billing.subscribe({msisdn: DAILY})
    decline_until_cancelled(billing, msisdn)

    again = billing.iska.run(added)  # its addition (2024-01-05) is older than the cancellation
    assert again.success
    assert materialization_metadata(again).get("refused_stale_event", 0) == 1
    row = billing.subscription(msisdn)
    assert (row.status, row.cancel_reason) == ("cancelled", "billing")


@pytest.mark.parametrize(
    "bad", [{"msisdn": "23302000099\u0663"}, {"plan": "monthly"}], ids=["msisdn_not_latin1", "unknown_plan"]
)
def test_a_subscriber_whose_charge_cannot_be_sent_is_an_error_and_everyone_else_is_charged(billing, bad):
    billing.insert_subscription(**{"msisdn": "233020000099"} | bad)  # first in line
    others = msisdns(3)
    billing.subscribe({m: DAILY for m in others})

    result = billing.run()

    assert billing.simulator.charges() == {m: 1 for m in others}
    assert metadata(result)["charged"] == 3 and metadata(result)["not_sendable"] == 1
    assert "1 of 4 charges could not be sent" in failure_message(result)
    (error,) = [a for a in billing.attempts() if a.outcome == "error"]
    assert error.http_status is None and error.response_excerpt.startswith("not sent: ")
    assert next(iter(bad.values())) in error.response_excerpt
    assert billing.subscription(error.msisdn).failed_billing_count == 0


# --- the gateway misbehaves -----------------------------------------------------------------


def _closed_port_url() -> str:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{unused.getsockname()[1]}/billing"


@pytest.mark.parametrize("outage", ["connection_refused", "all_5xx", "all_timeouts"])
def test_a_gateway_down_for_a_whole_run_fails_the_run_and_charges_or_cancels_nobody(billing, outage):
    subscribers = msisdns(3)
    billing.subscribe({m: DAILY for m in subscribers})
    gateway = {}
    if outage == "connection_refused":
        gateway["url"] = _closed_port_url()
    elif outage == "all_5xx":
        billing.simulator.configure(error_rate=1.0)
    else:
        billing.simulator.configure(timeout_rate=1.0, hang_seconds=1.0)
    billing.policy["max_tries"] = 1  # even a one-decline limit must not cancel on an outage

    down = billing.run(**gateway)
    assert "3 of 3 charges got no answer" in failure_message(down)
    assert metadata(down)["transport_errors"] == 3
    assert [a.outcome for a in billing.attempts()] == ["error"] * 3
    for msisdn in subscribers:
        row = billing.subscription(msisdn)
        assert (row.status, row.failed_billing_count, row.next_billing_date) == ("active", 0, today())
    assert billing.simulator.charges() == {}

    billing.simulator.configure(error_rate=0.0, timeout_rate=0.0)
    assert billing.run().success
    assert billing.simulator.charges() == {m: 1 for m in subscribers}


def test_a_charge_that_timed_out_after_the_gateway_charged_is_not_charged_again(billing):
    (msisdn,) = msisdns(1)
    billing.subscribe({msisdn: DAILY})
    billing.simulator.configure(faults=["charge_then_timeout"], hang_seconds=1.0)

    lost = billing.run(tries=1)  # the answer never arrives: recorded as a transport error
    assert not lost.success and [a.outcome for a in billing.attempts()] == ["error"]
    assert billing.run().success  # same intent, same key: the gateway answers from memory

    attempts = billing.attempts()
    assert [a.outcome for a in attempts] == ["error", "success"]
    assert attempts[0].idempotency_key == attempts[1].idempotency_key
    assert billing.simulator.charges() == {msisdn: 1}
    assert billing.simulator.billing_counts()["replays"] == 1
    assert billing.subscription(msisdn).last_billing_date == today()


def test_a_refused_token_stops_the_run_with_a_message_naming_billing_token(billing):
    subscribers = msisdns(5)
    billing.subscribe({m: DAILY for m in subscribers})
    refused = billing.run(token="not-the-token", concurrency=1)
    assert "BILLING_TOKEN" in failure_message(refused)
    assert metadata(refused)["not_sent"] == 4  # it stopped at the first 401
    assert billing.simulator.billing_counts()["unauthorised"] == 1
    assert all(billing.subscription(m).failed_billing_count == 0 for m in subscribers)


def test_a_missing_token_fails_the_run_before_charging_anyone(billing):
    billing.subscribe({msisdns(1)[0]: DAILY})
    assert "BILLING_TOKEN is not set" in failure_message(billing.run(token=""))
    assert billing.simulator.billing_counts().get("requests", 0) == 0


CHILD = """
import sys
from iska_pipelines.defs.billing.jobs import billing_job
from iska_pipelines.defs.billing.resources import BillingGateway, BillingPolicy
from iska_pipelines.defs.resources import IskaDatabase
database_url, billing_url, token = sys.argv[1:4]
billing_job.execute_in_process(resources={
    "database": IskaDatabase(url=database_url),
    "billing_gateway": BillingGateway(url=billing_url, token=token, concurrency=4, timeout_seconds=5),
    "billing_policy": BillingPolicy(),
})
"""


def test_a_billing_run_killed_midway_and_run_again_charges_everyone_exactly_once(billing):
    subscribers = msisdns(40)
    billing.subscribe({m: DAILY if i % 2 else WEEKLY for i, m in enumerate(subscribers)})
    billing.simulator.configure(latency_ms=200)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, billing.database_url, billing.simulator.billing_url, SIMULATOR_TOKEN],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while sum(billing.simulator.charges().values()) < 6 and child.poll() is None:
            assert time.monotonic() < deadline, "the billing run never started charging"
            time.sleep(0.02)  # polling interval
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
    assert sum(billing.simulator.charges().values()) < len(subscribers)  # it really was midway

    billing.simulator.configure(latency_ms=0)
    assert billing.run().success
    assert billing.simulator.charges() == {m: 1 for m in subscribers}
    assert all(billing.subscription(m).last_billing_date == today() for m in subscribers)
    successes = [a.msisdn for a in billing.attempts() if a.outcome == "success"]
    assert sorted(successes) == sorted(subscribers)


# --- when billing runs ----------------------------------------------------------------------


def test_billing_runs_on_its_cron_in_the_service_time_zone_one_run_at_a_time():
    assert billing_schedule.cron_schedule == SETTINGS.billing_cron
    assert billing_schedule.execution_timezone == SETTINGS.timezone
    assert billing_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert billing_job.tags["iska/serial"] == "billing"
    assert billing_job.tags["dagster/max_retries"] == str(SETTINGS.max_task_retry)
    assert charge_due_subscriptions.retry_policy.max_retries == SETTINGS.max_task_retry


def test_the_additions_sensor_requests_one_billing_run_per_applied_additions_file(iska):
    definitions = dg.Definitions(
        assets=[subscriptions_asset], jobs=[ingest_subscriptions], resources=iska.resources()
    )
    ingest = definitions.resolve_job_def(ingest_subscriptions.name)
    cursor = _tick(iska.instance, None)[1]  # the first tick only sets the starting point

    iska.drop(additions_csv({"233020000001": DAILY}), name="one_additions.csv")
    iska.drop(additions_csv({"233020000002": WEEKLY}), name="two_additions.csv")
    iska.drop("msisdn,ts\n233020000001,2024-01-06 08:00:00\n", name="x_cancellations.csv")
    iska.drop("msisdn,ts\n", name="broken_additions.csv")  # refused: required columns missing
    outcomes = {}
    for request in iska.tick().run_requests:
        run = ingest.execute_in_process(
            partition_key=request.partition_key,
            instance=iska.instance,
            tags=request.tags,
            raise_on_error=False,
        )
        outcomes[request.partition_key] = run.success
    assert sorted(outcomes.values()) == [False, True, True, True]

    requested = []
    for _ in range(len(outcomes) + 1):
        run_requests, cursor = _tick(iska.instance, cursor)
        requested += run_requests
    applied_additions = sorted(k for k, ok in outcomes.items() if ok and k.startswith("additions-"))
    assert sorted(r.tags["iska/after"] for r in requested) == applied_additions
    assert len({r.run_key for r in requested}) == 2
    assert _tick(iska.instance, cursor)[0] == []


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    data = billing_after_additions.evaluate_tick(context)
    return list(data.run_requests or []), data.cursor
