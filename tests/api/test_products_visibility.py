"""Who sees which product: listed ones everyone; others only the owner and operators (404, never 403)."""

from __future__ import annotations

import pytest

from exchange.db import db
from listings import services
from tests.factories import create_product, list_product, principal_of

ACTORS = ("anonymous", "owner", "owner_member", "other_vendor", "enterprise", "assessor", "operator")
MANAGERS = {"owner", "owner_member", "operator"}
STATES = ("draft", "in_review", "listed", "suspended", "delisted")


def _product_in(api, vendor, state):
    created = create_product(api, vendor)
    pid = created["id"]
    if state == "in_review":
        with api.app.app_context():
            services.submit_for_review(db.session, product_id=pid, actor=principal_of(api, vendor))
            db.session.commit()
    elif state in ("listed", "suspended"):
        list_product(api, vendor, pid)
        if state == "suspended":
            with api.app.app_context():
                services.suspend(db.session, product_id=pid, reason="certificate suspended")
                db.session.commit()
    elif state == "delisted":
        assert api.delete(f"products/{pid}", vendor).status_code == 200
    return pid


@pytest.fixture
def cast(api):
    owner = api.vendor()
    return {
        "anonymous": None,
        "owner": owner,
        "owner_member": api.member(owner),
        "other_vendor": api.vendor(),
        "enterprise": api.enterprise(),
        "assessor": api.assessor(),
        "operator": api.operator(),
    }


@pytest.mark.parametrize("state", STATES)
def test_visibility_matrix(api, cast, state):
    pid = _product_in(api, cast["owner"], state)
    for name in ACTORS:
        r = api.get(f"products/{pid}", cast[name])
        visible = state == "listed" or name in MANAGERS
        assert r.status_code == (200 if visible else 404), (name, state, r.get_json())
        if visible:
            body = r.get_json()
            assert body["status"] == state
            assert ("latest_version" in body) == (name in MANAGERS), name
        else:
            assert r.content_type == "application/problem+json"
            assert r.get_json()["status"] == 404
        versions = api.get(f"products/{pid}/versions", cast[name])
        if name == "anonymous":
            assert versions.status_code == 401
        else:
            assert versions.status_code == (200 if name in MANAGERS else 404), (name, state)


@pytest.mark.parametrize("state", STATES)
def test_only_listed_products_are_in_the_public_catalog(api, cast, state):
    pid = _product_in(api, cast["owner"], state)
    for name in ACTORS:
        ids = [p["id"] for p in api.get("products", cast[name]).get_json()["items"]]
        assert (pid in ids) == (state == "listed"), (name, state)
    mine = api.get("products?mine=true", cast["owner"]).get_json()
    assert [p["id"] for p in mine["items"]] == [pid]
    assert mine["items"][0]["status"] == state
    assert api.get("products?mine=true", cast["other_vendor"]).get_json()["total"] == 0


def test_unknown_and_hidden_products_answer_the_same(api, cast):
    pid = _product_in(api, cast["owner"], "draft")
    hidden = api.get(f"products/{pid}", cast["other_vendor"])
    unknown = api.get("products/prd_doesnotexist", cast["other_vendor"])
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.get_json()["detail"] == unknown.get_json()["detail"]
    assert api.get("products/" + "x" * 300).status_code == 404


def test_mine_needs_a_token(api):
    r = api.get("products?mine=true")
    assert r.status_code == 401


def test_others_cannot_edit_or_delist(api, cast):
    draft = _product_in(api, cast["owner"], "draft")
    listed = _product_in(api, cast["owner"], "listed")
    for name in ("other_vendor", "enterprise", "assessor"):
        assert api.patch(f"products/{draft}", cast[name], json={"title": "x"}).status_code == 404
        assert api.delete(f"products/{draft}", cast[name]).status_code == 404
        assert api.patch(f"products/{listed}", cast[name], json={"title": "x"}).status_code == 403
        assert api.delete(f"products/{listed}", cast[name]).status_code == 403
    # Operators see drafts but only the owner edits them.
    assert api.patch(f"products/{draft}", cast["operator"], json={"title": "x"}).status_code == 403
    assert api.patch(f"products/{draft}", None, json={"title": "x"}).status_code == 401
    assert api.get(f"products/{draft}", cast["owner"]).get_json()["title"] != "x"


def test_listed_product_shows_the_certified_version_to_everyone(api, cast):
    owner = cast["owner"]
    pid = _product_in(api, owner, "listed")
    r = api.patch(f"products/{pid}", owner, json={"title": "新版本 New revision"})
    assert r.status_code == 200 and r.get_json()["version"] == 2
    public = api.get(f"products/{pid}").get_json()
    assert public["version"] == 1 and public["title"] != "新版本 New revision"
    assert public["certificate_number"].startswith("DFX-")
    assert "latest_version" not in public
    own = api.get(f"products/{pid}", owner).get_json()
    assert own["version"] == 1 and own["latest_version"] == 2
