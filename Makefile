# Two commands for a fresh clone: `make up` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: up test lint types layers unit install install-test bench fuzz mutants screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

## The system packages the tests drive: Debian's Chromium for the dashboard's browser tests
## (playwright's own browser download is not used; it needs the internet); podman and runc
## for the container replicas, and a static busybox the container tests build their image
## from (no registry is reachable). A fresh container has no package lists yet: when the
## install fails, update them and retry.
CHROMIUM ?= /usr/bin/chromium
SYSTEM_PROGRAMS := $(CHROMIUM) /usr/bin/podman /usr/sbin/runc /bin/busybox
SYSTEM_PACKAGES := chromium podman runc busybox-static
APT_GET  := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get
$(SYSTEM_PROGRAMS) &:
	$(APT_GET) install -y -q $(SYSTEM_PACKAGES) || { $(APT_GET) update -q && $(APT_GET) install -y -q $(SYSTEM_PACKAGES); }

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test $(SYSTEM_PROGRAMS)

## make up: install into .venv and run Podium with the demo endpoint `iris`
up: install
	$(BIN)/podium up --demo

## make test: lint, types, layering and every test, on both cores (pytest-xdist). First the
## unit tests (each with its own store, ports and PostgreSQL database) and the browser tests
## (one server and one Chromium, kept on one worker by their xdist group); then the
## integration tests, two modules at a time (`--dist loadfile`: a module's tests share its
## server): each starts its own real servers and replicas on free ports and a fresh home,
## and their waits are generous deadlines, never timings.
test: install-test lint types layers
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadgroup --ignore=tests/integration
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile tests/integration

lint: install-test
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

types: install-test
	$(BIN)/mypy

layers: install-test
	$(BIN)/lint-imports

## make bench: benchmarks (not in CI); results under bench/results/. failover.py,
## gateways.py and scale.py need the PostgreSQL server ($PODIUM_BENCH_POSTGRES_URL);
## containers.py needs podman and busybox-static (make install-test installs them).
bench: install-test
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/gateway.py --auth
	$(BIN)/python bench/gateway.py --records
	$(BIN)/python bench/batching.py
	$(BIN)/python bench/embeddings.py
	$(BIN)/python bench/tasks.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/failover.py
	$(BIN)/python bench/gateways.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/containers.py
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/coldstart.py
	$(BIN)/python bench/autoscale.py

## make screenshots: PNGs of every dashboard page into docs/screenshots/ (not in CI)
screenshots: install-test
	$(BIN)/python scripts/screenshots.py

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
