"""The runs that do the work report into the health assets (SPEC §16): a billing run writes
the day's `billing_outcomes`, an SMS run the day's `sms_deliveries`, without anyone
materialising them."""

from __future__ import annotations

import dagster as dg

from iska_pipelines_tests.sms_runs import run_sms_day
from iska_pipelines_tests.sms_world import add_forecast, add_subscriber, today
from iska_pipelines_tests.test_defs_billing import Billing


def latest(instance: dg.DagsterInstance, asset: str) -> tuple[str, dict]:
    [record] = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records
    return record.partition_key, {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_a_billing_run_reports_the_days_outcomes(database_url, simulator):
    billing = Billing(database_url, simulator)
    billing.subscribe({"233030000001": 11, "233030000002": 21})
    assert billing.run().success
    day, figures = latest(billing.instance, "billing_outcomes")
    assert day == today().isoformat()
    assert (figures["charged"], figures["revenue_daily_plans"], figures["revenue_weekly_plans"]) == (2, 1, 1)


def test_an_sms_run_reports_the_days_deliveries(engine, database_url, instance, simulator):
    day = today()
    add_forecast(engine, 1, "1", "2")
    for n in range(3):
        add_subscriber(engine, f"23303000010{n}", 1, day=day)
    assert run_sms_day(database_url, instance, day, [simulator.sms_url("a")]).success
    partition, figures = latest(instance, "sms_deliveries")
    assert partition == day.isoformat()
    assert (figures["planned"], figures["sent"]) == (3, 3)
