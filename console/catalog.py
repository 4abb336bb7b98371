"""Public pages of the catalog and the fair: search, a product, a certificate's verification, a fair's
stalls and a stall (with on-site signing for the parties of a pending contract with its vendor).

Every page reads through the same services and queries as the API's routes (listings.catalog,
listings.services, certification.certificates, listings.fairs, trading.contracts); the rules stay there.
"""

from __future__ import annotations

from typing import Any

import segno
from flask import redirect, request, session, url_for
from sqlalchemy import or_, select

from certification import certificates
from certification.schemas import CertificateSchema
from console import i18n, web
from console.web import bp
from exchange.db import db, read_session
from exchange.errors import DomainError, Forbidden, NotFound, ValidationFailed
from exchange.identity.models import Organization
from exchange.principal import Principal
from exchange.ratelimit import write_limit
from listings import catalog as listings_catalog
from listings import fairs
from listings import services as listings
from listings.models import Product, Stall
from listings.schemas import ProductQueryArgsSchema, ProductSchema
from listings.states import CATEGORIES, DELIVERY_MODES, ORIGIN_REGIONS, PRICE_MODELS, FairPhase
from trading import contracts, offers
from trading.models import Contract
from trading.schemas import SignatureCreateSchema
from trading.states import ContractStatus

PER_PAGE = 20
# The page's query args and the API's names for them (`region` is the catalog's `origin_region`).
QUERY_ARGS = {"q": "q", "category": "category", "region": "origin_region", "delivery_mode": "delivery_mode",
              "price_model": "price_model", "page": "page"}
MAX_STALLS = 500

i18n.add({
    "Search the catalog": "搜索数据目录",
    "Search": "搜索",
    "Category": "类别",
    "Region": "地区",
    "Delivery mode": "交付方式",
    "Price model": "定价方式",
    "Any": "不限",
    "Filters": "筛选",
    "Apply filters": "应用筛选",
    "{n} products": "共 {n} 个产品",
    "Results": "搜索结果",
    "No product matches.": "没有符合条件的产品。",
    "Previous": "上一页",
    "Next": "下一页",
    "Pages": "分页",
    "Page {page} of {pages}": "第 {page} 页，共 {pages} 页",
    "Vendor": "数据商",
    "Price": "价格",
    "Summary": "摘要",
    "Description": "描述",
    "Sample": "样例数据",
    "No sample.": "无样例数据。",
    "Licence": "许可",
    "Scope": "使用范围",
    "{n} days": "{n} 天",
    "Resale allowed": "允许转售",
    "Resale not allowed": "不允许转售",
    "Scenarios": "应用场景",
    "Keywords": "关键词",
    "Certificate {number}": "证书 {number}",
    "Certificate": "证书",
    "Not certified": "未认证",
    "Make an offer": "提出报价",
    "per {period}": "每{period}",
    # certificates
    "Certificate verification": "证书验证",
    "Status": "状态",
    "Product": "产品",
    "Issued": "签发日期",
    "Expires": "到期日期",
    "Reason": "理由",
    "Digest": "摘要",
    "Key": "密钥",
    "Checked by the server": "服务器校验",
    "Signature valid": "签名有效",
    "Signature invalid": "签名无效",
    "Digest matches": "摘要一致",
    "Digest does not match": "摘要不一致",
    "Checked in your browser": "浏览器校验",
    "Checking in your browser…": "正在浏览器中校验…",
    "Verified in your browser": "已在您的浏览器中验证",
    "Verification failed": "验证失败",
    "Your browser checks the signature with the exchange's public keys (JWKS) and recomputes the digest.":
        "您的浏览器使用交易所公钥（JWKS）校验签名，并重新计算摘要。",
    "This check needs JavaScript.": "此项校验需要启用 JavaScript。",
    "QR code of this page": "本页二维码",
    "This certificate is not valid: the product may not be traded on it.": "该证书无效：不能据此交易该产品。",
    # fairs and stalls
    "Venue": "地点",
    "Dates": "日期",
    "Phase": "阶段",
    "Stalls": "展位",
    "Stall": "展位",
    "Stall {code}": "展位 {code}",
    "No stall yet.": "暂无展位。",
    "QR code of stall {code}": "展位 {code} 的二维码",
    "Open stall {code}": "打开展位 {code}",
    "{n} products on show": "展出 {n} 个产品",
    "Products on show": "参展产品",
    "Contracts signed on site": "现场签约合同",
    "No product on show.": "暂无参展产品。",
    "Contracts to sign": "待签合同",
    "Your organization's contracts with this vendor that await your signature.":
        "贵机构与该数据商之间等待您签署的合同。",
    "Contract": "合同",
    "Amount": "金额",
    "Sign here on site": "在此现场签约",
    "Signed on site.": "已完成现场签约。",
    "Back to the fair": "返回交易会",
    "The fair": "数据交易会",
})

# The API's enumerations in words: value -> English text (the i18n key), then its translation.
WORDS = {
    "finance": "Finance", "transport": "Transport", "healthcare": "Healthcare", "geospatial": "Geospatial",
    "commerce": "Commerce", "energy": "Energy", "public_services": "Public services", "telecom": "Telecom",
    "manufacturing": "Manufacturing", "agriculture": "Agriculture", "education": "Education", "other": "Other",
    "GD": "Guangdong", "HK": "Hong Kong", "MO": "Macao", "CN": "Mainland China (outside Guangdong)",
    "INTL": "Outside China",
    "file": "File", "api": "API", "privacy_computing": "Privacy computing",
    "one_time": "One-time", "subscription": "Subscription", "per_call": "Per call", "negotiable": "Negotiable",
    "month": "month", "year": "year",
    "internal_use": "Internal use", "commercial": "Commercial use", "research": "Research",
    "valid": "Valid", "suspended": "Suspended", "revoked": "Revoked", "expired": "Expired",
    "superseded": "Superseded",
    "live": "live", "upcoming": "upcoming", "ended": "ended",
}
i18n.add({
    "Finance": "金融", "Transport": "交通", "Healthcare": "医疗健康", "Geospatial": "地理空间",
    "Commerce": "商贸", "Energy": "能源", "Public services": "公共服务", "Telecom": "通信",
    "Manufacturing": "制造", "Agriculture": "农业", "Education": "教育", "Other": "其他",
    "Guangdong": "广东", "Hong Kong": "香港", "Macao": "澳门", "Mainland China (outside Guangdong)": "内地（广东以外）",
    "Outside China": "境外",
    "File": "文件", "API": "API 接口", "Privacy computing": "隐私计算",
    "One-time": "一次性", "Subscription": "订阅", "Per call": "按次计费", "Negotiable": "价格面议",
    "month": "月", "year": "年",
    "Internal use": "内部使用", "Commercial use": "商业使用", "Research": "科研",
    "Valid": "有效", "Suspended": "已暂停", "Revoked": "已撤销", "Expired": "已过期", "Superseded": "已被取代",
    "live": "进行中", "upcoming": "即将开始", "ended": "已结束",
})


def word(value: str | None) -> str:
    """An enumeration's value in the page's language."""
    return i18n.t(WORDS.get(value or "", value or "")) if value else ""


def _labels(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(v, word(v)) for v in values]


def _names(org_ids: set[str]) -> dict[str, str]:
    if not org_ids:
        return {}
    return dict(db.session.execute(select(Organization.id, Organization.name)
                                   .where(Organization.id.in_(list(org_ids)))).all())


def _price(price: dict[str, Any] | None) -> str:
    if not price:
        return ""
    text = f"{web.money(price.get('amount'), price.get('currency'))} · {word(price.get('model'))}"
    if price.get("period"):
        text += " · " + i18n.t("per {period}", period=word(price["period"]))
    return text


def _qr(url: str) -> str:
    return segno.make(url, error="m").svg_data_uri(scale=4)


# -- the catalog -----------------------------------------------------------------------------------

def _query() -> dict[str, Any]:
    """The page's args as the API's query schema loads them (the same enums, limits and messages)."""
    raw = {api: request.args.get(name, "").strip() for name, api in QUERY_ARGS.items()}
    data: dict[str, Any] = {k: v for k, v in raw.items() if v != ""}
    data["per_page"] = str(PER_PAGE)
    return web.load(ProductQueryArgsSchema(), data)


def _page_link(args: dict[str, str], page: int) -> str:
    return url_for("console.catalog", **{**args, "page": page})


@bp.route("/catalog", methods=["GET"])
def catalog() -> Any:
    p = web.principal()
    shown_args = {name: request.args.get(name, "").strip() for name in QUERY_ARGS if name != "page"}
    context: dict[str, Any] = {
        "form": shown_args, "categories": _labels(CATEGORIES), "regions": _labels(ORIGIN_REGIONS),
        "delivery_modes": _labels(DELIVERY_MODES), "price_models": _labels(PRICE_MODELS),
        "items": [], "total": 0, "prev_url": None, "next_url": None, "page": 1, "pages": 1,
    }
    try:
        args = _query()
        result = listings_catalog.search_catalog(read_session(), principal=p, **args)
    except ValidationFailed as error:
        return web.refused(error, "console/catalog/catalog.html", **context)
    names = _names({prod.owner_org_id for prod, _v, _r in result["items"]})
    items = []
    for prod, version, _relevance in result["items"]:
        items.append({"id": prod.id, "title": version.title, "summary": version.summary,
                      "vendor": names.get(prod.owner_org_id, ""), "price": _price(version.price),
                      "category": word(version.category)})
    total, page = int(result["total"]), int(result["page"])
    pages = max(1, -(-total // PER_PAGE))
    kept = {k: v for k, v in shown_args.items() if v}
    context.update(items=items, total=total, page=page, pages=pages,
                   prev_url=_page_link(kept, page - 1) if page > 1 else None,
                   next_url=_page_link(kept, page + 1) if page < pages else None)
    return web.render("console/catalog/catalog.html", **context)


# -- a product -------------------------------------------------------------------------------------

def _may_offer(p: Principal | None, product: Product) -> bool:
    """Whether to show **Make an offer**: the offers service's own test of who may make offers, on
    another organization's listed product (the service checks everything again on sending)."""
    if p is None or p.org_id == product.owner_org_id or not listings.is_tradable(product):
        return False
    try:
        offers.check_may_offer(db.session, p)
    except Forbidden:
        return False
    return True


@bp.route("/catalog/<product_id>", methods=["GET"])
def product_page(product_id: str) -> Any:
    p = web.principal()
    product = listings.get_product(db.session, product_id=product_id, principal=p)
    version = listings.shown_version(db.session, product)
    shown = ProductSchema().dump(listings.product_shown(product, version))
    facts = {
        "vendor": web.org_name(product.owner_org_id),
        "price": _price(shown.get("price")),
        "category": word(shown.get("category")),
        "region": word(shown.get("origin_region")),
        "delivery_mode": word(shown.get("delivery_mode")),
        "licence_scope": word((shown.get("license") or {}).get("scope")),
    }
    return web.render("console/catalog/product.html", product=shown, facts=facts,
                      may_offer=_may_offer(p, product), offer_url=f"/catalog/{product.id}/offer")


# -- a certificate ---------------------------------------------------------------------------------

@bp.route("/verify/<number>", methods=["GET"])
def verify_page(number: str) -> Any:
    session = db.session
    cert = certificates.get(session, number)
    shown = CertificateSchema().dump(certificates.shown(session, cert))
    try:
        revision = listings.get_version(session, product_id=cert.product_id, version=cert.product_version)
    except NotFound:
        revision = None
    # What the digest covers (docs/digests.md): the certified revision's body as stored plus the three ids;
    # the browser recomputes its sha256 from this, and checks the signature over `signed`.
    digested = None
    if revision is not None:
        digested = {**listings.version_body(revision), "product_id": cert.product_id,
                    "version": cert.product_version, "vendor_org_id": cert.vendor_org_id}
    page_url = url_for("console.verify_page", number=cert.number, _external=True)
    return web.render(
        "console/catalog/verify.html", cert=shown, status_words=word(shown["status"]),
        title=revision.title if revision is not None else "",
        vendor=web.org_name(cert.vendor_org_id), signed=certificates.signed_payload(cert), digested=digested,
        signature={"key_id": cert.key_id, "signature": cert.signature},
        jwks_url=url_for("well-known.jwks"), qr=_qr(page_url), page_url=page_url,
        product_url=url_for("console.product_page", product_id=cert.product_id),
    )


# -- fairs and stalls ------------------------------------------------------------------------------

def _fair_facts(fair_id: str) -> Any:
    session = db.session
    return fairs.shown(session, fairs.get_fair(session, fair_id=fair_id))


@bp.route("/fairs/<fair_id>", methods=["GET"])
def fair_page(fair_id: str) -> Any:
    session = db.session
    fair = _fair_facts(fair_id)
    stalls = session.execute(fairs.list_stalls(session, fair_id=fair.id).limit(MAX_STALLS)).scalars().all()
    views = fairs.stall_views(session, stalls)
    names = _names({v["org_id"] for v in views})
    shown = []
    for v in views:
        url = url_for("console.stall_page", fair_id=fair.id, code=v["code"])
        shown.append({"code": v["code"], "vendor": names.get(v["org_id"], ""), "products": len(v["product_ids"]),
                      "url": url, "qr": _qr(url_for("console.stall_page", fair_id=fair.id, code=v["code"],
                                                    _external=True))})
    return web.render("console/catalog/fair.html", fair=fair, stalls=shown, phase_words=word(fair.phase))


def _stall(fair_id: str, code: str) -> Stall:
    session = db.session
    stall = session.execute(fairs.list_stalls(session, fair_id=fair_id).where(Stall.code == code)).scalar_one_or_none()
    if stall is None:
        raise NotFound("No such stall at this fair.")
    return stall


def _pending_contracts(p: Principal | None, stall: Stall) -> list[dict[str, Any]]:
    """The signed-in organization's contracts with the stall's vendor that still need its signature."""
    if p is None:
        return []
    session = db.session
    stmt = (contracts.list_query(principal=p, status=ContractStatus.PENDING_SIGNATURES)
            .where(Contract.seller_org_id == stall.org_id,
                   or_(Contract.buyer_org_id == p.org_id, Contract.seller_org_id == p.org_id))
            .limit(50))
    page = session.execute(stmt).scalars().all()
    shown = contracts.shown_page(session, list(page))
    titles = {}
    for c in shown:
        if c.product_id not in titles:
            try:
                titles[c.product_id] = listings.get_version(session, product_id=c.product_id,
                                                            version=c.product_version).title
            except NotFound:
                titles[c.product_id] = c.product_id
    return [{"id": c.id, "number": c.number, "product": titles[c.product_id],
             "amount": web.money(c.amount, c.currency)}
            for c in shown if all(s.org_id != p.org_id for s in c.signatures)]


def _stall_context(fair_id: str, code: str) -> dict[str, Any]:
    session = db.session
    p = web.principal()
    fair = _fair_facts(fair_id)
    stall = _stall(fair.id, code)
    view = fairs.stall_views(session, [stall])[0]
    ids = view["product_ids"]
    found = {prod.id: prod for prod in session.execute(select(Product).where(Product.id.in_(ids))).scalars()}
    ordered = [found[i] for i in ids if i in found]
    versions = listings_catalog.shown_versions(session, ordered)
    products = [{"id": prod.id, "title": versions[prod.id].title, "price": _price(versions[prod.id].price),
                 "category": word(versions[prod.id].category)} for prod in ordered if prod.id in versions]
    live = fair.phase == FairPhase.LIVE
    return {"fair": fair, "stall": stall, "vendor": web.org_name(stall.org_id), "products": products,
            "live": live, "phase_words": word(fair.phase), "pending": _pending_contracts(p, stall) if live else []}


@bp.route("/fairs/<fair_id>/stalls/<code>", methods=["GET"])
def stall_page(fair_id: str, code: str) -> Any:
    return web.render("console/catalog/stall.html", **_stall_context(fair_id, code))


@bp.route("/fairs/<fair_id>/stalls/<code>/contracts/<contract_id>/sign", methods=["POST"])
def sign_on_site(fair_id: str, code: str, contract_id: str) -> Any:
    p = web.require_principal()
    # The API's limit on signing attempts per organization counts the console's too (RateLimited: the 429
    # page). It counts on its own connection, so the session's read of the user ends first (on SQLite a
    # POST's transaction holds the write lock), as the API counts before the view's transaction.
    db.session.rollback()
    write_limit(p.org_id, "signatures")
    try:
        data = web.load(SignatureCreateSchema(), {"on_site": True, "fair_id": fair_id, "stall_code": code})
        contracts.sign(db.session, contract_id=contract_id, data=data, actor=p,
                       client_addr=request.remote_addr, user_agent=request.headers.get("User-Agent"))
    except DomainError as error:
        # Nothing of the refused signature stays (the kernel rolls back on the 4xx too); the page is
        # read afresh. A stall that does not exist is the 404 page.
        db.session.rollback()
        return web.refused(error, "console/catalog/stall.html", **_stall_context(fair_id, code))
    session["flash"] = i18n.t("Signed on site.")
    return redirect(f"/console/contracts/{contract_id}", code=303)
