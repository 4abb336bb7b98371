"""How a party outside the exchange verifies an exchange signature: the published JWKS JSON, an RFC 8785
library and Ed25519, nothing else. Deliberately imports no datafair code (a test checks that)."""

from __future__ import annotations

import base64
import json

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def verify(jwks_json: bytes | str, payload: dict, kid: str, signature_b64: str) -> bool:
    jwk = next((k for k in json.loads(jwks_json)["keys"] if k["kid"] == kid), None)
    if jwk is None or (jwk["kty"], jwk["crv"], jwk["alg"]) != ("OKP", "Ed25519", "EdDSA"):
        return False
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4)))
    try:
        public.verify(base64.b64decode(signature_b64, validate=True), rfc8785.dumps(payload))
    except InvalidSignature:
        return False
    return True
