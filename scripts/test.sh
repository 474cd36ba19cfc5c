#!/usr/bin/env bash
# The whole test suite: lint, then every tier, after starting what the tiers need
# (a Docker engine, a throwaway Postgres, the base image and the project's images).
# In CI (CI=true) a skipped test fails the run (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

if [ -z "${APOD_ARCHIVE_DIR:-}" ] && [ -d ../shared/apod-archive/ellanan-apod-api/api/_data/years ]; then
  APOD_ARCHIVE_DIR="$(cd ../shared/apod-archive/ellanan-apod-api/api/_data/years && pwd)"
  export APOD_ARCHIVE_DIR
fi

log "lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

log "services"
scripts/ensure-docker.sh
pg_env="$(scripts/ensure-test-postgres.sh)"
# shellcheck disable=SC1090
. "$pg_env"
export APOD_TEST_PG_ENV="$PWD/.cache/test-postgres/env"

log "images"
scripts/build-images.sh

log "tests"
exec .venv/bin/pytest "$@"
