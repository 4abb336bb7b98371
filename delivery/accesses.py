"""The access log: append-only (database triggers), one row per link issued, download served or
refusal. A refusal is written after the refused request's rollback, in its own transaction, so
the log keeps every refusal; an allowed access commits with the request that made it."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from delivery.models import Access
from delivery.states import AccessStatus
from exchange.api import LogOrder, cursor_page
from exchange.db import after_transaction, db, utcnow
from exchange.errors import Forbidden
from exchange.metrics import PROCESS_REGISTRY

# Per process (multiprocess mode under gunicorn aggregates the workers), shown by /metrics.
LINKS = Counter("datafair_delivery_links", "Download links issued", ["storage"], registry=PROCESS_REGISTRY)
DOWNLOADS = Counter("datafair_delivery_downloads", "Downloads served (a Range request counts once)",
                    registry=PROCESS_REGISTRY)
BYTES = Counter("datafair_delivery_bytes_served", "Bytes of data files served by the exchange",
                registry=PROCESS_REGISTRY)
REFUSALS = Counter("datafair_delivery_refusals", "Accesses refused, by reason code", ["reason"],
                   registry=PROCESS_REGISTRY)


def allowed(session: Session, *, entitlement_id: str, kind: str, user_id: str | None, release_id: str | None,
            obj: str | None, size: int | None, sha256: str | None, details: dict[str, Any] | None = None) -> Access:
    """Log an allowed access in the caller's transaction."""
    return logged(session, entitlement_id=entitlement_id, kind=kind, user_id=user_id, release_id=release_id, obj=obj,
                  size=size, sha256=sha256, details=details, status=AccessStatus.ALLOWED, reason=None)


def logged(session: Session, *, entitlement_id: str, kind: str, user_id: str | None, release_id: str | None,
           obj: str | None, size: int | None, sha256: str | None, details: dict[str, Any] | None, status: str,
           reason: str | None) -> Access:
    """Log an access with its outcome in the caller's transaction (a sandbox query refused by its
    policy or failed in the engine commits with the query's own record)."""
    row = Access(entitlement_id=entitlement_id, at=utcnow(), kind=kind,
                 user_id=user_id, release_id=release_id, object=obj, bytes=size,
                 sha256=sha256, status=status, refused_reason=reason, details=details)
    session.add(row)
    session.flush()
    return row


def refused(*, entitlement_id: str, kind: str, user_id: str | None, release_id: str | None, obj: str | None,
            reason: str, code: str, api_key_id: str | None = None) -> None:
    """Log a refusal once the request's transaction has ended (committed or rolled back)."""
    values = {"entitlement_id": entitlement_id, "at": utcnow(), "kind": kind, "user_id": user_id,
              "api_key_id": api_key_id,
              "release_id": release_id, "object": obj, "status": AccessStatus.REFUSED, "refused_reason": reason,
              "details": {"code": code}}

    def write() -> None:
        with db.engine.begin() as conn:
            conn.execute(insert(Access).values(**values))

    after_transaction(write)
    REFUSALS.labels(reason=code).inc()


RELEASE_WITHDRAWN_NEXT_STEP = "use another published release of the product (list the entitlement's releases)"


def refusal(*, entitlement_id: str, kind: str, user_id: str | None, release_id: str | None, obj: str | None,
            code: str, detail: str, next_step: str) -> Forbidden:
    """Log a refused access (its own transaction, after this one) and return the 403 to raise."""
    refused(entitlement_id=entitlement_id, kind=kind, user_id=user_id, release_id=release_id, obj=obj,
            reason=detail, code=code)
    return Forbidden(detail, next_step=next_step)


# The log's append order: its autoincrement id.
ACCESS_ORDER = LogOrder(id=Access.id, keys=(Access.id,))


def page(session: Session, *, entitlement_id: str, after: int | None, limit: int | None) -> dict[str, Any]:
    """Entries after the one whose id is `after`, oldest first; `next` is the cursor of the following
    page. Raises ValidationFailed (`after` not an entry of this entitlement's log)."""
    stmt = select(Access).where(Access.entitlement_id == entitlement_id)
    return cursor_page(session, stmt, order=ACCESS_ORDER, after=after, limit=limit)

