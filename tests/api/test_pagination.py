"""Lists: `{"items", "total", "page", "per_page"}`, bounds checked (422), stable order."""

from __future__ import annotations

import pytest


@pytest.fixture
def operator_with_orgs(api):
    for t in ("vendor", "enterprise", "assessor", "vendor"):
        api.register(t)
    return api.operator()


@pytest.mark.parametrize(("query", "field"), [
    ("per_page=0", "per_page"),
    ("per_page=101", "per_page"),
    ("per_page=-1", "per_page"),
    ("per_page=x", "per_page"),
    ("per_page=1.5", "per_page"),
    ("page=0", "page"),
    ("page=-3", "page"),
    ("page=x", "page"),
    ("page=99999999999999999999999", "page"),
])
def test_out_of_range_paging_is_422(api, operator_with_orgs, query, field):
    r = api.get(f"organizations?{query}", operator_with_orgs)
    assert r.status_code == 422, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert field in r.get_json()["errors"]


def test_defaults_and_limits(api, operator_with_orgs):
    body = api.get("organizations", operator_with_orgs).get_json()
    assert set(body) == {"items", "total", "page", "per_page"}
    assert body["page"] == 1 and body["per_page"] == 20
    assert body["total"] == len(body["items"]) == 5  # four registered + the operator itself
    assert api.get("organizations?per_page=100", operator_with_orgs).status_code == 200
    assert api.get("organizations?per_page=1", operator_with_orgs).get_json()["per_page"] == 1


def test_a_page_beyond_the_end_is_empty_with_the_right_total(api, operator_with_orgs):
    body = api.get("organizations?page=50&per_page=2", operator_with_orgs).get_json()
    assert body == {"items": [], "total": 5, "page": 50, "per_page": 2}


def test_pages_cover_every_item_once_in_a_stable_order(api, operator_with_orgs):
    seen = []
    for page in (1, 2, 3):
        body = api.get(f"organizations?page={page}&per_page=2", operator_with_orgs).get_json()
        assert body["total"] == 5
        seen += [o["id"] for o in body["items"]]
    assert len(seen) == len(set(seen)) == 5
    everything = api.get("organizations?per_page=100", operator_with_orgs).get_json()["items"]
    assert seen == [o["id"] for o in everything]


def test_filters_count_in_the_total(api, operator_with_orgs):
    body = api.get("organizations?status=pending&type=vendor&per_page=1", operator_with_orgs).get_json()
    assert body["total"] == 2 and len(body["items"]) == 1
    assert api.get("organizations?status=sleeping", operator_with_orgs).status_code == 422
