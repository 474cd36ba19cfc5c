#!/usr/bin/env bash
# Make sure a Docker engine answers: install Debian's docker.io when no engine is
# present and start dockerd when nothing is listening. Safe to run repeatedly.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    log "no Docker engine and not root: install docker (e.g. 'sudo apt-get install docker.io') and retry"
    exit 1
  fi
  log "installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    log "dockerd is installed but not running, and starting it needs root"
    exit 1
  fi
  log "starting dockerd (log: /var/log/apod-dockerd.log)"
  nohup dockerd --storage-driver=overlay2 >/var/log/apod-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi

docker info >/dev/null 2>&1 || { log "dockerd did not come up; see /var/log/apod-dockerd.log"; exit 1; }
log "engine ready: $(docker version --format '{{.Server.Version}}')"
