# Leakseal. `make run` and `make test` set everything up on a machine with only Python 3.12+.
# With DATABASE_URL and REDIS_URL set they use PostgreSQL and Redis instead of the embedded default.
#
# Installs come from uv.lock, never from a fresh resolve: pip bootstraps the pinned uv into
# .venv-tools/, then `uv sync --locked` makes .venv exactly what uv.lock says (and fails if
# pyproject.toml has changed without `make lock`). `make lock` is the one thing that resolves.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

# The first interpreter that is Python 3.12 or newer; pyenv reads .python-version for the shims.
PYTHON ?= $(shell for p in python$$(cat .python-version 2>/dev/null) python3.14 python3.13 python3.12 python3 python; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
	command -v $$p; break; fi; done)

# The interpreter itself, not a pyenv shim: given a shim, uv would rebuild .venv at every sync.
PYTHON_EXE = $(shell $(PYTHON) -c 'import sys; print(sys.executable)')

# uv, pinned once in pyproject.toml ([tool.uv] required-version), in a venv of its own.
UV_VERSION := $(shell sed -n 's/^required-version = "==\([^"]*\)"/\1/p' pyproject.toml)
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
UV_STAMP := $(TOOLS)/.uv-$(UV_VERSION)
# uv makes .venv here, with the interpreter found above, and never downloads a Python of its own.
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1
# Write every installed module's .pyc at install time (about 10 s once): with
# PYTHONDONTWRITEBYTECODE set, as on our machines and in the Dockerfile, each manage.py, uvicorn,
# Celery and pytest start would otherwise compile Django and the rest again (4 s instead of 1 s).
export UV_COMPILE_BYTECODE := 1

define need_python
	@if [ -z "$(PYTHON)" ]; then \
		echo "Leakseal needs Python 3.12 or newer (see .python-version); none was found on PATH." >&2; \
		echo "Install one (e.g. 'pyenv install 3.12' or your system's python3.12) and run make again." >&2; \
		exit 1; fi
endef

.PHONY: run test test-fast lint typecheck pytest install node lock uv migrate demo clean help

help:
	@echo "make run        set up, load the demo team and start Leakseal at http://$(HOST):$(PORT)"
	@echo "make test       set up and run ruff, mypy and the test suite (the 10 slowest tests last)"
	@echo "make test-fast  the test suite without the browser tests, for the edit-run loop"
	@echo "make lock       update uv.lock to the newest releases pyproject.toml allows"

$(UV_STAMP):
	$(need_python)
	@if [ -z "$(UV_VERSION)" ]; then echo "pyproject.toml has no [tool.uv] required-version = \"==X.Y.Z\"" >&2; exit 1; fi
	@echo "Using $(PYTHON) ($$($(PYTHON) --version)) to install uv $(UV_VERSION) in $(TOOLS)/"
	rm -rf $(TOOLS)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	touch $@

uv: $(UV_STAMP)

$(VENV)/.installed: pyproject.toml uv.lock $(UV_STAMP)
	$(need_python)
	$(UV) sync --locked --python $(PYTHON_EXE) || { \
		echo "If uv says uv.lock needs to be updated: pyproject.toml changed without 'make lock';" >&2; \
		echo "run 'make lock LOCK_ARGS=' (only what the change needs) and commit uv.lock." >&2; exit 1; }
	touch $@

install: $(VENV)/.installed

# axe-core for the accessibility browser test (tests/browser/test_accessibility.py), exactly as
# package-lock.json pins it: `npm ci` installs from the lock and nothing else, into
# node_modules/ (git-ignored, never in an image). Once, until package*.json change.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "The browser tests need Node.js and npm (for axe-core, pinned in package-lock.json); npm was not found on PATH." >&2; \
		echo "Install them (e.g. 'apt-get install nodejs npm') and run make again." >&2; \
		exit 1; fi
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

node: $(NODE_STAMP)

# Resolve again and write uv.lock: every dependency to its newest allowed release. After an edit
# of pyproject.toml, `make lock LOCK_ARGS=` changes only what the edit needs;
# LOCK_ARGS="--upgrade-package django" moves one package.
LOCK_ARGS ?= --upgrade
lock: $(UV_STAMP)
	$(need_python)
	$(UV) lock $(LOCK_ARGS) --python $(PYTHON_EXE)

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

# The browser tests, the `processes` tests and the rest at once, each on a database of its own
# (scripts/pytest_both.sh).
pytest: install $(NODE_STAMP)
	bash scripts/pytest_both.sh $(PYTEST_ARGS)

test: lint typecheck pytest

# Everything but the real-browser tests (marker "browser"): the quick loop while editing.
test-fast: install
	$(VENV)/bin/pytest -m "not browser" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) node_modules var staticfiles .mypy_cache .ruff_cache .pytest_cache

# The live-board benchmark (bench/live_board.py, results in BENCHMARKS.md): a database and
# server of its own, loopback only, stops by itself. BENCH_ARGS="--listeners 20" to vary it.
.PHONY: bench
bench: install
	$(PY) bench/live_board.py $(BENCH_ARGS)

# The tracker-push benchmark (bench/tracker_push.py): needs REDIS_URL (and DATABASE_URL for PostgreSQL).
.PHONY: bench-push
bench-push: install
	$(PY) bench/tracker_push.py $(BENCH_ARGS)

# The board-change benchmark (bench/board_changes.py): each kind of board change, from the click to
# the other browsers (headless Chromium); with DATABASE_URL and REDIS_URL on PostgreSQL and Redis.
.PHONY: bench-board
bench-board: install
	$(PY) bench/board_changes.py $(BENCH_ARGS)

# The dashboard benchmark (bench/dashboard.py): needs DATABASE_URL (PostgreSQL); builds 1M escapes.
.PHONY: bench-dashboard
bench-dashboard: install
	$(PY) bench/dashboard.py $(BENCH_ARGS)

# The CI test results benchmark (bench/ci_results.py): needs DATABASE_URL and REDIS_URL; builds a
# year of 200,000 cases a day in a database of its own (BENCH_ARGS="--keep" to reuse it).
.PHONY: bench-ci
bench-ci: install
	$(PY) bench/ci_results.py $(BENCH_ARGS)
