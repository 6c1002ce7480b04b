#!/usr/bin/env bash
# Benchmark: landmark-measured RTT on loopback against a plain C TCP
# ping-pong of the same message sizes and against irtt, run in the same
# command.
#
# Each round runs (a) one landmarkd and one chipagent with two chips for
# BENCH_SECONDS (default 15) with bursts of 20 back-to-back probes, taking
# every accepted probe's RTT from landmarkd's debug log, (b) `pingpong` and
# `pingpong --sign` for PINGPONG_COUNT round trips each, and (c) an irtt
# server and client on 127.0.0.1 for IRTT_SECONDS (default 10) at one packet
# per millisecond, packets the size of a Challenge frame. BENCH_ROUNDS rounds
# (default 3), reported as the median over rounds of each statistic.
# Rewrites the `rtt` section of bench/RESULTS.md.
#
# Environment: BUILD_DIR (default build), SKIP_BUILD=1 (use the binaries in
# BUILD_DIR as they are: no scripts/deps.sh, no build), BENCH_SUMMARY (a
# file: one line per target is appended).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
root=$PWD
rounds=${BENCH_ROUNDS:-3}
seconds=${BENCH_SECONDS:-15}
pp_count=${PINGPONG_COUNT:-20000}
irtt_seconds=${IRTT_SECONDS:-10}
build=${BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
work=$build/bench-run

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  scripts/deps.sh
  build_tree "$build"
fi
command -v irtt >/dev/null || { echo "run.sh: irtt is missing (scripts/deps.sh installs it)" >&2; exit 1; }
chiploc=$build/server/chiploc

cleanup() {
  stop_all
  tests/pgtest.sh stop "$work/pg" >/dev/null 2>&1 || true
}
trap cleanup EXIT

rm -rf "$work"
mkdir -p "$work/keys"
tests/pgtest.sh start "$work/pg" >/dev/null
db="$(cat "$work/pg/conninfo")"
psql "$db" -qc "CREATE DATABASE chiploc_bench" >/dev/null
db="$db dbname=chiploc_bench"
export CHIPLOC_DB="$db"
$chiploc db migrate >/dev/null
lpk=$($chiploc keygen --out "$work/keys/lm.key")
$chiploc landmark add --name bench --pubkey "$lpk" --lat 0 --lon 0 >/dev/null
port=47490
irtt_port=47491
landmarkd_conf "$work/lm.conf" bench keys/lm.key "127.0.0.1:$port" 0 0 "$db" probe.interval_s=1 \
  probe.jitter=0.1 probe.burst=20 probe.burst_gap_ms=0 probe.deadline_ms=1000
agent=("landmark.bench.address=127.0.0.1:$port" "landmark.bench.public_key=$lpk")
for c in c0 c1; do
  $chiploc keygen --out "$work/keys/$c.key" >/dev/null
  $chiploc chip enroll --pubkey-file "$work/keys/$c.key" --serial "BENCH-$c" --operator bench \
    --site 0,0 >/dev/null
  agent+=("chip.$c.key=keys/$c.key")
done
chipagent_conf "$work/agent.conf" bench "${agent[@]}"

# stats FILE -> "min median p90 n" in microseconds, from one value (ns) per line
stats() {
  sort -n "$1" | awk '{v[NR]=$1} END {
    if (NR == 0) { print "nan nan nan 0"; exit }
    m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    p = v[int(NR * 0.9 + 0.5) > 0 ? int(NR * 0.9 + 0.5) : 1]
    printf "%.3f %.3f %.3f %d\n", v[1]/1000, m/1000, p/1000, NR }'
}

: >"$work/rounds.txt"
for r in $(seq 1 "$rounds"); do
  log="$work/lm-$r.log"
  "$build/server/landmarkd" --config "$work/lm.conf" --log-level debug 2>"$log" &
  lm=$!
  pids=("$lm")
  for _ in $(seq 1 100); do grep -q 'msg=listening' "$log" && break; sleep 0.1; done
  "$build/client/chipagent" --config "$work/agent.conf" 2>"$work/agent-$r.log" &
  ag=$!
  pids+=("$ag")
  sleep "$seconds"
  kill -TERM "$ag"; wait "$ag" || true
  kill -TERM "$lm"; wait "$lm" || true
  pids=()
  grep 'msg="probe accepted"' "$log" | sed -n 's/.*rtt_ns=\([0-9]*\).*/\1/p' >"$work/lm-$r.ns"
  read -r lmin lmed lp90 ln < <(stats "$work/lm-$r.ns")
  field() { sed -n "s/.*$1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }
  pp=$("$build/bench/pingpong" --count "$pp_count")
  pmin=$(field min_us "$pp"); pmed=$(field median_us "$pp"); pp90=$(field p90_us "$pp")
  req_bytes=$(field request_bytes "$pp")
  ps=$("$build/bench/pingpong" --count "$pp_count" --sign)
  smin=$(field min_us "$ps"); smed=$(field median_us "$ps"); sp90=$(field p90_us "$ps")
  # irtt: UDP, one packet per millisecond of a Challenge frame's size, no
  # server timestamps (so its RTT is the whole round trip, server included,
  # as the landmark's is). -i 0 lets the server accept the 1 ms interval.
  irtt server -b "127.0.0.1:$irtt_port" -i 0 >"$work/irtt-server-$r.log" 2>&1 &
  isrv=$!
  pids=("$isrv")
  sleep 0.5
  irtt client -i 1ms -d "${irtt_seconds}s" -l "$req_bytes" --tstamp=none -Q \
    -o "$work/irtt-$r.json" "127.0.0.1:$irtt_port"
  kill -TERM "$isrv"; wait "$isrv" || true
  pids=()
  # Minimum and median are irtt's own statistics; the 90th percentile is
  # taken from its per-packet RTTs like the landmark's.
  read -r imin imed ip90 in < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = sorted(p["delay"]["rtt"] for p in d["round_trips"]
           if p.get("lost") == "false" and "rtt" in p.get("delay", {}))
s = d["stats"]["rtt"]
p90 = r[max(int(len(r) * 0.9 + 0.5), 1) - 1]
print("%.3f %.3f %.3f %d" % (s["min"] / 1e3, s["median"] / 1e3, p90 / 1e3, s["n"]))' \
    "$work/irtt-$r.json")
  echo "$lmin $lmed $lp90 $ln $pmin $pmed $pp90 $smin $smed $sp90 $imin $imed $ip90 $in" >>"$work/rounds.txt"
  echo "round $r: landmark min/median/p90 = $lmin/$lmed/$lp90 us (n=$ln); pingpong = $pmin/$pmed/$pp90 us; signing pingpong = $smin/$smed/$sp90 us; irtt = $imin/$imed/$ip90 us (n=$in)"
done


col() { awk -v c="$1" '{print $c}' "$work/rounds.txt" | median %.3f; }
lmin=$(col 1); lmed=$(col 2); lp90=$(col 3); ln=$(col 4); ln=${ln%.*}
pmin=$(col 5); pmed=$(col 6); pp90=$(col 7)
smin=$(col 8); smed=$(col 9); sp90=$(col 10)
imin=$(col 11); imed=$(col 12); ip90=$(col 13); in=$(col 14); in=${in%.*}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
rmin=$(ratio "$lmin" "$pmin"); rmed=$(ratio "$lmed" "$pmed")
rsmin=$(ratio "$lmin" "$smin"); rsmed=$(ratio "$lmed" "$smed")
rimin=$(ratio "$lmin" "$imin"); rimed=$(ratio "$lmed" "$imed")
met() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "yes" : "no" }'; }
met_min=$(met "$rmin" 1.3); met_med=$(met "$rimed" 1.0)
cpu=$(cpu_model)

sig_us=$(awk -v a="$smin" -v b="$pmin" 'BEGIN{printf "%.1f", a-b}')
rsp=$(ratio "$smin" "$pmin")
if [ "$(met "$rsp" 1.3)" = no ]; then
  floor_note="The signing ping-pong's own minimum is $rsp × the plain one's, so
the minimum target is out of reach for any landmark that times the signature."
else
  floor_note="The signing ping-pong's own minimum is $rsp × the plain one's."
fi

section=$work/rtt-section.md
cat >"$section" <<MD
## RTT timing on loopback (\`bench/run.sh\`)

Regenerate with \`bench/run.sh\` (environment: BUILD_DIR, SKIP_BUILD,
BENCH_ROUNDS, BENCH_SECONDS, PINGPONG_COUNT, IRTT_SECONDS). Figures are
medians over rounds; each round measures the landmark and its baselines back
to back on the same machine.

- date: $(date -u +%Y-%m-%dT%H:%MZ)
- machine: $(nproc) cores, ${cpu:-unknown CPU}
- rounds: $rounds; landmark run per round: ${seconds} s, 2 chips, bursts of 20 back-to-back probes;
  irtt per round: ${irtt_seconds} s at one packet per millisecond

Landmark-measured RTT is \`cl_clock_raw_ns()\` (CLOCK_MONOTONIC_RAW) before the challenge write to
\`cl_clock_raw_ns()\` at the top of the read callback; it includes the agent's
Ed25519 signature of the response. Baselines, same request and reply sizes as
a Challenge and a Response frame ($req_bytes-byte request), blocking sockets,
TCP_NODELAY: \`pingpong\` answers at once; \`pingpong --sign\` makes one
Ed25519 signature over a response-sized layout before answering, as a chip
must. irtt ($(irtt version 2>/dev/null | sed -n 's/^irtt version: *//p' | head -n 1), Debian package) runs
\`irtt server -i 0\` and \`irtt client -i 1ms -l $req_bytes --tstamp=none\` on
127.0.0.1: UDP, $req_bytes-byte packets, no server timestamps, so its RTT is
the whole round trip as the landmark's is; minimum and median are irtt's
own statistics.

| statistic | landmark (µs) | ping-pong (µs) | ratio | signing ping-pong (µs) | ratio | irtt (µs) | ratio |
|---|---|---|---|---|---|---|---|
| minimum | $lmin | $pmin | $rmin | $smin | $rsmin | $imin | $rimin |
| median | $lmed | $pmed | $rmed | $smed | $rsmed | $imed | $rimed |
| 90th percentile | $lp90 | $pp90 | | $sp90 | | $ip90 | |
| round trips per round | $ln | $pp_count | | $pp_count | | $in | |

Targets (issue 6, item 2): landmark minimum ≤ 1.3 × the plain ping-pong
minimum — **$rmin×, met: $met_min**; landmark median ≤ irtt's median —
**$rimed×, met: $met_med**.

The chip's Ed25519 signature must be inside the window (the nonce is unknown
until the challenge arrives). On this machine one signature costs about
$sig_us µs (signing minus plain ping-pong minimum); neither the plain
ping-pong nor irtt does any such work.
$floor_note
The signing ping-pong is the honest floor; the landmark's ratio to it
(minimum $rsmin×, median $rsmed×) is what the rest of the timed path (agent
decode and encode, both event loops) adds. Landmark signing, encoding,
signature verification and database work are all outside the window.
MD
splice_section bench/RESULTS.md rtt "$section"
if [ -n "${BENCH_SUMMARY:-}" ]; then
  echo "rtt-min|$lmin us|$pmin us|$rmin|<= 1.3x|$met_min" >>"$BENCH_SUMMARY"
  echo "rtt-median|$lmed us|$imed us|$rimed|<= 1.0x|$met_med" >>"$BENCH_SUMMARY"
fi
echo
cat "$section"
