"""The words ISKA stores and reports: file kinds, refusal reasons, charge outcomes, statuses.

Kept in one place so the CSV readers, the SQL and the metadata never disagree on a spelling.
"""

from enum import StrEnum


class FileKind(StrEnum):
    FORECASTS = "forecasts"
    ADDITIONS = "additions"
    CANCELLATIONS = "cancellations"
    UPDATES = "updates"

    @property
    def is_subscription(self) -> bool:
        return self is not FileKind.FORECASTS


SUBSCRIPTION_KINDS = (FileKind.ADDITIONS, FileKind.CANCELLATIONS, FileKind.UPDATES)


class Reason(StrEnum):
    """Why one row of a file was refused (SPEC §3); written to `<name>.rejected.csv`."""

    INVALID_GID = "invalid_gid"
    INVALID_FCAT = "invalid_fcat"
    INVALID_LAT = "invalid_lat"
    INVALID_LON = "invalid_lon"
    INVALID_GEOM = "invalid_geom"
    INVALID_IS_ACTIVE = "invalid_is_active"
    INVALID_ISSUED_AT = "invalid_issued_at"
    INVALID_MSISDN = "invalid_msisdn"
    INVALID_TS = "invalid_ts"
    INVALID_PLAN = "invalid_plan"
    INVALID_LANGUAGE = "invalid_language"  # not an ISO 639 code nor a language of the templates
    INVALID_REGION = "invalid_region"  # not a code of ISKA_REGIONS_FILE (SPEC §15)
    FUTURE_TS = "future_ts"  # more than ISKA_MAX_FUTURE_MINUTES ahead: a typo must not lock anyone out
    DUPLICATE_IN_FILE = "duplicate_in_file"
    UNKNOWN_MSISDN = "unknown_msisdn"
    STALE_EVENT = "stale_event"
    NO_GRID_POINT_NEARBY = "no_grid_point_nearby"


class FileOutcome(StrEnum):
    """What happened to a dropped file, as kept in `ingested_files.outcome`."""

    APPLIED = "applied"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"  # same content as an applied file: moved to duplicates/, not applied
    UNKNOWN = "unknown"  # no kind in its name: moved to rejected/unknown/


class Plan(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


# carrier plan codes of the original service (`service_id` / `original_sub_plan`)
PLAN_CODES = {"11": Plan.DAILY, "21": Plan.WEEKLY, "daily": Plan.DAILY, "weekly": Plan.WEEKLY}
PLAN_TO_CODE: dict[str, int] = {Plan.DAILY: 11, Plan.WEEKLY: 21}


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class CancelReason(StrEnum):
    USER = "user"
    BILLING = "billing"
    API = "api"
    OPT_OUT = "opt_out"  # a STOP word by SMS (SPEC §13)


class ChargeOutcome(StrEnum):
    """`billing_attempts.outcome`: what one charge came to (SPEC §6, §18).

    `pending` (an asynchronous gateway took the request, the payer has not answered yet) is
    the only outcome that changes later, once, to `success`, `declined` or `expired`.
    """

    SUCCESS = "success"
    DECLINED = "declined"
    ERROR = "error"
    AUTH_ERROR = "auth_error"
    PENDING = "pending"  # accepted by the gateway (202), not settled: no SMS, no cancellation
    EXPIRED = "expired"  # still pending after ISKA_BILLING_PENDING_HOURS: not a decline


class BillingProtocol(StrEnum):
    """`BILLING_PROTOCOL`: how the billing gateway is spoken to (SPEC §6, §18)."""

    ISKA = "iska"  # one synchronous POST answers success or failure
    MOMO = "momo"  # MTN MoMo Collections requesttopay: 202, then a callback or a status lookup


class SettledBy(StrEnum):
    """`billing_attempts.settled_by`: what told ISKA how an asynchronous charge ended."""

    REQUEST = "request"  # the run's own status lookup after a 409 (the reference existed)
    CALLBACK = "callback"  # the gateway's callback to ISKA's signed route
    POLL = "poll"  # the poll sensor's status lookup, or its giving up (`expired`)


class MomoStatus(StrEnum):
    """A requesttopay's `status` in MoMo's status lookup and callback."""

    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    PENDING = "PENDING"


class MessageStatus(StrEnum):
    """`sms_messages.status`: pending -> accepted -> one final state, never backwards; only the
    gateway's acceptance or report of a skipped message overrules the skip (lib/sms/delivery.py)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"
    SKIPPED_TOO_LATE = "skipped_too_late"  # still pending at ISKA_SMS_LATEST_HOUR: never sent
    SKIPPED_OPTED_OUT = "skipped_opted_out"  # its subscriber texted STOP before it went out

    @property
    def is_final(self) -> bool:
        return self not in OPEN_STATUSES


OPEN_STATUSES = (MessageStatus.PENDING, MessageStatus.ACCEPTED)
FINAL_STATUSES = tuple(s for s in MessageStatus if s.is_final)
# what a gateway may report for a message (SPEC §7); `accepted` is the send answer, not a report
REPORT_STATUSES = tuple(
    s for s in FINAL_STATUSES if s not in (MessageStatus.SKIPPED_TOO_LATE, MessageStatus.SKIPPED_OPTED_OUT)
)


class MessageKind(StrEnum):
    """`sms_messages.kind`: the daily forecast, or the answer to one inbound SMS (SPEC §13)."""

    FORECAST = "forecast"
    REPLY = "reply"  # never billed; at most one per inbound message


class Keyword(StrEnum):
    """What the first word of an inbound SMS asks for (SPEC §13); `inbound_messages.keyword`."""

    STOP = "stop"
    START = "start"
    YES = "yes"
    HELP = "help"
    OTHER = "other"  # stored for the operator, no reply


class InboundOutcome(StrEnum):
    """What an inbound SMS did; `inbound_messages.outcome`."""

    OPTED_OUT = "opted_out"
    REJOIN_ASKED = "rejoin_asked"
    REJOINED = "rejoined"
    HELPED = "helped"
    NO_PENDING_ASK = "no_pending_ask"  # YES without a START in the last 24 h
    ALREADY_ACTIVE = "already_active"  # START or YES from an active subscriber
    UNKNOWN_MSISDN = "unknown_msisdn"  # not a subscriber: no reply (except to HELP)
    FOR_OPERATOR = "for_operator"  # not a keyword


class ConsentEvent(StrEnum):
    """`consent_events.event`: a change of consent (SPEC §13)."""

    ADDED = "added"  # a new subscription, or a cancelled one reactivated (file or API)
    CANCELLED = "cancelled"
    OPTED_OUT = "opted_out"
    REJOINED = "rejoined"


class ConsentSource(StrEnum):
    """`consent_events.source`: where the change came from."""

    FILE = "file"
    API = "api"
    BILLING = "billing"
    SMS = "sms"


class SkipReason(StrEnum):
    """Why a subscription gets no message on a day; run metadata says `skipped_<reason>`."""

    ALREADY_SENT = "already_sent"
    CANCELLED = "cancelled"
    UNPAID = "unpaid"
    NO_GRID_POINT = "no_grid_point"
    STALE_FORECAST = "stale_forecast"


class TaskStatus(StrEnum):
    """`task_status` (SPEC §8): the old service's words for an upload or a run."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    EXPIRED = "EXPIRED"


# Dagster run status names of a run that has not finished yet (the sensor and the API both ask)
RUNS_IN_PROGRESS = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")
