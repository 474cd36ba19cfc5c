#!/usr/bin/env bash
# Build every image the compose deployment runs, in one call to the builder (tools/apod_build)
# (from cache when nothing changed, so the stack follows the checkout):
#  - the step images, the test server, the object store and apod-airflow
#    (apod-<name>:<VERSION>);
#  - Postgres of the project's major (images/postgres/PG_MAJOR): the official
#    postgres:<major>-bookworm when it is present or can be pulled, else
#    apod-postgres:<major> built from Debian's packages (images/postgres). The choice is
#    recorded in the env file (APOD_POSTGRES_IMAGE) because the data volume is tied to
#    the server's major version.
#
#   scripts/compose-images.sh [--no-build]   --no-build: pick Postgres, check the rest exist
#   scripts/compose-images.sh --announce DIR
#       DIR/<name> is created as each image is ready (Postgres's too, pulled or built), so
#       that scripts/compose-up.sh starts each service once its image is built, while the
#       step images, which only runs need, build on
set -euo pipefail
# shellcheck source=scripts/compose-lib.sh
. "$(dirname "$0")/compose-lib.sh"
cd "$REPO"

build=1
announce=""
case "${1:-}" in
  "") ;;
  --no-build) build=0 ;;
  --announce) announce="${2:?--announce needs a directory}" ;;
  *) die "usage: compose-images.sh [--no-build | --announce DIR]" ;;
esac

postgres_image="$(setting APOD_POSTGRES_IMAGE "")"
if [ -z "$postgres_image" ]; then
  if docker image inspect "$OFFICIAL_POSTGRES" >/dev/null 2>&1 \
      || { [ "${APOD_OFFLINE_BASE:-0}" != 1 ] \
           && timeout 120 docker pull -q "$OFFICIAL_POSTGRES" >/dev/null 2>&1; }; then
    postgres_image="$OFFICIAL_POSTGRES"
  else
    log "no registry answered for $OFFICIAL_POSTGRES: using $LOCAL_POSTGRES (images/postgres)"
    postgres_image="$LOCAL_POSTGRES"
  fi
  [ -f "$ENV_FILE" ] && env_set APOD_POSTGRES_IMAGE "$postgres_image"
fi

# A data volume cannot change major version in place: say so rather than fail later.
case "$postgres_image" in
  "$OFFICIAL_POSTGRES" | "$LOCAL_POSTGRES" | postgres:"$PG_MAJOR" | postgres:"$PG_MAJOR"[.-]*) ;;
  postgres:* | apod-postgres:*)
    die "APOD_POSTGRES_IMAGE in ${ENV_FILE#"$REPO"/} is $postgres_image, but the project runs" \
      "PostgreSQL $PG_MAJOR (images/postgres/PG_MAJOR): 'make down-volumes' (deletes the" \
      "stack's data), empty APOD_POSTGRES_IMAGE and start again"
    ;;
esac

# The official Postgres image, pulled beside the builds when it is not here yet.
pulling=""
if [ "$postgres_image" != "$LOCAL_POSTGRES" ]; then
  {
    docker image inspect "$postgres_image" >/dev/null 2>&1 \
      || timeout 300 docker pull -q "$postgres_image" >/dev/null || exit 1
    [ -z "$announce" ] || : >"$announce/postgres"
  } &
  pulling=$!
fi

# The images compose's own services run (docker-compose.yml's `image: apod-<name>:` lines,
# and Postgres when it is built here), then the step images only the scheduler starts.
mapfile -t stack < <(sed -n 's/^ *image: apod-\([a-z0-9-]*\):.*/\1/p' docker-compose.yml)
[ "$postgres_image" = "$LOCAL_POSTGRES" ] && stack+=(postgres)
names=("${stack[@]}")
for step in version transform extract load; do
  [[ " ${stack[*]} " == *" $step "* ]] || names+=("$step")
done
if [ "$build" = 1 ]; then
  log "building ${names[*]} (tag $VERSION)"
  PYTHONPATH="$REPO/tools" "$PYTHON" -m apod_build ${announce:+--announce "$announce"} "${names[@]}"
else
  for name in "${names[@]}"; do
    image="apod-$name:$VERSION"
    [ "$name" = postgres ] && image="$LOCAL_POSTGRES"
    docker image inspect "$image" >/dev/null 2>&1 || die "image $image is missing: make images"
  done
fi
if [ -n "$pulling" ] && ! wait "$pulling"; then
  die "cannot pull $postgres_image; set APOD_POSTGRES_IMAGE=$LOCAL_POSTGRES in ${ENV_FILE#"$REPO"/}"
fi
