#!/usr/bin/env bash
# Installs a build into a temporary prefix with `cmake --install` and checks
# what lands there (docs/OPERATIONS.md, "Install"):
#   - the three binaries, executable, answering --version, and no test tool
#     and no file of scripts/ (the development scripts and their data);
#   - every schema/*.sql, the three example files, the sysusers.d file;
#   - the man pages, each rendering without a warning (groff -ww) when groff
#     is installed;
#   - the four systemd units (landmarkd, chipagent, verifier, dashboard) with
#     their users, ExecStart= in the prefix and every hardening directive;
#     the templates chiploc-landmarkd@ and
#     chiploc-chipagent@ and the maintenance and audit services with the
#     same hardening block, and their daily timers; `systemd-analyze verify`
#     clean for all of them (templates as instances) when systemd-analyze is
#     installed;
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
for t in fleetsim delayproxy protocol_example dashboard_seed; do
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
  for u in chiploc-landmark chiploc-agent chiploc-verifier chiploc-maint chiploc-audit \
           chiploc-dashboard; do
    grep -Eq "^u[[:space:]]+${u}[[:space:]]" "$sysusers" || fail "sysusers.d: no user $u"
  done
  if command -v systemd-sysusers >/dev/null 2>&1; then
    mkdir -p "$tmp/sysroot/etc"
    systemd-sysusers --root="$tmp/sysroot" "$sysusers" >"$tmp/sysusers.log" 2>&1 ||
      { cat "$tmp/sysusers.log"; fail "systemd-sysusers rejected $sysusers"; }
    for u in chiploc-landmark chiploc-agent chiploc-verifier chiploc-maint chiploc-audit \
             chiploc-dashboard; do
      grep -q "^$u:" "$tmp/sysroot/etc/passwd" || fail "systemd-sysusers did not create $u"
    done
  fi
else
  fail "$sysusers missing"
fi

# The documents of docs/, and no installed pointer to a file only the source
# tree has: man pages, examples, units and every --help name man pages or
# share/doc/chiploc, never docs/.
for d in "$src"/docs/*.md; do
  cmp -s "$d" "$prefix/share/doc/chiploc/$(basename "$d")" ||
    fail "document $(basename "$d") missing or different under share/doc/chiploc"
done
while IFS= read -r f; do
  fail "$f points into the source tree: $(grep -m1 -o 'docs/[A-Za-z_]*\.md' "$f")"
done < <(grep -rl 'docs/[A-Za-z_]*\.md' "$prefix/share/man" "$prefix/share/doc/chiploc/examples" \
           "$prefix/lib/systemd" 2>/dev/null || true)
for cmd in "landmarkd --help" "chipagent --help" "chiploc --help" "chiploc locate --help" \
           "chiploc region import --help" "chiploc verify --help" "chiploc audit --help" \
           "chiploc status --help" "chiploc db --help" "chiploc chip --help" "chiploc landmark --help" \
           "chiploc dashboard --help"; do
  # shellcheck disable=SC2086
  out=$("$prefix"/bin/$cmd 2>&1) || true
  if grep -q 'docs/[A-Za-z_]*\.md' <<<"$out"; then fail "$cmd names a file of docs/"; fi
done

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
                 [verifier]=chiploc-verifier [dashboard]=chiploc-dashboard)
declare -A exec=(
  [landmarkd]="ExecStart=$prefix/bin/landmarkd --config /etc/chiploc/landmarkd.conf"
  [chipagent]="ExecStart=$prefix/bin/chipagent --config /etc/chiploc/chipagent.conf"
  [verifier]="ExecStart=$prefix/bin/chiploc verify --follow "
  [dashboard]="ExecStart=$prefix/bin/chiploc dashboard --listen ")
unitdir=$prefix/lib/systemd/system
for s in landmarkd chipagent verifier dashboard; do
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
grep -qxF "EnvironmentFile=/etc/chiploc/dashboard.env" "$unitdir/chiploc-dashboard.service" ||
  fail "chiploc-dashboard.service: no EnvironmentFile=/etc/chiploc/dashboard.env"
# Loopback unless the operator says otherwise.
grep -qxF "Environment=CHIPLOC_DASHBOARD_LISTEN=127.0.0.1:8080" \
  "$unitdir/chiploc-dashboard.service" || fail "chiploc-dashboard.service: not on loopback"
# The templates and the timers' services: the hardening block of the
# landmark's unit, line for line, so that they cannot drift apart.
block() { sed -n '/^NoNewPrivileges=yes/,/^SystemCallErrorNumber=EPERM/p' "$1"; }
declare -A tuser=([landmarkd@]=chiploc-landmark [chipagent@]=chiploc-agent
                  [maintenance]=chiploc-maint [audit]=chiploc-audit)
declare -A texec=(
  [landmarkd@]="ExecStart=$prefix/bin/landmarkd --config /etc/chiploc/landmarkd-%i.conf"
  [chipagent@]="ExecStart=$prefix/bin/chipagent --config /etc/chiploc/chipagent-%i.conf"
  [maintenance]="ExecStart=$prefix/bin/chiploc db maintain \$CHIPLOC_MAINTAIN_ARGS"
  [audit]="ExecStart=$prefix/bin/chiploc audit \$CHIPLOC_AUDIT_ARGS")
for s in landmarkd@ chipagent@ maintenance audit; do
  f=$unitdir/chiploc-$s.service
  if [ ! -f "$f" ]; then
    fail "unit chiploc-$s.service missing"
    continue
  fi
  [ -n "$(block "$f")" ] && [ "$(block "$f")" = "$(block "$unitdir/chiploc-landmarkd.service")" ] ||
    fail "chiploc-$s.service: hardening differs from chiploc-landmarkd.service"
  for d in "User=${tuser[$s]}" "Group=${tuser[$s]}" "${texec[$s]}"; do
    grep -qxF "$d" "$f" || fail "chiploc-$s.service: no line '$d'"
  done
done
grep -qxF "StateDirectory=chiploc/landmark-%i" "$unitdir/chiploc-landmarkd@.service" ||
  fail "chiploc-landmarkd@.service: no StateDirectory=chiploc/landmark-%i"
for s in maintenance audit; do
  grep -qxF "Type=oneshot" "$unitdir/chiploc-$s.service" || fail "chiploc-$s.service: not oneshot"
  f=$unitdir/chiploc-$s.timer
  if [ ! -f "$f" ]; then
    fail "chiploc-$s.timer missing"
    continue
  fi
  for d in "OnCalendar=daily" "Persistent=true" "RandomizedDelaySec=1h" "WantedBy=timers.target"; do
    grep -qxF "$d" "$f" || fail "chiploc-$s.timer: no line '$d'"
  done
done
if command -v systemd-analyze >/dev/null 2>&1; then
  if ! (cd "$unitdir" && systemd-analyze verify --man=no ./chiploc-landmarkd.service \
          ./chiploc-chipagent.service ./chiploc-verifier.service \
          ./chiploc-landmarkd@fra-1.service ./chiploc-chipagent@peers.service \
          ./chiploc-maintenance.service ./chiploc-maintenance.timer \
          ./chiploc-audit.service ./chiploc-audit.timer \
          ./chiploc-dashboard.service) >"$tmp/verify.log" 2>&1; then
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
grep -qxF "ExecStart=/usr/bin/chiploc db maintain \$CHIPLOC_MAINTAIN_ARGS" \
  "$tmp/dest/usr/lib/systemd/system/chiploc-maintenance.service" ||
  fail "DESTDIR install: maintenance unit does not start /usr/bin/chiploc"
[ -x "$tmp/dest/usr/bin/chiploc" ] || fail "DESTDIR install: no /usr/bin/chiploc"

if [ "$failures" -gt 0 ]; then
  echo "test_install: $failures check(s) failed"
  exit 1
fi
echo "test_install: all checks passed ($prefix)"
