# shellcheck shell=bash
# Shared by the bench/*.sh scripts (sourced, never run): how a script
# rewrites its own sections of bench/RESULTS.md, the machine line and the
# median; scripts/lib.sh, sourced from here, brings the helpers the
# benchmarks share with scripts/world.sh (build_tree, stop_all and the
# landmarkd and chipagent config writers).
#
# Protocol 1 beside protocol 2: the scripts that compare with protocol 1
# (run.sh, landmark.sh) run that build's binaries in the same rounds when
# V1_BUILD_DIR names a build of commit e0fb910, the last before protocol 2:
#
#   git worktree add /tmp/v1 e0fb910
#   cmake -S /tmp/v1 -B /tmp/v1/build -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build /tmp/v1/build -j2 --target landmarkd chipagent chiploc-cli fleetsim pingpong
#   V1_BUILD_DIR=/tmp/v1/build bench/all.sh
#   git worktree remove --force /tmp/v1
#
# Without it they print the protocol 1 figures recorded earlier, dated.
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# splice_section FILE NAME CONTENT_FILE: replaces the text between the lines
# `<!-- NAME:begin -->` and `<!-- NAME:end -->` of FILE with CONTENT_FILE
# (appending both markers if missing), leaving every other section alone.
splice_section() {
  local file=$1 name=$2 content=$3
  [ -f "$file" ] || printf '# Benchmark results\n\nEach section names the command that regenerates it.\n' >"$file"
  grep -q "^<!-- $name:begin -->\$" "$file" ||
    printf '\n<!-- %s:begin -->\n<!-- %s:end -->\n' "$name" "$name" >>"$file"
  awk -v b="<!-- $name:begin -->" -v e="<!-- $name:end -->" -v c="$content" '
    $0 == b { print; while ((getline line < c) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$file" >"$file.tmp"
  mv "$file.tmp" "$file"
}

# cpu_model: the CPU model name of this machine.
cpu_model() {
  local m
  m=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  echo "${m:-unknown CPU}"
}

# median [FORMAT]: the median of the numbers on stdin, one per line (the
# mean of the middle two for an even count), printed with the printf FORMAT
# (default %.6g) and a newline; "nan" when there are none.
median() {
  sort -g | awk -v f="${1:-%.6g}" '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf f "\n", m }'
}

# v1_build_dir BINARY...: the absolute path of V1_BUILD_DIR (empty when it is
# unset) after checking that each BINARY (a path inside it) is there; exits
# when one is missing.
v1_build_dir() {
  local d=${V1_BUILD_DIR:-} b
  [ -n "$d" ] || return 0
  d=$(cd "$d" && pwd) || exit 1
  for b in "$@"; do
    if [ ! -x "$d/$b" ]; then
      echo "V1_BUILD_DIR=$d has no $b (build it: see bench/lib.sh)" >&2
      exit 1
    fi
  done
  echo "$d"
}
