"""Configuration: the only module that reads the process environment.

`load_config()` returns a plain dict that `create_app(config)` merges with test overrides.
Production (`DATAFAIR_ENV=production`) refuses to start with a default, short, placeholder or
low-entropy secret (`secret_strength`), whatever example file it was copied from.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SECRET_KEY = "dev-only-insecure-datafair-secret-key-change-me"  # noqa: S105 - refused in production
MIN_SECRET_LENGTH = 32
MIN_SECRET_BITS = 128  # estimated entropy of DATAFAIR_SECRET_KEY in production
MIN_STRIPE_SECRET_BITS = 64  # Stripe generates its keys; this only catches placeholders like whsec_xxxx
GENERATE_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
# Words of the placeholders people ship and copy ("replace-with-...", "change-me", "your-key-here"),
# compared case- and separator-insensitively. Six letters or more: a random key contains one by chance
# with a probability under 1e-7.
PLACEHOLDER_WORDS = ("changeme", "replace", "placeholder", "example", "secretkey", "insecure", "devonly",
                     "yourkey", "yoursecret", "keyhere", "secrethere", "password", "notasecret", "fillmein")
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


class ConfigError(RuntimeError):
    """Raised when the configuration cannot be used (the process must not start)."""


def parse_rate(value: str) -> tuple[int, int]:
    """Parse `"10/minute"` into `(limit, period_seconds)`; raises ConfigError otherwise."""
    m = _RATE_RE.match(value or "")
    if not m or int(m.group(1)) < 1:
        raise ConfigError(f"invalid rate limit {value!r}: expected like '10/minute'")
    return int(m.group(1)), _PERIODS[m.group(2)]


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value < 3600:
        raise ConfigError(f"{name} must be above 0 and below 3600, got {raw}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _signed_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer (seconds, may be negative), got {raw!r}") from None


def load_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read API.md's variables from the environment into a config dict."""
    env = os.environ if env is None else env
    return {
        "DATAFAIR_ENV": env.get("DATAFAIR_ENV", "development"),
        "DATABASE_URL": env.get("DATABASE_URL", "sqlite:///instance/datafair.db"),
        "DATABASE_REPLICA_URL": env.get("DATABASE_REPLICA_URL") or None,
        # SQLAlchemy pool per process (PostgreSQL): workers x (size + overflow) x nodes < max_connections.
        "DB_POOL_SIZE": _int(env, "DATAFAIR_DB_POOL_SIZE", 5),
        "DB_MAX_OVERFLOW": _int(env, "DATAFAIR_DB_MAX_OVERFLOW", 5),
        # Bounded waits (PostgreSQL: SET LOCAL per transaction; SQLite: the busy timeout is the lock
        # timeout). A lock not granted in time -> 503 with Retry-After. All below the 30 s worker timeout.
        "LOCK_TIMEOUT_MS": _int(env, "DATAFAIR_LOCK_TIMEOUT_MS", 5000, minimum=1),
        "STATEMENT_TIMEOUT_MS": _int(env, "DATAFAIR_STATEMENT_TIMEOUT_MS", 25000),  # 0: none
        # A transaction left open (a stuck worker) is ended by the server, releasing its locks.
        "IDLE_IN_TRANSACTION_TIMEOUT_MS": _int(env, "DATAFAIR_IDLE_IN_TRANSACTION_TIMEOUT_MS", 60000),  # 0: none
        # pg_stat_activity.application_name: the web app, or the Celery worker/beat (set there).
        "DB_APPLICATION_NAME": env.get("DATAFAIR_DB_APPLICATION_NAME") or "datafair-web",
        # An idempotency claim older than this was left by a dead worker and may be taken over; above
        # the web worker's 30 s timeout, so a live request is never overtaken.
        "IDEMPOTENCY_ABANDONED_SECONDS": _int(env, "DATAFAIR_IDEMPOTENCY_ABANDONED_SECONDS", 120, minimum=1),
        "SECRET_KEY": env.get("DATAFAIR_SECRET_KEY", DEFAULT_SECRET_KEY),
        "FEE_BPS": _int(env, "DATAFAIR_FEE_BPS", 200),
        "NOTICE_DAYS": _int(env, "DATAFAIR_NOTICE_DAYS", 0),
        "ACCEPTANCE_DAYS": _int(env, "DATAFAIR_ACCEPTANCE_DAYS", 7, minimum=1),
        # Subscriptions (API.md, Subscriptions): the next period's trade is created this many days
        # before the current period ends; a period not escrowed by its start + GRACE_DAYS lapses.
        "RENEWAL_NOTICE_DAYS": _int(env, "DATAFAIR_RENEWAL_NOTICE_DAYS", 7, minimum=0),
        "GRACE_DAYS": _int(env, "DATAFAIR_GRACE_DAYS", 3, minimum=0),
        # Any trade still unpaid this many days after its contract was signed is cancelled by the sweep.
        "PAYMENT_DAYS": _int(env, "DATAFAIR_PAYMENT_DAYS", 14, minimum=1),
        # The domain clock's shift in seconds (development and tests only; refused in production).
        "NOW_OFFSET_S": _signed_int(env, "DATAFAIR_NOW_OFFSET_S", 0),
        "LOGIN_RATE_LIMIT": env.get("DATAFAIR_LOGIN_RATE_LIMIT", "10/minute"),
        "WRITE_RATE_LIMIT": env.get("DATAFAIR_WRITE_RATE_LIMIT", "300/minute"),
        # Anonymous POST /api/v1/organizations per client address (each is a password hash and a queue entry).
        "REGISTRATION_RATE_LIMIT": env.get("DATAFAIR_REGISTRATION_RATE_LIMIT", "10/hour"),
        "ACCESS_TOKEN_SECONDS": _int(env, "DATAFAIR_ACCESS_TOKEN_SECONDS", 900, minimum=30),
        "REFRESH_TOKEN_DAYS": _int(env, "DATAFAIR_REFRESH_TOKEN_DAYS", 30, minimum=1),
        # The web console's signed session cookie ends this many hours after sign-in (CONSOLE.md).
        "CONSOLE_SESSION_HOURS": _int(env, "DATAFAIR_CONSOLE_SESSION_HOURS", 8, minimum=1),
        # werkzeug hash spec; scrypt is memory-hard. Tests lower the cost, production keeps the default.
        "PASSWORD_HASH_METHOD": env.get("DATAFAIR_PASSWORD_HASH", "scrypt:32768:8:1"),
        "CORS_ORIGINS": [o.strip() for o in env.get("DATAFAIR_CORS_ORIGINS", "").split(",") if o.strip()],
        "STRIPE_API_KEY": env.get("STRIPE_API_KEY") or None,
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET") or None,
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE") or None,
        "REDIS_URL": env.get("REDIS_URL") or None,
        "TRUSTED_PROXIES": _int(env, "DATAFAIR_TRUSTED_PROXIES", 0),
        # Background jobs and outbound webhooks (issue 9).
        "REDIS_KEY_PREFIX": env.get("DATAFAIR_REDIS_PREFIX", "datafair:"),
        "JOBS_IN_PROCESS": env.get("DATAFAIR_JOBS_IN_PROCESS", "auto"),
        "JOB_SWEEP_SECONDS": _int(env, "DATAFAIR_JOB_SWEEP_SECONDS", 60, minimum=1),
        "JOB_WEBHOOK_SECONDS": _int(env, "DATAFAIR_JOB_WEBHOOK_SECONDS", 10, minimum=1),
        "JOB_RECONCILE_SECONDS": _int(env, "DATAFAIR_JOB_RECONCILE_SECONDS", 300, minimum=1),
        "WEBHOOK_ALLOW_PRIVATE": env.get("DATAFAIR_WEBHOOK_ALLOW_PRIVATE", "0") == "1",
        "WEBHOOK_TIMEOUT_SECONDS": _int(env, "DATAFAIR_WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1),
        "WEBHOOK_MAX_ATTEMPTS": _int(env, "DATAFAIR_WEBHOOK_MAX_ATTEMPTS", 10, minimum=1),
        "WEBHOOK_RETRY_BASE_SECONDS": _int(env, "DATAFAIR_WEBHOOK_RETRY_BASE_SECONDS", 30, minimum=1),
        "WEBHOOK_RETRY_MAX_SECONDS": _int(env, "DATAFAIR_WEBHOOK_RETRY_MAX_SECONDS", 3600, minimum=1),
        "WEBHOOK_MAX_ENDPOINTS": _int(env, "DATAFAIR_WEBHOOK_MAX_ENDPOINTS", 20, minimum=1),
        # Delivery (API.md, Delivery and use): where release files live (None: instance/storage),
        # the upload limit (5 GiB) and how long a download link lives (at most 15 minutes).
        "STORAGE_URL": env.get("DATAFAIR_STORAGE_URL") or None,
        # Where a regulator report is spooled beyond 1 MiB before it is sent (default: the system's temp).
        "REPORT_TMP_DIR": env.get("DATAFAIR_REPORT_TMP_DIR") or None,
        "MAX_UPLOAD_BYTES": _int(env, "DATAFAIR_MAX_UPLOAD_BYTES", 5 << 30, minimum=1),
        "DOWNLOAD_LINK_SECONDS": _int(env, "DATAFAIR_DOWNLOAD_LINK_SECONDS", 300, minimum=1),
        # The API gateway (API.md, API gateway): per-key rate, response cap, usage periods.
        "GATEWAY_RATE_LIMIT": env.get("DATAFAIR_GATEWAY_RATE_LIMIT", "600/minute"),
        "GATEWAY_MAX_RESPONSE_BYTES": _int(env, "DATAFAIR_GATEWAY_MAX_RESPONSE_BYTES", 50 << 20, minimum=1),
        "USAGE_PERIOD_MINUTES": _int(env, "DATAFAIR_USAGE_PERIOD_MINUTES", 60, minimum=1),
        "ALLOW_PRIVATE_URLS": (env.get("DATAFAIR_ALLOW_PRIVATE_URLS", "0") == "1"
                               or env.get("DATAFAIR_WEBHOOK_ALLOW_PRIVATE", "0") == "1"),
        # The privacy-computing sandbox (API.md, Privacy computing): a query's time limit (always below
        # the web worker's timeout, DATAFAIR_TIMEOUT), the worker processes per web worker, their limits.
        "QUERY_TIMEOUT_S": _float(env, "DATAFAIR_QUERY_TIMEOUT_S", 20.0),
        "QUERY_WORKERS": _int(env, "DATAFAIR_QUERY_WORKERS", 2, minimum=1),
        "QUERY_MEMORY_MB": _int(env, "DATAFAIR_QUERY_MEMORY_MB", 1024, minimum=64),
        "QUERY_THREADS": _int(env, "DATAFAIR_QUERY_THREADS", 2, minimum=1),
        "WORKER_TIMEOUT_S": _int(env, "DATAFAIR_TIMEOUT", 30, minimum=1),
        # Local copies of S3-stored release files the engine reads (None: instance/sandbox-cache).
        "SANDBOX_CACHE_DIR": env.get("DATAFAIR_SANDBOX_CACHE_DIR") or None,
        # prometheus-client's multiprocess mode under gunicorn (the library reads the same variable).
        "PROMETHEUS_MULTIPROC_DIR": env.get("PROMETHEUS_MULTIPROC_DIR") or None,
    }


def placeholder_word(value: str) -> str | None:
    """The placeholder word `value` contains (case and separators ignored), or None."""
    folded = re.sub(r"[^a-z0-9]", "", value.lower())
    return next((w for w in PLACEHOLDER_WORDS if w in folded), None)


def _novel_length(value: str) -> int:
    """Characters not predictable from what came before: a repeat of an earlier substring (4+
    characters, overlapping too: "abababab" is "ab" and one repeat) counts as one character, and a
    character next to the previous one in code points (runs like "aaaa", "abcd", "9876") as none."""
    value = value[:512]  # an estimate: the first 512 characters are plenty
    n, i = 0, 0
    while i < len(value):
        length = 0
        while i + length < len(value) and value[i:i + length + 1] in value[:i + length]:
            length += 1
        if length >= 4:
            n, i = n + 1, i + length
            continue
        if i == 0 or abs(ord(value[i]) - ord(value[i - 1])) > 1:
            n += 1
        i += 1
    return n


def secret_strength(value: str) -> float:
    """Estimated entropy in bits: Shannon entropy per character of `value` times its length, the
    length counting neither repeats of earlier substrings nor runs ("aaaa", "abcd", "change-me-change-me")."""
    if not value:
        return 0.0
    counts = Counter(value)
    per_char = -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())
    return per_char * _novel_length(value)


def _refuse_weak_secret(name: str, value: str, min_bits: int, advice: str) -> None:
    word = placeholder_word(value)
    bits = secret_strength(value)
    if word or bits < min_bits:
        why = f"contains the placeholder word {word!r}" if word else (
            f"has too little entropy (about {bits:.0f} bits estimated, at least {min_bits} needed)")
        # The value itself is never printed: errors end up in logs.
        raise ConfigError(f"{name} {why}; it must not be a copied example in production. {advice}")


def _refuse_placeholder_password(name: str, url: str | None) -> None:
    password = urlsplit(url).password if url and "://" in url else None
    word = placeholder_word(password) if password else None
    if word:
        raise ConfigError(f"{name}: the database password contains the placeholder word {word!r}; "
                          "set the real password in production.")


def _validate_production_secrets(config: Mapping[str, Any]) -> None:
    secret = config["SECRET_KEY"] or ""
    advice = f"Generate a key with: {GENERATE_KEY}"
    if secret == DEFAULT_SECRET_KEY or len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(f"DATAFAIR_SECRET_KEY must be set to a random value of at least {MIN_SECRET_LENGTH} "
                          f"characters in production. {advice}")
    _refuse_weak_secret("DATAFAIR_SECRET_KEY", secret, MIN_SECRET_BITS, advice)
    if config["STRIPE_API_KEY"] and not config["STRIPE_WEBHOOK_SECRET"]:
        raise ConfigError("STRIPE_WEBHOOK_SECRET is required when STRIPE_API_KEY is set in production")
    stripe_advice = "Copy the value from the Stripe dashboard (Developers > API keys / Webhooks)."
    for name in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"):
        if config.get(name):
            _refuse_weak_secret(name, config[name], MIN_STRIPE_SECRET_BITS, stripe_advice)
    _refuse_placeholder_password("DATABASE_URL", config.get("DATABASE_URL"))
    _refuse_placeholder_password("DATABASE_REPLICA_URL", config.get("DATABASE_REPLICA_URL"))


def validate_config(config: Mapping[str, Any]) -> None:
    """Refuse configurations that must never run; raises ConfigError."""
    if config["DATAFAIR_ENV"] not in ("development", "production", "testing"):
        raise ConfigError(f"DATAFAIR_ENV must be development or production, got {config['DATAFAIR_ENV']!r}")
    secret = config["SECRET_KEY"] or ""
    if config["DATAFAIR_ENV"] == "production":
        _validate_production_secrets(config)
        if config.get("NOW_OFFSET_S"):
            raise ConfigError("DATAFAIR_NOW_OFFSET_S shifts the exchange's clock for development and tests only; "
                              "unset it in production")
        if config.get("ALLOW_PRIVATE_URLS"):
            raise ConfigError("DATAFAIR_ALLOW_PRIVATE_URLS (or DATAFAIR_WEBHOOK_ALLOW_PRIVATE) is for development "
                              "and tests only: production never calls loopback or private addresses")
        if config.get("PASSWORD_HASH_METHOD", "").split(":")[0] not in ("scrypt",):
            raise ConfigError("production requires the scrypt password hash")
    elif len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(f"DATAFAIR_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters")
    for origin in config.get("CORS_ORIGINS") or []:
        # Exact origins only: a wildcard or "null" would let any page (or a sandboxed one) read answers.
        if not _ORIGIN_RE.match(origin):
            raise ConfigError(f"DATAFAIR_CORS_ORIGINS: {origin!r} is not an origin like https://app.example.com")
    parse_rate(config["LOGIN_RATE_LIMIT"])
    parse_rate(config["WRITE_RATE_LIMIT"])
    try:
        parse_rate(config["REGISTRATION_RATE_LIMIT"])
    except ConfigError as exc:
        raise ConfigError(f"DATAFAIR_REGISTRATION_RATE_LIMIT: {exc}") from None
    if float(config.get("QUERY_TIMEOUT_S", 20)) >= int(config.get("WORKER_TIMEOUT_S", 30)):
        raise ConfigError(f"DATAFAIR_QUERY_TIMEOUT_S ({config['QUERY_TIMEOUT_S']:g}) must be below the web worker's "
                          f"timeout DATAFAIR_TIMEOUT ({config['WORKER_TIMEOUT_S']}): a query is killed before its "
                          "worker is")
    if not 0 <= int(config["FEE_BPS"]) <= 10_000:
        raise ConfigError("DATAFAIR_FEE_BPS must be between 0 and 10000")
