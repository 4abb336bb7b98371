"""Operator pages (CONSOLE.md, Signed in: operator): the work queue, a certification's review page and
the ledger's verification. Assessors see the queue and the certifications assigned to them; anyone
else gets the 404 page (as the API hides what a caller may not see).

Every action calls the service the API's route calls (identity.change_status, payments.confirm_payment,
settlement.resolve, certification review/assign, the ledger's verify): no rule lives here.
"""

from __future__ import annotations

from typing import Any

from flask import request

from certification import services as certs
from certification.models import Certification
from certification.schemas import AssignmentSchema, CertificationSchema, ReviewSchema
from certification.states import ASSIGNABLE_STAGES, REVIEWABLE_STATUSES, Decision, StageStatus
from console import i18n, web
from console.web import bp
from exchange.db import db, write_intent
from exchange.errors import DomainError, NotFound, ValidationFailed
from exchange.identity import services as identity
from exchange.identity.schemas import StatusChangeSchema
from exchange.identity.states import OrgStatus
from exchange.ledger import services as ledger
from exchange.ledger.models import JournalEntry
from exchange.ledger.schemas import EntrySchema
from exchange.money import MINOR_DIGITS, Currency, parse_major
from exchange.principal import Principal
from listings import services as listings
from trading import payments, queues, settlement, trades
from trading.models import Payment, Trade
from trading.schemas import TradeResolutionSchema

QUEUE = "console/operator/queue.html"
CERT = "console/operator/certification.html"
LEDGER = "console/operator/ledger.html"
LIST_LIMIT = 50
LATEST_ENTRIES = 20

i18n.add({
    "Operator queue": "运营待办队列",
    "Organizations to verify": "待审核机构",
    "No organization is waiting for verification.": "没有等待审核的机构。",
    "Certifications to review": "待审查的认证",
    "No certification is waiting for review.": "没有等待审查的认证。",
    "Payments to confirm": "待确认付款",
    "No bank transfer is waiting for confirmation.": "没有等待确认的银行转账。",
    "No dispute is open.": "没有未解决的争议。",
    "No payout has been made yet.": "尚无出款记录。",
    "Pending stages": "待审环节",
    "Your stages": "您的环节",
    "Confirm payment": "确认收款",
    "Refund amount": "退款金额",
    "In {currency}, for example 1,250.00 (0 refunds nothing).": "以 {currency} 计，例如 1,250.00（0 表示不退款）。",
    "{name} is verified.": "{name} 已审核通过。",
    "{name} is rejected.": "{name} 已被驳回。",
    "Payment confirmed: the trade is in escrow.": "已确认收款：交易款项已托管。",
    "Dispute resolved.": "争议已裁决。",
    "Review recorded.": "审查意见已记录。",
    "Stage assigned.": "环节已指派。",
    "Choose Verify or Reject.": "请选择“审核通过”或“驳回”。",
    "Enter an amount such as 1,250.00 (at most {digits} decimals).":
        "请输入金额，例如 1,250.00（最多 {digits} 位小数）。",
    "Certification {id}": "认证 {id}",
    "Version under review": "审查中的版本",
    "{n} of {needed} compliance approvals": "合规环节已获 {n}/{needed} 个批准",
    "Four-eyes: two different operator users must approve compliance.":
        "双人复核：合规环节须由两名不同的运营人员批准。",
    "One operator approval completes compliance.": "合规环节需一名运营人员批准。",
    "Review a stage": "审查环节",
    "Submit review": "提交审查",
    "No stage of this certification is waiting for your review.": "该认证没有等待您审查的环节。",
    "Assign a stage to an assessor": "指派评估机构",
    "Step to assign": "指派的环节",
    "No verified assessor organization.": "没有已审核的评估机构。",
    "No stage can be assigned now.": "目前没有可指派的环节。",
    "Round {n}": "第 {n} 轮",
    "Ledger verification": "账本校验",
    "Verify ledger": "校验账本",
    "Recomputes the hash chain, every entry's balance and every cached account balance; changes nothing.":
        "重新计算哈希链、每笔分录的借贷平衡及每个账户的缓存余额；不作任何更改。",
    "Ledger valid: {n} entries": "账本有效：共 {n} 笔分录",
    "Ledger invalid: the first bad entry is seq {seq}.": "账本无效：第一笔异常分录为序号 {seq}。",
    "Ledger invalid: cached account balances disagree with their postings.": "账本无效：账户缓存余额与分录合计不符。",
    "{n} problem(s):": "共 {n} 个问题：",
    "Latest entries": "最新分录",
    "No ledger entry yet.": "尚无账本分录。",
    "Earlier entries": "更早的分录",
    "Newest entries": "最新的分录",
})


# The product fields the review page shows, in order, with their labels.
PRODUCT_FIELDS = (
    ("title", "Title"), ("summary", "Summary"), ("description", "Description"), ("category", "Category"),
    ("keywords", "Keywords"), ("classification", "Classification"),
    ("contains_personal_info", "Contains personal information"), ("personal_info", "Personal information"),
    ("origin_region", "Origin region"), ("data_format", "Data format"), ("delivery_mode", "Delivery mode"),
    ("update_frequency", "Update frequency"), ("price", "Price"), ("license", "Licence"),
    ("scenarios", "Scenarios"), ("data_source", "Data source"), ("coverage", "Coverage"), ("volume", "Size"),
)


# -- who may see these pages ------------------------------------------------------------------------
def _staff() -> Principal:
    """Operators and assessors; anyone else (signed in) gets the 404 page."""
    p = web.require_principal()
    if not (p.is_operator or p.org_type == "assessor"):
        raise NotFound("No such page.")
    return p


def _operator() -> Principal:
    p = web.require_principal()
    if not p.is_operator:
        raise NotFound("No such page.")
    return p


def _refuse(error: DomainError, template: str, context: Any, **extra: Any) -> Any:
    """The service's refusal on the same page: nothing of the attempt is kept (rolled back first, so
    the page shows the database as it is), the form keeps what was typed."""
    if error.status == 404:
        raise error
    db.session.rollback()
    return web.refused(error, template, **context(), **extra)


def minor_units(text: str, currency: str, field: str) -> int:
    """The typed amount in exact minor units (exchange.money.parse_major); ValidationFailed naming `field`."""
    try:
        return parse_major(text, currency)
    except ValueError:
        message = i18n.t("Enter an amount such as 1,250.00 (at most {digits} decimals).",
                         digits=MINOR_DIGITS[Currency(currency)])
        raise ValidationFailed(message, errors={field: [message]}) from None


# -- the queue --------------------------------------------------------------------------------------
def _title(cert: Certification) -> str:
    return listings.version_body(listings.get_version(db.session, product_id=cert.product_id,
                                                      version=cert.product_version)).get("title", "")


def _trade_row(trade: Trade) -> dict[str, Any]:
    return {"trade": trade, "buyer": web.org_name(trade.buyer_org_id), "seller": web.org_name(trade.seller_org_id)}


def _queue_context(p: Principal) -> dict[str, Any]:
    session = db.session
    stmt = certs.list_query(principal=p, status=None).where(Certification.status.in_(list(REVIEWABLE_STATUSES)))
    review = []
    for cert in session.execute(stmt.limit(LIST_LIMIT)).scalars():
        mine = [s for s in cert.stages if p.is_operator or s.assessor_org_id == p.org_id]
        review.append({"cert": cert, "title": _title(cert),
                       "pending": [s.name for s in mine if s.status == StageStatus.PENDING]})
    ctx: dict[str, Any] = {"review": review, "orgs": [], "payments": [], "disputes": [], "payouts": []}
    if not p.is_operator:
        return ctx
    ctx["orgs"] = session.execute(
        identity.list_organizations(principal=p, status=OrgStatus.PENDING).limit(LIST_LIMIT)).scalars().all()
    for payment in session.execute(queues.payments(session, principal=p, status="pending")
                                   .where(Payment.provider == "manual").limit(LIST_LIMIT)).scalars():
        ctx["payments"].append({"payment": payment, **_trade_row(session.get(Trade, payment.trade_id))})
    for dispute in session.execute(queues.disputes(principal=p, status="open").limit(LIST_LIMIT)).scalars():
        ctx["disputes"].append({"dispute": dispute, **_trade_row(session.get(Trade, dispute.trade_id))})
    ctx["payouts"] = [{"payout": po, "org": web.org_name(po.org_id)}
                      for po in session.execute(queues.payouts(principal=p).limit(LIST_LIMIT)).scalars()]
    return ctx


@bp.route("/console/queue", methods=["GET"])
def queue() -> Any:
    p = _staff()
    return web.render(QUEUE, **_queue_context(p))


@bp.route("/console/organizations/<org_id>/status", methods=["POST"])
def organization_status(org_id: str) -> Any:
    p = _operator()
    target = {"verify": OrgStatus.VERIFIED, "reject": OrgStatus.REJECTED}.get(web.form_value("action"))
    try:
        if target is None:
            choose = i18n.t("Choose Verify or Reject.")
            raise ValidationFailed(choose, errors={"action": [choose]})
        data = web.load(StatusChangeSchema(), {"reason": request.form.get("reason", "")})
        org = identity.change_status(db.session, org_id=org_id, target=target, reason=data["reason"], actor=p)
    except DomainError as error:
        return _refuse(error, QUEUE, lambda: _queue_context(p), acted=org_id)
    done = "{name} is verified." if target == OrgStatus.VERIFIED else "{name} is rejected."
    return web.see_other("console.queue", flash=i18n.t(done, name=org.name))


@bp.route("/console/payments/<payment_id>/confirm", methods=["POST"])
def confirm_payment(payment_id: str) -> Any:
    p = _operator()
    try:
        payments.confirm_payment(db.session, payment_id=payment_id, actor=p)
    except DomainError as error:
        return _refuse(error, QUEUE, lambda: _queue_context(p), acted=payment_id)
    return web.see_other("console.queue", flash=i18n.t("Payment confirmed: the trade is in escrow."))


@bp.route("/console/trades/<trade_id>/resolution", methods=["POST"])
def resolve_dispute(trade_id: str) -> Any:
    p = _operator()
    trade = trades.visible(db.session, trade_id, p)
    try:
        amount = minor_units(web.form_value("refund_amount"), trade.currency, "refund_amount")
        data = web.load(TradeResolutionSchema(), {"refund_amount": amount})
        settlement.resolve(db.session, trade_id=trade_id, refund_amount=data["refund_amount"],
                           comment=data.get("comment"), end_access=data["end_access"], actor=p)
    except DomainError as error:
        return _refuse(error, QUEUE, lambda: _queue_context(p), acted=trade_id)
    return web.see_other("console.queue", flash=i18n.t("Dispute resolved."))


# -- a certification --------------------------------------------------------------------------------
def _certification(p: Principal, certification_id: str) -> Certification:
    """The certification for an operator, or for an assessor assigned to one of its stages (404 else)."""
    cert = certs.get(db.session, certification_id=certification_id, principal=p)
    if not p.is_operator and not certs.involved(cert, p):
        raise NotFound("No such certification.")
    return cert


def _cert_context(p: Principal, certification_id: str) -> dict[str, Any]:
    session = db.session
    cert = _certification(p, certification_id)
    shown = CertificationSchema().dump(certs.shown(session, cert))
    stages = []
    for stage in cert.stages:
        stages.append({"name": stage.name, "status": stage.status, "approvals": len(stage.approvals or []),
                       "needed": certs.approvals_needed(session, cert, stage.name),
                       "assessor": web.org_name(stage.assessor_org_id) if stage.assessor_org_id else None})
    compliance = next(s for s in stages if s["name"] == "compliance")
    reviewable = cert.status in REVIEWABLE_STATUSES
    mine = [s["name"] for s, row in zip(stages, cert.stages, strict=True)
            if s["status"] == StageStatus.PENDING and (p.is_operator or row.assessor_org_id == p.org_id)]
    assessors: list[Any] = []
    assignable: list[str] = []
    if p.is_operator:
        assessors = session.execute(identity.list_organizations(principal=p, status=OrgStatus.VERIFIED,
                                                                type="assessor")).scalars().all()
        assignable = [s["name"] for s in stages
                      if s["name"] in ASSIGNABLE_STAGES and s["status"] == StageStatus.PENDING]
    product = shown["product"]
    fields = [(label, product.get(key)) for key, label in PRODUCT_FIELDS if key in product]
    return {"cert": cert, "shown": shown, "stages": stages, "compliance": compliance, "fields": fields,
            "price": product.get("price") or {}, "vendor": web.org_name(cert.owner_org_id),
            "review_stages": mine if reviewable else [], "decisions": [d.value for d in Decision],
            "assessors": assessors, "assignable": assignable if reviewable else [], "org_name": web.org_name}


@bp.route("/console/certifications/<certification_id>", methods=["GET"])
def certification_page(certification_id: str) -> Any:
    p = _staff()
    return web.render(CERT, **_cert_context(p, certification_id))


@bp.route("/console/certifications/<certification_id>/reviews", methods=["POST"])
def review_certification(certification_id: str) -> Any:
    p = _staff()
    _certification(p, certification_id)
    try:
        data = web.load(ReviewSchema(), {"stage": web.form_value("stage"), "decision": web.form_value("decision"),
                                         "comment": web.form_value("comment") or None})
        certs.review(db.session, certification_id=certification_id, stage=data["stage"], decision=data["decision"],
                     comment=data.get("comment"), checklist=None, actor=p)
    except DomainError as error:
        return _refuse(error, CERT, lambda: _cert_context(p, certification_id), acted="review")
    return web.see_other("console.certification_page", flash=i18n.t("Review recorded."),
                         certification_id=certification_id)


@bp.route("/console/certifications/<certification_id>/assignments", methods=["POST"])
def assign_certification(certification_id: str) -> Any:
    p = _staff()
    _certification(p, certification_id)
    try:
        data = web.load(AssignmentSchema(), {"stage": web.form_value("assign_stage"),
                                             "assessor_org_id": web.form_value("assessor_org_id")})
        certs.assign(db.session, certification_id=certification_id, actor=p, **data)
    except DomainError as error:
        return _refuse(error, CERT, lambda: _cert_context(p, certification_id), acted="assign")
    return web.see_other("console.certification_page", flash=i18n.t("Stage assigned."),
                         certification_id=certification_id)


# -- the ledger -------------------------------------------------------------------------------------
def _latest_entries(p: Principal, before: int | None) -> list[dict[str, Any]]:
    """The newest entries (before `seq` when given: a cursor over the append-only journal)."""
    stmt = ledger.list_entries(db.session, principal=p).order_by(None).order_by(JournalEntry.seq.desc())
    if before is not None:
        stmt = stmt.where(JournalEntry.seq < before)
    return EntrySchema(many=True).dump(db.session.execute(stmt.limit(LATEST_ENTRIES)).scalars().all())


def _before() -> int | None:
    value = request.args.get("before", "")
    return int(value) if value.isdigit() and len(value) < 16 else None


@bp.route("/console/ledger", methods=["GET", "POST"], endpoint="ledger")
def ledger_page() -> Any:
    """GET: the button and the latest entries; POST (**Verify ledger**): the same verification as
    `GET /api/v1/ledger/verify` and `flask ledger verify`, in one read-only snapshot."""
    p = _operator()
    result = None
    if request.method == "POST":
        token = write_intent.set(False)  # as the CLI: one snapshot, without SQLite's write lock
        try:
            db.session.rollback()
            result = ledger.verify_as(db.session, principal=p)
        finally:
            db.session.rollback()
            write_intent.reset(token)
    entries = _latest_entries(p, _before())
    earlier = entries[-1]["seq"] if len(entries) == LATEST_ENTRIES and entries[-1]["seq"] > 1 else None
    return web.render(LEDGER, result=result, entries=entries, earlier=earlier)

