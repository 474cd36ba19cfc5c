#!/usr/bin/env bash
# Print the base image the Dockerfiles should build FROM, making sure it exists.
#
# The Dockerfiles default to the official python:3.11-slim-bookworm. When no registry
# answers (air-gapped machines, CI sandboxes) we bootstrap an equivalent base from
# Debian's packages with debootstrap and `docker import` it, so that the same
# Dockerfiles build unchanged with --build-arg BASE_IMAGE=<local base>.
set -euo pipefail

OFFICIAL="${APOD_OFFICIAL_BASE:-python:3.11-slim-bookworm}"
LOCAL="${APOD_LOCAL_BASE:-apod-local/python:3.11-slim-bookworm}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE_DIR="${APOD_CACHE_DIR:-$HOME/.cache/apod}"

log() { printf 'ensure-base-image: %s\n' "$*" >&2; }

if docker image inspect "$OFFICIAL" >/dev/null 2>&1; then echo "$OFFICIAL"; exit 0; fi
if docker image inspect "$LOCAL" >/dev/null 2>&1; then echo "$LOCAL"; exit 0; fi

if [ "${APOD_OFFLINE_BASE:-0}" != "1" ] && timeout 60 docker pull -q "$OFFICIAL" >/dev/null 2>&1; then
  echo "$OFFICIAL"; exit 0
fi

log "no registry answered for $OFFICIAL; bootstrapping $LOCAL from Debian $SUITE"
if [ "$(id -u)" -ne 0 ]; then
  log "debootstrap needs root; run this script as root once, or pull $OFFICIAL"
  exit 1
fi
command -v debootstrap >/dev/null 2>&1 || {
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

mkdir -p "$CACHE_DIR"
tarball="$CACHE_DIR/base-$SUITE-python3.tar"
if [ ! -s "$tarball" ]; then
  root=$(mktemp -d /tmp/apod-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    "$SUITE" "$root" "$MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1 \
    || { log "debootstrap failed; see $CACHE_DIR/debootstrap.log"; exit 1; }
  # Match the official image's conventions: `python`/`pip` on PATH, pip allowed to
  # install into the system interpreter (it is the only one in the image).
  ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
  ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
  rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  # Builds reach the package index only through this machine's TLS interception, so
  # the base trusts the host's bundle (public CAs plus the local one; nothing secret).
  if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  fi
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
fi

docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$tarball" "$LOCAL" >/dev/null
log "imported $LOCAL"
echo "$LOCAL"
