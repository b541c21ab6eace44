"""One inbound SMS (SPEC §13): stored once, its keyword applied, its reply planned — together.

`receive` runs in the caller's transaction, under the subscriptions lock (files, the API and
billing take it too), so the stored message, the subscription change (with `last_event_at`
moved to the message's time, SPEC §5), the consent events and the reply's outbox row commit
together or not at all. A repeat of a gateway id finds the stored message and changes nothing.

- STOP: cancelled at once with `cancel_reason` opt_out (a cancelled subscriber's reason becomes
  opt_out), the day's forecasts not yet sent end `skipped_opted_out` (one that a sender is
  sending at that moment ends `accepted` when the gateway takes it, lib/sms/delivery.py); reply
  `opt_out`.
- START from a cancelled subscriber: reply `rejoin_ask` with the plan's price.
- YES from a cancelled subscriber within REJOIN_HOURS of a START received since the
  cancellation and since their last STOP: reactivated as a new subscription period (sub_date = the message's time,
  joins + 1, due today, failed_billing_count 0); reply `rejoin_done`.
- HELP: reply `help` with the price, even to an msisdn ISKA does not know.
- Anything else, or a keyword that does not apply, is stored for the operator without a reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from iska_pipelines.lib.consent.chain import Consent, append
from iska_pipelines.lib.consent.keywords import Keywords
from iska_pipelines.lib.consent.replies import plan_reply
from iska_pipelines.lib.db.locks import lock_subscriptions
from iska_pipelines.lib.db.schema import TIMESTAMP, inbound_messages, sms_messages, subscriptions
from iska_pipelines.lib.db.timestamps import as_utc, row_dict, utcnow
from iska_pipelines.lib.sms.templates import Catalog
from iska_pipelines.lib.vocabulary import (
    CancelReason,
    ConsentEvent,
    ConsentSource,
    InboundOutcome,
    Keyword,
    MessageKind,
    MessageStatus,
    Plan,
    SubscriptionStatus,
)

REJOIN_HOURS = 24
TEXT_CHARS = 1000


@dataclass(frozen=True)
class Inbound:
    """An SMS as the gateway posted it."""

    gateway_id: str
    msisdn: str
    text: str
    received_at: datetime


@dataclass(frozen=True)
class ConsentRules:
    timezone: str
    prices: dict[str, str]  # plan -> the {price} text
    rejoin_hours: float = REJOIN_HOURS


@dataclass(frozen=True)
class Handled:
    inbound_id: int
    repeat: bool  # the gateway id was already stored: nothing changed
    keyword: Keyword
    outcome: InboundOutcome
    reply_msgid: str | None


def receive(
    connection: sa.Connection,
    message: Inbound,
    keywords: Keywords,
    catalog: Catalog,
    rules: ConsentRules,
    now: datetime | None = None,
) -> Handled:
    """Store and apply one inbound message; call inside engine.begin()."""
    now = now or utcnow()
    lock_subscriptions(connection)
    stored = connection.execute(
        sa.select(inbound_messages).where(inbound_messages.c.gateway_id == message.gateway_id)
    ).first()
    if stored is not None:
        reply = connection.execute(
            sa.select(sms_messages.c.msgid).where(sms_messages.c.inbound_id == stored.id)
        ).scalar()
        return Handled(stored.id, True, Keyword(stored.keyword), InboundOutcome(stored.outcome), reply)
    # a gateway's clock ahead of ours must not put last_event_at in the future
    at = min(as_utc(message.received_at) or now, now)
    today = now.astimezone(ZoneInfo(rules.timezone)).date()
    keyword = keywords.match(message.text)
    subscription = _subscription(connection, message.msisdn)
    outcome, text_key = _decide(connection, keyword, subscription, at, rules)
    inbound_id = connection.execute(
        inbound_messages.insert()
        .values(
            gateway_id=message.gateway_id,
            msisdn=message.msisdn,
            text=message.text[:TEXT_CHARS],
            received_at=at,
            keyword=str(keyword),
            outcome=str(outcome),
            subscription_id=subscription["id"] if subscription else None,
            created_at=now,
        )
        .returning(inbound_messages.c.id)
    ).scalar_one()
    detail = f"inbound message {inbound_id} (gateway id {message.gateway_id})"
    if outcome is InboundOutcome.OPTED_OUT:
        assert subscription is not None
        _opt_out(connection, subscription, at, today, detail, now)
    elif outcome is InboundOutcome.REJOINED:
        assert subscription is not None
        _rejoin(connection, subscription, at, today, detail, now)
    reply = None
    if text_key is not None:
        language = catalog.language(subscription["language"] if subscription else None)
        plan = subscription["plan"] if subscription else Plan.DAILY
        text = language.texts[text_key].format(price=rules.prices.get(plan, ""))
        reply = plan_reply(
            connection,
            catalog,
            inbound_id=inbound_id,
            subscription_id=subscription["id"] if subscription else None,
            msisdn=message.msisdn,
            text=text,
            language=language.code,
            day=today,
            now=now,
            region=subscription["region"] if subscription else None,
        )
    return Handled(inbound_id, False, keyword, outcome, reply)


def _subscription(connection: sa.Connection, msisdn: str) -> dict[str, Any] | None:
    row = connection.execute(sa.select(subscriptions).where(subscriptions.c.msisdn == msisdn)).first()
    return None if row is None else row_dict(row)


def _decide(
    connection: sa.Connection,
    keyword: Keyword,
    subscription: dict[str, Any] | None,
    at: datetime,
    rules: ConsentRules,
) -> tuple[InboundOutcome, str | None]:
    """What the message does, and the text of its reply (None: no reply)."""
    if keyword is Keyword.HELP:
        return InboundOutcome.HELPED, "help"
    if keyword is Keyword.OTHER:
        return InboundOutcome.FOR_OPERATOR, None
    if subscription is None:
        return InboundOutcome.UNKNOWN_MSISDN, None
    active = subscription["status"] == SubscriptionStatus.ACTIVE
    if keyword is Keyword.STOP:
        return InboundOutcome.OPTED_OUT, "opt_out"
    if active:
        return InboundOutcome.ALREADY_ACTIVE, None
    if keyword is Keyword.START:
        return InboundOutcome.REJOIN_ASKED, "rejoin_ask"
    if _asked_since(connection, subscription, at, rules.rejoin_hours):
        return InboundOutcome.REJOINED, "rejoin_done"
    return InboundOutcome.NO_PENDING_ASK, None


def _asked_since(connection: sa.Connection, subscription: dict[str, Any], at: datetime, hours: float) -> bool:
    """A START answered with a rejoin question within `hours` before `at`, after the
    cancellation and after the subscriber's last STOP (a later STOP withdraws the question)."""
    since = at - timedelta(hours=hours)
    unsub = as_utc(subscription["unsub_date"])
    if unsub is not None and unsub > since:
        since = unsub
    msisdn = inbound_messages.c.msisdn == subscription["msisdn"]
    last_stop = (
        sa.select(sa.func.coalesce(sa.func.max(inbound_messages.c.id), 0))
        .where(msisdn, inbound_messages.c.outcome == str(InboundOutcome.OPTED_OUT))
        .scalar_subquery()
    )
    found = connection.execute(
        sa.select(sa.func.count())
        .select_from(inbound_messages)
        .where(
            msisdn,
            inbound_messages.c.outcome == str(InboundOutcome.REJOIN_ASKED),
            inbound_messages.c.id > last_stop,
            inbound_messages.c.received_at >= sa.bindparam("since", since, type_=TIMESTAMP),
            inbound_messages.c.received_at <= sa.bindparam("at", at, type_=TIMESTAMP),
        )
    ).scalar_one()
    return bool(found)


def _opt_out(
    connection: sa.Connection,
    subscription: dict[str, Any],
    at: datetime,
    today: date,
    detail: str,
    now: datetime,
) -> None:
    active = subscription["status"] == SubscriptionStatus.ACTIVE
    values: dict[str, Any] = {
        "status": str(SubscriptionStatus.CANCELLED),
        "cancel_reason": str(CancelReason.OPT_OUT),
        "last_event_at": max(subscription["last_event_at"], at),
        "updated_at": now,
    }
    if active:
        values["unsub_date"] = at
    connection.execute(
        subscriptions.update().where(subscriptions.c.id == subscription["id"]).values(**values)
    )
    connection.execute(
        sms_messages.update()
        .where(
            sms_messages.c.subscription_id == subscription["id"],
            sms_messages.c.kind == str(MessageKind.FORECAST),
            sms_messages.c.status == str(MessageStatus.PENDING),
        )
        .values(status=str(MessageStatus.SKIPPED_OPTED_OUT), claim_expires_at=None, updated_at=now)
    )
    if subscription["cancel_reason"] != CancelReason.OPT_OUT or active:
        append(
            connection,
            [Consent(subscription["msisdn"], ConsentEvent.OPTED_OUT, ConsentSource.SMS, detail, at)],
        )


def _rejoin(
    connection: sa.Connection,
    subscription: dict[str, Any],
    at: datetime,
    today: date,
    detail: str,
    now: datetime,
) -> None:
    connection.execute(
        subscriptions.update()
        .where(subscriptions.c.id == subscription["id"])
        .values(
            status=str(SubscriptionStatus.ACTIVE),
            cancel_reason=None,
            unsub_date=None,
            sub_date=at,
            joins=subscriptions.c.joins + 1,
            next_billing_date=today,
            failed_billing_count=0,
            last_event_at=max(subscription["last_event_at"], at),
            updated_at=now,
        )
    )
    append(
        connection, [Consent(subscription["msisdn"], ConsentEvent.REJOINED, ConsentSource.SMS, detail, at)]
    )
