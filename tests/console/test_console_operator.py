"""Operator pages of the console (CONSOLE.md, Signed in: operator): the queue's actions call the API's
services (verify/reject, confirm a payment, resolve a dispute), the certification page's reviews keep
four-eyes, assessors see what is assigned to them, everyone else gets 404, and the ledger verifies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy import text as sql

from certification.models import Certification, CertificationStage
from console import i18n
from exchange.db import db
from exchange.identity.models import AuditEvent, Organization
from exchange.ledger.models import JournalEntry
from tests.certflow import create_product, review, submit
from tests.console.helpers import Console, text
from tests.ledger_helpers import triggers_off
from tests.tradeflow import contract_for, sign
from trading.models import Trade

QUEUE = "/console/queue"


def signed_in(app: Any, actor: Any, lang: str = "en") -> Console:
    c = Console(app, lang=lang)
    c.login(actor.email)
    return c


def db_get(app: Any, model: Any, key: Any) -> Any:
    with app.app_context():
        row = db.session.get(model, key)
        db.session.expunge_all()
        return row


def signed_trade(api: Any, vendor: Any, buyer: Any) -> str:
    contract = contract_for(api, vendor, buyer)
    sign(api, buyer, contract["id"])
    return sign(api, vendor, contract["id"])["trade_id"]


def manual_payment(api: Any, buyer: Any, trade_id: str) -> dict[str, Any]:
    r = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


# -- organizations --------------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "status", "flash"), [
    ("verify", "verified", "is verified."),
    ("reject", "rejected", "is rejected."),
])
def test_the_operator_verifies_or_rejects_a_pending_organization_with_a_reason(app, api, action, status, flash):
    pending = api.register("vendor")
    c = signed_in(app, api.operator())
    page = c.get(QUEUE)
    assert page.status_code == 200 and "Organizations to verify" in text(page) and pending["name"] in text(page)
    r = c.post(f"/console/organizations/{pending['id']}/status",
               {"action": action, "reason": "营业执照已核验 licence checked"}, page=QUEUE)
    assert r.status_code == 303
    after = c.get(QUEUE)
    assert flash in text(after) and pending["name"] not in text(after).replace(f"{pending['name']} {flash}", "")
    org = db_get(app, Organization, pending["id"])
    assert org.status == status and org.status_reason == "营业执照已核验 licence checked"
    with app.app_context():
        audit = db.session.execute(select(AuditEvent).where(
            AuditEvent.object_id == pending["id"], AuditEvent.action == f"organization.{status}")).scalars().all()
    assert len(audit) == 1 and audit[0].detail["reason"] == "营业执照已核验 licence checked"


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_empty_reason_is_refused_as_the_api_refuses_it_and_nothing_changes(app, api, reason):
    pending = api.register("vendor")
    operator = api.operator()
    assert api.post(f"organizations/{pending['id']}/verify", operator, json={"reason": reason}).status_code == 422
    c = signed_in(app, operator)
    r = c.post(f"/console/organizations/{pending['id']}/status", {"action": "verify", "reason": reason}, page=QUEUE)
    assert r.status_code == 422
    assert "Check these fields: reason." in text(r) and 'aria-invalid="true"' in r.get_data(as_text=True)
    assert db_get(app, Organization, pending["id"]).status == "pending"


def test_verifying_an_organization_twice_shows_the_services_sentence(app, api):
    pending = api.register("vendor")
    c = signed_in(app, api.operator())
    assert c.post(f"/console/organizations/{pending['id']}/status", {"action": "verify", "reason": "ok"},
                  page=QUEUE).status_code == 303
    again = c.post(f"/console/organizations/{pending['id']}/status", {"action": "reject", "reason": "late"},
                   page=QUEUE)
    assert again.status_code == 409 and "Organization" in text(again)
    assert db_get(app, Organization, pending["id"]).status == "verified"


# -- payments and disputes ------------------------------------------------------------------------

def test_confirm_payment_escrows_the_trade(app, api):
    vendor, buyer, operator = api.vendor(), api.enterprise(), api.operator()
    trade_id = signed_trade(api, vendor, buyer)
    payment = manual_payment(api, buyer, trade_id)
    c = signed_in(app, operator)
    page = text(c.get(QUEUE))
    assert "Payments to confirm" in page and "CNY 12,500.00" in page and trade_id in page
    r = c.post(f"/console/payments/{payment['id']}/confirm", page=QUEUE)
    assert r.status_code == 303
    assert "Payment confirmed" in text(c.get(QUEUE))
    assert api.get(f"trades/{trade_id}", buyer).get_json()["status"] == "escrowed"
    again = c.post(f"/console/payments/{payment['id']}/confirm", page=QUEUE)
    assert again.status_code == 409 and "No bank transfer is waiting for confirmation." in text(again)


@pytest.mark.parametrize(("typed", "refund", "status"), [
    ("3,750.00", 375_000, "settled"),
    ("CNY 12500", 1_250_000, "refunded"),
    ("0", 0, "settled"),
])
def test_resolve_a_dispute_with_a_refund_amount_in_major_units(app, api, typed, refund, status):
    vendor, buyer, operator = api.vendor(), api.enterprise(), api.operator()
    trade_id = signed_trade(api, vendor, buyer)
    payment = manual_payment(api, buyer, trade_id)
    assert api.post(f"payments/{payment['id']}/confirm", operator).status_code == 200
    assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "数据不完整 incomplete"}).status_code == 201
    c = signed_in(app, operator)
    page = text(c.get(QUEUE))
    assert "数据不完整 incomplete" in page and "Refund amount" in page
    r = c.post(f"/console/trades/{trade_id}/resolution", {"refund_amount": typed}, page=QUEUE)
    assert r.status_code == 303, text(r)
    trade = api.get(f"trades/{trade_id}", buyer).get_json()
    assert trade["status"] == status and trade["refunded_amount"] == refund
    assert "No dispute is open." in text(c.get(QUEUE))


@pytest.mark.parametrize(("typed", "sentence"), [
    ("12.345", "at most 2 decimals"),
    ("-5", "at most 2 decimals"),
    ("ten", "at most 2 decimals"),
    ("12,500.01", "refund_amount"),  # more than was paid: the service's refusal
])
def test_a_refused_refund_changes_nothing_and_keeps_what_was_typed(app, api, typed, sentence):
    vendor, buyer, operator = api.vendor(), api.enterprise(), api.operator()
    trade_id = signed_trade(api, vendor, buyer)
    payment = manual_payment(api, buyer, trade_id)
    assert api.post(f"payments/{payment['id']}/confirm", operator).status_code == 200
    assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "late"}).status_code == 201
    c = signed_in(app, operator)
    r = c.post(f"/console/trades/{trade_id}/resolution", {"refund_amount": typed}, page=QUEUE)
    assert r.status_code == 422 and sentence in text(r)
    assert f'value="{typed}"' in r.get_data(as_text=True)
    trade = db_get(app, Trade, trade_id)
    assert trade.status == "disputed" and trade.refunded_amount == 0


# -- certification review ---------------------------------------------------------------------------

def important_in_review(api: Any) -> tuple[Any, str]:
    """A certification of `important` data (four-eyes at compliance) with quality and ownership approved."""
    vendor = api.vendor()
    product = create_product(api, vendor, classification="important")
    cert_id = submit(api, vendor, product["id"])["id"]
    for stage in ("quality", "ownership"):
        review(api, api.operator(), cert_id, stage)
    return vendor, cert_id


def compliance(app: Any, cert_id: str) -> CertificationStage:
    with app.app_context():
        stage = db.session.execute(select(CertificationStage).where(
            CertificationStage.certification_id == cert_id, CertificationStage.name == "compliance")).scalar_one()
        db.session.expunge_all()
        return stage


def test_four_eyes_two_different_operators_approve_compliance(app, api):
    _vendor, cert_id = important_in_review(api)
    page_path = f"/console/certifications/{cert_id}"
    op1 = signed_in(app, api.operator())
    page = op1.get(page_path)
    assert page.status_code == 200 and "0 of 2 compliance approvals" in text(page)
    assert "Version under review" in text(page) and "Guangzhou real-time traffic flow" in text(page)
    body = {"stage": "compliance", "decision": "approve", "comment": "分类分级合规 classification checked"}
    assert op1.post(f"{page_path}/reviews", body, page=page_path).status_code == 303
    after = text(op1.get(page_path))
    assert "Review recorded." in after and "1 of 2 compliance approvals" in after
    again = op1.post(f"{page_path}/reviews", {**body, "comment": "once more"}, page=page_path)
    assert again.status_code == 409
    assert "You already approved this stage; a second approval must come from another user." in text(again)
    assert "once more" in again.get_data(as_text=True)  # the form keeps what was typed
    assert "1 of 2 compliance approvals" in text(again)
    stage = compliance(app, cert_id)
    assert stage.status == "pending" and len(stage.approvals) == 1
    op2 = signed_in(app, api.operator(fresh=True))
    assert op2.post(f"{page_path}/reviews", body, page=page_path).status_code == 303
    done = text(op2.get(page_path))
    assert "2 of 2 compliance approvals" in done
    assert compliance(app, cert_id).status == "approved"
    assert db_get(app, Certification, cert_id).status == "approved"


def test_the_assigned_assessor_sees_the_certification_and_reviews_quality(app, api):
    vendor = api.vendor()
    product = create_product(api, vendor)
    cert_id = submit(api, vendor, product["id"])["id"]
    assessor = api.assessor()
    page_path = f"/console/certifications/{cert_id}"
    stranger = signed_in(app, assessor)
    assert stranger.get(page_path).status_code == 404
    assert "No certification is waiting for review." in text(stranger.get(QUEUE))
    op = signed_in(app, api.operator())
    page = text(op.get(page_path))
    assert "Assign a stage to an assessor" in page and "Assessor" in page
    r = op.post(f"{page_path}/assignments", {"assign_stage": "quality", "assessor_org_id": assessor.org_id},
                page=page_path)
    assert r.status_code == 303 and "Stage assigned." in text(op.get(page_path))
    queue = stranger.get(QUEUE)
    assert queue.status_code == 200 and product["title"] in text(queue)
    assert f'href="{page_path}"' in queue.get_data(as_text=True)
    page = stranger.get(page_path)
    assert page.status_code == 200 and "Submit review" in text(page)
    assert "Assign a stage" not in text(page)  # operators only
    r = stranger.post(f"{page_path}/reviews", {"stage": "quality", "decision": "approve", "comment": "样本完整"},
                      page=page_path)
    assert r.status_code == 303
    with app.app_context():
        status = db.session.execute(select(CertificationStage.status).where(
            CertificationStage.certification_id == cert_id, CertificationStage.name == "quality")).scalar_one()
    assert status == "approved"
    # Compliance is operators' work: the service refuses it with its sentence, and nothing changes.
    r = stranger.post(f"{page_path}/reviews", {"stage": "compliance", "decision": "approve"}, page=page_path)
    assert r.status_code == 403 and "not assigned to review the compliance stage" in text(r)
    assert compliance(app, cert_id).approvals == []


def test_assigning_a_non_assessor_is_refused_with_the_services_sentence(app, api):
    vendor = api.vendor()
    cert_id = submit(api, vendor, create_product(api, vendor)["id"])["id"]
    op = signed_in(app, api.operator())
    page_path = f"/console/certifications/{cert_id}"
    r = op.post(f"{page_path}/assignments", {"assign_stage": "quality", "assessor_org_id": vendor.org_id},
                page=page_path)
    assert r.status_code == 422 and "must be a verified assessor organization" in text(r)
    assert db_get(app, Certification, cert_id).status == "submitted"


# -- who sees what --------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["vendor", "enterprise", "assessor", "owner"])
@pytest.mark.parametrize("path", ["/console/queue", "/console/ledger", "/console/certifications/{cert}"])
def test_everyone_but_operators_gets_404_on_operator_pages(app, api, role, path):
    owner = api.vendor()
    cert_id = submit(api, owner, create_product(api, owner)["id"])["id"]
    actor = owner if role == "owner" else getattr(api, role)()
    if role == "assessor" and path == "/console/queue":
        pytest.skip("assessors have a queue: the certifications assigned to them (tested above)")
    c = signed_in(app, actor)
    r = c.get(path.format(cert=cert_id))
    assert r.status_code == 404 and "This page does not exist or is not visible to you." in text(r)
    posts = {"/console/ledger": "/console/ledger", "/console/queue": "/console/payments/pay_x/confirm",
             "/console/certifications/{cert}": f"/console/certifications/{cert_id}/reviews"}
    r = c.post(posts[path], {"stage": "quality", "decision": "approve"}, page="/home")
    assert r.status_code == 404
    assert db_get(app, Certification, cert_id).status == "submitted"


def test_signed_out_the_operator_pages_ask_to_sign_in(client):
    r = client.get("/console/queue", headers={"Accept": "text/html"})
    assert r.status_code == 303 and "/login" in r.headers["Location"]


# -- the ledger -----------------------------------------------------------------------------------

def test_verify_ledger_counts_the_entries_and_names_the_first_bad_one(app, api):
    vendor, buyer, operator = api.vendor(), api.enterprise(), api.operator()
    for _ in range(2):
        trade_id = signed_trade(api, vendor, buyer)
        payment = manual_payment(api, buyer, trade_id)
        assert api.post(f"payments/{payment['id']}/confirm", operator).status_code == 200
    with app.app_context():
        n = db.session.execute(select(func.count()).select_from(JournalEntry)).scalar_one()
    assert n >= 2
    c = signed_in(app, operator)
    page = c.get("/console/ledger")
    assert page.status_code == 200 and "Verify ledger" in text(page) and "Latest entries" in text(page)
    r = c.post("/console/ledger", page="/console/ledger")
    assert r.status_code == 200 and f"Ledger valid: {n} entries" in text(r)
    with app.app_context():
        with triggers_off(db.session, "ledger_entries"):
            db.session.execute(sql("UPDATE ledger_entries SET hash = :h WHERE seq = 2"), {"h": "f" * 64})
        db.session.commit()
    r = c.post("/console/ledger", page="/console/ledger")
    assert r.status_code == 200
    assert "Ledger invalid: the first bad entry is seq 2." in text(r)
    assert "hash does not match the entry's content" in text(r)


# -- both languages -------------------------------------------------------------------------------

TEMPLATES = Path(__file__).resolve().parents[2] / "console" / "templates" / "console" / "operator"


def test_every_text_of_the_operator_pages_has_a_chinese_translation(app):
    literal = re.compile(r"""_\(\s*(["'])(.+?)\1""")
    texts = {m.group(2) for f in TEMPLATES.glob("*.html") for m in literal.finditer(f.read_text())}
    assert len(texts) > 40
    assert sorted(t for t in texts if t not in i18n.ZH) == []


def test_the_queue_in_chinese(app, api):
    api.register("vendor")
    c = signed_in(app, api.operator(), lang="zh-CN")
    page = text(c.get(QUEUE))
    for words in ("运营待办队列", "待审核机构", "待审查的认证", "没有等待审查的认证。", "待确认付款",
                  "没有未解决的争议。", "尚无出款记录。"):
        assert words in page


def test_a_form_without_its_csrf_token_is_400_and_changes_nothing(app, api):
    pending = api.register("vendor")
    c = signed_in(app, api.operator())
    r = c.post(f"/console/organizations/{pending['id']}/status", {"action": "verify", "reason": "ok"}, csrf=False)
    assert r.status_code == 400
    assert db_get(app, Organization, pending["id"]).status == "pending"


# -- the demo data fills every section --------------------------------------------------------------

def test_the_demo_fills_the_queue_and_its_two_operators_pass_four_eyes(app):
    from exchange.identity.demo import DEMO_PASSWORD, OPERATOR_EMAIL, SECOND_OPERATOR_EMAIL

    seeded = app.test_cli_runner().invoke(args=["seed-demo"])
    assert seeded.exit_code == 0, seeded.output
    op1, op2 = Console(app), Console(app)
    op1.login(OPERATOR_EMAIL, DEMO_PASSWORD)
    op2.login(SECOND_OPERATOR_EMAIL, DEMO_PASSWORD)
    page = op1.get(QUEUE)
    html, shown = page.get_data(as_text=True), text(page)
    for empty in ("No organization is waiting for verification.", "No certification is waiting for review.",
                  "No bank transfer is waiting for confirmation.", "No dispute is open.",
                  "No payout has been made yet."):
        assert empty not in shown
    assert "南沙数据创新有限公司" in shown and "Confirm payment" in shown and "Resolve" in shown
    with app.app_context():
        cert_id = db.session.execute(select(Certification.id).where(Certification.status == "in_review")).scalar_one()
    path = f"/console/certifications/{cert_id}"
    assert f'href="{path}"' in html
    assessor = Console(app)
    assessor.login("assessor@gd-assess.demo", DEMO_PASSWORD)
    assert f'href="{path}"' in assessor.get(QUEUE).get_data(as_text=True)
    body = {"stage": "compliance", "decision": "approve", "comment": "ok"}
    assert "0 of 2 compliance approvals" in text(op1.get(path))
    assert op1.post(f"{path}/reviews", body, page=path).status_code == 303
    assert op2.post(f"{path}/reviews", body, page=path).status_code == 303
    assert "2 of 2 compliance approvals" in text(op2.get(path))
