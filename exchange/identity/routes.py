"""HTTP routes of the kernel: health, organizations, members, keys, auth, me, audit, and the JWKS."""

from __future__ import annotations

from typing import Any

from flask import current_app, redirect, request
from sqlalchemy import text

from exchange import ratelimit
from exchange.api import AUTH, NO_DATABASE, OPTIONAL_AUTH, Blueprint, log_page, paginate
from exchange.db import db, is_sqlite
from exchange.fields import Facts, PaginationArgsSchema
from exchange.identity import audit
from exchange.identity import services as identity
from exchange.identity.auth import revoke_family, revoke_refresh_token_family, revoke_user_tokens, rotate_refresh_token
from exchange.identity.schemas import (
    AUDIT_CURSOR_EXAMPLE,
    AUDIT_PAGE_EXAMPLE,
    HEALTH_EXAMPLE,
    INDEX,
    INDEX_EXAMPLE,
    INDEX_LINKS,
    KEY_CREATE_EXAMPLE,
    KEY_EXAMPLE,
    KEY_PAGE_EXAMPLE,
    KEY_REVOKED_EXAMPLE,
    LIVENESS_EXAMPLE,
    LOGIN_EXAMPLE,
    LOGOUT_EXAMPLE,
    ME_EXAMPLE,
    MEMBER_CREATE_EXAMPLE,
    ORGANIZATION_CREATE_EXAMPLE,
    ORGANIZATION_CREATED_EXAMPLE,
    ORGANIZATION_EXAMPLE,
    ORGANIZATION_PAGE_EXAMPLE,
    ORGANIZATION_UPDATE_EXAMPLE,
    READINESS_EXAMPLE,
    REFRESH_EXAMPLE,
    STATUS_CHANGED_EXAMPLES,
    STATUS_REASON_EXAMPLES,
    TOKEN_PAIR_EXAMPLE,
    USER_EXAMPLE,
    USER_PAGE_EXAMPLE,
    AuditArgsSchema,
    AuditPageSchema,
    HealthSchema,
    IndexSchema,
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
from exchange.principal import current_principal, operators_only, show_to

blp = Blueprint("identity", __name__, url_prefix="/api/v1", description="Identity, access and health")
# The site's root: the same index for JSON clients; browsers go to the human-facing page.
root = Blueprint("root", __name__, url_prefix="", description="The site's root")
# app.extensions key: the view a browser at `/` gets (the console registers its home page).
HTML_HOME = "datafair.html_home"


@blp.route("", methods=["GET"])
@blp.response(200, IndexSchema, example=INDEX_EXAMPLE)
@blp.doc(operationId="getIndex", **{NO_DATABASE: True})
def index() -> Any:
    """The API's index: links to its documentation, OpenAPI document, health, JWKS and entry points.

    Anyone may call it (no token); changes nothing and never touches the database. A client that
    knows only the server's address starts here."""
    return INDEX


def _wants_html() -> bool:
    """A browser names text/html; curl's `*/*` and API clients' JSON get the index."""
    accept = request.accept_mimetypes
    return any(kind == "text/html" and quality > 0 for kind, quality in accept) and (
        accept["text/html"] >= accept["application/json"])


@root.route("/", methods=["GET"])
@root.response(200, IndexSchema, example=INDEX_EXAMPLE, description="The API's index (JSON clients, curl)")
@root.alt_response(302, description="A browser (`Accept: text/html`) is sent to the docs if no console is installed")
@root.doc(operationId="getRoot", **{NO_DATABASE: True})
def site_root() -> Any:
    """The site's root: the API's index for JSON clients, the human-facing page for browsers.

    Anyone may call it (no token); changes nothing. `Accept: application/json` (or curl's `*/*`)
    answers the same index as `GET /api/v1`; a browser asking for text/html gets the web console's
    home page (HTML: the live fair, the catalog search, market statistics), or is redirected to the
    interactive API documentation where no console is installed."""
    if _wants_html():
        home = current_app.extensions.get(HTML_HOME)
        # The console (a higher layer) registers its home page; without it, the docs are the human page.
        return home() if home is not None else redirect(INDEX_LINKS["docs"], code=302)
    return INDEX


@blp.route("/health", methods=["GET"])
@blp.response(200, HealthSchema, example=HEALTH_EXAMPLE)
@blp.alt_response(503, schema=HealthSchema, description="The database is unreachable",
                  example={"status": "unavailable", "database": "unreachable"})
@blp.doc(operationId="getHealth")
def health() -> Any:
    """Check that the service and its database answer.

    Anyone may call it (no token). Liveness and readiness in one: 200 `{"status": "ok", "database":
    "ok"}` only when the database answers a query; 503 `{"status": "unavailable", "database":
    "unreachable"}` when it does not. Changes nothing."""
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
@blp.response(200, ReadinessSchema, example=READINESS_EXAMPLE)
@blp.alt_response(503, schema=ReadinessSchema, description="The database is unreachable",
                  example={"status": "unavailable", "database": "unreachable", "redis": "ok"})
@blp.doc(operationId="getReadiness")
def readiness() -> Any:
    """Readiness probe: whether this node should receive traffic.

    Anyone may call it (no token); changes nothing. Answers 200 while the database answers a query
    and 503 when it does not: orchestrators route traffic to a node only while this answers 200.
    With REDIS_URL, `redis` reports whether Redis answers PING (`ok`, `unreachable`; else `not
    configured`), as a detail only: without Redis the rate limits count in the database and jobs
    wait, so a Redis outage must not take every node out of service."""
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
@blp.response(200, HealthSchema, example=LIVENESS_EXAMPLE)
@blp.doc(operationId="getLiveness", **{NO_DATABASE: True})
def liveness() -> Any:
    """Liveness probe: the process answers.

    Anyone may call it (no token); changes nothing. Never touches the database, so it answers 200
    `{"status": "ok", "database": "not checked"}` whenever the process serves requests (for
    orchestrators' liveness probes: a database outage must not restart every node)."""
    return {"status": "ok", "database": "not checked"}


@blp.route("/organizations", methods=["POST"])
@blp.arguments(OrganizationCreateSchema, example=ORGANIZATION_CREATE_EXAMPLE)
@blp.response(201, OrganizationSchema, example=ORGANIZATION_CREATED_EXAMPLE)
@blp.problems(400, 409, 415, 422, 429)
@blp.doc(operationId="createOrganization")
def register_organization(data: dict[str, Any]) -> Any:
    """Register an organization with its admin user.

    Anyone may call it (no token needed): a vendor, enterprise or assessor organization registers
    itself with its first admin user (who can then log in). It starts `pending` until an operator
    verifies it (`POST /organizations/{org_id}/verify`); operators are never self-registered. The
    answer shows the private `contact_email` as null. 409 when the name (case-insensitively), the
    registration number or the admin's email is already registered; 422 for a password shorter
    than 12 characters or an unknown type or region. Anonymous registrations are rate limited per
    client address (`DATAFAIR_REGISTRATION_RATE_LIMIT`, default `10/hour`): past it, 429 with
    `Retry-After`, and nothing is written."""
    if current_principal(required=False) is None:
        ratelimit.registration_limit(request.remote_addr or "unknown")
    org = identity.register_organization(db.session, **data)
    show_to(None)
    return Facts(org, blanked=("contact_email",))


@blp.route("/organizations", methods=["GET"])
@blp.arguments(OrganizationListArgsSchema, location="query")
@blp.response(200, OrganizationPageSchema, example=ORGANIZATION_PAGE_EXAMPLE)
@blp.doc(security=AUTH, operationId="listOrganizations")
@blp.problems(401, 403, 422)
def list_organizations(args: dict[str, Any]) -> Any:
    """List organizations (operators).

    Operators only (403 for everyone else): every organization with its private fields, filtered by
    `status` (e.g. `?status=pending` for the verification queue) and `type`, one page at a time.
    Changes nothing; 422 for an unknown status or type."""
    principal = current_principal()
    stmt = identity.list_organizations(principal=principal, status=args.get("status"), type=args.get("type"))
    page = paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])
    return page


@blp.route("/organizations/<org_id>", methods=["GET"])
@blp.response(200, OrganizationSchema, example=ORGANIZATION_EXAMPLE)
@blp.doc(security=OPTIONAL_AUTH, operationId="getOrganization")
@blp.problems(401, 404)
def get_organization(org_id: str) -> Any:
    """Get an organization.

    Verified organizations are public (a token is optional); a pending, rejected or suspended one
    only to its own members and operators (404 for anyone else, as for an unknown id). The private
    fields (`contact_email`, `stripe_account_id`, `status_reason`, `status_changed_at`) are shown
    only to its members and operators. Changes nothing; 401 for an invalid token."""
    principal = current_principal(required=False)
    org = identity.get_organization(db.session, org_id=org_id, principal=principal)
    return org


@blp.route("/organizations/<org_id>", methods=["PATCH"])
@blp.authorize(identity.check_may_edit)
@blp.arguments(OrganizationUpdateSchema, example=ORGANIZATION_UPDATE_EXAMPLE)
@blp.response(200, OrganizationSchema, example=ORGANIZATION_EXAMPLE)
@blp.doc(security=AUTH, operationId="updateOrganization")
@blp.problems(400, 401, 403, 404, 409, 415, 422)
def update_organization(data: dict[str, Any], org_id: str) -> Any:
    """Update an organization's profile.

    The organization's admins change its profile (`display_name`, `contact_email`, `website`);
    operators also its `type`, `region`, payout account `stripe_account_id` and `status` (a status
    change follows the same transitions as the verify/reject/suspend/reinstate actions, audited).
    Only the fields sent change. 403 when a non-operator sends an operator-only field or the caller
    is not an admin of the organization; 404 when the organization is not visible to the caller;
    409 for a status change the current status does not allow; 422 for a private or malformed URL,
    a bad email or payout account id, or a change to or from the operator type."""
    principal = current_principal()
    org = identity.update_organization(db.session, org_id=org_id, changes=data, actor=principal)
    return org


# action -> (target status, the statuses it leaves, what it does besides the status change)
_STATUS_ACTIONS: dict[str, tuple[OrgStatus, str, str]] = {
    "verify": (OrgStatus.VERIFIED, "`pending`",
               "The organization becomes public and its users may trade; an `organization.verified` "
               "event goes to its webhook endpoints."),
    "reject": (OrgStatus.REJECTED, "`pending`",
               "Rejection is final; every login of the organization's users is revoked."),
    "suspend": (OrgStatus.SUSPENDED, "`verified`",
                "Every login of the organization's users is revoked, its writes are refused (403) and "
                "its products leave the catalog until it is reinstated."),
    "reinstate": (OrgStatus.VERIFIED, "`suspended`",
                  "The organization is `verified` again (its users log in anew); an "
                  "`organization.verified` event goes to its webhook endpoints."),
}


def _status_route(action: str, target: OrgStatus, source: str, effect: str) -> None:
    @blp.route(f"/organizations/<org_id>/{action}", methods=["POST"], endpoint=f"organization_{action}")
    @blp.authorize(operators_only)
    @blp.arguments(StatusChangeSchema, example={"reason": STATUS_REASON_EXAMPLES[action]})
    @blp.response(200, OrganizationSchema, example=STATUS_CHANGED_EXAMPLES[action])
    @blp.doc(security=AUTH, operationId=f"{action}Organization",
             summary=f"{action.capitalize()} an organization (operators)",
             description=(f"Operators only (403 for everyone else): moves a {source} organization to "
                          f"`{target}` with a `reason` (kept as its `status_reason` and audited). "
                          f"{effect} 403 also for the exchange's own operator organization; 404 for an "
                          f"unknown organization; 409 when its current status does not allow this "
                          f"(e.g. already `{target}`); 422 without a reason."))
    @blp.problems(400, 401, 403, 404, 409, 415, 422)
    def change(data: dict[str, Any], org_id: str) -> Any:
        principal = current_principal()
        org = identity.change_status(db.session, org_id=org_id, target=target, reason=data["reason"],
                                     actor=principal)
        return org


for _action, (_target, _source, _effect) in _STATUS_ACTIONS.items():
    _status_route(_action, _target, _source, _effect)


@blp.route("/organizations/<org_id>/members", methods=["POST"])
@blp.authorize(identity.check_org_admin)
@blp.arguments(MemberCreateSchema, example=MEMBER_CREATE_EXAMPLE)
@blp.response(201, UserSchema, example=USER_EXAMPLE)
@blp.doc(security=AUTH, operationId="createMember")
@blp.problems(400, 401, 403, 404, 409, 415, 422)
def add_member(data: dict[str, Any], org_id: str) -> Any:
    """Add a user to an organization.

    The organization's own admins add a user with role `admin` or `member` (default) and an initial
    password (at least 12 characters); the user can log in at once. Audited. 403 for anyone else
    (operators included: users belong to their organization); 404 when the organization is not
    visible to the caller; 409 when the email is already registered; 422 for a short password or an
    unknown role."""
    return identity.add_member(db.session, org_id=org_id, actor=current_principal(), **data)


@blp.route("/organizations/<org_id>/members", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, UserPageSchema, example=USER_PAGE_EXAMPLE)
@blp.doc(security=AUTH, operationId="listMembers")
@blp.problems(401, 403, 404, 422)
def list_members(args: dict[str, Any], org_id: str) -> Any:
    """List an organization's users.

    The organization's own users and operators see its users, one page at a time (403 for anyone
    else; 404 when the organization is not visible to the caller). Changes nothing."""
    stmt = identity.list_members(db.session, org_id=org_id, actor=current_principal())
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/organizations/<org_id>/keys", methods=["POST"])
@blp.authorize(identity.check_org_admin)
@blp.arguments(KeyCreateSchema, example=KEY_CREATE_EXAMPLE)
@blp.response(201, KeySchema, example=KEY_EXAMPLE)
@blp.doc(security=AUTH, operationId="createSigningKey")
@blp.problems(400, 401, 403, 404, 409, 415, 422)
def add_key(data: dict[str, Any], org_id: str) -> Any:
    """Register a signing key of an organization.

    The organization's own admins register an Ed25519 public key (base64 of the raw 32 bytes) that
    its users may sign contracts with; the private key never leaves the organization. Audited.
    403 for anyone else; 404 when the organization is not visible to the caller; 409 when the same
    public key is already registered; 422 when `public_key` is not base64 of 32 bytes."""
    return identity.add_key(db.session, org_id=org_id, actor=current_principal(), **data)


@blp.route("/organizations/<org_id>/keys", methods=["GET"])
@blp.arguments(PaginationArgsSchema, location="query")
@blp.response(200, KeyPageSchema, example=KEY_PAGE_EXAMPLE)
@blp.doc(security=OPTIONAL_AUTH, operationId="listSigningKeys")
@blp.problems(401, 404, 422)
def list_keys(args: dict[str, Any], org_id: str) -> Any:
    """List an organization's signing keys.

    Public for a verified organization (a token is optional): anyone may verify its contract
    signatures. Revoked keys stay listed with `revoked_at`, oldest first. 404 when the organization
    is not visible to the caller. Changes nothing."""
    stmt = identity.list_keys(db.session, org_id=org_id, actor=current_principal(required=False))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/organizations/<org_id>/keys/<key_id>", methods=["DELETE"])
@blp.response(200, KeySchema, example=KEY_REVOKED_EXAMPLE)
@blp.doc(security=AUTH, operationId="deleteSigningKey")
@blp.problems(401, 403, 404, 409)
def revoke_key(org_id: str, key_id: str) -> Any:
    """Revoke a signing key of an organization.

    The organization's own admins revoke one of its keys: it is stamped `revoked_at` (and still
    listed), existing signatures stay verifiable, new signatures with it are refused. Audited.
    403 for anyone else; 404 for an unknown key or organization; 409 when it is already revoked."""
    return identity.revoke_key(db.session, org_id=org_id, key_id=key_id, actor=current_principal())


@blp.route("/auth/token", methods=["POST"])
@blp.arguments(LoginSchema, example=LOGIN_EXAMPLE)
@blp.response(200, TokenPairSchema, example=TOKEN_PAIR_EXAMPLE)
@blp.problems(400, 401, 415, 422, 429)
@blp.doc(operationId="createToken")
def login(data: dict[str, Any]) -> Any:
    """Log in with email and password.

    Anyone may call it (no token). Answers an access token (a Bearer JWT, 15 minutes) and a
    single-use refresh token, the start of a login (a token family). 401 for a wrong password or an
    unknown email alike (one answer for both) and for the users of a rejected organization.

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
@blp.arguments(RefreshSchema, example=REFRESH_EXAMPLE)
@blp.response(200, TokenPairSchema, example=TOKEN_PAIR_EXAMPLE)
@blp.problems(400, 401, 415, 422)
@blp.doc(operationId="refreshToken")
def refresh(data: dict[str, Any]) -> Any:
    """Exchange a refresh token for a new token pair.

    Anyone holding a refresh token (no access token needed). Each refresh token works once: the
    answer is a new access token and a new refresh token of the same login. 401 for an unknown,
    expired or revoked token (and for the users of a rejected organization); reusing an already
    used one answers 401 and revokes the whole login (every refresh token of its family), since it
    was probably stolen."""
    return rotate_refresh_token(db.session, data["refresh_token"])


@blp.route("/auth/logout", methods=["POST"])
@blp.arguments(LogoutSchema, example=LOGOUT_EXAMPLE)
@blp.response(204)
@blp.doc(security=AUTH, operationId="logout")
@blp.problems(400, 401, 415, 422)
def logout(data: dict[str, Any]) -> Any:
    """Log out: revoke a login's refresh tokens.

    Any authenticated user, for their own logins. Revokes the refresh token family of this login:
    the one of `refresh_token` if given (a token of another user is ignored), else the one the access token was
    issued with; `all_sessions: true` revokes every login of the user. The access token itself
    stays valid until it expires (at most 15 minutes). Answers 204 with no body; 401 without a
    valid access token."""
    principal = current_principal()
    if data.get("all_sessions"):
        revoke_user_tokens(db.session, [principal.user_id])
    elif data.get("refresh_token"):
        revoke_refresh_token_family(db.session, data["refresh_token"], principal)
    elif principal.family_id:
        revoke_family(db.session, principal.family_id, user_id=principal.user_id)
    return "", 204


@blp.route("/me", methods=["GET"])
@blp.response(200, MeSchema, example=ME_EXAMPLE)
@blp.doc(security=AUTH, operationId="getMe")
@blp.problems(401)
def me() -> Any:
    """Get the caller's user, organization and role.

    Any authenticated user: their user, their organization (with its private fields) and their role
    in it (`admin` or `member`). Changes nothing; 401 without a valid access token."""
    principal = current_principal()
    user = identity.get_user(db.session, principal.user_id)
    return Facts(user, user=user, organization=user.organization)


@blp.route("/audit", methods=["GET"])
@blp.arguments(AuditArgsSchema, location="query")
@blp.response(200, AuditPageSchema, examples={"page": {"value": AUDIT_PAGE_EXAMPLE},
                                              "cursor": {"value": AUDIT_CURSOR_EXAMPLE}})
@blp.doc(security=AUTH, operationId="listAuditEvents")
@blp.problems(401, 403, 422)
def audit_trail(args: dict[str, Any]) -> Any:
    """List the audit trail (operators).

    Operators only (403 for everyone else): the append-only trail of privileged actions
    (verifications, suspensions, reviews, certificate actions, white-list changes, payment
    confirmations, resolutions, payouts, key registrations and rotations), newest first, filtered by
    `actor_org_id`, `object_id` and `action`. Changes nothing. Pages by number (`page`, `per_page`,
    with `total`) or, given `after` or `limit`, by cursor oldest first (`next`: pass it as `after`;
    events recorded meanwhile come on the following pages, none skipped or repeated)."""
    stmt = audit.list_events(principal=current_principal(), actor_org_id=args.get("actor_org_id"),
                             object_id=args.get("object_id"), action=args.get("action"))
    return log_page(db.session, stmt, args, order=audit.AUDIT_ORDER)
