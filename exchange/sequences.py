"""Gapless yearly counters (certificate and contract numbers), shared by every worker and node.

A number is taken by bumping the counter row inside the caller's transaction: the row lock
serializes concurrent takers, and a rolled-back transaction gives its number back, so numbers have
no gaps and no duplicates.
"""

from __future__ import annotations

from sqlalchemy import Integer, String, update
from sqlalchemy.orm import Mapped, Session, mapped_column

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
