"""Subscriptions through the API: every change is a one-row event of SPEC §5.

A create is an addition, a move an update, a delete a cancellation (reason `api`), applied by
the same code as a CSV file's rows (lib/subscriptions/events.py through apply_file_events), with the nearest
grid point found the same way. So the API can never disagree with the files: a create for a
cancelled msisdn reactivates it, an event older than the last one is `stale_event`, a point
beyond ISKA_MAX_GRID_DISTANCE_KM is `no_grid_point_nearby`. Every write, even one that changes
nothing else (a DELETE of a cancelled subscription), moves `last_event_at` to its own time, so a
re-run or late file with older events cannot undo it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import sqlalchemy as sa

from iska_pipelines.lib.db.locks import lock_subscriptions
from iska_pipelines.lib.db.schema import billing_attempts, sms_messages, subscriptions
from iska_pipelines.lib.db.timestamps import as_utc, row_dict, utcnow
from iska_pipelines.lib.errors import FieldError, InvalidRecord, RecordConflict, RecordNotFound
from iska_pipelines.lib.forecasts.assignment import with_nearest_lids
from iska_pipelines.lib.inbox.reading import REASON, ROW
from iska_pipelines.lib.regions.config import Regions
from iska_pipelines.lib.settings import DEFAULT_REGIONS
from iska_pipelines.lib.subscriptions.events import OUTCOME, Outcome
from iska_pipelines.lib.subscriptions.rules import SubscriptionValues
from iska_pipelines.lib.subscriptions.storage import apply_file_events
from iska_pipelines.lib.vocabulary import CancelReason, ConsentSource, FileKind, Reason, SubscriptionStatus

EVENT_TIME = pl.Datetime("us", "UTC")
API_DETAIL = "HTTP API"
REASON_FIELDS = {
    Reason.STALE_EVENT: "ts",
    Reason.NO_GRID_POINT_NEARBY: "lat",
    Reason.UNKNOWN_MSISDN: "msisdn",
}
REASON_MESSAGES = {
    Reason.STALE_EVENT: "older than the subscription's last event (last_event_at)",
    Reason.NO_GRID_POINT_NEARBY: "no active grid point within ISKA_MAX_GRID_DISTANCE_KM",
    Reason.UNKNOWN_MSISDN: "no subscription with this msisdn",
}


@dataclass(frozen=True)
class EventRules:
    timezone: str
    max_grid_distance_km: float
    regions: Regions = DEFAULT_REGIONS  # the `region` field's codes and the prefixes (SPEC §15)


# --- reading ----------------------------------------------------------------------------------


def list_subscriptions(
    connection: sa.Connection, limit: int, offset: int, msisdn: str | None = None, status: str | None = None
) -> tuple[int, list[dict[str, Any]]]:
    where = []
    if msisdn is not None:
        where.append(subscriptions.c.msisdn == msisdn)
    if status is not None:
        where.append(subscriptions.c.status == status)
    count = connection.execute(
        sa.select(sa.func.count()).select_from(subscriptions).where(*where)
    ).scalar_one()
    rows = connection.execute(
        sa.select(subscriptions).where(*where).order_by(subscriptions.c.id).limit(limit).offset(offset)
    )
    return count, [row_dict(row) for row in rows]


def get_subscription(connection: sa.Connection, subscription_id: int) -> dict[str, Any]:
    row = connection.execute(sa.select(subscriptions).where(subscriptions.c.id == subscription_id)).first()
    if row is None:
        raise RecordNotFound(f"no subscription with id {subscription_id}")
    return row_dict(row)


def _by_msisdn(connection: sa.Connection, msisdn: str) -> dict[str, Any] | None:
    row = connection.execute(sa.select(subscriptions).where(subscriptions.c.msisdn == msisdn)).first()
    return None if row is None else row_dict(row)


def history(
    connection: sa.Connection,
    table: sa.Table,
    order: sa.Column[Any],
    subscription_id: int,
    limit: int,
    offset: int,
) -> tuple[int, list[dict[str, Any]]]:
    """A subscription's billing attempts or SMS messages, newest first."""
    get_subscription(connection, subscription_id)
    where = table.c.subscription_id == subscription_id
    count = connection.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
    rows = connection.execute(
        sa.select(table).where(where).order_by(order.desc()).limit(limit).offset(offset)
    )
    return count, [row_dict(row) for row in rows]


def list_billing_attempts(
    connection: sa.Connection, subscription_id: int, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    return history(connection, billing_attempts, billing_attempts.c.id, subscription_id, limit, offset)


def list_sms_messages(
    connection: sa.Connection, subscription_id: int, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    return history(connection, sms_messages, sms_messages.c.send_date, subscription_id, limit, offset)


# --- events -----------------------------------------------------------------------------------


def apply_event(
    connection: sa.Connection,
    kind: FileKind,
    msisdn: str,
    ts: datetime,
    rules: EventRules,
    plan: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    language: str | None = None,
    region: str | None = None,
) -> str:
    """Apply one event as a one-row file; returns its outcome or raises RecordConflict."""
    columns: dict[str, pl.Series] = {
        ROW: pl.Series(ROW, [0], pl.UInt32),
        "msisdn": pl.Series("msisdn", [msisdn], pl.String),
        "ts": pl.Series("ts", [ts], EVENT_TIME),
    }
    if kind is not FileKind.CANCELLATIONS:
        columns |= {"lat": pl.Series("lat", [lat], pl.Float64), "lon": pl.Series("lon", [lon], pl.Float64)}
    if kind is FileKind.ADDITIONS:
        columns["plan"] = pl.Series("plan", [str(plan)], pl.String)
        columns["language"] = pl.Series("language", [language], pl.String)
        columns["region"] = pl.Series("region", [region], pl.String)
        guess = rules.regions.for_msisdn(msisdn).code
        columns["region_guess"] = pl.Series("region_guess", [guess], pl.String)
    events = pl.DataFrame(list(columns.values()))
    if kind is not FileKind.CANCELLATIONS:
        events = with_nearest_lids(connection, events, rules.max_grid_distance_km)
    today = datetime.now(ZoneInfo(rules.timezone)).date()
    result = apply_file_events(connection, events, kind, today, source=ConsentSource.API, detail=API_DETAIL)
    decided = result.outcomes.row(0, named=True)
    if decided[REASON] is not None:
        reason = Reason(decided[REASON])
        error = FieldError(
            REASON_FIELDS.get(reason, "msisdn"), str(reason), REASON_MESSAGES.get(reason, str(reason))
        )
        if reason is Reason.NO_GRID_POINT_NEARBY:  # the location itself is unusable
            raise InvalidRecord([error, FieldError("lon", error.reason, error.message)])
        raise RecordConflict(error)  # valid, but older than what is stored
    return str(decided[OUTCOME])


def add_subscription(
    connection: sa.Connection, values: SubscriptionValues, rules: EventRules
) -> tuple[dict[str, Any], str]:
    """An addition: new, reactivated or renewed (plan and location) as SPEC §5 says."""
    assert values.msisdn is not None, "check_subscription requires it for an addition"
    ts = values.ts or utcnow()
    outcome = apply_event(
        connection,
        FileKind.ADDITIONS,
        values.msisdn,
        ts,
        rules,
        plan=values.plan,
        lat=values.lat,
        lon=values.lon,
        language=values.language,
        region=values.region,
    )
    _written_at(connection, values.msisdn, ts)
    added = _by_msisdn(connection, values.msisdn)
    assert added is not None, "just added"
    return added, outcome


def change_subscription(
    connection: sa.Connection,
    subscription_id: int,
    values: SubscriptionValues,
    status: str | None,
    rules: EventRules,
) -> dict[str, Any]:
    """Apply the changes PUT/PATCH asked for as the events that mean them, in one transaction."""
    current = get_subscription(connection, subscription_id)
    if values.msisdn is not None and values.msisdn != current["msisdn"]:
        raise InvalidRecord(
            [
                FieldError(
                    "msisdn", "read_only", "the msisdn cannot change; cancel this one and create another"
                )
            ]
        )
    ts = values.ts or utcnow()
    plan = values.plan or current["plan"]
    lat = current["lat"] if values.lat is None else values.lat
    lon = current["lon"] if values.lon is None else values.lon
    active = current["status"] == SubscriptionStatus.ACTIVE
    status = status or current["status"]
    moved = (lat, lon) != (current["lat"], current["lon"])
    replanned = str(plan) != current["plan"]
    if status == SubscriptionStatus.ACTIVE and (not active or replanned):
        apply_event(
            connection,
            FileKind.ADDITIONS,
            current["msisdn"],
            ts,
            rules,
            plan=plan,
            lat=lat,
            lon=lon,
            language=values.language,
            region=values.region,
        )
    elif replanned:
        raise InvalidRecord(
            [
                FieldError(
                    "plan",
                    "cancelled",
                    "a cancelled subscription keeps its plan; set status active to "
                    "reactivate it with a new plan",
                )
            ]
        )
    elif moved:
        apply_event(connection, FileKind.UPDATES, current["msisdn"], ts, rules, lat=lat, lon=lon)
    if status == SubscriptionStatus.CANCELLED and active:
        _cancel(connection, current["msisdn"], ts, rules)
    if values.language is not None and values.language != current["language"]:
        _rewrite(connection, current["msisdn"], ts, language=values.language)
    if values.region is not None and values.region != current["region"]:
        _rewrite(connection, current["msisdn"], ts, region=values.region)
    _written_at(connection, current["msisdn"], ts)
    return get_subscription(connection, subscription_id)


def _rewrite(connection: sa.Connection, msisdn: str, ts: datetime, **values: str) -> None:
    """A new language or region alone is no SPEC §5 event: it is written as given, unless a
    later event already happened (then the write is as stale as any older event)."""
    lock_subscriptions(connection)
    stored = _by_msisdn(connection, msisdn)
    if stored is not None and stored["last_event_at"] > as_utc(ts):
        raise RecordConflict(FieldError("ts", str(Reason.STALE_EVENT), REASON_MESSAGES[Reason.STALE_EVENT]))
    connection.execute(
        subscriptions.update().where(subscriptions.c.msisdn == msisdn).values(**values, updated_at=utcnow())
    )


def cancel_subscription(connection: sa.Connection, subscription_id: int, rules: EventRules) -> dict[str, Any]:
    """DELETE: cancelled with reason `api`; the row and its history stay."""
    current = get_subscription(connection, subscription_id)
    ts = utcnow()
    if current["status"] == SubscriptionStatus.ACTIVE:
        _cancel(connection, current["msisdn"], ts, rules)
    _written_at(connection, current["msisdn"], ts)
    return get_subscription(connection, subscription_id)


def _cancel(connection: sa.Connection, msisdn: str, ts: datetime, rules: EventRules) -> None:
    outcome = apply_event(connection, FileKind.CANCELLATIONS, msisdn, ts, rules)
    if outcome == Outcome.CANCELLED:
        connection.execute(
            subscriptions.update()
            .where(subscriptions.c.msisdn == msisdn)
            .values(cancel_reason=str(CancelReason.API))
        )


def _written_at(connection: sa.Connection, msisdn: str, ts: datetime) -> None:
    """Move `last_event_at` forward to the write's time (SPEC §5), under the files' lock so a
    file applied meanwhile cannot be moved backwards."""
    lock_subscriptions(connection)
    stored = _by_msisdn(connection, msisdn)
    if stored is not None and stored["last_event_at"] < as_utc(ts):
        connection.execute(
            subscriptions.update()
            .where(subscriptions.c.msisdn == msisdn)
            .values(last_event_at=as_utc(ts), updated_at=utcnow())
        )
