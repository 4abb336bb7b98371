"""Demo trading: open procurements, a negotiation in progress, contracts signed on site at the live
fair and carried through payment, delivery and settlement, one disputed trade for the operator, and a
monthly subscription in its second period (period 1 paid and settled, period 2 paid and running).
Idempotent: nothing is added once the demo buyers have contracts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from certification import whitelist
from certification.whitelist import check_transfer
from exchange.db import utcnow
from exchange.identity.models import Organization, User
from exchange.ledger.engine import balance
from exchange.principal import Principal
from listings.models import Fair, Product, ProductVersion, Stall
from listings.states import ProductStatus
from trading import contracts, dossiers, offers, payments, procurements, rules, settlement, subscriptions
from trading.models import Contract, Subscription, Trade

SHA = "9f2c4e1a7b3d5f60182a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d"


def _admin(session: Session, org: Organization) -> Principal:
    user = session.execute(
        select(User).where(User.org_id == org.id, User.role == "admin").order_by(User.created_at)
    ).scalars().first()
    return Principal.of(user)


def _listed(session: Session, owner: Organization) -> list[tuple[Product, ProductVersion]]:
    return list(session.execute(
        select(Product, ProductVersion)
        .join(ProductVersion, (ProductVersion.product_id == Product.id)
              & (ProductVersion.version == Product.listed_version))
        .where(Product.owner_org_id == owner.id, Product.status == ProductStatus.LISTED)
        .order_by(Product.created_at, Product.id)
    ).all())


DEMO_CALLS = 10_000


def _terms(version: ProductVersion) -> dict[str, Any]:
    terms = {"scope": version.license.get("scope", "commercial"),
             "duration_days": version.license.get("duration_days", 365), "delivery_mode": version.delivery_mode}
    if version.price.get("model") == rules.PER_CALL:
        terms["calls"] = DEMO_CALLS
    return terms


def _price(version: ProductVersion, discount_pct: int = 0) -> dict[str, Any]:
    amount = version.price["amount"] * (100 - discount_pct) // 100
    return {"amount": max(amount, 1), "currency": version.price["currency"]}


def _deal(session: Session, *, buyer: Principal, vendor: Principal, product: Product, version: ProductVersion,
          fair: Fair | None, stall: Stall | None, discount_pct: int) -> Contract:
    offer = offers.make(session, data={"product_id": product.id, "price": _price(version, discount_pct),
                                       "terms": _terms(version),
                                       "message": "现场洽谈 negotiated at the fair" if fair else None},
                        actor=buyer)
    contract = offers.accept(session, offer_id=offer.id, actor=vendor)
    on_site = {"on_site": True, "fair_id": fair.id, "stall_code": stall.code} if fair and stall else {}
    contracts.sign(session, contract_id=contract.id, data=on_site, actor=buyer, client_addr="127.0.0.1",
                   user_agent="datafair-demo")
    contracts.sign(session, contract_id=contract.id, data=on_site, actor=vendor, client_addr="127.0.0.1",
                   user_agent="datafair-demo")
    return contract


@contextmanager
def _days_ago(days: float) -> Iterator[None]:
    """The domain clock (exchange.db.utcnow) set `days` before the real time, restored afterwards: the
    demo's subscription is signed and paid in the past through the same services as a live one."""
    config = current_app.config
    before = config.get("NOW_OFFSET_S", 0)
    config["NOW_OFFSET_S"] = int(before or 0) - int(days * 86_400)
    try:
        yield
    finally:
        config["NOW_OFFSET_S"] = before


QIANHAI_TITLE = "前海跨境电商收件人地址标准化数据 Qianhai Cross-border E-commerce Consignee Addresses"
HENGQIN_TITLE = "横琴居民用电与充电行为数据 Hengqin Household Electricity and Charging Behaviour"
QIANHAI_FILING = "粤网信备〔2026〕前海-0012"


def _cross_border_deals(session: Session, orgs: dict[str, Organization], *, operator: Principal) -> int:
    """The Bay Area compliance deals (API.md Compliance): personal data leaving the mainland under the
    GBA standard contract — a Shenzhen–Hong Kong deal from Qianhai (filed, paid, delivering) and a
    Zhuhai–Macao deal from Hengqin (awaiting its filing, due in 10 working days). The operator's
    white-list entries make both lawful. Returns the dossiers made."""
    made = 0
    for vendor_key, buyer_key, title, category, to_region in (
            ("sz_port", "hk_logistics", QIANHAI_TITLE, "commerce", "HK"),
            ("zh_energy", "mo_smartcity", HENGQIN_TITLE, "energy", "MO")):
        vendor_org, buyer_org = orgs.get(vendor_key), orgs.get(buyer_key)
        if vendor_org is None or buyer_org is None:
            continue
        found = next(((p, v) for p, v in _listed(session, vendor_org) if v.title == title), None)
        if found is None:
            continue
        whitelist.create(session, category=category, from_region="GD", to_region=to_region,
                         max_classification="general", personal_info_allowed=True,
                         expires_at=utcnow() + timedelta(days=365), recipient_org_id=buyer_org.id,
                         note="大湾区个人信息跨境标准合同 GBA standard contract (demo)", actor=operator)
        product, version = found
        buyer, vendor = _admin(session, buyer_org), _admin(session, vendor_org)
        contract = _deal(session, buyer=buyer, vendor=vendor, product=product, version=version, fair=None,
                         stall=None, discount_pct=0)
        made += 1
        if vendor_key == "sz_port":
            dossiers.file(session, contract_id=contract.id, data={"reference": QIANHAI_FILING}, actor=vendor)
            trade = contracts.trade_of(session, contract)
            payment = payments.create_payment(session, trade_id=trade.id, provider="manual", actor=buyer)
            payments.confirm_payment(session, payment_id=payment.id, actor=operator)
    return made


SUBSCRIPTION_AGE_DAYS = 40  # the anchor: period 1 is over, period 2 is running
SUBSCRIPTION_PERIODS = 6


def _subscription(session: Session, orgs: dict[str, Organization], *,
                  operator: Principal) -> Subscription | None:
    """The Dongguan retailer's six-month subscription to the Guangzhou real-time traffic feed (a monthly
    `subscription` product), signed SUBSCRIPTION_AGE_DAYS ago: period 1 paid, delivered and settled,
    period 2 created by the renewal at its `renews_at`, paid before it began and now running (escrowed).
    The renewal is the sweep's own step (subscriptions.renew), run on the clock of its due time."""
    vendor_org, buyer_org = orgs["gz_transport"], orgs["dg_retail"]
    found = next(((p, v) for p, v in _listed(session, vendor_org)
                  if v.price.get("model") == subscriptions.SUBSCRIPTION and v.price.get("period") == "month"), None)
    if found is None or not check_transfer(session, product=found[1], buyer_org=buyer_org).allowed:
        return None
    product, version = found
    buyer, vendor = _admin(session, buyer_org), _admin(session, vendor_org)
    age = SUBSCRIPTION_AGE_DAYS
    with _days_ago(age):
        offer = offers.make(session, data={"product_id": product.id, "price": _price(version),
                                           "terms": {**_terms(version), "periods": SUBSCRIPTION_PERIODS,
                                                     "auto_renew": False},
                                           "message": "按月订阅半年 six months, month by month"}, actor=buyer)
        contract = offers.accept(session, offer_id=offer.id, actor=vendor)
        for who in (buyer, vendor):
            contracts.sign(session, contract_id=contract.id, data={}, actor=who, client_addr="127.0.0.1",
                           user_agent="datafair-demo")
        first = contracts.trade_of(session, contract)
        payment = payments.create_payment(session, trade_id=first.id, provider="manual", actor=buyer)
        payments.confirm_payment(session, payment_id=payment.id, actor=operator)
        settlement.deliver(session, trade_id=first.id, reference=f"api://demo/{first.id}", sha256=SHA, actor=vendor)
    with _days_ago(age - 3):
        settlement.accept(session, trade_id=first.id, actor=buyer)
    sub = subscriptions.get(session, contract.id)
    # The renewal on its due day, then the buyer pays the new period a day later (before it begins).
    due_ago = (utcnow() - sub.renews_at).total_seconds() / 86_400
    with _days_ago(due_ago):
        subscriptions.renew(session, contract.id, utcnow())
    second = session.execute(select(Trade).where(Trade.contract_id == contract.id, Trade.period_index == 2)
                             ).scalar_one()
    with _days_ago(due_ago - 1):
        payment = payments.create_payment(session, trade_id=second.id, provider="manual", actor=buyer)
        payments.confirm_payment(session, payment_id=payment.id, actor=operator)
    session.flush()
    return sub


def seed(session: Session, orgs: dict[str, Organization]) -> dict[str, int]:
    """Seed the demo's trading floor; returns counts of what was made."""
    buyers = {k: orgs[k] for k in ("fs_manufacturing", "hk_logistics", "dg_retail")}
    if session.execute(select(Contract.id).where(Contract.buyer_org_id.in_([o.id for o in buyers.values()]))
                       ).first() is not None:
        return {}
    operator = _admin(session, orgs["operator"])
    fs, hk, dg = (_admin(session, buyers[k]) for k in ("fs_manufacturing", "hk_logistics", "dg_retail"))
    now = utcnow()
    made = {"procurements": 0, "contracts": 0, "settled": 0, "disputed": 0}
    for buyer, body in (
        (fs, {"title": "采购实时交通与物流数据 Real-time traffic and logistics data wanted",
              "description": "用于佛山工厂物流调度优化 For logistics scheduling of Foshan plants.",
              "category": "transport", "keywords": ["交通", "traffic", "物流"],
              "budget": {"max_amount": 2_000_000, "currency": "CNY"}, "delivery_mode": "api"}),
        (hk, {"title": "Port throughput data for Hong Kong–Shenzhen routing 港深航线港口吞吐数据",
              "description": "Container throughput of Shenzhen ports for route planning.",
              "category": "transport", "keywords": ["港口", "port", "container"],
              "budget": {"max_amount": 3_000_000, "currency": "CNY"}, "delivery_mode": None}),
        (dg, {"title": "零售客流与消费数据 Retail footfall and spending data",
              "description": "东莞门店选址 Store siting in Dongguan.", "category": "commerce",
              "keywords": ["零售", "消费", "retail"], "budget": {"max_amount": 800_000, "currency": "CNY"},
              "delivery_mode": "file"}),
    ):
        procurements.create(session, **body, deadline=now + timedelta(days=45), visibility="public", actor=buyer)
        made["procurements"] += 1
    fair = session.execute(select(Fair).where(Fair.starts_at <= now, Fair.ends_at > now)
                           .order_by(Fair.starts_at.desc())).scalars().first()
    deals: list[Contract] = []
    plan = (("gz_transport", fs, 10), ("sz_port", hk, 5), ("hk_finance", hk, 8), ("gz_transport", dg, 0))
    for vendor_key, buyer, discount in plan:
        vendor_org = orgs[vendor_key]
        listed = _listed(session, vendor_org)
        if not listed:
            continue
        product, version = listed[len(deals) % len(listed)]
        stall = session.execute(select(Stall).where(Stall.fair_id == fair.id, Stall.org_id == vendor_org.id)
                                ).scalars().first() if fair else None
        deals.append(_deal(session, buyer=buyer, vendor=_admin(session, vendor_org), product=product,
                           version=version, fair=fair, stall=stall, discount_pct=discount))
        made["contracts"] += 1
    # Money: the first two settle, the third is disputed, the fourth awaits payment.
    for i, contract in enumerate(deals[:3]):
        trade = contracts.trade_of(session, contract)
        buyer = _admin(session, session.get(Organization, trade.buyer_org_id))
        seller = _admin(session, session.get(Organization, trade.seller_org_id))
        payment = payments.create_payment(session, trade_id=trade.id, provider="manual", actor=buyer)
        payments.confirm_payment(session, payment_id=payment.id, actor=operator)
        settlement.deliver(session, trade_id=trade.id, reference=f"sftp://demo/{trade.id}.zip", sha256=SHA,
                           actor=seller)
        if i < 2 and settlement.is_per_call(session, trade):
            # No acceptance: a quarter of the calls used, then the entitlement ends.
            settlement.draw_usage(session, trade_id=trade.id, amount=trade.amount // DEMO_CALLS * (DEMO_CALLS // 4),
                                  period="demo")
            settlement.end_per_call(session, trade_id=trade.id)
            made["settled"] += 1
        elif i < 2:
            settlement.accept(session, trade_id=trade.id, actor=buyer)
            made["settled"] += 1
        else:
            settlement.open_dispute(session, trade_id=trade.id, actor=buyer,
                                    reason="交付数据缺少10月份记录 October records missing from the delivery")
            made["disputed"] += 1
    # The operators' queues: the fourth deal's bank transfer awaits confirmation; one seller is paid out.
    if len(deals) > 3:
        trade = contracts.trade_of(session, deals[3])
        payments.create_payment(session, trade_id=trade.id, provider="manual",
                                actor=_admin(session, session.get(Organization, trade.buyer_org_id)))
    if deals:
        seller_id = contracts.trade_of(session, deals[0]).seller_org_id
        currency = contracts.trade_of(session, deals[0]).currency
        payable = balance(session, owner_id=seller_id, purpose="seller_payable", currency=currency)
        if payable > 1:
            settlement.payout(session, org_id=seller_id, currency=currency, amount=payable // 2, provider="manual",
                              actor=operator)
    if _subscription(session, orgs, operator=operator):
        made["subscriptions"] = 1
    made["dossiers"] = _cross_border_deals(session, orgs, operator=operator)
    # A negotiation in progress: a bid and a counter-offer awaiting the buyer.
    listed = _listed(session, orgs["mo_tourism"]) or _listed(session, orgs["hk_finance"])
    if listed:
        product, version = listed[0]
        seller = _admin(session, session.get(Organization, product.owner_org_id))
        lawful = [b for b in (hk, dg) if check_transfer(session, product=version,
                                                         buyer_org=session.get(Organization, b.org_id)).allowed]
        if lawful:
            bid = offers.make(session, data={"product_id": product.id, "price": _price(version, 20),
                                             "terms": _terms(version), "message": "首次报价 opening bid"},
                              actor=lawful[0])
            offers.counter(session, offer_id=bid.id, price=_price(version, 10), terms=_terms(version),
                           message="可以给九折 we can do 10% off", expires_at=now + timedelta(days=7), actor=seller)
    session.flush()
    return made
