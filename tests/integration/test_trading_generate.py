"""The benchmark generator adds procurements and trades whose contracts, signatures and ledger all check out."""

from __future__ import annotations

from sqlalchemy import func, select

from certification.models import Certificate
from exchange.db import db, utcnow
from exchange.identity.models import Organization, User
from exchange.ledger.verify import verify
from listings.models import Product
from tests.bench.generate import run as generate
from tests.bench.generate.trading import GENERATED_PASSWORD, buyer_id
from tests.consistency import problems
from tests.factories import ApiHelper
from trading.models import Procurement, Trade


def _generate(app, products: int, seed: int) -> str:
    return "\n".join(generate(app, products=products, seed=seed, batch=100, echo=lambda _: None))


def test_generate_makes_procurements_and_trades_that_verify(app, api: ApiHelper):
    out = _generate(app, 60, 31)
    assert "generated 6 procurements and 6 trades" in out
    with app.app_context():
        statuses = dict(db.session.execute(select(Trade.status, func.count()).group_by(Trade.status)).all())
        report = verify(db.session)
        buyer = db.session.execute(select(Trade.buyer_org_id).where(Trade.status == "delivered")
                                   .order_by(Trade.id)).scalars().first()
    assert statuses == {"settled": 2, "delivered": 4}
    assert report["valid"] and report["entries"] == 6 + 2
    # States the services reach: each trade's status agrees with its entries, escrow, payment and fee;
    # every listed product has its valid certificate; every generated organization has its admin.
    with app.app_context():
        assert problems(db.session) == []
        listed = db.session.execute(select(Product.certificate_number, Certificate.status, Certificate.product_id,
                                           Product.id).outerjoin(Certificate, Certificate.number ==
                                                                 Product.certificate_number)
                                    .where(Product.status == "listed")).all()
        assert listed and all(status == "valid" and cert_pid == pid for _, status, cert_pid, pid in listed)
        assert db.session.execute(select(func.count()).select_from(Organization).where(
            ~Organization.id.in_(select(User.org_id)))).scalar_one() == 0

    # The generated buyer logs in with the documented password and sees its trades and contracts.
    assert buyer.startswith(buyer_id(0)[:-2])
    tokens = api.login(f"{buyer}@generated.bench", GENERATED_PASSWORD)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    trades = api.client.get("/api/v1/trades?per_page=100", headers=headers).get_json()["items"]
    assert trades and all(t["buyer_org_id"] == buyer for t in trades)
    delivered = next(t for t in trades if t["status"] == "delivered")
    contract = api.client.get(f"/api/v1/contracts/{delivered['contract_id']}", headers=headers).get_json()
    assert contract["status"] == "signed" and len(contract["signatures"]) == 2
    assert contract["number"].startswith(f"DFC-{utcnow().year}-")
    # Procurements go round the buyers in order: the first buyer posted the first one.
    first = api.login(f"{buyer_id(0)}@generated.bench", GENERATED_PASSWORD)["access_token"]
    procs = api.client.get("/api/v1/procurements", headers={"Authorization": f"Bearer {first}"}).get_json()
    assert procs["total"] >= 1 and procs["items"][0]["status"] == "open"

    # The buyer accepts a generated delivery through the API: it settles like any other trade.
    r = api.client.post(f"/api/v1/trades/{delivered['id']}/acceptance", headers=headers)
    assert r.status_code == 200 and r.get_json()["status"] == "settled", r.get_json()
    r = api.client.get(f"/api/v1/procurements/{procs['items'][0]['id']}/matches",
                       headers={"Authorization": f"Bearer {first}"})
    assert r.status_code == 200

    # More products later: more of each, up to one per ten products, and the ledger still verifies.
    assert "generated 4 procurements and 4 trades" in _generate(app, 40, 32)
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Procurement)).scalar_one() == 10
        assert verify(db.session)["valid"]
