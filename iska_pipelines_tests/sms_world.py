"""A small world for SMS tests: forecasts and subscriptions written straight into ISKA's tables,
in the states billing and ingest leave them (paid, unpaid, cancelled, with or without a grid
point, fresh or stale forecast)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from iska_pipelines.lib.db.schema import forecasts, sms_messages, subscriptions
from iska_pipelines.lib.db.timestamps import utcnow

TIMEZONE = "Africa/Accra"


def today() -> date:
    return datetime.now(ZoneInfo(TIMEZONE)).date()


def add_forecast(
    engine: sa.Engine,
    gid: int,
    fcat24: str,
    fcat48: str,
    *,
    age_hours: float = 1.0,
    lat: float = 5.6,
    lon: float = -0.2,
    is_active: bool = True,
) -> None:
    updated = utcnow() - timedelta(hours=age_hours)  # issued and written then
    with engine.begin() as connection:
        connection.execute(
            forecasts.insert().values(
                gid=gid,
                lat=lat,
                lon=lon,
                fcat24=Decimal(fcat24),
                fcat48=Decimal(fcat48),
                is_active=is_active,
                issued_at=updated,
                created_at=updated,
                updated_at=updated,
            )
        )


def add_subscriber(
    engine: sa.Engine,
    msisdn: str,
    lid: int | None,
    *,
    day: date,
    paid: bool = True,
    status: str = "active",
    region: str | None = None,
    language: str | None = None,
    since: datetime | None = None,
) -> int:
    """`paid`: billed for `day` (last_billing_date = day, next_billing_date = day + 1).
    `region`: its code (SPEC §15); None, as rows written before regions: the default region.
    `since`: when the subscription began (its last event); now by default."""
    now = utcnow()
    since = since or now
    with engine.begin() as connection:
        return connection.execute(
            subscriptions.insert()
            .values(
                msisdn=msisdn,
                plan="daily",
                status=status,
                region=region,
                language=language,
                lat=5.6,
                lon=-0.2,
                lid=lid,
                sub_date=since,
                last_event_at=since,
                created_at=now,
                updated_at=now,
                cancel_reason="user" if status == "cancelled" else None,
                last_billing_date=day if paid else None,
                next_billing_date=day + timedelta(days=1) if paid else day,
            )
            .returning(subscriptions.c.id)
        ).scalar_one()


def messages(engine: sa.Engine, day: date | None = None) -> list[sa.Row]:
    query = sa.select(sms_messages).order_by(sms_messages.c.msisdn)
    if day is not None:
        query = query.where(sms_messages.c.send_date == day)
    with engine.connect() as connection:
        return list(connection.execute(query))


def message(engine: sa.Engine, msgid: str) -> sa.Row:
    with engine.connect() as connection:
        return connection.execute(sa.select(sms_messages).where(sms_messages.c.msgid == msgid)).one()


def last_successful_sms_date(engine: sa.Engine, msisdn: str) -> date | None:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(subscriptions.c.last_successful_sms_date).where(subscriptions.c.msisdn == msisdn)
        ).scalar_one()
