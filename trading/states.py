"""Procurement, offer, contract, trade, payment, dispute and payout state machines."""

from __future__ import annotations

from enum import StrEnum


class ProcurementStatus(StrEnum):
    OPEN = "open"
    CONTRACTED = "contracted"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


P = ProcurementStatus
PROCUREMENT_TRANSITIONS: dict[ProcurementStatus, frozenset[ProcurementStatus]] = {
    P.OPEN: frozenset({P.CONTRACTED, P.CANCELLED, P.EXPIRED}),
    P.CONTRACTED: frozenset(),
    P.CANCELLED: frozenset(),
    P.EXPIRED: frozenset(),
}


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    COUNTERED = "countered"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


OS = OfferStatus
OFFER_TRANSITIONS: dict[OfferStatus, frozenset[OfferStatus]] = {
    OS.PENDING: frozenset({OS.ACCEPTED, OS.REJECTED, OS.COUNTERED, OS.WITHDRAWN, OS.EXPIRED}),
    OS.ACCEPTED: frozenset(),
    OS.REJECTED: frozenset(),
    OS.COUNTERED: frozenset(),
    OS.WITHDRAWN: frozenset(),
    OS.EXPIRED: frozenset(),
}


class ContractStatus(StrEnum):
    PENDING_SIGNATURES = "pending_signatures"
    SIGNED = "signed"
    CANCELLED = "cancelled"


K = ContractStatus
CONTRACT_TRANSITIONS: dict[ContractStatus, frozenset[ContractStatus]] = {
    K.PENDING_SIGNATURES: frozenset({K.SIGNED, K.CANCELLED}),
    K.SIGNED: frozenset(),
    K.CANCELLED: frozenset(),
}


class TradeStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    ESCROWED = "escrowed"
    DELIVERED = "delivered"
    SETTLED = "settled"
    DISPUTED = "disputed"
    REFUNDED = "refunded"
    # No money moved: a subscription period that lapsed or was cancelled unpaid, a trade unpaid
    # DATAFAIR_PAYMENT_DAYS after its contract was signed, or an operator's cancellation.
    CANCELLED = "cancelled"


T = TradeStatus
TRADE_TRANSITIONS: dict[TradeStatus, frozenset[TradeStatus]] = {
    T.AWAITING_PAYMENT: frozenset({T.ESCROWED, T.CANCELLED}),
    # A per_call trade settles (or, no call ever drawn, is refunded) when its entitlement ends,
    # delivered or not; a resolution that keeps its access returns it to delivered, metering on.
    T.ESCROWED: frozenset({T.DELIVERED, T.DISPUTED, T.SETTLED, T.REFUNDED}),
    T.DELIVERED: frozenset({T.SETTLED, T.DISPUTED}),
    T.DISPUTED: frozenset({T.SETTLED, T.REFUNDED, T.DELIVERED}),
    T.SETTLED: frozenset(),
    T.REFUNDED: frozenset(),
    T.CANCELLED: frozenset(),
}


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    LAPSED = "lapsed"
    ENDED = "ended"


SS = SubscriptionStatus
SUBSCRIPTION_TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    # Renewal goes on while active; the buyer cancels; a failed re-check or an unpaid period lapses
    # it; the last period ends it, or a revocation of its access (from any status but ended).
    SS.ACTIVE: frozenset({SS.CANCELLED, SS.LAPSED, SS.ENDED}),
    SS.CANCELLED: frozenset({SS.ENDED}),
    SS.LAPSED: frozenset({SS.ENDED}),
    SS.ENDED: frozenset(),
}


class PaymentStatus(StrEnum):
    # The order is the CHECK constraint's (built from this enum).
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"


PS = PaymentStatus
PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    # The money arrives (an operator confirms a transfer, Stripe's webhook or the reconciliation job),
    # or the attempt ends without it.
    PS.PENDING: frozenset({PS.SUCCEEDED, PS.FAILED, PS.CANCELED}),
    # A success that is a duplicate (the payment was no longer pending, or its trade no longer awaited
    # payment) is refunded: succeeded -> refund_pending in the transaction that learns of it, refunded
    # once the provider's refund is made. A buyer may cancel an intent they had already confirmed in
    # their browser: Stripe's success then arrives for a canceled payment, which succeeded after all.
    PS.SUCCEEDED: frozenset({PS.REFUND_PENDING}),
    PS.REFUND_PENDING: frozenset({PS.REFUNDED}),
    PS.REFUNDED: frozenset(),
    PS.FAILED: frozenset(),
    PS.CANCELED: frozenset({PS.SUCCEEDED}),
}


class DisputeStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


D = DisputeStatus
DISPUTE_TRANSITIONS: dict[DisputeStatus, frozenset[DisputeStatus]] = {
    # An operator's resolution (refund part or all, settle the rest) closes the dispute.
    D.OPEN: frozenset({D.RESOLVED}),
    D.RESOLVED: frozenset(),
}


class PayoutStatus(StrEnum):
    # The order is the CHECK constraint's (built from this enum).
    PAID = "paid"
    PENDING = "pending"
    FAILED = "failed"


PO = PayoutStatus
PAYOUT_TRANSITIONS: dict[PayoutStatus, frozenset[PayoutStatus]] = {
    # A manual payout is paid in the transaction that creates it; a Stripe one once its Transfer is made.
    PO.PENDING: frozenset({PO.PAID, PO.FAILED}),
    PO.PAID: frozenset(),
    PO.FAILED: frozenset(),
}


class SignatureMethod(StrEnum):
    PLATFORM = "platform"
    ED25519 = "ed25519"


class DossierStatus(StrEnum):
    """A cross-border dossier's filing (API.md Compliance). `overdue` is awaiting filing past its due
    date: computed on read, persisted by the sweep; a late filing still makes it `filed`."""

    NOT_REQUIRED = "not_required"
    AWAITING_FILING = "awaiting_filing"
    FILED = "filed"
    OVERDUE = "overdue"


DS = DossierStatus
DOSSIER_TRANSITIONS: dict[DossierStatus, frozenset[DossierStatus]] = {
    DS.NOT_REQUIRED: frozenset(),
    DS.AWAITING_FILING: frozenset({DS.FILED, DS.OVERDUE}),
    DS.OVERDUE: frozenset({DS.FILED}),
    DS.FILED: frozenset(),
}
