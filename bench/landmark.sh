#!/usr/bin/env bash
# Benchmark: one landmarkd under load from the fleet simulator.
#
#   throughput  Verified responses per second, sustained, with chips that
#               answer at once (burst of 64 back to back, 1 s interval), for
#               verify_threads = 2 (default) and 0 (checks on the loop), the
#               landmark pinned to CPU 0 and the simulator to CPU 1. The
#               landmark's CPU use comes from /proc/PID/stat over the same
#               window, so the figure is responses per landmark CPU-second,
#               set against libsodium's own single-core verify rate measured
#               just before and after each run (bench/sigrate), plus a perf
#               profile of one more run.
#   scale       100,000 chips (12,500 connections of 8 from 4 source
#               addresses) on one landmarkd: resident memory, bytes per chip
#               and per connection (a second run with 64 chips per
#               connection separates the two), and how the probe lag
#               (send time minus scheduled time) grows with the probe rate
#               (interval 600, 120, 60, 30 s).
#
# Environment: BUILD_DIR (default build), SKIP_BUILD=1 (the caller built it),
# LM_ROUNDS (throughput rounds, default 5), LM_WINDOW_S (throughput window,
# default 10), SCALE_CHIPS (default 100000), SCALE_WINDOW_S (default 30),
# SCALE_INTERVALS (default "600 120 60 30"), BENCH_SUMMARY (file to append
# one line per target to). Writes the sections `throughput` and `scale` of
# bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
root=$PWD
build=${BUILD_DIR:-build}
rounds=${LM_ROUNDS:-5}
window=${LM_WINDOW_S:-10}
scale_chips=${SCALE_CHIPS:-100000}
scale_window=${SCALE_WINDOW_S:-30}
scale_intervals=${SCALE_INTERVALS:-600 120 60 30}
tp_chips=2000
work=$root/$build/bench-landmark

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  scripts/deps.sh
  build_tree "$build"
fi
chiploc=$root/$build/server/chiploc
landmarkd=$root/$build/server/landmarkd
fleetsim=$root/$build/tests/sim/fleetsim
sigrate=$root/$build/bench/sigrate
ulimit -n "$(ulimit -Hn)"

cleanup() {
  stop_all
  tests/pgtest.sh stop "$work/pg" >/dev/null 2>&1 || true
}
trap cleanup EXIT

rm -rf "$work"
mkdir -p "$work/keys" "$work/logs"
tests/pgtest.sh start "$work/pg" >/dev/null
db0=$(cat "$work/pg/conninfo")
psql "$db0" -qXc "CREATE DATABASE chiploc_lmbench" >/dev/null
db=${db0/dbname=postgres/dbname=chiploc_lmbench}
export CHIPLOC_DB="$db"
"$chiploc" db migrate >/dev/null
lpk=$("$chiploc" keygen --out "$work/keys/lm.key")
"$chiploc" landmark add --name bench --pubkey "$lpk" --lat 50.1109 --lon 8.6821 >/dev/null
port=47520
mport=47521

# Enrols chips 0 .. n-1 of fleet seed 7 in one COPY (the CLI's one call per
# chip would take longer than the benchmark), declared where they are: at
# the landmark, so that the simulated round trip is the loopback one.
enrol() {
  local n=$1
  "$fleetsim" keys --seed 7 --count "$n" |
    awk -F, '{ printf "\\\\x%s\tbench-%s\tbench\t50.1109\t8.6821\n", $2, $1 }' |
    psql "$db" -qXc "COPY chips (public_key, serial, operator, site_lat, site_lon) FROM STDIN"
  {
    echo "index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s"
    seq 0 $((n - 1)) | awk '{ printf "%d,50.1109,8.6821,honest,0,0\n", $1 }'
  } >"$work/fleet.csv"
}
printf 'name,address,public_key,lat,lon\nbench,127.0.0.1:%d,%s,50.1109,8.6821\n' "$port" "$lpk" \
  >"$work/landmarks.csv"

# lm_conf INTERVAL BURST GAP_MS VERIFY_THREADS IDLE_S
lm_conf() {
  landmarkd_conf "$work/lm.conf" bench keys/lm.key "127.0.0.1:$port" 50.1109 8.6821 "$db" \
    database.refresh_interval_s=3600 probe.interval_s="$1" probe.jitter=0.1 probe.burst="$2" \
    probe.burst_gap_ms="$3" probe.deadline_ms=5000 probe.verify_threads="$4" \
    limits.max_connections=20000 limits.max_connections_per_address=20000 \
    limits.handshake_timeout_ms=120000 limits.idle_timeout_s="$5" limits.stats_interval_s=3600 \
    metrics.listen="127.0.0.1:$mport"
}

scrape() { curl -sf "http://127.0.0.1:$mport/metrics"; }
# metric NAME FILE: the value of an unlabelled series in a scrape
metric() { awk -v n="$1" '$1 == n { print $2; exit }' "$2"; }
# cpu_s PID: user + system CPU seconds of every thread of the process
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }

# Throughput runs pin the landmark (every thread) to CPU 0 and the simulator
# to CPU 1, so that "the cores the landmark uses" is one whole core, shared
# with nothing; libsodium's baseline runs on CPU 0 too. PIN_LM and PIN_SIM
# are empty (no pinning) for the scale runs and on a one-core machine.
PIN_LM=()
PIN_SIM=()
pin=0
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then pin=1; fi
# start_landmark LOG: starts landmarkd and waits for its metrics endpoint.
start_landmark() {
  "${PIN_LM[@]}" "$landmarkd" --config "$work/lm.conf" 2>"$1" &
  lm=$!
  pids+=("$lm")
  for _ in $(seq 1 600); do
    grep -q 'msg=listening' "$1" && scrape >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "landmark.sh: landmarkd did not start (see $1)" >&2
  exit 1
}
# wait_live N SECONDS: until chiploc_chips_live reaches N
wait_live() {
  local live=0
  for _ in $(seq 1 $(($2 * 5))); do
    scrape >"$work/m.txt" 2>/dev/null || true
    live=$(metric chiploc_chips_live "$work/m.txt")
    [ "${live%.*}" = "$1" ] && return 0
    sleep 0.2
  done
  echo "landmark.sh: only ${live:-0} of $1 chips registered" >&2
  exit 1
}
# hist_quantile FILE0 FILE1 NAME Q: the upper bound of the bucket holding
# quantile Q of the observations made between two scrapes (Prometheus'
# histogram_quantile without interpolation: an upper bound).
hist_quantile() {
  awk -v n="$3_bucket" -v q="$4" '
    FNR == NR { if (index($1, n "{le=") == 1) a[$1] = $2; next }
    index($1, n "{le=") == 1 { le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
      d = $2 - a[$1]; les[++k] = le; cum[k] = d }
    END { tot = cum[k]; if (tot <= 0) { print "nan"; exit }
      for (i = 1; i <= k; i++) if (cum[i] >= q * tot) { print les[i]; exit } }' "$1" "$2"
}

# ---- throughput -----------------------------------------------------------
enrol "$tp_chips"
if [ "$pin" = 1 ]; then PIN_LM=(taskset -c 0); PIN_SIM=(taskset -c 1); fi
: >"$work/sigrate.txt"
: >"$work/tp.txt"
# vrate_now: libsodium's verify rate per CPU-second, measured now (on the
# landmark's CPU). Each landmark run is set against the mean of the rates
# measured just before and just after it: this machine's speed drifts
# within minutes.
vrate_now() {
  "${PIN_LM[@]}" "$sigrate" --seconds 2 | tee -a "$work/sigrate.txt" |
    awk '{ sub("verify_per_s=", "", $2); print $2 }'
}
v_before=$(vrate_now)
for r in $(seq 1 "$rounds"); do
  for vt in 2 0; do
    lm_conf 1 64 0 "$vt" 600
    start_landmark "$work/logs/tp-$r-$vt.log"
    "${PIN_SIM[@]}" "$fleetsim" run --fleet "$work/fleet.csv" --landmarks "$work/landmarks.csv" --seed 7 \
      --jitter-ms 0 --verify-every 1000 --log-level warn 2>"$work/logs/tp-fleet-$r-$vt.log" &
    pids+=($!)
    wait_live "$tp_chips" 60
    sleep 3
    scrape >"$work/a.txt"; c0=$(cpu_s "$lm"); t0=$(date +%s.%N)
    sleep "$window"
    scrape >"$work/b.txt"; c1=$(cpu_s "$lm"); t1=$(date +%s.%N)
    stop_all
    n0=$(metric chiploc_responses_accepted_total "$work/a.txt")
    n1=$(metric chiploc_responses_accepted_total "$work/b.txt")
    rate=$(calc "($n1 - $n0) / ($t1 - $t0)")
    cores=$(calc "($c1 - $c0) / ($t1 - $t0)")
    rtt50=$(hist_quantile "$work/a.txt" "$work/b.txt" chiploc_rtt_seconds 0.5)
    v_after=$(vrate_now)
    vr=$(calc "($v_before + $v_after) / 2")
    eff=$(calc "$rate / $cores")
    echo "$vt $rate $cores $eff $rtt50 $vr $(calc "$eff / $vr")" >>"$work/tp.txt"
    echo "throughput round $r verify_threads=$vt: $rate responses/s, landmark CPU $cores cores, $eff per CPU-second, libsodium verify $vr/s, ratio $(calc "$eff / $vr"), RTT p50 <= $rtt50 s"
    v_before=$v_after
  done
done
# One more run of the default setting under `perf record`, outside the
# measured rounds (profiling slows the landmark a little): where its CPU goes.
: >"$work/profile.txt"
if command -v perf >/dev/null 2>&1; then
  lm_conf 1 64 0 2 600
  start_landmark "$work/logs/tp-perf.log"
  "${PIN_SIM[@]}" "$fleetsim" run --fleet "$work/fleet.csv" --landmarks "$work/landmarks.csv" --seed 7 \
    --jitter-ms 0 --verify-every 1000 --log-level warn 2>"$work/logs/tp-fleet-perf.log" &
  pids+=($!)
  wait_live "$tp_chips" 60
  sleep 3
  if perf record -q -F 499 -g -p "$lm" -o "$work/perf.data" -- sleep "$window" >/dev/null 2>&1; then
    # Self time by shared object, then the top symbols outside libsodium
    # (Debian's libsodium has no symbols: its time is Ed25519 signing and
    # verifying, the only libsodium calls on this path besides the nonce).
    {
      echo "self time by object:"
      perf report -i "$work/perf.data" --stdio --no-children --sort dso 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -n 8
      echo "top symbols outside libsodium:"
      perf report -i "$work/perf.data" --stdio --no-children --sort dso,symbol 2>/dev/null |
        grep -E '^ +[0-9.]+%' | grep -v libsodium | head -n 10 |
        awk '{ printf "%8s  %-24s %s\n", $1, $2, $4 }'
    } | sed 's/[[:space:]]*$//' >"$work/profile.txt" || true
  fi
  stop_all
fi
vrate=$(awk '{ sub("verify_per_s=", "", $2); print $2 }' "$work/sigrate.txt" | median %.6g)
srate=$(awk '{ sub("sign_per_s=", "", $1); print $1 }' "$work/sigrate.txt" | median %.6g)
tpcol() { awk -v vt="$1" -v c="$2" '$1 == vt { print $c }' "$work/tp.txt" | median %.6g; }
p_rate=$(tpcol 2 2); p_cores=$(tpcol 2 3); p_eff=$(tpcol 2 4); p_rtt=$(tpcol 2 5)
i_rate=$(tpcol 0 2); i_cores=$(tpcol 0 3); i_eff=$(tpcol 0 4); i_rtt=$(tpcol 0 5)
p_ratio=$(tpcol 2 7); i_ratio=$(tpcol 0 7)
ideal=$(calc "1 / (1 + $vrate / $srate)")

cpu=$(cpu_model)
yn() { awk "BEGIN { print ($1) ? \"yes\" : \"no\" }"; }
met=$(yn "$p_ratio >= 0.7")
if [ -n "${BENCH_SUMMARY:-}" ]; then
  echo "landmark throughput|$(printf '%.0f' "$p_eff") verified responses per landmark CPU-second ($(printf '%.0f' "$p_rate")/s on $(printf '%.2f' "$p_cores") cores)|libsodium verify $(printf '%.0f' "$vrate")/s per core|$(printf '%.2f' "$p_ratio")|>= 0.7|$met" >>"$BENCH_SUMMARY"
fi

if [ "$pin" = 1 ]; then
  pin_text="Every thread of the landmark is pinned to CPU 0 (taskset -c 0), the
simulator to CPU 1, and the libsodium baseline runs on CPU 0 too: the landmark
has exactly one core, shared with nothing."
else
  pin_text="Nothing is pinned (fewer than 2 CPUs, or no taskset)."
fi
# The profile's libsodium share, and the ratio it implies at libsodium's own
# sign:verify cost (1 verification and 1 + 1/64 signatures per response).
sodium_share=$(awk '/libsodium/ { sub("%", "", $1); print $1 / 100; exit }' "$work/profile.txt")
implied=""
if [ -n "$sodium_share" ]; then
  implied=$(calc "$sodium_share * (1 / $vrate) / (1 / $vrate + (1 + 1 / 64) / $srate)")
fi
cat >"$work/throughput.md" <<MD
## Landmark throughput (\`bench/landmark.sh\`)

Regenerate with \`bench/landmark.sh\` (or \`bench/all.sh\`). Date $(date -u +%Y-%m-%dT%H:%MZ);
machine: $(nproc) cores, ${cpu:-unknown CPU}. Medians over $rounds rounds of
${window} s each. Each round runs one landmarkd per setting, fed by \`fleetsim\`
with $tp_chips chips on 250 connections answering at once (bursts of 64
back-to-back probes every second, fleetsim checking one landmark signature in
1000). libsodium's own rate (\`bench/sigrate\`: one thread, response-sized
message, per CPU-second) is measured before the first run and after every
run, and each run's ratio is taken against the mean of the rates just before
and just after it: this shared machine's speed drifts within minutes.
$pin_text The landmark's CPU is user + system time of all its threads from
/proc/PID/stat over the same window.

| | verified responses/s | landmark CPU (cores) | responses per landmark CPU-second | ratio to libsodium verify rate | RTT p50 (bucket bound, s) |
|---|---|---|---|---|---|
| verify_threads = 2 (default) | $(printf '%.0f' "$p_rate") | $(printf '%.2f' "$p_cores") | $(printf '%.0f' "$p_eff") | **$(printf '%.2f' "$p_ratio")** | $p_rtt |
| verify_threads = 0 (on the loop) | $(printf '%.0f' "$i_rate") | $(printf '%.2f' "$i_cores") | $(printf '%.0f' "$i_eff") | $(printf '%.2f' "$i_ratio") | $i_rtt |
| libsodium alone, one core (median of all its runs) | verify $(printf '%.0f' "$vrate")/s, sign $(printf '%.0f' "$srate")/s | 1 | | 1 | |

Target: ≥ 0.7 of the verify rate per core the landmark uses. Met: **$met**.

Every accepted response costs the landmark one Ed25519 verification (the
chip's answer) and one Ed25519 signature (the challenge it answered, which
the protocol requires so that a chip only ever signs for a pinned landmark),
plus one more signature per burst (the measurement). With nothing else at
all, the ratio could reach 1 / (1 + verify_rate / sign_rate) = $(printf '%.2f' "$ideal")
on this machine; the rest is the event loop's reads and writes (two
syscalls per probe), protobuf encoding and decoding, and timers. The profile
below shows the split$(if [ -n "$implied" ]; then printf ': %.0f %% of the landmark'"'"'s CPU is in libsodium, which at\nlibsodium'"'"'s own sign:verify cost alone bounds the ratio at %.2f, whatever the\nmachine'"'"'s speed' "$(calc "$sodium_share * 100")" "$implied"; fi).

With the checks on the loop (verify_threads = 0) the loop spends every
signature's time where it should be stamping answers: under this saturating
load the median RTT it measures is $i_rtt s against $p_rtt s with the verify
threads (bucket bounds), for about the same CPU per response.
MD
if [ -s "$work/profile.txt" ]; then
  {
    printf '\nProfile of landmarkd (verify_threads = 2), all threads (`perf record\n'
    # shellcheck disable=SC2016 # the backquotes are Markdown
    printf -- '-F 499 -g -p PID`, one extra %s s run after the measured ones):\n\n```\n' "$window"
    cat "$work/profile.txt"
    printf '```\n'
  } >>"$work/throughput.md"
fi
splice_section bench/RESULTS.md throughput "$work/throughput.md"

# ---- scale ----------------------------------------------------------------
PIN_LM=()
PIN_SIM=()
if [ "${LM_SKIP_SCALE:-0}" = 1 ]; then cat "$work/throughput.md"; exit 0; fi
psql "$db" -qXc "TRUNCATE measurements; DELETE FROM chips" >/dev/null
enrol "$scale_chips"
# scale_run INTERVAL CHIPS_PER_CONN TAG: registers every chip, then watches
# SCALE_WINDOW_S seconds. Appends a line to scale.txt.
: >"$work/scale.txt"
scale_run() {
  local interval=$1 k=$2 tag=$3
  local idle=$((interval * 2 + 120))
  lm_conf "$interval" 5 100 2 "$idle"
  start_landmark "$work/logs/scale-$tag.log"
  local rss0
  rss0=$(rss_kb "$lm")
  local ts
  ts=$(date +%s.%N)
  "$fleetsim" run --fleet "$work/fleet.csv" --landmarks "$work/landmarks.csv" --seed 7 \
    --jitter-ms 0.2 --chips-per-conn "$k" --bind-base 127.0.0.2 --bind-count 4 \
    --connect-rate 2000 --verify-every 100 --log-level warn 2>"$work/logs/scale-fleet-$tag.log" &
  local fs=$!
  pids+=("$fs")
  wait_live "$scale_chips" 300
  local treg
  treg=$(calc "$(date +%s.%N) - $ts")
  sleep 2
  scrape >"$work/a.txt"; local c0; c0=$(cpu_s "$lm"); local t0; t0=$(date +%s.%N)
  sleep "$scale_window"
  scrape >"$work/b.txt"; local c1; c1=$(cpu_s "$lm"); local t1; t1=$(date +%s.%N)
  local rss1 fsrss conns
  rss1=$(rss_kb "$lm")
  fsrss=$(rss_kb "$fs")
  conns=$(metric chiploc_connections "$work/b.txt")
  stop_all
  local s0 s1
  s0=$(metric chiploc_probes_sent_total "$work/a.txt")
  s1=$(metric chiploc_probes_sent_total "$work/b.txt")
  local rate cores lag50 lag99 lag999 to0 to1
  rate=$(calc "($s1 - $s0) / ($t1 - $t0)")
  cores=$(calc "($c1 - $c0) / ($t1 - $t0)")
  lag50=$(hist_quantile "$work/a.txt" "$work/b.txt" chiploc_probe_lag_seconds 0.5)
  lag99=$(hist_quantile "$work/a.txt" "$work/b.txt" chiploc_probe_lag_seconds 0.99)
  lag999=$(hist_quantile "$work/a.txt" "$work/b.txt" chiploc_probe_lag_seconds 0.999)
  to0=$(awk '$1 == "chiploc_timeouts_total{kind=\"probe\"}" { print $2 }' "$work/a.txt")
  to1=$(awk '$1 == "chiploc_timeouts_total{kind=\"probe\"}" { print $2 }' "$work/b.txt")
  echo "$tag $interval $k ${conns%.*} $rss0 $rss1 $fsrss $treg $rate $cores $lag50 $lag99 $lag999 $(calc "$to1 - $to0")" >>"$work/scale.txt"
  echo "scale $tag: interval ${interval}s, $k chips/conn, ${conns%.*} connections: landmark RSS ${rss0} -> ${rss1} kB, registered in ${treg}s, $rate probes/s on $cores cores, lag p50/p99/p99.9 <= $lag50/$lag99/$lag999 s"
}
for iv in $scale_intervals; do scale_run "$iv" 8 "i$iv"; done
first=${scale_intervals%% *}
scale_run "$first" 64 "k64"

# On-disk cost of one stored measurement (heap, indexes, TOAST), from the
# rows the scale runs wrote: the figure docs/SCALING.md multiplies out. The
# table is partitioned: its size is the sum of its partitions'.
psql "$db" -qXc "VACUUM ANALYZE measurements" >/dev/null
read -r mrows mbytes < <(psql "$db" -XAtq -F' ' -c \
  "SELECT (SELECT count(*) FROM measurements),
          (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits
            WHERE inhparent = 'measurements'::regclass)")
row() { awk -v t="$1" '$1 == t' "$work/scale.txt"; }
read -r _ _ _ conns8 base8 rss8 fsrss8 treg8 _ <<<"$(row "i$first")"
read -r _ _ _ conns64 base64 rss64 _ _ _ <<<"$(row k64)"
# rss = base + chips * per_chip + conns * per_conn, from the two runs
per_conn=$(calc "(($rss8 - $base8) - ($rss64 - $base64)) * 1024 / ($conns8 - $conns64)")
per_chip=$(calc "(($rss8 - $base8) * 1024 - $conns8 * $per_conn) / $scale_chips")
rss_mib=$(calc "$rss8 / 1024")
met=$(yn "$rss8 <= 1048576")
if [ -n "${BENCH_SUMMARY:-}" ]; then
  echo "scale: landmarkd RSS, $scale_chips chips on $conns8 connections|$(printf '%.0f' "$rss_mib") MiB ($(printf '%.0f' "$per_chip") B/chip, $(printf '%.0f' "$per_conn") B/connection)|1 GiB limit|$(printf '%.2f' "$(calc "$rss8 / 1048576")")|<= 1 GiB|$met" >>"$BENCH_SUMMARY"
fi
{
  cat <<MD
## Scale: 100,000 chips on one landmarkd (\`bench/landmark.sh\`)

Regenerate with \`bench/landmark.sh\` (or \`bench/all.sh\`). Date $(date -u +%Y-%m-%dT%H:%MZ);
machine: $(nproc) cores, ${cpu:-unknown CPU}. One landmarkd (verify_threads = 2,
bursts of 5 probes 100 ms apart, jitter 0.1) and one \`fleetsim\` with
$scale_chips enrolled chips, 8 per connection from source addresses
127.0.0.2–127.0.0.5 (\`--bind-base\`, \`--bind-count 4\`), opening 2000
connections per second. Each run registers every chip, then watches
${scale_window} s. Probe lag is \`chiploc_probe_lag_seconds\` over that window
(send time minus the time the chip's timer was set for; quantiles are the
upper bound of their histogram bucket, and the smallest bucket, 1 ms, is the
timer clock's resolution).

Memory: landmarkd's resident set was $(printf '%.0f' "$rss_mib") MiB with $scale_chips chips on
$conns8 connections (target ≤ 1 GiB: **$met**), $(printf '%.0f' "$(calc "$base8 / 1024")") MiB of it before the
first connection (the enrolled set of $scale_chips keys, libraries). A second run
with 64 chips per connection ($conns64 connections) separates the two costs:
about **$(printf '%.0f' "$per_chip") bytes per chip** (its timer, a ring of 8
remembered challenges, burst state, map entry) and **$(printf '%.0f' "$per_conn") bytes
per connection** in user space (frame assembler, handles); the kernel's socket
buffers come on top and are not in the resident set. All $scale_chips chips
registered in $(printf '%.1f' "$treg8") s. The simulator itself held $(printf '%.0f' "$(calc "$fsrss8 / 1024")") MiB.

Storage: the runs stored $mrows measurements in $(printf '%.1f' "$(calc "$mbytes / 1048576")") MiB of table, indexes
and TOAST: **$(printf '%.0f' "$(calc "$mbytes / ($mrows > 0 ? $mrows : 1)")") bytes per measurement row** on disk.

Scheduling: each chip has one timer in the protocol core's timer queue (a
heap; one libuv timer stands for all of them), so a tick costs O(log n)
and nothing scans the chips; a chip's first burst is spread uniformly over
its first interval.

| interval (s) | chips/connection | connections | probes/s | landmark CPU (cores) | lag p50 ≤ (s) | lag p99 ≤ (s) | lag p99.9 ≤ (s) | probe timeouts in window |
|---|---|---|---|---|---|---|---|---|
MD
  while read -r tag iv k conns _ _ _ _ rate cores l50 l99 l999 to; do
    printf '| %s | %s | %s | %.0f | %.2f | %s | %s | %s | %.0f |\n' "$iv" "$k" "$conns" "$rate" "$cores" "$l50" "$l99" "$l999" "$to"
  done <"$work/scale.txt"
} >"$work/scale.md"
splice_section bench/RESULTS.md scale "$work/scale.md"
cat "$work/throughput.md" "$work/scale.md"
