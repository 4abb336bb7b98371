"""Synthetic bilingual listed products for benchmarks (the first step of `python -m tests.bench.generate`).

Deterministic per seed: the same seed gives the same vendors, ids, texts, prices and times. Rows go
in with Core executemany in batches (one transaction per batch) straight into products, revisions,
history and the full-text index, segmented by the same code as the API's writes; products are
`listed` at once, and the next step (tests.bench.generate.certification) gives each its certificate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.engine import Connection, Engine

from exchange.identity.models import Organization
from exchange.identity.states import OrgStatus
from listings import search
from listings.models import Product, ProductTransition, ProductVersion
from listings.states import ProductStatus, VersionStatus

VENDORS = 40
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)


class GenerationError(Exception):
    """The generator cannot run (for example: this seed was generated before)."""


@dataclass(frozen=True)
class GenerationSummary:
    products: int
    vendors: int


# (category, 中文, English, extra keywords)
TOPICS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("transport", "交通流量", "traffic flow", ("拥堵", "congestion", "道路")),
    ("transport", "地铁客流", "metro ridership", ("轨道交通", "commuters", "OD")),
    ("transport", "公交到站", "bus arrivals", ("公交", "timetable", "准点")),
    ("transport", "港口吞吐量", "port throughput", ("集装箱", "TEU", "码头")),
    ("transport", "航班准点率", "flight punctuality", ("机场", "aviation", "延误")),
    ("transport", "货车轨迹", "truck trajectories", ("物流", "freight", "GPS")),
    ("transport", "停车位占用", "parking occupancy", ("停车", "parking", "车位")),
    ("energy", "电力负荷", "electricity load", ("负荷曲线", "grid", "峰谷")),
    ("energy", "充电桩使用率", "EV charger utilization", ("新能源", "charging", "充电")),
    ("energy", "光伏发电量", "solar generation", ("光伏", "renewables", "发电")),
    ("energy", "天然气消费", "natural gas consumption", ("燃气", "gas", "能源")),
    ("finance", "信贷风险", "credit risk", ("违约", "scoring", "贷款")),
    ("finance", "跨境支付", "cross-border payments", ("支付", "remittance", "结算")),
    ("finance", "资金流向", "fund flows", ("股票", "equities", "港股通")),
    ("finance", "保险理赔", "insurance claims", ("保险", "actuarial", "理赔")),
    ("finance", "企业工商登记", "business registry", ("企业", "companies", "注册")),
    ("healthcare", "门诊量", "outpatient visits", ("医院", "hospital", "就诊")),
    ("healthcare", "药品销售", "drug sales", ("医药", "pharmacy", "处方")),
    ("healthcare", "医疗器械", "medical devices", ("器械", "devices", "采购")),
    ("geospatial", "遥感影像", "satellite imagery", ("卫星", "remote sensing", "影像")),
    ("geospatial", "人口热力", "population heatmap", ("人口", "density", "热力图")),
    ("geospatial", "兴趣点", "points of interest", ("POI", "places", "地图")),
    ("commerce", "零售销售额", "retail sales", ("零售", "consumer", "门店")),
    ("commerce", "跨境电商", "cross-border e-commerce", ("电商", "parcels", "清关")),
    ("commerce", "餐饮消费", "restaurant spending", ("餐饮", "dining", "外卖")),
    ("public_services", "空气质量", "air quality", ("环境", "PM2.5", "监测")),
    ("public_services", "气象观测", "weather observations", ("气象", "rainfall", "台风")),
    ("public_services", "旅游客流", "visitor arrivals", ("旅游", "tourism", "酒店")),
    ("telecom", "基站信令", "cell signalling", ("通信", "mobile", "5G")),
    ("telecom", "宽带质量", "broadband quality", ("网络", "latency", "带宽")),
    ("manufacturing", "工业能耗", "industrial energy use", ("能耗", "carbon", "碳排放")),
    ("manufacturing", "设备故障", "equipment failures", ("设备", "maintenance", "预测性维护")),
    ("manufacturing", "供应链库存", "supply-chain inventory", ("供应链", "inventory", "库存")),
    ("agriculture", "农产品价格", "farm produce prices", ("农业", "wholesale", "蔬菜")),
    ("agriculture", "渔业捕捞", "fishery catch", ("渔业", "fishing", "水产")),
    ("education", "招生数据", "school enrollment", ("教育", "students", "学校")),
    ("education", "在线学习", "online learning", ("课程", "e-learning", "学习")),
    ("other", "招聘需求", "job postings", ("就业", "hiring", "人才")),
)
# (中文, English, origin region)
CITIES: tuple[tuple[str, str, str], ...] = (
    ("广州", "Guangzhou", "GD"), ("深圳", "Shenzhen", "GD"), ("珠海", "Zhuhai", "GD"), ("佛山", "Foshan", "GD"),
    ("东莞", "Dongguan", "GD"), ("中山", "Zhongshan", "GD"), ("江门", "Jiangmen", "GD"), ("惠州", "Huizhou", "GD"),
    ("肇庆", "Zhaoqing", "GD"), ("香港", "Hong Kong", "HK"), ("澳门", "Macao", "MO"), ("北京", "Beijing", "CN"),
    ("上海", "Shanghai", "CN"), ("新加坡", "Singapore", "INTL"),
)
# (中文, English, update frequency)
KINDS: tuple[tuple[str, str, str], ...] = (
    ("实时数据", "real-time feed", "realtime"), ("日报", "daily report", "daily"),
    ("周报", "weekly digest", "weekly"), ("月度统计", "monthly statistics", "monthly"),
    ("历史数据集", "historical dataset", "once"), ("接口服务", "API service", "realtime"),
    ("分析报告", "analysis report", "monthly"), ("指数", "index", "daily"),
)
SENTENCES_ZH = (
    "数据经过清洗、去重与质量校验", "提供字段说明与数据字典", "支持按区县和时间段筛选",
    "可通过隐私计算平台联合建模", "历史数据可回溯至二〇一八年", "已完成脱敏处理，不含个人信息",
    "适用于城市规划与商业选址", "提供样例数据供买方评估", "按国家标准进行分类分级",
    "接口响应时间小于二百毫秒", "支持增量更新与全量下载", "由专业团队持续维护",
)
SENTENCES_EN = (
    "Cleaned, deduplicated and quality-checked.", "Comes with a field dictionary.",
    "Filter by district and time window.", "Joint modelling through privacy-preserving computation.",
    "History back to 2018.", "Anonymized; no personal information.",
    "Useful for urban planning and site selection.", "A sample is provided for evaluation.",
    "Classified under the national data classification standard.", "API latency under 200 ms.",
    "Incremental updates and full downloads.", "Maintained by a dedicated team.",
)
SCENARIOS = ("城市规划 urban planning", "商业选址 site selection", "风险控制 risk control",
             "运营优化 operations optimization", "学术研究 academic research", "精准营销 targeted marketing")
FORMATS = ("csv", "json", "parquet", "api", "other")
DELIVERY = ("file", "api", "privacy_computing")
CURRENCY_BY_REGION = {"HK": "HKD", "MO": "MOP"}


@lru_cache(maxsize=100_000)
def _segmented(fragment: str) -> str:
    return search.index_text(fragment)


def _doc(*fragments: str) -> str:
    # Fragments are joined at non-word characters, where segmentation starts afresh: the segmented
    # whole equals the segmented parts joined, so each part is segmented once per process.
    return " ".join(_segmented(f) for f in fragments)


def _vendor_rows(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"vendors-{seed}")
    rows = []
    for k in range(VENDORS):
        city_zh, city_en, region = CITIES[k % len(CITIES)]
        rows.append({
            "id": f"org_gen{seed:x}_{k:03d}",
            "name": f"{city_zh}基准数据商{k:03d} {city_en} Bench Data Vendor {k:03d} (seed {seed})",
            "type": "vendor", "region": region, "registration_number": f"GEN-{seed}-{k:03d}",
            "status": OrgStatus.VERIFIED, "created_at": BASE_TIME - timedelta(days=rng.randint(30, 400)),
        })
    return rows


def _product(rng: random.Random, seed: int, i: int, vendors: list[dict[str, Any]]) -> dict[str, Any]:
    category, topic_zh, topic_en, extra = TOPICS[rng.randrange(len(TOPICS))]
    vendor = vendors[rng.randrange(len(vendors))]
    city_zh, city_en, _ = CITIES[rng.randrange(len(CITIES))]
    kind_zh, kind_en, frequency = KINDS[rng.randrange(len(KINDS))]
    region = vendor["region"]
    currency = CURRENCY_BY_REGION.get(region, "CNY")
    model = rng.choice(("one_time", "subscription", "per_call", "negotiable"))
    amount = rng.randint(1, 500) * 100 if model == "per_call" else rng.randint(10, 5000) * 10_000
    sentences = rng.sample(range(len(SENTENCES_ZH)), 3)
    title = f"{city_zh}{topic_zh}{kind_zh} {city_en} {topic_en} {kind_en}"
    summary = f"{city_zh}{topic_zh}，{kind_zh}。 {topic_en.capitalize()} for {city_en}: {kind_en}."
    zh = [f"{city_zh}{topic_zh}{kind_zh}"] + [SENTENCES_ZH[s] for s in sentences]
    en = [f"{topic_en.capitalize()} {kind_en} for {city_en}."] + [SENTENCES_EN[s] for s in sentences]
    description = "。".join(zh) + "。\n" + " ".join(en)
    keywords = [topic_zh, topic_en, city_zh, *rng.sample(extra, 2)]
    created = BASE_TIME + timedelta(minutes=rng.randrange(600 * 24 * 60))
    return {
        "id": f"prd_gen{seed:x}_{i:09d}",
        "owner": vendor["id"],
        "created": created,
        "listed": created + timedelta(days=rng.randint(1, 30)),
        "body": {
            "title": title, "summary": summary, "description": description, "category": category,
            "keywords": keywords, "data_format": rng.choice(FORMATS), "delivery_mode": rng.choice(DELIVERY),
            "classification": "general" if rng.random() < 0.8 else "important",
            "contains_personal_info": rng.random() < 0.1, "origin_region": region,
            "update_frequency": frequency,
            "price": {"model": model, "amount": amount, "currency": currency,
                      "period": rng.choice(("month", "year")) if model == "subscription" else None},
            "sample": None,
            "license": {"scope": rng.choice(("internal_use", "commercial", "research")),
                        "duration_days": rng.choice((90, 180, 365, 730)), "resale_allowed": False},
            "scenarios": rng.sample(SCENARIOS, 2),
            "data_source": {"type": rng.choice(("self_collected", "licensed", "public", "derived")),
                            "description": f"{topic_zh}原始记录 {topic_en} source records"},
            "coverage": {"time_from": "2020-01-01T00:00:00Z", "time_to": None, "regions": [city_zh]},
            "volume": {"records": rng.randint(1_000, 500_000_000), "bytes": None},
        },
        "doc": {
            "title": _doc(title),
            "summary": _doc(f"{city_zh}{topic_zh}", kind_zh, f"{topic_en} for {city_en}", kind_en),
            "description": _doc(*zh, *en),
            "keywords": _doc(*keywords),
        },
    }


def _batches(count: int, batch: int) -> Iterator[range]:
    for start in range(0, count, batch):
        yield range(start, min(start + batch, count))


def _insert_batch(conn: Connection, rows: list[dict[str, Any]], first_rowid: int | None) -> None:
    postgres = first_rowid is None
    products, versions, history, docs = [], [], [], []
    for n, row in enumerate(rows):
        body, price = row["body"], row["body"]["price"]
        rowid = None if postgres else first_rowid + n
        products.append({
            "id": row["id"], "owner_org_id": row["owner"], "status": ProductStatus.LISTED, "listed_version": 1,
            "latest_version": 1, "certificate_number": None, "created_at": row["created"],
            "updated_at": row["listed"], "listed_at": row["listed"], "category": body["category"],
            "origin_region": body["origin_region"], "delivery_mode": body["delivery_mode"],
            "classification": body["classification"], "price_model": price["model"],
            "price_amount": price["amount"], "price_currency": price["currency"], "search_rowid": rowid,
            **({f"doc_{k}": v for k, v in row["doc"].items()} if postgres else {}),
        })
        versions.append({"product_id": row["id"], "version": 1, "status": VersionStatus.CERTIFIED,
                         "created_at": row["created"], "updated_at": row["listed"], **body})
        history.append({"product_id": row["id"], "subject": "product", "version": 1, "from_status": None,
                        "to_status": ProductStatus.LISTED, "reason": "generated for benchmarks",
                        "actor_user_id": None, "actor_org_id": None, "at": row["listed"]})
        docs.append({"product_id": row["id"], "rowid": rowid, **row["doc"]})
    insert_products = insert(Product.__table__)
    if postgres:
        insert_products = insert_products.values(search_document=search.pg_document(
            *(bindparam(f"doc_{k}") for k in ("title", "keywords", "summary", "description"))))
    conn.execute(insert_products, products)
    conn.execute(insert(ProductVersion.__table__), versions)
    conn.execute(insert(ProductTransition.__table__), history)
    if not postgres:
        conn.execute(search.SQLITE_INSERT, docs)


def generate_products(engine: Engine, *, count: int, seed: int = 1, batch: int = 5000,
                      progress: Callable[[int, int], None] | None = None) -> GenerationSummary:
    """Insert `count` listed products (and their vendors, once per seed). Raises GenerationError."""
    postgres = engine.dialect.name == "postgresql"
    vendors = _vendor_rows(seed)
    with engine.begin() as conn:
        if conn.execute(select(Product.id).where(Product.id == f"prd_gen{seed:x}_{0:09d}")).first():
            raise GenerationError(f"products for seed {seed} exist already; choose another --seed")
        known = set(conn.execute(select(Organization.id).where(Organization.id.in_([v["id"] for v in vendors])))
                    .scalars())
        missing = [v for v in vendors if v["id"] not in known]
        if missing:
            conn.execute(insert(Organization.__table__), missing)
    rng = random.Random(seed)
    done = 0
    for indices in _batches(count, batch):
        rows = [_product(rng, seed, i, vendors) for i in indices]
        with engine.begin() as conn:
            first_rowid = None
            if not postgres:
                first_rowid = conn.execute(text("SELECT coalesce(max(rowid), 0) + 1 FROM product_fts")).scalar_one()
            _insert_batch(conn, rows, first_rowid)
        done += len(rows)
        if progress:
            progress(done, count)
    if postgres:
        # Fresh statistics and visibility maps, so the planner and index-only counts see the new rows.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("products", "product_versions", "product_transitions"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
    else:
        # Statistics for the planner, and the full-text index merged into fewer segments.
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
            conn.execute(text("INSERT INTO product_fts(product_fts) VALUES ('optimize')"))
    return GenerationSummary(products=done, vendors=len(vendors))
