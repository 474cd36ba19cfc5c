#!/usr/bin/env bash
# The APOD pipeline on a local kind cluster, in one command: check the tools, start (or
# reuse) the project's registry, create (or reuse) the cluster wired to it (kind's
# local-registry pattern), build the images and push them there under their content tags,
# create the Secrets, apply k8s/overlays/kind, wait until everything runs, forward the UI
# to 127.0.0.1:8080. Run again after a rebuild: what runs a changed image rolls.
#
#   scripts/k8s-kind-up.sh          (make kind-up)
#
# KIND_CLUSTER_NAME (apod), KIND_NODE_IMAGE (k8s/kind-cluster.yaml's), KIND_NODES (1; 3
# for a cluster of three nodes and the overlay multinode), the registry's
# APOD_REGISTRY_NAME / APOD_REGISTRY_PORT (scripts/registry.py), APOD_IMAGE_REGISTRY (another
# registry the nodes reach instead of the local one), and the settings of scripts/k8s-lib.sh.
set -euo pipefail
# shellcheck source=scripts/k8s-lib.sh
. "$(dirname "$0")/k8s-lib.sh"

CLUSTER="${KIND_CLUSTER_NAME:-apod}"
KUBE_CONTEXT="kind-$CLUSTER"
need python3
"$REPO/scripts/ensure-docker.sh"
doctor kind

# KIND_NODES=N (default 1): N nodes (k8s_kind_config.py adds N-1 workers to
# k8s/kind-cluster.yaml) and the overlay multinode, whose step pods are held on the node
# of the ReadWriteOnce data volume, as on a real cluster without ReadWriteMany storage.
NODES="${KIND_NODES:-1}"
KIND_CONFIG="$REPO/k8s/kind-cluster.yaml"
OVERLAY=kind
mkdir -p "$STATE_DIR"
if [ "$NODES" != 1 ]; then
  KIND_CONFIG="$STATE_DIR/kind-cluster-$NODES-nodes.yaml"
  "$PYTHON" "$REPO/scripts/k8s_kind_config.py" "$NODES" "$KIND_CONFIG" || exit 1
  OVERLAY=multinode
fi

if [ -z "${APOD_IMAGE_REGISTRY:-}" ]; then
  "$PYTHON" "$REPO/scripts/registry.py" up >"$STATE_DIR/registry" \
    || die "the local registry does not run (scripts/registry.py up)"
fi

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  found="$(kind get nodes --name "$CLUSTER" | grep -c . || true)"
  [ "$found" = "$NODES" ] \
    || die "kind cluster $CLUSTER has $found node(s), KIND_NODES asks for $NODES: make kind-down first"
  log "reusing kind cluster $CLUSTER ($NODES node(s))"
else
  log "creating kind cluster $CLUSTER ($NODES node(s))"
  kind create cluster --name "$CLUSTER" --config "$KIND_CONFIG" \
    ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 180s
fi

# The images come from a registry, as on a real cluster: the project's own on this machine
# (images/registry) unless APOD_IMAGE_REGISTRY names another that the nodes can reach.
registry="${APOD_IMAGE_REGISTRY:-}"
if [ -z "$registry" ]; then
  "$PYTHON" "$REPO/scripts/registry.py" kind "$CLUSTER" "$KUBE_CONTEXT" \
    || die "could not wire the local registry to kind cluster $CLUSTER"
  registry="$(cat "$STATE_DIR/registry")/apod"
fi
build_images
publish_images "$registry"

deploy "$OVERLAY"
start_port_forward
log "the APOD pipeline runs on kind cluster $CLUSTER"
print_login
