"""deploy/scripts/backup.sh and restore.sh on the test PostgreSQL: a restored copy holds the same data,
keeps the ledger's append-only triggers, and `flask --app app ledger verify` is green against it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from exchange.db import db
from exchange.ledger.engine import post_entry, reverse_entry
from tests.ledger_helpers import escrow, fees, funding, move, payable

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "deploy" / "scripts"

pytestmark = pytest.mark.postgres


@pytest.fixture
def tools():
    missing = [t for t in ("pg_dump", "pg_restore", "psql") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs the PostgreSQL client tools on PATH: {', '.join(missing)}")


@pytest.fixture
def restored_url(database):
    base = make_url(database.url)
    name = base.database + "_restored"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def script(name: str, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / name), *args], env={**os.environ, "DATABASE_URL": url},
                          capture_output=True, text=True, timeout=120)


def ledger_verify(url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", "ledger", "verify", "--quiet"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in ("organizations", "users", "ledger_entries", "ledger_postings", "ledger_accounts",
                              "outbox_events", "webhook_endpoints", "audit_events")}
    finally:
        engine.dispose()


def test_backup_then_restore_into_a_fresh_database_keeps_a_valid_ledger(api, app, database, restored_url,
                                                                        tools, tmp_path):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    vendor, buyer = api.vendor(), api.enterprise()
    api.post("webhook-endpoints", vendor, json={"url": "http://127.0.0.1:9/x", "events": ["payout.sent"]})
    with app.app_context():
        s = db.session
        post_entry(s, kind="payment", trade_id="trd_1", postings=move(funding(buyer.org_id), escrow("trd_1"), 10_000))
        settle = [*move(escrow("trd_1"), payable(vendor.org_id), 9_800), *move(escrow("trd_1"), fees(), 200)]
        post_entry(s, kind="settlement", trade_id="trd_1", postings=settle)
        wrong = post_entry(s, kind="payment", trade_id="trd_2",
                           postings=move(funding(buyer.org_id), escrow("trd_2"), 5_000))
        reverse_entry(s, entry_id=wrong.id, reason="posted twice")
        s.commit()
    before = counts(database.url)
    assert before["ledger_entries"] == 4

    dump = tmp_path / "datafair.dump"
    backup = script("backup.sh", database.url, str(dump))
    assert backup.returncode == 0, backup.stderr
    assert dump.stat().st_size > 0 and "backup written" in backup.stdout

    restore = script("restore.sh", restored_url, str(dump))
    assert restore.returncode == 0, restore.stderr
    assert counts(restored_url) == before

    verified = ledger_verify(restored_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ledger valid: 4 entries" in verified.stderr

    # The append-only triggers came back with the data.
    engine = create_engine(restored_url)
    try:
        with engine.connect() as conn, pytest.raises(Exception, match="is append-only"):
            conn.execute(text("UPDATE ledger_entries SET kind = 'refund' WHERE seq = 1"))
    finally:
        engine.dispose()

    # A restore never lands on top of existing data.
    again = script("restore.sh", restored_url, str(dump))
    assert again.returncode == 3 and "not empty" in again.stderr


def test_backup_refuses_a_non_postgresql_url(tools, tmp_path):
    r = script("backup.sh", f"sqlite:///{tmp_path / 'x.db'}", str(tmp_path / "x.dump"))
    assert r.returncode == 2 and "PostgreSQL" in r.stderr
    assert not (tmp_path / "x.dump").exists()
