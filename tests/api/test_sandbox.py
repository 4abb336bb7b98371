"""Privacy computing through the API: the vendor's policy, the buyer's aggregate queries computed on
data it never sees (exact answers checked against DuckDB on the same file, k suppression, noise under a
budget), the signed receipt, delivery by the first query, per_call counting, and refusals logged."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import duckdb
import pytest
import rfc8785
from sqlalchemy import select

from delivery.models import PrivacyBudget
from exchange.db import db
from tests import outside_verifier
from tests.certflow import certify
from tests.deliveryflow import entitlement_of, pay, release
from tests.sandboxflow import DP_POLICY, EXACT_POLICY, query, retail_rows, sandbox_bought, to_csv
from tests.tradeflow import bid, sign, terms

GROUPED = "SELECT city, count(*) AS n, sum(amount) AS total, avg(items) AS items FROM retail GROUP BY city"


def expected_groups(rows, k=10):
    groups = defaultdict(list)
    for r in rows:
        groups[r["city"]].append(r)
    kept = {c: rs for c, rs in groups.items() if len(rs) >= k}
    return kept, len(groups) - len(kept)


# -- exact mode --------------------------------------------------------------------------------------
def test_exact_answers_are_the_aggregates_of_the_data_with_small_groups_dropped(api, tmp_path):
    rows = retail_rows()
    got = sandbox_bought(api, rows=rows)
    q = query(api, got, GROUPED + " ORDER BY n DESC, city")
    assert q["status"] == "succeeded" and q["refused_reason"] is None, q
    kept, dropped = expected_groups(rows)
    assert dropped == 1 and q["suppressed_groups"] == 1  # 澳门 has 6 rows, below k = 10
    assert q["columns"] == ["city", "n", "total", "items"]
    by_city = {r[0]: r for r in q["rows"]}
    assert set(by_city) == set(kept)
    for city, rs in kept.items():
        assert by_city[city][1:3] == [len(rs), sum(r["amount"] for r in rs)]
        assert by_city[city][3] == pytest.approx(sum(r["items"] for r in rs) / len(rs))
    assert [r[1] for r in q["rows"]] == sorted((r[1] for r in q["rows"]), reverse=True)
    # The same numbers from DuckDB reading the same bytes directly.
    path = tmp_path / "retail.csv"
    path.write_bytes(to_csv(rows))
    direct = duckdb.sql(f"SELECT city, count(*), sum(amount) FROM read_csv('{path}') GROUP BY city "
                        "HAVING count(*) >= 10").fetchall()
    assert {(c, n, s) for c, n, s in direct} == {(r[0], r[1], r[2]) for r in q["rows"]}


def test_a_filter_that_isolates_a_few_rows_releases_nothing(api):
    got = sandbox_bought(api)
    q = query(api, got, "SELECT count(*) AS n, sum(amount) AS total FROM retail WHERE city = '澳门'")
    assert q["status"] == "succeeded" and q["rows"] == [] and q["suppressed_groups"] == 1, q


def test_max_groups_caps_the_rows_out(api):
    got = sandbox_bought(api, {**EXACT_POLICY, "max_groups": 2})
    q = query(api, got, "SELECT city, count(*) AS n FROM retail GROUP BY city ORDER BY n DESC")
    assert len(q["rows"]) == 2 and q["truncated"] is True, q
    listed = api.get(f"entitlements/{got['ent']['id']}/queries", got["buyer"]).get_json()["items"]
    assert [(x["id"], x["truncated"]) for x in listed] == [(q["id"], True)]


def test_the_query_that_runs_is_rebuilt_not_the_text_sent(api):
    got = sandbox_bought(api)
    q = query(api, got, "select CITY, COUNT(*) as N from RETAIL where amount>=100 group by CITY -- trailing")
    assert q["status"] == "succeeded", q
    assert q["sql"].endswith("-- trailing") and "--" not in q["executed_sql"]
    assert '"retail"."amount" >= 100' in q["executed_sql"] and '"retail"."city" AS _k0' in q["executed_sql"]


# -- the receipt and delivery ------------------------------------------------------------------------
def test_receipt_verifies_from_the_jwks_and_the_digest_is_of_the_answer(api):
    got = sandbox_bought(api)
    q = query(api, got, GROUPED)
    assert q["result_sha256"] == hashlib.sha256(rfc8785.dumps({"columns": q["columns"], "rows": q["rows"]})).hexdigest()
    rel = api.get(f"releases/{got['release']['id']}", got["buyer"]).get_json()
    signed = {"query_id": q["id"], "entitlement_id": got["ent"]["id"], "release_id": rel["id"],
              "manifest_sha256": rel["manifest_sha256"], "sql": GROUPED, "result_sha256": q["result_sha256"],
              "at": q["at"]}
    jwks = api.client.get("/.well-known/jwks.json").data
    assert outside_verifier.verify(jwks, signed, q["receipt"]["key_id"], q["receipt"]["signature"])
    forged = {**signed, "result_sha256": "0" * 64}
    assert not outside_verifier.verify(jwks, forged, q["receipt"]["key_id"], q["receipt"]["signature"])


def test_the_first_succeeded_query_delivers_the_trade_a_refused_one_does_not(api):
    got = sandbox_bought(api)
    trade_id = got["trade"]["id"]
    assert api.get(f"trades/{trade_id}", got["buyer"]).get_json()["status"] == "escrowed"
    assert query(api, got, "SELECT phone, count(*) FROM retail GROUP BY phone")["status"] == "refused"
    assert api.get(f"trades/{trade_id}", got["buyer"]).get_json()["status"] == "escrowed"
    q = query(api, got, "SELECT count(*) AS n FROM retail")
    trade = api.get(f"trades/{trade_id}", got["buyer"]).get_json()
    assert (trade["status"], trade["delivery_evidence"]) == ("delivered", "query"), trade
    assert trade["delivery_sha256"] == q["result_sha256"]
    # A second query leaves the delivery as it was.
    query(api, got, "SELECT count(*) AS n FROM retail WHERE amount > 10")
    assert api.get(f"trades/{trade_id}", got["buyer"]).get_json()["delivery_sha256"] == q["result_sha256"]


def test_every_query_is_in_the_access_log_and_the_seller_sees_them(api):
    got = sandbox_bought(api)
    ok = query(api, got, "SELECT count(*) AS n FROM retail")
    refused = query(api, got, "SELECT * FROM retail")
    log = api.get(f"entitlements/{got['ent']['id']}/accesses", got["vendor"]).get_json()["items"]
    assert [(a["kind"], a["object"], a["status"]) for a in log] == [
        ("query", ok["id"], "allowed"), ("query", refused["id"], "refused")]
    assert log[1]["refused_reason"] == refused["refused_reason"] and log[0]["sha256"] == ok["result_sha256"]
    listed = api.get(f"entitlements/{got['ent']['id']}/queries", got["vendor"]).get_json()
    assert [q["id"] for q in listed["items"]] == [ok["id"], refused["id"]]
    assert listed["items"][0]["rows"] == ok["rows"]


def test_tables_show_the_columns_and_what_is_blocked(api):
    got = sandbox_bought(api)
    r = api.get(f"entitlements/{got['ent']['id']}/tables", got["buyer"])
    assert r.status_code == 200, r.get_json()
    (table,) = r.get_json()["tables"]
    assert table["name"] == "retail"
    blocked = {c["name"]: c["blocked"] for c in table["columns"]}
    assert blocked == {"customer_id": True, "phone": True, "city": False, "month": False, "amount": False,
                       "items": False}


def test_an_unknown_column_is_refused_by_name(api):
    got = sandbox_bought(api)
    q = query(api, got, "SELECT count(*) AS n FROM retail WHERE colour = 'red'")
    assert q["status"] == "refused" and q["refused_reason"].startswith("unknown_column:"), q


# -- access checks -----------------------------------------------------------------------------------
def test_a_suspended_entitlement_refuses_the_query_with_its_reason(api):
    got = sandbox_bought(api)
    r = api.post(f"trades/{got['trade']['id']}/disputes", got["buyer"], json={"reason": "answers look wrong"})
    assert r.status_code == 201, r.get_json()
    r = api.post(f"entitlements/{got['ent']['id']}/queries", got["buyer"], json={"sql": "SELECT count(*) FROM retail"})
    assert r.status_code == 403 and r.get_json()["detail"].startswith("entitlement_suspended: dispute open")
    log = api.get(f"entitlements/{got['ent']['id']}/accesses", got["buyer"]).get_json()["items"]
    assert [(a["kind"], a["status"]) for a in log] == [("query", "refused")]


def test_a_withdrawn_release_is_not_queried(api):
    got = sandbox_bought(api)
    assert api.post(f"releases/{got['release']['id']}/withdraw", got["vendor"]).status_code == 200
    r = api.post(f"entitlements/{got['ent']['id']}/queries", got["buyer"],
                 json={"sql": "SELECT count(*) FROM retail", "release_id": got["release"]["id"]})
    assert r.status_code == 403 and r.get_json()["detail"].startswith("release_withdrawn"), r.get_json()
    # Without release_id: no covered release is left.
    r = api.post(f"entitlements/{got['ent']['id']}/queries", got["buyer"], json={"sql": "SELECT count(*) FROM retail"})
    assert r.status_code == 409, r.get_json()


def test_only_the_buyer_queries_and_only_privacy_products(api):
    got = sandbox_bought(api)
    for who in (got["vendor"], api.operator()):
        r = api.post(f"entitlements/{got['ent']['id']}/queries", who, json={"sql": "SELECT count(*) FROM retail"})
        assert r.status_code == 403, r.get_json()
    file_product = certify(api, got["vendor"], delivery_mode="file")
    r = api.request("PUT", f"products/{file_product['id']}/sandbox-policy", got["vendor"], json={})
    assert r.status_code == 409, r.get_json()


def test_no_policy_no_query(api):
    got = sandbox_bought(api, policy={})
    r = api.post(f"entitlements/{got['ent']['id']}/queries", got["buyer"], json={"sql": "SELECT count(*) FROM retail"})
    assert r.status_code == 409 and "policy" in r.get_json()["detail"]
    assert api.get(f"products/{got['trade']['product_id']}/sandbox-policy").status_code == 404


# -- the policy --------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, field", [
    ({"min_group_size": 4}, "min_group_size"), ({"min_group_size": 10001}, "min_group_size"),
    ({"min_group_size": "10"}, "min_group_size"), ({"allowed_aggregates": ["median"]}, "allowed_aggregates"),
    ({"allowed_aggregates": []}, "allowed_aggregates"), ({"epsilon_budget": 0}, "epsilon_budget"),
    ({"epsilon_budget": "1"}, "epsilon_budget"), ({"bounds": {"amount": [1]}}, "bounds"),
    ({"bounds": {"amount": [5, 1]}}, "bounds"), ({"rows_per_person": 0}, "rows_per_person"),
    ({"max_groups": 0}, "max_groups"), ({"k": 10}, "k"),
])
def test_policy_validation_names_the_field_and_changes_nothing(api, body, field):
    got = sandbox_bought(api)
    url = f"products/{got['trade']['product_id']}/sandbox-policy"
    r = api.request("PUT", url, got["vendor"], json=body)
    assert r.status_code == 422 and any(k.split(".")[0] == field for k in r.get_json()["errors"]), r.get_json()
    assert api.get(url).get_json() == got["policy"]


def test_personal_information_requires_a_budget(api):
    got = sandbox_bought(api, DP_POLICY)
    url = f"products/{got['trade']['product_id']}/sandbox-policy"
    r = api.request("PUT", url, got["vendor"], json=EXACT_POLICY)
    assert r.status_code == 422 and "epsilon_budget" in r.get_json()["errors"]
    assert api.get(url).get_json()["epsilon_budget"] == 5.0


def test_the_policy_is_public_and_applies_to_the_next_query(api):
    got = sandbox_bought(api)
    url = f"products/{got['trade']['product_id']}/sandbox-policy"
    assert api.get(url).get_json()["blocked_columns"] == ["customer_id", "phone"]
    assert query(api, got, "SELECT month, count(*) AS n FROM retail GROUP BY month")["status"] == "succeeded"
    r = api.request("PUT", url, got["vendor"], json={**EXACT_POLICY, "blocked_columns": ["month", "phone"]})
    assert r.status_code == 200
    q = query(api, got, "SELECT month, count(*) AS n FROM retail GROUP BY month")
    assert q["status"] == "refused" and q["refused_reason"].startswith("blocked_column:")


# -- under a budget ----------------------------------------------------------------------------------
def spent(app, product_id, org_id):
    with app.app_context():
        return db.session.execute(select(PrivacyBudget.spent_micro).where(
            PrivacyBudget.product_id == product_id, PrivacyBudget.buyer_org_id == org_id)).scalar_one_or_none()


def test_a_budget_is_debited_before_the_query_and_refuses_when_spent(app, api):
    got = sandbox_bought(api, DP_POLICY)
    product_id, org = got["trade"]["product_id"], got["buyer"].org_id
    r = api.post(f"entitlements/{got['ent']['id']}/queries", got["buyer"], json={"sql": "SELECT count(*) FROM retail"})
    assert r.status_code == 422 and "epsilon" in r.get_json()["errors"]
    q = query(api, got, "SELECT city, count(*) AS n FROM retail GROUP BY city", epsilon=2.0)
    assert (q["status"], q["epsilon_spent"], q["epsilon_remaining"]) == ("succeeded", 2.0, 3.0), q
    # Refused by the grammar or the policy: nothing spent.
    for sql in ("SELECT max(amount) FROM retail", "SELECT sum(customer_id) FROM retail",
                "SELECT sum(month) FROM retail"):
        q = query(api, got, sql, epsilon=1.0)
        assert q["status"] == "refused" and q["epsilon_remaining"] == 3.0, q
    assert query(api, got, "SELECT max(amount) FROM retail", epsilon=1.0)["refused_reason"].startswith(
        "min_max_under_budget")
    assert query(api, got, "SELECT sum(month) FROM retail", epsilon=1.0)["refused_reason"].startswith(
        "bounds_required")
    q = query(api, got, "SELECT count(*) AS n FROM retail", epsilon=3.5)
    assert q["status"] == "refused" and q["refused_reason"].startswith("budget_exhausted"), q
    assert spent(app, product_id, org) == 2_000_000
    q = query(api, got, "SELECT count(*) AS n FROM retail", epsilon=3.0)
    assert q["status"] == "succeeded" and q["epsilon_remaining"] == 0.0
    assert query(api, got, "SELECT count(*) AS n FROM retail", epsilon=0.001)["refused_reason"].startswith(
        "budget_exhausted")


def test_the_budget_is_the_organizations_across_its_trades(api):
    got = sandbox_bought(api, DP_POLICY)
    query(api, got, "SELECT count(*) AS n FROM retail", epsilon=4.0)
    # The same buyer buys the product again: a new entitlement, the same budget.
    product = api.get(f"products/{got['trade']['product_id']}").get_json()
    offer = bid(api, got["buyer"], product)
    contract_id = api.post(f"offers/{offer['id']}/accept", got["vendor"]).get_json()["id"]
    sign(api, got["buyer"], contract_id)
    trade_id = sign(api, got["vendor"], contract_id)["trade_id"]
    pay(api, got["buyer"], trade_id)
    again = {**got, "ent": entitlement_of(api, got["buyer"], trade_id)}
    q = query(api, again, "SELECT count(*) AS n FROM retail", epsilon=2.0)
    assert q["status"] == "refused" and q["refused_reason"].startswith("budget_exhausted"), q


def test_noised_answers_are_near_the_truth_and_not_the_truth(api):
    rows = retail_rows(2000)
    got = sandbox_bought(api, {**DP_POLICY, "epsilon_budget": 50.0}, rows=rows)
    kept, _ = expected_groups(rows)
    truth = {c: (len(rs), sum(r["amount"] for r in rs)) for c, rs in kept.items()}
    answers = [query(api, got, "SELECT city, count(*) AS n, sum(amount) AS total FROM retail GROUP BY city",
                     epsilon=5.0) for _ in range(4)]
    exact = 0
    for q in answers:
        assert q["status"] == "succeeded", q
        for city, n, total in q["rows"]:
            true_n, true_total = truth[city]
            # Laplace scale: counts 1 / (5/3), sums 1000 / (5/3): far inside these bands.
            assert abs(n - true_n) <= 15 and abs(total - true_total) <= 15_000, (city, n, total, truth[city])
            exact += (n, total) == truth[city]
    assert exact < len(answers) * len(truth)  # noise was added
    assert len({q["result_sha256"] for q in answers}) == len(answers)


# -- per_call --------------------------------------------------------------------------------------
def test_per_call_privacy_products_count_one_call_per_succeeded_query(api):
    vendor, buyer = api.vendor(), api.enterprise()
    product = certify(api, vendor, delivery_mode="privacy_computing", data_format="csv",
                      price={"model": "per_call", "amount": 100, "currency": "CNY"})
    offer = bid(api, buyer, product, amount=100, terms=terms(product, calls=2))
    contract_id = api.post(f"offers/{offer['id']}/accept", vendor).get_json()["id"]
    sign(api, buyer, contract_id)
    trade_id = sign(api, vendor, contract_id)["trade_id"]
    rel = release(api, vendor, product["id"], {"retail.csv": to_csv(retail_rows())})
    pay(api, buyer, trade_id)
    assert api.request("PUT", f"products/{product['id']}/sandbox-policy", vendor, json=EXACT_POLICY).status_code == 200
    got = {"buyer": buyer, "vendor": vendor, "ent": entitlement_of(api, buyer, trade_id), "release": rel}
    assert query(api, got, "SELECT * FROM retail")["status"] == "refused"
    assert api.get(f"entitlements/{got['ent']['id']}", buyer).get_json()["calls_used"] == 0
    assert query(api, got, "SELECT count(*) AS n FROM retail")["status"] == "succeeded"
    assert api.get(f"entitlements/{got['ent']['id']}", buyer).get_json()["calls_used"] == 1
    assert query(api, got, "SELECT count(*) AS n FROM retail WHERE amount > 5")["status"] == "succeeded"
    r = api.post(f"entitlements/{got['ent']['id']}/queries", buyer, json={"sql": "SELECT count(*) FROM retail"})
    assert r.status_code == 429 and r.get_json()["detail"].startswith("quota_exhausted"), r.get_json()
    assert api.get(f"entitlements/{got['ent']['id']}", buyer).get_json()["calls_used"] == 2


def test_a_query_that_finds_every_worker_busy_spends_nothing(app, api):
    """Every place of the pool held (here by the test itself) past the time limit: `failed: busy`,
    and the epsilon is not debited (the place is taken before the budget is touched)."""
    from delivery import sandbox_engine

    got = sandbox_bought(api, DP_POLICY)
    app.config.update(QUERY_WORKERS=1, QUERY_TIMEOUT_S=0.3)
    with sandbox_engine.pool(1).slot(5):
        q = query(api, got, "SELECT count(*) AS n FROM retail", epsilon=1.0)
    assert q["status"] == "failed" and q["refused_reason"].startswith("busy:"), q
    assert q["epsilon_spent"] is None and q["epsilon_remaining"] == 5.0
    # The place free again, a query runs (with room to start a worker: the short limit was for the wait).
    app.config.update(QUERY_TIMEOUT_S=10)
    last = query(api, got, "SELECT count(*) AS n FROM retail", epsilon=1.0)
    assert last["status"] == "succeeded", last
