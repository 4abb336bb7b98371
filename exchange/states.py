"""The one transition helper every state machine uses, and the row locks it insists on.

Each table is a `TransitionTable`: the allowed moves from each status, and for each status the next
step a refused move names (what would move the object on, or that nothing will), which the 409 carries
as `next_step`. Each package writes both next to each other in its `states.py`.

Every status change goes through `transition(obj, table, target, actor=..., what=...)`: it checks the
transition table (409 otherwise), refuses an object that was not loaded for update in the current
transaction (a programming error: that is how lost updates happen), and records who moved what from
where to where in `status_changes`. An object is "loaded for update" when a `SELECT ... FOR UPDATE`
of this transaction returned it (`load_for_update`, or any `with_for_update()` query: the session
hook below notices) or when this transaction created it. On SQLite `FOR UPDATE` is not sent, but a
writing request holds the database's write lock from its first statement (BEGIN IMMEDIATE), so an
object read in that transaction cannot change under it.

`transition_many(session, Model, table, target, where=..., ...)` is the one other way a status
changes: a compare-and-set UPDATE of many rows at once, for writers that must not load rows first
(a webhook worker recording an answer under its lease; an endpoint's deletion cancelling its
pending deliveries). The same table decides (the UPDATE's WHERE requires a source status the table
allows), a row another transaction moved first is left alone, and each row moved is recorded in
`status_changes` like any transition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, event, inspect, select, update
from sqlalchemy.orm import ORMExecuteState, Session, object_session

from exchange.db import utcnow
from exchange.errors import InvalidTransition
from exchange.models import StatusChange

S = TypeVar("S", bound=StrEnum)
LOCKED = "datafair.locked"


class TransitionTable(dict[S, frozenset[S]], Generic[S]):
    """A state machine's table: each status -> the statuses it may move to; `next_steps` holds, for
    each status, what would move an object in it on (the next step a refused move names)."""

    def __init__(self, moves: Mapping[S, frozenset[S]], *, next_steps: Mapping[S, str]) -> None:
        super().__init__(moves)
        self.next_steps: dict[S, str] = dict(next_steps)

    def next_step(self, status: str) -> str | None:
        """The next step of an object in `status` (None for a status the table does not know)."""
        enum_type = type(next(iter(self)))
        try:
            return self.next_steps.get(enum_type(status))
        except ValueError:
            return None


def next_step_of(table: Mapping[Any, frozenset[Any]], status: str) -> str | None:
    """The next step the table names for `status` (None for a plain mapping without hints)."""
    return table.next_step(status) if isinstance(table, TransitionTable) else None


class NotLockedError(RuntimeError):
    """A status change on an object this transaction did not lock: a bug in the caller, never a 4xx."""


def check_transition(table: Mapping[S, frozenset[S]], current: str, target: str, *, what: str) -> None:
    """Raise InvalidTransition (409) unless `current -> target` is in the table."""
    enum_type = type(next(iter(table)))
    try:
        cur, tgt = enum_type(current), enum_type(target)
    except ValueError:
        raise InvalidTransition(
            f"{what}: unknown status {current!r} -> {target!r}",
            next_step="use one of the statuses: " + ", ".join(s.value for s in enum_type)) from None
    if tgt not in table.get(cur, frozenset()):
        allowed = ", ".join(sorted(s.value for s in table.get(cur, frozenset()))) or "none"
        raise InvalidTransition(
            f"{what} cannot go from '{cur.value}' to '{tgt.value}' (allowed from '{cur.value}': {allowed}).",
            next_step=next_step_of(table, cur) or f"reload the {what.lower()} and check its status",
        )


def load_for_update(session: Session, model: type[Any], ident: Any) -> Any | None:
    """The row `ident` of `model`, locked for the rest of the transaction and re-read from the database."""
    pk = inspect(model).primary_key[0]
    return session.execute(select(model).where(pk == ident).with_for_update()).scalar_one_or_none()


def is_locked(obj: Any) -> bool:
    """Whether this transaction locked `obj` (or created it)."""
    session = object_session(obj)
    if session is None:
        return False
    state = inspect(obj)
    return state.pending or state.identity_key in session.info.get(LOCKED, ())


def transition(obj: Any, table: Mapping[S, frozenset[S]], target: str, *, actor: Any, what: str,
               field: str = "status", root: Any = None) -> str:
    """Move `obj.<field>` to `target` if the table allows it, recording who (`actor`: a Principal, or
    None for the exchange's own jobs) and when; returns the previous status.

    `root` names the aggregate whose row lock covers `obj` (a product's revisions, a certification's
    stages change only under the product's or the certification's lock).

    Raises InvalidTransition (409) for a move the table refuses, NotLockedError when `obj` (or its
    `root`) was not loaded for update in this transaction.
    """
    if not is_locked(obj if root is None else root):
        raise NotLockedError(f"{what} must be loaded for update (a row lock) before its {field} changes")
    previous = getattr(obj, field)
    check_transition(table, previous, target, what=what)
    setattr(obj, field, str(target))
    state = inspect(obj)
    object_id = ":".join(str(v) for v in state.identity) if state.identity else str(getattr(obj, "id", ""))
    object_session(obj).add(StatusChange(
        object_type=obj.__tablename__, object_id=object_id, field=field, from_status=str(previous),
        to_status=str(target), actor_user_id=getattr(actor, "user_id", None),
        actor_org_id=getattr(actor, "org_id", None), at=utcnow(),
    ))
    return previous


def transition_many(session: Session, model: type[Any], table: Mapping[S, frozenset[S]], target: str, *,
                    where: Iterable[ColumnElement[bool]], actor: Any, what: str,
                    values: Mapping[str, Any] | None = None, field: str = "status") -> list[Any]:
    """Move every row of `model` that matches `where` and is in a status from which the table allows
    `target` to `target`, setting `values` in the same UPDATE; returns the ids of the rows moved.

    One UPDATE per source status, its WHERE requiring that status: the database checks and changes
    each row at once (a compare-and-set, no row lock needed beforehand), so a row another
    transaction moved meanwhile is skipped, never overwritten. Each row moved gets its
    `status_changes` row (who: `actor`, a Principal or None for the exchange's own jobs).

    Raises InvalidTransition when no status of the table may reach `target` (a programming error).
    """
    enum_type = type(next(iter(table)))
    tgt = enum_type(target)
    sources = sorted(s for s, targets in table.items() if tgt in targets)
    if not sources:
        raise InvalidTransition(f"{what}: no status may go to '{tgt.value}'",
                                next_step="none: no status may reach it, so no retry will succeed")
    conditions = tuple(where)
    column, pk = getattr(model, field), inspect(model).primary_key[0]
    moved: list[Any] = []
    now = utcnow()
    for source in sources:
        ids = list(session.execute(
            update(model).where(*conditions, column == source.value)
            .values({field: tgt.value, **(values or {})}).returning(pk)
        ).scalars())
        session.add_all(StatusChange(
            object_type=model.__tablename__, object_id=str(ident), field=field, from_status=source.value,
            to_status=tgt.value, actor_user_id=getattr(actor, "user_id", None),
            actor_org_id=getattr(actor, "org_id", None), at=now) for ident in ids)
        moved.extend(ids)
    return moved


@event.listens_for(Session, "do_orm_execute")
def _remember_locked_rows(state: ORMExecuteState) -> Any:
    """Note every object a `SELECT ... FOR UPDATE` returns, re-read (not the identity map's copy)."""
    if not state.is_select or getattr(state.statement, "_for_update_arg", None) is None:
        return None
    frozen = state.invoke_statement(execution_options={"populate_existing": True}).freeze()
    locked = state.session.info.setdefault(LOCKED, set())
    for row in frozen().all():
        for value in row:
            mapper_state = inspect(value, raiseerr=False)
            if mapper_state is not None and getattr(mapper_state, "identity_key", None) is not None:
                locked.add(mapper_state.identity_key)
    return frozen()


@event.listens_for(Session, "pending_to_persistent")
def _remember_created_rows(session: Session, instance: Any) -> None:
    """A row this transaction inserted is invisible to every other until commit: as good as locked."""
    session.info.setdefault(LOCKED, set()).add(inspect(instance).identity_key)


@event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(LOCKED, None)
