"""Authorization: operator-only routes, pending and suspended organizations, members, keys, privacy."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.factories import PASSWORD

NON_OPERATOR_TYPES = ["vendor", "enterprise", "assessor"]
PRIVATE_FIELDS = {"contact_email", "stripe_account_id", "status_reason", "status_changed_at"}


def new_public_key() -> str:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@pytest.fixture
def target(api):
    """A pending organization and a verified one, as the objects of operator actions."""
    return {"pending": api.register("vendor")["id"], "verified": api.vendor().org_id}


def operator_requests(target):
    pending, verified = target["pending"], target["verified"]
    return [
        ("POST", f"organizations/{pending}/verify", {"reason": "looks fine"}),
        ("POST", f"organizations/{pending}/reject", {"reason": "fake"}),
        ("POST", f"organizations/{verified}/suspend", {"reason": "fraud"}),
        ("POST", f"organizations/{verified}/reinstate", {"reason": "cleared"}),
        ("GET", "organizations", None),
        ("GET", "organizations?status=pending", None),
        ("GET", "audit", None),
        ("PATCH", f"organizations/{verified}", {"type": "enterprise"}),
        ("PATCH", f"organizations/{verified}", {"status": "suspended"}),
        ("PATCH", f"organizations/{verified}", {"region": "HK"}),
        ("PATCH", f"organizations/{verified}", {"stripe_account_id": "acct_ATTACKER1"}),
    ]


@pytest.mark.parametrize("org_type", NON_OPERATOR_TYPES)
def test_operator_only_routes_refuse_every_other_type(api, target, org_type):
    caller = api.org(org_type)
    member = api.member(caller)
    for actor in (caller, member):
        for method, path, body in operator_requests(target):
            r = api.request(method, path, actor, json=body)
            assert r.status_code == 403, (org_type, method, path, r.get_json())
            assert r.mimetype == "application/problem+json"
    # Nothing changed.
    op = api.operator()
    assert api.get(f"organizations/{target['pending']}", op).get_json()["status"] == "pending"
    verified = api.get(f"organizations/{target['verified']}", op).get_json()
    assert verified["status"] == "verified" and verified["type"] == "vendor" and verified["region"] == "GD"
    assert verified["stripe_account_id"] is None


def test_operator_only_routes_answer_401_to_anonymous_callers(api, target):
    for method, path, body in operator_requests(target):
        r = api.request(method, path, json=body)
        assert r.status_code == 401, (method, path, r.get_json())


def test_an_org_admin_cannot_set_operator_fields_on_its_own_organization(api):
    vendor = api.vendor()
    for body in ({"type": "enterprise"}, {"status": "verified"}, {"region": "HK"},
                 {"stripe_account_id": "acct_MINE123"}, {"display_name": "ok", "region": "MO"}):
        r = api.patch(f"organizations/{vendor.org_id}", vendor, json=body)
        assert r.status_code == 403, (body, r.get_json())
    r = api.patch(f"organizations/{vendor.org_id}", vendor,
                  json={"display_name": "前海数据", "contact_email": "sales@qianhai.test",
                        "website": "https://qianhai.test"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["display_name"] == "前海数据" and r.get_json()["region"] == "GD"


def test_operators_set_the_payout_account_and_it_is_audited(api):
    vendor = api.vendor()
    op = api.operator()
    r = api.patch(f"organizations/{vendor.org_id}", op, json={"stripe_account_id": "acct_1Payout", "region": "HK"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["stripe_account_id"] == "acct_1Payout"
    trail = api.get(f"audit?object_id={vendor.org_id}&action=organization.updated", op).get_json()
    assert trail["total"] == 1
    assert trail["items"][0]["detail"]["fields"] == ["region", "stripe_account_id"]


def test_only_an_org_admin_edits_its_profile(api):
    vendor = api.vendor()
    member = api.member(vendor)
    other = api.enterprise()
    assert api.patch(f"organizations/{vendor.org_id}", member, json={"display_name": "x"}).status_code == 403
    assert api.patch(f"organizations/{vendor.org_id}", other, json={"display_name": "x"}).status_code == 403


def test_operator_actions_are_audited_with_their_reason(api, target):
    op = api.operator()
    r = api.post(f"organizations/{target['pending']}/verify", op, json={"reason": "licence checked"})
    assert r.status_code == 200 and r.get_json()["status"] == "verified"
    trail = api.get(f"audit?object_id={target['pending']}", op).get_json()["items"]
    assert [e["action"] for e in trail] == ["organization.verified"]
    assert trail[0]["detail"]["reason"] == "licence checked"
    assert trail[0]["actor_user_id"] == op.user_id and trail[0]["actor_org_id"] == op.org_id


def test_operator_status_changes_follow_the_state_machine(api, target):
    op = api.operator()
    v = target["verified"]
    assert api.post(f"organizations/{v}/verify", op, json={"reason": "again"}).status_code == 409
    assert api.post(f"organizations/{v}/reinstate", op, json={"reason": "not suspended"}).status_code == 409
    assert api.post(f"organizations/{v}/suspend", op, json={"reason": "fraud"}).status_code == 200
    assert api.post(f"organizations/{v}/reinstate", op, json={"reason": "cleared"}).status_code == 200
    r = api.post(f"organizations/{op.org_id}/suspend", op, json={"reason": "self"})
    assert r.status_code == 403
    assert api.post(f"organizations/{v}/suspend", op, json={}).status_code == 422


# -- pending organizations -----------------------------------------------------------------------

def test_a_pending_organization_is_limited(api):
    created = api.register("vendor")
    tokens = api.login(created["admin_email"])
    pending = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = api.get("me", headers=pending)
    assert me.status_code == 200 and me.get_json()["organization"]["status"] == "pending"
    # Invisible to other organizations and to the public until verified; visible to operators.
    other = api.enterprise()
    assert api.get(f"organizations/{created['id']}", other).status_code == 404
    assert api.get(f"organizations/{created['id']}").status_code == 404
    assert api.get(f"organizations/{created['id']}/keys").status_code == 404
    assert api.get(f"organizations/{created['id']}", api.operator()).status_code == 200
    # No operator powers, not even over itself.
    assert api.post(f"organizations/{created['id']}/verify", headers=pending,
                    json={"reason": "I am fine"}).status_code == 403
    assert api.patch(f"organizations/{created['id']}", headers=pending, json={"status": "verified"}).status_code == 403
    assert api.get("organizations", headers=pending).status_code == 403


def test_a_rejected_or_pending_organization_cannot_be_verified_by_itself_through_patch(api):
    created = api.register("assessor")
    tokens = api.login(created["admin_email"])
    r = api.patch(f"organizations/{created['id']}", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                  json={"status": "verified"})
    assert r.status_code == 403


# -- suspended organizations ----------------------------------------------------------------------

def test_a_suspended_organizations_members_read_but_every_write_is_403(api):
    vendor = api.vendor()
    member = api.member(vendor)
    key = api.post(f"organizations/{vendor.org_id}/keys", vendor, json={"public_key": new_public_key()}).get_json()
    api.suspend(vendor)
    for actor in (api._actor(vendor.email), api._actor(member.email)):
        assert api.get("me", actor).status_code == 200
        assert api.get(f"organizations/{vendor.org_id}", actor).status_code == 200
        assert api.get(f"organizations/{vendor.org_id}/members", actor).status_code == 200
        writes = [
            ("PATCH", f"organizations/{vendor.org_id}", {"display_name": "x"}),
            ("POST", f"organizations/{vendor.org_id}/members",
             {"email": "new@suspended.test", "password": PASSWORD, "name": "New"}),
            ("POST", f"organizations/{vendor.org_id}/keys", {"public_key": new_public_key()}),
            ("DELETE", f"organizations/{vendor.org_id}/keys/{key['key_id']}", None),
            ("POST", "organizations", {"name": "x"}),
        ]
        for method, path, body in writes:
            r = api.request(method, path, actor, json=body)
            assert r.status_code == 403, (method, path, r.get_json())
            assert "suspended" in r.get_json()["detail"]
        # Logging out is not a write the suspension blocks.
        assert api.post("auth/logout", actor).status_code == 204
    # The refused writes left nothing behind; reinstated, the organization writes again.
    op = api.operator()
    assert api.post(f"organizations/{vendor.org_id}/reinstate", op, json={"reason": "ok"}).status_code == 200
    admin = api._actor(vendor.email)
    assert api.get(f"organizations/{vendor.org_id}/members", admin).get_json()["total"] == 2
    assert api.patch(f"organizations/{vendor.org_id}", admin, json={"display_name": "back"}).status_code == 200


# -- members ----------------------------------------------------------------------------------

def test_members_are_added_by_org_admins_only(api):
    vendor = api.vendor()
    member = api.member(vendor)
    other = api.enterprise()
    body = {"email": "new.member@vendor.test", "password": PASSWORD, "name": "新成员"}
    assert api.post(f"organizations/{vendor.org_id}/members", member, json=body).status_code == 403
    assert api.post(f"organizations/{vendor.org_id}/members", other, json=body).status_code == 403
    assert api.post(f"organizations/{vendor.org_id}/members", api.operator(), json=body).status_code == 403
    assert api.post(f"organizations/{vendor.org_id}/members", json=body).status_code == 401
    r = api.post(f"organizations/{vendor.org_id}/members", vendor, json=body)
    assert r.status_code == 201
    created = r.get_json()
    assert created["role"] == "member" and created["org_id"] == vendor.org_id
    assert "password" not in created and "password_hash" not in created
    # A member promoted to admin may add members in turn.
    admin2 = api.member(vendor, role="admin")
    body2 = {"email": "third@vendor.test", "password": PASSWORD, "name": "Third", "role": "admin"}
    assert api.post(f"organizations/{vendor.org_id}/members", admin2, json=body2).status_code == 201


def test_member_rules(api):
    vendor = api.vendor()
    body = {"email": "short@vendor.test", "password": "short", "name": "Short"}
    assert api.post(f"organizations/{vendor.org_id}/members", vendor, json=body).status_code == 422
    body = {"email": vendor.email.upper(), "password": PASSWORD, "name": "Dup"}
    assert api.post(f"organizations/{vendor.org_id}/members", vendor, json=body).status_code == 409
    body = {"email": "x@vendor.test", "password": PASSWORD, "name": "X", "role": "owner"}
    assert api.post(f"organizations/{vendor.org_id}/members", vendor, json=body).status_code == 422


def test_members_list_is_private_to_the_organization_and_operators(api):
    vendor = api.vendor()
    assert api.get(f"organizations/{vendor.org_id}/members", api.enterprise()).status_code == 403
    assert api.get(f"organizations/{vendor.org_id}/members").status_code == 401
    assert api.get(f"organizations/{vendor.org_id}/members", api.operator()).get_json()["total"] == 1


# -- organization signing keys ----------------------------------------------------------------

def test_a_valid_ed25519_key_is_accepted_and_public(api):
    vendor = api.vendor()
    public_key = new_public_key()
    r = api.post(f"organizations/{vendor.org_id}/keys", vendor, json={"public_key": public_key, "label": "合同签章"})
    assert r.status_code == 201, r.get_json()
    key = r.get_json()
    assert key["key_id"] and key["public_key"] == public_key and key["algorithm"] == "Ed25519"
    listed = api.get(f"organizations/{vendor.org_id}/keys").get_json()
    assert [k["key_id"] for k in listed["items"]] == [key["key_id"]]


@pytest.mark.parametrize("public_key", [
    "not base64 at all!",
    "AAAA",  # 3 bytes
    base64.b64encode(b"\x01" * 16).decode(),  # too short
    base64.b64encode(b"\x01" * 33).decode(),  # too long
    base64.b64encode(bytes(32)).decode(),  # the all-zero key
    base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # url-safe alphabet is not base64
    "",
])
def test_garbage_keys_are_422(api, public_key):
    vendor = api.vendor()
    r = api.post(f"organizations/{vendor.org_id}/keys", vendor, json={"public_key": public_key})
    assert r.status_code == 422, r.get_json()
    assert "public_key" in r.get_json()["errors"]


def test_a_duplicate_key_is_409_even_across_organizations(api):
    vendor, other = api.vendor(), api.vendor()
    public_key = new_public_key()
    assert api.post(f"organizations/{vendor.org_id}/keys", vendor, json={"public_key": public_key}).status_code == 201
    assert api.post(f"organizations/{vendor.org_id}/keys", vendor, json={"public_key": public_key}).status_code == 409
    assert api.post(f"organizations/{other.org_id}/keys", other, json={"public_key": public_key}).status_code == 409


def test_keys_are_registered_by_org_admins_only(api):
    vendor = api.vendor()
    body = {"public_key": new_public_key()}
    assert api.post(f"organizations/{vendor.org_id}/keys", api.member(vendor), json=body).status_code == 403
    assert api.post(f"organizations/{vendor.org_id}/keys", api.enterprise(), json=body).status_code == 403
    assert api.post(f"organizations/{vendor.org_id}/keys", json=body).status_code == 401


def test_key_revocation(api):
    vendor = api.vendor()
    key = api.post(f"organizations/{vendor.org_id}/keys", vendor, json={"public_key": new_public_key()}).get_json()
    path = f"organizations/{vendor.org_id}/keys/{key['key_id']}"
    assert api.delete(path, api.enterprise()).status_code == 403
    r = api.delete(path, vendor)
    assert r.status_code == 200 and r.get_json()["revoked_at"].endswith("Z")
    assert api.delete(path, vendor).status_code == 409
    assert api.delete(f"organizations/{vendor.org_id}/keys/key_unknown", vendor).status_code == 404


# -- privacy ----------------------------------------------------------------------------------

def test_private_organization_fields_are_never_shown_to_other_organizations(api):
    vendor = api.vendor()
    op = api.operator()
    api.patch(f"organizations/{vendor.org_id}", vendor, json={"contact_email": "secret@vendor.test"})
    api.patch(f"organizations/{vendor.org_id}", op, json={"stripe_account_id": "acct_SECRET1"})
    api.post(f"organizations/{vendor.org_id}/suspend", op, json={"reason": "secret reason"})
    api.post(f"organizations/{vendor.org_id}/reinstate", op, json={"reason": "secret reinstatement"})
    for viewer in (api.enterprise(), api.vendor(), api.assessor(), None):
        r = api.get(f"organizations/{vendor.org_id}", viewer)
        assert r.status_code == 200
        body = r.get_json()
        assert not PRIVATE_FIELDS & body.keys(), body
        assert "secret" not in r.get_data(as_text=True)
    for insider in (api._actor(vendor.email), op):
        body = api.get(f"organizations/{vendor.org_id}", insider).get_json()
        assert body["contact_email"] == "secret@vendor.test"
        assert body["stripe_account_id"] == "acct_SECRET1"
        assert body["status_reason"] == "secret reinstatement"
