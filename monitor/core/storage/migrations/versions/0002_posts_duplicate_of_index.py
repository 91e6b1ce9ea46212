"""index posts.duplicate_of: the scoring stage finds copies to count through it

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_posts_duplicate_of', 'posts', ['duplicate_of'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_posts_duplicate_of', table_name='posts')
