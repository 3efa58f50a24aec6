# Potluck — the two commands: `make run` and `make test`.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_WORKERS ?= 2

.PHONY: install run test test-fast lint format bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip==25.3"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Run Potluck on SQLite (./potluck.db) with demo data at http://$(HOST):$(PORT)
run: install
	$(BIN)/potluck db upgrade
	$(BIN)/potluck demo
	$(BIN)/potluck serve --host $(HOST) --port $(PORT)

## The whole test suite (unit, integration on SQLite and PostgreSQL, e2e), then, serially, the
## fault tests (they start and restart private PostgreSQL and RabbitMQ servers under load).
## The browser tests need Debian's Chromium: scripts/ensure-chromium installs it when missing.
test: install
	sh scripts/ensure-chromium
	$(BIN)/pytest -n $(PYTEST_WORKERS) -p no:cacheprovider -m "not faults" tests
	$(BIN)/pytest -p no:cacheprovider -m faults tests

test-fast: install
	$(BIN)/pytest -x -q tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks: ledger, marketplace and payouts (figures go to docs/benchmarks.md)
bench: install
	$(BIN)/potluck bench ledger
	$(BIN)/potluck bench marketplace

clean:
	rm -rf $(VENV) build *.egg-info potluck.db potluck.db-wal potluck.db-shm
