"""The benchmark's load generator: a separate process with its own keep-alive HTTP/1.1 client.

    python -m tests.bench.loadgen SPEC.json      # prints one JSON result on stdout

Requests are sent as pre-encoded bytes over plain sockets (reconnecting when the server answers
`Connection: close`, as gunicorn's sync workers do), so the client costs a few tens of
microseconds per request and the server stays the bottleneck. Closed loop: `concurrency`
connections, each sending its next request as soon as the last answer arrived.

Modes (SPEC["mode"]):
- `cycle`: every connection cycles through `requests` (starting at a different offset) for
  `warmup` + `duration` seconds; only answers after the warm-up are counted.
- `queue`: `requests` are taken once each from a shared queue until it is empty or `duration`
  passes (a trade is accepted once).
- `flow`: full trade flows one after another (offer, accept, two signatures, payment,
  confirmation, delivery, acceptance), timing each step.
"""

from __future__ import annotations

import collections
import hashlib
import json
import socket
import sys
import threading
import time
from typing import Any


class HTTPError(Exception):
    pass


class Client:
    """One HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.addr = (host, port)
        self.sock: socket.socket | None = None
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""

    def request(self, raw: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            fresh = self.sock is None
            if fresh:
                self.sock = socket.create_connection(self.addr, timeout=60)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.sock.sendall(raw)
                return self._response()
            except (ConnectionError, OSError):
                self.close()
                # A kept-alive connection the server closed while idle: retry once on a new one.
                if fresh or attempt:
                    raise
        raise HTTPError("unreachable")

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buf += chunk

    def _response(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length, close, chunked = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value == b"close"
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
        if chunked:
            body = self._chunked()
        elif length is not None:
            while len(self.buf) < length:
                self._fill()
            body, self.buf = self.buf[:length], self.buf[length:]
        else:
            try:
                while True:
                    self._fill()
            except ConnectionError:
                pass
            body, close = self.buf, True
        if close:
            self.close()
        return status, body

    def _chunked(self) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            size_line, _, self.buf = self.buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(self.buf) < size + 2:
                self._fill()
            body, self.buf = body + self.buf[:size], self.buf[size + 2:]
            if size == 0:
                return body


def encode(host: str, port: int, method: str, path: str, headers: dict[str, str] | None = None,
           body: Any = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "User-Agent: datafair-bench",
             "Accept: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    payload = b""
    if body is not None:
        payload = json.dumps(body, ensure_ascii=False).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    elif method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _result(latencies: list[tuple[int, float]], statuses: collections.Counter, bad: list[str],
            elapsed: float) -> dict[str, Any]:
    return {"n": len(latencies), "elapsed": elapsed, "rps": len(latencies) / elapsed if elapsed > 0 else 0.0,
            "lat_ms": [ms for _, ms in latencies], "index": [i for i, _ in latencies],
            "status": {str(k): v for k, v in statuses.items()}, "bad": bad[:5]}


def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], spec["port"]
    raws = [encode(host, port, r["method"], r["path"], r.get("headers"), r.get("body")) for r in spec["requests"]]
    concurrency, mode = int(spec["concurrency"]), spec["mode"]
    warmup = float(spec.get("warmup", 0)) if mode == "cycle" else 0.0
    duration = float(spec["duration"])
    ok_statuses = set(spec.get("ok", [200]))
    queue = collections.deque(enumerate(raws))
    lock = threading.Lock()
    latencies: list[tuple[int, float]] = []
    statuses: collections.Counter = collections.Counter()
    bad: list[str] = []
    start_barrier = threading.Barrier(concurrency + 1)
    clock: dict[str, float] = {}

    def worker(k: int) -> None:
        client = Client(host, port)
        mine: list[tuple[int, float]] = []
        seen: collections.Counter = collections.Counter()
        errors: list[str] = []
        i = (k * len(raws)) // concurrency
        start_barrier.wait()
        counting_from, stop_at = clock["count"], clock["stop"]
        while True:
            if mode == "queue":
                try:
                    with lock:
                        index, raw = queue.popleft()
                except IndexError:
                    break
            else:
                index, raw = i % len(raws), raws[i % len(raws)]
                i += 1
            began = time.perf_counter()
            if began >= stop_at:
                break
            try:
                status, body = client.request(raw)
            except OSError as exc:
                status, body = 599, str(exc).encode()
            took = time.perf_counter() - began
            if began >= counting_from:
                mine.append((index, took * 1000))
                seen[status] += 1
                if status not in ok_statuses and len(errors) < 5:
                    errors.append(f"{status} {body[:300].decode(errors='replace')}")
        client.close()
        with lock:
            latencies.extend(mine)
            statuses.update(seen)
            bad.extend(errors)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(concurrency)]
    for t in threads:
        t.start()
    now = time.perf_counter()
    clock.update(count=now + warmup, stop=now + warmup + duration)
    start_barrier.wait()
    for t in threads:
        t.join()
    elapsed = min(time.perf_counter(), clock["stop"]) - clock["count"]
    return _result(latencies, statuses, bad, elapsed)


STEPS = ("offer", "accept", "sign_buyer", "sign_seller", "pay", "confirm", "deliver", "acceptance")


def run_flows(spec: dict[str, Any]) -> dict[str, Any]:
    """Full trade flows, one after another: per step, the latency of each flow."""
    host, port = spec["host"], spec["port"]
    client = Client(host, port)
    auth = {role: {"Authorization": f"Bearer {token}"} for role, token in spec["tokens"].items()}
    times: dict[str, list[float]] = {s: [] for s in STEPS}
    failures: list[str] = []

    def call(step: str, method: str, path: str, role: str, body: Any, expect: int) -> dict[str, Any]:
        raw = encode(host, port, method, path, auth[role], body)
        began = time.perf_counter()
        status, answer = client.request(raw)
        times[step].append((time.perf_counter() - began) * 1000)
        if status != expect:
            raise HTTPError(f"{step}: {status} {answer[:300].decode(errors='replace')}")
        return json.loads(answer)

    for n, product in enumerate(spec["products"]):
        try:
            terms = {"scope": "commercial", "duration_days": 365, "delivery_mode": product["delivery_mode"]}
            offer = call("offer", "POST", "/api/v1/offers", "buyer", {
                "product_id": product["id"], "price": {"amount": product["amount"], "currency": product["currency"]},
                "terms": terms}, 201)
            contract = call("accept", "POST", f"/api/v1/offers/{offer['id']}/accept", "seller", None, 201)
            call("sign_buyer", "POST", f"/api/v1/contracts/{contract['id']}/signatures", "buyer", {}, 201)
            signed = call("sign_seller", "POST", f"/api/v1/contracts/{contract['id']}/signatures", "seller", {}, 201)
            trade_id = signed["trade_id"]
            payment = call("pay", "POST", f"/api/v1/trades/{trade_id}/payments", "buyer", {"provider": "manual"}, 201)
            call("confirm", "POST", f"/api/v1/payments/{payment['id']}/confirm", "operator", None, 200)
            call("deliver", "POST", f"/api/v1/trades/{trade_id}/delivery", "seller",
                 {"reference": f"bench delivery {n}", "sha256": hashlib.sha256(str(n).encode()).hexdigest()}, 200)
            done = call("acceptance", "POST", f"/api/v1/trades/{trade_id}/acceptance", "buyer", None, 200)
            if done["status"] != "settled":
                raise HTTPError(f"trade {trade_id} ended {done['status']}")
        except (HTTPError, OSError, ValueError) as exc:
            failures.append(str(exc))
    client.close()
    return {"steps": times, "flows": len(spec["products"]) - len(failures), "failures": failures[:5]}


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    result = run_flows(spec) if spec["mode"] == "flow" else run_load(spec)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
