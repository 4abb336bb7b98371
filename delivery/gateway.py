"""The API gateway: the exchange fronts a vendor's API for the buyers of an `api` product.

Control plane (services with the request's session): the vendor's upstream (`base_url`, a secret
header sealed at rest, a timeout), the buyer's keys (`dfk_...`, shown once, stored as sha256, at
most five live).

Data plane (`call`): every call is authorized at that moment (the key, the entitlement's verdict,
the product), counted exactly and forwarded with no database transaction open:

1. authorize and snapshot what the call needs, then end the read transaction;
2. reserve one call in a short transaction of its own (a conditional UPDATE: a quota of N never
   serves N+1, across nodes, without Redis);
3. forward to the checked address of `base_url` + the path as received (never leaving it), the
   vendor's header added and the client's credentials never forwarded, redirects relayed as they are;
4. an upstream that fails, times out or answers 500+ gives the call back (a short transaction); a
   counted call is logged, and the first one delivers the trade.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import urllib3
from flask import current_app
from prometheus_client import Counter, Histogram
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from delivery import accesses, entitlements, evidence
from delivery.models import ApiKey, ApiUpstream, Entitlement, UsagePeriod
from delivery.states import AccessKind, EntitlementStatus
from exchange import sealing
from exchange.db import db, upsert, utcnow
from exchange.errors import Conflict, DomainError, Forbidden, NotFound, RateLimited, Unauthorized
from exchange.identity import audit
from exchange.metrics import PROCESS_REGISTRY
from exchange.netguard import PublicURL, check_outbound_url, pinned_pool
from exchange.principal import Principal
from exchange.ratelimit import consume
from listings import services as listings
from trading import settlement
from trading.models import Trade

# Per process (multiprocess mode under gunicorn aggregates the workers), shown by /metrics.
CALLS = Counter("datafair_gateway_calls", "Gateway calls by the status answered", ["status"], registry=PROCESS_REGISTRY)
ADDED_SECONDS = Histogram("datafair_gateway_added_seconds", "Time the gateway adds to the upstream's answer",
                          registry=PROCESS_REGISTRY,
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
METERED = Counter("datafair_gateway_calls_metered", "Calls counted against an entitlement", registry=PROCESS_REGISTRY)
PERIODS_CLOSED = Counter("datafair_usage_periods_closed", "Usage periods closed by the sweep",
                         registry=PROCESS_REGISTRY)

KEY_PREFIX = "dfk_"
MAX_LIVE_KEYS = 5
MAX_REQUEST_BYTES = 10 << 20
CHUNK = 64 << 10
SEAL_PURPOSE = "api-upstream-header"
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade"})
# Never sent upstream, whatever the client sends: its credentials and what the gateway sets itself.
NOT_FORWARDED = HOP_BY_HOP | {"authorization", "cookie", "host", "content-length", "x-forwarded-for",
                              "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "forwarded"}
NOT_RELAYED = HOP_BY_HOP | {"set-cookie", "set-cookie2", "content-length", "server", "date"}


class BadGateway(DomainError):
    status, slug, title = 502, "bad-gateway", "Bad gateway"


class GatewayTimeout(DomainError):
    status, slug, title = 504, "gateway-timeout", "Gateway timeout"


class BadPath(DomainError):
    status, slug, title = 400, "bad-request", "Bad request"


# -- the vendor's upstream -----------------------------------------------------------------------------
def _check(url: str, field: str = "base_url") -> PublicURL:
    config = current_app.config
    return check_outbound_url(url, allow_private=bool(config.get("ALLOW_PRIVATE_URLS")),
                              require_https=config["DATAFAIR_ENV"] == "production", field=field)


def set_upstream(session: Session, *, product_id: str, base_url: str, auth_header: dict[str, str] | None,
                 timeout_ms: int, actor: Principal) -> ApiUpstream:
    """The owner sets its product's upstream (checked like a webhook URL; the header value sealed).
    NotFound/Forbidden as for the product; Conflict for a product not delivered by API."""
    product = listings.owned_product(session, product_id=product_id, actor=actor)
    if product.delivery_mode != "api":
        raise Conflict(f"This product is delivered by {product.delivery_mode}; an upstream is for `api` products.",
                       next_step="set a sandbox policy or publish a release instead, as this product's delivery mode "
                                 "asks")
    target = _check(base_url)
    # An upsert, then the row locked: two first PUTs racing must not both INSERT it.
    now = utcnow()
    session.execute(upsert(session.get_bind(), ApiUpstream.__table__,
                           {"product_id": product.id, "base_url": target.url, "timeout_ms": timeout_ms,
                            "updated_by": actor.user_id, "updated_at": now, "created_at": now},
                           index_elements=["product_id"]))
    row = session.execute(select(ApiUpstream).where(ApiUpstream.product_id == product.id).with_for_update()
                          .execution_options(populate_existing=True)).scalar_one()
    row.base_url, row.timeout_ms, row.updated_by = target.url, timeout_ms, actor.user_id
    if auth_header:
        row.auth_header_name = auth_header["name"]
        row.auth_header_secret = sealing.seal(SEAL_PURPOSE, product.id, auth_header["value"])
    else:
        row.auth_header_name = row.auth_header_secret = None
    audit.record(session, actor, "api_upstream.set", "product", product.id, base_url=target.url,
                 auth_header=auth_header["name"] if auth_header else None, timeout_ms=timeout_ms)
    session.flush()
    return row


# -- the buyer's keys ------------------------------------------------------------------------------
def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _buyer_admin(session: Session, entitlement_id: str, actor: Principal, *, lock: bool = True) -> Entitlement:
    ent = entitlements.visible(session, entitlement_id, actor, lock=lock)
    entitlements.require_buyer_member(ent, actor)
    if not actor.is_admin:
        raise Forbidden("Only an admin of the buying organization manages its API keys.",
                        next_step="ask an admin of your organization to manage the API keys")
    return ent


def check_buyer_admin(session: Session, actor: Principal, *, entitlement_id: str, **_ids: Any) -> None:
    """Whether the actor may manage the entitlement's API keys (an admin of the buying organization):
    Forbidden, NotFound. Reads only."""
    _buyer_admin(session, entitlement_id, actor, lock=False)


def create_key(session: Session, *, entitlement_id: str, label: str, actor: Principal) -> tuple[ApiKey, str]:
    """A new key (returned once in clear) for an `api` entitlement; Conflict past five live keys."""
    ent = _buyer_admin(session, entitlement_id, actor)
    if ent.delivery_mode != "api":
        raise Conflict(f"This entitlement is delivered by {ent.delivery_mode}; API keys are for `api` products.",
                       next_step="use the entitlement's downloads or sandbox queries, as its delivery mode asks")
    live = session.execute(select(func.count()).select_from(ApiKey).where(
        ApiKey.entitlement_id == ent.id, ApiKey.revoked_at.is_(None))).scalar_one()
    if live >= MAX_LIVE_KEYS:
        raise Conflict(f"An entitlement has at most {MAX_LIVE_KEYS} live keys; revoke one first.",
                       next_step="revoke one of the entitlement's live keys first")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(entitlement_id=ent.id, label=label, prefix=key[:12], key_hash=_hash(key), created_by=actor.user_id)
    session.add(row)
    session.flush()
    audit.record(session, actor, "api_key.created", "api_key", row.id, entitlement_id=ent.id, prefix=row.prefix)
    return row, key


def list_keys(session: Session, *, entitlement_id: str, actor: Principal) -> list[ApiKey]:
    ent = entitlements.visible(session, entitlement_id, actor)
    if not (actor.is_operator or actor.org_id == ent.buyer_org_id):
        raise Forbidden("Only the buying organization sees its API keys.",
                        next_step="sign in as a member of the buying organization")
    return list(session.execute(select(ApiKey).where(ApiKey.entitlement_id == ent.id)
                                .order_by(ApiKey.created_at, ApiKey.id)).scalars())


def revoke_key(session: Session, *, entitlement_id: str, key_id: str, actor: Principal) -> ApiKey:
    """Revoke at once: the next call with it is 401."""
    ent = _buyer_admin(session, entitlement_id, actor)
    row = session.execute(select(ApiKey).where(ApiKey.id == key_id, ApiKey.entitlement_id == ent.id)
                          .with_for_update()).scalar_one_or_none()
    if row is None:
        raise NotFound("No such API key.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, actor, "api_key.revoked", "api_key", row.id, entitlement_id=ent.id)
    session.flush()
    return row


# -- the data plane --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grant:
    """What one authorized call needs, read before the transaction ends."""

    entitlement_id: str
    trade_id: str
    key_id: str
    per_call: bool
    base_url: str
    header: tuple[str, str] | None
    timeout_s: float


def target_path(sub_path: str) -> str:
    """The path as received, checked never to leave `base_url`: no `.`/`..` segment (also percent-
    encoded), no empty segment (`//`), no scheme or authority, no control character. BadPath (400)."""
    decoded = unquote(sub_path)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        raise BadPath("The path may not contain control characters.")
    segments = decoded.split("/")
    if sub_path.startswith("/") or "" in segments[:-1] or any(s in (".", "..") for s in segments):
        raise BadPath("The path must stay inside the product's API: no '.', '..' or empty segments.")
    if "\\" in decoded or ":" in segments[0] or urlsplit(decoded).netloc:
        raise BadPath("The path must be relative to the product's API, not an absolute URL.")
    return sub_path


def target_query(query: str) -> str:
    """The query as received (percent-encoding kept); BadPath (400) for a raw control character, which
    no HTTP server passes on but a WSGI environ can carry."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in query):
        raise BadPath("The query may not contain control characters.")
    return query


def authorize(session: Session, *, product_id: str, bearer: str | None) -> Grant:
    """The key's entitlement, checked at this moment. Unauthorized (401) for a bad or revoked key,
    Forbidden (403, logged) for a refused access, RateLimited (429) when the calls are used up."""
    if not bearer or not bearer.startswith(KEY_PREFIX) or len(bearer) > 200:
        raise Unauthorized("A valid API key is required: Authorization: Bearer dfk_...")
    row = session.execute(select(ApiKey).where(ApiKey.key_hash == _hash(bearer))).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("This API key is not valid (unknown or revoked).")
    ent = session.get(Entitlement, row.entitlement_id)
    if ent.product_id != product_id:
        raise Unauthorized("This API key is for another product.")
    if ent.calls_included is not None and ent.calls_used >= ent.calls_included:
        raise RateLimited("quota_exhausted: every call bought has been used.", retry_after=3600)
    verdict = entitlements.evaluate(session, ent)
    if not verdict.allowed:
        accesses.refused(entitlement_id=ent.id, kind=AccessKind.API_CALL, user_id=None, release_id=None,
                         obj=None, reason=verdict.refusal, code=verdict.code, api_key_id=row.id)
        raise Forbidden(verdict.refusal, next_step=verdict.next_step)
    upstream = session.get(ApiUpstream, product_id)
    if upstream is None:
        raise BadGateway("This product has no upstream configured yet; its vendor has to set one.")
    header = None
    if upstream.auth_header_name and upstream.auth_header_secret is not None:
        header = (upstream.auth_header_name, sealing.unseal(SEAL_PURPOSE, product_id, upstream.auth_header_secret))
    # The trade of the period running now: a subscription's next period is delivered by its first call.
    trade_id = evidence.period_trade(session, ent).id if ent.subscription else ent.trade_id
    return Grant(entitlement_id=ent.id, trade_id=trade_id, key_id=row.id, per_call=ent.calls_included is not None,
                 base_url=upstream.base_url, header=header, timeout_s=upstream.timeout_ms / 1000)


def period_start(at: datetime) -> datetime:
    minutes = int(current_app.config["USAGE_PERIOD_MINUTES"])
    epoch = int(at.timestamp()) // (minutes * 60) * (minutes * 60)
    return datetime.fromtimestamp(epoch, at.tzinfo)


@dataclass(frozen=True)
class Reservation:
    entitlement_id: str
    period: datetime
    remaining: int | None


def reserve(entitlement_id: str, *, per_call: bool) -> Reservation:
    """Count one call (a gateway call, a sandbox query) before it is made, in its own short
    transaction; RateLimited (`quota_exhausted`) when none is left. The conditional UPDATE is the
    count: it never fails open."""
    now = utcnow()
    start = period_start(now)
    minutes = int(current_app.config["USAGE_PERIOD_MINUTES"])
    with db.engine.begin() as conn:
        stmt = update(Entitlement).where(Entitlement.id == entitlement_id)
        if per_call:
            stmt = stmt.where(Entitlement.calls_used < Entitlement.calls_included)
        if conn.execute(stmt.values(calls_used=Entitlement.calls_used + 1)).rowcount != 1:
            raise RateLimited("quota_exhausted: every call bought has been used.", retry_after=3600)
        conn.execute(upsert(conn, UsagePeriod.__table__,
                            {"entitlement_id": entitlement_id, "start": start,
                             "end": start + timedelta(minutes=minutes), "calls": 1},
                            index_elements=["entitlement_id", "start"],
                            set_={"calls": UsagePeriod.__table__.c.calls + 1}))
        left = conn.execute(select(Entitlement.calls_included - Entitlement.calls_used)
                            .where(Entitlement.id == entitlement_id)).scalar_one() if per_call else None
    return Reservation(entitlement_id, start, left)


def give_back(res: Reservation) -> None:
    """The upstream failed: the reserved call is not counted (its own short transaction)."""
    with db.engine.begin() as conn:
        conn.execute(update(Entitlement).where(Entitlement.id == res.entitlement_id, Entitlement.calls_used > 0)
                     .values(calls_used=Entitlement.calls_used - 1))
        conn.execute(update(UsagePeriod).where(UsagePeriod.entitlement_id == res.entitlement_id,
                                               UsagePeriod.start == res.period, UsagePeriod.calls > 0)
                     .values(calls=UsagePeriod.calls - 1))


def counted(grant: Grant, *, method: str, path: str, status: int) -> None:
    """A counted call: log it, and let the first one deliver the trade, in one short transaction.
    The trade is locked only while it still waits for its delivery (once delivered, calls never
    queue on its row)."""
    session = db.session
    session.add(accesses.Access(entitlement_id=grant.entitlement_id, at=utcnow(), kind=AccessKind.API_CALL,
                                api_key_id=grant.key_id, object=f"{method} {path}"[:300], status="allowed",
                                details={"upstream_status": status}))
    if session.execute(select(Trade.status).where(Trade.id == grant.trade_id)).scalar_one() == "escrowed":
        trade = session.execute(select(Trade).where(Trade.id == grant.trade_id).with_for_update()).scalar_one()
        ent = session.get(Entitlement, grant.entitlement_id)
        if trade.status == "escrowed" and ent.status == EntitlementStatus.ACTIVE:
            settlement.deliver_by_exchange(session, trade=trade, reference=f"api:{grant.entitlement_id}",
                                           sha256=hashlib.sha256(grant.entitlement_id.encode()).hexdigest(),
                                           evidence="api_call")
    session.commit()
    METERED.inc()


@dataclass(frozen=True)
class Metered:
    """The upstream's answer, the calls left after it (per_call) and the time the upstream took."""

    answer: Upstream
    remaining: int | None
    upstream_seconds: float


def metered_call(grant: Grant, *, method: str, sub_path: str, query: str, headers: list[tuple[str, str]],
                 body: bytes) -> Metered:
    """One authorized call, with no transaction open: the key's rate, one call reserved, the call
    forwarded, then counted — or given back when the upstream fails, times out or answers 500+.
    Raises RateLimited, BadGateway, GatewayTimeout."""
    rate_limit(grant)
    reservation = reserve(grant.entitlement_id, per_call=grant.per_call)
    sent = time.perf_counter()
    try:
        answer = forward(grant, method=method, sub_path=sub_path, query=query, headers=headers, body=body)
    except DomainError:
        give_back(reservation)
        raise
    upstream_seconds = time.perf_counter() - sent
    if answer.status >= 500:
        give_back(reservation)
        remaining = None if reservation.remaining is None else reservation.remaining + 1
    else:
        counted(grant, method=method, path=sub_path, status=answer.status)
        remaining = reservation.remaining
    return Metered(answer, remaining, upstream_seconds)


def rate_limit(grant: Grant) -> None:
    consume(f"gateway:{grant.key_id}", current_app.config["GATEWAY_RATE_LIMIT"], what="calls with this key")


def _host_header(target: PublicURL) -> str:
    default = 443 if target.scheme == "https" else 80
    host = target.host if ":" not in target.host else f"[{target.host}]"
    return host if target.port == default else f"{host}:{target.port}"


@dataclass
class Upstream:
    status: int
    headers: list[tuple[str, str]]
    body: Iterator[bytes]


def forward(grant: Grant, *, method: str, sub_path: str, query: str, headers: list[tuple[str, str]],
            body: bytes) -> Upstream:
    """Send the call to the checked address of the upstream (checked again now) with no transaction
    open; BadGateway (502) when it cannot be reached or its answer is too large, GatewayTimeout (504)."""
    url = grant.base_url.rstrip("/") + "/" + sub_path + (f"?{query}" if query else "")
    try:
        target = _check(url, field="base_url")
    except DomainError:
        raise BadGateway("The product's upstream is not a public address now.") from None
    named = {h.strip().lower() for name, value in headers if name.lower() == "connection" for h in value.split(",")}
    out = {name: value for name, value in headers
           if name.lower() not in NOT_FORWARDED and name.lower() not in named and not name.lower().startswith("proxy-")}
    if grant.header is not None:
        out[grant.header[0]] = grant.header[1]
    out["Host"] = _host_header(target)
    parts = urlsplit(target.url)
    request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = time.monotonic() + grant.timeout_s
    cap = int(current_app.config["GATEWAY_MAX_RESPONSE_BYTES"])
    last: Exception | None = None
    for address in target.addresses:
        pool = pinned_pool(target, address, timeout=urllib3.Timeout(connect=grant.timeout_s, read=grant.timeout_s))
        try:
            resp = pool.urlopen(method, request_target, body=body or None, headers=out, redirect=False,
                                retries=False, preload_content=False, assert_same_host=False, decode_content=False)
        except urllib3.exceptions.NewConnectionError as exc:
            last = exc
            pool.close()
            continue
        except urllib3.exceptions.TimeoutError:
            pool.close()
            raise GatewayTimeout(f"The upstream did not answer within {grant.timeout_s:g} s.") from None
        except urllib3.exceptions.HTTPError:
            pool.close()
            raise BadGateway("The upstream could not be reached.") from None
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            resp.release_conn()
            pool.close()
            raise BadGateway(f"The upstream's answer is over {cap} bytes.")
        # The upstream's own Connection names more hop-by-hop headers (RFC 9110 7.6.1): not relayed either.
        hops = {h.strip().lower() for h in resp.headers.get("Connection", "").split(",")}
        relayed = [(k, v) for k, v in resp.headers.items() if k.lower() not in NOT_RELAYED and k.lower() not in hops]
        if declared and declared.isdigit():
            # Relayed as declared (the body is relayed undecoded): a body cut short past the deadline
            # is then visibly short to the client, not a complete-looking answer.
            relayed.append(("Content-Length", declared))
        chunks = _chunks(resp, deadline=deadline, cap=cap, timeout_s=grant.timeout_s)
        try:
            # The first bytes before the status is relayed: an answer that is too large or too slow
            # from the start is still a 502/504 (nothing sent yet), and the call is given back.
            first = next(chunks, b"")
        except DomainError:
            resp.release_conn()
            pool.close()
            raise
        return Upstream(resp.status, relayed, _stream(first, chunks, resp, pool))
    raise BadGateway(f"The upstream could not be reached ({type(last).__name__ if last else 'no address'}).")


def _chunks(resp: Any, *, deadline: float, cap: int, timeout_s: float) -> Iterator[bytes]:
    """The upstream's body as it arrives; BadGateway past the byte cap, GatewayTimeout past the
    overall deadline. `read1` returns what has arrived: `read(n)` would wait for n bytes, and an
    upstream dripping a byte a second (each within the read timeout) would hold the call for ever."""
    sent = 0
    sock = getattr(getattr(resp, "connection", None), "sock", None)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise GatewayTimeout(f"The upstream did not answer within {timeout_s:g} s.")
        if sock is not None:
            sock.settimeout(left)
        try:
            chunk = resp.read1(CHUNK)
        except urllib3.exceptions.ReadTimeoutError:
            raise GatewayTimeout(f"The upstream did not answer within {timeout_s:g} s.") from None
        except urllib3.exceptions.HTTPError:
            raise BadGateway("The upstream's answer broke off.") from None
        if not chunk:
            return
        sent += len(chunk)
        if sent > cap:
            raise BadGateway(f"The upstream's answer is over {cap} bytes.")
        yield chunk


class CutOff(Exception):
    """Raised inside a relayed body past the cap or the deadline, once the status has been sent."""


def _stream(first: bytes, chunks: Iterator[bytes], resp: Any, pool: Any) -> Iterator[bytes]:
    """The body relayed, cut off past the byte cap or the overall deadline. A cut raises: the server
    then drops the connection (no last chunk, fewer bytes than declared), so the client sees a broken
    answer; ending quietly would send a complete-looking chunked body, silently truncated."""
    try:
        if first:
            yield first
        try:
            yield from chunks
        except DomainError as exc:
            raise CutOff(exc.detail) from exc
    finally:
        resp.release_conn()
        pool.close()


def usage(session: Session, *, entitlement_id: str, principal: Principal, granularity: str) -> dict[str, Any]:
    """An entitlement's calls and usage periods, for its parties and operators (NotFound otherwise)."""
    ent = entitlements.visible(session, entitlement_id, principal)
    periods = list(session.execute(select(UsagePeriod).where(UsagePeriod.entitlement_id == ent.id)
                                   .order_by(UsagePeriod.start)).scalars())
    return {"calls_included": ent.calls_included, "calls_used": ent.calls_used,
            "periods": aggregate(periods, granularity)}


def aggregate(periods: list[UsagePeriod], granularity: str) -> list[dict[str, Any]]:
    """Usage periods as closed (`period`), or counted calls summed per hour or day."""
    if granularity == "period":
        return [{"start": p.start, "end": p.end, "calls": p.calls, "amount": p.amount, "fee": p.fee,
                 "entry_id": p.entry_id} for p in periods]
    step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    buckets: dict[datetime, int] = {}
    for p in periods:
        start = p.start.replace(minute=0, second=0) if granularity == "hour" else p.start.replace(
            hour=0, minute=0, second=0)
        buckets[start] = buckets.get(start, 0) + p.calls
    return [{"start": s, "end": s + step, "calls": c, "amount": None, "fee": None, "entry_id": None}
            for s, c in sorted(buckets.items())]
