"""gateway: vendors' API upstreams, buyers' API keys, usage periods; ledger entries gain the `usage`
kind; trades count what usage drawdowns released (`drawn_amount`)

The ledger's kind CHECK is widened in place. PostgreSQL: drop and re-create the constraint. SQLite
cannot alter a CHECK, and rebuilding `ledger_entries` (batch mode) would drop its append-only
triggers and trip the postings' foreign keys; SQLite documents editing the stored schema for a
loosened CHECK (ALTER TABLE, "making other kinds of table schema changes"), which keeps the table,
its rows and its triggers as they are.

Revision ID: 0014_gateway
Revises: 0013_delivery
Create Date: 2026-12-02 07:00:00

"""
import sqlalchemy as sa
from alembic import op

from migrations.checks import replace_check

# revision identifiers, used by Alembic.
revision = '0014_gateway'
down_revision = '0013_delivery'
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('payment', 'settlement', 'refund', 'payout', 'reversal')"
NEW_KINDS = "kind IN ('payment', 'settlement', 'refund', 'payout', 'reversal', 'usage')"


def _kinds(old: str, new: str) -> None:
    replace_check('ledger_entries', 'kind', old, new)


def upgrade():
    _kinds(OLD_KINDS, NEW_KINDS)
    op.add_column('trades', sa.Column('drawn_amount', sa.BigInteger(), server_default='0', nullable=False))
    op.create_table('api_upstreams',
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('base_url', sa.String(length=2000), nullable=False),
    sa.Column('auth_header_name', sa.String(length=100), nullable=True),
    sa.Column('auth_header_secret', sa.LargeBinary(), nullable=True),
    sa.Column('timeout_ms', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('timeout_ms BETWEEN 100 AND 25000', name=op.f('ck_api_upstreams_timeout_ms')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_api_upstreams_product_id_products')),
    sa.PrimaryKeyConstraint('product_id', name=op.f('pk_api_upstreams'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('entitlement_id', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=40), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['entitlement_id'], ['entitlements.id'], name=op.f('fk_api_keys_entitlement_id_entitlements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_index('ix_api_keys_entitlement', 'api_keys', ['entitlement_id', 'revoked_at'], unique=False)
    op.create_table('usage_periods',
    sa.Column('entitlement_id', sa.String(length=40), nullable=False),
    sa.Column('start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('calls', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('fee', sa.BigInteger(), nullable=True),
    sa.Column('entry_id', sa.String(length=40), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('calls >= 0', name=op.f('ck_usage_periods_calls')),
    sa.ForeignKeyConstraint(['entitlement_id'], ['entitlements.id'], name=op.f('fk_usage_periods_entitlement_id_entitlements')),
    sa.PrimaryKeyConstraint('entitlement_id', 'start', name=op.f('pk_usage_periods'))
    )
    op.create_index(op.f('ix_usage_periods_closed_at'), 'usage_periods', ['closed_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_usage_periods_closed_at'), table_name='usage_periods')
    op.drop_table('usage_periods')
    op.drop_index('ix_api_keys_entitlement', table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_table('api_upstreams')
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.drop_column('drawn_amount')
    _kinds(NEW_KINDS, OLD_KINDS)
