#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite (or the bench), on 127.0.0.1 only; its
# cluster lives in this checkout (.cache/test-postgres, or APOD_TEST_PG_DIR).
#
#   ensure-test-postgres.sh             start it, or reuse it when it runs; print the path
#                                       of an env file to source (PGHOST, PGPORT, PGUSER,
#                                       PGPASSFILE: the admin password lives in a 0600
#                                       passfile, never on a command line)
#   ensure-test-postgres.sh --run CMD   the same, then CMD with the env file sourced and
#                                       APOD_TEST_PG_ENV set; the server is stopped after
#                                       CMD when this call started it (one already running
#                                       is left running); exits with CMD's code
#   ensure-test-postgres.sh --stop      stop this cluster's server, if it runs
#
# The port is APOD_TEST_PG_PORT when set and not empty, else the first free one from
# 55432 on: two checkouts' suites (or the suite and the bench) never meet on one port.
set -euo pipefail

REQUESTED_PORT="${APOD_TEST_PG_PORT:-}"
ROOT="${APOD_TEST_PG_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.cache/test-postgres}"
DATA="$ROOT/data"
ENV_FILE="$ROOT/env"
PASSFILE="$ROOT/pgpass"

log() { printf 'ensure-test-postgres: %s\n' "$*" >&2; }

mode="${1:-}"
case "$mode" in
  --stop) [ -s "$DATA/PG_VERSION" ] || exit 0 ;;  # no cluster: nothing runs
  --run) shift; [ $# -gt 0 ] || { log "usage: ensure-test-postgres.sh --run CMD [ARGS...]"; exit 2; } ;;
  "") ;;
  *) log "usage: ensure-test-postgres.sh [--run CMD [ARGS...] | --stop]"; exit 2 ;;
esac

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

running() { as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

stop_server() {
  if running; then
    log "stopping PostgreSQL ($DATA)"
    as_owner "$BIN/pg_ctl" -D "$DATA" -w -t 60 stop -m fast >/dev/null
  fi
}

if [ "$mode" = --stop ]; then
  stop_server
  exit 0
fi

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

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local port
  for port in $(seq 55432 55631); do
    answers "$port" || { echo "$port"; return; }
  done
  log "no free port in 55432-55631; set APOD_TEST_PG_PORT"; exit 1
}

start_server() {
  local port=$1 opts
  log "starting PostgreSQL on 127.0.0.1:$port"
  opts="-c listen_addresses=127.0.0.1 -p $port -k /tmp -c max_connections=200"
  # Tests exercise crash safety, not durability: fsync off keeps them quick. Benchmarks
  # set APOD_TEST_PG_DURABLE=1 to measure a server with the default durability.
  [ "${APOD_TEST_PG_DURABLE:-0}" = "1" ] || opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$ROOT/log/server.log" -w -t 60 start -o "$opts" >/dev/null
}

started=0
if running; then
  # Reused as it is: the port is the one it listens on (line 4 of postmaster.pid).
  PORT=$(sed -n 4p "$DATA/postmaster.pid")
  if [ -n "$REQUESTED_PORT" ] && [ "$REQUESTED_PORT" != "$PORT" ]; then
    log "this checkout's server already runs on $PORT (APOD_TEST_PG_PORT=$REQUESTED_PORT): using $PORT"
  fi
elif [ -n "$REQUESTED_PORT" ]; then
  PORT=$REQUESTED_PORT
  # Another server on the port (another checkout's test Postgres, say) would make
  # pg_ctl fail with only "could not start server": say what is in the way.
  if answers "$PORT"; then
    log "127.0.0.1:$PORT is taken by another process; stop it, or unset APOD_TEST_PG_PORT for a free port"
    exit 1
  fi
  start_server "$PORT" \
    || { tail -n 5 "$ROOT/log/server.log" >&2; log "PostgreSQL did not start (log: $ROOT/log/server.log)"; exit 1; }
  started=1
else
  # A free port can be taken by another checkout starting at the same moment: try another.
  for attempt in 1 2 3; do
    PORT=$(free_port) || exit 1
    if start_server "$PORT"; then started=1; break; fi
    if [ "$attempt" -lt 3 ]; then log "could not start on $PORT; trying another port"; fi
  done
  [ "$started" = 1 ] \
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
umask 022

if [ "$mode" != "--run" ]; then
  echo "$ENV_FILE"
  exit 0
fi
# shellcheck disable=SC1090
. "$ENV_FILE"
export APOD_TEST_PG_ENV="$ENV_FILE"
if [ "$started" = 1 ]; then
  trap stop_server EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi
rc=0
"$@" || rc=$?
exit "$rc"
