"""Ledger verification: recompute the hash chain, each entry's balance and every cached balance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import BigInteger, and_, cast, func, or_, select, true
from sqlalchemy.orm import Session

from exchange.ledger.engine import entry_body, entry_hash
from exchange.ledger.models import GENESIS_HASH, Account, EntryKind, JournalEntry, JournalPosting, account_name
from exchange.money import MAX_AMOUNT

ProgressCallback = Callable[[int, int], None]


def verify(session: Session, *, batch_size: int = 1000, progress: ProgressCallback | None = None,
           max_problems: int = 100) -> dict[str, Any]:
    """Recompute the chain, each entry's balance per currency and every cached account balance.

    Entries are streamed `batch_size` at a time in `seq` order; account balances are checked with
    one aggregate query (one snapshot even under concurrent appends). Returns `{"valid", "entries",
    "balanced", "chain_valid", "balances_valid", "head", "head_seq", "first_bad_seq", "accounts",
    "problem_count", "problems": [{"seq", "account", "problem"}]}` (at most `max_problems` listed).
    """
    report = _Report(max_problems)
    total = session.execute(select(func.count()).select_from(JournalEntry)).scalar_one()
    expected_seq, prev_hash, last_seq, head = 1, GENESIS_HASH, 0, None
    done = 0
    E, P, A = JournalEntry, JournalPosting, Account
    while True:
        entries = session.execute(
            select(E.id, E.seq, E.trade_id, E.kind, E.created_at, E.meta, E.prev_hash, E.hash,
                   E.reverses_entry_id)
            .where(E.seq > last_seq).order_by(E.seq).limit(batch_size)
        ).all()
        if not entries:
            break
        legs: dict[str, list[Any]] = defaultdict(list)
        for row in session.execute(
            select(P.entry_id, P.position, P.account_id, P.currency, P.amount,
                   A.owner_id, A.purpose, A.currency.label("account_currency"))
            .join(E, E.id == P.entry_id).join(A, A.id == P.account_id)
            .where(E.seq > last_seq, E.seq <= entries[-1].seq)
            .order_by(E.seq, P.position)
        ):
            legs[row.entry_id].append(row)
        for e in entries:
            if e.seq != expected_seq:
                report.chain(e.seq, f"seq {e.seq} follows {expected_seq - 1}: the sequence has a gap")
            if e.prev_hash != prev_hash:
                report.chain(e.seq, "prev_hash does not match the previous entry's hash")
            _check_entry(report, e, legs.get(e.id, []))
            prev_hash, expected_seq, last_seq, head = e.hash, e.seq + 1, e.seq, e.hash
        done += len(entries)
        if progress is not None:
            progress(done, max(total, done))

    sums = (select(P.account_id, cast(func.sum(P.amount), BigInteger).label("total"))
            .group_by(P.account_id).subquery())
    expected = func.coalesce(sums.c.total, 0)
    for row in session.execute(
        select(A.owner_id, A.purpose, A.currency, A.balance, A.non_negative, expected.label("expected"))
        .outerjoin(sums, sums.c.account_id == A.id)
        .where(or_(A.balance != expected, and_(A.non_negative == true(), expected < 0)))
        .order_by(A.id).limit(max_problems + 1)
    ):
        name = account_name(row.purpose, row.owner_id, row.currency)
        if row.balance != row.expected:
            report.balance(name, f"cached balance {row.balance} != sum of postings {row.expected}")
        else:
            report.balance(name, f"non-negative account sums to {row.expected}")
    accounts = session.execute(select(func.count()).select_from(Account)).scalar_one()
    return {
        "valid": report.chain_valid and report.balanced and report.balances_valid,
        "entries": done,
        "balanced": report.balanced,
        "chain_valid": report.chain_valid,
        "balances_valid": report.balances_valid,
        "head": head,
        "head_seq": last_seq,
        "first_bad_seq": report.first_bad_seq,
        "accounts": accounts,
        "problem_count": report.count,
        "problems": report.problems,
    }


class _Report:
    def __init__(self, max_problems: int) -> None:
        self.max_problems = max_problems
        self.problems: list[dict[str, Any]] = []
        self.count = 0
        self.first_bad_seq: int | None = None
        self.chain_valid = self.balanced = self.balances_valid = True

    def _add(self, seq: int | None, account: str | None, problem: str) -> None:
        self.count += 1
        if seq is not None and (self.first_bad_seq is None or seq < self.first_bad_seq):
            self.first_bad_seq = seq
        if len(self.problems) < self.max_problems:
            self.problems.append({"seq": seq, "account": account, "problem": problem})

    def chain(self, seq: int, problem: str) -> None:
        self.chain_valid = False
        self._add(seq, None, problem)

    def unbalanced(self, seq: int, problem: str, account: str | None = None) -> None:
        self.balanced = False
        self._add(seq, account, problem)

    def balance(self, account: str, problem: str) -> None:
        self.balances_valid = False
        self._add(None, account, problem)


def _check_entry(report: _Report, e: Any, legs: list[Any]) -> None:
    totals: dict[str, int] = defaultdict(int)
    postings = []
    for i, leg in enumerate(legs):
        name = account_name(leg.purpose, leg.owner_id, leg.account_currency)
        if leg.position != i:
            report.unbalanced(e.seq, f"posting positions are not 0..{len(legs) - 1}")
        if leg.currency != leg.account_currency:
            report.unbalanced(e.seq, f"posting in {leg.currency} on a {leg.account_currency} account", name)
        if leg.amount == 0 or abs(leg.amount) > MAX_AMOUNT:
            report.unbalanced(e.seq, f"posting amount {leg.amount} out of range", name)
        totals[leg.currency] += leg.amount
        postings.append({"account_id": leg.account_id, "account": name, "currency": leg.currency,
                         "amount": leg.amount})
    if len(legs) < 2:
        report.unbalanced(e.seq, f"entry has {len(legs)} posting(s)")
    for currency, total in sorted(totals.items()):
        if total != 0:
            report.unbalanced(e.seq, f"postings sum to {total:+d} {currency}")
    reverses = (e.meta or {}).get("reverses") if e.kind == EntryKind.REVERSAL else None
    if e.reverses_entry_id != reverses:
        report.chain(e.seq, "reverses_entry_id does not match the hashed metadata")
    try:
        body = entry_body(seq=e.seq, kind=e.kind, trade_id=e.trade_id, created_at=e.created_at,
                          postings=postings, metadata=e.meta)
        recomputed = entry_hash(body, e.prev_hash)
    except (ValueError, UnicodeEncodeError) as exc:
        report.chain(e.seq, f"entry cannot be hashed: {exc}")
        return
    if recomputed != e.hash:
        report.chain(e.seq, "hash does not match the entry's content")
