# APOD pipeline. `make help` lists the targets by area: each `##@ Area` line here and in
# mk/*.mk starts one, and a target's `## ...` says what it does. README.md explains them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VERSION := $(shell cat VERSION)
VENV := .venv
PYTHON := $(VENV)/bin/python
export VERSION

.PHONY: help venv lock images base steps lineage test test-fast lint format bench bench-cold clean

# Compose, Kubernetes and the registry (mk/*.mk) are read here, before this file's own
# targets, so that `make help` lists their areas right after "Start here".
-include mk/*.mk

##@ Start here

test: venv ## Run every test tier, installing and starting what is missing
	@scripts/test.sh $(PYTEST_ARGS)

help: ## List the targets by area
	@python3 scripts/make_help.py $(firstword $(MAKEFILE_LIST))

##@ By hand

base: ## Make sure the Python and Debian base images exist (pull, or bootstrap from Debian)
	@scripts/ensure-docker.sh
	@scripts/ensure-base-image.sh python
	@scripts/ensure-base-image.sh debian

images: ## Build every image (apod-<name>:$(VERSION), apod-postgres:<major>), side by side; IMAGES="load airflow" builds these
	@scripts/ensure-docker.sh
	@PYTHONPATH=tools python3 -m apod_build $(IMAGES)

steps: ## Run the four steps by hand with docker run: make steps START=YYYY-MM-DD END=YYYY-MM-DD
	@test -n "$(START)" || { echo "usage: make steps START=YYYY-MM-DD [END=YYYY-MM-DD]" >&2; exit 2; }
	@python3 scripts/run-steps.py "$(START)" "$(or $(END),$(START))"

lineage: ## Where a loaded date came from (run, load time, DVC md5, commit): make lineage DATE=YYYY-MM-DD [ON=compose]
	@test -n "$(DATE)" || { echo "usage: make lineage DATE=YYYY-MM-DD [ON=compose]" >&2; exit 2; }
	@python3 scripts/lineage.py "$(DATE)" $(if $(filter compose,$(ON)),--compose)

##@ Tests and checks

test-fast: venv ## Unit and DAG tiers only (no services)
	$(VENV)/bin/pytest -m "unit or dags" $(PYTEST_ARGS)

lint: venv ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

##@ Benchmarks

# The bench's Postgres: durable, its own cluster, on a free port; stopped after if it started it.
bench: venv images ## Measure (archive, latency model, Postgres load, images, own compose stack); writes docs/BENCHMARKS.md/.json
	@APOD_ARCHIVE_DIR=$${APOD_ARCHIVE_DIR:-$(abspath ../shared/apod-archive/ellanan-apod-api/api/_data/years)} \
	  APOD_TEST_PG_DIR=$(CURDIR)/.cache/bench-postgres APOD_TEST_PG_PORT= APOD_TEST_PG_DURABLE=1 \
	  scripts/ensure-test-postgres.sh --run $(PYTHON) scripts/bench.py
	@$(MAKE) --no-print-directory bench-cold

bench-cold: ## A fresh clone's make demo, cold (own images, bases, stack; none of this machine's touched); writes docs/BENCHMARKS-cold.md/.json. COLD_CACHE=1 also empties BuildKit's cache mounts (engine-wide)
	@python3 scripts/bench_cold.py $(if $(filter 1,$(COLD_CACHE)),--prune-cache) $(BENCH_COLD_ARGS)

##@ Housekeeping

venv: $(VENV)/.installed ## Create .venv from uv.lock: the step packages and the dev/test tools

# uv itself comes from requirements/uv.txt, into a venv of its own (it cannot be in the lock).
UV := .cache/uv-tool/bin/uv
$(UV): requirements/uv.txt
	@rm -rf .cache/uv-tool && python3 -m venv .cache/uv-tool
	.cache/uv-tool/bin/pip install -q --disable-pip-version-check -r requirements/uv.txt
	@touch $@

# Byte-compiled at install, as pip does: tests time imports in fresh interpreters.
$(VENV)/.installed: $(UV) uv.lock pyproject.toml $(wildcard images/*/pyproject.toml)
	$(UV) sync --frozen --compile-bytecode --python python3
	@touch $@

lock: $(UV) ## Re-resolve uv.lock after changing dependencies in a pyproject.toml
	$(UV) lock

clean: ## Remove local caches and pipeline outputs (not images, not volumes)
	rm -rf .pytest_cache .ruff_cache data/raw data/staging artifacts
