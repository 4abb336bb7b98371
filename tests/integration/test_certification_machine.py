"""A hypothesis state machine driving certification through the API, checking the invariants:
a product is listed iff it has exactly one valid certificate, for its listed version; no approval
without every stage approved; nobody reviews their own product; four-eyes at compliance."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from certification.models import Certificate, Certification, CertificationEvent, CertificationStage
from exchange.db import db
from listings.models import Product
from tests.certflow import DOCS, product_body
from tests.factories import ApiHelper

STAGES = ("compliance", "quality", "ownership")
DECISIONS = ("approve", "approve", "approve", "reject", "request_changes")


class CertificationMachine(RuleBasedStateMachine):
    def __init__(self, app, database):
        super().__init__()
        database.reset(app)
        self.app = app
        self.api = ApiHelper(app)

    @initialize()
    def actors(self):
        api = self.api
        self.vendor = api.vendor()
        self.op1 = api.operator()
        self.op2 = api.member(self.op1)
        self.assessor = api.assessor()
        self.products: list[str] = []
        self.certs: list[str] = []

    @rule(classification=st.sampled_from(["general", "important", "core"]), personal=st.booleans())
    def create_product(self, classification, personal):
        if len(self.products) >= 3:
            return
        r = self.api.post("products", self.vendor, json=product_body(classification=classification,
                                                                    contains_personal_info=personal))
        assert r.status_code == 201, r.get_json()
        self.products.append(r.get_json()["id"])

    @rule(i=st.integers(0, 2))
    def submit(self, i):
        if not self.products:
            return
        pid = self.products[i % len(self.products)]
        r = self.api.post("certifications", self.vendor, json={"product_id": pid, "documents": DOCS})
        assert r.status_code in (201, 409), r.get_json()
        if r.status_code == 201:
            self.certs.append(r.get_json()["id"])

    @rule(i=st.integers(0, 5), stage=st.sampled_from(["quality", "ownership"]))
    def assign(self, i, stage):
        if not self.certs:
            return
        cid = self.certs[i % len(self.certs)]
        r = self.api.post(f"certifications/{cid}/assignments", self.op1,
                          json={"stage": stage, "assessor_org_id": self.assessor.org_id})
        assert r.status_code in (201, 409), r.get_json()

    @rule(i=st.integers(0, 5), stage=st.sampled_from(STAGES), decision=st.sampled_from(DECISIONS),
          who=st.sampled_from(["op1", "op2", "assessor", "vendor"]))
    def review(self, i, stage, decision, who):
        if not self.certs:
            return
        cid = self.certs[i % len(self.certs)]
        r = self.api.post(f"certifications/{cid}/reviews", getattr(self, who),
                          json={"stage": stage, "decision": decision})
        assert r.status_code in (201, 403, 404, 409, 422), r.get_json()
        if who == "vendor":
            assert r.status_code in (403, 404)
        assert r.status_code != 500

    @rule(i=st.integers(0, 5))
    def resubmit(self, i):
        if not self.certs:
            return
        cid = self.certs[i % len(self.certs)]
        cert = self.api.get(f"certifications/{cid}", self.vendor).get_json()
        if cert["status"] == "changes_requested":
            self.api.patch(f"products/{cert['product_id']}", self.vendor, json={"summary": f"revised {i}"})
        r = self.api.post(f"certifications/{cid}/resubmit", self.vendor, json={})
        assert r.status_code in (200, 409), r.get_json()

    @rule(i=st.integers(0, 5))
    def withdraw(self, i):
        if not self.certs:
            return
        r = self.api.post(f"certifications/{self.certs[i % len(self.certs)]}/withdraw", self.vendor)
        assert r.status_code in (200, 409), r.get_json()

    @rule(i=st.integers(0, 2), action=st.sampled_from(["suspend", "reinstate", "revoke"]))
    def certificate_action(self, i, action):
        with self.app.app_context():
            numbers = list(db.session.execute(select(Certificate.number).order_by(Certificate.number)).scalars())
        if not numbers:
            return
        r = self.api.post(f"certificates/{numbers[i % len(numbers)]}/{action}", self.op1, json={"reason": "test"})
        assert r.status_code in (200, 409), r.get_json()

    @rule(i=st.integers(0, 2))
    def edit(self, i):
        if not self.products:
            return
        r = self.api.patch(f"products/{self.products[i % len(self.products)]}", self.vendor,
                           json={"summary": f"edit {i}"})
        assert r.status_code in (200, 409), r.get_json()

    @invariant()
    def listed_iff_one_valid_certificate(self):
        with self.app.app_context():
            for product in db.session.execute(select(Product)).scalars():
                valid = db.session.execute(
                    select(Certificate).where(Certificate.product_id == product.id, Certificate.status == "valid")
                ).scalars().all()
                if product.status == "listed":
                    assert len(valid) == 1, (product.id, [c.number for c in valid])
                    assert valid[0].product_version == product.listed_version
                    assert valid[0].number == product.certificate_number
                else:
                    assert valid == [], (product.id, product.status)

    @invariant()
    def approvals_need_all_stages_and_four_eyes(self):
        with self.app.app_context():
            for cert in db.session.execute(select(Certification)).scalars():
                stages = {s.name: s for s in db.session.execute(
                    select(CertificationStage).where(CertificationStage.certification_id == cert.id)).scalars()}
                if cert.status in ("approved", "public_notice"):
                    assert all(s.status == "approved" for s in stages.values())
                compliance = stages["compliance"]
                assert len(set(compliance.approvals or [])) == len(compliance.approvals or [])
            own = db.session.execute(
                select(func.count()).select_from(CertificationEvent).join(
                    Certification, Certification.id == CertificationEvent.certification_id)
                .where(CertificationEvent.action == "review",
                       CertificationEvent.actor_org_id == Certification.owner_org_id)
            ).scalar_one()
            assert own == 0


def test_certification_state_machine(_session_app, database):
    run_state_machine_as_test(
        lambda: CertificationMachine(_session_app, database),
        settings=settings(max_examples=12, stateful_step_count=25, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )
