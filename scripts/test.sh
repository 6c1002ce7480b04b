#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine:
#   1. installs missing packages (scripts/deps.sh);
#   2. builds and runs every test (ctest: unit, PostgreSQL integration,
#      multi-process end-to-end) in build/;
#   3. the same suite built with AddressSanitizer and UBSan in build-asan/;
#   4. each libFuzzer target for FUZZ_SECONDS (default 20) in build-fuzz/.
# Safe to run twice. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$PWD
fuzz_seconds=${FUZZ_SECONDS:-20}

scripts/deps.sh

step() { printf '\n=== %s\n' "$*"; }

step "build (RelWithDebInfo)"
build_tree -v build
step "tests"
(cd build && ctest --output-on-failure -j1)

step "build (ASan + UBSan)"
build_tree -v build-asan -DCMAKE_BUILD_TYPE=Debug -DCHIPLOC_SANITIZE=ON
step "tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j1)

step "fuzz targets, ${fuzz_seconds}s each"
CC=clang build_tree -v build-fuzz -DCHIPLOC_FUZZ=ON -DCHIPLOC_TESTS=OFF
tests/fuzz/run.sh "$root/build-fuzz" "$fuzz_seconds"

step "all tests passed"
