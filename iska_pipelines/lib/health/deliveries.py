"""`sms_deliveries` of a day: where every message of day D stands, from `sms_messages`.

Counted from the table, not from a run, so the figures keep growing as delivery reports
arrive: `delivered` for a day is final once no message of it is `accepted` (awaiting its
report) any more, at the latest 72 h later when the unreported ones expire.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from iska_pipelines.lib.db.schema import TIMESTAMP
from iska_pipelines.lib.sms.encoding import measure
from iska_pipelines.lib.sms.outbox import CLASSIFIED, ELIGIBLE, EVERYONE
from iska_pipelines.lib.vocabulary import MessageStatus, SkipReason

S = MessageStatus
NOT_SENT = (S.PENDING, S.SKIPPED_TOO_LATE, S.SKIPPED_OPTED_OUT)
ANSWERED = (S.DELIVERED, S.FAILED, S.UNDELIVERED, S.EXPIRED, S.REJECTED)  # a final word on a sent one


def segments(text: str) -> int:
    """How many SMS the text takes: GSM-7 when it fits the alphabet, else UCS-2 (SPEC §14)."""
    return measure(text).segments


def day_figures(connection: sa.Connection, day: date, in_region: str = EVERYONE) -> dict[str, int | float]:
    """Planned, sent and each outcome of day D's messages, the delivery rates and segments, and
    the messages sent and their segments per language (`messages_<code>`, `segments_<code>`);
    `in_region`: one region's (Regions.in_region on `region`), else every region's."""
    by_text = connection.execute(
        sa.text(
            "SELECT status, text, language, segments, count(*) FROM sms_messages WHERE send_date = :day "
            f"AND kind = 'forecast' AND {in_region} GROUP BY status, text, language, segments"
        ).bindparams(sa.bindparam("day", day, type_=sa.Date))
    ).all()
    statuses: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    sent_segments = 0
    for status, text, language, stored, n in by_text:
        statuses[status] += n
        if status not in NOT_SENT:
            counted = (stored if stored is not None else segments(text)) * n  # older rows: measured
            sent_segments += counted
            languages[f"messages_{language or 'unknown'}"] += n
            languages[f"segments_{language or 'unknown'}"] += counted
    planned = sum(statuses.values())
    sent = planned - sum(statuses[s] for s in NOT_SENT)
    answered = sum(statuses[s] for s in ANSWERED)
    delivered = statuses[S.DELIVERED]
    return {
        "planned": planned,
        "sent": sent,
        "accepted": statuses[S.ACCEPTED],  # sent, report still awaited
        "delivered": delivered,
        "failed": statuses[S.FAILED],
        "undelivered": statuses[S.UNDELIVERED],
        "rejected": statuses[S.REJECTED],
        "expired": statuses[S.EXPIRED],
        "pending": statuses[S.PENDING],
        "skipped_too_late": statuses[S.SKIPPED_TOO_LATE],
        "answered": answered,
        "delivery_rate": round(delivered / sent, 4) if sent else 0.0,
        "answered_delivery_rate": round(delivered / answered, 4) if answered else 0.0,
        "segments": sent_segments,
        **dict(sorted(languages.items())),
    }


def skips_now(
    connection: sa.Connection, day: date, fresh_after: datetime, in_region: str = EVERYONE
) -> dict[str, int]:
    """Why each subscription gets no message on day D, judged now (`skipped_<reason>`);
    `in_region`: one region's subscriptions (Regions.in_region on `s.region`)."""
    counts: dict[str, int] = dict(
        connection.execute(
            sa.text(
                f"SELECT reason, count(*) FROM ({CLASSIFIED.format(in_region=in_region)}) c WHERE reason <> '{ELIGIBLE}' GROUP BY reason"
            ).bindparams(
                sa.bindparam("day", day, type_=sa.Date),
                sa.bindparam("fresh_after", fresh_after, type_=TIMESTAMP),
            )
        ).all()
    )
    return {f"skipped_{reason}": int(counts.get(str(reason), 0)) for reason in SkipReason}


@dataclass
class GatewayDay:
    """One gateway's share of a day: taken and awaiting a report, delivered, failed (any final
    word but delivered), and the last reason it gave."""

    gateway: str
    accepted: int = 0
    delivered: int = 0
    failed: int = 0
    last_error: str | None = None


def gateway_figures(connection: sa.Connection, day: date) -> list[GatewayDay]:
    """Day D's messages (forecasts and replies) by the gateway that took or last refused them:
    what an operator reads after connecting a gateway (SPEC §17). Messages never tried have no
    gateway and are not listed."""
    rows = connection.execute(
        sa.text(
            "SELECT gateway, status, count(*), max(last_error) FROM sms_messages "
            "WHERE send_date = :day AND gateway IS NOT NULL GROUP BY gateway, status"
        ).bindparams(sa.bindparam("day", day, type_=sa.Date))
    ).all()
    found: dict[str, GatewayDay] = {}
    for gateway, status, n, error in rows:
        line = found.setdefault(gateway, GatewayDay(gateway))
        if status == S.DELIVERED:
            line.delivered += n
        elif status == S.ACCEPTED:
            line.accepted += n
        elif status in ANSWERED:
            line.failed += n
            line.last_error = error or line.last_error
    return [found[g] for g in sorted(found)]
