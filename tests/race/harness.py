"""The race harness: N requests released together, each from its own thread and test client, so
each runs in its own app context (its own SQLAlchemy session and PostgreSQL connection), and the
checks every row and pair of the race matrix share.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from exchange.db import db
from exchange.errors import PROBLEM_JSON
from tests.factories import Actor

# Identical requests per row; a pair sends this many of each of its requests.
N = 8
PER_SIDE = 4
P = "/api/v1"


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # relative to /api/v1
    actor: Actor | None
    body: Any = None
    key: str | None = None  # Idempotency-Key
    action: str = ""  # the pair's name for what this request does
    data: bytes | None = None  # a raw `application/octet-stream` body (a file upload) instead of JSON

    @property
    def url(self) -> str:
        return self.path if self.path.startswith("/") else f"{P}/{self.path}"


@dataclass
class Answer:
    call: Call
    status: int
    raw: bytes
    mimetype: str
    replayed: bool

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.raw)
        except ValueError:
            return None

    def show(self) -> str:
        return f"{self.call.action or self.call.method} -> {self.status} {self.raw[:160]!r}"


def release(app: Any, calls: list[Call], timeout: float = 60.0) -> list[Answer]:
    """Send every call at once (threading.Barrier), one thread and one test client each."""
    barrier = threading.Barrier(len(calls))
    answers: list[Answer | None] = [None] * len(calls)
    crashed: list[BaseException] = []

    def worker(i: int, call: Call) -> None:
        client = app.test_client()
        headers = dict(call.actor.headers) if call.actor else {}
        if call.key:
            headers["Idempotency-Key"] = call.key
        body = call.body if call.body is not None or call.method == "DELETE" else {}
        if call.data is not None:
            headers["Content-Type"] = "application/octet-stream"
        try:
            barrier.wait()
            if call.data is not None:
                r = client.open(call.url, method=call.method, data=call.data, headers=headers)
            else:
                r = client.open(call.url, method=call.method, json=body, headers=headers)
            answers[i] = Answer(call, r.status_code, r.get_data(), r.mimetype,
                                r.headers.get("Idempotent-Replayed") == "true")
        except BaseException as exc:  # reported below: a thread's exception must fail the test
            crashed.append(exc)

    threads = [threading.Thread(target=worker, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not crashed, crashed
    assert all(a is not None for a in answers), "a request did not finish in time (a lock wait or a deadlock)"
    return answers  # type: ignore[return-value]


def query(app: Any, sql: str, **params: Any) -> list[Any]:
    with app.app_context():
        try:
            return list(db.session.execute(text(sql), params).all())
        finally:
            db.session.rollback()


def scalar(app: Any, sql: str, **params: Any) -> Any:
    rows = query(app, sql, **params)
    return rows[0][0] if rows else None


def watermark(app: Any) -> int:
    return scalar(app, "SELECT coalesce(max(id), 0) FROM status_changes")


def changes(app: Any, since: int, object_type: str, object_id: str, fld: str = "status") -> list[tuple[str, str]]:
    """The status changes of one object recorded after `since`, in order: [(from, to), ...]."""
    return [(r[0], r[1]) for r in query(
        app, "SELECT from_status, to_status FROM status_changes WHERE id > :since AND object_type = :t "
             "AND object_id = :o AND field = :f ORDER BY id", since=since, t=object_type, o=str(object_id), f=fld)]


@dataclass
class Findings:
    items: list[str] = field(default_factory=list)

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.items.append(message)

    def __bool__(self) -> bool:
        return bool(self.items)


def losers_are_refusals(found: Findings, answers: list[Answer], allowed: frozenset[int]) -> None:
    """Every request that did not succeed was refused with an allowed status, as problem+json; no 5xx."""
    for a in answers:
        if a.ok:
            continue
        found.check(a.status in allowed, f"unexpected answer {a.show()} (allowed {sorted(allowed)})")
        found.check(a.mimetype == PROBLEM_JSON, f"refusal not problem+json: {a.show()}")


def serializable(found: Findings, answers: list[Answer], chain: list[tuple[str, str]], initial: str,
                 final: str | None, moves: dict[str, dict[str, str]]) -> None:
    """The outcome equals some serial order of the requests: the recorded changes form one chain from
    `initial` to the final status, each success is exactly one change its action may make (no change
    recorded twice, none without a success), and each refusal was refused in a state of that chain
    where its action is not allowed. An action with no moves changes no status of this object (its
    outcome is the row's own check's)."""
    state = initial
    visited = [initial]
    for frm, to in chain:
        found.check(frm == state, f"status changes do not chain: {chain} from {initial}")
        state = to
        visited.append(to)
    found.check(final is None or final == state, f"final status {final}, but the changes end at {state}: {chain}")
    successes = Counter(a.call.action for a in answers if a.ok and moves.get(a.call.action))
    found.check(sum(successes.values()) == len(chain),
                f"{sum(successes.values())} successes ({dict(successes)}) but {len(chain)} status changes: {chain}")
    for frm, to in chain:
        found.check(any(m.get(frm) == to for m in moves.values()), f"change {frm}->{to} is no request's: {chain}")
    for action, count in successes.items():
        could = sum(1 for frm, to in chain if moves.get(action, {}).get(frm) == to)
        found.check(count <= could, f"{count} x {action} succeeded but only {could} changes are its: {chain}")
    for a in answers:
        if not a.ok and moves.get(a.call.action):
            found.check(any(s not in moves[a.call.action] for s in visited),
                        f"{a.show()}: refused, yet allowed in every state the object went through {visited}")
