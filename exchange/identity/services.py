"""Organizations, users, members, signing keys and logins: the business rules of identity."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from exchange import hooks, ratelimit
from exchange.db import after_transaction, utcnow
from exchange.errors import Conflict, Forbidden, NotFound, Unauthorized, field_error
from exchange.identity import audit
from exchange.identity.auth import revoke_user_tokens, token_pair
from exchange.identity.models import Organization, OrganizationKey, User
from exchange.identity.states import ORG_TRANSITIONS, SELF_REGISTERED_TYPES, ZONES, OrgStatus
from exchange.principal import Principal
from exchange.states import load_for_update, transition

MIN_PASSWORD = 12
PUBLIC_ORG_FIELDS = ("id", "name", "display_name", "type", "region", "city", "zone", "registration_number", "status",
                     "website", "created_at")
PRIVATE_ORG_FIELDS = ("contact_email", "stripe_account_id", "status_reason", "status_changed_at")
OPERATOR_ONLY_FIELDS = frozenset({"type", "status", "region", "city", "zone", "stripe_account_id"})
PROFILE_FIELDS = frozenset({"display_name", "contact_email", "website"})
_DUMMY_HASH: dict[str, str] = {}


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def _check_password_rules(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        raise field_error(field, f"must be at least {MIN_PASSWORD} characters")


def _normalize_email(email: str) -> str:
    return email.strip().lower()


def _email_taken(session: Session, email: str) -> bool:
    return session.execute(select(User.id).where(User.email == email)).first() is not None


def check_place(region: str, city: str | None, zone: str | None) -> None:
    """A city is stated for GD organizations only (one of GD_CITIES); a zone lies in its city.

    Raises ValidationFailed naming the field.
    """
    if city is not None and region != "GD":
        raise field_error("city", f"a city is stated for GD organizations only (this one is {region}); "
                                  "leave it null")
    if zone is not None:
        if city is None:
            raise field_error("zone", f"{zone} lies in {ZONES[zone]}: state city {ZONES[zone]!r} with it")
        if ZONES[zone] != city:
            raise field_error("zone", f"{zone} lies in {ZONES[zone]}, not in {city}")


def register_organization(session: Session, *, name: str, type: str, region: str,
                          registration_number: str, admin: dict[str, str], city: str | None = None,
                          zone: str | None = None) -> Organization:
    """Self-registration of a vendor, enterprise or assessor with its first admin user (`pending`).

    Raises ValidationFailed (operator type, short password) or Conflict (duplicate name, number, email).
    """
    if type not in SELF_REGISTERED_TYPES:
        raise field_error("type", "must be vendor, enterprise or assessor (operators are created by the exchange)")
    _check_password_rules(admin["password"], "admin.password")
    check_place(region, city, zone)
    email = _normalize_email(admin["email"])
    duplicate = session.execute(
        select(Organization.name, Organization.registration_number).where(
            or_(func.lower(Organization.name) == name.lower(),
                Organization.registration_number == registration_number)
        )
    ).first()
    if duplicate is not None:
        field = "name" if duplicate.name.lower() == name.lower() else "registration_number"
        raise Conflict(f"An organization with this {field} is already registered.",
                       errors={field: ["already registered"]},
                       next_step="choose another name and registration number, or sign in with the existing "
                                 "organization's account")
    if _email_taken(session, email):
        raise Conflict("This email is already registered.", errors={"admin.email": ["already registered"]},
                       next_step="use another email, or sign in with the existing account")
    org = Organization(name=name, type=type, region=region, city=city, zone=zone,
                       registration_number=registration_number, status=OrgStatus.PENDING)
    session.add(org)
    session.flush()
    session.add(User(org_id=org.id, email=email, name=admin["name"], role="admin",
                     password_hash=hash_password(admin["password"])))
    session.flush()
    return org


def create_operator(session: Session, *, org_name: str, email: str, password: str,
                    name: str = "Exchange operator") -> tuple[Organization, User, bool]:
    """Create the exchange's operator organization and an admin; idempotent on the same email.

    Returns (organization, user, created). Raises ValidationFailed or Conflict.
    """
    _check_password_rules(password)
    email = _normalize_email(email)
    existing = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    if existing is not None:
        if existing.organization.type != "operator":
            raise Conflict(f"{email} already belongs to a non-operator organization.",
                           next_step="use an email that is not registered yet for the operator")
        return existing.organization, existing, False
    org = session.execute(select(Organization).where(Organization.name == org_name)).scalar_one_or_none()
    if org is None:
        org = Organization(name=org_name, type="operator", region="GD", status=OrgStatus.VERIFIED,
                           registration_number=f"OPERATOR-{org_name}"[:64])
        session.add(org)
        session.flush()
    elif org.type != "operator":
        raise Conflict(f"Organization {org_name!r} exists and is not an operator.",
                       next_step="choose another name for the operator organization")
    user = User(org_id=org.id, email=email, name=name, role="admin", password_hash=hash_password(password))
    session.add(user)
    session.flush()
    audit.record(session, None, "operator.created", "organization", org.id, email=email)
    return org, user, True


def _dummy_hash() -> str:
    method = current_app.config["PASSWORD_HASH_METHOD"]
    if method not in _DUMMY_HASH:
        _DUMMY_HASH[method] = generate_password_hash("not-a-real-password-000", method=method)
    return _DUMMY_HASH[method]


# The per-address bound on failed logins, as a multiple of the per-email limit (same period).
LOGIN_ADDRESS_FACTOR = 10


def login(session: Session, *, email: str, password: str, client_addr: str) -> dict[str, Any]:
    """Verify credentials and issue a token pair.

    Per email (`LOGIN_RATE_LIMIT`): a slot is reserved atomically *before* the password is
    verified and given back when it was right, so N concurrent wrong passwords against a limit of L
    have at most L verified; past the limit every attempt, right or wrong, answers 429.
    Per client address (`LOGIN_ADDRESS_FACTOR` x that limit, for everyone behind one NAT): never a
    reason to refuse a right password; past it, wrong passwords answer 429 instead of 401.
    Unauthorized has one answer for unknown email and wrong password. The counts are written in
    their own transactions, so the request's rollback keeps them.
    """
    email = _normalize_email(email)
    window = ratelimit.Window.parse(current_app.config["LOGIN_RATE_LIMIT"])
    by_address = ratelimit.Window(window.limit * LOGIN_ADDRESS_FACTOR, window.period)
    # Both before the request's transaction starts (SQLite: one write lock, taken by the session).
    held = ratelimit.consume(f"login:email:{email}", window, what="failed logins")
    addr = ratelimit.record(f"login:addr:{client_addr}", by_address)
    user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    ok = check_password_hash(user.password_hash if user else _dummy_hash(), password)
    if ok and user is not None and user.active and user.organization.status != OrgStatus.REJECTED:
        # Successes do not count: give both slots back once the request's transaction has ended.
        def give_back() -> None:
            ratelimit.release(held)
            ratelimit.release(addr)

        after_transaction(give_back)
        return token_pair(session, user)
    if addr.count > by_address.limit:
        raise ratelimit.refusal(addr, "failed logins from your address")
    raise Unauthorized("Wrong email or password.")


def _get_org(session: Session, org_id: str, *, for_update: bool = False) -> Organization:
    org = load_for_update(session, Organization, org_id) if for_update else session.get(Organization, org_id)
    if org is None:
        raise NotFound("No such organization.")
    return org


def can_see_private(org: Organization, principal: Principal | None) -> bool:
    return principal is not None and (principal.org_id == org.id or principal.is_operator)


def get_organization(session: Session, *, org_id: str, principal: Principal | None) -> Organization:
    """Verified organizations are public; others only to their members and operators (else 404)."""
    org = _get_org(session, org_id)
    if org.status == OrgStatus.VERIFIED or can_see_private(org, principal):
        return org
    raise NotFound("No such organization.")


def suspended_org_ids(session: Session) -> list[str]:
    """The organizations suspended now (few, usually none): what the catalog and the board leave out.

    One read of the status index, so a caller adds no filter at all when the list is empty.
    """
    return list(session.execute(
        select(Organization.id).where(Organization.status == OrgStatus.SUSPENDED).order_by(Organization.id)
    ).scalars())


def active_counterparty(session: Session, *, org_id: str, role: str, actor: Principal | None,
                        lock: bool = True) -> Organization:
    """The organization `org_id` on one side of a deal, refused while it is suspended: a member of
    it gets Forbidden (its own writes), anyone else Conflict naming `role` ("The seller organization
    is suspended."). Raises NotFound for an unknown id.

    `lock` reads the row FOR KEY SHARE (PostgreSQL): suspending takes the row FOR UPDATE, which
    conflicts with it, so a check that passed holds the suspension back until its transaction ends,
    and a suspension that committed first is seen here (a deal and a suspension serialize, either
    order). The weakest row lock that does so: concurrent deals of one organization share it and a
    profile edit (FOR NO KEY UPDATE) does not wait for it. SQLite needs none: a writing request holds
    the database's write lock throughout.
    """
    stmt = select(Organization).where(Organization.id == org_id).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update(read=True, key_share=True)
    org = session.execute(stmt).scalar_one_or_none()
    if org is None:
        raise NotFound("No such organization.")
    if org.status == OrgStatus.SUSPENDED:
        if actor is not None and actor.org_id == org.id:
            raise Forbidden("Your organization is suspended: it may read its data but not write.",
                            next_step="an operator must reinstate your organization first")
        raise Conflict(f"The {role} organization is suspended.",
                       next_step=f"an operator must reinstate the {role} organization first")
    return org


def list_organizations(*, principal: Principal, status: str | None, type: str | None = None) -> Any:
    """The operators' view of every organization, filterable by status and type (a select)."""
    principal.require_operator()
    stmt = select(Organization).order_by(Organization.created_at, Organization.id)
    if status:
        stmt = stmt.where(Organization.status == status)
    if type:
        stmt = stmt.where(Organization.type == type)
    return stmt


def change_status(session: Session, *, org_id: str, target: str, reason: str,
                  actor: Principal) -> Organization:
    """Operator decision on an organization (verify, reject, suspend, reinstate), audited.

    Raises Forbidden (not an operator), NotFound, InvalidTransition (409).
    """
    actor.require_operator()
    org = _get_org(session, org_id, for_update=True)
    if org.type == "operator":
        raise Forbidden("The exchange's own operator organization cannot be changed this way.",
                        next_step="none: the exchange's own operator organization always stays verified")
    previous = transition(org, ORG_TRANSITIONS, target, actor=actor, what="Organization")
    org.status_reason = reason
    org.status_changed_at = utcnow()
    if target in (OrgStatus.SUSPENDED, OrgStatus.REJECTED):
        user_ids = list(session.execute(select(User.id).where(User.org_id == org.id)).scalars())
        revoke_user_tokens(session, user_ids)
    audit.record(session, actor, f"organization.{_verb(previous, target)}", "organization", org.id,
                 reason=reason, from_status=previous, to_status=str(target))
    if target == OrgStatus.VERIFIED:
        hooks.call("organization_verified", session, org=org, actor=actor, previous=str(previous), reason=reason)
    session.flush()
    return org


def _verb(previous: str, target: str) -> str:
    if target == OrgStatus.VERIFIED:
        return "reinstated" if previous == OrgStatus.SUSPENDED else "verified"
    return str(target)


def _require_editor(org: Organization, actor: Principal) -> None:
    if not (actor.is_operator or (actor.org_id == org.id and actor.is_admin)):
        raise Forbidden("Only the organization's admins or operators may edit it.",
                        next_step="ask an admin of the organization (or an operator) to make the change")


def check_may_edit(session: Session, actor: Principal, *, org_id: str, **_ids: Any) -> None:
    """Whether the actor may edit the organization at all (its admins, operators): Forbidden, NotFound.
    Reads only; which fields it may change is the service's check of the body."""
    _require_editor(get_organization(session, org_id=org_id, principal=actor), actor)


def update_organization(session: Session, *, org_id: str, changes: dict[str, Any],
                        actor: Principal) -> Organization:
    """PATCH: profile fields by the org's admin; type/status/region/payout account by operators only.

    Raises NotFound, Forbidden, InvalidTransition.
    """
    org = get_organization(session, org_id=org_id, principal=actor)
    # Locked and re-read before comparing: of concurrent PATCHes of `status` one changes it and the
    # others find it done (no stale read sending them into a transition that is no longer allowed).
    org = load_for_update(session, Organization, org.id)
    restricted = OPERATOR_ONLY_FIELDS & changes.keys()
    _require_editor(org, actor)
    if restricted and not actor.is_operator:
        raise Forbidden("Only exchange operators may change " + ", ".join(sorted(restricted)) + ".",
                        errors={f: ["operators only"] for f in sorted(restricted)},
                        next_step="leave these fields out, or ask the exchange's operators to change them")
    if "type" in changes and changes["type"] != org.type and "operator" in (changes["type"], org.type):
        raise field_error("type", "cannot change to or from operator")
    if {"region", "city", "zone"} & changes.keys():
        check_place(changes.get("region", org.region), changes.get("city", org.city), changes.get("zone", org.zone))
    if "status" in changes and changes["status"] != org.status:
        change_status(session, org_id=org.id, target=changes["status"],
                      reason=changes.get("status_reason") or "changed by operator", actor=actor)
    for key, value in changes.items():
        if key not in ("status", "status_reason"):
            setattr(org, key, value)
    if restricted and actor.is_operator:
        audit.record(session, actor, "organization.updated", "organization", org.id,
                     fields=sorted(restricted & changes.keys()))
    session.flush()
    return org


def _require_org_admin(session: Session, org_id: str, actor: Principal) -> Organization:
    org = get_organization(session, org_id=org_id, principal=actor)  # 404 unless visible to the caller
    if actor.org_id != org.id:
        raise Forbidden("Only the organization's own admins may do this.",
                        next_step="sign in as an admin of this organization")
    if not actor.is_admin:
        raise Forbidden("Only the organization's admins may do this.",
                        next_step="ask an admin of your organization to do it")
    return org


def check_org_admin(session: Session, actor: Principal, *, org_id: str, **_ids: Any) -> None:
    """Whether the actor is an admin of the organization (members, keys): Forbidden, NotFound. Reads only."""
    _require_org_admin(session, org_id, actor)


def add_member(session: Session, *, org_id: str, email: str, password: str, name: str, role: str,
               actor: Principal) -> User:
    """An org admin adds a user to their organization. Raises Forbidden, NotFound, Conflict, 422."""
    org = _require_org_admin(session, org_id, actor)
    _check_password_rules(password)
    email = _normalize_email(email)
    if _email_taken(session, email):
        raise Conflict("This email is already registered.", errors={"email": ["already registered"]},
                       next_step="use another email; the existing user can sign in with it")
    user = User(org_id=org.id, email=email, name=name, role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    audit.record(session, actor, "member.added", "user", user.id, org_id=org.id, role=role)
    return user


def list_members(session: Session, *, org_id: str, actor: Principal) -> Any:
    org = get_organization(session, org_id=org_id, principal=actor)
    if not can_see_private(org, actor):
        raise Forbidden("Only the organization's members and operators may list its members.",
                        next_step="sign in as a member of the organization")
    return select(User).where(User.org_id == org.id).order_by(User.created_at, User.id)


def decode_public_key(value: str) -> bytes:
    """Base64 of a raw 32-byte Ed25519 public key; raises ValidationFailed otherwise."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise field_error("public_key", "must be base64") from None
    if len(raw) != 32:
        raise field_error("public_key", "must be a raw 32-byte Ed25519 public key")
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise field_error("public_key", "is not a valid Ed25519 public key") from None
    if hmac.compare_digest(raw, bytes(32)):
        raise field_error("public_key", "is not a valid Ed25519 public key")
    return raw


def add_key(session: Session, *, org_id: str, public_key: str, actor: Principal,
            label: str | None = None) -> OrganizationKey:
    """Register an organization's Ed25519 signing key. Raises Forbidden, NotFound, 422, Conflict."""
    org = _require_org_admin(session, org_id, actor)
    raw = decode_public_key(public_key)
    normalized = base64.b64encode(raw).decode()
    if session.execute(select(OrganizationKey.key_id).where(OrganizationKey.public_key == normalized)).first():
        raise Conflict("This public key is already registered.", errors={"public_key": ["already registered"]},
                       next_step="generate a new key pair and register its public key")
    key = OrganizationKey(org_id=org.id, public_key=normalized, label=label, created_by=actor.user_id)
    session.add(key)
    session.flush()
    audit.record(session, actor, "key.registered", "organization_key", key.key_id, org_id=org.id)
    return key


def list_keys(session: Session, *, org_id: str, actor: Principal | None) -> Any:
    """Registered keys are public for verified organizations: anyone may verify a contract signature."""
    org = get_organization(session, org_id=org_id, principal=actor)
    return select(OrganizationKey).where(OrganizationKey.org_id == org.id).order_by(
        OrganizationKey.created_at, OrganizationKey.key_id)


def revoke_key(session: Session, *, org_id: str, key_id: str, actor: Principal) -> OrganizationKey:
    """Revoke a signing key: old signatures stay verifiable, new ones are refused."""
    org = _require_org_admin(session, org_id, actor)
    # Locked and re-read: of two concurrent revocations the second sees the first's and answers 409.
    key = load_for_update(session, OrganizationKey, key_id)
    if key is None or key.org_id != org.id:
        raise NotFound("No such key.")
    if key.revoked_at is not None:
        raise Conflict("This key is already revoked.", next_step="nothing to do; register a new key if you need one")
    key.revoked_at = utcnow()
    audit.record(session, actor, "key.revoked", "organization_key", key.key_id, org_id=org.id)
    session.flush()
    return key


def get_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise Unauthorized("Unknown user.")
    return user
