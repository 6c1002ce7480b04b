/*
 * The simulated world end to end, every program a real binary in its own
 * process: seven landmarkd, one chipagent per landmark node that lets the
 * other landmarks probe it through one delayproxy per ordered pair (delayed
 * by the true distance at the speed of light), two fleetsim processes, the
 * verifier in --follow mode (stopped and started again), a one-shot verifier
 * run twice in one round, `chiploc audit` and `chiploc export`, against a
 * real PostgreSQL with the real country borders (maritime: land and
 * territorial sea, CHIPLOC_BORDERS).
 *
 * The world: six honest landmarks (Paris, Frankfurt, Madrid, Warsaw,
 * Helsinki, New York) and "lm-rome", enrolled at Rome but really at Madrid:
 * the delay proxies and the simulator use its true position. The main fleet
 * (measured by the six honest landmarks) holds honest chips in well-covered
 * places, one honest chip that adds 5 ms to every answer, chips smuggled from
 * Germany to Moscow, Minsk and Saint Petersburg, chips relayed from Paris and
 * Madrid to New York and Boston, two chips that stop answering, an honest
 * chip on the water's edge of Helsinki's harbour, and a chip carried from
 * Frankfurt to Warsaw while the verifier runs (fleetsim's SIGUSR1), its
 * declared site left at Frankfurt. A second fleet of witness chips near
 * Madrid and Frankfurt is measured by all seven landmarks, the misplaced one
 * included.
 *
 * test_world asserts, from the attestation and alert rows:
 *   - honest chips are SITE_CONSISTENT in every round, never OUTSIDE, and the
 *     well-covered ones INSIDE their country in some round, the coastal one
 *     too (with land-only borders it would be UNDETERMINED in every round:
 *     its region always reaches into the sea);
 *   - every feasible region of the main fleet contains the chip's true place
 *     (for the moved chip: where it was during the round's whole window);
 *   - the moved chip raises chip_moved in the first round whose window
 *     starts after the move, and ends SITE_EXCLUDED and OUTSIDE with an open
 *     site_excluded alert; no other chip of the main fleet raises chip_moved;
 *   - smuggled and relayed chips are SITE_EXCLUDED in every round, never
 *     INSIDE, and OUTSIDE where the geometry permits;
 *   - the chips that stopped answering have an open chip_dark alert, and no
 *     other chip has;
 *   - lm-rome, and only it, has an open landmark_misplaced alert; witness
 *     chips near Madrid are INCONSISTENT naming it; no witness verdict is
 *     wrong but a SITE_EXCLUDED decided by lm-rome itself (possible when a
 *     loaded machine slows every answer and widens the honest caps);
 *   - after a stop and a restart of the verifier every chip has one
 *     attestation per round, each chain is unbroken and `chiploc audit`
 *     exits 0; a one-shot `chiploc verify` run twice in one round writes
 *     nothing the second time;
 *   - `chiploc export`, run as a dashboard role, writes every landmark, every
 *     chip's region and declared site, with their properties.
 * test_export_errors checks the export's usage and I/O errors.
 */
#define _GNU_SOURCE
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_key.h"
#include "cl_probe.h"
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLEET_SEED "7177"
/* Timing (seconds): landmarks probe every ~2 s; the verifier's rounds are
 * 4 s long and look back 8 s; a chip without a sufficient round for 8 s is
 * dark. The dark chips stop answering 6 s after fleetsim starts. */
#define PROBE_INTERVAL_S 2
#define ROUND_S 4
#define WINDOW_S 8
#define SETTLE_S 1
#define DARK_AFTER_S 8
#define GO_DARK_S 6
/* The moved chip's signal reaches fleetsim within this long of being sent. */
#define MOVE_LATENCY_NS 1000000000ull

/* ---- the world ---------------------------------------------------------- */

typedef struct {
  const char *name;
  double lat, lon;   /* declared: `chiploc landmark add` */
  double tlat, tlon; /* true: the simulator and the delay proxies */
} world_lm;

static const world_lm LMS[] = {
    {"lm-paris", 48.8566, 2.3522, 48.8566, 2.3522},
    {"lm-frankfurt", 50.1109, 8.6821, 50.1109, 8.6821},
    {"lm-madrid", 40.4168, -3.7038, 40.4168, -3.7038},
    {"lm-warsaw", 52.2297, 21.0122, 52.2297, 21.0122},
    {"lm-helsinki", 60.1699, 24.9384, 60.1699, 24.9384},
    {"lm-newyork", 40.7128, -74.0060, 40.7128, -74.0060},
    {"lm-rome", 41.9028, 12.4964, 40.4168, -3.7038}, /* misplaced: really at Madrid */
};
#define N_LMS ((int)(sizeof LMS / sizeof LMS[0]))
#define LIAR (N_LMS - 1)

typedef enum {
  C_WELL,         /* honest, well covered: INSIDE in some round */
  C_HONEST,       /* honest: never a wrong verdict */
  C_DELAY,        /* honest place, every answer 5 ms late */
  C_SMUGGLED,     /* SITE_EXCLUDED */
  C_SMUGGLED_OUT, /* SITE_EXCLUDED and OUTSIDE */
  C_RELAY,        /* SITE_EXCLUDED and OUTSIDE */
  C_DARK,         /* stops answering: chip_dark */
  C_COASTAL,      /* honest, on the water's edge: INSIDE in some round */
  C_MOVED,        /* carried elsewhere mid-run: chip_moved, then SITE_EXCLUDED */
  C_WITNESS_BAD,  /* witness near Madrid: INCONSISTENT naming lm-rome */
  C_WITNESS,      /* witness elsewhere: never a wrong verdict */
} chip_class;

typedef struct {
  const char *serial;
  chip_class cls;
  double tlat, tlon; /* true place (C_MOVED: until the move) */
  double slat, slon; /* declared site */
  const char *allowed;
} world_chip;

/* Where the C_MOVED chip is carried: Warsaw, 880 km from its declared site. */
#define MOVED_TO_LAT 52.2100
#define MOVED_TO_LON 20.9800

static const world_chip CHIPS[] = {
    {"T00-paris", C_WELL, 48.8600, 2.3400, 48.8600, 2.3400, "FRA"},
    {"T01-orleans", C_WELL, 47.9030, 1.9093, 47.9030, 1.9093, "FRA"},
    {"T02-reims", C_HONEST, 49.2583, 4.0317, 49.2583, 4.0317, "FRA"},
    {"T03-frankfurt", C_WELL, 50.1200, 8.6500, 50.1200, 8.6500, "DEU"},
    {"T04-kassel", C_WELL, 51.3127, 9.4797, 51.3127, 9.4797, "DEU"},
    {"T05-wuerzburg", C_WELL, 49.7913, 9.9534, 49.7913, 9.9534, "DEU"},
    {"T06-madrid", C_WELL, 40.4300, -3.6900, 40.4300, -3.6900, "ESP"},
    {"T07-valladolid", C_WELL, 41.6523, -4.7245, 41.6523, -4.7245, "ESP"},
    {"T08-warsaw", C_WELL, 52.2400, 21.0000, 52.2400, 21.0000, "POL"},
    {"T09-lodz", C_WELL, 51.7592, 19.4560, 51.7592, 19.4560, "POL"},
    {"T10-dijon-slow", C_DELAY, 47.3220, 5.0415, 47.3220, 5.0415, "FRA"},
    {"T11-moscow", C_SMUGGLED, 55.7558, 37.6173, 50.1109, 8.6821, "DEU"},
    {"T12-minsk", C_SMUGGLED_OUT, 53.9006, 27.5590, 52.5200, 13.4050, "DEU"},
    {"T13-stpetersburg", C_SMUGGLED_OUT, 59.9311, 30.3609, 53.5511, 9.9937, "DEU"},
    {"T14-newyork", C_RELAY, 40.7306, -73.9352, 48.8600, 2.3500, "FRA"},
    {"T15-boston", C_RELAY, 42.3601, -71.0589, 40.4200, -3.7000, "ESP"},
    {"T16-versailles", C_DARK, 48.8049, 2.1204, 48.8049, 2.1204, "FRA"},
    {"T17-mainz", C_DARK, 49.9929, 8.2473, 49.9929, 8.2473, "DEU"},
    /* The witness fleet, also measured by lm-rome. */
    {"T18-w-madrid", C_WITNESS_BAD, 40.4500, -3.7000, 40.4500, -3.7000, "ESP"},
    {"T19-w-toledo", C_WITNESS_BAD, 39.8628, -4.0273, 39.8628, -4.0273, "ESP"},
    {"T20-w-frankfurt", C_WITNESS, 50.1000, 8.7000, 50.1000, 8.7000, "DEU"},
    /* Back in the main fleet. */
    {"T21-helsinki-harbour", C_COASTAL, 60.1660, 24.9530, 60.1660, 24.9530, "FIN"},
    {"T22-moved", C_MOVED, 50.1050, 8.6450, 50.1050, 8.6450, "DEU"},
};
#define N_CHIPS ((int)(sizeof CHIPS / sizeof CHIPS[0]))

static int is_witness(const world_chip *c) {
  return c->cls == C_WITNESS || c->cls == C_WITNESS_BAD;
}

static const char *fleet_mode(const world_chip *c) {
  switch (c->cls) {
  case C_SMUGGLED:
  case C_SMUGGLED_OUT: return "smuggled";
  case C_RELAY: return "relay";
  case C_DARK: return "dark";
  case C_DELAY: return "delay";
  default: return "honest";
  }
}

/* ---- helpers ------------------------------------------------------------ */

/* The round a verifier started now would attest (chiploc_verify.c). */
static uint64_t current_round(void) {
  uint64_t i = ROUND_S * 1000000000ull;
  return (tu_unix_ns() - SETTLE_S * 1000000000ull) / i * i;
}

/* Sleeps until the round after `round` can be attested, plus a margin. */
static void wait_round_after(uint64_t round) {
  while (current_round() <= round) tu_sleep_ms(50);
  tu_sleep_ms(300);
}

/* Polls an integer query until it reaches want; returns the last value. */
static long long wait_sql(const char *db, const char *sql, long long want, int timeout_ms) {
  long long v = -1;
  for (int t = 0; t <= timeout_ms; t += 250) {
    v = tu_sql_int(db, sql);
    if (v >= want) break;
    tu_sleep_ms(250);
  }
  return v;
}

static PGresult *query(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
  return r;
}

/* Parses "verify: round ending R: N chip(s), W attested, S already attested". */
static void parse_oneshot(const char *log, unsigned long long *round, size_t *written,
                          size_t *skipped) {
  char *s = tu_read_file(log);
  ck_assert(s != NULL);
  char *p = strstr(s, "verify: round ending ");
  ck_assert_msg(p != NULL, "no summary line in %s", log);
  size_t chips = 0;
  ck_assert_int_eq(sscanf(p, "verify: round ending %llu: %zu chip(s), %zu attested, %zu already",
                          round, &chips, written, skipped),
                   4);
  ck_assert_int_eq(chips, N_CHIPS);
  free(s);
}

/* ---- building and running the world -------------------------------------- */

typedef struct {
  char *dir, *db, *log, *vkey;
  const char *lm_key[N_LMS], *lm_pk[N_LMS];
  int lm_port[N_LMS];
  int64_t lm_id[N_LMS];
  int64_t verifier_id;
  pid_t fleet_pid[2]; /* main, witness */
  uint64_t move_ns;   /* when the main fleet was sent SIGUSR1 */
} world;

static void enrol(world *w) {
  ck_assert_int_eq(tu_cli(w->log, "db", "migrate", "--db", w->db, NULL), 0);
  const char *borders = getenv("CHIPLOC_BORDERS");
  ck_assert_msg(borders != NULL, "CHIPLOC_BORDERS is not set: run this test through ctest");
  ck_assert_int_eq(tu_cli(w->log, "region", "import", borders, "--code-property", "isoA3", "--db",
                       w->db, NULL),
                   0);
  for (int i = 0; i < N_LMS; i++) {
    w->lm_key[i] = tu_keygen(w->dir, LMS[i].name, w->log);
    w->lm_pk[i] = tu_key_hex(w->lm_key[i]);
    ck_assert_int_eq(tu_cli(w->log, "landmark", "add", "--db", w->db, "--name", LMS[i].name,
                         "--pubkey", w->lm_pk[i], "--lat", tu_fmt("%.4f", LMS[i].lat), "--lon",
                         tu_fmt("%.4f", LMS[i].lon), NULL),
                     0);
    w->lm_id[i] = tu_sql_int(
        w->db, tu_fmt("SELECT id FROM landmarks WHERE name = '%s'", LMS[i].name));
    ck_assert_int_gt(w->lm_id[i], 0);
  }
  w->vkey = tu_keygen(w->dir, "verifier", w->log);
  ck_assert_int_eq(tu_cli(w->log, "verifier", "add", "--db", w->db, "--name", "world-verifier",
                       "--pubkey", tu_key_hex(w->vkey), NULL),
                   0);
  w->verifier_id = tu_sql_int(w->db, "SELECT id FROM verifiers WHERE name = 'world-verifier'");
  ck_assert_int_gt(w->verifier_id, 0);

  /* The chips' keys come from the simulator's documented derivation. */
  char *keyscsv = tu_fmt("%s/keys.csv", w->dir);
  char *simbin = tu_own(tu_bin("tests/sim/fleetsim"));
  char *keys_argv[] = {simbin,  "keys", "--seed", FLEET_SEED, "--count", tu_fmt("%d", N_CHIPS),
                       NULL};
  ck_assert_int_eq(tu_run(keys_argv, keyscsv), 0);
  char *keys = tu_own(tu_read_file(keyscsv));
  char *line = keys;
  for (int i = 0; i < N_CHIPS; i++) {
    int idx = -1;
    char hex[CL_PK_HEX_LEN + 1];
    ck_assert_msg(sscanf(line, "%d,%64s", &idx, hex) == 2, "keys line %d: %.80s", i, line);
    ck_assert_int_eq(idx, i);
    ck_assert_int_eq(tu_cli(w->log, "chip", "enroll", "--db", w->db, "--pubkey", hex, "--serial",
                         CHIPS[i].serial, "--operator", tu_fmt("dc-%s", CHIPS[i].allowed), "--site",
                         tu_fmt("%.4f,%.4f", CHIPS[i].slat, CHIPS[i].slon), "--allowed",
                         CHIPS[i].allowed, NULL),
                     0);
    line = strchr(line, '\n');
    ck_assert(line != NULL);
    line++;
  }
}

/* Writes the landmark and agent configs, the simulator's files, and starts
 * landmarks, delay proxies, peer agents and both fleets. */
static void start_world(world *w) {
  int proxy_port[N_LMS][N_LMS];
  for (int i = 0; i < N_LMS; i++) {
    w->lm_port[i] = tu_free_port();
    for (int j = 0; j < N_LMS; j++) proxy_port[i][j] = i == j ? 0 : tu_free_port();
  }
  for (int i = 0; i < N_LMS; i++) {
    /* The landmark believes its declared position; nothing in landmarkd uses it
     * for timing. */
    tu_landmark_opts lo = tu_landmark_defaults();
    lo.file = tu_fmt("%s.conf", LMS[i].name);
    lo.name = LMS[i].name;
    lo.key = w->lm_key[i];
    lo.port = w->lm_port[i];
    lo.lat = LMS[i].lat;
    lo.lon = LMS[i].lon;
    lo.conninfo = w->db;
    lo.flush_interval_ms = 50;
    lo.refresh_interval_s = 2;
    lo.interval_s = PROBE_INTERVAL_S;
    lo.deadline_ms = 1000;
    lo.speed = "c";
    lo.stats_interval_s = 5;
    tu_landmarkd_start(tu_landmark_conf(w->dir, &lo), tu_fmt("%s/%s.log", w->dir, LMS[i].name));
  }

  /* One proxy per ordered pair: node i reaches landmark j through it. */
  char *pxbin = tu_own(tu_bin("tests/sim/delayproxy"));
  for (int i = 0; i < N_LMS; i++)
    for (int j = 0; j < N_LMS; j++) {
      if (i == j) continue;
      char *argv[] = {pxbin,
                      "--listen",
                      tu_fmt("127.0.0.1:%d", proxy_port[i][j]),
                      "--connect",
                      tu_fmt("127.0.0.1:%d", w->lm_port[j]),
                      /* The proxy delays by the light time between the two
                       * true places (the same geodesic code as the engine). */
                      "--from",
                      tu_fmt("%.17g,%.17g", LMS[i].tlat, LMS[i].tlon),
                      "--to",
                      tu_fmt("%.17g,%.17g", LMS[j].tlat, LMS[j].tlon),
                      NULL};
      tu_spawn(argv, tu_fmt("%s/proxy-%d-%d.log", w->dir, i, j));
    }
  for (int i = 0; i < N_LMS; i++)
    for (int j = 0; j < N_LMS; j++)
      if (i != j)
        ck_assert_msg(
            tu_wait_log(tu_fmt("%s/proxy-%d-%d.log", w->dir, i, j), "msg=listening", 1, 30000) == 0,
            "proxy %d-%d did not listen", i, j);

  /* Peer agents: each answers for its own landmark's key. */
  for (int i = 0; i < N_LMS; i++) {
    tu_agent_opts ao = {.file = tu_fmt("peer-%s.conf", LMS[i].name),
                        .name = tu_fmt("peer-%s", LMS[i].name), .backoff_min_ms = 100,
                        .backoff_max_ms = 1000, .chips = {{"self", w->lm_key[i]}}};
    for (int j = 0, n = 0; j < N_LMS; j++)
      if (i != j) ao.landmarks[n++] = (tu_agent_landmark){LMS[j].name, proxy_port[i][j], w->lm_pk[j]};
    tu_chipagent_start(tu_agent_conf(w->dir, &ao), tu_fmt("%s/peer-%s.log", w->dir, LMS[i].name),
                       NULL);
  }

  /* The fleets: main (six honest landmarks) and witness (all seven, at
   * their true places). Chips keep their index in both files. */
  for (int f = 0; f < 2; f++) {
    size_t cap = 8192, len = 0;
    char *lmcsv = tu_own(malloc(cap)), *fleet = tu_own(malloc(cap));
    len = (size_t)snprintf(lmcsv, cap, "name,address,public_key,lat,lon\n");
    for (int i = 0; i < N_LMS; i++)
      if (f == 1 || i != LIAR)
        len += (size_t)snprintf(lmcsv + len, cap - len, "%s,127.0.0.1:%d,%s,%.4f,%.4f\n",
                                LMS[i].name, w->lm_port[i], w->lm_pk[i], LMS[i].tlat, LMS[i].tlon);
    ck_assert(len < cap);
    len = (size_t)snprintf(
        fleet, cap,
        "index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s,move_to_lat,move_to_lon\n");
    for (int k = 0; k < N_CHIPS; k++) {
      if (is_witness(&CHIPS[k]) != f) continue;
      len += (size_t)snprintf(fleet + len, cap - len, "%d,%.4f,%.4f,%s,%d,%d,", k, CHIPS[k].tlat,
                              CHIPS[k].tlon, fleet_mode(&CHIPS[k]),
                              CHIPS[k].cls == C_DELAY ? 5 : 0,
                              CHIPS[k].cls == C_DARK ? GO_DARK_S : 0);
      if (CHIPS[k].cls == C_MOVED)
        len += (size_t)snprintf(fleet + len, cap - len, "%.4f,%.4f\n", MOVED_TO_LAT,
                                MOVED_TO_LON);
      else
        len += (size_t)snprintf(fleet + len, cap - len, ",\n");
    }
    ck_assert(len < cap);
    char *simbin = tu_own(tu_bin("tests/sim/fleetsim"));
    char *argv[] = {simbin,
                    "run",
                    "--fleet",
                    tu_own(tu_write_file(w->dir, tu_fmt("fleet-%d.csv", f), fleet)),
                    "--landmarks",
                    tu_own(tu_write_file(w->dir, tu_fmt("landmarks-%d.csv", f), lmcsv)),
                    "--seed",
                    FLEET_SEED,
                    "--speed",
                    "c",
                    "--jitter-ms",
                    "0.05",
                    NULL};
    char *log = tu_fmt("%s/fleetsim-%d.log", w->dir, f);
    w->fleet_pid[f] = tu_spawn(argv, log);
    ck_assert_msg(tu_wait_log(log, "msg=started", 1, 30000) == 0, "fleetsim %d did not start", f);
  }
}

/* Waits until every chip has been measured by each of its landmarks and every
 * directed landmark link has been probed. */
static void wait_coverage(world *w) {
  long long n = wait_sql(
      w->db,
      tu_fmt("SELECT count(*) FROM (SELECT m.chip_id FROM measurements m JOIN chips c ON "
          "c.id = m.chip_id GROUP BY m.chip_id HAVING count(DISTINCT m.landmark_id) >= "
          "CASE WHEN min(c.serial) LIKE 'T__-w-%%' THEN %d ELSE %d END) s",
          N_LMS, N_LMS - 1),
      N_CHIPS, 40000);
  ck_assert_msg(n == N_CHIPS, "only %lld of %d chips were measured by all their landmarks", n,
                N_CHIPS);
  n = wait_sql(w->db,
               "SELECT count(*) FROM (SELECT DISTINCT from_landmark_id, to_landmark_id "
               "FROM landmark_links) s",
               N_LMS * (N_LMS - 1), 40000);
  ck_assert_msg(n == N_LMS * (N_LMS - 1), "only %lld of %d landmark links measured", n,
                N_LMS * (N_LMS - 1));
}

static pid_t start_verifier(world *w, const char *log) {
  char *bin = tu_own(tu_bin("server/chiploc"));
  char *argv[] = {bin,
                  "verify",
                  "--db",
                  w->db,
                  "--key",
                  w->vkey,
                  "--follow",
                  "--interval",
                  tu_fmt("%d", ROUND_S),
                  "--window",
                  tu_fmt("%d", WINDOW_S),
                  "--settle",
                  tu_fmt("%d", SETTLE_S),
                  "--dark-after",
                  tu_fmt("%d", DARK_AFTER_S),
                  NULL};
  return tu_spawn(argv, log);
}

/* `chiploc verify` without --follow; returns what its summary line says. */
static void verify_once(world *w, const char *log, unsigned long long *round, size_t *written,
                        size_t *skipped) {
  ck_assert_int_eq(tu_cli(log, "verify", "--db", w->db, "--key", w->vkey, "--interval",
                       tu_fmt("%d", ROUND_S), "--window", tu_fmt("%d", WINDOW_S), "--settle",
                       tu_fmt("%d", SETTLE_S), "--dark-after", tu_fmt("%d", DARK_AFTER_S), NULL),
                   0);
  parse_oneshot(log, round, written, skipped);
}

/* ---- checks --------------------------------------------------------------- */

static int chip_index(const char *serial) {
  for (int k = 0; k < N_CHIPS; k++)
    if (strcmp(CHIPS[k].serial, serial) == 0) return k;
  ck_abort_msg("unknown chip %s", serial);
  return -1;
}

static int has_id(const char *pg_array, int64_t id) {
  /* "{3,7}" */
  const char *p = pg_array;
  while (*p) {
    if (*p >= '0' && *p <= '9') {
      char *end = NULL;
      long long v = strtoll(p, &end, 10);
      if (v == id) return 1;
      p = end;
    } else {
      p++;
    }
  }
  return 0;
}

/* Where the moved chip was during the window of the round ending at
 * round_end_ns: 0 at its first place, 1 at its destination, -1 both (the
 * window holds the move, or ends within MOVE_LATENCY_NS after the signal). */
typedef enum { BEFORE_MOVE = 0, AFTER_MOVE = 1, DURING_MOVE = -1 } move_phase;

static move_phase phase_of(const world *w, uint64_t round_end_ns) {
  if (round_end_ns <= w->move_ns) return BEFORE_MOVE;
  if (round_end_ns - WINDOW_S * 1000000000ull >= w->move_ns + MOVE_LATENCY_NS) return AFTER_MOVE;
  return DURING_MOVE;
}

/* Verdicts of every attestation of every chip against what it really is. */
static void check_verdicts(world *w, PGconn *c, long long rounds) {
  static const char *cons_name[] = {"CONSISTENT", "INSUFFICIENT", "INCONSISTENT"};
  static const char *site_name[] = {"-", "SITE_CONSISTENT", "SITE_EXCLUDED"};
  static const char *reg_name[] = {"-", "INSIDE", "OUTSIDE", "UNDETERMINED"};
  char *sql = tu_fmt("SELECT c.serial, a.consistency, a.site_verdict, a.region_verdict, "
                  "a.centre_lat_e7, a.centre_lon_e7, a.radius_m, a.excluded_landmark_ids::text, "
                  "coalesce(a.site_landmark_id, 0), a.round_end_ns "
                  "FROM attestations a JOIN chips c ON c.id = a.chip_id "
                  "WHERE a.verifier_id = %lld ORDER BY c.serial, a.round_end_ns",
                  (long long)w->verifier_id);
  PGresult *r = query(c, sql);
  int count[N_CHIPS] = {0}, inside[N_CHIPS] = {0}, last_cons[N_CHIPS] = {0},
      last_site[N_CHIPS] = {0}, last_reg[N_CHIPS] = {0}, consistent[N_CHIPS] = {0},
      excluded[N_CHIPS] = {0}, phases[3] = {0}, after_consistent = 0, after_excluded = 0;
  char last_excl[N_CHIPS][64] = {{0}};
  double worst_gap_km = -1e9;
  for (int i = 0; i < PQntuples(r); i++) {
    int k = chip_index(PQgetvalue(r, i, 0));
    const world_chip *ch = &CHIPS[k];
    int cons = atoi(PQgetvalue(r, i, 1)), site = atoi(PQgetvalue(r, i, 2)),
        reg = atoi(PQgetvalue(r, i, 3));
    count[k]++;
    inside[k] += reg == 1;
    consistent[k] += cons == 0;
    excluded[k] += cons == 0 && site == 2;
    last_cons[k] = cons, last_site[k] = site, last_reg[k] = reg;
    snprintf(last_excl[k], sizeof last_excl[k], "%s", PQgetvalue(r, i, 7));
    move_phase phase = ch->cls == C_MOVED
                           ? phase_of(w, strtoull(PQgetvalue(r, i, 9), NULL, 10))
                           : BEFORE_MOVE;
    if (ch->cls == C_MOVED) phases[phase + 1]++;
    /* Nothing measured by honest landmarks only is ever inconsistent, but a
     * window with answers from two places far apart. */
    if (!is_witness(ch) && phase != DURING_MOVE)
      ck_assert_msg(cons != 2, "%s: INCONSISTENT with honest landmarks", ch->serial);
    if (cons == 0 && !is_witness(ch) && phase != DURING_MOVE) {
      /* Soundness: the attested cap holds the chip's true place. */
      double clat = atof(PQgetvalue(r, i, 4)) / 1e7, clon = atof(PQgetvalue(r, i, 5)) / 1e7;
      double radius = atof(PQgetvalue(r, i, 6));
      double tlat = phase == AFTER_MOVE ? MOVED_TO_LAT : ch->tlat,
             tlon = phase == AFTER_MOVE ? MOVED_TO_LON : ch->tlon;
      double gap = cl_geo_distance_m(clat, clon, tlat, tlon) - radius;
      if (gap / 1e3 > worst_gap_km) worst_gap_km = gap / 1e3;
      ck_assert_msg(gap <= 100.0, "%s: true place %.1f km outside the attested region", ch->serial,
                    gap / 1e3);
    }
    switch (ch->cls) {
    case C_MOVED:
      /* At its declared site before the move, honest; after it, 880 km
       * away from it, never INSIDE. Whether the site is excluded in every
       * round after it is checked below, as for the smuggled chips. */
      if (phase == BEFORE_MOVE)
        ck_assert_msg(cons == 0 && site == 1 && reg != 2, "%s: before the move %s/%s/%s",
                      ch->serial, cons_name[cons], site_name[site], reg_name[reg]);
      else if (phase == AFTER_MOVE)
        ck_assert_msg(reg != 1, "%s: INSIDE after the move", ch->serial);
      if (phase == AFTER_MOVE) {
        after_consistent += cons == 0;
        after_excluded += cons == 0 && site == 2;
      }
      break;
    case C_WELL:
    case C_COASTAL:
    case C_HONEST:
    case C_DELAY:
    case C_DARK:
    case C_WITNESS:
    case C_WITNESS_BAD:
      /* Honest chips: never a wrong verdict, except that a chip near Madrid,
       * measured by lm-rome, may be excluded by lm-rome's own cap in a
       * round where slow answers (a loaded machine) leave the honest caps
       * too wide to contradict it: the misplaced landmark breaks the
       * assumption the verdict rests on, and its landmark_misplaced alert
       * (checked below) says so. */
      if (ch->cls == C_WITNESS_BAD && site == 2)
        ck_assert_msg(strtoll(PQgetvalue(r, i, 8), NULL, 10) == w->lm_id[LIAR],
                      "%s: SITE_EXCLUDED by landmark %s, not lm-rome", ch->serial,
                      PQgetvalue(r, i, 8));
      else
        ck_assert_msg(site != 2, "%s: honest chip SITE_EXCLUDED", ch->serial);
      ck_assert_msg(reg != 2, "%s: honest chip OUTSIDE", ch->serial);
      if (cons == 0 && ch->cls != C_WITNESS_BAD)
        ck_assert_msg(site == 1, "%s: consistent but site verdict %d", ch->serial, site);
      break;
    case C_SMUGGLED:
    case C_SMUGGLED_OUT:
    case C_RELAY:
      /* Soundness, every round: never INSIDE the declared country. Whether
       * the declared site is excluded depends on how tight the round's
       * bounds were: checked over all rounds below. */
      ck_assert_msg(reg != 1, "%s: INSIDE though elsewhere", ch->serial);
      if (cons == 0 && site != 2)
        printf("%s: attestation %d CONSISTENT but site not excluded (radius %.0f km)\n",
               ch->serial, count[k], atof(PQgetvalue(r, i, 6)) / 1e3);
      break;
    }
  }
  PQclear(r);
  /* A chip elsewhere has its declared site excluded in (nearly) every round
   * that locates it. One round may miss: a landmark or the simulator starved
   * of CPU on a loaded 2-core machine inflates every RTT of a window, which
   * loosens the bounds (they stay sound) until they hold the site. */
  for (int k = 0; k < N_CHIPS; k++) {
    const world_chip *ch = &CHIPS[k];
    if (ch->cls != C_SMUGGLED && ch->cls != C_SMUGGLED_OUT && ch->cls != C_RELAY) continue;
    ck_assert_msg(excluded[k] >= consistent[k] - 1 && excluded[k] > 0,
                  "%s: site excluded in %d of %d CONSISTENT rounds", ch->serial, excluded[k],
                  consistent[k]);
  }
  /* So has the moved chip after the move. The test stops the verifier only
   * after chip_moved, so there are rounds before, during and after it. */
  printf("moved chip: %d round(s) before the move, %d during, %d after; site excluded in %d of "
         "%d CONSISTENT after\n",
         phases[BEFORE_MOVE + 1], phases[DURING_MOVE + 1], phases[AFTER_MOVE + 1], after_excluded,
         after_consistent);
  ck_assert_int_gt(phases[BEFORE_MOVE + 1], 0);
  ck_assert_int_gt(phases[AFTER_MOVE + 1], 0);
  ck_assert_msg(after_excluded >= after_consistent - 1 && after_excluded > 0,
                "moved chip: site excluded in %d of %d CONSISTENT rounds after the move",
                after_excluded, after_consistent);
  printf("worst margin of a true place inside its region: %.1f km\n", -worst_gap_km);
  for (int k = 0; k < N_CHIPS; k++) {
    const world_chip *ch = &CHIPS[k];
    printf("%-20s rounds %2d inside %2d  latest %-12s %-15s %-12s excluded %s\n", ch->serial,
           count[k], inside[k], cons_name[last_cons[k]], site_name[last_site[k]],
           reg_name[last_reg[k]], last_excl[k]);
  }
  for (int k = 0; k < N_CHIPS; k++) {
    const world_chip *ch = &CHIPS[k];
    /* One attestation per chip and round, across the restart. */
    ck_assert_msg(count[k] == rounds, "%s: %d attestations in %lld rounds", ch->serial, count[k],
                  rounds);
    switch (ch->cls) {
    case C_WELL:
    case C_COASTAL:
      ck_assert_msg(inside[k] > 0, "%s: never INSIDE its country", ch->serial);
      /* fall through */
    case C_HONEST:
    case C_DELAY:
    case C_WITNESS:
      ck_assert_msg(last_cons[k] == 0 && last_site[k] == 1, "%s: latest %s/%s", ch->serial,
                    cons_name[last_cons[k]], site_name[last_site[k]]);
      break;
    case C_SMUGGLED:
      ck_assert_msg(last_cons[k] == 0 && last_site[k] == 2, "%s: latest not SITE_EXCLUDED",
                    ch->serial);
      break;
    case C_SMUGGLED_OUT:
    case C_RELAY:
    case C_MOVED:
      ck_assert_msg(last_cons[k] == 0 && last_site[k] == 2 && last_reg[k] == 2,
                    "%s: latest %s/%s", ch->serial, site_name[last_site[k]],
                    reg_name[last_reg[k]]);
      break;
    case C_DARK:
      ck_assert_msg(last_cons[k] == 1, "%s: latest not INSUFFICIENT", ch->serial);
      break;
    case C_WITNESS_BAD:
      ck_assert_msg(last_cons[k] == 2, "%s: latest %s, not INCONSISTENT", ch->serial,
                    cons_name[last_cons[k]]);
      ck_assert_msg(has_id(last_excl[k], w->lm_id[LIAR]), "%s: excluded %s, not lm-rome (%lld)",
                    ch->serial, last_excl[k], (long long)w->lm_id[LIAR]);
      break;
    }
  }
}

static void check_alerts(world *w, PGconn *c) {
  PGresult *r = query(c, "SELECT c.serial, a.kind FROM alerts a JOIN chips c ON c.id = a.chip_id "
                         "WHERE a.cleared_at IS NULL");
  int dark[N_CHIPS] = {0}, excluded[N_CHIPS] = {0};
  for (int i = 0; i < PQntuples(r); i++) {
    int k = chip_index(PQgetvalue(r, i, 0));
    dark[k] += strcmp(PQgetvalue(r, i, 1), "chip_dark") == 0;
    excluded[k] += strcmp(PQgetvalue(r, i, 1), "site_excluded") == 0;
  }
  PQclear(r);
  for (int k = 0; k < N_CHIPS; k++) {
    int want_dark = CHIPS[k].cls == C_DARK;
    ck_assert_msg(dark[k] == want_dark, "%s: %d open chip_dark alert(s)", CHIPS[k].serial, dark[k]);
    int elsewhere = CHIPS[k].cls == C_SMUGGLED || CHIPS[k].cls == C_SMUGGLED_OUT ||
                    CHIPS[k].cls == C_RELAY || CHIPS[k].cls == C_MOVED;
    ck_assert_msg(excluded[k] == elsewhere, "%s: %d open site_excluded alert(s)", CHIPS[k].serial,
                  excluded[k]);
  }
  /* chip_moved, open or cleared since (the next round finds the chip where
   * this one did): the moved chip once, by the first round whose window is
   * all after the move, over the 880 km to Warsaw less the two regions'
   * radii; no other chip of the main fleet. Witness chips are measured by
   * the misplaced landmark, whose caps may shift a region: not checked. */
  r = query(c, "SELECT c.serial, a.detail, t.round_end_ns, "
               "(SELECT count(*) FROM attestations p WHERE p.chip_id = t.chip_id "
               "AND p.verifier_id = t.verifier_id AND p.round_end_ns < t.round_end_ns "
               "AND p.round_end_ns > coalesce((SELECT max(q.round_end_ns) FROM attestations q "
               "WHERE q.chip_id = t.chip_id AND q.verifier_id = t.verifier_id "
               "AND q.round_end_ns < t.round_end_ns AND q.consistency = 0), 0)) "
               "FROM alerts a JOIN chips c ON c.id = a.chip_id "
               "JOIN attestations t ON t.id = a.attestation_id WHERE a.kind = 'chip_moved'");
  int moved_alerts = 0;
  for (int i = 0; i < PQntuples(r); i++) {
    const world_chip *ch = &CHIPS[chip_index(PQgetvalue(r, i, 0))];
    if (is_witness(ch)) continue;
    ck_assert_msg(ch->cls == C_MOVED, "%s: chip_moved (%s)", ch->serial, PQgetvalue(r, i, 1));
    moved_alerts++;
    uint64_t round_end = strtoull(PQgetvalue(r, i, 2), NULL, 10);
    ck_assert_msg(phase_of(w, round_end) == AFTER_MOVE, "chip_moved raised by the round ending "
                  "%llu, the move was at %llu", (unsigned long long)round_end,
                  (unsigned long long)w->move_ns);
    double km = 0;
    ck_assert_msg(sscanf(PQgetvalue(r, i, 1), "feasible region moved: %lf km", &km) == 1 &&
                      km > 500.0,
                  "chip_moved detail: %s", PQgetvalue(r, i, 1));
    /* The rounds between the last one that located it and this one: those
     * whose window held both places (INCONSISTENT), which the alert looks
     * past. */
    printf("chip_moved: %s, %s round(s) since the last CONSISTENT one\n", PQgetvalue(r, i, 1),
           PQgetvalue(r, i, 3));
  }
  PQclear(r);
  ck_assert_int_eq(moved_alerts, 1);
  r = query(c, "SELECT l.name FROM alerts a JOIN landmarks l ON l.id = a.landmark_id "
               "WHERE a.kind = 'landmark_misplaced' AND a.cleared_at IS NULL");
  ck_assert_msg(PQntuples(r) == 1, "%d open landmark_misplaced alerts", PQntuples(r));
  ck_assert_str_eq(PQgetvalue(r, 0, 0), LMS[LIAR].name);
  PQclear(r);
}

/* Each chain starts at zeros and links every record to the one before. */
static void check_chains(world *w, PGconn *c) {
  PGresult *r = query(
      c, tu_fmt("SELECT count(*) FILTER (WHERE p IS NULL AND prev_hash <> '\\x%064d'::bytea), "
             "count(*) FILTER (WHERE p IS NOT NULL AND prev_hash <> p) FROM (SELECT prev_hash, "
             "lag(hash) OVER (PARTITION BY chip_id ORDER BY round_end_ns) AS p "
             "FROM attestations WHERE verifier_id = %lld) s",
             0, (long long)w->verifier_id));
  ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
  ck_assert_str_eq(PQgetvalue(r, 0, 1), "0");
  PQclear(r);
}

static json_t *prop(json_t *f, const char *key) {
  return json_object_get(json_object_get(f, "properties"), key);
}

static const char *prop_str(json_t *f, const char *key) {
  json_t *v = prop(f, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int has_string(json_t *array, const char *s) {
  size_t i;
  json_t *v;
  json_array_foreach(array, i, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) return 1;
  }
  return 0;
}

/* `chiploc export` as a role that may read the dashboard views only. */
static void check_export(world *w, PGconn *c) {
  char err[512];
  ck_assert_msg(tu_sql(w->db,
                       "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                       "'world_dash') THEN CREATE ROLE world_dash LOGIN; END IF; END $$; "
                       "GRANT chiploc_dashboard TO world_dash",
                       err, sizeof err) == 0,
                "%s", err);
  char *dash = tu_own(tu_conninfo_as(w->db, "world_dash"));
  char *out = tu_fmt("%s/world.geojson", w->dir);
  char *log = tu_fmt("%s/export.log", w->dir);
  ck_assert_int_eq(tu_cli(log, "export", "--db", dash, "--out", out, NULL), 0);
  ck_assert_int_eq(tu_count_in_file(log, tu_fmt("%d landmark(s), %d chip(s)", N_LMS, N_CHIPS)), 1);
  json_error_t jerr;
  json_t *root = json_load_file(out, 0, &jerr);
  ck_assert_msg(root != NULL, "%s: %s (line %d)", out, jerr.text, jerr.line);
  ck_assert_str_eq(json_string_value(json_object_get(root, "type")), "FeatureCollection");
  json_t *features = json_object_get(root, "features");
  ck_assert_uint_eq(json_array_size(features), (size_t)(N_LMS + 2 * N_CHIPS));

  PGresult *st = query(c, "SELECT serial, consistency, site_verdict, region_verdict, radius_km, "
                          "to_char(round_end AT TIME ZONE 'UTC', "
                          "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM chip_status");
  size_t i, landmarks = 0, regions = 0, polygons = 0, sites = 0;
  json_t *f;
  json_array_foreach(features, i, f) {
    const char *kind = prop_str(f, "kind");
    ck_assert_ptr_nonnull(kind);
    json_t *geom = json_object_get(f, "geometry");
    const char *gtype =
        json_is_object(geom) ? json_string_value(json_object_get(geom, "type")) : NULL;
    if (strcmp(kind, "landmark") == 0) {
      landmarks++;
      ck_assert_str_eq(gtype, "Point");
      const char *name = prop_str(f, "name");
      int liar = strcmp(name, LMS[LIAR].name) == 0;
      ck_assert_int_eq(has_string(prop(f, "open_alerts"), "landmark_misplaced"), liar);
      /* The declared position, not the true one. */
      json_t *xy = json_object_get(geom, "coordinates");
      for (int l = 0; l < N_LMS; l++)
        if (strcmp(name, LMS[l].name) == 0) {
          ck_assert_double_eq_tol(json_real_value(json_array_get(xy, 0)), LMS[l].lon, 1e-6);
          ck_assert_double_eq_tol(json_real_value(json_array_get(xy, 1)), LMS[l].lat, 1e-6);
        }
      continue;
    }
    const char *serial = prop_str(f, "serial");
    ck_assert_ptr_nonnull(serial);
    const world_chip *ch = &CHIPS[chip_index(serial)];
    ck_assert_str_eq(prop_str(f, "operator"), tu_fmt("dc-%s", ch->allowed));
    ck_assert_double_eq_tol(json_real_value(prop(f, "site_lat")), ch->slat, 1e-6);
    ck_assert_double_eq_tol(json_real_value(prop(f, "site_lon")), ch->slon, 1e-6);
    ck_assert(json_is_array(prop(f, "open_alerts")));
    /* Verdicts and round as chip_status has them. */
    int row = -1;
    for (int k = 0; k < PQntuples(st); k++)
      if (strcmp(PQgetvalue(st, k, 0), serial) == 0) row = k;
    ck_assert_int_ge(row, 0);
    ck_assert_str_eq(prop_str(f, "consistency"), PQgetvalue(st, row, 1));
    ck_assert_str_eq(prop_str(f, "site"), PQgetvalue(st, row, 2));
    ck_assert_str_eq(prop_str(f, "region"), PQgetvalue(st, row, 3));
    ck_assert_str_eq(prop_str(f, "round_end"), PQgetvalue(st, row, 5));
    if (strcmp(kind, "declared_site") == 0) {
      sites++;
      ck_assert_str_eq(gtype, "Point");
      json_t *xy = json_object_get(geom, "coordinates");
      ck_assert_double_eq_tol(json_real_value(json_array_get(xy, 0)), ch->slon, 1e-6);
      ck_assert_double_eq_tol(json_real_value(json_array_get(xy, 1)), ch->slat, 1e-6);
      continue;
    }
    ck_assert_str_eq(kind, "chip_region");
    regions++;
    int consistent = strcmp(PQgetvalue(st, row, 1), "CONSISTENT") == 0;
    if (!consistent) {
      ck_assert(json_is_null(geom));
      ck_assert(json_is_null(prop(f, "radius_km")));
      continue;
    }
    polygons++;
    ck_assert_str_eq(gtype, "MultiPolygon");
    ck_assert_double_eq_tol(json_real_value(prop(f, "radius_km")), atof(PQgetvalue(st, row, 4)),
                            1e-6);
    /* The drawn cap holds the chip's true place (main fleet: honest
     * landmarks only; the moved chip's destination); checked on the
     * bounding box of its rings. */
    if (!is_witness(ch)) {
      double tlat = ch->cls == C_MOVED ? MOVED_TO_LAT : ch->tlat,
             tlon = ch->cls == C_MOVED ? MOVED_TO_LON : ch->tlon;
      double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
      size_t p, q, v;
      json_t *poly, *ring, *xy;
      json_array_foreach(json_object_get(geom, "coordinates"), p, poly) {
        json_array_foreach(poly, q, ring) {
          if (q > 0) continue; /* outer rings only */
          json_array_foreach(ring, v, xy) {
            double x = json_real_value(json_array_get(xy, 0)),
                   y = json_real_value(json_array_get(xy, 1));
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
          }
        }
      }
      ck_assert_msg(tlon >= x0 && tlon <= x1 && tlat >= y0 && tlat <= y1,
                    "%s: true place outside the exported region's box", serial);
    }
  }
  PQclear(st);
  ck_assert_uint_eq(landmarks, N_LMS);
  ck_assert_uint_eq(regions, N_CHIPS);
  ck_assert_uint_eq(sites, N_CHIPS);
  ck_assert_uint_gt(polygons, N_CHIPS / 2);
  json_decref(root);
}

/* ---- the test ------------------------------------------------------------- */

START_TEST(test_world) {
  world w;
  memset(&w, 0, sizeof w);
  w.dir = tu_own(tu_tmpdir("chiploc-world"));
  w.log = tu_fmt("%s/cli.log", w.dir);
  w.db = tu_own(tu_db_create("chiploc_world"));
  printf("world test in %s\n", w.dir);
  enrol(&w);
  start_world(&w);
  wait_coverage(&w);

  /* The verifier's first round is the one after full coverage, so that no
   * chip starts INSUFFICIENT. */
  wait_round_after(current_round());
  char *vlog1 = tu_fmt("%s/verifier-1.log", w.dir), *vlog2 = tu_fmt("%s/verifier-2.log", w.dir);
  pid_t v = start_verifier(&w, vlog1);
  ck_assert_msg(tu_wait_log(vlog1, "msg=round", 4, 60000) == 0, "verifier: fewer than 4 rounds");
  ck_assert_int_eq(tu_stop(v, SIGTERM, 20000), 0);

  /* While it is down, the same verifier key in one-shot mode, twice in one
   * round: the second run writes nothing. */
  char *sql_last = tu_fmt("SELECT max(round_end_ns) FROM attestations WHERE verifier_id = %lld",
                       (long long)w.verifier_id);
  char *sql_count = tu_fmt("SELECT count(*) FROM attestations WHERE verifier_id = %lld",
                           (long long)w.verifier_id);
  wait_round_after((uint64_t)tu_sql_int(w.db, sql_last));
  unsigned long long r1 = 0, r2 = 0;
  size_t w1 = 0, s1 = 0, w2 = 0, s2 = 0;
  for (int attempt = 0;; attempt++) {
    ck_assert_int_lt(attempt, 3);
    verify_once(&w, tu_fmt("%s/oneshot-%d-a.log", w.dir, attempt), &r1, &w1, &s1);
    long long before = tu_sql_int(w.db, sql_count);
    verify_once(&w, tu_fmt("%s/oneshot-%d-b.log", w.dir, attempt), &r2, &w2, &s2);
    long long after = tu_sql_int(w.db, sql_count);
    if (r1 != r2) continue; /* a round boundary passed in between */
    if (attempt == 0) ck_assert_int_eq(w1, N_CHIPS);
    ck_assert_int_eq(w2, 0);
    ck_assert_int_eq(s2, N_CHIPS);
    ck_assert_int_eq(after, before);
    break;
  }

  /* Restarted, it carries on every chain. After a few rounds the moved chip
   * is carried to Warsaw; wait for the dark alerts and its chip_moved. */
  v = start_verifier(&w, vlog2);
  ck_assert_msg(tu_wait_log(vlog2, "msg=round", 3, 60000) == 0, "restarted verifier: no rounds");
  w.move_ns = tu_unix_ns();
  ck_assert_int_eq(kill(w.fleet_pid[0], SIGUSR1), 0);
  ck_assert_msg(tu_wait_log(tu_fmt("%s/fleetsim-0.log", w.dir), "msg=\"chips moved\" chips=1", 1,
                            10000) == 0,
                "fleetsim did not move the chip");
  long long dark = wait_sql(w.db,
                            "SELECT count(*) FROM alerts WHERE kind = 'chip_dark' AND "
                            "cleared_at IS NULL",
                            2, 60000);
  ck_assert_msg(dark >= 2, "%lld open chip_dark alerts", dark);
  long long moved = wait_sql(w.db,
                             "SELECT count(*) FROM alerts a JOIN chips c ON c.id = a.chip_id "
                             "WHERE a.kind = 'chip_moved' AND c.serial = 'T22-moved'",
                             1, 60000);
  ck_assert_msg(moved >= 1, "no chip_moved alert after the move");
  /* Let the round in progress finish, then stop everything. */
  long long last = tu_sql_int(w.db, sql_last);
  ck_assert_msg(wait_sql(w.db, sql_last, last + 1, 4 * ROUND_S * 1000) > last,
                "the restarted verifier stopped attesting");
  ck_assert_int_eq(tu_stop(v, SIGTERM, 20000), 0);
  ck_assert_int_eq(tu_stop_all(20000), 0);

  PGconn *c = PQconnectdb(w.db);
  ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
  long long rounds =
      tu_sql_int(w.db, tu_fmt("SELECT count(DISTINCT round_end_ns) FROM attestations "
                           "WHERE verifier_id = %lld",
                           (long long)w.verifier_id));
  printf("%lld rounds, %d + %d round lines in the verifier logs\n", rounds,
         tu_count_in_file(vlog1, "msg=round"), tu_count_in_file(vlog2, "msg=round"));
  ck_assert_int_ge(rounds, 7);
  check_verdicts(&w, c, rounds);
  check_alerts(&w, c);
  check_chains(&w, c);
  char *alog = tu_fmt("%s/audit.log", w.dir);
  ck_assert_int_eq(tu_cli(alog, "audit", "--db", w.db, NULL), 0);
  ck_assert_int_eq(tu_count_in_file(alog, "; 0 problem(s)"), 1);
  check_export(&w, c);
  PQfinish(c);
  tu_release();
}
END_TEST

START_TEST(test_export_errors) {
  char *dir = tu_own(tu_tmpdir("chiploc-export"));
  char *log = tu_fmt("%s/cli.log", dir);
  char *db = tu_own(tu_db_create("chiploc_world_export"));
  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", db, NULL), 0);
  /* Usage errors: 2. */
  ck_assert_int_eq(tu_cli(log, "export", "--db", db, NULL), 2);
  ck_assert_int_eq(tu_count_in_file(log, "--out FILE.geojson is required"), 1);
  ck_assert_int_eq(tu_cli(log, "export", "--db", db, "--out", "x.geojson", "extra", NULL), 2);
  ck_assert_int_eq(tu_cli(log, "export", "--frob", NULL), 2);
  /* An empty database exports an empty collection. */
  char *out = tu_fmt("%s/empty.geojson", dir);
  ck_assert_int_eq(tu_cli(log, "export", "--db", db, "--out", out, NULL), 0);
  json_error_t jerr;
  json_t *root = json_load_file(out, 0, &jerr);
  ck_assert_ptr_nonnull(root);
  ck_assert_uint_eq(json_array_size(json_object_get(root, "features")), 0);
  json_decref(root);
  /* A file that cannot be written, and a database that cannot be reached: 1. */
  ck_assert_int_eq(
      tu_cli(log, "export", "--db", db, "--out", "/nonexistent/dir/x.geojson", NULL), 1);
  ck_assert_int_eq(tu_count_in_file(log, "cannot write /nonexistent/dir/x.geojson"), 1);
  ck_assert_int_eq(tu_cli(log, "export", "--db", "host=/nonexistent port=1 dbname=x", "--out", out,
                       NULL),
                   1);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("world");
  TCase *tc = tcase_create("world");
  tcase_set_timeout(tc, 360);
  tcase_add_test(tc, test_export_errors);
  tcase_add_test(tc, test_world);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
