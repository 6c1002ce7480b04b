/*
 * What an operator does to the running daemons, with the real landmarkd,
 * chipagent and `chiploc verify --follow` as processes and the run's
 * PostgreSQL. Each landmark logs in with a role of its own (in
 * chiploc_landmark, bound to its entry), as docs/OPERATIONS.md sets it up.
 *
 *   - key rotation as OPERATIONS.md describes it: with an empty spool the
 *     landmark starts under the new key and measures; with rows of the old
 *     key in the spool (spooled while the login could not connect), they
 *     are set aside, replayed under the old key, and not one is lost;
 *   - SIGHUP: landmarkd keeps running (with rows queued and spooled), re-reads
 *     the enrolled set at once, names the changed settings that need a
 *     restart, and every accepted measurement reaches the database; the
 *     verifier keeps running and keeps attesting;
 *   - a lock the writer's COPY would wait on for good is given up after the
 *     writer's lock_timeout, the rows are retried, and none is lost;
 *   - database configuration errors (a login the server refuses, a missing
 *     database, a login outside chiploc_landmark or not bound, a key not
 *     registered, a name or position other than the registered entry's)
 *     stop landmarkd with exit status 2 and what to do; an unreachable
 *     server is retried;
 *   - --check-config: an ok line per check on a good configuration, a FAIL
 *     line and exit status 2 for each kind of failure;
 *   - the open-file limit warning fires exactly below max_connections plus
 *     the descriptors landmarkd needs besides.
 *
 * Login roles are cluster-wide: each test names its own.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <arpa/inet.h>
#include <check.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where the landmark of tu_landmark_defaults is registered. */
#define LM_LAT "48.8566"
#define LM_LON "2.3522"

typedef struct {
  char *dir, *db, *log;
  char *role, *login; /* the landmark's login role and its conninfo */
  char *lkey, *lhex;  /* the landmark's key */
  char *chip, *chiphex;
  int port;
} world;

static void sql_ok(const char *conninfo, const char *sql) {
  char err[512] = "";
  ck_assert_msg(tu_sql(conninfo, sql, err, sizeof err) == 0, "%s: %s", sql, err);
}

/* Creates (or resets) login role `role`; with member, in chiploc_landmark. */
static void make_role(const char *db, const char *role, int login, int member) {
  sql_ok(db, tu_fmt("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s')"
                    " THEN CREATE ROLE %s; END IF; END $$;"
                    " ALTER ROLE %s %s CONNECTION LIMIT -1",
                    role, role, role, login ? "LOGIN" : "NOLOGIN"));
  if (member) sql_ok(db, tu_fmt("GRANT chiploc_landmark TO %s", role));
}

/*
 * A migrated database `name`, the landmark lm-paris registered (at the
 * position of tu_landmark_defaults) with its own login role bound to it,
 * and one enrolled chip.
 */
static void world_make(world *w, const char *name) {
  w->dir = tu_own(tu_tmpdir(name));
  w->log = tu_fmt("%s/cli.log", w->dir);
  w->db = tu_own(tu_db_create(name));
  ck_assert_int_eq(tu_cli(w->log, "db", "migrate", "--db", w->db, NULL), 0);
  w->lkey = tu_keygen(w->dir, "landmark", w->log);
  w->lhex = tu_key_hex(w->lkey);
  ck_assert_int_eq(tu_cli(w->log, "landmark", "add", "--db", w->db, "--name", "lm-paris",
                          "--pubkey", w->lhex, "--lat", LM_LAT, "--lon", LM_LON, NULL),
                   0);
  w->role = tu_fmt("lm_%s", name);
  make_role(w->db, w->role, 1, 1);
  ck_assert_int_eq(tu_cli(w->log, "landmark", "bind", "--db", w->db, "--name", "lm-paris",
                          "--db-role", w->role, NULL),
                   0);
  w->login = tu_own(tu_conninfo_as(w->db, w->role));
  w->chip = tu_keygen(w->dir, "chip", w->log);
  w->chiphex = tu_key_hex(w->chip);
  ck_assert_int_eq(tu_cli(w->log, "chip", "enroll", "--db", w->db, "--pubkey-file", w->chip,
                          "--serial", "D-0001", "--operator", "daemons", "--site", "48.85,2.35",
                          NULL),
                   0);
  w->port = tu_free_port();
}

/* The landmark's config: its key, port and login; file in w->dir. */
static tu_landmark_opts lm_opts(const world *w, const char *file) {
  tu_landmark_opts o = tu_landmark_defaults();
  o.file = file;
  o.key = w->lkey;
  o.port = w->port;
  o.conninfo = w->login;
  return o;
}

/* An agent for the world's chip, measured by the landmark of key hex. */
static char *agent_conf(const world *w, const char *file, const char *hex) {
  tu_agent_opts ao = {.file = file, .name = "daemons-host", .backoff_min_ms = 50,
                      .backoff_max_ms = 500, .landmarks = {{"lm", w->port, hex}},
                      .chips = {{"c0", w->chip}}};
  return tu_agent_conf(w->dir, &ao);
}

static long long sql_int(const world *w, const char *sql) { return tu_sql_int(w->db, sql); }

/* Waits up to timeout_ms until sql counts at least min; returns the count. */
static long long wait_count(const world *w, const char *sql, long long min, int timeout_ms) {
  long long n = -1;
  for (int waited = 0; waited <= timeout_ms; waited += 100) {
    if ((n = sql_int(w, sql)) >= min) break;
    tu_sleep_ms(100);
  }
  return n;
}

/* Value of key in the last line of log holding needle; -1 if none. */
static long long last_value(const char *log, const char *needle, const char *key) {
  char *s = tu_read_file(log);
  if (!s) return -1;
  long long v = -1;
  for (char *line = s, *eol; (eol = strchr(line, '\n')) != NULL; line = eol + 1) {
    *eol = '\0';
    if (strstr(line, needle)) v = tu_line_value(line, key);
  }
  free(s);
  return v;
}

static int alive(pid_t pid) {
  int st;
  return waitpid(pid, &st, WNOHANG) == 0;
}

/* Cuts the login off the database without stopping the server: no new
 * connection (SQLSTATE 53300, an outage to the landmark) and its current
 * one terminated. */
static void login_cut(const world *w, const char *role) {
  sql_ok(w->db, tu_fmt("ALTER ROLE %s CONNECTION LIMIT 0", role));
  sql_ok(w->db, tu_fmt("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE usename = '%s'",
                       role));
}

static void login_restore(const world *w, const char *role) {
  sql_ok(w->db, tu_fmt("ALTER ROLE %s CONNECTION LIMIT -1", role));
}

static long long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

#define MEASURED_BY(name)                                                                    \
  "SELECT count(*) FROM measurements WHERE landmark_id = (SELECT id FROM landmarks WHERE "   \
  "name = '" name "')"

/*
 * Registers a new key for the landmark as docs/OPERATIONS.md's rotation
 * does (a new entry lm-paris-b at the same position, the login bound to it
 * too) and returns the new key file.
 */
static char *rotate_register(world *w) {
  char *k2 = tu_keygen(w->dir, "landmark-2", w->log);
  ck_assert_int_eq(tu_cli(w->log, "landmark", "add", "--db", w->db, "--name", "lm-paris-b",
                          "--pubkey", tu_key_hex(k2), "--lat", LM_LAT, "--lon", LM_LON, NULL),
                   0);
  ck_assert_int_eq(tu_cli(w->log, "landmark", "bind", "--db", w->db, "--name", "lm-paris-b",
                          "--db-role", w->role, NULL),
                   0);
  return k2;
}

/* ---- key rotation ----------------------------------------------------------- */

START_TEST(test_rotate_empty_spool) {
  world w;
  world_make(&w, "daemons_rot_empty");
  char *lmlog = tu_fmt("%s/landmarkd-1.log", w.dir), *aglog = tu_fmt("%s/agent-1.log", w.dir);
  tu_landmark_opts lo = lm_opts(&w, NULL);
  char *conf = tu_landmark_conf(w.dir, &lo);
  pid_t lm = tu_landmarkd_start(conf, lmlog);
  pid_t ag = tu_chipagent_start(agent_conf(&w, "agent-1.conf", w.lhex), aglog, NULL);
  ck_assert_int_ge(wait_count(&w, MEASURED_BY("lm-paris"), 1, 20000), 1);
  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);
  char *spool = tu_fmt("%s/landmarkd.spool", w.dir);
  ck_assert_int_eq(file_size(spool), 128); /* a header: nothing waits */

  /* The switch: name and key of the new entry, same spool. */
  char *k2 = rotate_register(&w);
  lo.name = "lm-paris-b";
  lo.key = k2;
  conf = tu_landmark_conf(w.dir, &lo);
  char *lmlog2 = tu_fmt("%s/landmarkd-2.log", w.dir);
  lm = tu_landmarkd_start(conf, lmlog2);
  ck_assert_int_eq(
      tu_count_in_file(lmlog2, "msg=\"spool: empty spool of another landmark key re-made"), 1);
  ag = tu_chipagent_start(agent_conf(&w, "agent-2.conf", tu_key_hex(k2)),
                          tu_fmt("%s/agent-2.log", w.dir), NULL);
  ck_assert_int_ge(wait_count(&w, MEASURED_BY("lm-paris-b"), 1, 20000), 1);
  ck_assert_int_eq(tu_stop_all(15000), 0);
  long long bad = -1;
  ck_assert_int_eq(tu_verify_measurements(w.db, 0, &bad), sql_int(&w, "SELECT count(*) FROM measurements"));
  ck_assert_int_eq(bad, 0);
  tu_release();
}
END_TEST

START_TEST(test_rotate_spooled_rows) {
  world w;
  world_make(&w, "daemons_rot_rows");
  char *lmlog = tu_fmt("%s/landmarkd-1.log", w.dir);
  tu_landmark_opts lo = lm_opts(&w, NULL);
  char *conf = tu_landmark_conf(w.dir, &lo);
  pid_t lm = tu_landmarkd_start(conf, lmlog);
  pid_t ag = tu_chipagent_start(agent_conf(&w, "agent-1.conf", w.lhex),
                                tu_fmt("%s/agent-1.log", w.dir), NULL);
  ck_assert_int_ge(wait_count(&w, MEASURED_BY("lm-paris"), 2, 20000), 2);
  /* The old key's rows pile up in the spool. */
  login_cut(&w, w.role);
  ck_assert_int_eq(tu_wait_log(lmlog, "msg=\"database unavailable; spooling rows\"", 1, 20000), 0);
  for (int i = 0; i < 100 && tu_last_stat(lmlog, "spool_rows") < 3; i++) tu_sleep_ms(100);
  ck_assert_int_ge(tu_last_stat(lmlog, "spool_rows"), 3);
  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);
  long long written = last_value(lmlog, "msg=stopped", "rows_written");
  long long spooled = last_value(lmlog, "msg=stopped", "rows_spooled");
  ck_assert_int_eq(last_value(lmlog, "msg=stopped", "rows_unwritten"), 0);
  ck_assert_int_ge(spooled, 3);
  ck_assert_int_eq(sql_int(&w, MEASURED_BY("lm-paris")), written);

  /* The switch, with the old key's rows still in the spool. */
  char *k2 = rotate_register(&w);
  lo.name = "lm-paris-b";
  lo.key = k2;
  conf = tu_landmark_conf(w.dir, &lo);
  login_restore(&w, w.role);
  char *lmlog2 = tu_fmt("%s/landmarkd-2.log", w.dir);
  lm = tu_landmarkd_start(conf, lmlog2);
  char *aside = tu_fmt("%s/landmarkd.spool.%.16s", w.dir, w.lhex);
  ck_assert_int_eq(tu_count_in_file(lmlog2, "msg=\"spool: records of another landmark key set aside\""), 1);
  ck_assert_int_eq(tu_count_in_file(lmlog2, tu_fmt("new_path=%s", aside)), 1);
  ck_assert_int_eq(tu_wait_log(lmlog2, "msg=\"spool: set-aside spool replayed and removed\"", 1, 20000), 0);
  /* Not one row of the old key is lost, none is doubled. */
  ck_assert_int_eq(sql_int(&w, MEASURED_BY("lm-paris")), written + spooled);
  ck_assert_int_eq(sql_int(&w, "SELECT count(*) - count(DISTINCT nonce) FROM measurements"), 0);
  ck_assert_int_eq(file_size(aside), -1);
  /* And the new key measures. */
  ag = tu_chipagent_start(agent_conf(&w, "agent-2.conf", tu_key_hex(k2)),
                          tu_fmt("%s/agent-2.log", w.dir), NULL);
  ck_assert_int_ge(wait_count(&w, MEASURED_BY("lm-paris-b"), 1, 20000), 1);
  ck_assert_int_eq(tu_stop_all(15000), 0);
  long long bad = -1;
  ck_assert_int_eq(tu_verify_measurements(w.db, 0, &bad), sql_int(&w, "SELECT count(*) FROM measurements"));
  ck_assert_int_eq(bad, 0);
  tu_release();
}
END_TEST

/* A set-aside spool whose key the login may not write is kept, and the
 * landmark runs; bound later, a SIGHUP replays it. */
START_TEST(test_rotate_aside_held_until_bound) {
  world w;
  world_make(&w, "daemons_rot_held");
  char *lmlog = tu_fmt("%s/landmarkd-1.log", w.dir);
  tu_landmark_opts lo = lm_opts(&w, NULL);
  char *conf = tu_landmark_conf(w.dir, &lo);
  pid_t lm = tu_landmarkd_start(conf, lmlog);
  pid_t ag = tu_chipagent_start(agent_conf(&w, "agent-1.conf", w.lhex),
                                tu_fmt("%s/agent-1.log", w.dir), NULL);
  ck_assert_int_ge(wait_count(&w, MEASURED_BY("lm-paris"), 1, 20000), 1);
  login_cut(&w, w.role);
  ck_assert_int_eq(tu_wait_log(lmlog, "msg=\"database unavailable; spooling rows\"", 1, 20000), 0);
  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);
  long long written = last_value(lmlog, "msg=stopped", "rows_written");
  long long spooled = last_value(lmlog, "msg=stopped", "rows_spooled");
  ck_assert_int_ge(spooled, 1);

  /* The new entry gets a login of its own: it may not write the old rows. */
  char *k2 = tu_keygen(w.dir, "landmark-2", w.log);
  ck_assert_int_eq(tu_cli(w.log, "landmark", "add", "--db", w.db, "--name", "lm-paris-b",
                          "--pubkey", tu_key_hex(k2), "--lat", LM_LAT, "--lon", LM_LON, NULL),
                   0);
  char *role2 = "lm_daemons_rot_held_b";
  make_role(w.db, role2, 1, 1);
  ck_assert_int_eq(tu_cli(w.log, "landmark", "bind", "--db", w.db, "--name", "lm-paris-b",
                          "--db-role", role2, NULL),
                   0);
  login_restore(&w, w.role);
  lo.name = "lm-paris-b";
  lo.key = k2;
  lo.conninfo = tu_own(tu_conninfo_as(w.db, role2));
  conf = tu_landmark_conf(w.dir, &lo);
  char *lmlog2 = tu_fmt("%s/landmarkd-2.log", w.dir);
  lm = tu_landmarkd_start(conf, lmlog2);
  ck_assert_int_eq(tu_wait_log(lmlog2, "msg=\"spool: set-aside spool kept; its rows cannot be written\"", 1, 20000), 0);
  ck_assert_int_eq(tu_count_in_file(lmlog2, "chiploc landmark bind --name lm-paris --db-role lm_daemons_rot_held_b"), 1);
  ck_assert(alive(lm));
  char *aside = tu_fmt("%s/landmarkd.spool.%.16s", w.dir, w.lhex);
  ck_assert_int_gt(file_size(aside), 128);
  ck_assert_int_eq(sql_int(&w, MEASURED_BY("lm-paris")), written);

  ck_assert_int_eq(tu_cli(w.log, "landmark", "bind", "--db", w.db, "--name", "lm-paris",
                          "--db-role", role2, NULL),
                   0);
  kill(lm, SIGHUP);
  ck_assert_int_eq(tu_wait_log(lmlog2, "msg=\"spool: set-aside spool replayed and removed\"", 1, 20000), 0);
  ck_assert_int_eq(sql_int(&w, MEASURED_BY("lm-paris")), written + spooled);
  ck_assert_int_eq(file_size(aside), -1);
  ck_assert_int_eq(tu_stop_all(15000), 0);
  tu_release();
}
END_TEST

/* ---- SIGHUP -------------------------------------------------------------------- */

START_TEST(test_landmarkd_sighup) {
  world w;
  world_make(&w, "daemons_hup");
  /* A second chip the agent holds but that is enrolled only once the
   * landmark runs; the periodic refresh is an hour away. */
  char *chip2 = tu_keygen(w.dir, "chip-2", w.log);
  char *lmlog = tu_fmt("%s/landmarkd.log", w.dir);
  tu_landmark_opts lo = lm_opts(&w, NULL);
  lo.refresh_interval_s = 3600;
  char *conf = tu_landmark_conf(w.dir, &lo);
  pid_t lm = tu_landmarkd_start(conf, lmlog);
  tu_chipagent_start(agent_conf(&w, "agent.conf", w.lhex), tu_fmt("%s/agent.log", w.dir), NULL);
  /* An agent whose only chip is refused reconnects with backoff, so it
   * registers the chip as soon as the landmark knows it. */
  tu_agent_opts ao = {.file = "agent-2.conf", .name = "daemons-host-2", .backoff_min_ms = 50,
                      .backoff_max_ms = 500, .landmarks = {{"lm", w.port, w.lhex}},
                      .chips = {{"c1", chip2}}};
  char *ag2log = tu_fmt("%s/agent-2.log", w.dir);
  tu_chipagent_start(tu_agent_conf(w.dir, &ao), ag2log, NULL);
  ck_assert_int_ge(wait_count(&w, "SELECT count(*) FROM measurements", 1, 20000), 1);
  ck_assert_int_eq(tu_wait_log(ag2log, "reason=not_enrolled", 2, 10000), 0);
  ck_assert_int_eq(tu_cli(w.log, "chip", "enroll", "--db", w.db, "--pubkey-file", chip2,
                          "--serial", "D-0002", "--operator", "daemons", "--site", "48.85,2.35",
                          NULL),
                   0);
  kill(lm, SIGHUP);
  ck_assert_int_eq(tu_wait_log(lmlog, "msg=\"SIGHUP: reloading\"", 1, 5000), 0);
  ck_assert_int_eq(tu_wait_log(lmlog, "msg=\"SIGHUP: configuration unchanged\"", 1, 5000), 0);
  ck_assert_int_eq(tu_wait_log(lmlog, "msg=\"SIGHUP: enrolled set re-read\"", 1, 5000), 0);
  const char *chip2_rows = "SELECT count(*) FROM measurements WHERE chip_id ="
                           " (SELECT id FROM chips WHERE serial = 'D-0002')";
  ck_assert_int_ge(wait_count(&w, chip2_rows, 1, 20000), 1);

  /* Rows queued and spooled: the login is cut off. SIGHUP again, with a
   * changed setting. */
  login_cut(&w, w.role);
  ck_assert_int_eq(tu_wait_log(lmlog, "msg=\"database unavailable; spooling rows\"", 1, 20000), 0);
  lo.batch_size = 7;
  tu_landmark_conf(w.dir, &lo);
  kill(lm, SIGHUP);
  ck_assert_int_eq(tu_wait_log(lmlog, "msg=\"SIGHUP: changed settings need a restart\" changed=\"[database] batch_size\"", 1, 5000), 0);
  tu_sleep_ms(1500);
  ck_assert(alive(lm));
  login_restore(&w, w.role);
  ck_assert_int_eq(tu_wait_log(lmlog, "msg=\"spool drained\"", 1, 30000), 0);
  ck_assert(alive(lm));
  ck_assert_int_eq(tu_stop_all(15000), 0);
  /* Every measurement the landmark accepted is stored. */
  long long written = last_value(lmlog, "msg=stopped", "rows_written");
  ck_assert_int_eq(last_value(lmlog, "msg=stopped", "rows_unwritten"), 0);
  ck_assert_int_eq(last_value(lmlog, "msg=stopped", "spool_rows"), 0);
  ck_assert_int_ge(written, tu_last_stat(lmlog, "measurements"));
  ck_assert_int_eq(sql_int(&w, "SELECT count(*) FROM measurements"), written);
  tu_release();
}
END_TEST

/*
 * A lock the writer's COPY waits on for good (here a transaction holding
 * measurements exclusively; in the field, a dead client's transaction, or
 * DDL): the writer's lock_timeout cancels the wait, the rows stay queued
 * and are retried, and once the lock goes every accepted row is stored.
 * Without the timeout the COPY waits as long as the lock is held and the
 * log never shows the cancelled batch.
 */
START_TEST(test_writer_lock_timeout) {
  world w;
  world_make(&w, "daemons_lock");
  char *lmlog = tu_fmt("%s/landmarkd.log", w.dir);
  tu_landmark_opts lo = lm_opts(&w, NULL);
  char *conf = tu_landmark_conf(w.dir, &lo);
  pid_t lm = tu_landmarkd_start(conf, lmlog);
  tu_chipagent_start(agent_conf(&w, "agent.conf", w.lhex), tu_fmt("%s/agent.log", w.dir), NULL);
  ck_assert_int_ge(wait_count(&w, "SELECT count(*) FROM measurements", 1, 20000), 1);

  PGconn *holder = PQconnectdb(w.db);
  ck_assert_int_eq(PQstatus(holder), CONNECTION_OK);
  PGresult *r = PQexec(holder, "BEGIN; LOCK TABLE measurements IN ACCESS EXCLUSIVE MODE");
  ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  ck_assert_msg(tu_wait_log(lmlog, "lock timeout", 1, 60000) == 0,
                "the writer's COPY was not cancelled within 60 s of waiting on a lock");
  ck_assert_int_ge(tu_count_in_file(lmlog, "msg=\"batch write failed; rows kept for retry\""), 1);
  ck_assert(alive(lm));
  r = PQexec(holder, "COMMIT");
  PQclear(r);
  PQfinish(holder);
  /* The rows kept for retry go in once the lock is gone. */
  long long measured = tu_last_stat(lmlog, "measurements");
  ck_assert_int_ge(wait_count(&w, "SELECT count(*) FROM measurements", measured, 20000), measured);

  ck_assert_int_eq(tu_stop_all(15000), 0);
  long long written = last_value(lmlog, "msg=stopped", "rows_written");
  ck_assert_int_eq(last_value(lmlog, "msg=stopped", "rows_unwritten"), 0);
  ck_assert_int_eq(last_value(lmlog, "msg=stopped", "spool_rows"), 0);
  ck_assert_int_ge(written, tu_last_stat(lmlog, "measurements"));
  ck_assert_int_eq(sql_int(&w, "SELECT count(*) FROM measurements"), written);
  tu_release();
}
END_TEST

START_TEST(test_verifier_sighup) {
  world w;
  world_make(&w, "daemons_vhup");
  char *vkey = tu_keygen(w.dir, "verifier", w.log);
  ck_assert_int_eq(tu_cli(w.log, "verifier", "add", "--db", w.db, "--name", "v-hup", "--pubkey",
                          tu_key_hex(vkey), NULL),
                   0);
  char *vlog = tu_fmt("%s/verifier.log", w.dir);
  char *argv[] = {tu_own(tu_bin("server/chiploc")), "verify", "--db", w.db, "--key", vkey, "--follow",
                  "--interval", "1", "--settle", "0", "--window", "30", NULL};
  pid_t v = tu_spawn(argv, vlog);
  ck_assert_int_eq(tu_wait_log(vlog, "msg=round", 1, 20000), 0);
  kill(v, SIGHUP);
  ck_assert_int_eq(tu_wait_log(vlog, "msg=\"SIGHUP: nothing to reload\"", 1, 5000), 0);
  int rounds = tu_count_in_file(vlog, "msg=round");
  ck_assert_int_eq(tu_wait_log(vlog, "msg=round", rounds + 2, 10000), 0);
  ck_assert(alive(v));
  ck_assert_int_eq(tu_stop(v, SIGTERM, 15000), 0);
  tu_release();
}
END_TEST

/* ---- database configuration errors ---------------------------------------------- */

/* conninfo with another dbname (libpq takes the last one). */
static char *with_dbname(const char *conninfo, const char *dbname) {
  return tu_fmt("%s dbname=%s", conninfo, dbname);
}

/* Runs landmarkd on conninfo (and key) until it stops by itself; returns
 * its exit status and the log's path in *log. */
static int run_until_stopped(const world *w, const char *tag, const char *conninfo,
                             const char *key, char **log) {
  tu_landmark_opts lo = lm_opts(w, tu_fmt("%s.conf", tag));
  lo.conninfo = conninfo;
  if (key) lo.key = key;
  *log = tu_fmt("%s/%s.log", w->dir, tag);
  char *argv[] = {tu_own(tu_bin("server/landmarkd")), "--config", tu_landmark_conf(w->dir, &lo), NULL};
  pid_t pid = tu_spawn(argv, *log);
  ck_assert_msg(tu_wait_log(*log, "msg=stopped", 1, 20000) == 0, "%s: landmarkd did not stop",
                tag);
  /* It exits by itself after that line (the sanitizer build checks for
   * leaks first): a signal now would race its exit status. Signal 0 only
   * waits. */
  return tu_stop(pid, 0, 20000);
}

START_TEST(test_db_config_errors) {
  world w;
  world_make(&w, "daemons_dbconf");
  char *log;
  /* The example's mistake: a group role, which may not log in. */
  make_role(w.db, "lm_daemons_nologin", 0, 1);
  ck_assert_int_eq(run_until_stopped(&w, "nologin", tu_own(tu_conninfo_as(w.db, "lm_daemons_nologin")), NULL, &log), 2);
  ck_assert_int_eq(tu_count_in_file(log, "level=error"), 1);
  ck_assert_int_eq(tu_count_in_file(log, "err=\"login refused: "), 1);
  ck_assert_int_eq(tu_count_in_file(log, "not permitted to log in"), 1);
  ck_assert_int_ge(tu_count_in_file(log, "lm_daemons_nologin"), 1);
  /* A database that does not exist. */
  ck_assert_int_eq(run_until_stopped(&w, "nodb", with_dbname(w.login, "chiploc_no_such_db"), NULL, &log), 2);
  ck_assert_int_ge(tu_count_in_file(log, "chiploc_no_such_db"), 1);
  /* A login outside chiploc_landmark: it may not even read the landmarks. */
  make_role(w.db, "lm_daemons_outsider", 1, 0);
  ck_assert_int_eq(run_until_stopped(&w, "outsider", tu_own(tu_conninfo_as(w.db, "lm_daemons_outsider")), NULL, &log), 2);
  ck_assert_int_eq(tu_count_in_file(log, "must be a member of chiploc_landmark"), 1);
  /* A landmark login not bound to this landmark. */
  make_role(w.db, "lm_daemons_unbound", 1, 1);
  ck_assert_int_eq(run_until_stopped(&w, "unbound", tu_own(tu_conninfo_as(w.db, "lm_daemons_unbound")), NULL, &log), 2);
  ck_assert_int_eq(tu_count_in_file(log, "run: chiploc landmark bind --name lm-paris --db-role lm_daemons_unbound"), 1);
  /* A key that is not registered. */
  char *ghost = tu_keygen(w.dir, "ghost", w.log);
  ck_assert_int_eq(run_until_stopped(&w, "ghost", w.login, ghost, &log), 2);
  ck_assert_int_eq(tu_count_in_file(log, tu_fmt("run: chiploc landmark add --name lm-paris --pubkey %s --lat 48.8566 --lon 2.3522", tu_key_hex(ghost))), 1);

  /* A server that does not answer is an outage: retried, not fatal. */
  tu_landmark_opts lo = lm_opts(&w, "away.conf");
  lo.conninfo = tu_fmt("host=%s/no-server dbname=chiploc user=%s", w.dir, w.role);
  char *awaylog = tu_fmt("%s/away.log", w.dir);
  char *argv[] = {tu_own(tu_bin("server/landmarkd")), "--config", tu_landmark_conf(w.dir, &lo), NULL};
  pid_t pid = tu_spawn(argv, awaylog);
  ck_assert_int_eq(tu_wait_log(awaylog, "msg=\"database unavailable\"", 3, 20000), 0);
  ck_assert(alive(pid));
  ck_assert_int_eq(tu_stop(pid, SIGTERM, 10000), 0);
  tu_release();
}
END_TEST

/* name, lat and lon of the config must be those of the registered entry. */
START_TEST(test_identity_mismatch) {
  world w;
  world_make(&w, "daemons_ident");
  struct {
    const char *tag, *name;
    double lat, lon;
    const char *want;
  } bad[] = {
      {"name", "lm-pariss", 48.8566, 2.3522,
       "config name=lm-pariss lat=48.8566 lon=2.3522 but the database has name=lm-paris "
       "lat=48.8566 lon=2.3522 for this key"},
      {"lat", "lm-paris", 48.856602, 2.3522,
       "config name=lm-paris lat=48.856602 lon=2.3522 but the database has name=lm-paris "
       "lat=48.8566 lon=2.3522"},
      {"lon", "lm-paris", 48.8566, -2.3522, "lon=-2.3522 but the database has"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tu_landmark_opts lo = lm_opts(&w, tu_fmt("%s.conf", bad[i].tag));
    lo.name = bad[i].name;
    lo.lat = bad[i].lat;
    lo.lon = bad[i].lon;
    char *conf = tu_landmark_conf(w.dir, &lo);
    char *log = tu_fmt("%s/%s.log", w.dir, bad[i].tag);
    char *argv[] = {tu_own(tu_bin("server/landmarkd")), "--config", conf, NULL};
    pid_t pid = tu_spawn(argv, log);
    ck_assert_msg(tu_wait_log(log, "msg=stopped", 1, 20000) == 0, "%s: did not stop", bad[i].tag);
    ck_assert_int_eq(tu_stop(pid, 0, 20000), 2); /* waits only: see run_until_stopped */
    ck_assert_msg(tu_count_in_file(log, bad[i].want) == 1, "%s: no \"%s\" in %s", bad[i].tag,
                  bad[i].want, log);
    char *out = tu_fmt("%s/%s.out", w.dir, bad[i].tag);
    char *cargv[] = {tu_own(tu_bin("server/landmarkd")), "--check-config", "--config", conf, NULL};
    ck_assert_int_eq(tu_run(cargv, out), 2);
    ck_assert_int_eq(tu_count_in_file(out, tu_fmt("FAIL landmark %s: config name=", bad[i].name)), 1);
  }
  /* The same position written with other digits, within 1e-6 degrees. */
  tu_landmark_opts lo = lm_opts(&w, "close.conf");
  lo.lat = 48.85660009;
  pid_t lm = tu_landmarkd_start(tu_landmark_conf(w.dir, &lo), tu_fmt("%s/close.log", w.dir));
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);
  tu_release();
}
END_TEST

/* ---- --check-config ------------------------------------------------------------- */

/* landmarkd --check-config on conf; output into log (appended). */
static int check_config(const char *conf, const char *log) {
  char *argv[] = {tu_own(tu_bin("server/landmarkd")), "--check-config", "--config", (char *)conf, NULL};
  return tu_run(argv, log);
}

/* A TCP socket listening on 127.0.0.1:port, or -1. */
static int occupy(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1) != 0) return -1;
  return fd;
}

START_TEST(test_check_config) {
  world w;
  world_make(&w, "daemons_check");
  tu_landmark_opts lo = lm_opts(&w, "good.conf");
  lo.metrics_port = tu_free_port();
  char *good = tu_landmark_conf(w.dir, &lo);
  char *log = tu_fmt("%s/good.out", w.dir);
  ck_assert_int_eq(check_config(good, log), 0);
  static const char *const oks[] = {"ok   config ", "ok   key ", "ok   spool ", "ok   metrics 127.0.0.1:",
                                    "ok   database: logged in", "ok   landmark lm-paris: key registered as landmark id 1, name and position match",
                                    "ok   database role: may write", ": ok\n"};
  for (size_t i = 0; i < sizeof oks / sizeof oks[0]; i++)
    ck_assert_msg(tu_count_in_file(log, oks[i]) == 1, "no \"%s\" in %s", oks[i], log);
  ck_assert_int_eq(tu_count_in_file(log, "FAIL"), 0);

  /* Each kind of failure: its FAIL line, exit status 2. */
  struct {
    const char *tag, *want;
  } cases[] = {
      {"metrics", "FAIL metrics 127.0.0.1:"},
      {"away", "FAIL database: unreachable"},
      {"refused", "FAIL database: login refused: "},
      {"ghost", "FAIL landmark lm-paris: this landmark's key"},
      {"unbound", "FAIL database role: database role lm_daemons_check_unbound may not write"},
      {"spool", "FAIL spool "},
  };
  make_role(w.db, "lm_daemons_check_nologin", 0, 1);
  make_role(w.db, "lm_daemons_check_unbound", 1, 1);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tu_landmark_opts o = lo;
    o.file = tu_fmt("%s.conf", cases[i].tag);
    o.spool_path = tu_fmt("%s/%s.spool", w.dir, cases[i].tag);
    int busy = -1;
    switch (i) {
    case 0: busy = occupy(o.metrics_port = tu_free_port()); ck_assert_int_ge(busy, 0); break;
    case 1: o.conninfo = tu_fmt("host=%s/no-server dbname=chiploc user=%s", w.dir, w.role); break;
    case 2: o.conninfo = tu_own(tu_conninfo_as(w.db, "lm_daemons_check_nologin")); break;
    case 3: o.key = tu_keygen(w.dir, "ghost", w.log); break;
    case 4: o.conninfo = tu_own(tu_conninfo_as(w.db, "lm_daemons_check_unbound")); break;
    case 5: {
      /* Someone else's spool file (root runs the tests: ownership, not
       * mode, is what it cannot be fooled by). */
      char *p = tu_write_file(w.dir, "spool.spool", "");
      ck_assert_int_eq(chown(p, 65534, 65534), 0);
      free(p);
      break;
    }
    }
    char *out = tu_fmt("%s/%s.out", w.dir, cases[i].tag);
    ck_assert_int_eq(check_config(tu_landmark_conf(w.dir, &o), out), 2);
    ck_assert_msg(tu_count_in_file(out, cases[i].want) == 1, "%s: no \"%s\" in %s", cases[i].tag,
                  cases[i].want, out);
    ck_assert_int_eq(tu_count_in_file(out, "check failed\n") + tu_count_in_file(out, "checks failed\n"), 1);
    if (busy >= 0) close(busy);
  }
  ck_assert_int_eq(tu_count_in_file(tu_fmt("%s/spool.out", w.dir), "owned by uid 65534"), 1);
  ck_assert_int_ge(tu_count_in_file(tu_fmt("%s/refused.out", w.dir), "lm_daemons_check_nologin"), 1);

  /* The running landmark's spool and metrics address are its own, in use. */
  pid_t lm = tu_landmarkd_start(good, tu_fmt("%s/landmarkd.log", w.dir));
  char *busy = tu_fmt("%s/running.out", w.dir);
  ck_assert_int_eq(check_config(good, busy), 0);
  ck_assert_int_eq(tu_count_in_file(busy, "in use by a running landmarkd"), 1);
  ck_assert_int_eq(tu_count_in_file(busy, "ok   metrics 127.0.0.1:"), 1);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);
  tu_release();
}
END_TEST

/* ---- the open-file limit -------------------------------------------------------- */

/* Starts landmarkd under `prlimit --nofile=N:N`, waits until it listens,
 * stops it; returns how many limit warnings it logged. */
static int nofile_warnings(const world *w, const char *conf, int nofile) {
  char *log = tu_fmt("%s/landmarkd-nofile-%d.log", w->dir, nofile);
  char *argv[] = {"/usr/bin/prlimit", tu_fmt("--nofile=%d:%d", nofile, nofile), "--",
                  tu_own(tu_bin("server/landmarkd")), "--config", (char *)conf, NULL};
  pid_t pid = tu_spawn(argv, log);
  ck_assert_int_eq(tu_wait_log(log, "msg=listening", 1, 30000), 0);
  ck_assert_int_eq(tu_stop(pid, SIGTERM, 15000), 0);
  if (tu_count_in_file(log, "open-file limit"))
    ck_assert_int_eq(tu_count_in_file(log, "needed=1048 max_connections=1000 reserved=48 "
                                           "hint=\"set LimitNOFILE=1048 or more"), 1);
  return tu_count_in_file(log, "open-file limit");
}

START_TEST(test_nofile_warning) {
  ck_assert_msg(access("/usr/bin/prlimit", X_OK) == 0, "prlimit (util-linux) is needed");
  world w;
  world_make(&w, "daemons_nofile");
  tu_landmark_opts lo = lm_opts(&w, NULL);
  lo.max_connections = 1000;
  char *conf = tu_landmark_conf(w.dir, &lo);
  /* 1000 connections and 48 descriptors besides (no metrics endpoint). */
  ck_assert_int_eq(nofile_warnings(&w, conf, 1048), 0);
  ck_assert_int_eq(nofile_warnings(&w, conf, 1047), 1);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("daemons");
  TCase *tc = tcase_create("processes");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, test_rotate_empty_spool);
  tcase_add_test(tc, test_rotate_spooled_rows);
  tcase_add_test(tc, test_rotate_aside_held_until_bound);
  tcase_add_test(tc, test_landmarkd_sighup);
  tcase_add_test(tc, test_writer_lock_timeout);
  tcase_add_test(tc, test_verifier_sighup);
  tcase_add_test(tc, test_db_config_errors);
  tcase_add_test(tc, test_identity_mismatch);
  tcase_add_test(tc, test_check_config);
  tcase_add_test(tc, test_nofile_warning);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
