"""OWASP API4:2023 Unrestricted Resource Consumption: oversized pages, bodies, nesting, queries, strings
and arrays are refused with a 4xx, quickly (each answer is timed), on every operation they can reach."""

from __future__ import annotations

import json
import time

import pytest

from exchange.api import MAX_BODY_BYTES, MAX_JSON_DEPTH
from tests.certflow import product_body
from tests.world import operations

FAST = 1.0  # seconds: a refusal must never do the work it refuses


# One populated exchange for the whole module: every request here is refused, only reads, or writes a
# release of its own.
@pytest.fixture
def world(shared_world):
    return shared_world


@pytest.fixture
def api(shared_world):
    return shared_world.api


@pytest.fixture
def spec(api):
    return api.get("/api/v1/openapi.json").get_json()


def timed(api, method, path, actor=None, **kw):
    started = time.perf_counter()
    r = api.request(method, path, actor, **kw)
    return r, time.perf_counter() - started


def _query_params(op):
    return {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}


def test_every_list_refuses_pages_beyond_its_bounds(api, world, spec):
    op_actor = world.actors["operator"]
    lists = [(m, p) for m, p, op in operations(spec) if "per_page" in _query_params(op)]
    assert len(lists) >= 15, lists
    for method, path in lists:
        url = world.path(path)
        # Webhook endpoints are their organization's only (operators included: 404).
        actor = world.actors["owner"] if path.startswith("/api/v1/webhook-endpoints/") else op_actor
        for query in ("per_page=101", "per_page=0", "per_page=-1", "per_page=1000000", "page=0",
                      "page=1000001", "per_page=1e9", "page=99999999999999999999999"):
            r, took = timed(api, method, f"{url}?{query}", actor)
            assert r.status_code == 422, (path, query, r.get_json())
            assert took < FAST, (path, query, took)
        r = api.request(method, f"{url}?per_page=100&page=1000000", actor)
        assert r.status_code == 200 and r.get_json()["items"] == [], (path, r.get_json())


UPLOAD = ("PUT", "/api/v1/releases/{release_id}/files/{name}")


def raw_uploads(spec) -> set[tuple[str, str]]:
    """Operations whose body is raw bytes, not JSON: their own size limit, never parsed."""
    return {(m, p) for m, p, op in operations(spec) if m in ("POST", "PATCH", "PUT")
            and "application/octet-stream" in op.get("requestBody", {}).get("content", {})}


def json_writes(spec) -> list[tuple[str, str]]:
    raw = raw_uploads(spec)
    assert raw == {UPLOAD}, raw  # a new raw-body route needs its limit tested like the upload's below
    return [(m, p) for m, p, _ in operations(spec) if m in ("POST", "PATCH", "PUT") and (m, p) not in raw]


def test_bodies_over_one_mebibyte_are_413_on_every_write(api, world, spec):
    vendor = world.actors["owner"]
    big = json.dumps({"title": "x" * MAX_BODY_BYTES})
    writes = json_writes(spec)
    assert len(writes) >= 40
    for method, path in writes:
        r, took = timed(api, method, world.path(path), vendor, data=big,
                        headers={"Content-Type": "application/json"})
        assert r.status_code == 413, (path, r.status_code)
        assert r.mimetype == "application/problem+json"
        assert took < FAST, (path, took)


def test_deeply_nested_json_is_400_on_every_write(api, world, spec):
    vendor = world.actors["owner"]
    hostile = "[" * 100_000 + "]" * 100_000  # 200 kB, far deeper than any parser's stack
    just_too_deep = json.dumps({"a": json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)})
    for method, path in json_writes(spec):
        if path.startswith("/api/v1/webhooks/"):
            continue
        for body in (hostile, just_too_deep):
            r, took = timed(api, method, world.path(path), vendor, data=body,
                            headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (path, r.status_code, r.get_json())
            assert took < FAST, (path, took)


def _draft_release(api, world) -> str:
    r = api.post(f"products/{world.ids['file_product']}/releases", world.actors["owner"], json={"label": "api4"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def test_the_upload_has_its_own_size_limit_refused_fast_and_parses_nothing(api, world):
    """The upload is outside the JSON limits: over DATAFAIR_MAX_UPLOAD_BYTES it is 413 before the
    body is read; under it, a body over 1 MiB and nested past any JSON depth is a file, unparsed."""
    vendor = world.actors["owner"]
    release_id = _draft_release(api, world)
    path = f"/api/v1/releases/{release_id}/files/data.json"
    raw = {"Content-Type": "application/octet-stream"}
    saved = api.app.config["MAX_UPLOAD_BYTES"]
    try:
        api.app.config["MAX_UPLOAD_BYTES"] = MAX_BODY_BYTES // 4
        r, took = timed(api, "PUT", path, vendor, data=b"x" * (MAX_BODY_BYTES // 4 + 1), headers=raw)
        assert r.status_code == 413 and r.mimetype == "application/problem+json", r.get_data()[:300]
        assert took < FAST
        api.app.config["MAX_UPLOAD_BYTES"] = 4 * MAX_BODY_BYTES
        hostile = b"[" * (MAX_BODY_BYTES + 1) + b"]" * (MAX_BODY_BYTES + 1)
        r, took = timed(api, "PUT", path, vendor, data=hostile, headers=raw)
        assert r.status_code == 201, r.get_data()[:300]
        assert r.get_json()["bytes"] == len(hostile) and took < FAST * 3, took
    finally:
        api.app.config["MAX_UPLOAD_BYTES"] = saved
    # JSON is not a way around it: the upload takes raw bytes only.
    r = api.request("PUT", path, vendor, data=json.dumps({"title": "x"}), headers={"Content-Type": "application/json"})
    assert r.status_code == 415 and r.mimetype == "application/problem+json"
    files = api.get(f"releases/{release_id}", vendor).get_json()["files"]
    assert [(f["name"], f["bytes"]) for f in files] == [("data.json", len(hostile))]


def test_a_ten_thousand_term_query_is_refused_fast_and_a_long_allowed_one_is_capped(api, world):
    ten_thousand = " ".join(f"term{i}" for i in range(10_000))
    r, took = timed(api, "GET", f"/api/v1/products?q={ten_thousand}")
    assert r.status_code == 422 and "q" in r.get_json()["errors"]
    assert took < FAST
    chinese = "交通" * 5_000
    r, took = timed(api, "GET", f"/api/v1/products?q={chinese}")
    assert r.status_code == 422 and took < FAST
    # The longest query allowed (200 characters of one-letter terms): answered, and quickly.
    many = " ".join("abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(100))[:200]
    r, took = timed(api, "GET", f"/api/v1/products?q={many}")
    assert r.status_code == 200 and took < FAST * 3, took


def test_long_strings_and_long_arrays_are_422_not_stored(api, world):
    vendor = world.actors["owner"]
    cases = [
        product_body(title="数" * 100_000),
        product_body(description="d" * 300_000),
        product_body(keywords=["k"] * 10_000),
        product_body(scenarios=["交通信号配时优化"] * 1_000),
        product_body(sample={"columns": ["a"], "rows": [["x"]] * 5_000}),
    ]
    for body in cases:
        r, took = timed(api, "POST", "/api/v1/products", vendor, json=body)
        assert r.status_code == 422, r.get_json()
        assert took < FAST
    r, took = timed(api, "POST", "/api/v1/procurements", world.actors["buyer"],
                    json={"title": "t", "description": "d", "category": "transport", "keywords": ["k"] * 5_000,
                          "budget": {"max_amount": 1, "currency": "CNY"}, "deadline": "2099-01-01T00:00:00Z"})
    assert r.status_code == 422 and took < FAST


@pytest.mark.parametrize("number", ["1" * 5_000, "1e400", "-1" + "0" * 400, "123456789012345678901234567890"])
def test_huge_numbers_are_refused_without_work(api, world, number):
    body = (f'{{"product_id": "{world.ids["product"]}", "price": {{"amount": {number}, "currency": "CNY"}}, '
            '"terms": {"scope": "commercial", "duration_days": 1, "delivery_mode": "api"}}')
    r, took = timed(api, "POST", "/api/v1/offers", world.actors["buyer"], data=body,
                    headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.get_json()
    assert took < FAST


def test_an_oversized_idempotency_key_and_match_limit_are_refused(api, world):
    buyer = world.actors["buyer"]
    r = api.post("procurements", buyer, json={}, headers={"Idempotency-Key": "k" * 10_000})
    assert r.status_code == 422
    r = api.get(f"procurements/{world.ids['procurement']}/matches?limit=51", buyer)
    assert r.status_code == 422
    r = api.get(f"products/{world.ids['product']}/matches?limit=100000", world.actors["owner"])
    assert r.status_code == 422
