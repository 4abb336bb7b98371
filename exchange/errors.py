"""Domain errors and the one place that renders every error as RFC 9457 problem+json.

Services raise the classes below; routes never catch to translate. Marshmallow/webargs validation
errors, werkzeug HTTP errors, unknown routes and unexpected exceptions all leave through `problem()`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, json
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger("datafair.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://datafair.example/problems/"


class DomainError(Exception):
    """Base of every business-rule failure; `status` is the HTTP status it maps to.

    `next_step` says in plain words what would unblock the request (the missing step, or whom to
    ask): the renderer adds it to the problem as `next_step` and to `detail`. Every 403 and 409
    carries one.
    """

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        rule: str | None = None,
        next_step: str | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers) if headers else {}
        self.rule = rule
        self.next_step = next_step


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class InvalidTransition(Conflict):
    slug, title = "invalid-transition", "Invalid state transition"


class ValidationFailed(DomainError):
    status, slug, title = 422, "validation-failed", "Validation failed"


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Content too large"


class RateLimited(DomainError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


def field_error(field: str, message: str, detail: str | None = None) -> ValidationFailed:
    """Shortcut for a 422 naming one field."""
    return ValidationFailed(detail or f"{field}: {message}", errors={field: [message]})


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    slug: str | None = None,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    next_step: str | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or _slug_for(status)),
        "title": title,
        "status": status,
        "detail": with_next_step(detail or title, next_step),
    }
    if next_step:
        body["next_step"] = next_step
    if errors:
        body["errors"] = errors
    request_id = getattr(g, "request_id", None) if g else None
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    resp = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def with_next_step(detail: str, next_step: str | None) -> str:
    """`detail` followed by the next step as a sentence, unless the detail already says it."""
    if not next_step or next_step.lower().rstrip(".") in detail.lower():
        return detail
    detail = detail.rstrip()
    sentence = next_step[0].upper() + next_step[1:]
    return f"{detail}{'' if detail.endswith(('.', '!', '?')) else '.'} {sentence.rstrip('.')}."


def _slug_for(status: int) -> str:
    return {
        400: "bad-request",
        401: "unauthorized",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        409: "conflict",
        413: "payload-too-large",
        415: "unsupported-media-type",
        422: "validation-failed",
        429: "rate-limited",
        500: "internal-error",
        503: "service-unavailable",
    }.get(status, "error")


def flatten_webargs_errors(messages: Any) -> dict[str, list[str]]:
    """webargs nests errors by location (`{"json": {...}}`); clients want `{"field.sub": [...]}`."""
    out: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                key = str(k)
                if key == "_schema":
                    key = ""
                walk(f"{prefix}.{key}" if prefix and key else (prefix or key), v)
        elif isinstance(value, list | tuple) and value and all(isinstance(x, str) for x in value):
            out.setdefault(prefix or "body", []).extend(value)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(f"{prefix}.{i}" if prefix else str(i), v)
        else:
            out.setdefault(prefix or "body", []).append(str(value))

    if isinstance(messages, Mapping) and set(messages) <= {"json", "query", "form", "headers", "view_args"}:
        for loc_messages in messages.values():
            walk("", loc_messages)
    else:
        walk("", messages)
    return out


def render_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    if status == 422 and ("messages" in data or "errors" in data):
        errors = flatten_webargs_errors(data.get("errors") or data.get("messages"))
        summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in list(errors.items())[:5])
        return problem(422, "Validation failed", summary or "Validation failed", errors=errors)
    headers = dict(data.get("headers") or {})
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    if status == 429:
        headers.setdefault("Retry-After", "60")
    title = error.name
    detail = data.get("message") or error.description or title
    if status == 404 and not data.get("message"):
        detail = "The requested resource does not exist or is not visible to you."
    return problem(status, title, detail, headers=headers)


def render_domain_error(error: DomainError) -> Response:
    extra = {"rule": error.rule} if error.rule else None
    return problem(
        error.status, error.title, error.detail, slug=error.slug, errors=error.errors,
        headers=error.headers, extra=extra, next_step=error.next_step,
    )


# SQLSTATEs of a wait cut short by the per-transaction limits (`exchange.db`): lock_not_available
# (lock_timeout) and query_canceled (statement_timeout).
LOCK_TIMEOUT_SQLSTATES = frozenset({"55P03", "57014"})
LOCK_RETRY_AFTER_SECONDS = 1
# deadlock_detected and serialization_failure: PostgreSQL aborted this transaction to let another
# finish; the request changed nothing and a retry normally succeeds.
ABORTED_SQLSTATES = frozenset({"40P01", "40001"})


def is_lock_timeout(error: BaseException) -> bool:
    """A database wait for a lock (or a statement) that ran out of time: PostgreSQL's lock or
    statement timeout, SQLite's busy timeout ("database is locked")."""
    if not isinstance(error, DBAPIError):
        return False
    orig = getattr(error, "orig", None)
    if getattr(orig, "sqlstate", None) in LOCK_TIMEOUT_SQLSTATES:
        return True
    return isinstance(error, OperationalError) and "database is locked" in str(orig).lower()


def render_unexpected(error: Exception) -> Response:
    if isinstance(error, DBAPIError) and getattr(getattr(error, "orig", None), "sqlstate", None) in ABORTED_SQLSTATES:
        log.warning("transaction aborted by the database (request_id=%s): %s", getattr(g, "request_id", "-"),
                    error.orig.sqlstate)
        return problem(503, "Service unavailable",
                       "The database aborted this request to resolve a conflict with a concurrent one "
                       "(a deadlock); nothing was changed. Retry the request in a moment.",
                       slug="transaction-aborted", headers={"Retry-After": str(LOCK_RETRY_AFTER_SECONDS)})
    if is_lock_timeout(error):
        # The request's transaction is rolled back by the caller: nothing it did is kept.
        log.warning("lock wait timed out (request_id=%s): %s", getattr(g, "request_id", "-"),
                    getattr(getattr(error, "orig", None), "sqlstate", None) or "database is locked")
        return problem(503, "Service unavailable",
                       "Another request is changing the same data and this one could not get its lock in "
                       "time; nothing was changed. Retry the request in a moment.",
                       slug="lock-timeout", headers={"Retry-After": str(LOCK_RETRY_AFTER_SECONDS)})
    if isinstance(error, OperationalError | DBAPIError) and _is_connection_error(error):
        log.warning("database unavailable: %s", error.__class__.__name__)
        return problem(503, "Service unavailable", "The database is unavailable; try again shortly.",
                       headers={"Retry-After": "5"})
    if isinstance(error, IntegrityError):
        log.info("integrity conflict: %s", error.orig)
        return problem(409, "Conflict", "The request conflicts with existing data (a duplicate or a race).",
                       next_step="reload the object and check whether one with the same values already "
                                 "exists; if not, another request changed it at the same time: retry")
    log.exception("unhandled error (request_id=%s)", getattr(g, "request_id", "-"))
    return problem(500, "Internal server error",
                   "An unexpected error occurred; it has been logged with the request id.")


def _is_connection_error(error: DBAPIError) -> bool:
    if getattr(error, "connection_invalidated", False):
        return True
    text = str(getattr(error, "orig", error)).lower()
    return any(s in text for s in (
        "connection", "could not connect", "server closed", "terminating", "timeout expired",
        "unable to open database",
    ))


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, render_domain_error)
    app.register_error_handler(HTTPException, render_http_exception)
    app.register_error_handler(Exception, render_unexpected)
