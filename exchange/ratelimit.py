"""Fixed-window rate limits shared by every worker and node.

Backed by the database by default (one upsert per hit, in its own short transaction so a rolled-back
request still counts), or by Redis when `REDIS_URL` is set (INCRBY + EXPIRE in one MULTI/EXEC).

Counting and checking are one atomic operation (the upsert's `RETURNING count`, Redis's INCRBY):
`consume` counts the hit and refuses it when the new count is over the limit, so N concurrent
requests against a limit of L let at most L through, on any number of workers and nodes. A slot
may be given back afterwards (`release`, e.g. a login that turned out to be right).

Redis is not a single point of failure: when it does not answer, the limits fall back to the
database backend (never fail open; every node falls back alike, so limits still hold across
nodes), `datafair_ratelimit_fallback_total` counts it, and Redis is tried again after
`REDIS_RETRY_SECONDS` (a restarted Redis is used again by itself). Counts made in Redis before an
outage are not carried over: during the window in which Redis went away a client may get up to
twice its limit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from sqlalchemy import delete, update

from exchange import metrics
from exchange.config import parse_rate
from exchange.db import db, upsert
from exchange.errors import RateLimited
from exchange.models import RateLimitCounter

log = logging.getLogger("datafair.ratelimit")
# After Redis failed, this process counts in the database for this long before trying Redis again.
REDIS_RETRY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    period: int

    @classmethod
    def parse(cls, spec: str) -> Window:
        limit, period = parse_rate(spec)
        return cls(limit, period)

    def start(self, now: int) -> int:
        return now - now % self.period


@dataclass(frozen=True, slots=True)
class Hit:
    """One counted hit: the window's count after it, seconds left in the window, and where it was
    counted (so `release` gives it back to the same window of the same backend)."""

    bucket: str
    count: int
    retry_after: int
    window_start: int
    backend: Any


class DatabaseBackend:
    def hit(self, bucket: str, window: Window, amount: int = 1) -> Hit:
        now = int(time.time())
        start = window.start(now)
        stmt = upsert(
            db.engine, RateLimitCounter,
            dict(bucket=bucket, window_start=start, count=amount, expires_at=start + window.period),
            index_elements=["bucket", "window_start"],
            set_={"count": RateLimitCounter.count + amount},
        ).returning(RateLimitCounter.count)
        with db.engine.begin() as conn:
            count = conn.execute(stmt).scalar_one()
            if count == amount and now % 50 == 0:
                conn.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at < now))
        return Hit(bucket, int(count), start + window.period - now, start, self)

    def release(self, hit: Hit) -> None:
        with db.engine.begin() as conn:
            conn.execute(
                update(RateLimitCounter)
                .where(RateLimitCounter.bucket == hit.bucket, RateLimitCounter.window_start == hit.window_start,
                       RateLimitCounter.count > 0)
                .values(count=RateLimitCounter.count - 1)
            )


# Give a slot back only to a window that still exists (an expired key must not come back as -1).
_RELEASE_LUA = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0"


class RedisBackend:
    """Redis counters, with the database backend as the fallback while Redis does not answer."""

    def __init__(self, url: str) -> None:
        import redis

        self.errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=0.5)
        self.fallback = DatabaseBackend()
        self._down_until = 0.0
        self._lock = threading.Lock()

    @staticmethod
    def _key(bucket: str, start: int) -> str:
        return f"datafair:rl:{bucket}:{start}"

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException, operation: str) -> None:
        with self._lock:
            first = self._available()
            self._down_until = time.monotonic() + REDIS_RETRY_SECONDS
        if first:
            log.warning("Redis unreachable (%s); rate limits count in the database for %.0f s: %s",
                        operation, REDIS_RETRY_SECONDS, exc)

    def hit(self, bucket: str, window: Window, amount: int = 1) -> Hit:
        if self._available():
            now = int(time.time())
            start = window.start(now)
            key = self._key(bucket, start)
            try:
                pipe = self.client.pipeline(transaction=True)
                pipe.incrby(key, amount)
                pipe.expire(key, window.period + 1)
                count, _ = pipe.execute()
                return Hit(bucket, int(count), start + window.period - now, start, self)
            except self.errors as exc:
                self._failed(exc, "hit")
        metrics.RATELIMIT_FALLBACKS.inc()
        return self.fallback.hit(bucket, window, amount)

    def release(self, hit: Hit) -> None:
        try:
            self.client.eval(_RELEASE_LUA, 1, self._key(hit.bucket, hit.window_start))
        except self.errors as exc:
            # The slot stays taken until its window ends: a limit may only err on the safe side.
            self._failed(exc, "release")

    def status(self) -> str:
        """`ok` or `unreachable` (without waiting on a Redis already known to be down)."""
        if not self._available():
            return "unreachable"
        try:
            self.client.ping()
        except self.errors as exc:
            self._failed(exc, "ping")
            return "unreachable"
        return "ok"


def redis_client() -> Any:
    """The Redis client of the rate limits (REDIS_URL); raises RuntimeError when Redis is not configured."""
    backend = _backend()
    if not isinstance(backend, RedisBackend):
        raise RuntimeError("REDIS_URL is not configured")
    return backend.client


def redis_status() -> str:
    """`ok`, `unreachable` or `not configured` (a detail of readiness, never a reason to fail it)."""
    backend = _backend()
    return backend.status() if isinstance(backend, RedisBackend) else "not configured"


def _backend() -> Any:
    return current_app.extensions["datafair.ratelimit"]


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions["datafair.ratelimit"] = RedisBackend(url) if url else DatabaseBackend()


def refusal(hit: Hit, what: str) -> RateLimited:
    """The 429 for a hit over its limit (with the seconds left in its window as Retry-After)."""
    return RateLimited(f"Too many {what}; try again in {hit.retry_after} s.", retry_after=hit.retry_after)


def consume(bucket: str, spec: str | Window, *, what: str = "requests") -> Hit:
    """Count one hit and check it in one atomic step; raise RateLimited (429 + Retry-After) when the
    window's limit is exceeded. Returns the hit, which `release` can give back."""
    window = spec if isinstance(spec, Window) else Window.parse(spec)
    hit = _backend().hit(bucket, window)
    if hit.count > window.limit:
        raise refusal(hit, what)
    return hit


def release(hit: Hit) -> None:
    """Give back a slot taken by `consume` (to the window and backend it was counted in)."""
    hit.backend.release(hit)


def record(bucket: str, spec: str | Window) -> Hit:
    """Count one hit without raising."""
    return _backend().hit(bucket, spec if isinstance(spec, Window) else Window.parse(spec))


def write_limit(org_id: str, flow: str) -> None:
    """Per-organization limit on writes a business flow could abuse (offers, signatures, disputes...)."""
    consume(f"write:{flow}:{org_id}", current_app.config["WRITE_RATE_LIMIT"], what=f"{flow} requests")


def registration_limit(client_addr: str) -> None:
    """Per-client-address limit on anonymous registrations (each is a password hash and an entry in
    the operators' queue); counted before any of that work."""
    consume(f"register:addr:{client_addr}", current_app.config["REGISTRATION_RATE_LIMIT"],
            what="registrations from your address")


WRITE_FLOW_ATTR = "_datafair_write_flow"


def limit_writes(flow: str) -> Any:
    """Decorator of an `exchange.api.Blueprint` operation: count the caller organization's `flow`
    writes before the view's transaction.

    The Blueprint applies it when it registers the view, right after authentication and before the
    operation's authorization check and body, wherever the decorator sits: every attempt counts,
    refused or invalid, and the count survives the request's rollback.
    """

    def decorator(view: Any) -> Any:
        setattr(view, WRITE_FLOW_ATTR, flow)
        return view

    return decorator


def limited(view: Any, flow: str) -> Any:
    """`view` counting the caller organization's `flow` writes first (see `limit_writes`)."""
    import functools

    from exchange.principal import current_principal

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        principal = current_principal()
        write_limit(principal.org_id, flow)
        return view(*args, **kwargs)

    return wrapper
