"""HTTP routes of trading: procurements, matches, offers, contracts, signatures, trades, statistics."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from exchange.api import AUTH, Blueprint, paginate
from exchange.db import db, read_session
from exchange.fields import Facts
from exchange.principal import current_principal
from exchange.ratelimit import limit_writes
from trading import contracts, document, matching, offers, payments, procurements, settlement, stats, trades
from trading.schemas import (
    CancelSchema,
    ContractArgsSchema,
    ContractPageSchema,
    ContractSchema,
    CounterSchema,
    DeliverySchema,
    DisputeCreateSchema,
    DisputeSchema,
    MatchArgsSchema,
    MatchListSchema,
    OfferArgsSchema,
    OfferCreateSchema,
    OfferDetailSchema,
    OfferPageSchema,
    OfferSchema,
    PaymentCreateSchema,
    PaymentSchema,
    PayoutCreateSchema,
    PayoutSchema,
    ProcurementArgsSchema,
    ProcurementCreateSchema,
    ProcurementMatchListSchema,
    ProcurementPageSchema,
    ProcurementSchema,
    SignatureCreateSchema,
    StatsSchema,
    TradeArgsSchema,
    TradePageSchema,
    TradeResolutionSchema,
    TradeSchema,
    WebhookAckSchema,
)

blp = Blueprint("trading", __name__, url_prefix="/api/v1", description="Procurement, negotiation, contracts, trades")
WRITE_ERRORS = (400, 401, 403, 404, 409, 415, 422, 429)


# -- procurements -----------------------------------------------------------------------------------
@blp.route("/procurements", methods=["POST"])
@limit_writes("procurements")
@blp.arguments(ProcurementCreateSchema)
@blp.response(201, ProcurementSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def create_procurement(data: dict[str, Any]) -> Any:
    """A verified enterprise or vendor posts demand (public on the board, or to invited vendors)."""
    return procurements.shown(matching.post_procurement(db.session, **data, actor=current_principal()))


@blp.route("/procurements", methods=["GET"])
@blp.arguments(ProcurementArgsSchema, location="query")
@blp.response(200, ProcurementPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 422)
def list_procurements(args: dict[str, Any]) -> Any:
    """Own procurements; `?board=true`: open public demand (not of suspended buyers); `?invited=true`:
    demand you were invited to."""
    principal = current_principal()
    stmt = procurements.list_query(db.session, principal=principal, board=args["board"], invited=args["invited"],
                                   status=args.get("status"), category=args.get("category"))
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = [procurements.shown(p) for p in page["items"]]
    return page


@blp.route("/procurements/<procurement_id>", methods=["GET"])
@blp.response(200, ProcurementSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 404)
def get_procurement(procurement_id: str) -> Any:
    """A procurement (its buyer, operators, invited organizations; public ones for vendors and enterprises)."""
    principal = current_principal()
    return procurements.shown(procurements.get(db.session, procurement_id=procurement_id, principal=principal))


@blp.route("/procurements/<procurement_id>/cancel", methods=["POST"])
@blp.arguments(CancelSchema)
@blp.response(200, ProcurementSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def cancel_procurement(data: dict[str, Any], procurement_id: str) -> Any:
    """The buyer cancels its open procurement."""
    principal = current_principal()
    proc = procurements.cancel(db.session, procurement_id=procurement_id, reason=data.get("reason"), actor=principal)
    return procurements.shown(proc)


@blp.route("/procurements/<procurement_id>/matches", methods=["GET"])
@blp.arguments(MatchArgsSchema, location="query")
@blp.response(200, MatchListSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 403, 404, 422)
def procurement_matches(args: dict[str, Any], procurement_id: str) -> Any:
    """Certified supply the buyer may lawfully buy, ranked, with the reasons for each score."""
    found = matching.matches_for_procurement(db.session, procurement_id=procurement_id,
                                             principal=current_principal(), limit=args["limit"])
    return {"items": found}


@blp.route("/products/<product_id>/matches", methods=["GET"])
@blp.arguments(MatchArgsSchema, location="query")
@blp.response(200, ProcurementMatchListSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 403, 404, 409, 422)
def product_matches(args: dict[str, Any], product_id: str) -> Any:
    """The product's vendor (or operators): open public procurements this listed product answers."""
    product, version = matching.product_for_matching(db.session, product_id=product_id,
                                                     principal=current_principal())
    found = matching.procurements_for_product(db.session, product=product, version=version, limit=args["limit"])
    return {"items": [Facts(p, procurement_id=p.id, score=s, reasons=r) for p, s, r in found]}


# -- offers -----------------------------------------------------------------------------------------
@blp.route("/offers", methods=["POST"])
@limit_writes("offers")
@blp.arguments(OfferCreateSchema)
@blp.response(201, OfferSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def make_offer(data: dict[str, Any]) -> Any:
    """A buyer bids on a listed product, or a vendor quotes its product to a buyer (`to_org_id`).
    409 while the other side (seller or buyer) is suspended."""
    return offers.shown(db.session, offers.make(db.session, data=data, actor=current_principal()))


@blp.route("/offers", methods=["GET"])
@blp.arguments(OfferArgsSchema, location="query")
@blp.response(200, OfferPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 422)
def list_offers(args: dict[str, Any]) -> Any:
    """Offers sent or received by the caller's organization (operators: all)."""
    stmt = offers.list_query(principal=current_principal(), role=args.get("role"), status=args.get("status"))
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = [offers.shown(db.session, o) for o in page["items"]]
    return page


@blp.route("/offers/<offer_id>", methods=["GET"])
@blp.response(200, OfferDetailSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 404)
def get_offer(offer_id: str) -> Any:
    """An offer with the whole negotiation thread (its two parties and operators)."""
    offer = offers.get(db.session, offer_id=offer_id, principal=current_principal())
    return offers.shown(db.session, offer, with_thread=True)


@blp.route("/offers/<offer_id>/counter", methods=["POST"])
@limit_writes("offers")
@blp.arguments(CounterSchema)
@blp.response(201, OfferSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def counter_offer(data: dict[str, Any], offer_id: str) -> Any:
    """The recipient counters: a new offer to the other side; this one becomes `countered`. 409 while
    the other side is suspended."""
    new = offers.counter(db.session, offer_id=offer_id, price=data["price"], terms=data["terms"],
                         message=data.get("message"), expires_at=data.get("expires_at"), actor=current_principal())
    return offers.shown(db.session, new)


@blp.route("/offers/<offer_id>/accept", methods=["POST"])
@blp.response(201, ContractSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def accept_offer(offer_id: str) -> Any:
    """The recipient accepts: the contract is created with the terms frozen. 409 while the other side
    is suspended."""
    contract = offers.accept(db.session, offer_id=offer_id, actor=current_principal())
    return contracts.shown(db.session, contract)


@blp.route("/offers/<offer_id>/reject", methods=["POST"])
@blp.arguments(CancelSchema)
@blp.response(200, OfferSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def reject_offer(data: dict[str, Any], offer_id: str) -> Any:
    """The recipient declines the offer."""
    return offers.shown(db.session, offers.reject(db.session, offer_id=offer_id, reason=data.get("reason"),
                                                 actor=current_principal()))


@blp.route("/offers/<offer_id>/withdraw", methods=["POST"])
@blp.response(200, OfferSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def withdraw_offer(offer_id: str) -> Any:
    """The maker takes back its pending offer."""
    return offers.shown(db.session, offers.withdraw(db.session, offer_id=offer_id, actor=current_principal()))


# -- contracts --------------------------------------------------------------------------------------
@blp.route("/contracts", methods=["GET"])
@blp.arguments(ContractArgsSchema, location="query")
@blp.response(200, ContractPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 422)
def list_contracts(args: dict[str, Any]) -> Any:
    """The caller's organization's contracts (operators: all)."""
    stmt = contracts.list_query(principal=current_principal(), status=args.get("status"))
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = contracts.shown_page(db.session, page["items"])
    return page


@blp.route("/contracts/<contract_id>", methods=["GET"])
@blp.response(200, ContractSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 404)
def get_contract(contract_id: str) -> Any:
    """A contract with its signatures and trade (the two parties and operators)."""
    return contracts.shown(db.session, contracts.get(db.session, contract_id=contract_id,
                                                    principal=current_principal()))


@blp.route("/contracts/<contract_id>/document", methods=["GET"])
@blp.response(200, content_type="text/markdown")
@blp.doc(security=AUTH)
@blp.problems(401, 404)
def contract_document(contract_id: str) -> Any:
    """The contract as a bilingual (Chinese and English) Markdown document."""
    contract = contracts.get(db.session, contract_id=contract_id, principal=current_principal())
    return Response(document.render(db.session, contract), mimetype="text/markdown; charset=utf-8")


@blp.route("/contracts/<contract_id>/signatures", methods=["POST"])
@limit_writes("signatures")
@blp.arguments(SignatureCreateSchema)
@blp.response(201, ContractSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def sign_contract(data: dict[str, Any], contract_id: str) -> Any:
    """A member of the buyer or the seller signs, on site at a live fair's stall or remotely. 409 while
    the other side is suspended."""
    contract = contracts.sign(db.session, contract_id=contract_id, data=data, actor=current_principal(),
                              client_addr=request.remote_addr, user_agent=request.headers.get("User-Agent"))
    return contracts.shown(db.session, contract)


@blp.route("/contracts/<contract_id>/cancel", methods=["POST"])
@blp.arguments(CancelSchema)
@blp.response(200, ContractSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def cancel_contract(data: dict[str, Any], contract_id: str) -> Any:
    """Either party cancels while signatures are pending."""
    contract = contracts.cancel(db.session, contract_id=contract_id, reason=data.get("reason"),
                                actor=current_principal())
    return contracts.shown(db.session, contract)


# -- trades and statistics --------------------------------------------------------------------------
@blp.route("/trades", methods=["GET"])
@blp.arguments(TradeArgsSchema, location="query")
@blp.response(200, TradePageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 422)
def list_trades(args: dict[str, Any]) -> Any:
    """The caller's organization's trades (operators: all)."""
    stmt = trades.list_query(principal=current_principal(), status=args.get("status"))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/trades/<trade_id>", methods=["GET"])
@blp.response(200, TradeSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 404)
def get_trade(trade_id: str) -> Any:
    """A trade (its two parties and operators)."""
    return trades.visible(db.session, trade_id, current_principal())


@blp.route("/stats", methods=["GET"])
@blp.response(200, StatsSchema)
def market_stats() -> Any:
    """Public market statistics: listed products, vendors, signed contracts, volume per currency."""
    return stats.market(read_session())


# -- money flow -------------------------------------------------------------------------------------
@blp.route("/trades/<trade_id>/payments", methods=["POST"])
@blp.arguments(PaymentCreateSchema)
@blp.response(201, PaymentSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS, 502, 503)
def create_payment(data: dict[str, Any], trade_id: str) -> Any:
    """The buyer pays: `manual` (bank transfer, confirmed by an operator) or `stripe` (PaymentIntent).

    One payment in flight per trade: while one is `pending`, another -> 409 naming it (cancel it
    with `POST /payments/{id}/cancel`).
    409 while the seller is suspended."""
    principal = current_principal()
    payment = payments.create_payment(db.session, trade_id=trade_id, provider=data["provider"], actor=principal)
    return payments.shown_payment(db.session, payment)


@blp.route("/payments/<payment_id>", methods=["GET"])
@blp.response(200, PaymentSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 404)
def get_payment(payment_id: str) -> Any:
    """A payment (the trade's parties and operators)."""
    principal = current_principal()
    payment = payments.get_payment(db.session, payment_id=payment_id, principal=principal)
    return payments.shown_payment(db.session, payment)


@blp.route("/payments/<payment_id>/confirm", methods=["POST"])
@blp.response(200, PaymentSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def confirm_payment(payment_id: str) -> Any:
    """Operators: the manual bank transfer arrived; the trade's money is now in escrow."""
    principal = current_principal()
    payment = payments.confirm_payment(db.session, payment_id=payment_id, actor=principal)
    return payments.shown_payment(db.session, payment)


@blp.route("/payments/<payment_id>/cancel", methods=["POST"])
@blp.response(200, PaymentSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def cancel_payment(payment_id: str) -> Any:
    """The buyer cancels its pending payment (a Stripe PaymentIntent is cancelled at Stripe after the
    commit); the trade may then be paid again. Not pending -> 409."""
    principal = current_principal()
    payment = payments.cancel_payment(db.session, payment_id=payment_id, actor=principal)
    return payments.shown_payment(db.session, payment)


@blp.route("/webhooks/stripe", methods=["POST"])
@blp.response(200, WebhookAckSchema)
@blp.problems(400, 422)
def stripe_webhook() -> Any:
    """Stripe events, verified with `Stripe-Signature` (300 s tolerance); each event id applied once."""
    return payments.apply_stripe_event(db.session, payload=request.get_data(cache=True),
                                         signature=request.headers.get("Stripe-Signature"))


@blp.route("/trades/<trade_id>/delivery", methods=["POST"])
@blp.arguments(DeliverySchema)
@blp.response(200, TradeSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def deliver(data: dict[str, Any], trade_id: str) -> Any:
    """The seller records its delivery (a reference and the sha256 of what was delivered)."""
    return settlement.deliver(db.session, trade_id=trade_id, actor=current_principal(), **data)


@blp.route("/trades/<trade_id>/acceptance", methods=["POST"])
@blp.response(200, TradeSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def accept_delivery(trade_id: str) -> Any:
    """The buyer accepts the delivery: escrow released to the seller, the fee to the exchange."""
    return settlement.accept(db.session, trade_id=trade_id, actor=current_principal())


@blp.route("/trades/<trade_id>/disputes", methods=["POST"])
@limit_writes("disputes")
@blp.arguments(DisputeCreateSchema)
@blp.response(201, DisputeSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def open_dispute(data: dict[str, Any], trade_id: str) -> Any:
    """The buyer disputes an escrowed or delivered trade."""
    return settlement.open_dispute(db.session, trade_id=trade_id, reason=data["reason"], actor=current_principal())


@blp.route("/trades/<trade_id>/resolution", methods=["POST"])
@blp.arguments(TradeResolutionSchema)
@blp.response(200, TradeSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS, 502, 503)
def resolve_dispute(data: dict[str, Any], trade_id: str) -> Any:
    """Operators: refund part or all of a disputed trade and settle the rest."""
    return settlement.resolve(db.session, trade_id=trade_id, refund_amount=data["refund_amount"],
                              comment=data.get("comment"), actor=current_principal())


@blp.route("/payouts", methods=["POST"])
@blp.arguments(PayoutCreateSchema)
@blp.response(201, PayoutSchema)
@blp.doc(security=AUTH)
@blp.problems(*WRITE_ERRORS)
def create_payout(data: dict[str, Any]) -> Any:
    """Operators: pay a seller out of its payable balance (never more than the balance). 409 while the
    organization is suspended."""
    return settlement.payout(db.session, actor=current_principal(), **data)
