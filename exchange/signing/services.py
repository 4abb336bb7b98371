"""The exchange's Ed25519 keys and signatures: the one module that signs and verifies.

Everything signed is the RFC 8785 canonical JSON of a payload (`exchange.canonical`), signed with
the active exchange key and published with every earlier key in a JWKS, so anyone can verify a
certificate with the JWKS, an RFC 8785 library and Ed25519 alone.

Private keys are stored encrypted with AES-GCM under a key derived by HKDF-SHA256 from
DATAFAIR_SECRET_KEY (a random 96-bit nonce per key, the kid as associated data, so an encrypted key
cannot be swapped onto another kid). Blob layout: version byte 0x01 | nonce (12) | ciphertext+tag.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from exchange.canonical import canonical_bytes
from exchange.db import utcnow
from exchange.errors import Conflict
from exchange.identity import audit
from exchange.principal import Principal
from exchange.signing.models import ExchangeKey

_BLOB_VERSION = b"\x01"
_NONCE_BYTES = 12
_HKDF_SALT = b"datafair/exchange-keys"
_HKDF_INFO = b"datafair/exchange-signing-key/aes-256-gcm/v1"
_KID_RE = re.compile(r"[A-Za-z0-9._-]{1,40}")


class SigningKeyError(RuntimeError):
    """The exchange's private key cannot be used (encrypted under another DATAFAIR_SECRET_KEY)."""


def _aead(secret: str) -> AESGCM:
    key = HKDF(algorithm=SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(secret.encode())
    return AESGCM(key)


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _encrypt(kid: str, private_raw: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return _BLOB_VERSION + nonce + _aead(_secret()).encrypt(nonce, private_raw, kid.encode())


def _private_key(key: ExchangeKey) -> Ed25519PrivateKey:
    return _decrypted(key.kid, bytes(key.private_key_encrypted), _secret())


@lru_cache(maxsize=8)
def _decrypted(kid: str, blob: bytes, secret: str) -> Ed25519PrivateKey:
    # Every platform signature used to derive the AES key and decrypt the same blob again; the
    # result depends only on these three values (a rotated key has a new kid and blob).
    if blob[:1] != _BLOB_VERSION:
        raise SigningKeyError(f"exchange signing key {kid}: unknown encryption format")
    nonce, ciphertext = blob[1:1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES:]
    try:
        raw = _aead(secret).decrypt(nonce, ciphertext, kid.encode())
    except InvalidTag:
        raise SigningKeyError(
            f"cannot decrypt the private key of exchange signing key {kid}: DATAFAIR_SECRET_KEY is not "
            "the secret it was encrypted with. Restore that secret, or run `flask --app app keys rotate` "
            "to sign with a new key (old signatures keep verifying)."
        ) from None
    return Ed25519PrivateKey.from_private_bytes(raw)


def _new_key() -> ExchangeKey:
    private = Ed25519PrivateKey.generate()
    public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    private_raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    kid = f"dfx-{utcnow().year}-{secrets.token_hex(4)}"
    return ExchangeKey(kid=kid, public_key=base64.b64encode(public_raw).decode(),
                       private_key_encrypted=_encrypt(kid, private_raw), created_at=utcnow(),
                       active=True, retired_at=None)


def _active(session: Session, *, for_update: bool = False) -> ExchangeKey | None:
    stmt = select(ExchangeKey).where(ExchangeKey.active.is_(True))
    if for_update:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def current_key(session: Session) -> ExchangeKey:
    """The active exchange key, created on first use.

    Two workers creating it at once cannot both succeed (at most one active key, a unique index):
    the loser's insert fails once the winner commits, and it returns the winner's key.
    """
    key = _active(session)
    if key is not None:
        return key
    key = _new_key()
    try:
        with session.begin_nested():
            session.add(key)
    except IntegrityError:
        existing = _active(session)
        if existing is None:
            raise
        return existing
    return key


def sign(session: Session, payload: dict[str, Any]) -> tuple[str, str]:
    """Sign the RFC 8785 canonical JSON of `payload` with the active key: `(kid, base64 signature)`.

    Raises ValueError (payload not canonicalizable) or SigningKeyError (wrong DATAFAIR_SECRET_KEY).
    """
    message = canonical_bytes(payload)
    key = current_key(session)
    signature = _private_key(key).sign(message)
    return key.kid, base64.b64encode(signature).decode()


def signer(session: Session) -> Callable[[dict[str, Any]], tuple[str, str]]:
    """`sign` for bulk work: the active key is loaded and decrypted once (e.g. the data generator)."""
    key = current_key(session)
    private, kid = _private_key(key), key.kid

    def sign_one(payload: dict[str, Any]) -> tuple[str, str]:
        return kid, base64.b64encode(private.sign(canonical_bytes(payload))).decode()

    return sign_one


def verify_ed25519(public_key_b64: str, message: bytes, signature_b64: str) -> bool:
    """Whether `signature_b64` is a valid Ed25519 signature of `message` by the raw base64 public key.

    False for any malformed input; never raises.
    """
    try:
        public_raw = base64.b64decode(public_key_b64, validate=True)
        signature = base64.b64decode(signature_b64, validate=True)
        if len(public_raw) != 32 or len(signature) != 64 or not isinstance(message, bytes | bytearray):
            return False
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, bytes(message))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def verify(session: Session, payload: dict[str, Any], kid: str, signature_b64: str) -> bool:
    """Whether `signature_b64` signs `payload`'s canonical JSON with exchange key `kid` (active or retired).

    False for an unknown kid, bad base64, a payload that cannot be canonicalized or a bad signature;
    never raises for bad input.
    """
    if not isinstance(kid, str) or not _KID_RE.fullmatch(kid) or not isinstance(signature_b64, str):
        return False
    try:
        message = canonical_bytes(payload)
    except ValueError:
        return False
    key = session.get(ExchangeKey, kid)
    return key is not None and verify_ed25519(key.public_key, message, signature_b64)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwks(session: Session) -> dict[str, list[dict[str, str]]]:
    """Every exchange public key (the active one first, then retired ones, newest first) as a JWK Set."""
    keys = session.execute(
        select(ExchangeKey).order_by(ExchangeKey.active.desc(), ExchangeKey.created_at.desc(), ExchangeKey.kid)
    ).scalars()
    return {"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": _b64url(base64.b64decode(k.public_key)), "kid": k.kid,
         "use": "sig", "alg": "EdDSA"}
        for k in keys
    ]}


def rotate(session: Session, *, actor: Principal | None = None) -> ExchangeKey:
    """Make a new active key; the previous one is retired but stays published. Audited.

    Raises Conflict when another rotation committed in between.
    """
    previous = _active(session, for_update=True)
    if previous is not None:
        previous.active = False
        previous.retired_at = utcnow()
        session.flush()
    key = _new_key()
    try:
        with session.begin_nested():
            session.add(key)
    except IntegrityError:
        raise Conflict("Another key rotation happened at the same time; run it again.",
                       next_step="check the keys (the other rotation may be enough), or rotate again") from None
    audit.record(session, actor, "exchange_key.rotated", "exchange_key", key.kid,
                 retired=previous.kid if previous else None)
    return key
