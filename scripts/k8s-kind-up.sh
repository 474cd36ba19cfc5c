#!/usr/bin/env bash
# The APOD pipeline on a local kind cluster, in one command: check the tools, create (or
# reuse) the cluster, build the images and load them into it under this build's content
# tags, create the Secrets, apply k8s/overlays/kind, wait until everything runs, forward
# the UI to 127.0.0.1:8080. Run again after a rebuild: the Deployments roll onto the new
# images.
#
#   scripts/k8s-kind-up.sh          (make kind-up)
#
# KIND_CLUSTER_NAME (apod), KIND_NODE_IMAGE (k8s/kind-cluster.yaml's), and the settings
# of scripts/k8s-lib.sh.
set -euo pipefail
# shellcheck source=scripts/k8s-lib.sh
. "$(dirname "$0")/k8s-lib.sh"

CLUSTER="${KIND_CLUSTER_NAME:-apod}"
KUBE_CONTEXT="kind-$CLUSTER"
need python3
"$REPO/scripts/ensure-docker.sh"
doctor kind

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "reusing kind cluster $CLUSTER"
else
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config "$REPO/k8s/kind-cluster.yaml" \
    ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 180s
fi

build_images
tag_images
for image in "${LOAD_IMAGES[@]}"; do
  log "loading $image into $CLUSTER"
  kind load docker-image --name "$CLUSTER" "$image"
done

deploy kind
start_port_forward
log "the APOD pipeline runs on kind cluster $CLUSTER"
print_login
