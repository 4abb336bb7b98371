"""delivery: entitlements, releases and their files, the append-only access log; trades gain
delivery evidence and the start of their acceptance period

Revision ID: 0013_delivery
Revises: 0012_payment_refunds
Create Date: 2026-12-02 06:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013_delivery'
down_revision = '0012_payment_refunds'
branch_labels = None
depends_on = None

APPEND_ONLY = "is append-only: the access log is never edited"
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER accesses_no_{op_.lower()} BEFORE {op_} ON accesses "
    f"BEGIN SELECT RAISE(ABORT, 'accesses {APPEND_ONLY}'); END"
    for op_ in ("UPDATE", "DELETE")
]
PG_TRIGGERS = [
    f"""CREATE FUNCTION accesses_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% {APPEND_ONLY} (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$""",
    *(f"CREATE TRIGGER accesses_no_{op_.lower()} BEFORE {op_} ON accesses "
      f"FOR EACH ROW EXECUTE FUNCTION accesses_refuse_change()" for op_ in ("UPDATE", "DELETE")),
]


def upgrade():
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_evidence', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('acceptance_started_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('entitlements',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('trade_id', sa.String(length=40), nullable=False),
    sa.Column('contract_id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('product_version', sa.Integer(), nullable=False),
    sa.Column('certificate_number', sa.String(length=32), nullable=False),
    sa.Column('buyer_org_id', sa.String(length=40), nullable=False),
    sa.Column('seller_org_id', sa.String(length=40), nullable=False),
    sa.Column('delivery_mode', sa.String(length=30), nullable=False),
    sa.Column('scope', sa.String(length=100), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('calls_included', sa.BigInteger(), nullable=True),
    sa.Column('calls_used', sa.BigInteger(), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('active', 'suspended', 'revoked', 'expired')", name=op.f('ck_entitlements_status')),
    sa.CheckConstraint('calls_used >= 0', name=op.f('ck_entitlements_calls_used')),
    sa.ForeignKeyConstraint(['buyer_org_id'], ['organizations.id'], name=op.f('fk_entitlements_buyer_org_id_organizations')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_entitlements_contract_id_contracts')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_entitlements_product_id_products')),
    sa.ForeignKeyConstraint(['seller_org_id'], ['organizations.id'], name=op.f('fk_entitlements_seller_org_id_organizations')),
    sa.ForeignKeyConstraint(['trade_id'], ['trades.id'], name=op.f('fk_entitlements_trade_id_trades')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entitlements')),
    sa.UniqueConstraint('contract_id', name=op.f('uq_entitlements_contract_id')),
    sa.UniqueConstraint('trade_id', name=op.f('uq_entitlements_trade_id'))
    )
    op.create_index('ix_entitlements_buyer', 'entitlements', ['buyer_org_id', 'created_at'], unique=False)
    op.create_index('ix_entitlements_seller', 'entitlements', ['seller_org_id', 'created_at'], unique=False)
    op.create_index('ix_entitlements_product', 'entitlements', ['product_id', 'status'], unique=False)
    op.create_index('ix_entitlements_checked', 'entitlements', ['status', 'checked_at'], unique=False)
    op.create_table('releases',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_by', sa.String(length=40), nullable=False),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('receipt_key_id', sa.String(length=64), nullable=True),
    sa.Column('receipt_signature', sa.String(length=128), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'published', 'withdrawn')", name=op.f('ck_releases_status')),
    sa.CheckConstraint("status = 'draft' OR manifest_sha256 IS NOT NULL", name=op.f('ck_releases_published_has_manifest')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_releases_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_releases'))
    )
    op.create_index('ix_releases_product', 'releases', ['product_id', 'status', 'published_at'], unique=False)
    op.create_table('release_files',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('release_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('uploaded_by', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('bytes >= 0', name=op.f('ck_release_files_bytes')),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], name=op.f('fk_release_files_release_id_releases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_release_files')),
    sa.UniqueConstraint('release_id', 'name', name=op.f('uq_release_files_release_id'))
    )
    op.create_table('accesses',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('entitlement_id', sa.String(length=40), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=True),
    sa.Column('api_key_id', sa.String(length=40), nullable=True),
    sa.Column('release_id', sa.String(length=40), nullable=True),
    sa.Column('object', sa.String(length=300), nullable=True),
    sa.Column('bytes', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('refused_reason', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.CheckConstraint("kind IN ('download_link', 'download', 'api_call', 'query')", name=op.f('ck_accesses_kind')),
    sa.CheckConstraint("status IN ('allowed', 'refused')", name=op.f('ck_accesses_status')),
    sa.ForeignKeyConstraint(['entitlement_id'], ['entitlements.id'], name=op.f('fk_accesses_entitlement_id_entitlements')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accesses'))
    )
    op.create_index('ix_accesses_entitlement', 'accesses', ['entitlement_id', 'id'], unique=False)
    statements = PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for op_ in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS accesses_no_{op_}" + (" ON accesses" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS accesses_refuse_change()")
    op.drop_index('ix_accesses_entitlement', table_name='accesses')
    op.drop_table('accesses')
    op.drop_table('release_files')
    op.drop_index('ix_releases_product', table_name='releases')
    op.drop_table('releases')
    for name in ('ix_entitlements_checked', 'ix_entitlements_product', 'ix_entitlements_seller', 'ix_entitlements_buyer'):
        op.drop_index(name, table_name='entitlements')
    op.drop_table('entitlements')
    with op.batch_alter_table('trades', schema=None) as batch_op:
        batch_op.drop_column('acceptance_started_at')
        batch_op.drop_column('delivery_evidence')
