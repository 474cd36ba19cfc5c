#!/usr/bin/env bash
# Make sure .env exists and holds every secret the compose deployment needs.
#
# First run: copy .env.example to .env (mode 0600) and fill each empty secret with a
# fresh random value. Later runs fill only secrets that are still empty, so existing
# values (baked into the Postgres volume on its first start) are kept. Nothing secret
# is printed.
set -euo pipefail
# shellcheck source=scripts/compose-lib.sh
. "$(dirname "$0")/compose-lib.sh"

hex() { od -An -vtx1 -N "$1" /dev/urandom | tr -d ' \n'; }
# A Fernet key is 32 random bytes, URL-safe base64.
fernet_key() { head -c 32 /dev/urandom | base64 | tr '+/' '-_'; }

if [ ! -f "$ENV_FILE" ]; then
  [ -f "$REPO/.env.example" ] || die "no .env.example to start from"
  # The volume names are fixed, so a stack started from another checkout (or before .env
  # was deleted) left a Postgres volume that only knows its own passwords: new random
  # ones would fail at the first login with nothing but "password authentication failed".
  if docker volume inspect apod-pgdata >/dev/null 2>&1; then
    die "the Postgres volume apod-pgdata already exists, initialised with the passwords of" \
      "another .env (another checkout, or a deleted .env): copy that .env here, or run" \
      "'make down-volumes' to delete the stack's volumes (and their data) and start over"
  fi
  (umask 077 && cp "$REPO/.env.example" "$ENV_FILE")
  log "created .env from .env.example with fresh random secrets"
fi

for name in POSTGRES_PASSWORD AIRFLOW_DB_PASSWORD APOD_ADMIN_PASSWORD APOD_LOADER_PASSWORD \
    AIRFLOW_JWT_SECRET AIRFLOW_ADMIN_PASSWORD AIRFLOW_FERNET_KEY; do
  [ -n "$(env_value "$name")" ] && continue
  case "$name" in
    AIRFLOW_FERNET_KEY) env_set "$name" "$(fernet_key)" ;;
    AIRFLOW_JWT_SECRET) env_set "$name" "$(hex 32)" ;;
    AIRFLOW_ADMIN_PASSWORD) env_set "$name" "$(hex 12)" ;;
    *) env_set "$name" "$(hex 18)" ;;
  esac
done
chmod 0600 "$ENV_FILE"
