# The two commands of the README, each complete on a fresh machine:
#   make demo   local stack, topics, a worker and simulated storefronts, live on screen
#   make test   lint, type checks and the whole test suite against the real stack
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

# The stack's state, jars and logs stay inside the checkout (ignored by git).
export CRMSTREAM_STACK_STATE_DIR ?= $(CURDIR)/.crmstream/state
export CRMSTREAM_STACK_CACHE_DIR ?= $(CURDIR)/.crmstream/cache

.PHONY: demo test faults lint stack stack-down install system-deps clean

demo: stack
	$(BIN)/crmstream demo

# The fault suite's longest cases (faults_long) run under `make faults` only.
test: lint stack
	$(BIN)/pytest -m "not faults_long"

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
