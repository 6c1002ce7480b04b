#!/usr/bin/env bash
# Benchmark: one landmarkd under load from the fleet simulator.
#
#   throughput  Verified probe answers per landmark CPU-second, sustained,
#               with 2000 chips (8 per connection) that answer at once
#               (bursts of 16 back to back, 1 s interval), for
#               verify_threads = 2 (default) and 0 (the per-burst signature
#               work on the loop), the landmark pinned to CPU 0 and the
#               simulator to CPU 1. Set against bench/reqresp in the same
#               round: a plain libuv request/response server with the same
#               frame sizes, connections and requests in flight (one per
#               chip), pinned the same way. libsodium's Ed25519 rates
#               (bench/sigrate) are measured as context, and one more run
#               is profiled with perf.
#   slowchip    The same fleet's distance bound (minimum RTT per chip, median
#               over chips, times c/2) with chips whose identity signatures
#               take 0 and 5 ms (fleetsim --sign-delay-ms).
#   scale       100,000 chips (12,500 connections of 8 from 4 source
#               addresses) on one landmarkd: resident memory, bytes per chip
#               and per connection (a second run with 64 chips per
#               connection separates the two), and how the probe lag
#               (send time minus scheduled time) grows with the probe rate
#               (interval 600, 120, 60, 30 s).
#   reconnect   2000 chips connected and probed, then a second fleetsim with
#               100,000 chips connecting at once: the probe lag and the first
#               fleet's RTTs during the storm against a quiet window before it.
#
# With V1_BUILD_DIR (a build of protocol 1, see bench/lib.sh) throughput,
# slowchip and reconnect also run that build's landmarkd and fleetsim in the
# same rounds, on a database of its own schema.
#
# Environment: BUILD_DIR (default build), SKIP_BUILD=1 (the caller built it),
# V1_BUILD_DIR, LM_SECTIONS (default "throughput slowchip scale reconnect"),
# LM_ROUNDS (throughput rounds, default 3), LM_TP_CHIPS (throughput chips,
# default 2000), LM_WINDOW_S (throughput window, default 10), SLOW_CHIPS
# (default 200), SLOW_SECONDS (default 15),
# SCALE_CHIPS (default 100000), SCALE_WINDOW_S (default 30), SCALE_INTERVALS
# (default "600 120 60 30"), RECONNECT_CHIPS (default 100000),
# RECONNECT_RATE (connections per second, default 5000), RECONNECT_INTERVAL_S
# (default 60), RECONNECT_QUIET_S (default 10), RECONNECT_ROUNDS (default 3), BENCH_SUMMARY (file to append
# one line per target to), BENCH_RESULTS (default bench/RESULTS.md). Writes
# the sections `throughput`, `slowchip`, `scale` and `reconnect` of
# BENCH_RESULTS.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
root=$PWD
build=${BUILD_DIR:-build}
results_md=${BENCH_RESULTS:-bench/RESULTS.md}
case $build in /*) ;; *) build=$root/$build ;; esac
sections=${LM_SECTIONS:-throughput slowchip scale reconnect}
rounds=${LM_ROUNDS:-3}
window=${LM_WINDOW_S:-10}
slow_chips=${SLOW_CHIPS:-200}
slow_seconds=${SLOW_SECONDS:-15}
scale_chips=${SCALE_CHIPS:-100000}
scale_window=${SCALE_WINDOW_S:-30}
scale_intervals=${SCALE_INTERVALS:-600 120 60 30}
rc_base=2000
rc_chips=${RECONNECT_CHIPS:-100000}
rc_rate=${RECONNECT_RATE:-5000}
rc_interval=${RECONNECT_INTERVAL_S:-60}
rc_quiet=${RECONNECT_QUIET_S:-10}
rc_rounds=${RECONNECT_ROUNDS:-3}
tp_chips=${LM_TP_CHIPS:-2000}
tp_k=8
tp_burst=16
work=$build/bench-landmark

has() { case " $sections " in *" $1 "*) return 0 ;; esac; return 1; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  scripts/deps.sh
  build_tree "$build" landmarkd chiploc-cli fleetsim reqresp sigrate
fi
v1=$(v1_build_dir server/landmarkd server/chiploc tests/sim/fleetsim)
reqresp=$build/bench/reqresp
sigrate=$build/bench/sigrate
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
port=47520
mport=47521
cpu=$(cpu_model)

# Each protocol version (TAG v2, or v1 with V1_BUILD_DIR) has its own
# database migrated by its own CLI, its own landmark key and the same chips:
# bin TAG NAME is that build's binary; dbinfo TAG its conninfo.
bin() {
  case $2 in
    landmarkd | chiploc) echo "$([ "$1" = v1 ] && echo "$v1" || echo "$build")/server/$2" ;;
    fleetsim) echo "$([ "$1" = v1 ] && echo "$v1" || echo "$build")/tests/sim/fleetsim" ;;
  esac
}
dbinfo() { echo "${db0/dbname=postgres/dbname=chiploc_lmbench_$1}"; }
tags=(v2)
if [ -n "$v1" ]; then tags+=(v1); fi
v1_wanted=0
if [ -n "$v1" ] && { has throughput || has slowchip || has reconnect; }; then v1_wanted=1; fi

# Chips enrolled in each database: indices 0 .. n-1 of fleet seed 7, as
# many as the sections run need (reconnect: 2000 + RECONNECT_CHIPS).
need=0
for s in throughput:$tp_chips slowchip:$slow_chips scale:$scale_chips reconnect:$((rc_base + rc_chips)); do
  if has "${s%%:*}" && [ "${s#*:}" -gt "$need" ]; then need=${s#*:}; fi
done
"$(bin v2 fleetsim)" keys --seed 7 --count "$need" >"$work/keys.csv"

# setup_db TAG: creates and migrates TAG's database, adds the landmark and
# enrols every chip in one COPY (the CLI's one call per chip would take
# longer than the benchmark), declared where they are: at the landmark, so
# that the simulated round trip is the loopback one.
setup_db() {
  local tag=$1 db cli
  db=$(dbinfo "$tag")
  cli=$(bin "$tag" chiploc)
  psql "$db0" -qXc "CREATE DATABASE chiploc_lmbench_$tag" >/dev/null
  CHIPLOC_DB="$db" "$cli" db migrate >/dev/null
  local lpk
  lpk=$("$cli" keygen --out "$work/keys/lm-$tag.key")
  CHIPLOC_DB="$db" "$cli" landmark add --name bench --pubkey "$lpk" --lat 50.1109 --lon 8.6821 >/dev/null
  awk -F, '{ printf "\\\\x%s\tbench-%s\tbench\t50.1109\t8.6821\n", $2, $1 }' "$work/keys.csv" |
    psql "$db" -qXc "COPY chips (public_key, serial, operator, site_lat, site_lon) FROM STDIN"
  printf 'name,address,public_key,lat,lon\nbench,127.0.0.1:%d,%s,50.1109,8.6821\n' "$port" "$lpk" \
    >"$work/landmarks-$tag.csv"
}
setup_db v2
if [ "$v1_wanted" = 1 ]; then setup_db v1; fi
# sql TAG QUERY: one query on TAG's database, unaligned, fields split by spaces.
sql() { psql "$(dbinfo "$1")" -XAtq -F' ' -c "$2"; }

# fleet_csv FILE FROM COUNT: a fleet of chips FROM .. FROM+COUNT-1, honest,
# all at the landmark's position.
fleet_csv() {
  {
    echo "index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s"
    seq "$2" $(($2 + $3 - 1)) | awk '{ printf "%d,50.1109,8.6821,honest,0,0\n", $1 }'
  } >"$1"
}

# lm_conf TAG INTERVAL BURST GAP_MS VERIFY_THREADS IDLE_S
lm_conf() {
  landmarkd_conf "$work/lm-$1.conf" bench "keys/lm-$1.key" "127.0.0.1:$port" 50.1109 8.6821 \
    "$(dbinfo "$1")" database.refresh_interval_s=3600 probe.interval_s="$2" probe.jitter=0.1 \
    probe.burst="$3" probe.burst_gap_ms="$4" probe.deadline_ms=5000 probe.verify_threads="$5" \
    limits.max_connections=20000 limits.max_connections_per_address=20000 \
    limits.handshake_timeout_ms=120000 limits.idle_timeout_s="$6" limits.stats_interval_s=3600 \
    metrics.listen="127.0.0.1:$mport"
}

scrape() { curl -sf "http://127.0.0.1:$mport/metrics"; }
# metric NAME FILE: the value of a series (name with its labels) in a scrape
metric() { awk -v n="$1" '$1 == n { print $2; exit }' "$2"; }
# cpu_s PID: user + system CPU seconds of every thread of the process
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }
yn() { awk "BEGIN { print ($1) ? \"yes\" : \"no\" }"; }
now_ns() { date +%s%N; }

# Throughput runs pin the landmark (every thread) to CPU 0 and the simulator
# to CPU 1, so that "the cores the landmark uses" is one whole core, shared
# with nothing but PostgreSQL; reqresp pins its server and client the same
# way. PIN_LM and PIN_SIM are empty (no pinning) for the other sections and
# on a one-core machine.
PIN_LM=()
PIN_SIM=()
pin=0
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then pin=1; fi
# start_landmark TAG LOG: starts TAG's landmarkd and waits for its metrics
# endpoint; its pid is in $lm.
start_landmark() {
  "${PIN_LM[@]}" "$(bin "$1" landmarkd)" --config "$work/lm-$1.conf" 2>"$2" &
  lm=$!
  pids+=("$lm")
  for _ in $(seq 1 600); do
    grep -q 'msg=listening' "$2" 2>/dev/null && scrape >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "landmark.sh: landmarkd did not start (see $2)" >&2
  exit 1
}
# start_fleet TAG FLEET LOG ARGS...: starts TAG's fleetsim for FLEET against
# the landmark (protocol 1's simulator checks one landmark signature in
# 1000, as its benchmark did); its pid is in $fs.
start_fleet() {
  local tag=$1 fleet=$2 log=$3
  shift 3
  local extra=()
  if [ "$tag" = v1 ]; then extra=(--verify-every 1000); fi
  "${PIN_SIM[@]}" "$(bin "$tag" fleetsim)" run --fleet "$fleet" --landmarks "$work/landmarks-$tag.csv" \
    --seed 7 "${extra[@]}" --log-level warn "$@" 2>"$log" &
  fs=$!
  pids+=("$fs")
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
# delta NAME FILE0 FILE1: how much a counter grew between two scrapes
delta() { calc "$(metric "$1" "$3") - $(metric "$1" "$2")"; }
# c/2 in km per ns of round trip: the distance bound of an RTT
km_per_ns=$(calc "299792.458 / 2 / 1e9")

# perf_count PID FILE: counts system calls (all, and the kinds a request/
# response server makes) and context switches of every thread of PID for
# 5 s, into FILE (perf stat -x, format).
perf_events=(raw_syscalls:sys_enter syscalls:sys_enter_write syscalls:sys_enter_read
  syscalls:sys_enter_epoll_wait syscalls:sys_enter_epoll_pwait syscalls:sys_enter_getrandom syscalls:sys_enter_futex context-switches)
perf_count() {
  local ev
  ev=$(IFS=,; echo "${perf_events[*]}")
  perf stat -x, -e "$ev" -p "$1" -o "$2" -- sleep 5 >/dev/null 2>&1 || : >"$2"
}

# ---- throughput -----------------------------------------------------------
if has throughput; then
  fleet_csv "$work/fleet-tp.csv" 0 "$tp_chips"
  tp_conns=$(((tp_chips + tp_k - 1) / tp_k))
  if [ "$pin" = 1 ]; then PIN_LM=(taskset -c 0); PIN_SIM=(taskset -c 1); fi
  rr_pin=()
  if [ "$pin" = 1 ]; then rr_pin=(--server-cpu 0 --client-cpu 1); fi
  : >"$work/sigrate.txt"
  : >"$work/tp.txt"
  : >"$work/rr.txt"
  : >"$work/rb.txt"
  # tp_run TAG VT ROUND: one measured window of TAG's landmark with
  # verify_threads VT; appends "TAG VT rate cores per_cpu_s rtt50 transcripts_ok
  # transcript_failures" to tp.txt.
  tp_run() {
    local tag=$1 vt=$2 r=$3
    lm_conf "$tag" 1 "$tp_burst" 0 "$vt" 600
    start_landmark "$tag" "$work/logs/tp-$tag-$vt-$r.log"
    start_fleet "$tag" "$work/fleet-tp.csv" "$work/logs/tp-fleet-$tag-$vt-$r.log" --jitter-ms 0 \
      --chips-per-conn "$tp_k"
    wait_live "$tp_chips" 60
    sleep 3
    scrape >"$work/a.txt"; local c0 t0; c0=$(cpu_s "$lm"); t0=$(date +%s.%N)
    sleep "$window"
    scrape >"$work/b.txt"; local c1 t1; c1=$(cpu_s "$lm"); t1=$(date +%s.%N)
    stop_all
    local n rate cores eff rtt50 tok tbad
    n=$(delta chiploc_responses_accepted_total "$work/a.txt" "$work/b.txt")
    rate=$(calc "$n / ($t1 - $t0)")
    cores=$(calc "($c1 - $c0) / ($t1 - $t0)")
    eff=$(calc "$rate / $cores")
    rtt50=$(hist_quantile "$work/a.txt" "$work/b.txt" chiploc_rtt_seconds 0.5)
    tok=nan; tbad=nan
    if [ "$tag" = v2 ]; then
      tok=$(delta 'chiploc_transcripts_total{result="ok"}' "$work/a.txt" "$work/b.txt")
      tbad=$(calc "$(delta 'chiploc_transcripts_total{result="bad"}' "$work/a.txt" "$work/b.txt") + $(delta 'chiploc_transcripts_total{result="timeout"}' "$work/a.txt" "$work/b.txt")")
    fi
    echo "$tag $vt $rate $cores $eff $rtt50 $tok $tbad" >>"$work/tp.txt"
    echo "throughput round $r $tag verify_threads=$vt: $rate answers/s, landmark CPU $cores cores, $eff per CPU-second, RTT p50 <= $rtt50 s, transcripts ok $tok, failed $tbad"
  }
  for r in $(seq 1 "$rounds"); do
    "${PIN_LM[@]}" "$sigrate" --seconds 1 >>"$work/sigrate.txt"
    tp_run v2 2 "$r"
    rr=$("$reqresp" --conns "$tp_conns" --inflight "$tp_k" --seconds "$window" --warmup 3 "${rr_pin[@]}")
    rr_eff=$(sed -n 's/.*answers_per_cpu_s=\([0-9.]*\).*/\1/p' <<<"$rr")
    v2_eff=$(awk -v r="$r" '$1 == "v2" && $2 == 2 { e = $5 } END { print e }' "$work/tp.txt")
    echo "$rr_eff $(calc "$v2_eff / $rr_eff") $rr" >>"$work/rr.txt"
    echo "throughput round $r reqresp: $rr; landmark ratio $(calc "$v2_eff / $rr_eff")"
    rb=$("$reqresp" --conns "$tp_conns" --inflight "$tp_k" --seconds "$window" --warmup 3 \
      --burst "$tp_burst" --interval-ms 1000 "${rr_pin[@]}")
    rb_eff=$(sed -n 's/.*answers_per_cpu_s=\([0-9.]*\).*/\1/p' <<<"$rb")
    echo "$rb_eff $(calc "$v2_eff / $rb_eff") $rb" >>"$work/rb.txt"
    echo "throughput round $r reqresp --burst: $rb; landmark ratio $(calc "$v2_eff / $rb_eff")"
    tp_run v2 0 "$r"
    if [ -n "$v1" ]; then tp_run v1 2 "$r"; fi
  done
  "${PIN_LM[@]}" "$sigrate" --seconds 1 >>"$work/sigrate.txt"
  # One more run of the default setting under `perf record`, outside the
  # measured rounds (profiling slows the landmark a little): where its CPU
  # goes, per probe.
  : >"$work/profile.txt"
  if command -v perf >/dev/null 2>&1; then
    lm_conf v2 1 "$tp_burst" 0 2 600
    start_landmark v2 "$work/logs/tp-perf.log"
    start_fleet v2 "$work/fleet-tp.csv" "$work/logs/tp-fleet-perf.log" --jitter-ms 0 --chips-per-conn "$tp_k"
    wait_live "$tp_chips" 60
    sleep 3
    # System calls and context switches per verified answer, the landmark's
    # (all threads) against reqresp's server (counted the same way in a run
    # of its own).
    scrape >"$work/a.txt"
    perf_count "$lm" "$work/stat-lm.txt"
    scrape >"$work/b.txt"
    lm_answers=$(delta chiploc_responses_accepted_total "$work/a.txt" "$work/b.txt")
    perf_ok=0
    perf_lm=$lm
    if perf record -q -F 999 -g -p "$lm" -o "$work/perf.data" -- sleep "$window" >/dev/null 2>&1; then
      perf_ok=1
    fi
    stop_all
    if [ "$perf_ok" = 1 ]; then
      # Self time by shared object and by symbol (Debian's libsodium has no
      # symbols: its time is the answer MACs, the nonces and, per burst, the
      # transcript verification and record signature), and by thread (the
      # event loop, the verify threads, the writer).
      for k in dso dso,symbol pid; do
        perf report -i "$work/perf.data" --stdio --no-children -g none --sort "$k" \
          >"$work/report-$k.txt" 2>"$work/report-$k.err" || true
      done
      # perf_top KEY N: the first N entries of a report, or what perf said.
      perf_top() {
        if grep -qE '^ +[0-9.]+%' "$work/report-$1.txt"; then
          awk -v n="$2" '/^ +[0-9.]+%/ && k < n { print; k++ }' "$work/report-$1.txt"
        else
          echo "(perf report --sort $1 printed no entries: $(head -c 200 "$work/report-$1.err" | tr '\n' ' '))"
        fi
      }
      {
        echo "self time by object:"
        perf_top dso 8
        echo "top symbols:"
        perf_top dso,symbol 25 | awk '{ printf "%8s  %-24s %s\n", $1, $2, $4 }'
      } | sed 's/[[:space:]]*$//' >"$work/profile.txt"
      awk -v main="$perf_lm" '/^ +[0-9.]+%/ && k < 6 { split($2, t, ":"); k++
        print (t[1] == main ? "loop" : "other"), $1 }' "$work/report-pid.txt" >"$work/threads.txt"
    fi
    # reqresp counted the same way, in both modes, over 5 s of its window.
    for mode in rb rr; do
      extra=()
      if [ "$mode" = rb ]; then extra=(--burst "$tp_burst" --interval-ms 1000); fi
      "$reqresp" --conns "$tp_conns" --inflight "$tp_k" --seconds 9 --warmup 2 "${extra[@]}" \
        "${rr_pin[@]}" >"$work/$mode-stat.out" &
      rrpid=$!
      sleep 4
      perf_count "$rrpid" "$work/stat-$mode.txt"
      wait "$rrpid"
    done
    # per_answer FILE EVENT ANSWERS: EVENT's count in a perf stat file per answer
    per_answer() { awk -F, -v e="$2" -v n="$3" '$3 == e && n > 0 { printf "%.2f", $1 / n }' "$1"; }
    rb_n=$(calc "$(sed -n 's/.* answers_per_s=\([0-9.]*\).*/\1/p' "$work/rb-stat.out") * 5")
    rr_n=$(calc "$(sed -n 's/.* answers_per_s=\([0-9.]*\).*/\1/p' "$work/rr-stat.out") * 5")
    for e in "${perf_events[@]}"; do
      echo "$e $(per_answer "$work/stat-lm.txt" "$e" "$lm_answers") $(per_answer "$work/stat-rb.txt" "$e" "$rb_n") $(per_answer "$work/stat-rr.txt" "$e" "$rr_n")"
    done >"$work/percall.txt"
  fi
  PIN_LM=()
  PIN_SIM=()

  tpcol() { awk -v t="$1" -v vt="$2" -v c="$3" '$1 == t && $2 == vt { print $c }' "$work/tp.txt" | median %.6g; }
  p_rate=$(tpcol v2 2 3); p_cores=$(tpcol v2 2 4); p_eff=$(tpcol v2 2 5); p_rtt=$(tpcol v2 2 6)
  p_tok=$(tpcol v2 2 7); p_tbad=$(tpcol v2 2 8)
  i_rate=$(tpcol v2 0 3); i_cores=$(tpcol v2 0 4); i_eff=$(tpcol v2 0 5); i_rtt=$(tpcol v2 0 6)
  rr_eff=$(awk '{ print $1 }' "$work/rr.txt" | median %.6g)
  ratio=$(awk '{ print $2 }' "$work/rr.txt" | median %.6g)
  i_ratio=$(calc "$i_eff / $rr_eff")
  rr_rate=$(sed -n 's/.* answers_per_s=\([0-9.]*\).*/\1/p' "$work/rr.txt" | median %.6g)
  rr_cpu=$(sed -n 's/.* server_cpu_s=\([0-9.]*\).*/\1/p' "$work/rr.txt" | median %.6g)
  rr_rtt=$(sed -n 's/.* rtt_median_us=\([0-9.]*\).*/\1/p' "$work/rr.txt" | median %.6g)
  rb_eff=$(awk '{ print $1 }' "$work/rb.txt" | median %.6g)
  rb_ratio=$(awk '{ print $2 }' "$work/rb.txt" | median %.6g)
  rb_rate=$(sed -n 's/.* answers_per_s=\([0-9.]*\).*/\1/p' "$work/rb.txt" | median %.6g)
  rb_cpu=$(sed -n 's/.* server_cpu_s=\([0-9.]*\).*/\1/p' "$work/rb.txt" | median %.6g)
  rb_rtt=$(sed -n 's/.* rtt_median_us=\([0-9.]*\).*/\1/p' "$work/rb.txt" | median %.6g)
  rr_req=$(sed -n 's/.* request_bytes=\([0-9]*\).*/\1/p' "$work/rr.txt" | sed -n 1p)
  rr_rep=$(sed -n 's/.* reply_bytes=\([0-9]*\).*/\1/p' "$work/rr.txt" | sed -n 1p)
  vrate=$(sed -n 's/.*verify_per_s=\([0-9.]*\).*/\1/p' "$work/sigrate.txt" | median %.6g)
  srate=$(sed -n 's/.*sign_per_s=\([0-9.]*\).*/\1/p' "$work/sigrate.txt" | median %.6g)
  met=$(yn "$ratio >= 0.5")
  us_probe=$(calc "1e6 / $p_eff")
  # The per-burst Ed25519 work (one transcript verification, one record
  # signature) spread over the probes of a burst, at libsodium's own rates.
  sig_us=$(calc "(1e6 / $vrate + 1e6 / $srate) / $tp_burst")
  if [ -n "$v1" ]; then
    o_rate=$(tpcol v1 2 3); o_cores=$(tpcol v1 2 4); o_eff=$(tpcol v1 2 5); o_rtt=$(tpcol v1 2 6)
    v1_row="| protocol 1 (e0fb910), verify_threads = 2, same rounds | $(printf '%.0f' "$o_rate") | $(printf '%.2f' "$o_cores") | $(printf '%.0f' "$o_eff") | $(printf '%.2f' "$(calc "$o_eff / $rr_eff")") | $o_rtt |"
    v1_sum="protocol 1 same run: $(printf '%.0f' "$o_eff")"
  else
    v1_row="| protocol 1, 2026-11-26 (bursts of 64; not this run) | 9091 | 1.00 | 9098 | | 0.005 |"
    v1_sum="protocol 1 on 2026-11-26: 9098"
  fi
  if [ -n "${BENCH_SUMMARY:-}" ]; then
    echo "landmark throughput|$(printf '%.0f' "$p_eff") verified answers per landmark CPU-second ($(printf '%.0f' "$p_rate")/s on $(printf '%.2f' "$p_cores") cores; $v1_sum)|reqresp $(printf '%.0f' "$rr_eff") answers per server CPU-second, $tp_k in flight per connection ($(printf '%.2f' "$rb_ratio") x against reqresp with the landmark's bursts, $(printf '%.0f' "$rb_eff"))|$(printf '%.2f' "$ratio")|>= 0.5x|$met" >>"$BENCH_SUMMARY"
  fi
  if [ "$pin" = 1 ]; then
    pin_text="Every thread of the landmark is pinned to CPU 0 (taskset -c 0) and the
simulator to CPU 1; \`reqresp\` pins its server to CPU 0 and its client to
CPU 1 (\`--server-cpu 0 --client-cpu 1\`). PostgreSQL, which stores the
landmark's records, is not pinned."
  else
    pin_text="Nothing is pinned (fewer than 2 CPUs, or no taskset)."
  fi
  # The profile's split by thread, in µs of CPU per verified answer.
  loop_pct=""
  if [ -s "$work/threads.txt" ]; then
    loop_pct=$(awk '$1 == "loop" { sub("%", "", $2); print $2 }' "$work/threads.txt")
    pool_pct=$(awk '$1 == "other" { sub("%", "", $2); v[++n] = $2 } END { print v[1] + v[2] }' "$work/threads.txt")
    other_pct=$(awk '$1 == "other" { sub("%", "", $2); v[++n] = $2 } END { s = 0; for (i = 3; i <= n; i++) s += v[i]; print s }' "$work/threads.txt")
  fi
  {
    cat <<MD
## Landmark throughput (\`bench/landmark.sh\`)

Regenerate with \`bench/landmark.sh\` (or \`bench/all.sh\`; \`LM_SECTIONS=throughput\`
for this section alone; LM_ROUNDS, LM_WINDOW_S, LM_TP_CHIPS, V1_BUILD_DIR). Date $(date -u +%Y-%m-%dT%H:%MZ);
machine: $(nproc) cores, ${cpu:-unknown CPU}. Medians over $rounds rounds of
${window} s windows. Each round runs, back to back: landmarkd (verify_threads = 2)
fed by \`fleetsim\` with $tp_chips chips on $tp_conns connections ($tp_k chips each)
answering at once (bursts of $tp_burst back-to-back probes every second, no
simulated distance); the baseline \`bench/reqresp --conns $tp_conns --inflight $tp_k
--seconds $window --warmup 3\`, a plain libuv server writing a $rr_req-byte request
and reading a $rr_rep-byte reply (the sizes of a Challenge and a Response frame)
over $tp_conns loopback connections with $tp_k requests in flight on each (one per
chip), answered at once by a forked client, with no protocol and no
cryptography; the same with \`--burst $tp_burst --interval-ms 1000\`, where each of
the $tp_k requesters of a connection sends what the landmark sends a chip (bursts
of $tp_burst back to back every second, ±10 %); landmarkd with verify_threads = 0;
$([ -n "$v1" ] && echo "protocol 1's landmarkd and simulator (V1_BUILD_DIR) the same way;")
and libsodium's Ed25519 rates (\`bench/sigrate\`, one thread). Ratios are taken per
round and their median reported. $pin_text
CPU is user + system time of all threads (the landmark's from
/proc/PID/stat, reqresp's from getrusage) over the same window.

| | verified answers/s | CPU (cores) | answers per CPU-second | ratio | RTT p50 |
|---|---|---|---|---|---|
| landmarkd, verify_threads = 2 (default) | $(printf '%.0f' "$p_rate") | $(printf '%.2f' "$p_cores") | $(printf '%.0f' "$p_eff") | | ≤ $p_rtt s |
| reqresp, $tp_k in flight per connection (**the baseline**) | $(printf '%.0f' "$rr_rate") | $(printf '%.2f' "$(calc "$rr_cpu / $window")") | $(printf '%.0f' "$rr_eff") | **$(printf '%.2f' "$ratio")** | $(printf '%.0f' "$rr_rtt") µs |
| reqresp, the landmark's bursts (\`--burst $tp_burst\`) | $(printf '%.0f' "$rb_rate") | $(printf '%.2f' "$(calc "$rb_cpu / $window")") | $(printf '%.0f' "$rb_eff") | $(printf '%.2f' "$rb_ratio") | $(printf '%.0f' "$rb_rtt") µs |
| landmarkd, verify_threads = 0 (per-burst signatures on the loop) | $(printf '%.0f' "$i_rate") | $(printf '%.2f' "$i_cores") | $(printf '%.0f' "$i_eff") | $(printf '%.2f' "$i_ratio") | ≤ $i_rtt s |
$v1_row

The ratio column is landmarkd's answers per CPU-second over the row's
(landmarkd rows: over the baseline's). Target: ≥ 0.5 × the plain server's
answers per CPU-second. Met: **$met** ($(printf '%.2f' "$ratio") ×; against the plain server
carrying the landmark's own traffic pattern: $(printf '%.2f' "$rb_ratio") ×). The baseline keeps
every requester busy, so each of its reads returns several replies; the
landmark's chips are idle between bursts, as are reqresp's in \`--burst\` mode.
Transcripts per window (verify_threads = 2): $(printf '%.0f' "$p_tok") verified, $(printf '%.0f' "$p_tbad") failed or timed out.

A verified answer costs the landmark $(printf '%.1f' "$us_probe") µs of CPU, the plain server
$(printf '%.1f' "$(calc "1e6 / $rr_eff")") µs ($(printf '%.1f' "$(calc "1e6 / $rb_eff")") µs with the landmark's bursts). Per answer the landmark
reads and decodes the Response, checks it (the answer MAC: one keyed
BLAKE2b), draws the next nonce, encodes and writes the next Challenge and
updates the timer queue; per burst it sends a BurstEnd, reads a Transcript,
hands one Ed25519 verification (the chip's transcript) and one Ed25519
signature (the record) to a verify thread ($(printf '%.1f' "$sig_us") µs per answer at
libsodium's rates here: verify $(printf '%.0f' "$vrate")/s, sign $(printf '%.0f' "$srate")/s per core) and passes
the record to the database writer. Protocol 1 paid one Ed25519
verification and one signature for every answer (about $(printf '%.0f' "$(calc "1e6 / $vrate + 1e6 / $srate")") µs here).
MD
    if [ -s "$work/profile.txt" ]; then
      printf '\nWhere the CPU goes: profile of landmarkd (verify_threads = 2), all threads (`perf record\n'
      # shellcheck disable=SC2016 # the backquotes are Markdown
      printf -- '-F 999 -g -p PID`, one extra %s s run after the measured ones):\n\n```\n' "$window"
      cat "$work/profile.txt"
      printf '```\n'
    fi
    if [ -n "$loop_pct" ]; then
      cat <<MD

By thread: the event loop $loop_pct % of the samples ($(printf '%.1f' "$(calc "$us_probe * $loop_pct / 100")") µs per answer), the two
verify threads $pool_pct % ($(printf '%.1f' "$(calc "$us_probe * $pool_pct / 100")") µs per answer: the per-burst Ed25519 work,
which is nearly all of libsodium's share, and the hand-offs), the rest
(database writer) $other_pct %.
MD
    fi
    if [ -s "$work/percall.txt" ]; then
      # shellcheck disable=SC2016 # the backquotes are Markdown
      printf '\nSystem calls and context switches per answer (`perf stat`, 5 s, all threads):\n\n'
      printf '| per answer | landmarkd | reqresp, bursts | reqresp, %s in flight |\n|---|---|---|---|\n' "$tp_k"
      while read -r e l b c; do
        case $e in
          raw_syscalls:sys_enter) e="system calls" ;;
          syscalls:sys_enter_*) e=${e#syscalls:sys_enter_} ;;
        esac
        printf '| %s | %s | %s | %s |\n' "$e" "${l:-?}" "${b:-?}" "${c:-?}"
      done <"$work/percall.txt"
    fi
    if [ -n "$loop_pct" ] && [ -s "$work/percall.txt" ]; then
      pa() { awk -v e="$1" -v c="$2" '$1 == e { print $c }' "$work/percall.txt"; }
      loop_us=$(calc "$us_probe * $loop_pct / 100")
      cat <<MD

Where the gap is: the event loop alone spends $(printf '%.1f' "$loop_us") µs per answer, which by
itself would be $(printf '%.2f' "$(calc "1e6 / $rr_eff / $loop_us")") × the baseline ($(printf '%.2f' "$(calc "1e6 / $rb_eff / $loop_us")") × the plain server with the
same bursts); the verify threads' per-burst Ed25519 work and hand-offs
add $(printf '%.1f' "$(calc "$us_probe * $pool_pct / 100")") µs. Most of the loop's time is in the kernel: it makes
$(pa raw_syscalls:sys_enter 2) system calls per answer where the plain server makes $(pa raw_syscalls:sys_enter 3) with the same bursts
and $(pa raw_syscalls:sys_enter 4) with every requester busy: besides the write of each Challenge (both
make one) and the reads, one getrandom per answer ($(pa syscalls:sys_enter_getrandom 2): the Challenge's
nonce; libsodium's \`randombytes_buf\` is one getrandom system call per call),
and futex wake-ups and context switches for the hand-offs to the verify
threads and the writer ($(pa syscalls:sys_enter_futex 2) futex calls, $(pa context-switches 2) context switches per answer).
MD
    fi
  } >"$work/throughput.md"
  splice_section "$results_md" throughput "$work/throughput.md"
  cat "$work/throughput.md"
fi

# ---- slow chip --------------------------------------------------------------
if has slowchip; then
  fleet_csv "$work/fleet-slow.csv" 0 "$slow_chips"
  : >"$work/slow.txt"
  # slow_run TAG DELAY_MS: the fleet for SLOW_SECONDS after it registered;
  # appends "TAG DELAY chips records median_min_rtt_ns min p90" to slow.txt
  # (minimum RTT per chip over the stored records, quantiles over chips).
  slow_run() {
    local tag=$1 d=$2 extra=()
    if [ "$tag" = v2 ]; then extra=(--sign-delay-ms "$d"); fi
    sql "$tag" "TRUNCATE measurements" >/dev/null
    lm_conf "$tag" 1 "$tp_burst" 0 2 600
    start_landmark "$tag" "$work/logs/slow-$tag-$d.log"
    start_fleet "$tag" "$work/fleet-slow.csv" "$work/logs/slow-fleet-$tag-$d.log" --jitter-ms 0 \
      --chips-per-conn "$tp_k" "${extra[@]}"
    wait_live "$slow_chips" 60
    sleep "$slow_seconds"
    scrape >"$work/m.txt"
    stop_all
    local line
    line=$(sql "$tag" "SELECT count(*), sum(n),
        percentile_disc(0.5) WITHIN GROUP (ORDER BY m), min(m),
        percentile_disc(0.9) WITHIN GROUP (ORDER BY m)
      FROM (SELECT chip_id, min(rtt_ns) AS m, count(*) AS n FROM measurements GROUP BY chip_id) c")
    echo "$tag $d $line" >>"$work/slow.txt"
    echo "slowchip $tag sign delay ${d} ms: chips, records, median/min/p90 of the per-chip minimum RTT (ns): $line"
  }
  slow_run v2 0
  slow_run v2 5
  if [ -n "$v1" ] && [ "$v1_wanted" = 1 ]; then slow_run v1 0; fi
  srow() { awk -v t="$1" -v d="$2" '$1 == t && $2 == d' "$work/slow.txt"; }
  read -r _ _ s0_chips s0_n s0_med s0_min s0_p90 <<<"$(srow v2 0)"
  read -r _ _ s5_chips s5_n s5_med s5_min s5_p90 <<<"$(srow v2 5)"
  km() { calc "$1 * $km_per_ns"; }
  b0=$(km "$s0_med"); b5=$(km "$s5_med")
  infl=$(calc "5e6 * $km_per_ns")
  diff=$(calc "$b5 - $b0")
  met=$(yn "$diff < 0.01 * $infl")
  if [ -n "$v1" ] && [ -n "$(srow v1 0)" ]; then
    read -r _ _ o_chips o_n o_med o_min o_p90 <<<"$(srow v1 0)"
    v1_rows="| protocol 1 (e0fb910), signing at once, same run | $o_chips | $o_n | $(printf '%.1f' "$(calc "$o_med / 1000")") | **$(printf '%.1f' "$(km "$o_med")")** | $(printf '%.1f' "$(km "$o_min")") | $(printf '%.1f' "$(km "$o_p90")") |
| protocol 1, 5 ms signer (computed: + 5 ms inside every RTT) | | | $(printf '%.1f' "$(calc "$o_med / 1000 + 5000")") | **$(printf '%.1f' "$(calc "$(km "$o_med") + $infl")")** | $(printf '%.1f' "$(calc "$(km "$o_min") + $infl")") | $(printf '%.1f' "$(calc "$(km "$o_p90") + $infl")") |"
  else
    v1_rows="| protocol 1, 5 ms signer (computed: this run's 0 ms figures + 5 ms inside every RTT) | | | $(printf '%.1f' "$(calc "$s0_med / 1000 + 5000")") | **$(printf '%.1f' "$(calc "$b0 + $infl")")** | $(printf '%.1f' "$(calc "$(km "$s0_min") + $infl")") | $(printf '%.1f' "$(calc "$(km "$s0_p90") + $infl")") |"
  fi
  if [ -n "${BENCH_SUMMARY:-}" ]; then
    echo "slow chip: bound with a 5 ms signer|$(printf '%.1f' "$b5") km (0 ms signer: $(printf '%.1f' "$b0") km; protocol 1: + $(printf '%.1f' "$infl") km)|0 ms signer, same run|$(printf '%.2f' "$(calc "$b5 / $b0")")|increase < 1 % of 749.5 km|$met" >>"$BENCH_SUMMARY"
  fi
  cat >"$work/slowchip.md" <<MD
## Slow chip: the signature outside the timed window (\`bench/landmark.sh\`)

Regenerate with \`bench/landmark.sh\` (\`LM_SECTIONS=slowchip\` for this
section alone; SLOW_CHIPS, SLOW_SECONDS, V1_BUILD_DIR). Date $(date -u +%Y-%m-%dT%H:%MZ);
machine: $(nproc) cores, ${cpu:-unknown CPU}. One landmarkd and one \`fleetsim\`
with $slow_chips chips ($tp_k per connection, no simulated distance, no jitter),
bursts of $tp_burst back-to-back probes every second, ${slow_seconds} s after every chip
registered; run twice, with \`--sign-delay-ms 0\` and \`--sign-delay-ms 5\` (every
signature by a chip's identity key, handshake and transcript, completes
5 ms later, as a slow hardware root of trust would, without holding up
the simulator's answers). Each chip's bound is its minimum RTT over every
probe of its stored records (\`min(rtt_ns)\` of its measurements: each
record's rtt_ns is its burst's fastest probe) times c/2; the figure is the
median over chips.

| chips' signing time | chips | records | median per-chip minimum RTT (µs) | bound, median over chips (km) | fastest chip's bound (km) | 90th percentile over chips (km) |
|---|---|---|---|---|---|---|
| 0 ms | $s0_chips | $s0_n | $(printf '%.1f' "$(calc "$s0_med / 1000")") | **$(printf '%.1f' "$b0")** | $(printf '%.1f' "$(km "$s0_min")") | $(printf '%.1f' "$(km "$s0_p90")") |
| 5 ms | $s5_chips | $s5_n | $(printf '%.1f' "$(calc "$s5_med / 1000")") | **$(printf '%.1f' "$b5")** | $(printf '%.1f' "$(km "$s5_min")") | $(printf '%.1f' "$(km "$s5_p90")") |
$v1_rows

The 5 ms signer's bound differs from the instant one's by $(printf '%.1f' "$diff") km
(target: the same bound; met, taken as a difference under 1 % of the
$(printf '%.1f' "$infl") km a timed 5 ms signature would add: **$met**). In protocol 1 the
chip's Ed25519 signature of each answer was inside the timed window, so a
chip taking 5 ms to sign added 5 ms to every RTT: c × 5 ms / 2 =
$(printf '%.1f' "$infl") km to every bound. Protocol 2 times only the answer MAC; the
chip's signatures (handshake, transcript) come after the window.
MD
  splice_section "$results_md" slowchip "$work/slowchip.md"
  cat "$work/slowchip.md"
fi

# ---- scale ----------------------------------------------------------------
if has scale; then
  fleet_csv "$work/fleet-scale.csv" 0 "$scale_chips"
  # scale_run INTERVAL CHIPS_PER_CONN TAG: registers every chip, then watches
  # SCALE_WINDOW_S seconds. Appends a line to scale.txt.
  : >"$work/scale.txt"
  sql v2 "TRUNCATE measurements" >/dev/null
  scale_run() {
    local interval=$1 k=$2 tag=$3
    local idle=$((interval * 2 + 120))
    lm_conf v2 "$interval" 5 100 2 "$idle"
    start_landmark v2 "$work/logs/scale-$tag.log"
    local rss0
    rss0=$(rss_kb "$lm")
    local ts
    ts=$(date +%s.%N)
    start_fleet v2 "$work/fleet-scale.csv" "$work/logs/scale-fleet-$tag.log" --jitter-ms 0.2 \
      --chips-per-conn "$k" --bind-base 127.0.0.2 --bind-count 4 --connect-rate 2000
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
    to0=$(metric 'chiploc_timeouts_total{kind="probe"}' "$work/a.txt")
    to1=$(metric 'chiploc_timeouts_total{kind="probe"}' "$work/b.txt")
    echo "$tag $interval $k ${conns%.*} $rss0 $rss1 $fsrss $treg $rate $cores $lag50 $lag99 $lag999 $(calc "$to1 - $to0")" >>"$work/scale.txt"
    echo "scale $tag: interval ${interval}s, $k chips/conn, ${conns%.*} connections: landmark RSS ${rss0} -> ${rss1} kB, registered in ${treg}s, $rate probes/s on $cores cores, lag p50/p99/p99.9 <= $lag50/$lag99/$lag999 s"
  }
  for iv in $scale_intervals; do scale_run "$iv" 8 "i$iv"; done
  first=${scale_intervals%% *}
  scale_run "$first" 64 "k64"

  # On-disk cost of one stored measurement (heap, indexes, TOAST), from the
  # rows the scale runs wrote: the figure docs/SCALING.md multiplies out. The
  # table is partitioned: its size is the sum of its partitions'.
  sql v2 "VACUUM ANALYZE measurements" >/dev/null
  read -r mrows mbytes mprobes < <(sql v2 \
    "SELECT (SELECT count(*) FROM measurements),
            (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits
              WHERE inhparent = 'measurements'::regclass),
            (SELECT avg(probe_count) FROM measurements)")
  row() { awk -v t="$1" '$1 == t' "$work/scale.txt"; }
  read -r _ _ _ conns8 base8 rss8 fsrss8 treg8 _ <<<"$(row "i$first")"
  read -r _ _ _ conns64 base64 rss64 _ _ _ <<<"$(row k64)"
  # rss = base + chips * per_chip + conns * per_conn, from the two runs
  per_conn=$(calc "(($rss8 - $base8) - ($rss64 - $base64)) * 1024 / ($conns8 - $conns64)")
  per_chip=$(calc "(($rss8 - $base8) * 1024 - $conns8 * $per_conn) / $scale_chips")
  rss_mib=$(calc "$rss8 / 1024")
  met=$(yn "$rss8 <= 1048576")
  if [ -n "${BENCH_SUMMARY:-}" ]; then
    echo "scale: landmarkd RSS, $scale_chips chips on $conns8 connections|$(printf '%.0f' "$rss_mib") MiB ($(printf '%.0f' "$per_chip") B/chip, $(printf '%.0f' "$per_conn") B/connection; protocol 1 on 2026-11-26: 251 MiB, 2242 B/chip)|1 GiB limit|$(printf '%.2f' "$(calc "$rss8 / 1048576")")|<= 1 GiB|$met" >>"$BENCH_SUMMARY"
  fi
  {
    cat <<MD
## Scale: 100,000 chips on one landmarkd (\`bench/landmark.sh\`)

Regenerate with \`bench/landmark.sh\` (or \`bench/all.sh\`; \`LM_SECTIONS=scale\`
for this section alone; SCALE_CHIPS, SCALE_WINDOW_S, SCALE_INTERVALS). Date $(date -u +%Y-%m-%dT%H:%MZ);
machine: $(nproc) cores, ${cpu:-unknown CPU}. One landmarkd (verify_threads = 2,
bursts of 5 probes 100 ms apart, jitter 0.1) and one \`fleetsim\` with
$scale_chips enrolled chips, 8 per connection from source addresses
127.0.0.2–127.0.0.5 (\`--bind-base\`, \`--bind-count 4\`), opening 2000
connections per second. Each run registers every chip (a session each:
handshake signed by the landmark, the chip's signature verified), then
watches ${scale_window} s. Probe lag is \`chiploc_probe_lag_seconds\` over that window
(send time minus the time the chip's timer was set for; quantiles are the
upper bound of their histogram bucket, and the smallest bucket, 1 ms, is the
timer clock's resolution).

Memory: landmarkd's resident set was $(printf '%.0f' "$rss_mib") MiB with $scale_chips chips on
$conns8 connections (target ≤ 1 GiB: **$met**), $(printf '%.0f' "$(calc "$base8 / 1024")") MiB of it before the
first connection (the enrolled set of keys, libraries). A second run
with 64 chips per connection ($conns64 connections) separates the two costs:
about **$(printf '%.0f' "$per_chip") bytes per chip** (its session: handshake and session key;
its timer, a ring of 8 remembered challenges, burst state and the burst
awaiting its transcript, map entry) and **$(printf '%.0f' "$per_conn") bytes
per connection** in user space (frame assembler, handles); the kernel's socket
buffers come on top and are not in the resident set. All $scale_chips chips
registered in $(printf '%.1f' "$treg8") s. The simulator itself held $(printf '%.0f' "$(calc "$fsrss8 / 1024")") MiB.
Protocol 1 (2026-11-26, no sessions): 251 MiB, 2242 bytes per chip and
1223 bytes per connection; all chips registered in 12.9 s.

Storage: the runs stored $mrows measurements (on average $(printf '%.1f' "$mprobes") probes each, every
probe's entry kept) in $(printf '%.1f' "$(calc "$mbytes / 1048576")") MiB of table, indexes
and TOAST: **$(printf '%.0f' "$(calc "$mbytes / ($mrows > 0 ? $mrows : 1)")") bytes per measurement row** on disk
(protocol 1: 564 bytes per row of one probe's signatures).

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
  splice_section "$results_md" scale "$work/scale.md"
  cat "$work/scale.md"
fi

# ---- mass reconnect -----------------------------------------------------------
if has reconnect; then
  fleet_csv "$work/fleet-a.csv" 0 "$rc_base"
  fleet_csv "$work/fleet-b.csv" "$rc_base" "$rc_chips"
  : >"$work/rc.txt"
  # a_rtt TAG T0_NS T1_NS: the first fleet's records measured between two
  # wall-clock times: "records median_of_record_minimum_ns probes
  # median_probe_rtt_ns p99_probe_rtt_ns" (every probe from the probes
  # column, 80 bytes an entry with the RTT in its last 8, big-endian; protocol
  # 1 stored one probe per record, so the record's rtt_ns stands for it).
  a_rtt() {
    local tag=$1 q
    local where="m.chip_id = c.id AND substring(c.serial from 7)::bigint < $rc_base
      AND m.measured_at_ns >= $2 AND m.measured_at_ns < $3"
    if [ "$tag" = v2 ]; then
      q="WITH r AS (SELECT m.rtt_ns, m.probes, m.probe_count FROM measurements m, chips c WHERE $where),
        p AS (SELECT ('x' || encode(substring(r.probes from i * 80 + 73 for 8), 'hex'))::bit(64)::bigint AS rtt
              FROM r, generate_series(0, r.probe_count - 1) AS i)
        SELECT (SELECT count(*) FROM r),
               (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY rtt_ns) FROM r),
               (SELECT count(*) FROM p),
               (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY rtt) FROM p),
               (SELECT percentile_disc(0.99) WITHIN GROUP (ORDER BY rtt) FROM p)"
    else
      q="WITH r AS (SELECT m.rtt_ns FROM measurements m, chips c WHERE $where)
        SELECT count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY rtt_ns), count(*),
               percentile_disc(0.5) WITHIN GROUP (ORDER BY rtt_ns),
               percentile_disc(0.99) WITHIN GROUP (ORDER BY rtt_ns) FROM r"
    fi
    sql "$tag" "$q"
  }
  # rc_run TAG [nice]: the first fleet registered and probed; a quiet
  # window of RECONNECT_QUIET_S; then the second fleet connecting at
  # RECONNECT_RATE connections per second, the storm window lasting until
  # every chip is live. Appends one line per window to rc.txt, labelled TAG
  # (TAG-nice with `nice`: every landmarkd thread but the event loop reniced
  # to 19 once started).
  rc_run() {
    local tag=$1 label=$1
    if [ "${2:-}" = nice ]; then label=$1-nice; fi
    sql "$tag" "TRUNCATE measurements" >/dev/null
    lm_conf "$tag" "$rc_interval" 5 100 2 $((rc_interval * 2 + 120))
    if [ "$pin" = 1 ]; then PIN_LM=(taskset -c 0); PIN_SIM=(taskset -c 1); fi
    start_landmark "$tag" "$work/logs/rc-$label.log"
    if [ "$label" != "$tag" ]; then
      local t
      for t in /proc/"$lm"/task/*; do
        if [ "${t##*/}" != "$lm" ]; then renice -n 19 -p "${t##*/}" >/dev/null; fi
      done
    fi
    start_fleet "$tag" "$work/fleet-a.csv" "$work/logs/rc-fleet-a-$label.log" --jitter-ms 0 \
      --chips-per-conn "$tp_k"
    wait_live "$rc_base" 60
    # The first bursts are spread uniformly over the first interval: the
    # probe rate is already the steady one.
    sleep 5
    local q0 q1 s1 c0 c1 c2
    scrape >"$work/rc-q0.txt"; q0=$(now_ns); c0=$(cpu_s "$lm")
    sleep "$rc_quiet"
    scrape >"$work/rc-q1.txt"; q1=$(now_ns); c1=$(cpu_s "$lm")
    # The storm's simulator stands for chips on other machines: at the
    # lowest priority, it takes no CPU the first fleet's simulator wants.
    PIN_SIM=(nice -n 19 "${PIN_SIM[@]}")
    start_fleet "$tag" "$work/fleet-b.csv" "$work/logs/rc-fleet-b-$label.log" --jitter-ms 0 \
      --chips-per-conn "$tp_k" --bind-base 127.0.0.2 --bind-count 4 --connect-rate "$rc_rate"
    # The first storm of protocol 2: how long the event loop waited for
    # CPU 0 and ran at a stretch, from the scheduler's own record (the
    # storm's first 20 s).
    local sched=""
    if [ "$label" = v2 ] && [ ! -e "$work/sched.data" ] && [ "$pin" = 1 ] &&
      command -v perf >/dev/null 2>&1; then
      perf sched record -C 0 -o "$work/sched.data" -- sleep 20 >/dev/null 2>&1 &
      sched=$!
    fi
    wait_live $((rc_base + rc_chips)) 600
    if [ -n "$sched" ]; then
      wait "$sched" || true
      # loop: run time, summed and longest wait for the CPU once runnable,
      # longest run, all in ms over the 20 s
      perf sched timehist -i "$work/sched.data" 2>/dev/null |
        awk -v m="$lm" '$3 ~ /^landmarkd\[/ { split($3, t, "[][/]"); if (t[2] != m) next
          run += $6; d += $5; if ($5 > md) md = $5; if ($6 > mr) mr = $6; n++ }
          END { if (n) printf "%.0f %.0f %.1f %.1f\n", run, d, md, mr }' >"$work/sched.txt" || true
    fi
    scrape >"$work/rc-s1.txt"; s1=$(now_ns); c2=$(cpu_s "$lm")
    local rss fsrss
    rss=$(rss_kb "$lm"); fsrss=$(rss_kb "$fs")
    # Leave time for the storm's last records to be written.
    sleep 3
    stop_all
    PIN_LM=()
    PIN_SIM=()
    local w a b t0 t1 cpu0 cpu1 secs
    for w in quiet storm; do
      if [ $w = quiet ]; then a=rc-q0; b=rc-q1; t0=$q0; t1=$q1; cpu0=$c0; cpu1=$c1
      else a=rc-q1; b=rc-s1; t0=$q1; t1=$s1; cpu0=$c1; cpu1=$c2; fi
      secs=$(calc "($t1 - $t0) / 1e9")
      echo "$label $w $secs $(calc "($cpu1 - $cpu0) / $secs") \
$(delta chiploc_probes_sent_total "$work/$a.txt" "$work/$b.txt") \
$(hist_quantile "$work/$a.txt" "$work/$b.txt" chiploc_probe_lag_seconds 0.5) \
$(hist_quantile "$work/$a.txt" "$work/$b.txt" chiploc_probe_lag_seconds 0.99) \
$(hist_quantile "$work/$a.txt" "$work/$b.txt" chiploc_probe_lag_seconds 1) \
$(hist_quantile "$work/$a.txt" "$work/$b.txt" chiploc_rtt_seconds 0.5) \
$(delta 'chiploc_timeouts_total{kind="probe"}' "$work/$a.txt" "$work/$b.txt") \
$(a_rtt "$tag" "$t0" "$t1") $rss $fsrss" >>"$work/rc.txt"
    done
    tail -n 2 "$work/rc.txt" | sed 's/^/reconnect: /'
  }
  rm -f "$work/sched.data" "$work/sched.txt"
  for r in $(seq 1 "$rc_rounds"); do
    rc_run v2
    if [ -n "$v1" ] && [ "$v1_wanted" = 1 ]; then rc_run v1; fi
  done
  rc_run v2 nice
  # fields: tag window secs cores probes lag50 lag99 lagmax rtt50_bucket timeouts
  #         records rec_med probes probe_med probe_p99 rss fsrss
  # rcrow LABEL WINDOW: that window's line, each figure the median over the
  # rounds (bucket bounds and counts alike).
  rcrow() {
    awk -v t="$1" -v w="$2" '$1 == t && $2 == w { n++; for (i = 3; i <= NF; i++) v[i, n] = $i; nf = NF }
      END { if (!n) exit
        printf "%s %s", t, w
        for (i = 3; i <= nf; i++) {
          m = 0; for (j = 1; j <= n; j++) if (v[i, j] != "nan") a[++m] = v[i, j] + 0
          for (x = 2; x <= m; x++) for (y = x; y > 1 && a[y - 1] > a[y]; y--) { z = a[y]; a[y] = a[y - 1]; a[y - 1] = z }
          printf " %s", (m == 0 ? "nan" : (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2))
        }
        print "" }' "$work/rc.txt"
  }
  us() { awk -v v="$1" 'BEGIN { if (v == "" || v == "nan") print "–"; else printf "%.1f", v / 1000 }'; }
  rc_table_row() {
    local label=$1 line=$2
    read -r _ _ secs cores probes l50 l99 lmax r50 to recs rmed _ pmed p99 _ _ <<<"$line"
    printf '| %s | %.1f | %.2f | %.0f | %s | %s | %s | %s | %.0f | %s | %s | %s | %s |\n' "$label" \
      "$secs" "$cores" "$probes" "$l50" "$l99" "$lmax" "$r50" "$to" "$recs" "$(us "$rmed")" \
      "$(us "$pmed")" "$(us "$p99")"
  }
  read -r _ _ _ _ _ _ st_l99 _ _ _ _ _ _ st_pmed _ st_rss st_fsrss <<<"$(rcrow v2 storm)"
  read -r _ _ _ _ _ _ q_l99 _ _ _ _ _ _ q_pmed _ _ _ <<<"$(rcrow v2 quiet)"
  rtt_ratio=$(calc "$st_pmed / $q_pmed")
  read -r _ _ _ _ _ _ n_l99 n_lmax _ n_to _ _ _ n_pmed _ _ _ <<<"$(rcrow v2-nice storm)"
  read -r _ _ _ _ _ _ _ _ _ _ _ _ _ nq_pmed _ _ _ <<<"$(rcrow v2-nice quiet)"
  read -r _ _ _ _ _ _ _ _ _ _ _ st_rmed _ _ _ _ _ <<<"$(rcrow v2 storm)"
  read -r _ _ _ _ _ _ _ _ _ _ _ q_rmed _ _ _ _ _ <<<"$(rcrow v2 quiet)"
  # sched_text: what the scheduler recorded of the event loop in the first
  # storm, if it could.
  sched_text() {
    local run wait maxwait maxrun
    if ! read -r run wait maxwait maxrun <"$work/sched.txt" 2>/dev/null || [ -z "$maxrun" ]; then
      return 0
    fi
    # shellcheck disable=SC2016 # the backquotes are Markdown
    printf 'Over the first 20 s of the first storm (`perf sched record -C 0`) the\nevent loop ran %s ms (%s %% of the time), waited for the CPU %s ms in all\nonce runnable (at most %s ms at a time) and ran at most %s ms at a stretch' \
      "$run" "$(calc "$run / 200")" "$wait" "$maxwait" "$maxrun"
    if [ "$(yn "($maxwait + $maxrun) * 4 < $st_l99 * 1000 && $run < 10000")" = yes ]; then
      printf ':\nit was neither starved of the CPU nor busy for anything like the lag\nabove, and slept most of the storm while probes came due late. That\npoints at how the core'"'"'s timers are kept armed during a storm, not at the\nCPU.'
    else
      printf '.'
    fi
  }
  # "Not delayed": the storm's 99th percentile of lag stays in the quiet
  # window's bucket or the next one (the buckets grow ×2–2.5), and the
  # first fleet's median RTT within 1.5 × the quiet one.
  lag_next=$(awk -v q="$q_l99" 'BEGIN { n = split("0.001 0.002 0.005 0.01 0.02 0.05 0.1 0.2 0.5 1 2 5 10", b, " ")
    for (i = 1; i <= n; i++) if (b[i] + 0 >= q + 0) { print b[(i < n) ? i + 1 : n]; exit } print q }')
  met=$(yn "$st_l99 <= $lag_next && $rtt_ratio <= 1.5")
  if [ -n "${BENCH_SUMMARY:-}" ]; then
    echo "mass reconnect: $rc_chips chips joining $rc_base probed ones|probe lag p99 <= $st_l99 s, first fleet's RTT p50 $(us "$st_pmed") us (verify threads at nice 19: lag p99 <= $n_l99 s)|quiet window before it: lag p99 <= $q_l99 s, RTT p50 $(us "$q_pmed") us|$(printf '%.2f' "$rtt_ratio")|lag p99 within one bucket, RTT p50 <= 1.5x|$met" >>"$BENCH_SUMMARY"
  fi
  {
    cat <<MD
## Mass reconnect: probes of connected chips during a registration storm (\`bench/landmark.sh\`)

Regenerate with \`bench/landmark.sh\` (\`LM_SECTIONS=reconnect\` for this section
alone; RECONNECT_CHIPS, RECONNECT_RATE, RECONNECT_INTERVAL_S, RECONNECT_QUIET_S,
V1_BUILD_DIR). Date $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, ${cpu:-unknown CPU}.
One landmarkd (verify_threads = 2, bursts of 5 probes 100 ms apart every
${rc_interval} s, jitter 0.1: the default schedule$([ "$pin" = 1 ] && echo "; every thread pinned to CPU 0")). A first \`fleetsim\` with $rc_base chips
($tp_k per connection, no simulated distance, no jitter$([ "$pin" = 1 ] && echo "; CPU 1")) registers and runs 5 s
(first bursts are spread over the first interval, so its probe rate is
steady from the start); then a quiet window of ${rc_quiet} s; then a second \`fleetsim\`
with $rc_chips more chips ($tp_k per connection from 127.0.0.2–127.0.0.5$([ "$pin" = 1 ] && echo "; CPU 1"), at
nice 19: it stands for chips on other machines and must not take CPU from
the first fleet's simulator, whose answers are timed) opens its connections at
$rc_rate per second, and the storm window lasts until every chip of both fleets is
live (each new chip a full session handshake: the landmark's X25519 key and
signature, the chip's signature verified, on the verify threads). Probe lag
(\`chiploc_probe_lag_seconds\`, every challenge sent, both fleets) and the RTT
histogram are quantiles between scrapes at the window's ends (upper bounds of
their buckets); the first fleet's RTTs come from its stored records whose
burst ended in the window (every probe's RTT from the records' probes
column). Every figure is the median over $rc_rounds rounds$([ -n "$v1" ] && echo " (protocol 2 and protocol 1 alternating)"); the
run with reniced threads is one more. The landmark's resident set at the end
of the storm: $(printf '%.0f' "$(calc "$st_rss / 1024")") MiB (the second simulator's: $(printf '%.0f' "$(calc "$st_fsrss / 1024")") MiB).

| window | length (s) | landmark CPU (cores) | probes sent | lag p50 ≤ (s) | lag p99 ≤ (s) | lag max ≤ (s) | RTT p50 ≤ (s, all chips) | probe timeouts | first fleet: records | record minimum RTT p50 (µs) | probe RTT p50 (µs) | probe RTT p99 (µs) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
MD
    rc_table_row "quiet, before" "$(rcrow v2 quiet)"
    rc_table_row "**storm**" "$(rcrow v2 storm)"
    rc_table_row "verify threads and writer at nice 19 (one run): quiet" "$(rcrow v2-nice quiet)"
    rc_table_row "verify threads and writer at nice 19 (one run): storm" "$(rcrow v2-nice storm)"
    if [ -n "$(rcrow v1 quiet)" ]; then
      rc_table_row "protocol 1 (e0fb910), quiet" "$(rcrow v1 quiet)"
      rc_table_row "protocol 1, storm" "$(rcrow v1 storm)"
    fi
    cat <<MD

Target: a mass reconnect must not delay the probes of chips already
connected, taken as: the storm's lag p99 in the quiet window's bucket or the
next one up (≤ $lag_next s), and the first fleet's median probe RTT at most
1.5 × the quiet window's ($(printf '%.2f' "$rtt_ratio") ×). Met: **$met**.

During the storm the event loop shares CPU 0 with the two verify threads,
busy with the handshakes (per chip an X25519 key pair and shared secret, one
signature and, for its Confirm, one verification: most of the storm's CPU
above), and takes on the new chips' first bursts. $(sched_text)
With every thread but the event loop reniced to 19 once started (landmarkd
does not do this itself; one run) the storm's lag p99 was ≤ $n_l99 s (max ≤ $n_lmax s;
$(if [ "$(yn "$n_l99 < $st_l99")" = yes ]; then echo "lower"; else echo "not lower"; fi) than at equal priority)
and the first fleet's median probe RTT $(us "$n_pmed") µs ($(us "$nq_pmed") µs before the storm), with
$n_to probe timeouts. The first fleet's RTTs also carry its own simulator's
delays (it shares CPU 1 with the storm's simulator, at nice 19). The bound
uses each record's fastest probe: the first fleet's record minimum RTT p50
was $(us "$st_rmed") µs in the storm against $(us "$q_rmed") µs before it.
MD
    if [ -n "$(rcrow v1 quiet)" ]; then
      cat <<MD
Protocol 1 ran the same way with its own binaries (its simulator checking one
challenge signature in 1000); it checked each chip's registration proof on
the event loop, and stored one probe per record, so its "probe RTT" columns
are the records' RTTs.
MD
    fi
  } >"$work/reconnect.md"
  splice_section "$results_md" reconnect "$work/reconnect.md"
  cat "$work/reconnect.md"
fi
