"""A populated exchange built through the real API: every kind of principal and at least one object
behind every id parameter, in the states the authorization matrix, the BOLA sweep and schemathesis
need. Private values carry unique sentinels (`World.secrets`) so a test can prove they never reach a
principal that may not see them.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import update

from exchange.db import db, utcnow
from exchange.fields import iso_z
from tests.certflow import certify, create_product, review, submit
from tests.factories import Actor, ApiHelper
from tests.tradeflow import bid, live_fair, sign
from trading.models import Payment

# The principals of the matrix, in the order a row's calls are made (operators last: they may do most).
PRINCIPALS = ("anonymous", "suspended", "vendor2", "enterprise2", "assessor2", "assessor", "buyer", "owner",
              "operator")
SHA = "d" * 64
RELEASE_FILE = b"date,district,vehicles\n2026-11-01,Tianhe,120433\n"
SANDBOX_FILE = b"city,phone,amount\n" + b"".join(f"广州,1380000{i:04d},{i * 7 % 90}\n".encode() for i in range(12))
# OpenAPI path parameter -> the world object (World.ids key) it names by default
PATH_OBJECTS = {
    "org_id": "owner_org", "key_id": "key", "product_id": "product", "fair_id": "fair", "stall_id": "stall",
    "certification_id": "cert_review", "objection_id": "objection", "number": "certificate",
    "procurement_id": "procurement", "offer_id": "offer", "contract_id": "contract", "trade_id": "trade_read",
    "payment_id": "payment", "entry_id": "whitelist", "endpoint_id": "webhook",
    "entitlement_id": "entitlement", "release_id": "release", "name": "file_name", "token": "token",
    "kind": "dossier_kind",
}
# A public address literal: webhook targets are resolved, and nothing else resolves offline.
WEBHOOK_URL = "https://93.184.216.34/hooks/datafair"
# The same for the API gateway's upstream of `api_product` (never called: the data plane has its own tests).
UPSTREAM_URL = "https://93.184.216.34/v2"


def new_public_key() -> str:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.get_json())
    return r.get_json()


@dataclass
class World:
    api: ApiHelper
    actors: dict[str, Actor | None]
    ids: dict[str, str]
    # sentinel text -> the principals allowed to see it
    secrets: dict[str, frozenset[str]] = field(default_factory=dict)

    def actor(self, name: str) -> Actor | None:
        return self.actors[name]

    def fill(self, template: str) -> str:
        return template.format(**self.ids)

    def path(self, openapi_path: str, **objects: str) -> str:
        """An OpenAPI path with each parameter replaced by a world object's id (PATH_OBJECTS, or `objects`)."""
        return re.sub(r"{(\w+)}", lambda m: self.ids[objects.get(m.group(1), PATH_OBJECTS[m.group(1)])],
                      openapi_path)


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) of every operation of an OpenAPI document."""
    return [(method.upper(), path, op) for path, ops in spec["paths"].items() for method, op in ops.items()
            if method in ("get", "post", "put", "patch", "delete")]


def procurement_body(**kw: Any) -> dict[str, Any]:
    body = {"title": "采购实时交通数据 real-time traffic data wanted", "description": "用于信号配时 for signal timing",
            "category": "transport", "keywords": ["traffic", "交通"],
            "budget": {"max_amount": 2_000_000, "currency": "CNY"}, "delivery_mode": "api",
            "deadline": iso_z(utcnow() + timedelta(days=30)), "visibility": "public"}
    body.update(kw)
    return body


class Builder:
    def __init__(self, api: ApiHelper) -> None:
        self.api = api
        self.tag = secrets.token_hex(4)
        self.ids: dict[str, str] = {}
        self.secrets: dict[str, frozenset[str]] = {}

    def secret(self, what: str, *allowed: str) -> str:
        # Letters and digits only, so it survives any field's pattern (acct_..., emails) unchanged.
        text = re.sub(r"[^A-Za-z0-9]", "", what) + "SECRET" + self.tag
        self.secrets[text] = frozenset(("operator", *allowed))
        return text

    def build(self) -> World:
        api = self.api
        op = api.operator()
        owner, vendor2 = api.vendor(), api.vendor()
        buyer, ent2 = api.enterprise(), api.enterprise()
        assessor, assessor2 = api.assessor(), api.assessor()
        suspended_admin = api.vendor()
        suspended = api.member(suspended_admin)
        actors: dict[str, Actor | None] = {
            "anonymous": None, "suspended": suspended, "vendor2": vendor2, "enterprise2": ent2,
            "assessor2": assessor2, "assessor": assessor, "buyer": buyer, "owner": owner, "operator": op,
        }
        ids = self.ids
        ids.update({f"{name}_org": a.org_id for name, a in actors.items() if a is not None})

        # -- organizations: private profile fields, pending and victim organizations, keys -------------
        ok(api.patch(f"organizations/{owner.org_id}", owner,
                     json={"contact_email": f"{self.secret('owner-contact', 'owner')}@vendor.test",
                           "website": "https://owner.example.com"}))
        ok(api.patch(f"organizations/{owner.org_id}", op,
                     json={"stripe_account_id": f"acct_{self.secret('payout', 'owner')}"}))
        ok(api.patch(f"organizations/{buyer.org_id}", buyer,
                     json={"contact_email": f"{self.secret('buyer-contact', 'buyer')}@buyer.test"}))
        ids["pending_org"] = api.register("vendor", name=f"{self.secret('pending-name')} 待审机构")["id"]
        ids["pending_org2"] = api.register("enterprise")["id"]
        ids["victim_org"] = api.register("enterprise")["id"]
        ok(api.post(f"organizations/{ids['victim_org']}/verify", op, json={"reason": "checked"}))
        ids["suspended_victim_org"] = api.register("enterprise")["id"]
        ok(api.post(f"organizations/{ids['suspended_victim_org']}/verify", op, json={"reason": "checked"}))
        ok(api.post(f"organizations/{ids['suspended_victim_org']}/suspend", op, json={"reason": "paused"}))
        ids["key"] = ok(api.post(f"organizations/{owner.org_id}/keys", owner,
                                 json={"public_key": new_public_key(), "label": "main"}), 201)["key_id"]
        ids["key_revoke"] = ok(api.post(f"organizations/{owner.org_id}/keys", owner,
                                        json={"public_key": new_public_key()}), 201)["key_id"]

        # -- products and certifications --------------------------------------------------------------
        product = certify(api, owner)
        ids["product"], ids["certificate"] = product["id"], product["certificate_number"]
        ids["draft"] = create_product(api, owner, title=self.secret("draft-title", "owner"))["id"]
        ids["draft_delete"] = create_product(api, owner)["id"]
        ids["draft_certify"] = create_product(api, owner)["id"]
        ids["certificate_suspend"] = certify(api, owner)["certificate_number"]
        ids["certificate_revoke"] = certify(api, owner)["certificate_number"]
        ids["certificate_reinstate"] = certify(api, owner)["certificate_number"]
        ok(api.post(f"certificates/{ids['certificate_reinstate']}/suspend", op, json={"reason": "checking"}))

        in_review = submit(api, owner, create_product(api, owner)["id"])
        ids["cert_review"] = in_review["id"]
        ok(api.post(f"certifications/{in_review['id']}/assignments", op,
                    json={"stage": "quality", "assessor_org_id": assessor.org_id}), 201)
        ok(api.post(f"certifications/{in_review['id']}/reviews", op,
                    json={"stage": "compliance", "decision": "approve",
                          "comment": self.secret("review-comment", "owner", "assessor")}), 201)
        ids["cert_assign"] = submit(api, owner, create_product(api, owner)["id"])["id"]
        ids["cert_withdraw"] = submit(api, owner, create_product(api, owner)["id"])["id"]
        changes = submit(api, owner, create_product(api, owner)["id"])
        review(api, op, changes["id"], "quality", "request_changes")
        ids["cert_resubmit"] = changes["id"]
        api.app.config["NOTICE_DAYS"] = 30
        try:
            documents = [{"name": self.secret("document", "owner"), "sha256": SHA}]
            notice = ok(api.post("certifications", owner, json={"product_id": create_product(api, owner)["id"],
                                                                 "documents": documents}), 201)
            for stage in ("quality", "ownership", "compliance"):
                body = ok(api.post(f"certifications/{notice['id']}/reviews", op,
                                   json={"stage": stage, "decision": "approve",
                                         "comment": self.secret(f"notice-review-{stage}", "owner")}), 201)
            assert body["status"] == "public_notice", body
        finally:
            api.app.config["NOTICE_DAYS"] = 0
        ids["cert_notice"] = notice["id"]
        ids["objection"] = ok(api.post(f"certifications/{notice['id']}/objections", ent2,
                                       json={"reason": self.secret("objection", "enterprise2", "owner")}), 201)["id"]
        ids["objection_resolve"] = ok(api.post(f"certifications/{notice['id']}/objections", vendor2,
                                               json={"reason": "数据来源存疑 questionable source"}), 201)["id"]

        # -- fair, stall, white list -----------------------------------------------------------------
        fair, stall = live_fair(api, owner, [product["id"]])
        ids["fair"], ids["stall"], ids["stall_code"] = fair["id"], stall["id"], stall["code"]
        wl = {"category": "transport", "from_region": "GD", "to_region": "HK", "max_classification": "general",
              "personal_info_allowed": False, "expires_at": iso_z(utcnow() + timedelta(days=90))}
        ids["whitelist"] = ok(api.post("whitelist", op, json=wl), 201)["id"]
        ids["whitelist_delete"] = ok(api.post("whitelist", op, json=wl), 201)["id"]

        # -- procurements ----------------------------------------------------------------------------
        ids["procurement"] = ok(api.post("procurements", buyer, json=procurement_body()), 201)["id"]
        ids["procurement_cancel"] = ok(api.post("procurements", buyer, json=procurement_body()), 201)["id"]
        invited = procurement_body(visibility="invited", invited_org_ids=[owner.org_id],
                                   description=self.secret("invited-demand", "buyer", "owner"))
        ids["procurement_invited"] = ok(api.post("procurements", buyer, json=invited), 201)["id"]

        # -- offers, contracts, trades ---------------------------------------------------------------
        ids["offer"] = bid(api, buyer, product, message=self.secret("offer-message", "buyer", "owner"))["id"]
        for name in ("offer_counter", "offer_accept", "offer_reject", "offer_withdraw"):
            ids[name] = bid(api, buyer, product)["id"]
        contracts = {name: ok(api.post(f"offers/{bid(api, buyer, product)['id']}/accept", owner), 201)["id"]
                     for name in ("contract", "contract_sign", "contract_cancel", "t_read", "t_pay", "t_confirm",
                                  "t_deliver", "t_accept", "t_dispute", "t_resolve", "t_settled", "t_cancel")}
        ids["contract"], ids["contract_sign"], ids["contract_cancel"] = (
            contracts.pop("contract"), contracts.pop("contract_sign"), contracts.pop("contract_cancel"))
        trades = {}
        for name, contract_id in contracts.items():
            sign(api, buyer, contract_id)
            trades[name] = sign(api, owner, contract_id)["trade_id"]
        ids.update({f"trade{name[1:]}": trade_id for name, trade_id in trades.items()})

        def pay(trade_id: str, confirm: bool = True) -> str:
            payment = ok(api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}), 201)
            if confirm:
                ok(api.post(f"payments/{payment['id']}/confirm", op))
            return payment["id"]

        ids["payment"] = pay(ids["trade_read"])
        # What a Stripe payment stores (localstripe is not needed to read it back): the client secret
        # that completes the payment belongs to the buyer alone.
        with api.app.app_context():
            db.session.execute(update(Payment).where(Payment.id == ids["payment"]).values(
                client_secret=f"pi_x_secret_{self.secret('client-secret', 'buyer')}"))
            db.session.commit()
        ok(api.post(f"trades/{ids['trade_read']}/delivery", owner,
                    json={"reference": self.secret("delivery", "buyer", "owner"), "sha256": SHA}))
        ok(api.post(f"trades/{ids['trade_read']}/disputes", buyer,
                    json={"reason": self.secret("dispute", "buyer", "owner")}), 201)
        ids["payment_confirm"] = pay(ids["trade_confirm"], confirm=False)
        for name in ("trade_deliver", "trade_accept", "trade_dispute", "trade_resolve", "trade_settled"):
            pay(ids[name])
        for name in ("trade_accept", "trade_settled"):
            ok(api.post(f"trades/{ids[name]}/delivery", owner, json={"reference": "s3://bucket/data.csv",
                                                                      "sha256": SHA}))
        ok(api.post(f"trades/{ids['trade_settled']}/acceptance", buyer))
        ok(api.post(f"trades/{ids['trade_resolve']}/disputes", buyer, json={"reason": "late"}), 201)

        # -- a subscription (three months) the buyer may cancel --------------------------------------
        monthly = certify(api, owner, delivery_mode="file",
                          price={"model": "subscription", "amount": 880_000, "currency": "CNY", "period": "month"})
        sub_offer = ok(api.post("offers", buyer, json={
            "product_id": monthly["id"], "price": {"amount": 880_000, "currency": "CNY"},
            "terms": {"scope": "commercial", "delivery_mode": "file", "periods": 3, "auto_renew": True}}), 201)
        ids["subscription_cancel"] = ok(api.post(f"offers/{sub_offer['id']}/accept", owner), 201)["id"]
        sign(api, buyer, ids["subscription_cancel"])
        sign(api, owner, ids["subscription_cancel"])

        # -- compliance: the vendor's rights registration; a deal whose personal data leaves the
        # mainland (the buyer in HK while it signs) with its dossier (a GBA standard contract) --------
        ok(api.patch(f"organizations/{owner.org_id}", op, json={"city": "shenzhen", "zone": "qianhai"}))
        (registration,) = ok(api.get(f"products/{product['id']}/registrations"))["items"]
        ids["registration"] = registration["number"]
        personal = certify(api, owner, contains_personal_info=True,
                           personal_info={"subjects": 150_000, "sensitive": False})
        ok(api.post("whitelist", op, json={**wl, "personal_info_allowed": True}), 201)
        ok(api.patch(f"organizations/{buyer.org_id}", op, json={"region": "HK"}))
        ids["dossier_kind"] = "undertaking"
        ids["dossier_contract"] = ok(api.post(f"offers/{bid(api, buyer, personal)['id']}/accept", owner), 201)["id"]
        sign(api, buyer, ids["dossier_contract"])
        sign(api, owner, ids["dossier_contract"])
        ok(api.patch(f"organizations/{buyer.org_id}", op, json={"region": "GD"}))

        # -- delivery: a certified file product sold to the buyer (escrowed: its entitlement active),
        # a published release it covers, drafts to upload into and publish, one to withdraw, a link --
        file_product = certify(api, owner, delivery_mode="file")
        ids["file_product"] = file_product["id"]
        contract_id = ok(api.post(f"offers/{bid(api, buyer, file_product)['id']}/accept", owner), 201)["id"]
        sign(api, buyer, contract_id)
        ids["trade_file"] = sign(api, owner, contract_id)["trade_id"]
        pay(ids["trade_file"])
        (entitlement,) = ok(api.get(f"entitlements?trade_id={ids['trade_file']}", buyer))["items"]
        assert entitlement["status"] == "active", entitlement
        ids["entitlement"], ids["file_name"] = entitlement["id"], "traffic.csv"

        def release(*, publish: bool, files: bool = True, notes: str = "November") -> str:
            rel = ok(api.post(f"products/{file_product['id']}/releases", owner,
                              json={"label": "2026-11", "notes": notes}), 201)
            if files:
                ok(api.client.put(f"/api/v1/releases/{rel['id']}/files/{ids['file_name']}", data=RELEASE_FILE,
                                  headers={**owner.headers, "Content-Type": "application/octet-stream"}), 201)
            if publish:
                ok(api.post(f"releases/{rel['id']}/publish", owner))
            return rel["id"]

        ids["release"] = release(publish=True)
        # A draft's notes are its vendor's until it is published (buyers see published releases only).
        ids["release_draft"] = release(publish=False, files=False, notes=self.secret("release-notes", "owner"))
        ids["release_publish"] = release(publish=False)
        ids["release_withdraw"] = release(publish=True)
        url = ok(api.post(f"entitlements/{ids['entitlement']}/downloads", buyer,
                          json={"release_id": ids["release"], "file": ids["file_name"]}), 201)["url"]
        ids["token"] = url.rsplit("/", 1)[1]

        # -- the API gateway: an `api` product of its own with its vendor's upstream (the header value
        # private to all but operators, who see everything anyway), sold to the buyer (escrowed: its api
        # entitlement active) and a live key of the buyer's to revoke. Not `product`: with an upstream
        # the exchange delivers its trades itself, and trade_deliver's declared delivery would be 409.
        # `api_key`, not `key`: {key_id} already names an organization's signing key in PATH_OBJECTS.
        api_product = certify(api, owner, delivery_mode="api")
        ids["api_product"] = api_product["id"]
        ok(api.request("PUT", f"products/{api_product['id']}/api-upstream", owner,
                       json={"base_url": UPSTREAM_URL, "timeout_ms": 3000,
                             "auth_header": {"name": "X-Api-Key", "value": self.secret("upstream-header")}}))
        contract_id = ok(api.post(f"offers/{bid(api, buyer, api_product)['id']}/accept", owner), 201)["id"]
        sign(api, buyer, contract_id)
        ids["trade_api"] = sign(api, owner, contract_id)["trade_id"]
        pay(ids["trade_api"])
        (api_ent,) = ok(api.get(f"entitlements?trade_id={ids['trade_api']}", buyer))["items"]
        assert (api_ent["status"], api_ent["delivery_mode"]) == ("active", "api"), api_ent
        ids["api_entitlement"] = api_ent["id"]
        ids["api_key"] = ok(api.post(f"entitlements/{api_ent['id']}/api-keys", buyer, json={"label": "world"}),
                            201)["id"]

        # -- privacy computing: a privacy-computing product with a published release of its own (the
        # table `retail`), its policy set, sold to the buyer (escrowed: the entitlement active) ----------
        sandbox_product = certify(api, owner, delivery_mode="privacy_computing", data_format="csv")
        ids["sandbox_product"] = sandbox_product["id"]
        rel = ok(api.post(f"products/{sandbox_product['id']}/releases", owner, json={"label": "2026-11"}), 201)
        ok(api.client.put(f"/api/v1/releases/{rel['id']}/files/retail.csv", data=SANDBOX_FILE,
                          headers={**owner.headers, "Content-Type": "application/octet-stream"}), 201)
        ok(api.post(f"releases/{rel['id']}/publish", owner))
        ok(api.request("PUT", f"products/{sandbox_product['id']}/sandbox-policy", owner,
                       json={"min_group_size": 5, "blocked_columns": ["phone"]}))
        contract_id = ok(api.post(f"offers/{bid(api, buyer, sandbox_product)['id']}/accept", owner), 201)["id"]
        sign(api, buyer, contract_id)
        ids["trade_sandbox"] = sign(api, owner, contract_id)["trade_id"]
        pay(ids["trade_sandbox"])
        (sandbox_ent,) = ok(api.get(f"entitlements?trade_id={ids['trade_sandbox']}", buyer))["items"]
        ids["sandbox_entitlement"] = sandbox_ent["id"]

        for name in ("webhook", "webhook_delete"):
            ids[name] = ok(api.post("webhook-endpoints", owner, json={"url": WEBHOOK_URL,
                                                                      "events": ["trade.settled"]}), 201)["id"]

        # The suspended organization last: its member keeps a valid access token (reads, no writes).
        ids["suspended_draft"] = create_product(api, suspended_admin)["id"]
        ok(api.post(f"organizations/{suspended_admin.org_id}/suspend", op,
                    json={"reason": self.secret("suspension", "suspended")}))
        return World(api=api, actors=actors, ids=ids, secrets=self.secrets)


def build_world(api: ApiHelper) -> World:
    return Builder(api).build()
