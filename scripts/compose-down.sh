#!/usr/bin/env bash
# Stop the compose deployment.
#
#   scripts/compose-down.sh             stop and remove the containers; keep the volumes
#   scripts/compose-down.sh --volumes   also delete the volumes: Postgres data, the data
#                                       volume (CSV), the DVC remote, Airflow's logs
# Step containers the scheduler launched are removed by DockerOperator when their task
# ends; one interrupted by stopping the scheduler would be left behind holding the
# volumes, so those (label org.apod.pipeline=apod, on network apod-net) go too.
set -euo pipefail
# shellcheck source=scripts/compose-lib.sh
. "$(dirname "$0")/compose-lib.sh"

args=(down --remove-orphans)
case "${1:-}" in
  "") ;;
  --volumes) args+=(--volumes) ;;
  *) die "usage: compose-down.sh [--volumes]" ;;
esac
docker info >/dev/null 2>&1 || die "no Docker engine answers"
ensure_compose
[ -f "$ENV_FILE" ] || die "no .env: nothing was started from this checkout"
export COMPOSE_PROFILES=offline  # every profile, so a test server goes down too
compose stop airflow-scheduler >/dev/null 2>&1 || true
mapfile -t steps < <(docker ps -aq --filter label=org.apod.pipeline=apod --filter network=apod-net)
if [ ${#steps[@]} -gt 0 ]; then
  log "removing ${#steps[@]} step container(s) left by interrupted tasks"
  docker rm -f "${steps[@]}" >/dev/null
fi
compose "${args[@]}"
