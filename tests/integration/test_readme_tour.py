"""The README's tour, as written, against a real gunicorn on a freshly migrated and seeded SQLite file:
it registers and verifies a vendor, downloads the demo's released file and checks it against the
signed manifest with nothing but the JWKS, RFC 8785 and Ed25519, calls the demo's API product
through the gateway (its upstream: the same server's development-only demo upstream), and queries the
demo's privacy-computing product (one noised aggregate, one refused query). Runs once, on the PostgreSQL
run (it uses its own SQLite file either way)."""

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
                       reason="run once, on the PostgreSQL run (the tour uses its own SQLite file)"),
]


def tour_script() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(API=.*?)```", text, re.S)
    assert block, "the README has no tour block starting with API="
    return block.group(1)


def test_the_readme_tour_delivers_a_file_matching_the_signed_manifest(tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("the tour needs curl")
    # `make run`'s settings: development (the demo upstream is served) with loopback upstreams allowed.
    dev = {"DATAFAIR_ENV": "development", "DATAFAIR_ALLOW_PRIVATE_URLS": "1"}
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/tour.db",
           "DATAFAIR_STORAGE_URL": f"file://{tmp_path}/storage", "DATAFAIR_PASSWORD_HASH": "scrypt:1024:8:1",
           "PYTHONPATH": str(ROOT), **dev}
    env.pop("REDIS_URL", None)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    done = subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    access_log = tmp_path / "access.log"
    with gunicorns(env["DATABASE_URL"], tmp_path, count=1, DATAFAIR_STORAGE_URL=env["DATAFAIR_STORAGE_URL"],
                   DATAFAIR_ACCESS_LOG=str(access_log), **dev) as (base,):
        # Seeded once the server's port is known: the demo API product's upstream is this server.
        done = subprocess.run([*flask, "seed-demo"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**env, "DATAFAIR_DEMO_UPSTREAM_URL": f"{base}/_demo-upstream/v1"})
        assert done.returncode == 0, done.stderr[-2000:]
        # The README's scratch files first (the checkout itself may live under /tmp), then the server and
        # the interpreter.
        script = tour_script().replace("/tmp/", f"{tmp_path}/")  # noqa: S108 - the README's paths, moved here
        script = script.replace("http://127.0.0.1:8000", base).replace(".venv/bin/python", sys.executable)
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    # Step 1: the index of links, a Chinese search answered in Chinese, a certificate checked offline.
    assert '"links":{"self":"/api/v1","docs":"/api/v1/docs"' in run.stdout
    assert '["广州市实时交通流量数据 Guangzhou Real-time Traffic Flow"' in run.stdout
    assert re.search(r"certificate DFX-\d{4}-\d{6} signed by the exchange: ok", run.stdout)
    assert "file = manifest, manifest signed by the exchange: ok" in run.stdout
    downloaded = (tmp_path / "od.csv").read_bytes()
    assert downloaded.startswith(b"hour,origin,destination,trips\n")
    # The download's path reached gunicorn's access log with its token redacted, and no token at all.
    log = access_log.read_text()
    assert "/api/v1/downloads/[redacted]" in log
    assert not re.search(r"/api/v1/downloads/(?!\[redacted\])", log)
    # The gateway relayed the vendor's readings (the vendor's header added by the exchange: the demo
    # upstream answers 401 without it) and counted the one call.
    assert '{"segment_id":"TH-0412","name":' in run.stdout and '"flow_per_5min":' in run.stdout
    assert '"calls_used":1,"periods":[{' in run.stdout
    assert "/gateway/v1/prd_" in log and "/_demo-upstream/v1/traffic-flow" in log
    # The sandbox answered an aggregate by city (noised: one epsilon spent of the budget of 10) and
    # refused the blocked column, spending nothing and echoing no data.
    assert '{"status": "succeeded", "refused_reason": null, "rows": [["' in run.stdout
    assert '"hong_kong", ' in run.stdout and '"epsilon_remaining": 9.0}' in run.stdout
    assert '{"status": "refused", "refused_reason": "blocked_column: ' in run.stdout
    assert run.stdout.count('"epsilon_remaining": 9.0}') == 2
    assert "+852 0" not in run.stdout and "CU-0" not in run.stdout
    # The Hengqin–Macao dossier: the GBA standard contract with a 10-working-day deadline, its undertaking
    # drafted from the contract, the vendor's filing; the buyer's licence verified offline.
    assert '{"path": "gba_standard_contract", "status": "awaiting_filing", "filing": {' in run.stdout
    assert "# 承诺书 Undertaking" in run.stdout
    assert '\nfiled\n' in run.stdout
    assert re.search(r"DRR-\d{4}-\d{6} \(licence, processing\) signed by the exchange: ok", run.stdout)
    # The regulator's report: its Digest is the sha-256 of the bytes received, signed by the exchange.
    assert re.search(r"trade report, \d+ bytes: digest and signature ok", run.stdout)
    report = (tmp_path / "report.csv").read_bytes()
    assert report.count(b"\r\n") >= 8 and "前海跨境电商收件人地址标准化数据".encode() in report
