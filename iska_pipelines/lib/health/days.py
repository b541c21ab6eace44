"""Local days: the figures of a day are counted on the operator's calendar (ISKA_TIMEZONE)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from iska_pipelines.lib.db.schema import TIMESTAMP


def local_day(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of the local day in UTC, for comparing with stored timestamps."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def at_hour(day: date, hour: int, timezone: str) -> datetime:
    """`hour` o'clock local time on `day`, e.g. the day's SMS hour."""
    return datetime.combine(day, time(hour), ZoneInfo(timezone))


def recent_days(today: date, count: int) -> list[date]:
    """Today and the `count - 1` days before it, newest first."""
    return [today - timedelta(days=n) for n in range(count)]


def bound_params(day: date, timezone: str) -> list[sa.BindParameter[datetime]]:
    """`:start` and `:end` of the local day, for `ts >= :start AND ts < :end`."""
    start, end = day_bounds(day, timezone)
    return [sa.bindparam("start", start, type_=TIMESTAMP), sa.bindparam("end", end, type_=TIMESTAMP)]
