"""Marshmallow schemas of procurements, matches, offers, contracts, trades and statistics."""

from __future__ import annotations

from marshmallow import Schema, fields, post_dump, validate

from exchange.fields import (
    Boolean,
    Composite,
    MoneySchema,
    OneTimeSecret,
    PaginationArgsSchema,
    StrictInteger,
    StrictSchema,
    Text,
    UTCDateTime,
    money_sum_schema,
    page_schema,
)
from exchange.money import CURRENCIES
from exchange.principal import viewer
from listings.schemas import PriceOutSchema
from listings.states import CATEGORIES, DELIVERY_MODES, LICENSE_SCOPES
from trading.rules import MAX_CALLS
from trading.states import (
    ContractStatus,
    DisputeStatus,
    OfferStatus,
    PaymentStatus,
    ProcurementStatus,
    TradeStatus,
)

ID = validate.Length(min=1, max=40)


class BudgetSchema(StrictSchema):
    max_amount = StrictInteger(required=True, minimum=1)
    currency = fields.String(required=True, validate=validate.OneOf(CURRENCIES))


class ProcurementCreateSchema(StrictSchema):
    title = Text(required=True, max_length=200)
    description = Text(required=True, max_length=10_000, multiline=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    keywords = fields.List(Text(max_length=50), load_default=list, validate=validate.Length(max=20))
    budget = fields.Nested(BudgetSchema, required=True)
    delivery_mode = fields.String(allow_none=True, validate=validate.OneOf(DELIVERY_MODES))
    deadline = UTCDateTime(required=True)
    visibility = fields.String(load_default="public", validate=validate.OneOf(("public", "invited")))
    invited_org_ids = fields.List(fields.String(validate=ID), load_default=list, validate=validate.Length(max=50))


class ProcurementSchema(Schema):
    id = fields.String()
    buyer_org_id = fields.String()
    title = fields.String()
    description = fields.String()
    category = fields.String()
    keywords = fields.List(fields.String())
    budget = Composite(max_amount="budget_max_amount", currency="budget_currency")
    delivery_mode = fields.String(allow_none=True)
    deadline = UTCDateTime()
    visibility = fields.String()
    invited_org_ids = fields.List(fields.String(), metadata={"description": "shown to the buyer and operators"})
    status = fields.String()
    created_at = UTCDateTime()

    @post_dump(pass_original=True)
    def _for_viewer(self, data: dict, proc: object, **kw: object) -> dict:
        who = viewer()
        private = who is not None and (who.is_operator or who.org_id == proc.buyer_org_id)
        data["keywords"] = data["keywords"] or []
        data["invited_org_ids"] = (data["invited_org_ids"] or []) if private else []
        return data


class ProcurementArgsSchema(PaginationArgsSchema):
    board = fields.Boolean(load_default=False)
    invited = fields.Boolean(load_default=False)
    status = fields.String(validate=validate.OneOf([s.value for s in ProcurementStatus]))
    category = fields.String(validate=validate.OneOf(CATEGORIES))


class CancelSchema(StrictSchema):
    reason = Text(max_length=2000, multiline=True, allow_none=True)


class MatchArgsSchema(StrictSchema):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50))


class MatchSchema(Schema):
    product_id = fields.String()
    score = fields.Float(metadata={"description": "0..1, higher is better"})
    reasons = fields.List(fields.String())
    title = fields.String(metadata={"description": "the listed revision's title, as the catalog shows it"})
    price = fields.Nested(PriceOutSchema, metadata={
        "description": "the listed revision's price, as the catalog shows it (minor units)"})
    delivery_mode = fields.String()
    certificate_number = fields.String(metadata={"description": "the valid certificate of the listed revision"})
    vendor_org_id = fields.String()
    vendor = fields.String(metadata={"description": "the vendor organization's display name, else its name"})


class MatchListSchema(Schema):
    items = fields.List(fields.Nested(MatchSchema))


class ProcurementMatchSchema(Schema):
    procurement_id = fields.String()
    title = fields.String()
    buyer_org_id = fields.String()
    deadline = UTCDateTime()
    score = fields.Float()
    reasons = fields.List(fields.String())


class ProcurementMatchListSchema(Schema):
    items = fields.List(fields.Nested(ProcurementMatchSchema))


class TermsSchema(StrictSchema):
    scope = fields.String(required=True, validate=validate.OneOf(LICENSE_SCOPES))
    duration_days = StrictInteger(minimum=1, maximum=36_500, metadata={
        "description": "the days of access the deal buys; required, except for subscription products "
                       "(their access follows the periods paid)"})
    delivery_mode = fields.String(required=True, validate=validate.OneOf(DELIVERY_MODES))
    calls = StrictInteger(minimum=1, maximum=MAX_CALLS, metadata={
        "description": "per_call products only, and required for them: the calls bought up front "
                       "(price.amount is then the unit price; the contract's amount is calls x unit price)"})
    periods = StrictInteger(minimum=1, maximum=36, metadata={
        "description": "subscription products only (default 1): the calendar periods (the product's "
                       "price.period, month or year) the contract covers; price.amount is one period's price"})
    auto_renew = Boolean(metadata={
        "description": "subscription products only (default false): renew beyond `periods`, period by "
                       "period, at the same price, until cancelled"})


class OfferCreateSchema(StrictSchema):
    product_id = fields.String(required=True, validate=ID)
    procurement_id = fields.String(allow_none=True, validate=ID)
    price = fields.Nested(MoneySchema, required=True)
    terms = fields.Nested(TermsSchema, required=True)
    expires_at = UTCDateTime(allow_none=True)
    to_org_id = fields.String(allow_none=True, validate=ID)
    message = Text(max_length=2000, multiline=True, allow_none=True)


class CounterSchema(StrictSchema):
    price = fields.Nested(MoneySchema, required=True)
    terms = fields.Nested(TermsSchema, metadata={
        "description": "omitted: the countered offer's terms are kept unchanged (only the price moves)"})
    expires_at = UTCDateTime(allow_none=True)
    message = Text(max_length=2000, multiline=True, allow_none=True)


class OfferSchema(Schema):
    id = fields.String()
    thread_id = fields.String()
    parent_id = fields.String(allow_none=True)
    product_id = fields.String()
    product_version = fields.Integer()
    procurement_id = fields.String(allow_none=True)
    from_org_id = fields.String()
    to_org_id = fields.String()
    buyer_org_id = fields.String()
    seller_org_id = fields.String()
    price = Composite(amount="amount", currency="currency")
    terms = fields.Dict()
    message = fields.String(allow_none=True)
    expires_at = UTCDateTime(allow_none=True)
    status = fields.String()
    created_at = UTCDateTime()
    decided_at = UTCDateTime(allow_none=True)


class OfferDetailSchema(OfferSchema):
    thread = fields.List(fields.Nested(OfferSchema))
    contract_id = fields.String(allow_none=True)


class OfferArgsSchema(PaginationArgsSchema):
    role = fields.String(validate=validate.OneOf(("sent", "received")))
    status = fields.String(validate=validate.OneOf([s.value for s in OfferStatus]))


class SignatureViewSchema(Schema):
    org_id = fields.String()
    user_id = fields.String()
    signed_at = UTCDateTime()
    on_site = fields.Boolean()
    fair_id = fields.String(allow_none=True)
    stall_code = fields.String(allow_none=True)
    method = fields.String()
    key_id = fields.String()
    signature = fields.String()


class PeriodSchema(Schema):
    index = fields.Integer()
    start = UTCDateTime()
    end = UTCDateTime()


class SubscriptionPeriodSchema(PeriodSchema):
    trade_id = fields.String()
    status = fields.String(metadata={"description": "the period's trade's status"})


class SubscriptionViewSchema(Schema):
    status = fields.String(metadata={"description": "active | cancelled | lapsed | ended"})
    current_period = fields.Integer(metadata={"description": "the period running now (1-based)"})
    renews_at = UTCDateTime(allow_none=True, metadata={
        "description": "when the next period's trade will be created (the latest period's end minus "
                       "DATAFAIR_RENEWAL_NOTICE_DAYS); null when nothing renews"})
    auto_renew = fields.Boolean()
    reason = fields.String(allow_none=True, metadata={"description": "why it lapsed, ended or was cancelled"})
    periods = fields.Integer(metadata={"description": "the periods the contract covers (terms.periods)"})
    unit = fields.String(metadata={"description": "month | year (the product's price.period)"})
    ends_at = UTCDateTime(metadata={"description": "the end of the latest period that has a trade"})
    history = fields.List(fields.Nested(SubscriptionPeriodSchema), metadata={
        "description": "every period that has a trade, in order, with that trade"})


class ContractSchema(Schema):
    id = fields.String()
    number = fields.String()
    offer_id = fields.String()
    procurement_id = fields.String(allow_none=True)
    buyer_org_id = fields.String()
    seller_org_id = fields.String()
    product_id = fields.String()
    product_version = fields.Integer()
    certificate_number = fields.String()
    price = Composite(amount="amount", currency="currency")
    terms = fields.Dict()
    digest = fields.String()
    status = fields.String()
    on_site = fields.Boolean()
    fair_id = fields.String(allow_none=True)
    created_at = UTCDateTime()
    signed_at = UTCDateTime(allow_none=True)
    signatures = fields.List(fields.Nested(SignatureViewSchema))
    trade_id = fields.String(allow_none=True, metadata={
        "description": "the (first) trade: a subscription has one per period"})
    subscription = fields.Nested(SubscriptionViewSchema, allow_none=True, metadata={
        "description": "a subscription contract's renewal state and periods (null for any other contract)"})


class SignatureCreateSchema(StrictSchema):
    on_site = Boolean(load_default=False)
    fair_id = fields.String(allow_none=True, validate=ID)
    stall_code = fields.String(allow_none=True, validate=validate.Length(min=1, max=20))
    key_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))
    signature = fields.String(allow_none=True, validate=validate.Length(min=1, max=128))


class ContractArgsSchema(PaginationArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in ContractStatus]))


class PaymentSummarySchema(Schema):
    """A payment as its trade and the payment queue show it: never the Stripe `client_secret`."""

    id = fields.String()
    trade_id = fields.String()
    provider = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in PaymentStatus]))
    amount = fields.Integer()
    currency = fields.String()
    provider_ref = fields.String(allow_none=True)
    created_at = UTCDateTime()
    confirmed_at = UTCDateTime(allow_none=True)
    refund_reason = fields.String(allow_none=True)
    refunded_at = UTCDateTime(allow_none=True)


class TradeSchema(Schema):
    id = fields.String()
    contract_id = fields.String()
    buyer_org_id = fields.String()
    seller_org_id = fields.String()
    product_id = fields.String()
    amount = fields.Integer()
    fee = fields.Integer()
    refunded_amount = fields.Integer()
    currency = fields.String()
    status = fields.String()
    on_site = fields.Boolean()
    fair_id = fields.String(allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()
    paid_amount = fields.Integer()
    delivery_reference = fields.String(allow_none=True)
    delivery_sha256 = fields.String(allow_none=True)
    delivered_at = UTCDateTime(allow_none=True)
    delivery_evidence = fields.String(allow_none=True, metadata={
        "description": "How delivery is known: `release` (the exchange delivered a published release), "
                       "`declared` (the seller's own reference), `api_call` or `query`."})
    acceptance_started_at = UTCDateTime(allow_none=True, metadata={
        "description": "When the acceptance period began (restarts when a suspended entitlement is active again)."})
    settled_amount = fields.Method("_settled_amount", metadata={
        "description": "What escrow has released towards the seller and the fee so far (gross), never refunds."})
    settled_at = UTCDateTime(allow_none=True)
    settlement = fields.String(allow_none=True)
    period = fields.Method("_period", metadata={
        "description": "a subscription's period this trade pays: {index, start, end} (null for any other trade)"})
    cancelled_at = UTCDateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True, metadata={"description": "why the unpaid trade was cancelled"})
    payments = fields.List(fields.Nested(PaymentSummarySchema), metadata={
        "description": "every payment made for this trade, oldest first (never a Stripe client_secret: "
                       "the buyer reads it with GET /payments/{payment_id})"})

    def _period(self, trade: object) -> dict | None:
        if trade.period_start is None:
            return None
        return PeriodSchema().dump({"index": trade.period_index, "start": trade.period_start, "end": trade.period_end})

    def _settled_amount(self, trade: object) -> int:
        # Usage drawdowns as they happened, plus what a settlement released at the end (a per_call
        # trade's end refunds everything left, so nothing is released then).
        drawn = trade.drawn_amount or 0
        if trade.settled_at is None:
            return drawn
        return drawn + trade.paid_amount - trade.refunded_amount - drawn


class TradeArgsSchema(PaginationArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in TradeStatus]))
    contract_id = fields.String(validate=ID, metadata={"description": "a contract's trades, in period order"})


class TradeCancelSchema(StrictSchema):
    reason = Text(required=True, max_length=300)


MarketVolumeSchema = money_sum_schema(
    "MarketVolumeSchema", "The sum, in this currency, of the money that reached escrow (trades paid), less refunds.")


class CategoryStatsSchema(Schema):
    category = fields.String()
    products = fields.Integer()
    contracts = fields.Integer()


class StatsSchema(Schema):
    products_listed = fields.Integer()
    vendors = fields.Integer()
    contracts_signed = fields.Integer(metadata={"description": "contracts with both signatures, paid or not"})
    volume = fields.List(fields.Nested(MarketVolumeSchema), metadata={
        "description": "per currency, never converted or mixed; only money that reached escrow counts "
                       "(a signed contract nobody paid adds nothing); a currency with none is left out"})
    by_category = fields.List(fields.Nested(CategoryStatsSchema))


ProcurementPageSchema = page_schema(ProcurementSchema, "ProcurementPage")
OfferPageSchema = page_schema(OfferSchema, "OfferPage")
ContractPageSchema = page_schema(ContractSchema, "ContractPage")
TradePageSchema = page_schema(TradeSchema, "TradePage")


class PaymentCreateSchema(StrictSchema):
    provider = fields.String(load_default="manual", validate=validate.OneOf(("manual", "stripe")))


class PaymentSchema(PaymentSummarySchema):
    """A payment as `POST /trades/{id}/payments` and `GET /payments/{id}` show it: the summary with the
    buyer's one-time Stripe `client_secret` while it is pending."""

    client_secret = OneTimeSecret(description=(
        "Stripe only: completes the payment in the buyer's browser; shown to the buyer only, while the "
        "payment is pending (GET /payments/{id} shows it to the buyer again, never to the seller or "
        "operators)."))
    refund_reason = fields.String(allow_none=True, metadata={"description": (
        "Why this payment's money went back to the buyer: `duplicate` (it succeeded when the payment "
        "was no longer pending or its trade no longer awaited payment; refund_pending, then refunded).")})
    refunded_at = UTCDateTime(allow_none=True)

    @post_dump(pass_original=True)
    def _for_viewer(self, data: dict, payment: object, **kw: object) -> dict:
        who = viewer()
        if who is None or payment.buyer_org_id is None or who.org_id != payment.buyer_org_id:
            data["client_secret"] = None
        elif payment.status != PaymentStatus.PENDING:
            data["client_secret"] = None  # it completes nothing any more (cancelled, paid, refunded)
        return data


class DeliverySchema(StrictSchema):
    reference = Text(required=True, max_length=500)
    sha256 = fields.String(required=True, validate=[
        validate.Length(equal=64), validate.Regexp(r"^[0-9a-f]{64}$", error="must be 64 lowercase hex characters")])


class DisputeCreateSchema(StrictSchema):
    reason = Text(required=True, max_length=4000, multiline=True)


class DisputeSchema(Schema):
    id = fields.String()
    trade_id = fields.String()
    reason = fields.String()
    status = fields.String()
    refund_amount = fields.Integer(allow_none=True)
    created_at = UTCDateTime()
    resolved_at = UTCDateTime(allow_none=True)
    comment = fields.String(allow_none=True)


class TradeResolutionSchema(StrictSchema):
    refund_amount = StrictInteger(required=True, minimum=0)
    end_access = Boolean(load_default=False, metadata={
        "description": "Revoke the buyer's entitlement (no more downloads or calls)."})
    comment = Text(max_length=4000, multiline=True, allow_none=True)


class PayoutCreateSchema(StrictSchema):
    org_id = fields.String(required=True, validate=ID)
    currency = fields.String(required=True, validate=validate.OneOf(CURRENCIES))
    amount = StrictInteger(required=True, minimum=1)
    provider = fields.String(load_default="manual", validate=validate.OneOf(("manual", "stripe")))


class PayoutSchema(Schema):
    id = fields.String()
    org_id = fields.String()
    currency = fields.String()
    amount = fields.Integer()
    provider = fields.String()
    status = fields.String()
    provider_ref = fields.String(allow_none=True)
    created_at = UTCDateTime()


class PaymentArgsSchema(PaginationArgsSchema):
    trade_id = fields.String(validate=ID, metadata={"description": "one trade's payments (404 if you cannot see it)"})
    status = fields.String(validate=validate.OneOf([s.value for s in PaymentStatus]))


class DisputeArgsSchema(PaginationArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in DisputeStatus]))


class PayoutArgsSchema(PaginationArgsSchema):
    org_id = fields.String(validate=ID, metadata={
        "description": "operators: one organization's payouts (others only ever see their own)"})
    currency = fields.String(validate=validate.OneOf(CURRENCIES))


PaymentPageSchema = page_schema(PaymentSummarySchema, "PaymentPage")
DisputePageSchema = page_schema(DisputeSchema, "DisputePage")
PayoutPageSchema = page_schema(PayoutSchema, "PayoutPage")


class WebhookAckSchema(Schema):
    received = fields.Boolean()
    applied = fields.Boolean()
    reason = fields.String()
    trade_id = fields.String()


# -- OpenAPI examples ---------------------------------------------------------------------------------
# One deal told end to end: a buyer's procurement, the vendor's quote, the buyer's counter-offer, its
# acceptance, the contract (its digest is the real sha256 of its DIGEST_FIELDS), the buyer's own Ed25519
# signature (real: it verifies with EXAMPLE_ORG_PUBLIC_KEY over the UTF-8 bytes of the digest) and the
# seller's on-site platform signature, the trade, its payment, delivery and settlement. Request examples
# are accepted as they are, once their ids name existing objects; response examples are what the
# schemas dump.
EXAMPLE_BUYER_ORG_ID = "org_0193f2a4c1d87b3e5a90c2d41f6e8b07"
EXAMPLE_SELLER_ORG_ID = "org_0193f1b8e24a6c09d3f75e1b8a2c4d96"
EXAMPLE_BUYER_USER_ID = "usr_0193f2a4c3e1b7d05f9a2c6e8b4d1f70"
EXAMPLE_SELLER_USER_ID = "usr_0193f1b9037c2e8d4a6f1b5c9e0d7a32"
EXAMPLE_PRODUCT_ID = "prd_0193f1c2a9e85d47b0c3e6f19a2d8b54"
EXAMPLE_PROCUREMENT_ID = "prc_0193f2a6d03b7e91c45a8f2d6b1e0c73"
EXAMPLE_QUOTE_ID = "ofr_0193f2b10c6e4a8d2f7b5c3e9a1d0f68"
EXAMPLE_COUNTER_ID = "ofr_0193f2c47a2d9e5b1c8f3a6d0e4b7c19"
EXAMPLE_CONTRACT_ID = "ctr_0193f2d85e1a7c3b9d4f6e2a0c8b5d31"
EXAMPLE_TRADE_ID = "trd_0193f2e93b6d0a4c8e2f5b7d1a9c3e46"
EXAMPLE_PAYMENT_ID = "pay_0193f2f07d4b1e8a3c6f9d2b5e0a7c84"
EXAMPLE_FAIR_ID = "fair_0193e7d05b2c8f14a9e3d6b7c0f2a1e5"
EXAMPLE_KEY_ID = "key_0193f2a7e4c1b8d36a0f5e9c2b7d4a18"
# The buyer's registered Ed25519 public key (raw, base64), as `POST /organizations/{org_id}/keys` took it.
EXAMPLE_ORG_PUBLIC_KEY = "HVc9ENwJYAcMh8rIi8mgg+w1FXPh0RtVsVZEBFb7hy0="
# sha256 hex of the RFC 8785 JSON of the example contract's number, parties, product, version,
# certificate, price and terms (trading.contracts.DIGEST_FIELDS).
EXAMPLE_DIGEST = "d5609147ad67a66c8651d30d97486dfcb71a64d2650e48e5b55ecf31d543ccc6"
# Ed25519 over the 64 ASCII bytes of EXAMPLE_DIGEST with the private half of EXAMPLE_ORG_PUBLIC_KEY.
EXAMPLE_ORG_SIGNATURE = "nYZU/rnym9pmIzkC057/VIoEwrUnLks6bICb3UkCvSmUXnSypv/NIQadPnv9qR7nKKH16todcP4i3t/NdfwMAQ=="

EXAMPLE_TERMS = {"scope": "commercial", "duration_days": 365, "delivery_mode": "api"}
EXAMPLE_PRICE = {"amount": 1_250_000, "currency": "CNY"}

PROCUREMENT_CREATE_EXAMPLE = {
    "title": "Hourly cross-border freight volumes, Shenzhen-Hong Kong",
    "description": "Hourly truck and container counts at the Shenzhen Bay and Huanggang ports since 2024, "
                   "by direction and cargo class, for route planning.",
    "category": "transport",
    "keywords": ["freight", "ports", "cross-border"],
    "budget": {"max_amount": 1_500_000, "currency": "CNY"},
    "delivery_mode": "api",
    "deadline": "2027-06-30T16:00:00Z",
    "visibility": "public",
    "invited_org_ids": [],
}
PROCUREMENT_EXAMPLE = {
    "id": EXAMPLE_PROCUREMENT_ID,
    "buyer_org_id": EXAMPLE_BUYER_ORG_ID,
    **{k: v for k, v in PROCUREMENT_CREATE_EXAMPLE.items() if k != "invited_org_ids"},
    "invited_org_ids": [],
    "status": "open",
    "created_at": "2026-11-27T02:15:00Z",
}
PROCUREMENT_CANCELLED_EXAMPLE = {**PROCUREMENT_EXAMPLE, "status": "cancelled"}
CANCEL_EXAMPLE = {"reason": "The budget was withdrawn for this quarter."}
MATCH_LIST_EXAMPLE = {"items": [{
    "product_id": EXAMPLE_PRODUCT_ID,
    "score": 0.87,
    "reasons": ["category", "keywords: freight, ports", "within budget", "delivery: api",
                "fresh data (daily)", "vendor track record: 4 contract(s)"],
    "title": "粤港澳大湾区港口集装箱吞吐量日报 GBA port container throughput, daily",
    "price": {"model": "one_time", "amount": 1_250_000, "currency": "CNY", "period": None},
    "delivery_mode": "api",
    "certificate_number": "DFX-2026-000057",
    "vendor_org_id": EXAMPLE_SELLER_ORG_ID,
    "vendor": "深圳港口物流数据有限公司 Shenzhen Port Logistics Data Co., Ltd.",
}]}
PROCUREMENT_MATCH_LIST_EXAMPLE = {"items": [{
    "procurement_id": EXAMPLE_PROCUREMENT_ID,
    "title": PROCUREMENT_CREATE_EXAMPLE["title"],
    "buyer_org_id": EXAMPLE_BUYER_ORG_ID,
    "deadline": PROCUREMENT_CREATE_EXAMPLE["deadline"],
    "score": 0.87,
    "reasons": ["category", "keywords: freight, ports", "within budget", "delivery: api"],
}]}

OFFER_BID_EXAMPLE = {
    "product_id": EXAMPLE_PRODUCT_ID,
    "procurement_id": EXAMPLE_PROCUREMENT_ID,
    "price": EXAMPLE_PRICE,
    "terms": EXAMPLE_TERMS,
    "expires_at": "2027-01-31T16:00:00Z",
    "to_org_id": None,
    "message": "We would license the hourly feed for a year, commercial use.",
}
OFFER_QUOTE_EXAMPLE = {
    **OFFER_BID_EXAMPLE,
    "price": {"amount": 1_400_000, "currency": "CNY"},
    "to_org_id": EXAMPLE_BUYER_ORG_ID,
    "message": "Our hourly port feed answers your procurement; one year, commercial use.",
}
OFFER_CREATE_EXAMPLES = {
    "bid": {"summary": "A buyer bids on a listed product", "value": OFFER_BID_EXAMPLE},
    "quote": {"summary": "A vendor quotes its own product to a buyer", "value": OFFER_QUOTE_EXAMPLE},
}
COUNTER_EXAMPLE = {
    "price": EXAMPLE_PRICE,
    "terms": EXAMPLE_TERMS,
    "expires_at": "2027-01-31T16:00:00Z",
    "message": "We can sign today at 12,500.00 CNY.",
}
COUNTER_EXAMPLES = {
    "price_and_terms": {"summary": "A new price and new terms", "value": COUNTER_EXAMPLE},
    "price_only": {"summary": "A new price; the countered offer's terms are kept",
                   "value": {"price": EXAMPLE_PRICE, "message": COUNTER_EXAMPLE["message"]}},
}
OFFER_QUOTE_RESPONSE_EXAMPLE = {
    "id": EXAMPLE_QUOTE_ID,
    "thread_id": EXAMPLE_QUOTE_ID,
    "parent_id": None,
    "product_id": EXAMPLE_PRODUCT_ID,
    "product_version": 3,
    "procurement_id": EXAMPLE_PROCUREMENT_ID,
    "from_org_id": EXAMPLE_SELLER_ORG_ID,
    "to_org_id": EXAMPLE_BUYER_ORG_ID,
    "buyer_org_id": EXAMPLE_BUYER_ORG_ID,
    "seller_org_id": EXAMPLE_SELLER_ORG_ID,
    "price": OFFER_QUOTE_EXAMPLE["price"],
    "terms": EXAMPLE_TERMS,
    "message": OFFER_QUOTE_EXAMPLE["message"],
    "expires_at": "2027-01-31T16:00:00Z",
    "status": "pending",
    "created_at": "2026-11-27T09:30:00Z",
    "decided_at": None,
}
OFFER_COUNTERED_EXAMPLE = {**OFFER_QUOTE_RESPONSE_EXAMPLE, "status": "countered",
                           "decided_at": "2026-11-27T13:05:12Z"}
OFFER_COUNTER_RESPONSE_EXAMPLE = {
    **OFFER_QUOTE_RESPONSE_EXAMPLE,
    "id": EXAMPLE_COUNTER_ID,
    "parent_id": EXAMPLE_QUOTE_ID,
    "from_org_id": EXAMPLE_BUYER_ORG_ID,
    "to_org_id": EXAMPLE_SELLER_ORG_ID,
    "price": EXAMPLE_PRICE,
    "message": COUNTER_EXAMPLE["message"],
    "created_at": "2026-11-27T13:05:12Z",
}
OFFER_REJECTED_EXAMPLE = {**OFFER_COUNTER_RESPONSE_EXAMPLE, "status": "rejected",
                          "message": COUNTER_EXAMPLE["message"] + "\n[rejected] " + CANCEL_EXAMPLE["reason"],
                          "decided_at": "2026-11-28T03:20:44Z"}
OFFER_WITHDRAWN_EXAMPLE = {**OFFER_QUOTE_RESPONSE_EXAMPLE, "status": "withdrawn",
                           "decided_at": "2026-11-27T11:48:03Z"}
OFFER_DETAIL_EXAMPLE = {
    **OFFER_COUNTER_RESPONSE_EXAMPLE,
    "status": "accepted",
    "decided_at": "2026-11-28T03:20:44Z",
    "thread": [OFFER_COUNTERED_EXAMPLE, {**OFFER_COUNTER_RESPONSE_EXAMPLE, "status": "accepted",
                                         "decided_at": "2026-11-28T03:20:44Z"}],
    "contract_id": EXAMPLE_CONTRACT_ID,
}

SIGNATURE_ED25519_EXAMPLE = {
    "on_site": False,
    "fair_id": None,
    "stall_code": None,
    "key_id": EXAMPLE_KEY_ID,
    "signature": EXAMPLE_ORG_SIGNATURE,
}
SIGNATURE_ON_SITE_EXAMPLE = {"on_site": True, "fair_id": EXAMPLE_FAIR_ID, "stall_code": "B07",
                             "key_id": None, "signature": None}
SIGNATURE_CREATE_EXAMPLES = {
    "ed25519": {"summary": "Remote, with the organization's own Ed25519 key", "value": SIGNATURE_ED25519_EXAMPLE},
    "on_site": {"summary": "On site at the seller's stall, attested by the exchange",
                "value": SIGNATURE_ON_SITE_EXAMPLE},
}
CONTRACT_PENDING_EXAMPLE = {
    "id": EXAMPLE_CONTRACT_ID,
    "number": "DFC-2026-000184",
    "offer_id": EXAMPLE_COUNTER_ID,
    "procurement_id": EXAMPLE_PROCUREMENT_ID,
    "buyer_org_id": EXAMPLE_BUYER_ORG_ID,
    "seller_org_id": EXAMPLE_SELLER_ORG_ID,
    "product_id": EXAMPLE_PRODUCT_ID,
    "product_version": 3,
    "certificate_number": "DFX-2026-000057",
    "price": EXAMPLE_PRICE,
    "terms": EXAMPLE_TERMS,
    "digest": EXAMPLE_DIGEST,
    "status": "pending_signatures",
    "on_site": False,
    "fair_id": None,
    "created_at": "2026-11-28T03:20:44Z",
    "signed_at": None,
    "signatures": [],
    "trade_id": None,
    "subscription": None,
}
CONTRACT_SIGNED_EXAMPLE = {
    **CONTRACT_PENDING_EXAMPLE,
    "status": "signed",
    "on_site": True,
    "fair_id": EXAMPLE_FAIR_ID,
    "signed_at": "2026-11-28T06:41:09Z",
    "signatures": [
        {"org_id": EXAMPLE_BUYER_ORG_ID, "user_id": EXAMPLE_BUYER_USER_ID, "signed_at": "2026-11-28T05:02:31Z",
         "on_site": False, "fair_id": None, "stall_code": None, "method": "ed25519", "key_id": EXAMPLE_KEY_ID,
         "signature": EXAMPLE_ORG_SIGNATURE},
        {"org_id": EXAMPLE_SELLER_ORG_ID, "user_id": EXAMPLE_SELLER_USER_ID, "signed_at": "2026-11-28T06:41:09Z",
         "on_site": True, "fair_id": EXAMPLE_FAIR_ID, "stall_code": "B07", "method": "platform",
         "key_id": "dfx-2026-7c1e9a42",
         "signature": "cj0eX0HQdqXisWOSdK/RkVhQJMVfj/e6ggGbbCgr4LBrPGUvunjva6xpRbUIzE+3L4za5HY5yRZXtyM7Y2R8DQ=="},
    ],
    "trade_id": EXAMPLE_TRADE_ID,
}
CONTRACT_CANCELLED_EXAMPLE = {**CONTRACT_PENDING_EXAMPLE, "status": "cancelled"}
EXAMPLE_SUBSCRIPTION_TERMS = {"scope": "commercial", "delivery_mode": "api", "periods": 12, "auto_renew": True}
CONTRACT_SUBSCRIPTION_CANCELLED_EXAMPLE = {
    **CONTRACT_SIGNED_EXAMPLE,
    "terms": EXAMPLE_SUBSCRIPTION_TERMS,
    "subscription": {
        "status": "cancelled", "current_period": 2, "renews_at": None, "auto_renew": True,
        "reason": "cancelled by the buyer", "periods": 12, "unit": "month", "ends_at": "2027-01-28T06:41:09Z",
        "history": [
            {"index": 1, "start": "2026-11-28T06:41:09Z", "end": "2026-12-28T06:41:09Z",
             "trade_id": EXAMPLE_TRADE_ID, "status": "settled"},
            {"index": 2, "start": "2026-12-28T06:41:09Z", "end": "2027-01-28T06:41:09Z",
             "trade_id": "trd_0193f6c1d2e3f4a5b6c7d8e9f0a1b2c3", "status": "delivered"},
        ],
    },
}

TRADE_AWAITING_PAYMENT_EXAMPLE = {
    "id": EXAMPLE_TRADE_ID,
    "contract_id": EXAMPLE_CONTRACT_ID,
    "buyer_org_id": EXAMPLE_BUYER_ORG_ID,
    "seller_org_id": EXAMPLE_SELLER_ORG_ID,
    "product_id": EXAMPLE_PRODUCT_ID,
    "amount": 1_250_000,
    "fee": 25_000,
    "refunded_amount": 0,
    "currency": "CNY",
    "status": "awaiting_payment",
    "on_site": True,
    "fair_id": EXAMPLE_FAIR_ID,
    "created_at": "2026-11-28T06:41:09Z",
    "updated_at": "2026-11-28T06:41:09Z",
    "paid_amount": 0,
    "delivery_reference": None,
    "delivery_sha256": None,
    "delivered_at": None,
    "settled_at": None,
    "settlement": None,
    "period": None,
    "cancelled_at": None,
    "cancel_reason": None,
    "payments": [],
}
TRADE_CANCELLED_EXAMPLE = {**TRADE_AWAITING_PAYMENT_EXAMPLE, "status": "cancelled",
                           "period": {"index": 2, "start": "2026-12-28T06:41:09Z", "end": "2027-01-28T06:41:09Z"},
                           "cancelled_at": "2026-12-31T06:42:00Z", "updated_at": "2026-12-31T06:42:00Z",
                           "cancel_reason": "not paid within 3 days of the period's start"}
# The trade's bank transfer, as its `payments` and the payment queue show it (never a client_secret).
TRADE_PAYMENT_EXAMPLE = {
    "id": EXAMPLE_PAYMENT_ID, "trade_id": EXAMPLE_TRADE_ID, "provider": "manual", "status": "succeeded",
    "amount": 1_250_000, "currency": "CNY", "provider_ref": "manpay_4b9e2c7d1a6f3e8b0c5d2a9f",
    "created_at": "2026-11-28T07:10:00Z", "confirmed_at": "2026-11-28T09:45:27Z", "refund_reason": None,
    "refunded_at": None,
}
TRADE_ESCROWED_EXAMPLE = {**TRADE_AWAITING_PAYMENT_EXAMPLE, "status": "escrowed", "paid_amount": 1_250_000,
                          "updated_at": "2026-11-28T09:45:27Z", "payments": [TRADE_PAYMENT_EXAMPLE]}
DELIVERY_EXAMPLE = {
    "reference": "https://api.vendor.example/feeds/port-freight/v3 (API key sent to the buyer's admin)",
    "sha256": "9f2c4e6a8b0d1f3e5c7a9b1d3f5e7c9a0b2d4f6e8a0c2e4b6d8f0a2c4e6b8d0f",
}
TRADE_DELIVERED_EXAMPLE = {**TRADE_ESCROWED_EXAMPLE, "status": "delivered",
                           "delivery_reference": DELIVERY_EXAMPLE["reference"],
                           "delivery_sha256": DELIVERY_EXAMPLE["sha256"],
                           "delivered_at": "2026-11-29T02:10:00Z", "updated_at": "2026-11-29T02:10:00Z"}
TRADE_SETTLED_EXAMPLE = {**TRADE_DELIVERED_EXAMPLE, "status": "settled", "settled_at": "2026-11-30T08:00:00Z",
                         "settlement": "accepted", "updated_at": "2026-11-30T08:00:00Z"}
RESOLUTION_EXAMPLE = {"refund_amount": 250_000, "end_access": False,
                      "comment": "Two of the twelve months were missing at delivery: 2,500.00 CNY refunded."}
TRADE_RESOLVED_EXAMPLE = {**TRADE_DELIVERED_EXAMPLE, "status": "settled", "refunded_amount": 250_000,
                          "fee": 20_000, "settled_at": "2026-12-01T10:30:00Z", "settlement": "dispute_resolved",
                          "updated_at": "2026-12-01T10:30:00Z"}
DISPUTE_CREATE_EXAMPLE = {"reason": "The feed has no data for January and February 2025, which the terms include."}
DISPUTE_EXAMPLE = {
    "id": "dsp_0193f3a25c8e0b6d4a1f7c3e9b2d5a07",
    "trade_id": EXAMPLE_TRADE_ID,
    "reason": DISPUTE_CREATE_EXAMPLE["reason"],
    "status": "open",
    "refund_amount": None,
    "created_at": "2026-11-29T07:12:40Z",
    "resolved_at": None,
    "comment": None,
}

PAYMENT_CREATE_EXAMPLE = {"provider": "stripe"}
PAYMENT_CREATE_EXAMPLES = {
    "stripe": {"summary": "A card payment through Stripe", "value": PAYMENT_CREATE_EXAMPLE},
    "manual": {"summary": "A bank transfer an operator confirms", "value": {"provider": "manual"}},
}
PAYMENT_STRIPE_EXAMPLE = {
    "id": EXAMPLE_PAYMENT_ID,
    "trade_id": EXAMPLE_TRADE_ID,
    "provider": "stripe",
    "status": "pending",
    "amount": 1_250_000,
    "currency": "CNY",
    "provider_ref": "pi_3QbT9rL2mN4oP6qR1sT8uV0w",
    "client_secret": "pi_3QbT9rL2mN4oP6qR1sT8uV0w_secret_Xk7Qm2Lp9Rz4Tn6Vb1Wc3Yd5",
    "created_at": "2026-11-28T07:10:00Z",
    "confirmed_at": None,
    "refund_reason": None,
    "refunded_at": None,
}
PAYMENT_CANCELED_EXAMPLE = {**PAYMENT_STRIPE_EXAMPLE, "status": "canceled", "client_secret": None}
PAYMENT_CONFIRMED_EXAMPLE = {**PAYMENT_STRIPE_EXAMPLE, "provider": "manual", "status": "succeeded",
                             "provider_ref": "manpay_4b9e2c7d1a6f3e8b0c5d2a9f", "client_secret": None,
                             "confirmed_at": "2026-11-28T09:45:27Z"}
WEBHOOK_ACK_EXAMPLES = {
    "applied": {"summary": "The payment succeeded: its trade is escrowed",
                "value": {"received": True, "applied": True, "trade_id": EXAMPLE_TRADE_ID}},
    "ignored": {"summary": "Acknowledged, nothing changed",
                "value": {"received": True, "applied": False, "reason": "ignored event type charge.refunded"}},
}
STRIPE_EVENT_EXAMPLE = {
    "id": "evt_3QbTAaL2mN4oP6qR0hJk5sXy",
    "object": "event",
    "type": "payment_intent.succeeded",
    "created": 1795859127,
    "data": {"object": {"id": PAYMENT_STRIPE_EXAMPLE["provider_ref"], "object": "payment_intent",
                        "status": "succeeded", "amount": 1_250_000, "amount_received": 1_250_000,
                        "currency": "cny"}},
}
# The webhook reads its raw body (no marshmallow schema): documented by hand.
STRIPE_WEBHOOK_PARAMETERS = [{
    "in": "header", "name": "Stripe-Signature", "required": True, "schema": {"type": "string"},
    "description": "Stripe's signature of the raw body: `t=<unix time>,v1=<hex HMAC-SHA256>`.",
    "example": "t=1795859127,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
}]
STRIPE_WEBHOOK_REQUEST_BODY = {
    "required": True,
    "description": "A Stripe event object, exactly as Stripe sent and signed it (at most 1 MiB; the "
                   "`Stripe-Signature` over the raw bytes is what is checked, not a schema).",
    # No type on purpose: the exchange never parses an unsigned body, so it declares no shape or bounds
    # of its own (Stripe owns the event format); the signature and the body limit are the checks.
    "content": {"application/json": {"schema": {"description": "A Stripe event (Stripe's format)."},
                                     "example": STRIPE_EVENT_EXAMPLE}},
}

PAYOUT_CREATE_EXAMPLE = {"org_id": EXAMPLE_SELLER_ORG_ID, "currency": "CNY", "amount": 980_000,
                         "provider": "manual"}
PAYOUT_EXAMPLE = {
    "id": "pyo_0193f3b41e7a5c2d8b0f6e4a3c9d1b62",
    **PAYOUT_CREATE_EXAMPLE,
    "status": "paid",
    "provider_ref": "mantr_7e1c4a9d2b6f0e3c8a5d1b4f",
    "created_at": "2026-11-30T09:00:00Z",
}

PAYMENT_QUEUE_EXAMPLE = {**TRADE_PAYMENT_EXAMPLE, "status": "pending", "confirmed_at": None}

STATS_EXAMPLE = {
    "products_listed": 128,
    "vendors": 41,
    "contracts_signed": 57,
    "volume": [{"currency": "CNY", "amount": 48_610_000}, {"currency": "HKD", "amount": 9_300_000},
               {"currency": "MOP", "amount": 1_200_000}],
    "by_category": [{"category": "transport", "products": 23, "contracts": 14},
                    {"category": "finance", "products": 31, "contracts": 19}],
}


def page_example(*items: dict, total: int | None = None) -> dict:
    """A page of the list schema around `items` (first page, 20 per page)."""
    return {"items": list(items), "total": len(items) if total is None else total, "page": 1, "per_page": 20}


# -- cross-border dossiers (API.md Compliance) ------------------------------------------------------
class DossierDocumentSchema(Schema):
    kind = fields.String(metadata={"enum": ["particulars", "undertaking"]})
    title = fields.String()
    url = fields.String(metadata={"description": "GET it with a token of a party or an operator (text/markdown)"})


class DossierFilingStateSchema(Schema):
    required = fields.Boolean()
    due_at = UTCDateTime(allow_none=True, metadata={
        "description": "23:59:59 China Standard Time of the 10th mainland working day after signature (contract "
                       "paths); null for a security assessment (filed and approved before delivery) or no filing"})
    reference = fields.String(allow_none=True)
    filed_at = UTCDateTime(allow_none=True)
    approval_required = fields.Boolean(metadata={"description": "a security assessment: the regulator's approval"})
    approved_at = UTCDateTime(allow_none=True)
    provisional_due_date = fields.Boolean(metadata={
        "description": "true when the working-day calendar does not know a year counted: weekends only"})


class DossierSchema(Schema):
    id = fields.String()
    contract_id = fields.String()
    exporter_org_id = fields.String()
    importer_org_id = fields.String()
    path = fields.String(metadata={"enum": ["no_personal_info", "exempt_small_volume", "gba_standard_contract",
                                            "standard_contract", "security_assessment"]})
    reasons = fields.List(fields.String(), metadata={"description": "each with the threshold and its legal source"})
    rule_ids = fields.List(fields.String(), metadata={"description": "the rule-table rows that decided the path"})
    rule_version = fields.String(metadata={"description": "the rule table's version the path was decided on"})
    subjects = fields.Integer(metadata={"description": "individuals covered by this deal's data"})
    cumulative_subjects = fields.Integer(metadata={
        "description": "the exporter's individuals sent abroad since 1 January (China Standard Time), this deal "
                       "included"})
    cumulative_sensitive_subjects = fields.Integer()
    documents = fields.List(fields.Nested(DossierDocumentSchema))
    filing = fields.Nested(DossierFilingStateSchema)
    provisional_due_date = fields.Boolean()
    status = fields.String(metadata={"enum": ["not_required", "awaiting_filing", "filed", "overdue"]})
    overdue_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()


class DossierFilingSchema(StrictSchema):
    reference = Text(required=True, max_length=100, metadata={
        "description": "the filing's reference number given by the cyberspace administration"})
    approved = Boolean(load_default=False, metadata={
        "description": "security assessment only, operators only: records the regulator's approval"})


DOSSIER_EXAMPLE = {
    "id": "dos_0193a4c2e1f1a2b3c4d5e6f708192a3b",
    "contract_id": "ctr_0193a4c2e1f1a2b3c4d5e6f708192a3c",
    "exporter_org_id": "org_0193a4c2e1f1a2b3c4d5e6f708192a3d",
    "importer_org_id": "org_0193a4c2e1f1a2b3c4d5e6f708192a3e",
    "path": "gba_standard_contract",
    "reasons": ["personal information of 180,000 individuals this year (100,000 to 1,000,000) needs the standard "
                "contract — Provisions on Promoting and Regulating Cross-border Data Flows (2024), Art. 8",
                "between shenzhen (a GBA city) and HK the GBA standard contract takes its place — Implementation "
                "Guidelines on the GBA (Mainland, Hong Kong) Standard Contract (2023)"],
    "rule_ids": ["pi-100k-to-1m", "gba-hk"],
    "rule_version": "2024-03-22/gba-2024-09-10/r1",
    "subjects": 180000,
    "cumulative_subjects": 180000,
    "cumulative_sensitive_subjects": 0,
    "documents": [
        {"kind": "particulars", "title": "粤港澳大湾区标准合同填写事项 Particulars of the GBA standard contract",
         "url": "/api/v1/contracts/ctr_0193a4c2e1f1a2b3c4d5e6f708192a3c/dossier/documents/particulars"},
        {"kind": "undertaking", "title": "承诺书 Undertaking",
         "url": "/api/v1/contracts/ctr_0193a4c2e1f1a2b3c4d5e6f708192a3c/dossier/documents/undertaking"}],
    "filing": {"required": True, "due_at": "2026-12-16T15:59:59Z", "reference": None, "filed_at": None,
               "approval_required": False, "approved_at": None, "provisional_due_date": False},
    "provisional_due_date": False,
    "status": "awaiting_filing",
    "overdue_at": None,
    "created_at": "2026-12-02T08:00:00Z",
}
DOSSIER_FILING_EXAMPLE = {"reference": "粤网信备-2026-001234"}
