/*
 * Database outages lose nothing. The real landmarkd and chipagent run
 * against the test PostgreSQL, which is stopped (its data kept) in the
 * middle of the run and started again:
 *   - a 30 s outage: the landmark keeps probing and spools its measurements,
 *     replays them when the database is back, and at the end every
 *     measurement it accepted (its own counter) is stored exactly once and
 *     verifies offline;
 *   - SIGTERM during an outage: queued rows go to the spool, landmarkd exits
 *     0, and the next landmarkd replays them.
 * Across the outage the health endpoints tell the truth: landmarkd's and
 * the verifier's chiploc_database_connected go 1 -> 0 -> 1; landmarkd
 * stays ready (it spools) and alive; the verifier stays alive but is not
 * ready while it has no database; a landmarkd started during the outage
 * is alive but not ready until it has loaded the enrolled chips.
 * The server is shared by the whole ctest run, so this test runs alone
 * (RUN_SERIAL) and always starts it again before it ends.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DEADLINE_MS 300
#define OUTAGE_S 30
#define N_CHIPS 3
/* Size of an empty spool file: the header (docs/SPOOL.md). */
#define SPOOL_HEADER_LEN 128

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* pgtest.sh pause|resume on the run's server. Returns the exit status. */
static int pg(const char *cmd, const char *log) {
  const char *dir = getenv("CHIPLOC_TEST_PG_DIR");
  if (!dir) return -1;
  char *script = tu_src("tests/pgtest.sh");
  char *argv[] = {script, (char *)cmd, (char *)dir, NULL};
  int rc = tu_run(argv, log);
  free(script);
  return rc;
}

/* Waits until tu_last_stat(log, key) >= min; returns the value seen. */
static long long wait_stat(const char *log, const char *key, long long min, int timeout_ms) {
  long long v = -1;
  for (int waited = 0; waited <= timeout_ms; waited += 200) {
    if ((v = tu_last_stat(log, key)) >= min) break;
    tu_sleep_ms(200);
  }
  return v;
}

static long long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* One landmark, N_CHIPS chips behind one agent, probed every second. */
typedef struct {
  char *dir, *db, *cli_log, *lm_log, *ag_log, *pg_log;
  char *lm_conf, *ag_conf, *spool;
  int mport; /* landmarkd's metrics endpoint */
} world;

/* flush_ms is [database] flush_interval_ms: also the grace before rows
 * move to the spool. */
static void world_make(world *w, const char *name, int flush_ms) {
  w->dir = tu_own(tu_tmpdir(name));
  w->cli_log = tu_fmt("%s/cli.log", w->dir);
  w->lm_log = tu_fmt("%s/landmarkd.log", w->dir);
  w->ag_log = tu_fmt("%s/chipagent.log", w->dir);
  w->pg_log = tu_fmt("%s/pgtest.log", w->dir);
  /* The default spool: beside the config file, named after it. */
  w->spool = tu_fmt("%s/landmarkd.spool", w->dir);
  char dbname[64];
  snprintf(dbname, sizeof dbname, "chiploc_%s", name);
  for (char *p = dbname; *p; p++)
    if (*p == '-') *p = '_';
  w->db = tu_own(tu_db_create(dbname));
  ck_assert_int_eq(tu_cli(w->cli_log, "db", "migrate", "--db", w->db, NULL), 0);
  char *lkey = tu_keygen(w->dir, "landmark", w->cli_log);
  char *lhex = tu_key_hex(lkey);
  ck_assert_int_eq(tu_cli(w->cli_log, "landmark", "add", "--db", w->db, "--name", "lm-paris",
                       "--pubkey", lhex, "--lat", "48.8566", "--lon", "2.3522", NULL),
                   0);
  int port = tu_free_port();
  tu_agent_opts ao = {.name = "outage-host", .backoff_min_ms = 50, .backoff_max_ms = 1000,
                      .landmarks = {{"paris", port, lhex}}};
  for (int i = 0; i < N_CHIPS; i++) {
    char *k = tu_keygen(w->dir, tu_fmt("chip-%d", i), w->cli_log);
    ck_assert_int_eq(tu_cli(w->cli_log, "chip", "enroll", "--db", w->db, "--pubkey-file", k,
                         "--serial", tu_fmt("OUT-%04d", i), "--operator", "outage-dc", "--site",
                         "48.85,2.35", NULL),
                     0);
    ao.chips[i] = (tu_agent_chip){tu_fmt("c%d", i), k};
  }
  w->ag_conf = tu_agent_conf(w->dir, &ao);
  tu_landmark_opts lo = tu_landmark_defaults();
  lo.key = lkey;
  lo.port = port;
  lo.conninfo = w->db;
  lo.flush_interval_ms = flush_ms;
  lo.spool_max_mb = 16;
  w->mport = tu_free_port();
  lo.metrics_port = w->mport;
  w->lm_conf = tu_landmark_conf(w->dir, &lo);
}

/* GET path on port: the status (0 without an answer), the body in *body
 * (owned) when body is not NULL. */
static int http(int port, const char *path, char **body) {
  int status = 0;
  char *b = tu_http_get(port, path, 5000, &status);
  if (body) *body = b ? tu_own(b) : NULL;
  else free(b);
  return status;
}

/* Waits until the gauge on port's /metrics equals want; returns the last
 * value seen (-1: no answer or no such series). */
static double wait_gauge(int port, const char *series, double want, int timeout_ms) {
  double v = -1;
  for (int waited = 0; waited <= timeout_ms; waited += 200) {
    char *t = NULL;
    v = http(port, "/metrics", &t) == 200 ? tu_metric(t, series) : -1;
    if (v == want) break;
    tu_sleep_ms(200);
  }
  return v;
}

/* Waits until GET path on port answers want_status; returns the last status. */
static int wait_status(int port, const char *path, int want_status, int timeout_ms) {
  int st = 0;
  for (int waited = 0; waited <= timeout_ms; waited += 200) {
    if ((st = http(port, path, NULL)) == want_status) break;
    tu_sleep_ms(200);
  }
  return st;
}

/* `chiploc verify --follow` every 2 s with its metrics on a port of its own,
 * which it returns in *port. */
static pid_t verifier_start(const world *w, int *port) {
  char *vkey = tu_keygen(w->dir, "verifier", w->cli_log);
  ck_assert_int_eq(tu_cli(w->cli_log, "verifier", "add", "--db", w->db, "--name", "v-outage",
                       "--pubkey", tu_key_hex(vkey), NULL),
                   0);
  *port = tu_free_port();
  char *argv[] = {tu_own(tu_bin("server/chiploc")), "verify", "--db", w->db, "--key", vkey, "--follow",
                  "--interval", "2", "--settle", "0", "--window", "30", "--min-landmarks", "1",
                  "--metrics", tu_fmt("127.0.0.1:%d", *port), NULL};
  pid_t v = tu_spawn(argv, tu_fmt("%s/verifier.log", w->dir));
  ck_assert_int_eq(wait_status(*port, "/readyz", 200, 30000), 200);
  return v;
}

#define DB_UP "chiploc_database_connected"

static long long count_sql(const world *w, const char *sql) { return tu_sql_int(w->db, sql); }

START_TEST(test_outage_replayed) {
  world w;
  world_make(&w, "outage", 500);
  pid_t lm = tu_landmarkd_start(w.lm_conf, w.lm_log);
  pid_t ag = tu_chipagent_start(w.ag_conf, w.ag_log, NULL);

  /* Measurements flow before the outage. */
  long long before = 0;
  for (int i = 0; i < 100 && (before = count_sql(&w, "SELECT count(*) FROM measurements")) <
                                 2 * N_CHIPS;
       i++)
    tu_sleep_ms(100);
  ck_assert_msg(before >= 2 * N_CHIPS, "only %lld measurements before the outage", before);
  int vport = 0;
  pid_t ver = verifier_start(&w, &vport);
  ck_assert_double_eq(wait_gauge(w.mport, DB_UP, 1, 5000), 1);
  ck_assert_double_eq(wait_gauge(vport, DB_UP, 1, 5000), 1);
  ck_assert_int_eq(http(w.mport, "/readyz", NULL), 200);
  tu_sleep_ms(2000);

  /* The outage. */
  ck_assert_int_eq(pg("pause", w.pg_log), 0);
  double t0 = now_s();
  long long accepted_at_pause = tu_last_stat(w.lm_log, "measurements");
  ck_assert_msg(tu_wait_log(w.lm_log, "msg=\"database unavailable; spooling rows\"", 1, 15000) ==
                    0,
                "landmarkd did not start spooling");
  tu_sleep_ms(3000);
  long long size1 = file_size(w.spool);
  /* Down, but alive; landmarkd still ready (it spools), the verifier not. */
  ck_assert_double_eq(wait_gauge(w.mport, DB_UP, 0, 10000), 0);
  ck_assert_int_eq(http(w.mport, "/healthz", NULL), 200);
  ck_assert_int_eq(http(w.mport, "/readyz", NULL), 200);
  ck_assert_double_eq(wait_gauge(vport, DB_UP, 0, 10000), 0);
  ck_assert_int_eq(http(vport, "/healthz", NULL), 200);
  char *why = NULL;
  ck_assert_int_eq(http(vport, "/readyz", &why), 503);
  ck_assert_str_eq(why, "not ready: not connected to the database\n");
  while (now_s() - t0 < OUTAGE_S) tu_sleep_ms(200);
  long long size2 = file_size(w.spool);
  long long spooled = wait_stat(w.lm_log, "rows_spooled", 1, 5000);
  long long accepted_during = tu_last_stat(w.lm_log, "measurements") - accepted_at_pause;
  ck_assert_int_eq(pg("resume", w.pg_log), 0);
  double outage = now_s() - t0;

  ck_assert_int_gt(size1, SPOOL_HEADER_LEN);
  ck_assert_msg(size2 > size1, "spool did not grow: %lld then %lld bytes", size1, size2);
  ck_assert_int_gt(spooled, 0);
  ck_assert_int_gt(accepted_during, 10); /* probing went on */

  /* The database is back: the spool drains, then rows flow directly. */
  ck_assert_msg(tu_wait_log(w.lm_log, "msg=\"spool drained\"", 1, 60000) == 0,
                "the spool was not drained");
  ck_assert_double_eq(wait_gauge(w.mport, DB_UP, 1, 10000), 1);
  ck_assert_double_eq(wait_gauge(vport, DB_UP, 1, 10000), 1);
  ck_assert_int_eq(wait_status(vport, "/readyz", 200, 10000), 200);
  ck_assert_int_eq(http(w.mport, "/readyz", NULL), 200);
  tu_sleep_ms(3000);

  ck_assert_int_eq(tu_stop(ver, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);

  long long accepted = tu_last_stat(w.lm_log, "measurements");
  long long replayed = tu_last_stat(w.lm_log, "rows_replayed");
  spooled = tu_last_stat(w.lm_log, "rows_spooled");
  ck_assert_int_eq(tu_last_stat(w.lm_log, "measurements_dropped"), 0);
  ck_assert_int_eq(tu_last_stat(w.lm_log, "spool_dropped"), 0);
  ck_assert_int_eq(tu_last_stat(w.lm_log, "spool_rows"), 0);
  ck_assert_int_eq(tu_count_in_file(w.lm_log, "rows_unwritten=0"), 1);
  ck_assert_int_eq(tu_count_in_file(w.lm_log, "msg=\"rows spooled at shutdown\""), 0);
  ck_assert_int_eq(replayed, spooled); /* no crash: each spooled row replayed once */

  /* Everything the landmark accepted is stored, exactly once, and verifies. */
  long long stored = count_sql(&w, "SELECT count(*) FROM measurements");
  long long distinct = count_sql(&w, "SELECT count(DISTINCT nonce) FROM measurements");
  long long bad = -1;
  long long verified = tu_verify_measurements(w.db, 0, &bad);
  fprintf(stderr,
          "test_outage: outage %.1f s, accepted %lld (%lld during the outage), stored %lld, "
          "spooled %lld, replayed %lld, spool file %lld -> %lld bytes during the outage\n",
          outage, accepted, accepted_during, stored, spooled, replayed, size1, size2);
  ck_assert_int_eq(stored, accepted);
  ck_assert_int_eq(distinct, stored);
  ck_assert_int_eq(verified, stored);
  ck_assert_int_eq(bad, 0);
  /* The spool is empty: a header and no record. */
  ck_assert_int_eq(file_size(w.spool), SPOOL_HEADER_LEN);
  tu_release();
}
END_TEST

START_TEST(test_sigterm_during_outage) {
  world w;
  world_make(&w, "outage-term", 3000);
  char *log2 = tu_fmt("%s/landmarkd-2.log", w.dir);
  pid_t lm = tu_landmarkd_start(w.lm_conf, w.lm_log);
  pid_t ag = tu_chipagent_start(w.ag_conf, w.ag_log, NULL);
  long long before = 0;
  for (int i = 0; i < 100 && (before = count_sql(&w, "SELECT count(*) FROM measurements")) <
                                 N_CHIPS;
       i++)
    tu_sleep_ms(100);
  ck_assert_int_ge(before, N_CHIPS);

  /* Down, and stopped while rows wait in memory. */
  ck_assert_int_eq(pg("pause", w.pg_log), 0);
  int stats_seen = tu_count_in_file(w.lm_log, "msg=stats");
  ck_assert_int_eq(tu_wait_log(w.lm_log, "msg=stats", stats_seen + 1, 5000), 0);
  ck_assert_msg(wait_stat(w.lm_log, "db_queue", 1, 10000) >= 1, "no row waiting in memory");
  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0); /* spooled is fine: exit 0 */
  long long accepted1 = tu_last_stat(w.lm_log, "measurements");
  ck_assert_int_eq(tu_count_in_file(w.lm_log, "msg=\"rows spooled at shutdown\""), 1);
  ck_assert_int_eq(tu_count_in_file(w.lm_log, "rows_unwritten=0"), 1);
  ck_assert_int_gt(file_size(w.spool), SPOOL_HEADER_LEN);

  /* The next landmarkd, started while the database is still down, is alive
   * but not ready: it cannot listen before it has the enrolled chips. */
  char *argv[] = {tu_own(tu_bin("server/landmarkd")), "--config", w.lm_conf, NULL};
  lm = tu_spawn(argv, log2);
  ck_assert_int_eq(wait_status(w.mport, "/healthz", 200, 10000), 200);
  char *why = NULL;
  ck_assert_int_eq(http(w.mport, "/readyz", &why), 503);
  ck_assert_msg(strncmp(why, "not ready: not listening yet", 28) == 0, "%s", why);
  ck_assert_double_eq(wait_gauge(w.mport, DB_UP, 0, 1000), 0);
  /* It replays the spool once the database is back. */
  ck_assert_int_eq(pg("resume", w.pg_log), 0);
  ck_assert_int_eq(tu_wait_log(log2, "msg=listening", 1, 30000), 0);
  ck_assert_int_eq(wait_status(w.mport, "/readyz", 200, 10000), 200);
  ck_assert_double_eq(wait_gauge(w.mport, DB_UP, 1, 10000), 1);
  ck_assert_msg(tu_wait_log(log2, "msg=\"spool drained\"", 1, 30000) == 0,
                "the spool was not replayed");
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0); /* no agent: nothing new measured */
  ck_assert_int_eq(tu_last_stat(log2, "measurements"), 0);
  long long stored = count_sql(&w, "SELECT count(*) FROM measurements");
  long long distinct = count_sql(&w, "SELECT count(DISTINCT nonce) FROM measurements");
  fprintf(stderr, "test_sigterm_during_outage: accepted %lld, stored %lld, replayed %lld\n",
          accepted1, stored, tu_last_stat(log2, "rows_replayed"));
  ck_assert_int_eq(stored, accepted1);
  ck_assert_int_eq(distinct, stored);
  ck_assert_int_eq(file_size(w.spool), SPOOL_HEADER_LEN);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("outage");
  TCase *tc = tcase_create("processes");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_outage_replayed);
  tcase_add_test(tc, test_sigterm_during_outage);
  suite_add_tcase(s, tc);
  int status = tu_run_suite(s);
  /* Whatever happened, leave the shared server running for the tests that
   * follow (resume does nothing if it runs). Outside a test: no ck_assert. */
  const char *src = getenv("CHIPLOC_SOURCE_DIR"), *pgdir = getenv("CHIPLOC_TEST_PG_DIR");
  if (src && pgdir) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/tests/pgtest.sh' resume '%s' >/dev/null 2>&1", src, pgdir);
    if (system(cmd) != 0) fprintf(stderr, "test_outage: could not resume PostgreSQL\n");
  }
  return status;
}
