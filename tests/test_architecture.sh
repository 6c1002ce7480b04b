#!/usr/bin/env bash
# Self-test of scripts/check-architecture: the real tree passes; copies of it
# with a wrong-way include, a wrong row, a missing row, a module in the wrong
# folder, a file without a row and a layer table that disagrees with
# lib/CMakeLists.txt each fail with exactly the expected lines.
#
# Usage: tests/test_architecture.sh [SOURCE_DIR]   (default: this tree)
set -euo pipefail
src=$(cd "${1:-$(dirname "$0")/..}" && pwd)
check="$src/scripts/check-architecture"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_architecture.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# fresh NAME: a copy of what the checker reads, in $tmp/NAME.
fresh() {
  local d="$tmp/$1"
  mkdir -p "$d/docs" "$d/tests"
  cp -r "$src/lib" "$src/server" "$src/client" "$d/"
  cp -r "$src/tests/sim" "$d/tests/"
  cp "$src/docs/ARCHITECTURE.md" "$d/docs/"
  echo "$d"
}

# expect NAME RC LINE...: the checker on $tmp/NAME exits RC and prints
# exactly these lines on stdout (in any order).
expect() {
  local name=$1 want_rc=$2 rc=0
  shift 2
  "$check" --root "$tmp/$name" >"$tmp/$name.out" 2>"$tmp/$name.err" || rc=$?
  if [ "$rc" != "$want_rc" ]; then
    fail "$name: exit $rc, expected $want_rc"
  fi
  printf '%s\n' "$@" | sort >"$tmp/$name.want"
  sort "$tmp/$name.out" >"$tmp/$name.got"
  if ! diff -u "$tmp/$name.want" "$tmp/$name.got" >"$tmp/$name.diff"; then
    fail "$name: output differs (- expected, + got):"
    sed 's/^/    /' "$tmp/$name.diff"
  fi
  if [ "$want_rc" = 1 ] && ! grep -q "^check-architecture: [0-9]* difference" "$tmp/$name.err"; then
    fail "$name: no count of differences on stderr"
  fi
}

# line FILE TEXT: the number of the first line of FILE that is exactly TEXT.
line() { grep -n -x -F "$2" "$1" | head -n1 | cut -d: -f1; }

# append DIR NAME TEXT: adds ", TEXT" to the last cell ("may call", "may
# use") of the row of ARCHITECTURE.md in DIR whose first cell is `NAME`.
append() {
  local doc="$1/docs/ARCHITECTURE.md"
  sed -i "s/^\(| \`$2\` |.*[^ ]\) |\$/\1, $3 |/" "$doc"
  grep -q "^| \`$2\` |.*, $3 |\$" "$doc" || fail "could not add $3 to the row of $2"
}

# 1. The real tree and an untouched copy agree with their ARCHITECTURE.md.
out=$("$check" --root "$src") || fail "the real tree: exit $?: $out"
case "$out" in
  "check-architecture: docs/ARCHITECTURE.md agrees with the code: "*) ;;
  *) fail "the real tree: unexpected summary: $out" ;;
esac
fresh clean >/dev/null
expect clean 0 "$out"

# 2. A wrong-way include, project and external, into the engine, and a row
#    that lists an edge nothing has.
d=$(fresh wrongway)
n=$(line "$d/lib/engine/cl_geo.c" '#include "cl_err.h"')
sed -i "${n}a #include \"cl_store.h\"\n#include <libpq-fe.h>" "$d/lib/engine/cl_geo.c"
a=$((n + 1)) b=$((n + 2))
append "$d" cl_export '`cl_region`'
expect wrongway 1 \
  "cl_geo: includes cl_store (lib/engine/cl_geo.c:$a) but ARCHITECTURE.md does not list it" \
  "cl_geo: includes libpq (lib/engine/cl_geo.c:$b) but ARCHITECTURE.md does not list it" \
  "cl_geo: includes cl_store (lib/engine/cl_geo.c:$a) of layer db, but layer engine may use only core, wire" \
  "cl_geo: includes libpq (lib/engine/cl_geo.c:$b) but layer engine may use only PROJ, libsodium" \
  "cl_export: ARCHITECTURE.md lists cl_region but nothing includes it"

# 3. Listing the wrong-way edges in the table does not make them right.
cp "$src/docs/ARCHITECTURE.md" "$d/docs/"
append "$d" cl_geo '`cl_store`, libpq'
expect wrongway 1 \
  "cl_geo: includes cl_store (lib/engine/cl_geo.c:$a) of layer db, but layer engine may use only core, wire" \
  "cl_geo: includes libpq (lib/engine/cl_geo.c:$b) but layer engine may use only PROJ, libsodium"

# 4. A module without a row; a file in another layer's folder than its row
#    says; a new program file without a row.
d=$(fresh rows)
sed -i '/^| `cl_tq` | core |/d' "$d/docs/ARCHITECTURE.md"
mv "$d/lib/io/cl_csv.c" "$d/lib/io/cl_csv.h" "$d/lib/engine/"
printf '#include "cl_log.h"\n#include <stdio.h>\n' >"$d/server/newtool.c"
expect rows 1 \
  "cl_tq: in lib/core/ but ARCHITECTURE.md has no row for it" \
  "cl_csv: ARCHITECTURE.md puts it in layer io but it is in lib/engine/" \
  "newtool: in server/ but ARCHITECTURE.md has no row for it"

# 5. A row for a module that does not exist, and an unknown name in a list.
d=$(fresh ghost)
sed -i 's/^| `cl_csv` | io | .*$/&\n| `cl_ghost` | io | nothing | `cl_err`, `cl_nowhere` |/' "$d/docs/ARCHITECTURE.md"
g=$(line "$d/docs/ARCHITECTURE.md" '| `cl_ghost` | io | nothing | `cl_err`, `cl_nowhere` |')
expect ghost 1 \
  "cl_ghost: ARCHITECTURE.md has a row for it (line $g) but there is no cl_ghost.c or cl_ghost.h in lib/*/, server/, client/, tests/sim/"

# 6. The layer table against lib/CMakeLists.txt: a layer that may use one
#    more layer than the build lets it, and an order that is not the layers'.
d=$(fresh layers)
append "$d" io '`db`'
l=$(grep -n '^| `io` | `lib/io/`' "$d/docs/ARCHITECTURE.md" | cut -d: -f1)
expect layers 1 \
  "layer io (docs/ARCHITECTURE.md:$l): ARCHITECTURE.md lets it use db but its LAYERS in lib/CMakeLists.txt do not name it" \
  "layer io (docs/ARCHITECTURE.md:$l): may use db, which is not a layer above it in the table"

# 7. --help and a bad root.
"$check" --help | grep -q "^usage: check-architecture" || fail "--help prints no usage"
rc=0
"$check" --root "$tmp/nowhere" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "a missing root: exit $rc, expected 2"

if [ "$failures" -ne 0 ]; then
  echo "test_architecture: $failures failure(s)"
  exit 1
fi
echo "test_architecture: all checks passed"
