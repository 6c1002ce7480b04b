#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL for the test run.
#   pgtest.sh start DIR   initdb + start; writes DIR/conninfo
#   pgtest.sh stop DIR    stop and delete the data directory
#   pgtest.sh pause DIR   stop the server (fast shutdown), keep the data directory
#   pgtest.sh resume DIR  start the paused server again on the same data and socket
# PostgreSQL refuses to run as root, so as root the server runs as the
# `postgres` user in a fresh directory under /tmp that it owns. It listens on
# a private Unix socket only (no TCP), with trust authentication: it is a
# test server and lives only as long as the run.
set -euo pipefail
cmd=${1:?usage: pgtest.sh start|stop|pause|resume DIR}
dir=${2:?usage: pgtest.sh start|stop|pause|resume DIR}
pgbin=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$pgbin/pg_ctl" ] || { echo "pgtest: no PostgreSQL server binaries (set PGBIN)" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
  if [ -f "$dir/pgroot" ]; then
    root=$(cat "$dir/pgroot")
    if [ -d "$root/data" ]; then
      as_pg "$pgbin/pg_ctl" -D "$root/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$root"
    rm -f "$dir/pgroot" "$dir/conninfo"
  fi
}

# Starts the server of data directory $root/data, listening in $root.
server_start() {
  as_pg "$pgbin/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 60 \
    -o "-c listen_addresses='' -k $root -p 5432 -c fsync=off -c synchronous_commit=off -c max_connections=200" \
    start >/dev/null || { cat "$root/server.log" >&2; exit 1; }
}

paused_root() {
  [ -f "$dir/pgroot" ] || { echo "pgtest: no server in $dir (run start first)" >&2; exit 1; }
  root=$(cat "$dir/pgroot")
  [ -d "$root/data" ] || { echo "pgtest: no data directory $root/data" >&2; exit 1; }
}

case "$cmd" in
start)
  mkdir -p "$dir"
  stop
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  root=$(mktemp -d /tmp/chiploc-pg.XXXXXX)
  chmod 755 "$root"
  [ "$(id -u)" = 0 ] && chown postgres: "$root"
  echo "$root" >"$dir/pgroot"
  as_pg "$pgbin/initdb" -D "$root/data" -U postgres -A trust --no-sync -E UTF8 >"$root/initdb.log" 2>&1 ||
    { cat "$root/initdb.log" >&2; exit 1; }
  server_start
  echo "host=$root port=5432 user=postgres dbname=postgres" >"$dir/conninfo"
  echo "pgtest: PostgreSQL running, socket in $root"
  ;;
stop)
  stop
  echo "pgtest: stopped"
  ;;
pause)
  # Both are safe to repeat: pausing a stopped server or resuming a running
  # one does nothing.
  paused_root
  if as_pg "$pgbin/pg_ctl" -D "$root/data" status >/dev/null 2>&1; then
    as_pg "$pgbin/pg_ctl" -D "$root/data" -m fast -w -t 60 stop >/dev/null
  fi
  echo "pgtest: paused"
  ;;
resume)
  paused_root
  if ! as_pg "$pgbin/pg_ctl" -D "$root/data" status >/dev/null 2>&1; then
    server_start
  fi
  echo "pgtest: resumed"
  ;;
*)
  echo "usage: pgtest.sh start|stop|pause|resume DIR" >&2
  exit 2
  ;;
esac
