"""``make bench``: the DAO / QueryBuilder benchmark (see bench/bench_dao.py for options)."""

from __future__ import annotations

import sys

from bench.bench_dao import run

if __name__ == "__main__":
    run(sys.argv[1:])
