"""A signed-in browser for the console's server-side tests: Flask's test client with the session
cookie, and each form's CSRF token read from the page it is posted from (as a browser does)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from tests.factories import PASSWORD

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    def __init__(self, app: Any, lang: str = "en") -> None:
        self.app = app
        self.client = app.test_client()
        self.lang = lang
        self.client.set_cookie("datafair_lang", lang)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers={"Accept": "text/html"}, **kw)

    def token(self, page: str) -> str:
        r = self.get(page)
        m = TOKEN.search(r.get_data(as_text=True))
        assert m, f"no CSRF token on {page} ({r.status_code})"
        return unescape(m.group(1))

    def post(self, path: str, data: dict[str, Any] | None = None, *, page: str | None = None,
             csrf: bool = True, **kw: Any) -> Any:
        body = dict(data or {})
        if csrf:
            body.setdefault("csrf_token", self.token(page or path))
        return self.client.post(path, data=body, headers={"Accept": "text/html"}, **kw)

    def login(self, email: str, password: str = PASSWORD) -> Any:
        r = self.post("/login", {"email": email, "password": password})
        assert r.status_code == 303, r.get_data(as_text=True)[:2000]
        return r


def text(response: Any) -> str:
    """The page's visible text, roughly (tags removed, entities decoded): what a reader sees."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()
