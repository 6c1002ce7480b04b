# shellcheck shell=bash
# Shared by the bench/*.sh scripts (sourced, never run): how a script
# rewrites its own sections of bench/RESULTS.md, the machine line and the
# median; scripts/lib.sh, sourced from here, brings the helpers the
# benchmarks share with scripts/world.sh (build_tree, stop_all and the
# landmarkd and chipagent config writers).
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
