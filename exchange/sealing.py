"""Secrets kept at rest, encrypted with a key derived from DATAFAIR_SECRET_KEY (AES-256-GCM, HKDF per
purpose, the object's id as associated data so a blob cannot be moved to another object)."""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

_VERSION = b"\x01"
_NONCE = 12


class SealError(ValueError):
    """A blob that does not open: another DATAFAIR_SECRET_KEY, another object, or not ours."""


def _aead(purpose: str) -> AESGCM:
    secret = current_app.config["SECRET_KEY"].encode()
    key = HKDF(algorithm=SHA256(), length=32, salt=f"datafair/{purpose}".encode(),
               info=f"datafair/{purpose}/aes-256-gcm/v1".encode()).derive(secret)
    return AESGCM(key)


def seal(purpose: str, context: str, plaintext: str) -> bytes:
    """Encrypt `plaintext` for `purpose`, bound to `context` (the owning object's id)."""
    nonce = secrets.token_bytes(_NONCE)
    return _VERSION + nonce + _aead(purpose).encrypt(nonce, plaintext.encode(), context.encode())


def unseal(purpose: str, context: str, blob: bytes) -> str:
    """The plaintext `seal` encrypted; raises SealError."""
    blob = bytes(blob)
    if blob[:1] != _VERSION:
        raise SealError(f"{purpose} {context}: unknown format")
    try:
        return _aead(purpose).decrypt(blob[1:1 + _NONCE], blob[1 + _NONCE:], context.encode()).decode()
    except InvalidTag:
        raise SealError(f"{purpose} {context}: sealed under another DATAFAIR_SECRET_KEY; set it again") from None
