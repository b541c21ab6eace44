"""ISKA's tables: forecasts, subscriptions, billing attempts, SMS messages, ingested files.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "forecasts",
        sa.Column("gid", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("fcat24", sa.Numeric(12, 4), nullable=False),
        sa.Column("fcat48", sa.Numeric(12, 4), nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("msisdn", sa.String(15), nullable=False, unique=True),
        sa.Column("plan", sa.String(8), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("cancel_reason", sa.String(10)),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lid", sa.BigInteger),
        sa.Column("sub_date", TS, nullable=False),
        sa.Column("unsub_date", TS),
        sa.Column("next_billing_date", sa.Date),
        sa.Column("last_billing_date", sa.Date),
        sa.Column("failed_billing_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_event_at", TS, nullable=False),
        sa.Column("last_successful_sms_date", sa.Date),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_subscriptions_lid", "subscriptions", ["lid"])
    op.create_index(
        "ix_subscriptions_status_next_billing", "subscriptions", ["status", "next_billing_date"]
    )
    op.create_table(
        "billing_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscription_id", sa.Integer, nullable=False),
        sa.Column("msisdn", sa.String(15), nullable=False),
        sa.Column("plan", sa.String(8), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("idempotency_key", sa.String(80), nullable=False),
        sa.Column("attempted_at", TS, nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("response_excerpt", sa.String(500)),
        sa.Column("run_id", sa.String(64)),
    )
    op.create_index("ix_billing_attempts_subscription_id", "billing_attempts", ["subscription_id"])
    op.create_index("ix_billing_attempts_idempotency_key", "billing_attempts", ["idempotency_key"])
    op.create_table(
        "sms_messages",
        sa.Column("msgid", sa.String(36), primary_key=True),
        sa.Column("subscription_id", sa.Integer, nullable=False),
        sa.Column("msisdn", sa.String(15), nullable=False),
        sa.Column("send_date", sa.Date, nullable=False),
        sa.Column("text", sa.String(480), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("gateway", sa.String(255)),
        sa.Column("last_error", sa.String(500)),
        sa.Column("accepted_at", TS),
        sa.Column("delivered_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint(
            "subscription_id", "send_date", name="uq_sms_messages_subscription_day"
        ),
    )
    op.create_index("ix_sms_messages_send_date_status", "sms_messages", ["send_date", "status"])
    op.create_table(
        "ingested_files",
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
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_ingested_files_kind_sha256", "ingested_files", ["kind", "sha256"])


def downgrade() -> None:
    for table in ("ingested_files", "sms_messages", "billing_attempts", "subscriptions", "forecasts"):
        op.drop_table(table)
