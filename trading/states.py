"""Procurement, offer, contract, trade, payment, dispute and payout state machines."""

from __future__ import annotations

from enum import StrEnum

from exchange.states import TransitionTable


class ProcurementStatus(StrEnum):
    OPEN = "open"
    CONTRACTED = "contracted"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


P = ProcurementStatus
PROCUREMENT_TRANSITIONS: TransitionTable[ProcurementStatus] = TransitionTable({
    P.OPEN: frozenset({P.CONTRACTED, P.CANCELLED, P.EXPIRED}),
    P.CONTRACTED: frozenset(),
    P.CANCELLED: frozenset(),
    P.EXPIRED: frozenset(),
}, next_steps={
    P.OPEN: "the procurement is open: vendors may offer, and its buyer may accept an offer or cancel it",
    P.CONTRACTED: "the procurement has its contract and cannot change any more",
    P.CANCELLED: "the procurement was cancelled and cannot change any more; publish a new procurement",
    P.EXPIRED: "the procurement's deadline passed; publish a new procurement",
})


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    COUNTERED = "countered"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


OS = OfferStatus
OFFER_TRANSITIONS: TransitionTable[OfferStatus] = TransitionTable({
    OS.PENDING: frozenset({OS.ACCEPTED, OS.REJECTED, OS.COUNTERED, OS.WITHDRAWN, OS.EXPIRED}),
    OS.ACCEPTED: frozenset(),
    OS.REJECTED: frozenset(),
    OS.COUNTERED: frozenset(),
    OS.WITHDRAWN: frozenset(),
    OS.EXPIRED: frozenset(),
}, next_steps={
    OS.PENDING: "the offer waits for the other party to accept, reject or counter it",
    OS.ACCEPTED: "the offer was accepted and cannot change any more; go on with its contract",
    OS.REJECTED: "the offer was rejected and cannot change any more; make a new offer",
    OS.COUNTERED: "the offer was countered; answer the counter-offer instead",
    OS.WITHDRAWN: "the offer was withdrawn and cannot change any more; make a new offer",
    OS.EXPIRED: "the offer has expired; make a new offer",
})


class ContractStatus(StrEnum):
    PENDING_SIGNATURES = "pending_signatures"
    SIGNED = "signed"
    CANCELLED = "cancelled"


K = ContractStatus
CONTRACT_TRANSITIONS: TransitionTable[ContractStatus] = TransitionTable({
    K.PENDING_SIGNATURES: frozenset({K.SIGNED, K.CANCELLED}),
    K.SIGNED: frozenset(),
    K.CANCELLED: frozenset(),
}, next_steps={
    K.PENDING_SIGNATURES: "both parties must sign the contract first",
    K.SIGNED: "the contract is signed and cannot change any more; act on its trade",
    K.CANCELLED: "the contract was cancelled and cannot change any more; agree on a new offer",
})


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
TRADE_TRANSITIONS: TransitionTable[TradeStatus] = TransitionTable({
    T.AWAITING_PAYMENT: frozenset({T.ESCROWED, T.CANCELLED}),
    # A per_call trade settles (or, no call ever drawn, is refunded) when its entitlement ends,
    # delivered or not; a resolution that keeps its access returns it to delivered, metering on.
    T.ESCROWED: frozenset({T.DELIVERED, T.DISPUTED, T.SETTLED, T.REFUNDED}),
    T.DELIVERED: frozenset({T.SETTLED, T.DISPUTED}),
    T.DISPUTED: frozenset({T.SETTLED, T.REFUNDED, T.DELIVERED}),
    T.SETTLED: frozenset(),
    T.REFUNDED: frozenset(),
    T.CANCELLED: frozenset(),
}, next_steps={
    T.AWAITING_PAYMENT: (
        "the buyer must pay the trade and, for a manual bank transfer, an operator must confirm the payment first"
    ),
    T.ESCROWED: "the seller must deliver the data; then the buyer accepts it or opens a dispute",
    T.DELIVERED: (
        "the buyer must accept the delivery (or open a dispute); otherwise it settles when the acceptance period ends"
    ),
    T.DISPUTED: "an operator must resolve the dispute first",
    T.SETTLED: "the trade is finished; nothing more can change it",
    T.REFUNDED: "the trade was refunded; nothing more can change it",
    T.CANCELLED: "the trade was cancelled; nothing more can change it",
})


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"
    LAPSED = "lapsed"
    ENDED = "ended"


SS = SubscriptionStatus
SUBSCRIPTION_TRANSITIONS: TransitionTable[SubscriptionStatus] = TransitionTable({
    # Renewal goes on while active; the buyer cancels; a failed re-check or an unpaid period lapses
    # it; the last period ends it, or a revocation of its access (from any status but ended).
    SS.ACTIVE: frozenset({SS.CANCELLED, SS.LAPSED, SS.ENDED}),
    SS.CANCELLED: frozenset({SS.ENDED}),
    SS.LAPSED: frozenset({SS.ENDED}),
    SS.ENDED: frozenset(),
}, next_steps={
    SS.ACTIVE: "the subscription is active; only its buyer may cancel it",
    SS.CANCELLED: "the subscription is cancelled and ends with its last paid period; subscribe again for more",
    SS.LAPSED: "the subscription lapsed; subscribe again for more",
    SS.ENDED: "the subscription has ended; subscribe again for more",
})


class PaymentStatus(StrEnum):
    # The order is the CHECK constraint's (built from this enum).
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"


PS = PaymentStatus
PAYMENT_TRANSITIONS: TransitionTable[PaymentStatus] = TransitionTable({
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
}, next_steps={
    PS.PENDING: "the buyer must complete the payment, or an operator must confirm the bank transfer",
    PS.SUCCEEDED: "the payment succeeded and cannot change any more",
    PS.FAILED: "the payment failed; start a new payment of the trade",
    PS.CANCELED: "the payment was canceled; start a new payment of the trade",
    PS.REFUND_PENDING: "wait for the provider to make the refund",
    PS.REFUNDED: "the payment was refunded and cannot change any more",
})


class DisputeStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


D = DisputeStatus
DISPUTE_TRANSITIONS: TransitionTable[DisputeStatus] = TransitionTable({
    # An operator's resolution (refund part or all, settle the rest) closes the dispute.
    D.OPEN: frozenset({D.RESOLVED}),
    D.RESOLVED: frozenset(),
}, next_steps={
    D.OPEN: "an operator must resolve the dispute",
    D.RESOLVED: "the dispute is resolved and cannot change any more",
})


class PayoutStatus(StrEnum):
    # The order is the CHECK constraint's (built from this enum).
    PAID = "paid"
    PENDING = "pending"
    FAILED = "failed"


PO = PayoutStatus
PAYOUT_TRANSITIONS: TransitionTable[PayoutStatus] = TransitionTable({
    # A manual payout is paid in the transaction that creates it; a Stripe one once its Transfer is made.
    PO.PENDING: frozenset({PO.PAID, PO.FAILED}),
    PO.PAID: frozenset(),
    PO.FAILED: frozenset(),
}, next_steps={
    PO.PENDING: "wait for the transfer to the seller to be made",
    PO.PAID: "the payout was paid and cannot change any more",
    PO.FAILED: "the payout failed; an operator must pay the seller again",
})


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
DOSSIER_TRANSITIONS: TransitionTable[DossierStatus] = TransitionTable({
    DS.NOT_REQUIRED: frozenset(),
    DS.AWAITING_FILING: frozenset({DS.FILED, DS.OVERDUE}),
    DS.OVERDUE: frozenset({DS.FILED}),
    DS.FILED: frozenset(),
}, next_steps={
    DS.NOT_REQUIRED: "the trade needs no cross-border filing; nothing to file",
    DS.AWAITING_FILING: "the seller must file the dossier",
    DS.FILED: "the dossier is filed and cannot change any more",
    DS.OVERDUE: "the dossier is overdue: the seller must file it now",
})
