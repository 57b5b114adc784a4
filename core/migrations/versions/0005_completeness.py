"""completeness: MPPS steps, storage-commitment requests, prior prefetch

Revision ID: 0005
Revises: 0004

Written for issue 23 (generated against 0002, then read). New tables only, so it is the
same on SQLite and PostgreSQL. The lead chains down_revision at merge.
"""
from alembic import op
import sqlalchemy as sa
import radraft.core.db.base


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('commitment_request',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('transaction_uid', sa.String(length=64), nullable=False),
    sa.Column('calling_aet', sa.String(length=16), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', radraft.core.db.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('requested_at', radraft.core.db.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('reported_at', radraft.core.db.base.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commitment_request')),
    sa.UniqueConstraint('calling_aet', 'transaction_uid', name=op.f('uq_commitment_request_calling_aet_transaction_uid'))
    )
    op.create_table('mpps_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sop_uid', sa.String(length=64), nullable=False),
    sa.Column('study_uid', sa.String(length=64), nullable=False),
    sa.Column('accession', sa.String(length=64), nullable=False),
    sa.Column('modality', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('calling_aet', sa.String(length=16), nullable=False),
    sa.Column('dataset', sa.Text(), nullable=False),
    sa.Column('discontinued_code', sa.String(length=64), nullable=False),
    sa.Column('discontinued_meaning', sa.String(length=128), nullable=False),
    sa.Column('created_at', radraft.core.db.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', radraft.core.db.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('final_at', radraft.core.db.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('settled_at', radraft.core.db.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('settle_note', sa.String(length=256), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mpps_step')),
    sa.UniqueConstraint('sop_uid', name=op.f('uq_mpps_step_sop_uid'))
    )
    with op.batch_alter_table('mpps_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mpps_step_study_uid'), ['study_uid'], unique=False)

    op.create_table('mpps_instance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('step_id', sa.Integer(), nullable=False),
    sa.Column('series_uid', sa.String(length=64), nullable=False),
    sa.Column('sop_class_uid', sa.String(length=64), nullable=False),
    sa.Column('sop_uid', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['step_id'], ['mpps_step.id'], name=op.f('fk_mpps_instance_step_id_mpps_step'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mpps_instance')),
    sa.UniqueConstraint('step_id', 'sop_uid', name=op.f('uq_mpps_instance_step_id_sop_uid'))
    )
    with op.batch_alter_table('mpps_instance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mpps_instance_sop_uid'), ['sop_uid'], unique=False)
        batch_op.create_index(batch_op.f('ix_mpps_instance_step_id'), ['step_id'], unique=False)

    op.create_table('prior_prefetch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('issuer', sa.String(length=64), nullable=False),
    sa.Column('profile', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', radraft.core.db.base.UtcDateTime(timezone=True), nullable=True),
    sa.Column('chosen', sa.JSON(), nullable=False),
    sa.Column('held', sa.Integer(), nullable=False),
    sa.Column('retrieved', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', radraft.core.db.base.UtcDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', radraft.core.db.base.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['imaging_order.id'], name=op.f('fk_prior_prefetch_order_id_imaging_order'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prior_prefetch')),
    sa.UniqueConstraint('order_id', name=op.f('uq_prior_prefetch_order_id'))
    )


def downgrade() -> None:
    op.drop_table('prior_prefetch')
    with op.batch_alter_table('mpps_instance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mpps_instance_step_id'))
        batch_op.drop_index(batch_op.f('ix_mpps_instance_sop_uid'))

    op.drop_table('mpps_instance')
    with op.batch_alter_table('mpps_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mpps_step_study_uid'))

    op.drop_table('mpps_step')
    op.drop_table('commitment_request')
