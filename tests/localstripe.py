"""A real Stripe peer for the tests: localstripe (PyPI) on a free loopback port, plus a webhook receiver.

localstripe keeps its state in a fixed file (/tmp/localstripe.pickle), so two instances must never
run at once on this machine: the fixture holds an exclusive lock next to that file while its
instance runs (xdist workers and other checkouts wait their turn). The fixture is module-scoped so
the lock is held for one test module at a time, not for a whole worker's session. Each instance
starts `--from-scratch`; the fixture polls until it answers and terminates it afterwards.

If localstripe cannot start, the tests using it are skipped with the reason, unless
DATAFAIR_REQUIRE_LOCALSTRIPE is set (CI), where that is a failure.

Known localstripe limits the tests work around: it refuses unknown PaymentIntent parameters; it
does not implement `confirm(payment_method=...)` (attach the method with an update first); it
ignores Idempotency-Key; it sends each webhook once, about a second late; it has no Transfers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import stripe

STATE_FILE = Path("/tmp/localstripe.pickle")  # noqa: S108 - hard-coded in localstripe
LOCK_FILE = Path("/tmp/localstripe.pickle.lock")  # noqa: S108 - next to the file it guards
API_KEY = "sk_test_datafair_localstripe"
START_TIMEOUT = 20.0
LOCK_TIMEOUT = 180.0


@dataclass
class LocalStripe:
    """A running localstripe: `url` is its API base for `STRIPE_API_BASE`."""

    url: str
    api_key: str = API_KEY
    http_clients: list[stripe.HTTPClient] = field(default_factory=list)

    def customer_client(self) -> stripe.StripeClient:
        """A plain StripeClient on this peer, to act as the customer (attach a card, confirm)."""
        http = stripe.new_default_http_client()
        self.http_clients.append(http)
        return stripe.StripeClient(self.api_key, base_addresses={"api": self.url}, http_client=http)

    def pay_with_test_card(self, payment_intent_id: str, card: str = "pm_card_visa") -> dict:
        """What the buyer's browser does: attach a test card, then confirm (localstripe cannot do both
        in one confirm call)."""
        client = self.customer_client()
        client.v1.payment_intents.update(payment_intent_id, {"payment_method": card})
        return client.v1.payment_intents.confirm(payment_intent_id)

    def register_webhook(self, name: str, url: str, secret: str, events: list[str] | None = None) -> None:
        """Point localstripe's webhook `name` at `url`, signed with `secret`."""
        data = [("url", url), ("secret", secret)] + [("events[]", e) for e in events or []]
        request = urllib.request.Request(  # noqa: S310 - loopback peer
            f"{self.url}/_config/webhooks/{urllib.parse.quote(name)}",
            data=urllib.parse.urlencode(data).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback peer
            assert response.status == 200


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    request = urllib.request.Request(  # noqa: S310 - loopback peer
        f"{url}/v1/payment_intents", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:  # noqa: S310 - loopback peer
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _unavailable(reason: str) -> None:
    if os.environ.get("DATAFAIR_REQUIRE_LOCALSTRIPE"):
        pytest.fail(f"localstripe is required (DATAFAIR_REQUIRE_LOCALSTRIPE) but {reason}")
    pytest.skip(f"localstripe unavailable: {reason}")


@contextlib.contextmanager
def _exclusive_lock() -> Iterator[None]:
    try:
        fd = os.open(LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        fd = os.open(LOCK_FILE, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    _unavailable(f"another localstripe held {LOCK_FILE} for over {LOCK_TIMEOUT:.0f} s")
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock


@pytest.fixture(scope="module")
def localstripe() -> Iterator[LocalStripe]:
    """localstripe on a free loopback port for this test module (see the module docstring)."""
    try:
        import localstripe as _  # noqa: F401
    except ImportError:
        _unavailable("the localstripe package is not installed (pip install '.[test]')")
    with _exclusive_lock(), tempfile.TemporaryFile() as log:
        if STATE_FILE.exists() and not os.access(STATE_FILE, os.W_OK):
            _unavailable(f"{STATE_FILE} belongs to another user; localstripe could not save its state")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        peer = LocalStripe(url=url)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _answers(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-800:]
                    _unavailable(f"it did not answer on {url} (exit code {proc.poll()}): {tail}")
                time.sleep(0.05)
            yield peer
        finally:
            for http in peer.http_clients:
                http.close()
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


class WebhookReceiver:
    """A tiny HTTP server on loopback that stores every POST it receives and answers 200."""

    def __init__(self) -> None:
        self.deliveries: queue.Queue[Delivery] = queue.Queue()
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                received.put(Delivery(body=body, headers={k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait_for(self, accept: Callable[[Delivery], bool], timeout: float = 10.0) -> Delivery:
        """The first delivery `accept` takes, polling until `timeout` (localstripe is ~1 s late)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                delivery = self.deliveries.get(timeout=left)
            except queue.Empty:
                break
            if accept(delivery):
                return delivery
        raise AssertionError(f"no matching webhook arrived within {timeout} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
