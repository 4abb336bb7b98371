"""The `Datafair-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>`.

`body` is the exact request body (UTF-8 JSON bytes). A receiver recomputes the HMAC with the
endpoint's secret over the timestamp, a dot and the raw body, compares in constant time, and
refuses timestamps too far from its clock (replays). Several `v1=` values may appear (during a
secret rotation); any one matching is enough. This module has no dependency on the app: receivers
may copy it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Datafair-Signature"
EVENT_ID_HEADER = "Datafair-Event-Id"
DEFAULT_TOLERANCE = 300


def compute(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `f"{timestamp}.".encode() + body` under `secret`."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={compute(secret, t, body)}"


def verify(secret: str, header_value: str, body: bytes, *, tolerance: int = DEFAULT_TOLERANCE,
           now: float | None = None) -> bool:
    """Whether `header_value` signs `body` with `secret` at a time within `tolerance` seconds."""
    if not isinstance(header_value, str):
        return False
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header_value.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = compute(secret, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)
