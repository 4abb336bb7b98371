"""Every error class answers RFC 9457 problem+json with the right status (API.md Conventions)."""

from __future__ import annotations

import json
import secrets

import pytest

from tests import testapp
from tests.factories import PASSWORD

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(r, status: int, *, errors: set[str] | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:500])
    assert r.mimetype == "application/problem+json"
    body = json.loads(r.get_data())
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["request_id"] == r.headers["X-Request-Id"]
    if errors is not None:
        assert set(body["errors"]) == errors, body
        assert all(isinstance(m, list) and m and all(isinstance(x, str) for x in m)
                   for m in body["errors"].values())
    return body


def registration(n: int = 1, **changes) -> dict:
    body = {
        "name": f"错误测试 Error Test {n}",
        "type": "vendor",
        "region": "GD",
        "registration_number": f"ERR-{n:04d}",
        "admin": {"email": f"admin{n}@errors.test", "password": PASSWORD, "name": "管理员"},
    }
    body.update(changes)
    return body


def post_raw(client, path: str, data, content_type: str = "application/json", **kw):
    return client.post(path, data=data, content_type=content_type, **kw)


# -- 400 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"{",
    b'{"name": }',
    b"\xff\xfe not utf-8",
    b"{'single': 'quotes'}",
    b'{"a": 1} trailing',
])
def test_malformed_json_is_400(client, raw):
    body = assert_problem(post_raw(client, "/api/v1/organizations", raw), 400)
    assert "JSON" in body["detail"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_400(client, constant):
    raw = f'{{"name": "x", "type": "vendor", "region": "GD", "registration_number": {constant}}}'
    assert_problem(post_raw(client, "/api/v1/organizations", raw), 400)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.5e999"])
def test_numbers_that_overflow_to_infinity_are_400(client, number):
    raw = f'{{"name": "x", "type": "vendor", "region": "GD", "registration_number": {number}}}'
    assert_problem(post_raw(client, "/api/v1/organizations", raw), 400)


def test_duplicate_keys_are_400(client):
    body = json.dumps(registration(1))[:-1] + ', "name": "Someone Else"}'
    r = assert_problem(post_raw(client, "/api/v1/organizations", body), 400)
    assert "duplicate" in r["detail"]


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_400(client, depth):
    raw = "[" * depth + "]" * depth
    body = assert_problem(post_raw(client, "/api/v1/organizations", raw), 400)
    assert "nest" in body["detail"].lower()


def test_reasonable_nesting_is_not_refused_as_malformed(client):
    raw = json.dumps(registration(admin={"email": "a@b.test", "password": PASSWORD, "name": "ok"}))
    assert client.post("/api/v1/organizations", data=raw, content_type="application/json").status_code == 201


# -- 401 / 403 / 404 / 405 ---------------------------------------------------------------------------

def test_401_without_token(client):
    body = assert_problem(client.get("/api/v1/me"), 401)
    assert "Bearer" in body["detail"]


def test_403_for_a_non_operator(api):
    assert_problem(api.get("audit", api.vendor()), 403)


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/organizations/org_x/nope", "/nope", "/api/v2/health"])
def test_404_unknown_route(client, path):
    assert_problem(client.get(path), 404)


def test_404_unknown_id(api):
    body = assert_problem(api.get("organizations/org_000000000000deadbeefdeadbeefdead"), 404)
    assert "org_000000000000" not in body["detail"]


def test_405_wrong_method_names_the_allowed_ones(client):
    r = client.delete("/api/v1/health")
    assert_problem(r, 405)
    assert "GET" in r.headers["Allow"]
    assert_problem(client.put("/api/v1/organizations", json={}), 405)


# -- 409 ----------------------------------------------------------------------------------------

def _duplicate_of_first(field: str) -> dict:
    dup = registration(2)
    if field == "name":
        dup["name"] = registration(1)["name"]
    elif field == "registration_number":
        dup["registration_number"] = registration(1)["registration_number"]
    else:
        dup["admin"]["email"] = registration(1)["admin"]["email"]
    return dup


@pytest.mark.parametrize("field", ["name", "registration_number", "admin.email"])
def test_409_duplicate_registration(client, field):
    assert client.post("/api/v1/organizations", json=registration(1)).status_code == 201
    assert_problem(client.post("/api/v1/organizations", json=_duplicate_of_first(field)), 409, errors={field})
    # Nothing was half-created by the refused registration.
    assert client.post("/api/v1/organizations", json=registration(2)).status_code == 201


def test_409_duplicate_name_is_case_insensitive(client):
    assert client.post("/api/v1/organizations", json=registration(1)).status_code == 201
    dup = registration(2, name=registration(1)["name"].upper())
    assert_problem(client.post("/api/v1/organizations", json=dup), 409, errors={"name"})


def test_409_duplicate_email_is_case_insensitive(client):
    assert client.post("/api/v1/organizations", json=registration(1)).status_code == 201
    dup = registration(2)
    dup["admin"]["email"] = "ADMIN1@Errors.Test"
    assert_problem(client.post("/api/v1/organizations", json=dup), 409, errors={"admin.email"})


# -- 413 / 415 ----------------------------------------------------------------------------------

def test_413_body_over_one_mebibyte(client):
    big = json.dumps({"name": "x" * (1024 * 1024)})
    assert_problem(post_raw(client, "/api/v1/organizations", big), 413)


def test_just_under_the_limit_is_not_413(client):
    body = json.dumps(registration(1, name="x" * (1024 * 1024 - 500)))
    assert len(body) < 1024 * 1024
    assert_problem(post_raw(client, "/api/v1/organizations", body), 422, errors={"name"})


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml"])
def test_415_not_json(client, content_type):
    r = post_raw(client, "/api/v1/organizations", json.dumps(registration(1)), content_type)
    assert_problem(r, 415)


def test_415_form_post(client):
    assert_problem(client.post("/api/v1/organizations", data={"name": "x"}), 415)


def test_json_with_charset_is_accepted(client):
    r = post_raw(client, "/api/v1/organizations", json.dumps(registration(1)), "application/json; charset=utf-8")
    assert r.status_code == 201


# -- 422 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "fields"), [
    (registration(1, status="verified"), {"status"}),
    (registration(1, id="org_mine"), {"id"}),
    ({**registration(1), "admin": {**registration(1)["admin"], "role": "admin"}}, {"admin.role"}),
    ({**registration(1), "admin": {**registration(1)["admin"], "password": "short"}}, {"admin.password"}),
    (registration(1, type="operator"), {"type"}),
    (registration(1, type="bank"), {"type"}),
    (registration(1, region="US"), {"region"}),
    (registration(1, name="bad\u0000name"), {"name"}),
    ({**registration(1), "admin": {**registration(1)["admin"], "email": "a\u0000@b.test"}}, {"admin.email"}),
    (registration(1, name=""), {"name"}),
    (registration(1, name=12), {"name"}),
    ({"name": "only a name"}, {"type", "region", "registration_number", "admin"}),
])
def test_422_with_field_level_errors(client, body, fields):
    body = assert_problem(client.post("/api/v1/organizations", json=body), 422, errors=fields)
    assert "validation" in body["type"]


def test_422_for_an_empty_body(client):
    r = client.post("/api/v1/organizations", data=b"", content_type="application/json")
    assert_problem(r, 422)


@pytest.mark.parametrize(("path", "body", "field"), [
    ("auth/token", {"email": "a\u0000b@x.test", "password": "whatever"}, "email"),
    ("auth/token", {"email": "a@x.test", "password": "pass\u0000word"}, "password"),
    ("auth/refresh", {"refresh_token": "rt_\u0000"}, "refresh_token"),
    ("organizations", {"name": "x", "\u0000": 1}, "\\u0000"),
])
def test_nul_bytes_are_422_on_every_database(client, path, body, field):
    assert_problem(client.post(f"/api/v1/{path}", json=body), 422, errors={field})


def test_nul_in_an_id_or_a_query_string_is_not_a_500(api):
    op = api.operator()
    assert_problem(api.get("organizations/org_\u0000x", op), 404)
    assert_problem(api.get("audit?object_id=%00", op), 422, errors={"object_id"})
    assert_problem(api.get("organizations?status=pending%00", op), 422, errors={"status"})


@pytest.fixture
def values_client(make_app):
    app, _ = testapp.build(make_app)
    return app.test_client()


@pytest.mark.parametrize(("body", "field"), [
    ({"count": 2**53}, "count"),
    ({"count": 10**30}, "count"),
    ({"count": 1.5}, "count"),
    ({"count": "3"}, "count"),
    ({"count": True}, "count"),
    ({"count": -1}, "count"),
    ({"price": {"amount": 2**53, "currency": "CNY"}}, "price.amount"),
    ({"price": {"amount": 0, "currency": "CNY"}}, "price.amount"),
    ({"price": {"amount": 100.0, "currency": "CNY"}}, "price.amount"),
    ({"price": {"amount": 100, "currency": "USD"}}, "price.currency"),
    ({"price": {"amount": 100, "currency": "CNY", "fx": 1}}, "price.fx"),
    ({"at": "2026-11-28T04:00:00"}, "at"),
    ({"at": "2026-11-28 04:00"}, "at"),
    ({"at": "yesterday"}, "at"),
    ({"label": "tab\there"}, "label"),
])
def test_422_for_values_the_shared_fields_refuse(values_client, body, field):
    assert_problem(values_client.post("/api/v1/_test/values", json=body), 422, errors={field})


def test_shared_fields_accept_their_limits_and_normalize_times(values_client):
    body = {"count": 2**53 - 1, "price": {"amount": 2**53 - 1, "currency": "MOP"},
            "at": "2026-11-28T12:00:00+08:00", "label": "  澳門  "}
    r = values_client.post("/api/v1/_test/values", json=body)
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    assert out["at"] == "2026-11-28T04:00:00Z"
    assert out["count"] == 2**53 - 1 and out["price"] == {"amount": 2**53 - 1, "currency": "MOP"}
    assert out["label"] == "澳門"


# -- 500 ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
def test_500_has_no_stack_trace_and_carries_a_request_id(make_app, method):
    app, _ = testapp.build(make_app)
    r = app.test_client().open("/api/v1/_test/boom", method=method, json={} if method == "POST" else None,
                               headers={"X-Request-Id": "trace-me-123"})
    body = assert_problem(r, 500)
    assert body["request_id"] == "trace-me-123"
    text = r.get_data(as_text=True)
    for leak in ("Traceback", "RuntimeError", "hunter2", "secret", ".py", "line "):
        assert leak not in text


def test_500_in_production_mode_is_the_same(make_app):
    app, _ = testapp.build(make_app, DATAFAIR_ENV="production", SECRET_KEY=secrets.token_urlsafe(48),
                           PASSWORD_HASH_METHOD="scrypt:1024:8:1")
    r = app.test_client().get("/api/v1/_test/boom")
    assert_problem(r, 500)
    assert "Traceback" not in r.get_data(as_text=True)


# -- 429 shape (the limits themselves are tested in test_ratelimit.py) ---------------------------

def test_429_has_retry_after(api, app):
    app.config["LOGIN_RATE_LIMIT"] = "2/minute"
    for _ in range(2):
        assert api.post("auth/token", json={"email": "x@limit.test", "password": "wrong password"}).status_code == 401
    r = api.post("auth/token", json={"email": "x@limit.test", "password": "wrong password"})
    assert_problem(r, 429)
    assert 1 <= int(r.headers["Retry-After"]) <= 60
