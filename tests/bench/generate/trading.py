"""Procurements and trades for generated benchmark products (the last step of `python -m tests.bench.generate`).

One open procurement and one trade per ten generated, certified products (100k products: 10k of
each), added after the listings and certification steps. Buyers are twenty generated
enterprises across the five regions; every generated vendor and buyer gets one admin user whose
password is GENERATED_PASSWORD (the generator refuses to run in production).

A trade is made the way the API makes one, only in bulk: an accepted bid, the contract with its
gapless number (a reserved block per batch) and canonical digest, two platform attestations signed
by the exchange key, the trade, the confirmed manual payment and its ledger entry, then the
delivery. Every fifth trade is also accepted and settled (its settlement entry too); the rest wait
for the buyer's acceptance. Ledger entries go through `exchange.ledger.engine.post_entries`, the same
code as the services' `post_entry` (one writer), so the hash chain and the balances verify. Buyers
and sellers are in the same jurisdiction: every deal is lawful.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from exchange.canonical import sha256_hex
from exchange.db import utcnow
from exchange.identity.models import Organization, User
from exchange.identity.services import hash_password
from exchange.identity.states import OrgStatus
from exchange.ledger.engine import EntrySpec, Posting, post_entries
from exchange.ledger.models import EntryKind
from exchange.money import fee_for
from exchange.sequences import reserve
from exchange.signing import services as signing
from listings.models import Product
from listings.states import ProductStatus
from tests.bench.generate.listings import CITIES, CURRENCY_BY_REGION, DELIVERY, TOPICS
from trading import contracts, settlement
from trading.models import Contract, Offer, Payment, Procurement, Signature, Trade
from trading.states import ContractStatus, OfferStatus, ProcurementStatus, SignatureMethod, TradeStatus

PRODUCTS_PER_ROW = 10  # one procurement and one trade per ten generated products
SETTLED_EVERY = 5
BUYER_REGIONS = ("GD", "GD", "GD", "GD", "HK", "HK", "MO", "MO", "CN", "INTL") * 2
GENERATED_PASSWORD = "generated-bench-password"  # synthetic users of benchmark data only
GENERATED_EMAIL_DOMAIN = "generated.bench"
PRODUCT_PREFIX, PROCUREMENT_PREFIX, TRADE_PREFIX = "prd_gen", "prc_gen_", "trd_gen_"


def buyer_id(k: int) -> str:
    return f"org_genbuyer_{k:02d}"


def user_id_of(org_id: str) -> str:
    """The generated admin user of a generated organization."""
    return "usr_" + org_id.removeprefix("org_")


def _generated_products(conn: Any) -> int:
    return conn.execute(select(func.count()).select_from(Product).where(
        Product.id.startswith(PRODUCT_PREFIX, autoescape=True), Product.certificate_number.is_not(None))
    ).scalar_one()


def _count(conn: Any, model: Any, prefix: str) -> int:
    return conn.execute(select(func.count()).select_from(model).where(
        model.id.startswith(prefix, autoescape=True))).scalar_one()


def ensure_users(engine: Engine) -> int:
    """The generated buyers, and an admin user for every generated organization that has none."""
    now = utcnow()
    with engine.begin() as conn:
        have = set(conn.execute(select(Organization.id).where(
            Organization.id.in_([buyer_id(k) for k in range(len(BUYER_REGIONS))]))).scalars())
        buyers = [{"id": buyer_id(k), "name": f"基准采购方{k:02d} Bench Buyer {k:02d}", "type": "enterprise",
                   "region": region, "registration_number": f"GEN-BUYER-{k:02d}", "status": OrgStatus.VERIFIED,
                   "created_at": now - timedelta(days=400)}
                  for k, region in enumerate(BUYER_REGIONS) if buyer_id(k) not in have]
        if buyers:
            conn.execute(insert(Organization.__table__), buyers)
        orgs = conn.execute(
            select(Organization.id).where(Organization.id.startswith("org_gen", autoescape=True),
                                          ~Organization.id.in_(select(User.org_id)))
        ).scalars().all()
        if orgs:
            password_hash = hash_password(GENERATED_PASSWORD) if has_app_context() else "!"
            conn.execute(insert(User.__table__), [
                {"id": user_id_of(org), "org_id": org, "email": f"{org}@{GENERATED_EMAIL_DOMAIN}",
                 "name": f"Admin of {org}", "role": "admin", "password_hash": password_hash, "active": True,
                 "created_at": now - timedelta(days=400)} for org in orgs])
    return len(orgs)


def generate_procurements(engine: Engine, *, batch: int = 2000,
                          progress: Callable[[int, int], None] | None = None) -> int:
    """Open public procurements up to one per ten generated products; returns how many were added."""
    with engine.connect() as conn:
        target = _generated_products(conn) // PRODUCTS_PER_ROW
        have = _count(conn, Procurement, PROCUREMENT_PREFIX)
    now = utcnow()
    todo = list(range(have, target))
    for start in range(0, len(todo), batch):
        rows = [_procurement(i, now) for i in todo[start:start + batch]]
        with engine.begin() as conn:
            conn.execute(insert(Procurement.__table__), rows)
        if progress:
            progress(start + len(rows), len(todo))
    return len(todo)


def _procurement(i: int, now: Any) -> dict[str, Any]:
    rng = random.Random(f"procurement-{i}")
    category, topic_zh, topic_en, extra = TOPICS[rng.randrange(len(TOPICS))]
    city_zh, city_en, _ = CITIES[rng.randrange(len(CITIES))]
    k = i % len(BUYER_REGIONS)
    buyer = buyer_id(k)
    return {
        "id": f"{PROCUREMENT_PREFIX}{i:08d}", "buyer_org_id": buyer, "created_by": user_id_of(buyer),
        "title": f"采购{city_zh}{topic_zh} {city_en} {topic_en} wanted",
        "description": f"用于{rng.choice(('城市规划', '风险控制', '运营优化', '学术研究'))}。 "
                       f"We need {topic_en} data for {city_en}.",
        "category": category, "keywords": [topic_zh, topic_en, city_zh, rng.choice(extra)],
        "budget_max_amount": rng.randint(10, 5000) * 10_000,
        "budget_currency": CURRENCY_BY_REGION.get(BUYER_REGIONS[k], "CNY"),
        "delivery_mode": rng.choice((*DELIVERY, None)), "deadline": now + timedelta(days=rng.randint(60, 365)),
        "visibility": "public", "invited_org_ids": [], "status": ProcurementStatus.OPEN, "status_reason": None,
        "created_at": now - timedelta(minutes=rng.randrange(60 * 24 * 60)), "updated_at": now,
    }


def generate_trades(engine: Engine, *, batch: int = 500, progress: Callable[[int, int], None] | None = None) -> int:
    """Trades up to one per ten generated products (delivered; every fifth settled); returns how many."""
    with engine.connect() as conn:
        target = _generated_products(conn) // PRODUCTS_PER_ROW
        have = _count(conn, Trade, TRADE_PREFIX)
        if have >= target:
            return 0
        product_ids = conn.execute(select(Product.id).where(
            Product.id.startswith(PRODUCT_PREFIX, autoescape=True), Product.status == ProductStatus.LISTED,
            Product.certificate_number.is_not(None)).order_by(Product.id)).scalars().all()
    buyers: dict[str, list[str]] = {}
    for k, region in enumerate(BUYER_REGIONS):
        buyers.setdefault(region, []).append(buyer_id(k))
    bps = int(current_app.config["FEE_BPS"]) if has_app_context() else 200
    todo = list(range(have, target))
    with Session(engine) as session:
        sign = signing.signer(session)
        session.commit()
    for start in range(0, len(todo), batch):
        indices = todo[start:start + batch]
        picks = {i: product_ids[random.Random(f"trade-{i}").randrange(len(product_ids))] for i in indices}
        with Session(engine) as session, session.begin():
            _trade_batch(session, indices, picks, buyers, bps, sign)
        if progress:
            progress(start + len(indices), len(todo))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("procurements", "offers", "contracts", "contract_signatures", "trades", "payments",
                          "ledger_accounts", "ledger_entries", "ledger_postings"):
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    return len(todo)


def _trade_batch(session: Session, indices: list[int], picks: dict[int, str], buyers: dict[str, list[str]],
                 bps: int, sign: Callable[[dict[str, Any]], tuple[str, str]]) -> None:
    from certification.models import Certificate

    products = {p.id: p for p in session.execute(select(Product).where(Product.id.in_(set(picks.values())))).scalars()}
    certs = {c.number: c for c in session.execute(
        select(Certificate).where(Certificate.number.in_({p.certificate_number for p in products.values()}))).scalars()}
    now = utcnow()
    first = reserve(session, "contract", now.year, len(indices))
    offers, contract_rows, signatures, trades, payments = [], [], [], [], []
    money: list[tuple[Trade, str]] = []
    for n, i in enumerate(indices):
        rng = random.Random(f"trade-party-{i}")
        product = products[picks[i]]
        cert = certs[product.certificate_number]
        buyer = rng.choice(buyers[product.origin_region])
        seller = product.owner_org_id
        made = now - timedelta(hours=2)
        terms = {"scope": "commercial", "duration_days": 365, "delivery_mode": product.delivery_mode}
        suffix = f"{i:08d}"
        offer = {"id": f"ofr_gen_{suffix}", "thread_id": f"ofr_gen_{suffix}", "parent_id": None,
                 "product_id": product.id, "product_version": product.listed_version, "procurement_id": None,
                 "from_org_id": buyer, "to_org_id": seller, "buyer_org_id": buyer, "seller_org_id": seller,
                 "created_by": user_id_of(buyer), "amount": product.price_amount, "currency": product.price_currency,
                 "terms": terms, "message": None, "expires_at": None, "status": OfferStatus.ACCEPTED,
                 "decided_at": made, "decided_by": user_id_of(seller), "created_at": made}
        contract = Contract(
            id=f"ctr_gen_{suffix}", number=f"DFC-{now.year}-{first + n:06d}", offer_id=offer["id"],
            procurement_id=None, buyer_org_id=buyer, seller_org_id=seller, product_id=product.id,
            product_version=cert.product_version, certificate_number=cert.number, category=product.category,
            amount=product.price_amount, currency=product.price_currency, terms=terms,
            status=ContractStatus.SIGNED, signed_at=made, cancelled_at=None, on_site=False, fair_id=None,
            created_at=made, digest="")
        contract.digest = sha256_hex(contracts.digest_payload(contract))
        contract_rows.append({c.name: getattr(contract, c.name) for c in Contract.__table__.columns})
        for org in (buyer, seller):
            sig = Signature(contract_id=contract.id, org_id=org, user_id=user_id_of(org), signed_at=made,
                            on_site=False, fair_id=None, stall_code=None, method=SignatureMethod.PLATFORM,
                            client_addr=None, user_agent=None)
            sig.key_id, sig.signature = sign(contracts.attestation_payload(contract, sig))
            signatures.append({c.name: getattr(sig, c.name) for c in Signature.__table__.columns if c.name != "id"})
        settled = i % SETTLED_EVERY == 0
        trade = Trade(
            id=f"{TRADE_PREFIX}{suffix}", contract_id=contract.id, buyer_org_id=buyer, seller_org_id=seller,
            product_id=product.id, category=product.category, amount=contract.amount,
            fee=fee_for(contract.amount, bps), fee_bps=bps, refunded_amount=0, currency=contract.currency,
            status=TradeStatus.SETTLED if settled else TradeStatus.DELIVERED, on_site=False, fair_id=None,
            created_at=made, updated_at=now, paid_amount=contract.amount, escrowed_at=made,
            delivery_reference=f"generated delivery {suffix}", delivery_sha256=sha256_hex({"trade": suffix}),
            delivered_at=now, settled_at=now if settled else None, settlement="accepted" if settled else None,
            drawn_amount=0, delivery_evidence="declared", acceptance_started_at=now, period_index=1)
        trades.append({c.name: getattr(trade, c.name) for c in Trade.__table__.columns})
        payment_id = f"pay_gen_{suffix}"
        payments.append({"id": payment_id, "trade_id": trade.id, "provider": "manual", "status": "succeeded",
                         "amount": trade.amount, "currency": trade.currency, "provider_ref": None,
                         "client_secret": None, "created_by": user_id_of(buyer), "confirmed_at": made,
                         "confirmed_by": None, "created_at": made})
        offers.append(offer)
        money.append((trade, payment_id))
    for model, rows in ((Offer, offers), (Contract, contract_rows), (Signature, signatures), (Trade, trades),
                        (Payment, payments)):
        session.execute(insert(model.__table__), rows)
    # The same postings as the API's payment confirmation and acceptance (trading.payments, trading.settlement).
    entries = []
    for trade, payment_id in money:
        entries.append(EntrySpec(EntryKind.PAYMENT, [Posting(settlement._funding(trade), -trade.amount),
                                                     Posting(settlement._escrow(trade), trade.amount)],
                                 trade.id, {"payment_id": payment_id, "provider": "manual"}))
        if trade.status == TradeStatus.SETTLED:
            entries.append(EntrySpec(EntryKind.SETTLEMENT, [
                Posting(settlement._escrow(trade), -trade.amount),
                Posting(settlement._payable(trade.seller_org_id, trade.currency), trade.amount - trade.fee),
                *([Posting(settlement._fees(trade.currency), trade.fee)] if trade.fee else []),
            ], trade.id, {"settlement": "accepted", "fee_bps": trade.fee_bps}))
    post_entries(session, entries)
