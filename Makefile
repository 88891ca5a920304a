# The two entry points: `make run` and `make test`. Both work from a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean bench worker

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[web,worker,dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	APP_ENV=$${APP_ENV:-dev} $(BIN)/python scripts/run.py

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
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
