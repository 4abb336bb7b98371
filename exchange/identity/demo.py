"""Demo organizations of every type, with Bay Area names in Chinese and English (idempotent), and
the registry of the layers' demo seeders that `flask --app app seed-demo` runs after them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.identity import services as identity
from exchange.identity.models import Organization, User
from exchange.identity.states import OrgStatus
from exchange.principal import Principal

DEMO_PASSWORD = "datafair-demo-2026"  # noqa: S105 - demo data only; seed-demo refuses in production
OPERATOR_EMAIL = "operator@datafair.demo"
# A second operator user: compliance of important data needs two different operators (four-eyes).
SECOND_OPERATOR_EMAIL = "operator2@datafair.demo"


@dataclass(frozen=True)
class DemoOrg:
    key: str
    name: str
    type: str
    region: str
    registration_number: str
    email: str
    status: str = OrgStatus.VERIFIED
    city: str | None = None
    zone: str | None = None


DEMO_ORGS = (
    DemoOrg("gz_transport", "广州交通数据科技有限公司 Guangzhou Transport Data Technology Co., Ltd.", "vendor",
            "GD", "91440101MA5DEMO001", "vendor@gz-transport.demo", city="guangzhou"),
    DemoOrg("sz_port", "深圳港口物流数据有限公司 Shenzhen Port Logistics Data Co., Ltd.", "vendor",
            "GD", "91440300MA5DEMO002", "vendor@sz-port.demo", city="shenzhen", zone="qianhai"),
    DemoOrg("hk_finance", "香港金融數據有限公司 Hong Kong Financial Data Limited", "vendor",
            "HK", "HK-CR-3000001", "vendor@hk-finance.demo"),
    DemoOrg("mo_tourism", "澳門旅遊數據有限公司 Macao Tourism Data Limited", "vendor",
            "MO", "MO-SO-40001", "vendor@mo-tourism.demo"),
    DemoOrg("zh_energy", "珠海能源数据服务有限公司 Zhuhai Energy Data Services Co., Ltd.", "vendor",
            "GD", "91440400MA5DEMO005", "vendor@zh-energy.demo", city="zhuhai", zone="hengqin"),
    DemoOrg("fs_manufacturing", "佛山智能制造集团 Foshan Smart Manufacturing Group", "enterprise",
            "GD", "91440600MA5DEMO006", "buyer@fs-manufacturing.demo", city="foshan"),
    DemoOrg("hk_logistics", "香港物流控股有限公司 Hong Kong Logistics Holdings Limited", "enterprise",
            "HK", "HK-CR-3000007", "buyer@hk-logistics.demo"),
    DemoOrg("dg_retail", "东莞零售连锁有限公司 Dongguan Retail Chain Co., Ltd.", "enterprise",
            "GD", "91441900MA5DEMO008", "buyer@dg-retail.demo", city="dongguan"),
    DemoOrg("mo_smartcity", "澳門智慧城市發展有限公司 Macao Smart City Development Limited", "enterprise",
            "MO", "MO-SO-40011", "buyer@mo-smartcity.demo"),
    DemoOrg("gd_assessor", "广东数据资产评估中心 Guangdong Data Asset Assessment Center", "assessor",
            "GD", "12440000MB2DEMO009", "assessor@gd-assess.demo", city="guangzhou"),
    DemoOrg("nansha_pending", "南沙数据创新有限公司 Nansha Data Innovation Co., Ltd.", "vendor",
            "GD", "91440115MA5DEMO010", "vendor@nansha.demo", OrgStatus.PENDING, city="guangzhou",
            zone="nansha"),
)


def seed(session: Session) -> dict[str, Organization]:
    """Create (or find) the operator and the demo organizations; returns them by key."""
    operator_org, operator_user, _ = identity.create_operator(
        session, org_name="广州数据交易所 Guangzhou Data Exchange (operator)", email=OPERATOR_EMAIL,
        password=DEMO_PASSWORD, name="交易所运营 Exchange Operations")
    actor = Principal.of(operator_user)
    if session.execute(select(User.id).where(User.email == SECOND_OPERATOR_EMAIL)).first() is None:
        identity.add_member(session, org_id=operator_org.id, email=SECOND_OPERATOR_EMAIL, password=DEMO_PASSWORD,
                            name="交易所运营二 Exchange Operations 2", role="member", actor=actor)
    orgs: dict[str, Organization] = {"operator": operator_org}
    for spec in DEMO_ORGS:
        org = session.execute(
            select(Organization).where(Organization.registration_number == spec.registration_number)
        ).scalar_one_or_none()
        if org is None:
            org = identity.register_organization(
                session, name=spec.name, type=spec.type, region=spec.region, city=spec.city, zone=spec.zone,
                registration_number=spec.registration_number,
                admin={"email": spec.email, "password": DEMO_PASSWORD, "name": spec.name.split(" ")[0]},
            )
            if spec.status == OrgStatus.VERIFIED:
                identity.change_status(session, org_id=org.id, target=OrgStatus.VERIFIED,
                                       reason="demo data: documents checked", actor=actor)
        elif org.city is None and spec.city is not None:
            org.city, org.zone = spec.city, spec.zone  # a database seeded before organizations had places
        orgs[spec.key] = org
    return orgs


def has_data(session: Session) -> bool:
    return session.execute(select(Organization.id).limit(1)).first() is not None


def demo_logins(session: Session) -> list[tuple[str, str, str]]:
    """(email, organization type, organization name) of every demo admin, for `make run` to print."""
    rows = session.execute(
        select(User.email, Organization.type, Organization.name)
        .join(Organization, Organization.id == User.org_id)
        .where(User.email.like("%.demo"))
        .order_by(Organization.type, User.email)
    ).all()
    return [tuple(r) for r in rows]


# -- the layers' seeders ---------------------------------------------------------------------------

SEEDERS_EXTENSION = "datafair.demo.seeders"
Seeder = Callable[[Session, dict[str, Organization]], Any]


def register_seeder(app: Flask, name: str, seeder: Seeder) -> None:
    """Run `seeder(session, orgs)` (orgs: the demo organizations by key) in `seed_all`, after the
    seeders registered before it: each layer registers from its init_app, so they run in layer order.
    A seeder must be idempotent and go through its layer's services; it flushes, never commits."""
    app.extensions.setdefault(SEEDERS_EXTENSION, {})[name] = seeder


def seeders(app: Flask | None = None) -> dict[str, Seeder]:
    """The seeders registered on `app` (default: the current app), in the order they run."""
    app = current_app if app is None else app
    return dict(app.extensions.get(SEEDERS_EXTENSION, {}))


def seed_all(session: Session, app: Flask | None = None) -> dict[str, Organization]:
    """The demo organizations, then every registered seeder in layer order (the caller commits)."""
    orgs = seed(session)
    for seeder in seeders(app).values():
        seeder(session, orgs)
    return orgs
