"""perf: contracts counted per seller and status from an index (the matcher's track record)

Revision ID: 0009_perf
Revises: 0007_trading
Create Date: 2026-11-28 06:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009_perf'
down_revision = '0007_trading'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.create_index('ix_contracts_seller_status', ['seller_org_id', 'status'], unique=False)


def downgrade():
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_index('ix_contracts_seller_status')
