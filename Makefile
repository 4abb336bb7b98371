# datafair: `make run` serves the API with demo data; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: the server's own dependencies (`make run`), and the test tools on top (`make test`).
STAMP := $(VENV)/.installed-server
TEST_STAMP := $(VENV)/.installed-test
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run demo test install install-server lint contracts openapi-lint test-sqlite test-postgres bench migrate seed clean

# What the server needs, nothing else (no test tools): `make run` on a fresh machine.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "datafair needs Python >= 3.11")'
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(TEST_STAMP)

install-server: $(STAMP)
install: $(TEST_STAMP)

# Spectral (pinned in package.json / package-lock.json), reinstalled only when the lock file changes.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "FAILED: make openapi-lint needs Node.js and npm (apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

migrate: install-server
	$(BIN)/flask --app app db upgrade

# The demo's API product has this server's own /_demo-upstream/v1 as its upstream (development only):
# a loopback address, refused unless private URLs are allowed (never in production: the app refuses it).
run: export DATAFAIR_ALLOW_PRIVATE_URLS ?= 1
# `make demo` registers two organizations a run: room for a newcomer's afternoon of runs (default 10/hour).
run: export DATAFAIR_REGISTRATION_RATE_LIMIT ?= 200/hour
# The addresses are printed by gunicorn once it listens (deploy/gunicorn.conf.py, DATAFAIR_BANNER):
# the real bind, whatever DATAFAIR_BIND says.
run: export DATAFAIR_BANNER ?= 1
run: migrate
	$(BIN)/flask --app app seed-demo --if-empty
	$(BIN)/gunicorn -c deploy/gunicorn.conf.py app:app

# The whole journey of a deal, as HTTP calls, against the server `make run` serves (same DATAFAIR_BIND):
# a fresh vendor and buyer each time (scripts/journey.py, walked through in docs/journey.md).
demo:
	@test -x $(BIN)/python || { echo "FAILED: run \`make run\` first (in another terminal): make demo calls its server"; exit 1; }
	$(BIN)/python scripts/journey.py

lint: install
	$(BIN)/ruff check .

contracts: install
	$(BIN)/lint-imports

# The OpenAPI document (dumped from an app on a throwaway SQLite database) against Spectral's
# standard `spectral:oas` ruleset (.spectral.yaml): any warning or error fails.
openapi-lint: install $(NODE_STAMP)
	@tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; \
	  DATABASE_URL="sqlite:///$$tmp/openapi.db" $(BIN)/flask --app app openapi write "$$tmp/openapi.json" && \
	  npx --no-install spectral lint --ruleset .spectral.yaml --fail-severity=warn "$$tmp/openapi.json"

test-sqlite: install
	DATAFAIR_TEST_DB=sqlite $(BIN)/python -m pytest -n 2 --dist loadfile

test-postgres: install
	@if $(BIN)/python -m tests.pgcheck "$${TEST_POSTGRES_URL:-$(PG_URL)}"; then \
	  DATAFAIR_TEST_DB=postgres TEST_POSTGRES_URL="$${TEST_POSTGRES_URL:-$(PG_URL)}" \
	    $(BIN)/python -m pytest -n 2 --dist loadfile; \
	elif [ -n "$${DATAFAIR_REQUIRE_POSTGRES:-}" ]; then \
	  echo "FAILED: PostgreSQL is required (DATAFAIR_REQUIRE_POSTGRES) but not reachable"; exit 1; \
	else \
	  echo ""; echo "*** SKIPPED: the PostgreSQL run (no server reachable at $${TEST_POSTGRES_URL:-$(PG_URL)}) ***"; echo ""; \
	fi

test: lint contracts openapi-lint test-sqlite test-postgres

# Every benchmark with its same-run baseline (about 12 minutes on 2 cores; BENCH_1M=1 adds the 1M-product
# growth step, far longer). Writes tests/bench/results.json, results.md and results.png.
bench: install
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m tests.bench.run

clean:
	rm -rf $(VENV) node_modules instance/datafair.db* .pytest_cache .ruff_cache test-artifacts

# Background jobs in the foreground without Redis (make run already runs them in its workers).
.PHONY: worker
worker: migrate
	$(BIN)/flask --app app worker
