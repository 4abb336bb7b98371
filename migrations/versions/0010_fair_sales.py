"""fair volumes per trade (fair_sales) instead of a running total per currency (fair_volumes)

A fair's volume is the money its trades brought into escrow, less refunds, summed exactly on read:
a running BIGINT total of amounts each within 2^53-1 overflowed after 1,024 of them (and counted
contracts nobody paid). Existing fairs are backfilled from their trades.

Revision ID: 0010_fair_sales
Revises: 0009_perf
Create Date: 2026-12-01 20:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010_fair_sales'
down_revision = "0009_perf"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('fair_sales',
    sa.Column('ref', sa.String(length=40), nullable=False),
    sa.Column('fair_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("currency IN ('CNY', 'HKD', 'MOP')", name=op.f('ck_fair_sales_currency')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_fair_sales_amount')),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_fair_sales_fair_id_fairs')),
    sa.PrimaryKeyConstraint('ref', name=op.f('pk_fair_sales'))
    )
    with op.batch_alter_table('fair_sales', schema=None) as batch_op:
        batch_op.create_index('ix_fair_sales_fair_currency', ['fair_id', 'currency'], unique=False)
    op.execute(
        "INSERT INTO fair_sales (ref, fair_id, currency, amount) "
        "SELECT id, fair_id, currency, paid_amount - refunded_amount FROM trades "
        "WHERE fair_id IS NOT NULL AND escrowed_at IS NOT NULL"
    )
    op.drop_table('fair_volumes')


def downgrade():
    op.create_table('fair_volumes',
    sa.Column('fair_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("currency IN ('CNY', 'HKD', 'MOP')", name=op.f('ck_fair_volumes_currency')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_fair_volumes_amount')),
    sa.ForeignKeyConstraint(['fair_id'], ['fairs.id'], name=op.f('fk_fair_volumes_fair_id_fairs')),
    sa.PrimaryKeyConstraint('fair_id', 'currency', name=op.f('pk_fair_volumes'))
    )
    # A total past 2^63-1 cannot go back into a BIGINT: the downgrade then fails rather than lie.
    op.execute(
        "INSERT INTO fair_volumes (fair_id, currency, amount) "
        "SELECT fair_id, currency, SUM(amount) FROM fair_sales GROUP BY fair_id, currency"
    )
    with op.batch_alter_table('fair_sales', schema=None) as batch_op:
        batch_op.drop_index('ix_fair_sales_fair_currency')
    op.drop_table('fair_sales')
