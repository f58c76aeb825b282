# The two commands of the README, each complete on a fresh machine:
#   make demo   local stack, topics, a worker and simulated storefronts, live on screen
#   make test   lint, type checks and the whole test suite against the real stack
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

# The stack's state, jars and logs stay inside the checkout (ignored by git), and so does
# the local data of the workers started here.
export CRMSTREAM_STACK_STATE_DIR ?= $(CURDIR)/.crmstream/state
export CRMSTREAM_STACK_CACHE_DIR ?= $(CURDIR)/.crmstream/cache
export CRMSTREAM_WORKER_DATA_DIR ?= $(CURDIR)/.crmstream/state/faust

.PHONY: demo test test-cluster faults lint stack stack-cluster stack-down install system-deps clean screenshots

# What points the engine and the tests at the local Redis Cluster (stack up --redis-cluster).
ON_CLUSTER := CRMSTREAM_REDIS_CLUSTER=true CRMSTREAM_REDIS_URL=redis://127.0.0.1:7000/0

demo: stack
	$(BIN)/crmstream demo

# Every test on one Redis, then the integration tests (oracles included) and the fault
# suite's representative part again on a Redis Cluster of three primaries. The longest
# fault cases (faults_long) run under `make faults` and `make test-cluster` only.
test: lint stack stack-cluster
	$(BIN)/pytest -m "not faults_long and not redis_cluster"
	$(ON_CLUSTER) $(BIN)/pytest -m "not faults_long and not single_redis" tests/integration tests/faults

# The integration suite and the whole fault suite on the local Redis Cluster.
test-cluster: lint stack stack-cluster
	$(ON_CLUSTER) $(BIN)/pytest -m "not single_redis" tests/integration tests/faults

# The README's console screenshots (docs/console/), from the demo's traffic; tests never
# write there.
screenshots: stack
	$(BIN)/python -m tools.screenshots

# Fault injection (tests/faults): workers killed, rebalanced, Redis and the broker restarted.
faults: stack
	$(BIN)/pytest -m faults

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

stack: install system-deps
	$(BIN)/crmstream stack up
	$(BIN)/crmstream topics create

stack-cluster: install system-deps
	$(BIN)/crmstream stack up --redis-cluster

stack-down: install
	$(BIN)/crmstream stack down

install: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "crmstream needs Python 3.11 or newer (found $(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

system-deps:
	@deploy/local/system-deps.sh

clean: stack-down
	rm -rf $(VENV) .crmstream .mypy_cache .ruff_cache .pytest_cache .hypothesis
