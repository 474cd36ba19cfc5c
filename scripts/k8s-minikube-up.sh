#!/usr/bin/env bash
# The APOD pipeline on a local minikube cluster, in one command: start (or reuse) the
# profile, build the images and load them into it, create the Secrets, apply
# k8s/overlays/minikube, wait until everything runs, forward the UI to 127.0.0.1:8080.
#
#   scripts/k8s-minikube-up.sh      (make minikube-up)
#
# MINIKUBE_PROFILE (apod), MINIKUBE_DRIVER (docker), MINIKUBE_K8S_VERSION (v1.34.11, the
# version the manifests are validated against), MINIKUBE_START_ARGS (extra flags, e.g.
# "--cpus=4 --memory=8g"), and the settings of scripts/k8s-lib.sh.
set -euo pipefail
# shellcheck source=scripts/k8s-lib.sh
. "$(dirname "$0")/k8s-lib.sh"

PROFILE="${MINIKUBE_PROFILE:-apod}"
KUBE_CONTEXT="$PROFILE"
need minikube kubectl docker python3
"$REPO/scripts/ensure-docker.sh"

if minikube status --profile "$PROFILE" >/dev/null 2>&1; then
  log "reusing minikube profile $PROFILE"
else
  log "starting minikube profile $PROFILE"
  # shellcheck disable=SC2086 # MINIKUBE_START_ARGS is a list of flags
  minikube start --profile "$PROFILE" --driver "${MINIKUBE_DRIVER:-docker}" \
    --kubernetes-version "${MINIKUBE_K8S_VERSION:-v1.34.11}" ${MINIKUBE_START_ARGS:-}
fi

build_images
for image in "${IMAGES[@]}"; do
  log "loading $image into $PROFILE"
  minikube image load --profile "$PROFILE" --overwrite=true "$image"
done

deploy minikube
start_port_forward
log "the APOD pipeline runs on minikube profile $PROFILE"
print_login
