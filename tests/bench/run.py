"""`make bench`: every benchmark under tests/bench (not collected by `make test`)."""

from __future__ import annotations

import sys

from tests.bench import bench_search

if __name__ == "__main__":
    sys.exit(bench_search.main(sys.argv[1:]))
