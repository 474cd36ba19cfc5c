#!/usr/bin/env bash
# Make sure the env file (.env, or APOD_ENV_FILE) exists and holds every secret the
# compose deployment needs.
#
# First run: copy .env.example (mode 0600) and give each empty secret a fresh random
# value. Later runs fill only secrets that are still empty, so existing values (baked
# into the Postgres volume on its first start) are kept. Nothing secret is printed. The
# generator is scripts/deploy_env.py, the same one that makes k8s/.secrets.env.
set -euo pipefail
# shellcheck source=scripts/compose-lib.sh
. "$(dirname "$0")/compose-lib.sh"

if [ ! -f "$ENV_FILE" ]; then
  # A Postgres volume left by a stack of another checkout (or before the env file was
  # deleted) only knows its own passwords: new random ones would fail at the first login
  # with nothing but "password authentication failed".
  pgdata="$(pgdata_volume)"
  if docker volume inspect "$pgdata" >/dev/null 2>&1; then
    die "the Postgres volume $pgdata already exists, initialised with the passwords of" \
      "another env file (another checkout, or a deleted ${ENV_FILE#"$REPO"/}): copy that" \
      "file here, or run 'make down-volumes' to delete the stack's volumes (and their" \
      "data) and start over"
  fi
  log "creating ${ENV_FILE#"$REPO"/} from .env.example with fresh random secrets"
fi
"$PYTHON" "$REPO/scripts/deploy_env.py" init "$ENV_FILE" --template "$REPO/.env.example"
# The alert settings become connections (docker-compose.yml's x-alerting): refuse what
# would break them, and say which channels are on.
"$PYTHON" "$REPO/scripts/alert_connections.py" check "$ENV_FILE"
