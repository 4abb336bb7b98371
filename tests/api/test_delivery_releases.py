"""Releases (API.md, Delivery and use): created by the product's owner, files streamed in under
strict names and limits, published with a manifest anyone can recompute and a receipt anyone can
verify with the JWKS alone, withdrawn by the owner or an operator; seen by the owner, by buyers
(the published ones they cover) and nobody else. Delivery evidence: a published release delivers the
trade whenever its entitlement is active; a declared delivery is refused once the exchange delivers;
auto-acceptance waits while the entitlement is suspended."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from typing import Any

import pytest
import rfc8785
from sqlalchemy import update

from exchange.db import utcnow
from tests import outside_verifier
from tests.certflow import create_product, submit
from tests.deliveryflow import CSV, bought, execute, fetch, link, pay, release, sha, signed_trade, sweep, upload
from tests.security.test_chunked_body_limit import changed, snapshot
from trading.models import Trade

SHA = "e" * 64


def draft(api, vendor, product_id) -> dict[str, Any]:
    r = api.post(f"products/{product_id}/releases", vendor, json={"label": "2026-12", "notes": None})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def release_of(api, actor, release_id) -> dict[str, Any]:
    r = api.get(f"releases/{release_id}", actor)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


@pytest.fixture
def sold(api):
    """A file product sold and paid for, nothing published yet."""
    return bought(api, published=False)


# -- create ----------------------------------------------------------------------------------------
def test_create_owner_only(api, sold):
    vendor, product_id = sold["vendor"], sold["trade"]["product_id"]
    rel = draft(api, vendor, product_id)
    assert rel["id"].startswith("rel_")
    assert {k: rel[k] for k in ("product_id", "label", "status", "files", "manifest_sha256", "receipt")} == {
        "product_id": product_id, "label": "2026-12", "status": "draft", "files": [], "manifest_sha256": None,
        "receipt": None}
    body = {"label": "x"}
    other_vendor = api.vendor()
    # A listed product is visible to everyone: its non-owner is forbidden; an invisible draft is 404.
    assert api.post(f"products/{product_id}/releases", other_vendor, json=body).status_code == 403
    assert api.post(f"products/{product_id}/releases", sold["buyer"], json=body).status_code == 403
    hidden = create_product(api, vendor, delivery_mode="file")
    assert api.post(f"products/{hidden['id']}/releases", other_vendor, json=body).status_code == 404
    assert api.post(f"products/{hidden['id']}/releases", vendor, json=body).status_code == 201  # a draft product
    assert api.post("products/prd_nope/releases", vendor, json=body).status_code == 404
    for bad in ({}, {"label": ""}, {"label": "x" * 101}, {"label": "x", "extra": 1}):
        assert api.post(f"products/{product_id}/releases", vendor, json=bad).status_code == 422, bad


@pytest.mark.parametrize("state", ["in_review", "delisted"])
def test_create_refused_unless_listed_or_draft(api, state):
    vendor = api.vendor()
    product = create_product(api, vendor, delivery_mode="file")
    if state == "in_review":
        submit(api, vendor, product["id"])
    else:
        assert api.delete(f"products/{product['id']}", vendor).status_code == 200
    assert api.get(f"products/{product['id']}", vendor).get_json()["status"] == state
    r = api.post(f"products/{product['id']}/releases", vendor, json={"label": "x"})
    assert r.status_code == 409, r.get_json()


# -- upload ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "status"), [
    ("traffic.csv", 201), ("a" * 200, 201), ("A-b_c.1.tar.gz", 201),
    (".hidden", 422), ("a" * 201, 404), ("données.csv", 422), ("数据.csv", 422), ("a%20b", 422), ("a b", 422),
    ("%2e%2e", 422), ("..", 422), ("a\\b", 422), ("a:b", 422),
    # No route has a '/' in a name: 404 (the body gate waits for routing).
    ("a/b", 404), ("../x", 404), ("a%2Fb", 404), ("..%2Fx", 404),
])
def test_upload_name_rules(api, sold, name, status):
    vendor = sold["vendor"]
    rel = draft(api, vendor, sold["trade"]["product_id"])
    r = api.client.put(f"/api/v1/releases/{rel['id']}/files/{name}", data=CSV,
                       headers={**vendor.headers, "Content-Type": "application/octet-stream"})
    assert r.status_code in (status if isinstance(status, tuple) else (status,)), (name, r.status_code)
    files = release_of(api, vendor, rel["id"])["files"]
    if status == 201:
        assert [f["name"] for f in files] == [name] and r.get_json()["sha256"] == sha(CSV)
        assert r.get_json()["bytes"] == len(CSV)
    else:
        assert files == []


def test_upload_replaces_same_name_and_checks_digest(app, api, sold):
    vendor = sold["vendor"]
    rel = draft(api, vendor, sold["trade"]["product_id"])
    upload(api, vendor, rel["id"], "traffic.csv", b"old")
    got = upload(api, vendor, rel["id"], "traffic.csv", CSV, **{"Content-SHA256": sha(CSV)}).get_json()
    assert got == {"name": "traffic.csv", "bytes": len(CSV), "sha256": sha(CSV), "media_type": "text/csv"}
    assert release_of(api, vendor, rel["id"])["files"] == [got]
    before = snapshot(app)
    body = b"bytes this test alone uploads " + rel["id"].encode()
    for header in (sha(b"something else"), "ABC", "E" * 64):
        r = upload(api, vendor, rel["id"], "other.csv", body, expect=422, **{"Content-SHA256": header})
        assert "Content-SHA256" in r.get_json()["errors"]
    assert changed(before, snapshot(app)) == []
    with app.app_context():
        from delivery.releases import storage

        assert not storage().exists(sha(body))  # nor in storage
        upload(api, vendor, rel["id"], "other.csv", body, **{"Content-SHA256": sha(body)})
        assert storage().exists(sha(body))
    assert [f["name"] for f in release_of(api, vendor, rel["id"])["files"]] == ["other.csv", "traffic.csv"]


@pytest.mark.parametrize("content_type", [None, "text/csv", "application/json", "multipart/form-data; boundary=x"])
def test_upload_needs_octet_stream(api, sold, content_type):
    vendor = sold["vendor"]
    rel = draft(api, vendor, sold["trade"]["product_id"])
    headers = dict(vendor.headers)
    if content_type:
        headers["Content-Type"] = content_type
    r = api.client.put(f"/api/v1/releases/{rel['id']}/files/x.csv", data=CSV, headers=headers)
    assert r.status_code == 415, r.get_json()
    assert release_of(api, vendor, rel["id"])["files"] == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_upload_size_limit(app, api, sold, chunked):
    vendor = sold["vendor"]
    rel = draft(api, vendor, sold["trade"]["product_id"])
    app.config["MAX_UPLOAD_BYTES"] = 64

    def put(body: bytes) -> Any:
        headers = {**vendor.headers, "Content-Type": "application/octet-stream"}
        if not chunked:
            return api.client.put(f"/api/v1/releases/{rel['id']}/files/f.bin", data=body, headers=headers)
        return api.client.put(f"/api/v1/releases/{rel['id']}/files/f.bin", input_stream=io.BytesIO(body),
                              headers={**headers, "Transfer-Encoding": "chunked"},
                              environ_overrides={"wsgi.input_terminated": True})

    before = snapshot(app)
    for size in (65, 64 * 1024):
        r = put(b"x" * size)
        assert r.status_code == 413, (size, r.status_code, r.get_data()[:200])
    assert changed(before, snapshot(app)) == []
    r = put(b"x" * 64)
    assert r.status_code == 201 and r.get_json()["bytes"] == 64, r.get_json()


def test_upload_refused_after_publish_and_for_others(api, sold):
    vendor = sold["vendor"]
    rel = release(api, vendor, sold["trade"]["product_id"])
    upload(api, vendor, rel["id"], "late.csv", CSV, expect=409)
    upload(api, vendor, rel["id"], "traffic.csv", b"changed", expect=409)
    other = draft(api, vendor, sold["trade"]["product_id"])
    for stranger in (api.vendor(), sold["buyer"]):
        upload(api, stranger, other["id"], "x.csv", CSV, expect=404)
    upload(api, vendor, "rel_nope", "x.csv", CSV, expect=404)
    assert release_of(api, vendor, other["id"])["files"] == []


# -- publish ---------------------------------------------------------------------------------------
def test_publish_manifest_and_receipt(api, sold):
    vendor, product_id = sold["vendor"], sold["trade"]["product_id"]
    rel = draft(api, vendor, product_id)
    assert api.post(f"releases/{rel['id']}/publish", vendor).status_code == 422  # empty
    files = {"z.csv": b"last", "a.csv": CSV, "m.json": b'{"k": 1}'}
    for name, data in files.items():
        upload(api, vendor, rel["id"], name, data)
    assert api.post(f"releases/{rel['id']}/publish", api.vendor()).status_code == 404
    assert api.post(f"releases/{rel['id']}/publish", sold["buyer"]).status_code == 404
    r = api.post(f"releases/{rel['id']}/publish", vendor)
    assert r.status_code == 200, r.get_json()
    published = r.get_json()
    listed = [{"name": n, "bytes": len(files[n]), "sha256": hashlib.sha256(files[n]).hexdigest()}
              for n in sorted(files)]
    body = {"release_id": rel["id"], "product_id": product_id, "files": listed}
    assert published["status"] == "published"
    assert published["manifest_sha256"] == hashlib.sha256(rfc8785.dumps(body)).hexdigest()
    receipt = published["receipt"]
    assert receipt["published_at"] == published["published_at"]
    jwks = api.client.get("/.well-known/jwks.json").data
    signed = {**body, "manifest_sha256": published["manifest_sha256"], "published_at": receipt["published_at"]}
    assert outside_verifier.verify(jwks, signed, receipt["key_id"], receipt["signature"])
    assert not outside_verifier.verify(jwks, {**signed, "files": listed[:2]}, receipt["key_id"], receipt["signature"])
    assert api.post(f"releases/{rel['id']}/publish", vendor).status_code == 409
    assert release_of(api, sold["buyer"], rel["id"])["receipt"] == receipt


def test_privacy_product_table_names_must_differ(api):
    vendor = api.vendor()
    got = bought(api, vendor, published=False, delivery_mode="privacy_computing")
    rel = draft(api, vendor, got["trade"]["product_id"])
    upload(api, vendor, rel["id"], "Traffic.csv", CSV)
    upload(api, vendor, rel["id"], "traffic.json", b"[]")
    r = api.post(f"releases/{rel['id']}/publish", vendor)
    assert r.status_code == 422 and "files" in r.get_json()["errors"]


# -- withdraw --------------------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["owner", "operator"])
def test_withdraw_stops_new_and_issued_links(api, by):
    got = bought(api)
    ent, rel, buyer = got["ent"], got["release"], got["buyer"]
    issued = link(api, buyer, ent["id"], rel["id"])
    assert api.post(f"releases/{rel['id']}/withdraw", api.vendor()).status_code == 404
    assert api.post(f"releases/{rel['id']}/withdraw", buyer).status_code == 403  # it sees the release
    actor = got["vendor"] if by == "owner" else api.operator()
    r = api.post(f"releases/{rel['id']}/withdraw", actor)
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn" and r.get_json()["withdrawn_at"]
    assert api.post(f"releases/{rel['id']}/withdraw", actor).status_code == 409
    detail = "release_withdrawn: this release was withdrawn by its vendor or an operator"
    r = fetch(api, issued["url"])
    assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{detail}. ")
    r = api.post(f"entitlements/{ent['id']}/downloads", buyer, json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{detail}. ")
    refused = [a for a in api.get(f"entitlements/{ent['id']}/accesses", buyer).get_json()["items"]
               if a["status"] == "refused"]
    assert [(a["kind"], a["refused_reason"]) for a in refused] == [("download", detail), ("download_link", detail)]


def test_withdraw_a_draft_is_409(api, sold):
    rel = draft(api, sold["vendor"], sold["trade"]["product_id"])
    assert api.post(f"releases/{rel['id']}/withdraw", sold["vendor"]).status_code == 409


# -- visibility ------------------------------------------------------------------------------------
def test_list_visibility(api):
    got = bought(api)
    vendor, buyer, product_id = got["vendor"], got["buyer"], got["trade"]["product_id"]
    published = got["release"]
    withdrawn = release(api, vendor, product_id)
    assert api.post(f"releases/{withdrawn['id']}/withdraw", vendor).status_code == 200
    pending = draft(api, vendor, product_id)
    every = {published["id"], withdrawn["id"], pending["id"]}
    for who in (vendor, api.operator()):
        items = api.get(f"products/{product_id}/releases", who).get_json()["items"]
        assert {r["id"] for r in items} == every
        for rel_id in every:
            assert release_of(api, who, rel_id)["id"] == rel_id
    items = api.get(f"products/{product_id}/releases", buyer).get_json()["items"]
    assert [r["id"] for r in items] == [published["id"]]
    assert release_of(api, buyer, published["id"])["files"][0]["sha256"] == sha(CSV)
    for rel_id in (withdrawn["id"], pending["id"]):
        assert api.get(f"releases/{rel_id}", buyer).status_code == 404
    stranger = api.enterprise()
    assert api.get(f"products/{product_id}/releases", stranger).status_code == 404
    for rel_id in every:
        assert api.get(f"releases/{rel_id}", stranger).status_code == 404
    assert api.get("products/prd_nope/releases", vendor).status_code == 404


# -- delivery evidence -----------------------------------------------------------------------------
def trade_of(api, got) -> dict[str, Any]:
    return api.get(f"trades/{got['trade']['id']}", got["buyer"]).get_json()


def test_publish_before_escrow_delivers_at_escrow(api):
    got = bought(api)
    trade = got["trade"]
    assert (trade["status"], trade["delivery_evidence"]) == ("delivered", "release")
    assert (trade["delivery_reference"], trade["delivery_sha256"]) == (got["release"]["id"],
                                                                       got["release"]["manifest_sha256"])
    assert trade["delivered_at"] and trade["acceptance_started_at"]


def test_escrow_before_publish_delivers_at_publish(api, sold):
    assert trade_of(api, sold)["status"] == "escrowed"
    rel = draft(api, sold["vendor"], sold["trade"]["product_id"])
    upload(api, sold["vendor"], rel["id"], "traffic.csv", CSV)
    assert trade_of(api, sold)["status"] == "escrowed"  # a draft delivers nothing
    rel = api.post(f"releases/{rel['id']}/publish", sold["vendor"]).get_json()
    trade = trade_of(api, sold)
    assert (trade["status"], trade["delivery_evidence"], trade["delivery_reference"], trade["delivery_sha256"]) == (
        "delivered", "release", rel["id"], rel["manifest_sha256"])
    again = release(api, sold["vendor"], sold["trade"]["product_id"], {"b.csv": b"b"})
    assert trade_of(api, sold)["delivery_reference"] == rel["id"] != again["id"]  # the first release delivered


def test_suspended_at_publish_delivered_when_active_again(app, api, sold):
    vendor = sold["vendor"]
    # Drafted before: a product whose certificate is suspended takes no new release (409).
    rel = release(api, vendor, sold["trade"]["product_id"], publish=False)
    r = api.post(f"certificates/{_cert(api, sold)}/suspend", api.operator(), json={"reason": "checking"})
    assert r.status_code == 200
    assert api.post(f"products/{sold['trade']['product_id']}/releases", vendor, json={"label": "x"}).status_code == 409
    assert api.post(f"releases/{rel['id']}/publish", vendor).status_code == 200
    assert trade_of(api, sold)["status"] == "escrowed"
    r = api.post(f"certificates/{_cert(api, sold)}/reinstate", api.operator(), json={"reason": "fine"})
    assert r.status_code == 200
    assert trade_of(api, sold)["status"] == "escrowed"  # reads decide, the sweep persists and delivers
    sweep(app)
    trade = trade_of(api, sold)
    assert (trade["status"], trade["delivery_evidence"], trade["delivery_reference"]) == ("delivered", "release",
                                                                                          rel["id"])


def _cert(api, got):
    return api.get(f"contracts/{got['trade']['contract_id']}", got["buyer"]).get_json()["certificate_number"]


def test_declared_delivery_only_until_a_release_is_published(api):
    vendor, buyer = api.vendor(), api.enterprise()
    early = pay(api, buyer, signed_trade(api, vendor, buyer)["id"])
    late = pay(api, buyer, signed_trade(api, vendor, buyer, title="second product")["id"])
    r = api.post(f"trades/{early['id']}/delivery", vendor, json={"reference": "sftp://x/2026-11", "sha256": SHA})
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["status"], r.get_json()["delivery_evidence"]) == ("delivered", "declared")
    got = {"vendor": vendor, "buyer": buyer, "trade": late}
    rel = draft(api, vendor, late["product_id"])
    upload(api, vendor, rel["id"], "traffic.csv", CSV)
    # A draft does not count: the seller may still declare; here it does not, and publishes.
    api.post(f"releases/{rel['id']}/publish", vendor)
    assert trade_of(api, got)["status"] == "delivered"
    other = bought(api, vendor, buyer, published=False)
    release(api, vendor, other["trade"]["product_id"])
    r = api.post(f"trades/{other['trade']['id']}/delivery", vendor, json={"reference": "x", "sha256": SHA})
    assert r.status_code == 409, r.get_json()


def test_declared_delivery_refused_while_escrowed_with_a_published_release(app, api):
    got = bought(api, published=False)
    vendor = got["vendor"]
    rel = release(api, vendor, got["trade"]["product_id"], publish=False)
    api.post(f"certificates/{_cert(api, got)}/suspend", api.operator(), json={"reason": "checking"})
    assert api.post(f"releases/{rel['id']}/publish", vendor).status_code == 200  # delivers nothing: suspended
    assert trade_of(api, got)["status"] == "escrowed"
    r = api.post(f"trades/{got['trade']['id']}/delivery", vendor, json={"reference": "x", "sha256": SHA})
    assert r.status_code == 409, r.get_json()
    assert trade_of(api, got)["delivery_evidence"] is None


# -- auto-acceptance -------------------------------------------------------------------------------
def _age(app, trade_id, days=8):
    # The acceptance period (DATAFAIR_ACCEPTANCE_DAYS, 7) ended: its start moved back instead of waiting.
    then = utcnow() - timedelta(days=days)
    execute(app, update(Trade).where(Trade.id == trade_id).values(delivered_at=then, acceptance_started_at=then))


def test_auto_acceptance_waits_while_suspended_and_restarts(app, api):
    got = bought(api)
    trade_id = got["trade"]["id"]
    op = api.operator()
    _age(app, trade_id)
    assert api.post(f"certificates/{_cert(api, got)}/suspend", op, json={"reason": "checking"}).status_code == 200
    sweep(app)
    assert trade_of(api, got)["status"] == "delivered"
    assert api.post(f"certificates/{_cert(api, got)}/reinstate", op, json={"reason": "fine"}).status_code == 200
    before = utcnow()
    sweep(app)
    trade = trade_of(api, got)
    assert trade["status"] == "delivered", trade
    from datetime import datetime

    assert datetime.fromisoformat(trade["acceptance_started_at"].replace("Z", "+00:00")) >= before - timedelta(
        seconds=1)
    sweep(app)
    assert trade_of(api, got)["status"] == "delivered"  # the restarted period has not ended
    _age(app, trade_id)
    sweep(app)
    trade = trade_of(api, got)
    assert (trade["status"], trade["settlement"]) == ("settled", "auto_accepted")


def test_auto_acceptance_not_held_by_an_expired_entitlement(app, api):
    from delivery.models import Entitlement

    got = bought(api)
    _age(app, got["trade"]["id"])
    execute(app, update(Entitlement).where(Entitlement.id == got["ent"]["id"])
            .values(ends_at=utcnow() - timedelta(seconds=1)))
    sweep(app)
    assert trade_of(api, got)["status"] == "settled"


def test_sweep_delivers_what_a_racing_escrow_and_publish_both_missed(app, api, sold):
    """An escrow and a publication committing at once each miss the other's uncommitted row (the
    escrow sees no published release, the publication no entitlement): the trade is left escrowed
    beside a covered published release. Its outcome is made here with the publication written
    straight to the table; the sweep must deliver the trade from that release."""
    from delivery.models import Release

    rel = release(api, sold["vendor"], sold["trade"]["product_id"], publish=False)
    execute(app, update(Release).where(Release.id == rel["id"]).values(
        status="published", published_at=utcnow(), manifest_sha256="a" * 64))
    assert trade_of(api, sold)["status"] == "escrowed"
    sweep(app)
    trade = trade_of(api, sold)
    assert (trade["status"], trade["delivery_evidence"], trade["delivery_reference"], trade["delivery_sha256"]) == (
        "delivered", "release", rel["id"], "a" * 64)
