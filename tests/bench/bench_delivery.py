"""Release files through gunicorn: a large file streamed up (`PUT /releases/{id}/files/{name}`) and
down (`GET /downloads/{token}`, `send_file` on the filesystem backend), next to the same bytes moved
by `cp` and `cat` on the same disk in the same run.

Set-up: a fresh SQLite database (migrations), one gunicorn worker (deploy/gunicorn.conf.py) whose
storage is a temp directory beside the source file, and through the API (in-process test client,
the same routes) a vendor, a buyer, a certified file product, a signed and paid trade (so an active
entitlement) and a draft release. The timed requests go over loopback to gunicorn:

- upload: the source file PUT with Content-Length and Content-SHA256, streamed from disk in 1 MiB
  blocks; baselines `cp` of the file into the storage directory followed by an fsync of the copy
  (the server fsyncs before the object takes its name), plain `cp` (page cache only) and `cat`;
- download: the release published, a link issued, the file read to nowhere in 1 MiB chunks;
  baseline `cat` of the stored object to /dev/null; one more download is hashed and checked
  against the published manifest (which is itself re-derived with RFC 8785);
- the last 1 MiB by `Range` (206), next to `GET /health/live` on the same worker.

Every pair alternates (baseline, figure) and ratios are taken pair by pair. During each transfer a
thread samples the worker's VmRSS every 50 ms: the growth is the highest sample minus the one taken
just before the request. The source file lives in the page cache (generated just before), so the
upload and `cp` read it alike, and the download and `cat` read the stored object alike.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.bench.harness import (
    CLIENT_CPUS,
    OUT,
    PIN,
    SERVER_CPUS,
    Server,
    latency,
    log,
    seeding_app,
    spread,
    sqlite_database,
)

MIB = 1 << 20
CHUNK = MIB
FILE_NAME = "traffic-archive.bin"
SAMPLE_SECONDS = 0.05
# Headroom over the file: the server's 413 must not be what gets measured.
UPLOAD_LIMIT = 4 << 30

# -- the source file and the baselines -----------------------------------------------------------------
def fit_size(wanted: int, where: Path) -> int:
    """`wanted` bytes if the disk holds three copies (source, stored object, the cp baseline's copy)
    with room to spare, else 512 MiB (said in the log and the results)."""
    free = shutil.disk_usage(where).free
    if free >= 3 * wanted + (1 << 30):
        return wanted
    fallback = 512 * MIB
    if free < 3 * fallback + (1 << 30):
        raise RuntimeError(f"delivery bench needs about {3 * fallback / MIB:.0f} MiB free in {where}; "
                           f"{free / MIB:.0f} MiB left")
    log(f"  only {free / MIB:.0f} MiB free: the delivery bench uses {fallback // MIB} MiB, not {wanted // MIB}")
    return fallback


def make_source(path: Path, size: int) -> str:
    """`size` random bytes (incompressible, so no layer can shortcut them); returns their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def _pinned(cmd: list[str]) -> list[str]:
    # The baselines do the server's share of the work, so they run where the server runs.
    return ["taskset", "-c", SERVER_CPUS, *cmd] if PIN else cmd


def _timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(_pinned(cmd), check=True, capture_output=True)
    return time.perf_counter() - started


def cat_seconds(path: Path) -> float:
    return _timed(["sh", "-c", 'cat "$1" > /dev/null', "cat", str(path)])


def cp_seconds(src: Path, dst: Path, *, fsync: bool) -> float:
    script = 'cp "$1" "$2" && sync "$2"' if fsync else 'cp "$1" "$2"'
    try:
        return _timed(["sh", "-c", script, "cp", str(src), str(dst)])
    finally:
        dst.unlink(missing_ok=True)


# The transport's ceiling: the same client reading the same object from a bare HTTP answer made with
# sendfile(2) by a process on the server's core (what gunicorn does for a full send_file at best).
SENDFILE_SERVER = r"""
import os, socket, sys
path, ready = sys.argv[1], sys.argv[2]
size = os.path.getsize(path)
with socket.create_server(("127.0.0.1", 0)) as srv:
    with open(ready, "w") as f:
        f.write(str(srv.getsockname()[1]))
    while True:
        conn, _ = srv.accept()
        with conn, open(path, "rb") as src:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                request += chunk
            if request.startswith(b"QUIT"):
                break
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
            conn.sendfile(src)
"""


class SendfilePeer:
    def __init__(self, path: Path, work: Path) -> None:
        self.path, self.ready = path, work / "sendfile.port"

    def __enter__(self) -> SendfilePeer:
        import sys

        self.ready.unlink(missing_ok=True)
        self.proc = subprocess.Popen(_pinned([sys.executable, "-c", SENDFILE_SERVER, str(self.path),
                                              str(self.ready)]))
        deadline = time.monotonic() + 30
        while not (self.ready.exists() and self.ready.read_text()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the sendfile baseline server did not start")
            time.sleep(0.05)
        self.port = int(self.ready.read_text())
        return self

    def __exit__(self, *exc: Any) -> None:
        self.proc.kill()
        self.proc.wait()


# -- the worker's memory --------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class RssSampler:
    """VmRSS of one pid every 50 ms in a thread, from just before a transfer to just after it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                self.samples.append(rss_mb(self.pid))
            except FileNotFoundError:  # the worker died (a timeout): what was sampled stands
                return

    def __enter__(self) -> RssSampler:
        self.before = rss_mb(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        with suppress(FileNotFoundError):
            self.samples.append(rss_mb(self.pid))

    @property
    def growth(self) -> float:
        return max([self.before, *self.samples]) - self.before


@contextmanager
def client_core() -> Any:
    """This process (the HTTP client) on the load generator's core while it measures."""
    if not PIN:
        yield
        return
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(CLIENT_CPUS)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


# -- HTTP -------------------------------------------------------------------------------------------------
def _conn(server: Server | SendfilePeer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=600, blocksize=CHUNK)


def put_file(server: Server, token: str, release_id: str, src: Path, size: int, sha256: str) -> tuple[float, Any]:
    """PUT the file streamed from disk; (seconds to the answer, its JSON)."""
    import json

    conn = _conn(server)
    try:
        with open(src, "rb") as body:
            started = time.perf_counter()
            conn.request("PUT", f"/api/v1/releases/{release_id}/files/{FILE_NAME}", body=body,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream",
                                  "Content-Length": str(size), "Content-SHA256": sha256})
            resp = conn.getresponse()
            answer = resp.read()
            took = time.perf_counter() - started
    finally:
        conn.close()
    if resp.status != 201:
        raise RuntimeError(f"upload answered {resp.status}: {answer[:500]!r}")
    return took, json.loads(answer)


def get(server: Server | SendfilePeer, path: str, *, hasher: Any = None, headers: dict[str, str] | None = None,
        keep: bool = False) -> tuple[float, int, dict[str, str], int, bytes]:
    """GET `path`, reading the body in 1 MiB chunks; (seconds, status, headers, bytes read, body if `keep`)."""
    conn = _conn(server)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    kept = bytearray()
    total = 0
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        while n := resp.readinto(buf):
            total += n
            if hasher is not None:
                hasher.update(view[:n])
            if keep:
                kept += view[:n]
        took = time.perf_counter() - started
    finally:
        conn.close()
    return took, resp.status, {k.lower(): v for k, v in resp.getheaders()}, total, bytes(kept)


def _api(server: Server, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    import json

    conn = _conn(server)
    try:
        payload = json.dumps(body if body is not None else {}).encode()
        conn.request(method, "/api/v1/" + path, body=payload,
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = resp.read()
    finally:
        conn.close()
    if resp.status not in (200, 201):
        raise RuntimeError(f"{method} {path} answered {resp.status}: {answer[:500]!r}")
    return json.loads(answer)


# -- set-up -----------------------------------------------------------------------------------------------
def seed(url: str, storage_url: str) -> dict[str, Any]:
    """A migrated database with a vendor, a buyer, a file product certified and sold (its trade
    escrowed, the entitlement active) and a draft release, made through the API in-process."""
    from tests.deliveryflow import entitlement_of, pay, signed_trade

    with seeding_app(url, storage_url) as (_app, api):
        vendor, buyer = api.vendor(), api.enterprise()
        trade = signed_trade(api, vendor, buyer, title="广州市交通流量历史档案 Guangzhou traffic archive (bench)")
        trade = pay(api, buyer, trade["id"])
        ent = entitlement_of(api, buyer, trade["id"])
        r = api.post(f"products/{trade['product_id']}/releases", vendor, json={"label": "bench", "notes": "bench"})
        if r.status_code != 201:
            raise RuntimeError(f"release: {r.status_code} {r.get_json()}")
        return {"vendor": vendor.token, "buyer": buyer.token, "trade_id": trade["id"], "entitlement_id": ent["id"],
                "release_id": r.get_json()["id"], "trade_status": trade["status"]}


def _mib_s(size: int, seconds: float) -> float:
    return size / MIB / seconds


# -- the benchmark ----------------------------------------------------------------------------------------
def measure(*, size: int, rounds: int, range_repeat: int) -> dict[str, Any]:
    started = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    size = fit_size(size, OUT)
    work = Path(tempfile.mkdtemp(dir=OUT, prefix="delivery-"))
    try:
        return _measure(work, size=size, rounds=rounds, range_repeat=range_repeat) | {
            "seconds": time.perf_counter() - started}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(work: Path, *, size: int, rounds: int, range_repeat: int) -> dict[str, Any]:
    from exchange.canonical import sha256_hex

    src, root = work / "source.bin", work / "storage"
    root.mkdir()
    t = time.perf_counter()
    src_sha = make_source(src, size)
    log(f"  source file {size // MIB} MiB: {time.perf_counter() - t:.1f} s")
    url = sqlite_database("delivery.db", fresh=True)
    ids = seed(url, "file://" + str(root))
    env = {"DATAFAIR_STORAGE_URL": "file://" + str(root), "DATAFAIR_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)}
    out: dict[str, Any] = {"bytes": size, "mib": size // MIB, "rounds": rounds, "workers": 1}
    with Server("delivery", "app:app", url, "/api/v1/health/live", workers=1, env=env) as server, client_core():
        (worker,) = server.workers()
        # Warm the worker's upload path (imports, the storage object) with a small file of the same name.
        put_file(server, ids["vendor"], ids["release_id"], _small(work), 4096, _sha_of(work / "small.bin"))
        out["worker_rss_before_mb"] = rss_mb(worker)

        up: dict[str, list[float]] = {"s": [], "rss": [], "cat": [], "cp": [], "cp_fsync": []}
        stored: dict[str, Any] = {}
        for _ in range(rounds):
            up["cat"].append(cat_seconds(src))
            up["cp_fsync"].append(cp_seconds(src, root / "cp-baseline.bin", fsync=True))
            up["cp"].append(cp_seconds(src, root / "cp-baseline.bin", fsync=False))
            with RssSampler(worker) as rss:
                took, stored = put_file(server, ids["vendor"], ids["release_id"], src, size, src_sha)
            up["s"].append(took)
            up["rss"].append(rss.growth)
            if stored["sha256"] != src_sha or stored["bytes"] != size:
                raise RuntimeError(f"stored {stored} is not the source ({src_sha}, {size} bytes)")
        if server.workers() != [worker]:
            raise RuntimeError("the gunicorn worker was replaced during the uploads (timeout?)")
        rates = [_mib_s(size, s) for s in up["s"]]
        out["upload"] = {
            "mib_s": spread(rates), "seconds": spread(up["s"]), "rss_growth_mb": spread(up["rss"]),
            "cat_mib_s": spread([_mib_s(size, s) for s in up["cat"]]),
            "cp_mib_s": spread([_mib_s(size, s) for s in up["cp"]]),
            "cp_fsync_mib_s": spread([_mib_s(size, s) for s in up["cp_fsync"]]),
            "ratio_cp_fsync": spread([b / a for a, b in zip(up["s"], up["cp_fsync"], strict=True)]),
            "ratio_cp": spread([b / a for a, b in zip(up["s"], up["cp"], strict=True)]),
        }

        release = _api(server, "POST", f"releases/{ids['release_id']}/publish", ids["vendor"])
        link = _api(server, "POST", f"entitlements/{ids['entitlement_id']}/downloads", ids["buyer"],
                    {"release_id": ids["release_id"], "file": FILE_NAME})
        path = urlsplit(link["url"]).path
        obj = root / "objects" / src_sha[:2] / src_sha[2:4] / src_sha
        # Warm the download path with a small range (imports, the first send_file).
        get(server, path, headers={"Range": "bytes=0-1023"})

        down: dict[str, list[float]] = {"s": [], "rss": [], "cat": [], "sendfile": []}
        peer = SendfilePeer(obj, work)
        for _ in range(rounds):
            down["cat"].append(cat_seconds(obj))
            with peer:
                took, status, _, total, _ = get(peer, "/")
            if status != 200 or total != size:
                raise RuntimeError(f"the sendfile baseline answered {status} with {total} of {size} bytes")
            down["sendfile"].append(took)
            with RssSampler(worker) as rss:
                took, status, _, total, _ = get(server, path)
            if status != 200 or total != size:
                raise RuntimeError(f"download answered {status} with {total} of {size} bytes")
            down["s"].append(took)
            down["rss"].append(rss.growth)
        out["download"] = {
            "mib_s": spread([_mib_s(size, s) for s in down["s"]]), "seconds": spread(down["s"]),
            "rss_growth_mb": spread(down["rss"]),
            "cat_mib_s": spread([_mib_s(size, s) for s in down["cat"]]),
            "ratio_cat": spread([b / a for a, b in zip(down["s"], down["cat"], strict=True)]),
            "sendfile_mib_s": spread([_mib_s(size, s) for s in down["sendfile"]]),
            "ratio_sendfile": spread([b / a for a, b in zip(down["s"], down["sendfile"], strict=True)]),
        }

        digest = hashlib.sha256()
        _, status, headers, total, _ = get(server, path, hasher=digest)
        (entry,) = [f for f in release["files"] if f["name"] == FILE_NAME]
        manifest = {"release_id": release["id"], "product_id": release["product_id"],
                    "files": [{"name": f["name"], "bytes": f["bytes"], "sha256": f["sha256"]}
                              for f in sorted(release["files"], key=lambda f: f["name"])]}
        out["verified"] = {
            "status": status, "bytes": total, "sha256": digest.hexdigest(), "manifest_file_sha256": entry["sha256"],
            "etag": headers.get("etag"), "manifest_sha256_matches": sha256_hex(manifest) == release["manifest_sha256"],
            "trade_status_after_publish": _api(server, "GET", f"trades/{ids['trade_id']}", ids["buyer"])["status"],
        }
        if digest.hexdigest() != entry["sha256"] or entry["sha256"] != src_sha or total != size:
            raise RuntimeError(f"downloaded sha256 {digest.hexdigest()} != manifest's {entry['sha256']}")
        if not out["verified"]["manifest_sha256_matches"]:
            raise RuntimeError("the release's manifest_sha256 is not the RFC 8785 digest of its files")

        with open(src, "rb") as f:
            f.seek(size - MIB)
            tail = f.read()
        range_ms, floor_ms = [], []
        for _ in range(range_repeat):
            took, status, headers, total, body = get(server, path, headers={"Range": f"bytes=-{MIB}"}, keep=True)
            want = f"bytes {size - MIB}-{size - 1}/{size}"
            if status != 206 or headers.get("content-range") != want or body != tail:
                raise RuntimeError(f"range answered {status} {headers.get('content-range')!r}, {total} bytes")
            range_ms.append(took * 1000)
            took, status, *_ = get(server, "/api/v1/health/live")
            floor_ms.append(took * 1000)
        out["range"] = {"status": 206, "bytes": MIB, "ms": latency(range_ms), "health_live_ms": latency(floor_ms)}
        out["worker_rss_after_mb"] = rss_mb(worker)
    return out


def _small(work: Path) -> Path:
    path = work / "small.bin"
    path.write_bytes(os.urandom(4096))
    return path


def _sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
