"""Release storage (delivery.storage) on both backends: the filesystem (always) and S3 against a real
moto server (tests/s3server.py; the PostgreSQL run only). Each behaviour is one table row per backend."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from delivery.storage import (
    PART_BYTES,
    DigestMismatch,
    Storage,
    UploadTooLarge,
    open_storage,
    valid_sha256,
)
from tests.s3server import S3Server, s3_server  # noqa: F401 - fixture

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]


def _body(size: int, seed: int = 0) -> bytes:
    """`size` bytes that differ from one seed to another and do not repeat within a part."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 1024
        counter += 1
    return bytes(out[:size])


class CountingReader:
    """A request body of `size` bytes (or endless), counting what the storage asked for."""

    def __init__(self, size: int | None, seed: int = 1) -> None:
        self.size = size
        self.block = _body(MiB, seed)
        self.consumed = 0

    def read(self, n: int) -> bytes:
        remaining = n if self.size is None else min(n, self.size - self.consumed)
        remaining = min(remaining, len(self.block))
        self.consumed += remaining
        return self.block[:remaining]


@dataclass
class Backend:
    storage: Storage
    leftovers: Callable[[], list[str]]  # every stored or half-stored thing, for "nothing left behind"
    s3: Any = None  # (S3Server, Bucket) on S3


@pytest.fixture(params=["file", pytest.param("s3", marks=[pytest.mark.s3, pytest.mark.allow_hosts(["127.0.0.1"])])])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "file":
        root = tmp_path / "storage"
        storage = open_storage(root.as_uri())

        def file_leftovers() -> list[str]:
            return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

        yield Backend(storage, file_leftovers)
        return
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.new_bucket()
    storage = open_storage(bucket.url, s3_options=bucket.s3_options)
    client = server.client()

    def s3_leftovers() -> list[str]:
        objects = client.list_objects_v2(Bucket=bucket.name).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])
        return sorted([o["Key"] for o in objects] + [f"upload in progress: {u['Key']}" for u in uploads])

    yield Backend(storage, s3_leftovers, (server, bucket))


def _objects(backend: Backend) -> list[str]:
    return [name for name in backend.leftovers() if "objects/" in name and "in progress" not in name]


@pytest.mark.parametrize("size", [0, 3 * MiB + 17])
def test_round_trip_gives_back_the_bytes_under_their_sha256(backend: Backend, size: int) -> None:
    data = _body(size)
    stored = backend.storage.put_stream(io.BytesIO(data).read, limit=size)

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.bytes == size
    assert backend.storage.exists(stored.sha256)
    assert backend.storage.size(stored.sha256) == size
    with backend.storage.open(stored.sha256) as f:
        assert f.read() == data
    # Nothing but the object itself: no temp file or temp object, no multipart upload left open.
    assert len(backend.leftovers()) == 1
    if backend.storage.kind == "file":
        path = Path(backend.storage.path(stored.sha256))
        assert path.parts[-4:] == ("objects", stored.sha256[:2], stored.sha256[2:4], stored.sha256)
        assert path.stat().st_mode & 0o777 == 0o640
    else:
        assert backend.storage.path(stored.sha256) is None
        assert backend.leftovers() == [f"{backend.s3[1].prefix}/objects/{stored.sha256}"]


@pytest.mark.slow
def test_a_body_larger_than_one_part_goes_multipart_and_arrives_whole(backend: Backend) -> None:
    size = 20 * MiB + 5
    data = _body(size, seed=7)
    parts: list[int] = []
    if backend.storage.kind == "s3":
        backend.storage.client.meta.events.register(
            "before-parameter-build.s3.UploadPart", lambda params, **_: parts.append(len(params["Body"])))

    stored = backend.storage.put_stream(io.BytesIO(data).read, limit=size)

    assert stored == type(stored)(sha256=hashlib.sha256(data).hexdigest(), bytes=size)
    with backend.storage.open(stored.sha256) as f:
        assert hashlib.sha256(f.read()).hexdigest() == stored.sha256
    assert len(backend.leftovers()) == 1
    if backend.storage.kind == "s3":
        assert parts == [PART_BYTES, PART_BYTES, size - 2 * PART_BYTES]


@pytest.mark.parametrize("limit", [1000, PART_BYTES + MiB])
def test_a_body_over_the_limit_is_refused_early_and_leaves_nothing(backend: Backend, limit: int) -> None:
    endless = CountingReader(None)
    with pytest.raises(UploadTooLarge):
        backend.storage.put_stream(endless.read, limit=limit)
    # Refused once limit+1 bytes arrived, not after reading on to the end of a (here endless) body.
    assert endless.consumed == limit + 1
    assert backend.leftovers() == []

    one_too_many = CountingReader(limit + 1)
    with pytest.raises(UploadTooLarge):
        backend.storage.put_stream(one_too_many.read, limit=limit)
    assert backend.leftovers() == []

    exactly = backend.storage.put_stream(CountingReader(limit).read, limit=limit)
    assert exactly.bytes == limit
    assert len(backend.leftovers()) == 1


@pytest.mark.parametrize("size", [4096, PART_BYTES + MiB])
def test_a_digest_mismatch_is_refused_and_leaves_nothing(backend: Backend, size: int) -> None:
    data = _body(size, seed=3)
    announced = hashlib.sha256(data + b"x").hexdigest()
    with pytest.raises(DigestMismatch):
        backend.storage.put_stream(io.BytesIO(data).read, limit=size, expected_sha256=announced)
    assert backend.leftovers() == []
    assert not backend.storage.exists(hashlib.sha256(data).hexdigest())

    with pytest.raises(DigestMismatch):
        backend.storage.put_stream(io.BytesIO(data).read, limit=size, expected_sha256="not-hex")
    assert backend.leftovers() == []

    # The right digest, as a client may send it (upper-case hex), is accepted.
    right = hashlib.sha256(data).hexdigest()
    stored = backend.storage.put_stream(io.BytesIO(data).read, limit=size, expected_sha256=right.upper())
    assert stored.sha256 == right


def test_putting_the_same_content_twice_keeps_one_object(backend: Backend) -> None:
    data = _body(2 * MiB, seed=5)
    first = backend.storage.put_stream(io.BytesIO(data).read, limit=len(data))
    second = backend.storage.put_stream(io.BytesIO(data).read, limit=len(data))
    other = backend.storage.put_stream(io.BytesIO(data[:-1]).read, limit=len(data))

    assert first == second
    assert other.sha256 != first.sha256
    assert len(_objects(backend)) == 2
    assert len(backend.leftovers()) == 2
    with backend.storage.open(first.sha256) as f:
        assert f.read() == data

    backend.storage.delete(first.sha256)
    assert not backend.storage.exists(first.sha256)
    with pytest.raises(FileNotFoundError):
        backend.storage.size(first.sha256)
    with pytest.raises(FileNotFoundError):
        backend.storage.open(first.sha256)


@pytest.mark.parametrize("name", [
    "../../etc/passwd",
    "/etc/passwd",
    "a" * 64 + "\n",
    "A" * 64,
    "a" * 63,
    "../" + "a" * 61,
    "",
])
def test_a_name_that_is_not_a_sha256_never_reaches_the_store(backend: Backend, name: str) -> None:
    assert not valid_sha256(name)
    calls: list[Callable[[], object]] = [
        lambda: backend.storage.exists(name),
        lambda: backend.storage.size(name),
        lambda: backend.storage.path(name),
        lambda: backend.storage.open(name),
        lambda: backend.storage.delete(name),
        lambda: backend.storage.presigned_url(name, filename="a.csv", expires_in=30),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="not a sha256"):
            call()


@pytest.mark.s3
@pytest.mark.allow_hosts(["127.0.0.1"])
def test_a_presigned_url_downloads_the_bytes_as_an_attachment_for_at_most_a_minute(
    s3_server: S3Server,  # noqa: F811 - fixture
) -> None:
    bucket = s3_server.new_bucket()
    # Through the environment a deployment sets, as boto3 reads it: the settings the fixture hands out work there.
    env = {**os.environ, **bucket.env}
    script = textwrap.dedent(f"""
        import sys
        from delivery.storage import open_storage
        storage = open_storage({bucket.url!r})
        stored = storage.put_stream(sys.stdin.buffer.read, limit=1 << 20)
        print(stored.sha256)
        print(storage.presigned_url(stored.sha256, filename="sales-2026.csv", expires_in=3600))
    """)
    data = _body(100_000, seed=9)
    done = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, env=env,
                          cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    sha256, url = done.stdout.decode().split()
    assert sha256 == hashlib.sha256(data).hexdigest()

    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback peer
        assert response.status == 200
        assert response.headers["Content-Disposition"] == 'attachment; filename="sales-2026.csv"'
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.read() == data

    # moto does not enforce a pre-signed URL's expiry (a GET 2 s after a 1 s URL still answers 200), so
    # what is checked is the lifetime the URL carries, which a real S3 enforces: clamped to 60 s.
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["60"]
    storage = open_storage(bucket.url, s3_options=bucket.s3_options)
    short = storage.presigned_url(sha256, filename="a.csv", expires_in=1)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(short).query)["X-Amz-Expires"] == ["1"]

    # The signature covers the key: a URL edited to reach another object is refused.
    forged = url.replace(sha256, "0" * 64)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)  # noqa: S310 - loopback peer
    assert refused.value.code == 403
    refused.value.close()


def test_a_filename_that_could_break_out_of_content_disposition_is_refused(backend: Backend) -> None:
    stored = backend.storage.put_stream(io.BytesIO(b"abc").read, limit=3)
    for filename in ['a".csv', "a\r\nSet-Cookie: x", "a\\b"]:
        if backend.storage.kind == "file":
            assert backend.storage.presigned_url(stored.sha256, filename=filename, expires_in=30) is None
        else:
            with pytest.raises(ValueError, match="filename"):
                backend.storage.presigned_url(stored.sha256, filename=filename, expires_in=30)


@pytest.mark.parametrize("url", [
    "http://example.test/x",
    "file://host/abs/path",
    "file:relative/path",
    "s3://",
    "s3:///prefix",
    "s3://bucket/a/../b",
    "instance/storage",
    "",
])
def test_a_storage_url_that_is_neither_file_nor_s3_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="storage"):
        open_storage(url)


def test_a_file_url_opens_its_absolute_path(tmp_path: Path) -> None:
    root = tmp_path / "with space"
    storage = open_storage(root.as_uri())
    stored = storage.put_stream(io.BytesIO(b"hello").read, limit=5)
    assert storage.kind == "file"
    assert Path(storage.path(stored.sha256)).is_relative_to(root)
    assert (root / "tmp").is_dir() and not any((root / "tmp").iterdir())


@pytest.mark.slow
def test_a_64_mib_upload_to_the_filesystem_raises_peak_memory_by_less_than_16_mib(tmp_path: Path) -> None:
    # A fresh interpreter: this process's peak RSS already holds whatever earlier tests allocated.
    script = textwrap.dedent(f"""
        import resource
        from delivery.storage import open_storage

        storage = open_storage({(tmp_path / "storage").as_uri()!r})
        block = bytes(range(256)) * 4096
        total = 64 << 20
        sent = 0

        def read(n):
            global sent
            n = min(n, total - sent, len(block))
            sent += n
            return block[:n]

        storage.put_stream(lambda n: b"", limit=1)  # warm up imports and allocator outside the measure
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stored = storage.put_stream(read, limit=total)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert stored.bytes == total, stored
        print(after - before)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 0, done.stderr.decode()
    grown_kib = int(done.stdout.decode().split()[-1])  # ru_maxrss is in KiB on Linux
    assert grown_kib < 16 * 1024, f"peak RSS grew by {grown_kib} KiB for a 64 MiB upload"
