#!/usr/bin/env bash
# Make sure every image the compose deployment runs exists:
#  - the step images and the test server (apod-<name>:<version>), built when missing
#    (`make images` rebuilds them all);
#  - apod-airflow:<version> (images/airflow), rebuilt from cache so it follows the repo;
#  - Postgres: the official postgres:16-bookworm when it is present or can be pulled,
#    else apod-postgres:15 built from Debian's packages (images/postgres). The choice
#    is recorded in .env (APOD_POSTGRES_IMAGE) because the data volume is tied to the
#    server's major version.
set -euo pipefail
# shellcheck source=scripts/compose-lib.sh
. "$(dirname "$0")/compose-lib.sh"
cd "$REPO"

VERSION="${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)}"
export VERSION
BASE_IMAGE="${BASE_IMAGE:-$(scripts/ensure-base-image.sh)}"
export BASE_IMAGE

missing=()
for name in extract transform load version testserver; do
  docker image inspect "apod-$name:$VERSION" >/dev/null 2>&1 || missing+=("$name")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "building missing images: ${missing[*]}"
  scripts/build-images.sh "${missing[@]}"
fi
scripts/build-images.sh airflow

postgres_image="${APOD_POSTGRES_IMAGE:-$(env_value APOD_POSTGRES_IMAGE)}"
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

case "$postgres_image" in
  apod-postgres:*)
    PG_MAJOR="${postgres_image#apod-postgres:}" scripts/build-images.sh postgres
    ;;
  *)
    docker image inspect "$postgres_image" >/dev/null 2>&1 \
      || timeout 300 docker pull -q "$postgres_image" >/dev/null \
      || die "cannot pull $postgres_image; set APOD_POSTGRES_IMAGE=$LOCAL_POSTGRES in .env"
    ;;
esac
