"""`subscriptions.joins`: which subscription period a subscription is in (SPEC §6).

1 at the first addition, +1 at every reactivation. It goes into the billing Idempotency-Key, so
a rejoin that carries the same ts as the earlier period is still a new intent. Existing rows
start at 1: their keys already differ from the new format, so no old key is reused.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscriptions", sa.Column("joins", sa.Integer, nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as table:
        table.drop_column("joins")
