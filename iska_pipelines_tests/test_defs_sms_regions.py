"""Two regions (SPEC §15) on one clock: Ghana (UTC+0) and Nigeria (UTC+1), both sending at
midnight local time, so Nigeria's day begins an hour earlier, while Ghana's date is still the day
before. The hours are stepped one by one as the daemon would: billing runs every hour, each
region's schedule fires when its cron says so, and the SMS job runs the partition it asks for,
against a simulator in its own process whose arrival log shows each gateway's pace."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._utils.schedules import cron_string_iterator

from bench.simulator import TOKEN as GATEWAY_TOKEN
from bench.simulator import Simulator
from bench.simulator import simulator as separate_simulator
from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import build_sms_job
from iska_pipelines.defs.sms.partitions import sms_partitions
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.defs.sms.schedules import sms_schedules
from iska_pipelines.lib.billing.gateway import BillingClient
from iska_pipelines.lib.billing.run import BillingRules, bill_due
from iska_pipelines.lib.db.schema import billing_attempts, sms_messages, subscriptions
from iska_pipelines.lib.regions.config import Regions, load_regions
from iska_pipelines.simulator.rates import most_in_any_second
from iska_pipelines_tests.sms_runs import refused_url
from iska_pipelines_tests.sms_world import add_forecast, add_subscriber, today

GH_CAP, NG_CAP = 15, 8
GH = [f"2330500000{n:02d}" for n in range(24)]
NG = [f"2348000000{n:02d}" for n in range(12)]


def regions_file(folder: Path, base_url: str) -> Path:
    path = folder / "regions.toml"
    path.write_text(
        f"""
[GH]
timezone = "Africa/Accra"
sms_hour = 0
language = "en"
prefixes = ["233"]
sms_gateways = [{{ url = "{base_url}/sms/gh1", max_tps = {GH_CAP} }}, {{ url = "{base_url}/sms/gh2", max_tps = {GH_CAP} }}]

[NG]
timezone = "Africa/Lagos"
sms_hour = 0
language = "ha"
prefixes = ["234"]
sms_gateways = [{{ url = "{base_url}/sms/ng", max_tps = {NG_CAP} }}]
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def gateway():
    with separate_simulator(latency_ms=0) as running:
        yield running


class TwoRegions:
    """The world, the clock and what the daemon would do at each hour."""

    def __init__(self, database_url: str, engine: sa.Engine, instance, gateway: Simulator, folder: Path):
        self.engine, self.instance, self.gateway = engine, instance, gateway
        self.path = regions_file(folder, gateway.base_url)
        self.regions: Regions = load_regions(self.path, sms_hour=5)
        self.job = build_sms_job(sms_partitions(self.regions))
        self.schedules = sms_schedules(self.job, self.regions)
        self.resources = {
            "database": IskaDatabase(url=database_url),
            "sms_gateway": SmsGateway(
                urls=refused_url(), token=GATEWAY_TOKEN, concurrency=8, backoff_seconds=0.01
            ),
            "sms_outbox": SmsOutbox(public_url=refused_url(), regions_file=str(self.path), latest_hour=24),
        }
        self.runs: list[tuple[datetime, str]] = []  # (the clock, the partition key run)
        self.repository = dg.Definitions(
            jobs=[self.job], schedules=self.schedules, resources=self.resources
        ).get_repository_def()

    def hour(self, now: datetime) -> None:
        """Billing (hourly), then every schedule whose tick falls on this hour."""
        with BillingClient(f"{self.gateway.base_url}/billing", GATEWAY_TOKEN) as client:
            bill_due(self.engine, client, BillingRules(regions=self.regions), now=lambda: now)
        for schedule in self.schedules:
            if now in ticks(schedule, now - timedelta(minutes=1), now):
                context = dg.build_schedule_context(
                    scheduled_execution_time=now, repository_def=self.repository
                )
                for request in schedule.evaluate_tick(context).run_requests or []:
                    self.run(now, request.partition_key)

    def run(self, now: datetime, partition_key: str) -> None:
        result = self.job.execute_in_process(
            partition_key=partition_key, resources=self.resources, instance=self.instance
        )
        assert result.success
        self.runs.append((now, partition_key))

    def messages(self) -> dict[str, list[tuple[date, str | None, str]]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    sms_messages.c.msisdn,
                    sms_messages.c.send_date,
                    sms_messages.c.region,
                    sms_messages.c.gateway,
                )
            ).all()
        found: dict[str, list] = {}
        for row in rows:
            found.setdefault(row.msisdn, []).append((row.send_date, row.region, row.gateway))
        return found

    def last_billed(self, msisdn: str) -> date | None:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(subscriptions.c.last_billing_date).where(subscriptions.c.msisdn == msisdn)
            ).scalar_one()


def ticks(schedule: dg.ScheduleDefinition, after: datetime, until: datetime) -> list[datetime]:
    found = []
    for tick in cron_string_iterator(after.timestamp(), schedule.cron_schedule, schedule.execution_timezone):
        if tick.timestamp() > until.timestamp():
            return found
        found.append(tick.astimezone(UTC))
    return found


@pytest.fixture
def world(database_url, engine, instance, gateway, tmp_path) -> tuple[TwoRegions, date]:
    """Everyone paid through the day before yesterday in Accra; D is yesterday in Accra."""
    day = today() - timedelta(days=1)
    add_forecast(engine, 1, "0.1", "0.2")
    for msisdn in GH:
        add_subscriber(engine, msisdn, 1, day=day - timedelta(days=2), region="GH")
    for msisdn in NG:
        add_subscriber(engine, msisdn, 1, day=day - timedelta(days=2), region="NG")
    return TwoRegions(database_url, engine, instance, gateway, tmp_path), day


def midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def test_each_region_is_messaged_once_at_its_own_hour_on_its_own_date(world):
    two, day = world
    for hour in range(-3, 3):  # 21:00 UTC the day before D to 02:00 UTC on D
        now = midnight_utc(day) + timedelta(hours=hour)
        two.hour(now)
        if hour == -1:  # 23:00 UTC: midnight in Lagos (D), still D - 1 in Accra
            sent = two.messages()
            assert sorted(sent) == NG
            assert {tuple(m[:2]) for ms in sent.values() for m in ms} == {(day, "NG")}
    assert two.runs == [
        (midnight_utc(day) - timedelta(hours=1), f"{day.isoformat()}|NG"),
        (midnight_utc(day), f"{day.isoformat()}|GH"),
    ]
    sent = two.messages()
    assert sorted(sent) == sorted(GH + NG)
    assert all(len(ms) == 1 for ms in sent.values())
    assert {sent[m][0][:2] for m in GH} == {(day, "GH")}
    assert {sent[m][0][:2] for m in NG} == {(day, "NG")}


def test_each_region_sends_only_through_its_gateways_and_each_within_its_cap(world):
    two, day = world
    for hour in range(-2, 1):
        two.hour(midnight_utc(day) + timedelta(hours=hour))
    sent = two.messages()
    base = two.gateway.base_url
    assert {sent[m][0][2] for m in GH} == {f"{base}/sms/gh1", f"{base}/sms/gh2"}
    assert {sent[m][0][2] for m in NG} == {f"{base}/sms/ng"}
    arrivals = two.gateway.arrivals(since=0)
    assert len(arrivals["sms/gh1"]) + len(arrivals["sms/gh2"]) == len(GH)
    assert len(arrivals["sms/ng"]) == len(NG)
    assert max(most_in_any_second(arrivals[f"sms/{name}"]) for name in ("gh1", "gh2")) <= GH_CAP
    assert most_in_any_second(arrivals["sms/ng"]) <= NG_CAP


def test_each_region_is_billed_on_its_own_local_day(world):
    two, day = world
    two.hour(midnight_utc(day) - timedelta(hours=2))  # 22:00 UTC: D - 1 in both
    assert {two.last_billed(m) for m in GH + NG} == {day - timedelta(days=1)}
    two.hour(midnight_utc(day) - timedelta(hours=1))  # 23:00 UTC: D in Lagos only
    assert {two.last_billed(m) for m in NG} == {day}
    assert {two.last_billed(m) for m in GH} == {day - timedelta(days=1)}
    two.hour(midnight_utc(day))  # 00:00 UTC: D in Accra too
    assert {two.last_billed(m) for m in GH} == {day}
    with two.engine.connect() as connection:
        periods = connection.execute(
            sa.select(
                billing_attempts.c.msisdn, billing_attempts.c.period_start, billing_attempts.c.attempted_at
            )
        ).all()
    ng_for_day = {
        p.attempted_at.replace(tzinfo=UTC) for p in periods if p.msisdn in NG and p.period_start == day
    }
    assert ng_for_day == {midnight_utc(day) - timedelta(hours=1)}


def test_rerunning_one_regions_day_touches_no_other_region(world):
    two, day = world
    for hour in range(-2, 1):
        two.hour(midnight_utc(day) + timedelta(hours=hour))
    with two.engine.connect() as connection:
        before = connection.execute(sa.select(sms_messages).order_by(sms_messages.c.msgid)).all()
    two.run(midnight_utc(day), f"{day.isoformat()}|NG")
    with two.engine.connect() as connection:
        after = connection.execute(sa.select(sms_messages).order_by(sms_messages.c.msgid)).all()
    assert after == before
