#!/usr/bin/env bash
# The local demo on one machine: installs what is missing, builds, starts a
# throwaway PostgreSQL as an unprivileged user, migrates, enrols three
# landmarks and two chips, runs the three landmarks and one chip agent on
# loopback for DEMO_SECONDS (default 20), then prints the measurements.
# Safe to run twice: every run starts from a fresh database and key set.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${DEMO_SECONDS:-20}
work=$root/build/demo

deploy/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
chiploc=$root/build/server/chiploc
landmarkd=$root/build/server/landmarkd
chipagent=$root/build/client/chipagent

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  tests/pgtest.sh stop "$work/pg" >/dev/null 2>&1 || true
}
trap cleanup EXIT

rm -rf "$work"
mkdir -p "$work/keys" "$work/logs"
tests/pgtest.sh start "$work/pg" >/dev/null
db="$(cat "$work/pg/conninfo")"
psql "$db" -qc "CREATE DATABASE chiploc_demo" >/dev/null
db="$db dbname=chiploc_demo"
export CHIPLOC_DB="$db"
$chiploc db migrate

# Three landmarks at real city coordinates (all on loopback in this demo).
names=(paris frankfurt london)
lats=(48.8566 50.1109 51.5074)
lons=(2.3522 8.6821 -0.1278)
agent_conf="$work/chipagent.conf"
printf '[agent]\nname = demo-host\nbackoff_min_ms = 200\nbackoff_max_ms = 5000\n' >"$agent_conf"
for i in 0 1 2; do
  n=${names[$i]}
  port=$((47400 + i))
  pk=$($chiploc keygen --out "$work/keys/$n.key")
  $chiploc landmark add --name "$n" --pubkey "$pk" --lat "${lats[$i]}" --lon "${lons[$i]}" >/dev/null
  cat >"$work/$n.conf" <<CONF
[landmark]
name = $n
key = keys/$n.key
listen = 127.0.0.1:$port
lat = ${lats[$i]}
lon = ${lons[$i]}

[database]
conninfo = $db
flush_interval_ms = 500
refresh_interval_s = 5

[probe]
interval_s = 2
burst = 5
burst_gap_ms = 50
deadline_ms = 1000
CONF
  printf '\n[landmark.%s]\naddress = 127.0.0.1:%d\npublic_key = %s\n' "$n" "$port" "$pk" >>"$agent_conf"
done

# One agent host carrying two chips, both declared in Paris.
for c in gpu0 gpu1; do
  $chiploc keygen --out "$work/keys/$c.key" >/dev/null
  $chiploc chip enroll --pubkey-file "$work/keys/$c.key" --serial "DEMO-$c" \
    --operator demo-dc --site 48.86,2.35 >/dev/null
  printf '\n[chip.%s]\nkey = keys/%s.key\n' "$c" "$c" >>"$agent_conf"
done

for n in "${names[@]}"; do
  $landmarkd --config "$work/$n.conf" 2>>"$work/logs/$n.log" &
  pids+=($!)
done
$chipagent --config "$agent_conf" 2>>"$work/logs/chipagent.log" &
pids+=($!)

echo "demo: 3 landmarks and 1 agent with 2 chips running for ${seconds}s (logs in $work/logs)"
sleep "$seconds"
# Stop the agent first, then the landmarks (they flush every measurement).
for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
  kill -TERM "${pids[$i]}"
  wait "${pids[$i]}" || { echo "demo: process ${pids[$i]} exited with $?" >&2; exit 1; }
done
pids=()
echo
$chiploc measurements --since 600
