"""Prometheus metrics at `/metrics`.

* Per process: request latency histogram by route rule, method and status;
  `datafair_ratelimit_fallback_total`, rate-limit hits counted in the database while Redis was down. Under gunicorn set
  `PROMETHEUS_MULTIPROC_DIR` (an empty directory per node; deploy/gunicorn.conf.py empties it at
  start and marks dead workers): every worker writes its samples there and any worker's `/metrics`
  answers for all of them (prometheus-client's multiprocess mode).
* Computed at scrape from the database (and Redis), by a registry of collectors that any layer
  extends in its `init_app` with `register_collector(app, name, func)`: `func(session)` returns metric families
  (`labelled_gauge` builds the common "count by status" one). The kernel registers ledger entries,
  organizations by status, outbox and webhook delivery backlog and, with Redis, the job queue depth.
  Trading adds trades by status the same way. A failing collector is reported as
  `datafair_collector_up{collector="..."} 0` instead of failing the scrape.

`/metrics` is meant for the cluster's Prometheus only: nginx and the Ingress do not route it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.orm import Session

from exchange.db import db

log = logging.getLogger("datafair.metrics")
Collector = Callable[[Session], Iterable[Metric]]

PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
REQUEST_SECONDS = Histogram(
    "datafair_http_request_duration_seconds", "HTTP request latency by route rule, method and status",
    ["route", "method", "status"], registry=PROCESS_REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RATELIMIT_FALLBACKS = Counter(
    "datafair_ratelimit_fallback", "Rate-limit hits counted in the database because Redis did not answer",
    registry=PROCESS_REGISTRY,
)

COLLECTORS_EXTENSION = "datafair.metrics.collectors"


def register_collector(app: Flask, name: str, func: Collector) -> None:
    """Add (or replace) a scrape-time collector of `app`: `func(session)` -> iterable of metric families."""
    app.extensions.setdefault(COLLECTORS_EXTENSION, {})[name] = func


def unregister_collector(app: Flask, name: str) -> None:
    app.extensions.get(COLLECTORS_EXTENSION, {}).pop(name, None)


def collectors(app: Flask) -> dict[str, Collector]:
    return dict(app.extensions.get(COLLECTORS_EXTENSION, {}))


def labelled_gauge(name: str, documentation: str, label: str, rows: Iterable[tuple[Any, Any]]) -> GaugeMetricFamily:
    """A gauge with one label from `(label value, number)` rows, e.g. a `GROUP BY status` count."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in rows:
        family.add_metric([str(key)], float(value or 0))
    return family


def observe_request(seconds: float, status: int) -> None:
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    REQUEST_SECONDS.labels(route=rule, method=request.method, status=str(status)).observe(seconds)


class _ScrapeCollector:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("datafair_collector_up", "Whether a scrape-time collector succeeded",
                               labels=["collector"])
        for name, collector in collectors(self.app).items():
            try:
                families = list(collector(db.session))
                db.session.rollback()
            except Exception:
                db.session.rollback()
                log.warning("metrics collector %s failed", name, exc_info=True)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up


def render(app: Flask) -> bytes:
    """The exposition text: this node's process metrics, then the scrape-time ones."""
    directory = app.config.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        out = generate_latest(registry)
    else:
        out = generate_latest(PROCESS_REGISTRY)
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_ScrapeCollector(app))  # type: ignore[arg-type]
    return out + generate_latest(scrape)


def metrics_view() -> Response:
    return Response(render(current_app._get_current_object()), mimetype=CONTENT_TYPE_LATEST,  # type: ignore[attr-defined]
                    headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
