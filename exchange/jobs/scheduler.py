"""Background jobs: Celery on Redis when `REDIS_URL` is set, the same jobs in-process otherwise.

Three jobs, each idempotent and safe to run concurrently on several workers:

* `datafair.sweep` (every 60 s): every sweep registered with `register_sweep(app, name, due=...,
  apply=...)` (notice periods, certificate/procurement/offer expiry, auto-acceptance...): a bounded
  batch of due ids read in a short transaction, then each item applied in its own transaction, so
  one failing item is rolled back alone and no transaction outlives one item; and every callable
  registered with `register_periodic(app, name, func)`, each in its own transaction (the runner
  commits after it returns, rolls back if it raises; one failing job does not stop the others).
  Domains plug theirs in from their init_app, so the kernel never imports them.
* `datafair.deliver_webhooks` (every 10 s, and nudged after every commit that wrote outbox events):
  fan-out and signed delivery (`exchange.webhooks.delivery`).
* `datafair.reconcile` (every 5 min): callables registered with `group="reconcile"` (e.g. re-fetching
  Stripe intents whose webhooks never came).

With Redis: `celery -A app:celery worker` runs them, `celery -A app:celery beat` schedules them
(one beat per deployment). Without Redis (the embedded default), each gunicorn worker runs a small
scheduler thread (`start_in_process`), or `flask --app app worker` runs it in the foreground; a
database lease per job (`exchange.leases`) makes each periodic run happen once across processes.
Nothing is ever enqueued inside a transaction: the outbox nudges after commit.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
from celery import Celery, Task
from flask import Flask, current_app, has_app_context
from sqlalchemy.orm import Session

from exchange import idempotency
from exchange.db import db, utcnow
from exchange.events import outbox
from exchange.jobs import leases

log = logging.getLogger("datafair.jobs")

GROUPS = ("sweep", "reconcile")
TASK_NAMES = {"sweep": "datafair.sweep", "deliver_webhooks": "datafair.deliver_webhooks",
              "reconcile": "datafair.reconcile"}
INTERVAL_KEYS = {"sweep": "JOB_SWEEP_SECONDS", "deliver_webhooks": "JOB_WEBHOOK_SECONDS",
                 "reconcile": "JOB_RECONCILE_SECONDS"}
QUEUE = "datafair"
PeriodicFunc = Callable[[Any], Any]

# Code registered on each app by the layers' init_app (what to run), never data.
REGISTRY_EXTENSION = "datafair.jobs.periodic"


def _registry(app: Flask) -> dict[str, dict[str, PeriodicFunc]]:
    return app.extensions.setdefault(REGISTRY_EXTENSION, {group: {} for group in GROUPS})


def register_periodic(app: Flask, name: str, func: PeriodicFunc, *, group: str = "sweep") -> None:
    """Run `func(session)` in every sweep (or every reconciliation with `group="reconcile"`).

    `func` must be idempotent and safe to run concurrently; it may flush, never commit (the runner
    commits after it returns). Its return value is reported (a count or a short sentence).
    Registering a name again replaces the earlier callable.
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}")
    _registry(app)[group][name] = func


@dataclass(frozen=True)
class Sweep:
    """A per-item sweep (see `register_sweep`), called by `run_group` like any periodic callable."""

    name: str
    due: Callable[[Session, datetime, int], Iterable[Any]]
    apply: Callable[[Session, Any, datetime], bool]
    batch: int
    report: str

    def __call__(self, session: Session) -> str:
        """One bounded batch: the due ids in a short read transaction, then one transaction per item.

        An item that raises is rolled back and logged and the others go on; the result counts the
        items applied (`report`), preceded by `error: ...` when any failed.
        """
        now = utcnow()
        try:
            ids = list(self.due(session, now, self.batch))[:self.batch]
        finally:
            session.rollback()  # the read transaction ends here: it wrote nothing
        done, failed, first_error = 0, 0, ""
        for ident in ids:
            try:
                if self.apply(session, ident, now):
                    done += 1
                session.commit()
            except Exception as exc:
                session.rollback()
                log.exception("sweep %s failed on item %r", self.name, ident)
                failed += 1
                first_error = first_error or type(exc).__name__
        result = self.report.format(done)
        return f"error: {first_error} on {failed} of {len(ids)}; {result}" if failed else result


def register_sweep(app: Flask, name: str, *, due: Callable[[Session, datetime, int], Iterable[Any]],
                   apply: Callable[[Session, Any, datetime], bool], batch: int = 100,
                   report: str = "{} done") -> None:
    """Sweep items one transaction each on every sweep run.

    `due(session, now, limit)` returns at most `limit` ids of items due at `now` (read only);
    `apply(session, id, now)` locks that item (`load_for_update`), re-checks that it is still due (a
    request may have moved it since), changes it, and returns whether it did; it may flush, never
    commit: the runner commits after each item and rolls back the one that raises. At most `batch`
    items per run; the rest wait for the next run. `report` formats the count of items applied.
    Registering a name again replaces the earlier sweep.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    _registry(app)["sweep"][name] = Sweep(name, due=due, apply=apply, batch=batch, report=report)


def unregister_periodic(app: Flask, name: str, *, group: str = "sweep") -> None:
    _registry(app)[group].pop(name, None)


def registered(group: str = "sweep", app: Flask | None = None) -> dict[str, PeriodicFunc]:
    """The callables of `group` registered on `app` (default: the current app)."""
    app = current_app._get_current_object() if app is None else app  # type: ignore[attr-defined]
    return dict(_registry(app)[group])


def _purge_idempotency(_session: Any) -> str:
    return f"{idempotency.purge_expired()} expired idempotency records purged"


# -- running the jobs (inside an app context) ------------------------------------------------------

def run_group(group: str) -> dict[str, Any]:
    """Every callable of `group`, each in its own transaction; `{name: result or "error: ..."}`."""
    results: dict[str, Any] = {}
    for name, func in registered(group).items():
        try:
            results[name] = func(db.session)  # a Sweep has committed each of its items itself
            db.session.commit()
        except Exception as exc:
            db.session.rollback()
            log.exception("periodic job %s failed", name)
            results[name] = f"error: {type(exc).__name__}"
    return results


def run_webhooks() -> dict[str, int]:
    from exchange.events import delivery

    try:
        return delivery.run(db.session)
    except Exception:
        db.session.rollback()
        raise


RUNNERS: dict[str, Callable[[], Any]] = {
    "sweep": lambda: run_group("sweep"),
    "deliver_webhooks": run_webhooks,
    "reconcile": lambda: run_group("reconcile"),
}


def run_job(name: str, *, lease_holder: str | None = None) -> Any:
    """Run one job now. With `lease_holder`, only if this holder gets the job's lease for (almost) one
    interval, so a periodic run happens once per interval across processes; returns None if not."""
    if lease_holder is not None:
        ttl = max(1.0, interval(name) - 1.0)
        if not leases.acquire(f"job:{name}", holder=lease_holder, ttl=ttl):
            return None
    started = time.monotonic()
    try:
        result = RUNNERS[name]()
    finally:
        db.session.remove()
    log.info("job finished", extra={"job": name, "seconds": round(time.monotonic() - started, 3),
                                    "result": result})
    return result


def interval(name: str) -> float:
    return float(current_app.config[INTERVAL_KEYS[name]])


# -- Celery ----------------------------------------------------------------------------------------

def make_celery(app: Flask) -> Celery:
    """The Celery app of this Flask app (broker and result backend on REDIS_URL; keys prefixed)."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    url = app.config.get("REDIS_URL")
    prefix = app.config["REDIS_KEY_PREFIX"]
    celery = Celery(app.import_name, task_cls=FlaskTask, set_as_current=False)
    celery.conf.update(
        broker_url=url or "memory://",
        result_backend=url,
        task_ignore_result=True,
        broker_transport_options={"global_keyprefix": prefix, "visibility_timeout": 3600},
        result_backend_transport_options={"global_keyprefix": prefix},
        broker_connection_timeout=3,
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        # At-least-once: a task is acknowledged after it ran, so a worker killed mid-task leaves it queued.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_schedule={
            name: {"task": TASK_NAMES[name], "schedule": float(app.config[INTERVAL_KEYS[name]]),
                   "options": {"expires": float(app.config[INTERVAL_KEYS[name]])}}
            for name in TASK_NAMES
        },
    )

    @celery.task(name=TASK_NAMES["sweep"], shared=False)
    def sweep() -> Any:
        return run_job("sweep", lease_holder=leases.this_holder())

    @celery.task(name=TASK_NAMES["deliver_webhooks"], shared=False)
    def deliver_webhooks() -> Any:
        return run_job("deliver_webhooks")

    @celery.task(name=TASK_NAMES["reconcile"], shared=False)
    def reconcile() -> Any:
        return run_job("reconcile", lease_holder=leases.this_holder())

    return celery


_FAIL_FAST = {"max_retries": 0, "socket_connect_timeout": 1, "socket_timeout": 1}


def enqueue(name: str) -> None:
    """Ask for a job to run soon: a Celery task with Redis, a wake-up of this process's scheduler
    thread without. Call it after commit, never inside a transaction."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config.get("REDIS_URL"):
        celery = app.extensions["celery"]
        # Fail fast when Redis is down (kombu would otherwise retry the connection, and the result
        # backend its subscription, for seconds while the request waits); the periodic job finds
        # the work anyway. Nobody reads these tasks' results.
        with celery.connection_for_write(transport_options=_FAIL_FAST) as conn:
            celery.send_task(TASK_NAMES[name], retry=False, connection=conn, ignore_result=True)
    elif _scheduler is not None and _scheduler.app is app:
        _scheduler.wake(name)


def _nudge_webhooks() -> None:
    if has_app_context() and "celery" in current_app.extensions:
        enqueue("deliver_webhooks")



def queue_depth(app: Flask) -> int | None:
    """Tasks waiting in the Redis queue (None without Redis)."""
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return int(client.llen(app.config["REDIS_KEY_PREFIX"] + QUEUE))
    finally:
        client.close()


# -- in-process scheduler (no Redis) ---------------------------------------------------------------

class Scheduler(threading.Thread):
    """Runs each job about once per interval across every process (database leases); a wake-up
    (after a commit that wrote events) runs the webhook job at once without waiting for the lease."""

    def __init__(self, app: Flask, *, tick: float = 1.0) -> None:
        super().__init__(name="datafair-jobs", daemon=True)
        self.app = app
        self.tick = tick
        self._halt = threading.Event()
        self._woken: set[str] = set()
        self._wake = threading.Event()
        self._lock = threading.Lock()

    def wake(self, name: str) -> None:
        with self._lock:
            self._woken.add(name)
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()

    def run(self) -> None:
        holder = leases.this_holder()
        with self.app.app_context():
            intervals = {name: interval(name) for name in RUNNERS}
        due = dict.fromkeys(RUNNERS, time.monotonic())
        while not self._halt.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            with self._lock:
                woken, self._woken = self._woken, set()
            now = time.monotonic()
            for name in RUNNERS:
                if self._halt.is_set():
                    break
                if name not in woken and now < due[name]:
                    continue
                due[name] = now + intervals[name]
                with self.app.app_context():
                    try:
                        run_job(name, lease_holder=None if name in woken else holder)
                    except Exception:
                        log.exception("in-process job %s failed", name)


_scheduler: Scheduler | None = None


def in_process_enabled(app: Flask) -> bool:
    setting = str(app.config.get("JOBS_IN_PROCESS", "auto")).lower()
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting in ("0", "false", "no", "off"):
        return False
    return not app.config.get("REDIS_URL") and app.config["DATAFAIR_ENV"] != "testing"


def start_in_process(app: Flask) -> Scheduler | None:
    """Start this process's scheduler thread if jobs run in-process (called by gunicorn's post_worker_init)."""
    global _scheduler
    if not in_process_enabled(app) or _scheduler is not None:
        return _scheduler
    _scheduler = Scheduler(app)
    _scheduler.start()
    return _scheduler


# -- CLI -------------------------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    app.extensions["celery"] = make_celery(app)
    register_periodic(app, "idempotency.purge", _purge_idempotency)
    outbox.on_committed_events(app, _nudge_webhooks)

    @app.cli.group("jobs")
    def jobs_group() -> None:
        """Background jobs (sweep, webhooks, reconcile)."""

    @jobs_group.command("run-once")
    @click.option("--job", "names", multiple=True, type=click.Choice(sorted(RUNNERS)),
                  help="Only these jobs (default: all)")
    def run_once(names: tuple[str, ...]) -> None:
        """Run the jobs once now, in this process (ignores the leases: an explicit request)."""
        results = {name: run_job(name) for name in (names or RUNNERS)}
        click.echo(json.dumps(results, ensure_ascii=False, default=str, indent=2))

    @jobs_group.command("list")
    def list_jobs() -> None:
        """The jobs, their intervals and the registered sweep and reconcile callables."""
        for name in RUNNERS:
            click.echo(f"{TASK_NAMES[name]:<28} every {interval(name):g} s")
        for group in GROUPS:
            for name in registered(group, app):
                click.echo(f"  {group}: {name}")

    @app.cli.command("worker")
    @click.option("--tick", default=1.0, show_default=True, type=click.FloatRange(0.1, 60))
    def worker(tick: float) -> None:
        """Run the jobs in the foreground without Redis (database leases keep each periodic run single)."""
        scheduler = Scheduler(app, tick=tick)

        def stop(_signum: int, _frame: Any) -> None:
            scheduler.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        click.echo("datafair worker: running sweep, webhooks and reconcile in-process (Ctrl-C stops)", err=True)
        scheduler.run()
