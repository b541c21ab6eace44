"""Regions (SPEC §15) against a real database (SQLite and PostgreSQL): billing due on each
region's local day, the region a subscriber gets from a file or the API, and the day's plan
warning of a send window it cannot keep before any message goes out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from iska_pipelines.defs.health.assets import sms_deliveries
from iska_pipelines.defs.health.events import billing_health
from iska_pipelines.defs.health.resources import HealthChecks
from iska_pipelines.defs.health.send_window import send_window_fits
from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.defs.sms.jobs import CATCH_UP_TAG, build_sms_job
from iska_pipelines.defs.sms.partitions import region_day_key, sms_partitions
from iska_pipelines.defs.sms.resources import SmsGateway, SmsOutbox
from iska_pipelines.defs.sms.sensors import sms_catch_up
from iska_pipelines.lib.billing.due import select_due
from iska_pipelines.lib.db.schema import billing_attempts, subscriptions
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.health.checks import HealthRules
from iska_pipelines.lib.inbox.ingest import IngestRules
from iska_pipelines.lib.regions.config import load_regions
from iska_pipelines.lib.settings import DEFAULTS
from iska_pipelines.lib.sms.outbox import plan_outbox
from iska_pipelines.lib.subscriptions.csv import read_subscription_file
from iska_pipelines.lib.subscriptions.ingest import apply_subscriptions
from iska_pipelines.lib.vocabulary import FileKind
from iska_pipelines_tests.api_server import api_settings
from iska_pipelines_tests.sms_runs import refused_url
from iska_pipelines_tests.sms_world import add_forecast, add_subscriber, today

REGIONS = """
[GH]
timezone = "Africa/Accra"
sms_hour = 5
language = "en"
prefixes = ["233"]
sms_gateways = [{{ url = "{url}", max_tps = {tps} }}]

[NG]
timezone = "Africa/Lagos"
sms_hour = {ng_hour}
language = "ha"
prefixes = ["234"]
sms_gateways = [{{ url = "{url}", max_tps = {tps} }}]
"""


def regions_file(
    folder: Path, url: str = "http://127.0.0.1:9/sms", tps: float = 50, ng_hour: int = 5
) -> Path:
    path = folder / "regions.toml"
    path.write_text(REGIONS.format(url=url, tps=tps, ng_hour=ng_hour), encoding="utf-8")
    return path


# --- billing on each region's local day ---------------------------------------------------------------


def test_at_2330_utc_a_subscriber_due_tomorrow_in_accra_is_due_in_lagos_only(engine, tmp_path):
    regions = load_regions(regions_file(tmp_path), sms_hour=5)
    tomorrow = date(2026, 3, 11)
    for msisdn, region in (("233010000001", "GH"), ("234010000001", "NG"), ("233010000002", None)):
        add_subscriber(engine, msisdn, None, day=tomorrow - timedelta(days=1), region=region)
    now = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)  # 2026-03-10 in Accra, 2026-03-11 in Lagos
    with engine.connect() as connection:

        def due(code: str, day: date) -> list[str]:
            where = regions.in_region("s.region", code)
            return [c.msisdn for c in select_due(connection, day, now, 60, where)]

        assert due("NG", date(2026, 3, 11)) == ["234010000001"]
        assert due("GH", date(2026, 3, 10)) == []
        assert due("GH", date(2026, 3, 11)) == ["233010000001", "233010000002"]  # empty: the default


# --- a subscriber's region from files ----------------------------------------------------------


def apply(engine: sa.Engine, tmp_path: Path, text: str, rules: IngestRules) -> None:
    path = tmp_path / "additions.csv"
    path.write_text(text, encoding="utf-8")
    parsed = read_subscription_file(path, FileKind.ADDITIONS, "Africa/Accra", regions=rules.regions)
    assert parsed.refused.height == 0
    with engine.begin() as connection:
        apply_subscriptions(connection, parsed, FileKind.ADDITIONS, rules)


def stored_regions(engine: sa.Engine) -> dict[str, str | None]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(subscriptions.c.msisdn, subscriptions.c.region)).all()
    return dict(sorted((row.msisdn, row.region) for row in rows))


def test_an_addition_takes_the_region_column_else_the_prefix_and_a_later_one_without_it_keeps_it(
    engine, tmp_path
):
    rules = IngestRules(regions=load_regions(regions_file(tmp_path), sms_hour=5))
    apply(
        engine,
        tmp_path,
        "msisdn,ts,lat,lon,service_id,region\n"
        "233010000001,2026-01-05 08:00:00,5.6,-0.2,11,NG\n"
        "234010000002,2026-01-05 08:00:00,5.6,-0.2,11,\n"
        "22370000003,2026-01-05 08:00:00,5.6,-0.2,11,\n",
        rules,
    )
    assert stored_regions(engine) == {"22370000003": "GH", "233010000001": "NG", "234010000002": "NG"}
    apply(
        engine,
        tmp_path,
        "msisdn,ts,lat,lon,service_id\n233010000001,2026-01-06 08:00:00,5.6,-0.2,21\n",
        rules,
    )
    assert stored_regions(engine)["233010000001"] == "NG"


# --- the API's region field -----------------------------------------------------------------------

SUBSCRIPTIONS = "/subscriptions/api/v1/subscriptions/"


@pytest.fixture
def regional_api(database_url, data_dir, tmp_path, start_api):
    return start_api(api_settings(database_url, data_dir, ISKA_REGIONS_FILE=str(regions_file(tmp_path))))


def subscribe(api, msisdn: str, **extra) -> requests.Response:
    body = {"msisdn": msisdn, "service_id": 11, "lat": 5.6, "lon": -0.2, **extra}
    return requests.post(api.base_url + SUBSCRIPTIONS, json=body, timeout=30)


def test_the_api_region_is_as_given_else_the_prefixs_and_a_patch_changes_it(regional_api):
    assert subscribe(regional_api, "234010000001").json()["region"] == "NG"
    assert subscribe(regional_api, "22370000002").json()["region"] == "GH"
    chosen = subscribe(regional_api, "233010000003", region=" ng ").json()
    assert chosen["region"] == "NG"
    patched = requests.patch(
        f"{regional_api.base_url}{SUBSCRIPTIONS}{chosen['id']}/", json={"region": "GH"}, timeout=30
    )
    assert patched.status_code == 200 and patched.json()["region"] == "GH"


def test_an_api_region_no_region_has_is_422_invalid_region(regional_api):
    answer = subscribe(regional_api, "233010000001", region="ML")
    assert answer.status_code == 422
    assert [(e["field"], e["reason"]) for e in answer.json()["errors"]] == [("region", "invalid_region")]


# --- the plan's send window -------------------------------------------------------------------------


def run_region_day(
    database_url, instance, path: Path, day: date, region: str, **outbox
) -> dg.ExecuteInProcessResult:
    regions = load_regions(path, sms_hour=5)
    job = build_sms_job(sms_partitions(regions))
    return job.execute_in_process(
        partition_key=region_day_key(day, region, regions),
        instance=instance,
        raise_on_error=False,
        resources={
            "database": IskaDatabase(url=database_url),
            "sms_gateway": SmsGateway(urls=refused_url(), token="t", max_tries=1, backoff_seconds=0.01),
            "sms_outbox": SmsOutbox(
                public_url=refused_url(), regions_file=str(path), latest_hour=24, **outbox
            ),
        },
    )


def window_checks(result: dg.ExecuteInProcessResult) -> list[tuple[str | None, dg.AssetCheckEvaluation]]:
    return [
        (event.step_key, event.event_specific_data)
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]


def test_a_plan_that_cannot_finish_in_the_send_window_warns_before_a_message_is_sent(
    engine, database_url, instance, tmp_path
):
    sms_time = (datetime.now(ZoneInfo("Africa/Lagos")) - timedelta(hours=2)).replace(minute=0)
    day = sms_time.date()  # its SMS hour two hours ago: the window closed an hour ago
    add_forecast(engine, 1, "0.1", "0.2")
    for n in range(6):
        add_subscriber(engine, f"2340100000{n:02d}", 1, day=day, region="NG")
    path = regions_file(tmp_path, url=refused_url("/sms"), ng_hour=sms_time.hour)
    result = run_region_day(database_url, instance, path, day, "NG", send_window_minutes=60)
    [(step, check)] = window_checks(result)
    assert step == "plan_sms"  # before any sender starts
    assert (check.check_name, check.passed) == ("send_window_fits", False)
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert "6 messages" in check.description and "region NG" in check.description
    assert "ISKA_SEND_WINDOW_MINUTES=60" in check.description


def test_a_plan_within_the_send_window_passes_the_check(engine, database_url, instance, tmp_path):
    day = today() + timedelta(days=1)  # planned before its SMS hour
    add_forecast(engine, 1, "0.1", "0.2")
    add_subscriber(engine, "234010000001", 1, day=day, region="NG")
    path = regions_file(tmp_path, url=refused_url("/sms"), tps=50)
    result = run_region_day(database_url, instance, path, day, "NG")
    [(_, check)] = window_checks(result)
    assert check.passed and "1 messages" in check.description


# --- the catch-up, per region ------------------------------------------------------------------


def test_the_catch_up_asks_for_each_regions_day_with_pending_messages(
    engine, database_url, instance, tmp_path
):
    path = regions_file(tmp_path)
    regions = load_regions(path, sms_hour=5)
    day = datetime.now(ZoneInfo("Africa/Lagos")).date()
    add_forecast(engine, 1, "0.1", "0.2")
    add_subscriber(engine, "234010000001", 1, day=day, region="NG")
    add_subscriber(engine, "233010000001", 1, day=day - timedelta(days=1), region="GH")
    for code, planned in (("NG", day), ("GH", day - timedelta(days=1))):
        with engine.begin() as connection:  # planned, then the run died before sending
            plan_outbox(
                connection,
                planned,
                DEFAULTS.catalog(),
                30.0,
                region=regions.get(code),
                in_region=regions.in_region("s.region", code),
            )
    context = dg.build_sensor_context(
        instance=instance,
        resources={
            "database": IskaDatabase(url=database_url),
            "sms_outbox": SmsOutbox(regions_file=str(path), latest_hour=24),
        },
    )
    requests_ = sms_catch_up(context)
    asked = sorted((r.partition_key, r.tags[CATCH_UP_TAG], r.run_key) for r in requests_)
    yesterday = (day - timedelta(days=1)).isoformat()
    assert asked == [
        (f"{yesterday}|GH", "close", f"sms-close-{yesterday}-GH"),  # past its day's end in Accra
        (f"{day.isoformat()}|NG", "send", None),
    ]


# --- the status view, per region -------------------------------------------------------------


def test_the_status_view_shows_each_regions_sms_on_its_own_local_day(engine, regional_api):
    regions = load_regions(regions_file(Path(regional_api.settings.regions_file).parent), sms_hour=5)
    lagos = datetime.now(ZoneInfo("Africa/Lagos")).date()
    add_forecast(engine, 1, "0.1", "0.2")
    for n in range(3):
        add_subscriber(engine, f"23401000000{n}", 1, day=lagos, region="NG")
    with engine.begin() as connection:
        plan_outbox(
            connection, lagos, DEFAULTS.catalog(), 30.0, region=regions.get("NG"), in_region="s.region = 'NG'"
        )
    found = requests.get(regional_api.base_url + "/status", timeout=30).json()["regions"]
    assert [(r["region"], r["day"], r["planned"]) for r in found] == [
        ("GH", datetime.now(ZoneInfo("Africa/Accra")).date().isoformat(), 0),
        ("NG", lagos.isoformat(), 3),
    ]
    page = requests.get(regional_api.base_url + "/", timeout=30).text
    assert 'data-region="NG"' in page and 'data-region="GH"' in page


def test_the_send_window_check_can_be_evaluated_again_for_a_day(engine, database_url, instance):
    """From the UI (the asset's Checks tab): the day's planned messages against the region's
    pace; one region on uncapped SMS_URLS, as this process's settings are, always fits."""
    day = today()
    add_forecast(engine, 1, "0.1", "0.2")
    add_subscriber(engine, "233010000001", 1, day=day)
    with engine.begin() as connection:
        plan_outbox(connection, day, DEFAULTS.catalog(), 30.0)
    result = dg.materialize(
        [sms_deliveries, send_window_fits],
        instance=instance,
        partition_key=day.isoformat(),
        resources={"database": IskaDatabase(url=database_url), "health_checks": HealthChecks()},
    )
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "send_window_fits"]
    assert check.passed and "1 messages" in (check.description or "")


# --- the health assets by day and region -------------------------------------------------------------

REFRESH = """
import json
import dagster as dg
from iska_pipelines.definitions import defs
from iska_pipelines.defs.health.sensors import health_refresh
from iska_pipelines.defs.health.resources import HealthChecks
from iska_pipelines.defs.resources import IskaDatabase
import os
repository = defs().get_repository_def()
asset = repository.asset_graph.get(dg.AssetKey("sms_deliveries")).partitions_def
with dg.instance_for_test() as instance:
    context = dg.build_sensor_context(
        instance=instance,
        resources={"database": IskaDatabase(url=os.environ["ISKA_DATABASE_URL"]), "health_checks": HealthChecks()},
    )
    result = health_refresh(context)
    billing = repository.asset_graph.get(dg.AssetKey("billing_outcomes")).partitions_def
    print(json.dumps({
        "dimensions": [d.name for d in asset.partitions_defs],
        "sms": sorted(
            [e.partition, e.metadata["planned"].value]
            for e in result.asset_events
            if isinstance(e, dg.AssetMaterialization) and e.asset_key == dg.AssetKey("sms_deliveries")
        ),
        "billing_dimensions": [d.name for d in billing.partitions_defs],
        "billing": sorted(
            [e.partition, e.metadata["charged"].value, e.metadata["declined"].value]
            for e in result.asset_events
            if isinstance(e, dg.AssetMaterialization) and e.asset_key == dg.AssetKey("billing_outcomes")
        ),
    }))
"""


def refresh_with_regions(path: Path, database_url: str, folder: Path) -> dict:
    """The refresh sensor's events in a process whose settings name the regions file."""
    env = {
        **os.environ,
        "ISKA_REGIONS_FILE": str(path),
        "ISKA_DATABASE_URL": database_url,
        "ISKA_DATA_DIR": str(folder),
        "DAGSTER_HOME": str(folder),
    }
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", REFRESH], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_with_two_regions_sms_deliveries_counts_each_regions_day_on_its_own(engine, database_url, tmp_path):
    path = regions_file(tmp_path)
    regions = load_regions(path, sms_hour=5)
    lagos = datetime.now(ZoneInfo("Africa/Lagos")).date()
    add_forecast(engine, 1, "0.1", "0.2")
    for n in range(3):
        add_subscriber(engine, f"23401000000{n}", 1, day=lagos, region="NG")
    with engine.begin() as connection:
        plan_outbox(
            connection, lagos, DEFAULTS.catalog(), 30.0, region=regions.get("NG"), in_region="s.region = 'NG'"
        )
    env = {
        **os.environ,
        "ISKA_REGIONS_FILE": str(path),
        "ISKA_DATABASE_URL": database_url,
        "ISKA_DATA_DIR": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", REFRESH], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["dimensions"] == ["day", "region"]
    planned = dict(map(tuple, found["sms"]))
    assert planned[f"{lagos.isoformat()}|NG"] == 3
    accra = datetime.now(ZoneInfo("Africa/Accra")).date()
    assert planned[f"{accra.isoformat()}|GH"] == 0  # each region's own days, the last four
    assert len(planned) == 8


def charge(engine: sa.Engine, subscription_id: int, msisdn: str, outcome: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            billing_attempts.insert().values(
                subscription_id=subscription_id,
                msisdn=msisdn,
                plan="daily",
                period_start=today(),
                idempotency_key=f"key-{msisdn}",
                attempted_at=utcnow(),
                outcome=outcome,
                run_id="r",
            )
        )


def two_regions_billed(engine: sa.Engine) -> None:
    """Now: one Nigerian subscriber charged, one Ghanaian declined, one Ghanaian due untried."""
    charge(
        engine, add_subscriber(engine, "234010000001", 1, day=today(), region="NG"), "234010000001", "success"
    )
    charge(
        engine,
        add_subscriber(engine, "233010000001", 1, day=today(), region="GH"),
        "233010000001",
        "declined",
    )
    add_subscriber(engine, "233010000002", 1, day=today(), paid=False, region="GH")


def test_with_two_regions_billing_outcomes_counts_each_regions_subscribers_on_its_local_day(engine, tmp_path):
    regions = load_regions(regions_file(tmp_path), sms_hour=5)
    two_regions_billed(engine)
    now = utcnow()
    lagos, accra = (datetime.now(ZoneInfo(z)).date() for z in ("Africa/Lagos", "Africa/Accra"))
    with engine.connect() as connection:
        ng = billing_health(connection, lagos, HealthRules(), now, regions, "NG")
        gh = billing_health(connection, accra, HealthRules(), now, regions, "GH")
    assert ng.partition == f"{lagos.isoformat()}|NG" and gh.partition == f"{accra.isoformat()}|GH"
    assert {k: ng.figures[k] for k in ("due", "charged", "declined")} == {
        "due": 1,
        "charged": 1,
        "declined": 0,
    }
    assert {k: gh.figures[k] for k in ("due", "charged", "declined")} == {
        "due": 2,
        "charged": 0,
        "declined": 1,
    }


def test_with_two_regions_billing_outcomes_is_partitioned_and_refreshed_by_day_and_region(
    engine, database_url, tmp_path
):
    two_regions_billed(engine)

    found = refresh_with_regions(regions_file(tmp_path), database_url, tmp_path)

    assert found["billing_dimensions"] == ["day", "region"]
    billed = {partition: (charged, declined) for partition, charged, declined in found["billing"]}
    lagos, accra = (datetime.now(ZoneInfo(z)).date().isoformat() for z in ("Africa/Lagos", "Africa/Accra"))
    assert billed[f"{lagos}|NG"] == (1, 0) and billed[f"{accra}|GH"] == (0, 1)
    assert len(billed) == 8  # each region's last four days
