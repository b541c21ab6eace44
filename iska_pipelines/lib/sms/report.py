"""Run metadata for the SMS job: plain ints and floats the UI can plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import sqlalchemy as sa

from iska_pipelines.lib.sms.outbox import OutboxPlan
from iska_pipelines.lib.sms.sending import BatchSent
from iska_pipelines.lib.vocabulary import MessageStatus


def plan_metrics(plan: OutboxPlan) -> dict[str, int]:
    return {
        "eligible": plan.eligible,
        "planned": plan.planned,
        **{f"skipped_{reason}": n for reason, n in plan.skipped.items()},
    }


def day_languages(
    connection: sa.Connection, day: date, in_region: str = "1 = 1"
) -> dict[str, tuple[int, int]]:
    """Day D's messages a gateway accepted, and their paid segments, per language (SPEC §14)."""
    rows = connection.execute(
        sa.text(f"""
        SELECT coalesce(language, 'unknown') AS language, count(*) AS messages,
               coalesce(sum(segments), 0) AS segments
        FROM sms_messages WHERE send_date = :day AND accepted_at IS NOT NULL AND kind = 'forecast'
              AND {in_region}
        GROUP BY coalesce(language, 'unknown') ORDER BY 1
    """).bindparams(sa.bindparam("day", day, type_=sa.Date))
    )
    return {row.language: (int(row.messages), int(row.segments)) for row in rows}


def language_metrics(languages: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    """`messages_<code>` and `segments_<code>` for every language of the day, and the totals."""
    metrics = {"day_segments": sum(segments for _, segments in languages.values())}
    for code, (messages, segments) in sorted(languages.items()):
        metrics |= {f"messages_{code}": messages, f"segments_{code}": segments}
    return metrics


def day_metrics(
    plan: OutboxPlan,
    batches: Sequence[BatchSent],
    expired: int,
    statuses: Mapping[str, int],
    languages: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, int | float]:
    """This run's sending, and where the whole day stands (`day_*`, `pending`, `skipped_too_late`,
    `messages_<language>`, `segments_<language>`: every message of the day, whichever run sent
    it)."""
    sent = sum(b.sent for b in batches)
    seconds = (max(b.finished for b in batches) - min(b.started for b in batches)) if batches else 0.0
    return {
        **plan_metrics(plan),
        "sent": sent,
        "accepted": sum(b.accepted for b in batches),
        "rejected": sum(b.rejected for b in batches),
        "failed": sum(b.failed for b in batches),
        "expired": expired,
        "batches": len(batches),
        "send_seconds": round(seconds, 3),
        "messages_per_second": round(sent / seconds, 1) if seconds > 0 else 0.0,
        "day_messages": sum(statuses.values()),
        "pending": statuses.get(MessageStatus.PENDING, 0),
        "skipped_too_late": statuses.get(MessageStatus.SKIPPED_TOO_LATE, 0),
        **language_metrics(languages or {}),
    }


def still_pending(plan: OutboxPlan, statuses: Mapping[str, int]) -> str:
    pending = statuses.get(MessageStatus.PENDING, 0)
    return (
        f"{pending} of the {sum(statuses.values())} messages for {plan.day} are still pending "
        "(a sender died, or another run holds them): re-execute this run from failure, or let "
        "the SMS catch-up sensor send them before ISKA_SMS_LATEST_HOUR"
    )
