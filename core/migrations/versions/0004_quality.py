"""quality: shadow mode on jobs and drafts, draft/final-report pairs and their scores

Revision ID: 0004
Revises: 0003

Written by hand (issue 21). The lead chains it after the other second-wave revisions.
New tables plus two columns with a server default (existing rows are live), through
batch_alter_table for SQLite's sake.
"""
from alembic import op
import sqlalchemy as sa
import radraft.core.db.base


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

UTC = radraft.core.db.base.UtcDateTime


def upgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mode', sa.String(length=8), nullable=False,
                                      server_default='live'))
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mode', sa.String(length=8), nullable=False,
                                      server_default='live'))

    op.create_table('quality_pair',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('accession', sa.String(length=64), nullable=False),
    sa.Column('draft_id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('study_uid', sa.String(length=64), nullable=False),
    sa.Column('profile', sa.String(length=64), nullable=False),
    sa.Column('modality', sa.String(length=16), nullable=False),
    sa.Column('rule_name', sa.String(length=128), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('draft_triage', sa.String(length=16), nullable=False),
    sa.Column('final_critical', sa.Boolean(), nullable=False),
    sa.Column('triage', sa.String(length=2), nullable=False),
    sa.Column('draft_labels', sa.JSON(), nullable=False),
    sa.Column('final_labels', sa.JSON(), nullable=False),
    sa.Column('study_complete_at', UTC(timezone=True), nullable=True),
    sa.Column('draft_ready_at', UTC(timezone=True), nullable=True),
    sa.Column('alert_at', UTC(timezone=True), nullable=True),
    sa.Column('final_signed_at', UTC(timezone=True), nullable=True),
    sa.Column('scored_at', UTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['draft_id'], ['draft.id'], name=op.f('fk_quality_pair_draft_id_draft')),
    sa.ForeignKeyConstraint(['report_id'], ['prior_report.id'], name=op.f('fk_quality_pair_report_id_prior_report')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_pair')),
    sa.UniqueConstraint('accession', 'draft_id', name=op.f('uq_quality_pair_accession_draft_id'))
    )
    with op.batch_alter_table('quality_pair', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quality_pair_accession'), ['accession'], unique=False)
        batch_op.create_index(batch_op.f('ix_quality_pair_draft_id'), ['draft_id'], unique=False)

    op.create_table('quality_score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pair_id', sa.Integer(), nullable=False),
    sa.Column('accession', sa.String(length=64), nullable=False),
    sa.Column('draft_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('ci_low', sa.Float(), nullable=True),
    sa.Column('ci_high', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['pair_id'], ['quality_pair.id'], name=op.f('fk_quality_score_pair_id_quality_pair'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_score')),
    sa.UniqueConstraint('accession', 'draft_id', 'name', name=op.f('uq_quality_score_accession_draft_id_name'))
    )
    with op.batch_alter_table('quality_score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quality_score_pair_id'), ['pair_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('quality_score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quality_score_pair_id'))
    op.drop_table('quality_score')
    with op.batch_alter_table('quality_pair', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quality_pair_draft_id'))
        batch_op.drop_index(batch_op.f('ix_quality_pair_accession'))
    op.drop_table('quality_pair')
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.drop_column('mode')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('mode')
