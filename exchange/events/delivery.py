"""Fan-out of outbox events into deliveries, and the signed, retried HTTP POSTs that deliver them.

Each step is its own short transaction and no row lock is ever held across an HTTP call:

1. `fan_out`: events without deliveries yet (locked with SKIP LOCKED on PostgreSQL; SQLite's
   single write lock serializes) become one `pending` delivery per subscribed endpoint of their
   organizations (unique per endpoint and event, so a second fan-out cannot duplicate one).
2. `claim`: due deliveries get a fresh lease token and expiry (SKIP LOCKED on PostgreSQL; the lease
   condition in the UPDATE on both engines). Commit.
3. `_attempt`: the URL is checked again (its host resolved again: DNS may have changed since
   registration) and the POST goes to the checked address itself, redirects not followed, 5 s.
4. `_record`: the result is written only if the row still carries our lease token; a failure
   schedules the next attempt with exponential backoff, the last one marks the delivery `failed`.

A worker that dies between 3 and 4 leaves a lease that expires; the attempt is made again
(at-least-once: receivers deduplicate on `Datafair-Event-Id`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import urllib3
from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from exchange.db import db, dialect_name, new_id, upsert, utcnow
from exchange.errors import ValidationFailed
from exchange.events import signature
from exchange.events.models import WebhookDelivery, WebhookEndpoint
from exchange.events.outbox import OutboxEvent, undispatched
from exchange.events.services import WebhookSecretError, check_target, endpoint_secret
from exchange.events.states import DELIVERY_TRANSITIONS, DeliveryStatus
from exchange.fields import iso_z
from exchange.netguard import PublicURL, pinned_pool
from exchange.states import transition, transition_many

log = logging.getLogger("datafair.webhooks")
USER_AGENT = "datafair-webhooks/1"
# Longer than a whole batch can take (each POST is capped at the timeout).
LEASE_SECONDS = 120
MAX_RESPONSE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Job:
    delivery_id: str
    token: str
    attempts: int
    event_id: str
    url: str
    secret: str
    body: bytes


def event_body(event: OutboxEvent) -> bytes:
    """The delivered JSON: `{"id", "type", "created_at", "data"}`, the same bytes at every attempt."""
    return json.dumps({"id": event.id, "type": event.event_type, "created_at": iso_z(event.created_at),
                       "data": event.payload}, ensure_ascii=False, separators=(",", ":")).encode()


def backoff_seconds(attempts: int) -> int:
    """Delay before attempt `attempts + 1`: base * 2^(attempts - 1), capped."""
    config = current_app.config
    base = int(config.get("WEBHOOK_RETRY_BASE_SECONDS", 30))
    cap = int(config.get("WEBHOOK_RETRY_MAX_SECONDS", 3600))
    return int(min(cap, base * 2 ** max(0, attempts - 1)))


def _is_pg(session: Session) -> bool:
    return dialect_name(session) == "postgresql"


def fan_out(session: Session, *, batch: int = 200) -> int:
    """Create the deliveries of every undispatched event; returns how many deliveries were made."""
    made = 0
    while True:
        events = undispatched(session, limit=batch)
        if not events:
            session.commit()
            return made
        org_ids = {o for e in events for o in e.org_ids}
        endpoints = list(session.execute(select(WebhookEndpoint).where(
            WebhookEndpoint.org_id.in_(org_ids), WebhookEndpoint.deleted_at.is_(None))).scalars())
        now = utcnow()
        rows = [
            {"id": new_id("whd"), "endpoint_id": ep.id, "event_id": ev.id, "status": DeliveryStatus.PENDING.value,
             "attempts": 0, "next_attempt_at": now, "created_at": now}
            for ev in events for ep in endpoints
            # Endpoints get the events of their organization, of their types, from their creation on.
            if ep.org_id in ev.org_ids and ev.event_type in ep.events and ep.created_at <= ev.created_at
        ]
        if rows:
            made += session.execute(
                upsert(session, WebhookDelivery, rows, index_elements=["endpoint_id", "event_id"])
            ).rowcount
        session.execute(update(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events]))
                        .values(dispatched_at=now))
        session.commit()
        if len(events) < batch:
            return made


def claim(session: Session, *, limit: int) -> list[Job]:
    """Lease up to `limit` due deliveries to this worker (committed before any POST)."""
    now = utcnow()
    due = (WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= now,
           or_(WebhookDelivery.lease_expires_at.is_(None), WebhookDelivery.lease_expires_at <= now))
    stmt = select(WebhookDelivery.id).where(*due).order_by(WebhookDelivery.next_attempt_at,
                                                           WebhookDelivery.id).limit(limit)
    if _is_pg(session):
        stmt = stmt.with_for_update(skip_locked=True)
    ids = list(session.execute(stmt).scalars())
    if not ids:
        session.commit()
        return []
    token = new_id("lease")
    session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids), *due)
                    .values(lease_token=token, lease_expires_at=now + timedelta(seconds=LEASE_SECONDS)))
    rows = session.execute(
        select(WebhookDelivery, WebhookEndpoint, OutboxEvent)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.id.in_(ids), WebhookDelivery.lease_token == token)
        # Already locked by the lease UPDATE above; FOR UPDATE lets `transition` see it.
        .with_for_update(of=WebhookDelivery)
    ).all()
    jobs: list[Job] = []
    for delivery, endpoint, event in rows:
        if endpoint.deleted_at is not None:
            transition(delivery, DELIVERY_TRANSITIONS, DeliveryStatus.CANCELLED, actor=None, what="Webhook delivery")
            delivery.lease_token = delivery.lease_expires_at = delivery.next_attempt_at = None
            continue
        try:
            secret = endpoint_secret(endpoint)
        except WebhookSecretError as exc:
            log.error("%s", exc)
            delivery.lease_token = delivery.lease_expires_at = None
            delivery.next_attempt_at = now + timedelta(seconds=backoff_seconds(delivery.attempts + 1))
            delivery.last_error = "the endpoint's secret cannot be decrypted"
            continue
        jobs.append(Job(delivery.id, token, delivery.attempts, event.id, endpoint.url, secret, event_body(event)))
    session.commit()
    return jobs


def post(target: PublicURL, body: bytes, headers: dict[str, str], *, timeout: float) -> tuple[int | None, str | None]:
    """POST `body` to the checked address of `target` (never resolving again); `(status, error)`."""
    parts = urlsplit(target.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != default_port:
        host_header += f":{target.port}"
    headers = {**headers, "Host": host_header}
    error = "no address"
    for address in target.addresses:
        pool = pinned_pool(target, address, timeout=urllib3.Timeout(total=timeout))
        try:
            resp = pool.urlopen("POST", path, body=body, headers=headers, redirect=False, retries=False,
                                preload_content=False, assert_same_host=False)
            with contextlib.suppress(urllib3.exceptions.HTTPError):
                resp.read(MAX_RESPONSE_BYTES)  # a little of the answer; never a huge body
            resp.release_conn()
            return resp.status, None
        except urllib3.exceptions.NewConnectionError as exc:
            error = f"connection failed: {_reason(exc)}"
            continue  # another address of the same host may answer
        except urllib3.exceptions.TimeoutError:
            return None, f"timed out after {timeout:g} s"
        except urllib3.exceptions.HTTPError as exc:
            return None, f"{type(exc).__name__}: {_reason(exc)}"
        finally:
            pool.close()
    return None, error


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    return text.split(": ", 1)[-1][:300]


def _attempt(job: Job) -> tuple[int | None, str | None]:
    try:
        target = check_target(job.url)
    except ValidationFailed as exc:
        return None, "refused: " + "; ".join(m for msgs in (exc.errors or {}).values() for m in msgs)[:450]
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signature.HEADER: signature.header(job.secret, job.body),
        signature.EVENT_ID_HEADER: job.event_id,
        "Datafair-Delivery-Id": job.delivery_id,
    }
    status, error = post(target, job.body, headers, timeout=float(current_app.config.get("WEBHOOK_TIMEOUT_SECONDS", 5)))
    if status is not None and 300 <= status < 400:
        error = f"answered {status}; redirects are not followed"
    elif status is not None and not 200 <= status < 300:
        error = f"answered {status}"
    return status, error


def _record(session: Session, job: Job, status: int | None, error: str | None) -> bool:
    now = utcnow()
    attempts = job.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "last_status_code": status, "last_error": error,
                              "last_attempt_at": now, "lease_token": None, "lease_expires_at": None}
    # Compare-and-set on the lease: only the worker still holding it records its answer.
    held = (WebhookDelivery.id == job.delivery_id, WebhookDelivery.lease_token == job.token)
    target: DeliveryStatus | None = None
    if status is not None and 200 <= status < 300:
        target = DeliveryStatus.DELIVERED
        values.update(delivered_at=now, next_attempt_at=None, last_error=None)
    elif attempts >= int(current_app.config.get("WEBHOOK_MAX_ATTEMPTS", 10)):
        target = DeliveryStatus.FAILED
        values.update(next_attempt_at=None)
    else:
        values.update(next_attempt_at=now + timedelta(seconds=backoff_seconds(attempts)))
    if target is None:  # another attempt later: the delivery stays pending
        done = session.execute(update(WebhookDelivery).where(
            *held, WebhookDelivery.status == DeliveryStatus.PENDING).values(**values)).rowcount == 1
    else:
        done = len(transition_many(session, WebhookDelivery, DELIVERY_TRANSITIONS, target, where=held,
                                   actor=None, what="Webhook delivery", values=values)) == 1
    session.commit()
    if not done:
        log.warning("webhook delivery %s: lease lost before the result was recorded", job.delivery_id)
    return done


def deliver_due(session: Session, *, batch: int = 10, budget_seconds: float = 30.0) -> dict[str, int]:
    """Attempt due deliveries until none is due or the time budget is spent; counts by outcome."""
    counts = {"delivered": 0, "failed_attempts": 0}
    started = time.monotonic()
    while time.monotonic() - started < budget_seconds:
        jobs = claim(session, limit=batch)
        if not jobs:
            break
        for job in jobs:
            status, error = _attempt(job)
            ok = status is not None and 200 <= status < 300
            if _record(session, job, status, error):
                counts["delivered" if ok else "failed_attempts"] += 1
            if not ok:
                log.info("webhook delivery failed", extra={"delivery_id": job.delivery_id,
                                                           "event_id": job.event_id, "error": error})
    return counts


def run(session: Session | None = None) -> dict[str, int]:
    """The webhook job: fan out new events, then deliver what is due. Safe to run concurrently."""
    session = session or db.session
    made = fan_out(session)
    counts = deliver_due(session)
    return {"deliveries_created": made, **counts}
