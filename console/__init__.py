"""The web console (CONSOLE.md): server-rendered pages for the public, vendors, buyers and operators.

The top layer: it calls the domains' services and queries and renders their answers; it holds no
rule of its own. Each request is the kernel's (one transaction, committed when the page succeeds,
rolled back on any refusal), so a refused form changes nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Flask, Response, current_app, g, redirect, request, session, url_for
from flask_wtf.csrf import CSRFError, generate_csrf
from werkzeug.exceptions import HTTPException, NotFound

from console import i18n, web
from exchange.db import db
from exchange.errors import DomainError, Forbidden, render_http_exception, with_next_step
from exchange.identity.routes import HTML_HOME

# No inline script or style anywhere; images may be data: URIs (the QR codes).
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
log = logging.getLogger("datafair.console")


def init_app(app: Flask, _api: Any = None) -> None:

    hours = int(app.config["CONSOLE_SESSION_HOURS"])
    app.config.update(
        SESSION_COOKIE_NAME="datafair_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Production is served over HTTPS (deploy/); development and tests over plain http on loopback.
        SESSION_COOKIE_SECURE=app.config.get("DATAFAIR_ENV") == "production",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=hours),
        # CSRF is checked by the console's own before_request (the API's bearer-token routes have none).
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=hours * 3600,
        WTF_CSRF_SSL_STRICT=False,
    )
    web.csrf.init_app(app)
    app.register_blueprint(web.bp)
    app.after_request(_headers)
    app.register_error_handler(NotFound, _app_not_found)
    app.extensions[HTML_HOME] = public.home


def _is_console() -> bool:
    return request.blueprint == web.bp.name or request.path == "/" or request.path.startswith(web.PREFIXES)


def _protect() -> None:
    if request.method in SAFE:
        return
    if request.endpoint in web.LARGE_BODIES:
        # Before the CSRF check reads the form: the parser spools files to disk, under this limit.
        request.max_content_length = int(current_app.config["MAX_UPLOAD_BYTES"])
    web.csrf.protect()
    p = web.principal()
    # The lookup's reads end here so the page's own transaction starts clean (as the API does).
    db.session.rollback()
    g.pop("console_principal", None)
    if p is not None and p.is_suspended and request.endpoint not in ("console.logout", "console.login"):
        raise Forbidden(i18n.t("Your organization is suspended: it may read its data but not write."),
                        next_step="an operator must reinstate your organization first")


def _context() -> dict[str, Any]:
    if not _is_console():
        return {}
    p = web.principal()
    return {
        "_": i18n.t, "lang": i18n.lang(), "me": p, "me_user": g.get("console_user"), "me_org": g.get("console_org"),
        "csrf_token": generate_csrf, "money": web.money, "flash": session.pop("flash", None),
        "other_lang": "en" if i18n.lang() != "en" else "zh-CN",
    }


def _page(status: int, title: str, message: str) -> Response:
    db.session.rollback()
    return web.render("console/error.html", status, title=title, message=message)


def _not_found() -> Response:
    return _page(404, i18n.t("Not found"), i18n.t("This page does not exist or is not visible to you."))


def _domain_error(error: DomainError) -> Response:
    if error.status == 404:
        return _not_found()
    return _page(error.status, i18n.t("Error"), with_next_step(error.detail, error.next_step))


def _sign_in_required(_error: Exception) -> Response:
    return redirect(url_for("console.login", next=request.full_path.rstrip("?")), code=303)


def _csrf_error(_error: CSRFError) -> Response:
    return _page(400, i18n.t("Bad request"),
                 i18n.t("The form has expired or was not sent from this site; reload the page and try again."))


def _http_error(error: HTTPException) -> Any:
    if error.code == 404:
        return _not_found()
    if error.code and error.code < 500:
        return _page(error.code, error.name, error.description or "")
    return _unexpected(error)


def _unexpected(error: Exception) -> Any:
    log.exception("console page failed", exc_info=error)
    return _page(500, i18n.t("Error"),
                 i18n.t("Something went wrong on our side; nothing was changed. Try again in a moment."))


def _app_not_found(error: NotFound) -> Any:
    if request.path.startswith(web.PREFIXES) and not request.path.startswith("/console/static/"):
        return _not_found()
    return render_http_exception(error)


def _headers(response: Response) -> Response:
    if not _is_console() or (response.mimetype != "text/html" and not request.path.startswith("/console/static/")):
        return response
    response.headers["Content-Security-Policy"] = CSP
    if request.path.startswith("/console/static/"):
        response.headers["Cache-Control"] = "public, max-age=3600"
    else:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "Cookie, Accept, Accept-Language"
    chosen = g.pop("console_lang_set", None)
    if chosen:
        response.set_cookie(i18n.COOKIE, chosen, max_age=365 * 86400, httponly=True, samesite="Lax",
                            secure=bool(request.is_secure))
    for key in ("console_principal", "console_lang", "console_user", "console_org"):
        g.pop(key, None)
    return response


# The blueprint is set up once per process (tests build many apps from it); each page module adds
# its routes to it when imported here.
web.bp.before_request(_protect)
web.bp.register_error_handler(DomainError, _domain_error)
web.bp.register_error_handler(web.SignInRequired, _sign_in_required)
web.bp.register_error_handler(CSRFError, _csrf_error)
web.bp.register_error_handler(HTTPException, _http_error)
web.bp.register_error_handler(Exception, _unexpected)
web.bp.app_context_processor(_context)
from console import buyer, catalog, deals, offers, operator, public, vendor  # noqa: E402, F401
