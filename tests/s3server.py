"""A real S3 peer for the tests: moto's ThreadedMotoServer (PyPI `moto[server]`) on a free loopback port.

The server runs in this process, in a thread, and keeps every object in memory; the fixture is
session-scoped and each test takes a fresh bucket from `S3Server.new_bucket()`, which returns an
`s3://bucket/prefix` URL, the environment a deployment would set, and the same settings as
`open_storage(..., s3_options=...)` so no test needs to touch os.environ. Nothing global is set.

The tests using it are marked `s3` and run once, on the PostgreSQL run (DATAFAIR_TEST_DB=postgres):
S3 behaves the same whatever the database, and the 20 MiB uploads are not worth doing twice. If
moto cannot start, they are skipped with the reason, unless DATAFAIR_REQUIRE_S3 is set (CI), where
that is a failure.

Known moto limits the tests work around: it does not enforce a pre-signed URL's expiry (the tests
check the X-Amz-Expires the URL carries instead).
"""

from __future__ import annotations

import os
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

START_TIMEOUT = 20.0
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@dataclass(frozen=True)
class Bucket:
    """A fresh bucket on the moto server: `url` for open_storage, `env` as a deployment would set it."""

    name: str
    prefix: str
    url: str
    env: dict[str, str]
    s3_options: dict[str, str]


@dataclass
class S3Server:
    """A running moto server: `endpoint_url` is its address for AWS_ENDPOINT_URL."""

    endpoint_url: str

    def client(self) -> Any:
        """A plain boto3 client on this server, to look at a bucket from outside the storage under test."""
        import boto3

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], region_name=CREDENTIALS["AWS_REGION"],
        )

    def new_bucket(self, prefix: str = "releases") -> Bucket:
        name = f"datafair-test-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return Bucket(
            name=name,
            prefix=prefix,
            url=f"s3://{name}/{prefix}",
            env={"AWS_ENDPOINT_URL": self.endpoint_url, **CREDENTIALS},
            s3_options={
                "endpoint_url": self.endpoint_url,
                "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                "region_name": CREDENTIALS["AWS_REGION"],
            },
        )


def _unavailable(reason: str) -> None:
    if os.environ.get("DATAFAIR_REQUIRE_S3"):
        pytest.fail(f"the moto S3 server is required (DATAFAIR_REQUIRE_S3) but {reason}")
    pytest.skip(f"moto S3 server unavailable: {reason}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as response:  # noqa: S310 - loopback peer
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto on a free loopback port for this test session (see the module docstring)."""
    if os.environ.get("DATAFAIR_TEST_DB", "sqlite") != "postgres":
        pytest.skip("S3 tests run once, on the PostgreSQL run (DATAFAIR_TEST_DB=postgres)")
    try:
        import boto3  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        _unavailable(f"{error.name} is not installed (pip install '.[test]')")
    # Port 0: the kernel picks a free port at bind time, so there is no window for another process to take it.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    failure: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as error:
            failure.append(error)

    # start() waits forever if the server thread dies before binding: bound it from the outside.
    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    starter.join(START_TIMEOUT)
    if failure or starter.is_alive():
        _unavailable(f"it did not start within {START_TIMEOUT:.0f} s: {failure[0] if failure else 'no answer'}")
    host, port = server.get_host_and_port()
    peer = S3Server(endpoint_url=f"http://{host}:{port}")
    try:
        if not _answers(peer.endpoint_url):
            _unavailable(f"it did not answer on {peer.endpoint_url}")
        yield peer
    finally:
        server.stop()
