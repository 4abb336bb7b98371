"""Database: the SQLAlchemy 2.0 base, the session, UTC timestamps and opaque ids.

Both engines are first-class: SQLite (embedded default: WAL, foreign keys, busy timeout, and
`BEGIN IMMEDIATE` for requests that write so two writers never deadlock on a lock upgrade) and
PostgreSQL (psycopg 3).

Lock waits are bounded (`DATAFAIR_LOCK_TIMEOUT_MS`): on PostgreSQL every transaction starts with
`SET LOCAL` of lock_timeout, statement_timeout and idle_in_transaction_session_timeout (per
transaction, so they hold through PgBouncer in transaction mode); on SQLite the same value is the
busy timeout. A wait that times out is answered 503 with Retry-After (`exchange.errors`).
"""

from __future__ import annotations

import contextvars
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ColumnElement, DateTime, MetaData, String, event, func, literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, registry
from sqlalchemy.pool import Pool
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Set by the request hooks: a request that may write takes SQLite's write lock up front.
write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("datafair_write_intent", default=True)


def utcnow() -> datetime:
    """The exchange's domain clock: the current time, timezone-aware UTC, truncated to whole seconds
    as the API shows it, shifted by `NOW_OFFSET_S` (`DATAFAIR_NOW_OFFSET_S`, development and tests
    only) so that expiries, deadlines, periods, renewals and the sweep can be exercised without
    waiting. Token validation and job leases keep the real clock (`wallclock`)."""
    now = datetime.now(UTC).replace(microsecond=0)
    if has_app_context():
        offset = current_app.config.get("NOW_OFFSET_S")
        if offset:
            return now + timedelta(seconds=int(offset))
    return now


def wallclock() -> datetime:
    """The real current time (UTC, whole seconds), whatever the domain clock's offset: for what
    another party checks against its own clock (token `iat`/`exp`, leases between processes)."""
    return datetime.now(UTC).replace(microsecond=0)


def new_id(prefix: str) -> str:
    """An opaque, time-ordered id such as `org_0192f3...` (48-bit ms clock + 80 random bits)."""
    ms = int(time.time() * 1000) & ((1 << 48) - 1)
    return f"{prefix}_{ms:012x}{secrets.token_hex(10)}"


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every engine (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    registry = registry(metadata=MetaData(naming_convention=NAMING), type_annotation_map={datetime: UTCDateTime()})


db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


def check_in(column: str, values: Any) -> str:
    """SQL for a CHECK constraint `column IN (...)` over plain values or a StrEnum class."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


def IdColumn(prefix: str) -> Mapped[str]:
    return mapped_column(String(40), primary_key=True, default=lambda: new_id(prefix))


# Sums of money that neither engine can overflow. Each amount is within 2^53-1 but a sum is not:
# SQLite's SUM raises "integer overflow" past 2^63-1 and PostgreSQL's bigint arithmetic refuses it.
# An amount is split into its high bits and its low 32 bits; each part sums far below 2^63 (2^31
# rows of the low part, 2^32 of the high one), and Python adds them exactly.
_SPLIT_BITS = 32


def exact_sum(expr: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """The two SUMs (high part, low part) of a non-negative BIGINT expression; see `exact_total`."""
    # Inline constants: PostgreSQL has no `bigint >> bigint` (a bound int arrives as bigint).
    shift, mask = literal_column(str(_SPLIT_BITS)), literal_column(str((1 << _SPLIT_BITS) - 1))
    return func.sum(expr.op(">>")(shift)), func.sum(expr.op("&")(mask))


def exact_total(high: Any, low: Any) -> int:
    """The exact integer sum from `exact_sum`'s parts (PostgreSQL returns SUM(bigint) as numeric:
    Decimal, converted exactly, never through a float)."""
    return (int(high or 0) << _SPLIT_BITS) + int(low or 0)


def normalize_database_url(url: str, root: str) -> str:
    """`postgresql://` -> psycopg 3; a relative SQLite path -> absolute under the project root."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute():
            path = Path(root) / path
        path.parent.mkdir(parents=True, exist_ok=True)
        url = parsed.set(database=str(path)).render_as_string(hide_password=False)
    return url


# Execution option of the engines: the PostgreSQL settings applied with SET LOCAL to every transaction.
TRANSACTION_SETTINGS = "datafair_transaction_settings"


def engine_options(url: str, *, pool_size: int = 5, max_overflow: int = 5, lock_timeout_ms: int = 5000,
                   statement_timeout_ms: int = 25000, idle_in_transaction_timeout_ms: int = 60000,
                   application_name: str = "datafair-web") -> dict[str, Any]:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        # pysqlite's `timeout` is SQLite's busy timeout: how long a writer waits for the write lock.
        return {"connect_args": {"timeout": lock_timeout_ms / 1000, "check_same_thread": False}}
    # Pool per worker kept small: workers x pool x nodes must stay under max_connections (100 here).
    # No pool_pre_ping: it costs a round trip on every checkout (a third of a health check's time);
    # connections idle for a while are pinged instead (below).
    return {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_recycle": 1800,
        # In the startup packet (PgBouncer passes it on): pg_stat_activity names who holds what.
        "connect_args": {"application_name": application_name},
        "execution_options": {TRANSACTION_SETTINGS: {
            "lock_timeout": int(lock_timeout_ms),
            "statement_timeout": int(statement_timeout_ms),
            "idle_in_transaction_session_timeout": int(idle_in_transaction_timeout_ms),
        }},
    }


# A pooled connection idle longer than this is pinged before use (a restarted or failed-over server
# dropped it); one in steady use is not, as it answered a moment ago.
PING_AFTER_IDLE_SECONDS = 10.0


@event.listens_for(Pool, "checkin")
def _stamp_checkin(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info["checked_in_at"] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.get("checked_in_at")
    if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
        return
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        dbapi_connection.rollback()
    except Exception as exc:
        # The pool discards this connection and checks out (or opens) another one.
        raise DisconnectionError(f"stale pooled connection: {exc}") from exc


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        # Let SQLAlchemy's begin event decide BEGIN vs BEGIN IMMEDIATE (pysqlite's own is wrong).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


@event.listens_for(Engine, "begin")
def _on_begin(conn: Any) -> None:
    if conn.dialect.name == "sqlite":
        read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write_intent.get() and not read_only else "BEGIN")
        return
    options = conn.get_execution_options()
    settings = options.get(TRANSACTION_SETTINGS)
    if settings and options.get("isolation_level") != "AUTOCOMMIT":
        # One round trip; set_config(..., true) is SET LOCAL: it ends with this transaction, so a
        # pooled (or PgBouncer-shared) server connection never keeps another request's settings.
        conn.exec_driver_sql("SELECT " + ", ".join(
            f"set_config('{name}', '{int(ms)}', true)" for name, ms in settings.items()))


# -- read replica (DATABASE_REPLICA_URL) -----------------------------------------------------------

REPLICA_BIND = "replica"
READ_ONLY_OPTION = "datafair_read_only"
_REPLICA_SESSION = "_datafair_replica_session"


def replica_binds(url: str | None, root: str, **pool: Any) -> dict[str, Any]:
    """SQLALCHEMY_BINDS for a read replica, or none; `pool` as for `engine_options`."""
    if not url:
        return {}
    url = normalize_database_url(url, root)
    options = engine_options(url, **pool)
    options["execution_options"] = {**options.get("execution_options", {}), READ_ONLY_OPTION: True}
    return {REPLICA_BIND: {"url": url, **options}}


def read_session() -> Session:
    """A session for catalog reads (public product lists, search, stats) that tolerate a replica's lag.

    Bound to the replica when DATABASE_REPLICA_URL is set (one session per app context, closed at
    its teardown), else the request's own `db.session`. Never write through it, and never read
    through it what the same request has just written (the replica may not have it yet).
    """
    engine = db.engines.get(REPLICA_BIND)
    if engine is None:
        return db.session
    from flask import g

    session = g.get(_REPLICA_SESSION)
    if session is None:
        session = Session(bind=engine, expire_on_commit=False, autoflush=False)
        setattr(g, _REPLICA_SESSION, session)
    return session


def init_app(app: Any) -> None:
    @app.teardown_appcontext
    def _close_replica_session(_exc: Any) -> None:
        from flask import g

        session = g.pop(_REPLICA_SESSION, None)
        if session is not None:
            session.close()


def dialect_name(bind: Any) -> str:
    """"postgresql" or "sqlite": the dialect of a session (scoped or not), a connection or an engine."""
    return (bind.get_bind() if hasattr(bind, "get_bind") else bind).dialect.name


def upsert(bind: Any, table: Any, values: Any = None, *, index_elements: list[str] | None = None,
           set_: dict[str, Any] | None = None, where: Any = None) -> Any:
    """`INSERT ... ON CONFLICT` in the dialect of `bind`: DO UPDATE SET `set_` (only `where` holds)
    when `set_` is given, else DO NOTHING. Returns the statement; add `.returning(...)` and execute.

    `values` is a dict, a list of dicts (one multi-row INSERT) or None (parameters given at execute).
    """
    insert = postgresql.insert if dialect_name(bind) == "postgresql" else sqlite.insert
    stmt = insert(table)
    if values is not None:
        stmt = stmt.values(values)
    if set_ is None:
        return stmt.on_conflict_do_nothing(index_elements=index_elements)
    return stmt.on_conflict_do_update(index_elements=index_elements, set_=set_, where=where)


def is_sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


def after_transaction(fn: Any) -> None:
    """Run `fn` in its own transaction once the request's transaction has ended, committed or not.

    For bookkeeping that must survive a rollback (failed-login counters, refresh-token reuse
    revocation). Outside a request it runs at once. Writing it after the request's transaction also
    keeps SQLite from deadlocking on its single write lock.
    """
    from flask import g, has_request_context

    if has_request_context():
        g.setdefault("after_transaction", []).append(fn)
    else:
        fn()
