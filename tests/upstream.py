"""A real upstream API for the gateway tests: a threaded HTTP server on a free loopback port that
records what it received (method, path, headers, body) and answers as each test tells it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """`url` is its base; `received` what reached it; `answer(received) -> (status, headers, body)`."""

    url: str
    received: list[Received] = field(default_factory=list)
    answer: Callable[[Received], tuple[int, dict[str, str], bytes]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.received)


def _default(r: Received) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"path": r.path, "method": r.method, "rows": [{"station": "体育西路", "trips": 5231}]})
    return 200, {"Content-Type": "application/json", "Set-Cookie": "upstream=1", "X-Vendor": "gz"}, body.encode()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    state: dict[str, Upstream] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            got = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                           self.rfile.read(length) if length else b"")
            up = state["u"]
            with up.lock:
                up.received.append(got)
            status, headers, body = (up.answer or _default)(got)
            if status == -1:  # the test asked for a slow drip: headers, then a byte a second
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):
                    try:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(1)
                return
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["u"] = Upstream(url=f"http://127.0.0.1:{server.server_address[1]}/v2")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["u"]
    finally:
        server.shutdown()
        server.server_close()
