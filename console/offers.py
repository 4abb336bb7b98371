"""Offers received and sent: Accept, Counter, Reject on a received pending offer (trading/offers.py)."""

from __future__ import annotations

from typing import Any

from flask import redirect
from sqlalchemy import select

from console import i18n, web
from console.web import bp
from exchange.db import db
from exchange.errors import DomainError, NotFound, ValidationFailed
from listings import catalog
from listings.models import Product
from listings.states import LICENSE_SCOPES
from trading import offers as trading_offers
from trading.schemas import TermsSchema

i18n.add({
    "Offers": "报价",
    "Received offers": "收到的报价",
    "Sent offers": "发出的报价",
    "Product": "产品",
    "Amount": "金额",
    "Scope": "使用范围",
    "Duration": "期限",
    "Status": "状态",
    "Counterparty": "交易对方",
    "Actions": "操作",
    "Accept": "接受",
    "Counter": "还价",
    "Reject": "驳回",
    "Message": "留言",
    "Duration (days)": "期限（天）",
    "unchanged": "不变",
    "{n} days": "{n} 天",
    "No offers.": "没有报价。",
    "pending": "待处理",
    "accepted": "已接受",
    "countered": "已还价",
    "rejected": "已驳回",
    "expired": "已过期",
    "Offer countered.": "已还价。",
    "Offer rejected.": "已拒绝报价。",
    "Amount is like 1200.00 (at most two decimals, above zero).": "金额格式如 1200.00（最多两位小数，大于零）。",
})


def _member() -> Any:
    p = web.require_principal()
    if p.org_type not in ("vendor", "enterprise"):
        raise NotFound(i18n.t("Not found"))
    return p


def _rows(p: Any, role: str) -> list[dict[str, Any]]:
    """The offers of one side, with their products' titles and counterparties in three queries."""
    found = db.session.execute(trading_offers.list_query(principal=p, role=role, status=None)).scalars().all()
    products = db.session.execute(select(Product).where(Product.id.in_({o.product_id for o in found}))).scalars().all()
    versions = catalog.shown_versions(db.session, products)
    other = {o.id: o.from_org_id if role == "received" else o.to_org_id for o in found}
    names = web.org_names(other.values())
    rows = []
    for o in found:
        version = versions.get(o.product_id)
        terms = o.terms or {}
        rows.append({"id": o.id, "title": version.body().get("title", "") if version else "",
                     "amount": web.money(o.amount, o.currency), "scope": terms.get("scope", ""),
                     "duration": terms.get("duration_days"), "status": trading_offers.effective_status(o),
                     "counterparty": names.get(other[o.id], "")})
    return rows


def _page(status: int = 200, **ctx: Any) -> Any:
    p = _member()
    return web.render("console/offers/offers.html", status, received=_rows(p, "received"),
                      sent=_rows(p, "sent"), scopes=LICENSE_SCOPES, **ctx)


@bp.route("/console/offers", methods=["GET"])
def offers() -> Any:
    return _page()


def _refused(exc: DomainError) -> Any:
    p = _member()
    return web.refused(exc, "console/offers/offers.html", received=_rows(p, "received"), sent=_rows(p, "sent"),
                       scopes=LICENSE_SCOPES)


@bp.route("/console/offers/<offer_id>/accept", methods=["POST"])
def accept_offer(offer_id: str) -> Any:
    p = _member()
    try:
        contract = trading_offers.accept(db.session, offer_id=offer_id, actor=p)
    except DomainError as exc:
        return _refused(exc)
    return redirect(f"/console/contracts/{contract.id}", code=303)


@bp.route("/console/offers/<offer_id>/counter", methods=["POST"])
def counter_offer(offer_id: str) -> Any:
    p = _member()
    try:
        offer = trading_offers.get(db.session, offer_id=offer_id, principal=p)
        amount = web.minor_units(web.form_value("amount"), offer.currency)
        if amount is None or amount < 1:
            msg = i18n.t("Amount is like 1200.00 (at most two decimals, above zero).")
            raise ValidationFailed(msg, errors={"price.amount": [msg]})
        # The API lets a counter omit terms (kept unchanged); a changed scope or duration sends the terms.
        terms = None
        changed = {k: web.form_value(k) for k in ("scope", "duration_days") if web.form_value(k)}
        if changed:
            terms = web.load(TermsSchema(), {**dict(offer.terms or {}), **{
                k: int(v) if k == "duration_days" and v.isdigit() else v for k, v in changed.items()}})
        trading_offers.counter(db.session, offer_id=offer_id, price={"amount": amount, "currency": offer.currency},
                               terms=terms, message=web.form_value("message") or None, expires_at=None, actor=p)
    except DomainError as exc:
        return _refused(exc)
    return web.see_other("console.offers", flash=i18n.t("Offer countered."))


@bp.route("/console/offers/<offer_id>/reject", methods=["POST"])
def reject_offer(offer_id: str) -> Any:
    p = _member()
    try:
        trading_offers.reject(db.session, offer_id=offer_id, reason=web.form_value("message") or None, actor=p)
    except DomainError as exc:
        return _refused(exc)
    return web.see_other("console.offers", flash=i18n.t("Offer rejected."))
