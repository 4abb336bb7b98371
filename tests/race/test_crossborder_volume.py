"""The exporter's yearly cross-border volume under concurrent signatures, on real PostgreSQL
(trading.dossiers: `crossborder_volumes` bumped under its row lock in each second signature's
transaction).

N contracts of one exporter (CN, to INTL buyers), each already signed by its buyer, get their
seller's signature at once (one thread, test client, session and connection each, released by a
Barrier). Then the exporter's row holds the exact sum, and the dossiers' `cumulative_subjects` are
the prefix sums of one serial order of the deals: each deal's cumulative minus its own subjects is
0 (the first) or exactly another deal's cumulative, all distinct, the largest the total. Each path
agrees with its cumulative (exempt below 100,000, the standard contract from there).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from exchange.db import utcnow
from exchange.fields import iso_z
from tests.certflow import certify
from tests.race.harness import Call, query, release
from tests.tradeflow import bid, sign

pytestmark = pytest.mark.postgres

N = 8
SUBJECTS = [20_000 + 1_000 * i for i in range(N)]  # distinct, so the serial order can be read back


def _contracts(app: Any, api: Any) -> tuple[Any, list[tuple[str, int, Any]]]:
    vendor = api.vendor(region="CN")
    with app.app_context():
        expires = iso_z(utcnow() + timedelta(days=90))
    r = api.post("whitelist", api.operator(), json={
        "category": "transport", "from_region": "CN", "to_region": "INTL", "max_classification": "general",
        "personal_info_allowed": True, "expires_at": expires})
    assert r.status_code == 201, r.get_json()
    deals = []
    for subjects in SUBJECTS:
        buyer = api.enterprise(region="INTL")
        listed = certify(api, vendor, origin_region="CN", contains_personal_info=True,
                         personal_info={"subjects": subjects, "sensitive": False})
        r = api.post(f"offers/{bid(api, buyer, listed)['id']}/accept", vendor)
        assert r.status_code == 201, r.get_json()
        contract_id = r.get_json()["id"]
        sign(api, buyer, contract_id)
        deals.append((contract_id, subjects, buyer))
    return vendor, deals


@pytest.mark.parametrize("round_", range(2))
def test_concurrent_second_signatures_count_exactly(app, api, round_):
    vendor, deals = _contracts(app, api)
    answers = release(app, [Call("POST", f"contracts/{cid}/signatures", vendor, {}, action=f"sign {cid}")
                            for cid, _, _ in deals])
    assert [a.status for a in answers] == [201] * N, [a.show() for a in answers]

    total = sum(SUBJECTS)
    rows = query(app, "SELECT exporter_org_id, subjects, sensitive_subjects, contracts FROM crossborder_volumes")
    assert [tuple(r) for r in rows] == [(vendor.org_id, total, 0, N)]

    dossiers = {}
    for cid, subjects, buyer in deals:
        r = api.get(f"contracts/{cid}/dossier", buyer)
        assert r.status_code == 200, r.get_json()
        d = r.get_json()
        assert d["subjects"] == subjects
        dossiers[cid] = d
    cumulative = [d["cumulative_subjects"] for d in dossiers.values()]
    assert len(set(cumulative)) == N, sorted(cumulative)
    assert max(cumulative) == total
    # The prefix sums of one serial order: each deal follows exactly the deal whose cumulative it extends.
    seen = set(cumulative) | {0}
    for d in dossiers.values():
        assert d["cumulative_subjects"] - d["subjects"] in seen, (d["cumulative_subjects"], d["subjects"],
                                                                   sorted(cumulative))
    ordered = sorted(dossiers.values(), key=lambda d: d["cumulative_subjects"])
    running = 0
    for d in ordered:
        running += d["subjects"]
        assert d["cumulative_subjects"] == running
    assert sorted(d["subjects"] for d in ordered) == sorted(SUBJECTS)
    for d in ordered:
        expected = "exempt_small_volume" if d["cumulative_subjects"] < 100_000 else "standard_contract"
        assert d["path"] == expected, (d["cumulative_subjects"], d["path"])


# -- a late filing racing the overdue sweep ---------------------------------------------------------

def _overdue_deal(app: Any, api: Any) -> dict[str, Any]:
    """A paid standard-contract deal (CN -> INTL, 250,000 individuals), its dossier past its due date."""
    from tests.deliveryflow import bought
    from tests.subscriptionflow import parse, set_clock

    vendor, buyer = api.vendor(region="CN"), api.enterprise(region="INTL")
    with app.app_context():
        expires = iso_z(utcnow() + timedelta(days=90))
    r = api.post("whitelist", api.operator(), json={
        "category": "transport", "from_region": "CN", "to_region": "INTL", "max_classification": "general",
        "personal_info_allowed": True, "expires_at": expires})
    assert r.status_code == 201, r.get_json()
    got = bought(api, vendor=vendor, buyer=buyer, origin_region="CN", contains_personal_info=True,
                 personal_info={"subjects": 250_000, "sensitive": False})
    d = api.get(f"contracts/{got['trade']['contract_id']}/dossier", buyer).get_json()
    assert d["path"] == "standard_contract"
    set_clock(app, parse(d["filing"]["due_at"]) + timedelta(minutes=5))
    return got


@pytest.mark.parametrize("round_", range(3))
def test_late_filings_racing_the_overdue_sweep(app, api, round_):
    """The seller's filing, an operator's filing under another reference and the sweep's
    overdue step, all at once: one filing wins (200), the other is 409; the dossier ends filed under
    the winner's reference, `dossier.overdue` is emitted at most once, the entitlement is active."""
    import threading

    from exchange.db import db
    from trading import dossiers
    from trading.models import Dossier

    got = _overdue_deal(app, api)
    cid = got["trade"]["contract_id"]
    with app.app_context():
        dossier_id = db.session.execute(select(Dossier.id).where(Dossier.contract_id == cid)).scalar_one()
    op = api.operator()
    calls = [(got["vendor"], "SELLER-1"), (op, "OPERATOR-1")]
    barrier = threading.Barrier(len(calls) + 1)
    results: dict[str, Any] = {}
    crashed: list[BaseException] = []

    def file_(actor: Any, reference: str) -> None:
        try:
            client = app.test_client()
            barrier.wait()
            r = client.post(f"/api/v1/contracts/{cid}/dossier/filing", json={"reference": reference},
                            headers=actor.headers)
            results[reference] = r.status_code
        except BaseException as exc:
            crashed.append(exc)

    def mark() -> None:
        try:
            with app.app_context():
                try:
                    barrier.wait()
                    results["sweep"] = dossiers.OVERDUE_EXPIRY.apply(db.session, dossier_id, utcnow())
                    db.session.commit()
                finally:
                    db.session.remove()
        except BaseException as exc:
            crashed.append(exc)

    threads = [threading.Thread(target=file_, args=c, daemon=True) for c in calls]
    threads.append(threading.Thread(target=mark, daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not crashed, crashed
    assert sorted([results["SELLER-1"], results["OPERATOR-1"]]) == [200, 409], results
    winner = "SELLER-1" if results["SELLER-1"] == 200 else "OPERATOR-1"
    d = api.get(f"contracts/{cid}/dossier", got["buyer"]).get_json()
    assert (d["status"], d["filing"]["reference"]) == ("filed", winner)
    assert d["overdue_at"] is not None  # filed late: overdue recorded by the sweep or on the way
    emitted = query(app, "SELECT count(*) FROM outbox_events WHERE event_type = 'dossier.overdue'")[0][0]
    assert emitted == (1 if results["sweep"] else 0), (emitted, results)
    ent = api.get(f"entitlements/{got['ent']['id']}", got["buyer"]).get_json()
    assert (ent["status"], ent["status_reason"]) == ("active", None), ent
