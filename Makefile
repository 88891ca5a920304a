# The two entry points: `make run` and `make test`. Both work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean bench worker migrate migration

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[web,worker,dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	APP_ENV=$${APP_ENV:-dev} $(BIN)/python scripts/run.py

migrate: $(STAMP)  # apply every migration to the configured database (APP_ENV, DB_URL, DB_DIRECT_URL)
	APP_ENV=$${APP_ENV:-dev} $(BIN)/alembic upgrade head

migration: $(STAMP)  # make migration m="add x": bring the database to head, then autogenerate
	@test -n "$(m)" || { echo 'usage: make migration m="what changed"' >&2; exit 2; }
	APP_ENV=$${APP_ENV:-dev} $(BIN)/alembic upgrade head
	APP_ENV=$${APP_ENV:-dev} $(BIN)/alembic revision --autogenerate -m "$(m)"

# Start the local services the suite needs that are installed but down (PgBouncer too).
# One still down does not stop here: pytest fails its tests naming it, unless
# KIT_TEST_BACKENDS narrows the matrix (e.g. KIT_TEST_BACKENDS=sqlite). SERVICES=none skips.
test: $(STAMP)
	$(if $(filter none,$(SERVICES)),,-bash scripts/services.sh $(SERVICES))
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

worker: $(STAMP)
	$(BIN)/python scripts/run_celery_worker.py

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
