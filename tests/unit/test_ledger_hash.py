"""The ledger's hash is exactly what the docs say: a client can recompute it from the API's fields."""

import hashlib
from datetime import UTC, datetime

import pytest

from exchange.ledger.engine import entry_body, entry_hash
from exchange.ledger.models import GENESIS_HASH, LEDGER_PURPOSES, account_name
from trading.settlement import PURPOSES as TRADING_PURPOSES

POSTINGS = [
    {"account_id": "acc_1", "account": "buyer_funding:org_b:CNY", "currency": "CNY", "amount": -1250000},
    {"account_id": "acc_2", "account": "trade_escrow:trd_1:CNY", "currency": "CNY", "amount": 1250000},
]


def body(**overrides):
    args = {"seq": 1, "kind": "payment", "trade_id": "trd_1",
            "created_at": datetime(2026, 11, 28, 4, 0, tzinfo=UTC), "postings": POSTINGS,
            "metadata": {"provider": "manual", "说明": "付款"}}
    args.update(overrides)
    return entry_body(**args)


def test_hash_is_sha256_of_rfc8785_body_then_prev_hash():
    # Written out by hand: keys sorted, no spaces, UTF-8, the API's time string, then prev_hash.
    canonical = (
        '{"created_at":"2026-11-28T04:00:00Z","kind":"payment","metadata":{"provider":"manual","说明":"付款"},'
        '"postings":[{"account":"buyer_funding:org_b:CNY","account_id":"acc_1","amount":-1250000,"currency":"CNY"},'
        '{"account":"trade_escrow:trd_1:CNY","account_id":"acc_2","amount":1250000,"currency":"CNY"}],'
        '"seq":1,"trade_id":"trd_1"}'
    )
    expected = hashlib.sha256(canonical.encode() + GENESIS_HASH.encode()).hexdigest()
    assert entry_hash(body(), GENESIS_HASH) == expected


@pytest.mark.parametrize("change", [
    {"seq": 2}, {"kind": "refund"}, {"trade_id": None}, {"trade_id": "trd_2"},
    {"created_at": datetime(2026, 11, 28, 4, 0, 1, tzinfo=UTC)}, {"metadata": {}},
    {"postings": [dict(POSTINGS[0], amount=-1250001), dict(POSTINGS[1], amount=1250001)]},
    {"postings": list(reversed(POSTINGS))},
    {"postings": [dict(POSTINGS[0], account="buyer_funding:org_x:CNY"), POSTINGS[1]]},
])
def test_every_field_and_the_posting_order_change_the_hash(change):
    assert entry_hash(body(**change), GENESIS_HASH) != entry_hash(body(), GENESIS_HASH)


def test_prev_hash_changes_the_hash():
    assert entry_hash(body(), GENESIS_HASH) != entry_hash(body(), "1" * 64)


def test_the_purposes_flag_money_holders_non_negative():
    assert {p.name for p in LEDGER_PURPOSES if p.non_negative} == {"exchange_fees"}
    assert {p.name for p in TRADING_PURPOSES if p.non_negative} == {"trade_escrow", "seller_payable"}
    assert account_name("trade_escrow", "trd_123", "CNY") == "trade_escrow:trd_123:CNY"
