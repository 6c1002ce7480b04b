#!/bin/sh
# Runs every libFuzzer target of a fuzz build for a fixed time each.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS
#
# BUILD_DIR is a build configured with CC=clang -DCHIPLOC_FUZZ=ON (see
# tests/fuzz/CMakeLists.txt). Target fuzz_NAME starts from a copy of
# tests/fuzz/corpus/NAME/, so new inputs it finds stay out of the
# repository. A crash is copied into tests/fuzz/corpus/NAME/ (to keep it as
# a regression input) and the script exits non-zero.
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$1
secs=$2
here=$(cd "$(dirname "$0")" && pwd)

targets=$(find "$build/tests/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x \
  ! -name 'fuzz_gen_corpus' | sort)
if [ -z "$targets" ]; then
  echo "no fuzz targets in $build/tests/fuzz: build with -DCHIPLOC_FUZZ=ON first" >&2
  exit 2
fi

work=$(mktemp -d /tmp/chiploc-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0
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
  "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=70000 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$work/$short/log" 2>&1
  rc=$?
  set -e
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' \
    "$work/$short/log" || true
  grep -E '^Done [0-9]+ runs' "$work/$short/log" || true
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
exit $status
