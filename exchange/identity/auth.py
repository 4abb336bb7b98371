"""Authentication: short-lived JWT access tokens, opaque rotating refresh tokens, the Principal.

Access tokens: HS256 only (a fixed allow-list, never read from the token header), with `iss`, `aud`,
`typ=access`, `exp`, `iat`, `jti`, at most 15 minutes. Refresh tokens are random strings stored as
sha256, usable once; presenting a used one revokes its whole family (a stolen token was replayed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

import jwt
from flask import current_app, request
from sqlalchemy import ColumnElement, Connection, select, update
from sqlalchemy.orm import Session

from exchange.db import after_transaction, db, new_id, utcnow, wallclock
from exchange.errors import Unauthorized
from exchange.identity.models import Organization, RefreshToken, User
from exchange.identity.states import OrgStatus
from exchange.principal import Principal

ISSUER = "datafair"
AUDIENCE = "datafair-api"
ALGORITHMS = ["HS256"]
ACCESS_TYP = "access"
MAX_ACCESS_SECONDS = 900


def _signing_key() -> bytes:
    # A dedicated subkey: the JWT key never equals the raw secret used for anything else.
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, b"datafair/jwt/v1", hashlib.sha256).digest()


def issue_access_token(user: User, family_id: str | None = None) -> tuple[str, int]:
    lifetime = min(int(current_app.config["ACCESS_TOKEN_SECONDS"]), MAX_ACCESS_SECONDS)
    now = wallclock()
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user.id,
        "org": user.organization.id,
        "typ": ACCESS_TYP,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=lifetime)).timestamp()),
        "jti": secrets.token_urlsafe(16),
    }
    if family_id:
        claims["fam"] = family_id
    return jwt.encode(claims, _signing_key(), algorithm="HS256", headers={"typ": "at+jwt"}), lifetime


def decode_access_token(token: str) -> dict[str, Any]:
    """Verify signature, algorithm, issuer, audience, expiry and token use; raises Unauthorized."""
    if len(token) > 4096:
        raise Unauthorized("Invalid access token.")
    try:
        claims = jwt.decode(
            token,
            _signing_key(),
            algorithms=ALGORITHMS,
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=10,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti", "typ"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The access token has expired; refresh it.") from None
    except jwt.PyJWTError:
        raise Unauthorized("Invalid access token.") from None
    if claims.get("typ") != ACCESS_TYP or not isinstance(claims.get("sub"), str):
        raise Unauthorized("Invalid access token.")
    return claims


def _hash_refresh(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_refresh_token(session: Session, user: User, family_id: str) -> str:
    token = "rt_" + secrets.token_urlsafe(32)
    session.add(RefreshToken(
        token_hash=_hash_refresh(token),
        family_id=family_id,
        user_id=user.id,
        expires_at=wallclock() + timedelta(days=int(current_app.config["REFRESH_TOKEN_DAYS"])),
    ))
    return token


def token_pair(session: Session, user: User, family_id: str | None = None) -> dict[str, Any]:
    family_id = family_id or new_id("fam")
    access, lifetime = issue_access_token(user, family_id)
    return {
        "access_token": access,
        "refresh_token": issue_refresh_token(session, user, family_id),
        "token_type": "Bearer",
        "expires_in": lifetime,
    }


def rotate_refresh_token(session: Session, token: str) -> dict[str, Any]:
    """Exchange a refresh token for a new pair; raises Unauthorized.

    A used token presented again means it was stolen or replayed: the whole family is revoked, in
    its own transaction so the 401's rollback keeps the revocation.
    """
    if not isinstance(token, str) or len(token) > 200:
        raise Unauthorized("Invalid refresh token.")
    row = session.execute(
        select(RefreshToken).where(RefreshToken.token_hash == _hash_refresh(token)).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= wallclock():
        raise Unauthorized("Invalid refresh token.")
    if row.used_at is not None:
        _revoke_family_after(row.family_id)
        raise Unauthorized("This refresh token was already used; every session of this login is revoked.")
    # Conditional update: two racing rotations of the same token cannot both win.
    res = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if res.rowcount != 1:
        _revoke_family_after(row.family_id)
        raise Unauthorized("This refresh token was already used; every session of this login is revoked.")
    user = session.get(User, row.user_id)
    if user is None or not user.active or user.organization.status == OrgStatus.REJECTED:
        raise Unauthorized("Invalid refresh token.")
    return token_pair(session, user, row.family_id)


def _revoke(executor: Session | Connection, *criteria: ColumnElement[bool]) -> None:
    """Revoke the live refresh tokens matching `criteria`.

    They are locked first (in id order, as every revocation locks them): a rotation in flight holds
    its old token until it commits, so the revocation waits for it, and the UPDATE after the wait is
    a new statement that sees the token the rotation handed out. A single UPDATE would not: its
    snapshot predates that token, which would outlive the revocation.
    """
    live = (RefreshToken.revoked_at.is_(None), *criteria)
    executor.execute(select(RefreshToken.id).where(*live).order_by(RefreshToken.id).with_for_update())
    executor.execute(update(RefreshToken).where(*live).values(revoked_at=utcnow()))


def revoke_family(session: Session, family_id: str, *, user_id: str | None = None) -> None:
    """Revoke every refresh token of one login (optionally only if it is `user_id`'s)."""
    criteria = [RefreshToken.family_id == family_id]
    if user_id is not None:
        criteria.append(RefreshToken.user_id == user_id)
    _revoke(session, *criteria)


def _revoke_family_after(family_id: str) -> None:
    def revoke() -> None:
        with db.engine.begin() as conn:
            _revoke(conn, RefreshToken.family_id == family_id)

    after_transaction(revoke)


def revoke_refresh_token_family(session: Session, token: str, principal: Principal) -> bool:
    """Logout: revoke the family of `token` if it belongs to the caller."""
    row = session.execute(
        select(RefreshToken).where(RefreshToken.token_hash == _hash_refresh(token))
    ).scalar_one_or_none()
    if row is None or row.user_id != principal.user_id:
        return False
    revoke_family(session, row.family_id)
    return True


def revoke_user_tokens(session: Session, user_ids: list[str]) -> None:
    """Revoke every login of these users (suspension, rejection, logout of every session)."""
    _revoke(session, RefreshToken.user_id.in_(user_ids))


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def load_principal() -> Principal | None:
    """The caller of this request from its Bearer token (None without one); raises Unauthorized on a bad one.

    Registered as the kernel's principal loader (`exchange.principal.current_principal` caches it).
    """
    token = bearer_token()
    p = None
    if token is not None:
        claims = decode_access_token(token)
        row = db.session.execute(
            select(User, Organization)
            .join(Organization, Organization.id == User.org_id)
            .where(User.id == claims["sub"])
        ).first()
        if row is None or not row[0].active or row[1].status == OrgStatus.REJECTED:
            raise Unauthorized("Invalid access token.")
        user, org = row
        family = claims.get("fam")
        p = Principal(user_id=user.id, org_id=org.id, org_type=org.type, org_status=org.status,
                      role=user.role, email=user.email,
                      family_id=family if isinstance(family, str) else None)
    elif request.headers.get("Authorization"):
        raise Unauthorized("Use an 'Authorization: Bearer <access token>' header.")
    return p


def peek_user_id() -> str | None:
    """The user id of a valid access token, without touching the database (idempotency scope)."""
    token = bearer_token()
    if not token:
        return None
    try:
        return decode_access_token(token)["sub"]
    except Unauthorized:
        return None
