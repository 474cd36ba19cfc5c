# docker-compose deployment of Airflow 3 (included by the Makefile). compose/README.md
# explains the stack; scripts/compose-*.sh and scripts/airflow_api.py do the work.
.PHONY: up demo run backfill down down-volumes clean-compose compose-ps compose-logs test-compose

DEMO_DATE ?= 2024-01-15
DAG_ID ?= apod_etl
# The Docker socket's group on this host, for the scheduler's group_add.
export DOCKER_GID ?= $(shell stat -c %g /var/run/docker.sock 2>/dev/null)
AIRFLOW_API := $(PYTHON) scripts/airflow_api.py

up: venv images ## Start Airflow on compose (UI on 127.0.0.1:8080), wait until healthy
	@scripts/compose-up.sh

demo: venv images ## Compose with the offline APOD server; run the pipeline for DEMO_DATE and follow it
	@scripts/compose-up.sh --offline
	@$(AIRFLOW_API) run $(DAG_ID) --start $(DEMO_DATE)

run: ## Run the DAG on the running stack for one day: make run DATE=YYYY-MM-DD
	@test -n "$(DATE)" || { echo "usage: make run DATE=YYYY-MM-DD" >&2; exit 2; }
	@$(AIRFLOW_API) run $(DAG_ID) --start $(DATE)

backfill: ## One run over a date range: make backfill START=YYYY-MM-DD END=YYYY-MM-DD
	@test -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill START=YYYY-MM-DD END=YYYY-MM-DD" >&2; exit 2; }
	@$(AIRFLOW_API) run $(DAG_ID) --start $(START) --end $(END)

down: ## Stop the compose stack (volumes are kept)
	@scripts/compose-down.sh

down-volumes: ## Stop the compose stack and delete its volumes (Postgres, CSV, DVC remote, logs)
	@scripts/compose-down.sh --volumes

clean-compose: down-volumes ## Same as down-volumes

compose-ps: ## Services of the compose stack and their health
	@. scripts/compose-lib.sh && COMPOSE_PROFILES=offline compose ps -a

compose-logs: ## Follow the compose stack's logs (SERVICE=name for one service)
	@. scripts/compose-lib.sh && COMPOSE_PROFILES=offline compose logs -f --tail 100 $(SERVICE)

test-compose: venv ## Compose end-to-end and browser tests (bring the stack up and down)
	$(VENV)/bin/pytest -m "compose or browser" $(PYTEST_ARGS)
