"""Keeps the health assets current without anyone launching anything (SPEC §16).

Every few minutes the figures of today and the last days are counted again; a day whose
figures changed (a delivery report arrived, a file was taken, a charge answered) is reported as
a new materialization of its partition, and today's verdicts as check evaluations. No run is
started: the sensor reports the events itself, so the runs list stays for real work.
"""

import hashlib
import json

import dagster as dg

from iska_pipelines.defs.health.events import BY_REGION, REPORTS, SMS_DELIVERIES, DayHealth, day_health
from iska_pipelines.defs.health.resources import HealthChecks
from iska_pipelines.defs.resources import SETTINGS, IskaDatabase
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.health.days import local_day, recent_days
from iska_pipelines.lib.regions.config import Regions
from iska_pipelines.lib.sms.delivery import EXPIRY_HOURS

REFRESH_SECONDS = 120
DAYS = EXPIRY_HOURS // 24 + 1  # a message's report can come until it expires after 72 h
SKIPS = "skipped_"


def _digest(value: object) -> str:
    if isinstance(value, dict):  # metadata values (file_intake's markdown) by their text
        value = {
            k: v if isinstance(v, (int, float, str)) else str(getattr(v, "value", v))
            for k, v in value.items()
        }
    plain = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(plain.encode()).hexdigest()[:16]


def _with_earlier_skips(instance: dg.DagsterInstance, health: DayHealth) -> DayHealth:
    """A past day's skips were counted while it was today; keep them on its new figures."""
    if health.asset != SMS_DELIVERIES or any(
        k.startswith(SKIPS) and k != "skipped_too_late" for k in health.figures
    ):
        return health
    found = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(health.asset), asset_partitions=[health.partition]),
        limit=1,
    ).records
    if not found:
        return health
    materialization = found[0].asset_materialization
    assert materialization is not None, "a materialization record holds one"
    earlier = materialization.metadata
    kept = {k: v.value for k, v in earlier.items() if k.startswith(SKIPS) and k not in health.figures}
    return DayHealth(health.asset, health.day, {**health.figures, **kept}, health.verdicts, health.region_key)


def _materialised_by_a_run(instance: dg.DagsterInstance, asset: str) -> int | None:
    """The storage id of the asset's newest materialization when a run wrote it (a work run
    reporting its day, or Materialize in the UI), else None. Checks are shown for the newest
    materialization only, so they are evaluated again after such a one."""
    found = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records
    return found[0].storage_id if found and found[0].run_id else None


def _places(asset: str, regions: Regions, timezone: str) -> list[tuple[str | None, str]]:
    """Whose days an asset counts, with their time zone: each region's for sms_deliveries and
    billing_outcomes when there are several (SPEC §15), else everyone's in ISKA_TIMEZONE."""
    if asset in BY_REGION and regions.several:
        return [(region.code, region.timezone) for region in regions.all]
    return [(None, timezone)]


@dg.sensor(
    minimum_interval_seconds=REFRESH_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Counts today's and the last days' SMS, billing and files again and reports "
    "what changed to the health assets and their checks.",
)
def health_refresh(
    context: dg.SensorEvaluationContext, database: IskaDatabase, health_checks: HealthChecks
) -> dg.SensorResult:
    rules = health_checks.rules()
    now = utcnow()
    today = local_day(now, rules.timezone)
    seen: dict[str, object] = json.loads(context.cursor) if context.cursor else {}
    kept: dict[str, object] = {}
    materialised: list[dg.AssetMaterialization] = []
    checks: list[dg.AssetCheckEvaluation] = []
    regions = SETTINGS.regions()
    for asset in REPORTS:
        reported = False
        todays: list[DayHealth] = []
        for code, timezone in _places(asset, regions, rules.timezone):
            local_today = local_day(now, timezone)
            for day in recent_days(local_today, DAYS):
                health = day_health(database.engine(), asset, day, rules, now, regions, code)
                key = f"{asset}/{day}" + (f"/{code}" if code else "")
                kept[key] = _digest(health.figures)
                if seen.get(key) != kept[key]:
                    materialised.append(_with_earlier_skips(context.instance, health).materialization())
                    reported = True
                if day == local_today:
                    todays.append(health)
        by_run = _materialised_by_a_run(context.instance, asset)
        kept[f"{asset}/checked_after"] = by_run
        verdicts = _digest([(v.name, v.passed, v.description) for health in todays for v in health.verdicts])
        kept[f"{asset}/verdicts"] = verdicts
        if (
            reported
            or by_run != seen.get(f"{asset}/checked_after")
            or verdicts != seen.get(f"{asset}/verdicts")
        ):
            checks.extend(check for health in todays for check in health.check_evaluations())
    events: list[dg.AssetMaterialization | dg.AssetCheckEvaluation] = [
        *materialised,
        *checks,
    ]  # checks last: they judge the newest materialization
    context.log.info(
        f"{len(materialised)} days reported again, {len(checks)} check verdicts "
        f"(today {today} and the {DAYS - 1} days before)"
    )
    return dg.SensorResult(
        asset_events=events, cursor=json.dumps(kept), skip_reason=None if events else "no figure changed"
    )
