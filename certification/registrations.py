"""The rights register (数据资产登记, API.md Compliance): who holds which rights to which data.

Filed automatically, each in the transaction of the change that causes it:
- certification's approval registers the vendor's holding, processing and operation rights
  (持有权, 加工使用权, 经营权) to the certified version: `initial` for the product's first, `change`
  for a later version;
- every signed contract registers the buyer's licence: `processing` within the contract's scope
  and dates;
- a refunded trade files a `cancellation` of its contract's licence; a revoked certificate one of
  the vendor's registration of that version.

A registration is append-only (database triggers refuse UPDATE and DELETE). Its number
`DRR-YYYY-NNNNNN` counts per UTC year with no gaps: the number, the digest and the signature are
made at the end of the transaction (`exchange.sequences.at_commit`), so the counter's row lock is
held only for the insert and the commit, never behind the rest of a signature's or an approval's work.

`digest` is the sha256 hex of the RFC 8785 JSON of every field but `digest`, `key_id` and
`signature`; `signature` is the exchange's Ed25519 over the RFC 8785 JSON of every field but
`signature`. Anyone can check both with the JWKS alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from certification.models import Certificate, Registration
from exchange.canonical import sha256_hex
from exchange.db import utcnow
from exchange.errors import NotFound
from exchange.events import outbox
from exchange.fields import Facts, iso_z
from exchange.principal import Principal
from exchange.sequences import at_commit_batch, batched, reserve
from exchange.signing import services as signing
from listings import services as listings

VENDOR_RIGHTS = ("holding", "processing", "operation")
LICENCE_RIGHTS = ("processing",)
_QUEUE = "datafair.registrations.queue"


@dataclass
class _Filing:
    type: str
    product_id: str
    product_version: int
    holder_org_id: str
    rights: tuple[str, ...]
    scope: str | None
    valid_from: datetime
    valid_to: datetime | None
    contract_id: str | None
    cancels: str | None
    registered_at: datetime
    notify: tuple[str, ...]


# -- what is signed --------------------------------------------------------------------------------

def fields_of(reg: Registration) -> dict[str, Any]:
    """Every field but digest, key_id and signature, as the API shows them."""
    return {
        "number": reg.number, "type": reg.type, "product_id": reg.product_id,
        "product_version": reg.product_version, "holder_org_id": reg.holder_org_id, "rights": list(reg.rights),
        "scope": reg.scope, "valid_from": iso_z(reg.valid_from),
        "valid_to": iso_z(reg.valid_to) if reg.valid_to else None, "contract_id": reg.contract_id,
        "cancels": reg.cancels, "registered_at": iso_z(reg.registered_at),
    }


def digest_of(reg: Registration) -> str:
    return sha256_hex(fields_of(reg))


def signed_payload(reg: Registration) -> dict[str, Any]:
    """What the signature covers: every field but `signature`."""
    return {**fields_of(reg), "digest": reg.digest, "key_id": reg.key_id}


def verification(session: Session, reg: Registration) -> dict[str, bool]:
    """Recomputed on every read: the signature with the published key, the digest from the fields."""
    return {"signature_valid": signing.verify(session, signed_payload(reg), reg.key_id, reg.signature),
            "digest_matches": reg.digest == digest_of(reg)}


# -- filing (numbered and signed at commit) ---------------------------------------------------------

def _queue(session: Session, filing: _Filing) -> None:
    at_commit_batch(session, _QUEUE, _write_queued).append(filing)


def _queued(session: Session) -> list[_Filing]:
    return batched(session, _QUEUE)


def _write_queued(session: Session, queue: list[_Filing]) -> None:
    """Number, digest, sign and insert every registration this transaction filed (at its commit)."""
    by_year: dict[int, list[_Filing]] = {}
    for filing in queue:
        by_year.setdefault(filing.registered_at.year, []).append(filing)
    sign = signing.signer(session)
    key_id = signing.current_key(session).kid
    for year, filings in sorted(by_year.items()):
        first = reserve(session, "registration", year, len(filings))
        for seq, filing in enumerate(filings, start=first):
            reg = Registration(
                number=f"DRR-{year}-{seq:06d}", year=year, seq=seq, type=filing.type, product_id=filing.product_id,
                product_version=filing.product_version, holder_org_id=filing.holder_org_id,
                rights=list(filing.rights), scope=filing.scope, valid_from=filing.valid_from,
                valid_to=filing.valid_to, contract_id=filing.contract_id, cancels=filing.cancels,
                registered_at=filing.registered_at, digest="", key_id=key_id, signature="",
            )
            reg.digest = digest_of(reg)
            signed_kid, reg.signature = sign(signed_payload(reg))
            assert signed_kid == key_id
            session.add(reg)
            outbox.emit(session, event_type="registration.filed", org_ids=list(filing.notify),
                        payload={"number": reg.number, "type": reg.type, "product_id": reg.product_id,
                                 "product_version": reg.product_version, "holder_org_id": reg.holder_org_id,
                                 "contract_id": reg.contract_id, "cancels": reg.cancels})
    session.flush()


def _now() -> datetime:
    return utcnow().replace(microsecond=0)


def _vendor_registration(session: Session, product_id: str, version: int) -> Registration | None:
    return session.execute(
        select(Registration).where(Registration.product_id == product_id, Registration.product_version == version,
                                   Registration.type.in_(("initial", "change")))
        .order_by(Registration.registered_at.desc(), Registration.number.desc()).limit(1)
    ).scalar_one_or_none()


def register_certified(session: Session, cert: Certificate) -> None:
    """Certification approved `cert`: register the vendor's rights to its version (initial or change)."""
    earlier = session.execute(
        select(Registration.number).where(Registration.product_id == cert.product_id,
                                          Registration.type.in_(("initial", "change"))).limit(1)
    ).first() is not None or any(f.product_id == cert.product_id and f.type in ("initial", "change")
                                 for f in _queued(session))
    _queue(session, _Filing(
        type="change" if earlier else "initial", product_id=cert.product_id, product_version=cert.product_version,
        holder_org_id=cert.vendor_org_id, rights=VENDOR_RIGHTS, scope=None, valid_from=cert.issued_at,
        valid_to=cert.expires_at, contract_id=None, cancels=None, registered_at=_now(),
        notify=(cert.vendor_org_id,)))


def register_licence(session: Session, *, contract_id: str, product_id: str, product_version: int,
                     buyer_org_id: str, seller_org_id: str, scope: str | None, valid_from: datetime,
                     valid_to: datetime | None) -> None:
    """A contract was signed: register the buyer's processing right within its scope and dates."""
    _queue(session, _Filing(
        type="licence", product_id=product_id, product_version=product_version, holder_org_id=buyer_org_id,
        rights=LICENCE_RIGHTS, scope=scope, valid_from=valid_from, valid_to=valid_to, contract_id=contract_id,
        cancels=None, registered_at=_now(), notify=(buyer_org_id, seller_org_id)))


def _cancel(session: Session, reg: Registration | None, *, notify: tuple[str, ...]) -> None:
    """File the cancellation of `reg` (once; nothing when there is none to cancel)."""
    if reg is None or session.execute(select(Registration.number).where(
            Registration.type == "cancellation", Registration.cancels == reg.number)).first() is not None:
        return
    now = _now()
    _queue(session, _Filing(
        type="cancellation", product_id=reg.product_id, product_version=reg.product_version,
        holder_org_id=reg.holder_org_id, rights=tuple(reg.rights), scope=reg.scope, valid_from=now, valid_to=None,
        contract_id=reg.contract_id, cancels=reg.number, registered_at=now, notify=notify))


def cancel_licence(session: Session, *, contract_id: str, seller_org_id: str) -> None:
    """A trade of the contract was refunded: cancel its licence (once; nothing if none was filed)."""
    if any(f.type == "cancellation" and f.contract_id == contract_id for f in _queued(session)):
        return
    licence = session.execute(select(Registration).where(
        Registration.contract_id == contract_id, Registration.type == "licence")).scalar_one_or_none()
    _cancel(session, licence, notify=(licence.holder_org_id, seller_org_id) if licence else ())


def cancel_certified(session: Session, cert: Certificate) -> None:
    """`cert` was revoked: cancel the vendor's registration of its version (once; nothing if none)."""
    vendor = _vendor_registration(session, cert.product_id, cert.product_version)
    _cancel(session, vendor, notify=(cert.vendor_org_id,))


# -- reads --------------------------------------------------------------------------------------------

def get(session: Session, number: str) -> Registration:
    """Public: anyone holding a number may verify it. Raises NotFound."""
    reg = session.get(Registration, number) if len(number) <= 20 else None
    if reg is None:
        raise NotFound("No registration has this number.")
    return reg


def shown(session: Session, reg: Registration) -> Facts:
    return Facts(reg, verification=verification(session, reg))


def of_product(session: Session, *, product_id: str, principal: Principal | None) -> Select:
    """A product's registrations, oldest first: the vendor's rights (initial, change and their
    cancellations) to anyone; licences and their cancellations only to the product's owner, the
    licence holder and operators. The product must be visible to the caller (listed, or its owner's
    and operators'); every registration stays verifiable by its number. Raises NotFound."""
    product = listings.get_product(session, product_id=product_id, principal=principal)
    stmt = select(Registration).where(Registration.product_id == product.id)
    if principal is None or not (principal.is_operator or principal.org_id == product.owner_org_id):
        public = and_(Registration.holder_org_id == product.owner_org_id, Registration.contract_id.is_(None))
        mine = Registration.holder_org_id == principal.org_id if principal is not None else None
        stmt = stmt.where(or_(public, mine) if mine is not None else public)
    return stmt.order_by(Registration.registered_at, Registration.number)
