#!/usr/bin/env bash
# Benchmark: chips attested per second by `chiploc verify` (one round, one
# process, pinned to one core when taskset exists), with 8 landmarks per chip
# and the real country borders as allowed regions: the default ones, land and
# territorial sea simplified to 1000 m (scripts/fetch-borders.sh).
#
# Starts a throwaway PostgreSQL, migrates, imports the maritime borders, and
# loads the data set of bench/vfixture.c: 20 landmarks at European cities and
# VERIFIER_CHIPS chips (default 20000) at random points on land in 20
# European countries (drawn from the 10 km land borders, so that no chip is
# at sea), each allowed in its own country, each with one genuine
# protocol 2 record (a burst of three probes in a session both keys signed,
# the chip's transcript signature, the landmark's record signature) from
# each of its 8 nearest landmarks (RTT = 2 x geodesic distance / c + a
# positive extra delay). Then it runs VERIFIER_ROUNDS
# (default 3) one-shot rounds, each a new round that writes every chip's
# attestation and checks the signatures of every row it reads (cold: no row
# seen before), and takes chips/s and the split of the round's time from the
# verifier's own `msg=round` log line (sql_read_ms, verify_ms, geometry_ms,
# sign_ms, sql_write_ms). Then one `--follow` verifier runs VERIFIER_ROUNDS + 1
# rounds back to back: from its second round on, every row is one it has
# checked before (warm). Baselines, measured in the same run: libsodium's
# Ed25519 verify rate on one thread (bench/sigrate, before and after the
# rounds; the issue's target is chips/s >= 0.6 x that rate), and the plain
# read of the same rows the round reads (psql COPY of the round's measurement
# query to /dev/null), the floor of any verifier that reads its inputs from
# the database. Reports the median round's split; writes the `verifier`
# section of bench/RESULTS.md and, when BENCH_SUMMARY is set, appends one line
# to it.
#
# Assumes the build directory (BUILD_DIR, default build) is built.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
root=$PWD
build=${BUILD_DIR:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
chips=${VERIFIER_CHIPS:-20000}
rounds=${VERIFIER_ROUNDS:-3}
target=10000
work=$build/bench-verifier
chiploc=$build/server/chiploc
vfixture=$build/bench/vfixture
sigrate=$build/bench/sigrate
for b in "$chiploc" "$vfixture" "$sigrate"; do
  [ -x "$b" ] || { echo "verifier bench: $b missing; build $build first" >&2; exit 1; }
done
if ! [[ $chips =~ ^[0-9]+$ ]] || ((chips < 1)); then
  echo "verifier bench: VERIFIER_CHIPS must be a positive whole number" >&2
  exit 2
fi
if ! [[ $rounds =~ ^[0-9]+$ ]] || ((rounds < 1)); then
  echo "verifier bench: VERIFIER_ROUNDS must be a positive whole number" >&2
  exit 2
fi

cleanup() { tests/pgtest.sh stop "$work/pg" >/dev/null 2>&1 || true; }
trap cleanup EXIT
if [ -d "$work/pg" ]; then tests/pgtest.sh stop "$work/pg" >/dev/null 2>&1 || true; fi
rm -rf "$work"
mkdir -p "$work"

pin=()
if command -v taskset >/dev/null 2>&1; then pin=(taskset -c 0); fi

tests/pgtest.sh start "$work/pg" >/dev/null
db0=$(cat "$work/pg/conninfo")
psql "$db0" -qXc "CREATE DATABASE chiploc_vbench" >/dev/null
db=${db0/dbname=postgres/dbname=chiploc_vbench}
export CHIPLOC_DB="$db"
"$chiploc" db migrate >/dev/null
scripts/fetch-borders.sh "$build/data" maritime >/dev/null
scripts/fetch-borders.sh "$build/data" land >/dev/null
"$chiploc" region import "$build/data/borders-maritime-1000m.geo.json" --code-property isoA3 >/dev/null
echo "verifier bench: loading $chips chips (signing every measurement takes a while)"
fixture=$("$vfixture" --db "$db" --countries "$build/data/countries-land-10km.geo.json" \
  --chips "$chips" --per-chip 8)
echo "verifier bench: $fixture"
vpk=$("$chiploc" keygen --out "$work/verifier.key")
"$chiploc" verifier add --name bench --pubkey "$vpk" >/dev/null

# The round's measurement read, as cl_vstore_load issues it (it asks for
# binary results), copied out as text.
read_sql() {
  local now_ns=$1 start_ns=$(($1 - 3600000000000))
  cat <<SQL
COPY (SELECT chip_id, landmark_id, id,
  (extract(epoch FROM greatest(least(inserted_at, '2262-04-11 00:00:00+00'::timestamptz),
  '1970-01-01 00:00:00+00'::timestamptz)) * 1e9)::bigint, protocol, suite, handshake, probes,
  transcript_sig, landmark_sig, rtt_ns, probe_count, probes_sent, measured_at_ns FROM (
  SELECT m.*, row_number() OVER (PARTITION BY m.chip_id, m.landmark_id
  ORDER BY m.rtt_ns, m.id) AS k FROM measurements m
  WHERE m.protocol = 2 AND m.measured_at_ns > $start_ns AND m.measured_at_ns <= $now_ns
  AND m.measured_at > to_timestamp($start_ns / 1e9) - interval '1 second'
  AND m.measured_at <= to_timestamp($now_ns / 1e9) + interval '1 second') s
  WHERE k <= 1 ORDER BY chip_id, landmark_id, rtt_ns, id) TO STDOUT
SQL
}
now_ms() { date +%s%3N; }
field() { sed -n "s/.* $1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }

: >"$work/sigrate.txt"
"${pin[@]}" "$sigrate" --seconds 2 >>"$work/sigrate.txt"
: >"$work/rounds.txt"
for r in $(seq 1 "$rounds"); do
  # A new round each time: --interval 1 and at least a second apart.
  sleep 1.1
  log=$work/verify-$r.log
  t0=$(now_ms)
  "${pin[@]}" "$chiploc" verify --key "$work/verifier.key" --window 3600 --interval 1 --settle 0 \
    --max-chip-speed 0 --quiet >"$work/verify-$r.out" 2>"$log"
  t1=$(now_ms)
  line=$(grep 'msg=round' "$log" | tail -n 1)
  written=$(field written "$line")
  [ "$written" = "$chips" ] || { echo "verifier bench: round $r wrote $written of $chips" >&2; cat "$log" >&2; exit 1; }
  round_ms=$(field round_ms "$line")
  now_ns=$(($(date +%s) * 1000000000))
  b0=$(now_ms)
  psql "$db" -qX -c "$(read_sql "$now_ns")" >/dev/null
  b1=$(now_ms)
  base_ms=$((b1 - b0))
  process_ms=$((t1 - t0))
  cps=$(awk -v n="$chips" -v ms="$round_ms" 'BEGIN{printf "%.0f", n / (ms / 1000)}')
  echo "$cps $round_ms $process_ms $(field sql_read_ms "$line") $(field geometry_ms "$line") \
$(field sign_ms "$line") $(field sql_write_ms "$line") $base_ms $(field verify_ms "$line")" >>"$work/rounds.txt"
  echo "round $r: $cps chips/s (round $round_ms ms, process $process_ms ms; read $(field sql_read_ms "$line")," \
    "verify $(field verify_ms "$line"), geometry $(field geometry_ms "$line"), sign $(field sign_ms "$line")," \
    "write $(field sql_write_ms "$line") ms; $(field sig_checks "$line") rows checked); baseline read $base_ms ms"
  echo "  verdicts: $(sed -n 's/.* \(consistent=[0-9]* .*alerts=[0-9]*\).*/\1/p' <<<"$line")"
done
"${pin[@]}" "$sigrate" --seconds 2 >>"$work/sigrate.txt"
vrate=$(awk '{ sub("verify_per_s=", "", $2); print $2 }' "$work/sigrate.txt" | median %.0f)

# Warm: one process, rounds back to back; from its second round on every
# row read was checked in an earlier round of the same process.
sleep 1.1
flog=$work/verify-follow.log
"${pin[@]}" "$chiploc" verify --key "$work/verifier.key" --window 3600 --interval 1 --settle 0 \
  --max-chip-speed 0 --follow >/dev/null 2>"$flog" &
fpid=$!
for _ in $(seq 1 600); do
  (($(grep -c 'msg=round ' "$flog" || true) >= rounds + 1)) && break
  sleep 0.5
done
kill "$fpid" 2>/dev/null || true
wait "$fpid" 2>/dev/null || true
grep 'msg=round ' "$flog" | tail -n +2 | head -n "$rounds" >"$work/warm.txt"
[ -s "$work/warm.txt" ] || { echo "verifier bench: the --follow verifier logged no warm round" >&2; cat "$flog" >&2; exit 1; }
warm_ms=$(while read -r l; do field round_ms "$l"; done <"$work/warm.txt" | median %.1f)
warm_verify_ms=$(while read -r l; do field verify_ms "$l"; done <"$work/warm.txt" | median %.1f)
warm_checks=$(while read -r l; do field sig_checks "$l"; done <"$work/warm.txt" | median %.0f)
warm_cps=$(awk -v n="$chips" -v ms="$warm_ms" 'BEGIN{printf "%.0f", n / (ms / 1000)}')

col() { awk -v c="$1" '{print $c}' "$work/rounds.txt" | median %.1f; }
# The split is the median round's (by round time), so that its parts add up
# to its total; medians taken part by part need not.
mid=$(sort -g -k2,2 "$work/rounds.txt" | awk '{r[NR] = $0} END {print r[int((NR + 1) / 2)]}')
read -r cps round_ms process_ms read_ms geo_ms sign_ms write_ms _ verify_ms <<<"$mid"
noverify_cps=$(awk -v n="$chips" -v a="$round_ms" -v b="$verify_ms" 'BEGIN{printf "%.0f", n / ((a - b) / 1000)}')
vratio() { awk -v a="$1" -v b="$vrate" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "-" }'; }
base_ms=$(col 8)
pct() { awk -v a="$1" -v b="$round_ms" 'BEGIN{printf "%.0f", 100 * a / b}'; }
per_chip() { awk -v a="$1" -v n="$chips" 'BEGIN{printf "%.1f", 1000 * a / n}'; }
other_ms=$(awk -v t="$round_ms" -v a="$read_ms" -v b="$geo_ms" -v c="$sign_ms" -v d="$write_ms" \
  -v e="$verify_ms" 'BEGIN{printf "%.1f", t - a - b - c - d - e}')
met=no
((cps >= target)) && met=yes
ratio=$(awk -v a="$read_ms" -v b="$base_ms" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "-" }')
cpu=$(cpu_model)
load=$(cut -d' ' -f1-3 /proc/loadavg)
verdicts=$(grep -h 'msg=round' "$work"/verify-1.log | sed -n 's/.* \(consistent=[0-9]* .*alerts=[0-9]*\).*/\1/p')

section=$work/verifier-section.md
cat >"$section" <<MD
## Verifier throughput (\`bench/verifier.sh\`)

Regenerate with \`bench/verifier.sh\` after building (environment: BUILD_DIR,
VERIFIER_CHIPS, VERIFIER_ROUNDS). The split is that of the median round (by
round time); the baseline read is the median over rounds.

- date: $(date -u +%Y-%m-%dT%H:%MZ)
- machine: $(nproc) cores, ${cpu:-unknown CPU}; load average at the end: $load
- data: $fixture
- allowed regions: each chip's own country from \`borders-maritime-1000m.geo.json\`
  (chips at points of \`countries-land-10km.geo.json\`)
- rounds: $rounds one-shot runs of \`chiploc verify --window 3600 --interval 1 --settle 0 --max-chip-speed 0 --quiet\`
  (the one-hour window only lets one fixture serve every round; at the default chip speed of
  40 m/s it would add 144 km to every cap, which the default 300 s window keeps at 12 km),
  ${pin[*]:-not pinned} (PostgreSQL runs unpinned on the same machine); each writes $chips attestations
- verdicts per round: $verdicts

| | ms per round | µs per chip | share |
|---|---|---|---|
| SQL reads (lock, chips, regions, measurements, chain heads, alerts, landmarks) | $read_ms | $(per_chip "$read_ms") | $(pct "$read_ms") % |
| checking the rows read (record and transcript signatures, 2 Ed25519 verifications per row, every row new) | $verify_ms | $(per_chip "$verify_ms") | $(pct "$verify_ms") % |
| geometry (location engine with the region tests) | $geo_ms | $(per_chip "$geo_ms") | $(pct "$geo_ms") % |
| signing and hashing (digests, Ed25519 signature, chain hash) | $sign_ms | $(per_chip "$sign_ms") | $(pct "$sign_ms") % |
| SQL writes (attestation COPY, alerts, commit) | $write_ms | $(per_chip "$write_ms") | $(pct "$write_ms") % |
| other (table bookkeeping, landmark cross-check) | $other_ms | $(per_chip "$other_ms") | $(pct "$other_ms") % |
| **round** | **$round_ms** | **$(per_chip "$round_ms")** | |

Chips attested per second (round time from the \`msg=round\` line), with
libsodium's Ed25519 verify rate on one thread in the same run (\`bench/sigrate\`,
median of a run before and after the rounds: $vrate verifications/s):

| | chips/s | × verify rate |
|---|---|---|
| cold: every row read is new, its signatures checked (one-shot rounds, median) | **$cps** | $(vratio "$cps") |
| the same rounds without the checking (round time minus \`verify_ms\`) | $noverify_cps | $(vratio "$noverify_cps") |
| warm: every row read was checked by an earlier round of the same \`--follow\` process (median of $rounds rounds; verify $warm_verify_ms ms, $warm_checks signature checks) | **$warm_cps** | $(vratio "$warm_cps") |

A \`--follow\` verifier in service lies between the two: it checks the rows
that are new since its last round (two verifications each) and looks the
others up. The whole one-shot process, start to exit (key load,
connection): $process_ms ms.

Baseline: the same measurement rows read with a plain \`COPY (SELECT ... WHERE
k <= 1 ...) TO STDOUT\` through psql took $base_ms ms; the verifier's whole SQL read
(which also parses every row and reads chips, regions and chain heads) took
$read_ms ms, ratio $ratio. The COPY is the floor any verifier reading its
inputs from PostgreSQL pays; the verifier takes the measurement rows in
binary (no text to parse; landmark keys and positions once per round, not
per row), so its whole read comes close to that floor.

Target (issue 6): ≥ $target chips/s on one core with 8 landmarks per chip
and real country polygons. Met: **$met**.
MD
if [ "$met" = no ]; then
  cat >>"$section" <<MD

Where the gap is: the target leaves $((1000000 / target)) µs per chip. Checking
the rows read costs two Ed25519 verifications per row the process has not
seen: $(per_chip "$verify_ms") µs per chip in a cold round (8 new rows), nothing in a warm one;
a \`--follow\` verifier in service pays it for the rows that are new and fastest
since its last round (with bursts and rounds both every 60 s and a 300 s
window, about one chip-landmark pair in five, 3.2 verifications per chip). One
Ed25519 signature with its digests and chain hash costs $(per_chip "$sign_ms") µs here and
cannot be skipped (every attestation is signed); the SQL read costs
$(per_chip "$read_ms") µs per chip (the plain COPY of the same rows alone
$(per_chip "$base_ms") µs) and the batched write $(per_chip "$write_ms") µs. The rest of the
budget is far below the $(per_chip "$geo_ms") µs the engine takes per chip: it
classifies several hundred cells per chip against the true caps: a 22.5°
grid refined down to 5 % of F's size, exact geodesics for the cells near a
cap's edge, cells near a country border refined down to 62 m until the
verdict is decided, and F's far rim refined until the radius is within
2.5 % (docs/ENGINE.md). The profile below shows the Ed25519 checks first,
then cell classification and geodesics. Even with the engine at zero, the
signature, the SQL and two verifications per new row leave no room for
0.6× the verify rate on one core: that needs signatures over batches of
rows and of attestations, a change of the signed layouts left for a
decision.
MD
fi
# Profile of one more round (not counted above): where the verifier's CPU
# time goes, by shared object and symbol.
if [ "${VERIFIER_PROFILE:-1}" != 0 ] && command -v perf >/dev/null 2>&1; then
  sleep 1.1
  if perf record -q -o "$work/perf.data" -- "${pin[@]}" "$chiploc" verify --key "$work/verifier.key" \
      --window 3600 --interval 1 --settle 0 --max-chip-speed 0 --quiet >/dev/null \
      2>"$work/verify-perf.log"; then
    perf report -i "$work/perf.data" --stdio --no-children --sort dso,symbol 2>/dev/null |
      grep -E '^ +[0-9]' | sed -E 's/[[:space:]-]+$//' | head -n 15 >"$work/perf-top.txt" || true
    {
      echo
      echo "Profile of one more round (\`perf record\`, then \`perf report --stdio --no-children"
      echo "--sort dso,symbol\`), the top entries; samples of the verifier process only:"
      echo
      echo '```'
      cat "$work/perf-top.txt"
      echo '```'
    } >>"$section"
  fi
fi

splice_section bench/RESULTS.md verifier "$section"
if [ -n "${BENCH_SUMMARY:-}" ]; then
  echo "verifier|$cps chips/s on one core, cold ($warm_cps warm; verify rate $vrate/s)|plain COPY of the round's measurement rows: $base_ms ms (verifier SQL read: $read_ms ms)|$ratio|>= $target chips/s|$met" >>"$BENCH_SUMMARY"
fi
echo
cat "$section"
