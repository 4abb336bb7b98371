"""Certificates for generated benchmark products (the second step of `python -m tests.bench.generate`).

Listed products without a certificate (what tests.bench.generate.listings inserts) get an approved
certification, its three approved stages and a real signed certificate, in batches: a block of
consecutive numbers is reserved per batch inside the batch's transaction, so numbering stays
gapless. Signatures and digests are the same as the workflow's, so every certificate verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from certification.certificates import VALIDITY, product_digest, signed_payload
from certification.models import Certificate, Certification, CertificationStage
from certification.states import STAGES, CertificateStatus, CertificationStatus, StageStatus
from exchange.db import new_id, utcnow
from exchange.sequences import reserve
from exchange.signing import services as signing
from listings.models import Product, ProductVersion
from listings.states import ProductStatus


def certify_generated(engine: Engine, *, batch: int = 2000,
                      progress: Callable[[int, int], None] | None = None) -> int:
    """Certify every listed product that has no certificate; returns how many were certified."""
    with Session(engine) as session:
        todo = session.execute(
            select(Product.id).where(Product.status == ProductStatus.LISTED, Product.certificate_number.is_(None))
            .order_by(Product.id)
        ).scalars().all()
        sign = signing.signer(session)
        kid = signing.current_key(session).kid
        session.commit()
    done = 0
    for start in range(0, len(todo), batch):
        ids = todo[start:start + batch]
        with Session(engine) as session, session.begin():
            rows = session.execute(
                select(Product.id, Product.owner_org_id, ProductVersion)
                .join(ProductVersion, (ProductVersion.product_id == Product.id)
                      & (ProductVersion.version == Product.listed_version))
                .where(Product.id.in_(ids))
                .order_by(Product.id)
            ).all()
            now = utcnow()
            first = reserve(session, "certificate", now.year, len(rows))
            certifications: list[dict[str, Any]] = []
            stages: list[dict[str, Any]] = []
            certs: list[dict[str, Any]] = []
            numbers: list[dict[str, Any]] = []
            for offset, (product_id, owner, version) in enumerate(rows):
                number = f"DFX-{now.year}-{first + offset:06d}"
                cid = new_id("cer")
                certifications.append({
                    "id": cid, "product_id": product_id, "product_version": version.version, "owner_org_id": owner,
                    "status": CertificationStatus.APPROVED, "documents": [], "round": 1, "notice_ends_at": None,
                    "certificate_number": number, "created_at": now, "updated_at": now,
                })
                stages.extend({"certification_id": cid, "name": str(name), "position": i,
                               "status": StageStatus.APPROVED, "assessor_org_id": None, "approvals": ["generator"],
                               "subject_digest": None, "updated_at": now} for i, name in enumerate(STAGES))
                cert = Certificate(
                    number=number, certification_id=cid, product_id=product_id, product_version=version.version,
                    vendor_org_id=owner, issued_at=now, expires_at=now + VALIDITY, status=CertificateStatus.VALID,
                    digest=product_digest(version.body(), product_id=product_id, version=version.version,
                                          vendor_org_id=owner),
                    key_id=kid, signature="",
                )
                _kid, cert.signature = sign(signed_payload(cert))
                certs.append({c.name: getattr(cert, c.name) for c in Certificate.__table__.columns
                              if c.name not in ("status_reason",)} | {"status_reason": None, "updated_at": now})
                numbers.append({"pid": product_id, "num": number})
            session.execute(insert(Certification.__table__), certifications)
            session.execute(insert(CertificationStage.__table__), stages)
            session.execute(insert(Certificate.__table__), certs)
            products = Product.__table__
            session.connection().execute(
                update(products).where(products.c.id == bindparam("pid")).values(certificate_number=bindparam("num")),
                numbers)
        done += len(ids)
        if progress:
            progress(done, len(todo))
    if todo:
        # Fresh planner statistics, and on PostgreSQL the products rewritten above vacuumed: a bulk
        # load leaves them to autovacuum, and until it comes round a join over unanalyzed
        # certificates can take a plan seconds slower and catalog counts read the bloated heap.
        postgres = engine.dialect.name == "postgresql"
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("certifications", "certification_stages", "certificates", "products"):
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}" if postgres else f"ANALYZE {table}")
    return done
