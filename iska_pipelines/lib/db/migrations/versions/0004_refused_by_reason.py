"""`ingested_files.refused_by_reason`: a file's refused rows counted by reason, as JSON.

The daily `file_intake` figures (SPEC §16) count refused rows by reason over a day's files; the
reasons were only in each file's `.rejected.csv` and its run's metadata. Older rows stay NULL.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ingested_files", sa.Column("refused_by_reason", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("ingested_files") as table:
        table.drop_column("refused_by_reason")
