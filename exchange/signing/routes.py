"""HTTP routes of the exchange's signing keys: the JWKS at /.well-known/jwks.json."""

from __future__ import annotations

from typing import Any

from exchange.api import Blueprint
from exchange.db import db
from exchange.identity.schemas import JWKS_EXAMPLE, JWKSetSchema
from exchange.signing import services as signing

# Outside the versioned API: /.well-known paths are fixed by RFC 8615, and verifiers expect them there.
wellknown = Blueprint("well-known", __name__, url_prefix="/.well-known",
                      description="The exchange's public signing keys")
JWKS_HEADERS = {
    # Public and cacheable: anyone, from any origin, verifies certificates with it.
    "Cache-Control": "public, max-age=300",
    "Access-Control-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
}


@wellknown.route("/jwks.json", methods=["GET"])
@wellknown.response(200, JWKSetSchema, example=JWKS_EXAMPLE)
@wellknown.doc(operationId="getJwks")
def jwks() -> Any:
    """Get the exchange's public signing keys (JWK Set).

    Anyone may call it (no token, any origin; cacheable for 5 minutes). The exchange's Ed25519
    public keys (the active one first, then the retired ones) as an RFC 7517 JWK Set (`kty: OKP`,
    `crv: Ed25519`): verify any certificate signature with the key whose `kid` the certificate
    names, over the RFC 8785 canonical JSON. A rotation adds a key and keeps the retired ones, so
    old signatures stay verifiable. Changes nothing."""
    return signing.jwks(db.session), 200, JWKS_HEADERS
