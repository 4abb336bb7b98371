"""OWASP API2:2023 Broken Authentication, across the whole API.

The JWT attacks themselves (alg none, key confusion, foreign keys, missing and wrong claims, expiry,
refresh rotation and reuse, logout, suspension) are tests/api/test_auth.py, against one endpoint;
brute force is tests/api/test_ratelimit.py. Here the same forged tokens (made with its helper) go to
every operation that needs a token, with and without a valid body: each answers 401 problem+json
before looking at the body, and none ever acts as the token's user.
"""

from __future__ import annotations

import json
import time

import pytest

from exchange.api import requires_token
from exchange.errors import PROBLEM_JSON
from tests.api.test_auth import _b64url, _claims, _forge
from tests.world import operations


# One populated exchange for the whole module: these tests only add objects of their own.
@pytest.fixture
def world(shared_world):
    return shared_world


@pytest.fixture
def api(shared_world):
    return shared_world.api


def forged_tokens(app, genuine: str) -> dict[str, str]:
    claims = _claims(genuine)
    now = int(time.time())
    none_header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return {
        "alg none": f"{none_header}.{_b64url(json.dumps(claims).encode())}.",
        "foreign key": _forge(app, claims, key=b"k" * 32),
        "raw secret": _forge(app, claims, key=app.config["SECRET_KEY"].encode()),
        "HS512": _forge(app, claims, algorithm="HS512"),
        "expired": _forge(app, {**claims, "iat": now - 1000, "exp": now - 60}),
        "other audience": _forge(app, {**claims, "aud": "another-api"}),
        "refresh typ": _forge(app, {**claims, "typ": "refresh"}),
        "unknown user": _forge(app, {**claims, "sub": "usr_00000000000000000000000000"}),
        "garbage": "a.b.c",
    }


def test_every_operation_needing_a_token_refuses_none_and_every_forgery_first(api, world):
    app = api.app
    spec = api.get("/api/v1/openapi.json").get_json()
    genuine = world.actors["operator"].token
    tokens: dict[str, str | None] = {"no token": None, **forged_tokens(app, genuine)}
    secured = [(m, p) for m, p, op in operations(spec) if requires_token(op.get("security"))]
    assert len(secured) >= 60, len(secured)
    failures = []
    for method, path in secured:
        url = world.path(path)
        for name, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            # An empty JSON object: invalid for most bodies, and still a 401 (authentication comes first).
            body = {} if method in ("POST", "PATCH", "PUT") else None
            r = api.request(method, url, json=body, headers=headers)
            if r.status_code != 401 or r.mimetype != PROBLEM_JSON:
                failures.append(f"{method} {path} with {name}: {r.status_code} {r.get_data(as_text=True)[:120]}")
    assert not failures, "\n".join(failures)


def test_a_forged_token_on_a_public_operation_is_refused_not_taken_as_anonymous(api, world):
    app = api.app
    forged = forged_tokens(app, world.actors["owner"].token)
    for path in (f"products/{world.ids['product']}", f"organizations/{world.ids['owner_org']}",
                 f"certifications/{world.ids['cert_notice']}", "products"):
        for name, token in forged.items():
            r = api.get(path, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, (path, name, r.get_json())
    # A forged owner token never reveals the owner's draft product either.
    r = api.get(f"products/{world.ids['draft']}", headers={"Authorization": f"Bearer {forged['foreign key']}"})
    assert r.status_code == 401


def test_a_deactivated_user_is_locked_out_at_once(api):
    app = api.app
    from exchange.db import db
    from exchange.identity.models import User

    vendor = api.vendor()
    member = api.member(vendor)
    with app.app_context():
        db.session.get(User, member.user_id).active = False
        db.session.commit()
    assert api.get("me", member).status_code == 401
    assert api.post("auth/refresh", json={"refresh_token": member.refresh_token}).status_code == 401
    assert api.post("auth/token", json={"email": member.email, "password": member.password}).status_code == 401
    assert api.get("me", vendor).status_code == 200
