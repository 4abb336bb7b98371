"""CLI commands: create-operator, seed-demo, sweep (through Flask's CLI runner, on the real database)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from exchange.db import db, utcnow
from exchange.identity import demo
from exchange.identity.models import Organization, User
from exchange.models import IdempotencyRecord
from tests.factories import PASSWORD


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def orgs(app) -> list[Organization]:
    with app.app_context():
        return list(db.session.execute(select(Organization).order_by(Organization.name)).scalars())


def test_create_operator_is_idempotent_and_the_operator_can_operate(app, api):
    args = ("create-operator", "--org", "粤港澳数据交易所 GBA Exchange", "--email", "Ops@Exchange.test",
            "--password", PASSWORD)
    first = run(app, *args)
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    second = run(app, *args)
    assert second.exit_code == 0, second.output
    assert "already exists" in second.output
    created = orgs(app)
    assert [(o.type, o.status) for o in created] == [("operator", "verified")]
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(User)).scalar_one() == 1
    operator = api._actor("ops@exchange.test")
    assert api.get("organizations", operator).status_code == 200
    # A second operator user joins the same organization.
    third = run(app, "create-operator", "--org", "粤港澳数据交易所 GBA Exchange", "--email", "ops2@exchange.test",
                "--password", PASSWORD)
    assert third.exit_code == 0 and len(orgs(app)) == 1


def test_create_operator_refuses_a_short_password(app):
    r = run(app, "create-operator", "--org", "Exchange", "--email", "ops@exchange.test", "--password", "short")
    assert r.exit_code == 1
    assert "12 characters" in r.output
    assert orgs(app) == []


def test_create_operator_refuses_the_email_of_a_member_of_another_organization(app, api):
    vendor = api.vendor()
    r = run(app, "create-operator", "--org", "Exchange", "--email", vendor.email, "--password", PASSWORD)
    assert r.exit_code == 1
    assert "non-operator" in r.output
    assert "Exchange" not in {o.name for o in orgs(app)}


def test_create_operator_requires_its_options(app):
    r = run(app, "create-operator", "--email", "ops@exchange.test")
    assert r.exit_code == 2
    assert orgs(app) == []


def test_seed_demo_is_idempotent_and_covers_every_type(app, api):
    first = run(app, "seed-demo")
    assert first.exit_code == 0, first.output
    seeded = orgs(app)
    assert Counter(o.type for o in seeded) == {"vendor": 6, "enterprise": 4, "assessor": 1, "operator": 1}
    assert {o.region for o in seeded} >= {"GD", "HK", "MO"}
    # Where they are (API.md Compliance): the GD ones name their city, and the zones are in them.
    assert {(o.city, o.zone) for o in seeded if o.region == "GD" and o.type != "operator"} >= {
        ("shenzhen", "qianhai"), ("zhuhai", "hengqin"), ("guangzhou", None)}
    assert any("香港" in o.name for o in seeded) and any("Guangzhou" in o.name for o in seeded)
    assert Counter(o.status for o in seeded)["pending"] == 1
    assert demo.OPERATOR_EMAIL in first.output and demo.DEMO_PASSWORD in first.output
    second = run(app, "seed-demo")
    assert second.exit_code == 0, second.output
    assert [o.id for o in orgs(app)] == [o.id for o in seeded]
    # The printed logins work.
    vendor = api._actor("vendor@hk-finance.demo", demo.DEMO_PASSWORD)
    assert vendor.org_type == "vendor" and vendor.region == "HK"


def test_seed_demo_if_empty(app, api):
    api.vendor()
    r = run(app, "seed-demo", "--if-empty")
    assert r.exit_code == 0, r.output
    assert "not re-seeded" in r.output
    assert len(orgs(app)) == 2  # the vendor and the test operator that verified it
    run(app, "seed-demo")
    assert len(orgs(app)) == 2 + 12


def test_seed_demo_refuses_production(app):
    app.config["DATAFAIR_ENV"] = "production"
    r = run(app, "seed-demo")
    assert r.exit_code != 0
    assert "production" in r.output
    assert orgs(app) == []


def test_sweep_purges_expired_idempotency_records(app):
    with app.app_context():
        for key, age in (("old", timedelta(hours=25)), ("fresh", timedelta(hours=1))):
            db.session.add(IdempotencyRecord(scope="anonymous", key=key, method_path="POST /x",
                                             request_hash="0" * 64, created_at=utcnow() - age, completed=True,
                                             response_status=201, response_body=b"{}", response_headers={}))
        db.session.commit()
    r = run(app, "sweep")
    assert r.exit_code == 0, r.output
    assert "1 expired" in r.output
    with app.app_context():
        assert list(db.session.execute(select(IdempotencyRecord.key)).scalars()) == ["fresh"]
