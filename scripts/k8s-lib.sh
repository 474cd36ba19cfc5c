# shellcheck shell=bash
# Shared by scripts/k8s-*.sh (sourced): build and load the images, create the Secrets,
# apply an overlay, wait for it, and forward the UI to 127.0.0.1.
#
# Settings (environment):
#   APOD_K8S_SECRETS_FILE  the generated secrets (default k8s/.secrets.env, gitignored)
#   APOD_K8S_UI_PORT       local port of the UI's port-forward (default 8080)
#   APOD_K8S_SKIP_BUILD=1  use the images as they are in the local Docker engine
#   APOD_K8S_BUILD_TAG     the tag of those images (default VERSION, as apod_build tags)
#   APOD_IMAGE_REGISTRY    where the cluster pulls its images from (kind: its local registry
#                          by default; minikube: none, images loaded), APOD_IMAGE_PULL_SECRET
#   APOD_K8S_SKIP_DOCTOR=1 start without scripts/k8s_doctor.py's checks (at your own risk)
#   APOD_K8S_TIMEOUT       seconds to wait for each rollout or Job (default 900)
#   APOD_K8S_STATE_DIR     port-forward pid, log and context (default .cache/k8s)
#   FORCE=1                replace the scheduler, object store, Postgres or data holder
#                          even while a DAG run is running (scripts/k8s_rollout.py)
# and k8s/tools.env's (Kubernetes and kind versions, minikube's node size), each of which
# the environment overrides.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The scripts these call are standard-library Python: no virtualenv needed.
PYTHON="${PYTHON:-python3}"
NAMESPACE=apod
SECRETS_FILE="${APOD_K8S_SECRETS_FILE:-$REPO/k8s/.secrets.env}"
UI_PORT="${APOD_K8S_UI_PORT:-8080}"
TIMEOUT="${APOD_K8S_TIMEOUT:-900}"
STATE_DIR="${APOD_K8S_STATE_DIR:-$REPO/.cache/k8s}"
KUBE_CONTEXT="${KUBE_CONTEXT:-}"

# k8s/tools.env: NAME=value lines; a variable already set in the environment wins.
while IFS='=' read -r name value; do
  case "$name" in ''|'#'*) continue ;; esac
  [ -n "${!name:-}" ] || printf -v "$name" '%s' "$value"
done <"$REPO/k8s/tools.env"
unset name value

log() { printf '%s %s: %s\n' "$(date -u +%H:%M:%S)" "$(basename "$0" .sh)" "$*" >&2; }
die() { log "$*"; exit 1; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found on PATH: install it first (k8s/README.md)"
  done
}

# kubectl on the cluster this script brought up, never the current context by accident.
kc() { kubectl --context "$KUBE_CONTEXT" --namespace "$NAMESPACE" "$@"; }

# What the cluster needs from this machine (scripts/k8s_doctor.py), before anything starts.
doctor() {
  if [ "${APOD_K8S_SKIP_DOCTOR:-}" = 1 ]; then
    log "APOD_K8S_SKIP_DOCTOR=1: not checking the tools"
    return 0
  fi
  "$PYTHON" "$REPO/scripts/k8s_doctor.py" "$1" >&2 \
    || die "not starting: fix what k8s-doctor lists above (make k8s-doctor checks again)"
}

build_images() {
  if [ "${APOD_K8S_SKIP_BUILD:-}" = 1 ]; then
    log "APOD_K8S_SKIP_BUILD=1: using the local images as they are"
  else
    log "building the images the cluster runs: the steps, Airflow, Postgres and the object store"
    PYTHONPATH="$REPO/tools" "$PYTHON" -m apod_build extract transform load version airflow postgres objectstore
  fi
  local image
  for image in $("$PYTHON" "$REPO/scripts/k8s_images.py" list); do
    docker image inspect "$image" >/dev/null 2>&1 || die "image $image is missing"
  done
}

# This build's images under their content tags (scripts/k8s_images.py): pushed to the
# registry $1 when it names one (make k8s-push), else tagged locally, to be loaded into a
# cluster that has no registry (minikube image load). Sets IMAGE_REGISTRY, IMAGE_TAGS
# (NAME=TAG,... for scripts/k8s_overlay.py) and CLUSTER_IMAGES (the references).
publish_images() {
  local plan key value command=tag
  IMAGE_REGISTRY="$1"
  [ -z "$IMAGE_REGISTRY" ] || command=push
  plan="$(APOD_IMAGE_REGISTRY="$IMAGE_REGISTRY" "$PYTHON" "$REPO/scripts/k8s_images.py" "$command")" \
    || die "could not $command the images (scripts/k8s_images.py $command)"
  IMAGE_TAGS="" CLUSTER_IMAGES=()
  while read -r key value; do
    case "$key" in
      tags) IMAGE_TAGS="$value" ;;
      image) CLUSTER_IMAGES+=("$value") ;;
    esac
  done <<<"$plan"
  [ -n "$IMAGE_TAGS" ] || die "k8s_images.py named no tags"
  log "this build: ${IMAGE_TAGS//,/ }${IMAGE_REGISTRY:+, from $IMAGE_REGISTRY}"
}

# The Secrets from the secrets file (created with random values on the first run). The
# values travel as files into kubectl, never on a command line or in the output.
apply_secrets() {
  mkdir -p "$(dirname "$SECRETS_FILE")"
  "$PYTHON" "$REPO/scripts/k8s_secrets.py" init "$SECRETS_FILE"
  "$PYTHON" "$REPO/scripts/alert_connections.py" check "$SECRETS_FILE"
  kc get namespace "$NAMESPACE" >/dev/null 2>&1 || kc create namespace "$NAMESPACE" >/dev/null
  (
    dir="$(mktemp -d)"
    trap 'rm -rf "$dir"' EXIT
    "$PYTHON" "$REPO/scripts/k8s_secrets.py" render "$SECRETS_FILE" "$dir"
    for name in apod-secrets apod-airflow-secrets; do
      kc create secret generic "$name" --from-file="$dir/$name" --dry-run=client -o yaml \
        | kc apply --server-side --force-conflicts -f - >/dev/null
      log "secret $name applied"
    done
  )
}

# Wait for a Job to complete; stop at once when it has failed for good.
wait_job() {
  local job="$1" deadline=$((SECONDS + TIMEOUT)) state
  log "waiting for job/$job"
  while [ $SECONDS -lt $deadline ]; do
    state="$(kc get job "$job" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}' 2>/dev/null || true)"
    case " $state " in
      *" Complete "*) log "job/$job complete"; return 0 ;;
      *" Failed "*)
        kc logs "job/$job" --tail=30 >&2 || true
        die "job/$job failed (kubectl -n $NAMESPACE describe job/$job)"
        ;;
    esac
    sleep 5
  done
  die "job/$job not complete after ${TIMEOUT}s"
}

# The overlay with this build's images (scripts/k8s_overlay.py; publish_images first): a
# generated kustomization, kept in the state directory to be looked at. A rebuild changes
# the tags of the images whose inputs changed: exactly the workloads that run one roll
# (the Airflow ones too when a step image changed: the ConfigMap's APOD_IMAGE_TAGS), and
# the DAG's next pods start the new step images. What is applied is that overlay with the
# Secrets' checksums (plan_rollout), and only when it replaces nothing a running DAG run
# needs.
deploy() {
  local overlay="$STATE_DIR/kustomize/$1" applied="$STATE_DIR/kustomize/$1.applied"
  "$PYTHON" "$REPO/scripts/k8s_overlay.py" "$1" "$overlay" \
    --tags "$IMAGE_TAGS" --registry "$IMAGE_REGISTRY"
  plan_rollout "$overlay" "$applied"
  apply_secrets
  # A Job's pod template cannot change: the Jobs the plan re-runs (changed, or never
  # completed; both are idempotent) are replaced.
  if [ "${#RERUNS[@]}" -gt 0 ]; then
    kc delete job "${RERUNS[@]}" --ignore-not-found >/dev/null
  fi
  log "applying k8s/overlays/$1"
  kubectl --context "$KUBE_CONTEXT" apply -k "$applied"
  wait_rollouts
}

# scripts/k8s_rollout.py: writes the overlay to apply (each workload annotated with a
# checksum of the Secret keys it reads, so a changed secret rolls exactly the pods that
# read it), refuses to replace the scheduler, the object store, Postgres, the data
# holder or the setup Jobs while a DAG run is running (it names the run; FORCE=1
# replaces them anyway), and sets RERUNS (the Jobs to replace) and WAITS (every
# workload, in the order to wait for them).
plan_rollout() {
  local plan what name
  mkdir -p "$(dirname "$SECRETS_FILE")"
  "$PYTHON" "$REPO/scripts/k8s_secrets.py" init "$SECRETS_FILE"
  plan="$("$PYTHON" "$REPO/scripts/k8s_rollout.py" plan "$1" "$2" --context "$KUBE_CONTEXT" \
    --namespace "$NAMESPACE" --secrets-file "$SECRETS_FILE")" \
    || die "not applying k8s/overlays/$(basename "$1") (see above)"
  RERUNS=() WAITS=()
  while read -r what name; do
    case "$what" in
      rerun) RERUNS+=("${name#job/}") ;;
      wait) WAITS+=("$name") ;;
    esac
  done <<<"$plan"
}

# Wait for every workload of the plan: a Job until it completes, the others until their
# rollout has finished (the new pods ready, the old ones gone).
wait_rollouts() {
  local workload
  for workload in "${WAITS[@]}"; do
    case "$workload" in
      job/*) wait_job "${workload#job/}" ;;
      *) kc rollout status "$workload" --timeout="${TIMEOUT}s" ;;
    esac
  done
}

ui_answers() {
  "$PYTHON" - "$UI_PORT" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/v2/monitor/health", timeout=5)
except Exception:
    sys.exit(1)
PY
}

stop_port_forward() {
  local pid_file="$STATE_DIR/port-forward.pid" pid
  [ -f "$pid_file" ] || return 0
  pid="$(cat "$pid_file")"
  # Only our own kubectl port-forward, recognised by its command line.
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "port-forward"; then
    kill "$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
}

# kubectl port-forward in the background, bound to 127.0.0.1 only.
start_port_forward() {
  mkdir -p "$STATE_DIR"
  stop_port_forward
  nohup kubectl --context "$KUBE_CONTEXT" --namespace "$NAMESPACE" port-forward \
    --address 127.0.0.1 svc/airflow-api-server "$UI_PORT:8080" \
    >"$STATE_DIR/port-forward.log" 2>&1 &
  echo $! >"$STATE_DIR/port-forward.pid"
  printf '%s\n' "$KUBE_CONTEXT" >"$STATE_DIR/context"
  local deadline=$((SECONDS + 120))
  until ui_answers; do
    [ $SECONDS -lt $deadline ] || die "the UI does not answer on 127.0.0.1:$UI_PORT (log: $STATE_DIR/port-forward.log)"
    kill -0 "$(cat "$STATE_DIR/port-forward.pid")" 2>/dev/null \
      || die "kubectl port-forward exited (log: $STATE_DIR/port-forward.log; is port $UI_PORT taken?)"
    sleep 2
  done
}

print_login() {
  cat >&2 <<EOF

  Airflow UI   http://127.0.0.1:$UI_PORT   (kubectl port-forward, pid $(cat "$STATE_DIR/port-forward.pid"))
  login        admin / the AIRFLOW_ADMIN_PASSWORD in ${SECRETS_FILE#"$REPO"/}
  run once     make k8s-run DATE=2024-01-01 [END=2024-01-31]
  inspect      kubectl --context $KUBE_CONTEXT -n $NAMESPACE get pods
  data store   kubectl --context $KUBE_CONTEXT -n $NAMESPACE port-forward svc/objectstore 8333
               (S3 keys: APOD_S3_ACCESS_KEY_ID / APOD_S3_SECRET_ACCESS_KEY in ${SECRETS_FILE#"$REPO"/})

EOF
}
