#!/usr/bin/env bash
# Walks README.md's "Running it for real" from an installed prefix: installs
# the build with `cmake --install` into a temporary prefix, starts a private
# PostgreSQL (tests/pgtest.sh), and runs every ```sh block of that section,
# in order, in one bash with `set -euo pipefail`, the binaries of the prefix
# first on PATH. Only the values of the first block's variables change: the
# directories go under a temporary directory, $DBHOST is the server's socket
# directory, $DBA is empty (this script's PGUSER is the server's superuser),
# $PORT is a free-looking base port. Then it checks what the walk-through
# must have produced: attestations of both chips, a clean audit, the export,
# and every daemon stopped by SIGTERM with its queue written.
# Usage: test_readme.sh SOURCE_DIR BUILD_DIR. Needs root (the walk-through
# is run as root, and PostgreSQL is started as `postgres`).
set -euo pipefail
src=${1:?usage: test_readme.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: test_readme.sh SOURCE_DIR BUILD_DIR}
if [ "$(id -u)" != 0 ]; then
  echo "test_readme: must run as root (the README's walk-through is run as root)" >&2
  exit 1
fi
tmp=$(mktemp -d /tmp/chiploc-readme.XXXXXX)
chmod 755 "$tmp"
cleanup() {
  # Anything the walk-through left running would hold the prefix: stop it.
  pkill -TERM -f "$tmp/prefix/bin/" 2>/dev/null || true
  sleep 1
  pkill -KILL -f "$tmp/prefix/bin/" 2>/dev/null || true
  "$src/tests/pgtest.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
  [ -n "${TEST_README_KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; echo "FAIL: cmake --install"; exit 1; }
"$src/tests/pgtest.sh" start "$tmp/pg" >/dev/null
pghost=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' "$tmp/pg/conninfo")

# The section's sh blocks, in order.
awk '/^## Running it for real/ { on = 1; next }
     on && /^## / { exit }
     on && /^```sh$/ { blk = 1; next }
     on && blk && /^```$/ { blk = 0; next }
     on && blk { print }' "$src/README.md" >"$tmp/walk.sh"
[ -s "$tmp/walk.sh" ] || { echo "FAIL: no sh block in README.md's \"Running it for real\""; exit 1; }
for v in ETC STATE SRC DBHOST DBA PORT; do
  grep -q "^$v=" "$tmp/walk.sh" || fail "README's first block no longer sets $v"
done
port=$((20000 + RANDOM % 20000))
sed -i -e "s|^ETC=.*|ETC=$tmp/etc|" -e "s|^STATE=.*|STATE=$tmp/state|" \
  -e "s|^SRC=.*|SRC=$src|" -e "s|^DBHOST=.*|DBHOST=$pghost|" -e 's|^DBA=.*|DBA=|' \
  -e "s|^PORT=.*|PORT=$port|" "$tmp/walk.sh"

# The borders: the build's copy, so that the README's fetch finds it current
# instead of downloading it again.
mkdir -p "$tmp/state"
cp "$build/data/borders-maritime-1000m.geo.json" "$tmp/state/"

export PATH="$tmp/prefix/bin:$PATH" PGHOST=$pghost PGPORT=5432 PGUSER=postgres
unset CHIPLOC_DB
if ! timeout 600 bash -euo pipefail "$tmp/walk.sh" >"$tmp/walk.out" 2>&1; then
  cat "$tmp/walk.out"
  for f in "$tmp"/state/*.log; do echo "== $f"; tail -n 20 "$f"; done
  echo "FAIL: the walk-through stopped (output above)"
  exit 1
fi

# What the walk-through must have produced.
q() { psql -X -A -t -q -d chiploc -c "$1"; }
n=$(q "SELECT count(DISTINCT chip_id) FROM attestations")
[ "$n" = 2 ] || fail "attestations for $n chip(s), expected 2"
n=$(q "SELECT count(*) FROM measurements")
[ "$n" -ge 6 ] || fail "$n measurement(s), expected at least 2 chips x 3 landmarks"
n=$(q "SELECT count(DISTINCT (from_landmark_id, to_landmark_id)) FROM landmark_links")
[ "$n" -ge 6 ] || fail "$n directed landmark link(s), expected 6 (the peer agents)"
grep -q 'SN-0001' "$tmp/walk.out" || fail "chip show printed no SN-0001"
grep -Eq '0 problem' "$tmp/walk.out" || fail "the audit did not report 0 problems"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
kinds = [f["properties"]["kind"] for f in d["features"]]
assert kinds.count("landmark") == 3, kinds
assert kinds.count("declared_site") == 2, kinds
' "$tmp/state/world.geojson" || fail "export: not 3 landmarks and 2 sites"
for lm in par-a par-b par-c; do
  grep -q 'msg="shutting down"' "$tmp/state/$lm.log" || fail "landmarkd $lm: no clean shutdown in its log"
done
left=$(pgrep -f "$tmp/prefix/bin/" || true)
[ -z "$left" ] || fail "processes still running after the walk-through: $left"

if [ "$failures" -gt 0 ]; then
  echo "== walk-through output"; cat "$tmp/walk.out"
  for f in "$tmp"/state/*.log; do
    echo "== $f (warnings and errors)"
    grep -E 'level=(warn|error)' "$f" | tail -n 20 || true
  done
  exit 1
fi
echo "test_readme: README walk-through ran from an installed prefix; all checks passed"
