"""The rights register (数据资产登记, API.md Compliance): what certification, signatures, refunds and
revocations file, who sees which registration, offline verification with the JWKS alone, gapless
numbers per UTC year (a rollback gives its number back), append-only rows, and concurrent filings
on real PostgreSQL.

Each test gets its own freshly reset database (tests/conftest.py), so every registration in the
table is one this test filed: the seqs of a year must be exactly 1..N.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from exchange.db import db
from tests.certflow import approve_all, certify, submit
from tests.deliveryflow import pay
from tests.race.harness import Call, release
from tests.tradeflow import bid, sign

NUMBER = re.compile(r"^DRR-(\d{4})-(\d{6})$")
VENDOR_RIGHTS = ["holding", "processing", "operation"]
FIELDS = {"number", "type", "product_id", "product_version", "holder_org_id", "rights", "scope", "valid_from",
          "valid_to", "contract_id", "cancels", "registered_at", "digest", "key_id", "signature"}
UNSIGNED = ("signature", "verification")
UNDIGESTED = ("digest", "key_id", "signature", "verification")
PRICE = 1_250_000  # tests.certflow's product price


# -- helpers ----------------------------------------------------------------------------------------

def _time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def registration(api, number: str) -> dict[str, Any]:
    r = api.get(f"registrations/{number}")  # public: no token
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def listed(api, product_id: str, actor=None, expect: int = 200) -> list[dict[str, Any]]:
    """Every registration of a product the caller may see, following the pages (per_page=2)."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        r = api.get(f"products/{product_id}/registrations?per_page=2&page={page}", actor)
        assert r.status_code == expect, r.get_json()
        if expect != 200:
            return []
        body = r.get_json()
        items += body["items"]
        if page * body["per_page"] >= body["total"]:
            assert len(items) == body["total"]
            return items
        page += 1


def of_type(items: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [i for i in items if i["type"] == type_]


def signed_contract(api, vendor, buyer, product: dict[str, Any], **terms: Any) -> dict[str, Any]:
    """A bid on a listed product, accepted and signed by both parties: the contract JSON."""
    extra = {"terms": {"scope": "commercial", "duration_days": 365, "delivery_mode": product["delivery_mode"],
                       **terms}} if terms else {}
    offer = bid(api, buyer, product, **extra)
    r = api.post(f"offers/{offer['id']}/accept", vendor)
    assert r.status_code == 201, r.get_json()
    contract_id = r.get_json()["id"]
    sign(api, buyer, contract_id)
    sign(api, vendor, contract_id)
    contract = api.get(f"contracts/{contract_id}", buyer).get_json()
    assert contract["status"] == "signed" and contract["signed_at"], contract
    return contract


def refund_in_full(api, buyer, trade_id: str) -> dict[str, Any]:
    """Pay, dispute, and have an operator refund the whole amount (ending access): `refunded`."""
    pay(api, buyer, trade_id)
    r = api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "数据不完整 incomplete delivery"})
    assert r.status_code == 201, r.get_json()
    r = api.post(f"trades/{trade_id}/resolution", api.operator(),
                 json={"refund_amount": PRICE, "end_access": True, "comment": "full refund"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "refunded"
    return r.get_json()


def revoke(api, number: str, expect: int = 200) -> None:
    r = api.post(f"certificates/{number}/revoke", api.operator(), json={"reason": "来源许可被撤回 licence withdrawn"})
    assert r.status_code == expect, r.get_json()


def rows(app) -> list[tuple[str, int, int, str, datetime]]:
    with app.app_context():
        try:
            return [tuple(r) for r in db.session.execute(text(
                "SELECT number, year, seq, type, registered_at FROM registrations ORDER BY year, seq")).all()]
        finally:
            db.session.rollback()


def assert_gapless(app) -> list[str]:
    """Every year's seqs are exactly 1..N, each number spells its year and seq; returns the numbers."""
    found = rows(app)
    by_year: dict[int, list[int]] = {}
    for number, year, seq, _, registered_at in found:
        assert number == f"DRR-{year}-{seq:06d}", (number, year, seq)
        registered_at = registered_at if isinstance(registered_at, datetime) else datetime.fromisoformat(
            str(registered_at))
        assert registered_at.year == year, (number, registered_at)
        by_year.setdefault(year, []).append(seq)
    for year, seqs in by_year.items():
        assert sorted(seqs) == list(range(1, len(seqs) + 1)), (year, seqs)
    return [r[0] for r in found]


MONEY_WORDS = ("price", "amount", "currency", "fee")


def _leaves(value: Any, path: str = "") -> Any:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def no_price(reg: dict[str, Any]) -> None:
    """No field named for money, and no value that is the price or a currency (compared as whole values and
    words, not as substrings: a random hex id may well contain "fee")."""
    for path, value in _leaves(reg):
        assert not any(word in path.lower() for word in MONEY_WORDS), (path, reg)
        assert value != PRICE and value not in ("CNY", "HKD", "MOP"), (path, reg)
        if isinstance(value, str):
            assert not re.search(rf"(?<![0-9a-f]){PRICE}(?![0-9a-f])", value), (path, reg)


# -- offline verification: the JSON, the JWKS, rfc8785 and cryptography only -----------------------

def _b64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def digest_matches(reg: dict[str, Any]) -> bool:
    body = {k: v for k, v in reg.items() if k not in UNDIGESTED}
    return hashlib.sha256(rfc8785.dumps(body)).hexdigest() == reg["digest"]


def signature_valid(reg: dict[str, Any], jwks: dict[str, Any]) -> bool:
    key = next((k for k in jwks["keys"] if k["kid"] == reg["key_id"]), None)
    if key is None or key["kty"] != "OKP" or key["crv"] != "Ed25519":
        return False
    public = Ed25519PublicKey.from_public_bytes(_b64url(key["x"]))
    try:
        public.verify(base64.b64decode(reg["signature"]),
                      rfc8785.dumps({k: v for k, v in reg.items() if k not in UNSIGNED}))
    except (InvalidSignature, ValueError):
        return False
    return True


def jwks_of(api) -> dict[str, Any]:
    r = api.client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    return r.get_json()


# -- 1. approval: initial, then change ---------------------------------------------------------------

def test_approval_files_the_vendors_initial_then_a_change_for_a_later_version(api):
    vendor = api.vendor()
    product = certify(api, vendor)
    pid = product["id"]
    cert = api.get(f"certificates/{product['certificate_number']}").get_json()
    (initial,) = listed(api, pid)  # anyone sees the vendor's registrations
    assert set(initial) == FIELDS
    assert NUMBER.match(initial["number"])
    assert initial["type"] == "initial" and initial["rights"] == VENDOR_RIGHTS
    assert initial["holder_org_id"] == vendor.org_id and initial["product_id"] == pid
    assert initial["product_version"] == cert["product_version"] == 1
    assert (initial["valid_from"], initial["valid_to"]) == (cert["issued_at"], cert["expires_at"])
    assert initial["scope"] is None and initial["contract_id"] is None and initial["cancels"] is None
    one = registration(api, initial["number"])
    assert {k: v for k, v in one.items() if k != "verification"} == initial

    r = api.patch(f"products/{pid}", vendor, json={"title": "广州交通 v2 revised"})
    assert r.status_code == 200 and r.get_json()["version"] == 2, r.get_json()
    done = approve_all(api, submit(api, vendor, pid)["id"])
    assert done["status"] == "approved", done
    cert2 = api.get(f"certificates/{done['certificate_number']}").get_json()
    assert cert2["product_version"] == 2
    first, change = listed(api, pid)
    assert first == initial
    assert change["type"] == "change" and change["rights"] == VENDOR_RIGHTS
    assert change["holder_org_id"] == vendor.org_id and change["product_version"] == 2
    assert (change["valid_from"], change["valid_to"]) == (cert2["issued_at"], cert2["expires_at"])
    assert change["contract_id"] is None and change["cancels"] is None
    assert change["number"] > initial["number"]
    # Another product's first approval is again an `initial`.
    other = certify(api, vendor)
    assert [r["type"] for r in listed(api, other["id"])] == ["initial"]
    assert_gapless(api.app)


# -- 2. a signed contract files the buyer's licence, seen by few --------------------------------------

def test_a_signed_contract_files_the_buyers_licence_visible_only_to_owner_holder_and_operators(api):
    vendor, buyer, rival, stranger = api.vendor(), api.enterprise(), api.enterprise(), api.enterprise()
    product = certify(api, vendor)
    pid = product["id"]
    contract = signed_contract(api, vendor, buyer, product, scope="research", duration_days=90)
    assert contract["terms"]["scope"] == "research"
    owner_view = listed(api, pid, vendor)
    assert [r["type"] for r in owner_view] == ["initial", "licence"]
    licence = owner_view[1]
    assert licence["holder_org_id"] == buyer.org_id and licence["rights"] == ["processing"]
    assert licence["scope"] == "research" and licence["contract_id"] == contract["id"]
    assert licence["product_id"] == pid and licence["product_version"] == contract["product_version"]
    assert licence["valid_from"] == contract["signed_at"]
    assert _time(licence["valid_to"]) == _time(contract["signed_at"]) + timedelta(days=90)
    assert licence["cancels"] is None
    # A second buyer's licence: each holder sees its own, never the other's.
    rival_contract = signed_contract(api, vendor, rival, product)
    rival_licence = next(r for r in listed(api, pid, vendor) if r["contract_id"] == rival_contract["id"])
    assert rival_licence["scope"] == "commercial" and rival_licence["holder_org_id"] == rival.org_id
    initial = owner_view[0]
    everything = [initial, licence, rival_licence]
    assert listed(api, pid, vendor) == everything
    assert listed(api, pid, api.operator()) == everything
    assert listed(api, pid, buyer) == [initial, licence]
    assert listed(api, pid, rival) == [initial, rival_licence]
    assert listed(api, pid, stranger) == [initial], "another enterprise must not learn who bought"
    assert listed(api, pid) == [initial], "an anonymous caller must not learn who bought"
    # Whoever holds the number may fetch it (API.md: public), without a token.
    assert {k: v for k, v in registration(api, licence["number"]).items() if k != "verification"} == licence
    for reg in everything:
        no_price(registration(api, reg["number"]))
    for actor in (None, vendor, buyer, api.operator()):
        r = api.get(f"products/{pid}/registrations?per_page=100", actor)
        for item in r.get_json()["items"]:
            no_price(item)
    assert_gapless(api.app)


# -- 3. cancellations: a refund, a revocation; each once ---------------------------------------------

def test_a_full_refund_cancels_the_licence_once(api):
    vendor, buyer = api.vendor(), api.enterprise()
    product = certify(api, vendor)
    contract = signed_contract(api, vendor, buyer, product)
    licence = of_type(listed(api, product["id"], vendor), "licence")[0]
    trade_id = contract["trade_id"]
    refund_in_full(api, buyer, trade_id)
    # A second resolution, or a new dispute, of a refunded trade is refused and files nothing more.
    op = api.operator()
    assert api.post(f"trades/{trade_id}/resolution", op, json={"refund_amount": PRICE}).status_code == 409
    assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "again"}).status_code == 409
    regs = listed(api, product["id"], op)
    assert [r["type"] for r in regs] == ["initial", "licence", "cancellation"]
    cancellation = regs[2]
    assert cancellation["cancels"] == licence["number"]
    assert cancellation["contract_id"] == contract["id"] and cancellation["holder_org_id"] == buyer.org_id
    assert cancellation["product_version"] == licence["product_version"]
    assert cancellation["rights"] == ["processing"]
    assert cancellation["registered_at"] >= licence["registered_at"]
    no_price(registration(api, cancellation["number"]))
    # The holder sees its licence's end; the public does not (it would reveal the buyer).
    assert [r["type"] for r in listed(api, product["id"], buyer)] == ["initial", "licence", "cancellation"]
    assert [r["type"] for r in listed(api, product["id"])] == ["initial"]
    assert_gapless(api.app)


def test_a_partial_refund_files_no_cancellation(api):
    vendor, buyer = api.vendor(), api.enterprise()
    product = certify(api, vendor)
    contract = signed_contract(api, vendor, buyer, product)
    trade_id = contract["trade_id"]
    pay(api, buyer, trade_id)
    assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "partly wrong"}).status_code == 201
    r = api.post(f"trades/{trade_id}/resolution", api.operator(), json={"refund_amount": PRICE // 4})
    assert r.status_code == 200 and r.get_json()["status"] == "settled", r.get_json()
    assert [r["type"] for r in listed(api, product["id"], vendor)] == ["initial", "licence"]


def test_a_revoked_certificate_cancels_the_vendors_registration_once(api):
    vendor = api.vendor()
    product = certify(api, vendor)
    pid = product["id"]
    (initial,) = listed(api, pid)
    revoke(api, product["certificate_number"])
    revoke(api, product["certificate_number"], expect=409)  # revoked for good: nothing more is filed
    regs = listed(api, pid, api.operator())
    assert [r["type"] for r in regs] == ["initial", "cancellation"]
    assert regs == listed(api, pid, vendor)
    cancellation = regs[1]
    assert cancellation["cancels"] == initial["number"]
    assert cancellation["holder_org_id"] == vendor.org_id and cancellation["contract_id"] is None
    assert cancellation["product_version"] == 1 and cancellation["rights"] == VENDOR_RIGHTS
    # Anyone holding the number can still fetch and verify it.
    public = registration(api, cancellation["number"])
    assert public["verification"] == {"signature_valid": True, "digest_matches": True}
    assert_gapless(api.app)


def test_a_suspended_then_revoked_certificate_is_cancelled_once(api):
    vendor = api.vendor()
    product = certify(api, vendor)
    number = product["certificate_number"]
    r = api.post(f"certificates/{number}/suspend", api.operator(), json={"reason": "under review"})
    assert r.status_code == 200, r.get_json()
    assert [r["type"] for r in listed(api, product["id"], vendor)] == ["initial"], "a suspension files nothing"
    revoke(api, number)
    assert [r["type"] for r in listed(api, product["id"], vendor)] == ["initial", "cancellation"]


# -- 4. offline verification -------------------------------------------------------------------------

def test_every_kind_verifies_offline_with_the_jwks_alone_and_tampering_fails(api):
    vendor, buyer = api.vendor(), api.enterprise()
    product = certify(api, vendor)
    contract = signed_contract(api, vendor, buyer, product)
    refund_in_full(api, buyer, contract["trade_id"])
    revoke(api, product["certificate_number"])
    numbers = [r["number"] for r in listed(api, product["id"], api.operator())]
    jwks = jwks_of(api)
    seen = set()
    for number in numbers:
        reg = registration(api, number)
        seen.add(reg["type"])
        assert reg["verification"] == {"signature_valid": True, "digest_matches": True}, number
        assert digest_matches(reg), number
        assert signature_valid(reg, jwks), number
        # Any changed field fails offline: holder_org_id first (a forged holder), then the rest.
        forged = {**reg, "holder_org_id": buyer.org_id if reg["holder_org_id"] != buyer.org_id else vendor.org_id}
        assert not digest_matches(forged) and not signature_valid(forged, jwks), number
        for field, value in reg.items():
            if field in ("verification", "signature", "key_id"):
                continue
            if isinstance(value, int):
                changed: Any = value + 1
            elif isinstance(value, list):
                changed = [*value, "operation"] if "operation" not in value else value[:-1]
            elif value is None:
                changed = "x"
            else:
                changed = value[:-1] + ("0" if value[-1] != "0" else "1")
            assert not signature_valid({**reg, field: changed}, jwks), (number, field)
            if field != "digest":
                assert not digest_matches({**reg, field: changed}), (number, field)
        sig = bytearray(base64.b64decode(reg["signature"]))
        sig[0] ^= 1
        assert not signature_valid({**reg, "signature": base64.b64encode(bytes(sig)).decode()}, jwks)
        assert not signature_valid({**reg, "key_id": "dfx-unknown"}, jwks)
    assert seen == {"initial", "licence", "cancellation"}


def test_registrations_verify_after_a_key_rotation(app, api):
    vendor = api.vendor()
    old = listed(api, certify(api, vendor)["id"])[0]
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    new = listed(api, certify(api, vendor)["id"])[0]
    assert new["key_id"] != old["key_id"]
    jwks = jwks_of(api)
    for reg in (old, new):
        full = registration(api, reg["number"])
        assert full["verification"] == {"signature_valid": True, "digest_matches": True}
        assert signature_valid(full, jwks) and digest_matches(full)


# -- 5. numbers: gapless, increasing, per year ------------------------------------------------------

def test_numbers_are_gapless_and_increasing_across_a_mix_of_filings(api):
    vendor, other_vendor = api.vendor(), api.vendor()
    buyers = [api.enterprise() for _ in range(3)]
    first = certify(api, vendor)
    second = certify(api, other_vendor)
    contracts = [signed_contract(api, vendor, buyers[0], first), signed_contract(api, vendor, buyers[1], first),
                 signed_contract(api, other_vendor, buyers[2], second)]
    api.patch(f"products/{first['id']}", vendor, json={"title": "v2 of the first"})
    assert approve_all(api, submit(api, vendor, first["id"])["id"])["status"] == "approved"
    refund_in_full(api, buyers[1], contracts[1]["trade_id"])
    revoke(api, second["certificate_number"])
    numbers = assert_gapless(api.app)
    # initial x2, licence x3, change, cancellation x2
    assert len(numbers) == 8
    op = api.operator()
    through_api = listed(api, first["id"], op) + listed(api, second["id"], op)
    assert sorted(r["number"] for r in through_api) == numbers
    assert sorted(r["type"] for r in through_api) == sorted(
        ["initial", "initial", "licence", "licence", "licence", "change", "cancellation", "cancellation"])
    # Filed in this order, so numbered in this order: registered_at never goes back as numbers grow.
    by_number = sorted(through_api, key=lambda r: r["number"])
    assert [r["registered_at"] for r in by_number] == sorted(r["registered_at"] for r in by_number)
    for reg in through_api:
        year, _ = NUMBER.match(reg["number"]).groups()
        assert reg["registered_at"].startswith(year)


# -- 6. a rollback gives its number back --------------------------------------------------------------

def _licence_args(app, api) -> dict[str, Any]:
    vendor, buyer = api.vendor(), api.enterprise()
    product = certify(api, vendor)
    with app.app_context():
        now = datetime.now(UTC).replace(microsecond=0)
    return dict(contract_id="ctr_not_a_real_contract", product_id=product["id"], product_version=1,
                buyer_org_id=buyer.org_id, seller_org_id=vendor.org_id, scope="commercial", valid_from=now,
                valid_to=now + timedelta(days=30))


def _licences(app) -> list[tuple[str, str]]:
    with app.app_context():
        try:
            return [tuple(r) for r in db.session.execute(text(
                "SELECT number, contract_id FROM registrations WHERE type = 'licence' ORDER BY seq")).all()]
        finally:
            db.session.rollback()


def test_a_rolled_back_filing_gives_its_number_back(app, api):
    """A transaction that did its own work, filed, then failed: nothing is written, the at_commit work
    is forgotten, and the next transaction's registration takes the very next number."""
    from certification import registrations
    from exchange import sequences

    args = _licence_args(app, api)
    before = assert_gapless(app)
    assert len(before) == 1  # the vendor's initial
    with app.app_context():
        db.session.execute(text("SELECT count(*) FROM registrations")).scalar_one()  # the request's own work
        registrations.register_licence(db.session, **args)
        assert sequences.pending_at_commit(db.session) == 1
        db.session.rollback()
        assert sequences.pending_at_commit(db.session) == 0, "a rollback forgets what at_commit deferred"
    assert assert_gapless(app) == before, "nothing was written"
    with app.app_context():
        registrations.register_licence(db.session, **{**args, "contract_id": "ctr_the_next_one"})
        db.session.commit()
    after = assert_gapless(app)
    assert after == [before[0], before[0][:-6] + "000002"], after
    assert _licences(app) == [(after[1], "ctr_the_next_one")]


def test_a_number_taken_then_rolled_back_is_taken_again(app, api):
    """The number is reserved in the transaction (at commit): a failure after the numbering rolls the
    counter back with the row, and the next commit gets the same number."""
    from certification import registrations
    from exchange import sequences

    args = _licence_args(app, api)
    with app.app_context():
        registrations.register_licence(db.session, **args)
        sequences.run_at_commit(db.session)  # numbered, signed and inserted, as the commit would
        taken = db.session.execute(text("SELECT number FROM registrations ORDER BY seq DESC")).scalars().first()
        assert taken.endswith("-000002")
        db.session.rollback()
    assert len(assert_gapless(app)) == 1
    with app.app_context():
        registrations.register_licence(db.session, **{**args, "contract_id": "ctr_the_next_one"})
        db.session.commit()
    assert assert_gapless(app)[-1] == taken
    assert _licences(app) == [(taken, "ctr_the_next_one")]


# Regression (a rollback once kept a transaction's queued filings):
def test_a_rolled_back_filing_does_not_swallow_the_next_one_in_the_same_session(app, api):
    from certification import registrations

    args = _licence_args(app, api)
    with app.app_context():
        db.session.execute(text("SELECT count(*) FROM registrations")).scalar_one()
        registrations.register_licence(db.session, **args)
        db.session.rollback()
        registrations.register_licence(db.session, **{**args, "contract_id": "ctr_the_next_one"})
        db.session.commit()
    numbers = assert_gapless(app)
    assert _licences(app) == [(numbers[-1], "ctr_the_next_one")]


# Regression (a rollback once kept a transaction's queued filings):
def test_a_failed_sweep_item_does_not_lose_the_next_items_registrations(app, api):
    from certification import registrations
    from exchange.jobs.scheduler import Sweep

    args = _licence_args(app, api)

    def apply(session, ident, now):
        session.execute(text("SELECT 1")).scalar_one()
        registrations.register_licence(session, **{**args, "contract_id": f"ctr_sweep_{ident}"})
        if ident == 1:
            raise RuntimeError("this item fails after filing")
        return True

    sweep = Sweep("registrations-test", due=lambda session, now, limit: [1, 2, 3], apply=apply, batch=10,
                  report="{} filed")
    with app.app_context():
        result = sweep(db.session)
    assert result.endswith("2 filed"), result
    numbers = assert_gapless(app)
    assert [c for _, c in _licences(app)] == ["ctr_sweep_2", "ctr_sweep_3"], numbers


# Regression (a rollback once kept a transaction's queued filings):
def test_a_rollback_before_any_sql_forgets_the_filing_too(app, api):
    from certification import registrations
    from exchange import sequences

    args = _licence_args(app, api)
    with app.app_context():
        registrations.register_licence(db.session, **args)
        db.session.rollback()
        pending = sequences.pending_at_commit(db.session)
        db.session.commit()
    assert (pending, _licences(app)) == (0, [])


# -- 7. append-only ----------------------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE registrations SET holder_org_id = holder_org_id",
    "UPDATE registrations SET scope = 'commercial', valid_to = NULL",
    "DELETE FROM registrations",
])
def test_registrations_are_append_only_in_the_database(app, api, statement):
    product = certify(api, api.vendor())
    (reg,) = listed(api, product["id"])
    with app.app_context():
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement))
            db.session.flush()
        db.session.rollback()
    assert registration(api, reg["number"]) == {**reg, "verification": {"signature_valid": True,
                                                                      "digest_matches": True}}


def test_the_orm_cannot_edit_or_delete_a_registration(app, api):
    from certification.models import Registration

    product = certify(api, api.vendor())
    (reg,) = listed(api, product["id"])
    with app.app_context():
        row = db.session.get(Registration, reg["number"])
        row.scope = "research"
        with pytest.raises(DatabaseError):
            db.session.commit()
        db.session.rollback()
        row = db.session.get(Registration, reg["number"])
        db.session.delete(row)
        with pytest.raises(DatabaseError):
            db.session.commit()
        db.session.rollback()
    assert registration(api, reg["number"])["scope"] is None


# -- 8. errors ----------------------------------------------------------------------------------------

def test_unknown_numbers_and_products_answer_404_and_bad_paging_422(api):
    vendor = api.vendor()
    product = certify(api, vendor)
    year = listed(api, product["id"])[0]["number"][4:8]
    for number in (f"DRR-{year}-000002", f"DRR-{year}-999999", "DRR-1999-000001", "nope", "D" * 64):
        r = api.get(f"registrations/{number}")
        assert r.status_code == 404, (number, r.get_json())
        assert r.mimetype == "application/problem+json"
    assert api.get("products/prd_nope/registrations").status_code == 404
    assert api.get(f"products/{'x' * 60}/registrations").status_code == 404
    draft = api.post("products", vendor, json={**_draft_body(), "title": "未上架 draft"}).get_json()
    assert api.get(f"products/{draft['id']}/registrations").status_code == 404, "an unlisted product is hidden"
    assert api.get(f"products/{draft['id']}/registrations", api.enterprise()).status_code == 404
    r = api.get(f"products/{draft['id']}/registrations", vendor)
    assert r.status_code == 200 and r.get_json()["total"] == 0
    for query in ("per_page=0", "per_page=101", "page=0", "page=abc", "per_page=-1"):
        r = api.get(f"products/{product['id']}/registrations?{query}")
        assert r.status_code == 422, (query, r.get_json())
    r = api.get(f"products/{product['id']}/registrations?page=2&per_page=1")
    assert r.status_code == 200 and r.get_json() == {"items": [], "total": 1, "page": 2, "per_page": 1}


def _draft_body() -> dict[str, Any]:
    from tests.certflow import product_body

    return product_body()


# -- 9. concurrency (PostgreSQL) ---------------------------------------------------------------------

N = 8


@pytest.mark.postgres
@pytest.mark.parametrize("round_", range(2))
def test_concurrent_second_signatures_file_distinct_gapless_numbers(app, api, round_):
    vendor = api.vendor()
    product = certify(api, vendor)
    contracts = []
    for _ in range(N):
        buyer = api.enterprise()
        r = api.post(f"offers/{bid(api, buyer, product)['id']}/accept", vendor)
        assert r.status_code == 201, r.get_json()
        sign(api, buyer, r.get_json()["id"])
        contracts.append(r.get_json()["id"])
    answers = release(app, [Call("POST", f"contracts/{cid}/signatures", vendor, {}, action=f"sign {cid}")
                            for cid in contracts])
    assert [a.status for a in answers] == [201] * N, [a.show() for a in answers]
    numbers = assert_gapless(app)
    assert len(numbers) == N + 1 and len(set(numbers)) == N + 1
    licences = of_type(listed(api, product["id"], vendor), "licence")
    assert sorted(r["contract_id"] for r in licences) == sorted(contracts)
    jwks = jwks_of(api)
    for reg in licences:
        full = registration(api, reg["number"])
        assert full["verification"] == {"signature_valid": True, "digest_matches": True}
        assert signature_valid(full, jwks) and digest_matches(full)


@pytest.mark.postgres
def test_concurrent_filings_in_separate_sessions_are_gapless(app, api):
    """The service called from N threads at once, each its own app context, session and connection;
    one of them takes its number and inserts, then rolls back: the others' N-1 licences and the
    vendor's initial are numbered 1..N, none lost and none twice."""
    import threading
    import time

    from certification import registrations
    from exchange import sequences

    args = _licence_args(app, api)
    barrier = threading.Barrier(N)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with app.app_context():
                db.session.execute(text("SELECT count(*) FROM registrations")).scalar_one()
                registrations.register_licence(db.session, **{**args, "contract_id": f"ctr_thread_{i}"})
                barrier.wait()
                if i == 0:  # numbered and inserted under the counter's row lock, then rolled back
                    sequences.run_at_commit(db.session)
                    time.sleep(0.3)
                    db.session.rollback()
                else:
                    db.session.commit()
                db.session.remove()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "a filing did not finish (a lock wait or a deadlock)"
    numbers = assert_gapless(app)
    assert len(numbers) == N  # the vendor's initial and N-1 licences
    assert sorted(c for _, c in _licences(app)) == sorted(f"ctr_thread_{i}" for i in range(1, N))
