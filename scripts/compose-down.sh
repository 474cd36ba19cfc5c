#!/usr/bin/env bash
# Stop the compose deployment of the env file (.env, or APOD_ENV_FILE), and nothing else.
#
#   scripts/compose-down.sh             stop and remove the containers; keep the volumes
#   scripts/compose-down.sh --volumes   also delete the volumes: Postgres data, the data
#                                       volume (CSV and its git/DVC repository), the
#                                       object store (every data version), Airflow's logs
# Step containers the scheduler launched are removed by DockerOperator when their task
# ends; one interrupted by stopping the scheduler would be left behind holding the
# volumes, so those (label org.apod.pipeline=apod, on this stack's network) go too.
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

remove_step_containers() {
  local steps
  mapfile -t steps < <(docker ps -aq --filter label=org.apod.pipeline=apod \
    --filter network="$(network_name)")
  if [ ${#steps[@]} -gt 0 ]; then
    log "removing ${#steps[@]} step container(s) left by interrupted tasks"
    docker rm -f "${steps[@]}" >/dev/null
  fi
}

if [ ! -f "$ENV_FILE" ]; then
  # Started from another checkout, or the env file deleted: compose refuses the file
  # without its secrets, but everything it created carries the project's label.
  project=(--filter "label=com.docker.compose.project=$(project_name)")
  log "no ${ENV_FILE#"$REPO"/}: removing the stack $(project_name) by its compose project label"
  remove_step_containers
  mapfile -t ids < <(docker ps -aq "${project[@]}")
  [ ${#ids[@]} -eq 0 ] || docker rm -f "${ids[@]}" >/dev/null
  if [[ " ${args[*]} " == *" --volumes "* ]]; then
    mapfile -t volumes < <(docker volume ls -q "${project[@]}")
    [ ${#volumes[@]} -eq 0 ] || docker volume rm "${volumes[@]}" >/dev/null
  fi
  mapfile -t networks < <(docker network ls -q "${project[@]}")
  [ ${#networks[@]} -eq 0 ] || docker network rm "${networks[@]}" >/dev/null
  exit 0
fi
export COMPOSE_PROFILES=offline,alerts  # every profile, so a test server or catcher goes down too
compose stop airflow-scheduler >/dev/null 2>&1 || true
remove_step_containers
compose "${args[@]}"
