"""OWASP API6:2023 Unrestricted Access to Sensitive Business Flows: the flows a member could abuse —
procurements, offers and counter-offers, signatures, disputes — are limited per organization
(`DATAFAIR_WRITE_RATE_LIMIT`), with 429 problem+json and `Retry-After`, and the count is shared by
two real gunicorn processes on the same database (a client cannot spread its burst over workers).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.api.test_ratelimit import _wait_for_room_in_the_window, gunicorns
from tests.world import new_public_key

pytestmark = [pytest.mark.slow, pytest.mark.allow_hosts(["127.0.0.1"])]
LIMIT = 3


def http(base: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(  # noqa: S310 - loopback http only
        f"{base}/api/v1/{path}", method=method, data=json.dumps(body if body is not None else {}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            return r.status, dict(r.headers), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def test_sensitive_flows_are_limited_per_organization_across_two_gunicorn_processes(api, database, tmp_path):
    buyer, other_buyer, vendor = api.enterprise(), api.enterprise(), api.vendor()
    flows = {
        # flow -> (path, body) of a request that counts (valid or not: every attempt counts)
        "procurements": ("procurements", {"title": "t"}),
        "offers": ("offers", {"product_id": "prd_unknown"}),
        "counter-offers": ("offers/ofr_unknown/counter", {}),
        "signatures": ("contracts/ctr_unknown/signatures", {}),
        "disputes": ("trades/trd_unknown/disputes", {"reason": "late"}),
    }
    with gunicorns(database.url, tmp_path, DATAFAIR_WRITE_RATE_LIMIT=f"{LIMIT}/minute") as servers:
        _wait_for_room_in_the_window(15)
        bucket_calls: dict[str, int] = {}
        for flow, (path, body) in flows.items():
            bucket = "offers" if flow == "counter-offers" else flow  # a counter-offer is an offer
            used = bucket_calls.get(bucket, 0)
            for attempt in range(used, LIMIT):
                status, _, answer = http(servers[attempt % 2], "POST", path, buyer.token, body)
                assert status != 429, (flow, attempt, answer)
            bucket_calls[bucket] = LIMIT
            for server in servers:  # whichever process answers, the organization is over its limit
                status, headers, answer = http(server, "POST", path, buyer.token, body)
                assert status == 429, (flow, answer)
                assert headers["Content-Type"] == "application/problem+json" and answer["status"] == 429
                assert 1 <= int(headers["Retry-After"]) <= 60
            # Another organization is not affected by this one's burst.
            assert http(servers[1], "POST", path, other_buyer.token, body)[0] != 429, flow
        # Writes outside the limited flows stay open to the limited organization.
        status, _, answer = http(servers[0], "POST", f"organizations/{buyer.org_id}/keys", buyer.token,
                                 {"public_key": new_public_key()})
        assert status == 201, answer
        assert http(servers[0], "POST", "procurements", vendor.token, {"title": "t"})[0] == 422
