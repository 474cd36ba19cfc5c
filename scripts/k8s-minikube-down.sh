#!/usr/bin/env bash
# Stop the UI's port-forward and delete the minikube profile (its volumes go with it).
# k8s/.secrets.env is kept: the next minikube-up initialises a new Postgres with it.
#
#   scripts/k8s-minikube-down.sh    (make minikube-down)
set -euo pipefail
# shellcheck source=scripts/k8s-lib.sh
. "$(dirname "$0")/k8s-lib.sh"

PROFILE="${MINIKUBE_PROFILE:-apod}"
need minikube
stop_port_forward
profile_exists() {
  minikube profile list -o json 2>/dev/null | "$PYTHON" -c '
import json, sys
listing = json.load(sys.stdin)
names = {p.get("Name") for key in ("valid", "invalid") for p in listing.get(key) or []}
sys.exit(0 if sys.argv[1] in names else 1)' "$PROFILE"
}

if profile_exists; then
  minikube delete --profile "$PROFILE"
else
  log "no minikube profile $PROFILE"
fi
