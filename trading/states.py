"""Procurement, offer, contract and trade state machines."""

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


T = TradeStatus
TRADE_TRANSITIONS: dict[TradeStatus, frozenset[TradeStatus]] = {
    T.AWAITING_PAYMENT: frozenset({T.ESCROWED}),
    T.ESCROWED: frozenset({T.DELIVERED, T.DISPUTED}),
    T.DELIVERED: frozenset({T.SETTLED, T.DISPUTED}),
    T.DISPUTED: frozenset({T.SETTLED, T.REFUNDED}),
    T.SETTLED: frozenset(),
    T.REFUNDED: frozenset(),
}


class SignatureMethod(StrEnum):
    PLATFORM = "platform"
    ED25519 = "ed25519"
