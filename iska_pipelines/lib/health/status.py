"""The service at a glance (SPEC §16): today's SMS and billing, the grid, the last files and
the checks' verdicts, in one read. `/status`, `/` and `iska status` all show this."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from iska_pipelines.lib.health import billing, deliveries, intake
from iska_pipelines.lib.health.checks import (
    HealthRules,
    Verdict,
    delivery_rate,
    grid_fresh,
    next_sms_time,
    no_refused_files,
    no_transport_errors,
)
from iska_pipelines.lib.health.days import local_day
from iska_pipelines.lib.health.grid import grid_age
from iska_pipelines.lib.regions.config import Regions


def verdict_dict(verdict: Verdict) -> dict[str, Any]:
    return {**asdict(verdict), "severity": str(verdict.severity)}


def region_rows(connection: sa.Connection, now: datetime, regions: Regions) -> list[dict[str, Any]]:
    """Each region's SMS on its own local today (SPEC §15-16): planned, sent, delivered, failed."""
    rows = []
    for region in regions.all:
        day = local_day(now, region.timezone)
        sms = deliveries.day_figures(connection, day, regions.in_region("region", region.code))
        failed = sms["failed"] + sms["undelivered"] + sms["rejected"] + sms["expired"]
        rows.append(
            {
                "region": region.code,
                "timezone": region.timezone,
                "day": day.isoformat(),
                "planned": sms["planned"],
                "sent": sms["sent"],
                "delivered": sms["delivered"],
                "failed": failed,
            }
        )
    return rows


def snapshot(
    engine: sa.Engine, now: datetime, rules: HealthRules, files: int = 10, regions: Regions | None = None
) -> dict[str, Any]:
    """`regions`: with several, `regions` lists each one's SMS today (its own local day)."""
    today = local_day(now, rules.timezone)
    with engine.connect() as connection:
        sms = deliveries.day_figures(connection, today)
        per_region = region_rows(connection, now, regions) if regions and regions.several else []
        still_due = billing.due_untried(connection, today, rules.timezone)
        charges = billing.day_figures(connection, today, rules.timezone, still_due)
        taken = intake.day_figures(connection, today, rules.timezone)
        grid = grid_age(connection)
        last = intake.recent_files(connection, files)
        by_gateway = deliveries.gateway_figures(connection, today)
    age = grid.age_hours(now)
    return {
        "day": today.isoformat(),
        "timezone": rules.timezone,
        "generated_at": now.isoformat(timespec="seconds"),
        "sms": sms,
        "billing": charges,
        "files_today": taken,
        "grid": {
            "points": grid.points,
            "issued_at": grid.issued.isoformat() if grid.issued else None,
            "age_hours": age,
            "max_age_hours": rules.forecast_max_age_hours,
        },
        "checks": [
            verdict_dict(v)
            for v in (
                delivery_rate(sms, rules),
                grid_fresh(grid, next_sms_time(now, rules), rules),
                no_transport_errors(charges),
                no_refused_files(taken),
            )
        ],
        "last_files": [line.as_dict() for line in last],
        "regions": per_region,
        "gateways": [asdict(line) for line in by_gateway],
    }
