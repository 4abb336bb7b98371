"""Background jobs: the periodic registry, Celery, the in-process scheduler and database leases."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask, current_app
from prometheus_client.core import Metric
from sqlalchemy.orm import Session

from exchange import metrics


def _job_queue(_session: Session) -> Iterable[Metric]:
    from exchange.jobs import scheduler as jobs

    depth = jobs.queue_depth(current_app._get_current_object())  # type: ignore[attr-defined]
    if depth is not None:
        yield metrics.labelled_gauge("datafair_job_queue_depth", "Tasks waiting in the Redis job queue", "queue",
                             [(jobs.QUEUE, depth)])


def init_app(app: Flask, api: Any) -> None:
    from exchange.jobs import leases, scheduler  # noqa: F401 - leases registers its table

    scheduler.init_app(app)
    metrics.register_collector(app, "job_queue", _job_queue)
