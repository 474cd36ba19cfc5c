#!/usr/bin/env bash
# The APOD pipeline on a local minikube cluster, in one command: check the tools, start
# (or reuse) the profile, build the images and load them into it under their content
# tags (or push them to APOD_IMAGE_REGISTRY), create the Secrets, apply
# k8s/overlays/minikube, wait until everything runs, forward the UI to 127.0.0.1:8080.
# Run again after a change: what runs a changed image rolls.
#
#   scripts/k8s-minikube-up.sh      (make minikube-up)
#
# MINIKUBE_PROFILE (apod), MINIKUBE_DRIVER (docker), MINIKUBE_K8S_VERSION (k8s/tools.env's
# KUBERNETES_VERSION, the version the manifests are validated against), MINIKUBE_MEMORY and
# MINIKUBE_CPUS (the node: k8s/tools.env), MINIKUBE_START_ARGS (more flags), and the
# settings of scripts/k8s-lib.sh. As root the docker and podman drivers get --force:
# minikube refuses root otherwise (DRV_AS_ROOT).
set -euo pipefail
# shellcheck source=scripts/k8s-lib.sh
. "$(dirname "$0")/k8s-lib.sh"

PROFILE="${MINIKUBE_PROFILE:-apod}"
DRIVER="${MINIKUBE_DRIVER:-docker}"
KUBE_CONTEXT="$PROFILE"
need python3
"$REPO/scripts/ensure-docker.sh"
doctor minikube

if minikube status --profile "$PROFILE" >/dev/null 2>&1; then
  log "reusing minikube profile $PROFILE"
else
  as_root=()
  if [ "$(id -u)" -eq 0 ] && { [ "$DRIVER" = docker ] || [ "$DRIVER" = podman ]; }; then
    as_root=(--force)
    log "running as root: minikube start --force (its $DRIVER driver refuses root otherwise)"
  fi
  log "starting minikube profile $PROFILE ($MINIKUBE_CPUS CPUs, $MINIKUBE_MEMORY memory)"
  # shellcheck disable=SC2086 # MINIKUBE_START_ARGS is a list of flags
  minikube start --profile "$PROFILE" --driver "$DRIVER" \
    --kubernetes-version "${MINIKUBE_K8S_VERSION:-$KUBERNETES_VERSION}" \
    --memory "$MINIKUBE_MEMORY" --cpus "$MINIKUBE_CPUS" "${as_root[@]}" ${MINIKUBE_START_ARGS:-}
fi

# From APOD_IMAGE_REGISTRY when it names a registry the node reaches; otherwise loaded
# into the node (k8s/README.md: why minikube does not take kind's local registry).
build_images
publish_images "${APOD_IMAGE_REGISTRY:-}"
if [ -z "$IMAGE_REGISTRY" ]; then
  for image in "${CLUSTER_IMAGES[@]}"; do
    log "loading $image into $PROFILE"
    minikube image load --profile "$PROFILE" --overwrite=true "$image"
  done
fi

deploy minikube
start_port_forward
log "the APOD pipeline runs on minikube profile $PROFILE"
print_login
