"""The benchmark generator lists products with real certificates: gapless numbers, signatures that verify."""

from __future__ import annotations

from sqlalchemy import func, select

from certification.models import Certificate
from exchange.db import db, utcnow
from tests.bench.generate import run as generate


def test_generate_lists_products_with_verifiable_certificates(app, api):
    output = "\n".join(generate(app, products=40, seed=5, batch=100, echo=lambda _: None))
    assert "certified 40 products" in output
    with app.app_context():
        numbers = sorted(db.session.execute(select(Certificate.number)).scalars())
        assert db.session.execute(select(func.count()).select_from(Certificate)
                                  .where(Certificate.status == "valid")).scalar_one() == 40
    year = utcnow().year
    assert numbers == [f"DFX-{year}-{i:06d}" for i in range(1, 41)]
    items = api.get("products?per_page=5&sort=newest").get_json()["items"]
    assert len(items) == 5
    for product in items:
        cert = api.get(f"certificates/{product['certificate_number']}").get_json()
        assert cert["verification"] == {"signature_valid": True, "digest_matches": True}
        assert cert["status"] == "valid"
    # A workflow certificate afterwards continues the same sequence.
    from tests.certflow import certify

    listed = certify(api, api.vendor())
    assert listed["certificate_number"] == f"DFX-{year}-000041"
