#!/usr/bin/env bash
# Healthy: the entrypoint has made the bucket (its ready file) and the S3 gateway answers
# GET /healthz with 200. Plain bash (/dev/tcp), so the image needs no HTTP client.
set -uo pipefail

PORT="${OBJECTSTORE_PORT:-8333}"
RUN_DIR="${OBJECTSTORE_RUN_DIR:-/tmp/objectstore}"

[ -e "$RUN_DIR/ready" ] || {
  echo "not ready: the bucket is not made yet" >&2
  exit 1
}
exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 5 status <&3 || status=""
exec 3<&-
[[ $status == "HTTP/1."?" 200"* ]] || {
  echo "S3 gateway on port $PORT answered: ${status:-nothing}" >&2
  exit 1
}
