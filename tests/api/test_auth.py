"""Authentication: JWT attacks, token lifetime, refresh rotation and reuse, logout, suspension."""

from __future__ import annotations

import base64
import json
import time
import warnings

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from exchange.identity import auth


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _signing_key(app) -> bytes:
    with app.app_context():
        return auth._signing_key()


def _forge(app, claims: dict, *, key: bytes | None = None, algorithm: str = "HS256",
           headers: dict | None = None) -> str:
    with warnings.catch_warnings():
        # pyjwt warns that a 32-byte key is short for HS384/HS512: exactly the attacker's choice here.
        warnings.simplefilter("ignore")
        return jwt.encode(claims, key if key is not None else _signing_key(app), algorithm=algorithm,
                          headers=headers)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _me(api, token: str):
    return api.get("me", headers={"Authorization": f"Bearer {token}"})


def _assert_401(r) -> None:
    assert r.status_code == 401, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["status"] == 401


@pytest.fixture
def vendor(api):
    return api.vendor()


def test_a_genuine_token_works_and_its_claims_are_complete(api, app, vendor):
    assert _me(api, vendor.token).status_code == 200
    claims = _claims(vendor.token)
    assert claims["iss"] == auth.ISSUER and claims["aud"] == auth.AUDIENCE and claims["typ"] == "access"
    assert claims["sub"] == vendor.user_id
    assert {"exp", "iat", "jti"} <= claims.keys()
    assert jwt.get_unverified_header(vendor.token)["alg"] == "HS256"


def test_alg_none_is_refused(api, app, vendor):
    claims = _claims(vendor.token)
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        _assert_401(_me(api, token))


def test_hs256_with_another_key_is_refused(api, app, vendor):
    token = _forge(app, _claims(vendor.token), key=b"k" * 32)
    _assert_401(_me(api, token))


def test_hs256_with_the_raw_secret_instead_of_the_derived_key_is_refused(api, app, vendor):
    token = _forge(app, _claims(vendor.token), key=app.config["SECRET_KEY"].encode())
    _assert_401(_me(api, token))


def test_algorithm_from_the_header_is_never_trusted(api, app, vendor):
    claims = _claims(vendor.token)
    # HS384 with the real key: a server that took the algorithm from the header would accept it.
    _assert_401(_me(api, _forge(app, claims, algorithm="HS384")))
    _assert_401(_me(api, _forge(app, claims, algorithm="HS512")))
    # RS256/EdDSA headers: asymmetric algorithms signed with an attacker's key.
    pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    _assert_401(_me(api, jwt.encode(claims, pem, algorithm="EdDSA")))
    # Header claims RS256 but the body is HMAC-signed with our key (the classic confusion attack).
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    real = vendor.token.split(".")
    _assert_401(_me(api, f"{header}.{real[1]}.{real[2]}"))


@pytest.mark.parametrize("claim", ["iss", "aud", "typ", "exp", "iat", "jti", "sub"])
def test_missing_claim_is_refused(api, app, vendor, claim):
    claims = _claims(vendor.token)
    del claims[claim]
    _assert_401(_me(api, _forge(app, claims)))


@pytest.mark.parametrize(("claim", "value"), [
    ("iss", "someone-else"),
    ("aud", "another-api"),
    ("typ", "refresh"),
    ("typ", "id"),
    ("sub", 12345),
    ("sub", "usr_does_not_exist"),
])
def test_wrong_claim_is_refused(api, app, vendor, claim, value):
    claims = _claims(vendor.token)
    claims[claim] = value
    _assert_401(_me(api, _forge(app, claims)))


def test_control_the_forgery_helper_produces_accepted_tokens(api, app, vendor):
    # Guards the tests above: a re-signed, unmodified token must be accepted.
    claims = _claims(vendor.token)
    assert _me(api, _forge(app, claims, headers={"typ": "at+jwt"})).status_code == 200


def test_expiry_with_a_small_leeway(api, app, vendor):
    now = int(time.time())
    claims = _claims(vendor.token)
    # Within the 10 s leeway for clock skew: accepted.
    claims.update(iat=now - 900, exp=now - 3)
    assert _me(api, _forge(app, claims)).status_code == 200
    claims.update(exp=now - 60)
    r = _me(api, _forge(app, claims))
    _assert_401(r)
    assert "expired" in r.get_json()["detail"]


def test_token_issued_in_the_future_is_refused(api, app, vendor):
    now = int(time.time())
    claims = _claims(vendor.token)
    claims.update(iat=now + 3600, exp=now + 4000)
    _assert_401(_me(api, _forge(app, claims)))


def test_refresh_token_is_not_an_access_token(api, vendor):
    _assert_401(_me(api, vendor.refresh_token))


@pytest.mark.parametrize("header", [
    "Bearer not-a-jwt",
    "Bearer a.b.c",
    "Bearer " + "x" * 5000,
    "Basic dXNlcjpwYXNz",
    "Bearer",
    "token-without-scheme",
])
def test_garbage_authorization_is_refused(api, header):
    _assert_401(api.get("me", headers={"Authorization": header}))


def test_tampered_payload_is_refused(api, app, vendor):
    head, payload, sig = vendor.token.split(".")
    claims = _claims(vendor.token)
    other = api.vendor()
    claims["sub"] = other.user_id
    forged_payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    _assert_401(_me(api, f"{head}.{forged_payload}.{sig}"))
    # A flipped bit in the signature fails too.
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    _assert_401(_me(api, f"{head}.{payload}.{flipped}"))


def test_anonymous_me_is_401(api):
    _assert_401(api.get("me"))


def test_access_token_lives_at_most_15_minutes(api, app):
    app.config["ACCESS_TOKEN_SECONDS"] = 7200  # a misconfiguration must not lengthen tokens
    vendor = api.vendor()
    tokens = api.login(vendor.email)
    assert tokens["expires_in"] <= 900
    claims = _claims(tokens["access_token"])
    assert claims["exp"] - claims["iat"] <= 900
    assert tokens["token_type"] == "Bearer"


def test_wrong_password_and_unknown_email_get_the_same_answer(api, vendor):
    a = api.post("auth/token", json={"email": vendor.email, "password": "wrong password 123"})
    b = api.post("auth/token", json={"email": "nobody@nowhere.test", "password": "wrong password 123"})
    assert a.status_code == b.status_code == 401
    assert a.get_json()["detail"] == b.get_json()["detail"]


def _refresh(api, token: str):
    return api.post("auth/refresh", json={"refresh_token": token})


def test_refresh_rotates_and_each_refresh_token_works_once(api, vendor):
    r1 = _refresh(api, vendor.refresh_token)
    assert r1.status_code == 200
    pair = r1.get_json()
    assert pair["refresh_token"] != vendor.refresh_token
    assert _me(api, pair["access_token"]).status_code == 200
    r2 = _refresh(api, pair["refresh_token"])
    assert r2.status_code == 200


def test_reuse_of_a_used_refresh_token_revokes_the_whole_family(api, vendor):
    first = _refresh(api, vendor.refresh_token).get_json()
    second = _refresh(api, first["refresh_token"]).get_json()
    # An attacker replays the original (already used) refresh token.
    _assert_401(_refresh(api, vendor.refresh_token))
    # Every token of that login is now dead, including the newest one the owner holds.
    _assert_401(_refresh(api, second["refresh_token"]))
    # Another login of the same user (another family) is untouched.
    other = api.login(vendor.email)
    assert _refresh(api, other["refresh_token"]).status_code == 200


def test_unknown_refresh_token_is_401(api):
    _assert_401(_refresh(api, "rt_" + "x" * 43))


def test_logout_revokes_the_family_of_the_given_refresh_token(api, vendor):
    newer = _refresh(api, vendor.refresh_token).get_json()
    r = api.post("auth/logout", vendor, json={"refresh_token": newer["refresh_token"]})
    assert r.status_code == 204
    _assert_401(_refresh(api, newer["refresh_token"]))


def test_logout_without_a_body_revokes_the_callers_own_login(api, vendor):
    other_login = api.login(vendor.email)
    r = api.request("POST", "auth/logout", vendor)
    assert r.status_code == 204
    _assert_401(_refresh(api, vendor.refresh_token))
    # A separate login (another device) keeps working unless all_sessions is asked for.
    assert _refresh(api, other_login["refresh_token"]).status_code == 200


def test_logout_all_sessions(api, vendor):
    other_login = api.login(vendor.email)
    r = api.post("auth/logout", vendor, json={"all_sessions": True})
    assert r.status_code == 204
    _assert_401(_refresh(api, vendor.refresh_token))
    _assert_401(_refresh(api, other_login["refresh_token"]))


def test_logout_cannot_revoke_another_users_login(api, vendor):
    other = api.vendor()
    r = api.post("auth/logout", vendor, json={"refresh_token": other.refresh_token})
    assert r.status_code == 204
    assert _refresh(api, other.refresh_token).status_code == 200


def test_logout_requires_authentication(api, vendor):
    _assert_401(api.post("auth/logout", json={"refresh_token": vendor.refresh_token}))
    assert _refresh(api, vendor.refresh_token).status_code == 200


def test_suspension_revokes_refresh_tokens_but_members_may_log_in_again(api, vendor):
    member = api.member(vendor)
    api.suspend(vendor)
    _assert_401(_refresh(api, vendor.refresh_token))
    _assert_401(_refresh(api, member.refresh_token))
    # Suspended members may still log in and read their own data.
    tokens = api.login(member.email)
    me = _me(api, tokens["access_token"])
    assert me.status_code == 200
    assert me.get_json()["organization"]["status"] == "suspended"


def test_rejected_organization_cannot_log_in(api):
    created = api.register("enterprise")
    op = api.operator()
    token = api.login(created["admin_email"])
    assert api.post(f"organizations/{created['id']}/reject", op, json={"reason": "fake"}).status_code == 200
    r = api.post("auth/token", json={"email": created["admin_email"], "password": "correct horse battery staple"})
    _assert_401(r)
    _assert_401(_me(api, token["access_token"]))
    _assert_401(_refresh(api, token["refresh_token"]))
