"""payments: one pending payment per trade, duplicate successes refunded; provider calls may cancel

Payment statuses gain `refund_pending` and `refunded` (a provider success that arrived for a payment
no longer pending, or for a trade no longer awaiting payment, is refunded) with `refund_reason` and
`refunded_at`; a partial unique index keeps at most one `pending` payment per trade. Provider calls
gain the `cancel` operation (a PaymentIntent cancelled at the provider) and an index for the
reconciliation job's scan of calls begun but never answered.

Revision ID: 0012_payment_refunds
Revises: 0011_status_changes
Create Date: 2026-12-01 23:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012_payment_refunds'
down_revision = '0011_status_changes'
branch_labels = None
depends_on = None

OLD_PAYMENT_STATUSES = "status IN ('pending', 'succeeded', 'failed', 'canceled')"
NEW_PAYMENT_STATUSES = "status IN ('pending', 'succeeded', 'failed', 'canceled', 'refund_pending', 'refunded')"
OLD_OPERATIONS = "operation IN ('payment', 'refund', 'transfer')"
NEW_OPERATIONS = "operation IN ('payment', 'refund', 'transfer', 'cancel')"
PENDING = sa.text("status = 'pending'")


def upgrade():
    # Neither table carries triggers, so SQLite's batch rebuild loses nothing.
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refund_reason', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f('ck_payments_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_status'), sa.text(NEW_PAYMENT_STATUSES))
        batch_op.create_check_constraint(
            op.f('ck_payments_refund_reason'), sa.text("refund_reason IS NULL OR refund_reason IN ('duplicate')"))
    # After the rebuild: a plain CREATE INDEX on both engines.
    op.create_index('uq_payments_one_pending', 'payments', ['trade_id'], unique=True,
                    postgresql_where=PENDING, sqlite_where=PENDING)
    with op.batch_alter_table('provider_calls', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_provider_calls_operation'), type_='check')
        batch_op.create_check_constraint(op.f('ck_provider_calls_operation'), sa.text(NEW_OPERATIONS))
    op.create_index('ix_provider_calls_status', 'provider_calls', ['status', 'created_at'], unique=False)


def downgrade():
    op.drop_index('ix_provider_calls_status', table_name='provider_calls')
    with op.batch_alter_table('provider_calls', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_provider_calls_operation'), type_='check')
        batch_op.create_check_constraint(op.f('ck_provider_calls_operation'), sa.text(OLD_OPERATIONS))
    op.drop_index('uq_payments_one_pending', table_name='payments')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_refund_reason'), type_='check')
        batch_op.drop_constraint(op.f('ck_payments_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_status'), sa.text(OLD_PAYMENT_STATUSES))
        batch_op.drop_column('refunded_at')
        batch_op.drop_column('refund_reason')
