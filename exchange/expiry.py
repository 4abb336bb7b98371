"""Statuses that a deadline ends: computed on read from the clock, persisted on the next write or by
the sweep. Written once for every such status (certificates, procurements, offers).

    OFFER_EXPIRY = Expiry(Offer, OFFER_TRANSITIONS, OfferStatus.EXPIRED, live=(OfferStatus.PENDING,),
                          deadline="expires_at", what="Offer")

* `effective_status(obj)` is what reads show: the target once the deadline passed while still live
  (reads never write).
* `expire_if_due(session, obj)` persists it on an object the caller loaded for update (a write that
  finds it due moves it first, so it refuses what an expired object refuses); `on_expire(session,
  obj, previous)` does what the owner adds to the move (a certificate's product leaves the catalog).
* `due_ids(session, now, limit)` and `apply(session, id, now)` are the two halves of a per-item sweep
  (`exchange.jobs.register_sweep`): the ids of a bounded batch, then each one locked, re-checked and
  expired in its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from exchange.db import utcnow
from exchange.states import load_for_update, transition

OnExpire = Callable[[Session, Any, str], None]


@dataclass(frozen=True)
class Expiry:
    """`model.<deadline>` ends the statuses `live` by moving them to `target` (through `table`)."""

    model: type[Any]
    table: Mapping[Any, frozenset[Any]]
    target: str
    live: tuple[str, ...]
    deadline: str
    what: str
    on_expire: OnExpire | None = None

    def is_due(self, obj: Any, now: datetime | None = None) -> bool:
        ends = getattr(obj, self.deadline)
        return obj.status in self.live and ends is not None and ends <= (now or utcnow())

    def effective_status(self, obj: Any, now: datetime | None = None) -> str:
        """The status reads show: `target` once the deadline passed while still live."""
        return str(self.target) if self.is_due(obj, now) else obj.status

    def expire_if_due(self, session: Session, obj: Any, now: datetime | None = None) -> bool:
        """Persist the expiry of `obj` (loaded for update) if it is due; True if it moved."""
        if not self.is_due(obj, now):
            return False
        previous = transition(obj, self.table, self.target, actor=None, what=self.what)
        if self.on_expire is not None:
            self.on_expire(session, obj, previous)
        session.flush()
        return True

    def due_ids(self, session: Session, now: datetime, limit: int) -> list[Any]:
        """At most `limit` ids of live rows past their deadline, the longest overdue first."""
        pk = inspect(self.model).primary_key[0]
        ends = getattr(self.model, self.deadline)
        return list(session.execute(
            select(pk).where(self.model.status.in_([str(s) for s in self.live]), ends <= now)
            .order_by(ends, pk).limit(limit)).scalars())

    def apply(self, session: Session, ident: Any, now: datetime) -> bool:
        """Lock one row, re-check it (a request may have moved it since it was read) and expire it."""
        obj = load_for_update(session, self.model, ident)
        return obj is not None and self.expire_if_due(session, obj, now)

