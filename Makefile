# Developer and CI entry points.  `make test` is what CI runs (through .ci/run).
#
# Needs only python3 (with its venv module) and, for `servers`, apt on Debian.
# Every tool runs from .venv, so nothing depends on what else is on PATH.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Touched after a successful install: pyproject.toml newer than this => reinstall.
STAMP  := $(VENV)/.installed
LINTED := ratescript tests benchmarks examples docs
# The binaries the test fixtures start on free ports (Debian package names too).
SERVERS := redis-server memcached

.PHONY: venv servers demo lint test bench

## venv: create .venv if missing; (re)install the package, editable, with the dev extra
venv: $(STAMP)

# Order-only prerequisite (after `|`): creating the venv never forces a reinstall on
# its own, only a missing stamp or a newer pyproject.toml does.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

## servers: make sure redis-server and memcached are installed (the tests start them)
servers:
	@missing=""; \
	for bin in $(SERVERS); do \
		command -v "$$bin" >/dev/null 2>&1 || missing="$$missing $$bin"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "servers: installing$$missing with apt-get"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update && apt-get install -y $$missing; \
	else \
		echo "servers: missing$$missing; install the Debian packages:" >&2; \
		echo "    sudo apt-get install -y$$missing" >&2; \
		exit 1; \
	fi

## demo: run the interactive demo
demo: venv
	$(BIN)/python -m ratescript demo

## lint: ruff (lint and formatting) and mypy --strict
lint: venv
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy --strict ratescript

## test: lint, then the whole pytest suite
# The environment (CI=true among it) reaches pytest untouched; pytest is not piped or
# wrapped, so a failing run fails make.  Extra arguments: make test PYTEST_ARGS='-k rate'
test: venv servers lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: the DSL, store, strategy and FastAPI-latency benchmarks
bench: venv
	$(BIN)/python benchmarks/bench_dsl.py
	$(BIN)/python benchmarks/bench_stores.py
	$(BIN)/python benchmarks/bench_strategies.py
	$(BIN)/python benchmarks/bench_asgi.py --headers --middleware
