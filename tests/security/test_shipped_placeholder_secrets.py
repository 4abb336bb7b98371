"""Production refuses every placeholder secret shipped in the repository, and weak keys in general.

The shipped values are read from the files at test time (deploy/.env.example, the Kubernetes Secret
template and its `kubectl --from-literal` comments, the compose file's interpolations, every Markdown
document and the Makefile), so a new example added anywhere is covered — or fails here until it is.

With the placeholder of deploy/.env.example the exchange used to start in production, and an HS256
access token forged with that publicly known key was accepted as an operator's: checked here through
create_app() and through a real gunicorn started with the example's environment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest
import yaml

from app import create_app
from exchange.config import DEFAULT_SECRET_KEY, ConfigError, load_config, validate_config
from exchange.identity.auth import ACCESS_TYP, AUDIENCE, ISSUER
from tests.api.test_ratelimit import _free_port, _get

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HOW_TO = "secrets.token_urlsafe(48)"  # every refusal of a weak key says how to make a good one
STRONG = secrets.token_urlsafe(48)
# Variables that look like secrets, and the config key each one reaches (POSTGRES_PASSWORD reaches
# DATABASE_URL through compose.yaml's interpolation, handled when the compose file is read).
SECRET_NAME = re.compile(r"SECRET|PASSWORD|API_KEY|TOKEN|DATABASE(_REPLICA)?_URL")
CONFIG_KEY = {"DATAFAIR_SECRET_KEY": "SECRET_KEY", "STRIPE_WEBHOOK_SECRET": "STRIPE_WEBHOOK_SECRET",
              "STRIPE_API_KEY": "STRIPE_API_KEY", "DATABASE_URL": "DATABASE_URL",
              "DATABASE_REPLICA_URL": "DATABASE_REPLICA_URL"}
ASSIGNMENT = re.compile(r"""(?:--from-literal=)?\b([A-Z][A-Z0-9_]*)=("[^"]*"|'[^']*'|[^\s`'"\\]+)""")


def _env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            out[name.strip()] = value.strip().strip("'\"")
    return out


def _generated(value: str) -> bool:
    """A command that generates the value (`$(python -c ...)`), not a value."""
    return "$(" in value or value.startswith("$")


def shipped_values() -> list[tuple[str, str, str]]:
    """(where, VARIABLE, value) of every non-empty secret-looking value the repository ships."""
    found: set[tuple[str, str, str]] = set()
    env_example = _env_file(DEPLOY / ".env.example")
    for name, value in env_example.items():
        found.add(("deploy/.env.example", name, value))
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        text = path.read_text()
        for doc in yaml.safe_load_all(text):
            if doc and doc.get("kind") == "Secret":
                for name, value in (doc.get("stringData") or {}).items():
                    found.add((f"deploy/k8s/{path.name}", name, str(value)))
                for name, value in (doc.get("data") or {}).items():
                    found.add((f"deploy/k8s/{path.name}", name, base64.b64decode(value).decode()))
        for m in ASSIGNMENT.finditer(text):  # `kubectl create secret ... --from-literal=` comments
            found.add((f"deploy/k8s/{path.name}", m.group(1), m.group(2).strip("'\"")))
    # compose.yaml: every ${VAR...} interpolation filled in from .env.example, as `docker compose` does.
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    blocks = [compose.get("x-app", {}), *compose["services"].values()]
    for block in blocks:
        env = block.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        for name, value in env.items():
            value = re.sub(r"\$\{(\w+)[^}]*\}", lambda m: env_example.get(m.group(1), ""), str(value))
            found.add(("deploy/compose.yaml", name, value))
    docs = sorted(p for p in ROOT.rglob("*.md") if not {".venv", "node_modules", ".git"} & set(p.parts))
    for path in [*docs, ROOT / "Makefile"]:
        for m in ASSIGNMENT.finditer(path.read_text()):
            found.add((str(path.relative_to(ROOT)), m.group(1), m.group(2).strip("'\"")))
    found.add(("exchange/config.py", "DATAFAIR_SECRET_KEY", DEFAULT_SECRET_KEY))
    return sorted((where, name, value) for where, name, value in found
                  if SECRET_NAME.search(name) and value and not _generated(value))


SHIPPED = shipped_values()
SHIPPED_KEYS = [v for v in SHIPPED if v[1] == "DATAFAIR_SECRET_KEY"]
SHIPPED_OTHERS = [v for v in SHIPPED if v[1] != "DATAFAIR_SECRET_KEY"
                  and not (v[1].endswith("_URL") and not urlsplit(v[2]).password)]  # URLs without a password


def _ids(values):
    return [f"{where}:{name}" for where, name, _ in values]


def test_the_example_files_are_found():
    """The collection itself works: the two placeholders of the report are among the values checked."""
    keys = {(where, value) for where, _, value in SHIPPED_KEYS}
    assert ("deploy/.env.example", "replace-with-at-least-32-random-characters") in keys
    assert ("deploy/k8s/secret.example.yaml", "REPLACE-WITH-AT-LEAST-32-RANDOM-CHARACTERS") in keys
    assert any(name == "DATABASE_URL" and where == "deploy/compose.yaml" for where, name, _ in SHIPPED_OTHERS)


def test_every_shipped_secret_variable_is_one_the_config_checks():
    unknown = sorted({(where, name) for where, name, _ in SHIPPED
                      if name not in CONFIG_KEY and name != "POSTGRES_PASSWORD"})
    assert not unknown, f"secret-looking example values the production check does not know: {unknown}"


def _production(**overrides):
    return {"DATAFAIR_ENV": "production", "SECRET_KEY": STRONG, "DATABASE_URL": "sqlite://", **overrides}


@pytest.mark.parametrize(("where", "name", "value"), SHIPPED_KEYS, ids=_ids(SHIPPED_KEYS))
def test_create_app_refuses_every_shipped_secret_key_in_production(where, name, value, monkeypatch):
    monkeypatch.setenv("DATAFAIR_SECRET_KEY", value)  # as the process environment (gunicorn's app:app)
    with pytest.raises(ConfigError, match="DATAFAIR_SECRET_KEY") as refused:
        create_app({"DATAFAIR_ENV": "production", "DATABASE_URL": "sqlite://"})
    assert HOW_TO in str(refused.value)
    assert value not in str(refused.value) or len(value) < 8  # the error does not print the secret
    with pytest.raises(ConfigError, match="DATAFAIR_SECRET_KEY"):
        create_app(_production(SECRET_KEY=value))


@pytest.mark.parametrize(("where", "name", "value"), SHIPPED_OTHERS, ids=_ids(SHIPPED_OTHERS))
def test_create_app_refuses_every_other_shipped_placeholder_in_production(where, name, value):
    target = "DATABASE_URL" if name == "POSTGRES_PASSWORD" else name
    config_value = (f"postgresql://datafair:{value}@postgres:5432/datafair" if name == "POSTGRES_PASSWORD"
                    else value)
    overrides = {CONFIG_KEY[target]: config_value}
    if target == "STRIPE_API_KEY":
        overrides["STRIPE_WEBHOOK_SECRET"] = "whsec_" + secrets.token_urlsafe(32)
    with pytest.raises(ConfigError, match=target):
        create_app(_production(**overrides))


def _forge(key: str, operator) -> str:
    """An access token an attacker can make from the publicly known key (exchange.auth's subkey)."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": operator.user_id, "org": operator.org_id, "typ": ACCESS_TYP,
              "iat": now, "exp": now + 600, "jti": secrets.token_urlsafe(16)}
    subkey = hmac.new(key.encode(), b"datafair/jwt/v1", hashlib.sha256).digest()
    return jwt.encode(claims, subkey, algorithm="HS256", headers={"typ": "at+jwt"})


@pytest.mark.parametrize(("where", "name", "value"), SHIPPED_KEYS, ids=_ids(SHIPPED_KEYS))
def test_a_token_forged_with_a_shipped_key_never_reaches_an_operator_route(where, name, value, api, make_app):
    operator = api.operator()
    forged = {"Authorization": f"Bearer {_forge(value, operator)}"}
    try:
        production = make_app(DATAFAIR_ENV="production", SECRET_KEY=value)
    except ConfigError as refused:
        assert HOW_TO in str(refused)
        return
    r = production.test_client().get("/api/v1/audit", headers=forged)
    pytest.fail(f"production started with the key of {where}; a forged operator token got {r.status_code}")


@pytest.mark.parametrize("source", ["deploy/.env.example", "deploy/k8s/secret.example.yaml"])
def test_gunicorn_with_the_shipped_example_environment_refuses_to_start(source, api, database, tmp_path):
    """The real entry: `gunicorn -c deploy/gunicorn.conf.py app:app` with the example's values (the
    test database instead of the example's unreachable host, so the old behaviour shows in full)."""
    example = {name: value for where, name, value in SHIPPED if where == source}
    if source.endswith(".env.example"):
        example = _env_file(DEPLOY / ".env.example")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFAIR_", "STRIPE_")) and k != "REDIS_URL"}
    env.update({k: v for k, v in example.items() if not k.endswith("_URL")})
    port = _free_port()
    env.update({"DATAFAIR_ENV": "production", "DATABASE_URL": database.url, "DATAFAIR_WORKERS": "1",
                "DATAFAIR_BIND": f"127.0.0.1:{port}", "PYTHONPATH": str(ROOT)})
    operator = api.operator()
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "app:app"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                if _get(f"http://127.0.0.1:{port}/api/v1/health") == 200:
                    req = urllib.request.Request(
                        f"http://127.0.0.1:{port}/api/v1/audit",
                        headers={"Authorization": f"Bearer {_forge(example['DATAFAIR_SECRET_KEY'], operator)}"})
                    try:
                        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
                            status = r.status
                    except urllib.error.HTTPError as e:
                        status = e.code
                    pytest.fail(f"gunicorn served in production with {source}'s key; "
                                f"a forged operator token got {status}")
                time.sleep(0.2)
            assert proc.poll() is not None, "gunicorn neither served nor exited"
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    assert proc.returncode != 0
    out = log_path.read_text()
    assert "DATAFAIR_SECRET_KEY" in out and HOW_TO in out, out[-2000:]


# -- the rule itself: entropy and placeholder words, not only the known values ----------------------

WEAK = {
    "one character": "a" * 64,
    "two characters": "ab" * 40,
    "a repeated phrase": "change-me-change-me-change-me-change-me",
    "a repeated unit": "0123456789" * 6,
    "a run of the alphabet": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "few distinct characters": "abcabcbacbcabacbabcacbabcbacbacbacbabcabcabcbacbabcacbabcabcabab",
    "changeme": "changeme" + secrets.token_urlsafe(40),
    "example": secrets.token_urlsafe(30) + "-Example-" + secrets.token_urlsafe(10),
    "placeholder": "PLACEHOLDER_" + secrets.token_urlsafe(40),
    "secret-key": "my-secret-key-" + secrets.token_urlsafe(40),
    "replace": "replace_" + secrets.token_urlsafe(40),
    "your key here": "YourKeyHere-" + secrets.token_urlsafe(40),
}


@pytest.mark.parametrize("key", list(WEAK.values()), ids=list(WEAK))
def test_production_refuses_weak_and_placeholder_keys(key):
    with pytest.raises(ConfigError, match="DATAFAIR_SECRET_KEY") as refused:
        validate_config(load_config({"DATAFAIR_ENV": "production", "DATAFAIR_SECRET_KEY": key}))
    assert HOW_TO in str(refused.value)


GENERATORS = {
    "token_urlsafe(48)": lambda: secrets.token_urlsafe(48),
    "token_urlsafe(32)": lambda: secrets.token_urlsafe(32),
    "token_hex(32)": lambda: secrets.token_hex(32),  # openssl rand -hex 32
    "openssl rand -base64 32": lambda: base64.b64encode(os.urandom(32)).decode(),
}


@pytest.mark.parametrize("make", list(GENERATORS.values()), ids=list(GENERATORS))
def test_production_accepts_generated_keys(make):
    for _ in range(500):  # no false refusals of properly generated keys
        validate_config(load_config({"DATAFAIR_ENV": "production", "DATAFAIR_SECRET_KEY": make(),
                                     "STRIPE_API_KEY": "sk_live_" + secrets.token_urlsafe(72),
                                     "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_urlsafe(24)}))


@pytest.mark.parametrize(("name", "value"), [
    ("STRIPE_WEBHOOK_SECRET", "whsec_replace_me"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_your-webhook-secret-here"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_" + "x" * 32),
    ("STRIPE_API_KEY", "sk_live_placeholder"),
    ("STRIPE_API_KEY", "sk_live_" + "0" * 40),
])
def test_production_refuses_placeholder_stripe_secrets(name, value):
    env = {"DATAFAIR_ENV": "production", "DATAFAIR_SECRET_KEY": STRONG, "STRIPE_API_KEY": "sk_live_" + STRONG,
           "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_urlsafe(24), name: value}
    with pytest.raises(ConfigError, match=name):
        validate_config(load_config(env))


def test_development_and_testing_keep_their_keys():
    validate_config(load_config({}))  # development's default key
    validate_config(load_config({"DATAFAIR_ENV": "testing", "DATAFAIR_SECRET_KEY": os.environ["DATAFAIR_SECRET_KEY"]}))
