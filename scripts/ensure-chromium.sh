#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (Playwright drives it
# through executable_path; `playwright install` is not used: it downloads from a CDN).
# Prints the browser's path.
set -euo pipefail

BROWSER="${APOD_CHROMIUM:-/usr/bin/chromium}"
log() { printf 'ensure-chromium: %s\n' "$*" >&2; }

if [ ! -x "$BROWSER" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "$BROWSER is missing; install it: sudo apt-get install -y chromium"
    exit 1
  fi
  log "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
[ -x "$BROWSER" ] || { log "no browser at $BROWSER"; exit 1; }
echo "$BROWSER"
