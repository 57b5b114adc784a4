"""console: login sessions, draft pictures, worker heartbeats

Revision ID: 0002
Revises: 0001

Written by hand (the web console, issue 9). New tables only, so it is the same on SQLite
and PostgreSQL; indexes go through batch_alter_table like 0001 for SQLite's sake.
"""
from alembic import op
import sqlalchemy as sa
import radraft.core.db.base


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

UTC = radraft.core.db.base.UtcDateTime


def upgrade() -> None:
    op.create_table('web_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', UTC(timezone=True), nullable=False),
    sa.Column('last_seen_at', UTC(timezone=True), nullable=False),
    sa.Column('expires_at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_web_session_user_id_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_session')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_web_session_token_sha256'))
    )
    with op.batch_alter_table('web_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_session_user_id'), ['user_id'], unique=False)

    op.create_table('draft_image',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('draft_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('frame_index', sa.Integer(), nullable=False),
    sa.Column('png', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['draft_id'], ['draft.id'], name=op.f('fk_draft_image_draft_id_draft')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_draft_image')),
    sa.UniqueConstraint('draft_id', 'kind', 'frame_index', name=op.f('uq_draft_image_draft_id_kind_frame_index'))
    )
    with op.batch_alter_table('draft_image', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_draft_image_draft_id'), ['draft_id'], unique=False)

    op.create_table('worker_heartbeat',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('queues', sa.String(length=64), nullable=False),
    sa.Column('started_at', UTC(timezone=True), nullable=False),
    sa.Column('seen_at', UTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_heartbeat')),
    sa.UniqueConstraint('name', name=op.f('uq_worker_heartbeat_name'))
    )


def downgrade() -> None:
    op.drop_table('worker_heartbeat')
    with op.batch_alter_table('draft_image', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_draft_image_draft_id'))
    op.drop_table('draft_image')
    with op.batch_alter_table('web_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_session_user_id'))
    op.drop_table('web_session')
