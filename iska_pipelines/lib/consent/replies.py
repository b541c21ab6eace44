"""Replies to inbound SMS (SPEC §13): outbox rows of kind `reply`, sent apart from the daily job.

A reply is planned in the transaction that stores its inbound message (one per inbound message:
`sms_messages.inbound_id` is unique), then sent right after the commit by whoever received it,
and by the replies sensor for anything left pending (a crash between commit and send, a gateway
that was down). Sending claims the row first (the claim expires), exactly like the daily job,
so a reply is never sent twice; outcomes and delivery reports are written by the same code as
for forecasts. A reply is never billed: nothing here touches billing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from iska_pipelines.lib.db.schema import TIMESTAMP, sms_messages
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.http.limiter import DatabaseCaps
from iska_pipelines.lib.regions.config import Region, Regions
from iska_pipelines.lib.regions.gateways import caps_of
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.delivery import record_outcomes
from iska_pipelines.lib.sms.gateway import OutgoingSms, SmsClient
from iska_pipelines.lib.sms.sending import Sender
from iska_pipelines.lib.sms.signing import callback_url
from iska_pipelines.lib.sms.templates import Catalog
from iska_pipelines.lib.vocabulary import MessageKind, MessageStatus

REPLY = f"kind = '{MessageKind.REPLY}'"
CLAIMABLE = f"""{REPLY} AND status = '{MessageStatus.PENDING}'
                AND (claim_expires_at IS NULL OR claim_expires_at <= :now)"""


def plan_reply(
    connection: sa.Connection,
    catalog: Catalog,
    *,
    inbound_id: int,
    subscription_id: int | None,
    msisdn: str,
    text: str,
    language: str,
    day: date,
    now: datetime | None = None,
    region: str | None = None,
) -> str:
    """Write the reply to one inbound message (pending); returns its msgid. `region`: the
    subscriber's (None for an unknown number: its prefix decides when it is sent)."""
    now = now or utcnow()
    sent, size = catalog.outgoing(text)
    msgid = str(uuid.uuid4())
    connection.execute(
        sms_messages.insert().values(
            msgid=msgid,
            subscription_id=subscription_id,
            msisdn=msisdn,
            send_date=day,
            text=sent,
            language=language,
            encoding=str(size.encoding),
            segments=size.segments,
            status=str(MessageStatus.PENDING),
            attempts=0,
            kind=str(MessageKind.REPLY),
            inbound_id=inbound_id,
            region=region,
            created_at=now,
            updated_at=now,
        )
    )
    return msgid


def claim_replies(
    connection: sa.Connection,
    owner: str,
    claim_seconds: float,
    msgids: Sequence[str] | None = None,
    limit: int = 1000,
    now: datetime | None = None,
) -> list[sa.Row[Any]]:
    """Claim pending replies (only `msgids`, when given) for `owner`; (msgid, msisdn, text,
    region, subscription_id)."""
    now = now or utcnow()
    lock = " FOR UPDATE SKIP LOCKED" if connection.dialect.name == "postgresql" else ""
    only = ""
    params: dict[str, Any] = {"owner": owner[:64], "limit": limit}
    if msgids is not None:
        if not msgids:
            return []
        only = " AND msgid IN :msgids"
        params["msgids"] = list(msgids)
    statement = sa.text(f"""
        UPDATE sms_messages SET claimed_by = :owner, claim_expires_at = :expires
        WHERE msgid IN (SELECT msgid FROM sms_messages WHERE {CLAIMABLE}{only}
                        ORDER BY created_at, msgid LIMIT :limit{lock})
        RETURNING msgid, msisdn, text, region, subscription_id
    """).bindparams(
        sa.bindparam("now", now, type_=TIMESTAMP),
        sa.bindparam("expires", now + timedelta(seconds=claim_seconds), type_=TIMESTAMP),
    )
    if msgids is not None:
        statement = statement.bindparams(sa.bindparam("msgids", expanding=True))
    return list(connection.execute(statement, params))


def send_replies(
    engine: sa.Engine,
    regions: Regions,
    open_client: Callable[[Region], SmsClient],
    sender: Sender,
    msgids: Sequence[str] | None = None,
) -> int:
    """Send pending replies (only `msgids`, when given) until none is left to claim, each through
    its region's gateways (SPEC §15: the subscriber's region; an unknown number's prefix);
    returns how many were sent (whatever the gateway answered)."""
    sent = 0
    clients: dict[str, SmsClient] = {}
    try:
        while True:
            with engine.begin() as connection:
                rows = claim_replies(connection, sender.owner, sender.claim_seconds, msgids, sender.chunk)
            if not rows:
                return sent
            by_region: dict[str, list[OutgoingSms]] = defaultdict(list)
            for row in rows:
                region = (
                    regions.for_msisdn(row.msisdn) if row.subscription_id is None else regions.get(row.region)
                )
                url = callback_url(sender.public_url, row.msgid, sender.secret)
                by_region[region.code].append(OutgoingSms(row.msgid, row.msisdn, row.text, url))
            for code, messages in by_region.items():
                if code not in clients:
                    clients[code] = open_client(regions.get(code))
                for batch in clients[code].send_batches(messages):
                    with engine.begin() as connection:
                        record_outcomes(connection, batch)
                    sent += len(batch)
    finally:
        for client in clients.values():
            client.close()


def pending_replies(
    connection: sa.Connection, now: datetime | None = None, created_before: datetime | None = None
) -> int:
    """Replies a sender could take now (pending, not held by a live claim), only those
    written before `created_before` when given."""
    now = now or utcnow()
    return int(
        connection.execute(
            sa.text(
                f"SELECT count(*) FROM sms_messages WHERE {CLAIMABLE} AND created_at <= :before"
            ).bindparams(
                sa.bindparam("now", now, type_=TIMESTAMP),
                sa.bindparam("before", created_before or now, type_=TIMESTAMP),
            )
        ).scalar_one()
    )


def reply_client(settings: Settings, region: Region, engine: sa.Engine | None = None) -> SmsClient:
    """The client a reply goes out through: its region's gateways, within their caps (shared
    with the daily job through the database when `engine` is given)."""
    pacers = DatabaseCaps(engine, caps_of(region.gateways)) if engine is not None else None
    return SmsClient(
        region.gateways,
        settings.sms_token,
        max_tries=settings.max_sms_try_limit,
        concurrency=min(settings.http_concurrency, 4),
        timeout_seconds=settings.http_timeout_seconds,
        max_retry_after_seconds=settings.max_retry_after_seconds,
        self_callback=settings.self_callback,
        pacers=pacers,
    )


def reply_sender(settings: Settings, owner: str) -> Sender:
    return Sender(owner=owner, public_url=settings.public_url, secret=settings.callback_secret, chunk=100)
