#!/usr/bin/env bash
# Trigger the DAG apod_etl_k8s for a date (or a range) through Airflow's REST API on the
# UI's port-forward, and follow the run to its end (scripts/airflow_api.py).
#
#   scripts/k8s-run.sh 2024-01-01 [2024-01-31]      (make k8s-run DATE=... [END=...])
#
# Only that run starts: on a paused DAG it is triggered in the slot of the scheduled run
# that unpausing would start at once, then the DAG is unpaused (k8s/README.md, "What
# runs when"). Needs a cluster brought up by scripts/k8s-kind-up.sh or
# k8s-minikube-up.sh; restarts the port-forward when it has died. Exit codes are airflow_api.py's: 0 success, 1 the
# run failed, 2 usage, 3 timed out, 4 login refused, 5 API unreachable.
set -euo pipefail
# shellcheck source=scripts/k8s-lib.sh
. "$(dirname "$0")/k8s-lib.sh"

START="${1:-}"
END="${2:-$START}"
[ -n "$START" ] || { echo "usage: k8s-run.sh START [END]  (dates as YYYY-MM-DD)" >&2; exit 2; }
[ -f "$SECRETS_FILE" ] || die "no $SECRETS_FILE: bring a cluster up first (make kind-up or make minikube-up)"

if ! ui_answers; then
  [ -f "$STATE_DIR/context" ] || die "the UI does not answer on 127.0.0.1:$UI_PORT and no cluster was brought up"
  KUBE_CONTEXT="$(cat "$STATE_DIR/context")"
  need kubectl
  log "restarting the port-forward to $KUBE_CONTEXT"
  start_port_forward
fi

exec "$PYTHON" "$REPO/scripts/airflow_api.py" --url "http://127.0.0.1:$UI_PORT" \
  --env-file "$SECRETS_FILE" run apod_etl_k8s --start "$START" --end "$END"
