#!/usr/bin/env bash
# Fetches Leaflet, the map library of the dashboard page (server/dashboard/):
# the npm package leaflet (BSD-2-Clause), pinned to one version, its tarball
# checked against a pinned SHA-256. Writes DEST_DIR/leaflet.js, leaflet.css,
# LICENSE and images/; the page loads them from the dashboard itself (no
# CDN). Nothing of Leaflet is committed.
#
# usage: scripts/fetch-leaflet.sh DEST_DIR
# Idempotent: does nothing when DEST_DIR holds this version already (the
# tarball's hash is recorded in DEST_DIR/.tarball-sha256 once its files are
# in place).
set -euo pipefail

PACKAGE=leaflet
VERSION=1.9.4
# sha256 of the tarball of ${PACKAGE}@${VERSION} as `npm pack` downloads it.
SHA256=84c65a256e50657896f54c33bd857b6849ebe94c817803be818bf32a3dde0b77
FILES=(leaflet.js leaflet.css images/layers.png images/layers-2x.png
       images/marker-icon.png images/marker-icon-2x.png images/marker-shadow.png)

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DEST_DIR" >&2
  exit 2
fi
dest=$1
stamp="$dest/.tarball-sha256"

current() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$SHA256" ] || return 1
  local f
  for f in "${FILES[@]}" LICENSE; do
    [ -f "$dest/$f" ] || return 1
  done
}

if current; then
  echo "fetch-leaflet: $dest is current ($PACKAGE@$VERSION)"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-leaflet: npm is not installed (scripts/deps.sh installs it)" >&2
  exit 1
fi

mkdir -p "$dest"
work=$(mktemp -d "$dest/../.fetch-leaflet.XXXXXX")
trap 'rm -rf "$work"' EXIT

# npm pack downloads the published tarball without installing anything.
if ! (cd "$work" && npm pack --silent "$PACKAGE@$VERSION" >pack.log 2>&1); then
  echo "fetch-leaflet: npm pack $PACKAGE@$VERSION failed:" >&2
  cat "$work/pack.log" >&2
  exit 1
fi
tarball="$work/$PACKAGE-$VERSION.tgz"
if [ ! -f "$tarball" ]; then
  echo "fetch-leaflet: npm pack produced no $PACKAGE-$VERSION.tgz" >&2
  exit 1
fi
got=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
  echo "fetch-leaflet: $PACKAGE@$VERSION tarball has sha256 $got, expected $SHA256" >&2
  exit 1
fi
members=(package/LICENSE)
for f in "${FILES[@]}"; do
  members+=("package/dist/$f")
done
tar -xzf "$tarball" -C "$work" "${members[@]}"
# The stamp goes last: an interrupted copy is not taken for a current one.
rm -f "$stamp"
mkdir -p "$dest/images"
cp "$work/package/LICENSE" "$dest/LICENSE"
for f in "${FILES[@]}"; do
  cp "$work/package/dist/$f" "$dest/$f"
done
echo "$SHA256" >"$stamp"
echo "fetch-leaflet: wrote $dest ($PACKAGE@$VERSION)"
