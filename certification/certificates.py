"""Certificates: sequential numbers, canonical digests, Ed25519 signatures, and their life cycle.

`digest` = sha256 hex of the RFC 8785 canonical JSON of the certified product revision (every field
of the creation body as stored, plus `product_id`, `version`, `vendor_org_id`). `signature` = base64
Ed25519 by the exchange key `key_id` over the canonical JSON of exactly SIGNED_FIELDS as the API shows
them, so anyone can verify it with the JWKS alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import registrations
from certification.models import Certificate
from certification.states import CERTIFICATE_TRANSITIONS, CertificateStatus
from exchange.canonical import sha256_hex
from exchange.db import utcnow
from exchange.errors import Conflict, NotFound
from exchange.events import outbox
from exchange.expiry import Expiry
from exchange.fields import Facts, iso_z
from exchange.identity import audit
from exchange.principal import Principal
from exchange.sequences import yearly_number
from exchange.signing import services as signing
from exchange.states import load_for_update, transition
from listings import services as listings

VALIDITY = timedelta(days=365)
SIGNED_FIELDS = ("number", "product_id", "product_version", "vendor_org_id", "issued_at", "expires_at",
                 "digest", "key_id")


def product_digest(body: dict[str, Any], *, product_id: str, version: int, vendor_org_id: str) -> str:
    """The certified revision's digest (API.md: the creation body as stored plus three ids)."""
    return sha256_hex({**body, "product_id": product_id, "version": version, "vendor_org_id": vendor_org_id})


def next_number(session: Session, year: int) -> str:
    """`DFX-YYYY-NNNNNN`, sequential per year with no gaps or duplicates."""
    return yearly_number(session, "certificate", "DFX", year)


def signed_payload(cert: Certificate) -> dict[str, Any]:
    return {
        "number": cert.number,
        "product_id": cert.product_id,
        "product_version": cert.product_version,
        "vendor_org_id": cert.vendor_org_id,
        "issued_at": iso_z(cert.issued_at),
        "expires_at": iso_z(cert.expires_at),
        "digest": cert.digest,
        "key_id": cert.key_id,
    }


def issue(session: Session, *, certification_id: str, product_id: str, version: int,
          vendor_org_id: str, now: datetime | None = None) -> Certificate:
    """Issue and sign the certificate of a product revision; older certificates become superseded."""
    now = (now or utcnow()).replace(microsecond=0)
    body = listings.version_body(listings.get_version(session, product_id=product_id, version=version))
    number = next_number(session, now.year)
    cert = Certificate(
        number=number, certification_id=certification_id, product_id=product_id, product_version=version,
        vendor_org_id=vendor_org_id, issued_at=now, expires_at=now + VALIDITY,
        status=CertificateStatus.VALID,
        digest=product_digest(body, product_id=product_id, version=version, vendor_org_id=vendor_org_id),
        key_id="", signature="",
    )
    key_id = signing.current_key(session).kid
    cert.key_id = key_id
    signed_kid, cert.signature = signing.sign(session, signed_payload(cert))
    assert signed_kid == key_id
    for older in session.execute(
        select(Certificate).where(
            Certificate.product_id == product_id,
            Certificate.status.in_([CertificateStatus.VALID, CertificateStatus.SUSPENDED]),
        ).with_for_update()
    ).scalars():
        transition(older, CERTIFICATE_TRANSITIONS, CertificateStatus.SUPERSEDED, actor=None, what="Certificate")
        older.status_reason = f"superseded by {number}"
    session.add(cert)
    session.flush()
    listings.mark_listed(session, product_id=product_id, version=version, certificate_number=number)
    registrations.register_certified(session, cert)
    return cert


def effective_status(cert: Certificate, now: datetime | None = None) -> str:
    """Expiry is computed on read from the clock; the sweep persists it."""
    return EXPIRY.effective_status(cert, now)


def is_valid(cert: Certificate | None, now: datetime | None = None) -> bool:
    return cert is not None and effective_status(cert, now) == CertificateStatus.VALID


def get(session: Session, number: str, *, for_update: bool = False) -> Certificate:
    if len(number) > 32:
        cert = None
    else:
        cert = load_for_update(session, Certificate, number) if for_update else session.get(Certificate, number)
    if cert is None:
        raise NotFound("No such certificate.")
    return cert


def valid_certificate_for(session: Session, product_id: str, version: int | None = None) -> Certificate | None:
    """The product's valid certificate (for its listed revision when `version` is given)."""
    stmt = select(Certificate).where(Certificate.product_id == product_id,
                                     Certificate.status == CertificateStatus.VALID)
    if version is not None:
        stmt = stmt.where(Certificate.product_version == version)
    cert = session.execute(stmt.order_by(Certificate.issued_at.desc())).scalars().first()
    return cert if is_valid(cert) else None


def verification(session: Session, cert: Certificate) -> dict[str, bool]:
    """Recomputed on every call: the signature with the published key, the digest from the stored revision."""
    signature_valid = signing.verify(session, signed_payload(cert), cert.key_id, cert.signature)
    try:
        body = listings.version_body(
            listings.get_version(session, product_id=cert.product_id, version=cert.product_version))
        digest_matches = cert.digest == product_digest(
            body, product_id=cert.product_id, version=cert.product_version, vendor_org_id=cert.vendor_org_id)
    except NotFound:
        digest_matches = False
    return {"signature_valid": signature_valid, "digest_matches": digest_matches}


def shown(session: Session, cert: Certificate) -> Facts:
    """A certificate with its status as reads see it and its verification, recomputed."""
    return Facts(cert, status=effective_status(cert), verification=verification(session, cert))


def _on_expire(session: Session, cert: Certificate, previous: str) -> None:
    """A valid certificate's product leaves the catalog when it expires (a suspended one's already has)."""
    cert.status_reason = "expired"
    if previous == CertificateStatus.VALID:
        listings.suspend(session, product_id=cert.product_id, reason=f"certificate {cert.number} expired")


EXPIRY = Expiry(Certificate, CERTIFICATE_TRANSITIONS, CertificateStatus.EXPIRED,
                live=(CertificateStatus.VALID, CertificateStatus.SUSPENDED), deadline="expires_at",
                what="Certificate", on_expire=_on_expire)


def _notify(session: Session, cert: Certificate, event_type: str, reason: str) -> None:
    outbox.emit(session, event_type=event_type, org_ids=[cert.vendor_org_id],
                payload={"number": cert.number, "product_id": cert.product_id, "reason": reason})


def suspend(session: Session, *, number: str, reason: str, actor: Principal) -> Certificate:
    """Operator: suspend a valid certificate; the product leaves the catalog and trade. 409 otherwise."""
    actor.require_operator()
    cert = get(session, number, for_update=True)
    EXPIRY.expire_if_due(session, cert)
    transition(cert, CERTIFICATE_TRANSITIONS, CertificateStatus.SUSPENDED, actor=actor, what="Certificate")
    cert.status_reason = reason
    listings.suspend(session, product_id=cert.product_id, reason=f"certificate {number} suspended: {reason}",
                     actor=actor)
    audit.record(session, actor, "certificate.suspended", "certificate", number, reason=reason)
    _notify(session, cert, "certificate.suspended", reason)
    session.flush()
    return cert


def reinstate(session: Session, *, number: str, reason: str, actor: Principal) -> Certificate:
    """Operator: reinstate a suspended certificate (a revoked or expired one -> 409)."""
    actor.require_operator()
    cert = get(session, number, for_update=True)
    EXPIRY.expire_if_due(session, cert)
    if cert.status == CertificateStatus.REVOKED:
        raise Conflict("A revoked certificate can never be reinstated.",
                       next_step="certify the product again for a new certificate")
    transition(cert, CERTIFICATE_TRANSITIONS, CertificateStatus.VALID, actor=actor, what="Certificate")
    cert.status_reason = reason
    listings.reinstate(session, product_id=cert.product_id, reason=f"certificate {number} reinstated: {reason}",
                       actor=actor)
    audit.record(session, actor, "certificate.reinstated", "certificate", number, reason=reason)
    session.flush()
    return cert


def revoke(session: Session, *, number: str, reason: str, actor: Principal) -> Certificate:
    """Operator: revoke for good; the product leaves the catalog and trade until a new revision is certified."""
    actor.require_operator()
    cert = get(session, number, for_update=True)
    EXPIRY.expire_if_due(session, cert)
    was = cert.status
    transition(cert, CERTIFICATE_TRANSITIONS, CertificateStatus.REVOKED, actor=actor, what="Certificate")
    cert.status_reason = reason
    if was == CertificateStatus.VALID:
        listings.suspend(session, product_id=cert.product_id, reason=f"certificate {number} revoked: {reason}",
                         actor=actor)
    audit.record(session, actor, "certificate.revoked", "certificate", number, reason=reason)
    _notify(session, cert, "certificate.revoked", reason)
    registrations.cancel_certified(session, cert)
    session.flush()
    return cert
