"""`make demo` as a newcomer runs it: against a real gunicorn started like `make run` (freshly migrated and
seeded SQLite, development settings, the banner on), the whole journey of a deal completes, twice in a row
(a fresh vendor and buyer each time), and the banner names the port really served. Runs once, on the
PostgreSQL run (it uses its own SQLite file either way)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.test_ratelimit import gunicorns

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.allow_hosts(["127.0.0.1"]),
    pytest.mark.skipif(os.environ.get("DATAFAIR_TEST_DB") != "postgres",
                       reason="run once, on the PostgreSQL run (the journey uses its own SQLite file)"),
]
STEPS = ("register", "certif", "procurement", "Matching", "Negotiation", "Signatures", "Payment", "Delivery",
         "Acceptance", "gateway", "ledger")


def test_make_demo_runs_the_whole_journey_again_and_again(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make demo needs make")
    dev = {"DATAFAIR_ENV": "development", "DATAFAIR_ALLOW_PRIVATE_URLS": "1", "DATAFAIR_BANNER": "1"}
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/demo.db", "DATAFAIR_STORAGE_URL": f"file://{tmp_path}/s",
           "DATAFAIR_PASSWORD_HASH": "scrypt:1024:8:1", "PYTHONPATH": str(ROOT), **dev}
    env.pop("REDIS_URL", None)
    env.pop("DATAFAIR_DEMO_UPSTREAM_URL", None)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    done = subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    with gunicorns(env["DATABASE_URL"], tmp_path, count=1, DATAFAIR_STORAGE_URL=env["DATAFAIR_STORAGE_URL"],
                   **dev) as (base,):
        bind = base.removeprefix("http://")
        # make run seeds with the same DATAFAIR_BIND as the server: the demo upstream follows it.
        done = subprocess.run([*flask, "seed-demo"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**env, "DATAFAIR_BIND": bind})
        assert done.returncode == 0, done.stderr[-2000:]
        runs = [subprocess.run(["make", "-s", "demo", f"BIN={Path(sys.executable).parent}"], cwd=ROOT,
                               env={**env, "DATAFAIR_BIND": bind}, capture_output=True, text=True, timeout=300)
                for _ in range(2)]
        banner = (tmp_path / "gunicorn-0.log").read_text()
    assert f"datafair API:   {base}/api/v1" in banner and f"DATAFAIR_BIND={bind} make demo" in banner
    for run in runs:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        out = run.stdout
        calls = int(re.search(r"Journey complete: (\d+) HTTP calls, 0 refused", out).group(1))
        assert calls == len(re.findall(r"^   -> \d{3}\b", out, re.M)), "every call is printed with its answer"
        assert all(word in out for word in STEPS)
        # Matches carry what a buyer decides on; the vendor signed on site at its stall of the live fair.
        assert re.search(r'=> match #1: \{"score": [0-9.]+, "title": "越秀区停车场实时空位', out)
        assert '"certificate_number": "DFX-' in out and '"delivery_mode": "file"' in out
        assert re.search(r"POST   /api/v1/contracts/\w+/signatures   as vendor\n   -> 201 \{\"status\": \"signed\"",
                         out)
        assert "sha256 of the 86 bytes downloaded = the manifest's: ok" in out
        assert '-> 200 {"status": "settled"' in out
        assert '"segment_id": "TH-0412"' in out and '"calls_used": 1' in out
        assert '"balanced": true, "chain_valid": true' in out
        # Every digest and signature of the deal recomputed from public data alone (docs/digests.md).
        for check in ("digest = sha256(RFC 8785 of the listed product + ids); signature verified with the JWKS: ok",
                      "digest = sha256(RFC 8785 of the terms); 2 signatures verified with the JWKS: ok",
                      "manifest_sha256 = sha256(RFC 8785 of the files); the exchange's receipt verified: ok",
                      "entries: each hash = sha256(RFC 8785 body + prev_hash), each balanced: ok"):
            assert check in out, check
    # A fresh vendor and buyer each run: the two runs registered different organizations.
    orgs = [re.findall(r'"id": "(org_\w+)", "type": "vendor"', run.stdout) for run in runs]
    assert len(orgs[0]) == len(orgs[1]) == 1 and orgs[0] != orgs[1]
