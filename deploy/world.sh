#!/usr/bin/env bash
# The main job: a whole simulated world on one machine, verified live.
#
#   1. installs missing packages (deploy/deps.sh) and builds into build/;
#   2. starts a throwaway PostgreSQL (tests/pgtest.sh) under build/world/,
#      migrates, fetches and imports the world's country borders;
#   3. starts 10 landmarks at real city coordinates (Paris, Frankfurt, London,
#      Madrid, Warsaw, Rome, Stockholm, Helsinki, Bucharest, New York), all on
#      loopback; each node also runs a chipagent with its own landmark key, so
#      the landmarks probe each other through one delayproxy per ordered pair,
#      delayed by the distance between the two cities at the speed of light;
#   4. starts fleetsim with 54 chips in FRA, DEU, GBR, ESP, POL, ITA and SWE:
#      honest ones, smuggled ones (declared in Germany, really in Moscow,
#      Istanbul, ...), relayed ones (declared next to a landmark, answering
#      from the New York area), three that go dark after 15 s and two that add
#      a delay to every answer; each chip's allowed region is its declared
#      country;
#   5. runs the verifier (chiploc verify --follow) for WORLD_SECONDS (default
#      60) with a live progress line, then prints one row per chip, a summary
#      (including how many smuggled and relayed chips were caught), the audit
#      of every signed record, and writes build/world/world.geojson.
#
# Everything is stopped at the end; every run starts from a fresh database and
# fresh keys, so it is safe to run twice. docs/WORLD.md explains the output.
#
# Environment: WORLD_SECONDS (verifier run time, default 60), WORLD_KEEP=1
# (leave PostgreSQL running and print its conninfo), WORLD_BUILD_DIR (default
# build), WORLD_PORT_BASE (default 27600; landmarks listen on BASE..BASE+9,
# the delay proxies on BASE+100..BASE+253).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${WORLD_SECONDS:-60}
keep=${WORLD_KEEP:-0}
build=${WORLD_BUILD_DIR:-build}
base=${WORLD_PORT_BASE:-27600}
case $build in /*) ;; *) build=$root/$build ;; esac
work=$build/world
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 10)); then
  echo "world: WORLD_SECONDS must be a whole number of seconds, at least 10" >&2
  exit 2
fi
if ! [[ $base =~ ^[0-9]+$ ]] || ((base < 1024 || base + 300 > 65535)); then
  echo "world: WORLD_PORT_BASE must be a port number in [1024, 65235]" >&2
  exit 2
fi

# Probing and verification timing (seconds).
PROBE_INTERVAL=5   # one burst of 3 probes per chip and landmark every ~5 s
ROUND=10           # verifier round
WINDOW=20          # measurements considered per round
DARK_AFTER=10      # chip_dark when no sufficient round for this long
SETTLE=2           # verifier waits this long after a round boundary
GO_DARK=15         # dark chips stop answering this long after fleetsim starts
SEED=20240501      # fleet key seed

deploy/deps.sh
echo "world: building in ${build#"$root"/}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
chiploc=$build/server/chiploc
landmarkd=$build/server/landmarkd
chipagent=$build/client/chipagent
fleetsim=$build/tests/sim/fleetsim
delayproxy=$build/tests/sim/delayproxy

pids=()
verifier_pid=""
db=""
stop_all() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do wait "${pids[$i]}" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  local rc=$?
  if [ -n "$verifier_pid" ]; then
    kill -TERM "$verifier_pid" 2>/dev/null || true
    wait "$verifier_pid" 2>/dev/null || true
  fi
  stop_all
  if [ "$keep" = 1 ] && [ -n "$db" ]; then
    echo "world: PostgreSQL left running (WORLD_KEEP=1): psql \"$db\""
    echo "world: stop it with: tests/pgtest.sh stop $work/pg"
  else
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

# ---- the landmarks ------------------------------------------------------
lm_names=(paris frankfurt london madrid warsaw rome stockholm helsinki bucharest newyork)
lm_lats=(48.8566 50.1109 51.5074 40.4168 52.2297 41.9028 59.3293 60.1699 44.4268 40.7128)
lm_lons=(2.3522 8.6821 -0.1278 -3.7038 21.0122 12.4964 18.0686 24.9384 26.1025 -74.0060)
nl=${#lm_names[@]}
for ((i = 0; i < nl; i++)); do
  for p in $((base + i)) $((base + 100 + i * 16)); do
    if port_busy "$p"; then
      echo "world: port $p is in use (another world running?); set WORLD_PORT_BASE" >&2
      exit 1
    fi
  done
done

# One-way delay in ms between two points: the distance at the speed of light,
# rounded up to the microsecond. The distance is the angle between the
# surface normals times a^2/b (6399.594 km), which is never less than the
# WGS84 geodesic distance (see lib/engine/cl_geo.h): a landmark link can only look
# farther than the simulated geography, never closer.
oneway_ms() {
  awk -v la1="$1" -v lo1="$2" -v la2="$3" -v lo2="$4" 'BEGIN {
    r = atan2(0, -1) / 180
    p1 = la1 * r; p2 = la2 * r; dl = (lo2 - lo1) * r
    h = sin((p2 - p1) / 2) ^ 2 + cos(p1) * cos(p2) * sin(dl / 2) ^ 2
    theta = 2 * atan2(sqrt(h), sqrt(1 - h))
    ms = theta * 6399593.626 / 299792458 * 1000
    us = int(ms * 1000); if (us < ms * 1000) us++
    printf "%.3f", (us + 1) / 1000
  }'
}

# ---- the fleet: serial|mode|declared city|country|declared lat,lon|true place|true lat,lon|extra ms|dark s
fleet_rows=(
  # Honest chips, declared where they are.
  "W-001|honest|Paris|FRA|48.8600,2.3400|-|48.8600,2.3400|0|0"
  "W-002|honest|Orleans|FRA|47.9030,1.9093|-|47.9030,1.9093|0|0"
  "W-003|honest|Lyon|FRA|45.7640,4.8357|-|45.7640,4.8357|0|0"
  "W-004|honest|Dijon|FRA|47.3220,5.0415|-|47.3220,5.0415|0|0"
  "W-005|honest|Reims|FRA|49.2583,4.0317|-|49.2583,4.0317|0|0"
  "W-006|honest|Tours|FRA|47.3941,0.6848|-|47.3941,0.6848|0|0"
  "W-007|honest|Clermont-Ferrand|FRA|45.7772,3.0870|-|45.7772,3.0870|0|0"
  "W-008|honest|Limoges|FRA|45.8336,1.2611|-|45.8336,1.2611|0|0"
  "W-009|honest|Frankfurt|DEU|50.1200,8.6500|-|50.1200,8.6500|0|0"
  "W-010|honest|Kassel|DEU|51.3127,9.4797|-|51.3127,9.4797|0|0"
  "W-011|honest|Wuerzburg|DEU|49.7913,9.9534|-|49.7913,9.9534|0|0"
  "W-012|honest|Nuremberg|DEU|49.4521,11.0767|-|49.4521,11.0767|0|0"
  "W-013|honest|Erfurt|DEU|50.9848,11.0299|-|50.9848,11.0299|0|0"
  "W-014|honest|Leipzig|DEU|51.3397,12.3731|-|51.3397,12.3731|0|0"
  "W-015|honest|Stuttgart|DEU|48.7758,9.1829|-|48.7758,9.1829|0|0"
  "W-016|honest|Hanover|DEU|52.3759,9.7320|-|52.3759,9.7320|0|0"
  "W-017|honest|Birmingham|GBR|52.4862,-1.8904|-|52.4862,-1.8904|0|0"
  "W-018|honest|Oxford|GBR|51.7520,-1.2577|-|51.7520,-1.2577|0|0"
  "W-019|honest|Leicester|GBR|52.6369,-1.1398|-|52.6369,-1.1398|0|0"
  "W-020|honest|Nottingham|GBR|52.9548,-1.1581|-|52.9548,-1.1581|0|0"
  "W-021|honest|Northampton|GBR|52.2405,-0.9027|-|52.2405,-0.9027|0|0"
  "W-022|honest|Madrid|ESP|40.4300,-3.6900|-|40.4300,-3.6900|0|0"
  "W-023|honest|Toledo|ESP|39.8628,-4.0273|-|39.8628,-4.0273|0|0"
  "W-024|honest|Zaragoza|ESP|41.6488,-0.8891|-|41.6488,-0.8891|0|0"
  "W-025|honest|Valladolid|ESP|41.6523,-4.7245|-|41.6523,-4.7245|0|0"
  "W-026|honest|Albacete|ESP|38.9943,-1.8585|-|38.9943,-1.8585|0|0"
  "W-027|honest|Warsaw|POL|52.2400,21.0000|-|52.2400,21.0000|0|0"
  "W-028|honest|Lodz|POL|51.7592,19.4560|-|51.7592,19.4560|0|0"
  "W-029|honest|Poznan|POL|52.4064,16.9252|-|52.4064,16.9252|0|0"
  "W-030|honest|Radom|POL|51.4027,21.1471|-|51.4027,21.1471|0|0"
  "W-031|honest|Kielce|POL|50.8661,20.6286|-|50.8661,20.6286|0|0"
  "W-032|honest|Rome|ITA|41.9100,12.4800|-|41.9100,12.4800|0|0"
  "W-033|honest|Florence|ITA|43.7696,11.2558|-|43.7696,11.2558|0|0"
  "W-034|honest|Perugia|ITA|43.1107,12.3908|-|43.1107,12.3908|0|0"
  "W-035|honest|Bologna|ITA|44.4949,11.3426|-|44.4949,11.3426|0|0"
  "W-036|honest|Stockholm|SWE|59.3300,18.0500|-|59.3300,18.0500|0|0"
  "W-037|honest|Vaxjo|SWE|56.8777,14.8094|-|56.8777,14.8094|0|0"
  "W-038|honest|Varnamo|SWE|57.1860,14.0400|-|57.1860,14.0400|0|0"
  "W-039|honest|Nassjo|SWE|57.6531,14.6968|-|57.6531,14.6968|0|0"
  "W-040|honest|Boras|SWE|57.7210,12.9401|-|57.7210,12.9401|0|0"
  # Honest places, but every answer comes later (a slow host, or a cheat
  # trying to look farther away): the bounds grow, the site stays inside.
  "W-041|delay|Strasbourg|FRA|48.5734,7.7521|-|48.5734,7.7521|5|0"
  "W-042|delay|Munich|DEU|48.1351,11.5820|-|48.1351,11.5820|15|0"
  # Honest chips that stop answering GO_DARK seconds after the start.
  "W-043|dark|Le Mans|FRA|48.0061,0.1996|-|48.0061,0.1996|0|$GO_DARK"
  "W-044|dark|Dortmund|DEU|51.5136,7.4653|-|51.5136,7.4653|0|$GO_DARK"
  "W-045|dark|Salamanca|ESP|40.9701,-5.6635|-|40.9701,-5.6635|0|$GO_DARK"
  # Smuggled: declared in Germany, running elsewhere.
  "W-046|smuggled|Frankfurt|DEU|50.1109,8.6821|Moscow|55.7558,37.6173|0|0"
  "W-047|smuggled|Berlin|DEU|52.5200,13.4050|Istanbul|41.0082,28.9784|0|0"
  "W-048|smuggled|Munich|DEU|48.1351,11.5820|Minsk|53.9006,27.5590|0|0"
  "W-049|smuggled|Hamburg|DEU|53.5511,9.9937|Saint Petersburg|59.9311,30.3609|0|0"
  "W-050|smuggled|Cologne|DEU|50.9375,6.9603|Ankara|39.9334,32.8597|0|0"
  # Relayed: declared next to a landmark, the chip answers from America
  # through a relay host at the declared site.
  "W-051|relay|London|GBR|51.5100,-0.1200|New York|40.7306,-73.9352|0|0"
  "W-052|relay|Paris|FRA|48.8600,2.3500|Newark|40.7357,-74.1724|0|0"
  "W-053|relay|Madrid|ESP|40.4200,-3.7000|Boston|42.3601,-71.0589|0|0"
  "W-054|relay|Frankfurt|DEU|50.1100,8.6800|Philadelphia|39.9526,-75.1652|0|0"
)
nchips=${#fleet_rows[@]}

# ---- database -----------------------------------------------------------
tests/pgtest.sh start "$work/pg" >/dev/null
db0=$(cat "$work/pg/conninfo")
psql "$db0" -qXc "CREATE DATABASE chiploc_world" >/dev/null
db=${db0/dbname=postgres/dbname=chiploc_world}
export CHIPLOC_DB="$db"
q() { psql "$db" -XAtq -F'|' -c "$1"; }
"$chiploc" db migrate >/dev/null
deploy/fetch-countries.sh "$build/data" >/dev/null
"$chiploc" region import "$build/data/countries-land-10km.geo.json" --code-property A3 >/dev/null
echo "world: PostgreSQL started, schema migrated, $(q "SELECT count(*) FROM regions") country borders imported"

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
  cat >"$work/conf/$n.conf" <<CONF
[landmark]
name = $n
key = ../keys/$n.key
listen = 127.0.0.1:$((base + i))
lat = ${lm_lats[$i]}
lon = ${lm_lons[$i]}

[database]
conninfo = $db
flush_interval_ms = 100
refresh_interval_s = 5

[probe]
interval_s = $PROBE_INTERVAL
jitter = 0.1
burst = 3
burst_gap_ms = 50
deadline_ms = 1000
speed = c

[limits]
idle_timeout_s = 60
stats_interval_s = 10
CONF
done
# The peer agent of each landmark node answers for the node's own key and
# reaches every other landmark through the delay proxy of that ordered pair.
for ((i = 0; i < nl; i++)); do
  n=${lm_names[$i]}
  conf=$work/conf/peer-$n.conf
  printf '[agent]\nname = peer-%s\nbackoff_min_ms = 200\nbackoff_max_ms = 2000\n' "$n" >"$conf"
  for ((j = 0; j < nl; j++)); do
    ((i == j)) && continue
    printf '\n[landmark.%s]\naddress = 127.0.0.1:%d\npublic_key = %s\n' \
      "${lm_names[$j]}" $((base + 100 + i * 16 + j)) "${lm_pks[$j]}" >>"$conf"
  done
  printf '\n[chip.self]\nkey = ../keys/%s.key\n' "$n" >>"$conf"
done

fleet_csv=$work/conf/fleet.csv
truth=$work/truth.txt
echo "index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s" >"$fleet_csv"
: >"$truth"
mapfile -t chip_pks < <("$fleetsim" keys --seed "$SEED" --count "$nchips" | cut -d, -f2)
for ((k = 0; k < nchips; k++)); do
  IFS='|' read -r serial mode city cc site place tpos extra dark <<<"${fleet_rows[$k]}"
  "$chiploc" chip enroll --pubkey "${chip_pks[$k]}" --serial "$serial" --operator "dc-$cc" \
    --site "$site" --allowed "$cc" >/dev/null
  echo "$k,${tpos%,*},${tpos#*,},$mode,$extra,$dark" >>"$fleet_csv"
  case $mode in
    honest) story="honest" ;;
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
    d=$(oneway_ms "${lm_lats[$i]}" "${lm_lons[$i]}" "${lm_lats[$j]}" "${lm_lons[$j]}")
    "$delayproxy" --listen "127.0.0.1:$((base + 100 + i * 16 + j))" --connect "127.0.0.1:$((base + j))" \
      --delay-ms "$d" --log-level warn 2>>"$work/logs/proxy-${lm_names[$i]}-${lm_names[$j]}.log" &
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
pids+=($!)
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
while ((SECONDS - t1 < seconds)); do
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
summary=$(awk -F'|' 'NR == FNR { mode[$1] = $2; n[$2]++; next }
  { total++; cons[$2]++; site[$3]++; reg[$4]++
    split($6, al, ","); for (k in al) if (al[k] != "-") alerts[al[k]]++
    m = mode[$1]
    if ((m == "smuggled" || m == "relay") && $3 == "SITE_EXCLUDED") caught[m]++
    if ((m == "smuggled" || m == "relay") && $4 == "OUTSIDE") outside[m]++
    if (m == "dark" && $6 ~ /chip_dark/) caught[m]++
    if ((m == "honest" || m == "delay") && ($3 == "SITE_EXCLUDED" || $4 == "OUTSIDE")) wrong++ }
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
    printf "dark %d/%d alerted; honest chips wrongly flagged: %d\n", caught["dark"], n["dark"], wrong
  }' "$truth" "$status")
echo "$summary"
lm_alerts=$(q "SELECT count(*) FROM alerts WHERE kind = 'landmark_misplaced' AND cleared_at IS NULL")
pairs=$(q "SELECT count(DISTINCT (from_landmark_id, to_landmark_id)) FROM landmark_links")
echo "landmarks: $nl, $pairs of $((nl * (nl - 1))) directed links measured, $lm_alerts landmark_misplaced alert(s)"

audit_rc=0
"$chiploc" audit >"$work/audit.txt" 2>&1 || audit_rc=$?
tail -n 1 "$work/audit.txt"
"$chiploc" export --out "${work#"$root"/}/world.geojson"
if ((audit_rc != 0)); then
  echo "world: chiploc audit exited with $audit_rc (findings in $work/audit.txt)" >&2
  exit 1
fi
