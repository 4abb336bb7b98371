"""File delivery end to end: escrow creates the entitlement, publishing delivers the trade, a
signed link downloads exactly the bytes of the signed manifest; refusals are logged."""

from __future__ import annotations

from exchange.canonical import sha256_hex
from tests import outside_verifier
from tests.deliveryflow import CSV, entitlement_of, fetch, link, pay, release, sha, signed_trade


def test_escrow_publish_download(api):
    vendor, buyer = api.vendor(), api.enterprise()
    trade = signed_trade(api, vendor, buyer)
    trade = pay(api, buyer, trade["id"])
    assert trade["status"] == "escrowed"
    ent = entitlement_of(api, buyer, trade["id"])
    assert ent["status"] == "active" and ent["delivery_mode"] == "file"
    rel = release(api, vendor, trade["product_id"])
    files = [{"name": "traffic.csv", "bytes": len(CSV), "sha256": sha(CSV)}]
    assert rel["manifest_sha256"] == sha256_hex({"release_id": rel["id"], "product_id": trade["product_id"],
                                                 "files": files})
    jwks = api.client.get("/.well-known/jwks.json").data
    signed = {"release_id": rel["id"], "product_id": trade["product_id"], "files": files,
              "manifest_sha256": rel["manifest_sha256"], "published_at": rel["receipt"]["published_at"]}
    assert outside_verifier.verify(jwks, signed, rel["receipt"]["key_id"], rel["receipt"]["signature"])
    trade = api.get(f"trades/{trade['id']}", buyer).get_json()
    assert trade["status"] == "delivered" and trade["delivery_evidence"] == "release"
    assert trade["delivery_reference"] == rel["id"] and trade["delivery_sha256"] == rel["manifest_sha256"]
    got = link(api, buyer, ent["id"], rel["id"])
    r = fetch(api, got["url"])
    assert r.status_code == 200 and r.data == CSV, (got["url"], r.data[:300])
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    r = fetch(api, got["url"], Range="bytes=5-9")
    assert r.status_code == 206 and r.data == CSV[5:10]
    log = api.get(f"entitlements/{ent['id']}/accesses", buyer).get_json()
    assert [a["kind"] for a in log["items"]] == ["download_link", "download", "download"]
    assert log["items"][2]["bytes"] == 5


def test_the_sweep_delivers_a_trade_that_an_escrow_racing_a_publication_left_waiting(api, app, monkeypatch):
    """An escrow and a publication committing at the same moment each miss the other's row (neither
    sees an uncommitted write): simulated by the escrow not seeing the release. The sweep delivers."""
    from delivery import evidence

    vendor, buyer = api.vendor(), api.enterprise()
    trade = signed_trade(api, vendor, buyer)
    release(api, vendor, trade["product_id"])
    with monkeypatch.context() as m:
        m.setattr(evidence, "on_active", lambda *a, **kw: None)
        assert pay(api, buyer, trade["id"])["status"] == "escrowed"
    result = app.test_cli_runner().invoke(args=["sweep"])
    assert result.exit_code == 0, result.output
    trade = api.get(f"trades/{trade['id']}", buyer).get_json()
    assert trade["status"] == "delivered" and trade["delivery_evidence"] == "release"


def test_a_suspended_buyer_is_refused_with_the_reason_and_the_refusal_is_logged(api):
    vendor, buyer = api.vendor(), api.enterprise()
    trade = pay(api, buyer, signed_trade(api, vendor, buyer)["id"])
    ent = entitlement_of(api, buyer, trade["id"])
    rel = release(api, vendor, trade["product_id"])
    api.suspend(buyer)
    r = api.post(f"entitlements/{ent['id']}/downloads", buyer, json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403
    assert r.get_json()["detail"].startswith("entitlement_suspended: buyer organization suspended. ")
    log = api.get(f"entitlements/{ent['id']}/accesses", vendor).get_json()["items"]
    assert [(a["kind"], a["status"], a["refused_reason"]) for a in log] == [
        ("download_link", "refused", "entitlement_suspended: buyer organization suspended")]
