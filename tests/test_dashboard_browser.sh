#!/usr/bin/env bash
# The dashboard in a real browser (tests/dashboard_browser.mjs says what is
# checked): a database of the run's PostgreSQL seeded by tests/dashboard_seed
# (chips of every verdict, a smuggled chip with its alerts, serials and
# operator names that look like HTML), the real `chiploc dashboard` serving
# the build's page and Leaflet as a login that is a member of
# chiploc_dashboard only, and Debian's Chromium driven headless by
# playwright-core, installed from npm into BUILD_DIR/node_modules at the
# version scripts/lib.sh pins (playwright_core); Playwright's own browser
# download is never used.
# Screenshots go to BUILD_DIR/dashboard-screenshots/ (the paths are printed).
# Usage: test_dashboard_browser.sh SOURCE_DIR BUILD_DIR (through ctest: it
# needs CHIPLOC_TEST_PG_DIR of the pg fixture and the dashboard_assets fixture).
set -euo pipefail
src=${1:?usage: test_dashboard_browser.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: test_dashboard_browser.sh SOURCE_DIR BUILD_DIR}
pgdir=${CHIPLOC_TEST_PG_DIR:?CHIPLOC_TEST_PG_DIR is not set: run this test through ctest}
. "$src/scripts/lib.sh"
chromium=${CHROMIUM:-/usr/bin/chromium}

[ -x "$chromium" ] || { echo "FAIL: no $chromium (scripts/deps.sh installs Debian's chromium)"; exit 1; }
command -v node >/dev/null 2>&1 || { echo "FAIL: no node (scripts/deps.sh installs npm)"; exit 1; }
if [ ! -f "$build/dashboard/index.html" ] || [ ! -f "$build/dashboard/leaflet/leaflet.js" ]; then
  echo "FAIL: no page in $build/dashboard (the dashboard_assets fixture builds it)"
  exit 1
fi

playwright_core "$build" || { echo "FAIL: npm install playwright-core@$PLAYWRIGHT_CORE"; exit 1; }

tmp=$(mktemp -d /tmp/chiploc-dashboard.XXXXXX)
dash_pid=""
cleanup() {
  if [ -n "$dash_pid" ]; then
    kill -TERM "$dash_pid" 2>/dev/null || true
    wait "$dash_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

base=$(cat "$pgdir/conninfo")
db=dashboard_browser
psql "$base" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
  -c "CREATE DATABASE $db" >/dev/null
conninfo="$base dbname=$db"
"$build/tests/dashboard_seed" --db "$conninfo" >"$tmp/seed.log" 2>&1 ||
  { cat "$tmp/seed.log"; echo "FAIL: tests/dashboard_seed"; exit 1; }
# The dashboard's login may read the views of chiploc_dashboard and nothing else.
psql "$conninfo" -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dash_browser') THEN
    CREATE ROLE dash_browser LOGIN;
  END IF;
END $$;
GRANT chiploc_dashboard TO dash_browser;
SQL

# A port free a moment ago; a clash shows as a dashboard that exits at once.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$build/server/chiploc" dashboard --db "$conninfo user=dash_browser" --listen "127.0.0.1:$port" \
  --assets "$build/dashboard" --refresh-s 2 --log-level info \
  --borders-attribution 'Borders <img src=x onerror=alert(1)> & "OSM"' >"$tmp/dashboard.log" 2>&1 &
dash_pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fsS "$url/healthz" >/dev/null 2>&1 && break
  if ! kill -0 "$dash_pid" 2>/dev/null; then
    cat "$tmp/dashboard.log"
    echo "FAIL: chiploc dashboard exited"
    exit 1
  fi
  sleep 0.1
done
curl -fsS "$url/healthz" >/dev/null || { cat "$tmp/dashboard.log"; echo "FAIL: no /healthz at $url"; exit 1; }

rc=0
CHROMIUM="$chromium" node "$src/tests/dashboard_browser.mjs" "$url" "$build/dashboard-screenshots" \
  "$build/node_modules" || rc=$?
if [ "$rc" != 0 ]; then
  echo "--- chiploc dashboard log"
  cat "$tmp/dashboard.log"
fi
exit "$rc"
