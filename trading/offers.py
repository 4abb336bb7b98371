"""Negotiation: bids and quotes, counter-offers in one thread, accept / reject / withdraw / expire.

Only the recipient accepts, rejects or counters; only the maker withdraws. The product must be
listed with a valid certificate and the deal lawful when an offer is made (or countered) and again
when it is accepted. Amounts are integers in the product's currency; the delivery mode is the
product's. An offer past its `expires_at` is `expired` on read, and the sweep persists it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from exchange.db import new_id, utcnow
from exchange.errors import Conflict, Forbidden, field_error
from exchange.events import outbox
from exchange.expiry import Expiry
from exchange.fields import Facts
from exchange.identity.models import Organization
from exchange.principal import Principal
from exchange.states import transition
from listings.models import Product
from trading import contracts, procurements, rules, subscriptions
from trading.models import Contract, Offer, Procurement
from trading.states import OFFER_TRANSITIONS, OfferStatus, ProcurementStatus

OS = OfferStatus


def _notify(session: Session, event_type: str, offer: Offer, org_ids: list[str], **extra: Any) -> None:
    outbox.emit(session, event_type=event_type, org_ids=org_ids, payload={
        "offer_id": offer.id, "thread_id": offer.thread_id, "product_id": offer.product_id,
        "price": {"amount": offer.amount, "currency": offer.currency}, **extra})


# A pending offer with an `expires_at` expires then (one without waits for an answer).
EXPIRY = Expiry(Offer, OFFER_TRANSITIONS, OS.EXPIRED, live=(OS.PENDING,), deadline="expires_at", what="Offer")


def effective_status(offer: Offer, now: datetime | None = None) -> str:
    return EXPIRY.effective_status(offer, now)


def _check_terms(revision: Any, price: dict[str, Any], terms: dict[str, Any]) -> dict[str, Any]:
    if price["currency"] != revision.price["currency"]:
        raise field_error("price.currency", f"must be the product's currency ({revision.price['currency']})")
    if terms["delivery_mode"] != revision.delivery_mode:
        raise field_error("terms.delivery_mode", f"must be the product's delivery mode ({revision.delivery_mode})")
    rules.check_calls(revision, price, terms)
    return subscriptions.check_terms(revision, terms)


def _check_procurement(session: Session, procurement_id: str | None, *, buyer_org_id: str,
                       principal: Principal) -> Procurement | None:
    if procurement_id is None:
        return None
    proc = procurements.get(session, procurement_id=procurement_id, principal=principal)
    if proc.buyer_org_id != buyer_org_id:
        raise field_error("procurement_id", "the procurement belongs to another buyer")
    if procurements.effective_status(proc) != ProcurementStatus.OPEN:
        raise Conflict(f"Procurement {proc.id} is {procurements.effective_status(proc)}, not open.",
                       next_step="make the offer on an open procurement, or without a procurement")
    return proc


def check_may_offer(_session: Session, actor: Principal, **_ids: Any) -> None:
    """Whether the actor may make offers (a verified vendor or enterprise): Forbidden."""
    actor.require_type("vendor", "enterprise", action="offers")


def make(session: Session, *, data: dict[str, Any], actor: Principal) -> Offer:
    """A buyer's bid on a listed product, or a vendor's quote (`to_org_id`) to a buyer.

    Raises NotFound (invisible product/procurement), Forbidden (unverified), ValidationFailed (own
    product, wrong currency or delivery mode, unlawful cross-border deal), Conflict (not tradable now,
    the other side suspended).
    """
    check_may_offer(session, actor)
    product = rules.visible_product(session, data["product_id"], actor)
    to_org_id = data.get("to_org_id")
    if to_org_id is not None:
        if product.owner_org_id != actor.org_id:
            raise field_error("product_id", "a vendor quotes only its own products")
        if to_org_id == actor.org_id:
            raise field_error("to_org_id", "cannot quote your own organization")
        buyer = rules.organization(session, to_org_id)
        seller_org_id, recipient = actor.org_id, buyer.id
    else:
        if product.owner_org_id == actor.org_id:
            raise field_error("product_id", "a buyer never bids on its own product")
        buyer = session.get(Organization, actor.org_id)
        seller_org_id, recipient = product.owner_org_id, product.owner_org_id
    rules.active_parties(session, buyer_org_id=buyer.id, seller_org_id=seller_org_id, actor=actor)
    revision, _cert = rules.tradable(session, product)
    terms = _check_terms(revision, data["price"], data["terms"])
    rules.lawful(session, revision, buyer)
    proc = _check_procurement(session, data.get("procurement_id"), buyer_org_id=buyer.id, principal=actor)
    expires_at = data.get("expires_at")
    if expires_at is not None and expires_at <= utcnow():
        raise field_error("expires_at", "must be in the future")
    offer = Offer(
        product_id=product.id, product_version=revision.version, procurement_id=proc.id if proc else None,
        from_org_id=actor.org_id, to_org_id=recipient, buyer_org_id=buyer.id, seller_org_id=seller_org_id,
        created_by=actor.user_id, amount=data["price"]["amount"], currency=data["price"]["currency"],
        terms=dict(terms), message=data.get("message"), expires_at=expires_at, status=OS.PENDING,
    )
    offer.id = new_id("ofr")
    offer.thread_id = offer.id
    session.add(offer)
    session.flush()
    _notify(session, "offer.received", offer, [offer.to_org_id])
    return offer


def _visible(session: Session, offer_id: str, principal: Principal, *, lock: bool = False) -> Offer:
    return rules.for_parties(session, Offer, offer_id, principal, parties=("from_org_id", "to_org_id"),
                             what="offer", lock=lock)


def get(session: Session, *, offer_id: str, principal: Principal) -> Offer:
    """An offer, for its two parties and operators (404 for anyone else)."""
    return _visible(session, offer_id, principal)


def thread(session: Session, offer: Offer) -> list[Offer]:
    return list(session.execute(
        select(Offer).where(Offer.thread_id == offer.thread_id).order_by(Offer.created_at, Offer.id)
    ).scalars())


def list_query(*, principal: Principal, role: str | None, status: str | None) -> Select:
    stmt = select(Offer)
    if not principal.is_operator or role:
        if role == "received":
            stmt = stmt.where(Offer.to_org_id == principal.org_id)
        elif role == "sent":
            stmt = stmt.where(Offer.from_org_id == principal.org_id)
        else:
            stmt = stmt.where(or_(Offer.from_org_id == principal.org_id, Offer.to_org_id == principal.org_id))
    if status == OS.EXPIRED:
        stmt = stmt.where(or_(Offer.status == OS.EXPIRED,
                              (Offer.status == OS.PENDING) & (Offer.expires_at <= utcnow())))
    elif status == OS.PENDING:
        stmt = stmt.where(Offer.status == OS.PENDING,
                          or_(Offer.expires_at.is_(None), Offer.expires_at > utcnow()))
    elif status:
        stmt = stmt.where(Offer.status == status)
    return stmt.order_by(Offer.created_at.desc(), Offer.id)


def _require_recipient(offer: Offer, actor: Principal) -> None:
    if offer.to_org_id != actor.org_id:
        raise Forbidden("Only the offer's recipient may do this.",
                        next_step="sign in as a member of the organization the offer was sent to")
    actor.require_verified("negotiation")


def check_recipient(session: Session, actor: Principal, *, offer_id: str, **_ids: Any) -> None:
    """Whether the actor may answer the offer (counter, reject: its recipient): Forbidden, NotFound."""
    _require_recipient(_visible(session, offer_id, actor), actor)


def _pending_for_recipient(session: Session, offer_id: str, actor: Principal) -> Offer:
    offer = _visible(session, offer_id, actor, lock=True)
    _require_recipient(offer, actor)
    EXPIRY.expire_if_due(session, offer)
    if offer.status != OS.PENDING:
        raise Conflict(f"This offer is {offer.status}, no longer pending.",
                       next_step=OFFER_TRANSITIONS.next_step(offer.status))
    return offer


def _decide(offer: Offer, status: OfferStatus, actor: Principal) -> None:
    transition(offer, OFFER_TRANSITIONS, status, actor=actor, what="Offer")
    offer.decided_at = utcnow()
    offer.decided_by = actor.user_id


def counter(session: Session, *, offer_id: str, price: dict[str, Any], terms: dict[str, Any] | None,
            message: str | None, expires_at: datetime | None, actor: Principal) -> Offer:
    """The recipient answers with a new price and new terms (`terms` None: the old offer's, checked
    again): a new offer to the other side; the old one `countered`. Conflict when the other side is
    suspended; ValidationFailed when the price or terms do not fit the product."""
    old = _pending_for_recipient(session, offer_id, actor)
    rules.active_parties(session, buyer_org_id=old.buyer_org_id, seller_org_id=old.seller_org_id, actor=actor)
    product = rules.visible_product(session, old.product_id, actor)
    revision, _cert = rules.tradable(session, product)
    terms = _check_terms(revision, price, dict(old.terms) if terms is None else terms)
    rules.lawful(session, revision, session.get(Organization, old.buyer_org_id))
    if expires_at is not None and expires_at <= utcnow():
        raise field_error("expires_at", "must be in the future")
    _decide(old, OS.COUNTERED, actor)
    new = Offer(
        id=new_id("ofr"), thread_id=old.thread_id, parent_id=old.id, product_id=old.product_id,
        product_version=revision.version, procurement_id=old.procurement_id, from_org_id=actor.org_id,
        to_org_id=old.from_org_id, buyer_org_id=old.buyer_org_id, seller_org_id=old.seller_org_id,
        created_by=actor.user_id, amount=price["amount"], currency=price["currency"], terms=dict(terms),
        message=message, expires_at=expires_at, status=OS.PENDING,
    )
    session.add(new)
    session.flush()
    _notify(session, "offer.countered", old, [old.from_org_id])
    _notify(session, "offer.received", new, [new.to_org_id])
    return new


def accept(session: Session, *, offer_id: str, actor: Principal) -> Contract:
    """The recipient accepts: the contract is created, terms frozen, in the same transaction.

    The product must still be tradable and the other side not suspended (409), the deal lawful (422).
    """
    offer = _pending_for_recipient(session, offer_id, actor)
    rules.active_parties(session, buyer_org_id=offer.buyer_org_id, seller_org_id=offer.seller_org_id, actor=actor)
    product = session.get(Product, offer.product_id)
    revision, cert = rules.tradable(session, product)
    if revision.version != offer.product_version:
        raise Conflict("The product has a newer certified version since this offer; make a new offer.",
                       next_step="make a new offer on the product's current certified version")
    rules.lawful(session, revision, session.get(Organization, offer.buyer_org_id))
    _decide(offer, OS.ACCEPTED, actor)
    contract = contracts.create_from_offer(session, offer=offer, revision=revision, certificate=cert)
    _notify(session, "offer.accepted", offer, [offer.from_org_id], contract_id=contract.id)
    return contract


def reject(session: Session, *, offer_id: str, reason: str | None, actor: Principal) -> Offer:
    offer = _pending_for_recipient(session, offer_id, actor)
    _decide(offer, OS.REJECTED, actor)
    if reason:
        offer.message = (offer.message or "") + f"\n[rejected] {reason}"
    session.flush()
    return offer


def withdraw(session: Session, *, offer_id: str, actor: Principal) -> Offer:
    """The maker takes back its pending offer."""
    offer = _visible(session, offer_id, actor, lock=True)
    if offer.from_org_id != actor.org_id:
        raise Forbidden("Only the offer's maker may withdraw it.",
                        next_step="sign in as a member of the organization that made the offer")
    EXPIRY.expire_if_due(session, offer)
    if offer.status != OS.PENDING:
        raise Conflict(f"This offer is {offer.status}, no longer pending.",
                       next_step=OFFER_TRANSITIONS.next_step(offer.status))
    _decide(offer, OS.WITHDRAWN, actor)
    session.flush()
    return offer


def shown(session: Session, offer: Offer, *, with_thread: bool = False) -> Facts:
    """An offer with its status as reads see it and, for its detail, its thread and contract."""
    if not with_thread:
        return Facts(offer, status=effective_status(offer))
    contract = session.execute(select(Contract.id).where(Contract.offer_id == offer.id)).scalar()
    return Facts(offer, status=effective_status(offer), thread=[shown(session, o) for o in thread(session, offer)],
                 contract_id=contract)
