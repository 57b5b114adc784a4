"""consistency: the draft's consistency state, reasons, re-asks and ED alert decision

Revision ID: 0003
Revises: 0002

Written by hand (issue 19: the model's answer is checked before anything leaves). New
columns on `draft` only; drafts made before the check read `unchecked`.
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consistency', sa.String(length=16), nullable=False,
                                      server_default='unchecked'))
        batch_op.add_column(sa.Column('consistency_reasons', sa.JSON(), nullable=False,
                                      server_default='[]'))
        batch_op.add_column(sa.Column('reasks', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('alert_decision', sa.String(length=16), nullable=False,
                                      server_default='none'))
        batch_op.add_column(sa.Column('alert_basis', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.drop_column('alert_basis')
        batch_op.drop_column('alert_decision')
        batch_op.drop_column('reasks')
        batch_op.drop_column('consistency_reasons')
        batch_op.drop_column('consistency')
