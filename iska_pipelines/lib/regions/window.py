"""A region's send window (SPEC §15): when the day's messages will all have gone out.

Sending starts at the region's SMS hour (or now, when the plan is made later) and goes at most
as fast as the region's gateways take together (the sum of their `max_tps`); it should end
within ISKA_SEND_WINDOW_MINUTES of the SMS hour. With an uncapped gateway there is no known
pace, and the plan is never called late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from iska_pipelines.lib.regions.config import Region


@dataclass(frozen=True)
class SendWindow:
    region: str
    day: date
    messages: int
    total_tps: float  # 0: an uncapped gateway, no known pace
    starts: datetime  # the SMS hour, or the moment of planning when that is later
    closes: datetime  # the SMS hour + ISKA_SEND_WINDOW_MINUTES
    window_minutes: int

    @property
    def seconds(self) -> float:
        return self.messages / self.total_tps if self.total_tps > 0 else 0.0

    @property
    def finishes(self) -> datetime:
        return self.starts + timedelta(seconds=self.seconds)

    @property
    def fits(self) -> bool:
        """Nothing to send, no known pace (an uncapped gateway), or done before the window closes."""
        return self.messages == 0 or self.total_tps <= 0 or self.finishes <= self.closes

    def describe(self) -> str:
        pace = f"{self.total_tps:g} messages/s" if self.total_tps > 0 else "no cap"
        words = (
            f"{self.messages} messages of {self.day} in region {self.region} at {pace} finish at "
            f"{self.finishes:%Y-%m-%d %H:%M:%S %Z}; the window closes at {self.closes:%H:%M %Z} "
            f"(ISKA_SEND_WINDOW_MINUTES={self.window_minutes})"
        )
        if not self.fits:
            words += (
                ": add gateways or raise their max_tps in ISKA_REGIONS_FILE, move the region's "
                "sms_hour earlier, or widen ISKA_SEND_WINDOW_MINUTES"
            )
        return words

    def metadata(self) -> dict[str, int | float | str]:
        return {
            "region": self.region,
            "messages": self.messages,
            "total_tps": self.total_tps,
            "send_seconds": round(self.seconds, 1),
            "finishes_at": self.finishes.isoformat(),
            "window_closes_at": self.closes.isoformat(),
        }


def send_window(region: Region, day: date, messages: int, window_minutes: int, now: datetime) -> SendWindow:
    """Day D's plan for `region`: `messages` to send from its SMS hour (or `now`, if later)."""
    sms_time = datetime.combine(day, time(region.sms_hour), ZoneInfo(region.timezone))
    return SendWindow(
        region=region.code,
        day=day,
        messages=messages,
        total_tps=region.total_tps,
        starts=max(sms_time, now.astimezone(sms_time.tzinfo)),
        closes=sms_time + timedelta(minutes=window_minutes),
        window_minutes=window_minutes,
    )
