#!/usr/bin/env bash
# Prove the dependency floors in pyproject.toml: install every dependency at exactly its
# lowest allowed version in a throwaway venv, then run the fast suite against the real servers.
# Usage: scripts/check_floors.sh [pytest args]   (default: -m "not slow" -q)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${KIT_FLOORS_VENV:-/tmp/kit-floors-venv}
PYTHON=${PYTHON:-python3}
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$PYTHON" - "$constraints" <<'PY'
import re, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = list(project["dependencies"])
for extra in ("web", "worker", "dev"):
    reqs += project["optional-dependencies"][extra]
pins = {}
for req in reqs:
    m = re.match(r"^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)", req)
    if m and m.group(1).lower() not in ("ruff", "mypy"):  # linters: not what the tests run on
        pins[m.group(1).lower()] = m.group(2)
with open(sys.argv[1], "w") as out:
    out.writelines(f"{name}=={version}\n" for name, version in sorted(pins.items()))
print("floors:", ", ".join(f"{n}=={v}" for n, v in sorted(pins.items())))
PY
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -c "$constraints" -e '.[web,worker,dev]'
"$VENV/bin/python" -m pip freeze | grep -iE '^(sqlalchemy|asyncpg|aiomysql|aiosqlite|orjson|fastapi|uvicorn|httpx|celery|pytest|pytest-asyncio|alembic|oracledb|python-dotenv)=='
if [ $# -eq 0 ]; then set -- -m "not slow" -q; fi
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
