# Sandtable. Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test install install-dev lint typecheck pytest pytest-pg demo clean bench

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## Run the whole system on embedded stores at http://127.0.0.1:8050
run: install
	$(PY) manage.py run

## The whole suite: ruff, the import layers (lint-imports), mypy, pytest. mypy (one core for about 20 s
## on a fresh clone) runs beside pytest rather than before it; the suite fails if either fails
test: install-dev lint
	$(MAKE) --no-print-directory -j2 typecheck pytest

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

typecheck: install-dev
	$(VENV)/bin/mypy

## The suite includes the PostgreSQL tests (marked pg: tests/test_postgres.py and the also_on_pg
## variants) on a throwaway server; pytest-pg runs only those
## The suite runs on PYTEST_WORKERS processes (pytest-xdist; each test module stays on one worker, so
## its module fixtures are built once); PYTEST_WORKERS=0 runs it in this process
PYTEST_WORKERS ?= 2
pytest: install-dev
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

pytest-pg: install-dev
	$(PY) -m pytest -m pg $(PYTEST_ARGS)

bench: install-dev
	for b in benchmarks/*.py; do $(PY) $$b | tail -n 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache test-artifacts
