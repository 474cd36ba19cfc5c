#!/usr/bin/env bash
# Bring the compose deployment up and wait until it is usable.
#
#   scripts/compose-up.sh [--offline] [--alerts] [--no-build]
#
# Installs/starts what is missing (Docker engine, compose plugin, the env file with
# random secrets, images), starts the services, waits until every long-running one is
# healthy and both init services have succeeded (APOD_UP_TIMEOUT seconds, default 900),
# waits for the apod_etl DAG to be parsed and prints the UI address and login. The DAG
# stays paused: nothing runs until a run is asked for (scripts/compose-run.sh).
# --offline adds the `offline` profile (apod-testserver) and points the steps at it.
# --alerts adds the `alerts` profile (alertcatcher) and sends every alert channel the env
# file leaves unset to it (compose-lib.sh's alerts_to_catcher).
# The stack is the env file's (.env, or APOD_ENV_FILE: scripts/compose-lib.sh).
set -euo pipefail
# shellcheck source=scripts/compose-lib.sh
. "$(dirname "$0")/compose-lib.sh"
cd "$REPO"

offline=0
build=1
alerts=0
for arg in "$@"; do
  case "$arg" in
    --offline) offline=1 ;;
    --alerts) alerts=1 ;;
    --no-build) build=0 ;;
    *) die "usage: compose-up.sh [--offline] [--alerts] [--no-build]" ;;
  esac
done
TIMEOUT="${APOD_UP_TIMEOUT:-900}"
DAG_ID="${APOD_DAG_ID:-apod_etl}"
started=$(date +%s)

scripts/ensure-docker.sh
# The compose plugin installs, and the images build, while the rest gets ready: each
# service starts once the images it needs are built (Postgres and the object store while
# Airflow's image still builds), the step images (only a run needs them) build on while
# the stack starts, and this script waits for them before it says the stack is ready.
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
background=()
stop_background() {
  local pid
  for pid in "${background[@]}"; do kill_tree "$pid"; done
}
built=""
trap 'stop_background; [ -z "$built" ] || rm -rf "$built"' EXIT
ensure_compose &
plugin=$!
background+=("$plugin")
scripts/compose-env.sh
images=""
if [ "$build" = 1 ]; then
  built="$(mktemp -d "${TMPDIR:-/tmp}/apod-built.XXXXXX")"
  scripts/compose-images.sh --announce "$built" &
  images=$!
  background+=("$images")
else
  scripts/compose-images.sh --no-build
fi
wait "$plugin" || die "the docker compose plugin could not be installed (see above)"

# until_built NAME...: until these images are built (compose-images.sh --announce).
until_built() {
  local name missing
  while [ -n "$images" ]; do
    missing=0
    for name in "$@"; do [ -e "$built/$name" ] || missing=1; done
    [ "$missing" = 0 ] && return 0
    if ! kill -0 "$images" 2>/dev/null; then
      wait "$images" || die "building the images failed (see above)"
      images=""  # it ended, every image built, between two looks
    fi
    sleep 1
  done
}

services=(postgres objectstore docker-gate airflow-api-server airflow-scheduler airflow-dag-processor)
[ "$offline" = 1 ] && add_profile offline
[ "$alerts" = 1 ] && alerts_to_catcher
late=(airflow load docker-gate)
if compose_profile alerts; then
  services+=(alertcatcher)
  late+=(alertcatcher)
fi
if compose_offline; then
  services+=(apod-testserver)
  fixtures="$(setting APOD_FIXTURES_DIR ./tests/fixtures/apod)"
  [ -d "$fixtures" ] || die "the offline profile serves $fixtures, which does not exist"
fi

up_failed() {
  for name in apod-db-init airflow-init postgres objectstore; do
    log "last lines of $name:"
    compose logs --no-color --tail 40 "$name" >&2 || true
  done
  die "docker compose up failed"
}

# Postgres and the object store (and the test server) need no Airflow: up first, so that
# Postgres initialises while Airflow's image still builds.
early=(postgres objectstore)
compose_offline && early+=(apod-testserver)
until_built postgres objectstore testserver
log "starting ${early[*]} (Airflow's image may still be building)"
compose up -d "${early[@]}" || up_failed
until_built "${late[@]}"

log "starting the services"
# `up` itself waits for the init services its dependents need, and fails when one fails.
compose up -d --remove-orphans || up_failed

state_of() {  # "<status> <health> <exit code> <restarts>" of a service's container
  local id
  id="$(compose ps -a -q "$1" 2>/dev/null | head -n1)"
  [ -n "$id" ] || { echo "missing - - 0"; return; }
  docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.State.ExitCode}} {{.RestartCount}}' "$id"
}

fail_with_logs() {
  local name="$1" why="$2"
  log "$name: $why; its last log lines:"
  compose logs --no-color --tail 60 "$name" >&2 || true
  die "$name is not healthy ($why); see 'docker compose logs $name'"
}

for name in apod-db-init airflow-init; do
  read -r status _ code _ <<<"$(state_of "$name")"
  if [ "$status" != exited ] || [ "$code" != 0 ]; then
    fail_with_logs "$name" "$status, exit code $code"
  fi
done

log "waiting for ${services[*]} to be healthy (up to ${TIMEOUT}s)"
deadline=$((started + TIMEOUT))
while :; do
  pending=()
  for name in "${services[@]}"; do
    read -r status health _ restarts <<<"$(state_of "$name")"
    # The DAG processor's health check (the airflow CLI) is slow to answer; the DAG being
    # parsed, waited for below, proves it works, so running is enough here.
    [ "$name/$status/$health" = airflow-dag-processor/running/starting ] && health=healthy
    case "$status/$health" in
      running/healthy) ;;
      running/unhealthy) fail_with_logs "$name" "healthcheck failing" ;;
      exited/* | dead/* | missing/*) fail_with_logs "$name" "$status" ;;
      *) [ "$restarts" -ge 3 ] && fail_with_logs "$name" "restarted $restarts times"
         pending+=("$name") ;;
    esac
  done
  [ ${#pending[@]} -eq 0 ] && break
  if [ "$(date +%s)" -ge "$deadline" ]; then
    for name in "${pending[@]}"; do
      log "$name still $(state_of "$name" | cut -d' ' -f1-2); its last log lines:"
      compose logs --no-color --tail 40 "$name" >&2 || true
    done
    die "timed out after ${TIMEOUT}s waiting for: ${pending[*]}"
  fi
  sleep 3
done
log "all services healthy after $(($(date +%s) - started))s"
if [ -n "$images" ]; then
  kill -0 "$images" 2>/dev/null && log "waiting for the step images to finish building"
  wait "$images" || die "building the step images failed (see above)"
fi
background=()

"$PYTHON" scripts/airflow_api.py --url "$(ui_url)" --env-file "$ENV_FILE" --timeout 300 \
  wait "$DAG_ID"

api_url="${APOD_API_URL:-$(env_value APOD_API_URL)}"
cat <<EOF

  Airflow UI:  $(ui_url)   (bound to 127.0.0.1 only)
  login:       admin, password: python3 scripts/deploy_env.py get ${ENV_FILE#"$REPO"/} AIRFLOW_ADMIN_PASSWORD
  Postgres:    127.0.0.1:$(setting APOD_PG_PORT 5433)   databases airflow, apod
  S3 store:    http://127.0.0.1:$(setting APOD_S3_PORT 8333)   bucket apod-dvc (key: APOD_S3_* in ${ENV_FILE#"$REPO"/})
  APOD API:    ${api_url:-https://api.nasa.gov/planetary/apod}
  DAG $DAG_ID: paused until a run is asked for (make run DATE=YYYY-MM-DD)
  ready in $(($(date +%s) - started))s

EOF
