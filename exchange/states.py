"""The one transition helper every state machine uses."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from exchange.errors import InvalidTransition

S = TypeVar("S", bound=StrEnum)


def check_transition(table: Mapping[S, frozenset[S]], current: str, target: str, *, what: str) -> None:
    """Raise InvalidTransition (409) unless `current -> target` is in the table."""
    enum_type = type(next(iter(table)))
    try:
        cur, tgt = enum_type(current), enum_type(target)
    except ValueError:
        raise InvalidTransition(f"{what}: unknown status {current!r} -> {target!r}") from None
    if tgt not in table.get(cur, frozenset()):
        allowed = ", ".join(sorted(s.value for s in table.get(cur, frozenset()))) or "none"
        raise InvalidTransition(
            f"{what} cannot go from '{cur.value}' to '{tgt.value}' (allowed from '{cur.value}': {allowed})."
        )


def transition(obj: Any, table: Mapping[S, frozenset[S]], target: str, *, what: str,
               field: str = "status") -> str:
    """Move `obj.<field>` to `target` if the table allows it; returns the previous status."""
    previous = getattr(obj, field)
    check_transition(table, previous, target, what=what)
    setattr(obj, field, str(target))
    return previous
