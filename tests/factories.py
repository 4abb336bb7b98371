"""Builders that create test data through the real API and services (so tests exercise the rules)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from exchange import identity
from exchange.db import db

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
