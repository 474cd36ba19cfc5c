#!/usr/bin/env bash
# One run of apod_etl on the compose stack, for a date or a range, followed to its end
# through Airflow's REST API (scripts/airflow_api.py run).
#
#   scripts/compose-run.sh 2024-01-15 [2024-01-31]      (make run / backfill / demo)
#
# A paused DAG is unpaused only after the run is triggered, and the run takes the slot of
# the scheduled run that unpausing would otherwise start at once (compose/README.md):
# only the run asked for starts. Exit codes are airflow_api.py's: 0 success, 1 the run
# failed, 2 usage, 3 timed out, 4 login refused, 5 API unreachable.
set -euo pipefail
# shellcheck source=scripts/compose-lib.sh
. "$(dirname "$0")/compose-lib.sh"

START="${1:-}"
END="${2:-$START}"
[ -n "$START" ] || { echo "usage: compose-run.sh START [END]  (dates as YYYY-MM-DD)" >&2; exit 2; }
[ -f "$ENV_FILE" ] || die "no ${ENV_FILE#"$REPO"/}: start the stack first (make up or make demo)"

exec "$PYTHON" "$REPO/scripts/airflow_api.py" --url "$(ui_url)" --env-file "$ENV_FILE" \
  run "${APOD_DAG_ID:-apod_etl}" --start "$START" --end "$END"
