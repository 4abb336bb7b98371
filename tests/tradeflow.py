"""Helpers to drive offers, contracts and signatures through the real API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from exchange.db import utcnow
from exchange.fields import iso_z
from tests.certflow import certify
from tests.factories import Actor, ApiHelper


def terms(product: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"scope": "commercial", "duration_days": 365, "delivery_mode": product["delivery_mode"], **kw}


def bid(api: ApiHelper, buyer: Actor, product: dict[str, Any], amount: int | None = None,
        expect: int = 201, **extra: Any) -> dict[str, Any]:
    body = {"product_id": product["id"],
            "price": {"amount": amount or product["price"]["amount"], "currency": product["price"]["currency"]},
            "terms": terms(product), **extra}
    r = api.post("offers", buyer, json=body)
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def contract_for(api: ApiHelper, vendor: Actor, buyer: Actor, **product_overrides: Any) -> dict[str, Any]:
    """A certified product, a bid, its acceptance: the contract awaiting signatures."""
    product = certify(api, vendor, **product_overrides)
    offer = bid(api, buyer, product)
    r = api.post(f"offers/{offer['id']}/accept", vendor)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def sign(api: ApiHelper, actor: Actor, contract_id: str, expect: int = 201, **body: Any) -> dict[str, Any]:
    r = api.post(f"contracts/{contract_id}/signatures", actor, json=body)
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def live_fair(api: ApiHelper, vendor: Actor, product_ids: list[str] | None = None,
              starts: timedelta = timedelta(hours=-1), ends: timedelta = timedelta(days=2),
              code: str = "A-01") -> tuple[dict[str, Any], dict[str, Any]]:
    op = api.operator()
    now = utcnow()
    r = api.post("fairs", op, json={"name": "2026 广州数据交易会 test fair", "venue": "琶洲 Pazhou",
                                    "starts_at": iso_z(now + starts), "ends_at": iso_z(now + ends)})
    assert r.status_code == 201, r.get_json()
    fair = r.get_json()
    r = api.post(f"fairs/{fair['id']}/stalls", op,
                 json={"org_id": vendor.org_id, "code": code, "product_ids": product_ids or []})
    assert r.status_code == 201, r.get_json()
    return fair, r.get_json()


def clear_dossier(api: ApiHelper, contract_id: str, reference: str = "粤网信备-TEST-0001") -> dict[str, Any]:
    """File the contract's cross-border dossier as an operator, recording the approval where its path
    (a security assessment) needs one: delivery then no longer waits for it (API.md Compliance)."""
    operator = api.operator()
    dossier = api.get(f"contracts/{contract_id}/dossier", operator).get_json()
    if not dossier["filing"]["required"]:
        return dossier
    r = api.post(f"contracts/{contract_id}/dossier/filing", operator,
                 json={"reference": reference, "approved": dossier["filing"]["approval_required"]})
    assert r.status_code == 200, r.get_json()
    return r.get_json()
