#!/usr/bin/env bash
# Installs the Debian 12 packages chiploc needs to build, test, benchmark (irtt, curl) and run its
# simulated world (scripts/world.sh), skipping those already installed. chromium is the browser
# of the dashboard's browser test (tests/test_dashboard_browser.sh), which drives it with
# playwright-core from npm: nothing downloads a browser of its own. postgresql-15-partman puts
# pg_partman (schema 0007) into the server's extension directory, where the tests' PostgreSQL
# (tests/pgtest.sh) and a production one both find it. Needs root (or sudo) only when
# something is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libuv1-dev libsodium-dev libprotobuf-c-dev protobuf-c-compiler libpq-dev libinih-dev
      libproj-dev libjansson-dev libmicrohttpd-dev
      check libsubunit-dev groff-base
      postgresql-15 postgresql-client-15 postgresql-15-partman
      clang libclang-rt-14-dev
      irtt curl python3 python3-cryptography python3-jwt chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches the country borders, Leaflet and playwright-core, and its node runs the browser
# test; any npm on PATH will do (Debian's brings Node.js 18, which playwright-core supports).
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
