"""A client that knows only the server's address starts at `GET /api/v1` (or `GET /`): an index whose
every link answers."""

from __future__ import annotations

import pytest

INDEX_KEYS = {"self", "docs", "openapi", "health", "jwks", "catalog", "fairs", "token", "register"}


def test_the_api_index_links_to_docs_openapi_health_and_jwks_and_every_link_answers(client):
    r = client.get("/api/v1")
    assert r.status_code == 200 and r.mimetype == "application/json"
    body = r.get_json()
    assert body["service"] == "datafair" and body["api_version"] == "v1"
    assert set(body["links"]) == INDEX_KEYS
    for name, path in body["links"].items():
        if name in ("token", "register"):  # POST entry points: a GET is not the way in
            assert client.post(path, json={}).status_code == 422, name
            continue
        assert client.get(path).status_code == 200, (name, path)


@pytest.mark.parametrize("accept", ["application/json", "*/*", None, "application/json, text/html;q=0.5"])
def test_the_site_root_answers_the_index_to_json_clients_and_curl(client, accept):
    r = client.get("/", headers={"Accept": accept} if accept else {})
    assert r.status_code == 200
    assert r.get_json() == client.get("/api/v1").get_json()


@pytest.mark.parametrize("accept", ["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"])
def test_a_browser_at_the_site_root_gets_the_human_facing_page(client, accept):
    # The web console's home page (CONSOLE.md): the live fair, the catalog search, the market.
    r = client.get("/", headers={"Accept": accept, "Accept-Language": "en"})
    assert r.status_code == 200 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert "Search the catalog" in page and "Market statistics" in page
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
