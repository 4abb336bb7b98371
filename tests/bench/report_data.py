"""Bulk copies of one signed deal (offer, contract, its trade, its dossier) for the trade report's tests
and benchmark: INSERT ... SELECT over a recursive series, on SQLite and PostgreSQL alike, through the
tables the services write (new ids, contract numbers and signature times; the rest as the template)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from exchange.db import Base

SERIES = "WITH RECURSIVE series(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM series WHERE g < :n) "


def _pad(dialect: str, expr: str) -> str:
    return f"printf('%07d', {expr})" if dialect == "sqlite" else f"lpad(({expr})::text, 7, '0')"


def _copy_id(dialect: str, column: str, tag: str = "") -> str:
    """The template's id cut to 30 (29 with a tag) characters, the tag, then g on 7 digits (<= 40)."""
    keep = 30 - len(tag)
    return f"substr(\"{column}\", 1, {keep}) || '{tag}' || {_pad(dialect, 'g + :offset')}"


def _signed_at(dialect: str) -> str:
    if dialect == "sqlite":
        # The text SQLAlchemy's SQLite DateTime stores and binds (microseconds on 6 digits), so that
        # comparisons with bound times are exact.
        return "strftime('%Y-%m-%d %H:%M:%S', :base, '+' || ((g + :offset) * :step) || ' seconds') || '.000000'"
    return "CAST(:base AS timestamptz) + (g + :offset) * :step * interval '1 second'"


def _clone(conn: Any, table: str, key: str, source: str, n: int, replace: dict[str, str],
           params: dict[str, Any], where: str = "") -> int:
    columns = [c.name for c in Base.metadata.tables[table].columns]
    exprs = [replace.get(c, f'"{c}"') for c in columns]
    sql = (SERIES + f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
           f'SELECT {", ".join(exprs)} FROM "{table}", series WHERE "{table}"."{key}" = :src {where}')
    if conn.dialect.name == "postgresql":
        # PostgreSQL wants the WITH inside the INSERT's SELECT.
        sql = (f'INSERT INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) ' + SERIES
               + f'SELECT {", ".join(exprs)} FROM "{table}", series WHERE "{table}"."{key}" = :src {where}')
    return conn.execute(text(sql), {"n": n, "src": source, **params}).rowcount


def clone_deals(conn: Any, contract_id: str, n: int, *, base: datetime, step_s: int = 1, offset: int = 0,
                second_period_every: int = 0) -> None:
    """Copy the signed contract `contract_id` n times, copy g signed at `base + (g + offset) * step_s`
    seconds, with its offer, its period-1 trade (amount + g) and its dossier if it has one; every
    `second_period_every`-th copy also gets a period-2 trade. `offset` makes later batches unique."""
    d = conn.dialect.name
    stamp = base.astimezone(UTC)
    params = {"base": stamp.strftime("%Y-%m-%d %H:%M:%S") if d == "sqlite" else stamp, "step": step_s,
              "offset": offset}
    offer_id = conn.execute(text("SELECT offer_id FROM contracts WHERE id = :c"), {"c": contract_id}).scalar_one()
    trade_id = conn.execute(text("SELECT id FROM trades WHERE contract_id = :c AND period_index = 1"),
                            {"c": contract_id}).scalar_one()
    new_contract = _copy_id(d, "contract_id")
    _clone(conn, "offers", "id", offer_id, n, {"id": _copy_id(d, "id")}, params)
    _clone(conn, "contracts", "id", contract_id, n,
           {"id": _copy_id(d, "id"), "offer_id": _copy_id(d, "offer_id"),
            "number": "\"number\" || '-' || (g + :offset)", "signed_at": _signed_at(d)}, params)
    _clone(conn, "trades", "id", trade_id, n,
           {"id": _copy_id(d, "id"), "contract_id": new_contract, "amount": '"amount" + g + :offset'}, params)
    if second_period_every:
        _clone(conn, "trades", "id", trade_id, n,
               {"id": _copy_id(d, "id", "p"), "contract_id": new_contract, "period_index": "2",
                "amount": '"amount" + g + :offset'}, {**params, "every": second_period_every},
               where="AND (g + :offset) % :every = 0")
    dossier = conn.execute(text("SELECT id FROM dossiers WHERE contract_id = :c"), {"c": contract_id}).scalar()
    if dossier is not None:
        _clone(conn, "dossiers", "id", dossier, n, {"id": _copy_id(d, "id"), "contract_id": new_contract}, params)
