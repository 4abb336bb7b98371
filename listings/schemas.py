"""Marshmallow schemas of the catalog and the exhibition: strict loads, documented dumps."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_dump, validate, validates_schema

from exchange.fields import (
    Boolean,
    PaginationArgsSchema,
    StrictInteger,
    StrictSchema,
    Text,
    UTCDateTime,
    money_sum_schema,
    page_schema,
)
from exchange.money import MAX_AMOUNT
from exchange.principal import viewer
from listings.services import can_manage
from listings.states import (
    CATEGORIES,
    CLASSIFICATIONS,
    DATA_FORMATS,
    DATA_SOURCE_TYPES,
    DELIVERY_MODES,
    LICENSE_SCOPES,
    ORIGIN_REGIONS,
    PRICE_CURRENCIES,
    PRICE_MODELS,
    PRICE_PERIODS,
    SORTS,
    UPDATE_FREQUENCIES,
    FairPhase,
    ProductStatus,
    VersionStatus,
)

MAX_KEYWORDS = 20
MAX_SAMPLE_ROWS = 50
MAX_SAMPLE_COLUMNS = 100
MAX_CELL_LENGTH = 1000
_CELL_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
STALL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,19}$")


def _one_of(values: tuple[str, ...], **kw: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(values), **kw)


def _unique(what: str) -> Callable[[list[str]], None]:
    def check(values: list[str]) -> None:
        seen = [v.casefold() for v in values]
        if len(set(seen)) != len(seen):
            raise ValidationError(f"lists the same {what} twice")

    return check


# -- load: the product body ------------------------------------------------------------------------

class PriceSchema(StrictSchema):
    model = _one_of(PRICE_MODELS, required=True)
    amount = StrictInteger(required=True, minimum=1, metadata={
        "description": "minor units (fen/cents), > 0; for `negotiable` the asking price talks start from"})
    currency = _one_of(PRICE_CURRENCIES, required=True)
    period = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(PRICE_PERIODS),
                           metadata={"description": "subscription only: month or year"})

    @validates_schema
    def _period(self, data: dict[str, Any], **kw: Any) -> None:
        if data.get("model") == "subscription" and data.get("period") is None:
            raise ValidationError("a subscription needs a period (month or year)", "period")
        if data.get("model") not in (None, "subscription") and data.get("period") is not None:
            raise ValidationError("only a subscription has a period", "period")


# OpenAPI 3.0 allows `nullable` only beside a `type`: a value of several types says so in a branch.
SAMPLE_CELL_OPENAPI = {"oneOf": [
    {"type": "string", "maxLength": MAX_CELL_LENGTH, "nullable": True, "description": "text, or null"},
    {"type": "number"},
    {"type": "boolean"},
]}


class SampleCell(fields.Field):
    """One value of a sample row: text, a number that JSON canonicalization can encode, a boolean, null."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("metadata", {}).update(SAMPLE_CELL_OPENAPI)
        super().__init__(**kw)

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None, **kw: Any) -> Any:
        # null is a value (documented in the oneOf above rather than by `allow_none`, which would
        # document a `nullable` without a `type`).
        if value is None:
            return None
        return super().deserialize(value, attr, data, **kw)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            if abs(value) > MAX_AMOUNT:
                raise ValidationError(f"integers in a sample must lie within ±{MAX_AMOUNT}")
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValidationError("numbers must be finite")
            return value
        if isinstance(value, str):
            if len(value) > MAX_CELL_LENGTH:
                raise ValidationError(f"values are at most {MAX_CELL_LENGTH} characters")
            if _CELL_CONTROL.search(value) or any("\ud800" <= ch <= "\udfff" for ch in value):
                raise ValidationError("control characters (including NUL) are not allowed")
            return value
        raise ValidationError("a sample value is text, a number, a boolean or null")


class SampleSchema(StrictSchema):
    columns = fields.List(Text(max_length=100), required=True,
                          validate=[validate.Length(min=1, max=MAX_SAMPLE_COLUMNS), _unique("column")])
    rows = fields.List(fields.List(SampleCell(), validate=validate.Length(max=MAX_SAMPLE_COLUMNS)), required=True,
                       validate=validate.Length(min=1, max=MAX_SAMPLE_ROWS),
                       metadata={"description": f"1..{MAX_SAMPLE_ROWS} rows, one value per column"})

    @validates_schema
    def _row_width(self, data: dict[str, Any], **kw: Any) -> None:
        width = len(data.get("columns") or [])
        for i, row in enumerate(data.get("rows") or []):
            if len(row) != width:
                raise ValidationError(f"row {i} has {len(row)} values; expected {width} (one per column)", "rows")


class LicenseSchema(StrictSchema):
    scope = _one_of(LICENSE_SCOPES, required=True)
    duration_days = StrictInteger(required=True, minimum=1, maximum=36500)
    resale_allowed = Boolean(required=True)


class DataSourceSchema(StrictSchema):
    type = _one_of(DATA_SOURCE_TYPES, required=True)
    description = Text(required=True, max_length=2000, multiline=True)


class CoverageSchema(StrictSchema):
    time_from = UTCDateTime(required=True)
    time_to = UTCDateTime(load_default=None, allow_none=True, metadata={"description": "null: still growing"})
    regions = fields.List(Text(max_length=100), required=True,
                          validate=[validate.Length(min=1, max=50), _unique("region")])

    @validates_schema
    def _window(self, data: dict[str, Any], **kw: Any) -> None:
        if data.get("time_to") is not None and data.get("time_from") and data["time_to"] < data["time_from"]:
            raise ValidationError("must not be before time_from", "time_to")


class PersonalInfoSchema(StrictSchema):
    subjects = StrictInteger(required=True, minimum=1, maximum=10_000_000_000,
                             metadata={"description": "individuals whose personal information the data covers"})
    sensitive = Boolean(required=True, metadata={"description": "sensitive personal information (PIPL Art. 28)"})


class VolumeSchema(StrictSchema):
    records = StrictInteger(minimum=0, load_default=None, allow_none=True)
    bytes = StrictInteger(minimum=0, load_default=None, allow_none=True)

    @validates_schema
    def _something(self, data: dict[str, Any], **kw: Any) -> None:
        if data.get("records") is None and data.get("bytes") is None:
            raise ValidationError("give records, bytes or both", "records")


def _product_fields(create: bool) -> dict[str, fields.Field]:
    """The body's fields: required on creation; on PATCH each optional (only the optional ones nullable)."""
    req: dict[str, Any] = {"required": True} if create else {}
    opt: dict[str, Any] = {"load_default": None, "allow_none": True} if create else {"allow_none": True}
    return {
        "title": Text(max_length=200, **req),
        "summary": Text(max_length=500, multiline=True, **req),
        "description": Text(max_length=20_000, multiline=True, **req),
        "category": _one_of(CATEGORIES, **req),
        "keywords": fields.List(Text(max_length=50), **req,
                                validate=[validate.Length(max=MAX_KEYWORDS), _unique("keyword")],
                                metadata={"description": f"at most {MAX_KEYWORDS}, each at most 50 characters"}),
        "data_format": _one_of(DATA_FORMATS, **req),
        "delivery_mode": _one_of(DELIVERY_MODES, **req),
        "classification": _one_of(CLASSIFICATIONS, **req),
        "contains_personal_info": Boolean(**req),
        "origin_region": _one_of(ORIGIN_REGIONS, **req),
        "update_frequency": _one_of(UPDATE_FREQUENCIES, **req),
        "price": fields.Nested(PriceSchema, **req),
        "sample": fields.Nested(SampleSchema, **opt),
        "license": fields.Nested(LicenseSchema, **req),
        "scenarios": fields.List(Text(max_length=200), **req,
                                 validate=[validate.Length(min=1, max=10), _unique("scenario")],
                                 metadata={"description": "1..10 application scenarios the product is registered for"}),
        "data_source": fields.Nested(DataSourceSchema, **req),
        "coverage": fields.Nested(CoverageSchema, **opt),
        "volume": fields.Nested(VolumeSchema, **opt),
        "personal_info": fields.Nested(
            PersonalInfoSchema, **({"load_default": None, "allow_none": True} if create else {"allow_none": True}),
            metadata={"description": "required when contains_personal_info is true, refused otherwise; decides "
                                     "the cross-border path (API.md Compliance)"}),
    }


ProductCreateSchema = StrictSchema.from_dict(_product_fields(create=True), name="ProductCreateSchema")


class ProductUpdateSchema(StrictSchema.from_dict(_product_fields(create=False), name="ProductUpdateFields")):  # type: ignore[misc]
    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kw: Any) -> None:
        if not data:
            raise ValidationError("send at least one field to change")


class ProductQueryArgsSchema(PaginationArgsSchema):
    q = Text(max_length=200, min_length=0, metadata={"description": "full text, Chinese and English"})
    category = _one_of(CATEGORIES)
    origin_region = _one_of(ORIGIN_REGIONS)
    delivery_mode = _one_of(DELIVERY_MODES)
    classification = _one_of(CLASSIFICATIONS)
    price_model = _one_of(PRICE_MODELS)
    currency = _one_of(PRICE_CURRENCIES)
    min_amount = fields.Integer(validate=validate.Range(min=0, max=MAX_AMOUNT))
    max_amount = fields.Integer(validate=validate.Range(min=0, max=MAX_AMOUNT))
    vendor_id = fields.String(validate=validate.Length(min=1, max=40))
    fair_id = fields.String(validate=validate.Length(min=1, max=40))
    sort = _one_of(SORTS, metadata={"description": "relevance (default with q, needs q) | newest | price_asc | "
                                                   "price_desc"})
    mine = fields.Boolean(load_default=False, metadata={"description": "the caller's own products, any status"})


# -- dump ------------------------------------------------------------------------------------------

class PriceOutSchema(Schema):
    model = fields.String()
    amount = fields.Integer()
    currency = fields.String()
    period = fields.String(allow_none=True)


class SampleOutSchema(Schema):
    columns = fields.List(fields.String())
    rows = fields.List(fields.List(fields.Raw(metadata=SAMPLE_CELL_OPENAPI)))


class LicenseOutSchema(Schema):
    scope = fields.String()
    duration_days = fields.Integer()
    resale_allowed = fields.Boolean()


class DataSourceOutSchema(Schema):
    type = fields.String()
    description = fields.String()


class CoverageOutSchema(Schema):
    time_from = fields.String()
    time_to = fields.String(allow_none=True)
    regions = fields.List(fields.String())


class VolumeOutSchema(Schema):
    records = fields.Integer(allow_none=True)
    bytes = fields.Integer(allow_none=True)


class PersonalInfoOutSchema(Schema):
    subjects = fields.Integer()
    sensitive = fields.Boolean()


class BodyOutSchema(Schema):
    title = fields.String()
    summary = fields.String()
    description = fields.String()
    category = fields.String()
    keywords = fields.List(fields.String())
    data_format = fields.String()
    delivery_mode = fields.String()
    classification = fields.String()
    contains_personal_info = fields.Boolean()
    origin_region = fields.String()
    update_frequency = fields.String()
    price = fields.Nested(PriceOutSchema)
    sample = fields.Nested(SampleOutSchema, allow_none=True)
    license = fields.Nested(LicenseOutSchema)
    scenarios = fields.List(fields.String())
    data_source = fields.Nested(DataSourceOutSchema)
    coverage = fields.Nested(CoverageOutSchema, allow_none=True)
    volume = fields.Nested(VolumeOutSchema, allow_none=True)
    personal_info = fields.Nested(PersonalInfoOutSchema, allow_none=True,
                                  metadata={"description": "null on a version certified before the field existed"})


class ProductSchema(BodyOutSchema):
    id = fields.String(dump_only=True)
    owner_org_id = fields.String()
    status = fields.String(metadata={"enum": [s.value for s in ProductStatus]})
    version = fields.Integer(metadata={"description": "the version shown: the listed one, else the newest"})
    version_status = fields.String(metadata={"enum": [s.value for s in VersionStatus]})
    latest_version = fields.Integer(metadata={"description": "owner and operators only: the newest revision"})
    certificate_number = fields.String(allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()
    listed_at = UTCDateTime(allow_none=True)
    relevance = fields.Float(metadata={"description": "with q: full-text relevance, higher is better"})

    @post_dump(pass_original=True)
    def _for_viewer(self, data: dict[str, Any], product: Any, **kw: Any) -> dict[str, Any]:
        if not hasattr(product, "product_id") and not can_manage(product, viewer()):
            data.pop("latest_version", None)
        return data


class ProductVersionSchema(BodyOutSchema):
    product_id = fields.String()
    version = fields.Integer()
    status = fields.String(metadata={"enum": [s.value for s in VersionStatus]})
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class ProductPatchResultSchema(ProductSchema):
    """A never-listed draft answers the product; a listed product answers its draft revision."""

    product_id = fields.String(metadata={"description": "present when the answer is a revision"})

    @post_dump(pass_original=True)
    def _as_revision(self, data: dict[str, Any], result: Any, **kw: Any) -> dict[str, Any]:
        if hasattr(result, "product_id"):  # a revision answers with a revision's fields only
            return {k: v for k, v in data.items() if k in REVISION_FIELDS}
        return data


REVISION_FIELDS = frozenset(ProductVersionSchema().fields)


class ProductTransitionSchema(Schema):
    subject = fields.String(metadata={"enum": ["product", "version"]})
    version = fields.Integer(allow_none=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    reason = fields.String(allow_none=True)
    actor_user_id = fields.String(allow_none=True)
    actor_org_id = fields.String(allow_none=True)
    at = UTCDateTime()


ProductPageSchema = page_schema(ProductSchema, "ProductPage")
ProductVersionPageSchema = page_schema(ProductVersionSchema, "ProductVersionPage")
ProductTransitionPageSchema = page_schema(ProductTransitionSchema, "ProductTransitionPage")


# -- fairs and stalls ------------------------------------------------------------------------------

class FairCreateSchema(StrictSchema):
    name = Text(required=True, max_length=200)
    venue = Text(required=True, max_length=200)
    starts_at = UTCDateTime(required=True)
    ends_at = UTCDateTime(required=True)


class FairListArgsSchema(PaginationArgsSchema):
    phase = _one_of(tuple(p.value for p in FairPhase))


FairVolumeSchema = money_sum_schema("FairVolumeSchema", (
    "The sum, in this currency, of the money that trades signed on site at this fair brought into "
    "escrow, less refunds."))


class FairStatsSchema(Schema):
    stalls = fields.Integer()
    products_on_show = fields.Integer()
    contracts_signed_on_site = fields.Integer(metadata={"description": "contracts signed on site, paid or not"})
    volume = fields.List(fields.Nested(FairVolumeSchema), metadata={
        "description": "per currency, never mixed; only money that reached escrow counts (an unpaid "
                       "contract adds nothing); a currency with none is left out"})


class FairSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String()
    venue = fields.String()
    starts_at = UTCDateTime()
    ends_at = UTCDateTime()
    phase = fields.String(metadata={"enum": [p.value for p in FairPhase]})
    created_at = UTCDateTime()
    stats = fields.Nested(FairStatsSchema)


class StallCreateSchema(StrictSchema):
    org_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    code = fields.String(required=True, validate=[validate.Length(min=1, max=20), validate.Regexp(
        STALL_CODE, error="1..20 letters, digits or '-', starting with a letter or digit")])
    product_ids = fields.List(fields.String(validate=validate.Length(min=1, max=40)), load_default=list,
                              validate=validate.Length(max=100))


class StallUpdateSchema(StrictSchema):
    product_ids = fields.List(fields.String(validate=validate.Length(min=1, max=40)), required=True,
                              validate=validate.Length(max=100))


class StallSchema(Schema):
    id = fields.String(dump_only=True)
    fair_id = fields.String()
    org_id = fields.String()
    code = fields.String()
    product_ids = fields.List(fields.String(), metadata={"description": "its products listed now"})
    created_at = UTCDateTime()


FairPageSchema = page_schema(FairSchema, "FairPage")
StallPageSchema = page_schema(StallSchema, "StallPage")


# -- OpenAPI examples (the request ones are accepted by the API as they stand, ids aside) ----------

EXAMPLE_VENDOR_ORG_ID = "org_0193a1f2c4d87e2b9c4d5e6f7a8b9c0d"
EXAMPLE_VENDOR_USER_ID = "usr_0193a1f2c4e91a2b3c4d5e6f7a8b9c0d"
EXAMPLE_OPERATOR_ORG_ID = "org_0193a1f0b2c31f2e3d4c5b6a79881726"
EXAMPLE_OPERATOR_USER_ID = "usr_0193a1f0b2d45a6b7c8d9e0f1a2b3c4d"
EXAMPLE_PRODUCT_ID = "prd_0193a1f3d5e62c7d8e9fa0b1c2d3e4f5"
EXAMPLE_PRODUCT_ID_2 = "prd_0193a1f3d6a70b1c2d3e4f5a6b7c8d9e"
EXAMPLE_CERTIFICATE_NUMBER = "DFX-2026-000042"
EXAMPLE_FAIR_ID = "fair_0193a1f5a1b24c5d6e7f8091a2b3c4d5"
EXAMPLE_STALL_ID = "stl_0193a1f5b3c45e6f708192a3b4c5d6e7"

PRODUCT_CREATE_EXAMPLE: dict[str, Any] = {
    "title": "广州市实时交通流量数据 Guangzhou real-time traffic flow",
    "summary": "全市主干道路段每5分钟的车流量、平均车速与拥堵指数 Flow, speed and congestion every 5 minutes",
    "description": "覆盖广州市11个区的主干道与快速路，数据来自地磁与视频检测器。\n"
                   "Covers arterial roads and expressways in all 11 districts of Guangzhou, from loop and "
                   "video detectors.",
    "category": "transport",
    "keywords": ["交通", "traffic", "拥堵指数"],
    "data_format": "csv",
    "delivery_mode": "api",
    "classification": "general",
    "contains_personal_info": False,
    "origin_region": "GD",
    "update_frequency": "realtime",
    "price": {"model": "subscription", "amount": 1250000, "currency": "CNY", "period": "month"},
    "sample": {"columns": ["road_id", "ts", "flow", "speed_kmh"],
               "rows": [["GZ-001", "2026-11-01T08:00:00Z", 1320, 32.5],
                        ["GZ-002", "2026-11-01T08:00:00Z", 980, 41.0]]},
    "license": {"scope": "commercial", "duration_days": 365, "resale_allowed": False},
    "scenarios": ["交通信号配时优化 traffic signal timing", "物流路径规划 logistics routing"],
    "data_source": {"type": "self_collected", "description": "地磁与视频检测器 loop and video detectors"},
    "coverage": {"time_from": "2024-01-01T00:00:00Z", "time_to": None, "regions": ["广州市"]},
    "volume": {"records": 52000000, "bytes": 8400000000},
}

PRODUCT_UPDATE_EXAMPLE: dict[str, Any] = {
    "summary": "全市主干道路段每5分钟的车流量与平均车速 Flow and speed every 5 minutes, now with expressways",
    "price": {"model": "subscription", "amount": 1180000, "currency": "CNY", "period": "month"},
    "keywords": ["交通", "traffic", "拥堵指数", "快速路"],
}


def product_example(**overrides: Any) -> dict[str, Any]:
    """A product as `ProductSchema` dumps it for its owner: a draft by default; overrides replace fields."""
    example = {
        **PRODUCT_CREATE_EXAMPLE,
        "id": EXAMPLE_PRODUCT_ID,
        "owner_org_id": EXAMPLE_VENDOR_ORG_ID,
        "status": "draft",
        "version": 1,
        "version_status": "draft",
        "latest_version": 1,
        "certificate_number": None,
        "created_at": "2026-11-20T02:15:04Z",
        "updated_at": "2026-11-20T02:15:04Z",
        "listed_at": None,
    }
    example.update(overrides)
    return example


PRODUCT_EXAMPLE = product_example()
LISTED_PRODUCT_EXAMPLE = {k: v for k, v in product_example(
    status="listed", version_status="certified", certificate_number=EXAMPLE_CERTIFICATE_NUMBER,
    updated_at="2026-11-27T09:30:12Z", listed_at="2026-11-27T09:30:12Z").items() if k != "latest_version"}
DELISTED_PRODUCT_EXAMPLE = product_example(
    status="delisted", version_status="certified", certificate_number=EXAMPLE_CERTIFICATE_NUMBER,
    updated_at="2026-12-01T10:02:45Z", listed_at="2026-11-27T09:30:12Z")


def revision_example(**overrides: Any) -> dict[str, Any]:
    """A revision as `ProductVersionSchema` dumps it."""
    example = {**PRODUCT_CREATE_EXAMPLE, "product_id": EXAMPLE_PRODUCT_ID, "version": 2, "status": "draft",
               "created_at": "2026-11-28T03:41:09Z", "updated_at": "2026-11-28T03:41:09Z"}
    example.update(overrides)
    return example


PRODUCT_REVISION_EXAMPLE = revision_example(**PRODUCT_UPDATE_EXAMPLE)
PRODUCT_UPDATE_RESPONSE_EXAMPLES = {
    "draft": {"summary": "A never-listed draft, edited in place: the product",
              "value": product_example(**PRODUCT_UPDATE_EXAMPLE, updated_at="2026-11-21T06:12:30Z")},
    "revision": {"summary": "A listed product: its draft revision `version+1`",
                 "value": PRODUCT_REVISION_EXAMPLE},
}
PRODUCT_PAGE_EXAMPLE = {"total": 1, "page": 1, "per_page": 20, "items": [{**LISTED_PRODUCT_EXAMPLE, "relevance": 0.42}]}
PRODUCT_VERSION_PAGE_EXAMPLE = {"total": 2, "page": 1, "per_page": 20, "items": [
    PRODUCT_REVISION_EXAMPLE,
    revision_example(version=1, status="certified", created_at="2026-11-20T02:15:04Z",
                     updated_at="2026-11-27T09:30:12Z"),
]}


def _transition(subject: str, version: int | None, from_status: str | None, to_status: str, reason: str,
                at: str, actor: bool = True) -> dict[str, Any]:
    return {"subject": subject, "version": version, "from_status": from_status, "to_status": to_status,
            "reason": reason, "actor_user_id": EXAMPLE_VENDOR_USER_ID if actor else None,
            "actor_org_id": EXAMPLE_VENDOR_ORG_ID if actor else None, "at": at}


PRODUCT_TRANSITION_PAGE_EXAMPLE = {"total": 6, "page": 1, "per_page": 20, "items": [
    _transition("product", None, None, "draft", "created", "2026-11-20T02:15:04Z"),
    _transition("version", 1, None, "draft", "created", "2026-11-20T02:15:04Z"),
    _transition("version", 1, "draft", "in_review", "submitted for certification", "2026-11-20T02:20:31Z"),
    _transition("product", None, "draft", "in_review", "submitted for certification", "2026-11-20T02:20:31Z"),
    _transition("version", 1, "in_review", "certified", f"certified: certificate {EXAMPLE_CERTIFICATE_NUMBER}",
                "2026-11-27T09:30:12Z", actor=False),
    _transition("product", None, "in_review", "listed", f"certified: certificate {EXAMPLE_CERTIFICATE_NUMBER}",
                "2026-11-27T09:30:12Z", actor=False),
]}

FAIR_CREATE_EXAMPLE = {
    "name": "2027 广州数据交易会 Guangzhou Data Fair 2027",
    "venue": "广州琶洲国际会展中心 Pazhou Convention Center, Guangzhou",
    "starts_at": "2027-03-15T01:00:00Z",
    "ends_at": "2027-03-17T09:00:00Z",
}
FAIR_EXAMPLE = {
    **FAIR_CREATE_EXAMPLE,
    "id": EXAMPLE_FAIR_ID,
    "phase": "upcoming",
    "created_at": "2026-11-18T08:00:00Z",
    "stats": {"stalls": 0, "products_on_show": 0, "contracts_signed_on_site": 0, "volume": []},
}
LIVE_FAIR_EXAMPLE = {
    **FAIR_EXAMPLE, "phase": "live",
    "stats": {"stalls": 12, "products_on_show": 31, "contracts_signed_on_site": 4,
              "volume": [{"currency": "CNY", "amount": 4800000}, {"currency": "HKD", "amount": 1500000}]},
}
FAIR_PAGE_EXAMPLE = {"total": 1, "page": 1, "per_page": 20, "items": [LIVE_FAIR_EXAMPLE]}
STALL_CREATE_EXAMPLE = {"org_id": EXAMPLE_VENDOR_ORG_ID, "code": "A-01", "product_ids": [EXAMPLE_PRODUCT_ID]}
STALL_UPDATE_EXAMPLE = {"product_ids": [EXAMPLE_PRODUCT_ID, EXAMPLE_PRODUCT_ID_2]}
STALL_EXAMPLE = {"id": EXAMPLE_STALL_ID, "fair_id": EXAMPLE_FAIR_ID, "org_id": EXAMPLE_VENDOR_ORG_ID, "code": "A-01",
                 "product_ids": [EXAMPLE_PRODUCT_ID], "created_at": "2026-11-18T08:30:00Z"}
STALL_UPDATED_EXAMPLE = {**STALL_EXAMPLE, "product_ids": [EXAMPLE_PRODUCT_ID, EXAMPLE_PRODUCT_ID_2]}
STALL_PAGE_EXAMPLE = {"total": 1, "page": 1, "per_page": 20, "items": [STALL_EXAMPLE]}
