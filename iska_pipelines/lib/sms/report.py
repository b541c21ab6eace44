"""Run metadata for the SMS job: plain ints and floats the UI can plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from iska_pipelines.lib.sms.outbox import OutboxPlan
from iska_pipelines.lib.sms.sending import BatchSent
from iska_pipelines.lib.vocabulary import MessageStatus


def plan_metrics(plan: OutboxPlan) -> dict[str, int]:
    return {"eligible": plan.eligible, "planned": plan.planned,
            **{f"skipped_{reason}": n for reason, n in plan.skipped.items()}}


def day_metrics(plan: OutboxPlan, batches: Sequence[BatchSent], expired: int,
                statuses: Mapping[str, int]) -> dict[str, int | float]:
    """This run's sending, and where the whole day stands (`day_*`, `pending`, `skipped_too_late`:
    every message of the day, whichever run sent it)."""
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
    }


def still_pending(plan: OutboxPlan, statuses: Mapping[str, int]) -> str:
    pending = statuses.get(MessageStatus.PENDING, 0)
    return (f"{pending} of the {sum(statuses.values())} messages for {plan.day} are still pending "
            "(a sender died, or another run holds them): re-execute this run from failure, or let "
            "the SMS catch-up sensor send them before ISKA_SMS_LATEST_HOUR")
