"""One sandbox worker process: runs checked queries with DuckDB, one per request, and nothing else.

Started by `delivery.sandbox_engine` as `python -I delivery/sandbox_worker.py` with an empty
environment (no secrets, no database URL) in a scratch directory, it imports only the standard
library and DuckDB — never the application. It reads one JSON request per line on stdin and answers
one JSON line on stdout.

Each request gets a fresh in-memory DuckDB connection, locked down before the buyer's query runs
(DuckDB's guidance for untrusted SQL, "Securing DuckDB"): one view per release file, then
`allowed_paths` = exactly those files, external access off (no other file, no network, no
ATTACH/COPY/INSTALL), extension autoloading and autoinstall off, Python replacement scans off, a
memory and a thread limit, and the configuration locked. The query it receives has already been
checked and rebuilt by `delivery.sandbox_sql`; these settings are the second wall, not the first.
The parent kills this process when a query runs past its time limit.
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


def run(request: dict[str, Any]) -> dict[str, Any]:
    try:
        con = connect(request["files"], request["memory_mb"], request["threads"])
    except duckdb.Error:
        return {"ok": False, "code": "engine_error"}
    try:
        if request.get("describe"):
            tables = {}
            for f in request["files"]:
                rows = con.execute(f"DESCRIBE {_quote_ident(f['table'])}").fetchall()
                tables[f["table"]] = [[str(r[0]), str(r[1])] for r in rows]
            return {"ok": True, "tables": tables}
        table = request["table"]
        known = {str(r[0]).lower() for r in con.execute(f"DESCRIBE {_quote_ident(table)}").fetchall()}
        for column in request.get("columns", []):
            if column not in known:
                return {"ok": False, "code": "unknown_column", "column": column}
        cursor = con.execute(request["sql"])
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchmany(int(request["cap"]) + 1)
        return {"ok": True, "names": names, "rows": [[_value(v) for v in row] for row in rows]}
    except duckdb.OutOfMemoryException:
        return {"ok": False, "code": "out_of_memory"}
    except duckdb.Error:
        # The engine's message may quote values of the data: only its class goes back.
        return {"ok": False, "code": "engine_error"}
    finally:
        con.close()


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
