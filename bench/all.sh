#!/usr/bin/env bash
# Every benchmark, one command; rewrites bench/RESULTS.md.
#
#   bench/all.sh
#   BENCH_ONLY="run landmark" bench/all.sh          (some of them)
#   V1_BUILD_DIR=/tmp/v1/build bench/all.sh         (protocol 1 beside, see bench/lib.sh)
#
# Builds the benchmarks' programs once (RelWithDebInfo, in BUILD_DIR, default
# build), then runs in turn, each writing its own sections of
# bench/RESULTS.md:
#   bench/run.sh       RTT timing fidelity: landmark vs plain ping-pong vs irtt
#   bench/landmark.sh  landmark throughput vs a plain request/response server;
#                      slow chip; 100,000 chips on one landmark; mass reconnect
#   bench/ingest.sh    the landmark's batch writer vs a raw COPY
#   bench/verifier.sh  verifier chips/s with 8 landmarks and real (maritime) country borders
#   bench/scaleout.sh  verifier chips/s against the number of --pool processes (1 to 4)
#   bench/replay.sh    real-data replay, engine speed, precision vs landmark count
#   bench/gaps.sh      gaps and overlaps between neighbouring countries' borders
# and keeps the table of targets at the top (every figure next to its
# baseline from the same run, and the ratio) with the machine and the date:
# the rows of the benchmarks run this time are replaced, the others kept with
# the date they were measured, in a fixed order. Benchmarks are not tests: nothing here fails
# on a missed target. On 2 cores run.sh takes about 3 minutes and
# landmark.sh about 15 (20 with V1_BUILD_DIR). The variables of each script
# pass through (BENCH_ROUNDS, LM_ROUNDS, LM_SECTIONS, SCALE_CHIPS,
# RECONNECT_CHIPS, INGEST_ROWS, VERIFIER_CHIPS, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
root=$PWD
export BUILD_DIR=${BUILD_DIR:-build}
results=bench/RESULTS.md
only=${BENCH_ONLY:-run landmark ingest verifier scaleout replay gaps}
started=$(date +%s)
date_now=$(date -u +%Y-%m-%dT%H:%MZ)

scripts/deps.sh
# The programs of the benchmarks chosen, and only those: the test
# executables are not needed.
targets=(chiploc-cli)
for b in $only; do
  case $b in
    run) targets+=(landmarkd chipagent pingpong) ;;
    landmark) targets+=(landmarkd fleetsim reqresp sigrate) ;;
    ingest) targets+=(ingest) ;;
    verifier) targets+=(vfixture sigrate) ;;
    scaleout) targets+=(vfixture) ;;
    replay) targets+=(replay) ;;
    gaps) targets+=(gaps) ;;
    *) echo "bench/all.sh: unknown benchmark '$b' in BENCH_ONLY" >&2; exit 2 ;;
  esac
done
build_tree "$BUILD_DIR" "${targets[@]}"
case " $only " in
  *" replay "* | *" verifier "* | *" scaleout "*)
    scripts/fetch-borders.sh "$BUILD_DIR/data" maritime >/dev/null
    scripts/fetch-borders.sh "$BUILD_DIR/data" land >/dev/null
    ;;
esac
export SKIP_BUILD=1
export BENCH_SUMMARY=$root/$BUILD_DIR/bench-summary.txt
: >"$BENCH_SUMMARY"

failed=()
for b in $only; do
  echo "== bench/$b.sh"
  t0=$(date +%s)
  if ! "bench/$b.sh"; then
    failed+=("$b")
    echo "bench/all.sh: bench/$b.sh failed; its sections were not rewritten" >&2
  fi
  echo "== bench/$b.sh took $(($(date +%s) - t0)) s"
done

cpu=$(cpu_model)
mem=$(awk '$1 == "MemTotal:" { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }

# The rows: this run's (from BENCH_SUMMARY, dated now), then the previous
# table's rows whose benchmark did not run again (with their own date). A
# row's key is its benchmark name up to the first ':' or '('.
rows=$root/$BUILD_DIR/bench-rows.txt
{
  awk -F'|' -v d="$date_now" 'NF >= 6 { print $1 "|" $2 "|" $3 "|" $4 "|" $5 "|" $6 "|" d }' "$BENCH_SUMMARY"
  awk '$0 == "<!-- summary:begin -->" { on = 1; next } $0 == "<!-- summary:end -->" { on = 0 }
    on && /^\| / && !/^\| benchmark \|/' "$results" |
    sed 's/^| //; s/ |$//; s/ | /|/g'
} | awk -F'|' '
  function key(s) { sub(/[:(].*/, "", s); sub(/ +$/, "", s); return s }
  BEGIN { n = split("rtt-min|rtt-median|landmark throughput|slow chip|scale|mass reconnect|ingest|verifier|engine speed", o, "|")
    for (i = 1; i <= n; i++) rank[o[i]] = i }
  !seen[key($1)]++ { r = (key($1) in rank) ? rank[key($1)] : 99; printf "%02d|%s\n", r, $0 }' |
  sort -t'|' -k1,1n -s | cut -d'|' -f2- >"$rows"

summary=$root/$BUILD_DIR/bench-summary.md
{
  echo "## Summary (\`bench/all.sh\`)"
  echo
  echo "Regenerate everything with \`bench/all.sh\` (\`BENCH_ONLY=\"run landmark\"\` for some;"
  echo "\`V1_BUILD_DIR\` to measure protocol 1 beside protocol 2, see \`bench/lib.sh\`); each"
  echo "section below also names its own script. Every figure is a median over"
  echo "repeated runs, next to a baseline measured in the same run on the same"
  echo "machine; the last column dates each row."
  echo
  echo "- last run: $date_now ($only); total time $((($(date +%s) - started) / 60)) min"
  echo "- machine: $(nproc) cores, $cpu, $mem RAM, Linux $(uname -r)"
  echo "- libraries: libsodium $(ver libsodium23), libuv $(ver libuv1), PostgreSQL $(ver postgresql-15), protobuf-c $(ver libprotobuf-c1)"
  if [ ${#failed[@]} -gt 0 ]; then
    echo "- **failed this time** (sections and rows left as they were): ${failed[*]}"
  fi
  echo
  echo "| benchmark | figure | baseline (same run) | ratio | target | met | measured |"
  echo "|---|---|---|---|---|---|---|"
  awk -F'|' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, ($7 == "" ? "?" : $7) }' "$rows"
  echo
  echo "A target not met is explained, with its profile, in its section."
} >"$summary"

# The summary goes first, right under the title.
if ! grep -q '^<!-- summary:begin -->$' "$results"; then
  awk 'NR == 1 { print; print ""; print "<!-- summary:begin -->"; print "<!-- summary:end -->"; next } { print }' \
    "$results" >"$results.tmp"
  mv "$results.tmp" "$results"
fi
splice_section "$results" summary "$summary"
cat "$summary"
[ ${#failed[@]} -eq 0 ]
