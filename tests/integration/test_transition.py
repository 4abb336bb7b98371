"""The one transition helper: a status changes only on a row this transaction locked (or created),
every change is recorded with who and when, and a refused change records and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from exchange.db import db
from exchange.errors import InvalidTransition
from exchange.identity.models import Organization
from exchange.identity.states import ORG_TRANSITIONS, OrgStatus
from exchange.models import StatusChange
from exchange.states import NotLockedError, load_for_update, transition, transition_many
from tests.factories import principal_of


def _changes(session, org_id):
    return session.execute(select(StatusChange.from_status, StatusChange.to_status, StatusChange.actor_user_id)
                           .where(StatusChange.object_type == "organizations", StatusChange.object_id == org_id)
                           .order_by(StatusChange.id)).all()


def test_a_row_read_without_a_lock_cannot_change_status(api):
    vendor = api.vendor()
    with api.app.app_context():
        org = db.session.get(Organization, vendor.org_id)
        with pytest.raises(NotLockedError):
            transition(org, ORG_TRANSITIONS, OrgStatus.SUSPENDED, actor=None, what="Organization")
        assert org.status == OrgStatus.VERIFIED
        db.session.rollback()


def test_a_locked_row_changes_and_the_change_is_recorded_with_its_actor(api):
    vendor, operator = api.vendor(), api.operator()
    with api.app.app_context():
        actor = principal_of(api, operator)
        org = load_for_update(db.session, Organization, vendor.org_id)
        assert transition(org, ORG_TRANSITIONS, OrgStatus.SUSPENDED, actor=actor, what="Organization") == "verified"
        db.session.commit()
        assert _changes(db.session, vendor.org_id)[-1] == ("verified", "suspended", actor.user_id)


def test_a_refused_change_changes_and_records_nothing(api):
    vendor = api.vendor()
    with api.app.app_context():
        before = _changes(db.session, vendor.org_id)
        org = load_for_update(db.session, Organization, vendor.org_id)
        with pytest.raises(InvalidTransition):
            transition(org, ORG_TRANSITIONS, OrgStatus.PENDING, actor=None, what="Organization")
        assert org.status == OrgStatus.VERIFIED
        db.session.commit()
        assert _changes(db.session, vendor.org_id) == before


def test_the_lock_ends_with_the_transaction(api):
    vendor = api.vendor()
    with api.app.app_context():
        org = load_for_update(db.session, Organization, vendor.org_id)
        db.session.commit()
        with pytest.raises(NotLockedError):
            transition(org, ORG_TRANSITIONS, OrgStatus.SUSPENDED, actor=None, what="Organization")
        db.session.rollback()


def test_a_root_lock_covers_its_parts(api):
    """A part changes under its aggregate's lock (a product's revisions, a certification's stages):
    here one organization stands in as the root of another, which is itself not locked."""
    root_actor, part_actor = api.vendor(), api.vendor()
    with api.app.app_context():
        part = db.session.get(Organization, part_actor.org_id)
        with pytest.raises(NotLockedError):
            transition(part, ORG_TRANSITIONS, OrgStatus.SUSPENDED, actor=None, what="Organization")
        root = load_for_update(db.session, Organization, root_actor.org_id)
        transition(part, ORG_TRANSITIONS, OrgStatus.SUSPENDED, actor=None, what="Organization", root=root)
        assert part.status == OrgStatus.SUSPENDED
        db.session.rollback()


def test_a_bulk_change_moves_only_rows_the_table_allows_and_records_each(api):
    """transition_many: one compare-and-set UPDATE per allowed source status; a row in any other
    status (here: already suspended) is left alone; every row moved is recorded with its source."""
    first, second, third, operator = api.vendor(), api.vendor(), api.vendor(), api.operator()
    ids = [first.org_id, second.org_id, third.org_id]
    with api.app.app_context():
        actor = principal_of(api, operator)
        org = load_for_update(db.session, Organization, first.org_id)
        transition(org, ORG_TRANSITIONS, OrgStatus.SUSPENDED, actor=actor, what="Organization")
        db.session.commit()
        moved = transition_many(db.session, Organization, ORG_TRANSITIONS, OrgStatus.SUSPENDED,
                                where=[Organization.id.in_(ids)], actor=None, what="Organization")
        assert sorted(moved) == sorted(ids[1:])
        db.session.commit()
        assert _changes(db.session, first.org_id)[1:] == [("verified", "suspended", actor.user_id)]
        assert _changes(db.session, second.org_id)[1:] == [("verified", "suspended", None)]
        # Back to verified: from suspended (the table also allows pending -> verified: none here).
        back = transition_many(db.session, Organization, ORG_TRANSITIONS, OrgStatus.VERIFIED,
                               where=[Organization.id.in_(ids)], actor=actor, what="Organization")
        assert sorted(back) == sorted(ids)
        db.session.commit()
        assert {db.session.get(Organization, i).status for i in ids} == {"verified"}
        assert _changes(db.session, third.org_id)[-1] == ("suspended", "verified", actor.user_id)
        # A status no row may reach is a programming error, refused before any UPDATE.
        with pytest.raises(InvalidTransition):
            transition_many(db.session, Organization, ORG_TRANSITIONS, OrgStatus.PENDING,
                            where=[Organization.id.in_(ids)], actor=None, what="Organization")
        db.session.rollback()


def test_verification_through_the_api_is_recorded_once(api):
    operator = api.operator()
    vendor = api.vendor()
    with api.app.app_context():
        changes = _changes(db.session, vendor.org_id)
    assert [c[:2] for c in changes] == [("pending", "verified")]
    assert changes[0][2] == principal_of(api, operator).user_id, "the verifying operator is the recorded actor"


def test_payments_disputes_and_payouts_change_status_through_the_helper(api):
    """Confirming a payment, resolving a dispute and paying out are recorded with their operator."""
    from tests.tradeflow import contract_for, sign

    vendor, buyer, operator = api.vendor(), api.enterprise(), api.operator()
    contract = contract_for(api, vendor, buyer)
    sign(api, buyer, contract["id"])
    trade_id = sign(api, vendor, contract["id"])["trade_id"]
    payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()
    assert api.post(f"payments/{payment['id']}/confirm", operator).status_code == 200
    dispute = api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "x"}).get_json()
    assert api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": 0}).status_code == 200
    r = api.post("payouts", operator, json={"org_id": vendor.org_id, "currency": "CNY", "amount": 1000,
                                            "provider": "manual"})
    assert r.status_code == 201 and r.get_json()["status"] == "paid"
    with api.app.app_context():
        rows = db.session.execute(select(StatusChange.object_type, StatusChange.object_id, StatusChange.from_status,
                                         StatusChange.to_status, StatusChange.actor_user_id)
                                  .where(StatusChange.object_type.in_(("payments", "disputes", "payouts")))
                                  .order_by(StatusChange.id)).all()
    op = principal_of(api, operator).user_id
    assert rows == [("payments", payment["id"], "pending", "succeeded", op),
                    ("disputes", dispute["id"], "open", "resolved", op),
                    ("payouts", r.get_json()["id"], "pending", "paid", op)]
