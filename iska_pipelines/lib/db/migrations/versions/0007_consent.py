"""Consent and inbound SMS (SPEC §13).

- `inbound_messages`: every SMS a subscriber sent, once per gateway id.
- `consent_events`: the append-only log of consent changes, each row chained to the previous
  one by SHA-256 (lib/consent/chain.py).
- `sms_messages.kind` (`forecast`|`reply`) and `.inbound_id` (unique: one reply per inbound
  message). The one-message-per-subscription-and-day rule now holds for forecasts only (a
  partial unique index), and `subscription_id` may be empty (HELP from an unknown msisdn).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
FORECASTS_ONLY = sa.text("kind = 'forecast'")


def upgrade() -> None:
    with op.batch_alter_table("sms_messages") as table:
        table.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="forecast"))
        table.add_column(sa.Column("inbound_id", sa.Integer))
        table.alter_column("subscription_id", existing_type=sa.Integer, nullable=True)
        table.drop_constraint("uq_sms_messages_subscription_day", type_="unique")
        table.create_unique_constraint("uq_sms_messages_inbound_id", ["inbound_id"])
    op.create_index(
        "uq_sms_messages_forecast_day",
        "sms_messages",
        ["subscription_id", "send_date"],
        unique=True,
        sqlite_where=FORECASTS_ONLY,
        postgresql_where=FORECASTS_ONLY,
    )
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("gateway_id", sa.String(100), nullable=False, unique=True),
        sa.Column("msisdn", sa.String(15), nullable=False, index=True),
        sa.Column("text", sa.String(1000), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("keyword", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("subscription_id", sa.Integer),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("msisdn", sa.String(15), nullable=False, index=True),
        sa.Column("event", sa.String(12), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consent_events")
    op.drop_table("inbound_messages")
    op.drop_index("uq_sms_messages_forecast_day", table_name="sms_messages")
    op.execute("DELETE FROM sms_messages WHERE kind <> 'forecast'")
    with op.batch_alter_table("sms_messages") as table:
        table.drop_constraint("uq_sms_messages_inbound_id", type_="unique")
        table.create_unique_constraint("uq_sms_messages_subscription_day", ["subscription_id", "send_date"])
        table.alter_column("subscription_id", existing_type=sa.Integer, nullable=False)
        table.drop_column("inbound_id")
        table.drop_column("kind")
