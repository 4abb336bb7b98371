"""Property test: any sequence of life-cycle calls keeps a product and its revisions consistent.

A small model predicts each call's outcome (or its refusal); invariants hold after every step: at
most one open revision and it is the newest, a listed product's version is certified, the search
index holds exactly the listed products, and the history chains without gaps.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from exchange.db import db
from exchange.errors import Conflict, DomainError, InvalidTransition
from listings import catalog, services
from listings.models import ProductTransition, ProductVersion
from listings.schemas import ProductCreateSchema
from tests.factories import principal_of, product_body

MARKER = "zqxlifecycle"
_numbers = itertools.count(1)


def test_product_life_cycle_state_machine(api):
    vendor = principal_of(api, api.vendor())
    body = ProductCreateSchema().load(product_body(keywords=[MARKER]))

    class LifeCycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.session = db.session
            self.pid = services.create_product(self.session, data=body, actor=vendor).id
            self.status = "draft"
            self.versions = {1: "draft"}
            self.listed = None

        @property
        def latest(self) -> int:
            return max(self.versions)

        def expect(self, error: type[DomainError] | None, call) -> bool:
            if error is None:
                call()
                return True
            try:
                call()
            except DomainError as exc:
                assert type(exc) is error, (type(exc), error)
                return False
            raise AssertionError(f"expected {error.__name__}")

        @rule(title=st.sampled_from(["交通 v", "traffic v", "电力负荷 v"]))
        def edit(self, title):
            latest = self.versions[self.latest]
            error = (InvalidTransition if self.status == "delisted"
                     else Conflict if latest == "in_review" else None)
            edited = self.expect(error, lambda: services.update_product(
                self.session, product_id=self.pid, changes={"title": f"{title}{next(_numbers)}"}, actor=vendor))
            if edited and latest != "draft":
                self.versions[self.latest + 1] = "draft"

        @rule()
        def submit(self):
            latest = self.versions[self.latest]
            error = (InvalidTransition if self.status == "delisted"
                     else Conflict if latest != "draft" else None)
            if self.expect(error, lambda: services.submit_for_review(self.session, product_id=self.pid, actor=vendor)):
                self.versions[self.latest] = "in_review"
                if self.listed is None:
                    self.status = "in_review"

        @rule(outcome=st.sampled_from(["changes_requested", "withdrawn", "rejected"]))
        def end_review(self, outcome):
            error = None if self.versions[self.latest] == "in_review" else InvalidTransition
            if self.expect(error, lambda: services.return_to_draft(
                    self.session, product_id=self.pid, version=self.latest, outcome=outcome)):
                self.versions[self.latest] = "rejected" if outcome == "rejected" else "draft"
                if self.status == "in_review":
                    self.status = "draft"

        @rule()
        def certify(self):
            ok = self.status in ("in_review", "listed", "suspended") and self.versions[self.latest] == "in_review"
            if self.expect(None if ok else InvalidTransition, lambda: services.mark_listed(
                    self.session, product_id=self.pid, version=self.latest,
                    certificate_number=f"DFX-2026-{next(_numbers):06d}")):
                if self.listed is not None and self.versions[self.listed] == "certified":
                    self.versions[self.listed] = "superseded"
                self.versions[self.latest] = "certified"
                self.listed, self.status = self.latest, "listed"

        @rule()
        def suspend(self):
            if self.expect(None if self.status == "listed" else InvalidTransition,
                           lambda: services.suspend(self.session, product_id=self.pid, reason="test")):
                self.status = "suspended"

        @rule()
        def reinstate(self):
            if self.expect(None if self.status == "suspended" else InvalidTransition,
                           lambda: services.reinstate(self.session, product_id=self.pid, reason="test")):
                self.status = "listed"

        @rule()
        def delist(self):
            error = (Conflict if self.versions[self.latest] == "in_review"
                     else None if self.status in ("draft", "listed", "suspended") else InvalidTransition)
            if self.expect(error, lambda: services.delist(self.session, product_id=self.pid, reason="t", actor=vendor)):
                self.status = "delisted"

        @invariant()
        def matches_the_model(self):
            product = services.get_product(self.session, product_id=self.pid, principal=vendor)
            assert (product.status, product.listed_version, product.latest_version) == (
                self.status, self.listed, self.latest)
            stored = dict(self.session.execute(select(ProductVersion.version, ProductVersion.status)
                                               .where(ProductVersion.product_id == self.pid)).all())
            assert stored == self.versions

        @invariant()
        def one_open_revision_and_it_is_the_newest(self):
            open_ = [v for v, s in self.versions.items() if s in ("draft", "in_review")]
            assert open_ in ([], [self.latest])
            if self.status in ("listed", "suspended"):
                assert self.versions[self.listed] == "certified"

        @invariant()
        def index_holds_exactly_the_listed(self):
            hits = catalog.search_catalog(self.session, principal=None, q=MARKER, per_page=1000)["items"]
            found = self.pid in {p.id for p, _, _ in hits}
            assert found == (self.status == "listed")

        @invariant()
        def history_chains(self):
            rows = self.session.execute(select(ProductTransition).where(
                ProductTransition.product_id == self.pid, ProductTransition.subject == "product")
                .order_by(ProductTransition.id)).scalars().all()
            assert rows[0].from_status is None and rows[-1].to_status == self.status
            for before, after in itertools.pairwise(rows):
                assert after.from_status == before.to_status

    with api.app.app_context():
        try:
            run_state_machine_as_test(LifeCycle, settings=settings(
                max_examples=25, stateful_step_count=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
        finally:
            db.session.rollback()
