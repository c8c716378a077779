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

.PHONY: venv servers demo lint test bench bench-peers

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

## demo: serve an example app with uvicorn, drive traffic at it, print a table per strategy
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

## bench-peers: ratescript against traffik, slowapi (limits) and fastapi-limiter, in one run
# Its own venv (benchmarks/peers/.venv), so the peers never enter .venv. Writes
# benchmarks/RESULTS.md and benchmarks/charts/. Dry run: make bench-peers PEERS_ARGS=--quick
PEERS       := benchmarks/peers
PEERS_BIN   := $(PEERS)/.venv/bin
PEERS_STAMP := $(PEERS)/.venv/.installed
PEERS_ARGS  ?=

bench-peers: servers $(PEERS_STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null 2>&1 \
				|| echo "bench-peers: wrk did not install; the HTTP measure uses httpx" >&2; \
		else \
			echo "bench-peers: no wrk (sudo apt-get install -y wrk); the HTTP measure uses httpx" >&2; \
		fi; \
	}
	$(PEERS_BIN)/python $(PEERS)/run.py $(PEERS_ARGS)

$(PEERS_STAMP): pyproject.toml $(PEERS)/requirements.txt $(PEERS)/install.py | $(PEERS_BIN)/python
	$(PEERS_BIN)/python $(PEERS)/install.py
	touch $@

$(PEERS_BIN)/python:
	$(PYTHON) -m venv $(PEERS)/.venv
