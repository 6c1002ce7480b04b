#!/usr/bin/env bash
# Replay of real RTTs through the location engine, and the engine's speed.
#
# 1. Converts the WonderProxy data (servers.csv, pings.csv; see its README)
#    into the CSVs of docs/LOCATE.md: positions.csv (name,lat,lon; a server's
#    name is NAME#ID) and rtts.csv (a,b,rtt_ms from the day's minimum RTT;
#    rows naming a server without a position are dropped and counted).
# 2. Runs `chiploc landmarks check` over all servers at c and records whom
#    it blames or suspects.
# 3. `bench/replay locate`: every other server as the chip, the rest as
#    landmarks (all, nearest 10, nearest 5 by RTT; blamed and suspected
#    servers excluded),
#    at c and 2/3 c: published sites inside F, radius, INCONSISTENT count,
#    engine time per chip (CLOCK_MONOTONIC around cl_geo_locate).
# 3b. `bench/replay sweep`: precision against the number of landmarks at c,
#    for k = 3, 5, 8, 10, 15, 20, 30, 50 and all, each chip's k nearest by
#    RTT and k drawn at random (fixed seed): median and p90 radius and the
#    share of chips whose published site is SITE_CONSISTENT.
# 4. `bench/replay speed`: Frankfurt with its 10 nearest landmarks and
#    Germany's polygon from the real borders (BORDERS: maritime, the default
#    allowed regions, or land; scripts/fetch-borders.sh): the engine's median
#    time over SPEED_RUNS runs against a brute-force sampler (1 km grid over
#    the smallest cap's bounding box, exact geodesic distances).
#
# Writes three sections of bench/RESULTS.md, between <!-- replay:begin/end -->,
# <!-- precision:begin/end --> and <!-- speed:begin/end --> (markers appended
# if missing); nothing else in that file is touched. REPLAY_SECTIONS (default
# "replay precision speed") names the ones to regenerate.
#
# Environment: BUILD_DIR (default build), SKIP_BUILD=1 (use the binaries in
# BUILD_DIR as they are), SWEEP_SEED (1), CHIPLOC_SHARED_DATA (default
# ../shared/data beside the repository), BORDERS (maritime, the default:
# $BUILD_DIR/data/borders-maritime-1000m.geo.json; or land:
# countries-land-10km.geo.json; fetched with scripts/fetch-borders.sh when
# missing), SPEED_RUNS (200), BRUTE_RUNS (5), SPEED_CHIP (Frankfurt#29),
# SPEED_CODE (DEU).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
root=$PWD
build=${BUILD_DIR:-build}
shared=${CHIPLOC_SHARED_DATA:-$root/../shared/data}
data=$shared/wonderproxy-2020-07-19
borders=${BORDERS:-maritime}
case $borders in
  maritime) countries=$build/data/borders-maritime-1000m.geo.json code_property=isoA3 ;;
  land) countries=$build/data/countries-land-10km.geo.json code_property=A3 ;;
  *) echo "replay: BORDERS must be maritime or land, not '$borders'" >&2; exit 2 ;;
esac
speed_runs=${SPEED_RUNS:-200}
brute_runs=${BRUTE_RUNS:-5}
speed_chip=${SPEED_CHIP:-Frankfurt#29}
speed_code=${SPEED_CODE:-DEU}
sweep_seed=${SWEEP_SEED:-1}
sections=" ${REPLAY_SECTIONS:-replay precision speed} "
want() { case $sections in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
results=bench/RESULTS.md

for f in servers.csv pings.csv; do
  [ -f "$data/$f" ] || { echo "replay: $data/$f is missing" >&2; exit 1; }
done

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  build_tree "$build" chiploc-cli replay
fi
chiploc=$build/server/chiploc
replay=$build/bench/replay
work=$build/replay
rm -rf "$work"
mkdir -p "$work"

# 1. Conversion. Both files are plain comma-separated without quoting; refuse
# anything else rather than mis-split it.
if grep -q '"' "$data/servers.csv" "$data/pings.csv"; then
  echo "replay: quoted fields in the WonderProxy files; the awk conversion does not handle them" >&2
  exit 1
fi
awk -F, 'NR == 1 {
    for (i = 1; i <= NF; i++) col[$i] = i
    if (!("id" in col) || !("name" in col) || !("latitude" in col) || !("longitude" in col)) {
      print "replay: servers.csv lacks id, name, latitude or longitude" > "/dev/stderr"; exit 1 }
    print "name,lat,lon"; next }
  { print $col["name"] "#" $col["id"] "," $col["latitude"] "," $col["longitude"] }' \
  "$data/servers.csv" >"$work/positions.csv"
awk -F, -v dropped="$work/dropped" '
  NR == FNR { if (FNR == 1) { for (i = 1; i <= NF; i++) sc[$i] = i; next }
              name[$sc["id"]] = $sc["name"] "#" $sc["id"]; next }
  FNR == 1 { for (i = 1; i <= NF; i++) pc[$i] = i
             if (!("source" in pc) || !("destination" in pc) || !("min" in pc)) {
               print "replay: pings.csv lacks source, destination or min" > "/dev/stderr"; exit 1 }
             print "a,b,rtt_ms"; next }
  { s = $pc["source"]; d = $pc["destination"]; ms = $pc["min"]
    if (!(s in name) || !(d in name)) { drop++; next }
    if (s == d || ms + 0 <= 0) next
    print name[s] "," name[d] "," ms }
  END { print drop + 0 > dropped }' \
  "$data/servers.csv" "$data/pings.csv" >"$work/rtts.csv"
nservers=$(($(wc -l <"$work/positions.csv") - 1))
nrtts=$(($(wc -l <"$work/rtts.csv") - 1))
ndropped=$(cat "$work/dropped")

# 2. Cross-check (exit 3 means violations were found).
set +e
"$chiploc" landmarks check --positions "$work/positions.csv" --rtts "$work/rtts.csv" \
  >"$work/check.txt"
check_rc=$?
set -e
if [ "$check_rc" -ne 0 ] && [ "$check_rc" -ne 3 ]; then
  echo "replay: chiploc landmarks check failed ($check_rc)" >&2
  exit 1
fi
# Excluded from the replay: the servers the cross-check blames, and those it
# names as suspects (a group of which some are misplaced, the links cannot
# say which): neither kind is a trustworthy landmark or chip.
blame=$(sed -n 's/^blame: //p' "$work/check.txt" | sed 's/ (not proven minimal)//; s/^none$//')
suspects=$(sed -n 's/^ambiguous: [0-9]* of {\(.*\)}; the links cannot say which$/\1/p' \
  "$work/check.txt" | paste -sd, -)
exclude=$(printf '%s\n%s\n' "$blame" "$suspects" | sed '/^$/d' | paste -sd, - | tr -d ' ')
summary=$(grep -E '^(violations|no violations)' "$work/check.txt" || true)

# 3. Replay.
if want replay; then
  "$replay" locate --positions "$work/positions.csv" --rtts "$work/rtts.csv" \
    --exclude "$exclude" >"$work/locate.md"
fi

# 3b. Precision against the number of landmarks.
if want precision; then
  "$replay" sweep --positions "$work/positions.csv" --rtts "$work/rtts.csv" \
    --exclude "$exclude" --seed "$sweep_seed" >"$work/sweep.md"
fi

# 4. Speed.
if want speed; then
scripts/fetch-borders.sh "$build/data" "$borders" >/dev/null
"$replay" speed --positions "$work/positions.csv" --rtts "$work/rtts.csv" \
  --exclude "$exclude" --countries "$countries" --code-property "$code_property" \
  --chip "$speed_chip" --code "$speed_code" \
  --runs "$speed_runs" --brute-runs "$brute_runs" >"$work/speed.txt"
# kv LINE KEY: value of KEY=... on the line starting with "LINE:".
kv() { grep "^$1:" "$work/speed.txt" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
e_med=$(kv engine median_ms); e_p90=$(kv engine p90_ms)
e_cons=$(kv engine consistency); e_site=$(kv engine site); e_region=$(kv engine region)
e_radius=$(kv engine radius_km); e_cells=$(kv engine cells)
b_med=$(kv brute median_ms); b_feas=$(kv brute samples_feasible); b_in=$(kv brute in_region)
b_site=$(kv brute site)
b_region=$(sed -n 's/^brute: .* region=//p' "$work/speed.txt")
smallest=$(sed -n 's/.*smallest_bound_km=\([^ ]*\).*/\1/p' "$work/speed.txt")
vertices=$(sed -n 's/.*vertices=\([^ ]*\).*/\1/p' "$work/speed.txt")
ratio=$(sed -n 's/^ratio: //p' "$work/speed.txt")
fi

date=$(date -u +%Y-%m-%dT%H:%MZ)
cpu=$(cpu_model)
machine="$(nproc) cores, ${cpu:-unknown CPU}"


if want replay; then
cat >"$work/replay-section.md" <<MD
## Real-data replay (\`bench/replay.sh\`)

Regenerate with \`bench/replay.sh\` (environment: BUILD_DIR, CHIPLOC_SHARED_DATA).

- date: $date
- machine: $machine
- data: WonderProxy 2020-07-19 ($nservers servers with published coordinates;
  $nrtts directed minimum RTTs; $ndropped rows naming servers without coordinates dropped)

### Landmark cross-check at c

\`chiploc landmarks check --positions positions.csv --rtts rtts.csv\`: $summary.
Blamed (in every smallest set touching every violation): **${blame:-none}**;
suspected (some of a group are misplaced, the links cannot say which):
**${suspects:-none}**.

<details><summary>violating pairs</summary>

\`\`\`
$(cat "$work/check.txt")
\`\`\`
</details>

### Every server as the chip

Each server neither blamed nor suspected is the chip in turn with its published
coordinates as the declared site; the other such servers are its landmarks. Radius is
the engine's bound on F's radius around its centre. Engine time is one
\`cl_geo_locate\` call (site verdict included) per chip.

$(cat "$work/locate.md")

At c every verdict is sound: a published site outside F would prove the
site wrong (or an RTT impossible). At 2/3 c the caps are estimates: smaller
regions, and the odd site excluded or chip inconsistent where a path is
faster than 2/3 c.
MD
splice_section "$results" replay "$work/replay-section.md"
fi

if want precision; then
# sweep_radius K CHOICE: median radius (km) of that row of the sweep table.
sweep_radius() { awk -F' *[|] *' -v k="$1" -v c="$2" '$2 == k && $3 == c { print $8 }' "$work/sweep.md"; }
n3=$(sweep_radius 3 nearest); n10=$(sweep_radius 10 nearest); nall=$(sweep_radius all all)
r3=$(sweep_radius 3 random); r10=$(sweep_radius 10 random); r50=$(sweep_radius 50 random)
precision_note="Median radius with the k nearest landmarks: $n3 km at k = 3, $n10 km at
k = 10, $nall km with all of them; with k at random: $r3 km at k = 3, $r10 km
at k = 10, $r50 km at k = 50."
if awk -v a="$n3" -v b="$nall" 'BEGIN { exit !(a <= 1.1 * b) }'; then
  precision_note="$precision_note The three nearest landmarks already give
(within 10 %) the precision of the whole set: the smallest caps decide F,
and farther landmarks add almost nothing. Landmarks at random give regions
$(awk -v a="$r10" -v b="$n10" 'BEGIN { printf "%.1f", a / b }') × wider at k = 10: where landmarks stand relative to the
chip matters far more than how many there are."
fi
cat >"$work/precision-section.md" <<MD
## Precision against the number of landmarks (\`bench/replay.sh\`)

Regenerate with \`bench/replay.sh\` (environment: BUILD_DIR,
CHIPLOC_SHARED_DATA, SWEEP_SEED; \`REPLAY_SECTIONS=precision\` for this
section alone).

- date: $date
- machine: $machine
- data: WonderProxy 2020-07-19, as in the replay section; the servers blamed or
  suspected by the cross-check (**$exclude**) are neither chips nor landmarks

Each server is the chip in turn, its published coordinates the declared
site, with k landmarks at c (sound bounds): its k nearest by RTT, or k drawn
uniformly at random from the servers with an RTT to it (seed $sweep_seed, one
draw per chip). SITE_CONSISTENT counts chips whose result is CONSISTENT and
whose published site lies in every bound, as a share of all chips; radii
are over the CONSISTENT chips. Fewer landmarks than k are used where a chip
has fewer RTTs (last column).

$(cat "$work/sweep.md")

$precision_note
MD
splice_section "$results" precision "$work/precision-section.md"
fi

if want speed; then
cat >"$work/speed-section.md" <<MD
## Location engine speed (\`bench/replay.sh\`)

Regenerate with \`bench/replay.sh\` (environment: BUILD_DIR, BORDERS,
SPEED_RUNS, BRUTE_RUNS, SPEED_CHIP, SPEED_CODE).

- date: $date
- machine: $machine
- case: chip $speed_chip, its 10 nearest landmarks by RTT at c (smallest bound
  $smallest km), declared site = published coordinates, allowed region
  $speed_code from $(basename "$countries" .geo.json) ($vertices vertices)

| | median (ms) | verdicts |
|---|---|---|
| engine (\`cl_geo_locate\`, $speed_runs runs; p90 $e_p90 ms) | $e_med | $e_cons, $e_site, $e_region; radius $e_radius km, $e_cells cells |
| brute force ($brute_runs runs) | $b_med | $b_site, $b_region; $b_feas feasible samples, $b_in in $speed_code |

Ratio brute force / engine: **$ratio×**. Target: engine median ≤ 1 ms.

The brute-force sampler walks a ~1 km grid over the bounding box of the
smallest cap, tests each point against every cap with the exact WGS84
geodesic distance (smallest caps first, stopping at the first that excludes
it) and each feasible point against the polygon with \`cl_region_contains\`.
Its verdicts are only as good as its grid; the engine's are proven.
MD
splice_section "$results" speed "$work/speed-section.md"
if [ -n "${BENCH_SUMMARY:-}" ]; then
  met=$(awk -v e="$e_med" 'BEGIN { print (e <= 1.0) ? "yes" : "no" }')
  echo "engine speed ($speed_chip, 10 landmarks, $speed_code borders)|$e_med ms per chip|brute-force 1 km sampler: $b_med ms|$ratio x faster|<= 1 ms|$met" >>"$BENCH_SUMMARY"
fi
fi

for sec in replay precision speed; do
  if want "$sec"; then cat "$work/$sec-section.md"; fi
done
