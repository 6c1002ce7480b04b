#!/usr/bin/env bash
# The main job: a whole simulated world on one machine, verified live.
#
#   1. installs missing packages (scripts/deps.sh) and builds into build/;
#   2. starts a throwaway PostgreSQL (tests/pgtest.sh) under build/world/,
#      migrates, fetches and imports the world's country borders;
#   3. starts 10 landmarks at real city coordinates (Paris, Frankfurt, London,
#      Madrid, Warsaw, Rome, Stockholm, Helsinki, Bucharest, New York; the
#      table is scripts/world/landmarks.csv), all on loopback; each node also
#      runs a chipagent with its own landmark key, so the landmarks probe each
#      other through one delayproxy per ordered pair, delayed by the geodesic
#      distance between the two cities at the speed of light (delayproxy
#      --from --to);
#   4. starts fleetsim with 56 chips (scripts/world/fleet.csv) in FRA, DEU,
#      GBR, ESP, POL, ITA, SWE and FIN:
#      honest ones, smuggled ones (declared in Germany, really in Moscow,
#      Istanbul, ...), relayed ones (declared next to a landmark, answering
#      from the New York area), three that go dark after 15 s, two that add
#      a delay to every answer, two on the water's edge (Stockholm and
#      Helsinki harbours) and one that is carried from Frankfurt to Warsaw
#      while the verifier runs, its declared site left at Frankfurt; each
#      chip's allowed region is its declared country;
#   5. runs the verifier (chiploc verify --follow) for WORLD_SECONDS (default
#      60) with a live progress line, then prints one row per chip, a summary
#      (including how many smuggled and relayed chips were caught and whether
#      the moved chip raised chip_moved), the audit of every signed record,
#      and writes build/world/world.geojson;
#   6. serves the dashboard (chiploc dashboard, docs/DASHBOARD.md) from the
#      moment the database is ready, as a login in chiploc_dashboard, and
#      prints its URL.
#
# It exits 1 unless the moved chip raised chip_moved, the coastal chips are
# INSIDE their country, no honest chip is SITE_EXCLUDED or OUTSIDE and the
# audit finds nothing. Everything is stopped at the end; every run starts
# from a fresh database and fresh keys, so it is safe to run twice.
# docs/WORLD.md explains the output and the format of the two tables.
#
# Environment: WORLD_SECONDS (verifier run time, default 60, at least 50),
# WORLD_KEEP=1 (leave PostgreSQL and the dashboard running and print how to
# reach and stop them), WORLD_BUILD_DIR (default build), WORLD_PORT_BASE
# (default 27600; the ten landmarks listen on BASE..BASE+9, the delay proxies
# on BASE+100..BASE+253, the dashboard on BASE+300), WORLD_SCREENSHOT=FILE.png (a
# screenshot of the dashboard's map at the end, taken with Debian's chromium
# and playwright-core from npm: the README's picture).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$PWD
seconds=${WORLD_SECONDS:-60}
keep=${WORLD_KEEP:-0}
build=${WORLD_BUILD_DIR:-build}
base=${WORLD_PORT_BASE:-27600}
case $build in /*) ;; *) build=$root/$build ;; esac
work=$build/world
# The moved chip's chip_moved alert comes about 42 s into the run (below).
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 50)); then
  echo "world: WORLD_SECONDS must be a whole number of seconds, at least 50" >&2
  exit 2
fi
if ! [[ $base =~ ^[0-9]+$ ]] || ((base < 1024 || base + 300 > 65535)); then
  echo "world: WORLD_PORT_BASE must be a port number in [1024, 65235]" >&2
  exit 2
fi
screenshot=${WORLD_SCREENSHOT:-}
case $screenshot in "" | /*) ;; *) screenshot=$root/$screenshot ;; esac
dash_port=$((base + 300))

# Probing and verification timing (seconds).
PROBE_INTERVAL=5   # one burst of 3 probes per chip and landmark every ~5 s
ROUND=10           # verifier round
WINDOW=20          # measurements considered per round
DARK_AFTER=10      # chip_dark when no sufficient round for this long
SETTLE=2           # verifier waits this long after a round boundary
# The moved chips are carried to their destination this long after the end of
# the verifier's first round (the progress loop's 2 s steps may add a second
# or two): in the middle of the second round. Two rounds whose windows hold
# answers from both places follow; the first round whose window starts after
# the move ends 25 s after it, is attested about 42 s into the verifier's
# run, and finds the chip far from where the last round before the move left
# it: chip_moved.
MOVE_AT=15
SEED=20240501      # fleet key seed

# ---- the landmarks and the fleet ------------------------------------------
# read_table FILE HEADER: the rows of a table of scripts/world/ (docs/WORLD.md),
# with | between the fields, after checking that its first line other than
# comments (#...) and blank lines is HEADER, that at least one row follows,
# and that every row has as many fields as HEADER and no quotes or |. Fails
# naming the file and line.
read_table() {
  awk -F, -v OFS='|' -v file="${1#"$root"/}" -v header="$2" '
    function bad(why) { printf "world: %s line %d: %s\n", file, FNR, why > "/dev/stderr"; err = 1; exit 1 }
    /^[ \t]*(#|$)/ { next }
    !seen { seen = 1; if ($0 != header) bad("the header must be " header); n = NF; next }
    NF != n { bad(NF " fields, expected " n " (" header ")") }
    /["|]/ { bad("quotes and | are not allowed") }
    { $1 = $1; print; rows++ }
    END { if (!err && !rows) { printf "world: %s has no rows under the header %s\n", file, header > "/dev/stderr"; exit 1 } }
  ' "$1"
}
is_deg() { # VALUE MAX: VALUE is a decimal number of degrees in [-MAX, MAX]
  [[ $1 =~ ^-?([0-9]{1,3})(\.([0-9]+))?$ ]] || return 1
  local whole=$((10#${BASH_REMATCH[1]})) frac=${BASH_REMATCH[3]}
  ((whole < $2)) || { ((whole == $2)) && [[ ! $frac =~ [1-9] ]]; }
}
table_error() { # FILE ROW WHY
  echo "world: ${1#"$root"/}: row $2: $3" >&2
  exit 1
}

lm_file=$root/scripts/world/landmarks.csv
lm_names=()
lm_lats=()
lm_lons=()
rows=$(read_table "$lm_file" "name,lat,lon")
while IFS='|' read -r n la lo; do
  row="$n,$la,$lo"
  [[ $n =~ ^[a-z0-9_-]+$ ]] || table_error "$lm_file" "$row" "name must be lower-case letters, digits, - or _"
  for m in "${lm_names[@]}"; do [ "$m" != "$n" ] || table_error "$lm_file" "$row" "name $n twice"; done
  is_deg "$la" 90 || table_error "$lm_file" "$row" "lat must be degrees in [-90, 90]"
  is_deg "$lo" 180 || table_error "$lm_file" "$row" "lon must be degrees in [-180, 180]"
  lm_names+=("$n")
  lm_lats+=("$la")
  lm_lons+=("$lo")
done <<<"$rows"
nl=${#lm_names[@]}
# The proxy of pair (i, j) listens on BASE + 100 + 16 i + j, within BASE + 300.
if ((nl < 3 || nl > 12)); then
  echo "world: ${lm_file#"$root"/} has $nl landmarks; between 3 and 12 are supported" >&2
  exit 1
fi

# One row per chip: serial|mode|declared city|country|declared lat,lon|true place|true lat,lon|extra ms|dark s
fleet_file=$root/scripts/world/fleet.csv
fleet_rows=()
rows=$(read_table "$fleet_file" \
  "serial,mode,city,country,lat,lon,true_place,true_lat,true_lon,extra_delay_ms,dark_after_s")
while IFS='|' read -r serial mode city cc la lo place tla tlo extra dark; do
  row=$serial
  [[ $serial =~ ^[A-Za-z0-9_-]+$ ]] || table_error "$fleet_file" "$row" "serial must be letters, digits, - or _"
  case $mode in honest | coastal | delay | dark | smuggled | relay | moved) ;;
    *) table_error "$fleet_file" "$row" \
      "mode $mode is not honest, coastal, delay, dark, smuggled, relay or moved" ;;
  esac
  [ -n "$city" ] || table_error "$fleet_file" "$row" "city must not be empty"
  [ -n "$place" ] || table_error "$fleet_file" "$row" "true_place must not be empty (- when none)"
  [[ $cc =~ ^[A-Z]{3}$ ]] || table_error "$fleet_file" "$row" "country must be an ISO 3166-1 alpha-3 code"
  for v in "lat:$la:90" "true_lat:$tla:90" "lon:$lo:180" "true_lon:$tlo:180"; do
    IFS=: read -r col val max <<<"$v"
    is_deg "$val" "$max" || table_error "$fleet_file" "$row" "$col must be degrees in [-$max, $max]"
  done
  [[ $extra =~ ^[0-9]+(\.[0-9]+)?$ ]] || table_error "$fleet_file" "$row" "extra_delay_ms must be a number >= 0"
  [[ $dark =~ ^[0-9]+$ ]] || table_error "$fleet_file" "$row" "dark_after_s must be a whole number >= 0"
  fleet_rows+=("$serial|$mode|$city|$cc|$la,$lo|$place|$tla,$tlo|$extra|$dark")
done <<<"$rows"
nchips=${#fleet_rows[@]}

scripts/deps.sh
echo "world: building in ${build#"$root"/}"
build_tree "$build"
chiploc=$build/server/chiploc
landmarkd=$build/server/landmarkd
chipagent=$build/client/chipagent
fleetsim=$build/tests/sim/fleetsim
delayproxy=$build/tests/sim/delayproxy

verifier_pid=""
dash_pid=""
db=""
cleanup() {
  local rc=$?
  if [ -n "$verifier_pid" ]; then
    kill -TERM "$verifier_pid" 2>/dev/null || true
    wait "$verifier_pid" 2>/dev/null || true
  fi
  stop_all
  if [ "$keep" = 1 ] && [ -n "$db" ]; then
    echo "world: PostgreSQL left running (WORLD_KEEP=1): psql \"$db\""
    if [ -n "$dash_pid" ]; then
      echo "world: the dashboard keeps serving at http://127.0.0.1:$dash_port/ (pid $dash_pid)"
      echo "world: stop both with: kill $dash_pid; tests/pgtest.sh stop $work/pg"
    else
      echo "world: stop it with: tests/pgtest.sh stop $work/pg"
    fi
  else
    if [ -n "$dash_pid" ]; then
      kill -TERM "$dash_pid" 2>/dev/null || true
      wait "$dash_pid" 2>/dev/null || true
    fi
    tests/pgtest.sh stop "$work/pg" >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run may have been kept (WORLD_KEEP=1) or interrupted.
if [ -d "$work/pg" ]; then tests/pgtest.sh stop "$work/pg" >/dev/null 2>&1 || true; fi
rm -rf "$work"
mkdir -p "$work/keys" "$work/logs" "$work/conf"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for p in $(for ((i = 0; i < nl; i++)); do echo $((base + i)) $((base + 100 + i * 16)); done) \
  "$dash_port"; do
  if port_busy "$p"; then
    echo "world: port $p is in use (another world running?); set WORLD_PORT_BASE" >&2
    exit 1
  fi
done

# ---- database -----------------------------------------------------------
tests/pgtest.sh start "$work/pg" >/dev/null
db0=$(cat "$work/pg/conninfo")
psql "$db0" -qXc "CREATE DATABASE chiploc_world" >/dev/null
db=${db0/dbname=postgres/dbname=chiploc_world}
export CHIPLOC_DB="$db"
q() { psql "$db" -XAtq -F'|' -c "$1"; }
"$chiploc" db migrate >/dev/null
scripts/fetch-borders.sh "$build/data" maritime >/dev/null
"$chiploc" region import "$build/data/borders-maritime-1000m.geo.json" --code-property isoA3 >/dev/null
echo "world: PostgreSQL started, schema migrated, $(q "SELECT count(*) FROM regions") country borders imported"

# ---- dashboard ----------------------------------------------------------
# Read-only, as a login that is a member of chiploc_dashboard (views only).
# Not in pids: with WORLD_KEEP=1 it outlives the script, like PostgreSQL.
cmake --build "$build" --target dashboard_assets >/dev/null
psql "$db" -qXc "CREATE ROLE world_dashboard LOGIN IN ROLE chiploc_dashboard" >/dev/null
dash_db="$db user=world_dashboard"
setsid "$chiploc" dashboard --db "$dash_db" --listen "127.0.0.1:$dash_port" \
  --assets "$build/dashboard" --refresh-s 5 </dev/null 2>>"$work/logs/dashboard.log" >&2 &
dash_pid=$!
echo "world: dashboard at http://127.0.0.1:$dash_port/ (logs in ${work#"$root"/}/logs/dashboard.log)"

# ---- keys, enrolment, configs -------------------------------------------
lm_pks=()
lm_csv=$work/conf/landmarks.csv
echo "name,address,public_key,lat,lon" >"$lm_csv"
for ((i = 0; i < nl; i++)); do
  n=${lm_names[$i]}
  pk=$("$chiploc" keygen --out "$work/keys/$n.key")
  lm_pks+=("$pk")
  "$chiploc" landmark add --name "$n" --pubkey "$pk" --lat "${lm_lats[$i]}" --lon "${lm_lons[$i]}" >/dev/null
  echo "$n,127.0.0.1:$((base + i)),$pk,${lm_lats[$i]},${lm_lons[$i]}" >>"$lm_csv"
  landmarkd_conf "$work/conf/$n.conf" "$n" "../keys/$n.key" "127.0.0.1:$((base + i))" \
    "${lm_lats[$i]}" "${lm_lons[$i]}" "$db" database.flush_interval_ms=100 \
    database.refresh_interval_s=5 probe.interval_s=$PROBE_INTERVAL probe.jitter=0.1 probe.burst=3 \
    probe.burst_gap_ms=50 probe.deadline_ms=1000 probe.speed=c limits.idle_timeout_s=60 \
    limits.stats_interval_s=10
done
# The peer agent of each landmark node answers for the node's own key and
# reaches every other landmark through the delay proxy of that ordered pair.
for ((i = 0; i < nl; i++)); do
  n=${lm_names[$i]}
  peer=(agent.backoff_min_ms=200 agent.backoff_max_ms=2000)
  for ((j = 0; j < nl; j++)); do
    ((i == j)) && continue
    peer+=("landmark.${lm_names[$j]}.address=127.0.0.1:$((base + 100 + i * 16 + j))"
      "landmark.${lm_names[$j]}.public_key=${lm_pks[$j]}")
  done
  chipagent_conf "$work/conf/peer-$n.conf" "peer-$n" "${peer[@]}" "chip.self.key=../keys/$n.key"
done

fleet_csv=$work/conf/fleet.csv
truth=$work/truth.txt
echo "index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s,move_to_lat,move_to_lon" \
  >"$fleet_csv"
: >"$truth"
mapfile -t chip_pks < <("$fleetsim" keys --seed "$SEED" --count "$nchips" | cut -d, -f2)
for ((k = 0; k < nchips; k++)); do
  IFS='|' read -r serial mode city cc site place tpos extra dark <<<"${fleet_rows[$k]}"
  "$chiploc" chip enroll --pubkey "${chip_pks[$k]}" --serial "$serial" --operator "dc-$cc" \
    --site "$site" --allowed "$cc" >/dev/null
  # A moved chip starts at its declared site and is carried to its true place
  # mid-run; to fleetsim it is honest, with a destination.
  case $mode in
    moved) echo "$k,${site%,*},${site#*,},honest,$extra,$dark,${tpos%,*},${tpos#*,}" ;;
    coastal) echo "$k,${tpos%,*},${tpos#*,},honest,$extra,$dark,," ;;
    *) echo "$k,${tpos%,*},${tpos#*,},$mode,$extra,$dark,," ;;
  esac >>"$fleet_csv"
  case $mode in
    honest) story="honest" ;;
    coastal) story="honest, on the coast" ;;
    moved) story="moved to $place" ;;
    delay) story="honest, +$extra ms" ;;
    dark) story="goes dark at ${dark} s" ;;
    smuggled) story="smuggled: $place" ;;
    relay) story="relayed: $place" ;;
  esac
  printf '%s|%s|%s|%s|%s\n' "$serial" "$mode" "$city $cc" "$story" "$cc" >>"$truth"
done
vpk=$("$chiploc" keygen --out "$work/keys/verifier.key")
"$chiploc" verifier add --name world-verifier --pubkey "$vpk" >/dev/null
echo "world: enrolled $nl landmarks, $nchips chips and the verifier"

# ---- processes ------------------------------------------------------------
wait_log() { # FILE NEEDLE SECONDS
  local t=0
  until grep -q "$2" "$1" 2>/dev/null; do
    sleep 0.1
    t=$((t + 1))
    ((t < $3 * 10)) || { echo "world: timed out waiting for '$2' in $1" >&2; tail -n 5 "$1" >&2; return 1; }
  done
}
for ((i = 0; i < nl; i++)); do
  n=${lm_names[$i]}
  "$landmarkd" --config "$work/conf/$n.conf" 2>>"$work/logs/landmark-$n.log" &
  pids+=($!)
done
for ((i = 0; i < nl; i++)); do wait_log "$work/logs/landmark-${lm_names[$i]}.log" "msg=listening" 20; done
for ((i = 0; i < nl; i++)); do
  for ((j = 0; j < nl; j++)); do
    ((i == j)) && continue
    "$delayproxy" --listen "127.0.0.1:$((base + 100 + i * 16 + j))" --connect "127.0.0.1:$((base + j))" \
      --from "${lm_lats[$i]},${lm_lons[$i]}" --to "${lm_lats[$j]},${lm_lons[$j]}" --log-level warn \
      2>>"$work/logs/proxy-${lm_names[$i]}-${lm_names[$j]}.log" &
    pids+=($!)
  done
done
sleep 0.5
for ((i = 0; i < nl; i++)); do
  n=${lm_names[$i]}
  "$chipagent" --config "$work/conf/peer-$n.conf" 2>>"$work/logs/peer-$n.log" &
  pids+=($!)
done
"$fleetsim" run --fleet "$fleet_csv" --landmarks "$lm_csv" --seed "$SEED" --speed c \
  --jitter-ms 0.05 2>>"$work/logs/fleetsim.log" &
fleetsim_pid=$!
pids+=("$fleetsim_pid")
wait_log "$work/logs/fleetsim.log" "msg=started" 20
echo "world: $nl landmarks, $((nl * (nl - 1))) delay proxies, $nl peer agents and fleetsim running (logs in ${work#"$root"/}/logs)"

# ---- progress -----------------------------------------------------------
progress_sql="SELECT (SELECT count(*) FROM measurements), (SELECT count(*) FROM landmark_links),
  (SELECT count(DISTINCT round_end_ns) FROM attestations), (SELECT count(*) FROM attestations),
  (SELECT count(*) FROM alerts WHERE cleared_at IS NULL)"
# On a terminal the line is rewritten in place every 2 s; into a file or a
# pipe, one line is printed per 10 s.
tty=0
[ -t 1 ] && tty=1
printed=-1
progress() { # LABEL ELAPSED [final]
  local m l r a al line
  IFS='|' read -r m l r a al <<<"$(q "$progress_sql")"
  line=$(printf '%s %3ss  measurements %6s  links %5s  rounds %2s  attestations %5s  open alerts %3s' \
    "$1" "$2" "$m" "$l" "$r" "$a" "$al")
  if [ "$tty" = 1 ]; then
    printf '\r%s' "$line"
    if [ "${3:-}" = final ]; then printf '\n'; fi
  elif [ "${3:-}" = final ] || (($2 / 10 > printed)); then
    printf '%s\n' "$line"
    printed=$(($2 / 10))
  fi
  if [ "${3:-}" = final ]; then printed=-1; fi
  return 0
}

# Warm-up: wait until every chip has been measured by every landmark, then
# for the round boundary after that, so that the verifier's first round
# already sees a full window.
t0=$SECONDS
coverage_sql="SELECT count(*) FROM (SELECT chip_id FROM measurements GROUP BY chip_id
  HAVING count(DISTINCT landmark_id) = $nl) s"
while (($(q "$coverage_sql") < nchips)) && ((SECONDS - t0 < 30)); do
  progress "warm-up " $((SECONDS - t0))
  sleep 1
done
now=$(date +%s)
start_at=$(((now / ROUND + 1) * ROUND + SETTLE))
while (($(date +%s) < start_at)); do
  progress "warm-up " $((SECONDS - t0))
  sleep 1
done
progress "warm-up " $((SECONDS - t0)) final

"$chiploc" verify --follow --key "$work/keys/verifier.key" --interval "$ROUND" --window "$WINDOW" \
  --settle "$SETTLE" --dark-after "$DARK_AFTER" 2>>"$work/logs/verifier.log" &
verifier_pid=$!
echo "world: verifier running for ${seconds}s (round ${ROUND} s, window ${WINDOW} s, bounds at c)"
t1=$SECONDS
move_at=$((start_at - SETTLE + MOVE_AT))
moved=0
while ((SECONDS - t1 < seconds)); do
  if ((moved == 0 && $(date +%s) >= move_at)); then
    kill -USR1 "$fleetsim_pid"
    moved=1
  fi
  progress "verifier" $((SECONDS - t1))
  kill -0 "$verifier_pid" 2>/dev/null || { echo; echo "world: the verifier stopped; see $work/logs/verifier.log" >&2; exit 1; }
  sleep 2
done
progress "verifier" $((SECONDS - t1)) final
kill -TERM "$verifier_pid"
wait "$verifier_pid" || { echo "world: the verifier exited with $?" >&2; exit 1; }
verifier_pid=""
stop_all

# ---- results ------------------------------------------------------------
status=$work/status.txt
q "SELECT serial, coalesce(consistency, '-'), coalesce(site_verdict, '-'),
     coalesce(region_verdict, '-'), coalesce(to_char(radius_km, 'FM99990.0'), '-'),
     coalesce(nullif(array_to_string(open_alerts, ','), ''), '-')
   FROM chip_status ORDER BY serial" >"$status"
echo
awk -F'|' 'NR == FNR { decl[$1] = $3; story[$1] = $4; next }
  FNR == 1 { printf "%-6s %-21s %-27s %-12s %-15s %-12s %9s  %s\n", "CHIP", "DECLARED SITE",
               "TRUTH (simulated)", "CONSISTENCY", "SITE", "REGION", "RADIUS_KM", "OPEN ALERTS" }
  { printf "%-6s %-21s %-27s %-12s %-15s %-12s %9s  %s\n", $1, decl[$1], story[$1], $2, $3, $4,
           $5, $6 }' "$truth" "$status"
echo

# Summary: counts by verdict and alert, and the catch rate against the truth.
# A chip_moved alert clears with the next round that finds the chip where the
# round before left it, so the chips that raised one at any time are counted.
moved_file=$work/moved.txt
q "SELECT DISTINCT c.serial FROM alerts a JOIN chips c ON c.id = a.chip_id
   WHERE a.kind = 'chip_moved'" >"$moved_file"
failures=$work/failures.txt
summary=$(awk -F'|' -v failures="$failures" 'FILENAME == ARGV[1] { mode[$1] = $2; n[$2]++; next }
  FILENAME == ARGV[2] { raised_moved[$1] = 1; next }
  { total++; cons[$2]++; site[$3]++; reg[$4]++
    split($6, al, ","); for (k in al) if (al[k] != "-") alerts[al[k]]++
    m = mode[$1]
    if ((m == "smuggled" || m == "relay") && $3 == "SITE_EXCLUDED") caught[m]++
    if ((m == "smuggled" || m == "relay") && $4 == "OUTSIDE") outside[m]++
    if (m == "dark" && $6 ~ /chip_dark/) caught[m]++
    if (m == "moved" && raised_moved[$1]) caught[m]++
    if (m == "moved" && $3 == "SITE_EXCLUDED") excluded_now[m]++
    if (m == "coastal" && $4 == "INSIDE") inside[m]++
    if ((m == "honest" || m == "coastal" || m == "delay") &&
        ($3 == "SITE_EXCLUDED" || $4 == "OUTSIDE")) wrong++ }
  END {
    printf "summary: %d chips; %d CONSISTENT, %d INSUFFICIENT, %d INCONSISTENT; ", total,
      cons["CONSISTENT"], cons["INSUFFICIENT"], cons["INCONSISTENT"]
    printf "%d SITE_CONSISTENT, %d SITE_EXCLUDED; ", site["SITE_CONSISTENT"], site["SITE_EXCLUDED"]
    printf "%d INSIDE, %d OUTSIDE, %d UNDETERMINED\n", reg["INSIDE"], reg["OUTSIDE"], reg["UNDETERMINED"]
    printf "open alerts: %d site_excluded, %d outside_region, %d chip_dark, %d chip_moved, %d inconsistent\n",
      alerts["site_excluded"], alerts["outside_region"], alerts["chip_dark"], alerts["chip_moved"],
      alerts["inconsistent"]
    printf "caught: smuggled %d/%d and relayed %d/%d SITE_EXCLUDED (OUTSIDE their country: %d/%d, %d/%d); ",
      caught["smuggled"], n["smuggled"], caught["relay"], n["relay"], outside["smuggled"],
      n["smuggled"], outside["relay"], n["relay"]
    printf "dark %d/%d alerted; moved %d/%d chip_moved (SITE_EXCLUDED now: %d/%d)\n",
      caught["dark"], n["dark"], caught["moved"], n["moved"], excluded_now["moved"], n["moved"]
    printf "honest: coastal %d/%d INSIDE; honest chips wrongly flagged: %d\n", inside["coastal"],
      n["coastal"], wrong
    if (caught["moved"] < n["moved"])
      printf "%d of %d moved chip(s) raised no chip_moved\n", n["moved"] - caught["moved"],
        n["moved"] > failures
    if (inside["coastal"] < n["coastal"])
      printf "%d of %d coastal chip(s) not INSIDE their country\n",
        n["coastal"] - inside["coastal"], n["coastal"] > failures
    if (wrong > 0) printf "%d honest chip(s) SITE_EXCLUDED or OUTSIDE\n", wrong > failures
  }' "$truth" "$moved_file" "$status")
echo "$summary"
lm_alerts=$(q "SELECT count(*) FROM alerts WHERE kind = 'landmark_misplaced' AND cleared_at IS NULL")
pairs=$(q "SELECT count(DISTINCT (from_landmark_id, to_landmark_id)) FROM landmark_links")
echo "landmarks: $nl, $pairs of $((nl * (nl - 1))) directed links measured, $lm_alerts landmark_misplaced alert(s)"

audit_rc=0
"$chiploc" audit >"$work/audit.txt" 2>&1 || audit_rc=$?
tail -n 1 "$work/audit.txt"
"$chiploc" export --out "${work#"$root"/}/world.geojson"
if [ -n "$screenshot" ]; then
  playwright_core "$build"
  node scripts/dashboard-screenshot.mjs "http://127.0.0.1:$dash_port/" "$screenshot" \
    "$build/node_modules"
fi
echo "world: dashboard at http://127.0.0.1:$dash_port/$([ "$keep" = 1 ] && echo " (kept running)")"
if ((audit_rc != 0)); then
  echo "world: chiploc audit exited with $audit_rc (findings in $work/audit.txt)" >&2
  exit 1
fi
if [ -s "$failures" ]; then
  sed 's/^/world: FAILED: /' "$failures" >&2
  exit 1
fi
