"""Marshmallow schemas of the kernel's endpoints (identity, auth, audit, health)."""

from __future__ import annotations

from marshmallow import Schema, fields, post_dump, validate

from exchange.fields import (
    MAX_INT_ID,
    Boolean,
    LogPageArgsSchema,
    PaginationArgsSchema,
    PublicURL,
    StrictSchema,
    Text,
    UTCDateTime,
    log_page_schema,
    page_schema,
)
from exchange.identity.services import PRIVATE_ORG_FIELDS, can_see_private
from exchange.identity.states import GD_CITIES, ORG_TYPES, REGIONS, ROLES, SELF_REGISTERED_TYPES, ZONES, OrgStatus
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
    city = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(GD_CITIES),
                         metadata={"description": "GD only: one of the 21 prefecture-level cities (the nine "
                                                  "Greater Bay Area cities first)"})
    zone = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(tuple(ZONES)),
                         metadata={"description": "a cooperation zone inside the city: hengqin (zhuhai), "
                                                  "qianhai or hetao (shenzhen), nansha (guangzhou)"})
    admin = fields.Nested(AdminUserCreateSchema, required=True)


class OrganizationUpdateSchema(StrictSchema):
    display_name = Text(max_length=200, allow_none=True)
    contact_email = Email(allow_none=True)
    website = PublicURL(allow_none=True)
    # Operators only (the service refuses them to everyone else with 403).
    type = fields.String(validate=validate.OneOf(ORG_TYPES))
    region = fields.String(validate=validate.OneOf(REGIONS))
    city = fields.String(allow_none=True, validate=validate.OneOf(GD_CITIES))
    zone = fields.String(allow_none=True, validate=validate.OneOf(tuple(ZONES)))
    status = fields.String(validate=validate.OneOf(ORG_STATUSES))
    stripe_account_id = fields.String(allow_none=True, validate=[validate.Length(max=95),
                                                                  validate.Regexp(r"^acct_[A-Za-z0-9]{1,90}$")])


class OrganizationSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String()
    display_name = fields.String(allow_none=True)
    type = fields.String()
    region = fields.String()
    city = fields.String(allow_none=True)
    zone = fields.String(allow_none=True)
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


class IndexLinksSchema(Schema):
    self_ = fields.String(required=True, attribute="self", data_key="self", metadata={"description": "This index"})
    docs = fields.String(required=True, metadata={"description": "The interactive API documentation (Swagger UI)"})
    openapi = fields.String(required=True, metadata={"description": "The OpenAPI 3 document"})
    health = fields.String(required=True, metadata={"description": "Liveness and database check"})
    jwks = fields.String(required=True, metadata={"description": "The exchange's public signing keys"})
    catalog = fields.String(required=True, metadata={"description": "The public catalog of listed products"})
    fairs = fields.String(required=True, metadata={"description": "The data fairs and their stalls"})
    token = fields.String(required=True, metadata={"description": "Sign in: POST an email and a password"})
    register = fields.String(required=True, metadata={"description": "Register an organization: POST"})


class IndexSchema(Schema):
    service = fields.String(required=True)
    api_version = fields.String(required=True)
    links = fields.Nested(IndexLinksSchema, required=True)


class ReadinessSchema(Schema):
    status = fields.String(required=True)
    database = fields.String(required=True)
    redis = fields.String(required=True, metadata={"description": "ok, unreachable or not configured"})


class AuditArgsSchema(LogPageArgsSchema):
    # Query values are strings: plain Integer (a strict one would refuse "20"), bounded like the id column.
    after = fields.Integer(validate=validate.Range(min=0, max=MAX_INT_ID), metadata={
        "description": "The `next` of the previous page (the id of its last event): the events recorded after "
                       "it, oldest first. 422 for an id that is not an event of this list."})
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
AuditPageSchema = log_page_schema(AuditEventSchema, "AuditPage", cursor=fields.Integer)


# OpenAPI examples (request bodies the API accepts as they are, apart from ids that must exist; responses
# shaped exactly like their schema). Ids have the shape of `exchange.db.new_id`.
ORG_ID_EXAMPLE = "org_0193a4c2e1f08b6d2c4e9a7f13b5d8e0"
USER_ID_EXAMPLE = "usr_0193a4c2e1f1a2b3c4d5e6f708192a3b"
OPERATOR_ORG_ID_EXAMPLE = "org_01938f0c7a2e4d5c6b7a8f9e0d1c2b3a"
OPERATOR_USER_ID_EXAMPLE = "usr_01938f0c7a2f1e2d3c4b5a69788796a5"
KEY_ID_EXAMPLE = "key_0193a4c9d2e05f6a7b8c9d0e1f2a3b4c"
PUBLIC_KEY_EXAMPLE = "at1ayULPPZaSVNr9WR+3CxfzivyW1W2nRe9eaeHl1VI="

ORGANIZATION_CREATE_EXAMPLE = {
    "name": "Shenzhen Harbour Analytics Ltd",
    "type": "vendor",
    "region": "GD",
    "city": "shenzhen",
    "zone": "qianhai",
    "registration_number": "91440300MA5G8XK21P",
    "admin": {"email": "li.wei@harbour-analytics.com", "password": "tide-chart-4417-lantern",
              "name": "Li Wei"},
}
# As registered (anonymous caller): pending; the private contact_email shown as null.
ORGANIZATION_CREATED_EXAMPLE = {
    "id": ORG_ID_EXAMPLE,
    "name": "Shenzhen Harbour Analytics Ltd",
    "display_name": None,
    "type": "vendor",
    "region": "GD",
    "city": "shenzhen",
    "zone": "qianhai",
    "registration_number": "91440300MA5G8XK21P",
    "status": "pending",
    "website": None,
    "created_at": "2026-11-30T09:12:44Z",
    "contact_email": None,
}
# As its own members and operators see it (with the private fields; others see none of them).
ORGANIZATION_EXAMPLE = {
    "id": ORG_ID_EXAMPLE,
    "name": "Shenzhen Harbour Analytics Ltd",
    "display_name": "Harbour Analytics",
    "type": "vendor",
    "region": "GD",
    "city": "shenzhen",
    "zone": "qianhai",
    "registration_number": "91440300MA5G8XK21P",
    "status": "verified",
    "website": "https://www.harbour-analytics.com",
    "created_at": "2026-11-30T09:12:44Z",
    "contact_email": "data@harbour-analytics.com",
    "stripe_account_id": "acct_1QHarbourAnalytic",
    "status_reason": "Business licence checked against the SAMR register.",
    "status_changed_at": "2026-11-30T14:03:09Z",
}
ORGANIZATION_UPDATE_EXAMPLE = {
    "display_name": "Harbour Analytics",
    "contact_email": "data@harbour-analytics.com",
    "website": "https://www.harbour-analytics.com",
}
# The reason an operator gives, per action (POST /organizations/{org_id}/<action>).
STATUS_REASON_EXAMPLES = {
    "verify": "Business licence checked against the SAMR register.",
    "reject": "The registration number is not in the SAMR register.",
    "suspend": "Data listed without the data subjects' consent: under investigation (case 2026-117).",
    "reinstate": "Case 2026-117 closed: consent records verified.",
}
# The organization after each action (as operators see it).
STATUS_CHANGED_EXAMPLES = {
    action: {**ORGANIZATION_EXAMPLE, "status": status, "status_reason": STATUS_REASON_EXAMPLES[action],
             "status_changed_at": "2026-12-01T10:26:31Z"}
    for action, status in (("verify", "verified"), ("reject", "rejected"), ("suspend", "suspended"),
                           ("reinstate", "verified"))
}
ORGANIZATION_PAGE_EXAMPLE = {
    "items": [{**ORGANIZATION_CREATED_EXAMPLE, "contact_email": "data@harbour-analytics.com",
               "stripe_account_id": None, "status_reason": None, "status_changed_at": None}],
    "total": 1, "page": 1, "per_page": 20,
}

MEMBER_CREATE_EXAMPLE = {
    "email": "chen.jing@harbour-analytics.com",
    "password": "quay-signal-9083-harbour",
    "name": "Chen Jing",
    "role": "member",
}
USER_EXAMPLE = {
    "id": "usr_0193a4c7b5d2e3f4a5b6c7d8e9f0a1b2",
    "email": "chen.jing@harbour-analytics.com",
    "name": "Chen Jing",
    "role": "member",
    "org_id": ORG_ID_EXAMPLE,
    "created_at": "2026-11-30T15:20:02Z",
}
ADMIN_USER_EXAMPLE = {
    "id": USER_ID_EXAMPLE,
    "email": "li.wei@harbour-analytics.com",
    "name": "Li Wei",
    "role": "admin",
    "org_id": ORG_ID_EXAMPLE,
    "created_at": "2026-11-30T09:12:44Z",
}
USER_PAGE_EXAMPLE = {"items": [ADMIN_USER_EXAMPLE, USER_EXAMPLE], "total": 2, "page": 1, "per_page": 20}

KEY_CREATE_EXAMPLE = {"public_key": PUBLIC_KEY_EXAMPLE, "label": "contracts signer 2026"}
KEY_EXAMPLE = {
    "key_id": KEY_ID_EXAMPLE,
    "org_id": ORG_ID_EXAMPLE,
    "public_key": PUBLIC_KEY_EXAMPLE,
    "label": "contracts signer 2026",
    "algorithm": "Ed25519",
    "created_at": "2026-11-30T15:31:47Z",
    "revoked_at": None,
}
KEY_REVOKED_EXAMPLE = {**KEY_EXAMPLE, "revoked_at": "2026-12-01T08:00:15Z"}
KEY_PAGE_EXAMPLE = {"items": [KEY_EXAMPLE], "total": 1, "page": 1, "per_page": 20}

LOGIN_EXAMPLE = {"email": "li.wei@harbour-analytics.com", "password": "tide-chart-4417-lantern"}
REFRESH_TOKEN_EXAMPLE = "rt_Qm9vX2V4YW1wbGVfcmVmcmVzaF90b2tlbl9vbmx5XzQ"  # noqa: S105 - an example
TOKEN_PAIR_EXAMPLE = {
    "access_token": ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c3JfMDE5M2E0YzJlMWYxYTJiM2M0ZDVlNmY3"
                     "MDgxOTJhM2IiLCJleHAiOjE3NjQ1NzE1NjR9.3q5Nf0kq8b1vR2tYw6Jm4Zc9Hx7Ld2Pa1Ue5Sg0Ko3I"),
    "refresh_token": REFRESH_TOKEN_EXAMPLE,
    "token_type": "Bearer",
    "expires_in": 900,
}
REFRESH_EXAMPLE = {"refresh_token": REFRESH_TOKEN_EXAMPLE}
LOGOUT_EXAMPLE = {"refresh_token": REFRESH_TOKEN_EXAMPLE, "all_sessions": False}

ME_EXAMPLE = {"user": ADMIN_USER_EXAMPLE, "organization": ORGANIZATION_EXAMPLE, "role": "admin"}

HEALTH_EXAMPLE = {"status": "ok", "database": "ok"}
INDEX_LINKS = {"self": "/api/v1", "docs": "/api/v1/docs", "openapi": "/api/v1/openapi.json",
               "health": "/api/v1/health", "jwks": "/.well-known/jwks.json", "catalog": "/api/v1/products",
               "fairs": "/api/v1/fairs", "token": "/api/v1/auth/token", "register": "/api/v1/organizations"}
# The index is a constant: the example documents exactly what the operation answers.
INDEX = {"service": "datafair", "api_version": "v1", "links": INDEX_LINKS}
INDEX_EXAMPLE = INDEX
LIVENESS_EXAMPLE = {"status": "ok", "database": "not checked"}
READINESS_EXAMPLE = {"status": "ok", "database": "ok", "redis": "ok"}

AUDIT_PAGE_EXAMPLE = {
    "items": [{
        "id": 4182,
        "at": "2026-11-30T14:03:09Z",
        "actor_user_id": OPERATOR_USER_ID_EXAMPLE,
        "actor_org_id": OPERATOR_ORG_ID_EXAMPLE,
        "action": "organization.verified",
        "object_type": "organization",
        "object_id": ORG_ID_EXAMPLE,
        "detail": {"reason": "Business licence checked against the SAMR register.",
                   "from_status": "pending", "to_status": "verified"},
    }],
    "total": 1, "page": 1, "per_page": 20,
}
# `?after=4181&limit=1`: the next event, more to follow.
AUDIT_CURSOR_EXAMPLE = {"items": AUDIT_PAGE_EXAMPLE["items"], "next": 4182, "limit": 1}

JWKS_EXAMPLE = {"keys": [
    {"kty": "OKP", "crv": "Ed25519", "x": "pQ0Rjo2g9d4y7E5cUjEY2EoO3oJ2vtqq1vVTus8KSZs",
     "kid": "dfx-2026-1a2b3c4d", "use": "sig", "alg": "EdDSA"},
    {"kty": "OKP", "crv": "Ed25519", "x": "at1ayULPPZaSVNr9WR-3CxfzivyW1W2nRe9eaeHl1VI",
     "kid": "dfx-2025-9f8e7d6c", "use": "sig", "alg": "EdDSA"},
]}
