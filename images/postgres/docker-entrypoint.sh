#!/usr/bin/env bash
# Entrypoint of apod-postgres: the parts of the official postgres image's contract the
# project relies on, for Debian's PostgreSQL package.
#
#   POSTGRES_PASSWORD / POSTGRES_PASSWORD_FILE  superuser password (required on first start)
#   POSTGRES_USER (postgres)  POSTGRES_DB ($POSTGRES_USER)  PGDATA (/var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/*.sh, *.sql, *.sql.gz  run once, in name order, when PGDATA
#   is empty; executable *.sh are run, others sourced; SQL runs as POSTGRES_USER in POSTGRES_DB.
# The first start listens on the Unix socket only while it initialises, so a TCP
# `pg_isready -h 127.0.0.1` succeeds only once the server is really ready.
set -Eeuo pipefail

log() { printf '%s docker-entrypoint: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

# VAR or VAR_FILE (not both), as the official image does.
file_env() {
  local var="$1" file_var="${1}_FILE" default="${2:-}"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    log "both $var and $file_var are set; use one"
    exit 1
  fi
  local value="$default"
  if [ -n "${!var:-}" ]; then
    value="${!var}"
  elif [ -n "${!file_var:-}" ]; then
    value="$(<"${!file_var}")"
  fi
  export "$var"="$value"
  unset "$file_var"
}

psql_init() {
  psql -v ON_ERROR_STOP=1 --no-password --no-psqlrc --username "$POSTGRES_USER" "$@"
}

initialise() {
  file_env POSTGRES_PASSWORD
  if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    log "the database is uninitialised and no superuser password is set:"
    log "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE"
    exit 1
  fi
  local host_auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

  log "initialising $PGDATA"
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of options
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host="$host_auth" \
    -D "$PGDATA" ${POSTGRES_INITDB_ARGS:-} >/dev/null
  printf '\nhost all all all %s\n' "$host_auth" >>"$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

  # Unix socket only while init scripts run: nobody can reach a half-built server.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w -t 60 start >/dev/null

  if [ "$POSTGRES_DB" != postgres ]; then
    psql_init --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi

  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        log "running $f"
        # shellcheck disable=SC1090  # the scripts are the deployment's
        if [ -x "$f" ]; then "$f"; else . "$f"; fi
        ;;
      *.sql)
        log "running $f"
        psql_init --dbname "$POSTGRES_DB" -f "$f"
        ;;
      *.sql.gz)
        log "running $f"
        gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB"
        ;;
      *) log "ignoring $f" ;;
    esac
  done

  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  unset POSTGRES_PASSWORD
  log "initialisation complete"
}

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

if [ "$1" = postgres ]; then
  # The image runs as postgres (uid 999); started as root anyway (`--user 0`), it prepares
  # the directories and drops to postgres, as the official image does.
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
  fi

  # A fresh named volume takes the image's /var/lib/postgresql/data (postgres, 0700); a
  # bind mount or another volume must be writable by this uid.
  mkdir -p "$PGDATA" 2>/dev/null || :
  chmod 0700 "$PGDATA" 2>/dev/null || :
  if [ ! -w "$PGDATA" ]; then
    log "$PGDATA is not writable by uid $(id -u); give the volume to that uid (the image's"
    log "postgres user is 999:999) or start the container with --user 0 once"
    exit 1
  fi

  export POSTGRES_USER="${POSTGRES_USER:-postgres}"
  export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initialise
  elif [ "$(cat "$PGDATA/PG_VERSION")" != "$PG_MAJOR" ]; then
    log "$PGDATA holds a PostgreSQL $(cat "$PGDATA/PG_VERSION") cluster; this image runs $PG_MAJOR"
    exit 1
  fi
  unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE
fi

exec "$@"
