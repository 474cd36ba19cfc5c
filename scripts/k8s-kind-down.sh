#!/usr/bin/env bash
# Stop the UI's port-forward and delete the kind cluster (its volumes go with it).
# k8s/.secrets.env is kept: the next kind-up initialises a new Postgres with it.
#
#   scripts/k8s-kind-down.sh        (make kind-down)
set -euo pipefail
# shellcheck source=scripts/k8s-lib.sh
. "$(dirname "$0")/k8s-lib.sh"

CLUSTER="${KIND_CLUSTER_NAME:-apod}"
need kind
stop_port_forward
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind delete cluster --name "$CLUSTER"
else
  log "no kind cluster $CLUSTER"
fi
