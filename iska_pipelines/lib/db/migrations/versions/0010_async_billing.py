"""Asynchronous billing (SPEC §18): `billing_attempts.reference`, `settled_at`, `settled_by`
and `polled_at`.

A MoMo charge is asked under a reference (`X-Reference-Id`) and answered later: the attempt is
written `pending` with its reference, found again by it when the callback comes or the poll
looks it up, and settled once (`settled_at`, `settled_by`). `polled_at` spaces the poll's
lookups of one charge ISKA_BILLING_POLL_MINUTES apart. The partial index keeps "which charges
are pending" cheap however many settled attempts the table holds.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PENDING = sa.text("outcome = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("billing_attempts") as table:
        table.add_column(sa.Column("reference", sa.String(36)))
        table.add_column(sa.Column("settled_at", sa.DateTime(timezone=True)))
        table.add_column(sa.Column("settled_by", sa.String(10)))
        table.add_column(sa.Column("polled_at", sa.DateTime(timezone=True)))
    op.create_index("ix_billing_attempts_reference", "billing_attempts", ["reference"])
    op.create_index(
        "ix_billing_attempts_pending",
        "billing_attempts",
        ["attempted_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_billing_attempts_pending", "billing_attempts")
    op.drop_index("ix_billing_attempts_reference", "billing_attempts")
    with op.batch_alter_table("billing_attempts") as table:
        for column in ("polled_at", "settled_by", "settled_at", "reference"):
            table.drop_column(column)
