"""subscriptions: one trade per period (the unique contract of a trade becomes unique per contract and
period), the trade status `cancelled`, the periods on trades, and the subscriptions table

Existing trades are period 1 of their contract, with no period bounds (they are not subscriptions:
a contract signed before this revision keeps the terms it was signed with). On SQLite the trades
table is rebuilt to drop its UNIQUE (contract_id), which SQLite cannot alter in place.

Revision ID: 0016_subscriptions
Revises: 0015_sandbox
Create Date: 2026-12-02 13:00:00

"""
import sqlalchemy as sa
from alembic import op

from migrations.checks import rebuild_sqlite_table, replace_check

# revision identifiers, used by Alembic.
revision = '0016_subscriptions'
down_revision = '0015_sandbox'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('awaiting_payment', 'escrowed', 'delivered', 'settled', 'disputed', 'refunded')"
NEW_STATUSES = ("status IN ('awaiting_payment', 'escrowed', 'delivered', 'settled', 'disputed', 'refunded', "
                "'cancelled')")
OLD_UNIQUE = "CONSTRAINT uq_trades_contract_id UNIQUE (contract_id)"
NEW_UNIQUE = "CONSTRAINT uq_trades_contract_period UNIQUE (contract_id, period_index)"
PERIOD_CHECKS = ("CONSTRAINT ck_trades_period_index CHECK (period_index >= 1), "
                 "CONSTRAINT ck_trades_period_bounds CHECK ((period_start IS NULL) = (period_end IS NULL))")


def _sqlite_edit(old_unique: str, new_unique: str, old_statuses: str, new_statuses: str):
    def edit(sql: str) -> str:
        if old_unique not in sql or old_statuses not in sql:
            raise RuntimeError("the trades table is not the one this revision expects")
        return sql.replace(old_unique, new_unique).replace(old_statuses, new_statuses)
    return edit


def upgrade():
    op.add_column('trades', sa.Column('period_index', sa.Integer(), server_default='1', nullable=False))
    op.add_column('trades', sa.Column('period_start', sa.DateTime(timezone=True), nullable=True))
    op.add_column('trades', sa.Column('period_end', sa.DateTime(timezone=True), nullable=True))
    op.add_column('trades', sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('trades', sa.Column('cancel_reason', sa.String(length=300), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        rebuild_sqlite_table('trades', _sqlite_edit(OLD_UNIQUE, f"{NEW_UNIQUE}, {PERIOD_CHECKS}", OLD_STATUSES,
                                                   NEW_STATUSES))
    else:
        op.drop_constraint(op.f('uq_trades_contract_id'), 'trades', type_='unique')
        op.create_unique_constraint('uq_trades_contract_period', 'trades', ['contract_id', 'period_index'])
        replace_check('trades', 'status', OLD_STATUSES, NEW_STATUSES)
        # Every existing row holds them (period 1, no bounds); SQLite's are in the rebuilt table.
        op.create_check_constraint(op.f('ck_trades_period_index'), 'trades', sa.text('period_index >= 1'))
        op.create_check_constraint(op.f('ck_trades_period_bounds'), 'trades',
                                   sa.text('(period_start IS NULL) = (period_end IS NULL)'))
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.create_index('ix_trades_unpaid_period', ['status', 'period_start'], unique=False)
        batch_op.create_index(batch_op.f('ix_trades_contract_id'), ['contract_id'], unique=False)
    op.add_column('entitlements', sa.Column('subscription', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table('subscriptions',
    sa.Column('contract_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('unit', sa.String(length=10), nullable=False),
    sa.Column('anchor', sa.DateTime(timezone=True), nullable=False),
    sa.Column('periods', sa.Integer(), nullable=False),
    sa.Column('auto_renew', sa.Boolean(), nullable=False),
    sa.Column('latest_period', sa.Integer(), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('renews_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'cancelled', 'lapsed', 'ended')", name=op.f('ck_subscriptions_status')),
    sa.CheckConstraint("unit IN ('month', 'year')", name=op.f('ck_subscriptions_unit')),
    sa.CheckConstraint('periods BETWEEN 1 AND 36', name=op.f('ck_subscriptions_periods')),
    sa.CheckConstraint('latest_period >= 1', name=op.f('ck_subscriptions_latest_period')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_subscriptions_contract_id_contracts')),
    sa.PrimaryKeyConstraint('contract_id', name=op.f('pk_subscriptions'))
    )
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_subscriptions_renewal', ['status', 'renews_at'], unique=False)
        batch_op.create_index('ix_subscriptions_end', ['status', 'ends_at'], unique=False)


def downgrade():
    # Refused while any contract has more than one trade (its periods would not fit the old shape).
    many = op.get_bind().exec_driver_sql(
        "SELECT count(*) FROM (SELECT contract_id FROM trades GROUP BY contract_id HAVING count(*) > 1) AS m").scalar()
    cancelled = op.get_bind().exec_driver_sql("SELECT count(*) FROM trades WHERE status = 'cancelled'").scalar()
    if many or cancelled:
        raise RuntimeError("cannot downgrade: subscriptions have several trades per contract, or trades are cancelled")
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index('ix_subscriptions_end')
        batch_op.drop_index('ix_subscriptions_renewal')
    op.drop_table('subscriptions')
    op.drop_column('entitlements', 'subscription')
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trades_contract_id'))
        batch_op.drop_index('ix_trades_unpaid_period')
    if op.get_bind().dialect.name == "sqlite":
        rebuild_sqlite_table('trades', _sqlite_edit(f"{NEW_UNIQUE}, {PERIOD_CHECKS}", OLD_UNIQUE, NEW_STATUSES,
                                                   OLD_STATUSES))
    else:
        op.drop_constraint(op.f('ck_trades_period_bounds'), 'trades', type_='check')
        op.drop_constraint(op.f('ck_trades_period_index'), 'trades', type_='check')
        replace_check('trades', 'status', NEW_STATUSES, OLD_STATUSES)
        op.drop_constraint('uq_trades_contract_period', 'trades', type_='unique')
        op.create_unique_constraint(op.f('uq_trades_contract_id'), 'trades', ['contract_id'])
    for column in ('cancel_reason', 'cancelled_at', 'period_end', 'period_start', 'period_index'):
        op.drop_column('trades', column)
