"""The demo's Bay Area compliance deals (issue 20): a Shenzhen–Hong Kong deal from Qianhai and a
Zhuhai–Macao deal from Hengqin, each with its dossier under the GBA standard contract, and the rights
register filled by the demo's certifications and signatures."""

from __future__ import annotations

from sqlalchemy import select

from certification.models import Registration
from exchange.db import db
from exchange.identity import demo
from trading import demo as trading_demo
from trading.models import Dossier


def test_the_demo_has_both_gba_dossiers_and_a_signed_register(app, api):
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        dossiers = db.session.execute(select(Dossier).where(Dossier.path == "gba_standard_contract")).scalars().all()
        by_importer_region = {d.facts["importer"]["region"]: d for d in dossiers}
        registrations = db.session.execute(select(Registration)).scalars().all()
    qianhai, hengqin = by_importer_region["HK"], by_importer_region["MO"]
    assert qianhai.facts["exporter"] == {**qianhai.facts["exporter"], "city": "shenzhen", "zone": "qianhai"}
    assert hengqin.facts["exporter"] == {**hengqin.facts["exporter"], "city": "zhuhai", "zone": "hengqin"}
    assert (qianhai.status, qianhai.reference) == ("filed", trading_demo.QIANHAI_FILING)
    assert hengqin.status == "awaiting_filing" and hengqin.due_at is not None
    assert {r.type for r in registrations} >= {"initial", "licence"}
    # The parties see their dossier through the API, with its documents.
    hk = api._actor("buyer@hk-logistics.demo", demo.DEMO_PASSWORD)
    shown = api.get(f"contracts/{qianhai.contract_id}/dossier", hk).get_json()
    assert shown["path"] == "gba_standard_contract" and shown["status"] == "filed"
    assert {d["kind"] for d in shown["documents"]} == {"particulars", "undertaking"}
