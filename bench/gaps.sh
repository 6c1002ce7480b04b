#!/usr/bin/env bash
# Gaps and overlaps between neighbouring countries in the border sets
# (docs/REGIONS.md): bench/gaps (bench/gaps.c) samples boxes across land
# borders on a grid of GAPS_STEP metres with the engine's own point test
# and reports, per set and box, the area in no country (gap), its widest
# point, and the area in two or more (overlap).
#
# Fetches the four sets with scripts/fetch-borders.sh (land: 10 km land
# borders; maritime-10000m, maritime (1000 m, the default allowed regions)
# and maritime-100m: land and territorial sea) into BUILD_DIR/data, runs
# bench/gaps over them, and writes the `gaps` section of bench/RESULTS.md
# (markers appended if missing); nothing else in that file is touched.
#
# Environment: BUILD_DIR (default build), SKIP_BUILD=1 (use the binary in
# BUILD_DIR as it is), GAPS_STEP (grid step in metres, default 10).
# About a minute on 2 cores at the default step.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
build=${BUILD_DIR:-build}
step=${GAPS_STEP:-10}
results=bench/RESULTS.md

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  build_tree "$build" gaps
fi
gaps=$build/bench/gaps
[ -x "$gaps" ] || { echo "gaps: $gaps missing; build $build first" >&2; exit 1; }
for s in land maritime-10000m maritime maritime-100m; do
  scripts/fetch-borders.sh "$build/data" "$s" >/dev/null
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
d=$build/data
cmd=("$gaps" --step "$step"
  "land-10km=$d/countries-land-10km.geo.json:A3"
  "maritime-10000m=$d/borders-maritime-10000m.geo.json:isoA3"
  "maritime-1000m=$d/borders-maritime-1000m.geo.json:isoA3"
  "maritime-100m=$d/borders-maritime-100m.geo.json:isoA3")
t0=$(date +%s)
"${cmd[@]}" >"$work/table.md" 2>"$work/warnings.txt"
took=$(($(date +%s) - t0))
cat "$work/warnings.txt" >&2
nwarn=$(wc -l <"$work/warnings.txt")
if [ "$nwarn" -eq 0 ]; then
  warn_note="none was"
else
  warn_note="$nwarn this run, listed below the table"
fi

cat >"$work/section.md" <<MD
## Gaps between neighbouring countries (\`bench/gaps.sh\`)

Regenerate with \`bench/gaps.sh\` (environment: BUILD_DIR, GAPS_STEP). What the
figures mean for a treaty's choice of borders is in docs/REGIONS.md.

- date: $(date -u +%Y-%m-%dT%H:%MZ)
- machine: $(nproc) cores, $(cpu_model); $took s
- command: \`bench/gaps --step $step land-10km=countries-land-10km.geo.json:A3
  maritime-10000m=borders-maritime-10000m.geo.json:isoA3
  maritime-1000m=borders-maritime-1000m.geo.json:isoA3
  maritime-100m=borders-maritime-100m.geo.json:isoA3\` (files from
  \`scripts/fetch-borders.sh\`)

Each box lies across a land border or an inland lake, far from the sea:
every point of it is in reality territory of one of the countries named. A grid of samples
$step m apart covers it (the degree steps fixed at the box's centre
latitude); each sample is tested with \`cl_region_contains\` against every
region of the set whose bounding box meets the box. **Gap**: the area of
samples in no region, **overlap**: in two or more, each sample weighted by
its cell's area on the WGS84 ellipsoid. The bound after each area is the
area of the boundary cells (samples with a neighbour of the other kind):
the estimate's error is within it, short of slivers thinner than the step.
**Widest gap**: the largest distance from a gap sample to the nearest
sample in a region (Euclidean distance transform of the grid), within one
step. † marks a gap that reaches the box's edge: it goes on along the
border outside the box, and the area is that of the box's share. "found"
lists the regions met in the box; a region not named for the box would be
reported on stderr ($warn_note).

$(cat "$work/table.md")
MD
if [ "$nwarn" -gt 0 ]; then
  { echo; echo '```'; cat "$work/warnings.txt"; echo '```'; } >>"$work/section.md"
fi
splice_section "$results" gaps "$work/section.md"
cat "$work/section.md"
