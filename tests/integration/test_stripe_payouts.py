"""Stripe payouts: the ledger entry commits with the payout, the Transfer goes out afterwards on the
sweep (never under the request's locks), once per payout.

localstripe has no Transfers endpoint, so this test — like tests/unit/test_payments_stripe_transfers.py —
answers Transfers with a fake `stripe.HTTPClient` installed as the app's Stripe gateway.
"""

from __future__ import annotations

from exchange.payments import registry
from tests.api.test_settlement import pay, signed_trade
from tests.unit.test_payments_stripe_transfers import FakeStripeTransfers, gateway_with

SHA = "e" * 64


def test_stripe_payout_transfers_after_commit_once(app, api):
    vendor, buyer, operator = api.vendor(), api.enterprise(), api.operator()
    trade_id = signed_trade(api, vendor, buyer)
    pay(api, buyer, operator, trade_id)
    api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "x", "sha256": SHA})
    api.post(f"trades/{trade_id}/acceptance", buyer)
    body = {"org_id": vendor.org_id, "currency": "CNY", "amount": 500_000, "provider": "stripe"}
    app.config.update(STRIPE_API_KEY="sk_test_payouts", STRIPE_WEBHOOK_SECRET="whsec_x",
                      STRIPE_API_BASE="https://stripe.invalid")
    http = FakeStripeTransfers()
    key = ("sk_test_payouts", "whsec_x", "https://stripe.invalid")
    registry._stripe_gateways[key] = gateway_with(http)
    try:
        r = api.post("payouts", operator, json=body)
        assert r.status_code == 409  # no connected account yet
        assert api.patch(f"organizations/{vendor.org_id}", operator,
                         json={"stripe_account_id": "acct_1GZTRANSPORT"}).status_code == 200
        r = api.post("payouts", operator, json=body)
        assert r.status_code == 201, r.get_json()
        payout = r.get_json()
        assert payout["status"] == "pending" and http.requests == []
        for _ in range(2):
            assert app.test_cli_runner().invoke(args=["sweep"]).exit_code == 0
        assert len(http.requests) == 1
        _, url, headers, form = http.requests[0]
        assert url.endswith("/v1/transfers") and form["destination"] == ["acct_1GZTRANSPORT"]
        assert form["amount"] == ["500000"] and headers["Idempotency-Key"].endswith(f"{payout['id']}:transfer")
    finally:
        registry._stripe_gateways.pop(key, None)
