"""Regions (SPEC §15).

`subscriptions.region`: the subscriber's region code; `sms_messages.region`: the region whose
day the message belongs to. Empty (every row before this revision) means the default region,
the first of ISKA_REGIONS_FILE or the one region without it.

Revision ID: 0008
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscriptions", sa.Column("region", sa.String(16)))
    op.add_column("sms_messages", sa.Column("region", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("sms_messages") as table:
        table.drop_column("region")
    with op.batch_alter_table("subscriptions") as table:
        table.drop_column("region")
