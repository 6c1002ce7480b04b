#!/usr/bin/env bash
# Installs a build into a temporary prefix with `cmake --install` and checks
# what lands there (docs/OPERATIONS.md, "Install"):
#   - the three binaries, executable, answering --version, and no test tool
#     and no file of scripts/ (the development scripts and their data);
#   - every schema/*.sql, the three example files, the sysusers.d file;
#   - the man pages, each rendering without a warning (groff -ww) when groff
#     is installed;
#   - the three systemd units with their users, ExecStart= in the prefix and
#     every hardening directive, and `systemd-analyze verify` clean when
#     systemd-analyze is installed;
#   - a second install with DESTDIR and --prefix /usr, whose units start
#     /usr/bin/....
# Usage: test_install.sh BUILD_DIR. Exits 0 if everything holds, else 1 with
# one line per failed check.
set -euo pipefail
build=${1:?usage: test_install.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/chiploc-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; echo "FAIL: cmake --install"; exit 1; }

# Binaries.
for b in landmarkd chipagent chiploc; do
  f=$prefix/bin/$b
  if [ ! -x "$f" ]; then
    fail "$f missing or not executable"
    continue
  fi
  out=$("$f" --version 2>&1) || fail "$b --version exited $?"
  [[ $out == "$b "[0-9]* ]] || fail "$b --version printed '$out'"
done
for t in fleetsim delayproxy protocol_example; do
  if find "$prefix" -name "$t" | grep -q .; then fail "test tool $t was installed"; fi
done
# The development scripts of scripts/ and their data stay in the source tree.
while IFS= read -r s; do
  if find "$prefix" -name "$(basename "$s")" | grep -q .; then
    fail "development file ${s#"$src"/} was installed"
  fi
done < <(find "$src/scripts" -type f)

# Schema, examples, sysusers.d.
n=0
for s in "$src"/schema/*.sql; do
  n=$((n + 1))
  cmp -s "$s" "$prefix/share/chiploc/schema/$(basename "$s")" ||
    fail "schema $(basename "$s") missing or different"
done
[ "$n" -gt 0 ] || fail "no schema/*.sql in the source tree"
for e in landmarkd.conf.example chipagent.conf.example verifier.env.example; do
  cmp -s "$src/deploy/$e" "$prefix/share/doc/chiploc/examples/$e" ||
    fail "example $e missing or different"
done
sysusers=$prefix/lib/sysusers.d/chiploc.conf
if [ -f "$sysusers" ]; then
  for u in chiploc-landmark chiploc-agent chiploc-verifier; do
    grep -Eq "^u[[:space:]]+${u}[[:space:]]" "$sysusers" || fail "sysusers.d: no user $u"
  done
  if command -v systemd-sysusers >/dev/null 2>&1; then
    mkdir -p "$tmp/sysroot/etc"
    systemd-sysusers --root="$tmp/sysroot" "$sysusers" >"$tmp/sysusers.log" 2>&1 ||
      { cat "$tmp/sysusers.log"; fail "systemd-sysusers rejected $sysusers"; }
    for u in chiploc-landmark chiploc-agent chiploc-verifier; do
      grep -q "^$u:" "$tmp/sysroot/etc/passwd" || fail "systemd-sysusers did not create $u"
    done
  fi
else
  fail "$sysusers missing"
fi

# Man pages.
for m in man1/chiploc.1 man5/chiploc.conf.5 man8/landmarkd.8 man8/chipagent.8; do
  f=$prefix/share/man/$m
  if [ ! -f "$f" ]; then
    fail "man page $m missing"
    continue
  fi
  if command -v groff >/dev/null 2>&1; then
    warn=$(groff -ww -z -man "$f" 2>&1) || fail "groff failed on $m"
    [ -z "$warn" ] || fail "groff warnings in $m: $warn"
  fi
done
command -v groff >/dev/null 2>&1 || echo "note: groff not installed, man pages not rendered"

# Units.
hardening=(
  "Type=simple" "Restart=on-failure" "KillSignal=SIGTERM" "NoNewPrivileges=yes"
  "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "PrivateDevices=yes"
  "ProtectKernelTunables=yes" "ProtectKernelModules=yes" "ProtectKernelLogs=yes"
  "ProtectControlGroups=yes" "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"
  "RestrictNamespaces=yes" "LockPersonality=yes" "MemoryDenyWriteExecute=yes"
  "SystemCallArchitectures=native" "SystemCallFilter=@system-service"
  "CapabilityBoundingSet=" "ReadOnlyPaths=/etc/chiploc")
declare -A user=([landmarkd]=chiploc-landmark [chipagent]=chiploc-agent
                 [verifier]=chiploc-verifier)
declare -A exec=(
  [landmarkd]="ExecStart=$prefix/bin/landmarkd --config /etc/chiploc/landmarkd.conf"
  [chipagent]="ExecStart=$prefix/bin/chipagent --config /etc/chiploc/chipagent.conf"
  [verifier]="ExecStart=$prefix/bin/chiploc verify --follow ")
unitdir=$prefix/lib/systemd/system
for s in landmarkd chipagent verifier; do
  f=$unitdir/chiploc-$s.service
  if [ ! -f "$f" ]; then
    fail "unit chiploc-$s.service missing"
    continue
  fi
  for d in "${hardening[@]}" "User=${user[$s]}" "Group=${user[$s]}"; do
    grep -qxF "$d" "$f" || fail "chiploc-$s.service: no line '$d'"
  done
  grep -qF "${exec[$s]}" "$f" || fail "chiploc-$s.service: no line starting '${exec[$s]}'"
  grep -q "^TimeoutStopSec=" "$f" || fail "chiploc-$s.service: no TimeoutStopSec="
  if grep -q "^DynamicUser=yes" "$f"; then fail "chiploc-$s.service: DynamicUser=yes"; fi
done
grep -qxF "StateDirectory=chiploc/landmark" "$unitdir/chiploc-landmarkd.service" ||
  fail "chiploc-landmarkd.service: no StateDirectory=chiploc/landmark"
grep -qxF "EnvironmentFile=/etc/chiploc/verifier.env" "$unitdir/chiploc-verifier.service" ||
  fail "chiploc-verifier.service: no EnvironmentFile=/etc/chiploc/verifier.env"
if command -v systemd-analyze >/dev/null 2>&1; then
  if ! (cd "$unitdir" && systemd-analyze verify --man=no ./chiploc-landmarkd.service \
          ./chiploc-chipagent.service ./chiploc-verifier.service) >"$tmp/verify.log" 2>&1; then
    cat "$tmp/verify.log"
    fail "systemd-analyze verify"
  fi
else
  echo "note: systemd-analyze not installed, units not verified"
fi

# DESTDIR and --prefix /usr: the units start /usr/bin/...
DESTDIR=$tmp/dest cmake --install "$build" --prefix /usr >"$tmp/install2.log" 2>&1 ||
  { cat "$tmp/install2.log"; fail "cmake --install with DESTDIR"; }
grep -qxF "ExecStart=/usr/bin/landmarkd --config /etc/chiploc/landmarkd.conf" \
  "$tmp/dest/usr/lib/systemd/system/chiploc-landmarkd.service" ||
  fail "DESTDIR install: landmarkd unit does not start /usr/bin/landmarkd"
[ -x "$tmp/dest/usr/bin/chiploc" ] || fail "DESTDIR install: no /usr/bin/chiploc"

if [ "$failures" -gt 0 ]; then
  echo "test_install: $failures check(s) failed"
  exit 1
fi
echo "test_install: all checks passed ($prefix)"
