"""Builders that create test data through the real API and services (so tests exercise the rules)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from exchange.db import db
from exchange.identity import services as identity

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


@dataclass
class Actor:
    """A logged-in user of some organization."""

    org_id: str
    user_id: str
    email: str
    org_type: str
    region: str
    token: str
    refresh_token: str
    password: str = PASSWORD
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class ApiHelper:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.test_client()
        self._operator: Actor | None = None

    # -- HTTP ---------------------------------------------------------------------------------
    def request(self, method: str, path: str, actor: Actor | None = None, json: Any = None,
                headers: dict[str, str] | None = None, **kw: Any) -> Any:
        h = dict(actor.headers) if actor else {}
        h.update(headers or {})
        if not path.startswith("/"):
            path = "/api/v1/" + path
        return self.client.open(path, method=method, json=json, headers=h, **kw)

    def get(self, path: str, actor: Actor | None = None, **kw: Any) -> Any:
        return self.request("GET", path, actor, **kw)

    def post(self, path: str, actor: Actor | None = None, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, actor, json=json if json is not None else {}, **kw)

    def patch(self, path: str, actor: Actor | None = None, json: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, actor, json=json, **kw)

    def delete(self, path: str, actor: Actor | None = None, **kw: Any) -> Any:
        return self.request("DELETE", path, actor, **kw)

    # -- Actors -------------------------------------------------------------------------------
    def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        r = self.post("auth/token", json={"email": email, "password": password})
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    def _actor(self, email: str, password: str = PASSWORD) -> Actor:
        tokens = self.login(email, password)
        me = self.client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        body = me.get_json()
        return Actor(org_id=body["organization"]["id"], user_id=body["user"]["id"], email=email,
                     org_type=body["organization"]["type"], region=body["organization"]["region"],
                     token=tokens["access_token"], refresh_token=tokens["refresh_token"], password=password)

    def operator(self, fresh: bool = False) -> Actor:
        if self._operator is None or fresh:
            n = next(_seq)
            email = f"operator{n}@exchange.test"
            with self.app.app_context():
                identity.create_operator(db.session, org_name="Test Exchange Operator", email=email,
                                         password=PASSWORD, name=f"Operator {n}")
                db.session.commit()
            actor = self._actor(email)
            if self._operator is None:
                self._operator = actor
            return actor
        return self._operator

    def register(self, type: str = "vendor", region: str = "GD", name: str | None = None) -> dict[str, Any]:
        n = next(_seq)
        body = {
            "name": name or f"{type.title()} {n} 测试机构",
            "type": type,
            "region": region,
            "registration_number": f"91440101TEST{n:06d}",
            "admin": {"email": f"{type}{n}@{type}.test", "password": PASSWORD, "name": f"Admin {n}"},
        }
        r = self.post("organizations", json=body)
        assert r.status_code == 201, r.get_json()
        return {**r.get_json(), "admin_email": body["admin"]["email"]}

    def org(self, type: str = "vendor", region: str = "GD", verified: bool = True,
            name: str | None = None) -> Actor:
        created = self.register(type, region, name)
        if verified:
            r = self.post(f"organizations/{created['id']}/verify", self.operator(), json={"reason": "checked"})
            assert r.status_code == 200, r.get_json()
        return self._actor(created["admin_email"])

    def vendor(self, region: str = "GD", **kw: Any) -> Actor:
        return self.org("vendor", region, **kw)

    def enterprise(self, region: str = "GD", **kw: Any) -> Actor:
        return self.org("enterprise", region, **kw)

    def assessor(self, region: str = "GD", **kw: Any) -> Actor:
        return self.org("assessor", region, **kw)

    def member(self, admin: Actor, role: str = "member") -> Actor:
        n = next(_seq)
        email = f"member{n}@{admin.org_type}.test"
        r = self.post(f"organizations/{admin.org_id}/members", admin,
                      json={"email": email, "password": PASSWORD, "name": f"Member {n}", "role": role})
        assert r.status_code == 201, r.get_json()
        return self._actor(email)

    def suspend(self, actor: Actor) -> None:
        r = self.post(f"organizations/{actor.org_id}/suspend", self.operator(), json={"reason": "test"})
        assert r.status_code == 200, r.get_json()


# -- listings (issue 3) ------------------------------------------------------------------------------

def with_personal_info(body: dict[str, Any]) -> dict[str, Any]:
    """Personal data states `personal_info` (API.md Compliance): 5,000 non-sensitive individuals unless given."""
    if body.get("contains_personal_info") and "personal_info" not in body:
        body["personal_info"] = {"subjects": 5_000, "sensitive": False}
    return body


def product_body(**overrides: Any) -> dict[str, Any]:
    """A valid product creation body (API.md Listings); keyword overrides replace top-level fields."""
    n = next(_seq)
    body: dict[str, Any] = {
        "title": f"广州市实时交通流量数据 Guangzhou real-time traffic flow #{n}",
        "summary": "全市主干道路段每5分钟的车流量、平均车速与拥堵指数 Flow, speed and congestion every 5 minutes",
        "description": "覆盖广州市11个区的主干道与快速路，数据来自地磁与视频检测器。\n"
                       "Covers arterial roads and expressways in all 11 districts of Guangzhou.",
        "category": "transport",
        "keywords": ["交通", "traffic", "拥堵指数"],
        "data_format": "csv",
        "delivery_mode": "api",
        "classification": "general",
        "contains_personal_info": False,
        "origin_region": "GD",
        "update_frequency": "realtime",
        "price": {"model": "one_time", "amount": 1_250_000, "currency": "CNY", "period": None},
        "sample": {"columns": ["road_id", "ts", "flow", "speed_kmh"],
                   "rows": [["GZ-001", "2026-11-01T08:00:00Z", 1320, 32.5],
                            ["GZ-002", "2026-11-01T08:00:00Z", 980, 41.0]]},
        "license": {"scope": "commercial", "duration_days": 365, "resale_allowed": False},
        "scenarios": ["交通信号配时优化 traffic signal timing"],
        "data_source": {"type": "self_collected", "description": "地磁与视频检测器 loop and video detectors"},
        "coverage": {"time_from": "2024-01-01T00:00:00Z", "time_to": None, "regions": ["广州市"]},
        "volume": {"records": 52_000_000, "bytes": 8_400_000_000},
    }
    body.update(overrides)
    return with_personal_info(body)


def create_product(api: ApiHelper, vendor: Actor, **overrides: Any) -> dict[str, Any]:
    """A draft product created through the API; returns its JSON."""
    r = api.post("products", vendor, json=product_body(**overrides))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def principal_of(api: ApiHelper, actor: Actor) -> Any:
    """The service-level Principal of a test actor."""
    from exchange.identity.models import User
    from exchange.principal import Principal

    with api.app.app_context():
        return Principal.of(db.session.get(User, actor.user_id))




def list_product(api: ApiHelper, vendor: Actor, product_id: str) -> str:
    """Certify the newest draft revision of a product through the API, as production does: the
    vendor submits it for certification and operators approve every stage, which lists it with a
    real certificate. Returns the certificate number."""
    from tests.certflow import approve_all, submit

    done = approve_all(api, submit(api, vendor, product_id)["id"])
    assert done["status"] == "approved" and done["certificate_number"], done
    return done["certificate_number"]


def listed_product(api: ApiHelper, vendor: Actor, **overrides: Any) -> dict[str, Any]:
    """A listed product (created and certified through the API)."""
    created = create_product(api, vendor, **overrides)
    list_product(api, vendor, created["id"])
    r = api.get(f"products/{created['id']}", vendor)
    assert r.status_code == 200 and r.get_json()["status"] == "listed", r.get_json()
    return r.get_json()
