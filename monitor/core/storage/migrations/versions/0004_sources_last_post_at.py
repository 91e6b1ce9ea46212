"""sources.last_post_at: when a source last brought a new post, so a silent (push) source shows as stale

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sources') as batch:
        batch.add_column(sa.Column('last_post_at', sa.DateTime(), nullable=True))  # naive UTC, as schema.UTCDateTime stores it


def downgrade() -> None:
    with op.batch_alter_table('sources') as batch:
        batch.drop_column('last_post_at')
