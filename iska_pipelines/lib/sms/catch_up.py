"""The SMS catch-up (SPEC §7): which days still have pending messages to send or to close.

Before a day's cut-off (`ISKA_SMS_LATEST_HOUR` local time) a day with pending messages and no
run of its own in progress gets a run that sends them; after the cut-off it gets one last run
that ends them `skipped_too_late`, so no day stays pending for ever. With several regions
(SPEC §15) each region's day is its own: its own run, its own cut-off in its time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class CatchUp:
    day: date
    pending: int
    too_late: bool  # past the cut-off: the run closes the day instead of sending
    region: str | None = None  # with several regions, whose day it is

    @property
    def run_key(self) -> str | None:
        # closing happens once per day; sending is asked again while messages stay pending
        if not self.too_late:
            return None
        return f"sms-close-{self.day.isoformat()}" + (f"-{self.region}" if self.region else "")

    def describe(self) -> str:
        action = "ending them skipped_too_late" if self.too_late else "sending them"
        whose = f" in region {self.region}" if self.region else ""
        return f"{self.pending} messages of {self.day}{whose} still pending: {action}"


def catch_ups(
    pending: Mapping[date, int],
    busy: Collection[date],
    now: datetime,
    cutoff: Callable[[date], datetime],
    first_day: date,
    region: str | None = None,
) -> list[CatchUp]:
    """One region's days (`region` None when there is one region)."""
    return [
        CatchUp(day, n, now >= cutoff(day), region)
        for day, n in sorted(pending.items())
        if n and day >= first_day and day not in busy
    ]
