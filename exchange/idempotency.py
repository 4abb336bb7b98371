"""`Idempotency-Key` for every POST (API.md Conventions), written once here for every endpoint.

One effect per key, even when a worker dies at the worst moment:

- the in-flight marker (the claim) is its own short committed transaction before the view, so a
  concurrent duplicate sees it and answers 409;
- a success's response is stored in the request's own transaction (whichever is current at the
  end of the request, as a request may commit mid-way), right before its commit: the business
  effect and its stored response commit together or not at all, so a retry after a crash between
  commit and answer is replayed, never run again;
- a refusal (4xx but 409/429) is rolled back and stored in a short transaction of its own after
  the rollback (replayed, and changed nothing); a 409, 429 or 5xx releases the key.

A claim older than `IDEMPOTENCY_ABANDONED_SECONDS` belongs to a worker that died: a retry may take
it over. A request still running when that happens finds its claim gone at the end and is rolled
back (409) rather than committing a second effect. Scope: the authenticated user, or the key alone
when anonymous.

One-time secrets are never stored: a response field declared with `exchange.fields.OneTimeSecret`
remembers the values it dumped, and the recorder stores the body with each of them replaced by
null. A replay is the stored body byte for byte, so it is the first response but for those fields.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Response, current_app, g, request
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from webargs import core

from exchange.api import API_PREFIX, request_json
from exchange.canonical import canonical_bytes
from exchange.db import db, utcnow
from exchange.errors import Conflict, ValidationFailed
from exchange.fields import ONE_TIME_SECRETS_SEEN
from exchange.models import IdempotencyRecord
from exchange.principal import peek_user_id

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
EXEMPT_PREFIXES = (f"{API_PREFIX}/auth/", f"{API_PREFIX}/webhooks/")
REPLAYED_HEADERS = ("Content-Type", "Location")
NOT_STORED = {409, 429}
SETTLE_RETRY_SECONDS = 0.25
log = logging.getLogger("datafair.idempotency")


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
            if age > TTL or (not rec["completed"] and age > _abandoned_after()):
                # Only the row as seen: a request completing it meanwhile keeps its stored response
                # (PostgreSQL re-checks the condition on the row once its lock is released).
                conn.execute(delete(IdempotencyRecord).where(
                    IdempotencyRecord.id == rec["id"], IdempotencyRecord.completed == rec["completed"]))
                continue
        if rec["request_hash"] != body_hash or rec["method_path"] != method_path:
            raise ValidationFailed(
                "This Idempotency-Key was already used with a different request body or path.",
                errors={HEADER: ["reused with a different request"]},
            )
        if not rec["completed"]:
            raise Conflict("A request with this Idempotency-Key is still in flight.",
                           next_step="wait for the first request to finish, then retry with the same key")
        headers = dict(rec["response_headers"] or {})
        headers["Idempotent-Replayed"] = "true"
        g.idempotency_replayed = True
        return Response(rec["response_body"], status=rec["response_status"], headers=headers)
    raise Conflict("Could not claim the Idempotency-Key; retry.",
                   next_step="retry the request with the same key in a moment")


def _abandoned_after() -> timedelta:
    """An in-flight marker older than this belongs to a request whose worker died (config)."""
    return timedelta(seconds=int(current_app.config.get("IDEMPOTENCY_ABANDONED_SECONDS", 120)))


def _redact(node: Any, secrets: set[str]) -> Any:
    if isinstance(node, dict):
        return {k: _redact(v, secrets) for k, v in node.items()}
    if isinstance(node, list):
        return [_redact(v, secrets) for v in node]
    return None if isinstance(node, str) and node in secrets else node


def redacted_body(body: bytes, secrets: set[str]) -> bytes:
    """`body` with every JSON string equal to one of `secrets` replaced by null, serialized as the
    app serializes responses (so every other byte is the original's). A body that still holds a
    secret (not JSON, or the value inside another string) has it replaced by "[redacted]" as text."""
    if not secrets:
        return body
    try:
        out = current_app.json.response(_redact(json.loads(body), secrets)).get_data()
    except ValueError:
        out = body
    for secret in secrets:
        out = out.replace(secret.encode(), b"[redacted]")
    return out


@dataclass
class Claim:
    """This request's claimed key: the marker's id and the one-time secrets its response showed."""

    record_id: int
    secrets: set[str] = field(default_factory=set)


class TakenOver(Conflict):
    """The claim was taken over by a retry (this request outlived IDEMPOTENCY_ABANDONED_SECONDS)."""

    def __init__(self) -> None:
        super().__init__("This request took longer than its Idempotency-Key may stay in flight and a retry "
                         "took the key over; nothing was changed by this one.",
                         next_step="read the retry's result: send the request again with the same key")


def claimed() -> Claim | None:
    """This request's claim, taken off the request state (None without an Idempotency-Key)."""
    secrets = g.pop(ONE_TIME_SECRETS_SEEN, None) or set()
    rec_id = g.pop("idempotency_record_id", None)
    return None if rec_id is None else Claim(rec_id, secrets)


def _completion(claim: Claim, response: Response) -> Any:
    headers: dict[str, Any] = {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers}
    return (
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == claim.record_id, IdempotencyRecord.completed.is_(False))
        .values(completed=True, response_status=response.status_code,
                response_body=redacted_body(response.get_data(), claim.secrets),
                response_headers=headers)
    )


def store_success(session: Session, claim: Claim, response: Response) -> None:
    """Store a success's final response in `session`'s current transaction, right before its commit.

    Raises TakenOver (the caller rolls back) when the claim is no longer this request's."""
    if session.execute(_completion(claim, response)).rowcount != 1:
        raise TakenOver()


def _settlement(claim: Claim, response: Response) -> Any:
    if response.status_code >= 500 or response.status_code in NOT_STORED:
        return delete(IdempotencyRecord).where(IdempotencyRecord.id == claim.record_id,
                                               IdempotencyRecord.completed.is_(False))
    return _completion(claim, response)


def settle(claim: Claim, response: Response) -> None:
    """After a rollback: store a refusal in its own transaction (replayed like a success), or release
    the key of a 409, 429 or 5xx so that it can be retried.

    When that write itself cannot be made now (the database busy or unreachable: the very reason of
    many a 503), it is retried in the background until it is made or the claim would count as
    abandoned anyway, so that the retry the 503's Retry-After asks for is served, not refused 409."""
    stmt = _settlement(claim, response)
    try:
        with db.engine.begin() as conn:
            conn.execute(stmt)
    except Exception:
        log.warning("could not settle the Idempotency-Key now; retrying in the background", exc_info=True)
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        threading.Thread(target=_settle_later, args=(app, stmt, _abandoned_after()), daemon=True).start()


def _settle_later(app: Any, stmt: Any, within: timedelta) -> None:
    deadline = time.monotonic() + within.total_seconds()
    with app.app_context():
        while time.monotonic() < deadline:
            time.sleep(SETTLE_RETRY_SECONDS)
            try:
                with db.engine.begin() as conn:
                    conn.execute(stmt)
                return
            except Exception as exc:
                log.debug("settling the Idempotency-Key failed again: %s", exc)
    log.error("could not settle an Idempotency-Key; it stays in flight until it counts as abandoned")


def purge_expired() -> int:
    """Delete records past their 24 h (run by the sweep)."""
    with db.engine.begin() as conn:
        return conn.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - TTL)
        ).rowcount
