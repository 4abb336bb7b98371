"""What every benchmark of `make bench` shares: databases, the bulk generator, gunicorn servers,
the load generator process, pgbench, access tokens and summary statistics."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).parent / "out"
BIN = Path(sys.executable).parent


def _secret() -> str:
    """A random key made once per checkout (out/secret.key): the servers run in production mode, which
    refuses any well-known key, and a database kept with --reuse holds the exchange's signing key
    encrypted under it, so it must not change from run to run."""
    path = OUT / "secret.key"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


SECRET = _secret()
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
# The server on one core and the load generator (and pgbench) on the other, where there are two.
PIN = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
SERVER_CPUS, CLIENT_CPUS = "1", "0"
# One gunicorn configuration for datafair and the baselines alike (deploy/gunicorn.conf.py, sync workers).
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))


def log(message: str) -> None:
    print(message, flush=True)


# -- statistics -------------------------------------------------------------------------------------
def percentile(samples: Sequence[float], pct: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def spread(values: Sequence[float]) -> dict[str, float]:
    """min / median / max of repeated runs."""
    return {"min": min(values), "median": percentile(values, 50), "max": max(values)}


def latency(samples: Sequence[float]) -> dict[str, float]:
    return {"p50": percentile(samples, 50), "p95": percentile(samples, 95), "n": len(samples)}


# -- databases and data ------------------------------------------------------------------------------
def pg_base_url() -> str:
    return os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL") or DEFAULT_PG


def pg_database(name: str, *, fresh: bool) -> str:
    """A database `name` on the benchmark's PostgreSQL server (dropped and created when `fresh`)."""
    base = make_url(pg_base_url().replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": name}).first()
        if fresh and exists:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        if fresh or not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def sqlite_database(name: str, *, fresh: bool) -> str:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    return f"sqlite:///{path}"


def app_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFAIR_", "GUNICORN_"))}
    env.update(DATABASE_URL=url, DATAFAIR_SECRET_KEY=SECRET, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    env.pop("REDIS_URL", None)
    env.update(extra)
    return env


def generate(url: str, *args: str, log_name: str) -> str:
    """Run `python -m tests.bench.generate ARGS` on the database `url`; returns its output (also kept in out/)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tests.bench.generate", *args], cwd=ROOT, env=app_env(url),
                          capture_output=True, text=True, check=False)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{log_name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"generate {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    log(f"  generate {' '.join(args)}: {time.perf_counter() - started:.0f} s")
    return proc.stdout


def generated_products(app: Any) -> int:
    from sqlalchemy import func, select

    from exchange.db import db
    from listings.models import Product

    with app.app_context():
        try:
            return db.session.execute(select(func.count()).select_from(Product)
                                      .where(Product.id.startswith("prd_gen"))).scalar_one()
        finally:
            db.session.remove()


def grow(url: str, app: Any, products: int) -> float | None:
    """Bring the database to `products` generated products (listed, certified, with procurements
    and trades) with the bulk generator; returns the seconds it took, None when nothing was needed."""
    have = generated_products(app)
    if have >= products:
        return None
    started = time.perf_counter()
    generate(url, "--products", str(products - have), "--seed", str(1000 + have),
             log_name=f"generate-{make_url(url).get_backend_name()}-{products}")
    return time.perf_counter() - started


def make_app(url: str) -> Any:
    """An in-process app on `url` (tokens, ids for the load, the naive baselines)."""
    os.environ.setdefault("DATAFAIR_SECRET_KEY", SECRET)
    from app import create_app

    return create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "DATAFAIR_ENV": "development",
                       "REDIS_URL": None})


def tokens(app: Any, user_ids: Sequence[str]) -> dict[str, str]:
    """Access tokens (15 minutes) for existing users, signed with the servers' secret."""
    from exchange.db import db
    from exchange.identity.auth import issue_access_token
    from exchange.identity.models import User

    with app.app_context():
        try:
            return {uid: issue_access_token(db.session.get(User, uid))[0] for uid in user_ids}
        finally:
            db.session.remove()


# -- servers and load --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pinned(cmd: list[str], cpus: str) -> list[str]:
    return ["taskset", "-c", cpus, *cmd] if PIN else cmd


class Server:
    """gunicorn with deploy/gunicorn.conf.py serving `wsgi` on a free port (pinned to SERVER_CPUS)."""

    def __init__(self, name: str, wsgi: str, url: str, ready_path: str, *, workers: int = WORKERS,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.wsgi, self.url, self.ready_path = name, wsgi, url, ready_path
        self.worker_count, self.extra_env = workers, env or {}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        OUT.mkdir(parents=True, exist_ok=True)
        self.log = open(OUT / f"server-{self.name}.log", "wb")
        env = app_env(self.url, DATAFAIR_BIND=f"127.0.0.1:{self.port}", DATAFAIR_WORKERS=str(self.worker_count),
                      DATAFAIR_ENV="production", **self.extra_env)
        cmd = _pinned([str(BIN / "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), self.wsgi],
                      SERVER_CPUS)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        from tests.bench.loadgen import Client, encode

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited; see {self.log.name}")
            try:
                client = Client("127.0.0.1", self.port)
                status, _ = client.request(encode("127.0.0.1", self.port, "GET", self.ready_path))
                client.close()
                if status == 200 and len(self.workers()) >= self.worker_count:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn {self.name} did not become ready; see {self.log.name}")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def workers(self) -> list[int]:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def memory(self) -> list[dict[str, float]]:
        """Per worker: resident set (RSS) and proportional set (PSS: shared pages divided among sharers), MB."""
        out = []
        for pid in self.workers():
            rss = pss = float("nan")
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
            rollup = Path(f"/proc/{pid}/smaps_rollup")
            if rollup.exists():
                for line in rollup.read_text().splitlines():
                    if line.startswith("Pss:"):
                        pss = int(line.split()[1]) / 1024
            out.append({"pid": pid, "rss_mb": rss, "pss_mb": pss})
        return out


def load(server: Server, requests: list[dict[str, Any]], *, concurrency: int, duration: float,
         warmup: float = 0.0, mode: str = "cycle", ok: Sequence[int] = (200,)) -> dict[str, Any]:
    """Run the load generator in its own process (pinned to CLIENT_CPUS); its JSON result."""
    spec = {"host": "127.0.0.1", "port": server.port, "requests": requests, "concurrency": concurrency,
            "duration": duration, "warmup": warmup, "mode": mode, "ok": list(ok)}
    return _loadgen(spec, timeout=duration + warmup + 120)


def flows(server: Server, tokens_by_role: dict[str, str], products: list[dict[str, Any]]) -> dict[str, Any]:
    spec = {"host": "127.0.0.1", "port": server.port, "mode": "flow", "tokens": tokens_by_role,
            "products": products}
    return _loadgen(spec, timeout=600)


def _loadgen(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(spec, f)
    try:
        proc = subprocess.run(_pinned([sys.executable, "-m", "tests.bench.loadgen", f.name], CLIENT_CPUS),
                              cwd=ROOT, env=app_env("sqlite://"), capture_output=True, text=True, timeout=timeout,
                              check=False)
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


# -- pgbench -----------------------------------------------------------------------------------------
def pgbench_binary() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))
    if not candidates:
        raise RuntimeError("pgbench not found (it comes with PostgreSQL: /usr/lib/postgresql/*/bin)")
    return str(candidates[-1])


def _pg_args(url: str) -> tuple[list[str], dict[str, str]]:
    u = make_url(url)
    args = ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    return args, env


def pgbench_init(name: str) -> str:
    url = pg_database(name, fresh=True)
    args, env = _pg_args(url)
    subprocess.run([pgbench_binary(), "-i", "-q", *args, make_url(url).database], env=env, check=True,
                   capture_output=True)
    return url


def pgbench(url: str, clients: int, seconds: float) -> float:
    """`pgbench -b tpcb-like` at `clients` connections (pinned like the load generator): its tps."""
    args, env = _pg_args(url)
    cmd = _pinned([pgbench_binary(), "-b", "tpcb-like", "-n", "-c", str(clients), "-j", str(min(clients, 2)),
                   "-T", str(int(seconds)), *args, make_url(url).database], CLIENT_CPUS)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", proc.stdout)
    if not m:
        raise RuntimeError(f"unexpected pgbench output: {proc.stdout[-1000:]}")
    return float(m.group(1))


@contextmanager
def timer(label: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    log(f"  {label}: {time.perf_counter() - started:.1f} s")


# Seeding through the test client registers organizations and logs in many times from one address.
SEED_CONFIG = {"PASSWORD_HASH_METHOD": "scrypt:1024:8:1", "LOGIN_RATE_LIMIT": "1000/minute",
               "WRITE_RATE_LIMIT": "10000/minute", "REGISTRATION_RATE_LIMIT": "100000/hour"}


@contextmanager
def seeding_app(url: str, storage_url: str) -> Iterator[tuple[Any, Any]]:
    """A migrated app on `url` (release files at `storage_url`) and an in-process API helper for a
    bench's set-up; the set-up's request log lines are kept out of the bench's output."""
    from flask_migrate import upgrade

    from app import create_app
    from exchange.db import db
    from tests.factories import ApiHelper

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "DATAFAIR_ENV": "development", "REDIS_URL": None,
                      "STORAGE_URL": storage_url, **SEED_CONFIG})
    with app.app_context():
        upgrade()
    quiet = logging.getLogger("datafair.http")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        yield app, ApiHelper(app)
    finally:
        quiet.setLevel(level)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
