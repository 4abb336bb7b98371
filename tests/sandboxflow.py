"""Helpers to drive privacy computing through the real API: a privacy-computing product sold and
paid for, its release published, the vendor's sandbox policy set, and the buyer's queries."""

from __future__ import annotations

import csv
import io
import random
from typing import Any

from tests.deliveryflow import bought
from tests.factories import Actor, ApiHelper

CITIES = ("广州", "深圳", "佛山", "东莞", "珠海", "香港", "澳门")
EXACT_POLICY = {"min_group_size": 10, "blocked_columns": ["customer_id", "phone"]}
DP_POLICY = {**EXACT_POLICY, "epsilon_budget": 5.0, "bounds": {"amount": [0, 1000], "items": [0, 20]},
             "rows_per_person": 1}


def retail_rows(n: int = 600, seed: int = 7) -> list[dict[str, Any]]:
    """Deterministic baskets: most cities well above k, 澳门 with fewer than 10 rows."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        city = CITIES[i % 6] if i % 100 else "澳门"  # 6 rows of 澳门 in 600
        rows.append({"customer_id": f"c{i:05d}", "phone": f"1380000{i:04d}", "city": city,
                     "month": f"2026-{1 + i % 10:02d}", "amount": rng.randint(1, 900), "items": rng.randint(1, 12)})
    return rows


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def sandbox_bought(api: ApiHelper, policy: dict[str, Any] | None = None, rows: list[dict[str, Any]] | None = None,
                   vendor: Actor | None = None, buyer: Actor | None = None, **product: Any) -> dict[str, Any]:
    """A privacy-computing product with `retail.csv` published, sold and paid for, and its policy set
    (None: leave it unset). `contains_personal_info` follows whether the policy has a budget."""
    policy = EXACT_POLICY if policy is None else policy
    personal = bool(policy and policy.get("epsilon_budget"))
    got = bought(api, vendor, buyer, files={"retail.csv": to_csv(rows or retail_rows())},
                 **{"delivery_mode": "privacy_computing", "data_format": "csv", "contains_personal_info": personal,
                    **product})
    if policy:
        r = api.request("PUT", f"products/{got['trade']['product_id']}/sandbox-policy", got["vendor"], json=policy)
        assert r.status_code == 200, r.get_json()
        got["policy"] = r.get_json()
    return got


def query(api: ApiHelper, got: dict[str, Any], sql: str, expect: int = 201, actor: Actor | None = None,
          **body: Any) -> dict[str, Any]:
    r = api.post(f"entitlements/{got['ent']['id']}/queries", actor or got["buyer"], json={"sql": sql, **body})
    assert r.status_code == expect, r.get_json()
    return r.get_json()
