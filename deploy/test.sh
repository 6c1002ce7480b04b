#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine:
#   1. installs missing packages (deploy/deps.sh);
#   2. builds and runs every test (ctest: unit, PostgreSQL integration,
#      multi-process end-to-end) in build/;
#   3. the same suite built with AddressSanitizer and UBSan in build-asan/;
#   4. each libFuzzer target for FUZZ_SECONDS (default 20) in build-fuzz/.
# Safe to run twice. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fuzz_seconds=${FUZZ_SECONDS:-20}
jobs=$(nproc)

deploy/deps.sh

step() { printf '\n=== %s\n' "$*"; }

step "build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
step "tests"
(cd build && ctest --output-on-failure -j1)

step "build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCHIPLOC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
step "tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j1)

step "fuzz targets, ${fuzz_seconds}s each"
CC=clang cmake -S . -B build-fuzz -DCHIPLOC_FUZZ=ON -DCHIPLOC_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$jobs"
tests/fuzz/run.sh "$root/build-fuzz" "$fuzz_seconds"

step "all tests passed"
