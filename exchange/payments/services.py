"""Exactly-once bookkeeping around the gateways: webhook events applied once, calls recorded first.

Every call to a provider goes through `run_provider_call` (no row lock, no transaction, is ever held
across the HTTP call):

    call = begin_call(session, provider=..., operation="refund", subject_id=trade.id, step="refund", ...)
    result = run_provider_call(session, call, lambda: gateway.refund(..., idempotency_key=call.idempotency_key))
    # a new transaction is open: the answer is recorded on `call`; lock the row, re-check, apply
    ... state change + ledger entry ...   (the request's or the job's commit ends it)

`run_provider_call` commits what the session holds (the intent and its key survive a crash), makes
the call with no transaction open, and records the answer in a new transaction that it leaves open
for the caller. A crash between the commit and the answer leaves the call `started`: the
reconciliation job makes it again with the same key, which the provider answers as a replay.

and for a webhook, in the same transaction as the state change it causes:

    if record_event_once(session, "stripe", event.id, event_type=event.type): apply(event)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, scoped_session

from exchange.db import upsert, utcnow
from exchange.errors import Conflict
from exchange.payments.gateway import (
    ProviderError,
    ProviderStatus,
    ProviderUnreachable,
    check_amount,
    check_currency,
)
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
        raise Conflict(f"step {step!r} of {subject_id} was already begun with a different {', '.join(differs)}",
                       next_step="retry the step with the amount, currency and target it was begun with")
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


R = TypeVar("R")
# A call begun this long ago and still unanswered belongs to a worker that died between the intent's
# commit and the answer (a request in flight answers within seconds).
ABANDONED_AFTER = timedelta(minutes=2)


class TransactionOpenError(RuntimeError):
    """A provider call was about to be made (or was made) with a database transaction open on the
    session: a bug in the caller, never a client error. On SQLite that transaction would hold the
    whole database's write lock for the length of an HTTP round trip."""


def outside_transaction(session: Session, fn: Callable[[], R]) -> R:
    """Commit what `session` holds, run `fn` with no transaction open on it, and return its result.

    `fn` must not use the session (its values are read before the call). Raises
    TransactionOpenError when a transaction is open before or after `fn` runs.
    """
    session.commit()
    if in_transaction(session):
        raise TransactionOpenError("a transaction is still open before the provider call")
    result = fn()
    if in_transaction(session):
        raise TransactionOpenError("the provider call used the database session")
    return result


def in_transaction(session: Session | scoped_session) -> bool:
    """Whether a transaction is open on `session` (the request's scoped session or a plain one)."""
    return (session() if isinstance(session, scoped_session) else session).in_transaction()


def run_provider_call(
    session: Session,
    call: ProviderCall,
    fn: Callable[[], Any],
    *,
    on_refused: Callable[[Session, ProviderError], None] | None = None,
) -> Any:
    """Make the begun `call` through `fn` outside any transaction, and record its answer.

    Commits what the session holds (with the call's intent), runs `fn` with no transaction open,
    then, in a new transaction that stays open for the caller to apply the result in, stores the
    provider's answer on the call (re-read under a row lock) and returns `fn`'s result.

    A refusal (ProviderError, 502) is final for the key: the call is marked failed, `on_refused`
    may record its consequences in the same short transaction, that is committed, and the error is
    raised. An unreachable provider (ProviderUnreachable, 503) leaves the call `started` for the
    reconciliation job and raises. Raises TransactionOpenError as `outside_transaction`.
    """
    call_id = call.id
    try:
        result = outside_transaction(session, fn)
    except ProviderUnreachable:
        raise
    except ProviderError as exc:
        refused = _locked_call(session, call_id)
        complete_call(session, refused, status=ProviderStatus.FAILED, error=exc.detail[:1000])
        if on_refused is not None:
            on_refused(session, exc)
        session.commit()
        raise
    answered = _locked_call(session, call_id)
    complete_call(session, answered, status=result.status, provider_ref=result.provider_ref)
    return result


def _locked_call(session: Session, call_id: int) -> ProviderCall:
    return session.execute(select(ProviderCall).where(ProviderCall.id == call_id).with_for_update()).scalar_one()


def abandoned_calls(session: Session, *, provider: str, operations: tuple[str, ...] = OPERATIONS,
                    limit: int = 100, older_than: timedelta = ABANDONED_AFTER) -> list[ProviderCall]:
    """Calls of `operations` begun more than `older_than` ago that never got an answer (oldest first,
    at most `limit`)."""
    return list(session.scalars(
        select(ProviderCall)
        .where(ProviderCall.provider == provider, ProviderCall.status == "started",
               ProviderCall.operation.in_(operations), ProviderCall.created_at <= utcnow() - older_than)
        .order_by(ProviderCall.created_at, ProviderCall.id)
        .limit(limit)
    ))
