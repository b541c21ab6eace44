# ISKA — one command to run it, one to test it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DAGSTER_HOME_DIR := $(CURDIR)/.dagster
DATA_DIR ?= data
PYTEST_WORKERS ?= 2

.PHONY: install lint run test test-quick soak clean-data

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

.env:
	cp .env-example .env

# Dagster UI on :3000 (run history kept in .dagster/, so it survives restarts), the ISKA API
# on :8000 and the gateway simulator on :8010; Ctrl-C stops all three.
run: install .env
	mkdir -p $(DATA_DIR)/inbox/{forecasts,additions,cancellations,updates} \
	         $(DATA_DIR)/archive $(DATA_DIR)/rejected $(DAGSTER_HOME_DIR)
	cp dagster.yaml $(DAGSTER_HOME_DIR)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(PY) -m iska_pipelines.devserver

# ruff (lint, import order, format) and mypy (strict on lib/), configured in pyproject.toml;
# `.venv/bin/ruff format .` fixes what the format check finds
lint: install
	$(VENV)/bin/ruff check iska_pipelines iska_pipelines_tests bench
	$(VENV)/bin/ruff format --check iska_pipelines iska_pipelines_tests bench
	$(VENV)/bin/mypy

# The whole suite, after the lint. PostgreSQL tests run when ISKA_TEST_DATABASE_URL is set, else
# are skipped and listed at the end.
test: install lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile

test-quick: install
	$(PY) -m pytest -x -q

# The lifecycle state machine for a long time: ISKA_SOAK_EXAMPLES examples per database.
soak: install
	ISKA_SOAK_EXAMPLES=$${ISKA_SOAK_EXAMPLES:-2000} $(PY) -m pytest -x -q -p no:cacheprovider \
		iska_pipelines_tests/test_lifecycle_state_machine.py

# Speed and memory against SPEC §12, each beside its reference measured in the same run; writes
# docs/benchmarks.md. PostgreSQL from ISKA_BENCH_DATABASE_URL (an admin URL: the harness creates
# and drops its own databases). bench-quick (sizes /10, one repetition) keeps the harness working.
bench: install
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick --out $(or $(BENCH_OUT),/tmp/iska-benchmarks-quick.md)
.PHONY: bench bench-quick
