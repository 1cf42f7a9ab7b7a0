# Leakseal. `make run` and `make test` set everything up on a machine with only Python 3.12+.
# With DATABASE_URL and REDIS_URL set they use PostgreSQL and Redis instead of the embedded default.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

# The first interpreter that is Python 3.12 or newer; pyenv reads .python-version for the shims.
PYTHON ?= $(shell for p in python$$(cat .python-version 2>/dev/null) python3.14 python3.13 python3.12 python3 python; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
	command -v $$p; break; fi; done)

.PHONY: run test lint typecheck pytest install migrate demo clean help

help:
	@echo "make run    set up, load the demo team and start Leakseal at http://$(HOST):$(PORT)"
	@echo "make test   set up and run ruff, mypy and the test suite"

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "Leakseal needs Python 3.12 or newer (see .python-version); none was found on PATH." >&2; \
		echo "Install one (e.g. 'pyenv install 3.12' or your system's python3.12) and run make again." >&2; \
		exit 1; fi
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo

run: demo
	@PORT=$(PORT) HOST=$(HOST) bash scripts/run.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy .

pytest: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) var staticfiles .mypy_cache .ruff_cache .pytest_cache

# The live-board benchmark (bench/live_board.py, results in BENCHMARKS.md): a database and
# server of its own, loopback only, stops by itself. BENCH_ARGS="--listeners 20" to vary it.
.PHONY: bench
bench: install
	$(PY) bench/live_board.py $(BENCH_ARGS)

# The tracker-push benchmark (bench/tracker_push.py): needs REDIS_URL (and DATABASE_URL for PostgreSQL).
.PHONY: bench-push
bench-push: install
	$(PY) bench/tracker_push.py $(BENCH_ARGS)

# The dashboard benchmark (bench/dashboard.py): needs DATABASE_URL (PostgreSQL); builds 1M escapes.
.PHONY: bench-dashboard
bench-dashboard: install
	$(PY) bench/dashboard.py $(BENCH_ARGS)
