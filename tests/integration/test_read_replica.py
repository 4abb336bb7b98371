"""exchange.db.read_session: catalog reads go to DATABASE_REPLICA_URL when it is set."""

from __future__ import annotations

import shutil
import sqlite3

from flask_migrate import upgrade
from sqlalchemy import func, select

from exchange.db import REPLICA_BIND, db, read_session, write_intent
from exchange.identity import services as identity
from exchange.identity.models import Organization
from tests.bench.generate import run as generate


def _count(session) -> int:
    return session.execute(select(func.count()).select_from(Organization)).scalar_one()


def test_without_a_replica_reads_use_the_primary_session(app):
    with app.app_context():
        assert read_session() is db.session
        assert REPLICA_BIND not in db.engines


def test_with_a_replica_catalog_reads_go_to_it(make_app, tmp_path):
    primary, replica = tmp_path / "primary.db", tmp_path / "replica.db"
    app = make_app(DATABASE_URL=f"sqlite:///{primary}", DATABASE_REPLICA_URL=f"sqlite:///{replica}")
    with app.app_context():
        upgrade()
        db.engine.dispose()
    shutil.copyfile(primary, replica)  # the replica as of now
    with app.app_context():
        identity.register_organization(db.session, name="Only On Primary", type="vendor", region="GD",
                                       registration_number="91440101REPL0001",
                                       admin={"email": "a@primary.test", "password": "x" * 12, "name": "A"})
        db.session.commit()
        reader = read_session()
        assert reader is not db.session and reader is read_session()  # one per app context
        assert str(reader.get_bind().url).endswith("replica.db")
        assert _count(db.session) == 1
        assert _count(reader) == 0  # not replicated yet: the replica answers, with its lag
    with app.app_context():
        assert read_session() is not reader  # closed at the end of the previous context


def test_replica_reads_never_take_the_write_lock(make_app, tmp_path):
    replica = tmp_path / "replica.db"
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'primary.db'}", DATABASE_REPLICA_URL=f"sqlite:///{replica}")
    with app.app_context():
        upgrade()
        db.engine.dispose()
    shutil.copyfile(tmp_path / "primary.db", replica)
    # Someone else holds the replica's write lock (on PostgreSQL a replica is read-only anyway).
    holder = sqlite3.connect(replica, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")
    try:
        token = write_intent.set(True)  # as in a POST request
        try:
            with app.app_context():
                assert _count(read_session()) == 0
        finally:
            write_intent.reset(token)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_public_catalog_and_stats_read_the_replica(make_app, tmp_path):
    primary, replica = tmp_path / "primary.db", tmp_path / "replica.db"
    app = make_app(DATABASE_URL=f"sqlite:///{primary}", DATABASE_REPLICA_URL=f"sqlite:///{replica}")
    with app.app_context():
        upgrade()
        db.engine.dispose()
    shutil.copyfile(primary, replica)
    generate(app, products=5, seed=3, echo=lambda _: None)
    client = app.test_client()
    # The primary has five listed products; the replica (not yet caught up) has none.
    assert client.get("/api/v1/products").get_json()["total"] == 0
    assert client.get("/api/v1/stats").get_json()["products_listed"] == 0
    with app.app_context():  # closing every connection checkpoints the primary's WAL into its file
        for engine in db.engines.values():
            engine.dispose()
    shutil.copyfile(primary, replica)  # the replica catches up
    assert client.get("/api/v1/products").get_json()["total"] == 5
