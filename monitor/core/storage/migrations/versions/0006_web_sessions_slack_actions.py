"""server-side browser sessions (web_sessions), handled Slack clicks (slack_actions), the health write probe

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import monitor.core.storage.schema

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_sessions',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', monitor.core.storage.schema.UTCDateTime(), nullable=False),
    sa.Column('expires_at', monitor.core.storage.schema.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_web_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_web_sessions'))
    )
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_web_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('slack_actions',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('received_at', monitor.core.storage.schema.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_slack_actions'))
    )
    with op.batch_alter_table('slack_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_actions_received_at'), ['received_at'], unique=False)

    op.create_table('health_checks',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('checked_at', monitor.core.storage.schema.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_checks'))
    )


def downgrade() -> None:
    op.drop_table('health_checks')
    op.drop_table('slack_actions')
    op.drop_table('web_sessions')
