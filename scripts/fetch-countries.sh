#!/usr/bin/env bash
# Fetches the world's country borders used by the region tests and the simulated world:
# the npm package @geo-maps/countries-land-10km (package MIT; map data from
# OpenStreetMap, ODbL; one Feature per country with its ISO 3166-1 alpha-3
# code in the property "A3"), pinned to one version and checked against a
# pinned SHA-256. Writes
# DEST_DIR/countries-land-10km.geo.json. Nothing of the data is committed.
#
# usage: scripts/fetch-countries.sh DEST_DIR
# Idempotent: does nothing when the file is there with the right hash.
set -euo pipefail

PACKAGE=@geo-maps/countries-land-10km
VERSION=0.6.0
FILE=countries-land-10km.geo.json
# sha256 of package/map.geo.json in ${PACKAGE}@${VERSION}.
SHA256=37f03b2366348adc2562780b5f1d7055a9f27196642954c2d7315e9130e774a3

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DEST_DIR" >&2
  exit 2
fi
dest=$1
out="$dest/$FILE"

hash_ok() {
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]
}

if hash_ok "$out"; then
  echo "fetch-countries: $out is current"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-countries: npm is not installed (scripts/deps.sh installs it)" >&2
  exit 1
fi

mkdir -p "$dest"
work=$(mktemp -d "$dest/.fetch-countries.XXXXXX")
trap 'rm -rf "$work"' EXIT

# npm pack downloads the published tarball without installing anything.
if ! (cd "$work" && npm pack --silent "$PACKAGE@$VERSION" >pack.log 2>&1); then
  echo "fetch-countries: npm pack $PACKAGE@$VERSION failed:" >&2
  cat "$work/pack.log" >&2
  exit 1
fi
tarball=""
for t in "$work"/*.tgz; do
  if [ -f "$t" ]; then tarball=$t; break; fi
done
if [ -z "$tarball" ]; then
  echo "fetch-countries: npm pack produced no tarball" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/map.geo.json
if ! hash_ok "$work/package/map.geo.json"; then
  echo "fetch-countries: $PACKAGE@$VERSION map.geo.json has sha256" \
       "$(sha256sum "$work/package/map.geo.json" | cut -d' ' -f1), expected $SHA256" >&2
  exit 1
fi
# Rename within dest so that the file appears complete or not at all.
mv "$work/package/map.geo.json" "$work/$FILE"
mv -f "$work/$FILE" "$out"
echo "fetch-countries: wrote $out ($PACKAGE@$VERSION)"
