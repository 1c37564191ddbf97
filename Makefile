# Two commands for a fresh clone: `make up` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: up test lint types layers unit install install-test bench fuzz mutants clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make up: install into .venv and run Podium with the demo endpoint `iris`
up: install
	$(BIN)/podium up --demo

## make test: lint, types, layering and every test. Unit tests run on both cores
## (pytest-xdist: each test has its own store, ports and PostgreSQL database); the
## integration tests run one at a time: each starts real servers and replicas that
## would compete for the same two cores.
test: install-test lint types layers
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --ignore=tests/integration
	$(BIN)/pytest -q -p no:cacheprovider tests/integration

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

types: install-test
	$(BIN)/mypy

layers: install-test
	$(BIN)/lint-imports

## make bench: benchmarks (not in CI); results under bench/results/
bench: install-test
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/gateway.py --auth
	$(BIN)/python bench/gateway.py --records
	$(BIN)/python bench/batching.py
	$(BIN)/python bench/embeddings.py
	$(BIN)/python bench/tasks.py
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/coldstart.py
	$(BIN)/python bench/autoscale.py

## make fuzz: long fuzzing (not in CI): schemathesis, stateful, against a real server's API;
## hypothesis over the gateway's request parsing and the API schema with many examples
fuzz: install-test
	$(BIN)/python -m tests.fuzz.api --max-examples 500 --max-time 900
	PODIUM_FUZZ_PROFILE=podium-fuzz $(BIN)/pytest -q -p no:cacheprovider \
		tests/unit/gateway/test_request_fuzz.py tests/unit/api/test_openapi_fuzz.py

## make mutants: mutation testing (not in CI) of the reconciler, autoscaler, activator, proxy and
## balancer, archive unpacking and the error-to-status mapping against their unit tests;
## `make mutants TARGETS=unpack` for one. Results: .mutants/summary.json
mutants: install-test
	$(BIN)/pip install -q -e '.[mutants]'
	$(BIN)/python -m tests.mutation.run $(TARGETS)

clean:
	rm -rf $(VENV) .podium .mypy_cache .ruff_cache .pytest_cache .mutants
