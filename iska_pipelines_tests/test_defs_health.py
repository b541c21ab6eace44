"""The health assets in Dagster (SPEC §16): a day's partition carries the figures, the checks
judge them with their severities, and the refresh sensor reports a day again when a delivery
report changed its figures, without a run."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from iska_pipelines.defs.health.assets import billing_outcomes, file_intake, sms_deliveries
from iska_pipelines.defs.health.resources import HealthChecks
from iska_pipelines.defs.health.sensors import health_refresh
from iska_pipelines.defs.resources import IskaDatabase
from iska_pipelines.lib.db.schema import sms_messages
from iska_pipelines_tests.health_world import REFUSAL, seed_day
from iska_pipelines_tests.sms_world import TIMEZONE


def resources(database_url: str) -> dict:
    return {
        "database": IskaDatabase(url=database_url),
        "health_checks": HealthChecks(timezone=TIMEZONE, min_delivery_rate=0.9),
    }


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str]]:
    return {e.check_name: (e.passed, e.severity.value) for e in result.get_asset_check_evaluations()}


def test_a_days_partition_shows_its_figures_and_the_checks_verdicts(engine, database_url, instance):
    seeded = seed_day(engine)
    result = dg.materialize(
        [sms_deliveries, billing_outcomes, file_intake],
        instance=instance,
        partition_key=seeded.day.isoformat(),
        resources=resources(database_url),
    )
    figures = {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }
    assert figures["sms_deliveries"]["delivered"] == 13 and figures["sms_deliveries"]["sent"] == 19
    assert figures["billing_outcomes"]["transport_errors"] == 1
    assert figures["file_intake"]["files_refused"] == 1
    assert (
        REFUSAL in figures["file_intake"]["refused_files"]
        and "notes.csv" in figures["file_intake"]["refused_files"]
    )
    assert checks_of(result) == {
        "delivery_rate_at_least_minimum": (False, "ERROR"),
        "grid_fresh_at_sms_hour": (True, "ERROR"),
        "no_billing_transport_errors": (False, "ERROR"),
        "no_refused_files": (False, "WARN"),
    }


def refresh(instance, database_url: str, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources(database_url))
    return health_refresh(context)


def delivered_today(result: dg.SensorResult, day: str) -> list[int]:
    return [
        e.metadata["delivered"].value
        for e in result.asset_events
        if isinstance(e, dg.AssetMaterialization)
        and e.asset_key.to_user_string() == "sms_deliveries"
        and e.partition == day
    ]


def test_the_refresh_reports_a_day_again_when_a_delivery_report_arrived(engine, database_url, instance):
    seeded = seed_day(engine)
    day = seeded.day.isoformat()
    first = refresh(instance, database_url, None)
    dg.serialize_value(first.asset_events)  # as the daemon stores them
    assert delivered_today(first, day) == [13]
    assert {e.check_name for e in first.asset_events if isinstance(e, dg.AssetCheckEvaluation)} == {
        "delivery_rate_at_least_minimum",
        "grid_fresh_at_sms_hour",
        "no_billing_transport_errors",
        "no_refused_files",
    }
    assert refresh(instance, database_url, first.cursor).asset_events == []  # nothing changed

    with engine.begin() as connection:  # the two awaited reports come in: delivered
        connection.execute(
            sa.update(sms_messages).where(sms_messages.c.status == "accepted").values(status="delivered")
        )
    later = refresh(instance, database_url, first.cursor)
    assert delivered_today(later, day) == [15]
    assert [
        e.asset_key.to_user_string() for e in later.asset_events if isinstance(e, dg.AssetMaterialization)
    ] == ["sms_deliveries"]


def test_the_checks_are_judged_again_after_a_run_reported_the_day(engine, database_url, instance):
    seeded = seed_day(engine)
    first = refresh(instance, database_url, None)
    dg.materialize(
        [sms_deliveries],
        instance=instance,
        partition_key=seeded.day.isoformat(),
        resources=resources(database_url),
    )  # as sms_job's report does
    later = refresh(instance, database_url, first.cursor)
    assert [e.check_name for e in later.asset_events if isinstance(e, dg.AssetCheckEvaluation)] == [
        "delivery_rate_at_least_minimum",
        "grid_fresh_at_sms_hour",
    ]
    assert not any(isinstance(e, dg.AssetMaterialization) for e in later.asset_events)
