#!/usr/bin/env bash
# Build the pipeline's images, tagged apod-<name>:<version>, on the base that
# ensure-base-image.sh picks (the official python:3.11-slim-bookworm when a registry
# answers, a locally bootstrapped equivalent otherwise).
#
#   scripts/build-images.sh                 # the four steps, the APOD test server, Airflow
#   scripts/build-images.sh airflow load    # just these
#   scripts/build-images.sh postgres        # apod-postgres:$PG_MAJOR (15), for registry-less machines
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)}"
BASE_IMAGE="${BASE_IMAGE:-$(scripts/ensure-base-image.sh)}"
LOG_DIR=".cache/build-logs"
mkdir -p "$LOG_DIR"

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(extract transform load version testserver airflow)

for name in "${names[@]}"; do
  dockerfile="images/$name/Dockerfile"
  [ -f "$dockerfile" ] || { echo "build-images: no $dockerfile" >&2; exit 2; }
  if [ "$name" = postgres ]; then
    # Its own build context (it needs nothing else from the repository), tagged by the
    # PostgreSQL major it installs: a data volume is tied to that, not to our version.
    tag="apod-postgres:${PG_MAJOR:-15}"
    args=(--build-arg "PG_MAJOR=${PG_MAJOR:-15}" images/postgres)
  else
    tag="apod-$name:$VERSION"
    args=(--build-arg "VERSION=$VERSION" .)
  fi
  start=$(date +%s)
  if ! docker build -f "$dockerfile" --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$tag" "${args[@]}" \
      >"$LOG_DIR/$name.log" 2>&1; then
    tail -n 30 "$LOG_DIR/$name.log" >&2
    echo "build-images: $tag failed (full log: $LOG_DIR/$name.log)" >&2
    exit 1
  fi
  size=$(docker image inspect -f '{{.Size}}' "$tag")
  printf 'build-images: %-28s %4d MB  %3ds  (base %s)\n' "$tag" $((size / 1000000)) \
    $(($(date +%s) - start)) "$BASE_IMAGE"
done
