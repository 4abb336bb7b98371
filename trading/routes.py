"""HTTP routes of trading: procurements, matches, offers, contracts, signatures, trades, statistics."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from exchange.api import AUTH, Blueprint, paginate
from exchange.db import db, read_session
from exchange.fields import Facts
from exchange.principal import current_principal, operators_only
from exchange.ratelimit import limit_writes
from trading import (
    contracts,
    document,
    dossier_documents,
    dossiers,
    matching,
    offers,
    payments,
    procurements,
    queues,
    settlement,
    stats,
    trades,
)
from trading import schemas as ex
from trading.schemas import (
    CancelSchema,
    ContractArgsSchema,
    ContractPageSchema,
    ContractSchema,
    CounterSchema,
    DeliverySchema,
    DisputeArgsSchema,
    DisputeCreateSchema,
    DisputePageSchema,
    DisputeSchema,
    DossierFilingSchema,
    DossierSchema,
    MatchArgsSchema,
    MatchListSchema,
    OfferArgsSchema,
    OfferCreateSchema,
    OfferDetailSchema,
    OfferPageSchema,
    OfferSchema,
    PaymentArgsSchema,
    PaymentCreateSchema,
    PaymentPageSchema,
    PaymentSchema,
    PayoutArgsSchema,
    PayoutCreateSchema,
    PayoutPageSchema,
    PayoutSchema,
    ProcurementArgsSchema,
    ProcurementCreateSchema,
    ProcurementMatchListSchema,
    ProcurementPageSchema,
    ProcurementSchema,
    SignatureCreateSchema,
    StatsSchema,
    TradeArgsSchema,
    TradeCancelSchema,
    TradePageSchema,
    TradeResolutionSchema,
    TradeSchema,
    WebhookAckSchema,
)

blp = Blueprint("trading", __name__, url_prefix="/api/v1", description="Procurement, negotiation, contracts, trades")
WRITE_ERRORS = (400, 401, 403, 404, 409, 415, 422, 429)


# -- procurements -----------------------------------------------------------------------------------
@blp.route("/procurements", methods=["POST"])
@blp.authorize(procurements.check_may_procure)
@limit_writes("procurements")
@blp.arguments(ProcurementCreateSchema, example=ex.PROCUREMENT_CREATE_EXAMPLE)
@blp.response(201, ProcurementSchema, example=ex.PROCUREMENT_EXAMPLE)
@blp.doc(operationId="createProcurement", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def create_procurement(data: dict[str, Any]) -> Any:
    """Post a procurement (demand for data).

    A member of a verified enterprise or vendor organization posts what it wants to buy, `public` (on
    the board for every vendor and enterprise) or `invited` (seen only by `invited_org_ids`, verified
    vendors or enterprises, not the caller). The procurement is `open` until its `deadline` (then
    `expired`), a signed contract from it (`contracted`) or the buyer's cancel (`cancelled`). Vendors
    of its best lawful matches are told (`procurement.matched`; public procurements only).
    403: not a verified enterprise or vendor; 409: an invited organization is suspended; 422: a past
    deadline, invitations on a public procurement (or none on an invited one), an unknown invitee."""
    return procurements.shown(matching.post_procurement(db.session, **data, actor=current_principal()))


@blp.route("/procurements", methods=["GET"])
@blp.arguments(ProcurementArgsSchema, location="query")
@blp.response(200, ProcurementPageSchema, example=ex.page_example(ex.PROCUREMENT_EXAMPLE))
@blp.doc(operationId="listProcurements", security=AUTH)
@blp.problems(401, 422)
def list_procurements(args: dict[str, Any]) -> Any:
    """List procurements: your own, the board, or where you are invited.

    Without flags: the caller's organization's own procurements (operators: all). `board=true`: open
    public demand of others before its deadline, not of suspended buyers. `invited=true`: procurements
    the caller's organization was invited to. `status` (an open one past its deadline counts as
    `expired`) and `category` filter; newest first, paginated."""
    principal = current_principal()
    stmt = procurements.list_query(db.session, principal=principal, board=args["board"], invited=args["invited"],
                                   status=args.get("status"), category=args.get("category"))
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = [procurements.shown(p) for p in page["items"]]
    return page


@blp.route("/procurements/<procurement_id>", methods=["GET"])
@blp.response(200, ProcurementSchema, example=ex.PROCUREMENT_EXAMPLE)
@blp.doc(operationId="getProcurement", security=AUTH)
@blp.problems(401, 404)
def get_procurement(procurement_id: str) -> Any:
    """Get a procurement.

    Its buyer and operators see it whole; vendors and enterprises see public ones, invited
    organizations the invited ones (`invited_org_ids` is shown to the buyer and operators only).
    Anyone else gets 404, as for an unknown id. `status` is as of now: an open procurement past its
    deadline reads `expired`."""
    principal = current_principal()
    return procurements.shown(procurements.get(db.session, procurement_id=procurement_id, principal=principal))


@blp.route("/procurements/<procurement_id>/cancel", methods=["POST"])
@blp.authorize(procurements.check_may_cancel)
@blp.arguments(CancelSchema, example=ex.CANCEL_EXAMPLE)
@blp.response(200, ProcurementSchema, example=ex.PROCUREMENT_CANCELLED_EXAMPLE)
@blp.doc(operationId="cancelProcurement", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def cancel_procurement(data: dict[str, Any], procurement_id: str) -> Any:
    """Cancel an open procurement.

    The buyer only (403 for anyone else who can see it): `open` -> `cancelled`, with the optional
    reason. 409 once it is `contracted`, `cancelled` or `expired` (an open one past its deadline
    expires first, then refuses). Offers already made that name it are not changed."""
    principal = current_principal()
    proc = procurements.cancel(db.session, procurement_id=procurement_id, reason=data.get("reason"), actor=principal)
    return procurements.shown(proc)


@blp.route("/procurements/<procurement_id>/matches", methods=["GET"])
@blp.arguments(MatchArgsSchema, location="query")
@blp.response(200, MatchListSchema, example=ex.MATCH_LIST_EXAMPLE)
@blp.doc(operationId="listProcurementMatches", security=AUTH)
@blp.problems(401, 403, 404, 422)
def procurement_matches(args: dict[str, Any], procurement_id: str) -> Any:
    """List the products that match a procurement.

    The procurement's buyer and operators (403 for other organizations that can see it): listed
    products with a valid certificate that the buyer may lawfully buy (cross-border rules), ranked by
    `score` (0..1) with the human-readable `reasons` behind it; at most `limit` (1..50). Changes
    nothing."""
    found = matching.matches_for_procurement(db.session, procurement_id=procurement_id,
                                             principal=current_principal(), limit=args["limit"])
    return {"items": found}


@blp.route("/products/<product_id>/matches", methods=["GET"])
@blp.arguments(MatchArgsSchema, location="query")
@blp.response(200, ProcurementMatchListSchema, example=ex.PROCUREMENT_MATCH_LIST_EXAMPLE)
@blp.doc(operationId="listProductMatches", security=AUTH)
@blp.problems(401, 403, 404, 409, 422)
def product_matches(args: dict[str, Any], product_id: str) -> Any:
    """List the open procurements a product answers.

    The product's vendor and operators (403 for others): open public procurements of buyers that are
    not suspended, which this listed product answers, best first, with `score` and `reasons`; at most
    `limit`. 409 while the product is not listed. Changes nothing."""
    product, version = matching.product_for_matching(db.session, product_id=product_id,
                                                     principal=current_principal())
    found = matching.procurements_for_product(db.session, product=product, version=version, limit=args["limit"])
    return {"items": [Facts(p, procurement_id=p.id, score=s, reasons=r) for p, s, r in found]}


# -- offers -----------------------------------------------------------------------------------------
@blp.route("/offers", methods=["POST"])
@blp.authorize(offers.check_may_offer)
@limit_writes("offers")
@blp.arguments(OfferCreateSchema, examples=ex.OFFER_CREATE_EXAMPLES)
@blp.response(201, OfferSchema, example=ex.OFFER_QUOTE_RESPONSE_EXAMPLE)
@blp.doc(operationId="createOffer", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def make_offer(data: dict[str, Any]) -> Any:
    """Make an offer: a bid on a product, or a quote to a buyer.

    A member of a verified vendor or enterprise. Without `to_org_id`: the caller bids on another
    organization's listed product (the seller receives it). With `to_org_id`: a vendor quotes its own
    product to that buyer. Either may answer an open `procurement_id` of the buyer. The offer is
    `pending` until accepted, rejected, countered, withdrawn or past `expires_at` (`expired`); the
    recipient is told (`offer.received`).
    403: not a verified vendor or enterprise; 404: the product or procurement is not visible to you;
    409: the product is not tradable now (not listed, no valid certificate), the procurement is not
    open, or the other side (seller or buyer) is suspended; 422: own product, a currency or delivery
    mode other than the product's, a past `expires_at`, a cross-border deal the rules forbid."""
    return offers.shown(db.session, offers.make(db.session, data=data, actor=current_principal()))


@blp.route("/offers", methods=["GET"])
@blp.arguments(OfferArgsSchema, location="query")
@blp.response(200, OfferPageSchema, example=ex.page_example(ex.OFFER_QUOTE_RESPONSE_EXAMPLE))
@blp.doc(operationId="listOffers", security=AUTH)
@blp.problems(401, 422)
def list_offers(args: dict[str, Any]) -> Any:
    """List offers sent or received.

    Offers made or received by the caller's organization (operators: all); `role=sent|received` and
    `status` filter (`status` as of now: a pending offer past `expires_at` is `expired`). Newest first,
    paginated."""
    stmt = offers.list_query(principal=current_principal(), role=args.get("role"), status=args.get("status"))
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = [offers.shown(db.session, o) for o in page["items"]]
    return page


@blp.route("/offers/<offer_id>", methods=["GET"])
@blp.response(200, OfferDetailSchema, example=ex.OFFER_DETAIL_EXAMPLE)
@blp.doc(operationId="getOffer", security=AUTH)
@blp.problems(401, 404)
def get_offer(offer_id: str) -> Any:
    """Get an offer with its negotiation thread.

    Its two parties and operators (404 for anyone else): the offer, every offer of its thread in the
    order made (the first offer and each counter-offer), and the contract its acceptance made
    (`contract_id`, null until then)."""
    offer = offers.get(db.session, offer_id=offer_id, principal=current_principal())
    return offers.shown(db.session, offer, with_thread=True)


@blp.route("/offers/<offer_id>/counter", methods=["POST"])
@blp.authorize(offers.check_recipient)
@limit_writes("offers")
@blp.arguments(CounterSchema, examples=ex.COUNTER_EXAMPLES)
@blp.response(201, OfferSchema, example=ex.OFFER_COUNTER_RESPONSE_EXAMPLE)
@blp.doc(operationId="counterOffer", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def counter_offer(data: dict[str, Any], offer_id: str) -> Any:
    """Counter an offer with new terms.

    The recipient of a `pending` offer (403 for its maker): a new `pending` offer to the other side in
    the same thread (`parent_id` = this one), and this one becomes `countered`. `price` is required;
    without `terms` the countered offer's terms are kept unchanged (and checked again). The maker is told
    (`offer.countered`), the new recipient gets `offer.received`.
    409: the offer is no longer pending, the product is no longer tradable, or the other side is
    suspended; 422: a past `expires_at`, a currency or delivery mode other than the product's, a
    cross-border deal the rules forbid."""
    new = offers.counter(db.session, offer_id=offer_id, price=data["price"], terms=data.get("terms"),
                         message=data.get("message"), expires_at=data.get("expires_at"), actor=current_principal())
    return offers.shown(db.session, new)


@blp.route("/offers/<offer_id>/accept", methods=["POST"])
@blp.response(201, ContractSchema, example=ex.CONTRACT_PENDING_EXAMPLE)
@blp.doc(operationId="acceptOffer", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def accept_offer(offer_id: str) -> Any:
    """Accept an offer: the contract is made.

    The recipient of a `pending` offer (403 for its maker): the offer becomes `accepted` and the
    contract is created in the same transaction, `pending_signatures`, its terms frozen and its
    `digest` fixed (what the parties sign). The maker is told (`offer.accepted`).
    409: the offer is no longer pending, the product is no longer tradable or has a newer certified
    version, or the other side is suspended; 422: the cross-border rules forbid the deal."""
    contract = offers.accept(db.session, offer_id=offer_id, actor=current_principal())
    return contracts.shown(db.session, contract)


@blp.route("/offers/<offer_id>/reject", methods=["POST"])
@blp.authorize(offers.check_recipient)
@blp.arguments(CancelSchema, example=ex.CANCEL_EXAMPLE)
@blp.response(200, OfferSchema, example=ex.OFFER_REJECTED_EXAMPLE)
@blp.doc(operationId="rejectOffer", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def reject_offer(data: dict[str, Any], offer_id: str) -> Any:
    """Reject an offer.

    The recipient of a `pending` offer (403 for its maker): `pending` -> `rejected`; the optional
    reason is appended to the offer's message. 409 once it is no longer pending."""
    return offers.shown(db.session, offers.reject(db.session, offer_id=offer_id, reason=data.get("reason"),
                                                 actor=current_principal()))


@blp.route("/offers/<offer_id>/withdraw", methods=["POST"])
@blp.response(200, OfferSchema, example=ex.OFFER_WITHDRAWN_EXAMPLE)
@blp.doc(operationId="withdrawOffer", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def withdraw_offer(offer_id: str) -> Any:
    """Withdraw an offer.

    The offer's maker (403 for the recipient): `pending` -> `withdrawn`. 409 once it is no longer
    pending (accepted, rejected, countered, withdrawn or expired)."""
    return offers.shown(db.session, offers.withdraw(db.session, offer_id=offer_id, actor=current_principal()))


# -- contracts --------------------------------------------------------------------------------------
@blp.route("/contracts", methods=["GET"])
@blp.arguments(ContractArgsSchema, location="query")
@blp.response(200, ContractPageSchema, example=ex.page_example(ex.CONTRACT_SIGNED_EXAMPLE))
@blp.doc(operationId="listContracts", security=AUTH)
@blp.problems(401, 422)
def list_contracts(args: dict[str, Any]) -> Any:
    """List contracts.

    Contracts of the caller's organization, as buyer or seller (operators: all), with their signatures
    and trade; `status` filters. Newest first, paginated."""
    stmt = contracts.list_query(principal=current_principal(), status=args.get("status"))
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    page["items"] = contracts.shown_page(db.session, page["items"])
    return page


@blp.route("/contracts/<contract_id>", methods=["GET"])
@blp.response(200, ContractSchema, example=ex.CONTRACT_SIGNED_EXAMPLE)
@blp.doc(operationId="getContract", security=AUTH)
@blp.problems(401, 404)
def get_contract(contract_id: str) -> Any:
    """Get a contract with its signatures and trade.

    Its two parties and operators (404 for anyone else). `digest` is the sha256 hex of the RFC 8785
    canonical JSON of `number`, `buyer_org_id`, `seller_org_id`, `product_id`, `product_version`,
    `certificate_number`, `price` and `terms`; each signature says how it was made (`platform`: the
    exchange's attestation, verifiable with /.well-known/jwks.json; `ed25519`: the organization's own
    key over the digest)."""
    return contracts.shown(db.session, contracts.get(db.session, contract_id=contract_id,
                                                    principal=current_principal()))


@blp.route("/contracts/<contract_id>/document", methods=["GET"])
@blp.response(200, content_type="text/markdown")
@blp.doc(operationId="getContractDocument", security=AUTH)
@blp.problems(401, 404)
def contract_document(contract_id: str) -> Any:
    """Get the contract as a bilingual Markdown document.

    Its two parties and operators (404 for anyone else): the contract in Chinese and English
    (`text/markdown; charset=utf-8`), with its number, parties, product, certificate, price in words,
    terms, digest and signatures. Changes nothing."""
    contract = contracts.get(db.session, contract_id=contract_id, principal=current_principal())
    return Response(document.render(db.session, contract), mimetype="text/markdown; charset=utf-8")


@blp.route("/contracts/<contract_id>/signatures", methods=["POST"])
@blp.authorize(contracts.check_may_sign)
@limit_writes("signatures")
@blp.arguments(SignatureCreateSchema, examples=ex.SIGNATURE_CREATE_EXAMPLES)
@blp.response(201, ContractSchema, example=ex.CONTRACT_SIGNED_EXAMPLE)
@blp.doc(operationId="signContract", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def sign_contract(data: dict[str, Any], contract_id: str) -> Any:
    """Sign a contract.

    A member of a verified buyer or seller organization, once per side. Two ways:

    - with the organization's own key: `key_id` (an active key registered with
      `POST /organizations/{org_id}/keys`) and `signature` = base64 of the Ed25519 signature of the
      UTF-8 bytes of the contract's `digest` string (its 64 lowercase hex characters, exactly as
      `GET /contracts/{contract_id}` shows it; not the decoded 32 bytes, no newline). The example is a
      real signature of the example digest
      `d5609147ad67a66c8651d30d97486dfcb71a64d2650e48e5b55ecf31d543ccc6` by the key whose raw public
      key is `HVc9ENwJYAcMh8rIi8mgg+w1FXPh0RtVsVZEBFb7hy0=` (base64);
    - without `key_id` and `signature`: the exchange attests the signature (`method` `platform`) with
      its own Ed25519 key over the RFC 8785 JSON of `contract_digest`, `org_id`, `user_id`,
      `signed_at`, `on_site`, `fair_id` and `stall_code`.

    On site (`on_site` true) needs a live fair's `fair_id` and the seller's `stall_code` there. The
    second signature makes the contract `signed` and creates its trade (`awaiting_payment`) in the
    same transaction (`contract.signed` to both parties).

    403: not the buyer or the seller, or not verified; 409: not `pending_signatures`, your side already
    signed, the certificate is no longer valid, the product is no longer listed, or the other side is
    suspended; 422: a signature that does not verify, a key not yours or revoked, only one of `key_id`
    and `signature`, on-site rules, a cross-border deal the rules forbid."""
    contract = contracts.sign(db.session, contract_id=contract_id, data=data, actor=current_principal(),
                              client_addr=request.remote_addr, user_agent=request.headers.get("User-Agent"))
    return contracts.shown(db.session, contract)


@blp.route("/contracts/<contract_id>/cancel", methods=["POST"])
@blp.authorize(contracts.check_may_cancel)
@blp.arguments(CancelSchema, example=ex.CANCEL_EXAMPLE)
@blp.response(200, ContractSchema, example=ex.CONTRACT_CANCELLED_EXAMPLE)
@blp.doc(operationId="cancelContract", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def cancel_contract(data: dict[str, Any], contract_id: str) -> Any:
    """Cancel a contract awaiting signatures.

    The buyer or the seller (403 for operators and others who can see it): `pending_signatures` ->
    `cancelled`, with the optional reason (audited). 409 once it is `signed` or `cancelled`."""
    contract = contracts.cancel(db.session, contract_id=contract_id, reason=data.get("reason"),
                                actor=current_principal())
    return contracts.shown(db.session, contract)


@blp.route("/contracts/<contract_id>/subscription/cancel", methods=["POST"])
@blp.response(200, ContractSchema, example=ex.CONTRACT_SUBSCRIPTION_CANCELLED_EXAMPLE)
@blp.doc(operationId="cancelSubscription", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def cancel_subscription(contract_id: str) -> Any:
    """Cancel a subscription.

    The buyer (403 for the seller and operators; 404 for anyone who cannot see the contract): the
    subscription becomes `cancelled` — no period after the latest escrowed one is created; an unpaid
    next period's trade is `cancelled` (its pending payment first); the paid periods run to their
    end, and the entitlement expires after the last of them (`subscription.cancelled` to both
    parties). 409 for a contract that is not a subscription, or a subscription no longer `active`."""
    contract = payments.cancel_subscription(db.session, contract_id=contract_id, actor=current_principal())
    return contracts.shown(db.session, contract)


# -- cross-border dossiers (API.md Compliance) ------------------------------------------------------
@blp.route("/contracts/<contract_id>/dossier", methods=["GET"])
@blp.response(200, DossierSchema, example=ex.DOSSIER_EXAMPLE)
@blp.doc(operationId="getDossier", security=AUTH)
@blp.problems(401, 404)
def get_dossier(contract_id: str) -> Any:
    """Get a contract's cross-border dossier.

    The contract's two parties and operators (404 for anyone else, and for a contract without a
    dossier). Every contract whose data leaves the mainland — the seller (the exporter) in GD or
    CN, the buyer in HK, MO or INTL — gets one at its second signature. `path` is the legal path
    (`no_personal_info`, `exempt_small_volume`, `gba_standard_contract`, `standard_contract`,
    `security_assessment`), decided by the versioned rule table (`rule_version`, `rule_ids`,
    `reasons` with their legal sources) from the data, the parties' places and the exporter's
    individuals sent abroad this year, this deal included. A contract path is due for filing by
    23:59:59 China Standard Time of the 10th mainland working day after signature; a security
    assessment must be filed and approved before delivery. `status` is computed on read:
    `overdue` once an awaiting dossier's due date has passed, which suspends the entitlement.
    Changes nothing."""
    return dossiers.shown(dossiers.get(db.session, contract_id=contract_id, principal=current_principal()))


@blp.route("/contracts/<contract_id>/dossier/filing", methods=["POST"])
@blp.authorize(dossiers.check_may_file)
@blp.arguments(DossierFilingSchema, example=ex.DOSSIER_FILING_EXAMPLE)
@blp.response(200, DossierSchema, example=ex.DOSSIER_EXAMPLE)
@blp.doc(operationId="fileDossier", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def file_dossier(data: dict[str, Any], contract_id: str) -> Any:
    """File a cross-border dossier.

    The exporting party (the seller's members) or an operator records the filing's `reference`;
    the dossier becomes `filed` (also when it was `overdue`: a late filing ends the suspension).
    For a security assessment, an operator records the regulator's approval with `approved: true`
    (with the filing, or later with the same reference); delivery starts only then. Errors: 403
    the buyer, or `approved` from a non-operator; 404 no dossier visible; 409 a path that needs no
    filing, a dossier already filed (under another reference, or already approved); 422 no
    reference, or `approved` on a path that has no approval."""
    dossier = dossiers.file(db.session, contract_id=contract_id, data=data, actor=current_principal())
    return dossiers.shown(dossier)


@blp.route("/contracts/<contract_id>/dossier/documents/<kind>", methods=["GET"])
@blp.response(200, content_type="text/markdown")
@blp.doc(operationId="getDossierDocument", security=AUTH)
@blp.problems(401, 404)
def dossier_document(contract_id: str, kind: str) -> Any:
    """Get a dossier's document as bilingual Markdown.

    The contract's parties and operators: `particulars` (the standard contract's, or the security
    assessment declaration's, filled from the contract) or `undertaking` (承诺书), drafts in Chinese
    and English for the exporter to check and file; user text is escaped as in the contract
    document. 404 for a kind the dossier does not offer (a dossier that needs no filing offers
    none). Changes nothing."""
    dossier = dossiers.get(db.session, contract_id=contract_id, principal=current_principal())
    return Response(dossier_documents.render(db.session, dossier, kind), mimetype="text/markdown; charset=utf-8")


# -- trades and statistics --------------------------------------------------------------------------
@blp.route("/trades", methods=["GET"])
@blp.arguments(TradeArgsSchema, location="query")
@blp.response(200, TradePageSchema, example=ex.page_example(ex.TRADE_ESCROWED_EXAMPLE))
@blp.doc(operationId="listTrades", security=AUTH)
@blp.problems(401, 422)
def list_trades(args: dict[str, Any]) -> Any:
    """List trades.

    Trades of the caller's organization, as buyer or seller (operators: all); `status` filters.
    Newest first, paginated; with `contract_id`, that contract's trades in period order (a
    subscription has one per period). Money is integer minor units in the trade's currency."""
    stmt = trades.list_query(principal=current_principal(), status=args.get("status"),
                             contract_id=args.get("contract_id"))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/trades/<trade_id>", methods=["GET"])
@blp.response(200, TradeSchema, example=ex.TRADE_ESCROWED_EXAMPLE)
@blp.doc(operationId="getTrade", security=AUTH)
@blp.problems(401, 404)
def get_trade(trade_id: str) -> Any:
    """Get a trade.

    Its two parties and operators (404 for anyone else). A trade goes `awaiting_payment` ->
    `escrowed` (paid) -> `delivered` -> `settled`, or `disputed` -> `settled` / `refunded`; an unpaid
    one may end `cancelled` (no money moved). A subscription's trade shows its `period`."""
    return trades.visible(db.session, trade_id, current_principal())


@blp.route("/trades/<trade_id>/cancel", methods=["POST"])
@blp.authorize(operators_only)
@blp.arguments(TradeCancelSchema, example={"reason": "The buyer withdrew before paying; agreed by both parties."})
@blp.response(200, TradeSchema, example=ex.TRADE_CANCELLED_EXAMPLE)
@blp.doc(operationId="cancelTrade", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def cancel_trade(data: dict[str, Any], trade_id: str) -> Any:
    """Cancel a trade nobody paid (operators).

    `awaiting_payment` -> `cancelled` with the reason (audited; `trade.cancelled` to both parties);
    its pending payment is cancelled first. No money moved, so no ledger entry. A subscription's
    period cancelled this way lapses the subscription. 409 once the trade is paid (a paid trade is
    refunded through a dispute's resolution) or already ended. The sweep cancels unpaid trades by
    itself: a subscription's period `DATAFAIR_GRACE_DAYS` after its start, any trade
    `DATAFAIR_PAYMENT_DAYS` after its contract was signed."""
    return payments.cancel_by_operator(db.session, trade_id=trade_id, reason=data["reason"],
                                       actor=current_principal())


@blp.route("/stats", methods=["GET"])
@blp.response(200, StatsSchema, example=ex.STATS_EXAMPLE)
@blp.doc(operationId="getStats")
def market_stats() -> Any:
    """Get the public market statistics.

    Anyone, no token: listed products, vendors, signed contracts, and the volume per currency (money
    that reached escrow less refunds, never converted or mixed), in total and per category."""
    return stats.market(read_session())


# -- money flow -------------------------------------------------------------------------------------
@blp.route("/trades/<trade_id>/payments", methods=["POST"])
@blp.authorize(payments.check_may_pay)
@blp.arguments(PaymentCreateSchema, examples=ex.PAYMENT_CREATE_EXAMPLES)
@blp.response(201, PaymentSchema, example=ex.PAYMENT_STRIPE_EXAMPLE)
@blp.doc(operationId="createPayment", security=AUTH)
@blp.problems(*WRITE_ERRORS, 502, 503)
def create_payment(data: dict[str, Any], trade_id: str) -> Any:
    """Pay a trade.

    The buyer of a trade `awaiting_payment`, a member of a verified organization (403 otherwise):
    `manual` (a bank transfer an operator confirms with `POST /payments/{payment_id}/confirm`) or
    `stripe` (a PaymentIntent: `client_secret`, shown to the buyer only, completes it in the browser;
    its webhook escrows the trade). The payment is `pending`.
    One payment in flight per trade: while one is `pending`, another -> 409 naming it (cancel it
    with `POST /payments/{payment_id}/cancel`, then pay again). 409 also when the trade is not
    awaiting payment or while the seller is suspended; 422: a provider this deployment does not
    offer. 502: the provider refused (the payment is `failed`; the trade may be paid again); 503: the
    provider did not answer (the payment stays `pending` and the reconciliation job completes the
    call; cancel it to pay another way)."""
    principal = current_principal()
    payment = payments.create_payment(db.session, trade_id=trade_id, provider=data["provider"], actor=principal)
    return payments.shown_payment(db.session, payment)


@blp.route("/payments", methods=["GET"])
@blp.arguments(PaymentArgsSchema, location="query")
@blp.response(200, PaymentPageSchema, example=ex.page_example(ex.PAYMENT_QUEUE_EXAMPLE))
@blp.doc(operationId="listPayments", security=AUTH)
@blp.problems(401, 404, 422)
def list_payments(args: dict[str, Any]) -> Any:
    """List payments: the operators' queue of transfers to confirm.

    Operators see every payment (`status=pending` with `provider` manual is the queue of bank
    transfers to confirm with `POST /payments/{payment_id}/confirm`); the buyer and the seller of a
    trade see its payments. `trade_id` (404 for a trade you cannot see, as for an unknown one) and
    `status` filter. Oldest first, paginated. Never shows a Stripe `client_secret` (the buyer reads it
    with `GET /payments/{payment_id}`). Changes nothing."""
    stmt = queues.payments(db.session, principal=current_principal(), trade_id=args.get("trade_id"),
                           status=args.get("status"))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/payments/<payment_id>", methods=["GET"])
@blp.response(200, PaymentSchema, example=ex.PAYMENT_STRIPE_EXAMPLE)
@blp.doc(operationId="getPayment", security=AUTH)
@blp.problems(401, 404)
def get_payment(payment_id: str) -> Any:
    """Get a payment.

    The trade's two parties and operators (404 for anyone else, as for an unknown id).
    `client_secret` is shown to the buyer only, and only while the payment is `pending`."""
    principal = current_principal()
    payment = payments.get_payment(db.session, payment_id=payment_id, principal=principal)
    return payments.shown_payment(db.session, payment)


@blp.route("/payments/<payment_id>/confirm", methods=["POST"])
@blp.response(200, PaymentSchema, example=ex.PAYMENT_CONFIRMED_EXAMPLE)
@blp.doc(operationId="confirmPayment", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def confirm_payment(payment_id: str) -> Any:
    """Confirm a manual payment: the money is in escrow.

    Operators only (403 otherwise): the bank transfer arrived. `pending` -> `succeeded`, the trade
    `awaiting_payment` -> `escrowed`, and the money enters escrow in a ledger entry, all in one
    transaction. 409: a Stripe payment (Stripe confirms its own), a payment no longer pending (a repeat
    included) or a trade no longer awaiting payment."""
    principal = current_principal()
    payment = payments.confirm_payment(db.session, payment_id=payment_id, actor=principal)
    return payments.shown_payment(db.session, payment)


@blp.route("/payments/<payment_id>/cancel", methods=["POST"])
@blp.response(200, PaymentSchema, example=ex.PAYMENT_CANCELED_EXAMPLE)
@blp.doc(operationId="cancelPayment", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def cancel_payment(payment_id: str) -> Any:
    """Cancel a pending payment.

    The trade's buyer (403 for the seller and operators): `pending` -> `canceled`; a Stripe
    PaymentIntent is cancelled at Stripe after the commit. The trade may then be paid again. 409 when
    the payment is not pending."""
    principal = current_principal()
    payment = payments.cancel_payment(db.session, payment_id=payment_id, actor=principal)
    return payments.shown_payment(db.session, payment)


@blp.route("/webhooks/stripe", methods=["POST"])
@blp.response(200, WebhookAckSchema, examples=ex.WEBHOOK_ACK_EXAMPLES)
@blp.doc(operationId="receiveStripeWebhook", parameters=ex.STRIPE_WEBHOOK_PARAMETERS,
         requestBody=ex.STRIPE_WEBHOOK_REQUEST_BODY)
@blp.problems(400, 422)
def stripe_webhook() -> Any:
    """Receive a Stripe event.

    Stripe only, no token: the raw body must verify with the `Stripe-Signature` header (the endpoint's
    signing secret, 300 s tolerance), so the example body is accepted only as Stripe signs it. 400: a
    missing, wrong or stale signature, or a body that is not a Stripe event; 422 while Stripe is not
    configured on this exchange (STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET). Each event id is applied once.
    `payment_intent.succeeded` for a known intent with the payment's exact amount and currency escrows
    its trade (a success for a payment no longer pending is refunded); any other event, a repeat, an
    unknown intent or a mismatch is acknowledged (`applied` false, with the `reason`) and changes
    nothing."""
    return payments.apply_stripe_event(db.session, payload=request.get_data(cache=True),
                                         signature=request.headers.get("Stripe-Signature"))


@blp.route("/trades/<trade_id>/delivery", methods=["POST"])
@blp.authorize(settlement.check_may_deliver)
@blp.arguments(DeliverySchema, example=ex.DELIVERY_EXAMPLE)
@blp.response(200, TradeSchema, example=ex.TRADE_DELIVERED_EXAMPLE)
@blp.doc(operationId="createDelivery", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def deliver(data: dict[str, Any], trade_id: str) -> Any:
    """Declare a delivery made outside the exchange.

    The seller (403 for others who can see the trade): `escrowed` -> `delivered`, with a reference to
    what was delivered and its sha256 (64 lowercase hex characters), `delivery_evidence` `declared`.
    The acceptance period starts: the buyer accepts or disputes it, or it settles by itself at the
    period's end. 409 unless `escrowed`, and 409 where the exchange delivers itself (a `file` or
    `privacy_computing` product with a published release: publishing delivers the trade)."""
    return settlement.deliver(db.session, trade_id=trade_id, actor=current_principal(), **data)


@blp.route("/trades/<trade_id>/acceptance", methods=["POST"])
@blp.response(200, TradeSchema, example=ex.TRADE_SETTLED_EXAMPLE)
@blp.doc(operationId="acceptDelivery", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def accept_delivery(trade_id: str) -> Any:
    """Accept the delivery: the trade settles.

    The buyer (403 for others who can see the trade): `delivered` -> `settled` (`settlement`
    `accepted`); the escrow goes to the seller's payable balance less the exchange's fee, in one
    ledger entry. 409 unless `delivered`, and for a per_call trade (it settles when its entitlement
    ends)."""
    return settlement.accept(db.session, trade_id=trade_id, actor=current_principal())


@blp.route("/trades/<trade_id>/disputes", methods=["POST"])
@blp.authorize(settlement.check_may_dispute)
@limit_writes("disputes")
@blp.arguments(DisputeCreateSchema, example=ex.DISPUTE_CREATE_EXAMPLE)
@blp.response(201, DisputeSchema, example=ex.DISPUTE_EXAMPLE)
@blp.doc(operationId="createDispute", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def open_dispute(data: dict[str, Any], trade_id: str) -> Any:
    """Dispute a trade.

    The buyer, or an operator on its behalf (403 for others who can see the trade), of an `escrowed`
    or `delivered` trade: the trade becomes `disputed`, settlement waits for an operator's resolution,
    the dispute is `open` and the buyer's entitlement is suspended until it is resolved. 409 in any
    other state."""
    return settlement.open_dispute(db.session, trade_id=trade_id, reason=data["reason"], actor=current_principal())


@blp.route("/disputes", methods=["GET"])
@blp.arguments(DisputeArgsSchema, location="query")
@blp.response(200, DisputePageSchema, example=ex.page_example(ex.DISPUTE_EXAMPLE))
@blp.doc(operationId="listDisputes", security=AUTH)
@blp.problems(401, 422)
def list_disputes(args: dict[str, Any]) -> Any:
    """List disputes: the operators' queue of trades to resolve.

    Operators see every dispute (`status=open` is their queue: each is resolved with
    `POST /trades/{trade_id}/resolution`); the buyer and the seller of a disputed trade see its
    disputes. `status` (`open` or `resolved`) filters. Oldest first, paginated. Changes nothing."""
    stmt = queues.disputes(principal=current_principal(), status=args.get("status"))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/trades/<trade_id>/resolution", methods=["POST"])
@blp.authorize(operators_only)
@blp.arguments(TradeResolutionSchema, example=ex.RESOLUTION_EXAMPLE)
@blp.response(200, TradeSchema, example=ex.TRADE_RESOLVED_EXAMPLE)
@blp.doc(operationId="resolveDispute", security=AUTH)
@blp.problems(*WRITE_ERRORS, 502, 503)
def resolve_dispute(data: dict[str, Any], trade_id: str) -> Any:
    """Resolve a disputed trade.

    Operators only (403 otherwise): refund `refund_amount` (minor units, at most what was paid and
    not yet refunded; 422 beyond) to the buyer and settle the rest to the seller less the fee. A full
    refund ends `refunded`, a partial one `settled` (`settlement` `dispute_resolved`); the dispute is
    `resolved`. `end_access: true` revokes the buyer's entitlement (no more downloads); otherwise access
    resumes unless the trade ends `refunded` (which revokes it). A Stripe payment is refunded at its
    provider first (502/503 if it refuses or does not answer: the trade stays `disputed`, and a retry
    replays the same refund). 409 unless `disputed`.

    A per_call trade: the calls counted but not yet drawn are drawn first; `refund_amount` must be a
    whole number of calls (422 otherwise) and at most what then remains in escrow. With `end_access`
    the unused calls are refunded too and the trade ends `settled` (`refunded` if no call was ever
    drawn); without it the trade returns to `delivered`, the entitlement loses the refunded calls and
    metering resumes."""
    return settlement.resolve(db.session, trade_id=trade_id, refund_amount=data["refund_amount"],
                              comment=data.get("comment"), end_access=data["end_access"],
                              actor=current_principal())


@blp.route("/payouts", methods=["POST"])
@blp.authorize(operators_only)
@blp.arguments(PayoutCreateSchema, example=ex.PAYOUT_CREATE_EXAMPLE)
@blp.response(201, PayoutSchema, example=ex.PAYOUT_EXAMPLE)
@blp.doc(operationId="createPayout", security=AUTH)
@blp.problems(*WRITE_ERRORS)
def create_payout(data: dict[str, Any]) -> Any:
    """Pay a seller out of its payable balance.

    Operators only (403 otherwise): moves `amount` (minor units) of the organization's payable balance
    in `currency` to the provider, never more than the balance (422, even under racing requests). A
    `manual` payout is `paid` at once; a `stripe` one stays `pending` until its Transfer is made after
    the commit (409 when the organization has no Stripe account). 409 while the organization is
    suspended; 422: an unknown organization."""
    return settlement.payout(db.session, actor=current_principal(), **data)


@blp.route("/payouts", methods=["GET"])
@blp.arguments(PayoutArgsSchema, location="query")
@blp.response(200, PayoutPageSchema, example=ex.page_example(ex.PAYOUT_EXAMPLE))
@blp.doc(operationId="listPayouts", security=AUTH)
@blp.problems(401, 422)
def list_payouts(args: dict[str, Any]) -> Any:
    """List payouts.

    Operators see every payout (`org_id` filters by organization); any other organization sees its
    own only (an `org_id` of another organization finds nothing). `currency` filters. Newest first,
    paginated. Changes nothing."""
    stmt = queues.payouts(principal=current_principal(), org_id=args.get("org_id"), currency=args.get("currency"))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
