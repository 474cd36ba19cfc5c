#!/usr/bin/env bash
# Entrypoint of apod-objectstore: one `weed server` (SeaweedFS master, volume server, filer
# and S3 gateway) whose S3 API admits exactly one identity, from the environment or from
# *_FILE secrets, limited to one bucket that is created on start.
#
# weed listens on the container's loopback only: its filer and S3 gateway also serve
# unauthenticated gRPC APIs (the S3 one replaces the identities), and weed binds those
# wherever it binds S3. A socat forwarder carries the S3 port, and nothing else, outside.
set -Eeuo pipefail

BUCKET="${OBJECTSTORE_BUCKET:-apod-dvc}"
DATA_DIR="${OBJECTSTORE_DATA_DIR:-/data}"
PORT="${OBJECTSTORE_PORT:-8333}"
RUN_DIR="${OBJECTSTORE_RUN_DIR:-/tmp/objectstore}"
START_TIMEOUT="${OBJECTSTORE_START_TIMEOUT:-120}"
VOLUME_SIZE_LIMIT_MB="${OBJECTSTORE_VOLUME_SIZE_LIMIT_MB:-1024}"
CONFIG="$RUN_DIR/s3.json"
IDENTITY=dvc
# weed's ports on 127.0.0.1; each also uses the port 10000 above it for gRPC.
MASTER_PORT=9333 VOLUME_PORT=8080 FILER_PORT=8888 S3_INTERNAL_PORT=8340

log() { printf '%s objectstore: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
die() {
  log "$*"
  exit 1
}

# NAME's value from NAME or from the file NAME_FILE names (not both). Values are checked
# against a pattern and never printed, not even when they are wrong.
secret_env() {
  local name="$1" pattern="$2" rule="$3" file_name="${1}_FILE" value
  if [ -n "${!name:-}" ] && [ -n "${!file_name:-}" ]; then
    die "both $name and $file_name are set; use one"
  elif [ -n "${!file_name:-}" ]; then
    [ -r "${!file_name}" ] || die "$file_name names a file this user (uid $(id -u)) cannot read"
    value="$(<"${!file_name}")"
  elif [ -n "${!name:-}" ]; then
    value="${!name}"
  else
    die "$name or $file_name is required"
  fi
  [[ $value =~ $pattern ]] || die "$name is not valid: $rule"
  printf -v "$name" '%s' "$value"
  unset "$file_name"
  export -n "${name:?}"
}

check_settings() {
  [[ $BUCKET =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] \
    || die "OBJECTSTORE_BUCKET is not a valid S3 bucket name: 3-63 of a-z 0-9 . -"
  if ! [[ $PORT =~ ^[1-9][0-9]{0,4}$ ]] || ((PORT > 65535)); then
    die "OBJECTSTORE_PORT is not a port number"
  fi
  local internal
  for internal in "$MASTER_PORT" "$VOLUME_PORT" "$FILER_PORT" "$S3_INTERNAL_PORT"; do
    if ((PORT == internal || PORT == internal + 10000)); then
      die "OBJECTSTORE_PORT $PORT is one of weed's own ports"
    fi
  done
  [[ $START_TIMEOUT =~ ^[0-9]+$ ]] || die "OBJECTSTORE_START_TIMEOUT is not a number of seconds"
  [[ $VOLUME_SIZE_LIMIT_MB =~ ^[0-9]+$ ]] || die "OBJECTSTORE_VOLUME_SIZE_LIMIT_MB is not a number"
  secret_env OBJECTSTORE_ACCESS_KEY '^[A-Za-z0-9._-]{3,128}$' '3-128 of A-Z a-z 0-9 . _ -'
  secret_env OBJECTSTORE_SECRET_KEY '^[A-Za-z0-9._~+/=-]{16,128}$' \
    '16-128 of A-Z a-z 0-9 . _ ~ + / = -'
}

# The S3 identities file weed reads at start: written by shell builtins only (the secret
# reaches no command line), readable by this user alone. The identity may read, write and
# list its bucket, nothing else: it cannot create or delete buckets.
write_identities() {
  mkdir -p "$RUN_DIR" && chmod 0700 "$RUN_DIR"
  (
    umask 077
    printf '{"identities": [{"name": "%s", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], "actions": ["Read:%s", "Write:%s", "List:%s", "Tagging:%s"]}]}\n' \
      "$IDENTITY" "$OBJECTSTORE_ACCESS_KEY" "$OBJECTSTORE_SECRET_KEY" \
      "$BUCKET" "$BUCKET" "$BUCKET" "$BUCKET" >"$CONFIG.tmp"
  )
  mv -f "$CONFIG.tmp" "$CONFIG"
  unset OBJECTSTORE_ACCESS_KEY OBJECTSTORE_SECRET_KEY
}

weed_shell() {
  timeout 30 weed shell -master="127.0.0.1:$MASTER_PORT" -filer="127.0.0.1:$FILER_PORT" \
    <<<"$1" 2>&1
}

# The listing fails (non-zero) until the master and the filer answer.
bucket_listed() {
  local listing
  listing="$(weed_shell s3.bucket.list)" || return 2
  grep -Eq "^[[:space:]]*${BUCKET//./\\.}[[:space:]]" <<<"$listing"
}

# Made through the admin shell on loopback, since the S3 identity may not create buckets.
ensure_bucket() {
  local listed=0
  bucket_listed || listed=$?
  case "$listed" in
    0) log "bucket $BUCKET exists" ;;
    1) weed_shell "s3.bucket.create -name $BUCKET -owner $IDENTITY" >/dev/null \
      && bucket_listed && log "bucket $BUCKET created" ;;
    *) return 1 ;;
  esac
}

server() {
  check_settings
  mkdir -p "$DATA_DIR" 2>/dev/null || true
  [ -w "$DATA_DIR" ] || die "$DATA_DIR is not writable by uid $(id -u) (mount a volume there)"
  rm -f "$RUN_DIR/ready"
  write_identities

  weed server -dir="$DATA_DIR" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$MASTER_PORT" -volume.port="$VOLUME_PORT" -filer -filer.port="$FILER_PORT" \
    -master.telemetry=false -master.volumeSizeLimitMB="$VOLUME_SIZE_LIMIT_MB" \
    -volume.max=0 -volume.preStopSeconds=1 \
    -s3 -s3.port="$S3_INTERNAL_PORT" -s3.config="$CONFIG" \
    -s3.iam=false -s3.autoCreateBucket=false -s3.port.iceberg=0 -s3.port.lance=0 \
    "$@" &
  local weed_pid=$!
  socat "TCP-LISTEN:$PORT,fork,reuseaddr" "TCP:127.0.0.1:$S3_INTERNAL_PORT" &
  local proxy_pid=$! stopping=0 status=0 exited=""
  # weed's own graceful stop needs time (docs/BENCHMARKS.md, images, "apod-objectstore
  # graceful stop"): compose's stop_grace_period and Kubernetes'
  # terminationGracePeriodSeconds give it that.
  trap 'stopping=1; log "stopping"; kill -TERM "$weed_pid" "$proxy_pid" 2>/dev/null || true' \
    TERM INT

  local deadline=$((SECONDS + START_TIMEOUT)) ready=0
  until ((stopping)) || { ensure_bucket && ready=1; }; do
    if ! kill -0 "$weed_pid" 2>/dev/null; then
      log "weed exited before the bucket was made"
      break
    elif ((SECONDS >= deadline)); then
      log "bucket $BUCKET not made within ${START_TIMEOUT}s"
      break
    fi
    sleep 1
  done
  if ((ready)); then
    touch "$RUN_DIR/ready"
    log "S3 API on port $PORT, bucket $BUCKET, data in $DATA_DIR"
    # Until either child ends; a trapped signal interrupts `wait` without setting `exited`.
    while [ -z "${exited:-}" ]; do
      wait -n -p exited "$weed_pid" "$proxy_pid" && status=0 || status=$?
    done
  fi
  rm -f "$RUN_DIR/ready"
  kill -TERM "$weed_pid" "$proxy_pid" 2>/dev/null || true
  wait "$weed_pid" "$proxy_pid" 2>/dev/null || true
  if ((stopping)); then
    log "stopped"
    exit 0
  fi
  case "${exited:-}" in
    "$weed_pid") log "weed exited with status $status" ;;
    "$proxy_pid") log "the S3 port forwarder exited with status $status" ;;
  esac
  exit $((status ? status : 1))
}

if [ "${1:-server}" = server ]; then
  shift || true
  server "$@"
fi
exec "$@"
