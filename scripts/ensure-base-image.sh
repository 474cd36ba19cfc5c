#!/usr/bin/env bash
# Print the base image to build FROM, making sure it exists.
#
#   scripts/ensure-base-image.sh [python]   the Python base (images/base, images/airflow)
#   scripts/ensure-base-image.sh debian     the minimal Debian base (images/postgres)
#
# The Dockerfiles default to the official python:3.11-slim-bookworm and debian:bookworm-slim.
# When no registry answers (air-gapped machines, CI sandboxes) this bootstraps equivalents:
# a minimal Debian from Debian's packages with mmdebstrap, `docker import`ed as
# apod-local/debian:bookworm-slim, and the Python base built on it
# (images/base/python-local.Dockerfile), so the two share their Debian layer and the same
# Dockerfiles build unchanged with --build-arg PYTHON_IMAGE=... / DEBIAN_IMAGE=....
set -euo pipefail
cd "$(dirname "$0")/.."

kind="${1:-python}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE_DIR="${APOD_CACHE_DIR:-$HOME/.cache/apod}"
OFFICIAL_DEBIAN="${APOD_OFFICIAL_DEBIAN:-debian:bookworm-slim}"
OFFICIAL_PYTHON="${APOD_OFFICIAL_PYTHON:-python:3.11-slim-bookworm}"
LOCAL_DEBIAN="${APOD_LOCAL_DEBIAN:-apod-local/debian:bookworm-slim}"
LOCAL_PYTHON="${APOD_LOCAL_PYTHON:-apod-local/python:3.11-slim-bookworm}"

log() { printf 'ensure-base-image: %s\n' "$*" >&2; }
present() { docker image inspect "$1" >/dev/null 2>&1; }

# The official image when it is here or a registry gives it (a refusal answers at once).
official() {
  present "$1" && return 0
  [ "${APOD_OFFLINE_BASE:-0}" != 1 ] && timeout 60 docker pull -q "$1" >/dev/null 2>&1
}

# Debian's minbase, trimmed like the official slim image (no docs, man pages or message
# translations, now or in packages installed later: mmdebstrap keeps its --dpkgopt lines in
# the image's /etc/dpkg/dpkg.cfg.d). mmdebstrap rather than debootstrap: it downloads with
# apt, in parallel, and unpacks in one dpkg call; make bench-cold times it.
SLIM=(
  'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright'
  'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/groff/*'
  'path-exclude=/usr/share/info/*' 'path-exclude=/usr/share/lintian/*'
  'path-exclude=/usr/share/locale/*'
)
bootstrap_debian() {
  if [ "$(id -u)" -ne 0 ]; then
    log "mmdebstrap needs root here; run this script as root once, or pull $OFFICIAL_DEBIAN"
    exit 1
  fi
  # eatmydata: dpkg inside the new root skips its fsync calls (the tarball is what is kept).
  if ! command -v mmdebstrap >/dev/null 2>&1 || ! command -v eatmydata >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      mmdebstrap eatmydata >/dev/null
  fi
  mkdir -p "$CACHE_DIR"
  local tarball="$CACHE_DIR/debian-$SUITE-minbase.tar" option
  if [ ! -s "$tarball" ]; then
    # The merged-usr hook: /usr merged as debootstrap does it (usr-is-merged), not by the
    # usrmerge package, which would pull perl into the base.
    local -a args=(--variant=minbase --mode=root --format=tar
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
      --hook-dir=/usr/share/mmdebstrap/hooks/eatmydata)
    for option in "${SLIM[@]}"; do args+=("--dpkgopt=$option"); done
    # Builds reach the package indexes only through this machine's TLS interception, so
    # the base trusts the host's bundle (public CAs plus the local one; nothing secret);
    # Debian's ca-certificates picks it up when an image installs that package.
    # shellcheck disable=SC2016  # "$1" is the hook's argument, the new root
    if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
      args+=(--customize-hook='mkdir -p "$1/usr/local/share/ca-certificates" "$1/etc/ssl/certs"
        cp /etc/ssl/certs/ca-certificates.crt "$1/usr/local/share/ca-certificates/apod-host.crt"
        cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt"')
    fi
    # shellcheck disable=SC2016
    args+=(--customize-hook='rm -f "$1"/var/log/*.log "$1"/var/log/apt/*')
    log "mmdebstrap $SUITE (log: $CACHE_DIR/mmdebstrap.log)"
    mmdebstrap "${args[@]}" "$SUITE" "$tarball.tmp" "$MIRROR" >"$CACHE_DIR/mmdebstrap.log" 2>&1 \
      || { rm -f "$tarball.tmp"; log "mmdebstrap failed; see $CACHE_DIR/mmdebstrap.log"; exit 1; }
    mv "$tarball.tmp" "$tarball"
  fi
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    "$tarball" "$LOCAL_DEBIAN" >/dev/null
  log "imported $LOCAL_DEBIAN"
}

debian_base() {
  if official "$OFFICIAL_DEBIAN"; then echo "$OFFICIAL_DEBIAN"; return; fi
  present "$LOCAL_DEBIAN" || bootstrap_debian
  echo "$LOCAL_DEBIAN"
}

python_base() {
  if official "$OFFICIAL_PYTHON"; then echo "$OFFICIAL_PYTHON"; return; fi
  if ! present "$LOCAL_PYTHON"; then
    local debian
    debian=$(debian_base)
    log "no registry answered for $OFFICIAL_PYTHON; building $LOCAL_PYTHON on $debian"
    mkdir -p .cache/build-logs
    # The engine's default builder: nothing here needs BuildKit, whatever the caller chose.
    env -u DOCKER_BUILDKIT docker build --build-arg "DEBIAN_IMAGE=$debian" -t "$LOCAL_PYTHON" - \
      <images/base/python-local.Dockerfile \
      >.cache/build-logs/python-local.log 2>&1 \
      || { tail -n 20 .cache/build-logs/python-local.log >&2; exit 1; }
  fi
  echo "$LOCAL_PYTHON"
}

case "$kind" in
  python) python_base ;;
  debian) debian_base ;;
  *) echo "usage: $0 [python|debian]" >&2; exit 2 ;;
esac
