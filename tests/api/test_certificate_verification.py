"""A certificate verified as an outside party would: only the JWKS, `rfc8785` and `cryptography`."""

from __future__ import annotations

import base64
import hashlib

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.certflow import approve_all, create_product, submit

SIGNED = ("number", "product_id", "product_version", "vendor_org_id", "issued_at", "expires_at", "digest", "key_id")


def _b64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def outside_verify(cert: dict, jwks: dict) -> bool:
    key = next((k for k in jwks["keys"] if k["kid"] == cert["key_id"]), None)
    if key is None or key["kty"] != "OKP" or key["crv"] != "Ed25519":
        return False
    public = Ed25519PublicKey.from_public_bytes(_b64url(key["x"]))
    try:
        public.verify(base64.b64decode(cert["signature"]), rfc8785.dumps({f: cert[f] for f in SIGNED}))
    except (InvalidSignature, ValueError):
        return False
    return True


def _certificate(api, vendor):
    product = create_product(api, vendor)
    number = approve_all(api, submit(api, vendor, product["id"])["id"])["certificate_number"]
    return product, api.get(f"certificates/{number}").get_json()


def test_certificate_verifies_with_jwks_alone(api):
    vendor = api.vendor()
    _, cert = _certificate(api, vendor)
    jwks = api.client.get("/.well-known/jwks.json").get_json()
    assert outside_verify(cert, jwks)


def test_any_changed_byte_fails(api):
    vendor = api.vendor()
    _, cert = _certificate(api, vendor)
    jwks = api.client.get("/.well-known/jwks.json").get_json()
    for field in SIGNED:
        value = cert[field]
        tampered = dict(cert)
        if isinstance(value, int):
            tampered[field] = value + 1
        else:
            tampered[field] = value[:-1] + ("0" if value[-1] != "0" else "1")
        assert not outside_verify(tampered, jwks), field
    sig = bytearray(base64.b64decode(cert["signature"]))
    sig[0] ^= 1
    assert not outside_verify({**cert, "signature": base64.b64encode(bytes(sig)).decode()}, jwks)


def test_digest_is_the_canonical_certified_revision(api):
    vendor = api.vendor()
    product, cert = _certificate(api, vendor)
    versions = api.get(f"products/{product['id']}/versions", vendor).get_json()["items"]
    listed = next(v for v in versions if v["version"] == cert["product_version"])
    body_fields = ("title", "summary", "description", "category", "keywords", "data_format", "delivery_mode",
                   "classification", "contains_personal_info", "origin_region", "update_frequency", "price",
                   "sample", "license", "scenarios", "data_source", "coverage", "volume")
    body = {f: listed.get(f) for f in body_fields}
    body.update(product_id=product["id"], version=cert["product_version"], vendor_org_id=vendor.org_id)
    assert hashlib.sha256(rfc8785.dumps(body)).hexdigest() == cert["digest"]


def test_rotation_keeps_old_certificates_verifying(app, api):
    vendor = api.vendor()
    _, old = _certificate(api, vendor)
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    _, new = _certificate(api, vendor)
    assert new["key_id"] != old["key_id"]
    jwks = api.client.get("/.well-known/jwks.json").get_json()
    assert {old["key_id"], new["key_id"]} <= {k["kid"] for k in jwks["keys"]}
    for cert in (old, new):
        assert outside_verify(cert, jwks)
        assert api.get(f"certificates/{cert['number']}").get_json()["verification"]["signature_valid"]
