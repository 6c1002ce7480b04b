#!/bin/sh
# Runs every libFuzzer target of a fuzz build for a fixed time each.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS
#
# BUILD_DIR is a build configured with CC=clang -DCHIPLOC_FUZZ=ON (see
# tests/fuzz/CMakeLists.txt and docs/FUZZING.md). Every fuzz_NAME executable
# in BUILD_DIR/tests/fuzz runs (the corpus generators fuzz_gen_* excepted),
# starting from a copy of tests/fuzz/corpus/NAME/, so new inputs it finds
# stay out of the repository. A crash, timeout or out-of-memory input is
# copied into tests/fuzz/corpus/NAME/ (to keep it as a regression input)
# and the script exits non-zero once all targets have run. A summary line
# per target gives its executions and executions per second.
#
# FUZZ_TIMEOUT (default 10) is the per-input time limit in seconds.
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$1
secs=$2
timeout=${FUZZ_TIMEOUT:-10}
here=$(cd "$(dirname "$0")" && pwd)

targets=$(find "$build/tests/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x \
  ! -name 'fuzz_gen_*' | sort)
if [ -z "$targets" ]; then
  echo "no fuzz targets in $build/tests/fuzz: build with -DCHIPLOC_FUZZ=ON first" >&2
  exit 2
fi

work=$(mktemp -d /tmp/chiploc-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0
summary=""
for t in $targets; do
  name=$(basename "$t")
  short=${name#fuzz_}
  seeds="$here/corpus/$short"
  corpus="$work/$short/corpus"
  artifacts="$work/$short/artifacts"
  mkdir -p "$corpus" "$artifacts" "$seeds"
  cp "$seeds"/* "$corpus"/ 2>/dev/null || true
  echo "== $name for ${secs}s (seeds: $(ls "$seeds" | wc -l))"
  set +e
  "$t" -max_total_time="$secs" -timeout="$timeout" -rss_limit_mb=2048 -max_len=70000 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$work/$short/log" 2>&1
  rc=$?
  set -e
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' \
    "$work/$short/log" || true
  grep -E '^Done [0-9]+ runs' "$work/$short/log" || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$short/log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$short/log" | tail -n 1)
  verdict=ok
  [ $rc -eq 0 ] || verdict="FAILED (exit $rc)"
  summary="$summary$(printf '%-16s %12s execs %8s exec/s  %s' "$name" "${execs:-?}" "${rate:-?}" "$verdict")
"
  if [ $rc -ne 0 ]; then
    status=1
    echo "!! $name failed (exit $rc); last lines of its log:"
    tail -n 40 "$work/$short/log"
    for f in "$artifacts"/*; do
      [ -e "$f" ] || continue
      cp "$f" "$seeds/"
      echo "!! kept $(basename "$f") in $seeds/"
    done
  fi
done
echo "== summary (${secs}s per target)"
printf '%s' "$summary"
exit $status
