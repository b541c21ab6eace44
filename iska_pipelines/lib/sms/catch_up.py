"""The SMS catch-up (SPEC §7): which days still have pending messages to send or to close.

Before a day's cut-off (`ISKA_SMS_LATEST_HOUR` local time) a day with pending messages and no
run of its own in progress gets a run that sends them; after the cut-off it gets one last run
that ends them `skipped_too_late`, so no day stays pending for ever.
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

    @property
    def run_key(self) -> str | None:
        # closing happens once per day; sending is asked again while messages stay pending
        return f"sms-close-{self.day.isoformat()}" if self.too_late else None

    def describe(self) -> str:
        action = "ending them skipped_too_late" if self.too_late else "sending them"
        return f"{self.pending} messages of {self.day} still pending: {action}"


def catch_ups(
    pending: Mapping[date, int],
    busy: Collection[date],
    now: datetime,
    cutoff: Callable[[date], datetime],
    first_day: date,
) -> list[CatchUp]:
    return [
        CatchUp(day, n, now >= cutoff(day))
        for day, n in sorted(pending.items())
        if n and day >= first_day and day not in busy
    ]
