#!/usr/bin/env bash
# chipagent builds on an operator host without the treaty body's libraries:
#   1. the agent of the normal build and of a -DCHIPLOC_AGENT_ONLY=ON build
#      link neither libpq, PROJ nor jansson (ldd); libmicrohttpd serves its
#      metrics endpoint;
#   2. the agent-only configure looks none of them up and builds nothing but
#      chipagent and the layers it links (core, wire, conf, http);
#   3. its install holds the agent, its unit, man page and example, and the
#      service users, nothing else;
#   4. an include of a forbidden header in the agent stops its build with the
#      rule's message (the forbidden-header mechanism of lib/layers.cmake).
# Usage: test_agent_build.sh SOURCE_DIR BUILD_DIR. Exits 0 if everything
# holds, else 1 with one line per failed check.
set -euo pipefail
src=${1:?usage: test_agent_build.sh SOURCE_DIR BUILD_DIR}
build=${2:?usage: test_agent_build.sh SOURCE_DIR BUILD_DIR}
tmp=$(mktemp -d /tmp/chiploc-agent-build.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
forbidden='libpq|libproj|libjansson'

no_server_libs() { # AGENT
  local hits
  hits=$(ldd "$1" | grep -E "$forbidden" || true)
  [ -z "$hits" ] || fail "$1 links $(echo "$hits" | awk '{print $1}' | tr '\n' ' ')"
}

no_server_libs "$build/client/chipagent"

# A copy of the sources, so that the experiment below never touches the tree.
mkdir -p "$tmp/src"
(cd "$src" && tar --exclude='./build*' --exclude=./.git -cf - .) | tar -C "$tmp/src" -xf -
cmake -S "$tmp/src" -B "$tmp/b" -DCHIPLOC_AGENT_ONLY=ON >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; echo "FAIL: agent-only configure"; exit 1; }
for lib in libpq proj jansson; do
  ! grep -q "Checking for module '$lib'" "$tmp/configure.log" ||
    fail "the agent-only configure looked for $lib"
done
cmake --build "$tmp/b" -j2 >"$tmp/build.log" 2>&1 ||
  { tail -n 30 "$tmp/build.log"; echo "FAIL: agent-only build"; exit 1; }
[ -x "$tmp/b/client/chipagent" ] || fail "the agent-only build made no chipagent"
"$tmp/b/client/chipagent" --version | grep -q '^chipagent ' || fail "agent-only chipagent --version"
no_server_libs "$tmp/b/client/chipagent"
ldd "$tmp/b/client/chipagent" | grep libmicrohttpd >/dev/null ||
  fail "the agent-only chipagent has no metrics endpoint (libmicrohttpd not linked)"
built=$(find "$tmp/b" -name '*.a' -printf '%f\n' | sort | tr '\n' ' ')
[ "$built" = "libchiploc_conf.a libchiploc_core.a libchiploc_http.a libchiploc_wire.a " ] ||
  fail "the agent-only build made these libraries: $built"
[ ! -e "$tmp/b/server" ] || fail "the agent-only build configured server/"

cmake --install "$tmp/b" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; echo "FAIL: agent-only install"; exit 1; }
# The documents of docs/ are installed beside the example: checked apart.
installed=$(cd "$tmp/prefix" && find . -type f ! -path './share/doc/chiploc/*.md' | sort | tr '\n' ' ')
want="./bin/chipagent ./lib/systemd/system/chiploc-chipagent.service \
./lib/systemd/system/chiploc-chipagent@.service ./lib/sysusers.d/chiploc.conf \
./share/doc/chiploc/examples/chipagent.conf.example ./share/man/man5/chiploc.conf.5 \
./share/man/man8/chipagent.8 "
for d in PROTOCOL CONFIG METRICS OPERATIONS; do
  [ -f "$tmp/prefix/share/doc/chiploc/$d.md" ] || fail "the agent-only install lacks share/doc/chiploc/$d.md"
done
[ "$installed" = "$want" ] || fail "the agent-only install holds: $installed"
grep -q "^ExecStart=$tmp/prefix/bin/chipagent " "$tmp/prefix/lib/systemd/system/chiploc-chipagent.service" ||
  fail "the agent's unit does not start the installed chipagent"

# A wrong-way include in the agent stops the build and names the rule.
sed -i '0,/#include <stdio.h>/s//#include <stdio.h>\n#include <libpq-fe.h>/' "$tmp/src/client/agent.c"
if cmake --build "$tmp/b" >"$tmp/wrong.log" 2>&1; then
  fail "chipagent built with #include <libpq-fe.h>"
elif ! grep -q 'chipagent may not use libpq (libpq-fe.h): see docs/ARCHITECTURE.md' "$tmp/wrong.log"; then
  fail "the forbidden include failed without naming the rule: $(grep -m1 error "$tmp/wrong.log")"
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "chipagent: no server libraries; agent-only build of core, wire, conf, http and its install; wrong-way include refused"
