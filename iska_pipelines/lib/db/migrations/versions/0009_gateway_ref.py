"""`sms_messages.gateway_ref`: the gateway's own id of a message (SPEC §17).

Africa's Talking names a message in its delivery reports only by the id it answered the send
with (its callback URL is set once per account, not per message), so that id is kept, indexed,
to find the message a report is about. Other protocols' ids are kept too, for an operator
matching ISKA's rows against a gateway's records.

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


def downgrade() -> None:
    op.drop_index("ix_sms_messages_gateway_ref", "sms_messages")
    with op.batch_alter_table("sms_messages") as table:
        table.drop_column("gateway_ref")
