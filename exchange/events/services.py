"""Webhook endpoints: registration (SSRF-checked URL, secret shown once), listing, deletion, deliveries.

The HMAC secret must be usable to sign each delivery, so it is stored encrypted (AES-GCM under a key
derived by HKDF-SHA256 from DATAFAIR_SECRET_KEY, the endpoint id as associated data) rather than
hashed; it is shown in the creation response only.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from exchange.api import LogOrder
from exchange.db import new_id, utcnow
from exchange.errors import Conflict, NotFound, field_error
from exchange.events.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from exchange.events.outbox import OutboxEvent, event_types
from exchange.events.states import DELIVERY_TRANSITIONS
from exchange.fields import Facts
from exchange.identity import audit
from exchange.netguard import PublicURL, check_outbound_url
from exchange.principal import Principal
from exchange.states import load_for_update, transition_many

_BLOB_VERSION = b"\x01"
_NONCE_BYTES = 12


class WebhookSecretError(RuntimeError):
    """An endpoint's secret cannot be decrypted (DATAFAIR_SECRET_KEY changed)."""


def _aead() -> AESGCM:
    secret = current_app.config["SECRET_KEY"].encode()
    key = HKDF(algorithm=SHA256(), length=32, salt=b"datafair/webhooks",
               info=b"datafair/webhook-secret/aes-256-gcm/v1").derive(secret)
    return AESGCM(key)


def _seal(endpoint_id: str, secret: str) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return _BLOB_VERSION + nonce + _aead().encrypt(nonce, secret.encode(), endpoint_id.encode())


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    """The endpoint's HMAC secret in clear (for signing). Raises WebhookSecretError."""
    blob = bytes(endpoint.secret_encrypted)
    if blob[:1] != _BLOB_VERSION:
        raise WebhookSecretError(f"webhook endpoint {endpoint.id}: unknown secret format")
    try:
        raw = _aead().decrypt(blob[1:1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES:], endpoint.id.encode())
    except InvalidTag:
        raise WebhookSecretError(f"webhook endpoint {endpoint.id}: its secret was encrypted under another "
                                 "DATAFAIR_SECRET_KEY; delete and register the endpoint again") from None
    return raw.decode()


def check_target(url: str) -> PublicURL:
    """The URL rules of this deployment: https only in production; private targets only when
    DATAFAIR_WEBHOOK_ALLOW_PRIVATE=1. Raises ValidationFailed naming `url`."""
    config = current_app.config
    return check_outbound_url(url, allow_private=bool(config.get("WEBHOOK_ALLOW_PRIVATE")),
                            require_https=config["DATAFAIR_ENV"] == "production")


def create_endpoint(session: Session, *, url: str, events: list[str],
                    actor: Principal) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint of the caller's (verified) organization; returns it and its secret.

    Raises Forbidden (organization not verified), ValidationFailed (URL refused, unknown event type),
    Conflict (too many endpoints).
    """
    actor.require_verified("webhook registration")
    unknown = sorted(set(events) - event_types())
    if unknown:
        raise field_error("events", "unknown event types: " + ", ".join(unknown))
    url = check_target(url).url  # stored normalized: what was checked is what is called
    limit = int(current_app.config.get("WEBHOOK_MAX_ENDPOINTS", 20))
    count = session.execute(select(func.count()).select_from(WebhookEndpoint).where(
        WebhookEndpoint.org_id == actor.org_id, WebhookEndpoint.deleted_at.is_(None))).scalar_one()
    if count >= limit:
        raise Conflict(f"An organization may register at most {limit} webhook endpoints; delete one first.",
                       next_step="delete one of your organization's webhook endpoints first")
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint_id = new_id("whe")
    endpoint = WebhookEndpoint(id=endpoint_id, org_id=actor.org_id, url=url,
                               events=sorted(dict.fromkeys(events)), created_by=actor.user_id,
                               secret_encrypted=_seal(endpoint_id, secret),
                               created_at=datetime.now(UTC))  # to the microsecond: see outbox.emit
    session.add(endpoint)
    session.flush()
    audit.record(session, actor, "webhook_endpoint.created", "webhook_endpoint", endpoint.id,
                 org_id=actor.org_id, url=url, events=endpoint.events)
    return endpoint, secret


def list_endpoints(*, actor: Principal) -> Select:
    """The caller's organization's endpoints (not deleted), oldest first."""
    return (select(WebhookEndpoint)
            .where(WebhookEndpoint.org_id == actor.org_id, WebhookEndpoint.deleted_at.is_(None))
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id))


def get_endpoint(session: Session, *, endpoint_id: str, actor: Principal,
                 for_update: bool = False) -> WebhookEndpoint:
    """One endpoint of the caller's organization (row-locked with `for_update`). Raises NotFound for
    any other (or a deleted one)."""
    endpoint = load_for_update(session, WebhookEndpoint, endpoint_id) if for_update else session.get(
        WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.org_id != actor.org_id or endpoint.deleted_at is not None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def delete_endpoint(session: Session, *, endpoint_id: str, actor: Principal) -> WebhookEndpoint:
    """Stop sending to an endpoint: its undelivered deliveries are cancelled; history is kept.

    Raises NotFound, Forbidden (organization suspended is refused earlier, by the request hook).
    """
    # Locked: of concurrent deletes one deletes, the others find it deleted (404), one audit record.
    endpoint = get_endpoint(session, endpoint_id=endpoint_id, actor=actor, for_update=True)
    endpoint.deleted_at = utcnow()
    # Its pending deliveries, in one compare-and-set: a worker may be recording one of them right now.
    transition_many(session, WebhookDelivery, DELIVERY_TRANSITIONS, DeliveryStatus.CANCELLED,
                    where=[WebhookDelivery.endpoint_id == endpoint.id], actor=actor, what="Webhook delivery",
                    values={"next_attempt_at": None})
    audit.record(session, actor, "webhook_endpoint.deleted", "webhook_endpoint", endpoint.id, org_id=actor.org_id)
    session.flush()
    return endpoint


# Deliveries' creation order: their creation time, ties (one fan-out's batch) broken by id.
DELIVERY_ORDER = LogOrder(id=WebhookDelivery.id, keys=(WebhookDelivery.created_at, WebhookDelivery.id))


def list_deliveries(session: Session, *, endpoint_id: str, actor: Principal) -> Select:
    """The deliveries of one of the caller's endpoints, newest first (a select of rows)."""
    endpoint = get_endpoint(session, endpoint_id=endpoint_id, actor=actor)
    return (select(WebhookDelivery, OutboxEvent.event_type)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()))


def delivery_shown(row: Any) -> Facts:
    """A delivery with the type of its event (a row of `list_deliveries`)."""
    delivery, event_type = row
    return Facts(delivery, event_type=event_type)
