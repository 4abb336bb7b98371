"""Refusals say what to do next (issue 21): a 403 or 409 names the missing step in `next_step`, and
its `detail` ends with the same sentence. (tests/conftest.py checks that every 403 and 409 problem
of the suite has a next_step; these check that a few a user meets say the right thing.)"""

from __future__ import annotations

from tests.deliveryflow import pay, signed_trade
from tests.factories import PASSWORD, product_body

SHA = "c" * 64


def refusal(r, status):
    assert r.status_code == status, (r.status_code, r.get_json())
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    step = body["next_step"]
    # Humans reading only `detail` see the next step too, as its last sentence.
    assert body["detail"].endswith(step[0].upper() + step[1:] + "."), body
    return body


def test_delivery_of_an_unpaid_trade_says_an_operator_must_confirm_the_payment(api):
    vendor, buyer = api.vendor(), api.enterprise()
    trade = signed_trade(api, vendor, buyer)
    assert trade["status"] == "awaiting_payment"
    r = api.post(f"trades/{trade['id']}/delivery", vendor, json={"reference": "sftp://x/1.csv", "sha256": SHA})
    body = refusal(r, 409)
    assert "awaiting_payment" in body["detail"]
    assert "the buyer must pay the trade" in body["next_step"]
    assert "an operator must confirm the payment first" in body["next_step"]


def test_a_pending_vendor_creating_a_product_is_told_an_operator_must_verify_it(api):
    pending = api.vendor(verified=False)
    body = refusal(api.post("products", pending, json=product_body()), 403)
    assert body["next_step"] == "an operator must verify your organization first"
    assert "pending" in body["detail"]


def test_a_suspended_organization_is_told_an_operator_must_reinstate_it(api):
    vendor = api.vendor()
    api.suspend(vendor)
    body = refusal(api.post("products", vendor, json=product_body()), 403)
    assert body["next_step"] == "an operator must reinstate your organization first"


def test_the_seller_paying_is_told_to_sign_in_as_the_buyer(api):
    vendor, buyer = api.vendor(), api.enterprise()
    trade = signed_trade(api, vendor, buyer)
    body = refusal(api.post(f"trades/{trade['id']}/payments", vendor, json={"provider": "manual"}), 403)
    assert body["next_step"] == "sign in as a member of the buying organization"


def test_a_second_payment_while_one_is_pending_says_to_cancel_it_first(api):
    vendor, buyer = api.vendor(), api.enterprise()
    trade = signed_trade(api, vendor, buyer)
    first = api.post(f"trades/{trade['id']}/payments", buyer, json={"provider": "manual"})
    assert first.status_code == 201, first.get_json()
    body = refusal(api.post(f"trades/{trade['id']}/payments", buyer, json={"provider": "manual"}), 409)
    assert body["next_step"].startswith("cancel the pending payment first")


def test_accepting_a_trade_not_delivered_yet_says_the_seller_must_deliver(api):
    vendor, buyer = api.vendor(), api.enterprise()
    trade = signed_trade(api, vendor, buyer)
    pay(api, buyer, trade["id"])
    body = refusal(api.post(f"trades/{trade['id']}/acceptance", buyer), 409)
    assert body["next_step"].startswith("the seller must deliver the data")


def test_registering_a_taken_email_says_to_sign_in_or_use_another(api):
    taken = api.register("vendor")
    body = {"name": "Another 机构", "type": "vendor", "region": "GD", "registration_number": "91440101OTHER01",
            "admin": {"email": taken["admin_email"], "password": PASSWORD, "name": "A"}}
    problem = refusal(api.post("organizations", json=body), 409)
    assert problem["next_step"] == "use another email, or sign in with the existing account"


def test_a_refused_move_of_a_finished_trade_says_nothing_more_can_change_it(api):
    vendor, buyer = api.vendor(), api.enterprise()
    trade = signed_trade(api, vendor, buyer)
    pay(api, buyer, trade["id"])
    r = api.post(f"trades/{trade['id']}/delivery", vendor, json={"reference": "sftp://x/1.csv", "sha256": SHA})
    assert r.status_code == 200, r.get_json()
    assert api.post(f"trades/{trade['id']}/acceptance", buyer).status_code == 200
    body = refusal(api.post(f"trades/{trade['id']}/disputes", buyer, json={"reason": "late"}), 409)
    assert body["type"].endswith("/invalid-transition")
    assert body["next_step"] == "the trade is finished; nothing more can change it"
