"""The matcher's scoring function: pure, bounded, explained."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.matching import Demand, Supply, rank, score
from trading.states import OFFER_TRANSITIONS, OfferStatus

DEMAND = Demand(category="transport", keywords=("traffic", "交通", "gps"), budget_amount=1_000_000,
                budget_currency="CNY", delivery_mode="api")


def supply(**kw):
    base = dict(product_id="prd_1", category="transport", keywords=("traffic", "交通"), title="广州交通流量 traffic",
                price_amount=800_000, price_currency="CNY", price_model="one_time", delivery_mode="api",
                update_frequency="realtime", text_relevance=1.0, vendor_contracts=3)
    base.update(kw)
    return Supply(**base)


def test_perfect_fit_scores_high_with_reasons():
    value, reasons = score(DEMAND, supply(keywords=("traffic", "交通", "gps")))
    assert value > 0.9
    assert "category" in reasons and "within budget" in reasons
    assert "keywords: traffic, 交通, gps" in reasons
    assert "delivery: api" in reasons and "fresh data (realtime)" in reasons


def test_over_budget_ranks_lower_but_is_not_hidden():
    cheap, _ = score(DEMAND, supply(price_amount=900_000))
    dear, reasons = score(DEMAND, supply(price_amount=2_000_000))
    assert 0 < dear < cheap
    assert "over budget by 100%" in reasons


def test_other_category_and_currency_are_explained():
    value, reasons = score(DEMAND, supply(category="finance", price_currency="HKD", keywords=(), title="x",
                                          text_relevance=0))
    assert value < 0.2
    assert "category" not in reasons
    assert "priced in HKD (budget in CNY)" in reasons


def test_delivery_mismatch_is_a_reason():
    _, reasons = score(DEMAND, supply(delivery_mode="file"))
    assert "delivery is file, not api" in reasons


def test_rank_orders_by_score_then_id():
    ranked = rank(DEMAND, [supply(product_id="b", price_amount=5_000_000), supply(product_id="a"),
                           supply(product_id="c")], limit=2)
    assert [m.product_id for m in ranked] == ["a", "c"]


@given(
    price=st.integers(1, 10**12), budget=st.integers(1, 10**12), relevance=st.floats(-1, 2, allow_nan=False),
    contracts=st.integers(0, 10**6), kw=st.lists(st.sampled_from(["traffic", "gps", "交通", "x", ""]), max_size=6),
    freq=st.sampled_from(["realtime", "daily", "weekly", "monthly", "once"]),
    model=st.sampled_from(["one_time", "subscription", "per_call", "negotiable"]),
)
def test_score_is_always_in_unit_interval(price, budget, relevance, contracts, kw, freq, model):
    demand = Demand(category="transport", keywords=tuple(kw), budget_amount=budget, budget_currency="CNY")
    value, reasons = score(demand, supply(price_amount=price, text_relevance=relevance, vendor_contracts=contracts,
                                          update_frequency=freq, price_model=model))
    assert 0.0 <= value <= 1.0
    assert all(isinstance(r, str) and r for r in reasons)


ALLOWED = {(OfferStatus.PENDING, s) for s in OfferStatus if s != OfferStatus.PENDING}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(OfferStatus, OfferStatus)))
def test_offer_transition_table(current, target):
    assert (target in OFFER_TRANSITIONS[current]) == ((current, target) in ALLOWED)
