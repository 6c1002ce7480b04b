#!/usr/bin/env bash
# The land borders (@geo-maps/countries-land-10km, property A3) into
# DEST_DIR/countries-land-10km.geo.json: scripts/fetch-borders.sh DEST_DIR land,
# kept under this name for the callers that want land only.
#
# usage: scripts/fetch-countries.sh DEST_DIR
set -euo pipefail
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DEST_DIR" >&2
  exit 2
fi
exec "$(dirname "$0")/fetch-borders.sh" "$1" land
