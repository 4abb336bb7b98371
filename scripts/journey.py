"""The whole life of a deal on datafair, as HTTP calls: `make demo` runs it against the server `make run` serves.

A fresh vendor and a fresh buyer each time (so it runs again and again), the demo's operator and
assessor, and the exchange in between:

    register -> certify -> procure -> match -> negotiate -> sign -> pay -> deliver -> accept -> settle

then a metered call through the API gateway and `ledger verify`. Every call is printed as it is made
(method, path, who) with the answer's status and the fields that matter; docs/journey.md walks through
it step by step. Standard library, plus `rfc8785` and `cryptography` (the project's venv has them) to
check the contract's digest, the exchange's signatures and the ledger's hashes from public data alone.

    DATAFAIR_BIND=127.0.0.1:8000 python3 scripts/journey.py      # or DATAFAIR_URL=http://host:port
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

BASE = os.environ.get("DATAFAIR_URL") or "http://" + os.environ.get("DATAFAIR_BIND", "127.0.0.1:8000")
API = BASE.rstrip("/") + "/api/v1"
DEMO_PASSWORD = "datafair-demo-2026"  # noqa: S105 - the demo data's published password (make run prints it)
OPERATOR = "operator@datafair.demo"
ASSESSOR = "assessor@gd-assess.demo"
RUN = time.strftime("%m%d%H%M%S") + secrets.token_hex(2)  # makes this run's names and emails unique
PASSWORD = "journey passphrase " + secrets.token_hex(4)
STEPS = 16
calls = {"made": 0, "refused": 0}


class JourneyFailed(Exception):
    pass


# -- the HTTP client: one function, every call printed -------------------------------------------------
def call(who: str | None, method: str, path: str, body: Any = None, *, expect: int = 200,
         show: tuple[str, ...] = (), raw: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    """Make one call as `who` (a token from `login`, or None), print it and its answer, return the JSON."""
    url = path if path.startswith("http") else (BASE + path if path.startswith("/gateway/") else API + path)
    head = {"Accept": "application/json", **(headers or {})}
    data = None
    if raw is not None:
        data, head["Content-Type"] = raw, "application/octet-stream"
    elif body is not None:
        data, head["Content-Type"] = json.dumps(body, ensure_ascii=False).encode(), "application/json"
    if who:
        head["Authorization"] = "Bearer " + TOKENS[who]
    shown = url.removeprefix(BASE)
    if "/downloads/" in shown:
        shown = shown.split("/downloads/")[0] + "/downloads/<the link's signed token>"
    print(f"   {method:6} {shown[:100]}" + (f"   as {who}" if who else ""))
    request = urllib.request.Request(url, data=data, method=method, headers=head)  # noqa: S310 - our own server
    calls["made"] += 1
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - our own server
            status, payload, ctype = answer.status, answer.read(), answer.headers.get("Content-Type", "")
    except urllib.error.HTTPError as refused:
        status, payload, ctype = refused.code, refused.read(), refused.headers.get("Content-Type", "")
    except urllib.error.URLError as down:
        raise JourneyFailed(f"no server at {BASE} ({down.reason}): start it with `make run` "
                            "(the same DATAFAIR_BIND) and try again") from None
    value: Any = json.loads(payload) if "json" in ctype and payload else payload
    if status != expect:
        calls["refused"] += 1
        detail = value.get("detail") if isinstance(value, dict) else payload[:300]
        raise JourneyFailed(f"{method} {shown} answered {status}, not {expect}: {detail}")
    if isinstance(value, dict) and not show and isinstance(value.get("items"), list):
        print(f"   -> {status} {len(value['items'])} items")
    elif isinstance(value, dict) and not show:
        print(f"   -> {status}")
    elif isinstance(value, dict):
        print(f"   -> {status} " + json.dumps({k: _short(value.get(k)) for k in show}, ensure_ascii=False))
    else:
        print(f"   -> {status} {len(value)} bytes")
    return value


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 60:
        return value[:57] + "..."
    if isinstance(value, list) and len(value) > 3:
        return [*value[:3], f"... {len(value) - 3} more"]
    return value


TOKENS: dict[str, str] = {}


def login(name: str, email: str, password: str) -> None:
    print(f"   ({name} signs in: {email})")
    TOKENS[name] = call(None, "POST", "/auth/token", {"email": email, "password": password},
                        show=("token_type", "expires_in"))["access_token"]


def step(n: int, text: str) -> None:
    print(f"\n[{n:2}/{STEPS}] {text}")


def register(kind: str, name: str, email: str) -> dict[str, Any]:
    return call(None, "POST", "/organizations", {
        "name": name, "type": kind, "region": "GD", "registration_number": f"9144JOURNEY{kind[:3].upper()}{RUN}",
        "admin": {"email": email, "password": PASSWORD, "name": "Journey admin"}}, expect=201,
        show=("id", "type", "status"))


def certify(product: dict[str, Any], assessor_org: str) -> str:
    """The vendor asks for certification; the assessor reviews quality, the operator the rest."""
    cert = call("vendor", "POST", "/certifications", {
        "product_id": product["id"], "documents": [{"name": "data-source-licence.pdf",
                                                    "sha256": hashlib.sha256(b"licence " + RUN.encode()).hexdigest()}]},
        expect=201, show=("id", "status"))
    call("operator", "POST", f"/certifications/{cert['id']}/assignments",
         {"stage": "quality", "assessor_org_id": assessor_org}, expect=201, show=("status",))
    review = {"decision": "approve", "comment": "checked on the sample", "checklist": {"sample_checked": True}}
    call("assessor", "POST", f"/certifications/{cert['id']}/reviews", {"stage": "quality", **review},
         expect=201, show=("status",))
    call("operator", "POST", f"/certifications/{cert['id']}/reviews", {"stage": "ownership", **review},
         expect=201, show=("status",))
    done = call("operator", "POST", f"/certifications/{cert['id']}/reviews", {"stage": "compliance", **review},
                expect=201, show=("status", "certificate_number"))
    if not done.get("certificate_number"):
        raise JourneyFailed(f"the certification is {done['status']}, not approved (DATAFAIR_NOTICE_DAYS > 0 "
                            "puts it under public notice first: run the demo with notice days 0)")
    return done["certificate_number"]


def sha256_canonical(value: Any) -> str:
    return hashlib.sha256(rfc8785.dumps(value)).hexdigest()


JWKS: dict[str, Any] = {}


def exchange_key(key_id: str) -> Ed25519PublicKey:
    """The exchange's public key `key_id`, from the JWKS anyone can fetch (once per run)."""
    if not JWKS:
        JWKS.update(call(None, "GET", BASE + "/.well-known/jwks.json"))
    jwk = next(k for k in JWKS["keys"] if k["kid"] == key_id)
    return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="))


PRODUCT_FIELDS = ("title", "summary", "description", "category", "keywords", "data_format", "delivery_mode",
                  "classification", "contains_personal_info", "origin_region", "update_frequency", "price", "sample",
                  "license", "scenarios", "data_source", "coverage", "volume")


def check_certificate(cert: dict[str, Any], product: dict[str, Any]) -> None:
    """The digest from the listed product as the catalog shows it; the signature with the JWKS."""
    body = {k: product.get(k) for k in PRODUCT_FIELDS}
    if product.get("personal_info") is not None:  # part of the certified body only when stated
        body["personal_info"] = product["personal_info"]
    body.update(product_id=cert["product_id"], version=cert["product_version"], vendor_org_id=cert["vendor_org_id"])
    if sha256_canonical(body) != cert["digest"]:
        raise JourneyFailed("the certificate's digest is not the sha256 of the listed product")
    signed = {k: cert[k] for k in ("number", "product_id", "product_version", "vendor_org_id", "issued_at",
                                   "expires_at", "digest", "key_id")}
    exchange_key(cert["key_id"]).verify(base64.b64decode(cert["signature"]), rfc8785.dumps(signed))
    print("   digest = sha256(RFC 8785 of the listed product + ids); signature verified with the JWKS: ok")


def check_release(release: dict[str, Any]) -> None:
    """The manifest from the release's file list; the exchange's receipt over it with the JWKS."""
    files = [{k: f[k] for k in ("name", "bytes", "sha256")} for f in release["files"]]
    manifest = {"release_id": release["id"], "product_id": release["product_id"], "files": files}
    if sha256_canonical(manifest) != release["manifest_sha256"]:
        raise JourneyFailed("the release's manifest_sha256 is not the sha256 of its files")
    receipt = release["receipt"]
    exchange_key(receipt["key_id"]).verify(base64.b64decode(receipt["signature"]), rfc8785.dumps(
        {**manifest, "manifest_sha256": release["manifest_sha256"], "published_at": receipt["published_at"]}))
    print("   manifest_sha256 = sha256(RFC 8785 of the files); the exchange's receipt verified: ok")


def check_contract(contract: dict[str, Any]) -> None:
    """The digest from the contract's own fields; each platform signature by the exchange's key over its facts."""
    digest = sha256_canonical({k: contract[k] for k in (
        "number", "buyer_org_id", "seller_org_id", "product_id", "product_version", "certificate_number", "price",
        "terms")})
    if digest != contract["digest"]:
        raise JourneyFailed("the contract's digest is not the sha256 of its canonical fields")
    for sig in contract["signatures"]:
        facts = {"contract_digest": digest, **{k: sig[k] for k in (
            "org_id", "user_id", "signed_at", "on_site", "fair_id", "stall_code")}}
        exchange_key(sig["key_id"]).verify(base64.b64decode(sig["signature"]), rfc8785.dumps(facts))
    print(f"   digest = sha256(RFC 8785 of the terms); {len(contract['signatures'])} signatures verified "
          "with the JWKS: ok")


def check_entries(entries: list[dict[str, Any]]) -> None:
    """Each entry's hash from its own fields and the previous hash; postings balance per currency."""
    for e in entries:
        body = {"seq": e["seq"], "kind": e["kind"], "trade_id": e["trade_id"], "created_at": e["created_at"],
                "postings": [{k: p[k] for k in ("account_id", "account", "currency", "amount")} for p in e["postings"]],
                "metadata": e["metadata"]}
        if hashlib.sha256(rfc8785.dumps(body) + e["prev_hash"].encode()).hexdigest() != e["hash"]:
            raise JourneyFailed(f"ledger entry {e['seq']}'s hash does not match its content")
        for currency in {p["currency"] for p in e["postings"]}:
            if sum(p["amount"] for p in e["postings"] if p["currency"] == currency):
                raise JourneyFailed(f"ledger entry {e['seq']} does not balance in {currency}")
    print(f"   {len(entries)} entries: each hash = sha256(RFC 8785 body + prev_hash), each balanced: ok")


def product_body(**kw: Any) -> dict[str, Any]:
    body = {
        "title": f"越秀区停车场实时空位 Yuexiu car-park occupancy {RUN}",
        "summary": "越秀区公共停车场每15分钟空位数 Free spaces of Yuexiu's public car parks every 15 minutes",
        "description": "停车场闸机计数。Barrier counts of 42 public car parks in Yuexiu, Guangzhou.",
        "category": "transport", "keywords": ["停车", "parking", "交通", f"yuexiu-{RUN}"], "data_format": "csv",
        "delivery_mode": "file", "classification": "general", "contains_personal_info": False,
        "origin_region": "GD", "update_frequency": "daily",
        "price": {"model": "one_time", "amount": 880000, "currency": "CNY", "period": None},
        "license": {"scope": "commercial", "duration_days": 365, "resale_allowed": False},
        "scenarios": ["停车诱导 parking guidance"],
        "data_source": {"type": "self_collected", "description": "停车场闸机 car-park barriers"},
    }
    return {**body, **kw}


# -- the journey -------------------------------------------------------------------------------------
def journey() -> None:
    step(1, "The exchange answers at its address: the index of links; the operator and the assessor sign in")
    links = call(None, "GET", "", show=("service", "api_version"))["links"]
    print("   links: " + ", ".join(links))
    login("operator", OPERATOR, DEMO_PASSWORD)
    login("assessor", ASSESSOR, DEMO_PASSWORD)

    step(2, "A new vendor registers; an operator verifies it (a decision with a reason, audited)")
    vendor = register("vendor", f"越秀停车数据有限公司 Yuexiu Parking Data {RUN}", f"vendor-{RUN}@journey.example")
    call("operator", "POST", f"/organizations/{vendor['id']}/verify", {"reason": "business licence checked"},
         show=("status",))
    login("vendor", f"vendor-{RUN}@journey.example", PASSWORD)

    step(3, "The vendor lists a file product and publishes its first release (one CSV, signed manifest)")
    files = call("vendor", "POST", "/products", product_body(), expect=201, show=("id", "status", "version"))
    release = call("vendor", "POST", f"/products/{files['id']}/releases",
                   {"label": "2026-12", "notes": "first month"}, expect=201, show=("id", "status"))
    csv = b"ts,car_park,free_spaces\n2026-12-01T08:00:00Z,YX-001,37\n2026-12-01T08:15:00Z,YX-001,29\n"
    call("vendor", "PUT", f"/releases/{release['id']}/files/occupancy-2026-12.csv", raw=csv, expect=201,
         show=("name", "bytes", "sha256"))
    call("vendor", "POST", f"/releases/{release['id']}/publish", show=("status", "manifest_sha256"))

    step(4, "And an API product, sold per call, in front of its own API (the demo upstream of this server)")
    api = call("vendor", "POST", "/products", product_body(
        title=f"越秀停车实时接口 Yuexiu parking live API {RUN}", delivery_mode="api", data_format="api",
        update_frequency="realtime", price={"model": "per_call", "amount": 50, "currency": "CNY", "period": None}),
        expect=201, show=("id", "status"))
    call("vendor", "PUT", f"/products/{api['id']}/api-upstream", {
        "base_url": BASE + "/_demo-upstream/v1",
        "auth_header": {"name": "X-Demo-Vendor-Key", "value": "gz-transport-demo-upstream"}},
        show=("base_url",))

    step(5, "Certification: the assessor reviews quality, the operator ownership and compliance")
    assessor_org = call("assessor", "GET", "/me", show=("role",))["organization"]["id"]
    number = certify(files, assessor_org)
    certify(api, assessor_org)
    cert = call(None, "GET", f"/certificates/{number}", show=("number", "status", "verification"))
    check_certificate(cert, call(None, "GET", f"/products/{files['id']}", show=("status", "certificate_number")))

    step(6, "The fair: the operator gives the vendor a stall at the live fair, with its products on show")
    fairs = call(None, "GET", "/fairs", show=("total",))["items"]
    fair = next((f for f in fairs if f.get("phase") == "live"), None)
    stall = None
    if fair:
        stall = call("operator", "POST", f"/fairs/{fair['id']}/stalls", {
            "org_id": vendor["id"], "code": f"J-{RUN[-6:]}", "product_ids": [files["id"], api["id"]]},
            expect=201, show=("code", "product_ids"))
    else:
        print("   (no fair is live now: the contract is signed on the platform only)")

    step(7, "A new buyer registers, is verified, and posts its demand (a procurement)")
    buyer = register("enterprise", f"海珠物流科技有限公司 Haizhu Logistics Tech {RUN}", f"buyer-{RUN}@journey.example")
    call("operator", "POST", f"/organizations/{buyer['id']}/verify", {"reason": "business licence checked"},
         show=("status",))
    login("buyer", f"buyer-{RUN}@journey.example", PASSWORD)
    deadline = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
    procurement = call("buyer", "POST", "/procurements", {
        "title": f"采购停车场空位数据 Car-park occupancy wanted {RUN}", "description": "越秀区停车场 Yuexiu car parks",
        "category": "transport", "keywords": ["停车", "parking", f"yuexiu-{RUN}"],
        "budget": {"max_amount": 1000000, "currency": "CNY"},
        "delivery_mode": "file", "deadline": deadline, "visibility": "public"}, expect=201, show=("id", "status"))

    step(8, "Matching: the exchange proposes lawful, certified products, with what the buyer needs to decide")
    matches = call("buyer", "GET", f"/procurements/{procurement['id']}/matches?limit=10", show=())["items"]
    rank = next((i for i, m in enumerate(matches, 1) if m["product_id"] == files["id"]), None)
    if rank is None:
        raise JourneyFailed("the vendor's product is not among the matches")
    match = matches[rank - 1]
    print(f"   => match #{rank}: " + json.dumps({k: match.get(k) for k in (
        "score", "title", "price", "vendor", "certificate_number", "delivery_mode")}, ensure_ascii=False))

    step(9, "Negotiation: the buyer offers less, the vendor counters (terms unchanged), the buyer accepts")
    terms = {"scope": "commercial", "duration_days": 365, "delivery_mode": "file"}
    offer = call("buyer", "POST", "/offers", {"product_id": files["id"], "procurement_id": procurement["id"],
                                              "price": {"amount": 700000, "currency": "CNY"}, "terms": terms},
                 expect=201, show=("id", "status", "price"))
    counter = call("vendor", "POST", f"/offers/{offer['id']}/counter", {"price": {"amount": 800000, "currency": "CNY"}},
                   expect=201, show=("id", "status", "price"))
    contract = call("buyer", "POST", f"/offers/{counter['id']}/accept", expect=201,
                    show=("id", "number", "status", "digest"))

    step(10, "Signatures: the buyer on the platform, the vendor on site at its stall; the trade is recorded")
    call("buyer", "POST", f"/contracts/{contract['id']}/signatures", {"on_site": False},
         expect=201, show=("status",))
    on_site = {"on_site": True, "fair_id": fair["id"], "stall_code": stall["code"]} if stall else {"on_site": False}
    signed = call("vendor", "POST", f"/contracts/{contract['id']}/signatures", on_site, expect=201,
                  show=("status", "trade_id"))
    trade_id = signed["trade_id"]
    check_contract(call("buyer", "GET", f"/contracts/{contract['id']}", show=("status", "certificate_number")))

    step(11, "Payment: the buyer pays by bank transfer; the operator confirms it from its queue; escrow")
    payment = call("buyer", "POST", f"/trades/{trade_id}/payments", {"provider": "manual"}, expect=201,
                   show=("id", "status", "amount"))
    queue = call("operator", "GET", "/payments?status=pending&per_page=100", show=("total",))["items"]
    if payment["id"] not in [p["id"] for p in queue]:
        raise JourneyFailed("the payment is not in the operators' queue")
    call("operator", "POST", f"/payments/{payment['id']}/confirm", show=("status",))
    call("buyer", "GET", f"/trades/{trade_id}", show=("status", "delivery_evidence", "amount"))

    step(12, "Delivery: the buyer's entitlement, a signed one-file link, the download checked against the manifest")
    entitlement = call("buyer", "GET", f"/entitlements?trade_id={trade_id}", show=("total",))["items"][0]
    releases = call("buyer", "GET", f"/products/{files['id']}/releases")["items"]
    check_release(releases[0])
    link = call("buyer", "POST", f"/entitlements/{entitlement['id']}/downloads",
                {"release_id": releases[0]["id"], "file": "occupancy-2026-12.csv"}, expect=201,
                show=("expires_at", "bytes", "sha256"))
    data = call(None, "GET", link["url"] if link["url"].startswith("http") else BASE + link["url"])
    if hashlib.sha256(data).hexdigest() != link["sha256"] or data != csv:
        raise JourneyFailed("the downloaded bytes are not the published file")
    print(f"   sha256 of the {len(data)} bytes downloaded = the manifest's: ok")

    step(13, "Acceptance: the buyer accepts; escrow goes to the vendor, the fee to the exchange")
    call("buyer", "POST", f"/trades/{trade_id}/acceptance", show=("status", "settled_amount", "fee"))

    step(14, "The API product: a bid for 100 calls at the list price, accepted, signed, paid, confirmed")
    bid = call("buyer", "POST", "/offers", {"product_id": api["id"], "price": {"amount": 50, "currency": "CNY"},
                                            "terms": {"scope": "commercial", "duration_days": 30,
                                                      "delivery_mode": "api", "calls": 100}},
               expect=201, show=("id", "status"))
    api_contract = call("vendor", "POST", f"/offers/{bid['id']}/accept", expect=201, show=("id", "status"))
    call("vendor", "POST", f"/contracts/{api_contract['id']}/signatures", {"on_site": False}, expect=201,
         show=("status",))
    api_trade = call("buyer", "POST", f"/contracts/{api_contract['id']}/signatures", {"on_site": False},
                     expect=201, show=("status", "trade_id"))["trade_id"]
    api_payment = call("buyer", "POST", f"/trades/{api_trade}/payments", {"provider": "manual"}, expect=201,
                       show=("status", "amount"))
    call("operator", "POST", f"/payments/{api_payment['id']}/confirm", show=("status",))

    step(15, "The gateway: an API key (shown once), a metered call (the exchange adds the vendor's key), the usage")
    api_entitlement = call("buyer", "GET", f"/entitlements?trade_id={api_trade}", show=("total",))["items"][0]
    key = call("buyer", "POST", f"/entitlements/{api_entitlement['id']}/api-keys", {"label": "journey"},
               expect=201, show=("prefix",))["key"]
    TOKENS["api key"] = key
    call("api key", "GET", f"/gateway/v1/{api['id']}/traffic-flow?segment=TH-0412&points=2",
         show=("segment_id", "name"))
    call("buyer", "GET", f"/entitlements/{api_entitlement['id']}/usage", show=("calls_included", "calls_used"))

    step(16, "The ledger: the trade's balanced, hash-chained entries, and the whole chain verified")
    check_entries(call("buyer", "GET", f"/ledger/entries?trade_id={trade_id}", show=("total",))["items"])
    verified = call("operator", "GET", "/ledger/verify", show=("entries", "balanced", "chain_valid"))
    if not (verified["balanced"] and verified["chain_valid"]):
        raise JourneyFailed("ledger verify failed")


def main() -> int:
    print(f"datafair journey against {BASE} (run {RUN})")
    try:
        journey()
    except JourneyFailed as failed:
        print(f"\nFAILED: {failed}", file=sys.stderr)
        return 1
    print(f"\nJourney complete: {calls['made']} HTTP calls, {calls['refused']} refused. "
          "Walk-through: docs/journey.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
