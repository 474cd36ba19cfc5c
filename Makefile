# APOD pipeline. `make help` lists the targets; README.md explains them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)
VENV := .venv
PYTHON := $(VENV)/bin/python
export VERSION

.PHONY: help venv images base steps test test-fast lint format bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create .venv with the pinned dev/test tools

$(VENV)/.installed: requirements/dev.txt
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements/dev.txt
	@touch $@

base: ## Make sure a Python base image exists (pull, or bootstrap from Debian)
	@scripts/ensure-docker.sh
	@scripts/ensure-base-image.sh

images: ## Build the step images, the APOD test server and Airflow (apod-<name>:$(VERSION))
	@scripts/ensure-docker.sh
	@scripts/build-images.sh

steps: ## Run the four steps by hand with docker run: make steps START=YYYY-MM-DD END=YYYY-MM-DD
	@test -n "$(START)" || { echo "usage: make steps START=YYYY-MM-DD [END=YYYY-MM-DD]" >&2; exit 2; }
	@scripts/run-steps.sh "$(START)" "$(or $(END),$(START))"

test: venv ## Run every test tier, installing and starting what is missing
	@scripts/test.sh $(PYTEST_ARGS)

test-fast: venv ## Unit and DAG tiers only (no services)
	$(VENV)/bin/pytest -m "unit or dags" $(PYTEST_ARGS)

lint: venv ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: venv images ## Measure: full-archive backfill, Postgres load three ways, images; writes docs/BENCHMARKS.md
	@env_file=$$(APOD_TEST_PG_DIR=$(CURDIR)/.cache/bench-postgres APOD_TEST_PG_PORT=55433 \
	    APOD_TEST_PG_DURABLE=1 scripts/ensure-test-postgres.sh) && \
	  archive=$${APOD_ARCHIVE_DIR:-$(abspath ../shared/apod-archive/ellanan-apod-api/api/_data/years)} && \
	  APOD_TEST_PG_ENV=$$env_file APOD_ARCHIVE_DIR=$$archive $(PYTHON) scripts/bench.py

clean: ## Remove local caches and pipeline outputs (not images, not volumes)
	rm -rf .pytest_cache .ruff_cache data/raw data/staging artifacts

-include mk/*.mk
