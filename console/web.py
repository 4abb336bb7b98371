"""The console's request plumbing: the blueprint, the signed session, CSRF, rendering and refusals.

The session cookie (Flask's signed cookie) holds the user id, the refresh-token family the sign-in
created and the sign-in time. Each request looks them up again: a revoked family (sign-out, an
operator's suspension or rejection), an inactive user or an expired session is no session.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFProtect
from marshmallow import Schema
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import select

from console import i18n
from exchange.db import db, wallclock
from exchange.errors import DomainError, ValidationFailed, flatten_webargs_errors, with_next_step
from exchange.identity import auth
from exchange.identity import services as identity
from exchange.identity.models import Organization, RefreshToken, User
from exchange.identity.states import OrgStatus
from exchange.money import CURRENCIES, format_amount, major_text, parse_major
from exchange.principal import Principal

bp = Blueprint("console", __name__, template_folder="templates", static_folder="static",
               static_url_path="/console/static")
csrf = CSRFProtect()
# Path prefixes the console owns (its 404 pages are HTML, not problem+json).
PREFIXES = ("/console", "/login", "/logout", "/home", "/catalog", "/verify", "/fairs")
SESSION_KEYS = ("uid", "fam", "at")
# Endpoints whose form may carry files up to DATAFAIR_MAX_UPLOAD_BYTES (a release's files), not 1 MiB.
LARGE_BODIES: set[str] = set()


def _session_age_ok(started: Any) -> bool:
    if not isinstance(started, int | float):
        return False
    hours = int(current_app.config["CONSOLE_SESSION_HOURS"])
    return wallclock() - datetime.fromtimestamp(started, UTC) < timedelta(hours=hours)


def principal() -> Principal | None:
    """The signed-in user of this request (None when nobody is, or the session has ended)."""
    if "console_principal" in g:
        return g.console_principal
    p = None
    uid, fam, started = (session.get(k) for k in SESSION_KEYS)
    if isinstance(uid, str) and isinstance(fam, str) and _session_age_ok(started):
        row = db.session.execute(
            select(User, Organization).join(Organization, Organization.id == User.org_id).where(User.id == uid)
        ).first()
        live = db.session.execute(
            select(RefreshToken.id).where(RefreshToken.family_id == fam, RefreshToken.user_id == uid,
                                          RefreshToken.revoked_at.is_(None)).limit(1)
        ).first()
        if row is not None and live is not None and row[0].active and row[1].status != OrgStatus.REJECTED:
            user, org = row
            p = Principal(user_id=user.id, org_id=org.id, org_type=org.type, org_status=org.status,
                          role=user.role, email=user.email, family_id=fam)
            g.console_user = user
            g.console_org = org
    if p is None and any(k in session for k in SESSION_KEYS):
        session.clear()
    g.console_principal = p
    # Schemas and services that ask "who is calling" see the same user as the page.
    g.principal = p
    return p


def require_principal() -> Principal:
    p = principal()
    if p is None:
        raise SignInRequired
    return p


class SignInRequired(Exception):
    """Raised by a page that needs a signed-in user: answered with a redirect to /login."""


def sign_in(email: str, password: str) -> Principal:
    """Check the credentials with the API's own login (same limits, same refusals) and start a session."""
    pair = identity.login(db.session, email=email, password=password, client_addr=request.remote_addr or "")
    claims = auth.decode_access_token(pair["access_token"])
    session.clear()
    session.permanent = True
    session.update({"uid": claims["sub"], "fam": claims["fam"], "at": int(wallclock().timestamp())})
    g.pop("console_principal", None)
    p = principal()
    assert p is not None
    return p


def sign_out() -> None:
    p = principal()
    if p is not None and p.family_id:
        auth.revoke_family(db.session, p.family_id, user_id=p.user_id)
    session.clear()


def render(template: str, status: int = 200, **context: Any) -> Response:
    return make_response(render_template(template, **context), status)


def refused(error: DomainError, template: str, **context: Any) -> Response:
    """A service's refusal as a sentence on the same page, the form keeping what was typed.

    The status is the API's (4xx), so the request's transaction is rolled back: nothing changes."""
    message = with_next_step(error.detail, error.next_step) if error.detail else i18n.t("That was refused.")
    errors = getattr(error, "errors", None) or {}
    context.setdefault("form", request.form)
    return render(template, error.status, error=message, field_errors=errors, **context)


def see_other(endpoint: str, flash: str | None = None, **values: Any) -> Response:
    """After a successful form: 303 to the page that shows the result (the transaction commits)."""
    if flash:
        session["flash"] = flash
    return redirect(url_for(endpoint, **values), code=303)


def form_value(name: str) -> str:
    return (request.form.get(name) or "").strip()


def load(schema: Schema, data: dict[str, Any]) -> Any:
    """Validate a form with the API's own load schema: the same fields, limits and messages."""
    try:
        return schema.load(data)
    except MarshmallowError as exc:
        errors = flatten_webargs_errors(exc.messages)
        fields = ", ".join(sorted(errors))
        raise ValidationFailed(i18n.t("Check these fields: {fields}.", fields=fields), errors=errors) from None


def minor_units(text: str, currency: str | None) -> int | None:
    """A typed amount in exact minor units (exchange.money.parse_major); None when it is not one."""
    try:
        return parse_major(text, currency or "")
    except ValueError:
        return None


def major_units(amount: int | None, currency: str | None) -> str:
    """The form's text of an amount (`1250000` -> `12500.00`)."""
    return "" if amount is None or currency not in CURRENCIES else major_text(amount, currency)


def words(text: str) -> list[str]:
    """A list typed in one field: keywords or ids separated by commas (also ，、;；)."""
    return [w.strip() for w in re.split(r"[,，、;；]", text) if w.strip()]


def money(amount: int | None, currency: str | None) -> str:
    if amount is None or not currency:
        return ""
    return format_amount(int(amount), currency)


def org_names(org_ids: Iterable[str]) -> dict[str, str]:
    """The names of many organizations in one query (a list page's counterparties)."""
    ids = sorted(set(org_ids))
    if not ids:
        return {}
    return dict(db.session.execute(select(Organization.id, Organization.name).where(Organization.id.in_(ids))).all())


def org_name(org_id: str | None) -> str:
    if not org_id:
        return ""
    org = db.session.get(Organization, org_id)
    return org.name if org is not None else ""
