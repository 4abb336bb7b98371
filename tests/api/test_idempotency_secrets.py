"""Idempotent replays never store or replay a one-time secret (security issue, item 9; API.md
Conventions and Trades, payments and the ledger).

The idempotency store keeps a response for 24 h to replay it. A response that carries a one-time
secret (a webhook endpoint's signing secret, a Stripe `client_secret`, a gateway API key) is stored, and so replayed,
with that field null: the first answer shows the secret once, a replay carries `null`, and the
secret's value appears nowhere in the idempotency table. Everything else in the replay is the first
response's body byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from marshmallow import Schema, fields
from sqlalchemy import select

from exchange.db import db
from exchange.fields import ONE_TIME_SECRET
from exchange.models import IdempotencyRecord
from tests.deliveryflow import entitlement_of, pay, signed_trade
from tests.tradeflow import contract_for, sign

PUBLIC_URL = "https://93.184.215.14/datafair/events"


def _webhook_endpoint(api: Any) -> tuple[Any, str, dict[str, Any]]:
    return api.vendor(), "webhook-endpoints", {"url": PUBLIC_URL, "events": ["trade.settled"]}


def _payment(provider: str, **product: Any) -> Callable[[Any], tuple[Any, str, dict[str, Any]]]:
    def make(api: Any) -> tuple[Any, str, dict[str, Any]]:
        vendor, buyer = api.vendor(region="HK"), api.enterprise(region="HK")
        contract = contract_for(api, vendor, buyer, origin_region="HK",
                                price={"model": "one_time", "amount": 125_000, "currency": "HKD"})
        sign(api, buyer, contract["id"])
        trade_id = sign(api, vendor, contract["id"])["trade_id"]
        return buyer, f"trades/{trade_id}/payments", {"provider": provider}

    return make


def _api_key(api: Any) -> tuple[Any, str, dict[str, Any]]:
    """A key of an `api` entitlement: whoever replays the request must not get the key again."""
    vendor, buyer = api.vendor(), api.enterprise()
    trade = pay(api, buyer, signed_trade(api, vendor, buyer, delivery_mode="api")["id"])
    return buyer, f"entitlements/{entitlement_of(api, buyer, trade['id'])['id']}/api-keys", {"label": "replayed"}


def _stored(api: Any, key: str) -> list[dict[str, Any]]:
    with api.app.app_context():
        rows = db.session.execute(select(IdempotencyRecord.__table__).where(IdempotencyRecord.key == key))
        return [dict(r) for r in rows.mappings()]


def _replays_without_the_secret(api: Any, make: Callable[[Any], tuple[Any, str, dict[str, Any]]],
                                field: str, key: str) -> None:
    actor, path, body = make(api)
    headers = {"Idempotency-Key": key}
    first = api.post(path, actor, json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    secret = first.get_json()[field]
    assert isinstance(secret, str) and len(secret) >= 16, "the first answer shows the secret once"

    replay = api.post(path, actor, json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.get_json()[field] is None
    assert secret.encode() not in replay.data
    # Byte for byte the first body, but for the redacted field.
    expected = json.loads(first.data)
    expected[field] = None
    assert json.loads(replay.data) == expected
    assert replay.data == first.data.replace(json.dumps(secret).encode(), b"null")
    assert replay.headers["Content-Type"] == first.headers["Content-Type"]
    assert replay.headers.get("Location") == first.headers.get("Location")
    # A replay changed nothing: still one object (a second endpoint or payment would be a new id).
    assert replay.get_json()["id"] == first.get_json()["id"]

    rows = _stored(api, key)
    assert len(rows) == 1 and rows[0]["completed"]
    stored = repr(rows[0]).encode() + bytes(rows[0]["response_body"])
    assert secret.encode() not in stored, "the idempotency store holds the one-time secret"
    assert json.dumps(secret)[1:-1].encode() not in stored


SECRET_ROUTES = [
    pytest.param(_webhook_endpoint, "secret", id="POST /webhook-endpoints secret"),
    pytest.param(_api_key, "key", id="POST /entitlements/{id}/api-keys key"),
]


@pytest.mark.parametrize(("make", "field"), SECRET_ROUTES)
def test_a_replay_carries_null_for_the_one_time_secret(api, make, field):
    _replays_without_the_secret(api, make, field, key=f"secret-replay-{field}")


def test_a_manual_payment_without_a_secret_replays_byte_for_byte(api):
    buyer, path, body = _payment("manual")(api)
    headers = {"Idempotency-Key": "manual-payment"}
    first = api.post(path, buyer, json=body, headers=headers)
    assert first.status_code == 201 and first.get_json()["client_secret"] is None
    replay = api.post(path, buyer, json=body, headers=headers)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.status_code == 201 and replay.data == first.data


@pytest.mark.localstripe
@pytest.mark.allow_hosts(["127.0.0.1"])
def test_a_replayed_stripe_payment_carries_no_client_secret(app, api, request):
    localstripe = request.getfixturevalue("localstripe")
    app.config.update(STRIPE_API_KEY=localstripe.api_key, STRIPE_API_BASE=localstripe.url,
                      STRIPE_WEBHOOK_SECRET="whsec_datafair_idempotency_test")
    _replays_without_the_secret(api, _payment("stripe"), "client_secret", key="stripe-payment")


# -- the class: every POST response field that is a one-time secret is marked, and tested above -----
SECRETISH = re.compile(r"secret|token|password|(^|_)key$", re.IGNORECASE)
NOT_SECRETS = {"public_key", "key_id"}  # a public key and a key's id are published on purpose
# Covered by the tests above (the Stripe one under its marker). A payment's confirmation answers
# operators, who never see the client_secret (null there), and its cancellation a payment no longer
# pending (null there too, tests/integration/test_payment_duplicates_localstripe.py): both are marked
# through PaymentSchema.
TESTED = {("POST /api/v1/webhook-endpoints", "secret"),
          ("POST /api/v1/trades/<trade_id>/payments", "client_secret"),
          ("POST /api/v1/payments/<payment_id>/confirm", "client_secret"),
          ("POST /api/v1/payments/<payment_id>/cancel", "client_secret"),
          # A download link's URL carries its token (tests/security/test_delivery_tokens.py).
          ("POST /api/v1/entitlements/<entitlement_id>/downloads", "url"),
          # A gateway key (tests/api/test_gateway_rules.py, the replay answers key null).
          ("POST /api/v1/entitlements/<entitlement_id>/api-keys", "key")}


def _fields(schema: Schema, prefix: str = "") -> list[tuple[str, fields.Field]]:
    out = []
    for name, field in schema.fields.items():
        out.append((prefix + name, field))
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested) and isinstance(inner.schema, Schema):
            out.extend(_fields(inner.schema, f"{prefix}{name}."))
    return out


def test_every_one_time_secret_in_a_post_response_is_marked_and_covered(app):
    marked, unmarked = set(), set()
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.rule.startswith("/api/v1/auth/"):
            continue
        doc = getattr(app.view_functions[rule.endpoint], "_apidoc", {})
        for responses in doc.get("response", {}).get("responses", {}).values():
            for response in responses:
                schema = response.get("schema")
                if isinstance(schema, type):
                    schema = schema()
                if not isinstance(schema, Schema):
                    continue
                for name, field in _fields(schema):
                    leaf = name.rsplit(".", 1)[-1]
                    if field.metadata.get(ONE_TIME_SECRET):
                        marked.add((f"POST {rule.rule}", name))
                    elif SECRETISH.search(leaf) and leaf not in NOT_SECRETS and not field.load_only:
                        unmarked.add((f"POST {rule.rule}", name))
    assert not unmarked, f"response fields that look like secrets but are not marked one_time_secret: {unmarked}"
    assert marked == TESTED
