"""index the copies among posts by brand and time: the viral read finds older posts copied again through it

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_posts_copies_created', 'posts', ['brand', 'created_at'], unique=False,
                    postgresql_where=sa.text('duplicate_of IS NOT NULL'), sqlite_where=sa.text('duplicate_of IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_posts_copies_created', table_name='posts')
