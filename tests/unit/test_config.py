"""Configuration: production refuses default or short secrets and never runs in debug mode."""

from __future__ import annotations

import pytest

from app import create_app
from exchange.config import DEFAULT_SECRET_KEY, ConfigError, load_config, parse_rate, validate_config

STRONG = "Zq8#rT1!vW3$yU5%aS7^dF9&gH2*jK4(lM6)"  # 36 characters


def config(**env: str) -> dict:
    return load_config(env)


def production(**env: str) -> dict:
    return config(DATAFAIR_ENV="production", **env)


def test_defaults_follow_api_md():
    c = config()
    assert c["DATAFAIR_ENV"] == "development"
    assert c["DATABASE_URL"] == "sqlite:///instance/datafair.db"
    assert c["FEE_BPS"] == 200 and c["NOTICE_DAYS"] == 0
    assert c["LOGIN_RATE_LIMIT"] == "10/minute" and c["WRITE_RATE_LIMIT"] == "300/minute"
    assert c["REDIS_URL"] is None
    # Bounded waits: every one below the web worker's 30 s timeout.
    assert c["LOCK_TIMEOUT_MS"] == 5000
    assert c["STATEMENT_TIMEOUT_MS"] == 25000 and c["IDLE_IN_TRANSACTION_TIMEOUT_MS"] == 60000
    assert c["DB_APPLICATION_NAME"] == "datafair-web"
    assert config(DATAFAIR_DB_APPLICATION_NAME="datafair-worker")["DB_APPLICATION_NAME"] == "datafair-worker"
    assert c["IDEMPOTENCY_ABANDONED_SECONDS"] == 120
    assert (c["QUERY_TIMEOUT_S"], c["QUERY_WORKERS"], c["WORKER_TIMEOUT_S"]) == (20.0, 2, 30)
    assert config(DATAFAIR_QUERY_TIMEOUT_S="0.5")["QUERY_TIMEOUT_S"] == 0.5
    validate_config(c)  # development accepts its default secret


@pytest.mark.parametrize("secret", [None, DEFAULT_SECRET_KEY, "", "short", "x" * 31])
def test_production_refuses_a_default_or_short_secret(secret):
    env = {} if secret is None else {"DATAFAIR_SECRET_KEY": secret}
    with pytest.raises(ConfigError, match="DATAFAIR_SECRET_KEY"):
        validate_config(production(**env))


def test_production_accepts_a_long_random_secret():
    validate_config(production(DATAFAIR_SECRET_KEY=STRONG))


@pytest.mark.parametrize("secret", [DEFAULT_SECRET_KEY, "x" * 31])
def test_create_app_raises_config_error_in_production(monkeypatch, secret):
    monkeypatch.setenv("DATAFAIR_SECRET_KEY", secret)
    with pytest.raises(ConfigError):
        create_app({"DATAFAIR_ENV": "production", "DATABASE_URL": "sqlite://"})
    with pytest.raises(ConfigError):
        create_app({"DATAFAIR_ENV": "production", "SECRET_KEY": secret, "DATABASE_URL": "sqlite://"})


def test_production_needs_the_webhook_secret_with_stripe_and_scrypt_passwords():
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET"):
        validate_config(production(DATAFAIR_SECRET_KEY=STRONG, STRIPE_API_KEY="sk_live_x"))
    with pytest.raises(ConfigError, match="scrypt"):
        validate_config(production(DATAFAIR_SECRET_KEY=STRONG, DATAFAIR_PASSWORD_HASH="plain"))


@pytest.mark.parametrize(("env", "match"), [
    ({"DATAFAIR_ENV": "staging"}, "DATAFAIR_ENV"),
    ({"DATAFAIR_FEE_BPS": "abc"}, "DATAFAIR_FEE_BPS"),
    ({"DATAFAIR_FEE_BPS": "10001"}, "FEE_BPS"),
    ({"DATAFAIR_NOTICE_DAYS": "-1"}, "DATAFAIR_NOTICE_DAYS"),
    ({"DATAFAIR_LOGIN_RATE_LIMIT": "lots"}, "rate limit"),
    ({"DATAFAIR_WRITE_RATE_LIMIT": "0/minute"}, "rate limit"),
    ({"DATAFAIR_LOCK_TIMEOUT_MS": "0"}, "DATAFAIR_LOCK_TIMEOUT_MS"),
    ({"DATAFAIR_STATEMENT_TIMEOUT_MS": "soon"}, "DATAFAIR_STATEMENT_TIMEOUT_MS"),
    ({"DATAFAIR_IDEMPOTENCY_ABANDONED_SECONDS": "0"}, "DATAFAIR_IDEMPOTENCY_ABANDONED_SECONDS"),
    # A sandbox query is killed before its web worker would be.
    ({"DATAFAIR_QUERY_TIMEOUT_S": "30"}, "below the web worker's timeout"),
    ({"DATAFAIR_QUERY_TIMEOUT_S": "25", "DATAFAIR_TIMEOUT": "20"}, "below the web worker's timeout"),
    ({"DATAFAIR_QUERY_TIMEOUT_S": "0"}, "DATAFAIR_QUERY_TIMEOUT_S"),
    ({"DATAFAIR_QUERY_TIMEOUT_S": "soon"}, "DATAFAIR_QUERY_TIMEOUT_S"),
    ({"DATAFAIR_QUERY_WORKERS": "0"}, "DATAFAIR_QUERY_WORKERS"),
])
def test_invalid_settings_are_refused(env, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(config(**env))


@pytest.mark.parametrize(("spec", "parsed"), [("10/minute", (10, 60)), (" 5 / second ", (5, 1)),
                                              ("100/hour", (100, 3600)), ("1/day", (1, 86400))])
def test_parse_rate(spec, parsed):
    assert parse_rate(spec) == parsed


def test_production_never_enables_debug(monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = create_app({"DATAFAIR_ENV": "production", "SECRET_KEY": STRONG, "DEBUG": True,
                      "DATABASE_URL": "sqlite://"})
    assert app.debug is False
    assert app.config["DEBUG"] is False
    assert app.config["PROPAGATE_EXCEPTIONS"] is False
