"""Exactly-once bookkeeping around the gateways: webhook events applied once, calls recorded first.

The trading layer's pattern for a money step that calls a provider (no row lock is ever held
across the HTTP call):

    call = begin_call(session, provider=..., operation="refund", subject_id=trade.id, step="refund", ...)
    session.commit()                      # the intent and its key survive a crash
    result = gateway.refund(provider_ref=..., amount=call.amount, idempotency_key=call.idempotency_key)
    complete_call(session, call, status=result.status, provider_ref=result.provider_ref)
    ... state change + ledger entry ...; session.commit()

and for a webhook, in the same transaction as the state change it causes:

    if record_event_once(session, "stripe", event.id, event_type=event.type): apply(event)
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.db import upsert, utcnow
from exchange.errors import Conflict
from exchange.payments.gateway import ProviderError, ProviderStatus, check_amount, check_currency
from exchange.payments.models import OPERATIONS, PROVIDERS, ProcessedProviderEvent, ProviderCall


def idempotency_key(subject_id: str, step: str) -> str:
    """The deterministic provider idempotency key of one step of one subject (a trade or a payout):
    `datafair:<subject_id>:<step>`, so a retried step reuses the first call's key."""
    if not subject_id or not step or ":" in step:
        raise ValueError("subject_id and step must be non-empty and step must not contain ':'")
    key = f"datafair:{subject_id}:{step}"
    if len(key) > 255:
        raise ValueError("idempotency key longer than 255 characters")
    return key


def record_event_once(session: Session, provider: str, event_id: str, *, event_type: str | None = None) -> bool:
    """Mark a provider event applied; False when it already was (then apply nothing).

    Call it in the same transaction as the state change the event causes: if that transaction rolls
    back, the event is not marked and a redelivery applies it. A concurrent duplicate waits on the
    unique key and then gets False.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}")
    if not event_id:
        raise ValueError("event_id must not be empty")
    stmt = upsert(
        session, ProcessedProviderEvent,
        dict(provider=provider, event_id=event_id, event_type=event_type, applied_at=utcnow()),
        index_elements=["provider", "event_id"],
    ).returning(ProcessedProviderEvent.id)
    # RETURNING rather than rowcount: drivers disagree on rowcount for INSERT ... ON CONFLICT.
    return session.execute(stmt).scalar_one_or_none() is not None


def begin_call(
    session: Session,
    *,
    provider: str,
    operation: str,
    subject_id: str,
    step: str,
    amount: int,
    currency: str,
    target: str | None = None,
) -> ProviderCall:
    """Record an outbound call (with its idempotency key) before making it; returns the existing
    record when the same step was begun before. Commit before calling the provider.

    Raises Conflict (409) when the step was begun with a different amount, currency, operation or
    target: a key must never be reused for a different movement of money.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}")
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}")
    key = idempotency_key(subject_id, step)
    values = {
        "provider": provider,
        "idempotency_key": key,
        "operation": operation,
        "subject_id": subject_id,
        "step": step,
        "amount": check_amount(amount),
        "currency": check_currency(currency),
        "target": target,
    }
    stmt = upsert(session, ProviderCall, {**values, "status": "started", "created_at": utcnow()},
                  index_elements=["provider", "idempotency_key"])
    session.execute(stmt)
    call = session.scalars(
        select(ProviderCall).where(ProviderCall.provider == provider, ProviderCall.idempotency_key == key)
    ).one()
    differs = [k for k in ("operation", "amount", "currency", "target") if getattr(call, k) != values[k]]
    if differs:
        raise Conflict(f"step {step!r} of {subject_id} was already begun with a different {', '.join(differs)}")
    return call


def find_call(session: Session, *, provider: str, subject_id: str, step: str) -> ProviderCall | None:
    """The recorded call of one step, if it was begun."""
    return session.scalars(
        select(ProviderCall).where(
            ProviderCall.provider == provider, ProviderCall.idempotency_key == idempotency_key(subject_id, step)
        )
    ).one_or_none()


def complete_call(
    session: Session,
    call: ProviderCall,
    *,
    status: ProviderStatus | str,
    provider_ref: str | None = None,
    error: str | None = None,
) -> ProviderCall:
    """Store the provider's answer to a begun call (again, with the same answer, is harmless).

    Raises ProviderError (502) when the provider names a different object than it did before for
    the same key, which would mean the key was not honoured.
    """
    status = ProviderStatus(status)
    if provider_ref and call.provider_ref and provider_ref != call.provider_ref:
        raise ProviderError(
            f"{call.provider} answered {provider_ref} for key {call.idempotency_key!r}, "
            f"earlier {call.provider_ref}"
        )
    call.status = status.value
    call.provider_ref = provider_ref or call.provider_ref
    call.error = error
    call.completed_at = utcnow()
    session.flush()
    return call
