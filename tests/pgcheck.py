"""Exit 0 when the PostgreSQL server at the given URL answers, 1 otherwise (used by `make test`)."""

import sys

import psycopg


def main(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        print(f"PostgreSQL not reachable: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
