"""The transactional outbox: domain events written in the same transaction as the change they report.

A service that changes something other organizations' systems care about calls

    emit(session, event_type="trade.settled", org_ids=[buyer_id, seller_id], payload={...})

inside its own transaction (it never commits). The event exists exactly when the change does: a
rollback removes both. After the commit, the kernel nudges the webhook worker (never inside the
transaction: a worker must not look for an event that is not committed yet); if the nudge is lost,
the periodic job finds the event anyway. `fan_out` turns each event into one delivery per endpoint
of the named organizations subscribed to its type (`exchange.webhooks`).

Payloads are JSON objects of the event's subject as the API shows it (ids, statuses, times as ISO
8601 `Z` strings, money as `{"amount", "currency"}`); never secrets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import JSON, Index, String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from exchange.db import Base, IdColumn, UTCDateTime, dialect_name, utcnow

log = logging.getLogger("datafair.outbox")

# Event types are registered per app by the layer that emits them (its `init_app`); the kernel
# owns only its own. `emit` refuses a type nobody registered.
EVENT_TYPES_EXTENSION = "datafair.event_types"
EXCHANGE_EVENT_TYPES: frozenset[str] = frozenset({
    "organization.verified",    # an organization became verified (registration or reinstatement)
})
MAX_PAYLOAD_BYTES = 64 * 1024
_PENDING_KEY = "datafair.outbox.pending"


class OutboxEvent(Base):
    """One domain event, immutable once written; `dispatched_at` is set when its deliveries exist."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_undispatched", "dispatched_at", "created_at"),)

    id: Mapped[str] = IdColumn("evt")
    event_type: Mapped[str] = mapped_column(String(60), index=True)
    org_ids: Mapped[list[str]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UnknownEventType(ValueError):
    """An event type no layer registered on this app (a programming error, not a client error)."""


def register_event_types(app: Flask, event_types: Iterable[str]) -> None:
    """Let `emit` accept these event types on `app` (and webhook endpoints subscribe to them)."""
    names = {event_types} if isinstance(event_types, str) else set(event_types)
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError("event types must be non-empty strings")
    app.extensions.setdefault(EVENT_TYPES_EXTENSION, set()).update(names)


def event_types(app: Flask | None = None) -> frozenset[str]:
    """Every event type registered on `app` (default: the current app)."""
    app = current_app if app is None else app
    return frozenset(app.extensions.get(EVENT_TYPES_EXTENSION, ()))


def emit(session: Session, *, event_type: str, org_ids: list[str], payload: dict[str, Any]) -> OutboxEvent:
    """Record a domain event for `org_ids` in the caller's transaction (flushed, never committed).

    Raises UnknownEventType (a ValueError) for a type no layer registered on the app, ValueError for
    org ids that are not strings or a payload that is not a JSON object (or is larger than 64 KiB):
    these are programming errors, not client errors.
    """
    known = event_types()
    if event_type not in known:
        raise UnknownEventType(f"unknown event type {event_type!r}: no layer registered it on this app "
                               f"(outbox.register_event_types in its init_app); known: {', '.join(sorted(known))}")
    if isinstance(org_ids, str) or not all(isinstance(o, str) and o for o in org_ids):
        raise ValueError("org_ids must be a list of organization ids")
    if not isinstance(payload, dict):
        raise ValueError("payload must be a JSON object")
    try:
        encoded = json.dumps(payload, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"payload is not JSON: {exc}") from None
    if len(encoded.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
    # Microseconds kept (the API shows seconds): an endpoint registered in the same second as an
    # event must not receive it if it came after it (fan-out compares the two times).
    evt = OutboxEvent(event_type=event_type, org_ids=list(dict.fromkeys(org_ids)),
                      payload=json.loads(encoded), created_at=datetime.now(UTC))
    session.add(evt)
    session.flush()
    session.info[_PENDING_KEY] = True
    return evt


# -- the nudge after commit ----------------------------------------------------------------------

# Code registered on each app (the jobs module's webhook nudge), never a module-level list.
AFTER_COMMIT_EXTENSION = "datafair.outbox.after_commit"


def on_committed_events(app: Flask, fn: Callable[[], None]) -> None:
    """Call `fn` after any commit on `app` that wrote events (the jobs module enqueues the webhook job)."""
    hooks = app.extensions.setdefault(AFTER_COMMIT_EXTENSION, [])
    if fn not in hooks:
        hooks.append(fn)


def committed_event_hooks(app: Flask | None = None) -> list[Callable[[], None]]:
    """What runs after a commit that wrote events on `app` (default: the current app)."""
    app = current_app if app is None else app
    return list(app.extensions.get(AFTER_COMMIT_EXTENSION, ()))


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # Events are emitted inside an app context (emit checks the app's event types), and so committed.
    if not session.info.pop(_PENDING_KEY, False) or not has_app_context():
        return
    for fn in committed_event_hooks():
        try:
            fn()
        except Exception:
            # The periodic webhook job finds the event anyway; a lost nudge only delays it.
            log.warning("could not enqueue the webhook job after commit", exc_info=True)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


def undispatched(session: Session, *, limit: int) -> list[OutboxEvent]:
    """The oldest events without deliveries yet, locked so concurrent fan-outs skip them (PostgreSQL)."""
    stmt = (select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.created_at, OutboxEvent.id).limit(limit))
    if dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.execute(stmt).scalars())
