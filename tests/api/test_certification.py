"""Certification workflow through the HTTP API: every rule of API.md's Certification section."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from certification.models import Certification
from exchange.db import db, utcnow
from tests.certflow import DOCS, approve_all, create_product, review, submit


@pytest.fixture
def vendor(api):
    return api.vendor()


@pytest.fixture
def operator(api):
    return api.operator()


def test_full_flow_issues_certificate_and_lists_product(api, vendor, operator):
    assessor = api.assessor()
    product = create_product(api, vendor)
    cert = submit(api, vendor, product["id"])
    assert cert["status"] == "submitted"
    assert [s["name"] for s in cert["stages"]] == ["compliance", "quality", "ownership"]
    assert cert["product"]["title"] == product["title"]
    assert api.get(f"products/{product['id']}", vendor).get_json()["status"] == "in_review"

    r = api.post(f"certifications/{cert['id']}/assignments", operator,
                 json={"stage": "quality", "assessor_org_id": assessor.org_id})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["status"] == "in_review"
    # The assigned assessor now sees the certification and the revision under review.
    seen = api.get(f"certifications/{cert['id']}", assessor)
    assert seen.status_code == 200 and seen.get_json()["product"]["title"] == product["title"]

    review(api, assessor, cert["id"], "quality")
    review(api, operator, cert["id"], "ownership")
    done = review(api, operator, cert["id"], "compliance")
    assert done["status"] == "approved"
    number = done["certificate_number"]
    assert number.startswith(f"DFX-{utcnow().year}-") and len(number.split("-")[2]) >= 6
    actions = [h["action"] for h in done["history"]]
    assert actions[0] == "submitted" and "assigned" in actions and actions[-1] == "approved"
    assert all(h["at"].endswith("Z") for h in done["history"])

    listed = api.get(f"products/{product['id']}").get_json()
    assert listed["status"] == "listed" and listed["certificate_number"] == number
    public = api.get(f"certificates/{number}")
    assert public.status_code == 200
    body = public.get_json()
    assert body["status"] == "valid"
    assert body["verification"] == {"signature_valid": True, "digest_matches": True}
    assert body["product_id"] == product["id"] and body["vendor_org_id"] == vendor.org_id


def test_vendor_cannot_review_own_product_and_others_cannot_see(api, vendor, operator):
    product = create_product(api, vendor)
    cert = submit(api, vendor, product["id"])
    r = api.post(f"certifications/{cert['id']}/reviews", vendor, json={"stage": "quality", "decision": "approve"})
    assert r.status_code == 403
    other = api.vendor()
    assert api.get(f"certifications/{cert['id']}", other).status_code == 404
    assert api.post(f"certifications/{cert['id']}/reviews", other,
                    json={"stage": "quality", "decision": "approve"}).status_code == 404
    assert api.get(f"certifications/{cert['id']}").status_code == 404


def test_assessor_reviews_only_its_assigned_stage(api, vendor, operator):
    assessor, stranger = api.assessor(), api.assessor()
    cert = submit(api, vendor, create_product(api, vendor)["id"])
    # Unassigned assessors cannot even see it.
    assert api.post(f"certifications/{cert['id']}/reviews", assessor,
                    json={"stage": "quality", "decision": "approve"}).status_code == 404
    api.post(f"certifications/{cert['id']}/assignments", operator,
             json={"stage": "quality", "assessor_org_id": assessor.org_id})
    for stage in ("ownership", "compliance"):
        r = api.post(f"certifications/{cert['id']}/reviews", assessor, json={"stage": stage, "decision": "approve"})
        assert r.status_code == 403, stage
    assert api.get(f"certifications/{cert['id']}", stranger).status_code == 404
    r = api.post(f"certifications/{cert['id']}/assignments", operator,
                 json={"stage": "compliance", "assessor_org_id": assessor.org_id})
    assert r.status_code == 422 and "stage" in r.get_json()["errors"]
    r = api.post(f"certifications/{cert['id']}/assignments", operator,
                 json={"stage": "quality", "assessor_org_id": vendor.org_id})
    assert r.status_code == 422 and "assessor_org_id" in r.get_json()["errors"]
    r = api.post(f"certifications/{cert['id']}/assignments", assessor,
                 json={"stage": "ownership", "assessor_org_id": assessor.org_id})
    assert r.status_code == 403


def test_core_data_never_passes_compliance(api, vendor, operator):
    cert = submit(api, vendor, create_product(api, vendor, classification="core")["id"])
    r = api.post(f"certifications/{cert['id']}/reviews", operator, json={"stage": "compliance", "decision": "approve"})
    assert r.status_code == 422
    assert r.get_json()["rule"] == "core_never_passes_compliance"
    got = api.get(f"certifications/{cert['id']}", operator).get_json()
    assert next(s for s in got["stages"] if s["name"] == "compliance")["status"] == "pending"
    assert not any(h["action"] == "review" for h in got["history"])


@pytest.mark.parametrize("overrides", [{"classification": "important"}, {"contains_personal_info": True}])
def test_four_eyes_at_compliance(api, vendor, operator, overrides):
    cert = submit(api, vendor, create_product(api, vendor, **overrides)["id"])
    review(api, operator, cert["id"], "quality")
    review(api, operator, cert["id"], "ownership")
    body = review(api, operator, cert["id"], "compliance")
    assert body["status"] == "in_review"
    assert next(s for s in body["stages"] if s["name"] == "compliance") == {
        "name": "compliance", "status": "pending", "assessor_org_id": None, "approvals": 1}
    review(api, operator, cert["id"], "compliance", expect=409)
    colleague = api.member(operator)
    body = review(api, colleague, cert["id"], "compliance")
    assert body["status"] == "approved"


def test_any_reject_ends_it_and_unfreezes_the_product(api, vendor, operator):
    product = create_product(api, vendor)
    cert = submit(api, vendor, product["id"])
    review(api, operator, cert["id"], "quality")
    body = review(api, operator, cert["id"], "ownership", "reject")
    assert body["status"] == "rejected"
    review(api, operator, cert["id"], "compliance", expect=409)
    assert api.get(f"products/{product['id']}", vendor).get_json()["status"] == "draft"
    # A fresh request can be made after the product is revised.
    assert api.patch(f"products/{product['id']}", vendor, json={"summary": "补充权属证明 ownership proof added"}
                     ).status_code == 200
    again = api.post("certifications", vendor, json={"product_id": product["id"], "documents": DOCS})
    assert again.status_code == 201, again.get_json()


def test_a_decided_stage_cannot_be_reviewed_again(api, vendor, operator):
    cert = submit(api, vendor, create_product(api, vendor)["id"])
    review(api, operator, cert["id"], "quality")
    r = api.post(f"certifications/{cert['id']}/reviews", api.member(operator),
                 json={"stage": "quality", "decision": "reject"})
    assert r.status_code == 409


def test_frozen_while_in_review_and_duplicate_request_conflicts(api, vendor, operator):
    product = create_product(api, vendor)
    submit(api, vendor, product["id"])
    assert api.patch(f"products/{product['id']}", vendor, json={"summary": "changed"}).status_code == 409
    r = api.post("certifications", vendor, json={"product_id": product["id"], "documents": []})
    assert r.status_code == 409


def test_only_owner_requests_certification(api, vendor):
    product = create_product(api, vendor)
    other = api.vendor()
    assert api.post("certifications", other, json={"product_id": product["id"]}).status_code == 404
    assert api.post("certifications", None, json={"product_id": product["id"]}).status_code == 401
    r = api.post("certifications", vendor, json={"product_id": product["id"], "status": "approved"})
    assert r.status_code == 422 and "status" in r.get_json()["errors"]
    r = api.post("certifications", vendor, json={"product_id": product["id"],
                                                 "documents": [{"name": "x", "sha256": "nothex"}]})
    assert r.status_code == 422


def test_request_changes_then_resubmit_keeps_unchanged_stages(api, vendor, operator):
    product = create_product(api, vendor)
    cert = submit(api, vendor, product["id"])
    review(api, operator, cert["id"], "ownership")
    review(api, operator, cert["id"], "compliance")
    body = review(api, operator, cert["id"], "quality", "request_changes")
    assert body["status"] == "changes_requested"
    assert api.get(f"products/{product['id']}", vendor).get_json()["status"] == "draft"
    # The vendor improves the sample (quality's subject), not the data source or licence (ownership's).
    r = api.patch(f"products/{product['id']}", vendor,
                  json={"sample": {"columns": ["road", "flow"], "rows": [["环市路", 1200]]}})
    assert r.status_code == 200, r.get_json()
    r = api.post(f"certifications/{cert['id']}/resubmit", vendor, json={})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "in_review" and body["round"] == 2
    stages = {s["name"]: s["status"] for s in body["stages"]}
    assert stages == {"compliance": "approved", "ownership": "approved", "quality": "pending"}
    assert body["product"]["sample"]["rows"] == [["环市路", 1200]]
    done = review(api, operator, cert["id"], "quality")
    assert done["status"] == "approved"


def test_resubmit_reopens_stages_whose_subject_changed(api, vendor, operator):
    product = create_product(api, vendor)
    cert = submit(api, vendor, product["id"])
    review(api, operator, cert["id"], "ownership")
    review(api, operator, cert["id"], "compliance")
    review(api, operator, cert["id"], "quality", "request_changes")
    api.patch(f"products/{product['id']}", vendor,
              json={"data_source": {"type": "licensed", "description": "licensed from the city"}})
    body = api.post(f"certifications/{cert['id']}/resubmit", vendor, json={}).get_json()
    stages = {s["name"]: s["status"] for s in body["stages"]}
    assert stages == {"compliance": "pending", "ownership": "pending", "quality": "pending"}


def test_resubmit_and_withdraw_rules(api, vendor, operator):
    product = create_product(api, vendor)
    cert = submit(api, vendor, product["id"])
    assert api.post(f"certifications/{cert['id']}/resubmit", vendor, json={}).status_code == 409
    assert api.post(f"certifications/{cert['id']}/withdraw", operator).status_code == 403
    r = api.post(f"certifications/{cert['id']}/withdraw", vendor)
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn"
    assert api.get(f"products/{product['id']}", vendor).get_json()["status"] == "draft"
    assert api.post(f"certifications/{cert['id']}/withdraw", vendor).status_code == 409


def test_list_scopes(api, vendor, operator):
    mine = submit(api, vendor, create_product(api, vendor)["id"])
    other_vendor = api.vendor()
    theirs = submit(api, other_vendor, create_product(api, other_vendor)["id"])
    ids = lambda actor, q="": {c["id"] for c in api.get(f"certifications{q}", actor).get_json()["items"]}  # noqa: E731
    assert ids(vendor) == {mine["id"]}
    assert {mine["id"], theirs["id"]} <= ids(operator)
    assert ids(operator, "?status=submitted") >= {mine["id"], theirs["id"]}
    assert api.get("certifications").status_code == 401  # no token: 401 (API.md), not 403
    assert api.get("certifications?status=public_notice").status_code == 200
    assert api.get("certifications?status=bogus", operator).status_code == 422


@pytest.fixture
def notice_app(app):
    app.config["NOTICE_DAYS"] = 5
    return app


def _end_notice(app, cert_id):
    with app.app_context():
        db.session.execute(update(Certification).where(Certification.id == cert_id)
                           .values(notice_ends_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def test_public_notice_objection_upheld_sends_back(notice_app, api, vendor, operator):
    product = create_product(api, vendor)
    cert = submit(api, vendor, product["id"])
    body = approve_all(api, cert["id"])
    assert body["status"] == "public_notice" and body["notice_ends_at"].endswith("Z")
    assert body["certificate_number"] is None
    # Anyone can see what is under notice.
    assert api.get(f"certifications/{cert['id']}").status_code == 200
    listed = api.get("certifications?status=public_notice").get_json()["items"]
    assert cert["id"] in {c["id"] for c in listed}
    rival = api.vendor()
    assert api.post(f"certifications/{cert['id']}/objections", vendor, json={"reason": "mine"}).status_code == 403
    pending_org = api.vendor(verified=False)
    assert api.post(f"certifications/{cert['id']}/objections", pending_org,
                    json={"reason": "x"}).status_code == 403
    r = api.post(f"certifications/{cert['id']}/objections", rival,
                 json={"reason": "数据来源存疑 the source is ours", "evidence": "contract #12"})
    assert r.status_code == 201, r.get_json()
    objection = r.get_json()
    assert objection["status"] == "open"
    assert api.post(f"objections/{objection['id']}/resolution", rival, json={"upheld": True}).status_code == 403
    r = api.post(f"objections/{objection['id']}/resolution", operator, json={"upheld": True, "comment": "valid"})
    assert r.status_code == 200 and r.get_json()["status"] == "upheld"
    got = api.get(f"certifications/{cert['id']}", vendor).get_json()
    assert got["status"] == "changes_requested"
    assert api.get(f"products/{product['id']}", vendor).get_json()["status"] == "draft"
    assert api.post(f"objections/{objection['id']}/resolution", operator, json={"upheld": False}).status_code == 409


def test_notice_ends_clean_approves_on_read_and_by_sweep(notice_app, api, vendor, operator):
    first = submit(api, vendor, create_product(api, vendor)["id"])
    second = submit(api, vendor, create_product(api, vendor)["id"])
    for cert in (first, second):
        assert approve_all(api, cert["id"])["status"] == "public_notice"
    rival = api.enterprise()
    objection = api.post(f"certifications/{first['id']}/objections", rival, json={"reason": "doubt"}).get_json()
    _end_notice(notice_app, first["id"])
    _end_notice(notice_app, second["id"])
    # An open objection holds the approval even after the deadline.
    assert api.get(f"certifications/{first['id']}", vendor).get_json()["status"] == "public_notice"
    assert api.post(f"certifications/{first['id']}/objections", rival, json={"reason": "late"}).status_code == 409
    dismissed = api.post(f"objections/{objection['id']}/resolution", operator, json={"upheld": False})
    assert dismissed.status_code == 200
    assert api.get(f"certifications/{first['id']}", vendor).get_json()["status"] == "approved"
    # The sweep concludes the other one without anybody reading it.
    result = notice_app.test_cli_runner().invoke(args=["sweep"])
    assert result.exit_code == 0, result.output
    got = api.get(f"certifications/{second['id']}", vendor).get_json()
    assert got["status"] == "approved" and got["certificate_number"]


def _listed_with_cert(api, vendor):
    product = create_product(api, vendor)
    cert = submit(api, vendor, product["id"])
    number = approve_all(api, cert["id"])["certificate_number"]
    return product, number


def test_certificate_suspend_reinstate_revoke(api, vendor, operator):
    product, number = _listed_with_cert(api, vendor)
    assert api.post(f"certificates/{number}/suspend", vendor, json={"reason": "x"}).status_code == 403
    r = api.post(f"certificates/{number}/suspend", operator, json={"reason": "投诉核查 complaint under review"})
    assert r.status_code == 200 and r.get_json()["status"] == "suspended"
    assert api.get(f"products/{product['id']}").status_code == 404
    assert product["id"] not in {p["id"] for p in api.get("products").get_json()["items"]}
    r = api.post(f"certificates/{number}/reinstate", operator, json={"reason": "cleared"})
    assert r.status_code == 200 and r.get_json()["status"] == "valid"
    assert api.get(f"products/{product['id']}").get_json()["status"] == "listed"
    r = api.post(f"certificates/{number}/revoke", operator, json={"reason": "licence withdrawn"})
    assert r.status_code == 200 and r.get_json()["status"] == "revoked"
    assert api.get(f"products/{product['id']}").status_code == 404
    assert api.post(f"certificates/{number}/reinstate", operator, json={"reason": "no"}).status_code == 409
    assert api.post(f"certificates/{number}/suspend", operator, json={"reason": "no"}).status_code == 409
    assert api.post(f"certificates/{number}/revoke", operator, json={}).status_code == 422
    audit = api.get(f"audit?object_id={number}", operator).get_json()["items"]
    assert {"certificate.suspended", "certificate.reinstated", "certificate.revoked", "certificate.issued"} <= {
        a["action"] for a in audit}


def test_unknown_certificate_is_404(api):
    assert api.get("certificates/DFX-2026-999999").status_code == 404
    assert api.get("certificates/" + "x" * 300).status_code == 404


def test_expiry_computed_on_read_and_persisted_by_sweep(app, api, vendor, operator):
    from certification.models import Certificate

    product, number = _listed_with_cert(api, vendor)
    with app.app_context():
        db.session.execute(update(Certificate).where(Certificate.number == number)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert api.get(f"certificates/{number}").get_json()["status"] == "expired"
    assert app.test_cli_runner().invoke(args=["sweep"]).exit_code == 0
    with app.app_context():
        assert db.session.get(Certificate, number).status == "expired"
    assert api.get(f"products/{product['id']}").status_code == 404
    assert api.post(f"certificates/{number}/reinstate", operator, json={"reason": "x"}).status_code == 409


def test_new_revision_supersedes_old_certificate(api, vendor, operator):
    product, number = _listed_with_cert(api, vendor)
    r = api.patch(f"products/{product['id']}", vendor, json={"summary": "2027 更新 refreshed coverage"})
    assert r.status_code == 200 and r.get_json()["version"] == 2
    cert = submit(api, vendor, product["id"])
    assert cert["product_version"] == 2
    # While version 2 is reviewed, version 1 stays listed and tradable.
    assert api.get(f"products/{product['id']}").get_json()["version"] == 1
    new_number = approve_all(api, cert["id"])["certificate_number"]
    assert new_number != number
    assert api.get(f"certificates/{number}").get_json()["status"] == "superseded"
    now_listed = api.get(f"products/{product['id']}").get_json()
    assert now_listed["version"] == 2 and now_listed["certificate_number"] == new_number
    # Both certificates keep verifying against their own revision.
    for n in (number, new_number):
        assert api.get(f"certificates/{n}").get_json()["verification"] == {
            "signature_valid": True, "digest_matches": True}


def test_whitelist_crud(api, operator, vendor):
    future = (utcnow() + timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    entry = {"category": "finance", "from_region": "HK", "to_region": "GD", "max_classification": "important",
             "personal_info_allowed": False, "expires_at": future}
    assert api.post("whitelist", vendor, json=entry).status_code == 403
    assert api.post("whitelist", operator, json={**entry, "max_classification": "core"}).status_code == 422
    assert api.post("whitelist", operator, json={**entry, "expires_at": "2026-01-01T00:00:00"}).status_code == 422
    assert api.post("whitelist", operator, json={**entry, "to_region": "HK"}).status_code == 422
    r = api.post("whitelist", operator, json=entry)
    assert r.status_code == 201, r.get_json()
    entry_id = r.get_json()["id"]
    # The audit trail records what the operator set, the expiry as ISO 8601; fields left empty are absent.
    trail = api.get(f"audit?object_id={entry_id}", operator).get_json()["items"]
    assert [(e["action"], e["detail"]) for e in trail] == [("whitelist.created", {
        **entry, "expires_at": future.replace("Z", "+00:00")})]
    assert entry_id in {e["id"] for e in api.get("whitelist", vendor).get_json()["items"]}
    assert api.delete(f"whitelist/{entry_id}", vendor).status_code == 403
    assert api.delete(f"whitelist/{entry_id}", operator).status_code == 200
    assert entry_id not in {e["id"] for e in api.get("whitelist", vendor).get_json()["items"]}
    assert api.delete(f"whitelist/{entry_id}", operator).status_code == 404


def test_a_suspended_certificate_that_expires_stays_out_of_the_catalog(app, api, vendor, operator):
    from certification.models import Certificate

    product, number = _listed_with_cert(api, vendor)
    assert api.post(f"certificates/{number}/suspend", operator, json={"reason": "check"}).status_code == 200
    with app.app_context():
        db.session.execute(update(Certificate).where(Certificate.number == number)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    # Expiry is persisted on the way (the product was already out of the catalog): 409, not a crash.
    r = api.post(f"certificates/{number}/reinstate", operator, json={"reason": "x"})
    assert r.status_code == 409 and r.get_json()["detail"].startswith("Certificate cannot go from 'expired'")
    assert api.get(f"certificates/{number}").get_json()["status"] == "expired"
    assert api.get(f"products/{product['id']}").status_code == 404
    assert app.test_cli_runner().invoke(args=["sweep"]).exit_code == 0
