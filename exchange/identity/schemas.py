"""Marshmallow schemas of the kernel's endpoints (identity, auth, audit, health)."""

from __future__ import annotations

from marshmallow import Schema, fields, post_dump, validate

from exchange.fields import Boolean, PaginationArgsSchema, PublicURL, StrictSchema, Text, UTCDateTime, page_schema
from exchange.identity.services import PRIVATE_ORG_FIELDS, can_see_private
from exchange.identity.states import ORG_TYPES, REGIONS, ROLES, SELF_REGISTERED_TYPES, OrgStatus
from exchange.principal import viewer

ORG_STATUSES = tuple(s.value for s in OrgStatus)
Email = lambda **kw: fields.Email(validate=validate.Length(max=254), **kw)  # noqa: E731


class AdminUserCreateSchema(StrictSchema):
    email = Email(required=True)
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=12, max=256))
    name = Text(required=True, max_length=200)


class OrganizationCreateSchema(StrictSchema):
    name = Text(required=True, max_length=200)
    type = fields.String(required=True, validate=validate.OneOf(SELF_REGISTERED_TYPES))
    region = fields.String(required=True, validate=validate.OneOf(REGIONS))
    registration_number = Text(required=True, max_length=64)
    admin = fields.Nested(AdminUserCreateSchema, required=True)


class OrganizationUpdateSchema(StrictSchema):
    display_name = Text(max_length=200, allow_none=True)
    contact_email = Email(allow_none=True)
    website = PublicURL(allow_none=True)
    # Operators only (the service refuses them to everyone else with 403).
    type = fields.String(validate=validate.OneOf(ORG_TYPES))
    region = fields.String(validate=validate.OneOf(REGIONS))
    status = fields.String(validate=validate.OneOf(ORG_STATUSES))
    stripe_account_id = fields.String(allow_none=True, validate=[validate.Length(max=95),
                                                                  validate.Regexp(r"^acct_[A-Za-z0-9]{1,90}$")])


class OrganizationSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String()
    display_name = fields.String(allow_none=True)
    type = fields.String()
    region = fields.String()
    registration_number = fields.String()
    status = fields.String()
    website = fields.String(allow_none=True)
    created_at = UTCDateTime()
    contact_email = fields.String(allow_none=True, metadata={"description": "own organization and operators"})
    stripe_account_id = fields.String(allow_none=True, metadata={"description": "own organization and operators"})
    status_reason = fields.String(allow_none=True, metadata={"description": "own organization and operators"})
    status_changed_at = UTCDateTime(allow_none=True)

    @post_dump(pass_original=True)
    def _for_viewer(self, data: dict, org: object, **kw: object) -> dict:
        """Private fields only for the organization's members and operators; a field the object
        blanks (`Facts(org, blanked=(...))`) is shown as null to anyone."""
        blanked = getattr(org, "blanked", ())
        private = can_see_private(org, viewer())
        for name in PRIVATE_ORG_FIELDS:
            if name in blanked:
                data[name] = None
            elif not private:
                data.pop(name, None)
        return data


class OrganizationListArgsSchema(PaginationArgsSchema):
    status = fields.String(validate=validate.OneOf(ORG_STATUSES))
    type = fields.String(validate=validate.OneOf(ORG_TYPES))


class UserSchema(Schema):
    id = fields.String(dump_only=True)
    email = fields.String()
    name = fields.String()
    role = fields.String()
    org_id = fields.String()
    created_at = UTCDateTime()


class MemberCreateSchema(StrictSchema):
    email = Email(required=True)
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=12, max=256))
    name = Text(required=True, max_length=200)
    role = fields.String(load_default="member", validate=validate.OneOf(ROLES))


class KeyCreateSchema(StrictSchema):
    public_key = fields.String(required=True, validate=validate.Length(min=1, max=100),
                               metadata={"description": "base64 of the raw 32-byte Ed25519 public key"})
    label = Text(max_length=200, allow_none=True)


class KeySchema(Schema):
    key_id = fields.String()
    org_id = fields.String()
    public_key = fields.String()
    label = fields.String(allow_none=True)
    algorithm = fields.Constant("Ed25519")
    created_at = UTCDateTime()
    revoked_at = UTCDateTime(allow_none=True)


class StatusChangeSchema(StrictSchema):
    reason = Text(required=True, max_length=2000, multiline=True)


class LoginSchema(StrictSchema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class RefreshSchema(StrictSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class LogoutSchema(StrictSchema):
    refresh_token = fields.String(validate=validate.Length(min=1, max=200),
                                  metadata={"description": "the refresh token whose family to revoke"})
    all_sessions = Boolean(load_default=False)


class TokenPairSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)


class MeSchema(Schema):
    user = fields.Nested(UserSchema)
    organization = fields.Nested(OrganizationSchema)
    role = fields.String()


class HealthSchema(Schema):
    status = fields.String(required=True)
    database = fields.String(required=True)


class ReadinessSchema(Schema):
    status = fields.String(required=True)
    database = fields.String(required=True)
    redis = fields.String(required=True, metadata={"description": "ok, unreachable or not configured"})


class AuditArgsSchema(PaginationArgsSchema):
    actor_org_id = fields.String(validate=validate.Length(max=40))
    object_id = fields.String(validate=validate.Length(max=80))
    action = fields.String(validate=validate.Length(max=80))


class AuditEventSchema(Schema):
    id = fields.Integer()
    at = UTCDateTime()
    actor_user_id = fields.String(allow_none=True)
    actor_org_id = fields.String(allow_none=True)
    action = fields.String()
    object_type = fields.String()
    object_id = fields.String()
    detail = fields.Dict()


class JWKSchema(Schema):
    kty = fields.String(required=True, metadata={"example": "OKP"})
    crv = fields.String(required=True, metadata={"example": "Ed25519"})
    x = fields.String(required=True, metadata={"description": "raw public key, base64url without padding"})
    kid = fields.String(required=True, metadata={"example": "dfx-2026-1a2b3c4d"})
    use = fields.String(required=True, metadata={"example": "sig"})
    alg = fields.String(required=True, metadata={"example": "EdDSA"})


class JWKSetSchema(Schema):
    keys = fields.List(fields.Nested(JWKSchema), required=True)


OrganizationPageSchema = page_schema(OrganizationSchema, "OrganizationPage")
UserPageSchema = page_schema(UserSchema, "UserPage")
KeyPageSchema = page_schema(KeySchema, "KeyPage")
AuditPageSchema = page_schema(AuditEventSchema, "AuditPage")
