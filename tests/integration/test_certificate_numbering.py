"""Certificate numbers under concurrent approvals: sequential per year, no gaps, no duplicates."""

from __future__ import annotations

import threading

import pytest

from exchange.db import utcnow
from tests.certflow import create_product, review, submit


@pytest.mark.postgres
def test_concurrent_final_approvals_get_gapless_numbers(app, api):
    vendor = api.vendor()
    operator = api.operator()
    certs = []
    for _ in range(8):
        cert = submit(api, vendor, create_product(api, vendor)["id"])
        review(api, operator, cert["id"], "quality")
        review(api, operator, cert["id"], "ownership")
        certs.append(cert["id"])
    barrier = threading.Barrier(len(certs))
    results: dict[str, tuple[int, dict]] = {}

    def approve(cert_id: str) -> None:
        client = app.test_client()
        barrier.wait()
        r = client.post(f"/api/v1/certifications/{cert_id}/reviews", headers=operator.headers,
                        json={"stage": "compliance", "decision": "approve"})
        results[cert_id] = (r.status_code, r.get_json())

    threads = [threading.Thread(target=approve, args=(c,)) for c in certs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(code == 201 for code, _ in results.values()), results
    numbers = sorted(body["certificate_number"] for _, body in results.values())
    year = utcnow().year
    assert numbers == [f"DFX-{year}-{i:06d}" for i in range(1, len(certs) + 1)]
