"""Entitlements (API.md, Delivery and use): created at escrow, one per contract, seen by the two
parties and operators; suspended while any cause lasts and active again when every cause ended;
revoked or expired for good; every access decided at that moment, refusals logged even though the
refused request rolled back, the log append-only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from certification.models import WhitelistEntry
from delivery.models import Entitlement, Release
from exchange.db import db, utcnow
from exchange.fields import iso_z
from tests.deliveryflow import accesses, bought, execute, fetch, link, release, signed_trade, sweep
from tests.factories import ApiHelper
from tests.tradeflow import clear_dossier


def ent_of(api: ApiHelper, actor: Any, ent_id: str) -> dict[str, Any]:
    r = api.get(f"entitlements/{ent_id}", actor)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def parse(ts: str):
    from datetime import datetime

    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def persisted(app, ent_id: str) -> tuple[str, str | None]:
    with app.app_context():
        ent = db.session.get(Entitlement, ent_id)
        out = (ent.status, ent.status_reason)
        db.session.rollback()
        return out


# -- creation, filters, visibility -----------------------------------------------------------------
def test_created_at_escrow_with_the_contract_terms(app, api):
    vendor, buyer = api.vendor(), api.enterprise()
    trade = signed_trade(api, vendor, buyer)
    assert api.get(f"entitlements?trade_id={trade['id']}", buyer).get_json()["items"] == []
    got = bought(api, vendor, buyer, published=False)
    trade, ent = got["trade"], got["ent"]
    contract = api.get(f"contracts/{trade['contract_id']}", buyer).get_json()
    with app.app_context():
        from trading.models import Trade

        escrowed_at = db.session.get(Trade, trade["id"]).escrowed_at
        db.session.rollback()
    assert ent["id"].startswith("ent_")
    assert (ent["trade_id"], ent["contract_id"], ent["product_id"]) == (trade["id"], trade["contract_id"],
                                                                        trade["product_id"])
    assert ent["product_version"] == contract["product_version"]
    assert (ent["buyer_org_id"], ent["seller_org_id"]) == (buyer.org_id, vendor.org_id)
    assert ent["delivery_mode"] == "file" and ent["scope"] == contract["terms"]["scope"]
    assert abs(parse(ent["starts_at"]) - escrowed_at) < timedelta(milliseconds=1)  # shown to the millisecond
    days = contract["terms"]["duration_days"]
    assert parse(ent["ends_at"]) - parse(ent["starts_at"]) == timedelta(days=days)
    assert (ent["status"], ent["status_reason"], ent["calls_used"]) == ("active", None, 0)


def test_list_filters_and_one_per_contract(api):
    vendor, buyer = api.vendor(), api.enterprise()
    first, second = bought(api, vendor, buyer), bought(api, vendor, buyer)
    api.post(f"trades/{second['trade']['id']}/disputes", buyer, json={"reason": "files missing"})
    op = api.operator()
    for who in (buyer, vendor, op):
        ids = {e["id"] for e in api.get("entitlements?per_page=100", who).get_json()["items"]}
        assert {first["ent"]["id"], second["ent"]["id"]} <= ids
    cases = [("status=active", [first]), ("status=suspended", [second]), ("status=revoked", []),
             (f"product_id={first['trade']['product_id']}", [first]),
             (f"trade_id={second['trade']['id']}", [second]),
             (f"contract_id={first['trade']['contract_id']}", [first])]
    for query, expected in cases:
        items = api.get(f"entitlements?{query}", buyer).get_json()["items"]
        assert [e["id"] for e in items] == [x["ent"]["id"] for x in expected], query
    assert api.get("entitlements?status=bogus", buyer).status_code == 422


def test_other_organizations_get_404(api):
    got = bought(api)
    ent, rel = got["ent"], got["release"]
    for who in (got["buyer"], got["vendor"], api.operator()):
        assert ent_of(api, who, ent["id"])["id"] == ent["id"]
        assert api.get(f"entitlements/{ent['id']}/accesses", who).status_code == 200
    stranger = api.enterprise()
    assert api.get(f"entitlements/{ent['id']}", stranger).status_code == 404
    assert api.get(f"entitlements/{ent['id']}/accesses", stranger).status_code == 404
    r = api.post(f"entitlements/{ent['id']}/downloads", stranger, json={"release_id": rel["id"],
                                                                         "file": "traffic.csv"})
    assert r.status_code == 404
    assert api.get("entitlements", stranger).get_json()["items"] == []
    # The seller sees the entitlement but never downloads through it.
    r = api.post(f"entitlements/{ent['id']}/downloads", got["vendor"], json={"release_id": rel["id"],
                                                                              "file": "traffic.csv"})
    assert r.status_code == 403
    assert api.get("entitlements/ent_nope", got["buyer"]).status_code == 404


# -- suspension: each cause, and its end ---------------------------------------------------------------
def _cert(api, got):
    return api.get(f"contracts/{got['trade']['contract_id']}", got["buyer"]).get_json()["certificate_number"]


def _whitelist(api, **kw):
    r = api.post("whitelist", api.operator(), json={"category": "finance", "from_region": "GD", "to_region": "HK",
                                                     "max_classification": "important",
                                                     "expires_at": iso_z(utcnow() + timedelta(days=90)), **kw})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def cross_border(api):
    """A GD product sold to a Hong Kong buyer, lawful only through a white-list entry."""
    entry = _whitelist(api)
    got = bought(api, buyer=api.enterprise(region="HK"), classification="important", category="finance")
    got["entry"] = entry
    # Important data needs a security assessment, approved before delivery starts.
    clear_dossier(api, got["trade"]["contract_id"])
    return got


def _resolve(api, got, refund=0, end_access=False):
    r = api.post(f"trades/{got['trade']['id']}/resolution", api.operator(),
                 json={"refund_amount": refund, "end_access": end_access})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _org(api, who, action):
    r = api.post(f"organizations/{who.org_id}/{action}", api.operator(), json={"reason": "test"})
    assert r.status_code == 200, r.get_json()


def _certificate(api, got, action):
    r = api.post(f"certificates/{_cert(api, got)}/{action}", api.operator(), json={"reason": "test"})
    assert r.status_code == 200, r.get_json()


def _expire_entry(app, api, got):
    # The white list is read with the domain clock: an entry whose expires_at has passed is lapsed.
    execute(app, update(WhitelistEntry).where(WhitelistEntry.id == got["entry"]["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1)))


SUSPENSIONS = [
    # id, set up, cause starts, its reason and refusal code, cause ends, trade status after
    pytest.param(bought, lambda app, api, g: api.post(f"trades/{g['trade']['id']}/disputes", g["buyer"],
                                                      json={"reason": "rows missing"}),
                 "dispute open", "entitlement_suspended", lambda app, api, g: _resolve(api, g, refund=1),
                 "settled", id="dispute-resolved-partial-refund"),
    pytest.param(bought, lambda app, api, g: api.post(f"trades/{g['trade']['id']}/disputes", g["buyer"],
                                                      json={"reason": "rows missing"}),
                 "dispute open", "entitlement_suspended", lambda app, api, g: _resolve(api, g, refund=0),
                 "settled", id="dispute-resolved-no-refund"),
    pytest.param(bought, lambda app, api, g: _certificate(api, g, "suspend"), "certificate suspended",
                 "entitlement_suspended", lambda app, api, g: _certificate(api, g, "reinstate"), "delivered",
                 id="certificate-suspended"),
    pytest.param(bought, lambda app, api, g: _org(api, g["buyer"], "suspend"), "buyer organization suspended",
                 "entitlement_suspended", lambda app, api, g: _org(api, g["buyer"], "reinstate"), "delivered",
                 id="buyer-suspended"),
    pytest.param(bought, lambda app, api, g: _org(api, g["vendor"], "suspend"), "seller organization suspended",
                 "entitlement_suspended", lambda app, api, g: _org(api, g["vendor"], "reinstate"), "delivered",
                 id="seller-suspended"),
    pytest.param(cross_border, lambda app, api, g: api.delete(f"whitelist/{g['entry']['id']}", api.operator()),
                 "no live white-list entry covers this deal (whitelist_required)", "cross_border",
                 lambda app, api, g: _whitelist(api), "delivered", id="whitelist-entry-deleted"),
    pytest.param(cross_border, _expire_entry,
                 "no live white-list entry covers this deal (whitelist_required)", "cross_border",
                 lambda app, api, g: _whitelist(api), "delivered", id="whitelist-entry-expired"),
]


@pytest.mark.parametrize(("setup", "start", "reason", "code", "end", "trade_after"), SUSPENSIONS)
def test_suspended_while_the_cause_lasts(app, api, setup, start, reason, code, end, trade_after):
    got = setup(api)
    ent, rel, buyer = got["ent"], got["release"], got["buyer"]
    assert api.get(f"trades/{got['trade']['id']}", buyer).get_json()["status"] == "delivered"
    issued = link(api, buyer, ent["id"], rel["id"])
    start(app, api, got)
    shown = ent_of(api, api.operator(), ent["id"])
    assert (shown["status"], shown["status_reason"]) == ("suspended", reason)
    assert ent_of(api, buyer, ent["id"])["status"] == "suspended"
    refusal = f"{code}: {reason}"
    r = fetch(api, issued["url"])
    assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{refusal}. ")
    r = api.post(f"entitlements/{ent['id']}/downloads", buyer, json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403
    if reason != "buyer organization suspended":  # a suspended organization's writes are refused before
        assert r.get_json()["detail"].startswith(f"{refusal}. ")
    assert api.get(f"entitlements?status=suspended&trade_id={got['trade']['id']}", buyer).get_json()["total"] >= 1
    end(app, api, got)
    shown = ent_of(api, buyer, ent["id"])
    assert (shown["status"], shown["status_reason"]) == ("active", None)
    assert api.get(f"trades/{got['trade']['id']}", buyer).get_json()["status"] == trade_after
    assert fetch(api, link(api, buyer, ent["id"], rel["id"])["url"]).status_code == 200
    assert fetch(api, issued["url"]).status_code == 200
    log = [a for a in accesses(api, buyer, ent["id"])["items"] if a["status"] == "refused"]
    assert [(a["kind"], a["refused_reason"]) for a in log][:1] == [("download", refusal)]


def test_two_causes_both_named_and_both_must_end(api):
    got = bought(api)
    ent, buyer = got["ent"], got["buyer"]
    _certificate(api, got, "suspend")
    _org(api, got["vendor"], "suspend")
    shown = ent_of(api, buyer, ent["id"])
    assert shown["status_reason"] == "certificate suspended; seller organization suspended"
    _certificate(api, got, "reinstate")
    assert ent_of(api, buyer, ent["id"])["status_reason"] == "seller organization suspended"
    _org(api, got["vendor"], "reinstate")
    assert ent_of(api, buyer, ent["id"])["status"] == "active"


def test_dispute_suspension_is_persisted_with_its_event(app, api):
    got = bought(api)
    api.post(f"trades/{got['trade']['id']}/disputes", got["buyer"], json={"reason": "rows missing"})
    assert persisted(app, got["ent"]["id"]) == ("suspended", "dispute open")
    _resolve(api, got)
    assert persisted(app, got["ent"]["id"]) == ("active", None)


# -- revocation and expiry: final -----------------------------------------------------------------------
def _dispute(api, got):
    r = api.post(f"trades/{got['trade']['id']}/disputes", got["buyer"], json={"reason": "not as described"})
    assert r.status_code == 201, r.get_json()


REVOCATIONS = [
    pytest.param(lambda api, g: (_dispute(api, g), _resolve(api, g, refund=0, end_access=True)),
                 "resolution ended access", "settled", id="resolution-end-access"),
    pytest.param(lambda api, g: (_dispute(api, g), _resolve(api, g, refund=g["trade"]["amount"])),
                 "trade refunded", "refunded", id="full-refund"),
    pytest.param(lambda api, g: _certificate(api, g, "revoke"), "certificate revoked", "delivered",
                 id="certificate-revoked"),
]


@pytest.mark.parametrize(("cause", "reason", "trade_after"), REVOCATIONS)
def test_revoked_for_good(app, api, cause, reason, trade_after):
    got = bought(api)
    ent, rel, buyer = got["ent"], got["release"], got["buyer"]
    issued = link(api, buyer, ent["id"], rel["id"])
    cause(api, got)
    assert api.get(f"trades/{got['trade']['id']}", buyer).get_json()["status"] == trade_after
    shown = ent_of(api, buyer, ent["id"])
    assert (shown["status"], shown["status_reason"]) == ("revoked", reason)
    refusal = f"entitlement_revoked: {reason}"
    assert fetch(api, issued["url"]).get_json()["detail"].startswith(f"{refusal}. ")
    r = api.post(f"entitlements/{ent['id']}/downloads", buyer, json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403 and r.get_json()["detail"].startswith(f"{refusal}. ")
    sweep(app)
    assert persisted(app, ent["id"]) == ("revoked", reason)
    assert ent_of(api, buyer, ent["id"])["status"] == "revoked"


def test_expired_after_ends_at(app, api):
    got = bought(api)
    ent, rel, buyer = got["ent"], got["release"], got["buyer"]
    issued = link(api, buyer, ent["id"], rel["id"])
    # A year and a day later, without waiting: the entitlement's window and the release's publication
    # move back together (the release was published within the window, so it stays covered).
    back = timedelta(days=366)
    starts, ends = parse(ent["starts_at"]) - back, parse(ent["ends_at"]) - back
    execute(app, update(Entitlement).where(Entitlement.id == ent["id"]).values(starts_at=starts, ends_at=ends))
    execute(app, update(Release).where(Release.id == rel["id"]).values(
        published_at=parse(rel["published_at"]) - back))
    shown = ent_of(api, buyer, ent["id"])
    assert (shown["status"], shown["status_reason"]) == ("expired", "ends_at passed")
    assert persisted(app, ent["id"])[0] == "active"  # reads never write
    assert fetch(api, issued["url"]).get_json()["detail"].startswith("entitlement_expired: ends_at passed. ")
    r = api.post(f"entitlements/{ent['id']}/downloads", buyer, json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403 and r.get_json()["detail"].startswith("entitlement_expired: ends_at passed. ")
    # Filtered on the status computed now, before the sweep persisted it.
    assert api.get(f"entitlements?status=expired&trade_id={got['trade']['id']}", buyer).get_json()["total"] == 1
    assert api.get(f"entitlements?status=active&trade_id={got['trade']['id']}", buyer).get_json()["total"] == 0
    assert "entitlements changed status" in sweep(app)
    assert persisted(app, ent["id"]) == ("expired", "ends_at passed")
    assert api.get(f"entitlements?status=expired&trade_id={got['trade']['id']}", buyer).get_json()["total"] == 1


# -- the access log ---------------------------------------------------------------------------------
def test_refusals_logged_and_log_pages_by_cursor(app, api):
    got = bought(api)
    ent, rel, buyer = got["ent"], got["release"], got["buyer"]
    for _ in range(3):
        link(api, buyer, ent["id"], rel["id"])
    _certificate(api, got, "suspend")
    r = api.post(f"entitlements/{ent['id']}/downloads", buyer, json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403
    items = accesses(api, buyer, ent["id"], limit=100)["items"]
    assert [(a["kind"], a["status"]) for a in items] == [("download_link", "allowed")] * 3 + [
        ("download_link", "refused")]
    last = items[-1]
    assert last["refused_reason"] == "entitlement_suspended: certificate suspended"
    assert (last["user_id"], last["release_id"], last["object"]) == (buyer.user_id, rel["id"], "traffic.csv")
    assert all(a["refused_reason"] is None for a in items[:3])
    ids = [a["id"] for a in items]
    assert ids == sorted(ids)
    page1 = accesses(api, got["vendor"], ent["id"], limit=3)
    assert [a["id"] for a in page1["items"]] == ids[:3] and page1["next"] == ids[2]
    page2 = accesses(api, api.operator(), ent["id"], limit=3, after=page1["next"])
    assert [a["id"] for a in page2["items"]] == ids[3:] and page2["next"] is None
    for bad in ("limit=0", "limit=101", "after=-1", "after=x"):
        assert api.get(f"entitlements/{ent['id']}/accesses?{bad}", buyer).status_code == 422, bad


@pytest.mark.parametrize("statement", ["UPDATE accesses SET refused_reason = 'edited'", "DELETE FROM accesses"])
def test_access_log_is_append_only_at_the_database(app, api, statement):
    got = bought(api)
    link(api, got["buyer"], got["ent"]["id"], got["release"]["id"])
    with app.app_context(), pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(statement))
    assert len(accesses(api, got["buyer"], got["ent"]["id"])["items"]) == 1


def test_a_release_published_after_the_end_is_not_covered(app, api):
    got = bought(api, published=False)
    execute(app, update(Entitlement).where(Entitlement.id == got["ent"]["id"]).values(
        ends_at=utcnow() - timedelta(seconds=1)))
    rel = release(api, got["vendor"], got["trade"]["product_id"])
    r = api.post(f"entitlements/{got['ent']['id']}/downloads", got["buyer"],
                 json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 422 and "release_id" in r.get_json()["errors"]
    assert api.get(f"trades/{got['trade']['id']}", got["buyer"]).get_json()["status"] == "escrowed"


def test_status_filter_counts_the_computed_status(api):
    vendor, buyer = api.vendor(), api.enterprise()
    gone, kept, hit = bought(api, vendor, buyer), bought(api, vendor, buyer), bought(api, vendor, buyer)
    # Computed only: a suspended or revoked certificate is not persisted on the entitlement until the sweep.
    _certificate(api, hit, "suspend")
    _certificate(api, gone, "revoke")
    for status, expected in (("active", [kept]), ("suspended", [hit]), ("revoked", [gone]), ("expired", [])):
        page = api.get(f"entitlements?status={status}&per_page=1", buyer).get_json()
        assert [e["id"] for e in page["items"]] == [x["ent"]["id"] for x in expected], status
        assert page["total"] == len(expected), (status, page)
