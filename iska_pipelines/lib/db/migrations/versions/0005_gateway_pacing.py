"""`gateway_pacing`: the next free call slot of each capped gateway URL (SPEC §12, §15).

One row per URL with a cap (SMS_MAX_TPS, BILLING_MAX_TPS); every process of every run takes its
call slots from it, so a cap holds however many step processes send at once.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_pacing",
        sa.Column("url", sa.String(255), primary_key=True),
        sa.Column("next_slot", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateway_pacing")
