"""`sms_messages.gateway_ref`: the gateway's own id of a message (SPEC §17), and
`early_reports`, the reports that named an id before ISKA had written it down.

Africa's Talking names a message in its delivery reports only by the id it answered the send
with (its callback URL is set once per account, not per message), so that id is kept, indexed,
to find the message a report is about. Other protocols' ids are kept too, for an operator
matching ISKA's rows against a gateway's records. A report can overtake the send's answer
(its outcome is written a batch at a time): such a report waits in `early_reports` and is
applied when the outcome naming its id is written.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sms_messages", sa.Column("gateway_ref", sa.String(100)))
    op.create_index("ix_sms_messages_gateway_ref", "sms_messages", ["gateway_ref"])
    op.create_table(
        "early_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("gateway_ref", sa.String(100), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.String(500)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("early_reports")
    op.drop_index("ix_sms_messages_gateway_ref", "sms_messages")
    with op.batch_alter_table("sms_messages") as table:
        table.drop_column("gateway_ref")
