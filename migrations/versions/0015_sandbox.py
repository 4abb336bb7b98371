"""sandbox: privacy-computing policies, per-organization privacy budgets, the queries and their receipts;
the access log's status gains `failed` (a query the engine could not answer)

The access log's status CHECK is widened in place, as 0014 widened the ledger's kinds: PostgreSQL
drops and re-creates the constraint; SQLite edits the stored schema (keeping `accesses`, its rows
and its append-only triggers as they are).

Revision ID: 0015_sandbox
Revises: 0014_gateway
Create Date: 2026-12-02 09:00:00

"""
import sqlalchemy as sa
from alembic import op

from migrations.checks import replace_check

# revision identifiers, used by Alembic.
revision = '0015_sandbox'
down_revision = '0014_gateway'
branch_labels = None
depends_on = None


OLD_STATUSES = "status IN ('allowed', 'refused')"
NEW_STATUSES = "status IN ('allowed', 'refused', 'failed')"


def _statuses(old: str, new: str) -> None:
    replace_check('accesses', 'status', old, new)


def upgrade():
    _statuses(OLD_STATUSES, NEW_STATUSES)
    op.create_table('sandbox_policies',
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('min_group_size', sa.Integer(), nullable=False),
    sa.Column('blocked_columns', sa.JSON(), nullable=False),
    sa.Column('allowed_aggregates', sa.JSON(), nullable=False),
    sa.Column('max_groups', sa.Integer(), nullable=False),
    sa.Column('epsilon_budget_micro', sa.BigInteger(), nullable=True),
    sa.Column('bounds', sa.JSON(), nullable=False),
    sa.Column('rows_per_person', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('epsilon_budget_micro IS NULL OR epsilon_budget_micro > 0', name=op.f('ck_sandbox_policies_epsilon_budget')),
    sa.CheckConstraint('max_groups BETWEEN 1 AND 10000', name=op.f('ck_sandbox_policies_max_groups')),
    sa.CheckConstraint('min_group_size BETWEEN 5 AND 10000', name=op.f('ck_sandbox_policies_min_group_size')),
    sa.CheckConstraint('rows_per_person >= 1', name=op.f('ck_sandbox_policies_rows_per_person')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_sandbox_policies_product_id_products')),
    sa.PrimaryKeyConstraint('product_id', name=op.f('pk_sandbox_policies'))
    )
    op.create_table('privacy_budgets',
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('buyer_org_id', sa.String(length=40), nullable=False),
    sa.Column('spent_micro', sa.BigInteger(), nullable=False),
    sa.Column('queries', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('spent_micro >= 0', name=op.f('ck_privacy_budgets_spent_micro')),
    sa.ForeignKeyConstraint(['buyer_org_id'], ['organizations.id'], name=op.f('fk_privacy_budgets_buyer_org_id_organizations')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_privacy_budgets_product_id_products')),
    sa.PrimaryKeyConstraint('product_id', 'buyer_org_id', name=op.f('pk_privacy_budgets'))
    )
    op.create_table('sandbox_queries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('entitlement_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('buyer_org_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('release_id', sa.String(length=40), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sql', sa.Text(), nullable=False),
    sa.Column('executed_sql', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('refused_reason', sa.Text(), nullable=True),
    sa.Column('columns', sa.JSON(), nullable=True),
    sa.Column('rows', sa.JSON(), nullable=True),
    sa.Column('suppressed_groups', sa.Integer(), nullable=True),
    sa.Column('truncated', sa.Boolean(), nullable=False),
    sa.Column('epsilon_micro', sa.BigInteger(), nullable=True),
    sa.Column('elapsed_ms', sa.Integer(), nullable=True),
    sa.Column('result_sha256', sa.String(length=64), nullable=True),
    sa.Column('receipt_key_id', sa.String(length=64), nullable=True),
    sa.Column('receipt_signature', sa.String(length=128), nullable=True),
    sa.CheckConstraint("status IN ('succeeded', 'refused', 'failed')", name=op.f('ck_sandbox_queries_status')),
    sa.ForeignKeyConstraint(['buyer_org_id'], ['organizations.id'], name=op.f('fk_sandbox_queries_buyer_org_id_organizations')),
    sa.ForeignKeyConstraint(['entitlement_id'], ['entitlements.id'], name=op.f('fk_sandbox_queries_entitlement_id_entitlements')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_sandbox_queries_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sandbox_queries'))
    )
    op.create_index('ix_sandbox_queries_entitlement', 'sandbox_queries', ['entitlement_id', 'at'], unique=False)


def downgrade():
    op.drop_index('ix_sandbox_queries_entitlement', table_name='sandbox_queries')
    op.drop_table('sandbox_queries')
    op.drop_table('privacy_budgets')
    op.drop_table('sandbox_policies')
    _statuses(NEW_STATUSES, OLD_STATUSES)
