"""Bodies over MAX_BODY_BYTES are 413 whatever the transfer encoding, and nothing is written.

werkzeug's `max_content_length` refuses a declared Content-Length, but a `Transfer-Encoding: chunked`
body used to be cut at the limit without an error: 3 MiB whose first MiB was a valid product created
the product. Checked with the Flask test client on every POST/PATCH/PUT route of the URL map (the
raw-body Stripe webhook included), and under a real gunicorn with chunked uploads on a raw socket.

The file upload (`PUT /releases/{id}/files/{name}`) streams its raw body under its own limit,
DATAFAIR_MAX_UPLOAD_BYTES, instead: past it 413 whatever the encoding, below it a body far over the
JSON limit is taken whole.

The test client passes the body through as the server would after de-chunking it, with
`wsgi.input_terminated` set as gunicorn and werkzeug's server set it for chunked requests.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from exchange.api import MAX_BODY_BYTES
from exchange.db import db
from listings.models import Product
from tests.api.test_ratelimit import gunicorns
from tests.certflow import product_body
from tests.security.matrix import ROWS, outside_api
from tests.security.test_authorization_matrix import openapi_path
from tests.world import PRINCIPALS

BODY_METHODS = ("POST", "PATCH", "PUT")
TAIL = 2 * 1024 * 1024  # what arrives after the first (valid) mebibyte
CHUNK = 64 * 1024


# One populated exchange for the module: every request here is refused, or writes an object of its own.
@pytest.fixture
def world(shared_world):
    return shared_world


def padded(body: Any, size: int = MAX_BODY_BYTES) -> bytes:
    """`body` as JSON followed by whitespace up to exactly `size` bytes: valid JSON of that length."""
    raw = json.dumps(body, ensure_ascii=False).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def oversized(body: Any) -> bytes:
    """A valid body of exactly the limit, then more: read only up to the limit, it would be accepted."""
    return padded(body) + b"x" * TAIL


def chunked(world, method: str, path: str, actor, body: bytes) -> Any:
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    if actor is not None:
        headers.update(actor.headers)
    return world.api.client.open(path, method=method, headers=headers, input_stream=io.BytesIO(body),
                                 environ_overrides={"wsgi.input_terminated": True})


def snapshot(app) -> dict[str, str]:
    """A digest of every table's rows: what a request changed, table by table."""
    with app.app_context():
        out = {}
        for table in db.metadata.sorted_tables:
            rows = sorted(repr(tuple(r)) for r in db.session.execute(select(table)).all())
            out[table.name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        db.session.rollback()
        return out


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(t for t in after if before.get(t) != after[t])


def product_count(app) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(Product))
        db.session.rollback()
        return n


# Every body-taking route once (its first matrix row), as a principal that would succeed with a valid body.
BODY_ROWS = list({(row.method, row.rule): row for row in reversed(ROWS) if row.method in BODY_METHODS}.values())
BODY_ROWS.sort(key=lambda row: (row.rule, row.method))
# Rows whose body is raw bytes (the file upload) have their own limit, tested below; the rest are JSON.
UPLOAD_ROUTE = ("PUT", "/api/v1/releases/{release_id}/files/{name}")
JSON_ROWS = [row for row in BODY_ROWS if not isinstance(row.body, bytes)]
UPLOAD_LIMIT = 64 * 1024  # DATAFAIR_MAX_UPLOAD_BYTES for these tests: small, so over it is cheap


def _principal(row) -> str:
    return next((p for p in PRINCIPALS if row.expect[p] < 300), "anonymous")


def test_every_body_route_of_the_url_map_is_swept(world):
    # The gateway's data plane forwards a body to the vendor under a limit of its own
    # (gateway.MAX_REQUEST_BYTES), not the JSON limit swept here, and has no matrix row (a `dfk_` key
    # is its only credential).
    routes = {(m, openapi_path(rule.rule)) for rule in world.api.app.url_map.iter_rules()
              if not outside_api(rule) for m in rule.methods if m in BODY_METHODS}
    swept = {(row.method, row.rule) for row in BODY_ROWS}
    assert routes == swept, f"not swept: {sorted(routes - swept)}; stale: {sorted(swept - routes)}"
    assert ("POST", "/api/v1/webhooks/stripe") in swept  # the raw-body route too
    # The one route outside the JSON limit is the upload, swept by the tests of its own limit.
    assert {(row.method, row.rule) for row in BODY_ROWS if row not in JSON_ROWS} == {UPLOAD_ROUTE}


@pytest.mark.parametrize("row", JSON_ROWS, ids=[f"{r.method} {r.rule}" for r in JSON_ROWS])
def test_an_oversized_chunked_body_is_413_on_every_route_and_changes_nothing(world, row):
    principal = _principal(row)
    body = oversized(row.body_for(world, principal) or {})
    before = snapshot(world.api.app)
    r = chunked(world, row.method, world.fill(row.path), world.actors[principal], body)
    assert r.status_code == 413, (row.method, row.path, principal, r.status_code, r.get_data()[:300])
    assert r.mimetype == "application/problem+json"
    assert r.get_json()["status"] == 413
    assert not changed(before, snapshot(world.api.app)), "a refused body changed the database"


def test_a_chunked_product_over_the_limit_creates_nothing(world):
    vendor = world.actors["owner"]
    count = product_count(world.api.app)
    r = chunked(world, "POST", "/api/v1/products", vendor, oversized(product_body()))
    assert r.status_code == 413 and r.mimetype == "application/problem+json", r.get_data()[:300]
    assert product_count(world.api.app) == count


@pytest.mark.parametrize("size", [MAX_BODY_BYTES, MAX_BODY_BYTES - 1, 200_000])
def test_a_chunked_body_up_to_the_limit_still_works(world, size):
    vendor = world.actors["owner"]
    count = product_count(world.api.app)
    r = chunked(world, "POST", "/api/v1/products", vendor, padded(product_body(), size))
    assert r.status_code == 201, r.get_json()
    assert product_count(world.api.app) == count + 1


def test_a_declared_length_over_the_limit_is_still_413(world):
    vendor = world.actors["owner"]
    count = product_count(world.api.app)
    r = world.api.client.post("/api/v1/products", data=oversized(product_body()),
                              headers={**vendor.headers, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.mimetype == "application/problem+json"
    assert product_count(world.api.app) == count


# -- the file upload: its own limit ------------------------------------------------------------------
@pytest.fixture
def upload_limit(world):
    app = world.api.app
    saved = app.config["MAX_UPLOAD_BYTES"]
    app.config["MAX_UPLOAD_BYTES"] = UPLOAD_LIMIT
    yield UPLOAD_LIMIT
    app.config["MAX_UPLOAD_BYTES"] = saved


def new_release(world) -> str:
    """A draft release of its own, on the world's certified file product."""
    r = world.api.post(f"products/{world.ids['file_product']}/releases", world.actors["owner"],
                       json={"label": "body limits"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def chunked_upload(world, release_id: str, body: bytes, name: str = "counts.bin") -> Any:
    headers = {**world.actors["owner"].headers, "Content-Type": "application/octet-stream",
               "Transfer-Encoding": "chunked"}
    return world.api.client.open(f"/api/v1/releases/{release_id}/files/{name}", method="PUT", headers=headers,
                                 input_stream=io.BytesIO(body), environ_overrides={"wsgi.input_terminated": True})


def release_files(world, release_id: str) -> list[dict[str, Any]]:
    return world.api.get(f"releases/{release_id}", world.actors["owner"]).get_json()["files"]


def test_a_chunked_upload_over_its_own_limit_is_413_and_stores_nothing(world, upload_limit):
    release_id = new_release(world)
    before = snapshot(world.api.app)
    r = chunked_upload(world, release_id, b"x" * (upload_limit + 1))
    assert r.status_code == 413, (r.status_code, r.get_data()[:300])
    assert r.mimetype == "application/problem+json" and r.get_json()["status"] == 413
    assert not changed(before, snapshot(world.api.app)), "a refused upload changed the database"
    assert release_files(world, release_id) == []


@pytest.mark.parametrize("chunk", [True, False], ids=["chunked", "declared"])
def test_an_upload_of_exactly_its_limit_is_a_file(world, upload_limit, chunk):
    release_id = new_release(world)
    body = bytes(range(256)) * (upload_limit // 256)
    if chunk:
        r = chunked_upload(world, release_id, body)
    else:
        r = world.api.client.put(f"/api/v1/releases/{release_id}/files/counts.bin", data=body,
                                 headers={**world.actors["owner"].headers, "Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["bytes"] == upload_limit and r.get_json()["sha256"] == hashlib.sha256(body).hexdigest()


def test_a_declared_upload_length_over_its_own_limit_is_413(world, upload_limit):
    release_id = new_release(world)
    r = world.api.client.put(f"/api/v1/releases/{release_id}/files/counts.bin", data=b"x" * (upload_limit + 1),
                             headers={**world.actors["owner"].headers, "Content-Type": "application/octet-stream"})
    assert r.status_code == 413 and r.mimetype == "application/problem+json", r.get_data()[:300]
    assert release_files(world, release_id) == []


def test_an_upload_far_over_the_json_limit_is_taken_whole(world):
    """The 1 MiB JSON limit is not the upload's: 3 MiB arrive whole, chunked, and are not parsed."""
    app = world.api.app
    saved = app.config["MAX_UPLOAD_BYTES"]
    app.config["MAX_UPLOAD_BYTES"] = 4 * MAX_BODY_BYTES
    try:
        release_id = new_release(world)
        body = oversized({"not": "parsed"})  # valid JSON of exactly the JSON limit, then 2 MiB more
        r = chunked_upload(world, release_id, body, name="big.json")
        assert r.status_code == 201, r.get_data()[:300]
        assert r.get_json()["bytes"] == len(body) == MAX_BODY_BYTES + TAIL
        assert r.get_json()["sha256"] == hashlib.sha256(body).hexdigest()
    finally:
        app.config["MAX_UPLOAD_BYTES"] = saved
    assert [f["bytes"] for f in release_files(world, release_id)] == [MAX_BODY_BYTES + TAIL]


# -- a real gunicorn, raw HTTP/1.1 -------------------------------------------------------------------

def raw_post(base: str, path: str, headers: dict[str, str], body: bytes, *, chunk: bool,
             method: str = "POST") -> tuple[int, bytes]:
    """POST (or `method`) `body` chunked (in CHUNK pieces) or with a Content-Length, over a plain socket."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.putrequest(method, path)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Transfer-Encoding" if chunk else "Content-Length", "chunked" if chunk else str(len(body)))
        conn.endheaders()
        try:
            for i in range(0, len(body), CHUNK):
                piece = body[i:i + CHUNK]
                conn.send(b"%x\r\n%b\r\n" % (len(piece), piece) if chunk else piece)
            if chunk:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: its answer is still to be read
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_under_gunicorn_chunked_and_declared_oversize_bodies_are_413(world, database, tmp_path):
    vendor = world.actors["owner"]
    headers = {"Content-Type": "application/json", **vendor.headers}
    release_id = new_release(world)
    upload = f"/api/v1/releases/{release_id}/files/counts.bin"
    upload_headers = {**vendor.headers, "Content-Type": "application/octet-stream"}
    with gunicorns(database.url, tmp_path, count=1, DATAFAIR_MAX_UPLOAD_BYTES=str(2 * MAX_BODY_BYTES),
                   DATAFAIR_STORAGE_URL=f"file://{tmp_path / 'storage'}") as (base,):
        count = product_count(world.api.app)
        status, answer = raw_post(base, "/api/v1/products", headers, oversized(product_body()), chunk=True)
        assert status == 413, answer[:300]
        assert json.loads(answer)["status"] == 413
        assert product_count(world.api.app) == count
        # The raw-body route has the same limit.
        status, answer = raw_post(base, "/api/v1/webhooks/stripe", {"Content-Type": "application/json"},
                                  oversized({}), chunk=True)
        assert status == 413, answer[:300]
        status, answer = raw_post(base, "/api/v1/products", headers, oversized(product_body()), chunk=False)
        assert status == 413, answer[:300]
        assert product_count(world.api.app) == count
        status, answer = raw_post(base, "/api/v1/products", headers, padded(product_body()), chunk=True)
        assert status == 201, answer[:300]
        assert product_count(world.api.app) == count + 1
        # The upload's own limit (2 MiB here), chunked and declared; under it, past the JSON limit, it is a file.
        for chunk in (True, False):
            status, answer = raw_post(base, upload, upload_headers, b"x" * (2 * MAX_BODY_BYTES + 1), chunk=chunk,
                                      method="PUT")
            assert status == 413, (chunk, answer[:300])
        assert release_files(world, release_id) == []
        body = b"y" * (MAX_BODY_BYTES + CHUNK)
        status, answer = raw_post(base, upload, upload_headers, body, chunk=True, method="PUT")
        assert status == 201, answer[:300]
        assert json.loads(answer)["sha256"] == hashlib.sha256(body).hexdigest()
