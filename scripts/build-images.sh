#!/usr/bin/env bash
# Build the project's images, each from images/<name>/Dockerfile with the repository root as
# context, tagged apod-<name>:$(cat VERSION) (apod-postgres: its PostgreSQL major, from
# images/postgres/PG_MAJOR, since a data volume is tied to that, not to our version).
#
#   scripts/build-images.sh                    # every image
#   scripts/build-images.sh load airflow       # these (and the apod-* images they build FROM)
#   scripts/build-images.sh --tags [NAME...]   # list `<name> <tag>`, build nothing
#   scripts/build-images.sh --tag TAG NAME     # build one image under another tag
#   scripts/build-images.sh --announce DIR NAME...
#                                              # DIR/<name> is created as each one is built
#
# Each build gets the build arguments VERSION, PG_MAJOR and STEP (the image's folder name,
# which apod-package-builder's triggers install as package apod-<STEP>), and the labels:
# title apod-<name>, version (the tag's), licenses and source (the root pyproject.toml's),
# and for an image that is a workspace package its pyproject.toml's description (the
# others carry theirs in their Dockerfile); and apod.pipeline.content-tag, the tag its
# build inputs give it (scripts/content_tags.py), which the Kubernetes tooling checks an
# image against before it deploys it.
# An image that builds FROM apod-<other> waits for it; the others build side by side
# (APOD_BUILD_JOBS at a time, default 2), in the order asked for (parents first). The bases
# are nodes of the same graph, @python and @debian, made by ensure-base-image.sh (the
# official python/debian images when a registry answers, local equivalents otherwise), so
# an image on the Debian base (Postgres) builds while the Python base is still being made.
# With BuildKit every image's wheels come through one cache mount; a Docker without it
# builds the same Dockerfiles less their cache mounts, and apod-builder then carries the
# wheels of every image (its APOD_WHEELHOUSE layer) instead.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="$(cat VERSION)"
PG_MAJOR="$(cat images/postgres/PG_MAJOR)"
LOG_DIR=".cache/build-logs"
JOBS="${APOD_BUILD_JOBS:-2}"

log() { printf 'build-images: %s\n' "$*" >&2; }

all_names() {
  local dockerfile
  for dockerfile in images/*/Dockerfile; do
    basename "$(dirname "$dockerfile")"
  done
}

tag_of() {
  if [ "$1" = postgres ]; then echo "${APOD_LOCAL_POSTGRES:-apod-postgres:$PG_MAJOR}"; else echo "apod-$1:$VERSION"; fi
}

# What an image builds FROM: project images (`FROM apod-<name>:...`) and the bases its
# Dockerfile takes as a build argument (@python: PYTHON_IMAGE, @debian: DEBIAN_IMAGE).
parents_of() {
  case "$1" in @*) return 0 ;; esac
  sed -n 's/^FROM apod-\([a-z0-9-]*\):.*/\1/p' "images/$1/Dockerfile" | sort -u
  grep -q '^ARG PYTHON_IMAGE' "images/$1/Dockerfile" && echo @python
  grep -q '^ARG DEBIAN_IMAGE' "images/$1/Dockerfile" && echo @debian
  return 0
}

tags_only=0
custom_tag=""
announce=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tags) tags_only=1; shift ;;
    --tag) custom_tag="${2:?--tag needs a tag}"; shift 2 ;;
    --announce) announce="${2:?--announce needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,27s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) log "unknown option $1"; exit 2 ;;
    *) break ;;
  esac
done
requested=("$@")
# shellcheck disable=SC2207  # image names are single words
[ ${#requested[@]} -gt 0 ] || requested=($(all_names))
for name in "${requested[@]}"; do
  [ -f "images/$name/Dockerfile" ] || { log "no images/$name/Dockerfile"; exit 2; }
done

if [ "$tags_only" = 1 ]; then
  for name in "${requested[@]}"; do echo "$name $(tag_of "$name")"; done
  exit 0
fi
if [ -n "$custom_tag" ] && [ ${#requested[@]} -ne 1 ]; then
  log "--tag names one image"
  exit 2
fi

# The requested images and, transitively, what they build FROM; `order` lists them parents
# first and otherwise in the order asked for: the builder starts the first ready one in
# that order (so a caller puts first what it needs first, and the longest builds).
declare -A parents=() wanted=()
order=()
add() {
  [ -n "${wanted[$1]:-}" ] && return 0
  case "$1" in
    @python | @debian) ;;
    *) [ -f "images/$1/Dockerfile" ] \
         || { log "images/$2/Dockerfile builds FROM apod-$1: no images/$1"; exit 2; } ;;
  esac
  wanted[$1]=1
  parents[$1]="$(parents_of "$1" | tr '\n' ' ')"
  local parent
  for parent in ${parents[$1]}; do add "$parent" "$1"; done
  order+=("$1")
}
for name in "${requested[@]}"; do add "$name" "$name"; done
# Bootstrapped locally, the Python base is built on the Debian one: made one after the other.
[ -n "${wanted[@debian]:-}" ] && [ -n "${wanted[@python]:-}" ] && parents[@python]=@debian

# BuildKit: a docker with buildx, or a client older than 23 (Debian's docker.io) that
# still drives the engine's built-in BuildKit itself. APOD_BUILDKIT=0 forces the plain builder.
DOCKER=(docker)
buildkit=0
if [ "${APOD_BUILDKIT:-}" != 0 ]; then
  if docker buildx version >/dev/null 2>&1; then
    buildkit=1
  else
    for client in docker /usr/bin/docker; do
      command -v "$client" >/dev/null 2>&1 || continue
      major="$("$client" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)"
      if [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge 18 ] && [ "$major" -lt 23 ]; then
        DOCKER=("$client")
        buildkit=1
        break
      fi
    done
  fi
fi

build_args=(--build-arg "VERSION=$VERSION" --build-arg "PG_MAJOR=$PG_MAJOR")
# Each image's content tag, from the sources as they are now (before any build starts).
declare -A content_tag=()
images_in_order=()
for name in "${order[@]}"; do case "$name" in @*) ;; *) images_in_order+=("$name") ;; esac; done
while read -r name value; do content_tag[$name]="$value"; done \
  < <(python3 scripts/content_tags.py "${images_in_order[@]}" || echo "! failed")
[ -z "${content_tag['!']:-}" ] || { log "scripts/content_tags.py failed"; exit 1; }
[ "$buildkit" = 1 ] || build_args+=(--build-arg "APOD_WHEELHOUSE=1")
export DOCKER_BUILDKIT="$buildkit"

# The bases' names, as their nodes find them (PYTHON_IMAGE / DEBIAN_IMAGE when set), for
# the builds after them: a file each, since every node builds in a subshell of its own.
BASES="$(mktemp -d)"
trap 'rm -rf "$BASES"' EXIT
base() {
  local kind="${1#@}" start=$SECONDS image size
  case "$kind" in
    python) image="${PYTHON_IMAGE:-$(scripts/ensure-base-image.sh python)}" ;;
    debian) image="${DEBIAN_IMAGE:-$(scripts/ensure-base-image.sh debian)}" ;;
  esac
  echo "$image" >"$BASES/$kind"
  # A PYTHON_IMAGE/DEBIAN_IMAGE of a registry may not be here yet: the build pulls it.
  size="$(docker image inspect -f '{{.Size}}' "$image" 2>/dev/null || echo 0)"
  printf 'build-images: base %-6s %-36s %5d MB %4ds\n' "$kind" "$image" \
    $((size / 1000000)) $((SECONDS - start))
}

# `--label` arguments for image $1 (tagged $2): one place each, the pyproject files.
labels_of() {
  python3 - "$1" "${2#*:}" <<'PY'
import sys
import tomllib
from pathlib import Path

name, version = sys.argv[1:]
project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
labels = {
    "title": f"apod-{name}",
    "version": version,
    "licenses": project["license"]["text"],
    "source": project["urls"]["Source"],
}
package = Path("images", name, "pyproject.toml")
if package.is_file():
    labels["description"] = tomllib.loads(package.read_text())["project"]["description"]
for key, value in labels.items():
    print(f"--label\norg.opencontainers.image.{key}={value}")
PY
}

mkdir -p "$LOG_DIR"
build() {
  case "$1" in @*) base "$1"; return ;; esac
  local name="$1" tag dockerfile="images/$1/Dockerfile" start=$SECONDS labels kind
  tag="$(tag_of "$name")"
  labels="$(labels_of "$name" "$tag")"
  local -a args=("${build_args[@]}" --build-arg "STEP=$name")
  for kind in python debian; do
    case " ${parents[$name]} " in
      *" @$kind "*) args+=(--build-arg "${kind^^}_IMAGE=$(cat "$BASES/$kind")") ;;
    esac
  done
  mapfile -t -O "${#args[@]}" args <<<"$labels"
  args+=(--label "apod.pipeline.content-tag=${content_tag[$name]}")
  [ -n "$custom_tag" ] && [ "$name" = "${requested[0]}" ] && tag="$custom_tag"
  if [ "$buildkit" = 0 ]; then
    # The plain builder knows no RUN --mount: the same Dockerfile without the cache mounts.
    dockerfile="$LOG_DIR/$name.Dockerfile"
    sed -E 's/--mount=[^ ]+ //g' "images/$name/Dockerfile" >"$dockerfile"
  fi
  if ! "${DOCKER[@]}" build -f "$dockerfile" "${args[@]}" -t "$tag" . \
      >"$LOG_DIR/$name.log" 2>&1; then
    tail -n 30 "$LOG_DIR/$name.log" >&2
    log "$tag failed (full log: $LOG_DIR/$name.log)"
    return 1
  fi
  printf 'build-images: %-30s %5d MB %4ds\n' "$tag" \
    $(($(docker image inspect -f '{{.Size}}' "$tag") / 1000000)) $((SECONDS - start))
}

# Start every image whose parents are built, at most $JOBS at a time.
declare -A state=() running=()
ready() {
  [ -z "${state[$1]:-}" ] || return 1
  local parent
  for parent in ${parents[$1]}; do [ "${state[$parent]:-}" = built ] || return 1; done
}
started=$SECONDS
failed=0
while :; do
  if [ "$failed" = 0 ]; then
    for name in "${order[@]}"; do
      [ ${#running[@]} -lt "$JOBS" ] || break
      ready "$name" || continue
      build "$name" &
      running[$!]="$name"
      state[$name]=running
    done
  fi
  [ ${#running[@]} -gt 0 ] || break
  rc=0
  wait -n -p pid || rc=$?
  [ -n "${running[$pid]:-}" ] || continue
  name="${running[$pid]}"
  unset "running[$pid]"
  if [ "$rc" = 0 ]; then state[$name]=built; else state[$name]=failed; failed=1; fi
  if [ "$rc" = 0 ] && [ -n "$announce" ] && [[ "$name" != @* ]]; then : >"$announce/$name"; fi
done
[ "$failed" = 0 ] || exit 1
log "${#images_in_order[@]} image(s) in $((SECONDS - started))s ($([ "$buildkit" = 1 ] && echo BuildKit || echo 'plain builder'), ${JOBS} at a time)"
