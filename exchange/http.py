"""Request lifecycle: request ids, content-type and body checks, the one commit per request,
idempotency, security headers, CORS and access logging.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import UnsupportedMediaType

from exchange import idempotency, logs, metrics
from exchange.api import API_PREFIX, MAX_BODY_BYTES, is_json_mimetype, request_body, request_json
from exchange.db import db, write_intent
from exchange.errors import Forbidden, NotFound, ValidationFailed, render_domain_error, render_unexpected
from exchange.fields import ONE_TIME_SECRETS_SEEN
from exchange.principal import current_principal

log = logging.getLogger("datafair.http")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Routes that accept non-JSON bodies verify them themselves (Stripe signs raw bytes).
RAW_BODY_PREFIXES = (f"{API_PREFIX}/webhooks/",)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'")


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


# Per-request state kept on `g`. A request inside an already pushed app context (a test holding one,
# a CLI calling the app) shares that context's `g`, so each request starts by clearing these.
REQUEST_STATE = ("principal", "raw_body", "json_body", "idempotency_record_id", "idempotency_replayed",
                 "after_transaction", ONE_TIME_SECRETS_SEEN)


STREAMED_BODIES = "datafair.streamed_bodies"


def stream_body(app: Flask, endpoint: str) -> None:
    """Let the view `endpoint` read its raw body as a stream (a file upload): no JSON parsing, no
    1 MiB limit here; the view applies its own limit while it reads."""
    app.extensions.setdefault(STREAMED_BODIES, set()).add(endpoint)


SUSPENSION_EXEMPT = "datafair.suspension_exempt"


def exempt_from_suspension(app: Flask, endpoint: str) -> None:
    """Let the view `endpoint` decide itself what a member of a suspended organization gets (a
    use of bought data, refused and logged by its service with the reason), instead of the kernel's
    blanket 403 on writes."""
    app.extensions.setdefault(SUSPENSION_EXEMPT, set()).add(endpoint)


def before_request() -> Response | None:
    for key in REQUEST_STATE:
        g.pop(key, None)
    g.request_id = request.headers.get("X-Request-Id", "")[:64] or secrets.token_hex(8)
    g.started = time.perf_counter()
    write_intent.set(request.method not in SAFE_METHODS)
    _refuse_nul_in_url()
    if request.url_rule is None:
        pass  # no route matches: the answer is 404 (or 405), whatever the body
    elif request.endpoint in current_app.extensions.get(STREAMED_BODIES, ()):
        pass  # the view streams its raw body itself, under its own size limit (file uploads)
    elif request.method in BODY_METHODS and _has_body() and request.path.startswith(RAW_BODY_PREFIXES):
        request_body()  # the same limit for raw bodies (the Stripe webhook): 413 past MAX_BODY_BYTES
    elif request.method in BODY_METHODS and _has_body() and request.path.startswith(API_PREFIX):
        # The API speaks JSON; the console's forms (outside API_PREFIX) parse their own bodies.
        if not is_json_mimetype(request.mimetype):
            raise UnsupportedMediaType("Send the body as JSON with 'Content-Type: application/json'.")
        # Over MAX_BODY_BYTES (any transfer encoding) -> 413; malformed JSON -> 400. What the body says
        # (NUL characters included) is validated when the view parses it, after authorization.
        request_json()
    if request.method not in SAFE_METHODS and request.path.startswith(API_PREFIX):
        # Claim the idempotency key before the request's own transaction starts (SQLite has one
        # write lock; a second connection must never wait on the request's own transaction).
        replay = idempotency.begin() if idempotency.applies() else None
        if replay is not None:
            return replay
        if request.headers.get("Authorization"):
            principal = current_principal(required=False)
            # End the lookup's transaction so per-organization rate limits can write before the view's.
            db.session.rollback()
            if (principal is not None and principal.is_suspended
                    and not request.path.startswith(f"{API_PREFIX}/auth/")
                    and request.endpoint not in current_app.extensions.get(SUSPENSION_EXEMPT, ())):
                raise Forbidden("Your organization is suspended: it may read its data but not write.",
                                next_step="an operator must reinstate your organization first")
    return None


def _refuse_nul_in_url() -> None:
    """A NUL in an id or query value would reach PostgreSQL as a 500 (it refuses NUL in text)."""
    if request.view_args and any("\x00" in str(v) for v in request.view_args.values()):
        raise NotFound("The requested resource does not exist or is not visible to you.")
    bad = sorted({k.replace("\x00", "\\u0000") for k, v in request.args.items(multi=True)
                  if "\x00" in k or "\x00" in v})
    if bad:
        raise ValidationFailed("NUL characters are not allowed in query parameters: " + ", ".join(bad),
                               errors={k: ["NUL characters are not allowed."] for k in bad})


def after_request(response: Response) -> Response:
    if not g.pop("idempotency_replayed", False):
        response = _finish_transaction(response)
    _decorate(response)
    return response


def _finish_transaction(response: Response) -> Response:
    """The request owns the transaction: commit on success, roll back otherwise.

    A success's idempotent response is written into the transaction that is current now (a request
    may have committed before, e.g. around a provider call), so it commits with the effect; a
    refusal's is written after the rollback, in its own transaction (`exchange.idempotency`)."""
    session = db.session
    claim = idempotency.claimed()
    if response.status_code < 400:
        try:
            if claim is not None:
                idempotency.store_success(session, claim, response)
            session.commit()
        except idempotency.TakenOver as exc:
            session.rollback()
            response = render_domain_error(exc)
        except Exception as exc:
            session.rollback()
            response = render_unexpected(exc)
    else:
        session.rollback()
    for fn in g.pop("after_transaction", []):
        try:
            fn()
        except Exception:
            log.exception("after-transaction bookkeeping failed (request_id=%s)", g.get("request_id"))
    if claim is not None and response.status_code >= 400:
        try:
            idempotency.settle(claim, response)
        except Exception:
            log.exception("could not settle the Idempotency-Key (request_id=%s)", g.get("request_id"))
    return response


def _decorate(response: Response) -> None:
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    docs = request.path.startswith(f"{API_PREFIX}/docs")
    response.headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else API_CSP)
    if docs and request.path.startswith(f"{API_PREFIX}/docs/static/"):
        response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["X-Request-Id"] = g.get("request_id", "")
    response.headers.pop("Server", None)
    if request.is_secure:
        # Over HTTPS (directly or behind a trusted proxy's X-Forwarded-Proto), browsers keep to HTTPS.
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    origin = request.headers.get("Origin")
    allowed = _cors_origins()
    if origin and origin in allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Idempotency-Key"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE, OPTIONS"
        response.headers["Access-Control-Expose-Headers"] = "Idempotent-Replayed, Retry-After, X-Request-Id"
    started = g.get("started")
    if started is not None:
        elapsed = time.perf_counter() - started
        principal = g.get("principal")
        metrics.observe_request(elapsed, response.status_code)
        log.info("request", extra={
            "request_id": g.get("request_id"), "method": request.method, "path": logs.redact_path(request.path),
            "route": request.url_rule.rule if request.url_rule is not None else None,
            "status": response.status_code, "latency_ms": round(elapsed * 1000, 2),
            "org_id": getattr(principal, "org_id", None),
        })


def _cors_origins() -> list[str]:
    return current_app.config.get("CORS_ORIGINS") or []


def teardown(_exc: Any) -> None:
    write_intent.set(True)


def init_app(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.before_request(before_request)
    app.after_request(after_request)
    app.teardown_request(teardown)
