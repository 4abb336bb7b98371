"""The operators' list of listed versions that contain personal information but were certified before
`personal_info` existed (API.md Compliance): their certificates and digests stand, nothing is invented,
and the list shows which vendors must certify a revision that states it."""

from __future__ import annotations

from sqlalchemy import update

from listings.models import ProductVersion
from tests.certflow import approve_all, certify, create_product, submit
from tests.deliveryflow import execute


def _legacy(app, api, vendor):
    """A listed personal-data product whose version was certified without personal_info, as one
    certified before the field existed (the field is dropped while the version is frozen in review)."""
    product = create_product(api, vendor, contains_personal_info=True)
    cert = submit(api, vendor, product["id"])
    execute(app, update(ProductVersion).where(ProductVersion.product_id == product["id"])
            .values(personal_info=None))
    assert approve_all(api, cert["id"])["status"] == "approved"
    return api.get(f"products/{product['id']}").get_json()


def test_operators_see_the_versions_to_revise_and_their_certificates_still_verify(app, api):
    vendor, operator = api.vendor(), api.operator()
    legacy = _legacy(app, api, vendor)
    stated = certify(api, vendor, contains_personal_info=True)
    plain = certify(api, vendor)
    page = api.get("products/personal-info-missing?per_page=100", operator).get_json()
    listed = {(v["product_id"], v["version"]) for v in page["items"]}
    assert (legacy["id"], 1) in listed
    assert not {stated["id"], plain["id"]} & {p for p, _ in listed}
    item = next(v for v in page["items"] if v["product_id"] == legacy["id"])
    assert item["contains_personal_info"] is True and item["personal_info"] is None
    # The migrated version keeps the certificate it was certified with: the field is not in its body.
    cert = api.get(f"certificates/{legacy['certificate_number']}").get_json()
    assert cert["verification"] == {"signature_valid": True, "digest_matches": True}


def test_a_revision_stating_personal_info_takes_the_product_off_the_list(app, api):
    vendor, operator = api.vendor(), api.operator()
    legacy = _legacy(app, api, vendor)
    r = api.patch(f"products/{legacy['id']}", vendor, json={"personal_info": {"subjects": 20_000, "sensitive": True}})
    assert r.status_code == 200, r.get_json()
    assert approve_all(api, submit(api, vendor, legacy["id"])["id"])["status"] == "approved"
    page = api.get("products/personal-info-missing?per_page=100", operator).get_json()
    assert legacy["id"] not in {v["product_id"] for v in page["items"]}


def test_only_operators_read_the_list(api):
    assert api.get("products/personal-info-missing", api.vendor()).status_code == 403
    assert api.get("products/personal-info-missing", api.enterprise()).status_code == 403
    assert api.get("products/personal-info-missing").status_code == 401
