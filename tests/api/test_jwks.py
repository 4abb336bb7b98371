"""GET /.well-known/jwks.json and `flask keys rotate`: what an outside verifier and an operator see."""

from __future__ import annotations

import ast
from pathlib import Path

from exchange.db import db
from exchange.signing import services as signing
from tests import outside_verifier
from tests.integration.test_signing import CERTIFICATE

JWKS = "/.well-known/jwks.json"


def sign(app, payload: dict) -> tuple[str, str]:
    with app.app_context():
        kid, signature = signing.sign(db.session, payload)
        db.session.commit()
    return kid, signature


def test_jwks_is_public_json_outside_the_api_prefix(app, client):
    assert client.get(JWKS).get_json() == {"keys": []}
    kid, _ = sign(app, CERTIFICATE)
    r = client.get(JWKS)
    assert r.status_code == 200 and r.mimetype == "application/json"
    [jwk] = r.get_json()["keys"]
    assert jwk["kid"] == kid
    assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}  # no private member ("d") ever
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "max-age" in r.headers["Cache-Control"]
    assert client.get("/api/v1/.well-known/jwks.json").status_code == 404


def test_the_jwks_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert "/.well-known/jwks.json" in spec["paths"]


def test_an_outside_party_verifies_a_signature_with_the_served_jwks_only(app, client):
    kid, signature = sign(app, CERTIFICATE)
    served = client.get(JWKS).get_data()
    assert outside_verifier.verify(served, CERTIFICATE, kid, signature)
    assert not outside_verifier.verify(served, {**CERTIFICATE, "digest": "b" * 64}, kid, signature)
    assert not outside_verifier.verify(served, CERTIFICATE, "dfx-2026-00000000", signature)


def test_the_outside_verifier_uses_no_datafair_code():
    tree = ast.parse(Path(outside_verifier.__file__).read_text())
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert modules <= {"__future__", "base64", "json", "rfc8785", "cryptography"}


def test_keys_rotate_prints_the_new_kid_and_old_certificates_keep_verifying(app, client, api):
    old_kid, old_signature = sign(app, CERTIFICATE)
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    new_kid = result.output.strip()
    assert new_kid.startswith("dfx-") and new_kid != old_kid
    served = client.get(JWKS).get_data()
    assert [k["kid"] for k in client.get(JWKS).get_json()["keys"]] == [new_kid, old_kid]
    assert outside_verifier.verify(served, CERTIFICATE, old_kid, old_signature)
    kid, signature = sign(app, CERTIFICATE)
    assert kid == new_kid
    assert outside_verifier.verify(client.get(JWKS).get_data(), CERTIFICATE, kid, signature)
    # Operators find the rotation in the audit trail.
    trail = api.get("audit?action=exchange_key.rotated", api.operator()).get_json()
    assert [(e["object_id"], e["detail"]["retired"]) for e in trail["items"]] == [(new_kid, old_kid)]
    listing = app.test_cli_runner().invoke(args=["keys", "list"])
    assert listing.exit_code == 0
    lines = listing.output.splitlines()
    assert lines[0].startswith(new_kid) and lines[0].endswith("active")
    assert lines[1].startswith(old_kid) and "retired" in lines[1]


def test_keys_rotate_on_an_empty_exchange_creates_the_first_key(app, client):
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0
    assert [k["kid"] for k in client.get(JWKS).get_json()["keys"]] == [result.output.strip()]
