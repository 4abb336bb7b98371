"""Demo delivery: the Guangzhou metro OD matrix (a `file` product) gets a published release with a
real CSV, a Foshan manufacturer buys it (its entitlement active, the trade delivered by the release),
and the access log shows a link issued and a download. Idempotent: nothing is added once the product
has a release.

The gateway: the real-time traffic product (`api`, bought by the Foshan manufacturer in trading's
demo) gets the development server's own demo upstream (delivery.demo_upstream). No API key is made:
a key is shown once, so the README's tour creates one itself.

The sandbox: the Hong Kong SME credit product (`privacy_computing`) gets the card baskets behind it as a
release (`retail.csv`, synthetic, with shoppers' ids and phones), a policy that blocks those and sets
a privacy budget, and a buyer: the Hong Kong logistics group. No query is run: the README's tour runs
the first one (which delivers the trade)."""

from __future__ import annotations

import csv
import io
import os
import random
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery import demo_upstream, downloads, gateway, releases, sandbox
from delivery.models import ApiUpstream, Entitlement, Release
from delivery.schemas import SandboxPolicySetSchema
from exchange.errors import DomainError
from exchange.identity.models import Organization, User
from exchange.principal import Principal
from listings.models import Product, ProductVersion
from listings.states import ProductStatus
from trading import contracts, offers, payments
from trading.models import Trade

FILE_NAME = "metro-od-2026-11-02.csv"
STATIONS = ("体育西路", "珠江新城", "天河客运站", "五山", "公园前", "客村", "嘉禾望岗", "广州南站")
LOCAL_BASE_URL = "http://127.0.0.1:8000"
# Where the demo upstream is served: `make run`'s own server unless told otherwise (the README tour's test
# runs a server on another port).
DEMO_UPSTREAM_URL = LOCAL_BASE_URL + demo_upstream.PREFIX


def metro_csv() -> bytes:
    """One day of hourly origin-destination trips between eight stations (deterministic)."""
    out = io.StringIO()
    out.write("hour,origin,destination,trips\n")
    day = datetime(2026, 11, 2)
    for h in range(6, 24):
        hour = (day + timedelta(hours=h)).strftime("%Y-%m-%dT%H:00:00Z")
        for i, origin in enumerate(STATIONS):
            for j, destination in enumerate(STATIONS):
                if i != j:
                    # A morning and an evening peak, varying by station pair.
                    peak = 3 if h in (8, 18) else 2 if h in (7, 9, 17, 19) else 1
                    out.write(f"{hour},{origin},{destination},{10 + peak * ((i * 37 + j * 11 + h * 7) % 400)}\n")
    return out.getvalue().encode()


# The privacy-computing demo: card baskets at small retailers of the Greater Bay Area (synthetic). Each
# person (customer_id, with a phone) makes 1..RETAIL_ROWS_PER_PERSON baskets, so a policy's rows_per_person
# can say the truth; amounts and item counts stay inside RETAIL_BOUNDS.
RETAIL_FILE = "retail.csv"
RETAIL_COLUMNS = ("city", "district", "month", "category", "store_id", "customer_id", "phone", "age_band",
                  "basket_amount_cents", "items")
RETAIL_ROWS_PER_PERSON = 3
RETAIL_BOUNDS = {"basket_amount_cents": (0, 200_000), "items": (1, 30)}
# city: (weight, code, districts, phone format). The nine mainland cities of the Bay Area, Hong Kong, Macao.
_CN, _HK, _MO = "+86 100 {:04d} {:04d}", "+852 0{:03d} {:04d}", "+853 0{:03d} {:04d}"
RETAIL_CITIES = {
    "guangzhou": (18, "GZ", ("tianhe", "yuexiu", "haizhu"), _CN),
    "shenzhen": (18, "SZ", ("futian", "nanshan", "luohu"), _CN),
    "foshan": (10, "FS", ("chancheng", "nanhai", "shunde"), _CN),
    "dongguan": (10, "DG", ("nancheng", "dongcheng", "changan"), _CN),
    "hong_kong": (10, "HK", ("central_and_western", "wan_chai", "yau_tsim_mong"), _HK),
    "huizhou": (6, "HZ", ("huicheng", "huiyang", "boluo"), _CN),
    "zhongshan": (6, "ZS", ("shiqi", "dongqu", "xiaolan"), _CN),
    "jiangmen": (5, "JM", ("pengjiang", "xinhui", "taishan"), _CN),
    "zhuhai": (5, "ZH", ("xiangzhou", "jinwan", "doumen"), _CN),
    "zhaoqing": (3, "ZQ", ("duanzhou", "dinghu", "gaoyao"), _CN),
    "macao": (3, "MO", ("se", "santo_antonio", "taipa"), _MO),
}
# category: (weight, lowest and highest basket in cents, a typical item's price in cents)
RETAIL_CATEGORIES = {"grocery": (30, 2_000, 40_000, 1_500), "dining": (25, 3_000, 60_000, 2_500),
                     "pharmacy": (12, 1_500, 50_000, 3_000), "cosmetics": (12, 8_000, 120_000, 9_000),
                     "apparel": (13, 10_000, 150_000, 16_000), "electronics": (8, 20_000, 200_000, 45_000)}
RETAIL_AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
RETAIL_MONTHS = tuple(f"2026-{m:02d}" for m in range(1, 11))
RETAIL_PEOPLE = 1_600


def retail_csv() -> bytes:
    """Baskets of RETAIL_PEOPLE synthetic shoppers (a few thousand rows, RETAIL_COLUMNS), the same bytes
    on every call. Phone numbers are invalid by construction (+86 100..., +852 0..., +853 0...)."""
    rng = random.Random(2026)  # a fixed seed: the same file on every call
    cities = list(RETAIL_CITIES)
    categories = list(RETAIL_CATEGORIES)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RETAIL_COLUMNS)
    for person in range(1, RETAIL_PEOPLE + 1):
        home = rng.choices(cities, weights=[RETAIL_CITIES[c][0] for c in cities])[0]
        _, code, districts, phone_format = RETAIL_CITIES[home]
        phone = phone_format.format(rng.randrange(1_000), rng.randrange(10_000))
        age_band = rng.choices(RETAIL_AGE_BANDS, weights=(12, 26, 24, 18, 12, 8))[0]
        for _ in range(rng.randint(1, RETAIL_ROWS_PER_PERSON)):
            district = rng.choice(districts)
            store = f"{code}-{districts.index(district) + 1}{rng.randint(1, 3):02d}"
            category = rng.choices(categories, weights=[RETAIL_CATEGORIES[c][0] for c in categories])[0]
            _, low, high, unit = RETAIL_CATEGORIES[category]
            # Most baskets are small: the lower of two draws.
            amount = min(rng.randint(low, high), rng.randint(low, high))
            items = min(RETAIL_BOUNDS["items"][1], max(1, round(amount / unit * rng.uniform(0.7, 1.3))))
            writer.writerow((home, district, rng.choice(RETAIL_MONTHS), category, store, f"CU-{person:06d}",
                             phone, age_band, amount, items))
    return out.getvalue().encode()


def _admin(session: Session, org: Organization) -> Principal:
    user = session.execute(select(User).where(User.org_id == org.id, User.role == "admin")
                           .order_by(User.created_at)).scalars().first()
    return Principal.of(user)


def _listed_product(session: Session, owner: Organization, mode: str) -> tuple[Product, ProductVersion] | None:
    return session.execute(
        select(Product, ProductVersion)
        .join(ProductVersion, (ProductVersion.product_id == Product.id)
              & (ProductVersion.version == Product.listed_version))
        .where(Product.owner_org_id == owner.id, Product.status == ProductStatus.LISTED,
               Product.delivery_mode == mode)
        .order_by(Product.created_at, Product.id)).first()


def _buy(session: Session, *, product: Product, version: ProductVersion, buyer: Principal, vendor: Principal,
         operator: Principal, message: str) -> Trade:
    """The buyer's deal: an offer at the list price, accepted, signed by both, paid by bank transfer
    (the escrow creates the entitlement)."""
    terms = {"scope": version.license.get("scope", "commercial"),
             "duration_days": version.license.get("duration_days", 365), "delivery_mode": version.delivery_mode}
    price = {"amount": version.price["amount"], "currency": version.price["currency"]}
    offer = offers.make(session, data={"product_id": product.id, "price": price, "terms": terms, "message": message},
                        actor=buyer)
    contract = offers.accept(session, offer_id=offer.id, actor=vendor)
    for who in (buyer, vendor):
        contracts.sign(session, contract_id=contract.id, data={}, actor=who, client_addr="127.0.0.1",
                       user_agent="datafair-demo")
    trade = contracts.trade_of(session, contract)
    payment = payments.create_payment(session, trade_id=trade.id, provider="manual", actor=buyer)
    payments.confirm_payment(session, payment_id=payment.id, actor=operator)
    return trade


def seed(session: Session, orgs: dict[str, Organization]) -> dict[str, int]:
    """Seed the demo's delivery (the file, the gateway, the sandbox); returns counts of what was made."""
    return {**seed_files(session, orgs), **seed_gateway(session, orgs), **seed_sandbox(session, orgs)}


def seed_files(session: Session, orgs: dict[str, Organization]) -> dict[str, int]:
    found = _listed_product(session, orgs["gz_transport"], "file")
    if found is None:
        return {}
    product, version = found
    if session.execute(select(Release.id).where(Release.product_id == product.id)).first() is not None:
        return {}
    vendor, buyer = _admin(session, orgs["gz_transport"]), _admin(session, orgs["fs_manufacturing"])
    operator = _admin(session, orgs["operator"])
    release = releases.create(session, product_id=product.id, label="2026-11-02",
                              notes="一天的分时站间OD矩阵 One day of hourly station-to-station trips.", actor=vendor)
    data = metro_csv()
    # The demo's storage is the local filesystem: writing here, inside the seeding transaction, is a
    # local file write, not a network call.
    stored = releases.storage().put_stream(io.BytesIO(data).read, limit=len(data))
    releases.record_file(session, release=release, name=FILE_NAME, stored=stored, actor=vendor)
    releases.publish(session, release_id=release.id, actor=vendor)
    trade = _buy(session, product=product, version=version, buyer=buyer, vendor=vendor, operator=operator,
                 message="按月更新的OD数据 for our shuttle-bus planning")
    # The escrow created the entitlement and the published release delivered the trade; the buyer
    # has fetched the file once.
    ent = session.execute(select(Entitlement).where(Entitlement.trade_id == trade.id)).scalar_one()
    link = downloads.issue_link(session, entitlement_id=ent.id, release_id=release.id, file=FILE_NAME, actor=buyer,
                                base_url=LOCAL_BASE_URL)
    downloads.open_download(session, token=link["url"].rsplit("/", 1)[1], byte_range=None)
    session.flush()
    return {"releases": 1, "entitlements": 1, "downloads": 1}


def _served_upstream() -> str:
    """The demo upstream of the server `make run` starts: on DATAFAIR_BIND's port when it names one."""
    host, _, port = os.environ.get("DATAFAIR_BIND", "").rpartition(":")
    if not port.isdigit() or host.startswith("unix"):
        return DEMO_UPSTREAM_URL
    host = "127.0.0.1" if host in ("", "0.0.0.0", "[::]") else host  # noqa: S104 - a bind, not a connect
    return f"http://{host}:{port}{demo_upstream.PREFIX}"


def seed_gateway(session: Session, orgs: dict[str, Organization]) -> dict[str, int]:
    """The real-time traffic product's upstream: the demo upstream (`DATAFAIR_DEMO_UPSTREAM_URL`, default
    this machine's port 8000), with the vendor's header. Nothing when it is set already, or when the
    address is refused: a loopback upstream needs DATAFAIR_ALLOW_PRIVATE_URLS=1 (`make run` sets it)."""
    # The product the Foshan manufacturer bought from the vendor (trading's demo), so the tour's key works.
    product_id = session.execute(
        select(Entitlement.product_id).where(Entitlement.buyer_org_id == orgs["fs_manufacturing"].id,
                                             Entitlement.seller_org_id == orgs["gz_transport"].id,
                                             Entitlement.delivery_mode == "api")
        .order_by(Entitlement.created_at)).scalars().first()
    if product_id is None or session.get(ApiUpstream, product_id) is not None:
        return {}
    base_url = os.environ.get("DATAFAIR_DEMO_UPSTREAM_URL") or _served_upstream()
    if current_app.config["DATAFAIR_ENV"] != "development" and base_url == _served_upstream():
        return {}  # only a development server serves the demo upstream
    try:
        # The address is checked before anything is written: a refusal leaves the session as it was.
        gateway.set_upstream(session, product_id=product_id, base_url=base_url,
                             auth_header={"name": demo_upstream.HEADER, "value": demo_upstream.VENDOR_KEY},
                             timeout_ms=5000, actor=_admin(session, orgs["gz_transport"]))
    except DomainError:
        return {}
    return {"api_upstreams": 1}


# The sandbox policy of the demo's privacy-computing product: shoppers are people, so a budget.
RETAIL_POLICY = {"min_group_size": 10, "blocked_columns": ["customer_id", "phone"],
                 "allowed_aggregates": ["count", "count_distinct", "sum", "avg"], "max_groups": 1000,
                 "epsilon_budget": 10.0, "bounds": {k: list(v) for k, v in RETAIL_BOUNDS.items()},
                 "rows_per_person": RETAIL_ROWS_PER_PERSON}


def seed_sandbox(session: Session, orgs: dict[str, Organization]) -> dict[str, int]:
    """The privacy-computing demo: the Hong Kong vendor's listed `privacy_computing` product gets a
    release of `retail.csv` (retail_csv()) and a sandbox policy with an epsilon budget; the Hong Kong
    logistics group buys it (same region: nothing crosses a border). Nothing once it has a release."""
    found = _listed_product(session, orgs["hk_finance"], "privacy_computing")
    if found is None:
        return {}
    product, version = found
    if session.execute(select(Release.id).where(Release.product_id == product.id)).first() is not None:
        return {}
    vendor, buyer = _admin(session, orgs["hk_finance"]), _admin(session, orgs["hk_logistics"])
    operator = _admin(session, orgs["operator"])
    # The demo obeys the API's rules too.
    sandbox.set_policy(session, product_id=product.id, policy=SandboxPolicySetSchema().load(RETAIL_POLICY),
                       actor=vendor)
    release = releases.create(session, product_id=product.id, label="2026-10",
                              notes="大灣區中小零售商戶刷卡交易（合成數據）Card baskets at small retailers of the "
                                    "Greater Bay Area, January to October 2026 (synthetic); amounts in CNY cents.",
                              actor=vendor)
    data = retail_csv()
    stored = releases.storage().put_stream(io.BytesIO(data).read, limit=len(data))  # a local write (see above)
    releases.record_file(session, release=release, name=RETAIL_FILE, stored=stored, actor=vendor)
    releases.publish(session, release_id=release.id, actor=vendor)
    _buy(session, product=product, version=version, buyer=buyer, vendor=vendor, operator=operator,
         message="用於港深零售配送選址 for siting our Hong Kong-Shenzhen retail deliveries")
    session.flush()
    return {"sandbox_releases": 1, "sandbox_policies": 1, "entitlements": 1}
