"""`post_entries` (bulk loads, the same code as `post_entry`) leaves the ledger exactly as posting the
same entries one by one would, and refuses exactly what one by one would refuse."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from exchange.ledger import engine
from exchange.ledger.engine import EntrySpec, InsufficientFunds, Posting
from exchange.ledger.models import Account, JournalEntry
from exchange.ledger.verify import verify
from tests.ledger_helpers import escrow, fees, funding, move, payable


def _flow(prefix: str, steps: list[tuple[int, int, int]]) -> list[EntrySpec]:
    """Per step (trade number, amount, fee): pay into the trade's escrow, then settle it."""
    specs = []
    for n, amount, fee in steps:
        trade = f"{prefix}trd_{n}"
        specs.append(EntrySpec("payment", move(funding(f"{prefix}buyer"), escrow(trade), amount), trade,
                               {"provider": "manual"}))
        specs.append(EntrySpec("settlement", [Posting(escrow(trade), -amount),
                                              Posting(payable(f"{prefix}seller"), amount - fee),
                                              *([Posting(fees(), fee)] if fee else [])], trade))
    return specs


def _balances(session, prefix: str) -> dict[tuple[str, str], tuple[int, int]]:
    rows = session.execute(select(Account).where(Account.owner_id.startswith(prefix))).scalars()
    return {(a.owner_id.removeprefix(prefix), a.purpose): (a.balance, a.version) for a in rows}


STEPS = st.lists(st.tuples(st.integers(0, 5), st.integers(2, 10**9), st.integers(0, 1)), min_size=1, max_size=12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_bulk_equals_one_by_one(session, steps):
    steps = [(n, amount, fee * (amount // 50)) for n, amount, fee in steps]
    one = _flow("one-", steps)
    bulk = _flow("bulk-", steps)
    for spec in one:
        engine.post_entry(session, kind=spec.kind, postings=spec.postings, trade_id=spec.trade_id,
                          metadata=spec.metadata)
    assert engine.post_entries(session, bulk) == len(bulk)
    session.flush()
    assert _balances(session, "one-") == _balances(session, "bulk-")
    # A single entry after the bulk continues the same chain.
    engine.post_entry(session, kind="payment", trade_id="after", postings=move(funding("x"), escrow("after"), 5))
    report = verify(session)
    assert report["valid"], report["problems"]
    session.rollback()


def test_bulk_refuses_an_overdraft_as_a_whole(session):
    engine.post_entries(session, _flow("a-", [(1, 1000, 20)]))
    session.commit()
    before = session.execute(select(func.count()).select_from(JournalEntry)).scalar_one()
    bad = [*_flow("b-", [(1, 500, 0)]),
           EntrySpec("settlement", [Posting(escrow("a-trd_1"), -1), Posting(payable("b-seller"), 1)], "a-trd_1")]
    with pytest.raises(InsufficientFunds):
        engine.post_entries(session, bad)
    assert session.execute(select(func.count()).select_from(JournalEntry)).scalar_one() == before
    assert engine.balance(session, owner_id="b-seller", purpose="seller_payable", currency="CNY") == 0
    assert verify(session)["valid"]


def test_bulk_refuses_an_overdraft_that_a_later_entry_would_cover(session):
    """Each entry is checked against the balance the entries before it left, not the list's net."""
    early = [EntrySpec("settlement", [Posting(escrow("c-trd_1"), -300), Posting(payable("c-seller"), 300)], "c-trd_1"),
             EntrySpec("payment", move(funding("c-buyer"), escrow("c-trd_1"), 300), "c-trd_1")]
    with pytest.raises(InsufficientFunds) as refused:
        engine.post_entries(session, early)
    assert refused.value.account == "trade_escrow:c-trd_1:CNY"
    assert session.execute(select(func.count()).select_from(JournalEntry)).scalar_one() == 0
    assert engine.balance(session, owner_id="c-buyer", purpose="buyer_funding", currency="CNY") == 0


# Moves between a few accounts, some of which may not go below zero: many sequences overdraw somewhere.
ACCOUNTS = st.sampled_from([funding("p-buyer"), escrow("p-trd_1"), escrow("p-trd_2"), payable("p-seller"), fees()])
MOVES = st.lists(st.tuples(ACCOUNTS, ACCOUNTS, st.integers(1, 1000)).filter(lambda m: m[0] != m[1]),
                 min_size=1, max_size=10)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=MOVES)
def test_bulk_refuses_exactly_what_one_by_one_refuses(session, moves):
    specs = [EntrySpec("payout", move(src, dst, amount)) for src, dst, amount in moves]
    expected = None
    with session.begin_nested() as one_by_one:
        for spec in specs:
            try:
                engine.post_entry(session, kind=spec.kind, postings=spec.postings)
            except Exception as exc:
                expected = (type(exc), getattr(exc, "account", None))
                break
        one_by_one.rollback()
    session.expire_all()
    if expected is None:
        assert engine.post_entries(session, specs) == len(specs)
    else:
        with pytest.raises(expected[0]) as refused:
            engine.post_entries(session, specs)
        assert getattr(refused.value, "account", None) == expected[1]
        assert session.execute(select(func.count()).select_from(JournalEntry)).scalar_one() == 0
    assert verify(session)["valid"]
    session.rollback()
