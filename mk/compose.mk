# docker-compose deployment of Airflow 3 (included by the Makefile). compose/README.md
# explains the stack; scripts/compose-*.sh and scripts/airflow_api.py do the work.
# These targets need Docker and python3 only: the scripts install the compose plugin
# when Docker has none, build the images, and run standard-library Python. The dev/test
# virtualenv (make venv) is for the test targets.
.PHONY: up demo demo-alerts run backfill down down-volumes clean-compose compose-ps compose-logs test-compose

DEMO_DATE ?= 2024-01-15
COMPOSE_LIB := . scripts/compose-lib.sh && COMPOSE_PROFILES=offline,alerts

##@ Start here

demo: ## Compose with the offline APOD server; run the pipeline for DEMO_DATE and follow it
	@scripts/compose-up.sh --offline
	@scripts/compose-run.sh $(DEMO_DATE)

##@ Compose

up: ## Start Airflow on compose (UI on 127.0.0.1:8080), wait until healthy; the DAG stays paused
	@scripts/compose-up.sh
demo-alerts: ## The alert path: the demo stack with the alert catcher (page on 127.0.0.1:8025), one run made to fail, its alerts
	@scripts/compose-demo-alerts.sh

run: ## Run the DAG on the running stack for one day: make run DATE=YYYY-MM-DD
	@test -n "$(DATE)" || { echo "usage: make run DATE=YYYY-MM-DD" >&2; exit 2; }
	@scripts/compose-run.sh $(DATE)

backfill: ## One run over a date range: make backfill START=YYYY-MM-DD END=YYYY-MM-DD
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill START=YYYY-MM-DD END=YYYY-MM-DD" >&2; exit 2; }
	@scripts/compose-run.sh $(START) $(END)

down: ## Stop the compose stack (volumes are kept)
	@scripts/compose-down.sh

down-volumes: ## Stop the compose stack and delete its volumes (Postgres, CSV, DVC remote, logs)
	@scripts/compose-down.sh --volumes

clean-compose: down-volumes ## Same as down-volumes

compose-ps: ## Services of the compose stack and their health
	@$(COMPOSE_LIB) compose ps -a

compose-logs: ## Follow the compose stack's logs (SERVICE=name for one service)
	@$(COMPOSE_LIB) compose logs -f --tail 100 $(SERVICE)

test-compose: venv ## Compose end-to-end and browser tests (on a stack of their own, removed after)
	$(VENV)/bin/pytest -m "compose or browser" $(PYTEST_ARGS)
