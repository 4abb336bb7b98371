"""Exactly-once webhook application, calls recorded before they are made, and the gateway factory."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.db import db
from exchange.errors import Conflict
from exchange.payments import (
    ManualGateway,
    ProviderError,
    ProviderStatus,
    ProviderUnavailable,
    StripeGateway,
    TransactionOpenError,
    begin_call,
    complete_call,
    find_call,
    get_gateway,
    in_transaction,
    outside_transaction,
    record_event_once,
    run_provider_call,
)
from exchange.payments.models import ProcessedProviderEvent, ProviderCall


def test_an_event_is_applied_once(session):
    assert record_event_once(session, "stripe", "evt_1", event_type="payment_intent.succeeded") is True
    assert record_event_once(session, "stripe", "evt_1", event_type="payment_intent.succeeded") is False
    assert record_event_once(session, "stripe", "evt_2") is True
    session.commit()
    assert record_event_once(session, "stripe", "evt_1") is False
    assert session.scalar(select(func.count()).select_from(ProcessedProviderEvent)) == 2


def test_a_rolled_back_application_leaves_the_event_to_be_applied_again(session):
    assert record_event_once(session, "stripe", "evt_rb") is True
    session.rollback()  # the state change failed: the redelivered event must still apply
    assert record_event_once(session, "stripe", "evt_rb") is True


def test_a_duplicate_does_not_spoil_the_surrounding_transaction(session):
    record_event_once(session, "stripe", "evt_dup")
    session.commit()
    call = begin_call(session, provider="stripe", operation="payment", subject_id="trd_1", step="payment",
                      amount=100, currency="HKD")
    assert record_event_once(session, "stripe", "evt_dup") is False
    session.commit()  # the same transaction still commits its other work
    assert session.get(ProviderCall, call.id) is not None


def test_a_call_is_recorded_with_its_key_before_it_is_made_and_completed_after(session):
    call = begin_call(session, provider="stripe", operation="payment", subject_id="trd_9", step="payment",
                      amount=125_000, currency="hkd")
    session.commit()
    assert (call.idempotency_key, call.status, call.currency, call.provider_ref) == (
        "datafair:trd_9:payment", "started", "HKD", None)

    again = begin_call(session, provider="stripe", operation="payment", subject_id="trd_9", step="payment",
                       amount=125_000, currency="HKD")
    assert again.id == call.id  # a retry after a crash finds the recorded intent and reuses its key

    complete_call(session, call, status=ProviderStatus.PENDING, provider_ref="pi_1")
    complete_call(session, call, status=ProviderStatus.SUCCEEDED, provider_ref="pi_1")
    session.commit()
    stored = find_call(session, provider="stripe", subject_id="trd_9", step="payment")
    assert (stored.status, stored.provider_ref) == ("succeeded", "pi_1")
    assert stored.completed_at is not None
    assert find_call(session, provider="stripe", subject_id="trd_9", step="refund") is None


@pytest.mark.parametrize("change", [{"amount": 1}, {"currency": "CNY"}, {"operation": "refund"},
                                    {"target": "acct_other"}])
def test_a_key_is_never_reused_for_a_different_movement_of_money(session, change):
    args = {"provider": "stripe", "operation": "payment", "subject_id": "trd_3", "step": "payment",
            "amount": 500, "currency": "HKD", "target": None}
    begin_call(session, **args)
    with pytest.raises(Conflict):
        begin_call(session, **{**args, **change})


def test_a_provider_naming_another_object_for_the_same_key_is_an_error(session):
    call = begin_call(session, provider="stripe", operation="refund", subject_id="trd_4", step="refund",
                      amount=5, currency="CNY")
    complete_call(session, call, status="succeeded", provider_ref="re_1")
    with pytest.raises(ProviderError):
        complete_call(session, call, status="succeeded", provider_ref="re_2")


def test_the_database_refuses_nonsense_calls(session):
    from sqlalchemy.exc import IntegrityError

    session.add(ProviderCall(provider="stripe", idempotency_key="k", operation="payment", subject_id="s",
                             step="p", amount=0, currency="CNY", status="started"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_manual_is_always_available(app):
    with app.app_context():
        assert isinstance(get_gateway("manual"), ManualGateway)


def test_stripe_is_unavailable_without_an_api_key(app):
    app.config.update(STRIPE_API_KEY=None)
    with app.app_context(), pytest.raises(ProviderUnavailable) as err:
        get_gateway("stripe")
    assert err.value.status == 422 and "STRIPE_API_KEY" in err.value.errors["provider"][0]


def test_an_unknown_provider_is_unavailable(app):
    with app.app_context(), pytest.raises(ProviderUnavailable):
        get_gateway("paypal")


def test_stripe_is_configured_from_the_app_and_reused(app):
    app.config.update(STRIPE_API_KEY="sk_test_cfg", STRIPE_WEBHOOK_SECRET="whsec_cfg",
                      STRIPE_API_BASE="http://127.0.0.1:9")
    with app.app_context():
        gateway = get_gateway("stripe")
        assert isinstance(gateway, StripeGateway)
        assert get_gateway("stripe") is gateway


@pytest.mark.postgres
@pytest.mark.parametrize("first_commits", [True, False])
def test_racing_deliveries_of_one_event_apply_it_once(app, first_commits):
    """Two connections record the same event: the second waits for the first, then learns whether
    the first committed (False) or rolled back (True: it must apply the event itself)."""
    with app.app_context():
        engine = db.engine
    results: dict[str, bool] = {}
    first_inserted, second_started = threading.Event(), threading.Event()

    def first() -> None:
        with Session(engine) as s:
            results["first"] = record_event_once(s, "stripe", "evt_race")
            first_inserted.set()
            second_started.wait(5)
            time.sleep(0.3)  # let the second block on the unique key
            s.commit() if first_commits else s.rollback()

    def second() -> None:
        first_inserted.wait(5)
        with Session(engine) as s:
            second_started.set()
            results["second"] = record_event_once(s, "stripe", "evt_race")
            s.commit()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {"first": True, "second": not first_commits}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ProcessedProviderEvent)) == 1


def test_a_provider_call_runs_after_the_commit_with_no_transaction_open(session):
    call = begin_call(session, provider="manual", operation="payment", subject_id="pay_out", step="create",
                      amount=700, currency="CNY")
    seen = []

    def provider() -> object:
        seen.append(in_transaction(session))
        return ManualGateway().create_payment(reference="t", amount=700, currency="CNY",
                                              idempotency_key=call.idempotency_key, metadata={})

    result = run_provider_call(session, call, provider)
    assert seen == [False]
    # The intent was committed before the call; the answer is recorded in the (open) next transaction.
    assert in_transaction(session)
    stored = session.get(ProviderCall, call.id)
    assert (stored.status, stored.provider_ref) == ("pending", result.provider_ref)
    session.rollback()
    assert session.get(ProviderCall, call.id).status == "started"


def test_a_provider_call_that_touches_the_session_is_refused(session):
    with pytest.raises(TransactionOpenError):
        outside_transaction(session, lambda: session.execute(select(func.count()).select_from(ProviderCall)))


def test_a_refused_call_is_recorded_failed_even_though_the_caller_rolls_back(session):
    call = begin_call(session, provider="stripe", operation="refund", subject_id="trd_ref", step="refund",
                      amount=5, currency="CNY")

    def refuse() -> object:
        raise ProviderError("stripe refused to refund the payment: no charge")

    with pytest.raises(ProviderError):
        run_provider_call(session, call, refuse)
    session.rollback()
    stored = session.get(ProviderCall, call.id)
    assert stored.status == "failed" and "no charge" in stored.error
