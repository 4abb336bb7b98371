"""Deployment settings: defaults, parsing, and refusal of nonsense (the process must not start)."""

from __future__ import annotations

import pytest

from exchange.config import ConfigError, load_config


def test_job_and_webhook_defaults():
    c = load_config({})
    assert (c["JOB_SWEEP_SECONDS"], c["JOB_WEBHOOK_SECONDS"], c["JOB_RECONCILE_SECONDS"]) == (60, 10, 300)
    assert c["WEBHOOK_ALLOW_PRIVATE"] is False and c["WEBHOOK_TIMEOUT_SECONDS"] == 5
    assert (c["WEBHOOK_MAX_ATTEMPTS"], c["WEBHOOK_RETRY_BASE_SECONDS"]) == (10, 30)
    assert c["WEBHOOK_RETRY_MAX_SECONDS"] == 3600
    assert c["JOBS_IN_PROCESS"] == "auto" and c["REDIS_KEY_PREFIX"] == "datafair:"
    assert c["PROMETHEUS_MULTIPROC_DIR"] is None and c["DATABASE_REPLICA_URL"] is None


def test_settings_are_read_from_the_environment():
    c = load_config({"DATAFAIR_WEBHOOK_ALLOW_PRIVATE": "1", "DATAFAIR_JOB_WEBHOOK_SECONDS": "2",
                     "DATAFAIR_REDIS_PREFIX": "x:", "PROMETHEUS_MULTIPROC_DIR": "/run/prom",
                     "DATABASE_REPLICA_URL": "postgresql://r/db"})
    assert c["WEBHOOK_ALLOW_PRIVATE"] is True and c["JOB_WEBHOOK_SECONDS"] == 2
    assert c["REDIS_KEY_PREFIX"] == "x:" and c["PROMETHEUS_MULTIPROC_DIR"] == "/run/prom"
    assert c["DATABASE_REPLICA_URL"] == "postgresql://r/db"
    assert load_config({"DATAFAIR_WEBHOOK_ALLOW_PRIVATE": "yes"})["WEBHOOK_ALLOW_PRIVATE"] is False  # only "1"


@pytest.mark.parametrize("env", [
    {"DATAFAIR_JOB_SWEEP_SECONDS": "0"},
    {"DATAFAIR_JOB_WEBHOOK_SECONDS": "ten"},
    {"DATAFAIR_WEBHOOK_MAX_ATTEMPTS": "0"},
    {"DATAFAIR_WEBHOOK_TIMEOUT_SECONDS": "-1"},
])
def test_nonsense_is_refused(env):
    with pytest.raises(ConfigError):
        load_config(env)
