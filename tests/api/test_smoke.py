"""The kernel answers: health, docs, OpenAPI, registration and login through the real app."""


def test_health_queries_the_database(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok", "database": "ok"}


def test_register_verify_login_me(api):
    vendor = api.vendor(region="HK")
    r = api.get("me", vendor)
    assert r.status_code == 200
    body = r.get_json()
    assert body["organization"]["status"] == "verified"
    assert body["organization"]["region"] == "HK"
    assert body["role"] == "admin"
    assert "password" not in str(body) and "password_hash" not in str(body)
