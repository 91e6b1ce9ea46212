"""posts.pending with a partial index (scoring cost follows new work), leases and replicas tables

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending', sa.Boolean(), server_default=sa.false(), nullable=False))
    # Waiting for the scoring stage: unscored originals, and unscored copies by another author.
    op.execute(
        "UPDATE posts SET pending = true WHERE NOT EXISTS (SELECT 1 FROM scores WHERE scores.post_id = posts.id) "
        "AND (posts.duplicate_of IS NULL OR NOT EXISTS (SELECT 1 FROM posts AS o WHERE o.id = posts.duplicate_of "
        "AND o.author = posts.author))"
    )
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.create_index('ix_posts_pending', ['created_at', 'id'], unique=False,
                              postgresql_where=sa.text('pending'), sqlite_where=sa.text('pending = 1'))
    op.create_table('leases',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('acquired_at', sa.Float(), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    op.create_table('replicas',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('roles', sa.String(length=200), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('seen_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replicas'))
    )


def downgrade() -> None:
    op.drop_table('replicas')
    op.drop_table('leases')
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_pending')
        batch_op.drop_column('pending')
