"""The Datafair-Signature header: what a receiver verifies (README's snippet does the same)."""

from __future__ import annotations

import hashlib
import hmac
import time

from hypothesis import given
from hypothesis import strategies as st

from exchange.events import signature

SECRET = "whsec_test_secret_value"
BODY = '{"id":"evt_1","type":"trade.settled","created_at":"2026-11-28T04:00:00Z","data":{"名":"值"}}'.encode()


def test_header_is_t_and_v1_over_timestamp_dot_body():
    header = signature.header(SECRET, BODY, timestamp=1_800_000_000)
    expected = hmac.new(SECRET.encode(), b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1800000000,v1={expected}"
    assert signature.verify(SECRET, header, BODY, now=1_800_000_010)


def test_changed_body_wrong_secret_and_stale_or_future_timestamps_fail():
    now = int(time.time())
    header = signature.header(SECRET, BODY, timestamp=now)
    assert not signature.verify(SECRET, header, BODY + b" ")
    assert not signature.verify("whsec_other", header, BODY)
    old = signature.header(SECRET, BODY, timestamp=now - 301)
    assert not signature.verify(SECRET, old, BODY)
    future = signature.header(SECRET, BODY, timestamp=now + 301)
    assert not signature.verify(SECRET, future, BODY)
    assert signature.verify(SECRET, old, BODY, tolerance=600)


def test_malformed_headers_fail_without_raising():
    for bad in ("", "t=,v1=", "v1=abc", "t=123", "t=abc,v1=00", None, "t=1,v1=" + "0" * 64):
        assert not signature.verify(SECRET, bad, BODY)


def test_any_matching_v1_is_enough_during_a_rotation():
    now = int(time.time())
    good = signature.compute(SECRET, now, BODY)
    assert signature.verify(SECRET, f"t={now},v1={'0' * 64},v1={good}", BODY)


@given(body=st.binary(max_size=512), secret=st.text(min_size=1, max_size=40), t=st.integers(0, 2**40))
def test_roundtrip_and_any_flipped_bit_fails(body, secret, t):
    header = signature.header(secret, body, timestamp=t)
    assert signature.verify(secret, header, body, now=t)
    if body:
        flipped = bytes([body[0] ^ 1]) + body[1:]
        assert not signature.verify(secret, header, flipped, now=t)
