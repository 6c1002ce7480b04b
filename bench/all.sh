#!/usr/bin/env bash
# Every benchmark, one command; rewrites bench/RESULTS.md.
#
#   bench/all.sh
#
# Builds once (RelWithDebInfo, in BUILD_DIR, default build), then runs in
# turn, each writing its own sections of bench/RESULTS.md:
#   bench/run.sh       RTT timing fidelity: landmark vs plain ping-pong vs irtt
#   bench/landmark.sh  landmark throughput vs libsodium; 100,000 chips on one landmark
#   bench/ingest.sh    the landmark's batch writer vs a raw COPY
#   bench/verifier.sh  verifier chips/s with 8 landmarks and real country borders
#   bench/replay.sh    real-data replay, engine speed, precision vs landmark count
# and puts the table of targets (every figure next to its baseline from the
# same run, and the ratio) with the machine and the date at the top.
# Benchmarks are not tests: nothing here fails on a missed target. Takes
# about 12 minutes on 2 cores. The variables of each script pass through
# (BENCH_ROUNDS, LM_ROUNDS, SCALE_CHIPS, INGEST_ROWS, VERIFIER_CHIPS, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
root=$PWD
export BUILD_DIR=${BUILD_DIR:-build}
results=bench/RESULTS.md
started=$(date +%s)

scripts/deps.sh
build_tree "$BUILD_DIR"
scripts/fetch-countries.sh "$BUILD_DIR/data" >/dev/null
export SKIP_BUILD=1
mkdir -p "$BUILD_DIR"
export BENCH_SUMMARY=$root/$BUILD_DIR/bench-summary.txt
: >"$BENCH_SUMMARY"

failed=()
for b in run landmark ingest verifier replay; do
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
summary=$root/$BUILD_DIR/bench-summary.md
{
  echo "## Summary (\`bench/all.sh\`)"
  echo
  echo "Regenerate everything with \`bench/all.sh\`; each section below also names its"
  echo "own script. Every figure is a median over repeated runs, next to a baseline"
  echo "measured in the same run on the same machine."
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); total time $((($(date +%s) - started) / 60)) min"
  echo "- machine: $(nproc) cores, $cpu, $mem RAM, Linux $(uname -r)"
  echo "- libraries: libsodium $(ver libsodium23), libuv $(ver libuv1), PostgreSQL $(ver postgresql-15), protobuf-c $(ver libprotobuf-c1)"
  if [ ${#failed[@]} -gt 0 ]; then
    echo "- **failed this time** (sections left as they were): ${failed[*]}"
  fi
  echo
  echo "| benchmark | figure | baseline (same run) | ratio | target | met |"
  echo "|---|---|---|---|---|---|"
  awk -F'|' 'NF >= 6 { printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$BENCH_SUMMARY"
  echo
  echo "A target not met is explained, with its profile, in its section."
} >"$summary"

# The summary goes first, right under the title.
if ! grep -q '^<!-- summary:begin -->$' "$results"; then
  awk 'NR == 1 { print; print ""; print "<!-- summary:begin -->"; print "<!-- summary:end -->"; next } { print }' \
    "$results" >"$results.tmp"
  mv "$results.tmp" "$results"
fi
awk -v c="$summary" '
  $0 == "<!-- summary:begin -->" { print; while ((getline line < c) > 0) print line; skip = 1; next }
  $0 == "<!-- summary:end -->" { skip = 0 }
  !skip { print }' "$results" >"$results.tmp"
mv "$results.tmp" "$results"
cat "$summary"
[ ${#failed[@]} -eq 0 ]
