"""Domain events of a whole deal reach both parties' webhook endpoints, signed, each once."""

from __future__ import annotations

import json

from exchange.events import signature
from exchange.jobs.scheduler import run_job
from tests.api.test_settlement import pay, signed_trade
from tests.hookserver import HookServer

SHA = "f" * 64
EVENTS = ["offer.received", "offer.accepted", "contract.signed", "trade.escrowed", "trade.delivered",
          "trade.settled", "payout.sent", "certification.decided"]


def test_a_deal_notifies_both_parties(app, api):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    hooks = HookServer()
    try:
        vendor, buyer, operator = api.vendor(), api.enterprise(), api.operator()
        secrets = {}
        for actor, path in ((vendor, "/vendor"), (buyer, "/buyer")):
            r = api.post("webhook-endpoints", actor, json={"url": hooks.url(path), "events": EVENTS})
            assert r.status_code == 201, r.get_json()
            secrets[path] = r.get_json()["secret"]
        trade_id = signed_trade(api, vendor, buyer)
        pay(api, buyer, operator, trade_id)
        api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "sftp://x", "sha256": SHA})
        api.post(f"trades/{trade_id}/acceptance", buyer)
        api.post("payouts", operator, json={"org_id": vendor.org_id, "currency": "CNY", "amount": 1000})
        with app.app_context():
            run_job("deliver_webhooks")
        seen = {}
        for path in ("/vendor", "/buyer"):
            for received in hooks.on(path):
                assert signature.verify(secrets[path], received.headers["datafair-signature"], received.body)
                event = json.loads(received.body)
                assert received.headers["datafair-event-id"] == event["id"]
                seen.setdefault(path, []).append(event["type"])
        assert seen["/vendor"].count("certification.decided") == 1
        for path in ("/vendor", "/buyer"):
            for kind in ("contract.signed", "trade.escrowed", "trade.delivered", "trade.settled"):
                assert seen[path].count(kind) == 1, (path, kind, seen[path])
        assert "offer.received" in seen["/vendor"] and "offer.accepted" in seen["/buyer"]
        assert "payout.sent" in seen["/vendor"] and "payout.sent" not in seen["/buyer"]
    finally:
        hooks.close()


def test_metrics_count_trades_by_status(app, api):
    vendor, buyer, operator = api.vendor(), api.enterprise(), api.operator()
    trade_id = signed_trade(api, vendor, buyer)
    pay(api, buyer, operator, trade_id)
    text = api.client.get("/metrics").get_data(as_text=True)
    assert 'datafair_trades{status="escrowed"} 1.0' in text
    assert 'datafair_contracts{status="signed"} 1.0' in text
