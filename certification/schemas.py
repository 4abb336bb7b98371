"""Marshmallow schemas of certification, certificates, objections and the white list."""

from __future__ import annotations

import math
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_dump, validate

from certification.services import involved
from certification.states import STAGES, CertificationStatus, Decision
from exchange.fields import (
    Boolean,
    PaginationArgsSchema,
    StrictSchema,
    Text,
    UTCDateTime,
    iso_z,
    page_schema,
)
from exchange.identity.states import REGIONS
from exchange.money import MAX_AMOUNT
from exchange.principal import viewer
from listings.states import CATEGORIES

SHA256 = validate.Regexp(r"^[0-9a-f]{64}$", error="must be 64 lowercase hex characters (sha256)")


class DocumentSchema(StrictSchema):
    name = Text(required=True, max_length=200)
    sha256 = fields.String(required=True, validate=[validate.Length(equal=64), SHA256])


class CertificationCreateSchema(StrictSchema):
    product_id = fields.String(required=True, validate=validate.Length(min=1, max=40))
    documents = fields.List(fields.Nested(DocumentSchema), load_default=list, validate=validate.Length(max=50))


class ResubmitSchema(StrictSchema):
    documents = fields.List(fields.Nested(DocumentSchema), validate=validate.Length(max=50))


class AssignmentSchema(StrictSchema):
    stage = fields.String(required=True, validate=validate.OneOf([s.value for s in STAGES]))
    assessor_org_id = fields.String(required=True, validate=validate.Length(min=1, max=40))


class ChecklistValue(fields.Raw):
    """One answer of a review checklist: null, a boolean, a finite number or a short text (never a
    nested document: the history shows it to everyone involved)."""

    MAX_TEXT = 1000

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("metadata", {}).update(
            oneOf=[{"type": "boolean"}, {"type": "number"}, {"type": "string", "maxLength": self.MAX_TEXT}])
        super().__init__(**kw)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int) and abs(value) <= MAX_AMOUNT:
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        if isinstance(value, str):
            return Text(max_length=self.MAX_TEXT, min_length=0, multiline=True).deserialize(value)
        raise ValidationError(f"must be null, a boolean, a number up to 2^53-1 or a text of at most "
                              f"{self.MAX_TEXT} characters")


class ReviewSchema(StrictSchema):
    stage = fields.String(required=True, validate=validate.OneOf([s.value for s in STAGES]))
    decision = fields.String(required=True, validate=validate.OneOf([d.value for d in Decision]))
    comment = Text(max_length=4000, multiline=True, allow_none=True)
    checklist = fields.Dict(keys=Text(max_length=100), values=ChecklistValue(allow_none=True),
                            validate=validate.Length(max=50), metadata={"maxProperties": 50})


class ObjectionCreateSchema(StrictSchema):
    reason = Text(required=True, max_length=4000, multiline=True)
    evidence = Text(max_length=8000, multiline=True, allow_none=True)


class ResolutionSchema(StrictSchema):
    upheld = Boolean(required=True)
    comment = Text(max_length=4000, multiline=True, allow_none=True)


class CertificationListArgsSchema(PaginationArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in CertificationStatus]))


class Count(fields.Integer):
    """How many items a list attribute holds (None counts none)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kw: Any) -> int:
        return len(value or [])


class SignedTime(fields.String):
    """A time exactly as signed (`iso_z`)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kw: Any) -> str | None:
        return None if value is None else iso_z(value)


class StageSchema(Schema):
    name = fields.String()
    status = fields.String()
    assessor_org_id = fields.String(allow_none=True)
    approvals = Count()


class HistorySchema(Schema):
    actor_user_id = fields.String(allow_none=True)
    actor_org_id = fields.String(allow_none=True)
    action = fields.String()
    stage = fields.String(allow_none=True)
    decision = fields.String(allow_none=True)
    comment = fields.String(allow_none=True)
    checklist = fields.Dict(allow_none=True)
    at = UTCDateTime()
    round = fields.Integer()
    product_version = fields.Integer(allow_none=True)


class ObjectionBriefSchema(Schema):
    id = fields.String()
    org_id = fields.String()
    reason = fields.String()
    status = fields.String()
    created_at = UTCDateTime()


class CertificationSchema(Schema):
    id = fields.String()
    product_id = fields.String()
    product_version = fields.Integer()
    owner_org_id = fields.String()
    product = fields.Dict(metadata={"description": "the product revision under review, as stored"})
    status = fields.String()
    round = fields.Integer()
    documents = fields.List(fields.Dict())
    stages = fields.List(fields.Nested(StageSchema))
    history = fields.List(fields.Nested(HistorySchema))
    objections = fields.List(fields.Nested(ObjectionBriefSchema))
    notice_ends_at = UTCDateTime(allow_none=True)
    certificate_number = fields.String(allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()

    @post_dump(pass_original=True)
    def _for_viewer(self, data: dict[str, Any], cert: Any, **kw: Any) -> dict[str, Any]:
        # The public sees what is under notice, not the review file: other organizations' objections,
        # the vendor's documents and the reviewers' comments stay with those involved.
        who = viewer()
        if not involved(cert, who):
            data["documents"] = []
            data["history"] = []
            data["objections"] = [o for o in data["objections"] if who is not None and o["org_id"] == who.org_id]
        return data


class CertificationBriefSchema(Schema):
    id = fields.String()
    product_id = fields.String()
    product_version = fields.Integer()
    owner_org_id = fields.String()
    status = fields.String()
    round = fields.Integer()
    notice_ends_at = UTCDateTime(allow_none=True)
    certificate_number = fields.String(allow_none=True)
    created_at = UTCDateTime()


class ObjectionSchema(Schema):
    id = fields.String()
    certification_id = fields.String()
    org_id = fields.String()
    user_id = fields.String()
    reason = fields.String()
    evidence = fields.String(allow_none=True)
    status = fields.String()
    resolution_comment = fields.String(allow_none=True)
    resolved_by = fields.String(allow_none=True)
    resolved_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()


class VerificationSchema(Schema):
    signature_valid = fields.Boolean()
    digest_matches = fields.Boolean()


class CertificateSchema(Schema):
    number = fields.String()
    product_id = fields.String()
    product_version = fields.Integer()
    vendor_org_id = fields.String()
    issued_at = SignedTime(metadata={"description": "exactly as signed"})
    expires_at = SignedTime(metadata={"description": "exactly as signed"})
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    digest = fields.String()
    key_id = fields.String()
    signature = fields.String()
    verification = fields.Nested(VerificationSchema)


class WhitelistCreateSchema(StrictSchema):
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    from_region = fields.String(required=True, validate=validate.OneOf(REGIONS))
    to_region = fields.String(required=True, validate=validate.OneOf(REGIONS))
    max_classification = fields.String(required=True, validate=validate.OneOf(("general", "important", "core")))
    personal_info_allowed = Boolean(load_default=False)
    recipient_org_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=40))
    expires_at = UTCDateTime(required=True)
    note = Text(max_length=2000, multiline=True, allow_none=True)


class WhitelistSchema(Schema):
    id = fields.String()
    category = fields.String()
    from_region = fields.String()
    to_region = fields.String()
    max_classification = fields.String()
    personal_info_allowed = fields.Boolean()
    recipient_org_id = fields.String(allow_none=True)
    expires_at = UTCDateTime()
    note = fields.String(allow_none=True)
    created_at = UTCDateTime()
    deleted_at = UTCDateTime(allow_none=True)


class WhitelistArgsSchema(PaginationArgsSchema):
    include_expired = fields.Boolean(load_default=False)


CertificationPageSchema = page_schema(CertificationBriefSchema, "CertificationPage")
WhitelistPageSchema = page_schema(WhitelistSchema, "WhitelistPage")
