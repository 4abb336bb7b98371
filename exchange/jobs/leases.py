"""Database leases: a named job runs in one process at a time across workers and nodes.

`acquire(name, holder, ttl)` succeeds when nobody holds the lease or the holder's lease has expired
(or the caller already holds it); it is one conditional statement in its own short transaction, so
two processes can never both win. A holder that dies simply lets its lease expire. Used by the
in-process scheduler (no Redis): each gunicorn worker ticks, one of them runs each periodic job.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta

from sqlalchemy import String, delete, update
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, UTCDateTime, db, upsert, wallclock


class JobLease(Base):
    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


def this_holder() -> str:
    """`host:pid:thread`: unique among live processes of a deployment."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{threading.get_ident()}"


def acquire(name: str, *, holder: str, ttl: float) -> bool:
    """Take (or extend) the lease `name` for `ttl` seconds; False if someone else holds it."""
    now = wallclock()
    expires = now + timedelta(seconds=max(1.0, ttl))
    table = JobLease.__table__
    with db.engine.begin() as conn:
        inserted = conn.execute(
            upsert(conn, table, dict(name=name, holder=holder, acquired_at=now, expires_at=expires),
                   index_elements=["name"])
        ).rowcount
        if inserted == 1:
            return True
        taken = conn.execute(
            update(table)
            .where(table.c.name == name, (table.c.expires_at <= now) | (table.c.holder == holder))
            .values(holder=holder, acquired_at=now, expires_at=expires)
        ).rowcount
    return taken == 1


def release(name: str, *, holder: str) -> None:
    """Give the lease up early (only if `holder` still holds it)."""
    table = JobLease.__table__
    with db.engine.begin() as conn:
        conn.execute(delete(table).where(table.c.name == name, table.c.holder == holder))
