"""`Idempotency-Key` for every POST (API.md Conventions), written once here for every endpoint.

The in-flight marker and the stored response live in their own short transactions so that the
request's rollback never erases them. Scope: the authenticated user, or the key alone when anonymous.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from flask import Response, g, request
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from webargs import core

from exchange.api import API_PREFIX, request_json
from exchange.auth import peek_user_id
from exchange.canonical import canonical_bytes
from exchange.db import db, utcnow
from exchange.errors import Conflict, ValidationFailed
from exchange.models import IdempotencyRecord

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
# An in-flight marker older than this belongs to a request whose worker died: it may be taken over.
ABANDONED_AFTER = timedelta(minutes=2)
EXEMPT_PREFIXES = (f"{API_PREFIX}/auth/", f"{API_PREFIX}/webhooks/")
REPLAYED_HEADERS = ("Content-Type", "Location")
NOT_STORED = {409, 429}


def applies() -> bool:
    return (
        request.method == "POST"
        and HEADER in request.headers
        and not request.path.startswith(EXEMPT_PREFIXES)
    )


def _body_hash() -> str:
    try:
        body = request_json()
        raw = b"" if body is core.missing else canonical_bytes(body)
    except Exception:
        raw = request.get_data(cache=True)
    return hashlib.sha256(raw).hexdigest()


def begin() -> Response | None:
    """Before the view: claim the key, or replay / refuse. Returns a response to short-circuit."""
    key = request.headers.get(HEADER, "")
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ValidationFailed("Idempotency-Key must be 1..255 printable characters.",
                               errors={HEADER: ["must be 1..255 printable characters"]})
    scope = peek_user_id() or "anonymous"
    method_path = f"{request.method} {request.path}"[:500]
    body_hash = _body_hash()
    for _ in range(3):
        try:
            with db.engine.begin() as conn:
                rec_id = conn.execute(
                    IdempotencyRecord.__table__.insert()
                    .values(scope=scope, key=key, method_path=method_path, request_hash=body_hash,
                            created_at=utcnow(), completed=False)
                    .returning(IdempotencyRecord.__table__.c.id)
                ).scalar_one()
            g.idempotency_record_id = rec_id
            return None
        except IntegrityError:
            pass
        with db.engine.begin() as conn:
            rec = conn.execute(
                select(IdempotencyRecord.__table__).where(
                    IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
                )
            ).mappings().first()
            if rec is None:
                continue
            age = utcnow() - rec["created_at"]
            stale = age > TTL or (not rec["completed"] and age > ABANDONED_AFTER)
            if stale:
                conn.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == rec["id"]))
                continue
        if rec["request_hash"] != body_hash or rec["method_path"] != method_path:
            raise ValidationFailed(
                "This Idempotency-Key was already used with a different request body or path.",
                errors={HEADER: ["reused with a different request"]},
            )
        if not rec["completed"]:
            raise Conflict("A request with this Idempotency-Key is still in flight.")
        headers = dict(rec["response_headers"] or {})
        headers["Idempotent-Replayed"] = "true"
        g.idempotency_replayed = True
        return Response(rec["response_body"], status=rec["response_status"], headers=headers)
    raise Conflict("Could not claim the Idempotency-Key; retry.")


def finish(response: Response) -> None:
    """After the request's own commit: store the response, or release the key so it can be retried."""
    rec_id = g.pop("idempotency_record_id", None)
    if rec_id is None:
        return
    with db.engine.begin() as conn:
        if response.status_code >= 500 or response.status_code in NOT_STORED:
            conn.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == rec_id))
            return
        headers: dict[str, Any] = {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers}
        conn.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == rec_id)
            .values(completed=True, response_status=response.status_code,
                    response_body=response.get_data(), response_headers=headers)
        )


def purge_expired() -> int:
    """Delete records past their 24 h (run by the sweep)."""
    with db.engine.begin() as conn:
        return conn.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - TTL)
        ).rowcount
