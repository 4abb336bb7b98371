"""perf: indexes for the matcher's track record (contracts by seller and status) and for catalog
counts over any combination of facets (one narrow index over every facet of listed products)

Revision ID: 0009_perf
Revises: 0007_trading
Create Date: 2026-11-28 06:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009_perf'
down_revision = "0008_outbox"
branch_labels = None
depends_on = None


def upgrade():
    # Plain CREATE INDEX on both engines (no batch mode: a SQLite table rebuild would drop triggers).
    op.create_index('ix_contracts_seller_status', 'contracts', ['seller_org_id', 'status'], unique=False)
    op.create_index('ix_products_status_facets', 'products',
                    ['status', 'delivery_mode', 'classification', 'origin_region', 'price_model', 'category',
                     'price_currency'], unique=False)


def downgrade():
    op.drop_index('ix_products_status_facets', table_name='products')
    op.drop_index('ix_contracts_seller_status', table_name='contracts')
