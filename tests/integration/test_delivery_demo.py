"""The seeded privacy-computing demo: the Hong Kong buyer can query the retail baskets it bought,
under the vendor's budget, and never reach the shoppers' ids or phones. Seeding again adds nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from delivery import demo as delivery_demo
from delivery.models import Release, SandboxPolicy
from exchange.db import db
from exchange.identity import demo


def test_the_seeded_sandbox_answers_the_buyer_under_its_budget(app, api):
    assert app.test_cli_runner().invoke(args=["seed-demo"]).exit_code == 0
    buyer = api._actor("buyer@hk-logistics.demo", demo.DEMO_PASSWORD)
    (ent,) = [e for e in api.get("entitlements?status=active", buyer).get_json()["items"]
              if e["delivery_mode"] == "privacy_computing"]
    tables = api.get(f"entitlements/{ent['id']}/tables", buyer).get_json()
    (table,) = tables["tables"]
    assert (table["name"], table["file"]) == ("retail", delivery_demo.RETAIL_FILE)
    blocked = {c["name"] for c in table["columns"] if c["blocked"]}
    assert blocked == {"customer_id", "phone"}
    assert tables["policy"]["epsilon_budget"] == 10.0 and tables["epsilon_remaining"] == 10.0

    def ask(sql: str, epsilon: float) -> dict:
        r = api.post(f"entitlements/{ent['id']}/queries", buyer, json={"sql": sql, "epsilon": epsilon})
        assert r.status_code == 201, r.get_json()
        return r.get_json()

    q = ask("SELECT city, count(*) AS n FROM retail GROUP BY city ORDER BY n DESC", 1.0)
    assert q["status"] == "succeeded" and q["epsilon_remaining"] == 9.0
    assert {row[0] for row in q["rows"]} == set(delivery_demo.RETAIL_CITIES)  # no city is below k
    # Noised, but the two big cities lead by far (hundreds of baskets each; noise of a few).
    assert {row[0] for row in q["rows"][:2]} == {"guangzhou", "shenzhen"}
    for sql in ("SELECT phone, count(*) AS n FROM retail GROUP BY phone",
                "SELECT count(DISTINCT customer_id) AS people FROM retail"):
        refused = ask(sql, 0.5)
        assert refused["status"] == "refused" and refused["refused_reason"].startswith("blocked_column")
        assert refused["rows"] == [] and refused["epsilon_remaining"] == 9.0
    # The first query delivered the trade.
    assert api.get(f"trades/{ent['trade_id']}", buyer).get_json()["status"] == "delivered"

    assert app.test_cli_runner().invoke(args=["seed-demo"]).exit_code == 0
    with app.app_context():
        product_id = ent["product_id"]
        assert db.session.execute(select(func.count()).select_from(Release)
                                  .where(Release.product_id == product_id)).scalar_one() == 1
        assert db.session.get(SandboxPolicy, product_id).rows_per_person == delivery_demo.RETAIL_ROWS_PER_PERSON
