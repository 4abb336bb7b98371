"""Vendor pages: the organization's own products, a new product, its submission for certification,
and its releases (a draft release, files uploaded into it, published).

Every form is the API's body in fields: it is validated by the API's own load schema and handed to the
same service as the API's route, so the rules, limits and messages are the API's."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import request
from werkzeug.utils import secure_filename

from certification import services as certification
from certification.models import Certification
from console import i18n, web
from console.web import bp
from delivery import releases
from exchange.db import db
from exchange.errors import DomainError, NotFound, ValidationFailed
from exchange.money import CURRENCIES
from exchange.principal import Principal
from listings import catalog
from listings import services as listings
from listings.models import Product
from listings.schemas import ProductCreateSchema, ProductSchema
from listings.states import (
    CATEGORIES,
    CLASSIFICATIONS,
    DATA_FORMATS,
    DATA_SOURCE_TYPES,
    DELIVERY_MODES,
    LICENSE_SCOPES,
    ORIGIN_REGIONS,
    PRICE_MODELS,
    PRICE_PERIODS,
    UPDATE_FREQUENCIES,
)

i18n.add({
    "My products": "我的产品",
    "New product": "新建产品",
    "Save draft": "保存草稿",
    "Submit for certification": "提交认证",
    "No product yet: register your first one with New product.": "尚无产品：请点击“新建产品”登记第一个产品。",
    "Summary": "摘要",
    "Description": "描述",
    "Keywords": "关键词",
    "Keywords, separated by commas": "关键词，以逗号分隔",
    "Price": "价格",
    "Currency": "币种",
    "Price model": "定价方式",
    "Period": "周期",
    "No period": "无周期",
    "Data format": "数据格式",
    "Delivery mode": "交付方式",
    "Classification": "分类分级",
    "Contains personal information": "含个人信息",
    "Individuals covered": "涉及个人数量",
    "Sensitive personal information": "敏感个人信息",
    "Origin region": "来源地区",
    "Update frequency": "更新频率",
    "Licence scope": "许可范围",
    "Licence duration (days)": "许可期限（天）",
    "Resale allowed": "允许转售",
    "Scenarios, one per line": "应用场景，每行一个",
    "Data source": "数据来源",
    "Data source description": "数据来源说明",
    "Sample (CSV: a header line, then up to a few rows)": "样例数据（CSV：首行为列名，其后若干行）",
    "Records": "记录数",
    "Product saved as a draft.": "产品已保存为草稿。",
    "Submitted for certification.": "已提交认证。",
    "Releases": "数据版本",
    "New release": "新建版本",
    "Label": "版本标签",
    "Notes": "说明",
    "Files": "文件",
    "Upload": "上传",
    "Publish": "发布",
    "Release created.": "版本已创建。",
    "{n} file(s) uploaded.": "已上传 {n} 个文件。",
    "Release published.": "版本已发布。",
    "Choose at least one file.": "请至少选择一个文件。",
    "No release yet.": "尚无数据版本。",
    "Name": "名称",
    "Size (bytes)": "大小（字节）",
    "Version": "版本",
    "Latest version": "最新版本",
    "Certification": "认证",
    "Back to my products": "返回我的产品",
    "Releases and files": "数据版本与文件",
    "Write a whole number.": "请填写整数。",
    "Write an amount such as 1200.00 (at most two decimals).": "请填写金额，例如 1200.00（最多两位小数）。",
    "Every sample row needs one value per column.": "样例的每一行都需要与列数相同的值。",
    "Registration": "登记信息",
    "Licence": "许可",
    "Manifest sha256": "清单 sha256",
    "Published": "已发布",
})

SELECTS = {
    "category": CATEGORIES, "data_format": DATA_FORMATS, "delivery_mode": DELIVERY_MODES,
    "classification": CLASSIFICATIONS, "origin_region": ORIGIN_REGIONS, "update_frequency": UPDATE_FREQUENCIES,
    "price.model": PRICE_MODELS, "price.currency": CURRENCIES, "price.period": PRICE_PERIODS,
    "license.scope": LICENSE_SCOPES, "data_source.type": DATA_SOURCE_TYPES,
}
# A new form starts from values most products have (all can be changed).
DEFAULTS = {"price.currency": "CNY", "price.model": "one_time", "classification": "general", "origin_region": "GD",
            "delivery_mode": "file", "data_format": "csv", "update_frequency": "monthly",
            "license.scope": "commercial", "license.duration_days": "365", "data_source.type": "self_collected"}


def _vendor() -> Principal:
    """A member of a vendor organization; anyone else (signed in) gets the 404 page."""
    p = web.require_principal()
    if p.org_type != "vendor":
        raise NotFound("No such page.")
    return p


def _own(p: Principal, product_id: str) -> Product:
    """The organization's own product (another's, or none: the 404 page, as the API's owner routes)."""
    product = listings.get_product(db.session, product_id=product_id, principal=p)
    if product.owner_org_id != p.org_id:
        raise NotFound("No such product.")
    return product


@bp.route("/console/products", methods=["GET"])
def products() -> Any:
    p = _vendor()
    page = catalog.search_catalog(db.session, principal=p, mine=True, sort="newest", page=1, per_page=100)
    rows = [{"product": product, "title": version.body().get("title", ""), "version": version.version}
            for product, version, _ in page["items"]]
    return web.render("console/vendor/products.html", rows=rows, total=page["total"])


def _whole(name: str, errors: dict[str, list[str]], *, required: bool = True) -> int | None:
    text = web.form_value(name).replace(",", "")
    if not text and not required:
        return None
    if not text.isdigit() or len(text) > 15:
        errors[name] = [i18n.t("Write a whole number.")]
        return None
    return int(text)


def _lines(name: str) -> list[str]:
    return [x.strip() for x in web.form_value(name).splitlines() if x.strip()]


def _sample(errors: dict[str, list[str]]) -> dict[str, Any] | None:
    text = web.form_value("sample")
    if not text:
        return None
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    columns, values = [c.strip() for c in rows[0]], [[c.strip() for c in r] for r in rows[1:]]
    if any(len(r) != len(columns) for r in values):
        errors["sample"] = [i18n.t("Every sample row needs one value per column.")]
    return {"columns": columns, "rows": values}


def _product_body() -> dict[str, Any]:
    """The API's creation body from the form; raises ValidationFailed naming every field at fault."""
    f = web.form_value
    errors: dict[str, list[str]] = {}
    currency = f("price.currency")
    amount = web.minor_units(f("price.amount"), currency)
    if amount is None:
        errors["price.amount"] = [i18n.t("Write an amount such as 1200.00 (at most two decimals).")]
    personal = request.form.get("contains_personal_info") == "on"
    body: dict[str, Any] = {
        "title": f("title"), "summary": f("summary"), "description": f("description"), "category": f("category"),
        "keywords": web.words(f("keywords")), "data_format": f("data_format"), "delivery_mode": f("delivery_mode"),
        "classification": f("classification"), "contains_personal_info": personal,
        "origin_region": f("origin_region"), "update_frequency": f("update_frequency"),
        "price": {"model": f("price.model"), "amount": amount, "currency": currency,
                  "period": f("price.period") or None},
        "license": {"scope": f("license.scope"), "duration_days": _whole("license.duration_days", errors),
                    "resale_allowed": request.form.get("license.resale_allowed") == "on"},
        "scenarios": _lines("scenarios"),
        "data_source": {"type": f("data_source.type"), "description": f("data_source.description")},
        "sample": _sample(errors),
    }
    records = _whole("volume.records", errors, required=False)
    if records is not None:
        body["volume"] = {"records": records}
    if personal:
        body["personal_info"] = {"subjects": _whole("personal_info.subjects", errors),
                                 "sensitive": request.form.get("personal_info.sensitive") == "on"}
    try:
        loaded = web.load(ProductCreateSchema(), body)
    except ValidationFailed as exc:
        errors = {**(exc.errors or {}), **errors}
        loaded = None
    if errors:
        raise ValidationFailed(i18n.t("Check these fields: {fields}.", fields=", ".join(sorted(errors))),
                               errors=errors)
    return loaded


def _form_context() -> dict[str, Any]:
    return {"selects": SELECTS, "defaults": DEFAULTS}


@bp.route("/console/products/new", methods=["GET", "POST"])
def new_product() -> Any:
    p = _vendor()
    template = "console/vendor/product_form.html"
    if request.method == "GET":
        return web.render(template, form=DEFAULTS, **_form_context())
    try:
        listings.check_may_create(db.session, p)
        product = listings.create_product(db.session, data=_product_body(), actor=p)
    except DomainError as error:
        return web.refused(error, template, **_form_context())
    return web.see_other("console.vendor_product", flash=i18n.t("Product saved as a draft."), product_id=product.id)


def _product_context(p: Principal, product: Product) -> dict[str, Any]:
    version = listings.shown_version(db.session, product)
    shown = ProductSchema().dump(listings.product_shown(product, version))
    mine = db.session.execute(certification.list_query(principal=p, status=None)
                              .where(Certification.product_id == product.id).limit(20)).scalars().all()
    latest = listings.get_version(db.session, product_id=product.id, version=product.latest_version)
    return {"product": product, "shown": shown, "certifications": mine,
            "may_submit": latest.status == "draft"}


@bp.route("/console/products/<product_id>", methods=["GET"])
def vendor_product(product_id: str) -> Any:
    p = _vendor()
    return web.render("console/vendor/product.html", **_product_context(p, _own(p, product_id)))


@bp.route("/console/products/<product_id>/submit", methods=["POST"])
def submit_product(product_id: str) -> Any:
    p = _vendor()
    product = _own(p, product_id)
    try:
        certification.submit(db.session, product_id=product.id, documents=[], actor=p)
    except DomainError as error:
        if error.status == 404:
            raise
        db.session.rollback()
        return web.refused(error, "console/vendor/product.html", **_product_context(p, _own(p, product_id)))
    return web.see_other("console.vendor_product", flash=i18n.t("Submitted for certification."),
                         product_id=product_id)


def _releases_context(p: Principal, product: Product) -> dict[str, Any]:
    rows = releases.list_for_product(db.session, product_id=product.id, principal=p)
    return {"product": product, "title": listings.shown_version(db.session, product).body().get("title", ""),
            "releases": [releases.shown(db.session, r) for r in rows]}


@bp.route("/console/products/<product_id>/releases", methods=["GET", "POST"])
def releases_page(product_id: str) -> Any:
    p = _vendor()
    product = _own(p, product_id)
    template = "console/vendor/releases.html"
    if request.method == "GET":
        return web.render(template, **_releases_context(p, product))
    try:
        listings.check_may_change(db.session, p, product_id=product.id)
        releases.create(db.session, product_id=product.id, label=web.form_value("label"),
                        notes=web.form_value("notes") or None, actor=p)
    except DomainError as error:
        if error.status == 404:
            raise
        db.session.rollback()
        return web.refused(error, template, **_releases_context(p, _own(p, product_id)))
    return web.see_other("console.releases_page", flash=i18n.t("Release created."), product_id=product_id)


# Uploads stream through the multipart parser to temporary files, then to storage while hashed:
# this endpoint alone may receive bodies up to DATAFAIR_MAX_UPLOAD_BYTES (console/__init__.py raises
# its limit before the CSRF check reads the form).
web.LARGE_BODIES.add("console.upload_files")


@bp.route("/console/products/<product_id>/releases/<release_id>/files", methods=["POST"])
def upload_files(product_id: str, release_id: str) -> Any:
    p = _vendor()
    product = _own(p, product_id)
    files = [f for f in request.files.getlist("files") if f and f.filename]
    template = "console/vendor/releases.html"
    try:
        if not files:
            message = i18n.t("Choose at least one file.")
            raise ValidationFailed(message, errors={"files": [message]})
        for upload in files:
            # A browser's file name may hold spaces or CJK: the stored name keeps the API's alphabet.
            name = secure_filename(upload.filename or "") or "file"
            releases.put_file(db.session, release_id=release_id, name=name, read=upload.stream.read,
                              expected_sha256=None, actor=p)
    except DomainError as error:
        if error.status == 404:
            raise
        db.session.rollback()
        return web.refused(error, template, **_releases_context(p, _own(p, product.id)))
    return web.see_other("console.releases_page", flash=i18n.t("{n} file(s) uploaded.", n=len(files)),
                         product_id=product_id)


@bp.route("/console/products/<product_id>/releases/<release_id>/publish", methods=["POST"])
def publish_release(product_id: str, release_id: str) -> Any:
    p = _vendor()
    _own(p, product_id)
    try:
        releases.publish(db.session, release_id=release_id, actor=p)
    except DomainError as error:
        if error.status == 404:
            raise
        db.session.rollback()
        return web.refused(error, "console/vendor/releases.html", **_releases_context(p, _own(p, product_id)))
    return web.see_other("console.releases_page", flash=i18n.t("Release published."), product_id=product_id)
