"""The words the SMS outbox stores and reports: message statuses and skip reasons.

Kept beside the SMS code (the shared vocabulary module is the ingest's); every SQL statement,
metric and API answer about messages uses these spellings.
"""

from enum import StrEnum


class MessageStatus(StrEnum):
    """`sms_messages.status`: pending -> accepted -> one final state, never backwards."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self not in OPEN_STATUSES


OPEN_STATUSES = (MessageStatus.PENDING, MessageStatus.ACCEPTED)
FINAL_STATUSES = tuple(s for s in MessageStatus if s.is_final)
# what a gateway may report for a message (SPEC §7); `accepted` is the send answer, not a report
REPORT_STATUSES = FINAL_STATUSES


class SkipReason(StrEnum):
    """Why a subscription gets no message on a day; run metadata says `skipped_<reason>`."""

    ALREADY_SENT = "already_sent"
    CANCELLED = "cancelled"
    UNPAID = "unpaid"
    NO_GRID_POINT = "no_grid_point"
    STALE_FORECAST = "stale_forecast"
