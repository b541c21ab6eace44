"""Languages and encodings (SPEC §14).

`subscriptions.language`: the subscriber's ISO 639 code; empty means "not chosen", and the SMS
follows the region's default, then ISKA_DEFAULT_LANGUAGE. `sms_messages.language`, `.encoding`
(`gsm7`|`ucs2`) and `.segments`: how each message went out; empty for messages planned before.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscriptions", sa.Column("language", sa.String(8)))
    op.add_column("sms_messages", sa.Column("language", sa.String(8)))
    op.add_column("sms_messages", sa.Column("encoding", sa.String(4)))
    op.add_column("sms_messages", sa.Column("segments", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("sms_messages") as table:
        table.drop_column("segments")
        table.drop_column("encoding")
        table.drop_column("language")
    with op.batch_alter_table("subscriptions") as table:
        table.drop_column("language")
