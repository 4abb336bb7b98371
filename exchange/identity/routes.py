"""HTTP routes of the kernel: health, organizations, members, keys, auth, me, audit, and the JWKS."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from sqlalchemy import text

from exchange import ratelimit
from exchange.api import AUTH, NO_DATABASE, OPTIONAL_AUTH, Blueprint, paginate
from exchange.db import db, is_sqlite
from exchange.fields import Facts, PaginationArgsSchema
from exchange.identity import audit
from exchange.identity import services as identity
from exchange.identity.auth import revoke_family, revoke_refresh_token_family, revoke_user_tokens, rotate_refresh_token
from exchange.identity.schemas import (
    AuditArgsSchema,
    AuditPageSchema,
    HealthSchema,
    KeyCreateSchema,
    KeyPageSchema,
    KeySchema,
    LoginSchema,
    LogoutSchema,
    MemberCreateSchema,
    MeSchema,
    OrganizationCreateSchema,
    OrganizationListArgsSchema,
    OrganizationPageSchema,
    OrganizationSchema,
    OrganizationUpdateSchema,
    ReadinessSchema,
    RefreshSchema,
    StatusChangeSchema,
    TokenPairSchema,
    UserPageSchema,
    UserSchema,
)
from exchange.identity.states import OrgStatus
from exchange.principal import current_principal, show_to

blp = Blueprint("identity", __name__, url_prefix="/api/v1", description="Identity, access and health")


@blp.route("/health", methods=["GET"])
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="The database is unreachable")
def health() -> Any:
    """Liveness and readiness: answers 200 only when the database answers a query."""
    try:
        if is_sqlite():
            db.session.execute(text("SELECT 1")).scalar_one()
        else:
            # Outside any transaction: one round trip instead of three (BEGIN, SELECT, COMMIT).
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("SELECT 1")).scalar_one()
    except Exception:
        db.session.rollback()
        return {"status": "unavailable", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}


@blp.route("/health/ready", methods=["GET"])
@blp.response(200, ReadinessSchema)
@blp.alt_response(503, schema=ReadinessSchema, description="The database is unreachable")
def readiness() -> Any:
    """Readiness: the database answers a query. Orchestrators route traffic to a node only while
    this answers 200. With REDIS_URL, `redis` reports whether Redis answers PING, as a detail only:
    without Redis the rate limits count in the database and jobs wait, so a Redis outage must not
    take every node out of service."""
    body = {"status": "ok", "database": "ok", "redis": "not configured"}
    try:
        db.session.execute(text("SELECT 1")).scalar_one()
    except Exception:
        db.session.rollback()
        body.update(status="unavailable", database="unreachable")
    if current_app.config.get("REDIS_URL"):
        body["redis"] = ratelimit.redis_status()
    return body, 200 if body["status"] == "ok" else 503


@blp.route("/health/live", methods=["GET"])
@blp.response(200, HealthSchema)
@blp.doc(**{NO_DATABASE: True})
def liveness() -> Any:
    """Process liveness without touching the database (for orchestrators' liveness probes)."""
    return {"status": "ok", "database": "not checked"}


@blp.route("/organizations", methods=["POST"])
@blp.arguments(OrganizationCreateSchema)
@blp.response(201, OrganizationSchema)
@blp.problems(400, 409, 415, 422, 429)
def register_organization(data: dict[str, Any]) -> Any:
    """Self-register a vendor, enterprise or assessor organization with its admin user (pending).

    Anonymous registrations are rate limited per client address (`DATAFAIR_REGISTRATION_RATE_LIMIT`,
    default `10/hour`): past it, 429 with `Retry-After`, and nothing is written."""
    if current_principal(required=False) is None:
        ratelimit.registration_limit(request.remote_addr or "unknown")
    org = identity.register_organization(db.session, **data)
    show_to(None)
    return Facts(org, blanked=("contact_email",))


@blp.route("/organizations", methods=["GET"])
@blp.arguments(OrganizationListArgsSchema, location="query")
@blp.response(200, OrganizationPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 403, 422)
def list_organizations(args: dict[str, Any]) -> Any:
    """Operators: every organization, e.g. `?status=pending` for the verification queue."""
    principal = current_principal()
    stmt = identity.list_organizations(principal=principal, status=args.get("status"), type=args.get("type"))
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    return page


@blp.route("/organizations/<org_id>", methods=["GET"])
@blp.response(200, OrganizationSchema)
@blp.doc(security=OPTIONAL_AUTH)
@blp.problems(401, 404)
def get_organization(org_id: str) -> Any:
    """An organization: verified ones are public; private fields only for members and operators."""
    principal = current_principal(required=False)
    org = identity.get_organization(db.session, org_id=org_id, principal=principal)
    return org


@blp.route("/organizations/<org_id>", methods=["PATCH"])
@blp.arguments(OrganizationUpdateSchema)
@blp.response(200, OrganizationSchema)
@blp.doc(security=AUTH)
@blp.problems(400, 401, 403, 404, 409, 415, 422)
def update_organization(data: dict[str, Any], org_id: str) -> Any:
    """Profile fields by the org's admins; type, status, region and payout account by operators."""
    principal = current_principal()
    org = identity.update_organization(db.session, org_id=org_id, changes=data, actor=principal)
    return org


def _status_route(action: str, target: OrgStatus) -> None:
    @blp.route(f"/organizations/<org_id>/{action}", methods=["POST"], endpoint=f"organization_{action}")
    @blp.arguments(StatusChangeSchema)
    @blp.response(200, OrganizationSchema)
    @blp.doc(security=AUTH, summary=f"Operators: {action} an organization (with a reason, audited)")
    @blp.problems(400, 401, 403, 404, 409, 415, 422)
    def change(data: dict[str, Any], org_id: str) -> Any:
        principal = current_principal()
        org = identity.change_status(db.session, org_id=org_id, target=target, reason=data["reason"],
                                     actor=principal)
        return org


for _action, _target in (("verify", OrgStatus.VERIFIED), ("reject", OrgStatus.REJECTED),
                         ("suspend", OrgStatus.SUSPENDED), ("reinstate", OrgStatus.VERIFIED)):
    _status_route(_action, _target)


@blp.route("/organizations/<org_id>/members", methods=["POST"])
@blp.arguments(MemberCreateSchema)
@blp.response(201, UserSchema)
@blp.doc(security=AUTH)
@blp.problems(400, 401, 403, 404, 409, 415, 422)
def add_member(data: dict[str, Any], org_id: str) -> Any:
    """Org admins add users (role admin or member) to their organization."""
    return identity.add_member(db.session, org_id=org_id, actor=current_principal(), **data)


@blp.route("/organizations/<org_id>/members", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, UserPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 403, 404, 422)
def list_members(args: dict[str, Any], org_id: str) -> Any:
    """The organization's users (its members and operators)."""
    stmt = identity.list_members(db.session, org_id=org_id, actor=current_principal())
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/organizations/<org_id>/keys", methods=["POST"])
@blp.arguments(KeyCreateSchema)
@blp.response(201, KeySchema)
@blp.doc(security=AUTH)
@blp.problems(400, 401, 403, 404, 409, 415, 422)
def add_key(data: dict[str, Any], org_id: str) -> Any:
    """Org admins register an Ed25519 public key (base64, raw 32 bytes) for signing contracts."""
    return identity.add_key(db.session, org_id=org_id, actor=current_principal(), **data)


@blp.route("/organizations/<org_id>/keys", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, KeyPageSchema)
@blp.doc(security=OPTIONAL_AUTH)
@blp.problems(401, 404, 422)
def list_keys(args: dict[str, Any], org_id: str) -> Any:
    """An organization's signing keys (public: anyone may verify its signatures)."""
    stmt = identity.list_keys(db.session, org_id=org_id, actor=current_principal(required=False))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/organizations/<org_id>/keys/<key_id>", methods=["DELETE"])
@blp.response(200, KeySchema)
@blp.doc(security=AUTH)
@blp.problems(401, 403, 404, 409)
def revoke_key(org_id: str, key_id: str) -> Any:
    """Org admins revoke a signing key: existing signatures stay verifiable, new ones are refused."""
    return identity.revoke_key(db.session, org_id=org_id, key_id=key_id, actor=current_principal())


@blp.route("/auth/token", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema)
@blp.problems(400, 401, 415, 422, 429)
def login(data: dict[str, Any]) -> Any:
    """Log in: an access token (15 min) and a single-use refresh token.

    Rate limits (429 with `Retry-After`): per email, `DATAFAIR_LOGIN_RATE_LIMIT` (default
    `10/minute`) attempts are verified per window — a slot is taken before the password is checked
    and given back when it was right, so concurrent guesses never exceed the limit; past it, every
    attempt for that email (even with the right password) answers 429 until the window ends. Per
    client address the bound is ten times that, and it never refuses a right password: past it,
    wrong passwords answer 429 instead of 401, while a user whose own email is under its limit
    still logs in from behind the same address (an office, a NAT)."""
    return identity.login(db.session, email=data["email"], password=data["password"],
                          client_addr=request.remote_addr or "unknown")


@blp.route("/auth/refresh", methods=["POST"])
@blp.arguments(RefreshSchema)
@blp.response(200, TokenPairSchema)
@blp.problems(400, 401, 415, 422)
def refresh(data: dict[str, Any]) -> Any:
    """Rotate a refresh token (each works once; reusing one revokes the whole login)."""
    return rotate_refresh_token(db.session, data["refresh_token"])


@blp.route("/auth/logout", methods=["POST"])
@blp.arguments(LogoutSchema)
@blp.response(204)
@blp.doc(security=AUTH)
@blp.problems(400, 401, 415, 422)
def logout(data: dict[str, Any]) -> Any:
    """Revoke the refresh token family of this login: the one of `refresh_token` if given, else the one
    the access token was issued with; `all_sessions` revokes every login of the user."""
    principal = current_principal()
    if data.get("all_sessions"):
        revoke_user_tokens(db.session, [principal.user_id])
    elif data.get("refresh_token"):
        revoke_refresh_token_family(db.session, data["refresh_token"], principal)
    elif principal.family_id:
        revoke_family(db.session, principal.family_id, user_id=principal.user_id)
    return "", 204


@blp.route("/me", methods=["GET"])
@blp.response(200, MeSchema)
@blp.doc(security=AUTH)
@blp.problems(401)
def me() -> Any:
    """The caller: user, organization (with its private fields) and role."""
    principal = current_principal()
    user = identity.get_user(db.session, principal.user_id)
    return Facts(user, user=user, organization=user.organization)


@blp.route("/audit", methods=["GET"])
@blp.arguments(AuditArgsSchema, location="query")
@blp.response(200, AuditPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 403, 422)
def audit_trail(args: dict[str, Any]) -> Any:
    """Operators: the append-only audit trail of privileged actions, newest first."""
    stmt = audit.list_events(principal=current_principal(), actor_org_id=args.get("actor_org_id"),
                             object_id=args.get("object_id"), action=args.get("action"))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
