"""One sandbox worker process: runs checked queries with DuckDB, one per request, and nothing else.

Started by `delivery.sandbox_engine` as `python -I delivery/sandbox_worker.py` with an empty
environment (no secrets, no database URL) in a scratch directory, it imports only the standard
library and DuckDB — never the application. It reads one JSON request per line on stdin and answers
one JSON line on stdout.

Each release gets an in-memory DuckDB connection, locked down before any buyer's query runs
(DuckDB's guidance for untrusted SQL, "Securing DuckDB"): one view per release file, then
`allowed_paths` = exactly those files, external access off (no other file, no network, no
ATTACH/COPY/INSTALL), extension autoloading and autoinstall off, Python replacement scans off, a
memory and a thread limit, and the configuration locked. The query it receives has already been
checked and rebuilt by `delivery.sandbox_sql`; these settings are the second wall, not the first.
The connection is kept for the next query over the same files (closed after any engine error); the
parent kills this process when a query runs past its time limit.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import sys
from typing import Any

import duckdb

READERS = {"csv": "read_csv", "parquet": "read_parquet"}


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _value(v: Any) -> Any:
    """A JSON value for one cell (the parent hashes and signs the answer as RFC 8785 JSON)."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v if -(2**53 - 1) <= v <= 2**53 - 1 else float(v)
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else None
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    return str(v)


def connect(files: list[dict[str, str]], memory_mb: int, threads: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config={
        "threads": max(1, int(threads)), "memory_limit": f"{int(memory_mb)}MB",
        "autoload_known_extensions": False, "autoinstall_known_extensions": False,
        "python_enable_replacements": False, "max_temp_directory_size": "0B",
    })
    for f in files:
        reader = READERS[f["format"]]
        # The table name and path come from the exchange (the release's files), quoted.
        view = f"CREATE VIEW {_quote_ident(f['table'])} AS SELECT * FROM {reader}({_quote_str(f['path'])})"  # noqa: S608
        con.execute(view)
    paths = ", ".join(_quote_str(f["path"]) for f in files)
    con.execute(f"SET allowed_paths = [{paths}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


_open: dict[str, Any] = {}  # the connection of the last release queried: {"key", "con", "columns"}


def _connection(request: dict[str, Any]) -> tuple[duckdb.DuckDBPyConnection, dict[str, set[str]]]:
    """A locked-down connection over the request's files, kept for the next request over the same
    files (the grammar cannot change it: no DDL, no SET; its views and file metadata are reused)."""
    key = json.dumps([request["files"], request["memory_mb"], request["threads"]], sort_keys=True)
    if _open.get("key") != key:
        _close()
        con = connect(request["files"], request["memory_mb"], request["threads"])
        columns = {f["table"]: [(str(r[0]), str(r[1])) for r in
                                con.execute(f"DESCRIBE {_quote_ident(f['table'])}").fetchall()]
                   for f in request["files"]}
        _open.update(key=key, con=con, columns=columns)
    return _open["con"], _open["columns"]


def _close() -> None:
    con = _open.pop("con", None)
    _open.clear()
    if con is not None:
        con.close()


def run(request: dict[str, Any]) -> dict[str, Any]:
    try:
        con, described = _connection(request)
    except duckdb.Error:
        _close()
        return {"ok": False, "code": "engine_error"}
    if request.get("describe"):
        return {"ok": True, "tables": {t: [list(c) for c in cols] for t, cols in described.items()}}
    known = {name.lower() for name, _type in described.get(request["table"], [])}
    for column in request.get("columns", []):
        if column not in known:
            return {"ok": False, "code": "unknown_column", "column": column}
    try:
        cursor = con.execute(request["sql"])
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchmany(int(request["cap"]) + 1)
        return {"ok": True, "names": names, "rows": [[_value(v) for v in row] for row in rows]}
    except duckdb.OutOfMemoryException:
        _close()
        return {"ok": False, "code": "out_of_memory"}
    except duckdb.Error:
        # The engine's message may quote values of the data: only its class goes back.
        _close()
        return {"ok": False, "code": "engine_error"}


def main() -> None:
    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            answer = run(json.loads(line))
        except Exception:
            answer = {"ok": False, "code": "engine_error"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
