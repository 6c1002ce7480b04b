#!/usr/bin/env bash
# Benchmark: landmark-measured RTT on loopback against a plain C TCP
# ping-pong of the same message sizes, run in the same command.
#
# Each round runs (a) one landmarkd and one chipagent with two chips for
# BENCH_SECONDS (default 15) with bursts of 20 back-to-back probes, taking
# every accepted probe's RTT from landmarkd's debug log, and (b) `pingpong`
# for PINGPONG_COUNT round trips. BENCH_ROUNDS rounds (default 3), reported
# as the median over rounds of each statistic. Rewrites bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rounds=${BENCH_ROUNDS:-3}
seconds=${BENCH_SECONDS:-15}
pp_count=${PINGPONG_COUNT:-20000}
work=$root/build/bench-run

deploy/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
chiploc=$root/build/server/chiploc

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
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
cat >"$work/lm.conf" <<CONF
[landmark]
name = bench
key = keys/lm.key
listen = 127.0.0.1:$port
lat = 0
lon = 0
[database]
conninfo = $db
[probe]
interval_s = 1
jitter = 0.1
burst = 20
burst_gap_ms = 0
deadline_ms = 1000
CONF
printf '[agent]\nname = bench\n[landmark.bench]\naddress = 127.0.0.1:%d\npublic_key = %s\n' \
  "$port" "$lpk" >"$work/agent.conf"
for c in c0 c1; do
  $chiploc keygen --out "$work/keys/$c.key" >/dev/null
  $chiploc chip enroll --pubkey-file "$work/keys/$c.key" --serial "BENCH-$c" --operator bench \
    --site 0,0 >/dev/null
  printf '[chip.%s]\nkey = keys/%s.key\n' "$c" "$c" >>"$work/agent.conf"
done

# stats FILE -> "min median p90 n" in microseconds, from one value (ns) per line
stats() {
  sort -n "$1" | awk '{v[NR]=$1} END {
    if (NR == 0) { print "nan nan nan 0"; exit }
    m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
    p = v[int(NR * 0.9 + 0.5) > 0 ? int(NR * 0.9 + 0.5) : 1]
    printf "%.3f %.3f %.3f %d\n", v[1]/1000, m/1000, p/1000, NR }'
}
median() { sort -g | awk '{v[NR]=$1} END { m = (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.3f", m }'; }

: >"$work/rounds.txt"
for r in $(seq 1 "$rounds"); do
  log="$work/lm-$r.log"
  build/server/landmarkd --config "$work/lm.conf" --log-level debug 2>"$log" &
  lm=$!
  pids=($lm)
  for _ in $(seq 1 100); do grep -q 'msg=listening' "$log" && break; sleep 0.1; done
  build/client/chipagent --config "$work/agent.conf" 2>"$work/agent-$r.log" &
  ag=$!
  pids+=($ag)
  sleep "$seconds"
  kill -TERM "$ag"; wait "$ag" || true
  kill -TERM "$lm"; wait "$lm" || true
  pids=()
  grep 'msg="probe accepted"' "$log" | sed -n 's/.*rtt_ns=\([0-9]*\).*/\1/p' >"$work/lm-$r.ns"
  read -r lmin lmed lp90 ln < <(stats "$work/lm-$r.ns")
  field() { sed -n "s/.*$1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }
  pp=$(build/bench/pingpong --count "$pp_count")
  pmin=$(field min_us "$pp"); pmed=$(field median_us "$pp"); pp90=$(field p90_us "$pp")
  ps=$(build/bench/pingpong --count "$pp_count" --sign)
  smin=$(field min_us "$ps"); smed=$(field median_us "$ps"); sp90=$(field p90_us "$ps")
  echo "$lmin $lmed $lp90 $ln $pmin $pmed $pp90 $smin $smed $sp90" >>"$work/rounds.txt"
  echo "round $r: landmark min/median/p90 = $lmin/$lmed/$lp90 us (n=$ln); pingpong = $pmin/$pmed/$pp90 us; signing pingpong = $smin/$smed/$sp90 us"
done

# splice_section FILE NAME CONTENT_FILE: replaces the text between
# <!-- NAME:begin --> and <!-- NAME:end --> in FILE (appending the markers if
# missing), leaving every other section alone.
splice_section() {
  local file=$1 name=$2 content=$3
  [ -f "$file" ] || printf '# Benchmark results\n\nEach section names the command that regenerates it.\n' >"$file"
  grep -q "<!-- $name:begin -->" "$file" || printf '\n<!-- %s:begin -->\n<!-- %s:end -->\n' "$name" "$name" >>"$file"
  awk -v b="<!-- $name:begin -->" -v e="<!-- $name:end -->" -v c="$content" '
    $0 == b { print; while ((getline line < c) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$file" >"$file.tmp"
  mv "$file.tmp" "$file"
}

col() { awk -v c="$1" '{print $c}' "$work/rounds.txt" | median; }
lmin=$(col 1); lmed=$(col 2); lp90=$(col 3); ln=$(col 4); ln=${ln%.*}
pmin=$(col 5); pmed=$(col 6); pp90=$(col 7)
smin=$(col 8); smed=$(col 9); sp90=$(col 10)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
rmin=$(ratio "$lmin" "$pmin"); rmed=$(ratio "$lmed" "$pmed")
rsmin=$(ratio "$lmin" "$smin"); rsmed=$(ratio "$lmed" "$smed")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)

section=$work/rtt-section.md
cat >"$section" <<MD
## RTT timing on loopback (\`bench/run.sh\`)

Regenerate with \`bench/run.sh\` (environment: BENCH_ROUNDS, BENCH_SECONDS,
PINGPONG_COUNT). Figures are medians over rounds; each round measures the
landmark and its baselines back to back on the same machine.

- date: $(date -u +%Y-%m-%dT%H:%MZ)
- machine: $(nproc) cores, ${cpu:-unknown CPU}
- rounds: $rounds; landmark run per round: ${seconds} s, 2 chips, bursts of 20 back-to-back probes

Landmark-measured RTT is \`uv_hrtime()\` before the challenge write to
\`uv_hrtime()\` at the top of the read callback; it includes the agent's
Ed25519 signature of the response. Baselines, same request and reply sizes as
a Challenge and a Response frame, blocking sockets, TCP_NODELAY:
\`pingpong\` answers at once; \`pingpong --sign\` makes one Ed25519 signature
over a response-sized layout before answering, as a chip must.

| statistic | landmark (µs) | ping-pong (µs) | ratio | signing ping-pong (µs) | ratio |
|---|---|---|---|---|---|
| minimum | $lmin | $pmin | $rmin | $smin | $rsmin |
| median | $lmed | $pmed | $rmed | $smed | $rsmed |
| 90th percentile | $lp90 | $pp90 | | $sp90 | |
| probes per round | $ln | $pp_count | | $pp_count | |

Target (foundation issue): landmark minimum ≤ 1.5 × the plain ping-pong
minimum. The chip's Ed25519 signature must be inside the window (the nonce is
unknown until the challenge arrives), and on this machine one signature alone
costs several times the plain ping-pong's minimum, so that literal target is
out of reach for any implementation; the signing ping-pong is the honest
floor, and the landmark's ratio to it is what the rest of the timed path
(agent decode and encode, both event loops) adds. Landmark signing, encoding,
signature verification and database work are all outside the window.
MD
splice_section bench/RESULTS.md rtt "$section"
echo
cat "$section"
