"""Helpers the migration scripts share (not a revision: alembic reads revisions from versions/ only)."""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op


def replace_check(table: str, name: str, old: str, new: str) -> None:
    """Replace the CHECK `old` of `table` (named `ck_<table>_<name>`) by `new`, in place.

    PostgreSQL drops and re-creates the constraint. SQLite cannot alter a CHECK, and rebuilding the
    table (batch mode) would drop its triggers (the append-only ones of the ledger and the access log)
    and trip the foreign keys pointing at it; SQLite documents editing the stored schema for a
    loosened CHECK (ALTER TABLE, "making other kinds of table schema changes"), which keeps the table,
    its rows and its triggers as they are."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
        op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, sa.text(new))
        return
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.exec_driver_sql("UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = ?",
                         (old, new, table))
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def rebuild_sqlite_table(table: str, edit: Callable[[str], str]) -> None:
    """Rebuild `table` on SQLite with its CREATE TABLE statement changed by `edit` (for what SQLite
    cannot alter in place: dropping a UNIQUE constraint). The rows, the indexes and the triggers are
    kept; the other tables' foreign keys keep pointing at it by name.

    Needs foreign key enforcement off for the migration (migrations/env.py turns it off on SQLite and
    runs `PRAGMA foreign_key_check` before turning it on again), as SQLite's documented
    twelve-step procedure for "other kinds of table schema changes" does."""
    bind = op.get_bind()
    rows = bind.exec_driver_sql(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL", (table,)).fetchall()
    create = next(sql for kind, _name, sql in rows if kind == "table")
    others = [sql for kind, _name, sql in rows if kind in ("index", "trigger")]
    new_sql = edit(create)
    if new_sql == create:
        raise RuntimeError(f"rebuild of {table}: the edit changed nothing")
    temporary = f"_rebuild_{table}"
    # The stored statement names the table bare or quoted (`"trades"` once it has been renamed).
    renamed = re.sub(rf'^CREATE TABLE\s+("{table}"|{table})\s', f"CREATE TABLE {temporary} ", new_sql, count=1)
    if renamed == new_sql:
        raise RuntimeError(f"rebuild of {table}: unexpected CREATE TABLE statement")
    bind.exec_driver_sql(renamed)
    columns = ", ".join(f'"{r[1]}"' for r in bind.exec_driver_sql(f'PRAGMA table_info("{table}")').fetchall())
    # Names from this revision's code and the table's own schema, never from input.
    # Names from the revision's code and the table's own schema, never from input.
    bind.exec_driver_sql(f'INSERT INTO {temporary} ({columns}) SELECT {columns} FROM "{table}"')  # noqa: S608  # noqa: S608
    bind.exec_driver_sql(f'DROP TABLE "{table}"')
    bind.exec_driver_sql(f'ALTER TABLE {temporary} RENAME TO "{table}"')
    for sql in others:
        bind.exec_driver_sql(sql)
