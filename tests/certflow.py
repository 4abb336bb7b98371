"""Helpers to drive products through certification via the real API (shared by certification and
trading tests)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from tests.factories import Actor, ApiHelper, with_personal_info

_n = itertools.count(1)

BASE_PRODUCT: dict[str, Any] = {
    "title": "广州市实时交通流量数据 Guangzhou real-time traffic flow",
    "summary": "全市主干道每5分钟交通流量 Traffic flow on arterial roads every 5 minutes",
    "description": "来自路口感应线圈与视频检测的交通流量数据。Loop detector and video counts for Guangzhou.",
    "category": "transport",
    "keywords": ["交通", "traffic", "流量"],
    "data_format": "csv",
    "delivery_mode": "api",
    "classification": "general",
    "contains_personal_info": False,
    "origin_region": "GD",
    "update_frequency": "realtime",
    "price": {"model": "one_time", "amount": 1250000, "currency": "CNY", "period": None},
    "license": {"scope": "commercial", "duration_days": 365, "resale_allowed": False},
    "scenarios": ["交通信号配时优化 traffic signal timing"],
    "data_source": {"type": "self_collected", "description": "路口检测器 intersection detectors"},
}
DOCS = [{"name": "data-source-licence.pdf", "sha256": "ab" * 32}]


def product_body(**overrides: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE_PRODUCT)
    body["title"] = f"{body['title']} #{next(_n)}"
    body.update(overrides)
    return with_personal_info(body)


def create_product(api: ApiHelper, vendor: Actor, **overrides: Any) -> dict[str, Any]:
    r = api.post("products", vendor, json=product_body(**overrides))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def submit(api: ApiHelper, vendor: Actor, product_id: str) -> dict[str, Any]:
    r = api.post("certifications", vendor, json={"product_id": product_id, "documents": DOCS})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def review(api: ApiHelper, actor: Actor, cert_id: str, stage: str, decision: str = "approve",
           expect: int = 201) -> dict[str, Any]:
    r = api.post(f"certifications/{cert_id}/reviews", actor,
                 json={"stage": stage, "decision": decision, "comment": "checked",
                       "checklist": {"sample_checked": True}})
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def approve_all(api: ApiHelper, cert_id: str, operators: list[Actor] | None = None) -> dict[str, Any]:
    """Approve every stage as operators (a second operator for four-eyes when needed)."""
    ops = operators or [api.operator()]
    body: dict[str, Any] = {}
    for stage in ("quality", "ownership"):
        body = review(api, ops[0], cert_id, stage)
    body = review(api, ops[0], cert_id, "compliance")
    stage = next(s for s in body["stages"] if s["name"] == "compliance")
    if stage["status"] == "pending":
        second = ops[1] if len(ops) > 1 else api.operator(fresh=True)
        body = review(api, second, cert_id, "compliance")
    return body


def certify(api: ApiHelper, vendor: Actor, **overrides: Any) -> dict[str, Any]:
    """Create a product and drive it to `listed` with a valid certificate; returns the product JSON."""
    product = create_product(api, vendor, **overrides)
    cert = submit(api, vendor, product["id"])
    done = approve_all(api, cert["id"])
    assert done["status"] == "approved", done
    r = api.get(f"products/{product['id']}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()
