"""The HTTP kernel: flask-smorest Api and Blueprint tuned for problem+json, strict JSON parsing,
local Swagger UI, pagination and the documentation of error responses.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import flask_smorest
import swagger_ui_bundle
from apispec import BasePlugin
from flask import Flask, g, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema, fields
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from exchange.db import db, write_intent
from exchange.errors import PROBLEM_JSON, ValidationFailed, field_error, render_http_exception
from exchange.fields import CURSOR_LIMIT, cursor_requested
from exchange.principal import Principal, current_principal
from exchange.ratelimit import WRITE_FLOW_ATTR, limited

MAX_JSON_DEPTH = 32
MAX_BODY_BYTES = 1024 * 1024
API_PREFIX = "/api/v1"


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    request_id = fields.String()
    rule = fields.String()
    next_step = fields.String(metadata={
        "description": "What would unblock the request, in plain words: the missing step or whom to ask "
                       "(every 403 and 409 carries one; `detail` ends with it too)."})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth(value: Any) -> int:
    """Nesting depth without recursion (a hostile body cannot blow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, d)
            if deepest > MAX_JSON_DEPTH:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, d + 1) for c in children if isinstance(c, dict | list))
    return deepest


def nul_paths(value: Any, limit: int = 20) -> list[str]:
    """Dotted paths of the strings (values or keys) holding a NUL character, without recursion.

    PostgreSQL refuses NUL in text, SQLite stores it: refused up front so both answer 422, not a 500.
    """
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack and len(found) < limit:
        node, path = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                found.append(path or "body")
        elif isinstance(node, dict):
            for k, v in node.items():
                sub = f"{path}.{k}" if path else str(k)
                if "\x00" in k:
                    found.append(sub.replace("\x00", "\\u0000"))
                else:
                    stack.append((v, sub))
        elif isinstance(node, list):
            stack.extend((v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(node))
    return sorted(found)


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range (not a finite number)")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on duplicates (first or last wins): what we validate must be what others read.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def strict_json_loads(raw: bytes | str) -> Any:
    """Parse JSON refusing NaN/Infinity (also as 1e400), invalid UTF-8, duplicate keys and deep nesting."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                           object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


class JSONProvider(DefaultJSONProvider):
    ensure_ascii = False
    sort_keys = False
    compact = True

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_json_loads(s)


def is_json_mimetype(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _too_large() -> RequestEntityTooLarge:
    return RequestEntityTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")


def request_body() -> bytes:
    """The raw request body, read once and at most MAX_BODY_BYTES of it: 413 past the limit, whatever
    the transfer encoding.

    werkzeug refuses a declared Content-Length over `max_content_length`, but a chunked body (no
    Content-Length; the server de-chunks it and sets `wsgi.input_terminated`) it only stops reading
    at the limit, silently: the view would see the first mebibyte as the whole body. So the stream is
    read here up to one byte past the limit, and that byte means 413. `request.get_data()` then
    answers the same bytes.
    """
    if "raw_body" not in g:
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            raise _too_large()
        # Chunked: the server ends the stream, read it directly (bounded below). Otherwise werkzeug's
        # stream, bounded by Content-Length (empty when the length is unknown and nobody ends it).
        environ = request.environ
        terminated = length is None and environ.get("wsgi.input_terminated")
        stream = environ["wsgi.input"] if terminated else request.stream
        # A declared length is read exactly (one more read could trip werkzeug's own limit); an
        # undeclared one up to the first byte past the limit.
        limit = length if length is not None else MAX_BODY_BYTES + 1
        chunks, size = [], 0
        while size < limit:
            chunk = stream.read(min(64 * 1024, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        g.raw_body = b"".join(chunks)
        request._cached_data = g.raw_body  # what request.get_data() returns from now on
    return g.raw_body


def request_json() -> Any:
    """The request body parsed once, strictly; `core.missing` when there is none."""
    if "json_body" not in g:
        data = request_body()
        if not data.strip():
            g.json_body = core.missing
        else:
            try:
                g.json_body = strict_json_loads(data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise BadRequest(f"Malformed JSON body: {exc}") from None
    return g.json_body


def refuse_nul(body: Any) -> None:
    """ValidationFailed (422) naming every string of the body that holds a NUL character."""
    bad = nul_paths(body) if body is not core.missing else []
    if bad:
        raise ValidationFailed("NUL characters are not allowed in strings: " + ", ".join(bad),
                               errors={p: ["NUL characters are not allowed."] for p in bad})


class Parser(FlaskParser):
    """webargs parser reading the strictly parsed body (the stdlib parse accepts NaN), without NUL
    characters (refused here, when the view parses the body: after its authorization check)."""

    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_mimetype(req.mimetype):
            return core.missing
        body = request_json()
        refuse_nul(body)
        return body


def _requires_auth(view: Any) -> bool:
    return requires_token(getattr(view, "_apidoc", {}).get("manual_doc", {}).get("security"))


# check(session, principal, **view_args): raises Forbidden/NotFound; reads only.
AuthorizationCheck = Callable[..., None]
AUTHORIZE_ATTR = "_datafair_authorize"


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def add_url_rule(self, rule: str, endpoint: str | None = None, view_func: Any = None,
                     provide_automatic_options: bool | None = None, **kwargs: Any) -> None:
        """Operations documented with a security requirement authenticate before anything else: a
        request without a valid token is a 401 whatever its body, never a 422 that describes the schema.
        Then the per-organization write limit (`exchange.ratelimit.limit_writes`: every attempt
        counts) and the operation's declared authorization check (`authorize`) run, still before the
        body is parsed: a caller who may never do the operation gets its 403 (or 404), not a list of
        fields."""
        if callable(view_func) and not isinstance(view_func, type):
            check = getattr(view_func, AUTHORIZE_ATTR, None)
            flow = getattr(view_func, WRITE_FLOW_ATTR, None)
            if check is not None:
                if not _requires_auth(view_func):
                    raise TypeError(f"{rule}: an authorization check needs an operation that requires a token")
                view_func = _authorized(view_func, check)
            if flow is not None:
                view_func = limited(view_func, flow)
            if _requires_auth(view_func):
                view_func = _authenticated(view_func)
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **kwargs)

    def authorize(self, check: AuthorizationCheck) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare the operation's authorization check, run after authentication and before the body
        is parsed: `check(session, principal, **view_args)` raises Forbidden (or NotFound for an object
        the caller may not see). The check is a service's function that the service itself calls too
        (the rule holds on every path); this only moves the refusal ahead of validation. Place it
        under `@blp.route`."""

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            setattr(func, AUTHORIZE_ATTR, check)
            return func

        return decorator

    def problems(self, *codes: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Document the problem+json responses an operation can return."""

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            for code in codes:
                func = self.alt_response(
                    code,
                    schema=ProblemSchema,
                    description=HTTPStatus(code).phrase,
                    content_type=PROBLEM_JSON,
                )(func)
            return func

        return decorator


# Statuses the kernel itself answers before or around any view (see exchange.http and exchange.errors),
# documented on every operation they can reach so the document is complete without a catch-all
# `default` response (which would make every undocumented status "conform").
BODY_METHODS = frozenset({"post", "put", "patch"})
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
NO_SUSPENSION_CHECK_PREFIXES = (f"{API_PREFIX}/auth/",)
NO_DATABASE = "x-no-database"


def kernel_statuses(path: str, method: str) -> set[int]:
    """What the request hooks and the error handlers can answer for `method path` whatever its view does:
    422 (NUL in the query string), 503 (database unavailable), 404 (a NUL in a path value), and
    for writes 401/403 (a bad token, a suspended organization), 409 (a unique constraint lost to a
    race; an Idempotency-Key in flight), 400/413/415 (body checks) and 422 (an Idempotency-Key reused)."""
    method = method.lower()
    codes = {422, 503}
    if "{" in path:
        codes.add(404)
    if method in WRITE_METHODS:
        codes |= {401, 409}
        if not path.startswith(NO_SUSPENSION_CHECK_PREFIXES):
            codes.add(403)
    if method in BODY_METHODS:
        codes |= {400, 413, 415}
    return codes


class KernelProblemsPlugin(BasePlugin):
    """apispec plugin: adds the kernel's problem responses to every operation that lacks them."""

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        for method, operation in (operations or {}).items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            codes = kernel_statuses(path or "", method)
            if operation.pop(NO_DATABASE, False):
                codes.discard(503)
            for code in sorted(codes):
                responses.setdefault(str(code), {
                    "description": HTTPStatus(code).phrase,
                    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                })


def _authenticated(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current_principal()
        return view(*args, **kwargs)

    return wrapper


def _authorized(view: Callable[..., Any], check: AuthorizationCheck) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        principal: Principal = current_principal()
        # A read in its own short transaction: a deferred BEGIN (SQLite takes no write lock for it),
        # ended before the view, whose writes then start the request's transaction as usual (and the
        # per-organization rate limits, counted in their own transaction, never wait on this one).
        token = write_intent.set(False)
        try:
            check(db.session, principal, **kwargs)
        finally:
            db.session.rollback()
            write_intent.reset(token)
        return view(*args, **kwargs)

    return wrapper


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema
    # No catch-all `default` response: every status an operation answers is documented by itself.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def handle_http_exception(self, error: HTTPException) -> Any:
        return render_http_exception(error)

    def _register_pagination_header(self) -> None:
        # Lists paginate in the body (`paginate` below: items, total, page, per_page), never with
        # flask-smorest's X-Pagination header: registering it would leave its PaginationMetadata
        # schema unused in the document.
        pass


def init_api(app: Flask) -> Api:
    app.config.setdefault("API_TITLE", "datafair")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", API_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", f"{API_PREFIX}/docs/static/")
    app.config.setdefault("API_SPEC_OPTIONS", {
        # Relative: the document's own origin (`make run`: http://127.0.0.1:8000; a deployment: its host),
        # so Swagger UI's "Try it out" calls the server that served it. Paths carry the /api/v1 prefix.
        "servers": [{"url": "/", "description": "The server that serves this document"}],
        "info": {
            "contact": {"name": "datafair maintainers", "email": "maintainers@datafair.invalid"},
            # The repository ships no LICENSE file: no licence is granted.
            "license": {"name": "Proprietary"},
            "description": (
                "datafair: the Greater Bay Area data exchange. Errors are RFC 9457 problem+json; "
                "money is integer minor units in CNY, HKD or MOP; times are UTC with a Z suffix. "
                "POSTs honour an `Idempotency-Key` header: a replay is the first response byte for byte, "
                "except that fields marked `x-one-time-secret` (shown once) are null in it. Money sums "
                "(statistics' volumes) are exact integers that may exceed 2^53-1."
            ),
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    })
    api = Api(app, spec_kwargs={"extra_plugins": [KernelProblemsPlugin()]})
    static_dir = swagger_ui_bundle.swagger_ui_path

    @app.get(f"{API_PREFIX}/docs/static/<path:filename>")
    def swagger_static(filename: str) -> Any:
        return send_from_directory(static_dir, filename, max_age=86400)

    return api


AUTH = [{"bearerAuth": []}]
# A token is accepted (and changes what is shown) but not required.
OPTIONAL_AUTH = [{"bearerAuth": []}, {}]


def requires_token(security: list[dict[str, Any]] | None) -> bool:
    """Whether an operation's OpenAPI security requirement makes a token mandatory."""
    return bool(security) and all(requirement for requirement in security)


def paginate(session: Session, stmt: Select, *, page: int, per_page: int,
             scalars: bool = True) -> dict[str, Any]:
    """Run one page of `stmt` and its total: `{"items", "total", "page", "per_page"}`."""
    total = session.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    result = session.execute(stmt.limit(per_page).offset((page - 1) * per_page))
    items = list(result.scalars().all() if scalars else result.all())
    return {"items": items, "total": total, "page": page, "per_page": per_page}


@dataclass(frozen=True)
class LogOrder:
    """How an append-only log pages by cursor: `id` is the column the API shows as each item's id (the
    cursor), `keys` a total order in which every new row sorts after every existing one (the log's
    append order: a sequence number, or a creation time with the id to break ties)."""

    id: ColumnElement[Any]
    keys: tuple[ColumnElement[Any], ...]


def _past(keys: Sequence[ColumnElement[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    # (k1, k2, ...) > (v1, v2, ...) written out: every engine, each value bound with its column's type.
    return or_(*(and_(*(k == v for k, v in zip(keys[:i], values[:i], strict=True)), key > values[i])
                 for i, key in enumerate(keys)))


def cursor_page(session: Session, stmt: Select, *, order: LogOrder, after: Any, limit: int | None,
                scalars: bool = True) -> dict[str, Any]:
    """The items of `stmt` after the one whose id is `after` (from the first without it), in the log's
    append order, at most `limit`: `{"items", "next", "limit"}`, `next` being the last item's id when
    more follow, else None. `stmt`'s own filters decide what may be seen (its ORDER BY is replaced);
    no COUNT: two statements with `after`, one without.

    Raises ValidationFailed naming `after` when no item of `stmt` has that id (unknown, or not the
    caller's to see: the same answer for both).
    """
    limit = limit or CURSOR_LIMIT
    base = stmt.order_by(None)
    if after is not None:
        start = session.execute(base.with_only_columns(*order.keys).where(order.id == after).limit(1)).first()
        if start is None:
            raise field_error("after", "not the id of an item of this list: pass the `next` of a previous page")
        base = base.where(_past(order.keys, tuple(start)))
    rows = session.execute(base.add_columns(order.id).order_by(*order.keys).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [row[0] if scalars else tuple(row[:-1]) for row in rows]
    return {"items": items, "next": rows[-1][-1] if more else None, "limit": limit}


def log_page(session: Session, stmt: Select, args: dict[str, Any], *, order: LogOrder,
             scalars: bool = True) -> dict[str, Any]:
    """An append-only log's list from its loaded `LogPageArgsSchema` arguments: by cursor when `after`
    or `limit` was given (`cursor_page`), else by page number (`paginate`), over the same statement."""
    if cursor_requested(args):
        return cursor_page(session, stmt, order=order, after=args.get("after"), limit=args.get("limit"),
                           scalars=scalars)
    return paginate(session, stmt, page=args["page"], per_page=args["per_page"], scalars=scalars)
