"""Property test: random entries among a few accounts, checked against a reference model after each step.

Invariants: every entry balanced, chain valid, cached balances == sum of postings == model,
non-negative accounts never below zero, refused entries leave nothing behind, seq gapless.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from exchange.db import db
from exchange.errors import ValidationFailed
from exchange.ledger import engine
from exchange.ledger.engine import AccountRef, InsufficientFunds, Posting
from exchange.ledger.models import LEDGER_PURPOSES, JournalEntry, JournalPosting
from exchange.ledger.verify import verify
from exchange.money import MAX_AMOUNT
from trading.settlement import PURPOSES as TRADING_PURPOSES

ACCOUNTS = [AccountRef(owner, purpose, currency)
            for currency in ("CNY", "HKD")
            for owner, purpose in (("org_b1", "buyer_funding"), ("org_b2", "buyer_funding"),
                                   ("trd_1", "trade_escrow"), ("trd_2", "trade_escrow"),
                                   ("org_s", "seller_payable"), ("exchange", "exchange_fees"),
                                   ("manual", "payouts_clearing"))]
amounts = st.one_of(st.integers(1, 5_000), st.integers(MAX_AMOUNT // 3, MAX_AMOUNT))

# The model's oracle: the purposes the ledger and trading register on the app.
PURPOSES = {p.name: p for p in (*LEDGER_PURPOSES, *TRADING_PURPOSES)}


class LedgerMachine(RuleBasedStateMachine):
    app = None
    database = None

    @initialize()
    def fresh_ledger(self):
        self.database.reset(self.app)
        self.ctx = self.app.app_context()
        self.ctx.push()
        self.session = db.session
        self.balances: dict[AccountRef, int] = defaultdict(int)
        self.entries: list[dict] = []  # {"id", "reversed", "kind", "net": {ref: delta}}
        self.postings = 0

    def teardown(self):
        if hasattr(self, "ctx"):
            db.session.rollback()
            db.session.remove()
            self.ctx.pop()

    # -- model ---------------------------------------------------------------------------------
    def _affordable(self, net: dict[AccountRef, int]) -> tuple[bool, bool]:
        """(no non-negative account goes below zero, every balance stays within 2^53-1)."""
        funds = all(self.balances[a] + d >= 0 for a, d in net.items() if PURPOSES[a.purpose].non_negative)
        bounded = all(abs(self.balances[a] + d) <= MAX_AMOUNT for a, d in net.items())
        return funds, bounded

    def _attempt(self, postings: list[Posting], *, reverse_of: dict | None = None) -> None:
        net: dict[AccountRef, int] = defaultdict(int)
        for p in postings:
            net[p.account] += p.amount
        funds, bounded = self._affordable(net)
        before = self._counts()
        try:
            if reverse_of is None:
                entry = engine.post_entry(self.session, kind="payment", postings=postings,
                                          metadata={"step": len(self.entries)})
            else:
                entry = engine.reverse_entry(self.session, entry_id=reverse_of["id"], reason="model")
        except InsufficientFunds:
            assert not funds, "refused although every non-negative account could afford it"
            self._assert_nothing_left(before)
            return
        except ValidationFailed:
            assert not bounded, "refused although balances stay within 2^53-1"
            self._assert_nothing_left(before)
            return
        assert funds and bounded, "accepted an entry the model refuses"
        self.session.commit()
        assert entry.seq == len(self.entries) + 1
        for ref, delta in net.items():
            self.balances[ref] += delta
        self.postings += len(postings)
        if reverse_of is not None:
            reverse_of["reversed"] = True
        self.entries.append({"id": entry.id, "reversed": False, "reversal": reverse_of is not None,
                             "postings": postings})

    def _counts(self):
        return (self.session.execute(select(func.count()).select_from(JournalEntry)).scalar_one(),
                self.session.execute(select(func.count()).select_from(JournalPosting)).scalar_one())

    def _assert_nothing_left(self, before):
        # Still inside the transaction that tried: the savepoint took everything back.
        assert self._counts() == before
        self.session.commit()
        assert self._counts() == before

    # -- rules -----------------------------------------------------------------------------------
    @rule(data=st.data(), currency=st.sampled_from(["CNY", "HKD"]), legs=st.integers(2, 4))
    def post_balanced(self, data, currency, legs):
        pool = [a for a in ACCOUNTS if a.currency == currency]
        accounts = data.draw(st.lists(st.sampled_from(pool), min_size=legs, max_size=legs))
        values = data.draw(st.lists(amounts, min_size=legs - 1, max_size=legs - 1))
        signs = data.draw(st.lists(st.sampled_from([1, -1]), min_size=legs - 1, max_size=legs - 1))
        signed = [v * s for v, s in zip(values, signs, strict=True)]
        last = -sum(signed)
        if last == 0 or abs(last) > MAX_AMOUNT:
            return
        self._attempt([Posting(a, v) for a, v in zip(accounts, [*signed, last], strict=True)])

    @rule(data=st.data())
    def post_two_currencies(self, data):
        cny = data.draw(st.integers(1, 5_000))
        hkd = data.draw(st.integers(1, 5_000))
        src = data.draw(st.sampled_from(["org_b1", "org_b2"]))
        dst = data.draw(st.sampled_from(["trd_1", "trd_2"]))
        self._attempt([
            Posting(AccountRef(src, "buyer_funding", "CNY"), -cny),
            Posting(AccountRef(dst, "trade_escrow", "CNY"), cny),
            Posting(AccountRef(src, "buyer_funding", "HKD"), -hkd),
            Posting(AccountRef(dst, "trade_escrow", "HKD"), hkd),
        ])

    @rule(data=st.data(), off_by=st.integers(-3, 3).filter(bool))
    def post_unbalanced(self, data, off_by):
        a, b = data.draw(st.lists(st.sampled_from(ACCOUNTS[:7]), min_size=2, max_size=2))
        amount = data.draw(st.integers(1, 5_000))
        before = self._counts()
        try:
            engine.post_entry(self.session, kind="payment",
                              postings=[Posting(a, -amount), Posting(b, amount + off_by)])
        except ValidationFailed as exc:
            assert "Unbalanced" in exc.detail or amount + off_by == 0
        else:
            raise AssertionError("an unbalanced entry was accepted")
        self._assert_nothing_left(before)

    @rule(data=st.data())
    def reverse(self, data):
        if not self.entries:
            return
        target = data.draw(st.sampled_from(self.entries))
        if target["reversed"] or target["reversal"]:
            before = self._counts()
            try:
                engine.reverse_entry(self.session, entry_id=target["id"], reason="model")
            except Exception as exc:
                assert getattr(exc, "status", None) == 409
            else:
                raise AssertionError("an entry was reversed twice (or a reversal reversed)")
            self._assert_nothing_left(before)
            return
        self._attempt([Posting(p.account, -p.amount) for p in target["postings"]], reverse_of=target)

    # -- invariants --------------------------------------------------------------------------------
    @invariant()
    def ledger_verifies_and_matches_the_model(self):
        if not hasattr(self, "session"):
            return
        report = verify(self.session, batch_size=7)
        assert report["valid"], report["problems"]
        assert report["entries"] == report["head_seq"] == len(self.entries)
        assert self._counts() == (len(self.entries), self.postings)
        for ref in ACCOUNTS:
            cached = engine.balance(self.session, owner_id=ref.owner_id, purpose=ref.purpose, currency=ref.currency)
            assert cached == self.balances[ref], ref
            if PURPOSES[ref.purpose].non_negative:
                assert cached >= 0
        self.session.rollback()


def test_ledger_state_machine(app, database):
    LedgerMachine.app = app
    LedgerMachine.database = database
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=25, stateful_step_count=20, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
