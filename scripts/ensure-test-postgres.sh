#!/usr/bin/env bash
# Start (or reuse) a throwaway PostgreSQL server for the test suite, on 127.0.0.1 only.
#
# Prints the path of an env file to source; it sets PGHOST, PGPORT, PGUSER and
# PGPASSFILE (the admin password lives in a 0600 passfile, never on a command line).
set -euo pipefail

PORT="${APOD_TEST_PG_PORT:-55432}"
ROOT="${APOD_TEST_PG_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.cache/test-postgres}"
DATA="$ROOT/data"
ENV_FILE="$ROOT/env"
PASSFILE="$ROOT/pgpass"

log() { printf 'ensure-test-postgres: %s\n' "$*" >&2; }

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  done
  if [ "$(id -u)" -eq 0 ]; then
    log "installing Debian's postgresql"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    for dir in /usr/lib/postgresql/*/bin; do
      [ -x "$dir/initdb" ] && { echo "$dir"; return; }
    done
  fi
  log "no PostgreSQL server binaries found; install postgresql"; exit 1
}

BIN=$(pg_bin)
# initdb refuses to run as root: run the server as the 'postgres' system user then.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

mkdir -p "$ROOT" "$ROOT/log"
chmod 0755 "$ROOT"
[ "$(id -u)" -eq 0 ] && { id postgres >/dev/null 2>&1 || useradd --system --home-dir "$ROOT" postgres; chown postgres "$ROOT/log"; }
if [ ! -s "$DATA/PG_VERSION" ]; then
  log "creating a cluster in $DATA"
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  umask 077
  printf '%s\n' "$password" >"$ROOT/admin-password"
  [ "$(id -u)" -eq 0 ] && chown postgres "$ROOT/admin-password"
  mkdir -p "$DATA"
  [ "$(id -u)" -eq 0 ] && chown postgres "$DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$ROOT/admin-password" -E UTF8 --locale=C.UTF-8 >"$ROOT/initdb.log" 2>&1
  umask 022
fi

if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  # Another server on the port (another checkout's test Postgres, say) would make
  # pg_ctl fail with only "could not start server": say what is in the way.
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    log "127.0.0.1:$PORT is taken by another process; stop it or set APOD_TEST_PG_PORT"
    exit 1
  fi
  log "starting PostgreSQL on 127.0.0.1:$PORT"
  opts="-c listen_addresses=127.0.0.1 -p $PORT -k /tmp -c max_connections=200"
  # Tests exercise crash safety, not durability: fsync off keeps them quick. Benchmarks
  # set APOD_TEST_PG_DURABLE=1 to measure a server with the default durability.
  [ "${APOD_TEST_PG_DURABLE:-0}" = "1" ] || opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$ROOT/log/server.log" -w -t 60 start -o "$opts" >/dev/null \
    || { tail -n 5 "$ROOT/log/server.log" >&2; log "PostgreSQL did not start (log: $ROOT/log/server.log)"; exit 1; }
fi

umask 077
printf '127.0.0.1:%s:*:postgres:%s\n' "$PORT" "$(cat "$ROOT/admin-password")" >"$PASSFILE"
cat >"$ENV_FILE" <<ENV
export PGHOST=127.0.0.1
export PGPORT=$PORT
export PGUSER=postgres
export PGDATABASE=postgres
export PGPASSFILE=$PASSFILE
ENV
echo "$ENV_FILE"
