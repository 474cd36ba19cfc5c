#!/usr/bin/env bash
# Healthy: the registry answers the API's base endpoint `GET /v2/` with 200 (401 when an
# auth method is configured: it answers, and refuses anonymous requests as it should).
# Plain bash (/dev/tcp), so the image needs no HTTP client.
set -uo pipefail

ADDR="${REGISTRY_HTTP_ADDR:-:5000}"
PORT="${ADDR##*:}"
exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
printf 'GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 3 status <&3 || status=""
exec 3<&-
[[ $status == "HTTP/1."?" 200"* || $status == "HTTP/1."?" 401"* ]] || {
  echo "registry on port $PORT answered: ${status:-nothing}" >&2
  exit 1
}
