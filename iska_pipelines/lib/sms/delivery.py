"""What happens to outbox rows after planning: sent, reported on, expired (SPEC §7).

Every write is guarded by the state machine pending -> accepted -> final: a send outcome only
moves a `pending` row, a delivery report only moves a `pending` or `accepted` one, so a report
that overtakes the send call, a repeated report or a late contradictory one changes nothing
that is already final.

A skip is the one final state the gateway can overrule. `skipped_opted_out` and
`skipped_too_late` are ISKA's own verdict that a message will not go out, written without
waiting for a sender that already holds it: a STOP arrives while its forecast is on the wire, or
a sender outlives its claim. When the gateway then accepts that message, or reports on it, it
was sent after all, and the row says so (accepted, its report applied) instead of hiding a sent
message, and its report, under a skip.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa

from iska_pipelines.lib.db.bulk import stage_rows
from iska_pipelines.lib.db.locks import lock_early_reports
from iska_pipelines.lib.db.schema import TIMESTAMP, early_reports
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.sms.gateway import SmsOutcome
from iska_pipelines.lib.vocabulary import MessageStatus

EXPIRY_HOURS = 72
STAGE = "stage_sms_outcomes"
STAGE_COLUMNS = {
    "msgid": "VARCHAR(36)",
    "status": "VARCHAR(12)",
    "tries": "INTEGER",
    "gateway": "VARCHAR(255)",
    "last_error": "VARCHAR(500)",
    "gateway_ref": "VARCHAR(100)",
}


def _sql_list(*statuses: MessageStatus) -> str:
    return "(" + ", ".join(f"'{status}'" for status in statuses) + ")"


SKIPPED = _sql_list(MessageStatus.SKIPPED_OPTED_OUT, MessageStatus.SKIPPED_TOO_LATE)
# what a delivery report may move: open rows, and skipped ones it proves were sent
REPORTABLE = _sql_list(
    MessageStatus.PENDING,
    MessageStatus.ACCEPTED,
    MessageStatus.SKIPPED_OPTED_OUT,
    MessageStatus.SKIPPED_TOO_LATE,
)
ACCEPTED, REJECTED, FAILED = (
    str(s) for s in (MessageStatus.ACCEPTED, MessageStatus.REJECTED, MessageStatus.FAILED)
)


def _now(now: datetime | None) -> sa.BindParameter[datetime]:
    return sa.bindparam("now", now or utcnow(), type_=TIMESTAMP)


def record_outcomes(
    connection: sa.Connection, outcomes: Iterable[SmsOutcome], now: datetime | None = None
) -> int:
    """Write send outcomes with one set-based UPDATE (releasing their claims); returns the rows
    written. An acceptance also moves a skipped row (see the module's docstring)."""
    rows = [
        (
            o.msgid,
            ACCEPTED if o.accepted else REJECTED if o.rejected else FAILED,
            o.tries,
            (o.gateway or "")[:255] or None,
            (o.error or "")[:500] or None,
            (o.gateway_ref or "")[:100] or None,
        )
        for o in outcomes
    ]
    if not rows:
        return 0
    stage_rows(connection, STAGE, STAGE_COLUMNS, rows)
    refs = [row[-1] for row in rows if row[-1]]
    if refs:
        lock_early_reports(connection)
    written = _write_outcomes(connection, now)
    if refs:
        apply_early_reports(connection, refs, now)
    return written


def _write_outcomes(connection: sa.Connection, now: datetime | None) -> int:
    result = connection.execute(
        sa.text(f"""
        UPDATE sms_messages SET
            status = CASE WHEN sms_messages.status = '{MessageStatus.PENDING}' THEN s.status
                          WHEN s.status = '{MessageStatus.ACCEPTED}' AND sms_messages.status IN {SKIPPED}
                          THEN s.status
                          ELSE sms_messages.status END,
            attempts = sms_messages.attempts + s.tries,
            gateway = s.gateway,
            last_error = s.last_error,
            gateway_ref = coalesce(s.gateway_ref, sms_messages.gateway_ref),
            accepted_at = CASE WHEN s.status = '{MessageStatus.ACCEPTED}'
                               THEN coalesce(sms_messages.accepted_at, :now)
                               ELSE sms_messages.accepted_at END,
            claim_expires_at = NULL,
            updated_at = :now
        FROM {STAGE} s WHERE sms_messages.msgid = s.msgid
    """).bindparams(_now(now))
    )
    return int(result.rowcount)


def expire_unreported(
    connection: sa.Connection, now: datetime | None = None, hours: float = EXPIRY_HOURS
) -> int:
    """Accepted messages without a report after `hours` become `expired` (a final state)."""
    now = now or utcnow()
    result = connection.execute(
        sa.text(f"""
        UPDATE sms_messages SET status = '{MessageStatus.EXPIRED}', updated_at = :now
        WHERE status = '{MessageStatus.ACCEPTED}' AND accepted_at < :cutoff
    """).bindparams(_now(now), sa.bindparam("cutoff", now - timedelta(hours=hours), type_=TIMESTAMP))
    )
    forget_early_reports(connection, now, hours)
    return int(result.rowcount)


class ReportOutcome(StrEnum):
    APPLIED = "applied"
    ALREADY_FINAL = "already_final"
    UNKNOWN_MSGID = "unknown_msgid"


@dataclass(frozen=True)
class ReportApplied:
    outcome: ReportOutcome
    status: str | None  # the message's status after the report; None for an unknown msgid
    send_date: date | None = None


def apply_report(
    connection: sa.Connection,
    msgid: str,
    status: MessageStatus,
    now: datetime | None = None,
    detail: str | None = None,
) -> ReportApplied:
    """Apply one delivery report; `delivered` also dates the subscriber's last good forecast
    (a reply to an inbound SMS does not count). `detail`: the gateway's reason, kept as
    last_error."""
    now = now or utcnow()
    delivered_at = now if status is MessageStatus.DELIVERED else None
    moved = connection.execute(
        sa.text(f"""
        UPDATE sms_messages SET status = :status,
               delivered_at = coalesce(:delivered_at, delivered_at),
               last_error = coalesce(:detail, last_error), updated_at = :now
        WHERE msgid = :msgid AND status IN {REPORTABLE}
    """).bindparams(
            _now(now),
            sa.bindparam("delivered_at", delivered_at, type_=TIMESTAMP),
            sa.bindparam("detail", (detail or "")[:500] or None, type_=sa.String),
            status=str(status),
            msgid=msgid,
        )
    ).rowcount
    row = connection.execute(
        sa.text("SELECT status, send_date FROM sms_messages WHERE msgid = :msgid").columns(
            sa.column("status"), sa.column("send_date", sa.Date)
        ),
        {"msgid": msgid},
    ).one_or_none()
    if row is None:
        return ReportApplied(ReportOutcome.UNKNOWN_MSGID, None)
    if not moved:
        return ReportApplied(ReportOutcome.ALREADY_FINAL, row.status, row.send_date)
    if status is MessageStatus.DELIVERED:
        connection.execute(
            sa.text("""
            UPDATE subscriptions SET last_successful_sms_date = m.send_date, updated_at = :now
            FROM sms_messages m
            WHERE m.msgid = :msgid AND subscriptions.id = m.subscription_id AND m.kind = 'forecast'
              AND (subscriptions.last_successful_sms_date IS NULL
                   OR subscriptions.last_successful_sms_date < m.send_date)
        """).bindparams(_now(now), msgid=msgid)
        )
    return ReportApplied(ReportOutcome.APPLIED, row.status, row.send_date)


def park_early_report(
    connection: sa.Connection,
    gateway_ref: str,
    status: MessageStatus,
    detail: str | None,
    now: datetime | None = None,
) -> None:
    """Keep a report that names a gateway id no outcome has written yet: the send's answer and
    the report race, and the outcome is written a batch at a time (`record_outcomes` applies it)."""
    connection.execute(
        early_reports.insert().values(
            gateway_ref=gateway_ref[:100],
            status=str(status),
            detail=(detail or "")[:500] or None,
            received_at=now or utcnow(),
        )
    )


def apply_early_reports(
    connection: sa.Connection, gateway_refs: list[str], now: datetime | None = None
) -> int:
    """Apply the parked reports of these gateway ids, in arrival order (the first final word
    wins, as always), and forget them."""
    parked = connection.execute(
        sa.select(
            early_reports.c.id, early_reports.c.gateway_ref, early_reports.c.status, early_reports.c.detail
        )
        .where(early_reports.c.gateway_ref.in_(gateway_refs))
        .order_by(early_reports.c.id)
    ).all()
    for report in parked:
        msgid = msgid_of(connection, report.gateway_ref)
        if msgid is not None:
            apply_report(connection, msgid, MessageStatus(report.status), now, report.detail)
    if parked:
        connection.execute(early_reports.delete().where(early_reports.c.id.in_([r.id for r in parked])))
    return len(parked)


def forget_early_reports(
    connection: sa.Connection, now: datetime | None = None, hours: float = EXPIRY_HOURS
) -> int:
    """Parked reports for ids no message ever had, after the time a report may take."""
    cutoff = (now or utcnow()) - timedelta(hours=hours)
    return int(
        connection.execute(early_reports.delete().where(early_reports.c.received_at < cutoff)).rowcount
    )


def msgid_of(connection: sa.Connection, gateway_ref: str) -> str | None:
    """The message a gateway names by its own id (the id its send answer gave)."""
    return connection.execute(
        sa.text("SELECT msgid FROM sms_messages WHERE gateway_ref = :ref"), {"ref": gateway_ref}
    ).scalar()


def status_of(connection: sa.Connection, msgid: str) -> str | None:
    return connection.execute(
        sa.text("SELECT status FROM sms_messages WHERE msgid = :msgid"), {"msgid": msgid}
    ).scalar()
