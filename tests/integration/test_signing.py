"""exchange.signing: the exchange's Ed25519 keys, signatures, rotation and key encryption at rest."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from exchange.db import db
from exchange.identity.models import AuditEvent
from exchange.signing import services as signing
from exchange.signing.models import ExchangeKey
from tests import outside_verifier

CERTIFICATE = {
    "number": "DFX-2026-000001",
    "product_id": "prd_01a2",
    "product_version": 3,
    "vendor_org_id": "org_01b3",
    "issued_at": "2026-11-28T04:00:00Z",
    "expires_at": "2027-11-28T04:00:00Z",
    "digest": "a" * 64,
    "key_id": "dfx-2026-00000000",
}


def test_sign_and_verify_roundtrip(session):
    kid, signature = signing.sign(session, CERTIFICATE)
    assert signing.verify(session, CERTIFICATE, kid, signature)
    assert len(base64.b64decode(signature)) == 64
    # The signature is over canonical JSON: key order does not matter.
    assert signing.verify(session, dict(reversed(list(CERTIFICATE.items()))), kid, signature)


def test_the_first_key_is_created_on_first_use_and_then_reused(session):
    assert signing.jwks(session) == {"keys": []}
    key = signing.current_key(session)
    assert key.active and key.retired_at is None
    assert key.kid.startswith("dfx-2026-") or key.kid.startswith("dfx-20")
    assert len(key.kid) == len("dfx-2026-xxxxxxxx")
    session.commit()
    assert signing.current_key(session).kid == key.kid
    assert signing.sign(session, {"a": 1})[0] == key.kid
    assert session.execute(select(func.count()).select_from(ExchangeKey)).scalar_one() == 1


def test_jwks_shape(session):
    kid, _ = signing.sign(session, CERTIFICATE)
    key = session.get(ExchangeKey, kid)
    [jwk] = signing.jwks(session)["keys"]
    assert jwk == {"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "alg": "EdDSA", "x": jwk["x"]}
    assert "=" not in jwk["x"] and "+" not in jwk["x"] and "/" not in jwk["x"]
    assert base64.urlsafe_b64decode(jwk["x"] + "=") == base64.b64decode(key.public_key)


def test_an_outside_party_verifies_with_the_jwks_alone(session):
    import json

    kid, signature = signing.sign(session, CERTIFICATE)
    published = json.dumps(signing.jwks(session))
    assert outside_verifier.verify(published, CERTIFICATE, kid, signature)
    assert not outside_verifier.verify(published, {**CERTIFICATE, "product_version": 4}, kid, signature)


def test_any_changed_byte_fails(session):
    kid, signature = signing.sign(session, CERTIFICATE)
    key = session.get(ExchangeKey, kid)
    raw = bytearray(base64.b64decode(signature))
    for i in range(len(raw)):
        for bit in (0x01, 0x80):
            changed = bytearray(raw)
            changed[i] ^= bit
            assert not signing.verify(session, CERTIFICATE, kid, base64.b64encode(changed).decode())
    message = bytearray(signing.canonical_bytes(CERTIFICATE))
    assert signing.verify_ed25519(key.public_key, bytes(message), signature)
    for i in range(len(message)):
        changed = bytearray(message)
        changed[i] ^= 0x01
        assert not signing.verify_ed25519(key.public_key, bytes(changed), signature)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(CERTIFICATE)),
       value=st.one_of(st.text(max_size=20), st.integers(-(2**53) + 1, 2**53 - 1), st.none(), st.booleans()))
def test_any_changed_field_fails(app, field, value):
    with app.app_context():
        kid, signature = signing.sign(db.session, CERTIFICATE)
        changed = {**CERTIFICATE, field: value}
        assert signing.verify(db.session, changed, kid, signature) == (changed == CERTIFICATE)
        db.session.rollback()


@pytest.mark.parametrize(("kid", "signature"), [
    ("dfx-2026-unknown1", None),
    ("", None),
    ("dfx\x00", None),
    ("x" * 500, None),
    (None, None),
    (123, None),
    ("KID", "not base64!"),
    ("KID", ""),
    ("KID", "AAAA"),
    ("KID", base64.b64encode(bytes(64)).decode()),
    ("KID", base64.b64encode(bytes(65)).decode()),
    ("KID", None),
    ("KID", 42),
    ("KID", "é"),
])
def test_verify_is_false_and_never_raises_for_bad_input(session, kid, signature):
    real_kid, real_signature = signing.sign(session, CERTIFICATE)
    kid = real_kid if kid == "KID" else kid
    signature = real_signature if signature is None and kid != real_kid else signature
    assert signing.verify(session, CERTIFICATE, kid, signature) is False


@pytest.mark.parametrize("payload", [{"n": 2**60}, {"x": float("nan")}, {"f": 1.5j}, "not a dict", {1: "int key"}])
def test_verify_of_an_uncanonicalizable_payload_is_false(session, payload):
    kid, signature = signing.sign(session, CERTIFICATE)
    assert signing.verify(session, payload, kid, signature) is False


@pytest.mark.parametrize(("public_key", "message", "signature"), [
    ("not base64", b"m", "AAAA"),
    (base64.b64encode(bytes(31)).decode(), b"m", base64.b64encode(bytes(64)).decode()),
    (base64.b64encode(bytes(32)).decode(), b"m", "garbage"),
    (base64.b64encode(bytes(32)).decode(), "not bytes", base64.b64encode(bytes(64)).decode()),
    (None, b"m", None),
])
def test_verify_ed25519_is_false_for_malformed_input(public_key, message, signature):
    assert signing.verify_ed25519(public_key, message, signature) is False


def test_verify_ed25519_for_organization_keys():
    private = Ed25519PrivateKey.generate()
    public_b64 = base64.b64encode(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    signature = base64.b64encode(private.sign(b"contract bytes")).decode()
    assert signing.verify_ed25519(public_b64, b"contract bytes", signature)
    assert not signing.verify_ed25519(public_b64, b"contract bytez", signature)
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert not signing.verify_ed25519(base64.b64encode(other).decode(), b"contract bytes", signature)


def test_rotation_keeps_old_signatures_verifying(session):
    import json

    old_kid, old_signature = signing.sign(session, CERTIFICATE)
    session.commit()
    new = signing.rotate(session)
    session.commit()
    assert new.kid != old_kid and new.active
    old = session.get(ExchangeKey, old_kid)
    assert not old.active and old.retired_at is not None
    new_kid, new_signature = signing.sign(session, CERTIFICATE)
    assert new_kid == new.kid
    assert signing.verify(session, CERTIFICATE, old_kid, old_signature)
    assert signing.verify(session, CERTIFICATE, new_kid, new_signature)
    assert not signing.verify(session, CERTIFICATE, new_kid, old_signature)
    published = signing.jwks(session)
    assert [k["kid"] for k in published["keys"]] == [new_kid, old_kid]
    assert outside_verifier.verify(json.dumps(published), CERTIFICATE, old_kid, old_signature)
    events = session.execute(select(AuditEvent).where(AuditEvent.action == "exchange_key.rotated")).scalars().all()
    assert [(e.object_id, e.detail) for e in events] == [(new_kid, {"retired": old_kid})]


def test_rotation_without_any_key_yet_creates_the_first(session):
    key = signing.rotate(session)
    assert key.active and signing.current_key(session).kid == key.kid


def test_at_most_one_key_is_active(session):
    signing.current_key(session)
    session.commit()
    for _ in range(3):
        signing.rotate(session)
        session.commit()
    actives = session.execute(select(ExchangeKey.kid).where(ExchangeKey.active.is_(True))).scalars().all()
    assert len(actives) == 1
    assert session.execute(select(func.count()).select_from(ExchangeKey)).scalar_one() == 4
    # The database itself refuses a second active key, whatever the code does.
    extra = signing._new_key()
    session.add(extra)
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def _private_key_forms(app, kid: str) -> list[bytes]:
    with app.app_context():
        private = signing._private_key(db.session.get(ExchangeKey, kid))
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    der = private.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    return [raw, raw.hex().encode(), raw.hex().upper().encode(), base64.b64encode(raw),
            base64.urlsafe_b64encode(raw).rstrip(b"="), base64.b64encode(raw).rstrip(b"="), der,
            base64.b64encode(der)]


def _database_bytes(app, database) -> bytes:
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            db.session.remove()
            db.engine.dispose()
            return b"".join(Path(str(database.path) + s).read_bytes()
                            for s in ("", "-wal") if Path(str(database.path) + s).exists())
        out = []
        with db.engine.connect() as conn:
            for table in db.metadata.sorted_tables:
                out += conn.execute(text(f'SELECT CAST(row_to_json(t) AS text) FROM "{table.name}" t')).scalars()
                out += conn.execute(text(
                    f"SELECT encode(convert_to(CAST(t AS text), 'UTF8'), 'hex') FROM \"{table.name}\" t")).scalars()
        return "\n".join(out).encode()


def test_the_private_key_never_appears_in_plaintext_in_the_database(app, database):
    with app.app_context():
        kid, _ = signing.sign(db.session, CERTIFICATE)
        db.session.commit()
        blob = db.session.get(ExchangeKey, kid).private_key_encrypted
    stored = _database_bytes(app, database)
    assert bytes(blob) in stored or bytes(blob).hex().encode() in stored  # the scan sees the table
    for form in _private_key_forms(app, kid):
        assert form not in stored
        assert form.hex().encode() not in stored


def test_encryption_uses_a_fresh_nonce_and_binds_the_kid(session):
    a, b = signing._new_key(), signing._new_key()
    assert a.private_key_encrypted[1:13] != b.private_key_encrypted[1:13]
    # An encrypted private key copied onto another kid does not decrypt.
    a.private_key_encrypted = b.private_key_encrypted
    with pytest.raises(signing.SigningKeyError):
        signing._private_key(a)


def test_another_secret_key_cannot_decrypt_and_says_so(app, make_app):
    with app.app_context():
        kid, signature = signing.sign(db.session, CERTIFICATE)
        db.session.commit()
    other = make_app(SECRET_KEY="a-completely-different-secret-key-0123456789")
    with other.app_context():
        with pytest.raises(signing.SigningKeyError, match="DATAFAIR_SECRET_KEY"):
            signing.sign(db.session, CERTIFICATE)
        db.session.rollback()
        # Verification needs only the public key: old signatures still verify.
        assert signing.verify(db.session, CERTIFICATE, kid, signature)
        # Rotating recovers signing under the new secret.
        new = signing.rotate(db.session)
        db.session.commit()
        new_kid, new_signature = signing.sign(db.session, CERTIFICATE)
        assert new_kid == new.kid and signing.verify(db.session, CERTIFICATE, new_kid, new_signature)


@pytest.mark.postgres
def test_two_workers_racing_for_the_first_key_get_the_same_one(app):
    barrier = threading.Barrier(4)
    kids: list[str] = []

    def worker() -> None:
        with app.app_context():
            barrier.wait()
            kids.append(signing.current_key(db.session).kid)
            db.session.commit()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(kids) == 4 and len(set(kids)) == 1
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(ExchangeKey)).scalar_one() == 1


@pytest.mark.postgres
def test_a_worker_creating_the_key_while_another_one_is_uncommitted_gets_the_winners_key(app):
    created = threading.Event()
    result: dict[str, str] = {}

    def winner() -> None:
        with app.app_context():
            result["winner"] = signing.current_key(db.session).kid
            created.set()
            time.sleep(0.5)  # the loser's insert waits on the unique index meanwhile
            db.session.commit()

    def loser() -> None:
        with app.app_context():
            created.wait(10)
            result["loser"] = signing.current_key(db.session).kid
            db.session.commit()

    threads = [threading.Thread(target=winner), threading.Thread(target=loser)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert result["loser"] == result["winner"]
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(ExchangeKey)).scalar_one() == 1
