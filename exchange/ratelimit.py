"""Fixed-window rate limits shared by every worker and node.

Backed by the database by default (one upsert per hit, in its own short transaction so a rolled-back
request still counts), or by Redis when `REDIS_URL` is set (INCR + EXPIRE).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from exchange.config import parse_rate
from exchange.db import db
from exchange.errors import RateLimited
from exchange.models import RateLimitCounter


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    period: int

    @classmethod
    def parse(cls, spec: str) -> Window:
        limit, period = parse_rate(spec)
        return cls(limit, period)


class DatabaseBackend:
    def hit(self, bucket: str, window: Window, amount: int = 1) -> tuple[int, int]:
        now = int(time.time())
        start = now - now % window.period
        dialect = db.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(RateLimitCounter).values(
            bucket=bucket, window_start=start, count=amount, expires_at=start + window.period
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["bucket", "window_start"],
            set_={"count": RateLimitCounter.count + amount},
        ).returning(RateLimitCounter.count)
        with db.engine.begin() as conn:
            count = conn.execute(stmt).scalar_one()
            if count == amount and now % 50 == 0:
                conn.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at < now))
        return count, start + window.period - now

    def peek(self, bucket: str, window: Window) -> tuple[int, int]:
        now = int(time.time())
        start = now - now % window.period
        with db.engine.connect() as conn:
            count = conn.execute(
                select(RateLimitCounter.count).where(
                    RateLimitCounter.bucket == bucket, RateLimitCounter.window_start == start
                )
            ).scalar()
        return int(count or 0), start + window.period - now


class RedisBackend:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def _key(self, bucket: str, window: Window) -> tuple[str, int]:
        now = int(time.time())
        start = now - now % window.period
        return f"datafair:rl:{bucket}:{start}", start + window.period - now

    def hit(self, bucket: str, window: Window, amount: int = 1) -> tuple[int, int]:
        key, remaining = self._key(bucket, window)
        pipe = self.client.pipeline()
        pipe.incrby(key, amount)
        pipe.expire(key, window.period + 1)
        count, _ = pipe.execute()
        return int(count), remaining

    def peek(self, bucket: str, window: Window) -> tuple[int, int]:
        key, remaining = self._key(bucket, window)
        return int(self.client.get(key) or 0), remaining


def redis_client() -> Any:
    """The Redis client of the rate limits (REDIS_URL); raises RuntimeError when Redis is not configured."""
    backend = _backend()
    if not isinstance(backend, RedisBackend):
        raise RuntimeError("REDIS_URL is not configured")
    return backend.client


def _backend() -> Any:
    return current_app.extensions["datafair.ratelimit"]


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    app.extensions["datafair.ratelimit"] = RedisBackend(url) if url else DatabaseBackend()


def consume(bucket: str, spec: str, *, what: str = "requests") -> None:
    """Count one hit; raise RateLimited (429 + Retry-After) when the window's limit is exceeded."""
    window = Window.parse(spec)
    count, retry_after = _backend().hit(bucket, window)
    if count > window.limit:
        raise RateLimited(f"Too many {what}; try again in {retry_after} s.", retry_after=retry_after)


def check(bucket: str, spec: str, *, what: str = "requests") -> None:
    """Raise RateLimited if the bucket is already at its limit, without counting."""
    window = Window.parse(spec)
    count, retry_after = _backend().peek(bucket, window)
    if count >= window.limit:
        raise RateLimited(f"Too many {what}; try again in {retry_after} s.", retry_after=retry_after)


def record(bucket: str, spec: str) -> None:
    """Count one hit without raising (a failed login)."""
    _backend().hit(bucket, Window.parse(spec))


def write_limit(org_id: str, flow: str) -> None:
    """Per-organization limit on writes a business flow could abuse (offers, signatures, disputes...)."""
    consume(f"write:{flow}:{org_id}", current_app.config["WRITE_RATE_LIMIT"], what=f"{flow} requests")


def limit_writes(flow: str) -> Any:
    """View decorator: count the caller organization's `flow` writes before the view's transaction.

    Runs before the service opens the request's transaction, so the count survives a rollback.
    """
    import functools

    from exchange.auth import current_principal

    def decorator(view: Any) -> Any:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            write_limit(principal.org_id, flow)
            return view(*args, **kwargs)

        return wrapper

    return decorator
