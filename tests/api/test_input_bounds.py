"""Input: every string, array, integer and free-form object a request can carry has a documented bound
that the API enforces; Unicode (Chinese, emoji, right-to-left text, combining marks) round-trips
unchanged or is refused with 422 (NUL, lone surrogates, control characters), never a 500; times
without a timezone are refused the same way in every field, and times with one are shown in UTC."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from exchange.db import utcnow
from tests.certflow import certify, product_body
from tests.openapi_walk import body_schema, key, nest, objects, resolve
from tests.security.matrix import body_caller
from tests.tradeflow import contract_for, sign
from tests.world import operations, procurement_body


# One populated exchange for the whole module: these tests only add objects of their own.
@pytest.fixture
def world(shared_world):
    return shared_world


@pytest.fixture
def api(shared_world):
    return shared_world.api


def _params(op: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]


def _unbounded(spec: dict[str, Any], schema: dict[str, Any], where: str, out: list[str], depth: int = 0) -> None:
    schema = resolve(spec, schema)
    kind = schema.get("type")
    if kind == "string" and not ({"maxLength", "enum"} & schema.keys()):
        out.append(f"{where}: string without maxLength")
    elif kind == "integer" and "maximum" not in schema:
        out.append(f"{where}: integer without maximum")
    elif kind == "array":
        if "maxItems" not in schema:
            out.append(f"{where}: array without maxItems")
        _unbounded(spec, schema.get("items", {}), f"{where}[]", out, depth + 1)
    elif kind == "object" or "properties" in schema:
        if "properties" not in schema and "maxProperties" not in schema:
            out.append(f"{where}: open object without maxProperties")
        for name, sub in schema.get("properties", {}).items():
            _unbounded(spec, sub, f"{where}.{name}", out, depth + 1)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for i, option in enumerate(extra.get("oneOf", [extra])):
                _unbounded(spec, option, f"{where}.*{i}", out, depth + 1)


def test_every_input_the_document_describes_is_bounded(api):
    spec = api.get("/api/v1/openapi.json").get_json()
    found: list[str] = []
    for method, path, op in operations(spec):
        for param in _params(op) + spec["paths"][path].get("parameters", []):
            _unbounded(spec, param.get("schema", {}), f"{method} {path} {param['in']} {param['name']}", found)
        schema = body_schema(op)
        if schema is not None:
            _unbounded(spec, schema, f"{method} {path} body", found)
    assert not found, "\n".join(found)


def test_the_documented_bounds_are_the_enforced_ones(api, world):
    spec = api.get("/api/v1/openapi.json").get_json()
    checked, failures = 0, []
    for method, path, op in operations(spec):
        schema = body_schema(op)
        if schema is None:
            continue
        actor, target = body_caller(world, method, path)
        for prefix, props in objects(spec, schema):
            for name, sub in props.items():
                if sub.get("type") == "string" and "maxLength" in sub:
                    too_long: Any = "数" * (sub["maxLength"] + 1)
                elif sub.get("type") == "array" and "maxItems" in sub:
                    too_long = ["x"] * (sub["maxItems"] + 1)
                else:
                    continue
                r = api.request(method, target, actor, json=nest(prefix, {name: too_long}))
                field = key(prefix, name)
                errors = (r.get_json() or {}).get("errors") or {}
                checked += 1
                if r.status_code != 422 or not any(k == field or k.startswith(field + ".") for k in errors):
                    failures.append(f"{method} {path} {field}: {r.status_code} {sorted(errors)[:5]}")
    assert checked > 60, checked
    assert not failures, "\n".join(failures)


TEXTS = {
    "chinese": "广州数据交易所·粤港澳大湾区 數據 跨境",
    "emoji": "数据🚀📊 ok 👩🏽‍💻 🇭🇰",
    "rtl": "بيانات המידע \u202eabc\u202c mixed",
    "combining": "e\u0301 n\u0303 Å 한국어 ﷽",
    "zero width": "a\u200bb\u200dc\ufeffd",
}
REFUSED = {
    "NUL": "data\x00base",
    "lone surrogate": "broken\ud800text",
    "bell": "ring\x07",
    "escape": "\x1b[31mred",
}


def _send(api, method: str, path: str, actor, body: Any):
    # ASCII-escaped JSON text: "\\ud800" reaches the server as JSON allows it, however unpaired.
    return api.request(method, path, actor, data=json.dumps(body), headers={"Content-Type": "application/json"})


def _write_and_read(api, world, text: str) -> dict[str, tuple[Any, Any]]:
    """Write `text` through several domains' text fields; return field -> (status, value read back)."""
    owner, buyer = world.actors["owner"], world.actors["buyer"]
    out: dict[str, tuple[Any, Any]] = {}
    r = _send(api, "POST", "products", owner, product_body(title=text, keywords=[text[:50]], scenarios=[text]))
    got = r.get_json()
    out["product"] = (r.status_code, r.status_code == 201 and api.get(f"products/{got['id']}", owner).get_json())
    r = _send(api, "POST", "procurements", buyer, procurement_body(title=text, description=text))
    out["procurement"] = (r.status_code, r.status_code == 201 and r.get_json())
    r = _send(api, "PATCH", f"organizations/{buyer.org_id}", buyer, {"display_name": text})
    out["organization"] = (r.status_code, r.status_code == 200 and api.get(f"organizations/{buyer.org_id}").get_json())
    r = _send(api, "POST", "offers", buyer, {"product_id": world.ids["product"], "message": text,
                                             "price": {"amount": 1_000, "currency": "CNY"},
                                             "terms": {"scope": "commercial", "duration_days": 30,
                                                       "delivery_mode": "api"}})
    out["offer"] = (r.status_code, r.status_code == 201 and api.get(f"offers/{r.get_json()['id']}", buyer).get_json())
    return out


@pytest.mark.parametrize("name", list(TEXTS))
def test_unicode_round_trips_unchanged(api, world, name):
    text = TEXTS[name]
    results = _write_and_read(api, world, text)
    product = results["product"][1]
    assert results["product"][0] == 201 and product["title"] == text and product["scenarios"] == [text]
    assert product["keywords"] == [text[:50]]
    proc = results["procurement"][1]
    assert results["procurement"][0] == 201 and proc["title"] == text and proc["description"] == text
    assert results["organization"][0] == 200 and results["organization"][1]["display_name"] == text
    assert results["offer"][0] == 201 and results["offer"][1]["message"] == text


@pytest.mark.parametrize("name", list(REFUSED))
def test_nul_surrogates_and_control_characters_are_422(api, world, name):
    for field, (status, _) in _write_and_read(api, world, REFUSED[name]).items():
        assert status == 422, (name, field, status)


def test_unicode_in_paths_and_queries_is_never_a_500(api, world):
    for text in [*TEXTS.values(), "%00", "\u202e", "../../etc/passwd", "'; DROP TABLE products; --"]:
        for path in (f"products/{text}", f"organizations/{text}", f"certificates/{text}", f"trades/{text}"):
            r = api.get(path, world.actors["owner"])
            assert r.status_code == 404, (path, r.status_code)
        r = api.get("products", query_string={"q": text[:200]})
        assert r.status_code in (200, 422), (text, r.status_code)


def test_every_time_field_refuses_a_time_without_timezone(api, world):
    spec = api.get("/api/v1/openapi.json").get_json()
    checked, failures = 0, []
    for method, path, op in operations(spec):
        schema = body_schema(op)
        if schema is None:
            continue
        actor, target = body_caller(world, method, path)
        for prefix, props in objects(spec, schema):
            for name, sub in props.items():
                if sub.get("format") != "date-time":
                    continue
                field = key(prefix, name)
                for naive in ("2030-11-28T04:00:00", "2030-11-28 04:00:00", "2030-11-28", "1700000000",
                              "2030-11-28T04:00:00+25:00", "0000-01-01T00:00:00Z"):
                    r = api.request(method, target, actor, json=nest(prefix, {name: naive}))
                    errors = (r.get_json() or {}).get("errors") or {}
                    checked += 1
                    if r.status_code != 422 or field not in errors:
                        failures.append(f"{method} {path} {field}={naive!r}: {r.status_code} {sorted(errors)}")
    assert checked >= 6 * 6, checked
    assert not failures, "\n".join(failures)


def test_times_with_an_offset_are_stored_and_shown_in_utc(api):
    buyer, op = api.enterprise(), api.operator()
    local = (utcnow() + timedelta(days=10)).replace(tzinfo=None)
    r = api.post("procurements", buyer, json=procurement_body(deadline=f"{local.isoformat()}+08:00"))
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["deadline"] == (local - timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = api.post("fairs", op, json={"name": "时区 fair", "venue": "澳门", "starts_at": "2030-01-01T08:00:00+08:00",
                                    "ends_at": "2030-01-01T10:00:00.123456-05:00"})
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["starts_at"], r.get_json()["ends_at"]) == ("2030-01-01T00:00:00Z", "2030-01-01T15:00:00Z")


def test_text_written_in_a_contract_document_round_trips(api):
    vendor, buyer = api.vendor(), api.enterprise()
    text = TEXTS["emoji"] + " " + TEXTS["rtl"]
    certify(api, vendor, title=text)
    contract = contract_for(api, vendor, buyer, title=text + " 2")
    sign(api, buyer, contract["id"])
    doc = api.get(f"contracts/{contract['id']}/document", buyer)
    # Letters, emoji and right-to-left scripts round-trip; bidi controls are shown, never applied
    # (tests/api/test_contract_document_escaping.py).
    shown = TEXTS["emoji"] + " بيانات המידע &lt;U+202E&gt;abc&lt;U+202C&gt; mixed"
    assert doc.status_code == 200 and shown in doc.get_data(as_text=True)
    assert "\u202e" not in doc.get_data(as_text=True)


def test_the_upload_file_name_bound_is_the_documented_one(api, world):
    """`name` of an uploaded file: 1..200 characters of [A-Za-z0-9._-], not starting with a dot, as the
    document says; longer or otherwise is refused and stores nothing."""
    spec = api.get("/api/v1/openapi.json").get_json()
    item = spec["paths"]["/api/v1/releases/{release_id}/files/{name}"]
    (param,) = [p for p in item["put"].get("parameters", []) + item.get("parameters", [])
                if p["in"] == "path" and p["name"] == "name"]
    assert param["schema"].get("maxLength") == 200, param
    owner = world.actors["owner"]
    r = api.post(f"products/{world.ids['file_product']}/releases", owner, json={"label": "names"})
    assert r.status_code == 201, r.get_json()
    release_id = r.get_json()["id"]
    raw = {"Content-Type": "application/octet-stream"}
    longest = "n" * 196 + ".csv"
    # Past 200 characters no route matches: 404, whatever the body.
    for name, want in ((longest, {201}), ("n" * 197 + ".csv", {404}), (".hidden", {422}),
                       ("交通.csv", {422}), ("a b.csv", {422})):
        r = api.request("PUT", f"releases/{release_id}/files/{name}", owner, data=b"a,b\n1,2\n", headers=raw)
        assert r.status_code in want, (len(name), name[:20], r.status_code, r.get_data()[:200])
    files = api.get(f"releases/{release_id}", owner).get_json()["files"]
    assert [f["name"] for f in files] == [longest]
