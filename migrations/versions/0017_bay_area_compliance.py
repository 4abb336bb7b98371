"""Bay Area compliance: organizations' city and zone, revisions' personal_info, the rights register
(append-only), cross-border dossiers and the exporters' yearly personal-information volumes; contracts
by signing time (the regulator's report)

No data is invented: existing organizations have no city or zone, and existing revisions no
`personal_info` (a certified version keeps its body, and so its digest; the operators' list of
products needing a revision shows the personal-information ones). Existing contracts get no dossier
and existing certificates no registration: both are filed from the next approval or signature on.

Revision ID: 0017_bay_area_compliance
Revises: 0016_subscriptions
Create Date: 2026-12-02 20:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017_bay_area_compliance'
down_revision = '0016_subscriptions'
branch_labels = None
depends_on = None

GD_CITIES = ("guangzhou", "shenzhen", "zhuhai", "foshan", "huizhou", "dongguan", "zhongshan", "jiangmen",
             "zhaoqing", "shantou", "shaoguan", "heyuan", "meizhou", "shanwei", "yangjiang", "zhanjiang",
             "maoming", "qingyuan", "chaozhou", "jieyang", "yunfu")
ZONES = ("hengqin", "qianhai", "nansha", "hetao")
DOSSIER_STATUSES = ("not_required", "awaiting_filing", "filed", "overdue")


def _in(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


APPEND_ONLY = "is append-only: a registration is never edited; a cancellation registers its end"
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER registrations_no_{op_.lower()} BEFORE {op_} ON registrations "
    f"BEGIN SELECT RAISE(ABORT, 'registrations {APPEND_ONLY}'); END"
    for op_ in ("UPDATE", "DELETE")
]
PG_TRIGGERS = [
    f"""CREATE FUNCTION registrations_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% {APPEND_ONLY} (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$""",
    *(f"CREATE TRIGGER registrations_no_{op_.lower()} BEFORE {op_} ON registrations "
      f"FOR EACH ROW EXECUTE FUNCTION registrations_refuse_change()" for op_ in ("UPDATE", "DELETE")),
]


def upgrade():
    # organizations carries no trigger, so SQLite's batch rebuild loses nothing.
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('city', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('zone', sa.String(length=20), nullable=True))
        batch_op.create_check_constraint(op.f('ck_organizations_city'), sa.text(_in('city', GD_CITIES)))
        batch_op.create_check_constraint(op.f('ck_organizations_zone'), sa.text(_in('zone', ZONES)))
        batch_op.create_check_constraint(op.f('ck_organizations_city_region'),
                                         sa.text("city IS NULL OR region = 'GD'"))
        batch_op.create_check_constraint(op.f('ck_organizations_zone_city'),
                                         sa.text('zone IS NULL OR city IS NOT NULL'))
    with op.batch_alter_table('product_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('personal_info', sa.JSON(), nullable=True))
    op.create_table('registrations',
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('product_id', sa.String(length=40), nullable=False),
    sa.Column('product_version', sa.Integer(), nullable=False),
    sa.Column('holder_org_id', sa.String(length=40), nullable=False),
    sa.Column('rights', sa.JSON(), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=True),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('contract_id', sa.String(length=40), nullable=True),
    sa.Column('cancels', sa.String(length=20), nullable=True),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.CheckConstraint("type IN ('initial', 'licence', 'change', 'cancellation')",
                       name=op.f('ck_registrations_type')),
    sa.CheckConstraint('seq >= 1', name=op.f('ck_registrations_seq')),
    sa.ForeignKeyConstraint(['holder_org_id'], ['organizations.id'],
                            name=op.f('fk_registrations_holder_org_id_organizations')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_registrations_product_id_products')),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_registrations')),
    sa.UniqueConstraint('year', 'seq', name='uq_registrations_year_seq')
    )
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.create_index('ix_registrations_cancels', ['cancels'], unique=False)
        batch_op.create_index('ix_registrations_contract', ['contract_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_registrations_holder_org_id'), ['holder_org_id'], unique=False)
        batch_op.create_index('ix_registrations_product', ['product_id', 'registered_at'], unique=False)
    statements = PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)
    op.create_table('dossiers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('contract_id', sa.String(length=40), nullable=False),
    sa.Column('exporter_org_id', sa.String(length=40), nullable=False),
    sa.Column('importer_org_id', sa.String(length=40), nullable=False),
    sa.Column('path', sa.String(length=30), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('rule_ids', sa.JSON(), nullable=False),
    sa.Column('rule_version', sa.String(length=60), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=False),
    sa.Column('subjects', sa.BigInteger(), nullable=False),
    sa.Column('cumulative_subjects', sa.BigInteger(), nullable=False),
    sa.Column('cumulative_sensitive_subjects', sa.BigInteger(), nullable=False),
    sa.Column('filing_required', sa.Boolean(), nullable=False),
    sa.Column('approval_required', sa.Boolean(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('provisional_due_date', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('filed_by', sa.String(length=40), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('approved_by', sa.String(length=40), nullable=True),
    sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_in('status', DOSSIER_STATUSES), name=op.f('ck_dossiers_status')),
    sa.CheckConstraint('subjects >= 0 AND cumulative_subjects >= subjects', name=op.f('ck_dossiers_subjects')),
    sa.CheckConstraint('cumulative_sensitive_subjects >= 0', name=op.f('ck_dossiers_sensitive_subjects')),
    sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], name=op.f('fk_dossiers_contract_id_contracts')),
    sa.ForeignKeyConstraint(['exporter_org_id'], ['organizations.id'],
                            name=op.f('fk_dossiers_exporter_org_id_organizations')),
    sa.ForeignKeyConstraint(['importer_org_id'], ['organizations.id'],
                            name=op.f('fk_dossiers_importer_org_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dossiers')),
    sa.UniqueConstraint('contract_id', name=op.f('uq_dossiers_contract_id'))
    )
    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.create_index('ix_dossiers_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_dossiers_exporter_org_id'), ['exporter_org_id'], unique=False)
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.create_index('ix_contracts_signed_at', ['signed_at', 'number'], unique=False)
    op.create_table('crossborder_volumes',
    sa.Column('exporter_org_id', sa.String(length=40), nullable=False),
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('subjects', sa.BigInteger(), nullable=False),
    sa.Column('sensitive_subjects', sa.BigInteger(), nullable=False),
    sa.Column('contracts', sa.Integer(), nullable=False),
    sa.CheckConstraint('subjects >= 0 AND sensitive_subjects >= 0', name=op.f('ck_crossborder_volumes_subjects')),
    sa.ForeignKeyConstraint(['exporter_org_id'], ['organizations.id'],
                            name=op.f('fk_crossborder_volumes_exporter_org_id_organizations')),
    sa.PrimaryKeyConstraint('exporter_org_id', 'year', name=op.f('pk_crossborder_volumes'))
    )


def downgrade():
    op.drop_table('crossborder_volumes')
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        batch_op.drop_index('ix_contracts_signed_at')
    with op.batch_alter_table('dossiers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dossiers_exporter_org_id'))
        batch_op.drop_index('ix_dossiers_due')
    op.drop_table('dossiers')
    postgres = op.get_bind().dialect.name == "postgresql"
    for op_ in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS registrations_no_{op_}" + (" ON registrations" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS registrations_refuse_change()")
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_index('ix_registrations_product')
        batch_op.drop_index(batch_op.f('ix_registrations_holder_org_id'))
        batch_op.drop_index('ix_registrations_contract')
        batch_op.drop_index('ix_registrations_cancels')
    op.drop_table('registrations')
    with op.batch_alter_table('product_versions', schema=None) as batch_op:
        batch_op.drop_column('personal_info')
    with op.batch_alter_table('organizations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_organizations_zone_city'), type_='check')
        batch_op.drop_constraint(op.f('ck_organizations_city_region'), type_='check')
        batch_op.drop_constraint(op.f('ck_organizations_zone'), type_='check')
        batch_op.drop_constraint(op.f('ck_organizations_city'), type_='check')
        batch_op.drop_column('zone')
        batch_op.drop_column('city')
