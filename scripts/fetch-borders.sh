#!/usr/bin/env bash
# Fetches the world's country borders that serve as allowed regions, from
# npm, pinned to one version and checked against a pinned SHA-256 of the
# file inside the package (docs/REGIONS.md says which set a treaty should
# use and why). Nothing of the data is committed.
#
# usage: scripts/fetch-borders.sh DEST_DIR [SET]
#
#   SET              package (version)                         writes DEST_DIR/...               code property
#   maritime         @osm_borders/maritime_1000m (1.1.0)       borders-maritime-1000m.geo.json   isoA3
#   land             @geo-maps/countries-land-10km (0.6.0)     countries-land-10km.geo.json      A3
#   maritime-10000m  @osm_borders/maritime_10000m (1.1.0)      borders-maritime-10000m.geo.json  isoA3
#   maritime-100m    @osm_borders/maritime_100m (1.1.0)        borders-maritime-100m.geo.json    isoA3
#
# maritime (the default) is each country's land and territorial sea,
# simplified to 1000 m; land is political land borders simplified to 10 km.
# The other two are the same maritime data at 10 km and 100 m, for the
# border-gap measurement (bench/gaps.sh). Map data of every set is from
# OpenStreetMap under the ODbL ("© OpenStreetMap contributors"); the
# osm_borders packages are ODbL, countries-land-10km's code is MIT.
#
# Idempotent: does nothing when the file is there with the right hash.
# Prints one line: the file and the --code-property to import it with.
# Exit status: 0 done, 1 fetch or hash failure, 2 usage.
set -euo pipefail

usage() {
  echo "usage: $0 DEST_DIR [maritime|land|maritime-10000m|maritime-100m] (default maritime)" >&2
  exit 2
}
if [ $# -lt 1 ] || [ $# -gt 2 ] || [ -z "$1" ]; then usage; fi
dest=$1
set_name=${2:-maritime}

# Per set: package, version, file inside the package, file written, its
# sha256, and the property that holds the ISO 3166-1 alpha-3 code.
case "$set_name" in
maritime)
  PACKAGE=@osm_borders/maritime_1000m VERSION=1.1.0 INNER=package/borders.geo.json
  FILE=borders-maritime-1000m.geo.json CODE=isoA3
  SHA256=e575dde5f940d0d0002bc3009e0d2a79bb90c2ac4f6a09b373f706a4cdbcfa63
  ;;
land)
  PACKAGE=@geo-maps/countries-land-10km VERSION=0.6.0 INNER=package/map.geo.json
  FILE=countries-land-10km.geo.json CODE=A3
  SHA256=37f03b2366348adc2562780b5f1d7055a9f27196642954c2d7315e9130e774a3
  ;;
maritime-10000m)
  PACKAGE=@osm_borders/maritime_10000m VERSION=1.1.0 INNER=package/borders.geo.json
  FILE=borders-maritime-10000m.geo.json CODE=isoA3
  SHA256=29b6b3d8d40477f7aad7982293d7dda676121ce5c60dec7a8970dfbb1863b5c9
  ;;
maritime-100m)
  PACKAGE=@osm_borders/maritime_100m VERSION=1.1.0 INNER=package/borders.geo.json
  FILE=borders-maritime-100m.geo.json CODE=isoA3
  SHA256=d08f70916ea4e6c968d372d3da7508078483a3f9d5529d644264634cc63036e1
  ;;
*)
  echo "fetch-borders: unknown set \"$set_name\"" >&2
  usage
  ;;
esac
out="$dest/$FILE"

hash_ok() {
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]
}

if hash_ok "$out"; then
  echo "fetch-borders: $out is current (--code-property $CODE)"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-borders: npm is not installed (scripts/deps.sh installs it)" >&2
  exit 1
fi

mkdir -p "$dest"
work=$(mktemp -d "$dest/.fetch-borders.XXXXXX")
trap 'rm -rf "$work"' EXIT

# npm pack downloads the published tarball without installing anything.
if ! (cd "$work" && npm pack --silent "$PACKAGE@$VERSION" >pack.log 2>&1); then
  echo "fetch-borders: npm pack $PACKAGE@$VERSION failed:" >&2
  cat "$work/pack.log" >&2
  exit 1
fi
tarball=""
for t in "$work"/*.tgz; do
  if [ -f "$t" ]; then tarball=$t; break; fi
done
if [ -z "$tarball" ]; then
  echo "fetch-borders: npm pack $PACKAGE@$VERSION produced no tarball" >&2
  exit 1
fi
if ! tar -xzf "$tarball" -C "$work" "$INNER" 2>"$work/tar.log"; then
  echo "fetch-borders: $PACKAGE@$VERSION has no $INNER:" >&2
  cat "$work/tar.log" >&2
  exit 1
fi
if ! hash_ok "$work/$INNER"; then
  echo "fetch-borders: $PACKAGE@$VERSION $INNER has sha256" \
       "$(sha256sum "$work/$INNER" | cut -d' ' -f1), expected $SHA256" >&2
  exit 1
fi
# Rename within dest so that the file appears complete or not at all.
mv "$work/$INNER" "$work/$FILE"
mv -f "$work/$FILE" "$out"
echo "fetch-borders: wrote $out ($PACKAGE@$VERSION, --code-property $CODE)"
