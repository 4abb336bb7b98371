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


class SampleCell(fields.Field):
    """One value of a sample row: text, a number that JSON canonicalization can encode, a boolean, null."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(allow_none=True, **kw)

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
    rows = fields.List(fields.List(fields.Raw(allow_none=True)))


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
