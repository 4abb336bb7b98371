"""The services certification and trading call: submit, return, list, suspend, reinstate, delist.

Each test prepares its actors and products through the API first, then calls the services inside
one application context (requests made inside an outer app context would share its `g`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from exchange.canonical import canonical_bytes
from exchange.db import db
from exchange.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from listings import catalog, services
from listings.models import BODY_FIELDS
from tests.factories import create_product, list_product, listed_product, principal_of, product_body


@pytest.fixture
def vendor(api):
    return api.vendor()


@pytest.fixture
def ctx(api):
    @contextmanager
    def session_scope() -> Iterator:
        with api.app.app_context():
            yield db.session
            db.session.rollback()

    return session_scope


def _in_catalog(session, pid, q="交通"):
    return pid in [p.id for p, _, _ in catalog.search_catalog(session, principal=None, q=q, per_page=100)["items"]]


def test_submit_freezes_the_newest_draft(api, ctx, vendor):
    pid = create_product(api, vendor)["id"]
    who = principal_of(api, vendor)
    with ctx() as session:
        revision = services.submit_for_review(session, product_id=pid, actor=who)
        assert (revision.version, revision.status) == (1, "in_review")
        assert services.get_product(session, product_id=pid, principal=who).status == "in_review"
        with pytest.raises(Conflict, match="already under review"):
            services.submit_for_review(session, product_id=pid, actor=who)


def test_submit_is_for_the_owner_only(api, ctx, vendor):
    pid = create_product(api, vendor)["id"]
    other, operator, who = (principal_of(api, a) for a in (api.vendor(), api.operator(), vendor))
    with ctx() as session:
        with pytest.raises(NotFound):
            services.submit_for_review(session, product_id=pid, actor=other)
        with pytest.raises(Forbidden):
            services.submit_for_review(session, product_id=pid, actor=operator)
        with pytest.raises(NotFound):
            services.submit_for_review(session, product_id="prd_nope", actor=who)


def test_submit_needs_a_draft_revision(api, ctx, vendor):
    pid = listed_product(api, vendor)["id"]
    who = principal_of(api, vendor)
    with ctx() as session:
        with pytest.raises(Conflict, match="no draft revision"):
            services.submit_for_review(session, product_id=pid, actor=who)
        services.update_product(session, product_id=pid, changes={"title": "交通 v2"}, actor=who)
        revision = services.submit_for_review(session, product_id=pid, actor=who)
        assert revision.version == 2
        product = services.get_product(session, product_id=pid, principal=None)
        assert product.status == "listed" and services.is_tradable(product), "listed while v2 is reviewed"


@pytest.mark.parametrize(("outcome", "version_status"), [
    ("changes_requested", "draft"), ("withdrawn", "draft"), ("rejected", "rejected")])
def test_return_to_draft(api, ctx, vendor, outcome, version_status):
    pid = create_product(api, vendor)["id"]
    who = principal_of(api, vendor)
    with ctx() as session:
        services.submit_for_review(session, product_id=pid, actor=who)
        revision = services.return_to_draft(session, product_id=pid, version=1, outcome=outcome,
                                            reason="see notes")
        assert revision.status == version_status
        product = services.get_product(session, product_id=pid, principal=who)
        assert product.status == "draft"
        edited = services.update_product(session, product_id=pid, changes={"title": "修订 fixed"}, actor=who)
        assert edited is product
        expected = 2 if outcome == "rejected" else 1
        assert product.latest_version == expected, "a rejected revision is closed; editing starts a new one"
        assert services.submit_for_review(session, product_id=pid, actor=who).version == expected


def test_return_to_draft_of_a_listed_products_revision_keeps_it_listed(api, ctx, vendor):
    pid = listed_product(api, vendor)["id"]
    who = principal_of(api, vendor)
    with ctx() as session:
        services.update_product(session, product_id=pid, changes={"title": "v2"}, actor=who)
        services.submit_for_review(session, product_id=pid, actor=who)
        services.return_to_draft(session, product_id=pid, version=2, outcome="rejected")
        product = services.get_product(session, product_id=pid, principal=None)
        assert product.status == "listed" and product.listed_version == 1


def test_return_to_draft_refuses_bad_calls(api, ctx, vendor):
    pid = create_product(api, vendor)["id"]
    with ctx() as session:
        with pytest.raises(InvalidTransition):
            services.return_to_draft(session, product_id=pid, version=1, outcome="withdrawn")
        with pytest.raises(ValidationFailed):
            services.return_to_draft(session, product_id=pid, version=1, outcome="approved")
        with pytest.raises(NotFound):
            services.return_to_draft(session, product_id=pid, version=9, outcome="withdrawn")


def test_mark_listed_lists_and_indexes(api, ctx, vendor):
    pid = create_product(api, vendor)["id"]
    who = principal_of(api, vendor)
    with ctx() as session:
        with pytest.raises(InvalidTransition):
            services.mark_listed(session, product_id=pid, version=1, certificate_number="DFX-2026-000009")
        services.submit_for_review(session, product_id=pid, actor=who)
        assert not _in_catalog(session, pid)
        product = services.mark_listed(session, product_id=pid, version=1, certificate_number="DFX-2026-000009")
        assert (product.status, product.listed_version, product.certificate_number) == (
            "listed", 1, "DFX-2026-000009")
        assert product.listed_at is not None
        assert services.get_version(session, product_id=pid, version=1).status == "certified"
        assert _in_catalog(session, pid)
        with pytest.raises(InvalidTransition):
            services.mark_listed(session, product_id=pid, version=1, certificate_number="DFX-2026-000010")


def test_suspend_reinstate_and_relist_after_revocation(api, ctx, vendor):
    pid = listed_product(api, vendor)["id"]
    who = principal_of(api, vendor)
    operator = principal_of(api, api.operator())
    with ctx() as session:
        product = services.suspend(session, product_id=pid, reason="certificate suspended", actor=operator)
        assert product.status == "suspended" and not services.is_tradable(product)
        assert not _in_catalog(session, pid)
        with pytest.raises(NotFound):
            services.get_product(session, product_id=pid, principal=None)
        with pytest.raises(InvalidTransition):
            services.suspend(session, product_id=pid, reason="again")
        services.reinstate(session, product_id=pid, reason="certificate reinstated")
        assert _in_catalog(session, pid)
        with pytest.raises(InvalidTransition):
            services.reinstate(session, product_id=pid, reason="again")
        # Revoked: suspended for good on that certificate; a newly certified revision lists it again.
        services.suspend(session, product_id=pid, reason="certificate revoked")
        services.update_product(session, product_id=pid, changes={"title": "交通 fixed"}, actor=who)
        services.submit_for_review(session, product_id=pid, actor=who)
        assert services.get_product(session, product_id=pid, principal=who).status == "suspended"
        product = services.mark_listed(session, product_id=pid, version=2, certificate_number="DFX-2026-000777")
        assert product.status == "listed" and product.listed_version == 2
        assert services.get_version(session, product_id=pid, version=1).status == "superseded"
        assert _in_catalog(session, pid, q="交通 fixed")


def test_delist(api, ctx, vendor):
    pid = listed_product(api, vendor)["id"]
    who, other = principal_of(api, vendor), principal_of(api, api.vendor())
    with ctx() as session:
        with pytest.raises(Forbidden):
            services.delist(session, product_id=pid, reason="x", actor=other)
        product = services.delist(session, product_id=pid, reason="retired", actor=who)
        assert product.status == "delisted" and not _in_catalog(session, pid)
        with pytest.raises(InvalidTransition):
            services.reinstate(session, product_id=pid, reason="no")
        with pytest.raises(InvalidTransition):
            services.delist(session, product_id=pid, reason="again", actor=who)
        with pytest.raises(InvalidTransition):
            services.update_product(session, product_id=pid, changes={"title": "x"}, actor=who)


def test_operators_may_delist(api, ctx, vendor):
    pid = listed_product(api, vendor)["id"]
    operator = principal_of(api, api.operator())
    with ctx() as session:
        assert services.delist(session, product_id=pid, reason="court order", actor=operator).status == "delisted"


def test_delist_with_a_revision_in_review_is_a_conflict(api, ctx, vendor):
    pid = create_product(api, vendor)["id"]
    who = principal_of(api, vendor)
    with ctx() as session:
        services.submit_for_review(session, product_id=pid, actor=who)
        with pytest.raises(Conflict):
            services.delist(session, product_id=pid, reason="x", actor=who)


def test_version_body_is_the_creation_body_as_stored(api, ctx, vendor):
    body = product_body()
    pid = create_product(api, vendor, **body)["id"]
    with ctx() as session:
        version = services.get_version(session, product_id=pid, version=1)
        stored = services.version_body(version)
        assert tuple(stored) == BODY_FIELDS
        assert stored == body
        canonical_bytes(stored)  # JSON-able for the certificate digest
        with pytest.raises(NotFound):
            services.get_version(session, product_id=pid, version=2)


def test_version_body_has_nulls_for_missing_optional_parts(api, ctx, vendor):
    pid = create_product(api, vendor, sample=None, coverage=None, volume=None,
                         price={"model": "one_time", "amount": 5, "currency": "MOP"})["id"]
    with ctx() as session:
        stored = services.version_body(services.get_version(session, product_id=pid, version=1))
        assert stored["sample"] is None and stored["coverage"] is None and stored["volume"] is None
        assert stored["price"] == {"model": "one_time", "amount": 5, "currency": "MOP", "period": None}


def _hits(session, q, **filters):
    return [(p.id, score) for p, _, score in catalog.search_catalog(session, principal=None, q=q, **filters)["items"]]


def test_catalog_search_ranks_and_filters(api, ctx, vendor):
    traffic = listed_product(api, vendor, title="广州市实时交通流量数据", category="transport")["id"]
    power = listed_product(api, vendor, title="珠三角电力负荷曲线", keywords=["电力"], category="energy",
                           summary="负荷 load", description="电力负荷 electricity load")["id"]
    with ctx() as session:
        hits = _hits(session, "交通")
        assert [p for p, _ in hits] == [traffic]
        assert all(score > 0 for _, score in hits)
        assert [p for p, _ in _hits(session, "电力负荷")] == [power]
        assert _hits(session, "交通", category="energy") == []
        assert _hits(session, "***") == []
        assert len(_hits(session, "guangzhou", per_page=1)) == 1


def test_history_of_service_calls_names_the_actor(api, ctx, vendor):
    pid = create_product(api, vendor)["id"]
    list_product(api, vendor, pid)
    operator = principal_of(api, api.operator())
    with ctx() as session:
        services.suspend(session, product_id=pid, reason="certificate suspended: audit", actor=operator)
        rows = session.execute(services.history(session, product_id=pid, principal=operator)).scalars().all()
        last = rows[-1]
        assert (last.subject, last.from_status, last.to_status) == ("product", "listed", "suspended")
        assert last.actor_org_id == operator.org_id and last.reason == "certificate suspended: audit"
        certified = [r for r in rows if r.subject == "version" and r.to_status == "certified"]
        assert certified and "DFX-" in certified[0].reason


def test_changes_are_committed_by_the_caller_only(api, ctx, vendor):
    pid = create_product(api, vendor)["id"]
    who = principal_of(api, vendor)
    with ctx() as session:
        services.submit_for_review(session, product_id=pid, actor=who)
        session.rollback()
    assert api.get(f"products/{pid}", vendor).get_json()["status"] == "draft"
