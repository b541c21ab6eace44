"""SMS claims and forecast issue times (SPEC §4, §7).

- `sms_messages.claimed_by` / `claim_expires_at`: a sender claims a message before sending it;
  an expired claim (its process died) is taken again.
- `sms_messages.status` widens to hold `skipped_too_late`.
- `forecasts.issued_at`: when the forecast was issued; the freshness clock. Existing rows take
  their `updated_at`, the best that is known about them.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if not _sqlite():  # SQLite does not enforce lengths; altering would copy the table
        op.alter_column("sms_messages", "status", existing_type=sa.String(12),
                        type_=sa.String(20), existing_nullable=False)
    op.add_column("sms_messages", sa.Column("claimed_by", sa.String(64)))
    op.add_column("sms_messages", sa.Column("claim_expires_at", TS))
    op.add_column("forecasts", sa.Column("issued_at", TS))
    op.execute("UPDATE forecasts SET issued_at = updated_at")


def downgrade() -> None:
    op.execute("UPDATE sms_messages SET status = 'pending' WHERE status = 'skipped_too_late'")
    with op.batch_alter_table("forecasts") as table:
        table.drop_column("issued_at")
    with op.batch_alter_table("sms_messages") as table:
        table.drop_column("claim_expires_at")
        table.drop_column("claimed_by")
        if not _sqlite():
            table.alter_column("status", existing_type=sa.String(20), type_=sa.String(12),
                               existing_nullable=False)
