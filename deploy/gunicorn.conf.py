"""gunicorn settings for datafair (`gunicorn -c deploy/gunicorn.conf.py app:app`).

Every value can be overridden from the environment, so the same file serves `make run`, the
benchmarks and the container. Hooks: Prometheus multiprocess bookkeeping (when
PROMETHEUS_MULTIPROC_DIR is set) and the in-process job scheduler (when there is no Redis).
"""

import multiprocessing
import os
import shutil

import gunicorn.http.wsgi

# No server software banner (gunicorn otherwise sends "Server: gunicorn").
gunicorn.http.wsgi.SERVER = "datafair"

bind = os.environ.get("DATAFAIR_BIND", "127.0.0.1:8000")
# Workers from the CPU count (2 x cores + 1 is gunicorn's advice for I/O-bound apps), capped so
# workers x pool size stays well under PostgreSQL's max_connections (100 here).
workers = int(os.environ.get("DATAFAIR_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8)))
# Threads per worker (gthread; docs/decisions.md "gthread web workers"): the API gateway waits on a
# vendor's upstream and a transfer streams for seconds, and neither may hold a whole process. Each
# thread checks out at most one pooled connection at a time (the gateway gives its connection back
# before forwarding), so DATAFAIR_DB_POOL_SIZE + DATAFAIR_DB_MAX_OVERFLOW >= threads keeps a thread
# from waiting on the pool, and the connection budget stays workers x (pool + overflow) per node.
# DATAFAIR_THREADS=1 is the sync worker (one request per process, no heartbeat while it runs).
threads = int(os.environ.get("DATAFAIR_THREADS", "4"))
worker_class = "sync" if threads == 1 else "gthread"
# Load the app (and jieba's dictionary, ~100 MB) once in the master; workers share it copy-on-write.
preload_app = os.environ.get("DATAFAIR_PRELOAD", "1") == "1"
timeout = int(os.environ.get("DATAFAIR_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("DATAFAIR_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
max_requests = int(os.environ.get("DATAFAIR_MAX_REQUESTS", "0"))
max_requests_jitter = 100 if max_requests else 0
limit_request_line = 8190
limit_request_fields = 100
accesslog = os.environ.get("DATAFAIR_ACCESS_LOG", "-")
# Download tokens are credentials: the access log shows their paths redacted.
logger_class = "exchange.logs.RedactingGunicornLogger"
access_log_format = (
    '{"remote":"%(h)s","method":"%(m)s","path":"%(U)s","query":"%(q)s","status":%(s)s,'
    '"bytes":%(B)s,"duration_us":%(D)s,"request_id":"%({x-request-id}o)s"}'
)
errorlog = "-"
loglevel = os.environ.get("DATAFAIR_LOG_LEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Heartbeat files on tmpfs in containers (a read-only root filesystem has no writable /tmp otherwise).
worker_tmp_dir = os.environ.get("DATAFAIR_WORKER_TMP_DIR") or None

PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def on_starting(server):
    # Samples of an earlier run would be added to this one's: start from an empty directory.
    if PROMETHEUS_MULTIPROC_DIR:
        os.makedirs(PROMETHEUS_MULTIPROC_DIR, exist_ok=True)
        for name in os.listdir(PROMETHEUS_MULTIPROC_DIR):
            path = os.path.join(PROMETHEUS_MULTIPROC_DIR, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)


def _flask_app(server):
    app = server.app.wsgi() if hasattr(server.app, "wsgi") else None
    return app if hasattr(app, "app_context") else None


def _banner(server):
    """`make run`'s banner (DATAFAIR_BANNER=1): the addresses gunicorn really listens on, port 0 resolved."""
    for listener in server.LISTENERS:
        address = listener.sock.getsockname()
        if not isinstance(address, tuple):
            server.log.info("datafair is serving on unix:%s", address)
            continue
        host, port = address[0], address[1]
        host = f"[{host}]" if ":" in host else host
        base = f"http://{host}:{port}"
        print(f"\n  datafair API:   {base}/api/v1  (health: {base}/api/v1/health)\n"
              f"  API docs:       {base}/api/v1/docs\n"
              f"  the journey:    DATAFAIR_BIND={host}:{port} make demo   (in another terminal)\n", flush=True)


def when_ready(server):
    # Runs in the master before any worker forks: with preload_app, load the catalog's Chinese
    # segmenter and converter once here and let every worker share them copy-on-write.
    if preload_app:
        from listings.search import warm_up

        warm_up()
    if os.environ.get("DATAFAIR_BANNER") == "1":
        _banner(server)


def post_fork(server, worker):
    # Connections opened in the master (during preload) must not be shared by forked workers.
    from exchange.db import db

    app = _flask_app(server)
    if app is not None:
        with app.app_context():
            db.engine.dispose(close=False)
            for engine in db.engines.values():
                engine.dispose(close=False)


def post_worker_init(worker):
    # Without Redis the periodic jobs run in a thread of each worker (a database lease per job).
    from exchange.jobs import scheduler as jobs

    app = _flask_app(worker)
    # Only datafair's own app has jobs (the same config serves the benchmarks' bare-Flask baselines).
    if app is not None and "DATAFAIR_ENV" in app.config:
        jobs.start_in_process(app)


def child_exit(server, worker):
    if PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
