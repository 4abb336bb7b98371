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
from listings.schemas import (
    EXAMPLE_CERTIFICATE_NUMBER,
    EXAMPLE_OPERATOR_ORG_ID,
    EXAMPLE_OPERATOR_USER_ID,
    EXAMPLE_PRODUCT_ID,
    EXAMPLE_VENDOR_ORG_ID,
    EXAMPLE_VENDOR_USER_ID,
    PRODUCT_CREATE_EXAMPLE,
)
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
        # OpenAPI 3.0 allows `nullable` only beside a `type`: null is documented in a branch, not by
        # `allow_none` (see `deserialize`).
        kw.setdefault("metadata", {}).update(oneOf=[
            {"type": "boolean"}, {"type": "number"},
            {"type": "string", "maxLength": self.MAX_TEXT, "nullable": True, "description": "text, or null"}])
        super().__init__(**kw)

    def deserialize(self, value: Any, attr: str | None = None, data: Any = None, **kw: Any) -> Any:
        if value is None:
            return None
        return super().deserialize(value, attr, data, **kw)

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
    checklist = fields.Dict(keys=Text(max_length=100), values=ChecklistValue(),
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



# -- OpenAPI examples (the request ones are accepted by the API as they stand, ids aside) ----------

EXAMPLE_CERTIFICATION_ID = "cer_0193a1f3e1f24a5b6c7d8e9f0a1b2c3d"
EXAMPLE_OBJECTION_ID = "obj_0193a1f4a2b35c6d7e8f9a0b1c2d3e4f"
EXAMPLE_ASSESSOR_ORG_ID = "org_0193a1f1c3d46e7f8091a2b3c4d5e6f7"
EXAMPLE_ASSESSOR_USER_ID = "usr_0193a1f1c3e5708192a3b4c5d6e7f809"
EXAMPLE_RIVAL_ORG_ID = "org_0193a1f2d5f6819a2b3c4d5e6f708192"
EXAMPLE_RIVAL_USER_ID = "usr_0193a1f2d6078a9b0c1d2e3f40516273"
EXAMPLE_OPERATOR_2_USER_ID = "usr_0193a1f0b3e67b8c9d0e1f2a3b4c5d6e"
EXAMPLE_WHITELIST_ENTRY_ID = "wl_0193a1f6c4d57e8f9a0b1c2d3e4f5a6b"
EXAMPLE_RECIPIENT_ORG_ID = "org_0193a1f2e7a89b0c1d2e3f4a5b6c7d8e"

DOCUMENT_EXAMPLE = {"name": "数据来源授权书 data-source-licence.pdf",
                    "sha256": "5fe69b720c1120a060899f954ab38a34134629d23b48a51803da9de75dff6f55"}
CERTIFICATION_CREATE_EXAMPLE = {"product_id": EXAMPLE_PRODUCT_ID, "documents": [DOCUMENT_EXAMPLE]}
RESUBMIT_EXAMPLE = {"documents": [DOCUMENT_EXAMPLE, {
    "name": "样本数据说明 v2 sample notes v2.pdf",
    "sha256": "908eff238533005f7037a0210dd88885dfd6fa282bcfe649ab2e827989bc2d4a"}]}
ASSIGNMENT_EXAMPLE = {"stage": "quality", "assessor_org_id": EXAMPLE_ASSESSOR_ORG_ID}
REVIEW_EXAMPLES = {
    "compliance": {"summary": "An operator approves the compliance stage", "value": {
        "stage": "compliance", "decision": "approve",
        "comment": "无个人信息，分级为一般数据 No personal information; general classification confirmed.",
        "checklist": {"classification_confirmed": True, "personal_info_absent": True,
                      "cross_border_rules": "mainland only"}}},
    "quality": {"summary": "The assigned assessor approves the quality stage", "value": {
        "stage": "quality", "decision": "approve",
        "comment": "样本与描述一致 The sample matches the description.",
        "checklist": {"sample_checked": True, "missing_values_pct": 0.4, "rows_checked": 2}}},
    "ownership": {"summary": "An operator asks for changes at the ownership stage", "value": {
        "stage": "ownership", "decision": "request_changes",
        "comment": "请补充检测器数据的采集授权 Please add the licence for the detector data.",
        "checklist": {"licence_attached": False}}},
}
OBJECTION_CREATE_EXAMPLE = {
    "reason": "该数据集包含我方拥有的路段检测数据 The dataset includes detector counts we own.",
    "evidence": "2023年数据采集合同第4条 Clause 4 of the 2023 data collection contract, ref. GZT-2023-117",
}
RESOLUTION_EXAMPLES = {
    "dismiss": {"summary": "Dismiss: the notice ends normally", "value": {
        "upheld": False, "comment": "供应商已提供完整授权 The vendor holds a complete licence."}},
    "uphold": {"summary": "Uphold: the product goes back for changes", "value": {
        "upheld": True, "comment": "需补充授权 The licence for these roads is missing."}},
}
CERTIFICATE_ACTION_EXAMPLES = {
    "suspend": {"reason": "数据源授权争议，暂停待查 Licence dispute under investigation"},
    "reinstate": {"reason": "授权争议已解决 Licence dispute settled"},
    "revoke": {"reason": "数据源授权已终止 The data source licence was terminated"},
}
WHITELIST_CREATE_EXAMPLE = {
    "category": "finance",
    "from_region": "HK",
    "to_region": "GD",
    "max_classification": "important",
    "personal_info_allowed": False,
    "recipient_org_id": EXAMPLE_RECIPIENT_ORG_ID,
    "expires_at": "2027-12-31T16:00:00Z",
    "note": "粤港跨境金融数据试点 GBA cross-border finance pilot",
}


def _stage(name: str, status: str = "pending", assessor: str | None = None, approvals: int = 0) -> dict[str, Any]:
    return {"name": name, "status": status, "assessor_org_id": assessor, "approvals": approvals}


def _event(action: str, at: str, *, user: str = EXAMPLE_OPERATOR_USER_ID, org: str = EXAMPLE_OPERATOR_ORG_ID,
           stage: str | None = None, decision: str | None = None, comment: str | None = None,
           checklist: dict[str, Any] | None = None, round: int = 1) -> dict[str, Any]:
    return {"actor_user_id": user, "actor_org_id": org, "action": action, "stage": stage, "decision": decision,
            "comment": comment, "checklist": checklist, "at": at, "round": round, "product_version": 1}


_SUBMITTED = _event("submitted", "2026-11-20T02:20:31Z", user=EXAMPLE_VENDOR_USER_ID, org=EXAMPLE_VENDOR_ORG_ID,
                    comment="1 document(s)")
_STARTED = _event("review_started", "2026-11-21T01:05:12Z")
_ASSIGNED = _event("assigned", "2026-11-21T01:05:12Z", stage="quality", comment=f"assessor {EXAMPLE_ASSESSOR_ORG_ID}")
_QUALITY = _event("review", "2026-11-22T07:45:00Z", user=EXAMPLE_ASSESSOR_USER_ID, org=EXAMPLE_ASSESSOR_ORG_ID,
                  stage="quality", decision="approve", comment=REVIEW_EXAMPLES["quality"]["value"]["comment"],
                  checklist=REVIEW_EXAMPLES["quality"]["value"]["checklist"])


def certification_example(**overrides: Any) -> dict[str, Any]:
    """A certification as `CertificationSchema` dumps it for those involved: just submitted by default."""
    example = {
        "id": EXAMPLE_CERTIFICATION_ID,
        "product_id": EXAMPLE_PRODUCT_ID,
        "product_version": 1,
        "owner_org_id": EXAMPLE_VENDOR_ORG_ID,
        "product": {**PRODUCT_CREATE_EXAMPLE, "product_id": EXAMPLE_PRODUCT_ID, "version": 1},
        "status": "submitted",
        "round": 1,
        "documents": [DOCUMENT_EXAMPLE],
        "stages": [_stage("compliance"), _stage("quality"), _stage("ownership")],
        "history": [_SUBMITTED],
        "objections": [],
        "notice_ends_at": None,
        "certificate_number": None,
        "created_at": "2026-11-20T02:20:31Z",
        "updated_at": "2026-11-20T02:20:31Z",
    }
    example.update(overrides)
    return example


CERTIFICATION_EXAMPLE = certification_example()
ASSIGNED_CERTIFICATION_EXAMPLE = certification_example(
    status="in_review", updated_at="2026-11-21T01:05:12Z",
    stages=[_stage("compliance"), _stage("quality", assessor=EXAMPLE_ASSESSOR_ORG_ID), _stage("ownership")],
    history=[_SUBMITTED, _STARTED, _ASSIGNED])
REVIEWED_CERTIFICATION_EXAMPLES = {
    "approved_stage": {"summary": "A stage approved; others still pending", "value": certification_example(
        status="in_review", updated_at="2026-11-22T07:45:00Z",
        stages=[_stage("compliance"), _stage("quality", "approved", EXAMPLE_ASSESSOR_ORG_ID, 1), _stage("ownership")],
        history=[_SUBMITTED, _STARTED, _ASSIGNED, _QUALITY])},
    "changes_requested": {"summary": "Changes requested: the revision is back with its vendor",
                          "value": certification_example(
        status="changes_requested", updated_at="2026-11-23T03:10:00Z",
        stages=[_stage("compliance"), _stage("quality", "approved", EXAMPLE_ASSESSOR_ORG_ID, 1),
                _stage("ownership", "changes_requested")],
        history=[_SUBMITTED, _STARTED, _ASSIGNED, _QUALITY,
                 _event("review", "2026-11-23T03:10:00Z", stage="ownership", decision="request_changes",
                        comment=REVIEW_EXAMPLES["ownership"]["value"]["comment"],
                        checklist=REVIEW_EXAMPLES["ownership"]["value"]["checklist"]),
                 _event("changes_requested", "2026-11-23T03:10:00Z", stage="ownership", decision="request_changes",
                        comment=REVIEW_EXAMPLES["ownership"]["value"]["comment"])])},
}
_CHANGES = REVIEWED_CERTIFICATION_EXAMPLES["changes_requested"]["value"]
RESUBMITTED_CERTIFICATION_EXAMPLE = certification_example(
    status="in_review", round=2, updated_at="2026-11-24T02:00:00Z", documents=RESUBMIT_EXAMPLE["documents"],
    stages=[_stage("compliance"), _stage("quality", "approved", EXAMPLE_ASSESSOR_ORG_ID, 1), _stage("ownership")],
    history=[*_CHANGES["history"],
             _event("resubmitted", "2026-11-24T02:00:00Z", user=EXAMPLE_VENDOR_USER_ID, org=EXAMPLE_VENDOR_ORG_ID,
                    comment="version 1; kept approved: quality", round=2)])
WITHDRAWN_CERTIFICATION_EXAMPLE = certification_example(
    status="withdrawn", updated_at="2026-11-21T09:00:00Z",
    history=[_SUBMITTED, _event("withdrawn", "2026-11-21T09:00:00Z", user=EXAMPLE_VENDOR_USER_ID,
                                org=EXAMPLE_VENDOR_ORG_ID)])
_APPROVED_STAGES = [_stage("compliance", "approved", None, 1),
                    _stage("quality", "approved", EXAMPLE_ASSESSOR_ORG_ID, 1), _stage("ownership", "approved", None, 1)]
NOTICE_CERTIFICATION_EXAMPLE = certification_example(
    status="public_notice", updated_at="2026-11-25T04:00:00Z", notice_ends_at="2026-11-30T04:00:00Z",
    stages=_APPROVED_STAGES,
    history=[_SUBMITTED, _STARTED, _ASSIGNED, _QUALITY,
             _event("review", "2026-11-25T03:30:00Z", stage="ownership", decision="approve",
                    comment="授权齐全 Licence complete."),
             _event("review", "2026-11-25T04:00:00Z", user=EXAMPLE_OPERATOR_2_USER_ID, stage="compliance",
                    decision="approve", comment=REVIEW_EXAMPLES["compliance"]["value"]["comment"],
                    checklist=REVIEW_EXAMPLES["compliance"]["value"]["checklist"]),
             _event("public_notice", "2026-11-25T04:00:00Z", user=EXAMPLE_OPERATOR_2_USER_ID,
                    comment="notice until 2026-11-30T04:00:00+00:00")],
    objections=[{"id": EXAMPLE_OBJECTION_ID, "org_id": EXAMPLE_RIVAL_ORG_ID,
                 "reason": OBJECTION_CREATE_EXAMPLE["reason"], "status": "open",
                 "created_at": "2026-11-26T08:12:40Z"}])
CERTIFICATION_PAGE_EXAMPLE = {"total": 1, "page": 1, "per_page": 20, "items": [{
    k: NOTICE_CERTIFICATION_EXAMPLE[k] for k in (
        "id", "product_id", "product_version", "owner_org_id", "status", "round", "notice_ends_at",
        "certificate_number", "created_at")}]}

OBJECTION_EXAMPLE = {
    "id": EXAMPLE_OBJECTION_ID,
    "certification_id": EXAMPLE_CERTIFICATION_ID,
    "org_id": EXAMPLE_RIVAL_ORG_ID,
    "user_id": EXAMPLE_RIVAL_USER_ID,
    **OBJECTION_CREATE_EXAMPLE,
    "status": "open",
    "resolution_comment": None,
    "resolved_by": None,
    "resolved_at": None,
    "created_at": "2026-11-26T08:12:40Z",
}
RESOLVED_OBJECTION_EXAMPLE = {**OBJECTION_EXAMPLE, "status": "dismissed",
                              "resolution_comment": RESOLUTION_EXAMPLES["dismiss"]["value"]["comment"],
                              "resolved_by": EXAMPLE_OPERATOR_USER_ID, "resolved_at": "2026-11-28T02:00:00Z"}

CERTIFICATE_EXAMPLE = {
    "number": EXAMPLE_CERTIFICATE_NUMBER,
    "product_id": EXAMPLE_PRODUCT_ID,
    "product_version": 1,
    "vendor_org_id": EXAMPLE_VENDOR_ORG_ID,
    "issued_at": "2026-11-27T09:30:12Z",
    "expires_at": "2027-11-27T09:30:12Z",
    "status": "valid",
    "status_reason": None,
    "digest": "8c0db7a1f2ac657de72af33ebe1e29ef1089e9fd790dc6fb5fdbe47cce8712b8",
    "key_id": "dfx-2026-e8a1c71c",
    "signature": "SoLikkBeIpfjry8/MVUC4+NkarbkDCdfiN/hcqtJn7G4Q5d5msvCIIX9JHhOhFL3ugckXfTqxsrxZ2fPazEnAw==",
    "verification": {"signature_valid": True, "digest_matches": True},
}
CERTIFICATE_ACTION_RESPONSE_EXAMPLES = {
    action: {**CERTIFICATE_EXAMPLE, "status": status, "status_reason": CERTIFICATE_ACTION_EXAMPLES[action]["reason"]}
    for action, status in (("suspend", "suspended"), ("reinstate", "valid"), ("revoke", "revoked"))
}

WHITELIST_EXAMPLE = {"id": EXAMPLE_WHITELIST_ENTRY_ID, **WHITELIST_CREATE_EXAMPLE,
                     "created_at": "2026-11-19T06:00:00Z", "deleted_at": None}
DELETED_WHITELIST_EXAMPLE = {**WHITELIST_EXAMPLE, "deleted_at": "2026-12-01T03:15:00Z"}
WHITELIST_PAGE_EXAMPLE = {"total": 1, "page": 1, "per_page": 20, "items": [WHITELIST_EXAMPLE]}


# -- the rights register (API.md Compliance) --------------------------------------------------------
class RegistrationSchema(Schema):
    number = fields.String(metadata={"description": "DRR-YYYY-NNNNNN, gapless per UTC year"})
    type = fields.String(metadata={"enum": ["initial", "licence", "change", "cancellation"]})
    product_id = fields.String()
    product_version = fields.Integer()
    holder_org_id = fields.String()
    rights = fields.List(fields.String(metadata={"enum": ["holding", "processing", "operation"]}))
    scope = fields.String(allow_none=True, metadata={"description": "a licence's scope (the contract's)"})
    valid_from = SignedTime(metadata={"description": "exactly as signed"})
    valid_to = SignedTime(allow_none=True, metadata={"description": "exactly as signed; null: open-ended"})
    contract_id = fields.String(allow_none=True)
    cancels = fields.String(allow_none=True, metadata={
        "description": "a cancellation: the number of the registration it ends (covered by the signature)"})
    registered_at = SignedTime(metadata={"description": "exactly as signed"})
    digest = fields.String(metadata={"description": "sha256 hex of the RFC 8785 JSON of every field but digest, "
                                                    "key_id and signature (and verification)"})
    key_id = fields.String()
    signature = fields.String(metadata={"description": "the exchange's Ed25519 over the RFC 8785 JSON of every "
                                                       "field but signature (and verification), base64"})


class VerifiedRegistrationSchema(RegistrationSchema):
    verification = fields.Nested(VerificationSchema, metadata={
        "description": "recomputed on every read; not part of what is signed"})


RegistrationPageSchema = page_schema(RegistrationSchema, "RegistrationPage")

REGISTRATION_EXAMPLE = {
    "number": "DRR-2026-000042",
    "type": "initial",
    "product_id": "prd_0193a4c2e1f1a2b3c4d5e6f708192a3b",
    "product_version": 1,
    "holder_org_id": "org_0193a4c2e1f1a2b3c4d5e6f708192a3c",
    "rights": ["holding", "processing", "operation"],
    "scope": None,
    "valid_from": "2026-12-02T08:00:00Z",
    "valid_to": "2027-12-02T08:00:00Z",
    "contract_id": None,
    "cancels": None,
    "registered_at": "2026-12-02T08:00:00Z",
    "digest": "3f1c0e4d1b2a39485766f5e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0a",
    "key_id": "exk_2026a",
    "signature": "kq0l3V2c3YkRmZC1iYXNlNjQtc2lnbmF0dXJlLWV4YW1wbGUtMDAwMDAwMDAwMDAwMDA=",
    "verification": {"signature_valid": True, "digest_matches": True},
}
