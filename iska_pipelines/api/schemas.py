"""What the API's JSON looks like, for FastAPI and the OpenAPI document at /docs.

Inputs are lenient about JSON types (a number or its text, as a CSV cell would hold it) because
the data rules live in lib/inbox/record_checks.py, shared with the files; outputs are exact.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

Number = float | int | str | None


class FieldErrorOut(BaseModel):
    field: str
    reason: str
    message: str


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldErrorOut] | None = None


# --- forecasts --------------------------------------------------------------------------------


class ForecastIn(BaseModel):
    """A grid point's forecast; the point as lat/lon or as `geom` (WKT/EWKT or hex WKB)."""

    model_config = ConfigDict(extra="ignore")
    gid: int | str | None = None
    lat: Number = None
    lon: Number = None
    geom: str | None = None
    fcat24: Number = None
    fcat48: Number = None
    is_active: bool | int | str | None = None


class Forecast(BaseModel):
    gid: int
    lat: float
    lon: float
    fcat24: str = Field(description="decimal with 4 places, as text so no digit is lost")
    fcat48: str
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: dict) -> Forecast:
        return cls(**{**row, "fcat24": _fcat(row["fcat24"]), "fcat48": _fcat(row["fcat48"])})


def _fcat(value: Decimal | float) -> str:
    return f"{Decimal(str(value)).quantize(Decimal('0.0001'))}"


# --- subscriptions ----------------------------------------------------------------------------


class SubscriptionIn(BaseModel):
    """An addition when created; on PUT/PATCH the changes become update, addition or
    cancellation events. `ts` (optional, default now) is the event time."""

    model_config = ConfigDict(extra="ignore")
    msisdn: str | int | None = None
    plan: str | int | None = Field(
        None,
        validation_alias=AliasChoices("plan", "service_id", "original_sub_plan", "sub_plan"),
        description="11 or daily, 21 or weekly (also accepted as service_id or original_sub_plan)",
    )
    lat: Number = None
    lon: Number = None
    ts: str | None = None
    status: str | None = Field(None, description="active or cancelled (PUT/PATCH)")
    language: str | None = Field(
        None,
        description="ISO 639 code of the subscriber's SMS language (en, fr, tw, ee, ha, dag, "
        "...); unset or empty: the region's default, then ISKA_DEFAULT_LANGUAGE",
    )
    region: str | None = Field(
        None,
        description="region code of ISKA_REGIONS_FILE (GH, NG, ...; SPEC §15); unset or empty: "
        "the one chosen before, else the region of the msisdn's longest prefix, else the default region",
    )


class Subscription(BaseModel):
    id: int
    msisdn: str
    plan: str
    status: str
    cancel_reason: str | None
    language: str | None = Field(description="ISO 639 code; null: ISKA_DEFAULT_LANGUAGE's texts")
    region: str | None = Field(None, description="region code (SPEC §15); null: the default region")
    lat: float
    lon: float
    lid: int | None
    sub_date: datetime
    unsub_date: datetime | None
    next_billing_date: date | None
    last_billing_date: date | None
    failed_billing_count: int
    last_event_at: datetime
    last_successful_sms_date: date | None
    created_at: datetime
    updated_at: datetime


class BillingAttempt(BaseModel):
    id: int
    subscription_id: int
    msisdn: str
    plan: str
    period_start: date
    idempotency_key: str
    attempted_at: datetime
    outcome: str
    http_status: int | None
    response_excerpt: str | None
    run_id: str | None


class ConsentRecord(BaseModel):
    """One row of the consent log (SPEC §13)."""

    id: int
    msisdn: str
    event: str = Field(description="added, cancelled, opted_out or rejoined")
    source: str = Field(description="file, api, billing or sms")
    detail: str = Field(description="the file's name and hash, or the inbound message")
    at: datetime
    prev_hash: str = Field(description="the hash of the row before it in the whole log")
    hash: str = Field(description="SHA-256 of prev_hash and this row's content")


class SmsMessage(BaseModel):
    msgid: str
    subscription_id: int
    msisdn: str
    send_date: date
    text: str
    language: str | None = Field(description="the language whose template was used")
    encoding: str | None = Field(description="gsm7 or ucs2")
    segments: int | None = Field(description="paid segments of the text")
    kind: str = Field("forecast", description="forecast (the daily SMS) or reply (to an inbound SMS)")
    status: str
    attempts: int
    gateway: str | None
    last_error: str | None
    accepted_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime


# --- tasks ------------------------------------------------------------------------------------


class TaskId(BaseModel):
    task_id: str


class TaskStatusOut(BaseModel):
    task_status: str = Field(description="PENDING, STARTED, SUCCESS, FAILURE or EXPIRED")
    task_id: str
    detail: str = Field(
        "",
        description="what happened, in words: rows applied and refused, why a "
        "file was refused, or which earlier file a duplicate matched",
    )


class TriggeredRun(BaseModel):
    region: str = Field(description="the region code (`default` without a regions file)")
    partition: str = Field(description="the region's local day the run sends for (`day|region`)")
    run_id: str = Field(description="task_status/ answers its status")
    launched: bool = Field(description="false when that day's run was already queued or running")


class SmsTriggered(BaseModel):
    """Every region's run in `runs`; the first (the default region's) also at the top level,
    as the original clients read it."""

    run_id: str
    task_id: str = Field(description="the run id again: task_status/ answers its status")
    partition: str = Field(description="the local day the run sends for")
    launched: bool = Field(description="false when that day's run was already queued or running")
    runs: list[TriggeredRun] = Field(description="one per region, the default region's first")
