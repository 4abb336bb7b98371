"""The authorization matrix: every route x every principal -> the status it answers.

Principals (tests.world.PRINCIPALS): `anonymous`, the `owner` vendor of the objects, `vendor2` (another
vendor), the `buyer` party (an enterprise), `enterprise2`, `assessor` (assigned to the certification
under review), `assessor2` (unassigned), `operator`, and `suspended` (a member of a suspended vendor).
A row's calls run in that order on the same objects, so a principal after a successful write sees
the state it left (cancelling a contract twice: the second party gets 409 — authorized, wrong state).
Writes that change state get objects of their own in the world (`contract_cancel`, `trade_accept`...).

Shared by the matrix test, the function-level authorization test, the BOLA sweep, the test that
authorization comes before the body, and the sweeps of body validation (`body_caller`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from exchange.db import utcnow
from exchange.fields import iso_z
from tests.certflow import DOCS, product_body
from tests.factories import PASSWORD
from tests.world import PRINCIPALS, SHA, UPSTREAM_URL, WEBHOOK_URL, World, new_public_key, procurement_body

_n = itertools.count(1)
# A dict (or what a callable returns) is sent as JSON; bytes as the raw `application/octet-stream`
# body of a file upload.
Body = dict[str, Any] | bytes | Callable[[World, str], Any] | None


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the request path with {placeholders} of World.ids
    body: Body
    expect: dict[str, int]  # principal -> status, for every principal of PRINCIPALS
    rule: str  # the OpenAPI path of the operation

    def body_for(self, world: World, principal: str) -> Any:
        return self.body(world, principal) if callable(self.body) else self.body


def R(method: str, path: str, body: Body = None, *, default: int, rule: str, **expect: int) -> Row:
    unknown = set(expect) - set(PRINCIPALS)
    assert not unknown, unknown
    return Row(method, path, body, {p: expect.get(p, default) for p in PRINCIPALS}, rule)


# Bodies -----------------------------------------------------------------------------------------------
def _registration(_w: World, principal: str) -> dict[str, Any]:
    n = next(_n)
    return {"name": f"矩阵机构 Matrix org {principal} {n}", "type": "enterprise", "region": "HK",
            "registration_number": f"MATRIX-{principal}-{n}",
            "admin": {"email": f"matrix-{principal}-{n}@matrix.test", "password": PASSWORD, "name": "Admin"}}


def _member(_w: World, principal: str) -> dict[str, Any]:
    return {"email": f"member-{principal}-{next(_n)}@matrix.test", "password": PASSWORD, "name": "Member"}


def _owner_login(w: World, _principal: str) -> dict[str, Any]:
    return {"email": w.actors["owner"].email, "password": PASSWORD}


def _owner_refresh(w: World, _principal: str) -> dict[str, Any]:
    return {"refresh_token": w.api.login(w.actors["owner"].email)["refresh_token"]}


def _key(_w: World, _principal: str) -> dict[str, Any]:
    return {"public_key": new_public_key(), "label": "matrix"}


def _product(_w: World, _principal: str) -> dict[str, Any]:
    return product_body()


def _fair(_w: World, _principal: str) -> dict[str, Any]:
    now = utcnow()
    return {"name": "矩阵交易会 Matrix fair", "venue": "琶洲", "starts_at": iso_z(now + timedelta(days=10)),
            "ends_at": iso_z(now + timedelta(days=12))}


def _stall(w: World, principal: str) -> dict[str, Any]:
    return {"org_id": w.ids["owner_org"], "code": "M-" + "".join(c for c in principal if c.isalnum())[:10],
            "product_ids": []}


def _whitelist(_w: World, _principal: str) -> dict[str, Any]:
    return {"category": "finance", "from_region": "GD", "to_region": "MO", "max_classification": "general",
            "expires_at": iso_z(utcnow() + timedelta(days=30))}


def _procurement(_w: World, _principal: str) -> dict[str, Any]:
    return procurement_body()


def _price_terms() -> dict[str, Any]:
    return {"price": {"amount": 1_100_000, "currency": "CNY"},
            "terms": {"scope": "commercial", "duration_days": 365, "delivery_mode": "api"}}


def _offer(w: World, _principal: str) -> dict[str, Any]:
    return {"product_id": w.ids["product"], **_price_terms()}


def _counter(_w: World, _principal: str) -> dict[str, Any]:
    return _price_terms()


def _payout(w: World, _principal: str) -> dict[str, Any]:
    return {"org_id": w.ids["owner_org"], "currency": "CNY", "amount": 1}


def _download(w: World, _principal: str) -> dict[str, Any]:
    return {"release_id": w.ids["release"], "file": w.ids["file_name"]}


UPLOAD = b"date,district,vehicles\n2026-11-02,Yuexiu,77420\n"
REASON = {"reason": "matrix check"}
P = "/api/v1"
PARTIES = {"buyer": 200, "owner": 200, "operator": 200}

ROWS: list[Row] = [
    # -- public reads ---------------------------------------------------------------------------------
    R("GET", f"{P}/health", default=200, rule=f"{P}/health"),
    R("GET", f"{P}/health/live", default=200, rule=f"{P}/health/live"),
    R("GET", P, default=200, rule=P),
    R("GET", "/", default=200, rule="/"),
    R("GET", f"{P}/health/ready", default=200, rule=f"{P}/health/ready"),
    R("GET", "/.well-known/jwks.json", default=200, rule="/.well-known/jwks.json"),
    R("GET", f"{P}/stats", default=200, rule=f"{P}/stats"),
    R("GET", f"{P}/fairs", default=200, rule=f"{P}/fairs"),
    R("GET", f"{P}/fairs/{{fair}}", default=200, rule=f"{P}/fairs/{{fair_id}}"),
    R("GET", f"{P}/fairs/{{fair}}/stalls", default=200, rule=f"{P}/fairs/{{fair_id}}/stalls"),
    R("GET", f"{P}/products", default=200, rule=f"{P}/products"),
    R("GET", f"{P}/products/{{product}}", default=200, rule=f"{P}/products/{{product_id}}"),
    R("GET", f"{P}/products/{{draft}}", default=404, owner=200, operator=200, rule=f"{P}/products/{{product_id}}"),
    R("GET", f"{P}/certificates/{{certificate}}", default=200, rule=f"{P}/certificates/{{number}}"),
    R("GET", f"{P}/products/personal-info-missing", default=403, anonymous=401, operator=200,
      rule=f"{P}/products/personal-info-missing"),
    R("GET", f"{P}/registrations/{{registration}}", default=200, rule=f"{P}/registrations/{{number}}"),
    R("GET", f"{P}/products/{{product}}/registrations", default=200, rule=f"{P}/products/{{product_id}}/registrations"),
    R("GET", f"{P}/organizations/{{owner_org}}", default=200, rule=f"{P}/organizations/{{org_id}}"),
    R("GET", f"{P}/organizations/{{pending_org}}", default=404, operator=200,
      rule=f"{P}/organizations/{{org_id}}"),
    R("GET", f"{P}/organizations/{{suspended_org}}", default=404, suspended=200, operator=200,
      rule=f"{P}/organizations/{{org_id}}"),
    R("GET", f"{P}/organizations/{{owner_org}}/keys", default=200, rule=f"{P}/organizations/{{org_id}}/keys"),
    R("GET", f"{P}/certifications/{{cert_notice}}", default=200, rule=f"{P}/certifications/{{certification_id}}"),
    R("GET", f"{P}/certifications/{{cert_review}}", default=404, owner=200, assessor=200, operator=200,
      rule=f"{P}/certifications/{{certification_id}}"),
    # -- reads that need a token --------------------------------------------------------------------
    R("GET", f"{P}/me", default=200, anonymous=401, rule=f"{P}/me"),
    R("GET", f"{P}/organizations", default=403, anonymous=401, operator=200, rule=f"{P}/organizations"),
    R("GET", f"{P}/organizations/{{owner_org}}/members", default=403, anonymous=401, owner=200, operator=200,
      rule=f"{P}/organizations/{{org_id}}/members"),
    R("GET", f"{P}/audit", default=403, anonymous=401, operator=200, rule=f"{P}/audit"),
    R("GET", f"{P}/ledger/accounts", default=200, anonymous=401, rule=f"{P}/ledger/accounts"),
    R("GET", f"{P}/ledger/entries?trade_id={{trade_read}}", default=404, anonymous=401, **PARTIES,
      rule=f"{P}/ledger/entries"),
    R("GET", f"{P}/ledger/verify", default=403, anonymous=401, operator=200, rule=f"{P}/ledger/verify"),
    R("GET", f"{P}/products/{{draft}}/versions", default=404, anonymous=401, owner=200, operator=200,
      rule=f"{P}/products/{{product_id}}/versions"),
    R("GET", f"{P}/products/{{product}}/versions", default=404, anonymous=401, owner=200, operator=200,
      rule=f"{P}/products/{{product_id}}/versions"),
    R("GET", f"{P}/products/{{draft}}/history", default=404, anonymous=401, owner=200, operator=200,
      rule=f"{P}/products/{{product_id}}/history"),
    R("GET", f"{P}/products/{{product}}/matches", default=403, anonymous=401, owner=200, operator=200,
      rule=f"{P}/products/{{product_id}}/matches"),
    R("GET", f"{P}/products/{{draft}}/matches", default=404, anonymous=401, owner=409, operator=409,
      rule=f"{P}/products/{{product_id}}/matches"),
    R("GET", f"{P}/certifications", default=200, anonymous=401, rule=f"{P}/certifications"),
    R("GET", f"{P}/objections/{{objection}}", default=404, anonymous=401, enterprise2=200, owner=200, operator=200,
      rule=f"{P}/objections/{{objection_id}}"),
    R("GET", f"{P}/whitelist", default=200, anonymous=401, rule=f"{P}/whitelist"),
    R("GET", f"{P}/procurements", default=200, anonymous=401, rule=f"{P}/procurements"),
    R("GET", f"{P}/procurements/{{procurement}}", default=200, anonymous=401, assessor=404, assessor2=404,
      rule=f"{P}/procurements/{{procurement_id}}"),
    R("GET", f"{P}/procurements/{{procurement_invited}}", default=404, anonymous=401, buyer=200, owner=200,
      operator=200, rule=f"{P}/procurements/{{procurement_id}}"),
    R("GET", f"{P}/procurements/{{procurement}}/matches", default=403, anonymous=401, assessor=404, assessor2=404,
      buyer=200, operator=200, rule=f"{P}/procurements/{{procurement_id}}/matches"),
    R("GET", f"{P}/offers", default=200, anonymous=401, rule=f"{P}/offers"),
    R("GET", f"{P}/offers/{{offer}}", default=404, anonymous=401, **PARTIES, rule=f"{P}/offers/{{offer_id}}"),
    R("GET", f"{P}/contracts", default=200, anonymous=401, rule=f"{P}/contracts"),
    R("GET", f"{P}/contracts/{{contract}}", default=404, anonymous=401, **PARTIES,
      rule=f"{P}/contracts/{{contract_id}}"),
    R("GET", f"{P}/contracts/{{contract}}/document", default=404, anonymous=401, **PARTIES,
      rule=f"{P}/contracts/{{contract_id}}/document"),
    R("GET", f"{P}/contracts/{{dossier_contract}}/dossier", default=404, anonymous=401, **PARTIES,
      rule=f"{P}/contracts/{{contract_id}}/dossier"),
    R("GET", f"{P}/contracts/{{dossier_contract}}/dossier/documents/undertaking", default=404, anonymous=401,
      **PARTIES, rule=f"{P}/contracts/{{contract_id}}/dossier/documents/{{kind}}"),
    R("GET", f"{P}/trades", default=200, anonymous=401, rule=f"{P}/trades"),
    R("GET", f"{P}/reports/trades?from=2026-01-01T00:00:00Z&to=2030-01-01T00:00:00Z", default=403, anonymous=401,
      operator=200, rule=f"{P}/reports/trades"),
    R("GET", f"{P}/trades/{{trade_read}}", default=404, anonymous=401, **PARTIES, rule=f"{P}/trades/{{trade_id}}"),
    R("GET", f"{P}/payments/{{payment}}", default=404, anonymous=401, **PARTIES,
      rule=f"{P}/payments/{{payment_id}}"),
    # The queues: anyone signed in lists what it may see (operators all, others their own: maybe none).
    R("GET", f"{P}/payments", default=200, anonymous=401, rule=f"{P}/payments"),
    R("GET", f"{P}/payments?trade_id={{trade_read}}&status=succeeded", default=404, anonymous=401, **PARTIES,
      rule=f"{P}/payments"),
    R("GET", f"{P}/disputes?status=open", default=200, anonymous=401, rule=f"{P}/disputes"),
    R("GET", f"{P}/payouts?org_id={{owner_org}}", default=200, anonymous=401, rule=f"{P}/payouts"),
    R("GET", f"{P}/entitlements", default=200, anonymous=401, rule=f"{P}/entitlements"),
    R("GET", f"{P}/entitlements/{{entitlement}}", default=404, anonymous=401, **PARTIES,
      rule=f"{P}/entitlements/{{entitlement_id}}"),
    R("GET", f"{P}/entitlements/{{entitlement}}/accesses", default=404, anonymous=401, **PARTIES,
      rule=f"{P}/entitlements/{{entitlement_id}}/accesses"),
    # The buyer's entitlement on the product lets it see the published releases it covers, not drafts.
    R("GET", f"{P}/products/{{file_product}}/releases", default=404, anonymous=401, **PARTIES,
      rule=f"{P}/products/{{product_id}}/releases"),
    R("GET", f"{P}/products/{{draft}}/releases", default=404, anonymous=401, owner=200, operator=200,
      rule=f"{P}/products/{{product_id}}/releases"),
    R("GET", f"{P}/releases/{{release}}", default=404, anonymous=401, **PARTIES, rule=f"{P}/releases/{{release_id}}"),
    R("GET", f"{P}/releases/{{release_draft}}", default=404, anonymous=401, owner=200, operator=200,
      rule=f"{P}/releases/{{release_id}}"),
    # The signed token is the only credential: whoever holds the link downloads (a bearer token or
    # none changes nothing); an altered token is refused to everyone.
    R("GET", f"{P}/downloads/{{token}}", default=200, rule=f"{P}/downloads/{{token}}"),
    R("GET", f"{P}/downloads/{{token}}x", default=403, rule=f"{P}/downloads/{{token}}"),
    # -- identity writes ------------------------------------------------------------------------------
    R("POST", f"{P}/organizations", _registration, default=201, suspended=403, rule=f"{P}/organizations"),
    R("PATCH", f"{P}/organizations/{{owner_org}}", {"display_name": "矩阵 Matrix"}, default=403, anonymous=401,
      owner=200, operator=200, rule=f"{P}/organizations/{{org_id}}"),
    R("PATCH", f"{P}/organizations/{{pending_org}}", {"display_name": "矩阵 Matrix"}, default=404, anonymous=401,
      suspended=403, operator=200, rule=f"{P}/organizations/{{org_id}}"),
    R("POST", f"{P}/organizations/{{pending_org}}/verify", REASON, default=403, anonymous=401, operator=200,
      rule=f"{P}/organizations/{{org_id}}/verify"),
    R("POST", f"{P}/organizations/{{pending_org2}}/reject", REASON, default=403, anonymous=401, operator=200,
      rule=f"{P}/organizations/{{org_id}}/reject"),
    R("POST", f"{P}/organizations/{{victim_org}}/suspend", REASON, default=403, anonymous=401, operator=200,
      rule=f"{P}/organizations/{{org_id}}/suspend"),
    R("POST", f"{P}/organizations/{{suspended_victim_org}}/reinstate", REASON, default=403, anonymous=401,
      operator=200, rule=f"{P}/organizations/{{org_id}}/reinstate"),
    R("POST", f"{P}/organizations/{{owner_org}}/members", _member, default=403, anonymous=401, owner=201,
      rule=f"{P}/organizations/{{org_id}}/members"),
    R("POST", f"{P}/organizations/{{owner_org}}/keys", _key, default=403, anonymous=401, owner=201,
      rule=f"{P}/organizations/{{org_id}}/keys"),
    R("DELETE", f"{P}/organizations/{{owner_org}}/keys/{{key_revoke}}", default=403, anonymous=401, owner=200,
      rule=f"{P}/organizations/{{org_id}}/keys/{{key_id}}"),
    R("POST", f"{P}/auth/token", _owner_login, default=200, rule=f"{P}/auth/token"),
    R("POST", f"{P}/auth/refresh", _owner_refresh, default=200, rule=f"{P}/auth/refresh"),
    R("POST", f"{P}/auth/logout", {}, default=204, anonymous=401, rule=f"{P}/auth/logout"),
    # -- listings writes ------------------------------------------------------------------------------
    R("POST", f"{P}/products", _product, default=403, anonymous=401, vendor2=201, owner=201, rule=f"{P}/products"),
    R("PATCH", f"{P}/products/{{draft}}", {"summary": "矩阵 matrix"}, default=404, anonymous=401, suspended=403,
      owner=200, operator=403, rule=f"{P}/products/{{product_id}}"),
    R("PATCH", f"{P}/products/{{product}}", {"summary": "矩阵 matrix"}, default=403, anonymous=401, owner=200,
      rule=f"{P}/products/{{product_id}}"),
    R("DELETE", f"{P}/products/{{draft_delete}}", default=404, anonymous=401, suspended=403, owner=200,
      operator=409, rule=f"{P}/products/{{product_id}}"),
    R("POST", f"{P}/fairs", _fair, default=403, anonymous=401, operator=201, rule=f"{P}/fairs"),
    R("POST", f"{P}/fairs/{{fair}}/stalls", _stall, default=403, anonymous=401, operator=201,
      rule=f"{P}/fairs/{{fair_id}}/stalls"),
    R("PATCH", f"{P}/fairs/{{fair}}/stalls/{{stall}}", lambda w, _p: {"product_ids": [w.ids["product"]]},
      default=403, anonymous=401, operator=200, rule=f"{P}/fairs/{{fair_id}}/stalls/{{stall_id}}"),
    # -- certification writes -------------------------------------------------------------------------
    # Only vendors request certifications (403 for the rest, before the body is read); another vendor
    # does not see the draft its body names (404).
    R("POST", f"{P}/certifications", lambda w, _p: {"product_id": w.ids["draft_certify"], "documents": DOCS},
      default=403, anonymous=401, vendor2=404, owner=201, rule=f"{P}/certifications"),
    R("POST", f"{P}/certifications/{{cert_assign}}/assignments",
      lambda w, _p: {"stage": "ownership", "assessor_org_id": w.ids["assessor_org"]},
      default=403, anonymous=401, operator=201, rule=f"{P}/certifications/{{certification_id}}/assignments"),
    R("POST", f"{P}/certifications/{{cert_review}}/reviews", {"stage": "quality", "decision": "approve"},
      default=404, anonymous=401, suspended=403, owner=403, assessor=201, operator=409,
      rule=f"{P}/certifications/{{certification_id}}/reviews"),
    R("POST", f"{P}/certifications/{{cert_resubmit}}/resubmit", {}, default=404, anonymous=401, suspended=403,
      owner=200, operator=403, rule=f"{P}/certifications/{{certification_id}}/resubmit"),
    R("POST", f"{P}/certifications/{{cert_withdraw}}/withdraw", default=404, anonymous=401, suspended=403,
      owner=200, operator=403, rule=f"{P}/certifications/{{certification_id}}/withdraw"),
    R("POST", f"{P}/certifications/{{cert_notice}}/objections", {"reason": "矩阵 matrix objection"}, default=201,
      anonymous=401, suspended=403, owner=403, rule=f"{P}/certifications/{{certification_id}}/objections"),
    R("POST", f"{P}/objections/{{objection_resolve}}/resolution", {"upheld": False}, default=403, anonymous=401,
      operator=200, rule=f"{P}/objections/{{objection_id}}/resolution"),
    R("POST", f"{P}/certificates/{{certificate_suspend}}/suspend", REASON, default=403, anonymous=401,
      operator=200, rule=f"{P}/certificates/{{number}}/suspend"),
    R("POST", f"{P}/certificates/{{certificate_reinstate}}/reinstate", REASON, default=403, anonymous=401,
      operator=200, rule=f"{P}/certificates/{{number}}/reinstate"),
    R("POST", f"{P}/certificates/{{certificate_revoke}}/revoke", REASON, default=403, anonymous=401,
      operator=200, rule=f"{P}/certificates/{{number}}/revoke"),
    R("POST", f"{P}/whitelist", _whitelist, default=403, anonymous=401, operator=201, rule=f"{P}/whitelist"),
    R("DELETE", f"{P}/whitelist/{{whitelist_delete}}", default=403, anonymous=401, operator=200,
      rule=f"{P}/whitelist/{{entry_id}}"),
    # -- trading writes -------------------------------------------------------------------------------
    R("POST", f"{P}/procurements", _procurement, default=201, anonymous=401, suspended=403, assessor=403,
      assessor2=403, operator=403, rule=f"{P}/procurements"),
    R("POST", f"{P}/procurements/{{procurement_cancel}}/cancel", {}, default=403, anonymous=401, assessor=404,
      assessor2=404, buyer=200, rule=f"{P}/procurements/{{procurement_id}}/cancel"),
    R("POST", f"{P}/offers", _offer, default=201, anonymous=401, suspended=403, assessor=403, assessor2=403,
      owner=422, operator=403, rule=f"{P}/offers"),
    R("POST", f"{P}/offers/{{offer_counter}}/counter", _counter, default=404, anonymous=401, suspended=403,
      buyer=403, owner=201, operator=403, rule=f"{P}/offers/{{offer_id}}/counter"),
    R("POST", f"{P}/offers/{{offer_accept}}/accept", default=404, anonymous=401, suspended=403, buyer=403,
      owner=201, operator=403, rule=f"{P}/offers/{{offer_id}}/accept"),
    R("POST", f"{P}/offers/{{offer_reject}}/reject", {}, default=404, anonymous=401, suspended=403, buyer=403,
      owner=200, operator=403, rule=f"{P}/offers/{{offer_id}}/reject"),
    R("POST", f"{P}/offers/{{offer_withdraw}}/withdraw", default=404, anonymous=401, suspended=403, buyer=200,
      owner=403, operator=403, rule=f"{P}/offers/{{offer_id}}/withdraw"),
    R("POST", f"{P}/contracts/{{contract_sign}}/signatures", {}, default=404, anonymous=401, suspended=403,
      buyer=201, owner=201, operator=403, rule=f"{P}/contracts/{{contract_id}}/signatures"),
    R("POST", f"{P}/contracts/{{contract_cancel}}/cancel", {}, default=404, anonymous=401, suspended=403,
      buyer=200, owner=409, operator=403, rule=f"{P}/contracts/{{contract_id}}/cancel"),
    # The buyer alone cancels its subscription: the seller and operators see it but may not (403).
    R("POST", f"{P}/contracts/{{subscription_cancel}}/subscription/cancel", default=404, anonymous=401,
      suspended=403, buyer=200, owner=403, operator=403, rule=f"{P}/contracts/{{contract_id}}/subscription/cancel"),
    # The exporter (the seller) files; the buyer may not (403); an operator then finds it filed (409).
    R("POST", f"{P}/contracts/{{dossier_contract}}/dossier/filing", {"reference": "矩阵 matrix"}, default=404,
      anonymous=401, suspended=403, owner=200, buyer=403, operator=409,
      rule=f"{P}/contracts/{{contract_id}}/dossier/filing"),
    R("POST", f"{P}/trades/{{trade_cancel}}/cancel", {"reason": "矩阵 matrix"}, default=403, anonymous=401,
      operator=200, rule=f"{P}/trades/{{trade_id}}/cancel"),
    R("POST", f"{P}/trades/{{trade_pay}}/payments", {"provider": "manual"}, default=404, anonymous=401,
      suspended=403, buyer=201, owner=403, operator=403, rule=f"{P}/trades/{{trade_id}}/payments"),
    R("POST", f"{P}/payments/{{payment_confirm}}/confirm", default=403, anonymous=401, operator=200,
      rule=f"{P}/payments/{{payment_id}}/confirm"),
    # The buyer alone cancels; this payment has succeeded, so the buyer is authorized but refused (409).
    R("POST", f"{P}/payments/{{payment}}/cancel", default=404, anonymous=401, suspended=403, buyer=409,
      owner=403, operator=403, rule=f"{P}/payments/{{payment_id}}/cancel"),
    R("POST", f"{P}/webhooks/stripe", {}, default=422, suspended=403, rule=f"{P}/webhooks/stripe"),
    R("POST", f"{P}/trades/{{trade_deliver}}/delivery", {"reference": "https://files.example.com/d.csv",
                                                         "sha256": SHA},
      default=404, anonymous=401, suspended=403, buyer=403, owner=200, operator=403,
      rule=f"{P}/trades/{{trade_id}}/delivery"),
    R("POST", f"{P}/trades/{{trade_accept}}/acceptance", default=404, anonymous=401, suspended=403, buyer=200,
      owner=403, operator=403, rule=f"{P}/trades/{{trade_id}}/acceptance"),
    # An operator may open one on the buyer's behalf: after the buyer's, it is authorized but finds it disputed.
    R("POST", f"{P}/trades/{{trade_dispute}}/disputes", {"reason": "矩阵 not as described"}, default=404,
      anonymous=401, suspended=403, buyer=201, owner=403, operator=409, rule=f"{P}/trades/{{trade_id}}/disputes"),
    R("POST", f"{P}/trades/{{trade_resolve}}/resolution", {"refund_amount": 0}, default=403, anonymous=401,
      operator=200, rule=f"{P}/trades/{{trade_id}}/resolution"),
    R("POST", f"{P}/payouts", _payout, default=403, anonymous=401, operator=201, rule=f"{P}/payouts"),
    # -- delivery writes ------------------------------------------------------------------------------
    # A listed product is visible to all: its owner alone adds releases (403 for the rest); a draft
    # product is invisible but to its owner and operators (404).
    R("POST", f"{P}/products/{{file_product}}/releases", {"label": "矩阵 matrix"}, default=403, anonymous=401,
      owner=201, rule=f"{P}/products/{{product_id}}/releases"),
    R("POST", f"{P}/products/{{draft}}/releases", {"label": "矩阵 matrix"}, default=404, anonymous=401,
      suspended=403, owner=201, operator=403, rule=f"{P}/products/{{product_id}}/releases"),
    # A release is seen by its owner, operators and (published and covered) the buyer: anyone else
    # gets the 404 of an unknown release; one who sees it but may not change it, 403.
    R("PUT", f"{P}/releases/{{release_draft}}/files/{{file_name}}", UPLOAD, default=404, anonymous=401,
      suspended=403, owner=201, operator=403, rule=f"{P}/releases/{{release_id}}/files/{{name}}"),
    R("POST", f"{P}/releases/{{release_publish}}/publish", default=404, anonymous=401, suspended=403, owner=200,
      operator=403, rule=f"{P}/releases/{{release_id}}/publish"),
    # The owner withdraws it; the operator, after it, is authorized but finds it withdrawn (409).
    R("POST", f"{P}/releases/{{release_withdraw}}/withdraw", default=404, anonymous=401, suspended=403,
      buyer=403, owner=200, operator=409, rule=f"{P}/releases/{{release_id}}/withdraw"),
    # Members of the buying organization alone get links: the seller and operators see the
    # entitlement but may not download through it (403).
    # A suspended member reaches the entitlement check (delivery's exemption, so a suspended buyer's
    # refusal is logged with its reason): not a party of this entitlement, it gets 404 like others.
    R("POST", f"{P}/entitlements/{{entitlement}}/downloads", _download, default=404, anonymous=401,
      buyer=201, owner=403, operator=403, rule=f"{P}/entitlements/{{entitlement_id}}/downloads"),
    # -- the API gateway's control plane (api_product, sold to the buyer: api_entitlement) -----------
    # A listed product is visible to all: its owner alone sets the upstream (403 for the rest,
    # operators too; the suspended member is refused by the kernel first).
    R("PUT", f"{P}/products/{{api_product}}/api-upstream", {"base_url": UPSTREAM_URL, "timeout_ms": 2000},
      default=403, anonymous=401, owner=200, rule=f"{P}/products/{{product_id}}/api-upstream"),
    # The parties and operators see the entitlement: only an admin of the buying organization makes a
    # key (the seller and operators 403); anyone else gets the 404 of an unknown entitlement.
    R("POST", f"{P}/entitlements/{{api_entitlement}}/api-keys", {"label": "矩阵 matrix"}, default=404,
      anonymous=401, suspended=403, buyer=201, owner=403, operator=403,
      rule=f"{P}/entitlements/{{entitlement_id}}/api-keys"),
    # The keys' list is the buying organization's and operators'; the seller sees the entitlement, not
    # its keys (403). A suspended member reads like anyone not a party: 404.
    R("GET", f"{P}/entitlements/{{api_entitlement}}/api-keys", default=404, anonymous=401, buyer=200, owner=403,
      operator=200, rule=f"{P}/entitlements/{{entitlement_id}}/api-keys"),
    # The buyer revokes first; the seller and operators, after it, are refused as non-buyers (403).
    R("DELETE", f"{P}/entitlements/{{api_entitlement}}/api-keys/{{api_key}}", default=404, anonymous=401,
      suspended=403, buyer=200, owner=403, operator=403,
      rule=f"{P}/entitlements/{{entitlement_id}}/api-keys/{{key_id}}"),
    R("GET", f"{P}/entitlements/{{api_entitlement}}/usage", default=404, anonymous=401, **PARTIES,
      rule=f"{P}/entitlements/{{entitlement_id}}/usage"),
    # -- privacy computing (sandbox_product, sold to the buyer: sandbox_entitlement) ------------------
    # The owner alone sets the policy (a listed product: 403 for the rest); the policy is public.
    R("PUT", f"{P}/products/{{sandbox_product}}/sandbox-policy", {"min_group_size": 5, "blocked_columns": ["phone"]},
      default=403, anonymous=401, owner=200, rule=f"{P}/products/{{product_id}}/sandbox-policy"),
    R("GET", f"{P}/products/{{sandbox_product}}/sandbox-policy", default=200,
      rule=f"{P}/products/{{product_id}}/sandbox-policy"),
    # Members of the buying organization alone query; the seller and operators see the entitlement but
    # may not compute through it (403). The suspended member's write is refused by the kernel first.
    R("POST", f"{P}/entitlements/{{sandbox_entitlement}}/queries", {"sql": "SELECT count(*) AS n FROM retail"},
      default=404, anonymous=401, suspended=403, buyer=201, owner=403, operator=403,
      rule=f"{P}/entitlements/{{entitlement_id}}/queries"),
    # What was asked of the data, and answered, is the parties' and operators' to read.
    R("GET", f"{P}/entitlements/{{sandbox_entitlement}}/queries", default=404, anonymous=401, **PARTIES,
      rule=f"{P}/entitlements/{{entitlement_id}}/queries"),
    R("GET", f"{P}/entitlements/{{sandbox_entitlement}}/tables", default=404, anonymous=401, buyer=200, owner=403,
      operator=403, rule=f"{P}/entitlements/{{entitlement_id}}/tables"),
    # -- webhook endpoints: each organization sees and manages only its own ------------------------
    R("POST", f"{P}/webhook-endpoints", {"url": WEBHOOK_URL, "events": ["contract.signed"]}, default=201,
      anonymous=401, suspended=403, rule=f"{P}/webhook-endpoints"),
    R("GET", f"{P}/webhook-endpoints", default=200, anonymous=401, rule=f"{P}/webhook-endpoints"),
    R("GET", f"{P}/webhook-endpoints/{{webhook}}", default=404, anonymous=401, owner=200,
      rule=f"{P}/webhook-endpoints/{{endpoint_id}}"),
    R("GET", f"{P}/webhook-endpoints/{{webhook}}/deliveries", default=404, anonymous=401, owner=200,
      rule=f"{P}/webhook-endpoints/{{endpoint_id}}/deliveries"),
    R("DELETE", f"{P}/webhook-endpoints/{{webhook_delete}}", default=404, anonymous=401, suspended=403, owner=200,
      rule=f"{P}/webhook-endpoints/{{endpoint_id}}"),
]

# Routes outside the API document: the document itself and its viewer, and the Prometheus scrape
# endpoint (infrastructure: nginx and the Ingress never route it; tests/api/test_metrics_and_health.py).
DOC_ROUTES = frozenset({f"{P}/openapi.json", f"{P}/docs", f"{P}/docs/static/<path:filename>", "/metrics"})
# The API gateway's data plane: served, outside the API document (docs/delivery.md documents it), its
# only credential a buyer's `dfk_` key, not a token of the kernel's; tested in tests/api/test_gateway.py.
DATA_PLANE_ROUTES = frozenset({"/gateway/v1/<product_id>/", "/gateway/v1/<product_id>/<path:path>"})
# The web console's pages (console/): HTML forms with a session cookie and a CSRF token, not operations of
# the API document; swept route by route in tests/console/test_console_security.py.
CONSOLE_ENDPOINT = "console."


def outside_api(rule: Any) -> bool:
    """A URL rule that is not an operation of the API document (its viewer, the gateway, the console)."""
    return rule.rule in DOC_ROUTES | DATA_PLANE_ROUTES or rule.endpoint.startswith(CONSOLE_ENDPOINT)

OPERATOR_ONLY = [row for row in ROWS if row.expect["operator"] < 300
                 and all(row.expect[p] in (401, 403) for p in PRINCIPALS if p != "operator")]


def send(world: World, method: str, path: str, actor: Any, body: Any) -> Any:
    """The request with `body` as JSON, or as a raw octet-stream upload when it is bytes."""
    if isinstance(body, bytes):
        r = world.api.request(method, path, actor, data=body, headers={"Content-Type": "application/octet-stream"})
    else:
        r = world.api.request(method, path, actor, json=body)
    r.get_data()  # buffered, so the file a download streams from is closed now
    r.close()
    return r


def call(world: World, row: Row, principal: str) -> Any:
    return send(world, row.method, world.fill(row.path), world.actors[principal], row.body_for(world, principal))


REFUSED = (401, 403, 404)


def body_caller(world: World, method: str, path: str) -> tuple[Any, str]:
    """Who sends a body to the operation `method path` (OpenAPI path), and to which path, in a test of
    what the body's validation says: authorization comes before the body (its 403 or 404 would hide
    the 422), so a principal the matrix lets through, on that row's object; the owner where it may."""
    rows = [row for row in ROWS if (row.method, row.rule) == (method, path)]
    for row in rows:
        if row.expect["owner"] not in REFUSED:
            return world.actors["owner"], world.fill(row.path)
    for row in rows:
        for principal in ("operator", "buyer", *PRINCIPALS):
            if principal != "anonymous" and row.expect[principal] not in REFUSED:
                return world.actors[principal], world.fill(row.path)
    return world.actors["owner"], world.path(path)
