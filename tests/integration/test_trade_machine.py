"""A hypothesis state machine over trades, driven through the API and checked against a small
reference model: every entry balanced, the chain valid, escrow never negative, refunds never above
what was paid, settled trades' escrow zero, trade status consistent with balances."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from exchange.db import db
from exchange.ledger.engine import balance
from exchange.ledger.verify import verify
from exchange.money import fee_for
from tests.factories import ApiHelper
from tests.tradeflow import contract_for, sign
from trading.models import Trade

AMOUNT = 1_250_000
SHA = "d" * 64
NEXT = {  # the reference model: which step moves a trade where
    "confirm": ({"awaiting_payment"}, "escrowed"),
    "deliver": ({"escrowed"}, "delivered"),
    "accept": ({"delivered"}, "settled"),
    "dispute": ({"escrowed", "delivered"}, "disputed"),
}


class TradeMachine(RuleBasedStateMachine):
    def __init__(self, app, database):
        super().__init__()
        database.reset(app)
        self.app = app
        self.api = ApiHelper(app)

    @initialize()
    def two_trades(self):
        api = self.api
        self.vendor, self.buyer, self.op = api.vendor(), api.enterprise(), api.operator()
        self.trades, self.model, self.payments, self.refunded, self.paid_out = [], {}, {}, {}, 0
        for _ in range(2):
            contract = contract_for(api, self.vendor, self.buyer)
            sign(api, self.buyer, contract["id"])
            trade_id = sign(api, self.vendor, contract["id"])["trade_id"]
            self.trades.append(trade_id)
            self.model[trade_id] = "awaiting_payment"
            self.refunded[trade_id] = 0

    def _step(self, name, trade_id, method_path, actor, body=None, key=None):
        expected_from, target = NEXT[name]
        headers = {"Idempotency-Key": key} if key else None
        r = self.api.request("POST", method_path, actor, json=body or {}, headers=headers)
        if self.model[trade_id] in expected_from:
            assert r.status_code in (200, 201), (name, r.get_json())
            self.model[trade_id] = target
        else:
            replayed = r.headers.get("Idempotent-Replayed") == "true"
            assert r.status_code == 409 or replayed, (name, self.model[trade_id], r.status_code, r.get_json())
        return r

    @rule(i=st.integers(0, 1), retry=st.booleans())
    def pay_and_confirm(self, i, retry):
        trade_id = self.trades[i]
        if trade_id not in self.payments:
            r = self.api.post(f"trades/{trade_id}/payments", self.buyer, json={"provider": "manual"})
            if self.model[trade_id] != "awaiting_payment":
                assert r.status_code == 409
                return
            assert r.status_code == 201, r.get_json()
            self.payments[trade_id] = r.get_json()["id"]
        key = f"confirm-{trade_id}"
        for _ in range(2 if retry else 1):
            self._step("confirm", trade_id, f"payments/{self.payments[trade_id]}/confirm", self.op, key=key)

    @rule(i=st.integers(0, 1))
    def deliver(self, i):
        trade_id = self.trades[i]
        self._step("deliver", trade_id, f"trades/{trade_id}/delivery", self.vendor,
                   {"reference": "sftp://x", "sha256": SHA})

    @rule(i=st.integers(0, 1))
    def accept(self, i):
        trade_id = self.trades[i]
        self._step("accept", trade_id, f"trades/{trade_id}/acceptance", self.buyer)

    @rule(i=st.integers(0, 1))
    def dispute(self, i):
        trade_id = self.trades[i]
        self._step("dispute", trade_id, f"trades/{trade_id}/disputes", self.buyer, {"reason": "late"})

    @rule(i=st.integers(0, 1), refund=st.integers(0, AMOUNT + 1))
    def resolve(self, i, refund):
        trade_id = self.trades[i]
        r = self.api.post(f"trades/{trade_id}/resolution", self.op, json={"refund_amount": refund})
        if self.model[trade_id] != "disputed":
            assert r.status_code == 409, r.get_json()
        elif refund > AMOUNT:
            assert r.status_code == 422, r.get_json()
        else:
            assert r.status_code == 200, r.get_json()
            self.refunded[trade_id] = refund
            self.model[trade_id] = "refunded" if refund == AMOUNT else "settled"

    @rule(amount=st.integers(1, 2 * AMOUNT))
    def payout(self, amount):
        with self.app.app_context():
            available = balance(db.session, owner_id=self.vendor.org_id, purpose="seller_payable", currency="CNY")
            db.session.rollback()
        r = self.api.post("payouts", self.op, json={"org_id": self.vendor.org_id, "currency": "CNY",
                                                     "amount": amount})
        assert r.status_code == (201 if amount <= available else 422), r.get_json()
        if r.status_code == 201:
            self.paid_out += amount

    @rule()
    def sweep(self):
        assert self.app.test_cli_runner().invoke(args=["sweep"]).exit_code == 0

    @invariant()
    def ledger_and_model_agree(self):
        if not getattr(self, "trades", None):
            return
        with self.app.app_context():
            result = verify(db.session)
            assert result["valid"], result
            payable_expected = -self.paid_out
            for trade_id in self.trades:
                trade = db.session.get(Trade, trade_id)
                assert trade.status == self.model[trade_id]
                escrow = balance(db.session, owner_id=trade_id, purpose="trade_escrow", currency="CNY")
                assert escrow >= 0
                assert trade.refunded_amount <= trade.paid_amount
                if trade.status == "awaiting_payment":
                    assert escrow == 0 and trade.paid_amount == 0
                elif trade.status in ("escrowed", "delivered", "disputed"):
                    assert escrow == trade.paid_amount == AMOUNT
                else:
                    assert escrow == 0
                    settled = AMOUNT - self.refunded[trade_id]
                    assert trade.fee == fee_for(settled, 200)
                    payable_expected += settled - trade.fee
            payable = balance(db.session, owner_id=self.vendor.org_id, purpose="seller_payable", currency="CNY")
            assert payable == payable_expected
            db.session.rollback()


def test_trade_state_machine(_session_app, database):
    run_state_machine_as_test(
        lambda: TradeMachine(_session_app, database),
        settings=settings(max_examples=8, stateful_step_count=20, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )
