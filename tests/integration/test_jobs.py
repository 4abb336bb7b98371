"""Background jobs: the sweep and reconcile registries, database leases, the in-process scheduler,
the CLI (`jobs run-once`, `worker`, `sweep`) and the Celery app's configuration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from exchange.db import db, utcnow
from exchange.events import outbox
from exchange.identity import audit
from exchange.identity.models import AuditEvent
from exchange.jobs import leases
from exchange.jobs import scheduler as jobs
from exchange.jobs.leases import JobLease
from tests.hookserver import HookServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    server = HookServer()
    yield server
    server.close()


@pytest.fixture
def periodic(app) -> Iterator[list[tuple[str, str]]]:
    """Register sweeps/reconciliations for one test; unregistered afterwards."""
    added: list[tuple[str, str]] = []
    yield added
    for name, group in added:
        jobs.unregister_periodic(app, name, group=group)


def _note(session, note: str) -> None:
    audit.record(session, None, "test.sweep", "test", note)


def _notes(app) -> list[str]:
    with app.app_context():
        return list(db.session.execute(select(AuditEvent.object_id).where(AuditEvent.action == "test.sweep")
                                       .order_by(AuditEvent.id)).scalars())


def test_registered_sweeps_run_each_in_its_own_transaction(app, periodic):
    def good(session):
        _note(session, "good")
        return 1

    def broken(session):
        _note(session, "broken-must-roll-back")
        raise RuntimeError("boom")

    for name, fn in (("test.good", good), ("test.broken", broken)):
        jobs.register_periodic(app, name, fn)
        periodic.append((name, "sweep"))
    r = app.test_cli_runner().invoke(args=["sweep"])
    assert r.exit_code != 0, r.output  # one job failed: the command says so, the others kept their work
    assert "sweep: test.good: 1" in r.output and "sweep: test.broken: error: RuntimeError" in r.output
    assert "sweep: idempotency.purge: 0 expired idempotency records purged" in r.output
    assert _notes(app) == ["good"]


def test_a_sweep_applies_each_item_in_its_own_transaction_and_a_failing_one_alone_rolls_back(app, periodic):
    reads: list[int] = []

    def due(session, now, limit):
        reads.append(limit)
        assert not session.new and not session.dirty  # the read writes nothing
        return ["a", "b", "c"]

    def apply(session, ident, now):
        assert not session.new  # nothing of the previous item is left in this transaction
        _note(session, ident)
        if ident == "b":
            raise RuntimeError("boom")
        return ident != "c"  # c: found no longer due when locked, not counted

    jobs.register_sweep(app, "test.items", due=due, apply=apply, report="{} items done")
    periodic.append(("test.items", "sweep"))
    r = app.test_cli_runner().invoke(args=["sweep"])
    assert r.exit_code != 0, r.output  # the failure is reported, to cron and CI too
    assert "sweep: test.items: error: RuntimeError on 1 of 3; 1 items done" in r.output
    assert _notes(app) == ["a", "c"]  # b's note was rolled back; a's, written before it, was kept
    assert reads == [100]


def test_a_sweep_takes_a_bounded_batch_per_run(app, periodic):
    waiting = [f"item{i}" for i in range(5)]

    def due(session, now, limit):
        return waiting[:limit]

    def apply(session, ident, now):
        _note(session, ident)
        waiting.remove(ident)
        return True

    jobs.register_sweep(app, "test.batched", due=due, apply=apply, batch=2, report="{} moved")
    periodic.append(("test.batched", "sweep"))
    with app.app_context():
        assert jobs.run_group("sweep")["test.batched"] == "2 moved"
        assert _notes(app) == ["item0", "item1"]
        assert jobs.run_group("sweep")["test.batched"] == "2 moved"
        assert jobs.run_group("sweep")["test.batched"] == "1 moved"
        assert jobs.run_group("sweep")["test.batched"] == "0 moved"
    assert _notes(app) == [f"item{i}" for i in range(5)]
    with pytest.raises(ValueError):
        jobs.register_sweep(app, "x", due=due, apply=apply, batch=0)


def test_reconcile_is_a_separate_registry(app, periodic):
    jobs.register_periodic(app, "test.reconcile", lambda s: _note(s, "reconciled"), group="reconcile")
    periodic.append(("test.reconcile", "reconcile"))
    with app.app_context():
        jobs.run_group("sweep")
        assert _notes(app) == []
        assert "test.reconcile" in jobs.run_job("reconcile")
    assert _notes(app) == ["reconciled"]
    with pytest.raises(ValueError):
        jobs.register_periodic(app, "x", lambda s: None, group="hourly")


def test_run_once_cli_runs_every_job_and_reports(app, periodic):
    jobs.register_periodic(app, "test.count", lambda s: "42 things", group="reconcile")
    periodic.append(("test.count", "reconcile"))
    r = app.test_cli_runner().invoke(args=["jobs", "run-once"])
    assert r.exit_code == 0, r.output
    assert '"42 things"' in r.output and '"deliveries_created": 0' in r.output
    listed = app.test_cli_runner().invoke(args=["jobs", "list"])
    assert "datafair.sweep" in listed.output and "every 60 s" in listed.output
    assert "reconcile: test.count" in listed.output


def test_a_lease_has_one_holder_until_it_expires(app):
    with app.app_context():
        assert leases.acquire("job:x", holder="a", ttl=60)
        assert not leases.acquire("job:x", holder="b", ttl=60)
        assert leases.acquire("job:x", holder="a", ttl=60)  # the holder extends it
        db.session.execute(update(JobLease).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert leases.acquire("job:x", holder="b", ttl=60)
        leases.release("job:x", holder="a")  # not a's any more: no effect
        assert not leases.acquire("job:x", holder="c", ttl=60)
        leases.release("job:x", holder="b")
        assert leases.acquire("job:x", holder="c", ttl=60)


def test_racing_processes_get_a_lease_once(app):
    won: list[str] = []
    barrier = threading.Barrier(6)

    def contender(i: int) -> None:
        with app.app_context():
            barrier.wait()
            if leases.acquire("job:race", holder=f"h{i}", ttl=60):
                won.append(f"h{i}")

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1


def test_a_periodic_run_happens_once_per_interval_across_holders(app, periodic):
    calls: list[int] = []
    jobs.register_periodic(app, "test.calls", lambda s: calls.append(1))
    periodic.append(("test.calls", "sweep"))
    with app.app_context():
        assert jobs.run_job("sweep", lease_holder="worker-1") is not None
        assert jobs.run_job("sweep", lease_holder="worker-2") is None
        assert jobs.run_job("sweep", lease_holder="worker-3") is None
        db.session.execute(update(JobLease).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert jobs.run_job("sweep", lease_holder="worker-2") is not None
    assert len(calls) == 2


def test_in_process_scheduler_delivers_at_once_after_a_commit(api, make_app, hooks):
    app = make_app(JOBS_IN_PROCESS="1", WEBHOOK_ALLOW_PRIVATE=True, JOB_WEBHOOK_SECONDS=3600,
                   JOB_SWEEP_SECONDS=3600, JOB_RECONCILE_SECONDS=3600)
    from tests.factories import ApiHelper

    helper = ApiHelper(app)
    operator = helper.operator()
    r = helper.post("webhook-endpoints", operator, json={"url": hooks.url("/ops"), "events": ["organization.verified"]})
    assert r.status_code == 201
    scheduler = jobs.start_in_process(app)
    assert scheduler is not None
    try:
        time.sleep(0.5)  # its first round (every job once) is over; the next webhook round is an hour away
        helper.vendor()
        got = hooks.wait_for(1, "/ops", timeout=5)
        assert len(got) == 1, "the commit's nudge should have woken the scheduler"
    finally:
        scheduler.stop()
        scheduler.join(10)
        jobs._scheduler = None


def test_in_process_jobs_default_to_on_without_redis_outside_tests(app):
    assert not jobs.in_process_enabled(app)  # testing
    app.config["DATAFAIR_ENV"] = "development"
    assert jobs.in_process_enabled(app)
    app.config["REDIS_URL"] = "redis://127.0.0.1:6379/0"
    assert not jobs.in_process_enabled(app)  # Celery does the work
    app.config["JOBS_IN_PROCESS"] = "1"
    assert jobs.in_process_enabled(app)


def test_the_worker_command_delivers_and_stops_on_sigterm(api, app, database, hooks, tmp_path):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    operator = api.operator()
    assert api.post("webhook-endpoints", operator,
                    json={"url": hooks.url("/w"), "events": ["organization.verified"]}).status_code == 201
    api.vendor()
    env = {**os.environ, "DATABASE_URL": database.url, "DATAFAIR_WEBHOOK_ALLOW_PRIVATE": "1",
           "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker", "--tick", "0.2"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        got = hooks.wait_for(1, "/w", timeout=20)
        assert len(got) == 1, (tmp_path / "worker.log").read_text()[-2000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    with app.app_context():
        held = db.session.execute(select(func.count()).select_from(JobLease)).scalar_one()
    assert held >= 1  # its periodic runs took the leases


def test_the_celery_app_runs_the_three_jobs_on_a_schedule(make_app):
    app = make_app(REDIS_URL="redis://127.0.0.1:6379/14", REDIS_KEY_PREFIX="dfx-test:", JOB_WEBHOOK_SECONDS=7)
    celery = app.extensions["celery"]
    assert {"datafair.sweep", "datafair.deliver_webhooks", "datafair.reconcile"} <= set(celery.tasks)
    schedule = celery.conf.beat_schedule
    assert schedule["deliver_webhooks"]["schedule"] == 7.0
    assert schedule["sweep"]["schedule"] == 60.0 and schedule["reconcile"]["schedule"] == 300.0
    assert celery.conf.broker_url == "redis://127.0.0.1:6379/14"
    assert celery.conf.broker_transport_options["global_keyprefix"] == "dfx-test:"
    assert celery.conf.task_acks_late is True
    # The tasks run the registry inside the Flask app's context.
    assert celery.tasks["datafair.reconcile"].apply().get() is not None


def test_the_module_level_celery_app_is_the_apps(app):
    import app as composition_root

    assert composition_root.celery is composition_root.app.extensions["celery"]
    assert "organization.verified" in outbox.event_types(composition_root.app)
    # the jobs package registers its nudge on each app from its init_app
    assert jobs._nudge_webhooks in outbox.committed_event_hooks(composition_root.app)
