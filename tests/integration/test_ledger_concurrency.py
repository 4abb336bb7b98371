"""Real concurrent connections: the chain never forks, non-negative accounts never overdraw.

The full races run on PostgreSQL; a smaller chain race also runs on SQLite (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from exchange.db import db
from exchange.ledger import engine
from exchange.ledger.engine import AccountRef, InsufficientFunds
from exchange.ledger.models import Account, JournalEntry
from exchange.ledger.verify import verify
from tests.ledger_helpers import escrow, funding, move, payable


def run_threads(app: Any, n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in n threads, each with its own app context (own session and connection)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def target(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                results[i] = work(i)
            except BaseException as exc:
                db.session.rollback()
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return results


def test_writers_on_any_database_append_one_chain(app):
    def work(i: int) -> int:
        for k in range(10):
            engine.post_entry(db.session, kind="payment", postings=move(funding(f"org_{i}"), escrow("trd_s"), k + 1))
            db.session.commit()
        return 10

    assert run_threads(app, 4, work) == [10] * 4
    with app.app_context():
        report = verify(db.session)
        assert report["valid"] and report["entries"] == report["head_seq"] == 40
        assert engine.balance(db.session, owner_id="trd_s", purpose="trade_escrow", currency="CNY") == 4 * 55


@pytest.mark.postgres
def test_eight_writers_append_one_gapless_chain(app):
    def work(i: int) -> int:
        for k in range(50):
            # Shared accounts in both directions so writers contend on the same rows.
            engine.post_entry(db.session, kind="payment", trade_id=f"trd_{k % 3}",
                              postings=move(funding(f"org_{i % 2}"), escrow(f"trd_{k % 3}"), i + 1),
                              metadata={"writer": i, "n": k})
            db.session.commit()
        return 50

    results = run_threads(app, 8, work)
    assert results == [50] * 8
    with app.app_context():
        seqs = db.session.execute(select(JournalEntry.seq).order_by(JournalEntry.seq)).scalars().all()
        assert seqs == list(range(1, 401))
        report = verify(db.session, batch_size=64)
        assert report["valid"] and report["entries"] == 400, report["problems"]
        expected_escrow = sum(i + 1 for i in range(8) for k in range(50) if k % 3 == 0)
        assert engine.balance(db.session, owner_id="trd_0", purpose="trade_escrow", currency="CNY") == expected_escrow
        total = sum(50 * (i + 1) for i in range(8))
        funded = sum(engine.balance(db.session, owner_id=f"org_{j}", purpose="buyer_funding", currency="CNY")
                     for j in range(2))
        assert funded == -total
        # Each writer's entries keep their own order in the chain.
        for i in range(8):
            mine = [e.meta["n"] for e in db.session.execute(
                select(JournalEntry).order_by(JournalEntry.seq)).scalars() if e.meta["writer"] == i]
            assert mine == list(range(50))


@pytest.mark.postgres
def test_racing_withdrawals_never_overdraw_a_non_negative_account(app):
    seller = payable("org_seller")
    with app.app_context():
        engine.post_entry(db.session, kind="settlement", postings=move(funding("org_buyer"), seller, 1000))
        db.session.commit()

    clearing = AccountRef("manual", "payouts_clearing", "CNY")

    def work(_i: int) -> int:
        won = 0
        for _ in range(5):
            try:
                engine.post_entry(db.session, kind="payout", postings=move(seller, clearing, 70))
                db.session.commit()
                won += 1
            except InsufficientFunds:
                db.session.rollback()
        return won

    results = run_threads(app, 8, work)
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 1000 // 70  # 14 of the 40 attempts, exactly
    with app.app_context():
        assert engine.balance(db.session, owner_id="org_seller", purpose="seller_payable", currency="CNY") == 1000 % 70
        assert verify(db.session)["valid"]


@pytest.mark.postgres
def test_racing_account_creation_makes_one_account(app):
    def work(_i: int) -> str:
        account = engine.get_or_create_account(db.session, owner_id="trd_new", purpose="trade_escrow",
                                               currency="MOP")
        db.session.commit()
        return account.id

    ids = run_threads(app, 8, work)
    assert len(set(ids)) == 1 and all(isinstance(i, str) for i in ids), ids
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Account)).scalar_one() == 1


@pytest.mark.postgres
def test_racing_reversals_reverse_once(app):
    with app.app_context():
        entry = engine.post_entry(db.session, kind="payment", postings=move(funding("b"), escrow("t"), 10))
        db.session.commit()
        entry_id = entry.id

    def work(_i: int) -> str:
        engine.reverse_entry(db.session, entry_id=entry_id, reason="race")
        db.session.commit()
        return "reversed"

    results = run_threads(app, 8, work)
    assert results.count("reversed") == 1
    assert all(getattr(r, "status", None) == 409 for r in results if r != "reversed"), results
    with app.app_context():
        assert verify(db.session)["entries"] == 2
