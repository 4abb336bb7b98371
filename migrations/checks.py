"""Helpers the migration scripts share (not a revision: alembic reads revisions from versions/ only)."""

from __future__ import annotations

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
