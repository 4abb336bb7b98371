"""Demo certifications: most demo products certified through the real workflow; one left in review,
one with changes requested, one rejected (idempotent: products already under certification are skipped)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import services
from certification.models import Certification
from exchange.identity.models import Organization, User
from exchange.principal import Principal
from listings.demo import show_listed_products
from listings.models import Product

DEMO_DOCS = [{"name": "数据来源说明 data-source statement.pdf", "sha256": "5" * 64},
             {"name": "合规自评报告 compliance self-assessment.pdf", "sha256": "6" * 64}]


def _admin(session: Session, org: Organization) -> Principal:
    user = session.execute(
        select(User).where(User.org_id == org.id, User.role == "admin").order_by(User.created_at)
    ).scalars().first()
    return Principal.of(user)


def _operators(session: Session, operator_org: Organization) -> list[Principal]:
    users = session.execute(select(User).where(User.org_id == operator_org.id).order_by(User.created_at)).scalars()
    return [Principal.of(u) for u in users]


def seed(session: Session, orgs: dict[str, Organization]) -> dict[str, int]:
    """Certify the demo catalog; returns counts by outcome."""
    # exchange/identity/demo.py seeds two operator users: four-eyes needs two different ones.
    operators = _operators(session, orgs["operator"])
    op1, op2 = operators[0], operators[1]
    assessor = _admin(session, orgs["gd_assessor"])
    vendor_ids = [o.id for k, o in orgs.items() if o.type == "vendor" and o.status == "verified"]
    already = select(Certification.product_id)
    drafts = session.execute(
        select(Product).where(Product.owner_org_id.in_(vendor_ids), Product.status == "draft",
                              Product.id.not_in(already))
        .order_by(Product.created_at, Product.id)
    ).scalars().all()
    outcomes = {"approved": 0, "in_review": 0, "changes_requested": 0, "rejected": 0}
    special = {len(drafts) - 1: "in_review", len(drafts) - 2: "changes_requested", len(drafts) - 3: "rejected"}
    for i, product in enumerate(drafts):
        vendor = _admin(session, session.get(Organization, product.owner_org_id))
        cert = services.submit(session, product_id=product.id, documents=DEMO_DOCS, actor=vendor)
        services.assign(session, certification_id=cert.id, stage="quality", assessor_org_id=assessor.org_id,
                        actor=op1)
        outcome = special.get(i, "approved")
        if outcome == "in_review":
            services.review(session, certification_id=cert.id, stage="quality", decision="approve",
                            comment="样本完整 sample complete", checklist={"sample_rows": True}, actor=assessor)
            # A stage still pending for the assessor (the console's queue of an assessor).
            services.assign(session, certification_id=cert.id, stage="ownership",
                            assessor_org_id=assessor.org_id, actor=op1)
        elif outcome == "changes_requested":
            services.review(session, certification_id=cert.id, stage="quality", decision="request_changes",
                            comment="请补充字段说明 please document the columns", checklist=None, actor=assessor)
        elif outcome == "rejected":
            services.review(session, certification_id=cert.id, stage="ownership", decision="reject",
                            comment="权属证明不足 insufficient proof of ownership", checklist=None, actor=op1)
        else:
            services.review(session, certification_id=cert.id, stage="quality", decision="approve",
                            comment="样本完整 sample complete", checklist={"sample_rows": True}, actor=assessor)
            services.review(session, certification_id=cert.id, stage="ownership", decision="approve",
                            comment="来源合同已核验 source contracts verified", checklist=None, actor=op1)
            services.review(session, certification_id=cert.id, stage="compliance", decision="approve",
                            comment="分类分级合规 classification checked", checklist=None, actor=op1)
            if cert.status == "in_review":
                services.review(session, certification_id=cert.id, stage="compliance", decision="approve",
                                comment="复核通过 second review", checklist=None, actor=op2)
        outcomes[outcome] += 1
    session.flush()
    show_listed_products(session)
    return outcomes
