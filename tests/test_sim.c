/*
 * End-to-end test of the user-space distance simulation (tests/sim/).
 *
 * test_fleet_physics: the real landmarkd at Paris on loopback, a real
 * PostgreSQL, and fleetsim answering for 20 simulated chips (10 honest in
 * the Paris area, 5 at Frankfurt, 3 at New York, 2 going dark after 3 s).
 * From the measurements table it checks that every chip's fastest RTT is at
 * least the simulated physical round trip and at most 5 ms more, that the
 * bound at c of every Paris-area chip covers its true distance, that New
 * York is at least ~56 ms away, and that the dark chips stop being measured.
 *
 * test_sign_delay: the real landmarkd and two fleetsims of Paris chips, one
 * signing at once and one with --sign-delay-ms 5: both are measured, and
 * the slow signatures add nothing to the fastest RTTs (in protocol 1 every
 * answer was a signature, so 5 ms of signing added 5 ms to every RTT).
 *
 * test_rogue_landmark: an in-test landmark speaking the wire protocol itself
 * times fleetsim directly (--sign-delay-ms 200): an unknown cipher suite is
 * refused, a bad landmark handshake signature ends the connection with
 * ERROR_BAD_LANDMARK; then a Frankfurt chip confirms its handshake no
 * sooner than the signing delay, answers a Paris landmark's challenges with
 * MACs under the session key no sooner than the simulated round trip,
 * answers a challenge sent while its transcript is being signed just as
 * fast, signs the transcript of the burst (and refuses one naming a probe it
 * never answered), and on Rekey makes a fresh offer and answers under the
 * new key.
 *
 * test_delayproxy: an echo exchange through delayproxy --delay-ms 20 takes
 * at least 40 ms, jittered chunks arrive complete and in order, and a close
 * on one side reaches the other.
 */
#define _GNU_SOURCE
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_geo.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_msg.h"
#include "cl_probe.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <check.h>
#include <libpq-fe.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PARIS_LAT 48.8566
#define PARIS_LON 2.3522
#define FLEET_SEED "4242"
#define N_CHIPS 20
#define RUN_MS 9000 /* fleetsim runs this long */
#define DARK_AFTER_S 3.0
#define SLACK_NS 5000000ull /* answers may leave up to 5 ms after their simulated time */

/* The documented key derivation, computed here independently of fleetsim. */
static void expected_pk_hex(uint64_t seed, uint64_t index, char out[CL_PK_HEX_LEN + 1]) {
  static const char ctx[] = "chiploc-sim chip";
  uint8_t in[sizeof ctx - 1 + 16], sd[32];
  memcpy(in, ctx, sizeof ctx - 1);
  cl_put_be64(in + sizeof ctx - 1, seed);
  cl_put_be64(in + sizeof ctx - 1 + 8, index);
  crypto_hash_sha256(sd, in, sizeof in);
  cl_key *k = NULL;
  ck_assert_int_eq(cl_key_from_seed(&k, sd), CL_OK);
  cl_pk_to_hex(cl_key_public(k), out);
  cl_key_destroy(&k);
}

typedef struct {
  const char *mode;
  double lat, lon; /* true position */
  double extra_ms; /* mode delay */
  double dark_s;   /* mode dark */
  int paris;       /* in the Paris area: bound at c must cover the true distance */
} chip_spec;

static void fleet_spec(chip_spec spec[N_CHIPS]) {
  for (int i = 0; i < 10; i++) /* honest, Paris area, up to ~8 km from the landmark */
    spec[i] = (chip_spec){"honest", PARIS_LAT + 0.005 * i, PARIS_LON + 0.007 * i, 0, 0, 1};
  for (int i = 10; i < 15; i++) /* Frankfurt, ~480 km: declared at Paris */
    spec[i] = (chip_spec){"smuggled", 50.1109 + 0.002 * (i - 10), 8.6821, 0, 0, 0};
  spec[15] = (chip_spec){"relay", 40.7128, -74.0060, 0, 0, 0}; /* New York */
  spec[16] = (chip_spec){"relay", 40.7306, -73.9352, 0, 0, 0};
  spec[17] = (chip_spec){"delay", 40.6892, -74.0445, 10, 0, 0};
  spec[18] = (chip_spec){"dark", PARIS_LAT - 0.01, PARIS_LON, 0, DARK_AFTER_S, 1};
  spec[19] = (chip_spec){"dark", PARIS_LAT - 0.02, PARIS_LON + 0.01, 0, DARK_AFTER_S, 1};
}

/*
 * Enrols chips 0..n-1 of FLEET_SEED as sim-NN at their declared sites: the
 * smuggled and relayed chips at Paris, the others where they are. Their
 * public keys come from `fleetsim keys`, checked against the documented
 * derivation.
 */
static void enroll_fleet(const char *dir, const char *db, const char *log, const chip_spec *spec,
                         int n) {
  char *simbin = tu_own(tu_bin("tests/sim/fleetsim"));
  char *keyscsv = tu_fmt("%s/keys.csv", dir), *count = tu_fmt("%d", n);
  char *keys_argv[] = {simbin, "keys", "--seed", FLEET_SEED, "--count", count, NULL};
  ck_assert_int_eq(tu_run(keys_argv, keyscsv), 0);
  char *keys = tu_own(tu_read_file(keyscsv));
  char *line = keys;
  for (int i = 0; i < n; i++) {
    unsigned idx = 0;
    char hex[CL_PK_HEX_LEN + 1], want[CL_PK_HEX_LEN + 1];
    ck_assert_msg(sscanf(line, "%u,%64s", &idx, hex) == 2, "keys line %d: %.80s", i, line);
    ck_assert_int_eq(idx, i);
    expected_pk_hex(4242, (uint64_t)i, want);
    ck_assert_str_eq(hex, want);
    int declared_paris =
        strcmp(spec[i].mode, "smuggled") == 0 || strcmp(spec[i].mode, "relay") == 0;
    char serial[16], site[64];
    snprintf(serial, sizeof serial, "sim-%02d", i);
    snprintf(site, sizeof site, "%.6f,%.6f", declared_paris ? PARIS_LAT : spec[i].lat,
             declared_paris ? PARIS_LON : spec[i].lon);
    ck_assert_int_eq(tu_cli(log, "chip", "enroll", "--db", db, "--pubkey", hex, "--serial", serial,
                            "--operator", "sim-operator", "--site", site, NULL),
                     0);
    line = strchr(line, '\n');
    ck_assert(line != NULL);
    line++;
  }
  ck_assert_int_eq(*line, '\0');
}

/* A fleet file (owned path) for the chips first..first+n-1 of spec. */
static char *write_fleet(const char *dir, const char *name, const chip_spec *spec, int first,
                         int n) {
  size_t cap = 4096, len = 0;
  char *fleet = tu_own(malloc(cap));
  len += (size_t)snprintf(fleet + len, cap - len,
                          "index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s\n");
  for (int i = first; i < first + n; i++)
    len += (size_t)snprintf(fleet + len, cap - len, "%d,%.6f,%.6f,%s,%g,%g\n", i, spec[i].lat,
                            spec[i].lon, spec[i].mode, spec[i].extra_ms, spec[i].dark_s);
  ck_assert(len < cap);
  return tu_own(tu_write_file(dir, name, fleet));
}

/* The landmark lm-paris in the database, with a fresh key; *lkey receives
 * its key file, *lhex its public key (both owned). */
static void add_landmark(const char *dir, const char *db, const char *log, char **lkey,
                         char **lhex) {
  *lkey = tu_keygen(dir, "landmark", log);
  *lhex = tu_key_hex(*lkey);
  ck_assert_int_eq(tu_cli(log, "landmark", "add", "--db", db, "--name", "lm-paris", "--pubkey",
                          *lhex, "--lat", "48.8566", "--lon", "2.3522", NULL),
                   0);
}

typedef struct {
  long long count;
  long long min_rtt_ns;
  long long min_bound_m;
  long long last_measured_ns;
} chip_result;

/* Per-chip aggregates over the measurements table, by serial sim-NN, for
 * the n chips enrolled. */
static void fetch_results(const char *conninfo, int n, chip_result *res) {
  PGconn *c = PQconnectdb(conninfo);
  ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, "SELECT c.serial, count(m.rtt_ns), coalesce(min(m.rtt_ns), -1), "
                          "coalesce(min(m.bound_m), -1), coalesce(max(m.measured_at_ns), -1) "
                          "FROM chips c LEFT JOIN measurements m ON m.chip_id = c.id "
                          "GROUP BY c.serial");
  ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
  ck_assert_int_eq(PQntuples(r), n);
  for (int i = 0; i < PQntuples(r); i++) {
    int idx = -1;
    ck_assert_int_eq(sscanf(PQgetvalue(r, i, 0), "sim-%d", &idx), 1);
    ck_assert(idx >= 0 && idx < n);
    res[idx].count = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    res[idx].min_rtt_ns = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    res[idx].min_bound_m = strtoll(PQgetvalue(r, i, 3), NULL, 10);
    res[idx].last_measured_ns = strtoll(PQgetvalue(r, i, 4), NULL, 10);
  }
  PQclear(r);
  PQfinish(c);
}

START_TEST(test_fleet_physics) {
  char *dir = tu_own(tu_tmpdir("chiploc-sim"));
  char *log = tu_fmt("%s/cli.log", dir), *lmlog = tu_fmt("%s/landmarkd.log", dir);
  char *simlog = tu_fmt("%s/fleetsim.log", dir);
  char *db = tu_own(tu_db_create("chiploc_sim"));
  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", db, NULL), 0);
  char *lkey = NULL, *lhex = NULL;
  add_landmark(dir, db, log, &lkey, &lhex);
  chip_spec spec[N_CHIPS];
  fleet_spec(spec);
  enroll_fleet(dir, db, log, spec, N_CHIPS);
  char *fleetcsv = write_fleet(dir, "fleet.csv", spec, 0, N_CHIPS);
  int port = tu_free_port();
  char *lmcsv = tu_own(tu_write_file(
      dir, "landmarks.csv",
      tu_fmt("name,address,public_key,lat,lon\nlm-paris,127.0.0.1:%d,%s,48.8566,2.3522\n", port,
             lhex)));

  tu_landmark_opts lo = tu_landmark_defaults();
  lo.key = lkey;
  lo.port = port;
  lo.conninfo = db;
  lo.burst_gap_ms = 50;
  lo.deadline_ms = 1000;
  lo.speed = "fibre";
  pid_t lm = tu_landmarkd_start(tu_landmark_conf(dir, &lo), lmlog);

  char *simbin = tu_own(tu_bin("tests/sim/fleetsim"));
  char *sim_argv[] = {simbin,   "run",      "--fleet", fleetcsv, "--landmarks", lmcsv,
                      "--seed", FLEET_SEED, "--speed", "fibre",  NULL};
  uint64_t t0 = tu_mono_ns();
  pid_t sim = tu_spawn(sim_argv, simlog);
  ck_assert_msg(tu_wait_log(simlog, "msg=started", 1, 20000) == 0, "fleetsim did not start");
  uint64_t elapsed_ms = (tu_mono_ns() - t0) / 1000000u;
  if (elapsed_ms < RUN_MS) tu_sleep_ms((int)(RUN_MS - elapsed_ms));
  ck_assert_int_eq(tu_stop(sim, SIGTERM, 10000), 0);
  tu_sleep_ms(300); /* let the last batch reach the database */
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);

  /* The simulator itself saw nothing wrong: every chip had a session, and
   * every BurstEnd named probes the chip had answered. */
  ck_assert_int_eq(tu_last_stat(simlog, "refused"), 0);
  ck_assert_int_eq(tu_last_stat(simlog, "bad_landmark_sig"), 0);
  ck_assert_int_eq(tu_last_stat(simlog, "unknown_chip"), 0);
  ck_assert_int_eq(tu_last_stat(simlog, "burst_refused"), 0);
  ck_assert_int_ge(tu_last_stat(simlog, "confirmed"), N_CHIPS);
  ck_assert_int_ge(tu_last_stat(simlog, "dark_ignored"), 1);
  ck_assert_int_ge(tu_last_stat(simlog, "answered"), 3 * N_CHIPS);

  chip_result res[N_CHIPS];
  memset(res, 0, sizeof res);
  fetch_results(db, N_CHIPS, res);
  long long live_last_min = -1, records = 0;
  for (int i = 0; i < N_CHIPS; i++) {
    const chip_spec *sp = &spec[i];
    const chip_result *r = &res[i];
    records += r->count;
    ck_assert_msg(r->count >= 1, "chip %d (%s) was never measured", i, sp->mode);
    double d = cl_geo_distance_m(sp->lat, sp->lon, PARIS_LAT, PARIS_LON);
    double physical_ns = 2.0 * d / CL_SPEED_FIBRE * 1e9 + sp->extra_ms * 1e6;
    printf("chip %2d %-8s %9.0f m  simulated %10.0f ns  min rtt %10lld ns  bound@c %8lld m  "
           "records %lld\n",
           i, sp->mode, d, physical_ns, r->min_rtt_ns, r->min_bound_m, r->count);
    ck_assert_msg((double)r->min_rtt_ns >= floor(physical_ns),
                  "chip %d (%s, %.0f m): min rtt %lld ns below the simulated %.0f ns", i, sp->mode,
                  d, r->min_rtt_ns, physical_ns);
    ck_assert_msg(
        (double)r->min_rtt_ns <= physical_ns + (double)SLACK_NS,
        "chip %d (%s, %.0f m): min rtt %lld ns more than 5 ms above the simulated %.0f ns", i,
        sp->mode, d, r->min_rtt_ns, physical_ns);
    if (sp->paris)
      ck_assert_msg((double)r->min_bound_m >= d, "chip %d: bound %lld m below its distance %.0f m",
                    i, r->min_bound_m, d);
    if (sp->lon < -70) ck_assert_int_ge(r->min_rtt_ns, 56000000);
    if (strcmp(sp->mode, "dark") != 0) {
      ck_assert_msg(r->count >= 3, "chip %d (%s) has only %lld measurements", i, sp->mode,
                    r->count);
      if (live_last_min < 0 || r->last_measured_ns < live_last_min)
        live_last_min = r->last_measured_ns;
    }
  }
  /* A record needs the chip's transcript signature. */
  ck_assert_int_ge(tu_last_stat(simlog, "transcripts"), records);
  /* Dark chips: measured before going dark, then no more. */
  for (int i = 18; i < 20; i++)
    ck_assert_msg(res[i].last_measured_ns <= live_last_min - 2000000000ll,
                  "dark chip %d last measured %lld ns, live chips' earliest last %lld ns", i,
                  res[i].last_measured_ns, live_last_min);
  tu_release();
}
END_TEST

/* ---- a slow root of trust ---------------------------------------------------- */

#define SIGN_CHIPS 10     /* 0..4 sign at once, 5..9 take SIGN_DELAY_MS */
#define SIGN_DELAY_MS "5" /* what the benchmark shows, and v1 would have added to each RTT */
#define SIGN_RUN_MS 7000

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

/* Median of n values (sorted in place); the lower one of the middle two. */
static long long median_ll(long long *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_ll);
  return v[(n - 1) / 2];
}

START_TEST(test_sign_delay) {
  char *dir = tu_own(tu_tmpdir("chiploc-sim-sign"));
  char *log = tu_fmt("%s/cli.log", dir), *lmlog = tu_fmt("%s/landmarkd.log", dir);
  char *db = tu_own(tu_db_create("chiploc_sim_sign"));
  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", db, NULL), 0);
  char *lkey = NULL, *lhex = NULL;
  add_landmark(dir, db, log, &lkey, &lhex);
  /* Honest chips within ~1.5 km of the landmark: the simulated round trip
   * is at most ~15 us, so a fastest RTT is loopback and processing time. */
  chip_spec spec[SIGN_CHIPS];
  for (int i = 0; i < SIGN_CHIPS; i++)
    spec[i] = (chip_spec){"honest", PARIS_LAT + 0.001 * i, PARIS_LON + 0.001 * i, 0, 0, 1};
  enroll_fleet(dir, db, log, spec, SIGN_CHIPS);
  int port = tu_free_port();
  char *lmcsv = tu_own(tu_write_file(
      dir, "landmarks.csv",
      tu_fmt("name,address,public_key,lat,lon\nlm-paris,127.0.0.1:%d,%s,48.8566,2.3522\n", port,
             lhex)));
  tu_landmark_opts lo = tu_landmark_defaults();
  lo.key = lkey;
  lo.port = port;
  lo.conninfo = db;
  lo.speed = "fibre";
  pid_t lm = tu_landmarkd_start(tu_landmark_conf(dir, &lo), lmlog);

  char *simbin = tu_own(tu_bin("tests/sim/fleetsim"));
  char *logs[2], *delays[2] = {"0", SIGN_DELAY_MS};
  pid_t sims[2];
  uint64_t t0 = tu_mono_ns();
  for (int f = 0; f < 2; f++) {
    logs[f] = tu_fmt("%s/fleetsim-%d.log", dir, f);
    char *argv[] = {
        simbin,
        "run",
        "--fleet",
        write_fleet(dir, tu_fmt("fleet-%d.csv", f), spec, f * SIGN_CHIPS / 2, SIGN_CHIPS / 2),
        "--landmarks",
        lmcsv,
        "--seed",
        FLEET_SEED,
        "--speed",
        "fibre",
        "--jitter-ms",
        "0",
        "--sign-delay-ms",
        delays[f],
        NULL};
    sims[f] = tu_spawn(argv, logs[f]);
    ck_assert_msg(tu_wait_log(logs[f], "msg=started", 1, 20000) == 0, "fleetsim %d did not start",
                  f);
  }
  ck_assert_int_eq(tu_wait_log(logs[1], "sign_delay_ms=" SIGN_DELAY_MS, 1, 1000), 0);
  uint64_t elapsed_ms = (tu_mono_ns() - t0) / 1000000u;
  if (elapsed_ms < SIGN_RUN_MS) tu_sleep_ms((int)(SIGN_RUN_MS - elapsed_ms));
  for (int f = 0; f < 2; f++) ck_assert_int_eq(tu_stop(sims[f], SIGTERM, 10000), 0);
  tu_sleep_ms(300); /* let the last batch reach the database */
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);

  chip_result res[SIGN_CHIPS];
  memset(res, 0, sizeof res);
  fetch_results(db, SIGN_CHIPS, res);
  long long min_rtt[2][SIGN_CHIPS / 2], records[2] = {0, 0};
  for (int i = 0; i < SIGN_CHIPS; i++) {
    int f = i / (SIGN_CHIPS / 2);
    printf("chip %d sign delay %s ms: min rtt %lld ns, records %lld\n", i, delays[f],
           res[i].min_rtt_ns, res[i].count);
    ck_assert_msg(res[i].count >= 3, "chip %d (sign delay %s ms) has only %lld measurements", i,
                  delays[f], res[i].count);
    min_rtt[f][i % (SIGN_CHIPS / 2)] = res[i].min_rtt_ns;
    records[f] += res[i].count;
  }
  for (int f = 0; f < 2; f++) {
    ck_assert_int_eq(tu_last_stat(logs[f], "confirmed"), SIGN_CHIPS / 2);
    ck_assert_int_ge(tu_last_stat(logs[f], "transcripts"), records[f]);
    ck_assert_int_eq(tu_last_stat(logs[f], "burst_refused"), 0);
  }
  long long med_now = median_ll(min_rtt[0], SIGN_CHIPS / 2);
  long long med_slow = median_ll(min_rtt[1], SIGN_CHIPS / 2);
  printf("median of the fastest RTTs: %lld ns signing at once, %lld ns signing in %s ms\n", med_now,
         med_slow, SIGN_DELAY_MS);
  /* Gross on purpose (a shared 2-core machine): 5 ms in the timed path
   * would put both far above these. */
  ck_assert_msg(med_slow < 1000000, "median fastest RTT %lld ns with slow signing", med_slow);
  ck_assert_msg(med_slow < med_now + 1000000,
                "median fastest RTT %lld ns with slow signing, %lld ns without", med_slow, med_now);
  tu_release();
}
END_TEST

/* ---- a landmark written in the test ---------------------------------------- */

#define ROGUE_SIGN_DELAY_MS 200

/* Answers the Register just received (one offer, from chip) as the landmark
 * lk: a fresh ephemeral key (secret into eph_sk) and nonce, the landmark's
 * handshake signature (corrupted when `corrupt`). Fills *hs but its
 * chip_sig. */
static void rogue_accept(tu_wire *w, const cl_key *lk, const cl_msg *reg,
                         const uint8_t chip[CL_PK_LEN], int corrupt, cl_handshake *hs,
                         uint8_t eph_sk[CL_EPH_SK_LEN]) {
  ck_assert_int_eq(reg->type, CL_MSG_REGISTER);
  ck_assert_int_eq(reg->u.reg.suite, CL_SUITE_ED25519_X25519);
  ck_assert_int_eq(reg->u.reg.n, 1);
  ck_assert_int_eq(memcmp(reg->u.reg.chips[0].chip, chip, CL_PK_LEN), 0);
  memset(hs, 0, sizeof *hs);
  hs->suite = CL_SUITE_ED25519_X25519;
  memcpy(hs->landmark, cl_key_public(lk), CL_PK_LEN);
  memcpy(hs->chip, chip, CL_PK_LEN);
  memcpy(hs->chip_eph, reg->u.reg.chips[0].eph, CL_EPH_LEN);
  memcpy(hs->chip_nonce, reg->u.reg.chips[0].nonce, CL_NONCE_LEN);
  cl_eph_generate(hs->landmark_eph, eph_sk);
  randombytes_buf(hs->landmark_nonce, CL_NONCE_LEN);
  ck_assert_int_eq(cl_hs_sign_landmark(hs, lk), CL_OK);
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER_RESULT;
  m.u.reg_result.n = 1;
  cl_chip_result *r = &m.u.reg_result.r[0];
  memcpy(r->chip, chip, CL_PK_LEN);
  r->accepted = 1;
  memcpy(r->eph, hs->landmark_eph, CL_EPH_LEN);
  memcpy(r->nonce, hs->landmark_nonce, CL_NONCE_LEN);
  memcpy(r->sig, hs->landmark_sig, CL_SIG_LEN);
  if (corrupt) r->sig[5] ^= 0x40;
  tu_wire_send(w, &m);
}

/* The Confirm of hs's chip: its handshake signature must verify; derives
 * the landmark's session key. Returns the ns from `since` to its arrival. */
static uint64_t rogue_confirm(tu_wire *w, cl_handshake *hs, const uint8_t eph_sk[CL_EPH_SK_LEN],
                              uint8_t key[CL_SESSION_KEY_LEN], uint64_t since) {
  cl_msg m;
  ck_assert_int_eq(tu_wire_recv(w, &m, 5000), 0);
  uint64_t dt = tu_mono_ns() - since;
  ck_assert_int_eq(m.type, CL_MSG_CONFIRM);
  ck_assert_int_eq(m.u.confirm.n, 1);
  ck_assert_int_eq(memcmp(m.u.confirm.chips[0].chip, hs->chip, CL_PK_LEN), 0);
  memcpy(hs->chip_sig, m.u.confirm.chips[0].sig, CL_SIG_LEN);
  ck_assert_int_eq(cl_hs_verify_chip(hs), CL_OK);
  ck_assert_int_eq(cl_session_key(hs, CL_SIDE_LANDMARK, eph_sk, key), CL_OK);
  return dt;
}

/* Sends a Challenge and returns the RTT of its Response in ns; the Response
 * must be the next message and carry the MAC under key. *e receives the
 * probe as a transcript names it. */
static uint64_t probe_once(tu_wire *w, const cl_handshake *hs,
                           const uint8_t key[CL_SESSION_KEY_LEN], uint64_t seq, cl_probe_entry *e) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CHALLENGE;
  memcpy(m.u.challenge.chip, hs->chip, CL_PK_LEN);
  m.u.challenge.seq = seq;
  randombytes_buf(m.u.challenge.nonce, CL_NONCE_LEN);
  memset(e, 0, sizeof *e);
  e->seq = seq;
  memcpy(e->nonce, m.u.challenge.nonce, CL_NONCE_LEN);
  uint64_t t0 = tu_mono_ns();
  tu_wire_send(w, &m);
  ck_assert_msg(tu_wire_recv(w, &m, 5000) == 0, "no answer to challenge %llu",
                (unsigned long long)seq);
  uint64_t rtt = tu_mono_ns() - t0;
  ck_assert_int_eq(m.type, CL_MSG_RESPONSE);
  ck_assert_int_eq(memcmp(m.u.response.chip, hs->chip, CL_PK_LEN), 0);
  ck_assert_int_eq(m.u.response.seq, seq);
  ck_assert_int_eq(
      cl_answer_check(key, hs->suite, hs->landmark, hs->chip, seq, e->nonce, m.u.response.mac),
      CL_OK);
  memcpy(e->mac, m.u.response.mac, CL_MAC_LEN);
  return rtt;
}

static void send_burst_end(tu_wire *w, const uint8_t chip[CL_PK_LEN], const uint64_t *seqs,
                           size_t n) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_BURST_END;
  memcpy(m.u.burst_end.chip, chip, CL_PK_LEN);
  m.u.burst_end.n = n;
  memcpy(m.u.burst_end.seqs, seqs, n * sizeof *seqs);
  tu_wire_send(w, &m);
}

/* Accepts fleetsim's next connection and sends Hello in `suite`. */
static void rogue_hello(tu_wire *w, int lfd, const cl_key *lk, uint32_t suite) {
  ck_assert_msg(tu_wire_accept(w, lfd, 10000) == 0, "fleetsim did not connect");
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_HELLO;
  memcpy(m.u.hello.landmark, cl_key_public(lk), CL_PK_LEN);
  m.u.hello.suite = suite;
  tu_wire_send(w, &m);
}

START_TEST(test_rogue_landmark) {
  char *dir = tu_own(tu_tmpdir("chiploc-sim-rogue"));
  char *simlog = tu_fmt("%s/fleetsim.log", dir);
  uint8_t seed[32];
  memset(seed, 0x5a, sizeof seed);
  cl_key *lk = NULL;
  ck_assert_int_eq(cl_key_from_seed(&lk, seed), CL_OK);
  char lhex[CL_PK_HEX_LEN + 1], chex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(lk), lhex);
  expected_pk_hex(4242, 7, chex);
  uint8_t chip[CL_PK_LEN];
  ck_assert_int_eq(cl_pk_from_hex(chex, chip), CL_OK);

  int lport = 0;
  int lfd = tu_listen_local(&lport);
  /* One chip at Frankfurt, no jitter; the landmark at Paris. */
  char *fleetcsv = tu_own(tu_write_file(
      dir, "fleet.csv",
      "index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s\n7,50.1109,8.6821,honest,0,0\n"));
  char *lmcsv = tu_own(tu_write_file(dir, "landmarks.csv",
                                     tu_fmt("name,address,public_key,lat,lon\n"
                                            "rogue,127.0.0.1:%d,%s,48.8566,2.3522\n",
                                            lport, lhex)));
  char *simbin = tu_own(tu_bin("tests/sim/fleetsim"));
  char *delay = tu_fmt("%d", ROGUE_SIGN_DELAY_MS);
  char *sim_argv[] = {simbin,        "run",      "--fleet",     fleetcsv, "--landmarks",     lmcsv,
                      "--seed",      FLEET_SEED, "--jitter-ms", "0",      "--sign-delay-ms", delay,
                      "--log-level", "debug",    NULL};
  pid_t sim = tu_spawn(sim_argv, simlog);
  tu_wire w;
  cl_msg m;
  cl_handshake hs;
  uint8_t eph_sk[CL_EPH_SK_LEN], key[CL_SESSION_KEY_LEN];
  const uint64_t sign_ns = ROGUE_SIGN_DELAY_MS * 1000000ull;

  /* A cipher suite it does not know: refused, closed. */
  rogue_hello(&w, lfd, lk, 7);
  ck_assert_int_eq(tu_wire_recv(&w, &m, 5000), 0);
  ck_assert_int_eq(m.type, CL_MSG_ERROR);
  ck_assert_int_eq(m.u.error.code, CL_ERR_SUITE);
  ck_assert_msg(strstr(m.u.error.text, "cipher suite 7 is unknown") != NULL, "%s", m.u.error.text);
  ck_assert_int_eq(tu_wire_recv(&w, &m, 5000), TU_WIRE_EOF);
  tu_wire_close(&w);

  /* A landmark handshake signature that does not verify: no Confirm, no
   * session; ERROR_BAD_LANDMARK and the connection is dropped. */
  rogue_hello(&w, lfd, lk, CL_SUITE_ED25519_X25519);
  ck_assert_int_eq(tu_wire_recv(&w, &m, 5000), 0);
  rogue_accept(&w, lk, &m, chip, 1, &hs, eph_sk);
  ck_assert_int_eq(tu_wire_recv(&w, &m, 5000), 0);
  ck_assert_int_eq(m.type, CL_MSG_ERROR);
  ck_assert_int_eq(m.u.error.code, CL_ERR_BAD_LANDMARK);
  ck_assert_int_eq(tu_wire_recv(&w, &m, 5000), TU_WIRE_EOF);
  tu_wire_close(&w);

  /* It reconnects; a good handshake. The chip's signature comes no sooner
   * than the signing delay. */
  rogue_hello(&w, lfd, lk, CL_SUITE_ED25519_X25519);
  ck_assert_int_eq(tu_wire_recv(&w, &m, 5000), 0);
  uint64_t t0 = tu_mono_ns();
  rogue_accept(&w, lk, &m, chip, 0, &hs, eph_sk);
  uint64_t dt = rogue_confirm(&w, &hs, eph_sk, key, t0);
  ck_assert_msg(dt >= sign_ns, "Confirm after %llu ns, signing takes %llu ns",
                (unsigned long long)dt, (unsigned long long)sign_ns);

  /* Challenges: MACs under the session key, never before the simulated
   * round trip, and not much after it. */
  double physical_ns =
      2.0 * cl_geo_distance_m(50.1109, 8.6821, PARIS_LAT, PARIS_LON) / CL_SPEED_FIBRE * 1e9;
  cl_probe_entry e[CL_MAX_BURST], late;
  uint64_t seqs[CL_MAX_BURST];
  for (uint64_t seq = 1; seq <= 5; seq++) {
    uint64_t rtt = probe_once(&w, &hs, key, seq, &e[seq - 1]);
    seqs[seq - 1] = seq;
    ck_assert_msg((double)rtt >= physical_ns, "rtt %llu ns below the simulated %.0f ns",
                  (unsigned long long)rtt, physical_ns);
    ck_assert_msg((double)rtt <= physical_ns + (double)SLACK_NS, "rtt %llu ns, simulated %.0f ns",
                  (unsigned long long)rtt, physical_ns);
  }
  /* The end of the burst, and at once another challenge: answered as fast
   * while the transcript is being signed; the Transcript follows after
   * the signing delay and verifies over the five probes. */
  t0 = tu_mono_ns();
  send_burst_end(&w, chip, seqs, 5);
  uint64_t rtt = probe_once(&w, &hs, key, 6, &late);
  ck_assert_msg((double)rtt <= physical_ns + (double)SLACK_NS,
                "rtt %llu ns during a transcript signature, simulated %.0f ns",
                (unsigned long long)rtt, physical_ns);
  ck_assert_int_eq(tu_wire_recv(&w, &m, 5000), 0);
  dt = tu_mono_ns() - t0;
  ck_assert_int_eq(m.type, CL_MSG_TRANSCRIPT);
  ck_assert_int_eq(memcmp(m.u.transcript.chip, chip, CL_PK_LEN), 0);
  ck_assert_int_eq(m.u.transcript.first_seq, 1);
  ck_assert_msg(dt >= sign_ns, "Transcript after %llu ns, signing takes %llu ns",
                (unsigned long long)dt, (unsigned long long)sign_ns);
  ck_assert_int_eq(cl_transcript_verify(&hs, e, 5, m.u.transcript.sig), CL_OK);
  /* A BurstEnd naming a probe it never answered: no transcript. */
  seqs[0] = 6;
  seqs[1] = 99;
  send_burst_end(&w, chip, seqs, 2);
  ck_assert_int_eq(tu_wire_recv(&w, &m, 2 * ROGUE_SIGN_DELAY_MS + 300), TU_WIRE_TIMEOUT);

  /* Rekey: a fresh offer at once (an offer is no signature), a new
   * handshake, answers under the new key only. */
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REKEY;
  memcpy(m.u.rekey.chip, chip, CL_PK_LEN);
  t0 = tu_mono_ns();
  tu_wire_send(&w, &m);
  ck_assert_int_eq(tu_wire_recv(&w, &m, 5000), 0);
  ck_assert_msg(tu_mono_ns() - t0 < sign_ns, "the fresh offer took %llu ns",
                (unsigned long long)(tu_mono_ns() - t0));
  ck_assert_int_eq(m.type, CL_MSG_REGISTER);
  ck_assert_int_eq(m.u.reg.n, 1);
  ck_assert_int_ne(memcmp(m.u.reg.chips[0].eph, hs.chip_eph, CL_EPH_LEN), 0);
  ck_assert_int_ne(memcmp(m.u.reg.chips[0].nonce, hs.chip_nonce, CL_NONCE_LEN), 0);
  cl_handshake hs2;
  uint8_t key2[CL_SESSION_KEY_LEN];
  t0 = tu_mono_ns();
  rogue_accept(&w, lk, &m, chip, 0, &hs2, eph_sk);
  ck_assert_uint_ge(rogue_confirm(&w, &hs2, eph_sk, key2, t0), sign_ns);
  ck_assert_int_ne(memcmp(key, key2, CL_SESSION_KEY_LEN), 0);
  probe_once(&w, &hs2, key2, 7, &late);
  ck_assert_int_eq(cl_answer_check(key, hs.suite, hs.landmark, chip, 7, late.nonce, late.mac),
                   CL_EBADSIG);
  tu_wire_close(&w);

  /* It reconnects on its own. */
  struct pollfd pl = {.fd = lfd, .events = POLLIN};
  ck_assert_msg(poll(&pl, 1, 10000) == 1, "fleetsim did not reconnect");
  ck_assert_int_eq(tu_stop(sim, SIGTERM, 10000), 0);
  close(lfd);
  ck_assert_int_eq(tu_last_stat(simlog, "bad_landmark_sig"), 1);
  ck_assert_int_eq(tu_last_stat(simlog, "answered"), 7);
  ck_assert_int_eq(tu_last_stat(simlog, "confirmed"), 2);
  ck_assert_int_eq(tu_last_stat(simlog, "transcripts"), 1);
  ck_assert_int_eq(tu_last_stat(simlog, "burst_refused"), 1);
  ck_assert_int_eq(tu_last_stat(simlog, "rekeys"), 1);
  cl_key_destroy(&lk);
  tu_release();
}
END_TEST

/* ---- the delay proxy ------------------------------------------------------- */

/* Reads exactly n bytes within timeout_ms; returns 0 or -1. */
static int read_exact(int fd, uint8_t *buf, size_t n, int timeout_ms) {
  size_t have = 0;
  uint64_t end = tu_mono_ns() + (uint64_t)timeout_ms * 1000000u;
  while (have < n) {
    uint64_t now = tu_mono_ns();
    if (now >= end) return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) <= 0) continue;
    ssize_t r = read(fd, buf + have, n - have);
    if (r <= 0) return -1;
    have += (size_t)r;
  }
  return 0;
}

static int tcp_connect_local(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect to port %d", port);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* A fleet file's destination columns: one without the other, a value out of
 * range and a half-given destination are refused with exit 2 and a message
 * naming the file and line, before anything is started. */
START_TEST(test_fleet_move_columns) {
  char *dir = tu_own(tu_tmpdir("chiploc-sim-move"));
  char *simbin = tu_own(tu_bin("tests/sim/fleetsim"));
  char *lmcsv = tu_own(tu_write_file(
      dir, "landmarks.csv",
      "name,address,public_key,lat,lon\nlm-paris,127.0.0.1:9,"
      "0000000000000000000000000000000000000000000000000000000000000000,48.8566,2.3522\n"));
  static const struct {
    const char *csv, *want;
  } cases[] = {
      {"index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s,move_to_lat\n"
       "0,50.1,8.7,honest,,,52.2\n",
       "move_to_lat and move_to_lon go together"},
      {"index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s,move_to_lat,move_to_lon\n"
       "0,50.1,8.7,honest,,,95,21.0\n",
       "fleet.csv:2: column move_to_lat: \"95\" is out of range"},
      {"index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s,move_to_lat,move_to_lon\n"
       "0,50.1,8.7,honest,,,52.2,\n",
       "fleet.csv:2: column move_to_lon"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *fleetcsv = tu_own(tu_write_file(dir, "fleet.csv", cases[i].csv));
    char *argv[] = {simbin, "run", "--fleet", fleetcsv, "--landmarks", lmcsv, "--seed", FLEET_SEED,
                    NULL};
    char *out = NULL, *err = NULL;
    int st = tu_run_capture(argv, dir, &out, &err, NULL);
    tu_own(out);
    tu_own(err);
    ck_assert_msg(st == 2, "case %zu: exit %d, want 2 (stderr: %s)", i, st, err);
    ck_assert_msg(strstr(err, cases[i].want), "case %zu: stderr lacks \"%s\": %s", i,
                  cases[i].want, err);
  }
}
END_TEST

START_TEST(test_delayproxy) {
  char *dir = tu_own(tu_tmpdir("chiploc-proxy"));
  char *plog = tu_fmt("%s/delayproxy.log", dir);
  /* The "server" side: a listening socket this test answers on itself. */
  int sport = 0;
  int lfd = tu_listen_local(&sport);
  int pport = tu_free_port();
  char *bin = tu_own(tu_bin("tests/sim/delayproxy"));
  char *listen_at = tu_fmt("127.0.0.1:%d", pport), *connect_to = tu_fmt("127.0.0.1:%d", sport);
  char *argv[] = {bin,          "--listen", listen_at,     "--connect", connect_to,
                  "--delay-ms", "20",       "--jitter-ms", "5",         NULL};
  pid_t px = tu_spawn(argv, plog);
  ck_assert_msg(tu_wait_log(plog, "msg=listening", 1, 10000) == 0, "delayproxy did not listen");

  int cfd = tcp_connect_local(pport);
  struct pollfd pl = {.fd = lfd, .events = POLLIN};
  ck_assert_msg(poll(&pl, 1, 5000) == 1, "the proxy did not connect upstream");
  int sfd = accept(lfd, NULL, NULL);
  ck_assert(sfd >= 0);

  /* One echo round trip: two delayed legs. */
  uint8_t buf[64];
  uint64_t t0 = tu_mono_ns();
  ck_assert_int_eq(write(cfd, "ping", 4), 4);
  ck_assert_int_eq(read_exact(sfd, buf, 4, 5000), 0);
  uint64_t t1 = tu_mono_ns();
  ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
  ck_assert_int_eq(write(sfd, "pong", 4), 4);
  ck_assert_int_eq(read_exact(cfd, buf, 4, 5000), 0);
  uint64_t t2 = tu_mono_ns();
  ck_assert_int_eq(memcmp(buf, "pong", 4), 0);
  ck_assert_msg(t1 - t0 >= 20000000ull, "one way took %llu ns", (unsigned long long)(t1 - t0));
  ck_assert_msg(t2 - t0 >= 40000000ull, "round trip took %llu ns", (unsigned long long)(t2 - t0));
  ck_assert_msg(t2 - t0 < 1000000000ull, "round trip took %llu ns", (unsigned long long)(t2 - t0));

  /* Many small chunks, each jittered: bytes still arrive complete and in order. */
  enum { CHUNKS = 200, CHUNK = 100 };
  uint8_t *sent = (uint8_t *)tu_own(malloc(CHUNKS * CHUNK));
  uint8_t *got = (uint8_t *)tu_own(malloc(CHUNKS * CHUNK));
  for (int i = 0; i < CHUNKS * CHUNK; i++) sent[i] = (uint8_t)(i * 7 + i / 251);
  for (int i = 0; i < CHUNKS; i++) {
    ck_assert_int_eq(write(cfd, sent + i * CHUNK, CHUNK), CHUNK);
    usleep(300);
  }
  ck_assert_int_eq(read_exact(sfd, got, CHUNKS * CHUNK, 10000), 0);
  ck_assert_int_eq(memcmp(sent, got, CHUNKS * CHUNK), 0);

  /* Closing the client closes the upstream side, after the delay. */
  close(cfd);
  struct pollfd ps = {.fd = sfd, .events = POLLIN};
  ck_assert_msg(poll(&ps, 1, 5000) == 1, "upstream side not closed");
  ck_assert_int_eq(read(sfd, buf, sizeof buf), 0);
  close(sfd);
  close(lfd);
  ck_assert_int_eq(tu_stop(px, SIGTERM, 5000), 0);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("sim");
  TCase *tc = tcase_create("processes");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, test_fleet_move_columns);
  tcase_add_test(tc, test_delayproxy);
  tcase_add_test(tc, test_rogue_landmark);
  tcase_add_test(tc, test_sign_delay);
  tcase_add_test(tc, test_fleet_physics);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
