"""A hypothesis state machine over one entitlement of a `file` product with a published release,
driven through the API and checked against a plain reference model (API.md, Delivery and use):
after every step a download link is granted iff the model allows access (else 403 naming the
model's reason class), the entitlement shows the model's status, revoked and expired are final, and
the access log only grows, with one refused entry per refusal that reached delivery."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, update

from certification.models import WhitelistEntry
from delivery.models import Entitlement, Release
from exchange.db import db, utcnow
from exchange.fields import iso_z
from tests.certflow import approve_all, submit
from tests.deliveryflow import CSV, access_log, entitlement_of, fetch, link, pay, release, signed_trade
from tests.factories import ApiHelper
from tests.tradeflow import clear_dossier

ONE_TIME = {"model": "one_time", "amount": 1_250_000, "currency": "CNY"}
# An `important` product from the mainland sold to Hong Kong crosses a border only under a white-list entry.
CROSS_BORDER = {"classification": "important", "category": "finance"}


def whitelist_entry(api: ApiHelper, op, days: int = 90) -> str:
    r = api.post("whitelist", op, json={"category": "finance", "from_region": "GD", "to_region": "HK",
                                        "max_classification": "important",
                                        "expires_at": iso_z(utcnow() + timedelta(days=days))})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def world(api: ApiHelper, cross_border: bool) -> dict:
    """A vendor, a buyer (in Hong Kong for a cross-border deal), a signed trade for a certified
    file product and a published release of it."""
    op = api.operator()
    vendor = api.vendor("GD")
    buyer = api.enterprise("HK" if cross_border else "GD")
    entries = [whitelist_entry(api, op)] if cross_border else []
    trade = signed_trade(api, vendor, buyer, price=ONE_TIME, **(CROSS_BORDER if cross_border else {}))
    if cross_border:
        # Important data leaving the mainland: a security assessment, approved before delivery.
        clear_dossier(api, trade["contract_id"])
    contract = api.get(f"contracts/{trade['contract_id']}", buyer).get_json()
    rel = release(api, vendor, trade["product_id"])
    return {"op": op, "vendor": vendor, "buyer": buyer, "entries": entries, "trade": trade,
            "certificate": contract["certificate_number"], "release": rel}


def expire_now(app, ent_id: str, release_id: str) -> None:
    """Move the entitlement's window into the past. The domain clock cannot be moved yet (utcnow
    is read everywhere), so the window is moved instead: `ends_at` now, after the release's
    publication (the release stays covered, so an access is refused as expired rather than as an
    uncovered release), `starts_at` keeping the window's length."""
    with app.app_context():
        published = db.session.execute(select(Release.published_at).where(Release.id == release_id)).scalar_one()
        # The clock has whole seconds: wait for the one after the publication's.
        while (ends := utcnow()) <= published:
            time.sleep(0.05)
        db.session.execute(update(Entitlement).where(Entitlement.id == ent_id)
                           .values(ends_at=ends, starts_at=ends - timedelta(days=365)))
        db.session.commit()


def lapse_entry(app, entry_id: str) -> None:
    """A white-list entry's expiry, reached by moving `expires_at` into the past (the domain clock
    cannot be moved yet; an entry cannot be created already expired)."""
    with app.app_context():
        db.session.execute(update(WhitelistEntry).where(WhitelistEntry.id == entry_id)
                           .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def cert_action(api: ApiHelper, op, number: str, action: str):
    return api.post(f"certificates/{number}/{action}", op, json={"reason": f"machine {action}"})


class Model:
    """What API.md says about the entitlement, from the facts the machine changed."""

    def __init__(self, cross_border: bool, entries: list[str]) -> None:
        self.cross_border = cross_border
        self.entries = {e: True for e in entries}  # id -> live
        self.escrowed = False
        self.trade = "awaiting_payment"  # -> open (escrowed or delivered) -> disputed -> settled | refunded
        self.cert = "valid"  # | suspended | revoked | superseded
        self.buyer_suspended = False
        self.seller_suspended = False
        # Revocation and expiry are final: the first to happen stays.
        self.final: str | None = None

    def end(self, status: str) -> None:
        if self.final is None:
            self.final = status

    def causes(self) -> tuple[list[str], bool]:
        """The suspension's causes, and whether the white list is one of them."""
        causes = []
        if self.trade == "disputed":
            causes.append("dispute open")
        if self.cert == "suspended":
            causes.append("certificate suspended")
        if self.buyer_suspended:
            causes.append("buyer organization suspended")
        if self.seller_suspended:
            causes.append("seller organization suspended")
        border = self.cross_border and not any(self.entries.values())
        return causes, border

    @property
    def status(self) -> str:
        if self.final:
            return self.final
        causes, border = self.causes()
        return "suspended" if causes or border else "active"

    @property
    def allowed(self) -> bool:
        return self.status == "active"

    @property
    def code(self) -> str:
        """The reason class a refused access names (`cross_border` when the white list is the only cause)."""
        causes, border = self.causes()
        if self.status == "suspended" and border and not causes:
            return "cross_border"
        return f"entitlement_{self.status}"


class EntitlementMachine(RuleBasedStateMachine):
    def __init__(self, app, database):
        super().__init__()
        database.reset(app)
        self.app = app
        self.api = ApiHelper(app)

    @initialize(cross_border=st.booleans())
    def build(self, cross_border):
        w = world(self.api, cross_border)
        self.op, self.vendor, self.buyer = w["op"], w["vendor"], w["buyer"]
        self.trade, self.certificate, self.release = w["trade"], w["certificate"], w["release"]
        self.model = Model(cross_border, w["entries"])
        self.ent_id: str | None = None
        self.url: str | None = None
        self.log: list[dict] = []
        self.refused = 0  # refusals that reached delivery: each leaves one refused entry
        self.allowed = 0  # links issued and downloads served
        self.seen_final: str | None = None
        self.superseded = False
        self.expiry_persisted = False

    # -- the trade -------------------------------------------------------------------------------
    @precondition(lambda self: not self.model.escrowed)
    @rule()
    def escrow(self):
        m = self.model
        if m.buyer_suspended or m.seller_suspended or m.cert in ("suspended", "revoked"):
            # Refused: the buyer's own write (403), the seller or the certificate (409).
            r = self.api.post(f"trades/{self.trade['id']}/payments", self.buyer, json={"provider": "manual"})
            assert r.status_code == (403 if m.buyer_suspended else 409), r.get_json()
            return
        assert pay(self.api, self.buyer, self.trade["id"])["status"] in ("escrowed", "delivered")
        m.escrowed, m.trade = True, "open"
        self.ent_id = entitlement_of(self.api, self.op, self.trade["id"])["id"]

    @precondition(lambda self: self.model.trade == "open")
    @rule()
    def dispute(self):
        # The buyer disputes; an operator does on its behalf while it is suspended.
        actor = self.op if self.model.buyer_suspended else self.buyer
        r = self.api.post(f"trades/{self.trade['id']}/disputes", actor, json={"reason": "rows missing"})
        assert r.status_code == 201, r.get_json()
        self.model.trade = "disputed"

    @precondition(lambda self: self.model.trade == "disputed")
    @rule(refund=st.sampled_from(["none", "partial", "full"]), end_access=st.booleans())
    def resolve(self, refund, end_access):
        self._resolve(refund, end_access)

    def _resolve(self, refund, end_access):
        amount = {"none": 0, "partial": self.trade["amount"] // 3, "full": self.trade["amount"]}[refund]
        r = self.api.post(f"trades/{self.trade['id']}/resolution", self.op,
                          json={"refund_amount": amount, "end_access": end_access})
        assert r.status_code == 200, r.get_json()
        assert r.get_json()["status"] == ("refunded" if refund == "full" else "settled")
        self.model.trade = "refunded" if refund == "full" else "settled"
        if refund == "full" or end_access:
            self.model.end("revoked")

    # -- the certificate -------------------------------------------------------------------------
    @rule(action=st.sampled_from(["suspend", "reinstate", "revoke"]))
    def certificate(self, action):
        m = self.model
        r = cert_action(self.api, self.op, self.certificate, action)
        applies = {"suspend": m.cert == "valid", "reinstate": m.cert == "suspended",
                   "revoke": m.cert in ("valid", "suspended")}[action]
        assert r.status_code == (200 if applies else 409), (action, m.cert, r.get_json())
        if applies:
            m.cert = {"suspend": "suspended", "reinstate": "valid", "revoke": "revoked"}[action]
            if action == "revoke":
                m.end("revoked")

    @precondition(lambda self: self.model.cert == "valid" and not self.model.seller_suspended
                  and not self.superseded)
    @rule()
    def supersede(self):
        """A new revision of the product certified: the bought version's certificate is superseded,
        which still covers it."""
        product_id = self.trade["product_id"]
        r = self.api.patch(f"products/{product_id}", self.vendor, json={"summary": "每5分钟的车流量 (修订版) revised"})
        assert r.status_code == 200, r.get_json()
        done = approve_all(self.api, submit(self.api, self.vendor, product_id)["id"])
        assert done["status"] == "approved", done
        r = self.api.get(f"certificates/{self.certificate}")
        assert r.status_code == 200 and r.get_json()["status"] == "superseded", r.get_json()
        self.model.cert, self.superseded = "superseded", True

    # -- the organizations -----------------------------------------------------------------------
    @rule(side=st.sampled_from(["buyer", "seller"]), action=st.sampled_from(["suspend", "reinstate"]))
    def organization(self, side, action):
        m = self.model
        org_id = (self.buyer if side == "buyer" else self.vendor).org_id
        suspended = m.buyer_suspended if side == "buyer" else m.seller_suspended
        r = self.api.post(f"organizations/{org_id}/{action}", self.op, json={"reason": f"machine {action}"})
        applies = suspended == (action == "reinstate")
        assert r.status_code == (200 if applies else 409), (side, action, r.get_json())
        if applies:
            setattr(m, f"{side}_suspended", action == "suspend")

    # -- the white list (cross-border deals) -----------------------------------------------------
    @precondition(lambda self: self.model.cross_border and any(self.model.entries.values()))
    @rule(how=st.sampled_from(["lapse", "delete"]))
    def whitelist_ends(self, how):
        entry = next(e for e, live in self.model.entries.items() if live)
        if how == "lapse":
            lapse_entry(self.app, entry)
        else:
            r = self.api.delete(f"whitelist/{entry}", self.op)
            assert r.status_code == 200, r.get_json()
        self.model.entries[entry] = False

    @precondition(lambda self: self.model.cross_border and len(self.model.entries) < 3)
    @rule()
    def whitelist_added(self):
        self.model.entries[whitelist_entry(self.api, self.op)] = True

    # -- time and the sweep ----------------------------------------------------------------------
    @precondition(lambda self: self.model.escrowed and self.model.final is None)
    @rule()
    def time_passes(self):
        expire_now(self.app, self.ent_id, self.release["id"])
        self.model.end("expired")

    @rule()
    def sweep(self):
        assert self.app.test_cli_runner().invoke(args=["sweep"]).exit_code == 0
        if self.ent_id is not None:
            with self.app.app_context():
                # The sweep persists what reads compute.
                assert db.session.get(Entitlement, self.ent_id).status == self.model.status
                db.session.rollback()
            self.expiry_persisted = self.model.final == "expired"

    # -- access ----------------------------------------------------------------------------------
    @precondition(lambda self: self.url is not None)
    @rule()
    def download(self):
        """The last link issued, used now: re-checked at this moment (the buyer's own suspension
        included, the link being its only credential)."""
        r = fetch(self.api, self.url)
        if self.model.allowed:
            assert r.status_code == 200 and r.data == CSV, r.status_code
            self.allowed += 1
        else:
            assert r.status_code == 403, r.status_code
            assert r.get_json()["detail"].startswith(self.model.code + ":"), (self.model.code, r.get_json())
            self.refused += 1

    @invariant()
    def access_is_what_the_model_says(self):
        if getattr(self, "model", None) is None:
            return
        m = self.model
        if self.ent_id is None:
            r = self.api.get(f"entitlements?trade_id={self.trade['id']}", self.op)
            assert r.status_code == 200 and r.get_json()["items"] == [], r.get_json()
            return
        r = self.api.get(f"entitlements/{self.ent_id}", self.buyer)
        assert r.status_code == 200, r.get_json()
        shown = r.get_json()
        assert shown["status"] == m.status, (m.__dict__, shown)
        if self.seen_final is not None:
            assert shown["status"] == self.seen_final
        if shown["status"] in ("revoked", "expired"):
            self.seen_final = shown["status"]
        r = self.api.post(f"entitlements/{self.ent_id}/downloads", self.buyer,
                          json={"release_id": self.release["id"], "file": "traffic.csv"})
        if m.allowed:
            assert r.status_code == 201, (m.__dict__, r.get_json())
            self.url = r.get_json()["url"]
            self.allowed += 1
        else:
            assert r.status_code == 403, (m.__dict__, r.get_json())
            assert r.get_json()["detail"].startswith(m.code + ":"), (m.code, r.get_json())
            self.refused += 1
        log = access_log(self.api, self.buyer, self.ent_id)
        ids = [a["id"] for a in log]
        assert ids == sorted(set(ids)), ids
        assert log[:len(self.log)] == self.log, "an earlier access log entry changed or vanished"
        self.log = log
        assert sum(a["status"] == "refused" for a in log) == self.refused
        assert sum(a["status"] == "allowed" for a in log) == self.allowed
        assert all(a["refused_reason"] for a in log if a["status"] == "refused")


def test_entitlement_state_machine(_session_app, database):
    run_state_machine_as_test(
        lambda: EntitlementMachine(_session_app, database),
        settings=settings(max_examples=30, stateful_step_count=25, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )


# -- bugs the machine found (fixed; kept as regression tests) ------------------------------------------
@pytest.mark.parametrize("revocation", ["certificate revoked", "full refund", "end_access"])
def test_an_expired_entitlement_stays_expired_when_a_revocation_comes_later(app, api, revocation):
    w = world(api, cross_border=False)
    buyer, op, trade_id = w["buyer"], w["op"], w["trade"]["id"]
    pay(api, buyer, trade_id)
    ent = entitlement_of(api, buyer, trade_id)
    if revocation != "certificate revoked":
        assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "rows missing"}).status_code == 201
    expire_now(app, ent["id"], w["release"]["id"])
    assert api.get(f"entitlements/{ent['id']}", buyer).get_json()["status"] == "expired"
    if revocation == "certificate revoked":
        assert cert_action(api, op, w["certificate"], "revoke").status_code == 200
    else:
        body = {"refund_amount": w["trade"]["amount"]} if revocation == "full refund" else \
            {"refund_amount": 0, "end_access": True}
        assert api.post(f"trades/{trade_id}/resolution", op, json=body).status_code == 200
    assert api.get(f"entitlements/{ent['id']}", buyer).get_json()["status"] == "expired"


def test_the_access_log_pages_by_its_cursor(app, api):
    w = world(api, cross_border=False)
    pay(api, w["buyer"], w["trade"]["id"])
    ent = entitlement_of(api, w["buyer"], w["trade"]["id"])
    for _ in range(3):
        link(api, w["buyer"], ent["id"], w["release"]["id"])
    r = api.get(f"entitlements/{ent['id']}/accesses?limit=2", w["buyer"])
    assert r.status_code == 200, r.get_json()
    assert len(r.get_json()["items"]) == 2
    assert [a["kind"] for a in access_log(api, w["buyer"], ent["id"])] == ["download_link"] * 3


@pytest.mark.parametrize("action", ["suspend", "revoke"])
def test_paying_under_a_suspended_or_revoked_certificate_is_refused(api, action):
    w = world(api, cross_border=False)
    assert cert_action(api, w["op"], w["certificate"], action).status_code == 200
    r = api.post(f"trades/{w['trade']['id']}/payments", w["buyer"], json={"provider": "manual"})
    assert r.status_code == 409, r.get_json()
