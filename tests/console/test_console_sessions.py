"""Console sessions (CONSOLE.md, Sessions): sign-in with the API's credentials and limits, the signed
HttpOnly cookie, sign-out ending the login, CSRF on every form, the session's lifetime."""

from __future__ import annotations

from typing import Any

from exchange.db import db
from exchange.identity.models import RefreshToken
from tests.console.helpers import Console, text


def test_home_for_browsers_and_index_for_json_clients(client: Any) -> None:
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "Search the catalog" in text(page) or "搜索数据目录" in text(page)
    index = client.get("/", headers={"Accept": "application/json"})
    assert index.mimetype == "application/json" and "links" in index.get_json()


def test_sign_in_shows_the_organization_and_user_and_sign_out_ends_the_login(app: Any, api: Any) -> None:
    vendor = api.vendor()
    c = Console(app)
    r = c.get("/login")
    assert r.status_code == 200 and "Email" in text(r) and "Password" in text(r)
    c.login(vendor.email)
    page = text(c.get("/home"))
    assert "Sign out" in page and "Admin " in page and "测试机构" in page  # the user and the organization
    cookie = c.client.get_cookie("datafair_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    with app.app_context():
        live = db.session.query(RefreshToken).filter_by(user_id=vendor.user_id, revoked_at=None).count()
    r = c.post("/logout", page="/home")
    assert r.status_code == 303
    assert "Sign out" not in text(c.get("/home"))
    with app.app_context():
        assert db.session.query(RefreshToken).filter_by(user_id=vendor.user_id, revoked_at=None).count() == live - 1


def test_wrong_password_and_unknown_email_say_the_same_and_keep_the_email(app: Any, api: Any) -> None:
    vendor = api.vendor()
    c = Console(app)
    wrong = c.post("/login", {"email": vendor.email, "password": "not the password"})
    unknown = c.post("/login", {"email": "nobody@nowhere.test", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password" in text(wrong) and "Wrong email or password" in text(unknown)
    assert f'value="{vendor.email}"' in wrong.get_data(as_text=True)


def test_a_post_without_or_with_a_wrong_csrf_token_is_400_and_signs_nobody_in(app: Any, api: Any) -> None:
    vendor = api.vendor()
    c = Console(app)
    for token in (None, "forged"):
        body = {"email": vendor.email, "password": "correct horse battery staple"}
        if token:
            body["csrf_token"] = token
        r = c.post("/login", body, csrf=False)
        assert r.status_code == 400
        assert "reload the page" in text(r)
        assert "Sign out" not in text(c.get("/home"))


def test_the_session_ends_after_the_configured_hours(app: Any, api: Any) -> None:
    vendor = api.vendor()
    c = Console(app)
    c.login(vendor.email)
    assert "Sign out" in text(c.get("/home"))
    with c.client.session_transaction() as cookie:
        cookie["at"] -= 8 * 3600 + 60  # signed in more than DATAFAIR_CONSOLE_SESSION_HOURS (8) ago
    assert "Sign out" not in text(c.get("/home"))


def test_language_from_the_query_is_remembered(app: Any) -> None:
    c = Console(app, lang="en")
    assert "搜索数据目录" in text(c.get("/home?lang=zh-CN"))
    assert "搜索数据目录" in text(c.get("/home"))
    assert "Search the catalog" in text(c.get("/home?lang=en"))
