"""The webhook delivery state machine."""

from __future__ import annotations

from enum import StrEnum

from exchange.states import TransitionTable


class DeliveryStatus(StrEnum):
    PENDING = "pending"        # waiting for its next attempt
    DELIVERED = "delivered"    # a 2xx answer was received
    FAILED = "failed"          # gave up after the last attempt
    CANCELLED = "cancelled"    # its endpoint was deleted before it was delivered


DELIVERY_STATUSES = tuple(s.value for s in DeliveryStatus)

W = DeliveryStatus
DELIVERY_TRANSITIONS: TransitionTable[DeliveryStatus] = TransitionTable({
    # Retries keep a delivery pending (only its attempts and next_attempt_at change).
    W.PENDING: frozenset({W.DELIVERED, W.FAILED, W.CANCELLED}),
    W.DELIVERED: frozenset(),
    W.FAILED: frozenset(),
    W.CANCELLED: frozenset(),
}, next_steps={
    W.PENDING: "wait for the delivery's next attempt",
    W.DELIVERED: "the delivery was received and cannot change any more",
    W.FAILED: "the delivery gave up; fix the endpoint and send a new event",
    W.CANCELLED: "the delivery was cancelled with its endpoint and cannot change any more",
})
