"""ISKA's tables as SQLAlchemy Core metadata (SPEC §1, §5–7).

Alembic migrations create and upgrade these; the metadata is what the queries are written
against. Column names are the ones operators query directly.
"""

import polars as pl
import sqlalchemy as sa

metadata = sa.MetaData()

# 4 decimal places as published by the grid provider; Numeric keeps them exact (no float noise)
FCAT_PRECISION, FCAT_SCALE = 12, 4
FCAT = sa.Numeric(FCAT_PRECISION, FCAT_SCALE, asdecimal=True)
FCAT_TYPE = pl.Decimal(FCAT_PRECISION, FCAT_SCALE)  # the same values in polars frames
TIMESTAMP = sa.DateTime(timezone=True)

forecasts = sa.Table(
    "forecasts",
    metadata,
    sa.Column("gid", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("fcat24", FCAT, nullable=False),
    sa.Column("fcat48", FCAT, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    # when the forecast was issued (the file's `issued_at`, else its mtime): the freshness clock
    sa.Column("issued_at", TIMESTAMP),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("msisdn", sa.String(15), nullable=False, unique=True),
    sa.Column("plan", sa.String(8), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("cancel_reason", sa.String(10)),
    # ISO 639 code (SPEC §14); empty: the region's default, then ISKA_DEFAULT_LANGUAGE
    sa.Column("language", sa.String(8)),
    # the region code (SPEC §15); empty or no longer configured: the default region
    sa.Column("region", sa.String(16)),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("lid", sa.BigInteger, index=True),
    sa.Column("sub_date", TIMESTAMP, nullable=False),
    sa.Column("unsub_date", TIMESTAMP),
    sa.Column("next_billing_date", sa.Date),
    sa.Column("last_billing_date", sa.Date),
    sa.Column("failed_billing_count", sa.Integer, nullable=False, server_default="0"),
    # which subscription period this is: 1 at the first addition, +1 at every reactivation;
    # it names the billing intent (lib/billing/keys.py) even when two periods share a sub_date
    sa.Column("joins", sa.Integer, nullable=False, server_default="1"),
    sa.Column("last_event_at", TIMESTAMP, nullable=False),
    sa.Column("last_successful_sms_date", sa.Date),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    sa.Index("ix_subscriptions_status_next_billing", "status", "next_billing_date"),
)

billing_attempts = sa.Table(
    "billing_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("subscription_id", sa.Integer, nullable=False, index=True),
    sa.Column("msisdn", sa.String(15), nullable=False),
    sa.Column("plan", sa.String(8), nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("idempotency_key", sa.String(80), nullable=False, index=True),
    sa.Column("attempted_at", TIMESTAMP, nullable=False),
    sa.Column("outcome", sa.String(12), nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("response_excerpt", sa.String(500)),
    sa.Column("run_id", sa.String(64)),
    # asynchronous billing (SPEC §18): the X-Reference-Id the charge was asked under (derived from
    # the idempotency key), when and by what a `pending` attempt settled, and its last status lookup
    sa.Column("reference", sa.String(36)),
    sa.Column("settled_at", TIMESTAMP),
    sa.Column("settled_by", sa.String(10)),
    sa.Column("polled_at", TIMESTAMP),
    sa.Index("ix_billing_attempts_reference", "reference"),
    sa.Index(
        "ix_billing_attempts_pending",
        "attempted_at",
        sqlite_where=sa.text("outcome = 'pending'"),
        postgresql_where=sa.text("outcome = 'pending'"),
    ),
)

sms_messages = sa.Table(
    "sms_messages",
    metadata,
    sa.Column("msgid", sa.String(36), primary_key=True),
    # empty only for a reply to HELP from an msisdn ISKA does not know (SPEC §13)
    sa.Column("subscription_id", sa.Integer),
    sa.Column("msisdn", sa.String(15), nullable=False),
    sa.Column("send_date", sa.Date, nullable=False),
    sa.Column("text", sa.String(480), nullable=False),
    # the language whose template was used, `gsm7`|`ucs2`, and the paid segments (SPEC §14)
    sa.Column("language", sa.String(8)),
    sa.Column("encoding", sa.String(4)),
    sa.Column("segments", sa.Integer),
    # the region whose day this message belongs to (the sms_job partition's, SPEC §15)
    sa.Column("region", sa.String(16)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("gateway", sa.String(255)),
    # the gateway's own id of the message, when its answer gave one (SPEC §17)
    sa.Column("gateway_ref", sa.String(100)),
    sa.Column("last_error", sa.String(500)),
    sa.Column("accepted_at", TIMESTAMP),
    sa.Column("delivered_at", TIMESTAMP),
    # the sender holding the message; a claim past its expiry is free to take again
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claim_expires_at", TIMESTAMP),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    # `forecast` (the daily SMS, one per subscription and day) or `reply` (SPEC §13)
    sa.Column("kind", sa.String(10), nullable=False, server_default="forecast"),
    # the inbound message a reply answers: unique, so no inbound message gets two replies
    sa.Column("inbound_id", sa.Integer),
    sa.UniqueConstraint("inbound_id", name="uq_sms_messages_inbound_id"),
    sa.Index(
        "uq_sms_messages_forecast_day",
        "subscription_id",
        "send_date",
        unique=True,
        sqlite_where=sa.text("kind = 'forecast'"),
        postgresql_where=sa.text("kind = 'forecast'"),
    ),
    sa.Index("ix_sms_messages_send_date_status", "send_date", "status"),
    sa.Index("ix_sms_messages_gateway_ref", "gateway_ref"),
)

# every SMS a subscriber sent to the short code, once per gateway id (SPEC §13)
inbound_messages = sa.Table(
    "inbound_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("gateway_id", sa.String(100), nullable=False, unique=True),
    sa.Column("msisdn", sa.String(15), nullable=False, index=True),
    sa.Column("text", sa.String(1000), nullable=False),
    sa.Column("received_at", TIMESTAMP, nullable=False),
    sa.Column("keyword", sa.String(10), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("subscription_id", sa.Integer),
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

# append-only, tamper-evident log of every change of consent (SPEC §13, lib/consent/chain.py)
consent_events = sa.Table(
    "consent_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("msisdn", sa.String(15), nullable=False, index=True),
    sa.Column("event", sa.String(12), nullable=False),
    sa.Column("source", sa.String(10), nullable=False),
    sa.Column("detail", sa.String(500), nullable=False),
    sa.Column("at", TIMESTAMP, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

ingested_files = sa.Table(
    "ingested_files",
    metadata,
    sa.Column("partition_key", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("rows_in", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_applied", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rows_refused", sa.Integer, nullable=False, server_default="0"),
    sa.Column("outcome", sa.String(10), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("run_id", sa.String(64)),
    # JSON {"reason": rows}: the file's refused rows by reason (SPEC §16 file_intake)
    sa.Column("refused_by_reason", sa.Text),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
    sa.Index("ix_ingested_files_kind_sha256", "kind", "sha256"),
)

# the next free call slot of each capped gateway URL, shared by every process (lib/http/limiter.py)
gateway_pacing = sa.Table(
    "gateway_pacing",
    metadata,
    sa.Column("url", sa.String(255), primary_key=True),
    sa.Column("next_slot", sa.Float, nullable=False),  # epoch seconds
)

# reports that named a message by the gateway's id before its send outcome was written (SPEC §17)
early_reports = sa.Table(
    "early_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gateway_ref", sa.String(100), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("detail", sa.String(500)),
    sa.Column("received_at", TIMESTAMP, nullable=False),
)
