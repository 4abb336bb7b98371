"""The race matrix: every state-changing route of the app, raced.

ROWS: one per route that changes something. Its setup brings a fresh object into the state the route
acts on (through the API, on a shared `Env`), then N identical requests are released together:
- `once`: exactly one succeeds, every other answers 409 (or the documented `losers`), the object's
  final status is the one success's, and `status_changes` holds that transition once;
- `same`: an edit that may be repeated, as a PATCH setting a status (serially the later requests
  find it done): every request succeeds, but the transition is recorded once and any row it creates
  exists once;
- `create`: N requests share one Idempotency-Key: one row is created, every other request is an
  idempotent replay of the same 201 or a 409 "still in flight".
EXEMPT: the routes that are neither, with the reason.
PAIRS: conflicting requests on one object (PER_SIDE of each), whose outcome must equal some serial
order of them (tests.race.harness.serializable).
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from exchange.canonical import sha256_hex
from exchange.db import utcnow
from exchange.fields import iso_z
from tests.certflow import DOCS, certify, create_product, product_body, review, submit
from tests.deliveryflow import CSV, fetch
from tests.factories import PASSWORD, Actor, ApiHelper
from tests.race.harness import PER_SIDE, Answer, Call, Findings, P, changes, query, scalar
from tests.tradeflow import bid, live_fair, sign
from tests.world import SHA, UPSTREAM_URL, WEBHOOK_URL, new_public_key, ok, procurement_body

_n = itertools.count(1)
REASON = {"reason": "race check"}


class Env:
    """The actors and one listed product every row shares; builders of fresh objects in each state."""

    def __init__(self, api: ApiHelper) -> None:
        self.api = api
        self.app = api.app
        self.op = api.operator()
        self.op2 = api.operator(fresh=True)
        self.owner = api.vendor()
        self.vendor2 = api.vendor()
        self.buyer = api.enterprise()
        self.ent2 = api.enterprise()
        self.assessor = api.assessor()
        self.product = certify(api, self.owner)
        self.file_product = certify(api, self.owner, delivery_mode="file")
        self.fair, self.stall = live_fair(api, self.owner, [self.product["id"]])

    # -- organizations --------------------------------------------------------------------------
    def pending_org(self) -> str:
        return self.api.register("enterprise")["id"]

    def verified_org(self) -> str:
        org = self.pending_org()
        ok(self.api.post(f"organizations/{org}/verify", self.op, json=REASON))
        return org

    def suspended_org(self) -> str:
        org = self.verified_org()
        ok(self.api.post(f"organizations/{org}/suspend", self.op, json=REASON))
        return org

    # -- products and certification ---------------------------------------------------------------
    def draft(self) -> str:
        return create_product(self.api, self.owner)["id"]

    def submitted(self) -> str:
        return submit(self.api, self.owner, self.draft())["id"]

    def changes_requested(self) -> str:
        cert = self.submitted()
        review(self.api, self.op, cert, "quality", "request_changes")
        return cert

    def certificate(self, suspended: bool = False) -> dict[str, Any]:
        product = certify(self.api, self.owner)
        if suspended:
            ok(self.api.post(f"certificates/{product['certificate_number']}/suspend", self.op, json=REASON))
        return product

    def under_notice(self) -> str:
        self.app.config["NOTICE_DAYS"] = 30
        try:
            cert = self.submitted()
            for stage in ("quality", "ownership", "compliance"):
                body = review(self.api, self.op, cert, stage)
            assert body["status"] == "public_notice", body
        finally:
            self.app.config["NOTICE_DAYS"] = 0
        return cert

    def objection(self) -> str:
        cert = self.under_notice()
        return ok(self.api.post(f"certifications/{cert}/objections", self.ent2, json={"reason": "存疑 doubtful"}),
                  201)["id"]

    # -- trading ----------------------------------------------------------------------------------
    def offer(self, **extra: Any) -> str:
        return bid(self.api, self.buyer, self.product, **extra)["id"]

    def contract(self) -> str:
        return ok(self.api.post(f"offers/{self.offer()}/accept", self.owner), 201)["id"]

    def trade(self, state: str = "awaiting_payment", seller: Actor | None = None,
              product: dict[str, Any] | None = None) -> dict[str, str]:
        """A trade in `state`: awaiting_payment, paying (a pending manual payment), escrowed, delivered,
        disputed (after delivery) or settled."""
        api, seller = self.api, seller or self.owner
        offer = bid(api, self.buyer, product or self.product)["id"]
        contract = ok(api.post(f"offers/{offer}/accept", seller), 201)["id"]
        sign(api, self.buyer, contract)
        ids = {"contract": contract, "trade": sign(api, seller, contract)["trade_id"]}
        path = f"trades/{ids['trade']}"
        order = ["awaiting_payment", "paying", "escrowed", "delivered", "disputed|settled"]
        reached = order.index("disputed|settled" if state in ("disputed", "settled") else state)
        if reached >= 1:
            ids["payment"] = ok(api.post(f"{path}/payments", self.buyer, json={"provider": "manual"}), 201)["id"]
        if reached >= 2:
            ok(api.post(f"payments/{ids['payment']}/confirm", self.op))
        if reached >= 3:
            ok(api.post(f"{path}/delivery", seller, json={"reference": "s3://bucket/race.csv", "sha256": SHA}))
        if state == "disputed":
            ok(api.post(f"{path}/disputes", self.buyer, json={"reason": "late"}), 201)
        elif state == "settled":
            ok(api.post(f"{path}/acceptance", self.buyer))
        return ids

    # -- delivery ---------------------------------------------------------------------------------
    def release(self, *, files: dict[str, bytes] | None = None, publish: bool = False,
                product: str | None = None) -> str:
        """A release of the file product (or `product`): a draft with `files` (traffic.csv by
        default), published if asked."""
        api = self.api
        rel = ok(api.post(f"products/{product or self.file_product['id']}/releases", self.owner,
                          json={"label": "race"}), 201)["id"]
        for name, data in ({"traffic.csv": CSV} if files is None else files).items():
            ok(api.client.put(f"{P}/releases/{rel}/files/{name}", data=data,
                              headers={**self.owner.headers, "Content-Type": "application/octet-stream"}), 201)
        if publish:
            ok(api.post(f"releases/{rel}/publish", self.owner))
        return rel

    def entitlement(self, product: dict[str, Any] | None = None) -> dict[str, str]:
        """An escrowed trade of the buyer on the file product (or `product`) and its active entitlement."""
        ids = self.trade("escrowed", product=product or self.file_product)
        (ent,) = ok(self.api.get(f"entitlements?trade_id={ids['trade']}", self.buyer))["items"]
        assert ent["status"] == "active", ent
        return {**ids, "entitlement": ent["id"]}

    def api_entitlement(self, live_keys: int = 0) -> tuple[str, list[str]]:
        """An active entitlement of the buyer on the (api) product and `live_keys` keys of it. The product
        keeps no upstream: with one the exchange delivers its trades itself, as no other row expects."""
        ent = self.entitlement(self.product)["entitlement"]
        keys = [ok(self.api.post(f"entitlements/{ent}/api-keys", self.buyer, json={"label": f"race {i}"}), 201)["id"]
                for i in range(live_keys)]
        return ent, keys

    def seller_with_balance(self) -> tuple[Actor, int]:
        """A vendor of its own whose payable balance comes from one settled trade."""
        seller = self.api.vendor()
        product = certify(self.api, seller)
        self.trade("settled", seller=seller, product=product)
        balance = scalar(self.app, "SELECT balance FROM ledger_accounts WHERE owner_id = :o AND purpose = "
                                   "'seller_payable'", o=seller.org_id)
        assert balance and balance > 0, balance
        return seller, int(balance)


# -- rows ------------------------------------------------------------------------------------------
Check = Callable[[Env, list[Answer]], list[str]]


@dataclass
class Case:
    """What one row's setup made: the request, and what to check after the race."""

    call: Call
    obj: tuple[str, str] | None = None  # (status_changes.object_type, object_id) whose status moves
    initial: str | None = None
    target: str | None = None  # the status after the one success
    read: str | None = None  # GET path (as the operator, or `reader`) showing the object's final status
    reader: Actor | None = None
    audit: str | None = None  # audit action the success records once, for audit_id
    audit_id: str | None = None
    count: tuple[str, dict[str, Any]] | None = None  # SQL counting the rows the route creates
    check: Check | None = None


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    rule: str  # the OpenAPI path
    setup: Callable[[Env], Case]
    kind: str = "once"  # once | same | create
    losers: frozenset[int] = frozenset({409})
    xfail: str | None = None
    rounds: int = 1  # a race lost only now and then is run this many times (on fresh objects)


def _key() -> str:
    return f"race-{uuid.uuid4()}"


def _count(table: str, where: str = "TRUE", **params: Any) -> tuple[str, dict[str, Any]]:
    return f"SELECT count(*) FROM {table} WHERE {where}", params


def org_status(route: str, initial: Callable[[Env], str], frm: str, to: str, audit: str) -> Callable[[Env], Case]:
    def setup(env: Env) -> Case:
        org = initial(env)
        return Case(Call("POST", f"organizations/{org}/{route}", env.op, REASON), ("organizations", org), frm, to,
                    read=f"organizations/{org}", audit=audit, audit_id=org)
    return setup


def patch_org_status(env: Env) -> Case:
    org = env.verified_org()
    return Case(Call("PATCH", f"organizations/{org}", env.op, {"status": "suspended"}),
                ("organizations", org), "verified", "suspended", read=f"organizations/{org}",
                audit="organization.suspended", audit_id=org)


def registration(env: Env) -> Case:
    n = next(_n)
    body = {"name": f"竞速机构 Race org {n} {uuid.uuid4().hex[:6]}", "type": "enterprise", "region": "GD",
            "registration_number": f"RACE-{uuid.uuid4().hex[:10]}",
            "admin": {"email": f"race-{uuid.uuid4().hex[:10]}@race.test", "password": PASSWORD, "name": "Admin"}}
    return Case(Call("POST", "organizations", None, body, _key()),
                count=_count("organizations", "registration_number = :r", r=body["registration_number"]))


def member(env: Env) -> Case:
    email = f"race-member-{uuid.uuid4().hex[:10]}@race.test"
    return Case(Call("POST", f"organizations/{env.owner.org_id}/members", env.owner,
                     {"email": email, "password": PASSWORD, "name": "Member"}, _key()),
                count=_count("users", "email = :e", e=email))


def unkeyed(setup: Callable[[Env], Case]) -> Callable[[Env], Case]:
    """The same creation without an Idempotency-Key: what is unique (an email, a registration number,
    a public key, a stall code) is created once, every other request answers 409."""
    def without_key(env: Env) -> Case:
        case = setup(env)
        call = case.call
        return Case(Call(call.method, call.path, call.actor, call.body), count=case.count)
    return without_key


def add_key(env: Env) -> Case:
    return Case(Call("POST", f"organizations/{env.owner.org_id}/keys", env.owner,
                     {"public_key": new_public_key(), "label": "race"}, _key()),
                count=_count("organization_keys", "org_id = :o", o=env.owner.org_id))


def revoke_key(env: Env) -> Case:
    key = ok(env.api.post(f"organizations/{env.owner.org_id}/keys", env.owner,
                          json={"public_key": new_public_key()}), 201)["key_id"]
    return Case(Call("DELETE", f"organizations/{env.owner.org_id}/keys/{key}", env.owner),
                audit="key.revoked", audit_id=key)


def create_product_case(env: Env) -> Case:
    body = product_body()
    return Case(Call("POST", "products", env.owner, body, _key()),
                count=_count("product_versions", "title = :t", t=body["title"]))


def patch_listed(env: Env) -> Case:
    product = certify(env.api, env.owner)["id"]

    def one_revision(env: Env, answers: list[Answer]) -> list[str]:
        versions = scalar(env.app, "SELECT count(*) FROM product_versions WHERE product_id = :p", p=product)
        return [] if versions == 2 else [f"{versions} revisions after identical edits of a listed product (want 2)"]
    return Case(Call("PATCH", f"products/{product}", env.owner, {"summary": "竞速 race edit"}), check=one_revision)


def patch_draft(env: Env) -> Case:
    product = env.draft()
    return Case(Call("PATCH", f"products/{product}", env.owner, {"summary": "竞速 race edit"}),
                read=f"products/{product}", reader=env.owner)


def delist(env: Env) -> Case:
    product = env.draft()
    return Case(Call("DELETE", f"products/{product}", env.owner), ("products", product), "draft", "delisted",
                read=f"products/{product}", reader=env.owner)


def create_fair(env: Env) -> Case:
    now = utcnow()
    name = f"竞速交易会 Race fair {uuid.uuid4().hex[:8]}"
    body = {"name": name, "venue": "琶洲", "starts_at": iso_z(now + timedelta(days=3)),
            "ends_at": iso_z(now + timedelta(days=4))}
    return Case(Call("POST", "fairs", env.op, body, _key()),
                count=_count("fairs", "name = :n", n=name))


def create_stall(env: Env) -> Case:
    code = f"R-{next(_n)}"
    return Case(Call("POST", f"fairs/{env.fair['id']}/stalls", env.op,
                     {"org_id": env.owner.org_id, "code": code, "product_ids": []}, _key()),
                count=_count("stalls", "fair_id = :f AND code = :c", f=env.fair["id"], c=code))


def patch_stall(env: Env) -> Case:
    fair, stall = env.fair["id"], ok(env.api.post(f"fairs/{env.fair['id']}/stalls", env.op, json={
        "org_id": env.owner.org_id, "code": f"S-{next(_n)}", "product_ids": []}), 201)["id"]

    def shows_it_once(env: Env, answers: list[Answer]) -> list[str]:
        n = scalar(env.app, "SELECT count(*) FROM stall_products WHERE stall_id = :s", s=stall)
        return [] if n == 1 else [f"the stall shows {n} products after identical edits (want 1)"]
    return Case(Call("PATCH", f"fairs/{fair}/stalls/{stall}", env.op, {"product_ids": [env.product["id"]]}),
                check=shows_it_once)


def submit_case(env: Env) -> Case:
    product = env.draft()
    return Case(Call("POST", "certifications", env.owner, {"product_id": product, "documents": DOCS}),
                ("products", product), "draft", "in_review", read=f"products/{product}", reader=env.owner,
                count=_count("certifications", "product_id = :p", p=product))


def submit_keyed(env: Env) -> Case:
    product = env.draft()
    return Case(Call("POST", "certifications", env.owner, {"product_id": product, "documents": DOCS}, _key()),
                count=_count("certifications", "product_id = :p", p=product))


def assign(env: Env) -> Case:
    cert = env.submitted()
    return Case(Call("POST", f"certifications/{cert}/assignments", env.op,
                     {"stage": "ownership", "assessor_org_id": env.assessor.org_id}),
                ("certifications", cert), "submitted", "in_review", read=f"certifications/{cert}")


def review_case(env: Env) -> Case:
    cert = env.submitted()
    stage = scalar(env.app, "SELECT id FROM certification_stages WHERE certification_id = :c AND name = 'quality'",
                   c=cert)
    return Case(Call("POST", f"certifications/{cert}/reviews", env.op, {"stage": "quality", "decision": "approve"}),
                ("certification_stages", str(stage)), "pending", "approved",
                count=_count("certification_events", "certification_id = :c AND action = 'review'", c=cert))


def resubmit(env: Env) -> Case:
    cert = env.changes_requested()
    return Case(Call("POST", f"certifications/{cert}/resubmit", env.owner, {}), ("certifications", cert),
                "changes_requested", "in_review", read=f"certifications/{cert}")


def withdraw(env: Env) -> Case:
    cert = env.submitted()
    return Case(Call("POST", f"certifications/{cert}/withdraw", env.owner), ("certifications", cert), "submitted",
                "withdrawn", read=f"certifications/{cert}")


def object_to(env: Env) -> Case:
    cert = env.under_notice()
    return Case(Call("POST", f"certifications/{cert}/objections", env.vendor2, {"reason": "竞速 race objection"},
                     _key()), count=_count("objections", "certification_id = :c", c=cert))


def resolve_objection(env: Env) -> Case:
    objection = env.objection()
    return Case(Call("POST", f"objections/{objection}/resolution", env.op, {"upheld": False}),
                ("objections", objection), "open", "dismissed", read=f"objections/{objection}",
                audit="objection.resolved", audit_id=objection)


def certificate_move(route: str, suspended: bool, frm: str, to: str) -> Callable[[Env], Case]:
    def setup(env: Env) -> Case:
        number = env.certificate(suspended)["certificate_number"]
        return Case(Call("POST", f"certificates/{number}/{route}", env.op, REASON), ("certificates", number), frm, to,
                    read=f"certificates/{number}", audit=f"certificate.{to if to != 'valid' else 'reinstated'}",
                    audit_id=number)
    return setup


def whitelist_body() -> dict[str, Any]:
    return {"category": "finance", "from_region": "GD", "to_region": "MO", "max_classification": "general",
            "expires_at": iso_z(utcnow() + timedelta(days=30)), "recipient_org_id": None}


def create_whitelist(env: Env) -> Case:
    return Case(Call("POST", "whitelist", env.op, whitelist_body(), _key()), count=_count("whitelist_entries"))


def delete_whitelist(env: Env) -> Case:
    entry = ok(env.api.post("whitelist", env.op, json=whitelist_body()), 201)["id"]
    return Case(Call("DELETE", f"whitelist/{entry}", env.op), audit="whitelist.deleted", audit_id=entry)


def create_procurement(env: Env) -> Case:
    body = procurement_body(title=f"竞速采购 race demand {uuid.uuid4().hex[:8]}")
    return Case(Call("POST", "procurements", env.buyer, body, _key()),
                count=_count("procurements", "title = :t", t=body["title"]))


def cancel_procurement(env: Env) -> Case:
    proc = ok(env.api.post("procurements", env.buyer, json=procurement_body()), 201)["id"]
    return Case(Call("POST", f"procurements/{proc}/cancel", env.buyer, {}), ("procurements", proc), "open",
                "cancelled", read=f"procurements/{proc}", reader=env.buyer)


def make_offer(env: Env) -> Case:
    message = f"race offer {uuid.uuid4().hex[:8]}"
    body = {"product_id": env.product["id"], "price": {"amount": 1_100_000, "currency": "CNY"},
            "terms": {"scope": "commercial", "duration_days": 365, "delivery_mode": "api"}, "message": message}
    return Case(Call("POST", "offers", env.buyer, body, _key()), count=_count("offers", "message = :m", m=message))


def offer_move(route: str, actor: str, to: str, body: Any = None, created: str | None = None) -> Callable[[Env], Case]:
    def setup(env: Env) -> Case:
        offer = env.offer()
        count = None
        if created == "contracts":
            count = _count("contracts", "offer_id = :o", o=offer)
        elif created == "offers":
            count = _count("offers", "parent_id = :o", o=offer)
        return Case(Call("POST", f"offers/{offer}/{route}", getattr(env, actor), body), ("offers", offer), "pending",
                    to, read=f"offers/{offer}", reader=env.buyer, count=count)
    return setup


def counter_body() -> dict[str, Any]:
    return {"price": {"amount": 1_200_000, "currency": "CNY"},
            "terms": {"scope": "commercial", "duration_days": 365, "delivery_mode": "api"}}


def sign_once(env: Env) -> Case:
    contract = env.contract()
    return Case(Call("POST", f"contracts/{contract}/signatures", env.buyer, {}),
                count=_count("contract_signatures", "contract_id = :c", c=contract))


def sign_second(env: Env) -> Case:
    contract = env.contract()
    sign(env.api, env.buyer, contract)
    return Case(Call("POST", f"contracts/{contract}/signatures", env.owner, {}), ("contracts", contract),
                "pending_signatures", "signed", read=f"contracts/{contract}", reader=env.buyer,
                count=_count("trades", "contract_id = :c", c=contract))


def cancel_contract(env: Env) -> Case:
    contract = env.contract()
    return Case(Call("POST", f"contracts/{contract}/cancel", env.buyer, {}), ("contracts", contract),
                "pending_signatures", "cancelled", read=f"contracts/{contract}", reader=env.buyer)


def cancel_subscription(env: Env) -> Case:
    from tests.subscriptionflow import subscribe

    contract = subscribe(env.api, vendor=env.owner, buyer=env.buyer, periods=3)["contract"]["id"]

    def cancelled(env: Env, answers: list[Answer]) -> list[str]:
        status = env.api.get(f"contracts/{contract}", env.buyer).get_json()["subscription"]["status"]
        return [] if status == "cancelled" else [f"subscription {status}, want cancelled"]
    return Case(Call("POST", f"contracts/{contract}/subscription/cancel", env.buyer), ("subscriptions", contract),
                "active", "cancelled", check=cancelled)


def file_dossier(env: Env) -> Case:
    """A GD vendor's personal data (150,000 individuals) bought from Hong Kong: a standard-contract
    dossier awaiting the exporter's filing; N identical filings give one `filed`."""
    api = env.api
    if not getattr(env, "hk_buyer", None):
        env.hk_buyer = api.enterprise(region="HK")
        ok(api.post("whitelist", env.op, json={
            "category": "transport", "from_region": "GD", "to_region": "HK", "max_classification": "general",
            "personal_info_allowed": True, "expires_at": iso_z(utcnow() + timedelta(days=90))}), 201)
        env.personal = certify(api, env.owner, contains_personal_info=True,
                               personal_info={"subjects": 150_000, "sensitive": False})
    contract = ok(api.post(f"offers/{bid(api, env.hk_buyer, env.personal)['id']}/accept", env.owner), 201)["id"]
    sign(api, env.hk_buyer, contract)
    sign(api, env.owner, contract)
    dossier = ok(api.get(f"contracts/{contract}/dossier", env.owner))
    assert dossier["status"] == "awaiting_filing", dossier
    return Case(Call("POST", f"contracts/{contract}/dossier/filing", env.owner, {"reference": "竞速 race-1"}),
                ("dossiers", dossier["id"]), "awaiting_filing", "filed", read=f"contracts/{contract}/dossier",
                reader=env.owner)


def create_payment(env: Env) -> Case:
    trade = env.trade()["trade"]
    return Case(Call("POST", f"trades/{trade}/payments", env.buyer, {"provider": "manual"}, _key()),
                count=_count("payments", "trade_id = :t", t=trade))


def create_payment_unkeyed(env: Env) -> Case:
    trade = env.trade()["trade"]
    return Case(Call("POST", f"trades/{trade}/payments", env.buyer, {"provider": "manual"}),
                count=_count("payments", "trade_id = :t AND status = 'pending'", t=trade))


def confirm_payment(env: Env) -> Case:
    ids = env.trade("paying")
    return Case(Call("POST", f"payments/{ids['payment']}/confirm", env.op), ("payments", ids["payment"]), "pending",
                "succeeded", read=f"payments/{ids['payment']}",
                check=trade_is(ids["trade"], "escrowed"))


def cancel_payment(env: Env) -> Case:
    ids = env.trade("paying")
    return Case(Call("POST", f"payments/{ids['payment']}/cancel", env.buyer, {}), ("payments", ids["payment"]),
                "pending", "canceled", read=f"payments/{ids['payment']}", reader=env.buyer,
                check=trade_is(ids["trade"], "awaiting_payment"))


def trade_is(trade: str, status: str) -> Check:
    def check(env: Env, answers: list[Answer]) -> list[str]:
        got = env.api.get(f"trades/{trade}", env.op).get_json()["status"]
        return [] if got == status else [f"trade {trade} is {got}, expected {status}"]
    return check


def trade_move(route: str, actor: str, state: str, to: str, body: Any = None) -> Callable[[Env], Case]:
    def setup(env: Env) -> Case:
        trade = env.trade(state)["trade"]
        return Case(Call("POST", f"trades/{trade}/{route}", getattr(env, actor), body), ("trades", trade), state, to,
                    read=f"trades/{trade}")
    return setup


def payout(env: Env) -> Case:
    seller, balance = env.seller_with_balance()
    return Case(Call("POST", "payouts", env.op, {"org_id": seller.org_id, "currency": "CNY", "amount": balance // 2},
                     _key()), count=_count("payouts", "org_id = :o", o=seller.org_id),
                check=payable_left(seller, balance - balance // 2))


def payable_left(seller: Actor, want: int) -> Check:
    def check(env: Env, answers: list[Answer]) -> list[str]:
        left = scalar(env.app, "SELECT balance FROM ledger_accounts WHERE owner_id = :o AND purpose = "
                               "'seller_payable'", o=seller.org_id)
        return [] if left == want else [f"payable balance {left}, want {want}"]
    return check


def create_endpoint(env: Env) -> Case:
    return Case(Call("POST", "webhook-endpoints", env.vendor2, {"url": WEBHOOK_URL, "events": ["trade.settled"]},
                     _key()), count=_count("webhook_endpoints", "org_id = :o AND deleted_at IS NULL",
                                           o=env.vendor2.org_id))


def delete_endpoint(env: Env) -> Case:
    endpoint = ok(env.api.post("webhook-endpoints", env.owner, json={"url": WEBHOOK_URL, "events": ["trade.settled"]}),
                  201)["id"]
    return Case(Call("DELETE", f"webhook-endpoints/{endpoint}", env.owner))


def live_tokens(env: Env, user_id: str) -> int:
    return scalar(env.app, "SELECT count(*) FROM refresh_tokens WHERE user_id = :u AND revoked_at IS NULL",
                  u=user_id)


def no_live_session(user: Actor, *extra: str) -> Check:
    """No refresh token of the user's login lives on, and none a racing refresh handed out works."""
    def check(env: Env, answers: list[Answer]) -> list[str]:
        found = Findings()
        handed_out = [a.json()["refresh_token"] for a in answers if a.ok and a.call.path == "auth/refresh"]
        for token in handed_out:
            r = env.api.post("auth/refresh", json={"refresh_token": token})
            found.check(r.status_code == 401, f"a refresh token handed out in the race still works ({r.status_code})")
        found.check(live_tokens(env, user.user_id) == 0,
                    f"{live_tokens(env, user.user_id)} live refresh tokens of {user.email} {extra}")
        return found.items
    return check


def refresh(env: Env) -> Case:
    """Rotation: one request wins; every other presents a used token, which revokes the whole login
    (also the winner's new token: in any serial order the replay comes after the rotation)."""
    user = env.api.member(env.owner)
    return Case(Call("POST", "auth/refresh", None, {"refresh_token": user.refresh_token}),
                check=no_live_session(user, "after racing rotations"))


def logout(env: Env) -> Case:
    user = env.api.member(env.owner)
    return Case(Call("POST", "auth/logout", user, {"refresh_token": user.refresh_token}),
                check=no_live_session(user, "after logging out"))


def create_release(env: Env) -> Case:
    label = f"race {uuid.uuid4().hex[:8]}"
    return Case(Call("POST", f"products/{env.file_product['id']}/releases", env.owner, {"label": label}, _key()),
                count=_count("releases", "label = :l", l=label))


def upload_same_file(env: Env) -> Case:
    """The same name again replaces the draft's file: every upload succeeds, one file remains."""
    rel = env.release(files={})
    data = b"race," + uuid.uuid4().hex.encode() + b"\n"

    def one_file(env: Env, answers: list[Answer]) -> list[str]:
        rows = [tuple(r) for r in query(env.app, "SELECT name, bytes, sha256 FROM release_files WHERE release_id = :r",
                                        r=rel)]
        want = [("counts.csv", len(data), hashlib.sha256(data).hexdigest())]
        return [] if rows == want else [f"release files {rows}, want {want}"]
    return Case(Call("PUT", f"releases/{rel}/files/counts.csv", env.owner, data=data), check=one_file)


def delivered_by(trade: str, rel: str) -> Check:
    """The trade waiting on the product was delivered by the release, exactly once."""
    def check(env: Env, answers: list[Answer]) -> list[str]:
        found = Findings()
        moves = changes(env.app, 0, "trades", trade)
        found.check(moves.count(("escrowed", "delivered")) == 1, f"trade {trade} moved {moves}")
        shown = env.api.get(f"trades/{trade}", env.op).get_json()
        found.check((shown["status"], shown["delivery_reference"], shown["delivery_evidence"])
                    == ("delivered", rel, "release"), f"trade after the publication: {shown}")
        return found.items
    return check


def publish_release(env: Env) -> Case:
    product = certify(env.api, env.owner, delivery_mode="file")  # its own: the one trade waiting on it is this row's
    ids = env.entitlement(product)
    rel = env.release(product=product["id"])
    return Case(Call("POST", f"releases/{rel}/publish", env.owner), ("releases", rel), "draft", "published",
                read=f"releases/{rel}", reader=env.owner, audit="release.published", audit_id=rel,
                check=delivered_by(ids["trade"], rel))


def withdraw_release(env: Env) -> Case:
    rel = env.release(publish=True)
    return Case(Call("POST", f"releases/{rel}/withdraw", env.op), ("releases", rel), "published", "withdrawn",
                read=f"releases/{rel}", reader=env.owner, audit="release.withdrawn", audit_id=rel)


def link_log(env: Env, ent: str, kind: str, status: str) -> list[tuple[str, str]]:
    """(user_id, object) of the access-log rows of an entitlement of that kind and outcome."""
    return sorted(tuple(r) for r in query(
        env.app, "SELECT user_id, object FROM accesses WHERE entitlement_id = :e AND kind = :k AND status = :s",
        e=ent, k=kind, s=status))


def issued_links_work(ent: str, files: dict[str, bytes]) -> Check:
    """Every link issued was logged once and downloads its own file; nothing else was logged."""
    def check(env: Env, answers: list[Answer]) -> list[str]:
        found = Findings()
        issued = [a for a in answers if a.ok]
        want = sorted((a.call.actor.user_id, a.call.body["file"]) for a in issued)
        found.check(link_log(env, ent, "download_link", "allowed") == want, "links logged "
                    f"{link_log(env, ent, 'download_link', 'allowed')}, issued {want}")
        for a in issued:
            r = fetch(env.api, a.json()["url"])
            found.check(r.status_code == 200 and r.data == files[a.call.body["file"]],
                        f"{a.call.body['file']}: {r.status_code} {r.data[:80]!r}")
        found.check(len(link_log(env, ent, "download", "allowed")) == len(issued), "downloads logged "
                    f"{len(link_log(env, ent, 'download', 'allowed'))}, want {len(issued)}")
        return found.items
    return check


def download_links(env: Env) -> Case:
    ids = env.entitlement()
    rel = env.release(publish=True)
    return Case(Call("POST", f"entitlements/{ids['entitlement']}/downloads", env.buyer,
                     {"release_id": rel, "file": "traffic.csv"}),
                check=issued_links_work(ids["entitlement"], {"traffic.csv": CSV}))


def set_upstream(env: Env) -> Case:
    """The first upstream of a product, set N times at once: every request succeeds, one row remains,
    holding the header the requests sent."""
    product = certify(env.api, env.owner)["id"]
    body = {"base_url": UPSTREAM_URL, "timeout_ms": 2000, "auth_header": {"name": "X-Api-Key", "value": "race"}}

    def one_upstream(env: Env, answers: list[Answer]) -> list[str]:
        rows = [tuple(r) for r in query(env.app, "SELECT base_url, auth_header_name, timeout_ms FROM api_upstreams "
                                                 "WHERE product_id = :p", p=product)]
        return [] if rows == [(UPSTREAM_URL, "X-Api-Key", 2000)] else [f"upstreams {rows}"]
    return Case(Call("PUT", f"products/{product}/api-upstream", env.owner, body),
                count=_count("api_upstreams", "product_id = :p", p=product), check=one_upstream)


def set_sandbox_policy(env: Env) -> Case:
    """The first sandbox policy of a privacy-computing product, set N times at once: every request
    succeeds and one row remains, holding what the requests sent."""
    product = certify(env.api, env.owner, delivery_mode="privacy_computing")["id"]
    body = {"min_group_size": 12, "blocked_columns": ["phone"]}

    def one_policy(env: Env, answers: list[Answer]) -> list[str]:
        rows = [tuple(r) for r in query(env.app, "SELECT min_group_size FROM sandbox_policies WHERE product_id = :p",
                                        p=product)]
        return [] if rows == [(12,)] else [f"policies {rows}"]
    return Case(Call("PUT", f"products/{product}/sandbox-policy", env.owner, body),
                count=_count("sandbox_policies", "product_id = :p", p=product), check=one_policy)


def create_api_key(env: Env) -> Case:
    ent, _ = env.api_entitlement()
    return Case(Call("POST", f"entitlements/{ent}/api-keys", env.buyer, {"label": "race"}, _key()),
                count=_count("api_keys", "entitlement_id = :e", e=ent))


def live_keys(ent: str, want: int) -> Check:
    def check(env: Env, answers: list[Answer]) -> list[str]:
        live = scalar(env.app, "SELECT count(*) FROM api_keys WHERE entitlement_id = :e AND revoked_at IS NULL", e=ent)
        return [] if live == want else [f"{live} live keys, want {want}"]
    return check


def create_fifth_api_key(env: Env) -> Case:
    """Four live keys and no Idempotency-Key: the entitlement's row lock serializes the count, so one
    request makes the fifth and every other finds five (409), never a sixth."""
    ent, _ = env.api_entitlement(live_keys=4)
    return Case(Call("POST", f"entitlements/{ent}/api-keys", env.buyer, {"label": "race"}),
                count=_count("api_keys", "entitlement_id = :e", e=ent), check=live_keys(ent, 5))


def revoke_api_key(env: Env) -> Case:
    """Revoking twice is no error (200 both times): every request succeeds, the revocation is audited
    once and every answer shows the one revocation time."""
    ent, (key,) = env.api_entitlement(live_keys=1)

    def one_revocation(env: Env, answers: list[Answer]) -> list[str]:
        found = Findings()
        times = {a.json()["revoked_at"] for a in answers if a.ok}
        found.check(len(times) == 1 and None not in times, f"revoked_at in the answers: {times}")
        found.items.extend(live_keys(ent, 0)(env, answers))
        return found.items
    return Case(Call("DELETE", f"entitlements/{ent}/api-keys/{key}", env.buyer), audit="api_key.revoked",
                audit_id=key, check=one_revocation)


GONE = frozenset({404, 409})  # a second delete finds nothing to delete (serially: 404)
ROWS: list[Row] = [
    # -- identity -------------------------------------------------------------------------------------
    Row("org verify", "POST", f"{P}/organizations/{{org_id}}/verify",
        org_status("verify", Env.pending_org, "pending", "verified", "organization.verified")),
    Row("org reject", "POST", f"{P}/organizations/{{org_id}}/reject",
        org_status("reject", Env.pending_org, "pending", "rejected", "organization.rejected")),
    Row("org suspend", "POST", f"{P}/organizations/{{org_id}}/suspend",
        org_status("suspend", Env.verified_org, "verified", "suspended", "organization.suspended")),
    Row("org reinstate", "POST", f"{P}/organizations/{{org_id}}/reinstate",
        org_status("reinstate", Env.suspended_org, "suspended", "verified", "organization.reinstated")),
    Row("org PATCH status", "PATCH", f"{P}/organizations/{{org_id}}", patch_org_status, kind="same"),
    Row("org register", "POST", f"{P}/organizations", registration, kind="create"),
    Row("member add", "POST", f"{P}/organizations/{{org_id}}/members", member, kind="create"),
    Row("org register (no key)", "POST", f"{P}/organizations", unkeyed(registration)),
    Row("member add (no key)", "POST", f"{P}/organizations/{{org_id}}/members", unkeyed(member)),
    Row("key add", "POST", f"{P}/organizations/{{org_id}}/keys", add_key, kind="create"),
    Row("key add (no key)", "POST", f"{P}/organizations/{{org_id}}/keys", unkeyed(add_key)),
    Row("auth refresh", "POST", f"{P}/auth/refresh", refresh, losers=frozenset({401})),
    Row("auth logout", "POST", f"{P}/auth/logout", logout, kind="same"),
    Row("key revoke", "DELETE", f"{P}/organizations/{{org_id}}/keys/{{key_id}}", revoke_key),
    # -- listings -------------------------------------------------------------------------------------
    Row("product create", "POST", f"{P}/products", create_product_case, kind="create"),
    Row("product PATCH listed", "PATCH", f"{P}/products/{{product_id}}", patch_listed, kind="same"),
    Row("product PATCH draft", "PATCH", f"{P}/products/{{product_id}}", patch_draft, kind="same"),
    Row("product delist", "DELETE", f"{P}/products/{{product_id}}", delist),
    Row("fair create", "POST", f"{P}/fairs", create_fair, kind="create"),
    Row("stall create", "POST", f"{P}/fairs/{{fair_id}}/stalls", create_stall, kind="create"),
    Row("stall create (no key)", "POST", f"{P}/fairs/{{fair_id}}/stalls", unkeyed(create_stall)),
    Row("stall PATCH", "PATCH", f"{P}/fairs/{{fair_id}}/stalls/{{stall_id}}", patch_stall, kind="same"),
    # -- certification --------------------------------------------------------------------------------
    Row("certification submit", "POST", f"{P}/certifications", submit_case),
    Row("certification submit keyed", "POST", f"{P}/certifications", submit_keyed, kind="create"),
    Row("certification assign", "POST", f"{P}/certifications/{{certification_id}}/assignments", assign, kind="same"),
    Row("certification review", "POST", f"{P}/certifications/{{certification_id}}/reviews", review_case),
    Row("certification resubmit", "POST", f"{P}/certifications/{{certification_id}}/resubmit", resubmit),
    Row("certification withdraw", "POST", f"{P}/certifications/{{certification_id}}/withdraw", withdraw),
    Row("objection create", "POST", f"{P}/certifications/{{certification_id}}/objections", object_to, kind="create"),
    Row("objection resolution", "POST", f"{P}/objections/{{objection_id}}/resolution", resolve_objection),
    Row("certificate suspend", "POST", f"{P}/certificates/{{number}}/suspend",
        certificate_move("suspend", False, "valid", "suspended")),
    Row("certificate reinstate", "POST", f"{P}/certificates/{{number}}/reinstate",
        certificate_move("reinstate", True, "suspended", "valid")),
    Row("certificate revoke", "POST", f"{P}/certificates/{{number}}/revoke",
        certificate_move("revoke", False, "valid", "revoked")),
    Row("whitelist create", "POST", f"{P}/whitelist", create_whitelist, kind="create"),
    Row("whitelist delete", "DELETE", f"{P}/whitelist/{{entry_id}}", delete_whitelist, losers=GONE),
    # -- trading --------------------------------------------------------------------------------------
    Row("procurement create", "POST", f"{P}/procurements", create_procurement, kind="create"),
    Row("procurement cancel", "POST", f"{P}/procurements/{{procurement_id}}/cancel", cancel_procurement),
    Row("offer create", "POST", f"{P}/offers", make_offer, kind="create"),
    Row("offer counter", "POST", f"{P}/offers/{{offer_id}}/counter",
        offer_move("counter", "owner", "countered", counter_body(), created="offers")),
    Row("offer accept", "POST", f"{P}/offers/{{offer_id}}/accept",
        offer_move("accept", "owner", "accepted", created="contracts")),
    Row("offer reject", "POST", f"{P}/offers/{{offer_id}}/reject", offer_move("reject", "owner", "rejected", {})),
    Row("offer withdraw", "POST", f"{P}/offers/{{offer_id}}/withdraw", offer_move("withdraw", "buyer", "withdrawn")),
    Row("contract sign (one party)", "POST", f"{P}/contracts/{{contract_id}}/signatures", sign_once),
    Row("contract sign (second party)", "POST", f"{P}/contracts/{{contract_id}}/signatures", sign_second),
    Row("contract cancel", "POST", f"{P}/contracts/{{contract_id}}/cancel", cancel_contract),
    Row("payment create keyed", "POST", f"{P}/trades/{{trade_id}}/payments", create_payment, kind="create"),
    Row("payment create", "POST", f"{P}/trades/{{trade_id}}/payments", create_payment_unkeyed, rounds=10),
    Row("payment cancel", "POST", f"{P}/payments/{{payment_id}}/cancel", cancel_payment),
    Row("payment confirm", "POST", f"{P}/payments/{{payment_id}}/confirm", confirm_payment),
    Row("trade cancel", "POST", f"{P}/trades/{{trade_id}}/cancel",
        trade_move("cancel", "op", "awaiting_payment", "cancelled", REASON)),
    Row("subscription cancel", "POST", f"{P}/contracts/{{contract_id}}/subscription/cancel", cancel_subscription),
    Row("dossier filing", "POST", f"{P}/contracts/{{contract_id}}/dossier/filing", file_dossier),
    Row("trade delivery", "POST", f"{P}/trades/{{trade_id}}/delivery",
        trade_move("delivery", "owner", "escrowed", "delivered", {"reference": "s3://bucket/r.csv", "sha256": SHA})),
    Row("trade acceptance", "POST", f"{P}/trades/{{trade_id}}/acceptance",
        trade_move("acceptance", "buyer", "delivered", "settled")),
    Row("trade dispute", "POST", f"{P}/trades/{{trade_id}}/disputes",
        trade_move("disputes", "buyer", "delivered", "disputed", {"reason": "竞速 not as described"})),
    Row("trade resolution", "POST", f"{P}/trades/{{trade_id}}/resolution",
        trade_move("resolution", "op", "disputed", "settled", {"refund_amount": 0})),
    Row("payout create", "POST", f"{P}/payouts", payout, kind="create"),
    # -- delivery -------------------------------------------------------------------------------------
    Row("release create", "POST", f"{P}/products/{{product_id}}/releases", create_release, kind="create"),
    Row("release file upload (same name)", "PUT", f"{P}/releases/{{release_id}}/files/{{name}}", upload_same_file,
        kind="same"),
    Row("release publish", "POST", f"{P}/releases/{{release_id}}/publish", publish_release),
    Row("release withdraw (operator)", "POST", f"{P}/releases/{{release_id}}/withdraw", withdraw_release),
    Row("download link", "POST", f"{P}/entitlements/{{entitlement_id}}/downloads", download_links, kind="same"),
    Row("api upstream set (first)", "PUT", f"{P}/products/{{product_id}}/api-upstream", set_upstream, kind="same"),
    Row("sandbox policy set (first)", "PUT", f"{P}/products/{{product_id}}/sandbox-policy", set_sandbox_policy,
        kind="same"),
    Row("api key create", "POST", f"{P}/entitlements/{{entitlement_id}}/api-keys", create_api_key, kind="create"),
    Row("api key create (no key, 4 live)", "POST", f"{P}/entitlements/{{entitlement_id}}/api-keys",
        create_fifth_api_key),
    Row("api key revoke", "DELETE", f"{P}/entitlements/{{entitlement_id}}/api-keys/{{key_id}}", revoke_api_key,
        kind="same"),
    # -- events ---------------------------------------------------------------------------------------
    Row("webhook endpoint create", "POST", f"{P}/webhook-endpoints", create_endpoint, kind="create"),
    Row("webhook endpoint delete", "DELETE", f"{P}/webhook-endpoints/{{endpoint_id}}", delete_endpoint, losers=GONE),
]

EXEMPT: dict[tuple[str, str], str] = {
    ("POST", f"{P}/auth/token"): "login creates a new session each time by design (no existing object changes)",
    ("POST", f"{P}/entitlements/{{entitlement_id}}/queries"): (
        "each query is a new computation with its own row, by design (like a login); what it changes besides "
        "is a privacy-budget debit and a call reserved, conditional UPDATEs raced 100 at once in "
        "tests/security/test_sandbox_attacks.py, and the first delivery, under the trade's row lock"),
    ("POST", f"{P}/webhooks/stripe"): "Stripe-signed, deduplicated by the provider's event id; raced against "
                                      "localstripe in tests/api/test_settlement.py",
    **{(method, rule): "the API gateway's data plane: the vendor's own API proxied (its writes are the vendor's); "
                       "what the exchange changes per call is the metering, one conditional UPDATE per call "
                       "(delivery.gateway.reserve), not an object's state"
       for method in ("POST", "PUT", "PATCH", "DELETE")
       for rule in ("/gateway/v1/{product_id}/", "/gateway/v1/{product_id}/{path}")},
}


# -- pairs -----------------------------------------------------------------------------------------
@dataclass
class PairCase:
    calls: list[Call]  # PER_SIDE of each, by action
    obj: tuple[str, str] | None
    initial: str | None
    moves: dict[str, dict[str, str]] = field(default_factory=dict)  # action -> {from: to} it may make
    read: str | None = None
    reader: Actor | None = None
    check: Check | None = None


@dataclass(frozen=True)
class Pair:
    name: str
    setup: Callable[[Env], PairCase]
    losers: frozenset[int] = frozenset({409})
    xfail: str | None = None


def sides(*calls: Call) -> list[Call]:
    return [c for c in calls for _ in range(PER_SIDE)]


def certificate_pair(suspended: bool, a: str, b: str) -> Callable[[Env], PairCase]:
    targets = {"revoke": {"valid": "revoked", "suspended": "revoked"}, "reinstate": {"suspended": "valid"},
               "suspend": {"valid": "suspended"}}

    def setup(env: Env) -> PairCase:
        number = env.certificate(suspended)["certificate_number"]
        return PairCase(sides(*(Call("POST", f"certificates/{number}/{x}", env.op, REASON, action=x) for x in (a, b))),
                        ("certificates", number), "suspended" if suspended else "valid",
                        {x: targets[x] for x in (a, b)}, read=f"certificates/{number}")
    return setup


ORG_MOVES = {"verify": {"pending": "verified"}, "reject": {"pending": "rejected"},
             "suspend": {"verified": "suspended"}, "reinstate": {"suspended": "verified"}}


def org_pair(initial: Callable[[Env], str], frm: str, a: str, b: str) -> Callable[[Env], PairCase]:
    def setup(env: Env) -> PairCase:
        org = initial(env)
        return PairCase(sides(*(Call("POST", f"organizations/{org}/{x}", env.op, REASON, action=x) for x in (a, b))),
                        ("organizations", org), frm, {x: ORG_MOVES[x] for x in (a, b)}, read=f"organizations/{org}")
    return setup


def offer_triple(env: Env) -> PairCase:
    offer = env.offer()
    calls = sides(Call("POST", f"offers/{offer}/accept", env.owner, action="accept"),
                  Call("POST", f"offers/{offer}/reject", env.owner, {}, action="reject"),
                  Call("POST", f"offers/{offer}/withdraw", env.buyer, action="withdraw"))

    def contract_iff_accepted(env: Env, answers: list[Answer]) -> list[str]:
        n = scalar(env.app, "SELECT count(*) FROM contracts WHERE offer_id = :o", o=offer)
        accepted = sum(1 for a in answers if a.ok and a.call.action == "accept")
        return [] if n == accepted else [f"{n} contracts for {accepted} acceptances"]
    return PairCase(calls, ("offers", offer), "pending", {"accept": {"pending": "accepted"},
                                                          "reject": {"pending": "rejected"},
                                                          "withdraw": {"pending": "withdrawn"}},
                    read=f"offers/{offer}", reader=env.buyer, check=contract_iff_accepted)


def sign_cancel(env: Env) -> PairCase:
    contract = env.contract()
    calls = sides(Call("POST", f"contracts/{contract}/signatures", env.buyer, {}, action="sign buyer"),
                  Call("POST", f"contracts/{contract}/signatures", env.owner, {}, action="sign seller"),
                  Call("POST", f"contracts/{contract}/cancel", env.buyer, {}, action="cancel"))

    def consistent(env: Env, answers: list[Answer]) -> list[str]:
        found = Findings()
        ok_by = {x: sum(1 for a in answers if a.ok and a.call.action == x) for x in ("sign buyer", "sign seller",
                                                                                      "cancel")}
        status = env.api.get(f"contracts/{contract}", env.buyer).get_json()["status"]
        trades = scalar(env.app, "SELECT count(*) FROM trades WHERE contract_id = :c", c=contract)
        signatures = scalar(env.app, "SELECT count(*) FROM contract_signatures WHERE contract_id = :c", c=contract)
        found.check(ok_by["sign buyer"] <= 1 and ok_by["sign seller"] <= 1, f"a party signed twice: {ok_by}")
        found.check(signatures == ok_by["sign buyer"] + ok_by["sign seller"], f"{signatures} signatures for {ok_by}")
        if status == "signed":
            found.check(ok_by == {"sign buyer": 1, "sign seller": 1, "cancel": 0} and trades == 1,
                        f"signed with {ok_by}, {trades} trades")
        else:
            found.check(status == "cancelled" and ok_by["cancel"] == 1 and trades == 0
                        and ok_by["sign buyer"] + ok_by["sign seller"] <= 1, f"{status} with {ok_by}, {trades} trades")
        return found.items
    return PairCase(calls, None, None, check=consistent)


def accept_or_dispute(env: Env) -> PairCase:
    trade = env.trade("delivered")["trade"]
    calls = sides(Call("POST", f"trades/{trade}/acceptance", env.buyer, action="accept"),
                  Call("POST", f"trades/{trade}/disputes", env.buyer, {"reason": "竞速 race"}, action="dispute"))
    return PairCase(calls, ("trades", trade), "delivered",
                    {"accept": {"delivered": "settled"}, "dispute": {"delivered": "disputed"}}, read=f"trades/{trade}")


def resolution_pair(env: Env) -> PairCase:
    ids = env.trade("disputed")
    amount = env.api.get(f"trades/{ids['trade']}", env.op).get_json()["amount"]
    calls = sides(Call("POST", f"trades/{ids['trade']}/resolution", env.op, {"refund_amount": 0}, action="settle"),
                  Call("POST", f"trades/{ids['trade']}/resolution", env.op, {"refund_amount": amount},
                       action="refund"))
    return PairCase(calls, ("trades", ids["trade"]), "disputed", {"settle": {"disputed": "settled"},
                                                                  "refund": {"disputed": "refunded"}},
                    read=f"trades/{ids['trade']}")


def confirm_pair(env: Env) -> PairCase:
    ids = env.trade("paying")
    calls = [Call("POST", f"payments/{ids['payment']}/confirm", actor, action="confirm")
             for actor in (env.op, env.op2) for _ in range(PER_SIDE)]
    return PairCase(calls, ("payments", ids["payment"]), "pending", {"confirm": {"pending": "succeeded"}},
                    read=f"payments/{ids['payment']}", check=trade_is(ids["trade"], "escrowed"))


def cancel_vs_confirm(env: Env) -> PairCase:
    """The buyer cancels a pending manual payment while operators confirm the transfer arrived: one
    of them wins; a confirmed payment escrows the trade, a cancelled one leaves it awaiting payment."""
    ids = env.trade("paying")
    calls = sides(Call("POST", f"payments/{ids['payment']}/cancel", env.buyer, {}, action="cancel"),
                  Call("POST", f"payments/{ids['payment']}/confirm", env.op, action="confirm"))

    def trade_follows(env: Env, answers: list[Answer]) -> list[str]:
        payment = env.api.get(f"payments/{ids['payment']}", env.buyer).get_json()["status"]
        expected = {"succeeded": "escrowed", "canceled": "awaiting_payment"}.get(payment)
        return trade_is(ids["trade"], expected or "?")(env, answers)
    return PairCase(calls, ("payments", ids["payment"]), "pending",
                    {"cancel": {"pending": "canceled"}, "confirm": {"pending": "succeeded"}},
                    read=f"payments/{ids['payment']}", reader=env.buyer, check=trade_follows)


def payout_pair(env: Env) -> PairCase:
    seller, balance = env.seller_with_balance()
    share = balance * 3 // 5  # two of them exceed the balance
    calls = sides(*(Call("POST", "payouts", actor, {"org_id": seller.org_id, "currency": "CNY", "amount": share},
                         action="payout") for actor in (env.op, env.op2)))

    def within_balance(env: Env, answers: list[Answer]) -> list[str]:
        paid = query(env.app, "SELECT amount FROM payouts WHERE org_id = :o", o=seller.org_id)
        left = scalar(env.app, "SELECT balance FROM ledger_accounts WHERE owner_id = :o AND purpose = "
                               "'seller_payable'", o=seller.org_id)
        found = Findings()
        found.check(len(paid) == 1 and sum(a.ok for a in answers) == 1,
                    f"{len(paid)} payouts of {share} from a balance of {balance}; {sum(a.ok for a in answers)} 201s")
        found.check(left == balance - sum(r[0] for r in paid) and left >= 0, f"payable balance {left}")
        return found.items
    return PairCase(calls, None, None, check=within_balance)


def cancel_vs_signature(env: Env) -> PairCase:
    """The buyer cancels its procurement while the seller adds the signature that closes a contract
    made from it (the signature marks the procurement contracted)."""
    proc = ok(env.api.post("procurements", env.buyer, json=procurement_body()), 201)["id"]
    offer = ok(env.api.post("offers", env.owner, json={
        "product_id": env.product["id"], "procurement_id": proc, "to_org_id": env.buyer.org_id,
        "price": {"amount": 1_000_000, "currency": "CNY"},
        "terms": {"scope": "commercial", "duration_days": 365, "delivery_mode": "api"}}), 201)["id"]
    contract = ok(env.api.post(f"offers/{offer}/accept", env.buyer), 201)["id"]
    sign(env.api, env.buyer, contract)
    calls = sides(Call("POST", f"procurements/{proc}/cancel", env.buyer, {}, action="cancel"),
                  Call("POST", f"contracts/{contract}/signatures", env.owner, {}, action="sign"))

    def serial(env: Env, answers: list[Answer]) -> list[str]:
        status = env.api.get(f"procurements/{proc}", env.buyer).get_json()["status"]
        won = {x: sum(1 for a in answers if a.ok and a.call.action == x) for x in ("cancel", "sign")}
        trades = scalar(env.app, "SELECT count(*) FROM trades WHERE contract_id = :c", c=contract)
        moves = changes(env.app, 0, "procurements", proc)
        found = Findings()
        found.check(won["sign"] == 1 and trades == 1, f"{won['sign']} closing signatures, {trades} trades")
        if status == "contracted":  # signed first: the cancellation comes too late
            found.check(won["cancel"] == 0 and moves == [("open", "contracted")], f"contracted, {won}, {moves}")
        else:  # cancelled first: the signature still closes the contract, the procurement stays cancelled
            found.check(status == "cancelled" and won["cancel"] == 1 and moves == [("open", "cancelled")],
                        f"{status}, {won}, {moves}")
        return found.items
    return PairCase(calls, None, None, check=serial)


def withdraw_vs_review(env: Env) -> PairCase:
    cert = env.submitted()
    ok(env.api.post(f"certifications/{cert}/assignments", env.op,
                    json={"stage": "ownership", "assessor_org_id": env.assessor.org_id}), 201)
    calls = sides(Call("POST", f"certifications/{cert}/withdraw", env.owner, action="withdraw"),
                  Call("POST", f"certifications/{cert}/reviews", env.op, {"stage": "quality", "decision": "reject"},
                       action="reject"))
    return PairCase(calls, ("certifications", cert), "in_review",
                    {"withdraw": {"in_review": "withdrawn"}, "reject": {"in_review": "rejected"}},
                    read=f"certifications/{cert}")


def delist_vs_submit(env: Env) -> PairCase:
    product = env.draft()
    calls = sides(Call("DELETE", f"products/{product}", env.owner, action="delist"),
                  Call("POST", "certifications", env.owner, {"product_id": product, "documents": DOCS},
                       action="submit"))
    return PairCase(calls, ("products", product), "draft", {"delist": {"draft": "delisted"},
                                                            "submit": {"draft": "in_review"}},
                    read=f"products/{product}", reader=env.owner)


def revoke_vs_delist(env: Env) -> PairCase:
    product = env.certificate()
    calls = sides(Call("POST", f"certificates/{product['certificate_number']}/revoke", env.op, REASON,
                       action="revoke"),
                  Call("DELETE", f"products/{product['id']}", env.owner, action="delist"))

    def both_or_order(env: Env, answers: list[Answer]) -> list[str]:
        cert = env.api.get(f"certificates/{product['certificate_number']}").get_json()["status"]
        revoked = sum(1 for a in answers if a.ok and a.call.action == "revoke")
        if (cert == "revoked") == (revoked == 1) and revoked <= 1:
            return []
        return [f"certificate {cert}, {revoked} revokes"]
    return PairCase(calls, ("products", product["id"]), "listed",
                    {"delist": {"listed": "delisted", "suspended": "delisted"}, "revoke": {"listed": "suspended"}},
                    read=f"products/{product['id']}", reader=env.owner, check=both_or_order)


def suspend_vs_refresh(env: Env) -> PairCase:
    """Suspension ends every session of the organization's users; a rotation racing it must not hand
    out a refresh token that outlives it."""
    user = env.api.vendor()
    calls = sides(Call("POST", f"organizations/{user.org_id}/suspend", env.op, REASON, action="suspend"),
                  Call("POST", "auth/refresh", None, {"refresh_token": user.refresh_token}, action="refresh"))
    return PairCase(calls, ("organizations", user.org_id), "verified",
                    {"suspend": {"verified": "suspended"}, "refresh": {}}, read=f"organizations/{user.org_id}",
                    check=no_live_session(user, "after the suspension"))


def logout_vs_refresh(env: Env) -> PairCase:
    user = env.api.member(env.owner)
    calls = sides(Call("POST", "auth/logout", user, {"refresh_token": user.refresh_token}, action="logout"),
                  Call("POST", "auth/refresh", None, {"refresh_token": user.refresh_token}, action="refresh"))
    return PairCase(calls, None, None, check=no_live_session(user, "after the logout"))


def all_sessions_vs_refresh(env: Env) -> PairCase:
    user = env.api.member(env.owner)
    calls = sides(Call("POST", "auth/logout", user, {"all_sessions": True}, action="logout"),
                  Call("POST", "auth/refresh", None, {"refresh_token": user.refresh_token}, action="refresh"))
    return PairCase(calls, None, None, check=no_live_session(user, "after logging out of every session"))


def publish_pair(env: Env) -> PairCase:
    """The owner and a member of its organization publish one release: one manifest, one receipt,
    the waiting trade delivered once."""
    product = certify(env.api, env.owner, delivery_mode="file")
    ids = env.entitlement(product)
    rel = env.release(product=product["id"])
    member = env.api.member(env.owner)
    calls = sides(Call("POST", f"releases/{rel}/publish", env.owner, action="publish"),
                  Call("POST", f"releases/{rel}/publish", member, action="publish (member)"))

    def one_receipt(env: Env, answers: list[Answer]) -> list[str]:
        found = Findings()
        found.items.extend(delivered_by(ids["trade"], rel)(env, answers))
        won = [a.json() for a in answers if a.ok]
        shown = env.api.get(f"releases/{rel}", env.owner).get_json()
        found.check(len(won) == 1 and won[0]["receipt"] == shown["receipt"]
                    and won[0]["manifest_sha256"] == shown["manifest_sha256"],
                    f"{len(won)} publications; the release shows {shown['receipt']}")
        return found.items
    moves = {"draft": "published"}
    return PairCase(calls, ("releases", rel), "draft", {"publish": moves, "publish (member)": moves},
                    read=f"releases/{rel}", reader=env.owner, check=one_receipt)


def withdraw_vs_link(env: Env) -> PairCase:
    """The vendor withdraws a release while the buyer asks for links to it: a link is issued only
    before the withdrawal (serially), refused after it (logged), and none issued works afterwards."""
    ids = env.entitlement()
    ent, rel = ids["entitlement"], env.release(publish=True)
    calls = sides(Call("POST", f"releases/{rel}/withdraw", env.owner, action="withdraw"),
                  Call("POST", f"entitlements/{ent}/downloads", env.buyer, {"release_id": rel, "file": "traffic.csv"},
                       action="link"))

    def dead_after(env: Env, answers: list[Answer]) -> list[str]:
        found = Findings()
        links = [a for a in answers if a.call.action == "link"]
        issued, refused = [a for a in links if a.ok], [a for a in links if not a.ok]
        for a in refused:
            found.check(a.status == 403 and b"release_withdrawn" in a.raw, f"link refused otherwise: {a.show()}")
        logged = (link_log(env, ent, "download_link", "allowed"), link_log(env, ent, "download_link", "refused"))
        found.check((len(logged[0]), len(logged[1])) == (len(issued), len(refused)),
                    f"{len(issued)} issued, {len(refused)} refused, but the log says {logged}")
        for a in issued:
            r = fetch(env.api, a.json()["url"])
            found.check(r.status_code == 403 and b"release_withdrawn" in r.data,
                        f"a link issued before the withdrawal still answers {r.status_code}")
        return found.items
    return PairCase(calls, ("releases", rel), "published", {"withdraw": {"published": "withdrawn"}, "link": {}},
                    read=f"releases/{rel}", reader=env.owner, check=dead_after)


def upload_vs_publish(env: Env) -> PairCase:
    """A file uploaded while the release is published is in its signed manifest (uploaded first) or
    refused (409): never stored into a published release behind its manifest."""
    rel = env.release()
    late = b"date,district,vehicles\n2026-11-30,Nansha,40211\n"
    calls = sides(Call("PUT", f"releases/{rel}/files/late.csv", env.owner, data=late, action="upload"),
                  Call("POST", f"releases/{rel}/publish", env.owner, action="publish"))

    def manifest_is_the_files(env: Env, answers: list[Answer]) -> list[str]:
        found = Findings()
        shown = env.api.get(f"releases/{rel}", env.owner).get_json()
        uploaded = any(a.ok for a in answers if a.call.action == "upload")
        files = [(f["name"], f["bytes"], f["sha256"]) for f in shown["files"]]
        want = [("traffic.csv", len(CSV), hashlib.sha256(CSV).hexdigest())]
        if uploaded:
            want.insert(0, ("late.csv", len(late), hashlib.sha256(late).hexdigest()))
        found.check(files == want, f"files {files}, want {want} (an upload succeeded: {uploaded})")
        manifest = {"release_id": rel, "product_id": shown["product_id"],
                    "files": [{"name": n, "bytes": b, "sha256": h} for n, b, h in files]}
        found.check(shown["manifest_sha256"] == sha256_hex(manifest), "the manifest is not of the files shown")
        return found.items
    return PairCase(calls, ("releases", rel), "draft", {"publish": {"draft": "published"}, "upload": {}},
                    read=f"releases/{rel}", reader=env.owner, check=manifest_is_the_files)


def two_links(env: Env) -> PairCase:
    """The buyer's admin and a member ask for links to two files of one release at once: every link is
    issued, logged once under its user, and downloads its own file."""
    ids = env.entitlement()
    files = {"traffic.csv": CSV, "districts.csv": b"district,area_km2\nTianhe,137.4\nHaizhu,90.4\n"}
    rel = env.release(files=files, publish=True)
    member = env.api.member(env.buyer)
    ent = ids["entitlement"]
    calls = sides(Call("POST", f"entitlements/{ent}/downloads", env.buyer, {"release_id": rel, "file": "traffic.csv"},
                       action="traffic"),
                  Call("POST", f"entitlements/{ent}/downloads", member, {"release_id": rel, "file": "districts.csv"},
                       action="districts"))
    works = issued_links_work(ent, files)

    def all_issued(env: Env, answers: list[Answer]) -> list[str]:
        refused = [a.show() for a in answers if not a.ok]
        return works(env, answers) + ([f"links refused: {refused}"] if refused else [])
    return PairCase(calls, None, None, check=all_issued)


PAIRS: list[Pair] = [
    Pair("certificate revoke/reinstate (suspended)", certificate_pair(True, "revoke", "reinstate")),
    Pair("certificate suspend/revoke (valid)", certificate_pair(False, "suspend", "revoke")),
    Pair("org verify/reject (pending)", org_pair(Env.pending_org, "pending", "verify", "reject")),
    Pair("org reinstate/suspend (suspended)", org_pair(Env.suspended_org, "suspended", "reinstate", "suspend")),
    Pair("org suspend/reinstate (verified)", org_pair(Env.verified_org, "verified", "suspend", "reinstate")),
    Pair("offer accept/reject/withdraw", offer_triple),
    Pair("contract sign (both parties)/cancel", sign_cancel),
    Pair("trade accept/dispute (delivered)", accept_or_dispute),
    Pair("dispute resolution settle/refund", resolution_pair),
    Pair("payment confirm/confirm (two operators)", confirm_pair),
    Pair("payment cancel/confirm (pending manual payment)", cancel_vs_confirm),
    Pair("payout/payout over the balance", payout_pair, losers=frozenset({409, 422})),
    Pair("procurement cancel/closing signature", cancel_vs_signature),
    Pair("certification withdraw/review", withdraw_vs_review),
    Pair("product delist/certification submit", delist_vs_submit),
    Pair("certificate revoke/product delist", revoke_vs_delist),
    Pair("org suspend/member token refresh", suspend_vs_refresh, losers=frozenset({401, 409})),
    Pair("logout/token refresh", logout_vs_refresh, losers=frozenset({401})),
    Pair("logout of every session/token refresh", all_sessions_vs_refresh, losers=frozenset({401})),
    Pair("release publish/publish (owner and member)", publish_pair),
    Pair("release withdraw/download link", withdraw_vs_link, losers=frozenset({403, 409})),
    Pair("release file upload/publish", upload_vs_publish),
    Pair("download links (two users, two files)", two_links, losers=frozenset()),
]
