"""Gapless yearly counters (certificate and contract numbers), shared by every worker and node.

A number is taken by bumping the counter row inside the caller's transaction: the row lock
serializes concurrent takers, and a rolled-back transaction gives its number back, so numbers have
no gaps and no duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Integer, String, event, update
from sqlalchemy.orm import Mapped, Session, mapped_column, scoped_session

from exchange.db import Base, upsert


class Sequence(Base):
    __tablename__ = "sequences"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


def reserve(session: Session, name: str, year: int, count: int = 1) -> int:
    """Take `count` consecutive numbers of `name` in `year`; returns the first. Under the row lock."""
    session.execute(upsert(session, Sequence, dict(name=name, year=year, last=0)))
    last = session.execute(
        update(Sequence)
        .where(Sequence.name == name, Sequence.year == year)
        .values(last=Sequence.last + count)
        .returning(Sequence.last)
    ).scalar_one()
    return last - count + 1


def next_value(session: Session, name: str, year: int) -> int:
    """The next number of `name` in `year` (1, 2, 3, ...), taken under the counter's row lock."""
    return reserve(session, name, year, 1)


def yearly_number(session: Session, name: str, prefix: str, year: int) -> str:
    """`PREFIX-YYYY-NNNNNN` (at least six digits)."""
    return f"{prefix}-{year}-{next_value(session, name, year):06d}"


# -- numbers taken at commit -----------------------------------------------------------------------
# A number taken in the middle of a long transaction holds the counter's row lock until its commit,
# and so serializes every other taker behind all the work that follows. `at_commit` defers the
# numbering (and whatever depends on the number: a signature, the insert) to the end of the
# transaction: the lock is then held only for that last insert and the commit.

_AT_COMMIT = "datafair.sequences.at_commit"
_BATCHES = "datafair.sequences.at_commit_batches"


def at_commit(session: Session, fn: Callable[[Session], None]) -> None:
    """Run `fn(session)` just before this transaction commits (after the caller's own work), in it.

    Functions run in the order they were added; a rollback of the transaction forgets them.
    """
    real = session() if isinstance(session, scoped_session) else session  # flask-sqlalchemy's db.session
    if not real.in_transaction():
        # Begun now, so that a rollback before any SQL is a rollback of this work (its event fires).
        real.begin()
    session.info.setdefault(_AT_COMMIT, []).append(fn)


def at_commit_batch(session: Session, key: str, fn: Callable[[Session, list[Any]], None]) -> list[Any]:
    """The list of items `key` this transaction collects, handed to `fn(session, items)` at its commit
    (scheduled once, on the first call). A rollback forgets the list with the rest."""
    batches: dict[str, list[Any]] = session.info.setdefault(_BATCHES, {})
    if key not in batches:
        batches[key] = []
        at_commit(session, lambda s: fn(s, session.info.get(_BATCHES, {}).pop(key, [])))
    return batches[key]


def batched(session: Session, key: str) -> list[Any]:
    """What this transaction has collected under `key` so far (a copy)."""
    return list(session.info.get(_BATCHES, {}).get(key, ()))


def pending_at_commit(session: Session) -> int:
    return len(session.info.get(_AT_COMMIT, ()))


def run_at_commit(session: Session) -> None:
    """Run what `at_commit` deferred now (the commit does it; tests may call it to look before)."""
    while session.info.get(_AT_COMMIT):
        fn = session.info[_AT_COMMIT].pop(0)
        fn(session)
    _forget(session)


def _forget(session: Session) -> None:
    session.info.pop(_AT_COMMIT, None)
    session.info.pop(_BATCHES, None)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.info.get(_AT_COMMIT):
        run_at_commit(session)
        session.flush()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    # Every rollback of the whole transaction, also one before any SQL ran (no DBAPI rollback then);
    # a savepoint's rollback keeps the transaction's work.
    if not previous_transaction.nested:
        _forget(session)
