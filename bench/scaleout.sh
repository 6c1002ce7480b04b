#!/usr/bin/env bash
# Benchmark: chips attested per second by a pool of verifier processes
# (`chiploc verify --pool`, docs/OPERATIONS.md "Several verifiers") against
# the number of processes, on the data set of bench/verifier.sh
# (bench/vfixture.c: 20 landmarks at European cities, SCALEOUT_CHIPS chips,
# default 5000, each with a genuine protocol 2 record from each of its 8
# nearest landmarks, allowed in its own country).
#
# For each process count N of SCALEOUT_PROCS (default "1 2 3 4"; the
# machine's cores are the ceiling, the counts above show the flattening),
# each with its own verifier key:
#   cold: SCALEOUT_ROUNDS (default 3) rounds, each N one-shot
#         `chiploc verify --pool coldN --round-end T` started together; the
#         round's time is the wall time from their start to the last exit,
#         and every row read is new to the process reading it (two Ed25519
#         verifications per row);
#   warm: N `chiploc verify --follow --pool warmN` every SCALEOUT_INTERVAL
#         seconds (default 10); of the rounds all N took part in, from the
#         third on, every row read was checked by the member that had the
#         chip the round before (a chip stays with its member while the
#         members stay), so the round is the engine, signing and SQL. The
#         members start each round at the same boundary; the pool's round
#         time is the longest member's round_ms, and SCALEOUT_ROUNDS rounds
#         are taken.
# chips/s is the chips over the median round time. No process is pinned:
# the members, PostgreSQL and the shell share the machine's cores, which is
# what a deployment on one host gets. Baseline: the same figure with one
# process, in the same run. Writes the `scaleout` section of
# bench/RESULTS.md.
#
# Assumes the build directory (BUILD_DIR, default build) is built.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
root=$PWD
build=${BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
chips=${SCALEOUT_CHIPS:-5000}
rounds=${SCALEOUT_ROUNDS:-3}
procs=${SCALEOUT_PROCS:-1 2 3 4}
interval=${SCALEOUT_INTERVAL:-10}
work=$build/bench-scaleout
chiploc=$build/server/chiploc
vfixture=$build/bench/vfixture
for b in "$chiploc" "$vfixture"; do
  [ -x "$b" ] || { echo "scaleout bench: $b missing; build $build first" >&2; exit 1; }
done
for v in "$chips" "$rounds" "$interval" $procs; do
  if ! [[ $v =~ ^[0-9]+$ ]] || ((v < 1)); then
    echo "scaleout bench: SCALEOUT_CHIPS, SCALEOUT_ROUNDS, SCALEOUT_INTERVAL and SCALEOUT_PROCS" \
      "must be positive whole numbers" >&2
    exit 2
  fi
done
maxp=$(tr ' ' '\n' <<<"$procs" | sort -n | tail -n 1)

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  tests/pgtest.sh stop "$work/pg" >/dev/null 2>&1 || true
}
trap cleanup EXIT
if [ -d "$work/pg" ]; then tests/pgtest.sh stop "$work/pg" >/dev/null 2>&1 || true; fi
rm -rf "$work"
mkdir -p "$work"

tests/pgtest.sh start "$work/pg" >/dev/null
db0=$(cat "$work/pg/conninfo")
psql "$db0" -qXc "CREATE DATABASE chiploc_sbench" >/dev/null
db=${db0/dbname=postgres/dbname=chiploc_sbench}
export CHIPLOC_DB="$db"
"$chiploc" db migrate >/dev/null
# The allowed regions and chip positions of bench/verifier.sh.
scripts/fetch-borders.sh "$build/data" maritime >/dev/null
scripts/fetch-borders.sh "$build/data" land >/dev/null
"$chiploc" region import "$build/data/borders-maritime-1000m.geo.json" --code-property isoA3 >/dev/null
echo "scaleout bench: loading $chips chips (signing every measurement takes a while)"
fixture=$("$vfixture" --db "$db" --countries "$build/data/countries-land-10km.geo.json" \
  --chips "$chips" --per-chip 8)
echo "scaleout bench: $fixture"
for i in $(seq 1 "$maxp"); do
  vpk=$("$chiploc" keygen --out "$work/v$i.key")
  "$chiploc" verifier add --name "bench-$i" --pubkey "$vpk" >/dev/null
done

now_ms() { date +%s%3N; }
field() { sed -n "s/.* $1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }
opts=(--window 3600 --settle 0 --max-chip-speed 0)

# cold N [nopool]: the median wall time (ms) of one-shot rounds of N
# processes (nopool: one process without --pool, as before pools).
cold() {
  local n=$1 r i t0 t1 written pool=(--pool "cold$1") tag=cold-$1
  [ "${2:-}" = nopool ] && pool=() tag=cold-solo
  : >"$work/$tag.txt"
  for r in $(seq 1 "$rounds"); do
    # A new round each time (--interval 1), after every earlier round of
    # these keys (a warm member's last round included): a chain only grows
    # forward, and a round before a key's newest attestation is skipped.
    sleep 2.1
    local end=$(($(date +%s) - 1))
    pids=()
    t0=$(now_ms)
    for i in $(seq 1 "$n"); do
      "$chiploc" verify --key "$work/v$i.key" "${pool[@]}" --round-end "$end" --interval 1 \
        "${opts[@]}" --quiet >/dev/null 2>"$work/$tag-$r-$i.log" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    t1=$(now_ms)
    pids=()
    written=$(cat "$work/$tag-$r"-*.log | grep 'msg=round ' |
      sed -n 's/.* written=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
    [ "$written" = "$chips" ] || { echo "scaleout bench: cold round of $n wrote $written of $chips" >&2; exit 1; }
    echo $((t1 - t0)) >>"$work/$tag.txt"
    echo "cold, $n process(es), round $r: $((t1 - t0)) ms"
  done
  median %.0f <"$work/$tag.txt"
}

# The rounds every one of n members took part in, writing all chips
# between them: "round_end_ns longest_round_ms checks hits" per line, in
# order, from the member logs $work/$tag-*.log.
full_rounds() {
  local tag=$1 n=$2
  cat "$work/$tag"-*.log | grep 'msg=round ' |
    sed -n 's/.* round_end_ns=\([0-9]*\) .* written=\([0-9]*\) .* round_ms=\([0-9.]*\) .* sig_checks=\([0-9]*\) cache_hits=\([0-9]*\) .*/\1 \3 \2 \4 \5/p' |
    awk -v c="$chips" -v n="$n" '{ if ($2 > t[$1]) t[$1] = $2; w[$1] += $3; m[$1]++; k[$1] += $4; h[$1] += $5 }
      END { for (r in t) if (m[r] == n && w[r] == c) print r, t[r], k[r], h[r] }' | sort -n
}

# warm N [nopool]: the median over SCALEOUT_ROUNDS rounds of the longest
# member's round_ms, with N --follow members, taken from the rounds all N
# took part in, after the first two of those (the first is cold, and the
# shares settle in the second); prints "ms checks hits", the signature
# checks and cache hits summed over the rounds taken.
warm() {
  local n=$1 i want=$((rounds + 2)) pool=(--pool "warm$1") tag=warm-$1
  [ "${2:-}" = nopool ] && pool=() tag=warm-solo
  pids=()
  for i in $(seq 1 "$n"); do
    "$chiploc" verify --key "$work/v$i.key" "${pool[@]}" --follow --interval "$interval" \
      "${opts[@]}" >/dev/null 2>"$work/$tag-$i.log" &
    pids+=($!)
  done
  for _ in $(seq 1 1200); do
    (($(full_rounds "$tag" "$n" | wc -l) >= want)) && break
    sleep 0.5
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  full_rounds "$tag" "$n" | tail -n +3 | head -n "$rounds" >"$work/$tag.rounds"
  [ -s "$work/$tag.rounds" ] || { echo "scaleout bench: no complete warm round with $n member(s)" >&2; exit 1; }
  local checks hits
  checks=$(awk '{s += $3} END {print s + 0}' "$work/$tag.rounds")
  hits=$(awk '{s += $4} END {print s + 0}' "$work/$tag.rounds")
  echo "warm, $n member(s): rounds $(awk '{printf "%s ", $2}' "$work/$tag.rounds")ms; $checks signature checks, $hits cache hits" >&2
  echo "$(awk '{print $2}' "$work/$tag.rounds" | median %.0f) $checks $hits"
}

cps() { awk -v n="$chips" -v ms="$1" 'BEGIN{printf "%.0f", n / (ms / 1000)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b / a}'; }
# One process without --pool first: what pooling costs a single verifier.
c_ms=$(cold 1 nopool | tail -n 1)
read -r w_ms w_checks w_hits <<<"$(warm 1 nopool)"
rows="| 1, without \`--pool\` | $c_ms | $(cps "$c_ms") | | $w_ms | $(cps "$w_ms") | | $w_checks / $w_hits |"$'\n'
echo "1 process without --pool: cold $(cps "$c_ms") chips/s, warm $(cps "$w_ms") chips/s"
base_cold="" base_warm=""
for n in $procs; do
  c_ms=$(cold "$n" | tail -n 1)
  read -r w_ms w_checks w_hits <<<"$(warm "$n")"
  [ -n "$base_cold" ] || base_cold=$c_ms base_warm=$w_ms base_n=$n
  rows+="| $n | $c_ms | $(cps "$c_ms") | $(ratio "$c_ms" "$base_cold") | $w_ms | $(cps "$w_ms") | $(ratio "$w_ms" "$base_warm") | $w_checks / $w_hits |"$'\n'
  echo "$n process(es): cold $(cps "$c_ms") chips/s, warm $(cps "$w_ms") chips/s"
done

cpu=$(cpu_model)
load=$(cut -d' ' -f1-3 /proc/loadavg)
section=$work/scaleout-section.md
cat >"$section" <<MD
## Verifier scale-out (\`bench/scaleout.sh\`)

Regenerate with \`bench/scaleout.sh\` after building (environment: BUILD_DIR,
SCALEOUT_CHIPS, SCALEOUT_PROCS, SCALEOUT_ROUNDS, SCALEOUT_INTERVAL). Chips
attested per second by a pool of N \`chiploc verify --pool\` processes, each
with its own key, sharing one database's chips (docs/OPERATIONS.md,
"Several verifiers"); ratios are against $base_n process(es) in the same run.

- date: $(date -u +%Y-%m-%dT%H:%MZ)
- machine: $(nproc) cores, ${cpu:-unknown CPU}; load average at the end: $load; nothing pinned
  (members, PostgreSQL and the shell share the cores)
- data: $fixture
- allowed regions: each chip's own country from \`borders-maritime-1000m.geo.json\`
- cold: N one-shot \`chiploc verify --pool coldN --round-end T --interval 1 --window 3600
  --settle 0 --max-chip-speed 0\` started together, wall time from start to the last exit
  (key load and connection included), median of $rounds rounds; every row read is checked
  (two Ed25519 verifications per row)
- warm: N \`chiploc verify --follow --pool warmN --interval $interval\` (same options), the
  longest member's \`round_ms\` per round (they start at the same boundary), median of
  $rounds rounds all N took part in, from the third such round on; the signature checks and
  cache hits, summed over those rounds, show whether a chip stayed with the member that
  checked its rows the round before

| processes | cold ms per round | cold chips/s | × 1 process | warm ms per round | warm chips/s | × 1 process | warm signature checks / cache hits |
|---|---|---|---|---|---|---|---|
${rows%$'\n'}
MD
splice_section bench/RESULTS.md scaleout "$section"
echo
cat "$section"
