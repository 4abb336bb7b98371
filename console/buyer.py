"""Buyer pages: procurements with their matches, and the offer form on a catalog product.

Every step calls the service the API's route calls (trading.matching, trading.procurements,
trading.offers) and validates with the API's own load schema; this module only turns form text
into the values those schemas take (amounts in major units into exact integer minor units).
"""

from __future__ import annotations

import re
from typing import Any

from flask import redirect, request, session

from console import i18n, web
from console.web import bp
from exchange.api import paginate
from exchange.db import db
from exchange.errors import DomainError, NotFound, ValidationFailed
from exchange.money import CURRENCIES
from listings import services as listings
from listings.states import CATEGORIES, DELIVERY_MODES, LICENSE_SCOPES
from trading import matching, offers, procurements
from trading.schemas import OfferCreateSchema, ProcurementCreateSchema, ProcurementSchema

PER_PAGE = 20
MATCHES = 10
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The fair is in China: a deadline date ends at midnight China Standard Time.
DEADLINE_TIME = "T23:59:59+08:00"

i18n.add({
    "New procurement": "新建采购需求",
    "My procurements": "我的采购需求",
    "No procurement yet.": "暂无采购需求。",
    "Title": "标题",
    "Description": "描述",
    "Keywords": "关键词",
    "Separate keywords with commas.": "多个关键词用逗号分隔。",
    "Budget": "预算",
    "In major units, for example 12500.00.": "以元为单位，例如 12500.00。",
    "Currency": "币种",
    "Deadline": "截止日期",
    "Delivery mode": "交付方式",
    "Any": "不限",
    "Visibility": "可见范围",
    "Public (every vendor sees it)": "公开（所有数据商可见）",
    "Invited organizations only": "仅限受邀机构",
    "Invited organizations": "受邀机构",
    "Organization ids, separated by commas.": "机构编号，用逗号分隔。",
    "Publish procurement": "发布采购需求",
    "Procurement published.": "采购需求已发布。",
    "Status": "状态",
    "Matches": "匹配产品",
    "No matching certified product yet.": "暂无匹配的已认证产品。",
    "Product": "产品",
    "Vendor": "数据商",
    "Price": "价格",
    "Certificate": "证书",
    "Score": "匹配度",
    "Reasons": "匹配理由",
    "Action": "操作",
    "Make an offer": "提出报价",
    "Send offer": "发送报价",
    "Offer sent.": "报价已发送。",
    "Amount": "金额",
    "Unit price per call, in major units.": "每次调用的单价，以元为单位。",
    "Price of one period, in major units.": "每期的价格，以元为单位。",
    "Scope": "使用范围",
    "Duration (days)": "期限（天）",
    "Calls": "调用次数",
    "Periods": "期数",
    "Renew automatically": "自动续订",
    "Message": "留言",
    "Offer on {title}": "对“{title}”报价",
    "For procurement {title}": "针对采购需求“{title}”",
    "Listed price": "挂牌价格",
    "Price model": "定价方式",
    "Page {page} of {pages}": "第 {page} 页，共 {pages} 页",
    "Previous page": "上一页",
    "Next page": "下一页",
    "Write an amount such as 12500.00 (at most two decimals).": "请填写金额，例如 12500.00（最多两位小数）。",
    "Choose a date in the future.": "请选择将来的日期。",
    "Write a whole number.": "请填写整数。",
    "category": "类别相符", "text match": "文本相符", "within budget": "在预算之内", "negotiable price": "价格可议",
    "keywords: {words}": "关键词：{words}",
    "priced in {x} (budget in {y})": "以 {x} 计价（预算为 {y}）",
    "over budget by {x}%": "超出预算 {x}%",
    "delivery: {x}": "交付方式：{x}",
    "delivery is {x}, not {y}": "交付方式为 {x}，而非 {y}",
    "fresh data ({x})": "数据新鲜（{x}）",
    "vendor track record: {x} contract(s)": "数据商成交记录：{x} 份合同",
})

# Codes the API shows (statuses, categories, scopes, modes) in words: English here, zh-CN in the table.
CODE_WORDS = {
    "open": ("Open", "进行中"), "contracted": ("Contracted", "已签约"), "cancelled": ("Cancelled", "已取消"),
    "expired": ("Expired", "已过期"),
    "internal_use": ("Internal use", "内部使用"), "commercial": ("Commercial use", "商业使用"),
    "research": ("Research use", "科研使用"),
    "file": ("File delivery", "文件交付"), "api": ("API access", "接口交付"),
    "privacy_computing": ("Privacy-preserving computation", "隐私计算"),
    "one_time": ("One-time price", "一次性买断"), "subscription": ("Subscription", "订阅"),
    "per_call": ("Per call", "按次计费"), "negotiable": ("Negotiable", "价格面议"),
    "month": ("per month", "每月"), "year": ("per year", "每年"),
    "public": ("Public", "公开"), "invited": ("Invited only", "仅限受邀"),
    "finance": ("Finance", "金融"), "transport": ("Transport", "交通"), "healthcare": ("Healthcare", "医疗健康"),
    "geospatial": ("Geospatial", "地理空间"), "commerce": ("Commerce", "商贸"), "energy": ("Energy", "能源"),
    "public_services": ("Public services", "公共服务"), "telecom": ("Telecom", "通信"),
    "manufacturing": ("Manufacturing", "制造"), "agriculture": ("Agriculture", "农业"),
    "education": ("Education", "教育"), "other": ("Other", "其他"),
    "once": ("once", "一次性"), "daily": ("daily", "每日"), "weekly": ("weekly", "每周"),
    "monthly": ("monthly", "每月更新"), "realtime": ("real time", "实时"),
    "pending_signatures": ("Awaiting signatures", "待签署"), "signed": ("Signed", "已签署"),
    "awaiting_payment": ("Awaiting payment", "待付款"), "escrowed": ("Paid into escrow", "已托管"),
    "delivered": ("Delivered", "已交付"), "settled": ("Settled", "已结算"), "disputed": ("Disputed", "争议中"),
    "refunded": ("Refunded", "已退款"), "pending": ("Pending", "待处理"), "succeeded": ("Succeeded", "已成功"),
    "failed": ("Failed", "失败"), "canceled": ("Cancelled", "已取消"), "refund_pending": ("Refund pending", "退款中"),
    "resolved": ("Resolved", "已解决"), "manual": ("Bank transfer", "银行转账"),
    "stripe": ("Card (Stripe)", "在线支付"),
    "platform": ("Attested by the exchange", "平台见证签名"), "ed25519": ("Organization's own key", "机构自有密钥签名"),
}
i18n.add(dict(CODE_WORDS.values()))


@bp.app_template_global("code_word")
def word(code: str | None) -> str:
    """A code the API shows, in words of the page's language."""
    if not code:
        return ""
    return i18n.t(CODE_WORDS[code][0]) if code in CODE_WORDS else code

# matching.score's reasons are English sentences made of a few fixed shapes: each shown in the
# page's language (the values inside them are codes or numbers, translated when they are words).
REASONS = [
    (re.compile(r"^keywords: (?P<words>.*)$"), "keywords: {words}"),
    (re.compile(r"^priced in (?P<x>\S+) \(budget in (?P<y>\S+)\)$"), "priced in {x} (budget in {y})"),
    (re.compile(r"^over budget by (?P<x>\d+)%$"), "over budget by {x}%"),
    (re.compile(r"^delivery: (?P<x>\S+)$"), "delivery: {x}"),
    (re.compile(r"^delivery is (?P<x>\S+), not (?P<y>\S+)$"), "delivery is {x}, not {y}"),
    (re.compile(r"^fresh data \((?P<x>\S+)\)$"), "fresh data ({x})"),
    (re.compile(r"^vendor track record: (?P<x>\d+) contract\(s\)$"), "vendor track record: {x} contract(s)"),
]
WORDS = frozenset({*DELIVERY_MODES, "once", "daily", "weekly", "monthly", "realtime"})


def reason_text(reason: str) -> str:
    for pattern, template in REASONS:
        m = pattern.match(reason)
        if m:
            values = {k: word(v) if v in WORDS else v for k, v in m.groupdict().items()}
            return i18n.t(template, **values)
    return i18n.t(reason)


def _page_number() -> int:
    value = request.args.get("page", "1")
    return max(int(value), 1) if value.isdigit() and len(value) < 6 else 1


def _page_count(page: dict[str, Any]) -> int:
    return max((page["total"] + page["per_page"] - 1) // page["per_page"], 1)


# -- procurements ----------------------------------------------------------------------------------
@bp.route("/console/procurements", methods=["GET"], endpoint="procurements")
def procurements_page() -> Any:
    p = web.require_principal()
    stmt = procurements.list_query(db.session, principal=p, board=False, invited=False, status=None, category=None)
    page = paginate(db.session, stmt, page=_page_number(), per_page=PER_PAGE)
    shown = []
    for proc in page["items"]:
        facts = ProcurementSchema().dump(procurements.shown(proc))
        found = []
        # Offers answer open procurements only (trading.offers): a closed one's matches would be noise.
        if facts["status"] == "open":
            found = matching.matches_for_procurement(db.session, procurement_id=proc.id, principal=p, limit=MATCHES)
        facts["matches"] = [{
            "product_id": m.product_id, "title": m.title, "vendor": m.vendor, "price": m.price,
            "certificate_number": m.certificate_number, "score": m.score,
            "reasons": [reason_text(r) for r in m.reasons],
        } for m in found]
        shown.append(facts)
    return web.render("console/buyer/procurements.html", procurements=shown, page=page, pages=_page_count(page))


def _procurement_form_context() -> dict[str, Any]:
    return {"categories": CATEGORIES, "currencies": CURRENCIES, "delivery_modes": DELIVERY_MODES}


@bp.route("/console/procurements/new", methods=["GET", "POST"])
def new_procurement() -> Any:
    p = web.require_principal()
    template = "console/buyer/procurement_form.html"
    if request.method == "GET":
        return web.render(template, form={"currency": "CNY", "visibility": "public"}, **_procurement_form_context())
    try:
        data = _procurement_data()
        loaded = web.load(ProcurementCreateSchema(), data)
        proc = matching.post_procurement(db.session, **loaded, actor=p)
    except DomainError as error:
        return web.refused(error, template, **_procurement_form_context())
    session["flash"] = i18n.t("Procurement published.")
    return redirect(f"/console/procurements#{proc.id}", code=303)


def _procurement_data() -> dict[str, Any]:
    currency = web.form_value("currency")
    budget_text = web.form_value("budget")
    budget = web.minor_units(budget_text, currency)
    deadline = web.form_value("deadline")
    errors: dict[str, list[str]] = {}
    if budget is None or budget < 1:
        errors["budget.max_amount"] = [i18n.t("Write an amount such as 12500.00 (at most two decimals).")]
    if not DATE.match(deadline):
        errors["deadline"] = [i18n.t("Choose a date in the future.")]
    if errors:
        raise ValidationFailed(i18n.t("Check these fields: {fields}.", fields=", ".join(sorted(errors))),
                               errors=errors)
    data: dict[str, Any] = {
        "title": web.form_value("title"),
        "description": request.form.get("description", ""),
        "category": web.form_value("category"),
        "keywords": web.words(web.form_value("keywords")),
        "budget": {"max_amount": budget, "currency": currency},
        "deadline": deadline + DEADLINE_TIME,
        "visibility": web.form_value("visibility") or "public",
    }
    if web.form_value("delivery_mode"):
        data["delivery_mode"] = web.form_value("delivery_mode")
    invited = web.words(web.form_value("invited_org_ids"))
    if invited:
        data["invited_org_ids"] = invited
    return data


# -- the offer form --------------------------------------------------------------------------------
def _offer_context(product_id: str, procurement_id: str | None) -> dict[str, Any]:
    """The product as the catalog shows it (404 when the caller may not see it) and the procurement
    the offer answers, when it names one the caller may see."""
    p = web.require_principal()
    product = listings.get_product(db.session, product_id=product_id, principal=p)
    if product.listed_version is None:
        raise NotFound("No such product.")
    revision = listings.get_version(db.session, product_id=product.id, version=product.listed_version)
    proc = None
    if procurement_id:
        proc = procurements.get(db.session, procurement_id=procurement_id, principal=p)
    return {"product": product, "revision": revision, "price": revision.price, "procurement": proc,
            "procurement_id": procurement_id or "", "scopes": LICENSE_SCOPES,
            "vendor": web.org_name(product.owner_org_id)}


@bp.route("/catalog/<product_id>/offer", methods=["GET", "POST"], endpoint="offer_form")
def offer_form(product_id: str) -> Any:
    web.require_principal()
    template = "console/buyer/offer_form.html"
    source = request.form if request.method == "POST" else request.args
    procurement_id = (source.get("procurement_id") or "").strip() or None
    ctx = _offer_context(product_id, procurement_id)
    price = ctx["price"]
    if request.method == "GET":
        licence = ctx["revision"].license or {}
        form = {"amount": web.major_units(price.get("amount"), price.get("currency")),
                "scope": licence.get("scope", "commercial"),
                "duration_days": str(licence.get("duration_days") or 365) if price.get("model") != "subscription"
                else "", "calls": "", "periods": "1" if price.get("model") == "subscription" else ""}
        return web.render(template, form=form, **ctx)
    try:
        loaded = web.load(OfferCreateSchema(), _offer_data(product_id, procurement_id, ctx))
        offers.make(db.session, data=loaded, actor=web.require_principal())
    except DomainError as error:
        return web.refused(error, template, **ctx)
    session["flash"] = i18n.t("Offer sent.")
    return redirect("/console/offers", code=303)


def _whole(name: str, errors: dict[str, list[str]]) -> int | None:
    value = web.form_value(name)
    if not value:
        return None
    if not value.isdigit() or len(value) > 16:
        errors[f"terms.{name}"] = [i18n.t("Write a whole number.")]
        return None
    return int(value)


def _offer_data(product_id: str, procurement_id: str | None, ctx: dict[str, Any]) -> dict[str, Any]:
    price = ctx["price"]
    currency = price.get("currency")
    errors: dict[str, list[str]] = {}
    amount = web.minor_units(web.form_value("amount"), currency)
    if amount is None or amount < 1:
        errors["price.amount"] = [i18n.t("Write an amount such as 12500.00 (at most two decimals).")]
    terms: dict[str, Any] = {"scope": web.form_value("scope"), "delivery_mode": ctx["revision"].delivery_mode}
    for name in ("duration_days", "calls", "periods"):
        value = _whole(name, errors)
        if value is not None:
            terms[name] = value
    if price.get("model") == "subscription":
        terms["auto_renew"] = request.form.get("auto_renew") == "on"
    if errors:
        raise ValidationFailed(i18n.t("Check these fields: {fields}.", fields=", ".join(sorted(errors))),
                               errors=errors)
    data: dict[str, Any] = {"product_id": product_id, "price": {"amount": amount, "currency": currency},
                            "terms": terms}
    if procurement_id:
        data["procurement_id"] = procurement_id
    message = request.form.get("message", "").strip()
    if message:
        data["message"] = message
    return data
