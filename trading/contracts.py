"""Contracts: frozen terms, canonical digest, signatures (platform attestation or the organization's
own Ed25519 key), on-site signing at a live fair's stall, and the trade created by the second signature.

`digest` = sha256 hex of the RFC 8785 canonical JSON of exactly DIGEST_FIELDS. A `platform`
signature is the exchange's Ed25519 attestation over the canonical JSON of ATTESTED_FIELDS; an
`ed25519` signature is the organization's own, over the UTF-8 bytes of `digest`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from certification import certificates, registrations
from certification.states import CertificateStatus
from exchange.canonical import sha256_hex
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, ValidationFailed, field_error
from exchange.events import outbox
from exchange.fields import Facts, iso_z
from exchange.identity import audit
from exchange.identity.models import Organization, OrganizationKey
from exchange.principal import Principal
from exchange.sequences import yearly_number
from exchange.signing import services as signing
from exchange.states import transition
from listings import services as listings
from listings.models import Fair, Product, Stall
from trading import dossiers, periods, procurements, rules, subscriptions, trades
from trading.models import Contract, Offer, Signature, Trade
from trading.states import CONTRACT_TRANSITIONS, ContractStatus, SignatureMethod

DIGEST_FIELDS = ("number", "buyer_org_id", "seller_org_id", "product_id", "product_version",
                 "certificate_number", "price", "terms")
ATTESTED_FIELDS = ("contract_digest", "org_id", "user_id", "signed_at", "on_site", "fair_id", "stall_code")
K = ContractStatus


def digest_payload(contract: Contract) -> dict[str, Any]:
    return {
        "number": contract.number,
        "buyer_org_id": contract.buyer_org_id,
        "seller_org_id": contract.seller_org_id,
        "product_id": contract.product_id,
        "product_version": contract.product_version,
        "certificate_number": contract.certificate_number,
        "price": {"amount": contract.amount, "currency": contract.currency},
        "terms": contract.terms,
    }


def attestation_payload(contract: Contract, sig: Signature) -> dict[str, Any]:
    """What a `platform` signature attests (every key kept; a missing value is null)."""
    return {
        "contract_digest": contract.digest,
        "org_id": sig.org_id,
        "user_id": sig.user_id,
        "signed_at": iso_z(sig.signed_at),
        "on_site": bool(sig.on_site),
        "fair_id": sig.fair_id,
        "stall_code": sig.stall_code,
    }


def create_from_offer(session: Session, *, offer: Offer, revision: Any, certificate: Any) -> Contract:
    """The contract made by accepting `offer` (same transaction), with its number and digest."""
    now = utcnow()
    contract = Contract(
        number=yearly_number(session, "contract", "DFC", now.year), offer_id=offer.id,
        procurement_id=offer.procurement_id, buyer_org_id=offer.buyer_org_id, seller_org_id=offer.seller_org_id,
        product_id=offer.product_id, product_version=revision.version, certificate_number=certificate.number,
        category=revision.category, amount=rules.deal_amount(offer.amount, offer.terms), currency=offer.currency,
        terms=dict(offer.terms),
        status=K.PENDING_SIGNATURES, digest="",
    )
    contract.digest = sha256_hex(digest_payload(contract))
    session.add(contract)
    session.flush()
    return contract


def _visible(session: Session, contract_id: str, principal: Principal, *, lock: bool = False) -> Contract:
    return rules.for_parties(session, Contract, contract_id, principal, parties=("buyer_org_id", "seller_org_id"),
                             what="contract", lock=lock)


def get(session: Session, *, contract_id: str, principal: Principal) -> Contract:
    """A contract, for its two parties and operators (404 for anyone else)."""
    return _visible(session, contract_id, principal)


def list_query(*, principal: Principal, status: str | None) -> Select:
    stmt = select(Contract)
    if not principal.is_operator:
        stmt = stmt.where(or_(Contract.buyer_org_id == principal.org_id, Contract.seller_org_id == principal.org_id))
    if status:
        stmt = stmt.where(Contract.status == status)
    return stmt.order_by(Contract.created_at.desc(), Contract.id)


def signatures(session: Session, contract: Contract) -> list[Signature]:
    return list(session.execute(
        select(Signature).where(Signature.contract_id == contract.id).order_by(Signature.signed_at, Signature.id)
    ).scalars())


def trade_of(session: Session, contract: Contract) -> Trade | None:
    """The contract's (first) trade: a subscription has one per period, period 1 first."""
    return session.execute(select(Trade).where(Trade.contract_id == contract.id)
                           .order_by(Trade.period_index).limit(1)).scalar_one_or_none()


def _live_stall(session: Session, *, fair_id: str | None, stall_code: str | None, seller_org_id: str) -> Fair:
    if not fair_id or not stall_code:
        raise ValidationFailed("On-site signing needs fair_id and stall_code.",
                               errors={"fair_id": ["required on site"], "stall_code": ["required on site"]})
    fair = session.get(Fair, fair_id)
    now = utcnow()
    if fair is None:
        raise field_error("fair_id", "no such fair")
    if not fair.starts_at <= now < fair.ends_at:
        raise field_error("fair_id", "the fair is not live now")
    stall = session.execute(
        select(Stall).where(Stall.fair_id == fair.id, Stall.code == stall_code)
    ).scalar_one_or_none()
    if stall is None or stall.org_id != seller_org_id:
        raise field_error("stall_code", "not a stall of the seller at this fair")
    return fair


def _verify_org_signature(session: Session, *, org_id: str, key_id: str, signature: str, digest: str) -> None:
    key = session.get(OrganizationKey, key_id)
    if key is None or key.org_id != org_id or key.revoked_at is not None:
        raise field_error("key_id", "not an active signing key of your organization")
    if not signing.verify_ed25519(key.public_key, digest.encode("utf-8"), signature):
        raise field_error("signature", "does not verify with this key over the contract digest")


def _require_signer(contract: Contract, actor: Principal) -> None:
    if actor.org_id not in (contract.buyer_org_id, contract.seller_org_id):
        raise Forbidden("Only the buyer and the seller sign a contract.",
                        next_step="sign in as a member of the buying or the selling organization")
    actor.require_verified("signatures")


def check_may_sign(session: Session, actor: Principal, *, contract_id: str, **_ids: Any) -> None:
    """Whether the actor may sign the contract (a verified party): Forbidden, NotFound. Reads only."""
    _require_signer(_visible(session, contract_id, actor), actor)


def sign(session: Session, *, contract_id: str, data: dict[str, Any], actor: Principal,
         client_addr: str | None = None, user_agent: str | None = None) -> Contract:
    """A member of the buyer or the seller signs (once per side). The second signature makes the
    contract `signed` and records its trade in the same transaction.

    Raises NotFound, Forbidden, Conflict (already signed by this side, not pending, certificate no
    longer valid, the other side suspended), ValidationFailed (bad signature, on-site rules, unlawful deal).
    """
    contract = _visible(session, contract_id, actor, lock=True)
    _require_signer(contract, actor)
    if contract.status != K.PENDING_SIGNATURES:
        raise Conflict(f"This contract is {contract.status}; it cannot be signed.",
                       next_step=CONTRACT_TRANSITIONS.next_step(contract.status))
    if any(s.org_id == actor.org_id for s in signatures(session, contract)):
        raise Conflict("Your organization has already signed this contract.",
                       next_step="the other party must sign the contract now")
    rules.active_parties(session, buyer_org_id=contract.buyer_org_id, seller_org_id=contract.seller_org_id,
                         actor=actor)
    cert = certificates.get(session, contract.certificate_number)
    if not certificates.is_valid(cert):
        status = certificates.effective_status(cert)
        raise Conflict(f"Certificate {cert.number} is {status}; the deal cannot be signed.",
                       next_step="an operator must reinstate the certificate first, or cancel the contract"
                       if status == CertificateStatus.SUSPENDED else
                       f"cancel the contract: a {status} certificate never becomes valid again")
    product = session.get(Product, contract.product_id)
    if not listings.is_tradable(product):
        raise Conflict("The product is no longer listed; the deal cannot be signed.",
                       next_step="wait until the product is listed again, or cancel the contract")
    revision = listings.get_version(session, product_id=contract.product_id, version=contract.product_version)
    rules.lawful(session, revision, session.get(Organization, contract.buyer_org_id))
    on_site = bool(data.get("on_site"))
    fair = None
    if on_site:
        fair = _live_stall(session, fair_id=data.get("fair_id"), stall_code=data.get("stall_code"),
                           seller_org_id=contract.seller_org_id)
    elif data.get("fair_id") or data.get("stall_code"):
        raise field_error("on_site", "fair_id and stall_code are only for on-site signatures")
    sig = Signature(
        contract_id=contract.id, org_id=actor.org_id, user_id=actor.user_id, signed_at=utcnow(),
        on_site=on_site, fair_id=fair.id if fair else None, stall_code=data.get("stall_code") if on_site else None,
        client_addr=(client_addr or "")[:64] or None, user_agent=(user_agent or "")[:300] or None,
        method="", key_id="", signature="",
    )
    if data.get("signature") or data.get("key_id"):
        if not (data.get("signature") and data.get("key_id")):
            raise ValidationFailed("Give both key_id and signature, or neither.",
                                   errors={"key_id": ["give both or neither"], "signature": ["give both or neither"]})
        _verify_org_signature(session, org_id=actor.org_id, key_id=data["key_id"], signature=data["signature"],
                              digest=contract.digest)
        sig.method, sig.key_id, sig.signature = SignatureMethod.ED25519, data["key_id"], data["signature"]
    else:
        sig.method = SignatureMethod.PLATFORM
        sig.key_id, sig.signature = signing.sign(session, attestation_payload(contract, sig))
    session.add(sig)
    session.flush()
    audit.record(session, actor, "contract.signed", "contract", contract.id, method=str(sig.method),
                 on_site=on_site, fair_id=sig.fair_id)
    signed = signatures(session, contract)
    if {s.org_id for s in signed} >= {contract.buyer_org_id, contract.seller_org_id}:
        _conclude(session, contract, signed)
    session.flush()
    return contract


def _conclude(session: Session, contract: Contract, signed: list[Signature]) -> Trade:
    transition(contract, CONTRACT_TRANSITIONS, K.SIGNED, actor=None, what="Contract")
    contract.signed_at = utcnow()
    on_site = next((s for s in signed if s.on_site), None)
    contract.on_site = on_site is not None
    contract.fair_id = on_site.fair_id if on_site else None
    trade = trades.new_trade(session, contract, fee_bps=int(current_app.config["FEE_BPS"]),
                             period=subscriptions.first_period(session, contract))
    sub = subscriptions.start(session, contract, trade)
    _file_compliance(session, contract, sub)
    outbox.emit(session, event_type="contract.signed", org_ids=[contract.buyer_org_id, contract.seller_org_id],
                payload={"contract_id": contract.id, "number": contract.number, "trade_id": trade.id,
                         "on_site": contract.on_site, "fair_id": contract.fair_id})
    procurements.mark_contracted(session, contract.procurement_id)
    if contract.on_site:
        listings.record_fair_signing(session, fair_id=contract.fair_id)
    return trade


def _file_compliance(session: Session, contract: Contract, sub: Any) -> None:
    """The second signature's compliance records (same transaction): the buyer's licence in the rights
    register, and the cross-border dossier when the data leaves the mainland (API.md Compliance)."""
    terms = contract.terms or {}
    if sub is not None:
        valid_to = None if sub.auto_renew else periods.start_of(sub.anchor, sub.unit, sub.periods + 1)
    else:
        valid_to = contract.signed_at + timedelta(days=int(terms.get("duration_days") or 365))
    registrations.register_licence(session, contract_id=contract.id, product_id=contract.product_id,
                                   product_version=contract.product_version, buyer_org_id=contract.buyer_org_id,
                                   seller_org_id=contract.seller_org_id, scope=terms.get("scope"),
                                   valid_from=contract.signed_at, valid_to=valid_to)
    revision = listings.get_version(session, product_id=contract.product_id, version=contract.product_version)
    dossiers.open_for(session, contract, revision)


def _require_canceller(contract: Contract, actor: Principal) -> None:
    if actor.org_id not in (contract.buyer_org_id, contract.seller_org_id):
        raise Forbidden("Only the buyer and the seller may cancel a contract.",
                        next_step="sign in as a member of the buying or the selling organization")


def check_may_cancel(session: Session, actor: Principal, *, contract_id: str, **_ids: Any) -> None:
    """Whether the actor may cancel the contract (a party): Forbidden, NotFound. Reads only."""
    _require_canceller(_visible(session, contract_id, actor), actor)


def cancel(session: Session, *, contract_id: str, reason: str | None, actor: Principal) -> Contract:
    """Either party cancels while signatures are pending."""
    contract = _visible(session, contract_id, actor, lock=True)
    _require_canceller(contract, actor)
    transition(contract, CONTRACT_TRANSITIONS, K.CANCELLED, actor=actor, what="Contract")
    contract.cancelled_at = utcnow()
    audit.record(session, actor, "contract.cancelled", "contract", contract.id, reason=reason)
    session.flush()
    return contract


def shown(session: Session, contract: Contract) -> Facts:
    return _shown(contract, signatures(session, contract), trade_of(session, contract),
                  subscriptions.shown_many(session, [contract]).get(contract.id))


def shown_page(session: Session, page: list[Contract]) -> list[Facts]:
    """`shown` of a page of contracts in two more queries, whatever the page size."""
    ids = [c.id for c in page]
    sigs: dict[str, list[Signature]] = {i: [] for i in ids}
    firsts: dict[str, Trade] = {}
    if ids:
        for sig in session.execute(select(Signature).where(Signature.contract_id.in_(ids))
                                   .order_by(Signature.signed_at, Signature.id)).scalars():
            sigs[sig.contract_id].append(sig)
        firsts = {t.contract_id: t for t in session.execute(
            select(Trade).where(Trade.contract_id.in_(ids), Trade.period_index == 1)).scalars()}
    subs = subscriptions.shown_many(session, page)
    return [_shown(c, sigs[c.id], firsts.get(c.id), subs.get(c.id)) for c in page]


def _shown(contract: Contract, signed: list[Signature], trade: Trade | None,
           subscription: dict[str, Any] | None) -> Facts:
    return Facts(contract, signatures=signed, trade_id=trade.id if trade else None, subscription=subscription)
