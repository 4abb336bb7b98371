"""File delivery on the S3 backend, against moto's S3 server (tests/s3server.py): uploads of a few
MB (multipart past 8 MiB) land content-addressed in the bucket, a download link is a pre-signed URL
of at most 60 seconds that serves exactly the manifest's bytes, and a withdrawn release or a
suspended entitlement gets no new link. Run once, on the PostgreSQL run."""

from __future__ import annotations

import hashlib
import os
import urllib.parse
import urllib.request

import pytest

from tests.deliveryflow import entitlement_of, link, pay, release, sha, signed_trade
from tests.s3server import S3Server, s3_server  # noqa: F401 - fixture

pytestmark = [pytest.mark.s3, pytest.mark.allow_hosts(["127.0.0.1"])]


@pytest.fixture
def bucket(app, s3_server: S3Server):  # noqa: F811 - fixture
    b = s3_server.new_bucket()
    app.config["STORAGE_URL"], app.config["STORAGE_S3_OPTIONS"] = b.url, b.s3_options
    return b


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names) and body of a GET."""
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - the loopback moto peer
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


def test_s3_upload_publish_and_presigned_download(api, bucket, s3_server: S3Server):  # noqa: F811
    vendor, buyer = api.vendor(), api.enterprise()
    big = os.urandom(9 << 20)  # past one 8 MiB part: the multipart path
    small = b"district,vehicles\nTianhe,120433\n"
    trade = pay(api, buyer, signed_trade(api, vendor, buyer)["id"])
    ent = entitlement_of(api, buyer, trade["id"])
    rel = release(api, vendor, trade["product_id"], files={"big.bin": big, "small.csv": small})
    keys = {o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket.name).get("Contents", [])}
    assert keys == {f"{bucket.prefix}/objects/{sha(big)}", f"{bucket.prefix}/objects/{sha(small)}"}
    assert api.get(f"trades/{trade['id']}", buyer).get_json()["status"] == "delivered"
    got = link(api, buyer, ent["id"], rel["id"], file="big.bin")
    assert got["sha256"] == sha(big) and got["bytes"] == len(big)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(got["url"]).query)
    assert int(query["X-Amz-Expires"][0]) <= 60
    status, headers, body = _get(got["url"])
    assert status == 200 and hashlib.sha256(body).hexdigest() == got["sha256"]
    assert headers["content-disposition"].startswith("attachment")
    assert headers["content-type"] == "application/octet-stream"
    log = api.get(f"entitlements/{ent['id']}/accesses", buyer).get_json()["items"]
    assert [(a["kind"], a["object"], a["status"]) for a in log] == [("download_link", "big.bin", "allowed")]


def test_s3_no_link_after_withdrawal_or_during_a_dispute(api, bucket):
    vendor, buyer = api.vendor(), api.enterprise()
    trade = pay(api, buyer, signed_trade(api, vendor, buyer)["id"])
    ent = entitlement_of(api, buyer, trade["id"])
    rel = release(api, vendor, trade["product_id"])
    r = api.post(f"trades/{trade['id']}/disputes", buyer, json={"reason": "rows missing"})
    assert r.status_code == 201
    r = api.post(f"entitlements/{ent['id']}/downloads", buyer, json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403 and r.get_json()["detail"].startswith("entitlement_suspended: dispute open. ")
    r = api.post(f"releases/{rel['id']}/withdraw", vendor)
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn"
    r = api.post(f"entitlements/{ent['id']}/downloads", buyer, json={"release_id": rel["id"], "file": "traffic.csv"})
    assert r.status_code == 403 and r.get_json()["detail"].startswith("release_withdrawn")


def test_s3_privacy_release_is_queried_from_a_checked_local_copy(app, api, bucket):
    """A privacy-computing release on S3: the engine reads a local copy fetched once and checked
    against its sha256 (read-only); the answer is the same as from file storage."""
    from pathlib import Path

    from tests.sandboxflow import query, retail_rows, sandbox_bought, to_csv

    rows = retail_rows()
    got = sandbox_bought(api, rows=rows)
    q = query(api, got, "SELECT count(*) AS n, sum(amount) AS total FROM retail")
    assert q["status"] == "succeeded", q
    assert q["rows"] == [[len(rows), sum(r["amount"] for r in rows)]]
    copy = Path(app.instance_path) / "sandbox-cache" / sha(to_csv(rows))
    assert copy.exists() and not copy.stat().st_mode & 0o222
