"""A day's health as Dagster events: the same figures and verdicts whoever reports them (the
asset itself, the refresh sensor, or the runs that did the work)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from iska_pipelines.defs.resources import SETTINGS
from iska_pipelines.defs.sms.partitions import region_day_key
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.health import billing, deliveries, intake
from iska_pipelines.lib.health.checks import (
    HealthRules,
    Severity,
    Verdict,
    delivery_rate,
    grid_fresh,
    next_sms_time,
    no_refused_files,
    no_transport_errors,
)
from iska_pipelines.lib.health.days import at_hour, local_day
from iska_pipelines.lib.health.grid import grid_age
from iska_pipelines.lib.regions.config import Regions
from iska_pipelines.lib.sms.outbox import EVERYONE

SMS_DELIVERIES = "sms_deliveries"
BILLING_OUTCOMES = "billing_outcomes"
FILE_INTAKE = "file_intake"
REFUSED_LISTED = 50  # refused files named on a day's file_intake (the count has them all)
SEVERITY = {Severity.WARN: dg.AssetCheckSeverity.WARN, Severity.ERROR: dg.AssetCheckSeverity.ERROR}


@dataclass(frozen=True)
class DayHealth:
    asset: str
    day: date
    figures: Mapping[str, Any]  # numbers (plotted), and file_intake's list of refused files
    verdicts: list[Verdict]
    region_key: str | None = None  # with several regions, sms_deliveries' day and region key

    @property
    def partition(self) -> str:
        return self.region_key or self.day.isoformat()

    def materialization(self) -> dg.AssetMaterialization:
        return dg.AssetMaterialization(
            asset_key=self.asset, partition=self.partition, metadata=dict(self.figures)
        )

    def check_results(self) -> list[dg.AssetCheckResult]:
        return [
            dg.AssetCheckResult(
                check_name=v.name,
                passed=v.passed,
                severity=SEVERITY[v.severity],
                description=v.description,
                metadata=v.metadata,
            )
            for v in self.verdicts
        ]

    def check_evaluations(self) -> list[dg.AssetCheckEvaluation]:
        return [
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(self.asset),
                check_name=v.name,
                passed=v.passed,
                severity=SEVERITY[v.severity],
                description=v.description,
                metadata=v.metadata,
                partition=self.region_key,  # one region's today; None: the newest materialization's
            )
            for v in self.verdicts
        ]


@dataclass(frozen=True)
class Place:
    """Whose day the figures count: everyone's, or with several regions one region's, on its
    own clock and SMS hour (SPEC §15)."""

    rules: HealthRules
    messages: str = EVERYONE  # an SQL condition on sms_messages.region
    people: str = EVERYONE  # an SQL condition on the subscription's region, `s.region`
    region_key: str | None = None  # the day and region's partition key


def place_of(day: date, rules: HealthRules, regions: Regions | None, code: str | None) -> Place:
    if regions is None or not regions.several:
        return Place(rules)
    region = regions.get(code)
    return Place(
        replace(rules, timezone=region.timezone, sms_hour=region.sms_hour),
        regions.in_region("region", region.code),
        regions.in_region("s.region", region.code),
        region_day_key(day, region.code, regions),
    )


def sms_health(
    connection: sa.Connection,
    day: date,
    rules: HealthRules,
    now: datetime,
    regions: Regions | None = None,
    code: str | None = None,
) -> DayHealth:
    """Day D's messages; with several `regions`, region `code`'s only, on its own clock."""
    place = place_of(day, rules, regions, code)
    rules, messages, people, region_key = place.rules, place.messages, place.people, place.region_key
    figures = deliveries.day_figures(connection, day, messages)
    if day >= local_day(now, rules.timezone):  # who is skipped is only meaningful for today on
        fresh_after = now - timedelta(hours=rules.forecast_max_age_hours)
        figures.update(deliveries.skips_now(connection, day, fresh_after, people))
    today = local_day(now, rules.timezone)
    sms_time = next_sms_time(now, rules) if day == today else at_hour(day, rules.sms_hour, rules.timezone)
    verdicts = [delivery_rate(figures, rules), grid_fresh(grid_age(connection), sms_time, rules)]
    return DayHealth(SMS_DELIVERIES, day, figures, verdicts, region_key)


def billing_health(
    connection: sa.Connection,
    day: date,
    rules: HealthRules,
    now: datetime,
    regions: Regions | None = None,
    code: str | None = None,
) -> DayHealth:
    """Day D's charges; with several `regions`, those of region `code`'s subscribers on its
    local day, the day they are billed on."""
    place = place_of(day, rules, regions, code)
    timezone = place.rules.timezone
    today = day == local_day(now, timezone)
    still_due = billing.due_untried(connection, day, timezone, place.people) if today else None
    figures = billing.day_figures(connection, day, timezone, still_due, place.people)
    return DayHealth(BILLING_OUTCOMES, day, figures, [no_transport_errors(figures)], place.region_key)


def intake_health(
    connection: sa.Connection,
    day: date,
    rules: HealthRules,
    _now: datetime,
    _regions: Regions | None = None,
    _code: str | None = None,
) -> DayHealth:
    """Day D's files, in ISKA_TIMEZONE: a file belongs to no region (one file can add
    subscribers of several), so its day is the deployment's."""
    figures: dict[str, Any] = intake.day_figures(connection, day, rules.timezone)
    refused = intake.recent_files(
        connection, REFUSED_LISTED, refused_only=True, day=day, timezone=rules.timezone
    )
    if refused:  # the reasons themselves, on the asset's page without opening anything
        figures["refused_files"] = dg.MetadataValue.md(
            "\n".join(f"- `{line.partition_key}`: {line.detail}" for line in refused)
        )
    return DayHealth(FILE_INTAKE, day, figures, [no_refused_files(figures)])


Report = Callable[[sa.Connection, date, HealthRules, datetime, Regions | None, str | None], DayHealth]
REPORTS: dict[str, Report] = {
    SMS_DELIVERIES: sms_health,
    BILLING_OUTCOMES: billing_health,
    FILE_INTAKE: intake_health,
}
BY_REGION = (SMS_DELIVERIES, BILLING_OUTCOMES)  # by day and region when there are several


def day_health(
    engine: sa.Engine,
    asset: str,
    day: date,
    rules: HealthRules,
    now: datetime,
    regions: Regions | None = None,
    code: str | None = None,
) -> DayHealth:
    """`regions`, `code`: one region's day of an asset in BY_REGION, when there are several."""
    with engine.connect() as connection:
        return REPORTS[asset](connection, day, rules, now, regions, code)


def report_day(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    engine: sa.Engine,
    asset: str,
    day: date,
    timezone: str,
    now: datetime,
    regions: Regions | None = None,
    code: str | None = None,
) -> None:
    """From a run that did the work: the day's figures as a materialization of `asset` (of
    region `code`'s day for an asset in BY_REGION with several regions). The checks follow with
    the refresh sensor, which knows the thresholds.

    The work is done and committed when this runs, so a failure here is logged, never the
    run's failure: the refresh sensor reports the same day within minutes."""
    try:
        health = day_health(engine, asset, day, HealthRules(timezone=timezone), now, regions, code)
    except Exception as error:  # noqa: BLE001 - see above: reporting must not fail the work
        context.log.warning(
            f"could not count {asset} for {day} ({type(error).__name__}: {error}); "
            "the health_refresh sensor will report it"
        )
        return
    context.log_event(health.materialization())


def report_intake(context: dg.AssetExecutionContext, engine: sa.Engine, timezone: str) -> None:
    """From an ingest run: today's file_intake figures, this file included."""
    now = utcnow()
    report_day(context, engine, FILE_INTAKE, local_day(now, timezone), timezone, now)


def intake_observation(name: str, outcome: str, detail: str, moved_to: Path) -> dg.AssetObservation:
    """A file set aside by the sensor (duplicate, unknown name), on file_intake's day."""
    return dg.AssetObservation(
        asset_key=FILE_INTAKE,
        partition=local_day(utcnow(), SETTINGS.timezone).isoformat(),
        metadata={
            "file": name,
            "outcome": str(outcome),
            "detail": detail,
            "moved_to": dg.MetadataValue.path(str(moved_to)),
        },
    )
