#!/usr/bin/env bash
# The whole test suite: lint, then every tier, after starting what the tiers need
# (a Docker engine, a throwaway Postgres, the base image and the project's images, and
# Debian's shellcheck). In CI (CI=true) a skipped test fails the run (tests/conftest.py).
# The throwaway Postgres is this checkout's, on a free port unless APOD_TEST_PG_PORT
# names one, and is stopped when the run ends if this run started it
# (scripts/ensure-test-postgres.sh --run): two checkouts' suites never meet.
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

log "tools"
if ! command -v shellcheck >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: shellcheck is missing; install it: sudo apt-get install -y shellcheck" >&2
    exit 1
  fi
  echo "test.sh: installing Debian's shellcheck" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null
fi

log "services"
# The Docker engine, when this had to start it, is left running: it is the machine's, and
# other checkouts' containers run on it. What the tests start on it they remove.
scripts/ensure-docker.sh

log "images"
PYTHONPATH=tools python3 -m apod_build

log "tests"
scripts/ensure-test-postgres.sh --run .venv/bin/pytest "$@"
