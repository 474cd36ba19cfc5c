#!/usr/bin/env bash
# Run the four step images in order with plain `docker run` (no Airflow), on this
# repository's data/ directory, committing the .dvc change into this repository.
#
#   scripts/run-steps.sh 2024-01-01 2024-03-31
#
# Reads APOD_API_URL, NASA_API_KEY (or NASA_API_KEY_FILE), APOD_DATABASE_URL (or the
# PG* variables) from the environment, as the host sees them; the containers use the
# host's network so 127.0.0.1 means the same thing inside. Secrets are handed to
# `docker run` by variable name (-e NAME), never by value.
set -euo pipefail

START="${1:?usage: run-steps.sh START [END]}"
END="${2:-$START}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -n1)}"
RUN_ID="${APOD_RUN_ID:-manual__$(date -u +%Y-%m-%dT%H-%M-%SZ)}"
# The committed default DVC remote (.dvc/config); APOD_DVC_REMOTE overrides it.
DVC_REMOTE="${APOD_DVC_REMOTE:-/var/tmp/apod-dvc-remote}"

log() { printf '%s run-steps: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

mkdir -p "$REPO/data" "$DVC_REMOTE"

# Containers write as the invoking user, so files in the checkout stay yours.
common=(--rm --network host --user "$(id -u):$(id -g)" -e HOME=/tmp -e APOD_RUN_ID="$RUN_ID"
        -e APOD_LOG_LEVEL)
secrets=()
for name in NASA_API_KEY APOD_DATABASE_URL PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSSLMODE; do
  [ -n "${!name:-}" ] && secrets+=(-e "$name")
done
files=()
for name in NASA_API_KEY_FILE APOD_DATABASE_URL_FILE PGPASSFILE; do
  if [ -n "${!name:-}" ]; then
    files+=(-v "${!name}:/run/secrets/$name:ro" -e "$name=/run/secrets/$name")
  fi
done

step() {  # step NAME IMAGE ARGS... ; 99 (nothing to do) is reported, not an error
  local name="$1" image="$2"; shift 2
  local started rc=0
  started=$(date +%s)
  log "$name: starting"
  docker run "${common[@]}" "${secrets[@]}" "${files[@]}" "$image" "$@" || rc=$?
  case $rc in
    0) log "$name: done in $(($(date +%s) - started))s" ;;
    99) log "$name: nothing to do" ;;
    *) log "$name: failed with exit code $rc"; return "$rc" ;;
  esac
  return "$rc"
}

data=(-v "$REPO/data:/data")
log "run $RUN_ID: $START..$END"

rc=0
step extract "${data[@]}" -e APOD_API_URL "apod-extract:$VERSION" \
  --start "$START" --end "$END" --run-id "$RUN_ID" || rc=$?
[ "$rc" -eq 99 ] && { log "no APOD entries in $START..$END: nothing to load"; exit 0; }
[ "$rc" -eq 0 ] || exit "$rc"

step transform "${data[@]}" "apod-transform:$VERSION" --run-id "$RUN_ID" || rc=$?
[ "$rc" -eq 99 ] && { log "no valid rows: nothing to load"; exit 0; }
[ "$rc" -eq 0 ] || exit "$rc"

# The two loads read the same staged batch and run side by side, as in the DAG.
step load_postgres "${data[@]}" "apod-load:$VERSION" postgres --run-id "$RUN_ID" & pg=$!
step load_csv "${data[@]}" "apod-load:$VERSION" csv --run-id "$RUN_ID" & csv=$!
rc_pg=0; rc_csv=0
wait "$pg" || rc_pg=$?
wait "$csv" || rc_csv=$?
for code in "$rc_pg" "$rc_csv"; do
  [ "$code" -eq 0 ] || [ "$code" -eq 99 ] || exit "$code"
done

# version works on the whole checkout (git + .dvc), mounted at its own path so the
# paths git and DVC record are the host's; the DVC remote likewise.
rc=0
remote_env=()
[ -n "${APOD_DVC_REMOTE:-}" ] && remote_env=(-e APOD_DVC_REMOTE)
# No git push by hand unless asked (APOD_GIT_REMOTE=origin): the container has neither
# your credentials nor, for a local clone, the path its origin points at.
step version -v "$REPO:$REPO" -v "$DVC_REMOTE:$DVC_REMOTE" "${remote_env[@]}" \
  -e APOD_GIT_REMOTE="${APOD_GIT_REMOTE:-none}" \
  "apod-version:$VERSION" --run-id "$RUN_ID" --csv "$REPO/data/apod_data.csv" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 99 ] || exit "$rc"
log "run $RUN_ID finished"
