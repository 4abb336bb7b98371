"""Demo catalog: bilingual data products of the demo vendors (left as drafts: certification lists
them) and a live fair, "2026 广州数据交易会", with a stall per vendor. Idempotent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.db import utcnow
from exchange.identity.models import Organization, User
from exchange.principal import Principal
from listings import fairs, services
from listings.models import Fair, Product, ProductVersion, Stall
from listings.schemas import ProductCreateSchema
from listings.states import ProductStatus

FAIR_NAME = "2026 广州数据交易会 Guangzhou Data Fair 2026"
FAIR_VENUE = "广州琶洲广交会展馆 Canton Fair Complex, Pazhou, Guangzhou"
STALLS = (("A-01", "gz_transport"), ("A-02", "sz_port"), ("B-01", "hk_finance"), ("B-02", "mo_tourism"),
          ("C-01", "zh_energy"))


def _p(vendor: str, title: str, summary: str, description: str, category: str, keywords: list[str], *,
       data_format: str, delivery_mode: str, classification: str = "general", personal: bool = False,
       personal_info: dict[str, Any] | None = None,
       region: str = "GD", frequency: str, price: dict[str, Any], sample: dict[str, Any] | None,
       scope: str = "commercial", days: int = 365, resale: bool = False, scenarios: list[str],
       source: tuple[str, str], coverage: dict[str, Any] | None, volume: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "vendor": vendor,
        "body": {
            "title": title, "summary": summary, "description": description, "category": category,
            "keywords": keywords, "data_format": data_format, "delivery_mode": delivery_mode,
            "classification": classification, "contains_personal_info": personal, "origin_region": region,
            "update_frequency": frequency, "price": {"period": None, **price}, "sample": sample,
            "license": {"scope": scope, "duration_days": days, "resale_allowed": resale},
            "scenarios": scenarios, "data_source": {"type": source[0], "description": source[1]},
            "coverage": coverage, "volume": volume,
            "personal_info": personal_info if personal else None,
        },
    }


def _cov(time_from: str, regions: list[str], time_to: str | None = None) -> dict[str, Any]:
    return {"time_from": time_from, "time_to": time_to, "regions": regions}


DEMO_PRODUCTS: tuple[dict[str, Any], ...] = (
    _p("gz_transport", "广州市实时交通流量数据 Guangzhou Real-time Traffic Flow",
       "全市主干道每5分钟车流量、平均车速与拥堵指数 Flow, speed and congestion index every 5 minutes",
       "覆盖广州市11个区约2,300个路段的主干道与快速路，数据来自地磁线圈与视频检测器，经清洗与时空对齐。\n"
       "About 2,300 arterial and expressway segments in all 11 districts of Guangzhou, from loop and video "
       "detectors, cleaned and aligned in space and time.",
       "transport", ["交通", "交通流量", "拥堵指数", "traffic", "congestion"],
       data_format="json", delivery_mode="api", frequency="realtime",
       price={"model": "subscription", "amount": 1_250_000, "currency": "CNY", "period": "month"},
       sample={"columns": ["segment_id", "ts", "flow_per_5min", "speed_kmh", "congestion_index"],
               "rows": [["TH-0412", "2026-11-02T08:00:00Z", 412, 23.5, 1.8],
                        ["YX-1033", "2026-11-02T08:00:00Z", 268, 38.0, 1.2]]},
       scenarios=["交通信号配时优化 traffic signal timing", "导航路径规划 route planning"],
       source=("self_collected", "自建地磁与视频检测网络 own loop and video detector network"),
       coverage=_cov("2023-01-01T00:00:00Z", ["广州市"]), volume={"records": 240_000_000, "bytes": 31_000_000_000}),
    _p("gz_transport", "广州地铁客流OD数据 Guangzhou Metro Ridership OD Matrix",
       "按小时统计的地铁站间起讫客流矩阵 Hourly origin-destination ridership between metro stations",
       "基于闸机刷卡记录汇总的站间OD矩阵，已做聚合与脱敏处理，不含个人信息，最小统计单元为10人次。\n"
       "Station-to-station OD matrix aggregated from gate records; anonymized with a minimum cell of 10 trips.",
       "transport", ["地铁", "客流", "OD矩阵", "metro", "ridership"],
       data_format="csv", delivery_mode="file", classification="important", frequency="daily",
       price={"model": "one_time", "amount": 3_800_000, "currency": "CNY"},
       sample={"columns": ["hour", "origin", "destination", "trips"],
               "rows": [["2026-11-02T08:00:00Z", "体育西路", "珠江新城", 5231],
                        ["2026-11-02T08:00:00Z", "天河客运站", "五山", 1408]]},
       scenarios=["线网规划与运力调度 network planning and train scheduling"],
       source=("licensed", "经授权的轨道交通运营数据 licensed operator data"),
       coverage=_cov("2024-01-01T00:00:00Z", ["广州市"], "2025-12-31T23:59:59Z"),
       volume={"records": 87_000_000, "bytes": None}),
    _p("gz_transport", "珠三角货车轨迹热力图 Pearl River Delta Truck Trajectory Heatmap",
       "重型货车出行热力与主要货运走廊 Heavy-truck activity heatmap and freight corridors",
       "以500米网格汇总珠三角九市重型货车的GPS轨迹，识别主要货运走廊、夜间物流热点与停车集聚区。\n"
       "GPS trajectories of heavy trucks across the nine PRD cities aggregated on a 500 m grid: freight "
       "corridors, night-time logistics hotspots and parking clusters.",
       "geospatial", ["货运", "热力图", "物流", "freight", "heatmap"],
       data_format="parquet", delivery_mode="api", frequency="weekly",
       price={"model": "per_call", "amount": 800, "currency": "CNY"},
       sample={"columns": ["grid_id", "week", "truck_visits", "night_share"],
               "rows": [["G500-113-231", "2026-W44", 3120, 0.41]]},
       scenarios=["物流园区选址 logistics park site selection", "货运交通管控 freight traffic management"],
       source=("derived", "由授权车载终端轨迹加工 derived from licensed on-board GPS feeds"),
       coverage=_cov("2024-06-01T00:00:00Z", ["广州市", "深圳市", "佛山市", "东莞市", "珠海市"]),
       volume={"records": 9_600_000, "bytes": 2_100_000_000}),
    _p("sz_port", "深圳港集装箱吞吐量日报 Shenzhen Port Container Throughput Daily",
       "盐田、蛇口、大铲湾各码头每日集装箱吞吐量 Daily TEU throughput by terminal",
       "每日更新深圳港各港区进出口集装箱吞吐量（标准箱），区分重箱与空箱、内贸与外贸航线。\n"
       "Daily import and export TEU by terminal, laden vs empty, domestic vs international services.",
       "transport", ["港口", "集装箱", "吞吐量", "port", "TEU"],
       data_format="json", delivery_mode="api", frequency="daily",
       price={"model": "subscription", "amount": 9_600_000, "currency": "CNY", "period": "year"},
       sample={"columns": ["date", "terminal", "teu_in", "teu_out", "empty_share"],
               "rows": [["2026-11-01", "YICT", 18230, 17610, 0.12], ["2026-11-01", "SCT", 9120, 8805, 0.09]]},
       scenarios=["航运运力规划 shipping capacity planning", "外贸景气监测 trade activity monitoring"],
       source=("self_collected", "码头作业系统统计 terminal operating system statistics"),
       coverage=_cov("2020-01-01T00:00:00Z", ["深圳市"]), volume={"records": 26_000, "bytes": 5_000_000}),
    _p("sz_port", "盐田港船舶到港预报 Yantian Port Vessel Arrival Forecast",
       "基于AIS的船舶预计到港时间与泊位占用预测 AIS-based ETA and berth occupancy forecast",
       "融合AIS船位、航线计划与历史靠泊记录，滚动预测未来72小时到港船舶的预计到港时间与泊位占用。\n"
       "Combines AIS positions, service schedules and berthing history to forecast ETAs and berth "
       "occupancy for the next 72 hours.",
       "transport", ["船舶", "到港预报", "AIS", "vessel", "ETA"],
       data_format="api", delivery_mode="api", frequency="realtime",
       price={"model": "per_call", "amount": 200, "currency": "CNY"},
       sample={"columns": ["imo", "vessel", "eta", "berth", "confidence"],
               "rows": [[9811000, "EVER ACE", "2026-11-03T06:30:00Z", "Y-12", 0.87]]},
       scenarios=["拖车与堆场调度 trucking and yard scheduling"],
       source=("derived", "AIS与港口计划数据融合 AIS fused with port plans"),
       coverage=_cov("2025-01-01T00:00:00Z", ["深圳市盐田区"]), volume={"records": 1_200_000, "bytes": None}),
    _p("sz_port", "跨境电商物流时效指数 Cross-border E-commerce Logistics Lead-time Index",
       "深港跨境包裹从揽收到清关的时效指数 Lead time from pickup to customs clearance, Shenzhen-Hong Kong",
       "按周统计深圳至香港及海外主要目的地跨境电商包裹的揽收、出口报关、清关各环节时效中位数与分位数。\n"
       "Weekly medians and percentiles of each stage of cross-border e-commerce parcels from Shenzhen.",
       "commerce", ["跨境电商", "物流时效", "清关", "e-commerce", "customs"],
       data_format="csv", delivery_mode="file", frequency="weekly",
       price={"model": "one_time", "amount": 1_500_000, "currency": "CNY"},
       sample={"columns": ["week", "lane", "median_hours", "p90_hours"],
               "rows": [["2026-W44", "SZ-HK", 19.5, 31.0], ["2026-W44", "SZ-US", 96.0, 141.5]]},
       scenarios=["跨境卖家物流选品 seller logistics choice"],
       source=("self_collected", "合作物流商运单节点 partner carriers' waybill events"),
       coverage=_cov("2024-01-01T00:00:00Z", ["深圳市", "香港"]), volume={"records": 5_400, "bytes": 900_000}),
    _p("hk_finance", "香港中小企業信貸風險評分 Hong Kong SME Credit Risk Scores",
       "基於交易流水與公開記錄的中小企業違約風險評分 Default risk scores for SMEs from flows and public records",
       "以隱私計算方式提供香港中小企業的信貸風險評分，模型使用銀行交易流水特徵與公司註冊處公開記錄，"
       "原始數據不出域。\nSME credit risk scores delivered by privacy-preserving computation; raw data never leaves.",
       "finance", ["信貸", "風險評分", "中小企業", "credit", "SME"],
       data_format="other", delivery_mode="privacy_computing", classification="important", personal=True,
       personal_info={"subjects": 86_000, "sensitive": True}, region="HK",
       frequency="monthly", price={"model": "negotiable", "amount": 20_000_000, "currency": "HKD"},
       sample=None, days=730,
       scenarios=["跨境貿易融資 cross-border trade finance", "供應鏈金融授信 supply-chain credit"],
       source=("licensed", "合作銀行授權數據 data licensed from partner banks"),
       coverage=_cov("2022-01-01T00:00:00Z", ["香港"]), volume={"records": 310_000, "bytes": None}),
    _p("hk_finance", "港股盤後資金流向數據 HK Equities After-hours Fund Flow",
       "港股通南北向資金每日淨流入與個股分佈 Daily Stock Connect net flows by stock",
       "每日收市後發佈港股通南向與北向資金淨買入、持股變動及行業分佈。\n"
       "Daily Stock Connect southbound and northbound net buying, holdings changes and sector breakdown.",
       "finance", ["港股通", "資金流向", "stock connect", "fund flow"],
       data_format="json", delivery_mode="api", region="HK", frequency="daily",
       price={"model": "subscription", "amount": 880_000, "currency": "HKD", "period": "month"},
       sample={"columns": ["date", "stock_code", "southbound_net_hkd", "holding_pct"],
               "rows": [["2026-10-30", "0700.HK", 1_250_000_000, 9.82]]},
       scenarios=["量化投資研究 quantitative research"],
       source=("public", "港交所公開披露整理 compiled from HKEX disclosures"),
       coverage=_cov("2019-01-01T00:00:00Z", ["香港"]), volume={"records": 4_800_000, "bytes": 700_000_000}),
    _p("hk_finance", "大灣區跨境支付交易統計 GBA Cross-border Payment Statistics",
       "粵港澳跨境零售支付筆數與金額月度統計 Monthly cross-border retail payments in the Greater Bay Area",
       "按月統計粵港澳三地之間跨境零售支付的筆數、金額、商戶類別與城市分佈，數據已彙總，不含個人信息。\n"
       "Monthly counts and values of retail payments between Guangdong, Hong Kong and Macao by merchant "
       "category and city; aggregated, no personal information.",
       "finance", ["跨境支付", "大灣區", "payments", "Greater Bay Area"],
       data_format="csv", delivery_mode="file", region="HK", frequency="monthly",
       price={"model": "one_time", "amount": 4_500_000, "currency": "HKD"},
       sample={"columns": ["month", "from", "to", "mcc", "count", "value_hkd"],
               "rows": [["2026-09", "HK", "GD", "5812", 1820450, 312000000]]},
       scenarios=["商圈客流研判 retail district planning"],
       source=("derived", "支付機構彙總數據加工 derived from payment institutions' aggregates"),
       coverage=_cov("2023-01-01T00:00:00Z", ["香港", "澳門", "廣東"]), volume={"records": 96_000, "bytes": None}),
    _p("mo_tourism", "澳門旅客入境及酒店入住率 Macao Visitor Arrivals and Hotel Occupancy",
       "每日入境旅客人次與星級酒店入住率 Daily visitor arrivals and hotel occupancy",
       "按口岸及客源地統計每日入境旅客，並提供各星級酒店的入住率與平均房價。\n"
       "Daily visitor arrivals by border post and origin, with occupancy and average room rate by hotel class.",
       "public_services", ["旅遊", "入境旅客", "酒店入住率", "tourism", "hotel occupancy"],
       data_format="csv", delivery_mode="file", region="MO", frequency="daily",
       price={"model": "subscription", "amount": 3_000_000, "currency": "MOP", "period": "year"},
       sample={"columns": ["date", "border_post", "origin", "arrivals"],
               "rows": [["2026-10-01", "港珠澳大橋", "香港", 41230], ["2026-10-01", "關閘", "內地", 98110]]},
       scenarios=["旅遊營銷與接待規劃 tourism marketing and capacity planning"],
       source=("public", "統計暨普查局與旅遊局公開數據整理 compiled from DSEC and MGTO releases"),
       coverage=_cov("2018-01-01T00:00:00Z", ["澳門"]), volume={"records": 2_300_000, "bytes": 310_000_000}),
    _p("mo_tourism", "澳門景點實時人流 Macao Attractions Real-time Crowd Density",
       "大三巴等熱門景點每分鐘人流密度 Crowd density per minute at popular sights",
       "以匿名化的手機信令與閘機計數估算大三巴、議事亭前地等熱門景點的實時人流密度與等候時間。\n"
       "Anonymized mobile signalling and turnstile counts estimate crowd density and waiting time at the Ruins "
       "of St. Paul's, Senado Square and other sights.",
       "geospatial", ["人流", "景點", "crowd", "tourism"],
       data_format="api", delivery_mode="api", classification="important", personal=True,
       personal_info={"subjects": 1_200_000, "sensitive": False}, region="MO",
       frequency="realtime", price={"model": "per_call", "amount": 150, "currency": "MOP"},
       sample={"columns": ["site", "ts", "people_per_100m2", "wait_minutes"],
               "rows": [["大三巴牌坊", "2026-10-02T15:00:00Z", 86.5, 12]]},
       scenarios=["景區限流與疏導 crowd control"],
       source=("derived", "電信營運商匿名化信令 anonymized operator signalling"),
       coverage=_cov("2025-05-01T00:00:00Z", ["澳門半島", "氹仔"]), volume={"records": 31_000_000, "bytes": None}),
    # The compliance deals' products (issue 20): personal data that leaves the mainland from Qianhai and
    # from Hengqin; created before the three Zhuhai drafts below so those stay the demo's special cases.
    _p("sz_port", "前海跨境电商收件人地址标准化数据 Qianhai Cross-border E-commerce Consignee Addresses",
       "跨境包裹收件人地址的标准化与派送时效 Standardized consignee addresses and delivery times of parcels",
       "前海跨境电商平台近一年发往香港的包裹收件人地址（已标准化至楼宇级），含派送时效与签收方式，"
       "用于港深两地末端配送规划。\nConsignee addresses (standardized to the building) of parcels sent from "
       "Qianhai platforms to Hong Kong in the past year, with delivery times, for last-mile planning.",
       "commerce", ["跨境电商", "收件人", "末端配送", "e-commerce", "last mile"],
       data_format="csv", delivery_mode="file", personal=True,
       personal_info={"subjects": 180_000, "sensitive": False}, frequency="monthly",
       price={"model": "one_time", "amount": 2_600_000, "currency": "CNY"},
       sample={"columns": ["parcel_id", "district", "building", "delivered_within_h"],
               "rows": [["QH-88120", "Kwun Tong", "Millennium City 5", 26]]},
       scenarios=["港深末端配送规划 Hong Kong–Shenzhen last-mile planning"],
       source=("self_collected", "平台运单 platform waybills"),
       coverage=_cov("2025-11-01T00:00:00Z", ["香港"]), volume={"records": 410_000, "bytes": 52_000_000}),
    _p("zh_energy", "横琴居民用电与充电行为数据 Hengqin Household Electricity and Charging Behaviour",
       "横琴粤澳深度合作区住户分时用电与家用充电行为 Time-of-use consumption and home charging of households",
       "横琴粤澳深度合作区约12万户居民的15分钟用电曲线与家用充电桩使用记录，用于澳门与横琴一体化的"
       "电网与充电网络规划。\n15-minute consumption curves and home charger sessions of about 120,000 "
       "households in the Hengqin cooperation zone, for grid and charging planning with Macao.",
       "energy", ["居民用电", "充电", "横琴", "electricity", "charging"],
       data_format="csv", delivery_mode="file", personal=True,
       personal_info={"subjects": 120_000, "sensitive": False}, frequency="monthly",
       price={"model": "one_time", "amount": 1_900_000, "currency": "CNY"},
       sample={"columns": ["household", "ts", "kwh", "charging"],
               "rows": [["HQ-00412", "2026-10-02T19:00:00Z", 1.42, True]]},
       scenarios=["琴澳电网一体化规划 Hengqin–Macao grid planning"],
       source=("licensed", "电网公司授权数据 licensed from the grid operator"),
       coverage=_cov("2025-01-01T00:00:00Z", ["横琴"]), volume={"records": 4_200_000_000, "bytes": None}),
    _p("zh_energy", "珠三角电力负荷曲线 Pearl River Delta Electricity Load Curves",
       "分行业、分城市的96点日负荷曲线 96-point daily load curves by sector and city",
       "提供珠三角九市分行业（工业、商业、居民）的15分钟粒度电力负荷曲线，以及峰谷差与负荷率指标。\n"
       "15-minute electricity load curves by sector (industry, commerce, households) for the nine PRD "
       "cities, with peak-valley gap and load factor.",
       "energy", ["电力", "负荷曲线", "峰谷", "electricity", "load curve"],
       data_format="csv", delivery_mode="file", classification="important", frequency="daily",
       price={"model": "subscription", "amount": 2_000_000, "currency": "CNY", "period": "month"},
       sample={"columns": ["date", "city", "sector", "slot", "load_mw"],
               "rows": [["2026-11-01", "珠海", "industry", 36, 1423.7],
                        ["2026-11-01", "珠海", "household", 76, 611.2]]},
       scenarios=["需求响应与有序用电 demand response", "虚拟电厂调度 virtual power plant dispatch"],
       source=("licensed", "电网企业授权统计 licensed grid operator statistics"),
       coverage=_cov("2021-01-01T00:00:00Z", ["珠三角"]), volume={"records": 18_000_000, "bytes": 1_600_000_000}),
    _p("zh_energy", "横琴充电桩使用率数据 Hengqin EV Charging Station Utilization",
       "公共充电桩逐小时使用率与充电量 Hourly utilization and energy of public chargers",
       "横琴粤澳深度合作区公共充电站逐小时使用率、充电量与排队时长，适用于充电网络规划与选址。\n"
       "Hourly utilization, energy delivered and queueing at public charging stations in Hengqin.",
       "energy", ["充电桩", "新能源汽车", "EV charging", "utilization"],
       data_format="json", delivery_mode="file", frequency="daily",
       price={"model": "one_time", "amount": 680_000, "currency": "CNY"},
       sample={"columns": ["station", "hour", "utilization", "kwh"],
               "rows": [["HQ-017", "2026-11-01T19:00:00Z", 0.92, 412.5]]},
       scenarios=["充电网络规划 charging network planning"],
       source=("self_collected", "自营充电运营平台 own charging platform"),
       coverage=_cov("2024-03-01T00:00:00Z", ["珠海市横琴"]), volume={"records": 1_100_000, "bytes": 120_000_000}),
    _p("zh_energy", "工业园区能耗监测数据 Industrial Park Energy Consumption Monitoring",
       "重点用能企业月度能耗与碳排放核算 Monthly energy use and carbon accounting of key enterprises",
       "汇总珠海、中山工业园区重点用能企业的电、气、蒸汽消耗，并按核算方法折算碳排放。\n"
       "Electricity, gas and steam consumption of key energy users in Zhuhai and Zhongshan industrial parks, "
       "with carbon emissions computed by the national accounting method.",
       "manufacturing", ["能耗", "碳排放", "工业园区", "energy", "carbon"],
       data_format="parquet", delivery_mode="privacy_computing", classification="important", frequency="monthly",
       price={"model": "negotiable", "amount": 12_000_000, "currency": "CNY"}, sample=None, scope="research",
       scenarios=["绿色金融评估 green finance assessment", "园区碳管理 park carbon management"],
       source=("licensed", "园区管委会授权 licensed by park administrations"),
       coverage=_cov("2022-01-01T00:00:00Z", ["珠海市", "中山市"]), volume={"records": 420_000, "bytes": None}),
)


def _admin(session: Session, org: Organization) -> Principal:
    user = session.execute(
        select(User).where(User.org_id == org.id).order_by(User.role, User.created_at)
    ).scalars().first()
    if user is None:
        raise LookupError(f"demo organization {org.name} has no user")
    return Principal.of(user)


def seed(session: Session, orgs: dict[str, Organization]) -> dict[str, Any]:
    """Create the demo products (drafts) and the live fair with a stall per demo vendor.

    `orgs` is what `exchange.demo.seed` returns. Returns `{"products": [Product], "fair": Fair}`.
    """
    products: list[Product] = []
    for spec in DEMO_PRODUCTS:
        org = orgs[spec["vendor"]]
        existing = session.execute(
            select(Product).join(ProductVersion, ProductVersion.product_id == Product.id)
            .where(Product.owner_org_id == org.id, ProductVersion.version == 1,
                   ProductVersion.title == spec["body"]["title"])
        ).scalar_one_or_none()
        if existing is None:
            body = ProductCreateSchema().load(spec["body"])  # the demo obeys the API's rules too
            existing = services.create_product(session, data=body, actor=_admin(session, org))
        products.append(existing)
    operator = _admin(session, orgs["operator"])
    fair = session.execute(select(Fair).where(Fair.name == FAIR_NAME)).scalars().first()
    if fair is None:
        now = utcnow()
        fair = fairs.create_fair(session, name=FAIR_NAME, venue=FAIR_VENUE, starts_at=now - timedelta(days=1),
                                 ends_at=now + timedelta(days=30), actor=operator)
    for code, key in STALLS:
        taken = session.execute(select(Stall.id).where(Stall.fair_id == fair.id, Stall.code == code)).first()
        if taken is None:
            fairs.create_stall(session, fair_id=fair.id, org_id=orgs[key].id, code=code,
                               product_ids=show_list(session, orgs[key].id), actor=operator)
    session.flush()
    return {"products": products, "fair": fair}


def show_list(session: Session, org_id: str) -> list[str]:
    """The organization's listed products, newest first: what its stall should show."""
    return list(session.execute(
        select(Product.id).where(Product.owner_org_id == org_id, Product.status == ProductStatus.LISTED)
        .order_by(Product.listed_at.desc(), Product.id)
    ).scalars())


def show_listed_products(session: Session) -> None:
    """Put each demo stall's vendor's listed products on show (for a later layer, once it has
    listed the demo products)."""
    fair = session.execute(select(Fair).where(Fair.name == FAIR_NAME)).scalars().first()
    if fair is None:
        return
    operator_user = session.execute(
        select(User).join(Organization, Organization.id == User.org_id).where(Organization.type == "operator")
        .order_by(User.created_at)
    ).scalars().first()
    if operator_user is None:
        return
    operator = Principal.of(operator_user)
    for stall in session.execute(select(Stall).where(Stall.fair_id == fair.id)).scalars():
        fairs.set_stall_products(session, fair_id=fair.id, stall_id=stall.id,
                                 product_ids=show_list(session, stall.org_id)[:100], actor=operator)
    session.flush()
