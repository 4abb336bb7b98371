"""Every gateway rule of API.md ("API gateway", "Metering") against a real loopback upstream
(tests/upstream.py): the upstream's settings, the buyers' keys, what the data plane forwards and
relays, what it refuses, and what it counts."""

from __future__ import annotations

import json
import socket
import time

import pytest
from sqlalchemy import select, update

from delivery.models import Entitlement
from exchange.db import db
from tests.api.test_gateway import call
from tests.api.test_ratelimit import _wait_for_room_in_the_window
from tests.deliveryflow import api_bought, execute
from tests.tradeflow import contract_for
from tests.upstream import Upstream, upstream  # noqa: F401 - fixture

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])
SECRET = "vendor-secret-1"


@pytest.fixture(autouse=True)
def _private_upstreams(app):
    app.config["ALLOW_PRIVATE_URLS"] = True


def calls_used(api, deal) -> int:
    return api.get(f"entitlements/{deal['ent']['id']}/usage", deal["buyer"]).get_json()["calls_used"]


def with_quota(app, deal, n: int) -> None:
    # The per_call contract path (terms.calls) lands separately (trading/): the quota is set in the
    # database after escrow, as that path will set it.
    execute(app, update(Entitlement).where(Entitlement.id == deal["ent"]["id"]).values(calls_included=n))


def put_upstream(api, actor, product_id, **body):
    return api.request("PUT", f"products/{product_id}/api-upstream", actor,
                       json={"base_url": "http://127.0.0.1:9/v1", "timeout_ms": 1000, **body})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the upstream (control plane) --------------------------------------------------------------------
def test_only_the_owner_sets_the_upstream_of_an_api_product(api, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    pid = deal["product_id"]
    for other in (deal["buyer"], api.vendor(), api.enterprise()):
        r = put_upstream(api, other, pid, base_url=f"http://127.0.0.1:{closed_port()}/stolen")
        assert r.status_code in (403, 404), r.get_json()
    # The refused attempts changed nothing: calls still reach the vendor's own upstream.
    assert call(api, deal, "x").status_code == 200 and upstream.count() == 1


def test_a_file_product_has_no_upstream(api):
    vendor, buyer = api.vendor(), api.enterprise()
    contract = contract_for(api, vendor, buyer, delivery_mode="file")
    r = put_upstream(api, vendor, contract["product_id"])
    assert r.status_code == 409 and "api" in r.get_json()["detail"]


def test_a_private_address_is_refused_unless_allowed_and_timeout_is_bounded(api, app, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    pid, vendor = deal["product_id"], deal["vendor"]
    app.config["ALLOW_PRIVATE_URLS"] = False
    for url in ("http://127.0.0.1:8080/v1", "http://10.0.0.5/v1", "http://[::1]/v1", "http://169.254.169.254/x",
                "ftp://93.184.215.14/x"):
        r = put_upstream(api, vendor, pid, base_url=url)
        assert r.status_code == 422, (url, r.get_json())
    # Refused now at the call too: the stored loopback upstream is no longer a permitted address.
    assert call(api, deal, "x").status_code == 502
    assert upstream.count() == 0
    app.config["ALLOW_PRIVATE_URLS"] = True
    for ms in (99, 25001):
        assert put_upstream(api, vendor, pid, base_url=upstream.url, timeout_ms=ms).status_code == 422
    assert put_upstream(api, vendor, pid, base_url=upstream.url, timeout_ms=100).status_code == 200


def test_the_auth_header_value_is_never_shown_again(api, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url, header={"name": "X-Api-Key", "value": SECRET})
    r = put_upstream(api, deal["vendor"], deal["product_id"], base_url=upstream.url,
                     auth_header={"name": "X-Api-Key", "value": SECRET})
    assert r.status_code == 200 and SECRET not in r.get_data(as_text=True)
    assert r.get_json()["auth_header_name"] == "X-Api-Key"
    for actor in (deal["vendor"], deal["buyer"], api.operator()):
        for path in (f"products/{deal['product_id']}", f"entitlements/{deal['ent']['id']}",
                     f"entitlements/{deal['ent']['id']}/api-keys", f"entitlements/{deal['ent']['id']}/accesses"):
            got = api.get(path, actor)
            assert SECRET not in got.get_data(as_text=True), (path, actor)
    assert call(api, deal, "x").status_code == 200
    assert upstream.received[-1].headers["x-api-key"] == SECRET
    got = call(api, deal, "x")
    assert SECRET not in got.get_data(as_text=True) and SECRET not in str(got.headers)


# -- keys --------------------------------------------------------------------------------------------
def test_keys_are_for_the_buyers_admins_and_shown_once(api, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    ent = deal["ent"]["id"]
    keys = f"entitlements/{ent}/api-keys"
    member = api.member(deal["buyer"])
    assert api.post(keys, member, json={"label": "m"}).status_code == 403
    assert api.post(keys, deal["vendor"], json={"label": "s"}).status_code == 403
    assert api.post(keys, api.enterprise(), json={"label": "o"}).status_code == 404
    assert api.delete(f"{keys}/{deal['key_id']}", member).status_code == 403
    assert api.get(keys, deal["vendor"]).status_code == 403
    assert api.get(keys, api.enterprise()).status_code == 404
    made = [deal["key"]]
    for i in range(4):
        r = api.post(keys, deal["buyer"], json={"label": f"k{i}"})
        assert r.status_code == 201
        body = r.get_json()
        assert body["key"].startswith("dfk_") and len(body["key"]) >= 4 + 43 and body["prefix"] == body["key"][:12]
        made.append(body["key"])
    r = api.post(keys, deal["buyer"], json={"label": "sixth"})
    assert r.status_code == 409
    listed = api.get(keys, member)
    assert listed.status_code == 200
    text = listed.get_data(as_text=True)
    assert all(k not in text for k in made)
    assert sorted(i["prefix"] for i in listed.get_json()["items"]) == sorted(k[:12] for k in made)
    assert all("key" not in i for i in listed.get_json()["items"])
    # Revoking one makes room for one more.
    assert api.delete(f"{keys}/{deal['key_id']}", deal["buyer"]).status_code == 200
    assert api.post(keys, deal["buyer"], json={"label": "sixth"}).status_code == 201


def test_a_replayed_key_creation_answers_key_null(api, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    keys = f"entitlements/{deal['ent']['id']}/api-keys"
    headers = {"Idempotency-Key": "gateway-key-1"}
    first = api.post(keys, deal["buyer"], json={"label": "ci"}, headers=headers)
    assert first.status_code == 201 and first.get_json()["key"].startswith("dfk_")
    replay = api.post(keys, deal["buyer"], json={"label": "ci"}, headers=headers)
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json()["key"] is None and replay.get_json()["id"] == first.get_json()["id"]
    assert first.get_json()["key"] not in replay.get_data(as_text=True)
    # The key shown once works; no second key was made by the replay.
    assert call(api, {**deal, "key": first.get_json()["key"]}, "x").status_code == 200
    assert len(api.get(keys, deal["buyer"]).get_json()["items"]) == 2


# -- the data plane: what is forwarded and relayed ---------------------------------------------------
def test_hop_by_hop_and_connection_named_headers_are_neither_forwarded_nor_relayed(api, upstream):  # noqa: F811
    upstream.answer = lambda r: (200, {"Set-Cookie": "a=1", "Keep-Alive": "timeout=5", "X-Up-Drop": "1",
                                       "Connection": "X-Up-Drop", "Trailer": "X-T", "X-Kept": "yes"}, b"{}")
    deal = api_bought(api, upstream.url)
    r = call(api, deal, "h", headers={"Keep-Alive": "300", "TE": "trailers", "Upgrade": "websocket",
                                      "Connection": "keep-alive, X-Secret-Hop", "X-Secret-Hop": "1",
                                      "Proxy-Connection": "keep-alive", "Forwarded": "for=1.2.3.4",
                                      "X-Forwarded-For": "1.2.3.4", "X-Keep": "k"})
    assert r.status_code == 200
    (got,) = upstream.received
    for absent in ("keep-alive", "te", "upgrade", "x-secret-hop", "proxy-connection", "forwarded",
                   "x-forwarded-for", "authorization"):
        assert absent not in got.headers, absent
    assert got.headers["x-keep"] == "k" and got.headers["host"] == upstream.url.split("/")[2]
    relayed = {k.lower() for k, _ in r.headers.items()}
    assert not relayed & {"set-cookie", "keep-alive", "trailer", "x-up-drop"}
    assert r.headers["X-Kept"] == "yes"


def test_a_redirect_is_relayed_not_followed(api, upstream):  # noqa: F811
    upstream.answer = lambda r: (302, {"Location": "http://127.0.0.1:1/internal/admin"}, b"")
    deal = api_bought(api, upstream.url)
    r = call(api, deal, "go")
    assert r.status_code == 302 and r.headers["Location"] == "http://127.0.0.1:1/internal/admin"
    assert upstream.count() == 1
    assert calls_used(api, deal) == 1


def test_a_json_body_up_to_10_mib_is_forwarded_and_over_it_is_413(api, upstream):  # noqa: F811
    upstream.answer = lambda r: (201, {"Content-Type": "application/json"},
                                 json.dumps({"bytes": len(r.body), "type": r.headers.get("content-type")}).encode())
    deal = api_bought(api, upstream.url)
    body = json.dumps({"q": "体育西路", "pad": "x" * ((10 << 20) - 100)}, ensure_ascii=False).encode()
    body += b" " * ((10 << 20) - len(body))
    assert len(body) == 10 << 20
    r = call(api, deal, "search", method="POST", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.get_data()[:200]
    assert r.get_json() == {"bytes": 10 << 20, "type": "application/json"}
    assert upstream.received[0].body == body
    r = call(api, deal, "search", method="POST", data=body + b" ", headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert upstream.count() == 1 and calls_used(api, deal) == 1


def test_an_upstream_error_is_relayed_as_it_is_and_not_counted(api, upstream):  # noqa: F811
    upstream.answer = lambda r: (500, {"Content-Type": "text/plain", "X-Vendor-Error": "e1"}, b"vendor broke")
    deal = api_bought(api, upstream.url)
    r = call(api, deal, "x")
    assert r.status_code == 500 and r.get_data() == b"vendor broke" and r.headers["X-Vendor-Error"] == "e1"
    upstream.answer = lambda r: (404, {}, b"no such station")
    r = call(api, deal, "x")
    assert r.status_code == 404 and r.get_data() == b"no such station"
    assert calls_used(api, deal) == 1  # a 4xx is the vendor's answer: counted; the 500 was not


def test_an_unreachable_upstream_is_502_and_not_counted(api, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    assert put_upstream(api, deal["vendor"], deal["product_id"],
                        base_url=f"http://127.0.0.1:{closed_port()}/v1").status_code == 200
    r = call(api, deal, "x")
    assert r.status_code == 502 and r.headers["Content-Type"] == "application/problem+json"
    assert calls_used(api, deal) == 0
    trade = api.get(f"trades/{deal['trade']['id']}", deal["buyer"]).get_json()
    assert trade["status"] == "escrowed"


def test_a_slow_upstream_is_504_within_its_timeout_and_not_counted(api, upstream):  # noqa: F811
    def slow(r):
        time.sleep(1.5)
        return 200, {}, b"late"

    upstream.answer = slow
    deal = api_bought(api, upstream.url)
    assert put_upstream(api, deal["vendor"], deal["product_id"], base_url=upstream.url,
                        timeout_ms=200).status_code == 200
    started = time.monotonic()
    r = call(api, deal, "x")
    assert r.status_code == 504 and time.monotonic() - started < 1.2
    assert calls_used(api, deal) == 0 and upstream.count() == 1


def test_an_answer_declared_over_the_cap_is_502_and_not_counted(api, app, upstream):  # noqa: F811
    app.config["GATEWAY_MAX_RESPONSE_BYTES"] = 1000
    upstream.answer = lambda r: (200, {}, b"y" * (1000 if r.path.endswith("ok") else 1001))
    deal = api_bought(api, upstream.url)
    assert call(api, deal, "big").status_code == 502
    r = call(api, deal, "ok")
    assert r.status_code == 200 and r.get_data() == b"y" * 1000
    assert calls_used(api, deal) == 1


def test_the_per_key_rate_is_429_with_retry_after_and_not_counted(api, app, upstream):  # noqa: F811
    app.config["GATEWAY_RATE_LIMIT"] = "3/minute"
    deal = api_bought(api, upstream.url)
    other = api.post(f"entitlements/{deal['ent']['id']}/api-keys", deal["buyer"], json={"label": "b"}).get_json()
    _wait_for_room_in_the_window()
    for _ in range(3):
        assert call(api, deal, "x").status_code == 200
    r = call(api, deal, "x")
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    assert upstream.count() == 3 and calls_used(api, deal) == 3
    # Per key: another key of the same entitlement still has its own allowance.
    assert call(api, {**deal, "key": other["key"]}, "x").status_code == 200


def test_a_quota_of_n_serves_exactly_n_counting_down(api, app, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    with_quota(app, deal, 3)
    remaining = []
    for _ in range(3):
        r = call(api, deal, "x")
        assert r.status_code == 200
        remaining.append(r.headers["Datafair-Calls-Remaining"])
    assert remaining == ["2", "1", "0"]
    r = call(api, deal, "x")
    assert r.status_code == 429 and "quota_exhausted" in r.get_json()["detail"] and r.headers["Retry-After"]
    assert upstream.count() == 3
    usage = api.get(f"entitlements/{deal['ent']['id']}/usage", deal["buyer"]).get_json()
    assert (usage["calls_included"], usage["calls_used"]) == (3, 3)


def test_a_failed_call_on_a_quota_is_given_back(api, app, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    with_quota(app, deal, 2)
    upstream.answer = lambda r: (503, {}, b"down")
    r = call(api, deal, "x")
    assert r.status_code == 503 and r.headers["Datafair-Calls-Remaining"] == "2"
    upstream.answer = None
    assert [call(api, deal, "x").headers["Datafair-Calls-Remaining"] for _ in range(2)] == ["1", "0"]
    assert call(api, deal, "x").status_code == 429


def _suspend_by_dispute(api, deal):
    r = api.post(f"trades/{deal['trade']['id']}/disputes", deal["buyer"], json={"reason": "wrong data"})
    assert r.status_code == 201, r.get_json()
    return "dispute open"


def _suspend_buyer(api, deal):
    r = api.post(f"organizations/{deal['buyer'].org_id}/suspend", api.operator(), json={"reason": "fraud"})
    assert r.status_code == 200, r.get_json()
    return "buyer organization suspended"


def _suspend_seller(api, deal):
    r = api.post(f"organizations/{deal['vendor'].org_id}/suspend", api.operator(), json={"reason": "fraud"})
    assert r.status_code == 200, r.get_json()
    return "seller organization suspended"


def _suspend_certificate(api, deal):
    number = api.get(f"contracts/{deal['trade']['contract_id']}", deal["buyer"]).get_json()["certificate_number"]
    r = api.post(f"certificates/{number}/suspend", api.operator(), json={"reason": "checking"})
    assert r.status_code == 200, r.get_json()
    return "certificate"


@pytest.mark.parametrize("suspend", [_suspend_by_dispute, _suspend_buyer, _suspend_seller, _suspend_certificate])
def test_a_suspended_entitlement_is_403_with_the_reason_logged_and_not_forwarded(api, app, upstream, suspend):  # noqa: F811
    deal = api_bought(api, upstream.url)
    assert call(api, deal, "x").status_code == 200
    reason = suspend(api, deal)
    r = call(api, deal, "x")
    assert r.status_code == 403, r.get_json()
    assert r.get_json()["detail"].startswith("entitlement_suspended") and reason in r.get_json()["detail"]
    assert upstream.count() == 1
    with app.app_context():
        used = db.session.execute(select(Entitlement.calls_used).where(Entitlement.id == deal["ent"]["id"])).scalar()
    assert used == 1
    log = api.get(f"entitlements/{deal['ent']['id']}/accesses", api.operator()).get_json()["items"]
    refused = [a for a in log if a["status"] == "refused"]
    assert len(refused) == 1 and refused[0]["api_key_id"] == deal["key_id"] and reason in refused[0]["refused_reason"]


def test_http_is_for_development_https_for_production(api, app, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    app.config["ALLOW_PRIVATE_URLS"] = False
    assert app.config["DATAFAIR_ENV"] != "production"
    assert put_upstream(api, deal["vendor"], deal["product_id"], base_url="http://93.184.215.14/v1").status_code == 200
    app.config["DATAFAIR_ENV"] = "production"  # the app fixture restores the config after the test
    r = put_upstream(api, deal["vendor"], deal["product_id"], base_url="http://93.184.215.14/v2")
    assert r.status_code == 422, r.get_json()
    ok = put_upstream(api, deal["vendor"], deal["product_id"], base_url="https://93.184.215.14/v2")
    assert ok.status_code == 200 and ok.get_json()["base_url"].startswith("https://")


def test_a_used_up_entitlement_is_still_429_not_403(api, app, upstream):  # noqa: F811
    deal = api_bought(api, upstream.url)
    # As the sweep leaves a per_call entitlement whose calls are used up (API.md: 429, not 403).
    execute(app, update(Entitlement).where(Entitlement.id == deal["ent"]["id"]).values(
        calls_included=2, calls_used=2, status="expired", status_reason="calls_used_up"))
    r = call(api, deal, "x")
    assert r.status_code == 429 and "quota_exhausted" in r.get_json()["detail"]
    assert upstream.count() == 0


def test_an_unmetered_call_has_no_remaining_header_and_head_keeps_its_length(api, upstream):  # noqa: F811
    upstream.answer = lambda r: (200, {"Content-Type": "text/csv"}, b"a,b\n1,2\n")
    deal = api_bought(api, upstream.url)
    r = call(api, deal, "export.csv", method="HEAD")
    assert r.status_code == 200 and r.get_data() == b"" and r.headers["Content-Length"] == "8"
    assert "Datafair-Calls-Remaining" not in r.headers
    r = call(api, deal, "import", method="POST", data=b"a,b\n3,4\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.get_data() == b"a,b\n1,2\n"
    got = upstream.received[-1]
    assert got.body == b"a,b\n3,4\n" and got.headers["content-type"] == "text/csv"
    assert calls_used(api, deal) == 2
