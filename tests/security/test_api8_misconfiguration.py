"""OWASP API8:2023 Security Misconfiguration: security headers on every kind of answer, HSTS over
HTTPS, CORS only for the configured origins (DATAFAIR_CORS_ORIGINS), no debug, no stack traces and no
server banner — checked in process and under a real gunicorn in production mode.

(That production never enables debug, whatever FLASK_DEBUG says, is tests/unit/test_config.py; that a
500 carries no stack trace in either mode is tests/api/test_errors.py.)
"""

from __future__ import annotations

import re
import secrets
import socket
import urllib.error
import urllib.request

import pytest

from exchange.config import ConfigError, load_config, validate_config
from tests.api.test_ratelimit import gunicorns

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
ALLOWED = "https://app.datafair.example"


def _requests(api):
    vendor = api.vendor()
    return [
        ("GET", "/api/v1/health", {}, None),
        ("GET", "/api/v1/nowhere", {}, None),  # 404 from routing
        ("DELETE", "/api/v1/health", {}, None),  # 405
        ("GET", "/api/v1/me", {}, None),  # 401
        ("GET", "/api/v1/audit", vendor.headers, None),  # 403
        ("POST", "/api/v1/organizations", {"Content-Type": "application/json"}, b"{not json"),  # 400
        ("POST", "/api/v1/organizations", {"Content-Type": "text/plain"}, b"x"),  # 415
        ("POST", "/api/v1/organizations", {"Content-Type": "application/json"}, b"{}"),  # 422
        ("GET", "/api/v1/openapi.json", {}, None),
        ("GET", "/api/v1/docs", {}, None),
        ("GET", "/.well-known/jwks.json", {}, None),
        ("GET", "/api/v1/products?q=交通", {}, None),
    ]


def test_every_kind_of_answer_carries_the_security_headers_and_no_banner(api):
    for method, path, headers, data in _requests(api):
        r = api.client.open(path, method=method, headers=headers, data=data)
        for name, value in HEADERS.items():
            assert r.headers.get(name) == value, (path, r.status_code, name, r.headers.get(name))
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"], path
        assert r.headers["X-Request-Id"], path
        assert "Server" not in r.headers, (path, r.headers.get("Server"))
        assert "Strict-Transport-Security" not in r.headers  # plain HTTP: HSTS would be ignored
        if path.startswith("/api/v1/") and not path.startswith("/api/v1/docs"):
            assert r.headers["Cache-Control"] == "no-store", path
        if r.status_code >= 400:
            assert r.mimetype == "application/problem+json", (path, r.mimetype)
            assert "Traceback" not in r.get_data(as_text=True)


def test_https_answers_carry_hsts(api):
    r = api.client.get("/api/v1/health", base_url="https://api.datafair.example")
    assert r.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    r = api.client.get("/api/v1/nowhere", base_url="https://api.datafair.example")
    assert r.status_code == 404 and "Strict-Transport-Security" in r.headers


def test_cors_origins_come_from_the_environment_and_only_exact_origins_are_accepted():
    config = load_config({"DATAFAIR_CORS_ORIGINS": f" {ALLOWED} , https://b.example:8443 ,"})
    assert config["CORS_ORIGINS"] == [ALLOWED, "https://b.example:8443"]
    validate_config(config)
    assert load_config({})["CORS_ORIGINS"] == []
    for bad in ("*", "null", "https://*.example.com", "https://app.example.com/", "app.example.com",
                "https://app.example.com/path", "file://"):
        with pytest.raises(ConfigError):
            validate_config(load_config({"DATAFAIR_CORS_ORIGINS": bad}))


def test_cors_answers_only_the_allowed_origins(make_app, api):
    app = make_app(CORS_ORIGINS=[ALLOWED])
    client = app.test_client()
    r = client.get("/api/v1/health", headers={"Origin": ALLOWED})
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED and "Origin" in r.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in r.headers
    preflight = client.options("/api/v1/offers", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key"})
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    for origin in ("https://evil.example", "null", "https://app.datafair.example.evil.example",
                   "http://app.datafair.example", "*", ALLOWED + "/"):
        for r in (client.get("/api/v1/health", headers={"Origin": origin}),
                  client.options("/api/v1/offers", headers={"Origin": origin,
                                                            "Access-Control-Request-Method": "POST"})):
            assert "Access-Control-Allow-Origin" not in r.headers, origin
    # Without configuration no origin is allowed (the JWKS excepted: it is public by design).
    assert "Access-Control-Allow-Origin" not in api.client.get("/api/v1/health", headers={"Origin": ALLOWED}).headers


def test_no_debugger_and_no_trace(api):
    for path in ("/api/v1/console", "/__debugger__?cmd=resource&f=style.css"):
        r = api.client.get(path)
        assert r.status_code == 404 and r.mimetype == "application/problem+json"
    # /console is the web console's prefix: its own 404 page, never Werkzeug's interactive debugger.
    r = api.client.get("/console", headers={"Accept": "text/html"})
    assert r.status_code == 404 and b"__debugger__" not in r.data and b"Werkzeug" not in r.data
    assert api.client.open("/api/v1/health", method="TRACE").status_code == 405


def _raw(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.slow
@pytest.mark.allow_hosts(["127.0.0.1"])
def test_under_gunicorn_in_production_no_banner_no_trace(database, tmp_path, app):
    with gunicorns(database.url, tmp_path, count=1, DATAFAIR_ENV="production",
                   DATAFAIR_SECRET_KEY=secrets.token_urlsafe(48)) as (base,):
        for path in ("/api/v1/health", "/api/v1/nowhere", "/api/v1/me"):
            try:
                with urllib.request.urlopen(f"{base}{path}", timeout=5) as r:  # noqa: S310 - loopback
                    headers, body = dict(r.headers), r.read()
            except urllib.error.HTTPError as e:
                headers, body = dict(e.headers), e.read()
            server = headers.get("Server", "")
            assert "gunicorn" not in server.lower() and not re.search(r"\d", server), server
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert b"Traceback" not in body and b"gunicorn" not in body.lower()
        # gunicorn's own answer to a request it cannot parse: no banner, no version either.
        answer = _raw(base, b"NOT A REQUEST\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert b"gunicorn" not in answer.lower() and not re.search(rb"Server: .*\d", answer), answer[:400]
