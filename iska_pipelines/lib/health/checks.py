"""The verdicts of SPEC §16's checks, as plain data: Dagster shows them as asset checks, the
status page and `iska status` as lines. Each says in words what is wrong and what to do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from iska_pipelines.lib.health.days import at_hour, local_day
from iska_pipelines.lib.health.grid import GridAge
from iska_pipelines.lib.regions.window import SendWindow

Figures = Mapping[str, int | float]  # a day's numbers, as lib/health counts them


class Severity(StrEnum):
    WARN = "WARN"
    ERROR = "ERROR"


@dataclass(frozen=True)
class HealthRules:
    timezone: str = "Africa/Accra"
    sms_hour: int = 5
    forecast_max_age_hours: float = 30.0
    min_delivery_rate: float = 0.9  # ISKA_MIN_DELIVERY_RATE


@dataclass(frozen=True)
class Verdict:
    name: str
    passed: bool
    severity: Severity
    description: str
    metadata: dict[str, int | float | str] = field(default_factory=dict)


DELIVERY_RATE = "delivery_rate_at_least_minimum"
GRID_FRESH = "grid_fresh_at_sms_hour"
NO_TRANSPORT_ERRORS = "no_billing_transport_errors"
NO_REFUSED_FILES = "no_refused_files"
SEND_WINDOW = "send_window_fits"


def delivery_rate(figures: Figures, rules: HealthRules) -> Verdict:
    """Judged on the messages with a final word (delivered or not): one still awaiting its
    report counts neither way, so the morning's sending does not raise a false alarm."""
    answered, rate = figures["answered"], figures["answered_delivery_rate"]
    passed = answered == 0 or rate >= rules.min_delivery_rate
    words = (
        f"no report yet for the {figures['sent']} sent"
        if answered == 0
        else f"{figures['delivered']} of {answered} answered messages delivered ({rate:.1%}); "
        f"minimum {rules.min_delivery_rate:.0%} (ISKA_MIN_DELIVERY_RATE)"
    )
    if not passed:
        words += ": look at sms_messages.status and last_error, and at the gateway"
    return Verdict(
        DELIVERY_RATE,
        passed,
        Severity.ERROR,
        words,
        {
            "answered": answered,
            "delivered": figures["delivered"],
            "answered_delivery_rate": rate,
            "min_delivery_rate": rules.min_delivery_rate,
        },
    )


def next_sms_time(now: datetime, rules: HealthRules) -> datetime:
    """The SMS hour still ahead: today's, or tomorrow's once today's has passed."""
    today = local_day(now, rules.timezone)
    sms_time = at_hour(today, rules.sms_hour, rules.timezone)
    return sms_time if sms_time >= now else at_hour(today + timedelta(days=1), rules.sms_hour, rules.timezone)


def grid_fresh(grid: GridAge, sms_time: datetime, rules: HealthRules) -> Verdict:
    """The grid as it will be (or was) at an SMS hour: older than the limit means every
    subscriber is skipped `stale_forecast` unless a new grid is dropped first."""
    age = grid.age_hours(sms_time)
    passed = age is not None and age <= rules.forecast_max_age_hours
    when = f"{sms_time:%Y-%m-%d %H:%M}"
    if age is None:
        words = f"no active forecast grid: drop a forecasts file before the SMS hour ({when})"
    else:
        words = (
            f"the grid is {max(age, 0.0):g} h old at the SMS hour {when} "
            f"(limit {rules.forecast_max_age_hours:g} h, ISKA_FORECAST_MAX_AGE_HOURS)"
        )
        if not passed:
            words += ": drop a newer forecasts file before then"
    return Verdict(
        GRID_FRESH,
        passed,
        Severity.ERROR,
        words,
        {
            "grid_points": grid.points,
            "grid_age_hours_at_sms_hour": age if age is not None else -1.0,
            "max_age_hours": rules.forecast_max_age_hours,
        },
    )


def no_transport_errors(figures: Figures) -> Verdict:
    errors = figures["transport_errors"] + figures["auth_errors"]
    words = (
        f"{errors} charge(s) got no answer from the billing gateway (or it refused our token): "
        "they stay due; see the billing_job run and BILLING_URL/BILLING_TOKEN"
        if errors
        else f"every one of {figures['attempts']} charges was answered"
    )
    return Verdict(
        NO_TRANSPORT_ERRORS,
        errors == 0,
        Severity.ERROR,
        words,
        {"transport_errors": figures["transport_errors"], "auth_errors": figures["auth_errors"]},
    )


def no_refused_files(figures: Figures) -> Verdict:
    refused = figures["files_refused"] + figures["unknown_names"]
    words = (
        f"{refused} file(s) refused as a whole: `iska files --refused` or data/rejected/ says why"
        if refused
        else "no file refused as a whole"
    )
    return Verdict(
        NO_REFUSED_FILES,
        refused == 0,
        Severity.WARN,
        words,
        {"files_refused": figures["files_refused"], "unknown_names": figures["unknown_names"]},
    )


def send_window_fits(window: SendWindow) -> Verdict:
    """WARN, before the first message goes out, when the day's plan cannot finish in time."""
    return Verdict(SEND_WINDOW, window.fits, Severity.WARN, window.describe(), window.metadata())
