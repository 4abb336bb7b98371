"""The ledger's read API over HTTP: who sees which accounts and entries, verify for operators."""

from __future__ import annotations

import hashlib

import pytest
import rfc8785

from exchange.db import db
from exchange.ledger import engine
from exchange.ledger.engine import Posting
from tests.ledger_helpers import escrow, fees, funding, move, payable


@pytest.fixture
def parties(api, app):
    """A buyer and a seller with one settled trade `trd_api` (CNY) and a HKD payment."""
    buyer, seller = api.enterprise(), api.vendor(region="HK")
    with app.app_context():
        engine.post_entry(db.session, kind="payment", trade_id="trd_api",
                          postings=move(funding(buyer.org_id), escrow("trd_api"), 50_000))
        engine.post_entry(db.session, kind="settlement", trade_id="trd_api", postings=[
            Posting(escrow("trd_api"), -50_000), Posting(payable(seller.org_id), 49_000), Posting(fees(), 1_000)])
        engine.post_entry(db.session, kind="payment", trade_id="trd_other",
                          postings=move(funding(buyer.org_id, "HKD"), escrow("trd_other", "HKD"), 700))
        db.session.commit()
    return buyer, seller


def names(body):
    return [a["name"] for a in body["items"]]


def test_accounts_show_the_callers_own_organization(api, parties):
    buyer, seller = parties
    r = api.get("ledger/accounts", seller)
    assert r.status_code == 200
    body = r.get_json()
    assert body["total"] == 1 and body["page"] == 1 and body["per_page"] == 20
    [account] = body["items"]
    assert account["name"] == f"seller_payable:{seller.org_id}:CNY"
    assert account["balance"] == 49_000 and account["non_negative"] is True and account["version"] == 1
    assert account["created_at"].endswith("Z")
    r = api.get("ledger/accounts?currency=HKD", buyer)
    assert names(r.get_json()) == [f"buyer_funding:{buyer.org_id}:HKD"]
    assert r.get_json()["items"][0]["balance"] == -700
    # Another organization's accounts stay invisible, even when asked for by owner.
    assert api.get(f"ledger/accounts?owner_id={seller.org_id}", buyer).get_json()["total"] == 0


def test_operators_see_every_account_with_filters(api, parties):
    op = api.operator()
    body = api.get("ledger/accounts?per_page=100", op).get_json()
    assert body["total"] == 6
    assert names(api.get("ledger/accounts?purpose=exchange_fees", op).get_json()) == ["exchange_fees:exchange:CNY"]
    second = api.get("ledger/accounts?purpose=trade_escrow&per_page=1&page=2", op).get_json()
    assert second["total"] == 2 and names(second) == ["trade_escrow:trd_other:HKD"]


@pytest.mark.parametrize("query", ["per_page=0", "per_page=101", "page=0", "currency=USD", "purpose=savings",
                                   "owner_id=" + "x" * 81])
def test_account_list_validates_its_query(api, parties, query):
    r = api.get(f"ledger/accounts?{query}", parties[0])
    assert r.status_code == 422 and r.content_type == "application/problem+json"


def test_an_unregistered_purpose_is_refused_naming_the_registered_ones_as_documented(api, parties):
    enum = next(p for p in api.get("openapi.json").get_json()["paths"]["/api/v1/ledger/accounts"]["get"]["parameters"]
                if p["name"] == "purpose")["schema"]["enum"]
    assert enum == ["buyer_funding", "trade_escrow", "seller_payable", "exchange_fees", "provider_clearing",
                    "payouts_clearing"]
    r = api.get("ledger/accounts?purpose=savings", parties[0])
    assert r.status_code == 422 and r.get_json()["errors"]["purpose"] == [f"Must be one of: {', '.join(enum)}."]


def test_ledger_reads_need_a_token(api):
    for path in ("ledger/accounts", "ledger/entries", "ledger/verify"):
        r = api.get(path)
        assert r.status_code == 401 and r.content_type == "application/problem+json"


def test_operators_read_entries_as_the_contract_shows_and_can_recompute_hashes(api, parties):
    op = api.operator()
    body = api.get("ledger/entries?trade_id=trd_api", op).get_json()
    assert body["total"] == 2
    paid, settled = body["items"]
    assert set(paid) >= {"id", "seq", "trade_id", "kind", "created_at", "prev_hash", "hash", "postings"}
    assert (paid["seq"], paid["kind"], settled["kind"]) == (1, "payment", "settlement")
    assert settled["prev_hash"] == paid["hash"] and paid["prev_hash"] == "0" * 64
    assert [(p["account"], p["currency"], p["amount"]) for p in settled["postings"]] == [
        ("trade_escrow:trd_api:CNY", "CNY", -50_000),
        (f"seller_payable:{parties[1].org_id}:CNY", "CNY", 49_000),
        ("exchange_fees:exchange:CNY", "CNY", 1_000)]
    for entry in (paid, settled):  # the documented recipe, from the API's own fields
        canonical = rfc8785.dumps({k: entry[k] for k in
                                   ("seq", "kind", "trade_id", "created_at", "postings", "metadata")})
        assert hashlib.sha256(canonical + entry["prev_hash"].encode()).hexdigest() == entry["hash"]
    everything = api.get("ledger/entries", op).get_json()
    assert [e["seq"] for e in everything["items"]] == [1, 2, 3]
    assert [e["seq"] for e in api.get("ledger/entries?kind=payment", op).get_json()["items"]] == [1, 3]


def test_parties_get_404_until_trading_registers_an_access_check(app, api, parties, monkeypatch):
    buyer, _seller = parties
    monkeypatch.setitem(app.extensions, engine.ENTRY_ACCESS_EXTENSION, [])
    r = api.get("ledger/entries?trade_id=trd_api", buyer)
    assert r.status_code == 404 and r.content_type == "application/problem+json"
    r = api.get("ledger/entries", buyer)
    assert r.status_code == 422 and "trade_id" in r.get_json()["errors"]


def test_a_registered_access_check_lets_the_parties_read_their_trade(app, api, parties, monkeypatch):
    buyer, seller = parties
    stranger = api.enterprise()
    monkeypatch.setitem(app.extensions, engine.ENTRY_ACCESS_EXTENSION, [])
    parties_of = {"trd_api": {buyer.org_id, seller.org_id}}
    seen = []

    def checker(session, principal, trade_id):
        seen.append(trade_id)
        return principal.org_id in parties_of.get(trade_id, set())

    engine.register_entry_access(app, checker)
    engine.register_entry_access(app, checker)  # idempotent
    assert engine.entry_access_checkers(app) == [checker]
    for party in (buyer, seller):
        r = api.get("ledger/entries?trade_id=trd_api", party)
        assert r.status_code == 200 and r.get_json()["total"] == 2
    assert api.get("ledger/entries?trade_id=trd_api", stranger).status_code == 404
    assert api.get("ledger/entries?trade_id=trd_other", buyer).status_code == 404
    assert seen == ["trd_api", "trd_api", "trd_api", "trd_other"]


def test_verify_is_for_operators(api, parties):
    buyer, _seller = parties
    r = api.get("ledger/verify", buyer)
    assert r.status_code == 403 and r.content_type == "application/problem+json"
    body = api.get("ledger/verify", api.operator()).get_json()
    assert body["entries"] == 3 and body["balanced"] is True and body["chain_valid"] is True
    assert body["valid"] is True and body["head_seq"] == 3 and len(body["head"]) == 64
    assert body["first_bad_seq"] is None and body["problems"] == []


def test_ledger_paths_are_documented(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/ledger/accounts", "/api/v1/ledger/entries", "/api/v1/ledger/verify"):
        assert "get" in spec["paths"][path]
    assert "403" in spec["paths"]["/api/v1/ledger/verify"]["get"]["responses"]
