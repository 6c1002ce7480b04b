/*
 * Integration tests of the store (lib/db/cl_store.c) and the schema against the
 * throwaway PostgreSQL of the run: migrations and partitions (and the upgrade
 * of a database holding protocol 1 rows to protocol 2), enrolment, batched
 * COPY of signed protocol 2 records that must re-verify after the round trip
 * (read back with cl_store_row_measurement, which refuses malformed columns),
 * all-or-nothing batches, what the schema refuses, the least-privilege roles,
 * allowed regions (upserts, a chip's allowed codes, all-or-nothing imports),
 * the database commands of the chiploc CLI run as a separate process, and
 * connecting: each kind of refused login against an outage (the CLI's and
 * the verifier's exit codes with them), and the connection defaults
 * (keepalives, timeouts) that a conninfo overrides.
 * Every test works in a database of its own.
 */
#include "testutil.h"
#include "tu_record.h"

#include "cl_err.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_probe.h"
#include "cl_region.h"
#include "cl_region_geojson.h"
#include "cl_schema.h"
#include "cl_store.h"

#include <check.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------- */

static uint64_t now_unix_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static cl_store *connect_or_fail(const char *conninfo) {
  cl_store *s = NULL;
  char err[512] = "";
  int rc = cl_store_connect(&s, conninfo, err, sizeof err);
  ck_assert_msg(rc == CL_OK, "connect: %s", err);
  return s;
}

/* A fresh, migrated database; *conninfo receives its malloc'd conninfo. */
static cl_store *fresh_db(const char *name, char **conninfo) {
  *conninfo = tu_db_create(name);
  cl_store *s = connect_or_fail(*conninfo);
  char err[512] = "";
  int applied = -1;
  ck_assert_msg(cl_store_migrate(s, &applied, err, sizeof err) == CL_OK, "migrate: %s", err);
  ck_assert_int_eq(applied, cl_schema_migration_count);
  return s;
}

static int64_t add_landmark(cl_store *s, const char *name, const cl_key *k, double lat,
                            double lon) {
  int64_t id = 0;
  char err[512] = "";
  int rc = cl_store_landmark_add(s, name, cl_key_public(k), lat, lon, &id, err, sizeof err);
  ck_assert_msg(rc == CL_OK, "landmark_add %s: %s", name, err);
  ck_assert_int_gt(id, 0);
  return id;
}

static int64_t enroll_chip(cl_store *s, const char *serial, const cl_key *k) {
  int64_t id = 0;
  char err[512] = "";
  int rc = cl_store_chip_enroll(s, cl_key_public(k), serial, "Example Operator", 50.11, 8.68, &id,
                                err, sizeof err);
  ck_assert_msg(rc == CL_OK, "chip_enroll %s: %s", serial, err);
  ck_assert_int_gt(id, 0);
  return id;
}

/* A genuine protocol 2 record (tu_record: a signed handshake, three
 * answered probes whose fastest, the second, took 100 us + 13 ns * seq, the
 * chip's transcript signature and the landmark's record signature) and the
 * columns the writer derives from it. */
static void make_row(cl_store_row *row, const cl_key *lm, const cl_key *chip, int64_t chip_id,
                     uint64_t seq, uint64_t measured_ns) {
  memset(row, 0, sizeof *row);
  uint64_t rtt = 100000u + seq * 13u;
  const uint64_t rtts[3] = {rtt + 2000u, rtt, rtt + 5000u};
  ck_assert_int_eq(tu_record(&row->m, lm, chip, seq * 16u, 3, rtts, measured_ns), CL_OK);
  row->m.probes_sent = 5;
  ck_assert_int_eq(cl_measurement_sign(&row->m, lm), CL_OK);
  row->chip_id = chip_id;
  row->bound_m = cl_bound_m(rtt, CL_SPEED_C);
  row->est_speed = CL_SPEED_FIBRE;
  row->est_bound_m = cl_bound_m(rtt, CL_SPEED_FIBRE);
}

static char *sql_text(const char *conninfo, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* tu_sql_value with a formatted statement (test-controlled values only). */
static char *sql_text(const char *conninfo, const char *fmt, ...) {
  char sql[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  return tu_sql_value(conninfo, sql);
}

static long long count_rows(const char *conninfo, const char *table) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
  return tu_sql_int(conninfo, sql);
}

/* Name of the monthly partition `ahead` months after the current UTC month. */
static void partition_name(char *out, size_t outlen, int ahead) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  int month = tm.tm_mon + ahead;
  int year = tm.tm_year + 1900 + month / 12;
  snprintf(out, outlen, "measurements_p%04d_%02d", year, month % 12 + 1);
}

static int relation_exists(const char *conninfo, const char *name) {
  char *v = sql_text(conninfo, "SELECT to_regclass('public.%s') IS NOT NULL", name);
  ck_assert_ptr_nonnull(v);
  int yes = strcmp(v, "t") == 0;
  free(v);
  return yes;
}

/* A binary bigint or float8 field of row `row`. */
static int64_t bin_i64(const PGresult *r, int row, int col) {
  ck_assert_int_eq(PQgetlength(r, row, col), 8);
  return (int64_t)cl_get_be64((const uint8_t *)PQgetvalue(r, row, col));
}

static double bin_f64(const PGresult *r, int row, int col) {
  uint64_t bits = (uint64_t)bin_i64(r, row, col);
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

/* Runs a query with its results in binary format; asserts success. */
static PGresult *query_binary(PGconn *c, const char *sql) {
  PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 1);
  ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
  return r;
}

/* The stored rows of measurements (or landmark_links) as the verifier
 * reads them: the keys the ids name, then the record columns, then the
 * derived ones. */
#define STORED_MEASUREMENTS                                                                      \
  "SELECT l.public_key, ch.public_key, " CL_STORE_RECORD_COLUMNS("m") ","                        \
  " (extract(epoch FROM m.measured_at) * 1000000)::bigint, m.bound_m, m.est_bound_m,"            \
  " m.est_speed_m_s, m.chip_id, m.nonce, m.seq"                                                  \
  " FROM measurements m JOIN landmarks l ON l.id = m.landmark_id"                                \
  " JOIN chips ch ON ch.id = m.chip_id"
#define STORED_LINKS                                                                             \
  "SELECT lf.public_key, lt.public_key, " CL_STORE_RECORD_COLUMNS("k") ","                       \
  " (extract(epoch FROM k.measured_at) * 1000000)::bigint, k.bound_m, 0::bigint, 0::float8,"    \
  " k.to_landmark_id, k.nonce, k.seq"                                                            \
  " FROM landmark_links k JOIN landmarks lf ON lf.id = k.from_landmark_id"                       \
  " JOIN landmarks lt ON lt.id = k.to_landmark_id"
/* Columns after the two keys and the record columns. */
enum {
  S_REC = 2,
  S_MEASURED_US = S_REC + CL_STORE_RECORD_NCOLS,
  S_BOUND,
  S_EST_BOUND,
  S_EST_SPEED,
  S_CHIP_ID,
  S_NONCE,
  S_SEQ,
};

/*
 * Rebuilds stored records with cl_store_row_measurement from their columns
 * and the enrolled keys, and verifies every signature. Returns the number
 * of rows read; *bad counts rows that did not verify, whose measured_at
 * disagrees with measured_at_ns, or whose nonce and seq are not the fastest
 * probe's. If want is non-NULL, the row with want's record signature must
 * match it byte for byte. sql is STORED_MEASUREMENTS or STORED_LINKS.
 */
static long long reverify_sql(const char *conninfo, const char *sql, long long *bad,
                              const cl_store_row *want) {
  PGconn *c = PQconnectdb(conninfo);
  ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
  PGresult *r = query_binary(c, sql);
  long long n = PQntuples(r);
  int matched = 0;
  *bad = 0;
  const cl_store_cols cols = cl_store_cols_at(S_REC);
  for (int i = 0; i < n; i++) {
    cl_measurement m;
    char err[256] = "";
    int rc = cl_store_row_measurement(r, i, &cols, (const uint8_t *)PQgetvalue(r, i, 0),
                                      (const uint8_t *)PQgetvalue(r, i, 1), &m, err, sizeof err);
    ck_assert_msg(rc == CL_OK, "row %d: %s", i, err);
    if (cl_measurement_verify(&m) != CL_OK) (*bad)++;
    if ((uint64_t)bin_i64(r, i, S_MEASURED_US) != m.measured_unix_ns / 1000u) (*bad)++;
    const cl_probe_entry *fastest = &m.probes[cl_measurement_fastest(&m)];
    if (PQgetlength(r, i, S_NONCE) != CL_NONCE_LEN ||
        memcmp(PQgetvalue(r, i, S_NONCE), fastest->nonce, CL_NONCE_LEN) != 0 ||
        (uint64_t)bin_i64(r, i, S_SEQ) != fastest->seq)
      (*bad)++;
    if (want && memcmp(m.sig, want->m.sig, CL_SIG_LEN) == 0) {
      uint8_t a[CL_MEASUREMENT_LAYOUT_MAX], b[CL_MEASUREMENT_LAYOUT_MAX];
      size_t la = cl_layout_measurement(a, &m), lb = cl_layout_measurement(b, &want->m);
      ck_assert_uint_eq(la, lb);
      ck_assert_mem_eq(a, b, la);
      ck_assert_mem_eq(m.transcript_sig, want->m.transcript_sig, CL_SIG_LEN);
      ck_assert_mem_eq(m.hs.landmark_sig, want->m.hs.landmark_sig, CL_SIG_LEN);
      ck_assert_mem_eq(m.hs.chip_sig, want->m.hs.chip_sig, CL_SIG_LEN);
      ck_assert_uint_eq((uint64_t)bin_i64(r, i, S_BOUND), want->bound_m);
      if (!want->is_link) { /* links have no estimate */
        ck_assert_uint_eq((uint64_t)bin_i64(r, i, S_EST_BOUND), want->est_bound_m);
        ck_assert_double_eq(bin_f64(r, i, S_EST_SPEED), want->est_speed);
      }
      ck_assert_int_eq(bin_i64(r, i, S_CHIP_ID), want->chip_id);
      /* A single changed field no longer verifies. */
      m.probes[2].rtt_ns -= 1;
      ck_assert_int_eq(cl_measurement_verify(&m), CL_EBADSIG);
      matched = 1;
    }
  }
  PQclear(r);
  PQfinish(c);
  if (want) ck_assert_msg(matched, "no stored row with the wanted record signature");
  return n;
}

static long long reverify(const char *conninfo, long long *bad, const cl_store_row *want) {
  return reverify_sql(conninfo, STORED_MEASUREMENTS, bad, want);
}

/* A world of one landmark and two chips in a fresh database. */
typedef struct {
  char *conninfo;
  cl_store *s;
  cl_key *lm, *chip_a, *chip_b;
  int64_t lm_id, a_id, b_id;
} world;

static void world_init(world *w, const char *dbname) {
  memset(w, 0, sizeof *w);
  w->s = fresh_db(dbname, &w->conninfo);
  ck_assert_int_eq(cl_key_generate(&w->lm), CL_OK);
  ck_assert_int_eq(cl_key_generate(&w->chip_a), CL_OK);
  ck_assert_int_eq(cl_key_generate(&w->chip_b), CL_OK);
  w->lm_id = add_landmark(w->s, "lm-frankfurt", w->lm, 50.11, 8.68);
  w->a_id = enroll_chip(w->s, "A-0001", w->chip_a);
  w->b_id = enroll_chip(w->s, "B-0002", w->chip_b);
}

static void world_fini(world *w) {
  cl_store_destroy(&w->s);
  cl_key_destroy(&w->lm);
  cl_key_destroy(&w->chip_a);
  cl_key_destroy(&w->chip_b);
  free(w->conninfo);
}

/* Makes a LOGIN role that is a member of `group` (roles are cluster-wide,
 * so the role may remain from an earlier run). */
static char *login_member(const char *conninfo, const char *user, const char *group) {
  char sql[512], err[512] = "";
  snprintf(sql, sizeof sql,
           "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN "
           "CREATE ROLE %s LOGIN; END IF; END $$; GRANT %s TO %s",
           user, user, group, user);
  ck_assert_msg(tu_sql(conninfo, sql, err, sizeof err) == 0, "%s: %s", sql, err);
  return tu_conninfo_as(conninfo, user);
}

/* The columns a landmark names for a protocol 2 row, and values for all
 * but the first two (chip or probed landmark, measuring landmark): made-up
 * bytes of the right lengths, three entries; the database cannot check
 * signatures, the verifier does. nonce is one byte as two hex digits. */
#define V2_COLUMNS                                                                               \
  "chip_id, landmark_id, protocol, suite, nonce, seq, handshake, probes, transcript_sig,"       \
  " rtt_ns, bound_m, est_speed_m_s, est_bound_m, probe_count, probes_sent, measured_at,"         \
  " measured_at_ns, landmark_sig"
#define V2_VALUES(nonce)                                                                         \
  " 2, 1, decode(repeat('" nonce "', 32), 'hex'), 1, decode(repeat('02', 256), 'hex'),"          \
  " decode(repeat('03', 240), 'hex'), decode(repeat('04', 64), 'hex'), 5, 1, 2e8, 1, 3, 5,"     \
  " now(), 1, decode(repeat('05', 64), 'hex')"
#define V2_LINK_COLUMNS                                                                          \
  "from_landmark_id, to_landmark_id, protocol, suite, nonce, seq, handshake, probes,"            \
  " transcript_sig, rtt_ns, bound_m, probe_count, probes_sent, measured_at, measured_at_ns,"     \
  " landmark_sig"
#define V2_LINK_VALUES(nonce)                                                                    \
  " 2, 1, decode(repeat('" nonce "', 32), 'hex'), 1, decode(repeat('02', 256), 'hex'),"          \
  " decode(repeat('03', 240), 'hex'), decode(repeat('04', 64), 'hex'), 5000000, 749481, 3, 5,"  \
  " now(), 1, decode(repeat('05', 64), 'hex')"
/* The rows of a SELECT that names the chip c and the landmark l. */
#define LM_FRANKFURT " FROM chips c, landmarks l WHERE l.name = 'lm-frankfurt' LIMIT 1"

/* Runs sql as the given conninfo and asserts it is refused for lack of a
 * grant. */
static void assert_denied(const char *conninfo, const char *sql) {
  char err[512] = "";
  ck_assert_msg(tu_sql(conninfo, sql, err, sizeof err) != 0, "allowed: %s", sql);
  ck_assert_msg(strstr(err, "permission denied") != NULL, "%s: %s", sql, err);
}

static void assert_allowed(const char *conninfo, const char *sql) {
  char err[512] = "";
  ck_assert_msg(tu_sql(conninfo, sql, err, sizeof err) == 0, "%s: %s", sql, err);
}

/* ---- migrations and partitions ------------------------------------------ */

START_TEST(test_migrate_twice) {
  char *ci = tu_db_create("cl_store_migrate");
  cl_store *s = connect_or_fail(ci);
  ck_assert_int_eq(cl_store_ok(s), 1);
  char err[512] = "";
  int applied = -1;
  ck_assert_msg(cl_store_migrate(s, &applied, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_int_ge(cl_schema_migration_count, 1);
  ck_assert_int_eq(applied, cl_schema_migration_count);
  applied = -1;
  ck_assert_msg(cl_store_migrate(s, &applied, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_int_eq(applied, 0);

  ck_assert_int_eq(count_rows(ci, "chiploc_schema_migrations"), cl_schema_migration_count);
  char *first = tu_sql_value(ci, "SELECT min(name) FROM chiploc_schema_migrations");
  ck_assert_str_eq(first, "0001_init.sql");
  free(first);
  ck_assert(relation_exists(ci, "landmarks"));
  ck_assert(relation_exists(ci, "chips"));
  ck_assert(relation_exists(ci, "measurements"));
  ck_assert(relation_exists(ci, "measurements_default"));
  ck_assert_int_eq(count_rows(ci, "measurements"), 0);
  /* This month and the next three are ready; nothing further. */
  char part[64];
  for (int ahead = 0; ahead <= 3; ahead++) {
    partition_name(part, sizeof part, ahead);
    ck_assert_msg(relation_exists(ci, part), "%s is missing", part);
    char *parent = sql_text(ci,
                            "SELECT i.inhparent::regclass::text FROM pg_inherits i "
                            "WHERE i.inhrelid = 'public.%s'::regclass",
                            part);
    ck_assert_str_eq(parent, "measurements");
    free(parent);
  }
  partition_name(part, sizeof part, 4);
  ck_assert_msg(!relation_exists(ci, part), "%s exists", part);
  /* Both roles exist and cannot log in. */
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM pg_roles WHERE rolname IN "
                                  "('chiploc_landmark', 'chiploc_admin') AND NOT rolcanlogin"),
                   2);
  cl_store_destroy(&s);
  ck_assert_ptr_null(s);
  cl_store_destroy(&s); /* NULL-safe */
  free(ci);
}
END_TEST

START_TEST(test_migrate_concurrent) {
  /* Two processes migrate one empty database at once: the advisory lock
   * makes one apply everything and the other find the schema current. */
  char *ci = tu_db_create("cl_store_migrate_race");
  pid_t pids[2];
  for (int i = 0; i < 2; i++) {
    pids[i] = fork();
    ck_assert_int_ge(pids[i], 0);
    if (pids[i] == 0) {
      cl_store *s = NULL;
      char err[512];
      int applied = -1;
      if (cl_store_connect(&s, ci, err, sizeof err) != CL_OK) _exit(100);
      int rc = cl_store_migrate(s, &applied, err, sizeof err);
      if (rc != CL_OK) fprintf(stderr, "migrate: %s\n", err);
      cl_store_destroy(&s);
      _exit(rc == CL_OK ? applied : 101);
    }
  }
  int total = 0;
  for (int i = 0; i < 2; i++) {
    int st = 0;
    ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
    ck_assert(WIFEXITED(st));
    ck_assert_int_lt(WEXITSTATUS(st), 100);
    total += WEXITSTATUS(st);
  }
  ck_assert_int_eq(total, cl_schema_migration_count);
  ck_assert_int_eq(count_rows(ci, "chiploc_schema_migrations"), cl_schema_migration_count);
  free(ci);
}
END_TEST

START_TEST(test_partitions_take_over_default_rows) {
  world w;
  world_init(&w, "cl_store_partitions");
  /* Rows eight months ahead have no partition yet: they land in the
   * default partition instead of failing. */
  uint64_t ahead_ns = now_unix_ns() + (uint64_t)240 * 86400 * 1000000000u;
  cl_store_row rows[3];
  for (int i = 0; i < 3; i++) make_row(&rows[i], w.lm, w.chip_a, w.a_id, (uint64_t)i, ahead_ns);
  char err[512] = "";
  ck_assert_msg(cl_store_insert_measurements(w.s, w.lm_id, rows, 3, err, sizeof err) == CL_OK,
                "%s", err);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements_default"), 3);
  char *month = sql_text(w.conninfo,
                         "SELECT 'measurements_p' || to_char(measured_at AT TIME ZONE 'UTC', "
                         "'YYYY_MM') "
                         "FROM measurements LIMIT 1");
  ck_assert_ptr_nonnull(month);
  ck_assert(!relation_exists(w.conninfo, month));

  /* Creating the partitions further ahead moves those rows into theirs. */
  long long created = tu_sql_int(w.conninfo, "SELECT chiploc_ensure_partitions(9)");
  ck_assert_int_eq(created, 6);
  ck_assert(relation_exists(w.conninfo, month));
  ck_assert_int_eq(count_rows(w.conninfo, "measurements_default"), 0);
  ck_assert_int_eq(count_rows(w.conninfo, month), 3);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 3);
  /* Idempotent, and argument-checked. */
  ck_assert_int_eq(tu_sql_int(w.conninfo, "SELECT chiploc_ensure_partitions(9)"), 0);
  char e2[512] = "";
  ck_assert_int_ne(tu_sql(w.conninfo, "SELECT chiploc_ensure_partitions(-1)", e2, sizeof e2), 0);
  /* The moved rows keep their unique constraint and still verify. */
  ck_assert_int_eq(cl_store_insert_measurements(w.s, w.lm_id, rows, 1, err, sizeof err),
                   CL_EEXIST);
  long long bad = -1;
  ck_assert_int_eq(reverify(w.conninfo, &bad, &rows[1]), 3);
  ck_assert_int_eq(bad, 0);
  free(month);
  world_fini(&w);
}
END_TEST

/* A database as releases before 0005 left it, partitions included. */
static void migrate_before_0005(const char *ci) {
  tu_migrate_before(ci, "0005_protocol_v2.sql");
  ck_assert_int_eq(tu_sql_int(ci, "SELECT chiploc_ensure_partitions(3)"), 4);
}

/* A protocol 1 row as releases before 0005 stored it, measured `age` ago
 * (a PostgreSQL interval, negative for the future). */
static void insert_v1(const char *ci, int64_t chip_id, int64_t landmark_id, int nonce_byte,
                      const char *age) {
  char sql[1024], err[512] = "";
  snprintf(sql, sizeof sql,
           "INSERT INTO measurements (chip_id, landmark_id, nonce, seq, issued_at_ns,"
           " challenge_sig, chip_sig, rtt_ns, bound_m, est_speed_m_s, est_bound_m, probe_count,"
           " probes_sent, measured_at, measured_at_ns, landmark_sig) VALUES (%" PRId64
           ", %" PRId64 ", decode(repeat('%02x', 32), 'hex'), 7, 1, decode(repeat('02', 64),"
           " 'hex'), decode(repeat('03', 64), 'hex'), 1000, 150, 2e8, 100, 3, 5,"
           " now() - interval '%s', 1, decode(repeat('04', 64), 'hex'))",
           chip_id, landmark_id, nonce_byte, age);
  ck_assert_msg(tu_sql(ci, sql, err, sizeof err) == 0, "%s: %s", sql, err);
}

START_TEST(test_upgrade_keeps_v1_rows) {
  /* A database of the previous release holds protocol 1 rows in a monthly
   * partition, in the default partition and in landmark_links. Migration
   * 0005 marks them protocol 1 and keeps them; new rows are protocol 2. */
  char *ci = tu_db_create("cl_store_upgrade");
  migrate_before_0005(ci);
  cl_store *s = connect_or_fail(ci);
  cl_key *lm = NULL, *peer = NULL, *chip = NULL;
  ck_assert_int_eq(cl_key_generate(&lm), CL_OK);
  ck_assert_int_eq(cl_key_generate(&peer), CL_OK);
  ck_assert_int_eq(cl_key_generate(&chip), CL_OK);
  int64_t lm_id = add_landmark(s, "lm-frankfurt", lm, 50.11, 8.68);
  int64_t peer_id = add_landmark(s, "lm-paris", peer, 48.8566, 2.3522);
  int64_t chip_id = enroll_chip(s, "A-0001", chip);
  insert_v1(ci, chip_id, lm_id, 0x11, "10 minutes");
  insert_v1(ci, chip_id, lm_id, 0x12, "-240 days");
  char sql[1024], err[512] = "";
  snprintf(sql, sizeof sql,
           "INSERT INTO landmark_links (from_landmark_id, to_landmark_id, nonce, seq,"
           " issued_at_ns, challenge_sig, chip_sig, rtt_ns, bound_m, probe_count, probes_sent,"
           " measured_at, measured_at_ns, landmark_sig) VALUES (%" PRId64 ", %" PRId64 ","
           " decode(repeat('13', 32), 'hex'), 1, 1, decode(repeat('02', 64), 'hex'),"
           " decode(repeat('03', 64), 'hex'), 5000000, 749481, 4, 5, now(), 1,"
           " decode(repeat('04', 64), 'hex'))",
           lm_id, peer_id);
  ck_assert_msg(tu_sql(ci, sql, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(count_rows(ci, "measurements_default"), 1);

  int applied = -1;
  ck_assert_msg(cl_store_migrate(s, &applied, err, sizeof err) == CL_OK, "%s", err);
  /* 0005 and every migration after it. */
  ck_assert_int_eq(applied, cl_schema_migration_count - 4);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM measurements WHERE protocol = 1"
                                  " AND challenge_sig IS NOT NULL AND handshake IS NULL"),
                   2);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM landmark_links WHERE protocol = 1"), 1);
  /* Every partition, the default one included, has the new columns' default
   * and checks, as has landmark_links. */
  long long parts = tu_sql_int(ci, "SELECT count(*) FROM pg_inherits"
                                   " WHERE inhparent = 'measurements'::regclass");
  ck_assert_int_ge(parts, 5);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM pg_inherits i"
                                  " JOIN pg_attribute a ON a.attrelid = i.inhrelid"
                                  "  AND a.attname = 'protocol' AND a.attnotnull"
                                  " JOIN pg_attrdef d ON d.adrelid = i.inhrelid"
                                  "  AND d.adnum = a.attnum"
                                  " WHERE i.inhparent = 'measurements'::regclass"
                                  "  AND pg_get_expr(d.adbin, d.adrelid) = '2'"),
                   parts);
  static const char *const checks[] = {"measurements_protocol", "measurements_v1_columns",
                                       "measurements_v2_columns", "measurements_v2_probes"};
  for (size_t k = 0; k < sizeof checks / sizeof checks[0]; k++) {
    char *v = sql_text(ci,
                       "SELECT count(*) FROM pg_inherits i JOIN pg_constraint c"
                       " ON c.conrelid = i.inhrelid WHERE i.inhparent = 'measurements'::regclass"
                       " AND c.conname = '%s'",
                       checks[k]);
    ck_assert_msg(v && atoll(v) == parts, "%s on %s of %lld partitions", checks[k], v, parts);
    free(v);
  }
  /* The checks hold in the default partition too, inserted into directly. */
  ck_assert_int_ne(tu_sql(ci,
                          "INSERT INTO measurements_default (chip_id, landmark_id, nonce, seq,"
                          " rtt_ns, bound_m, est_speed_m_s, est_bound_m, probe_count,"
                          " probes_sent, measured_at, measured_at_ns, landmark_sig)"
                          " SELECT c.id, l.id, decode(repeat('14', 32), 'hex'), 1, 5, 1, 2e8,"
                          " 1, 3, 5, now() + interval '5 years', 1,"
                          " decode(repeat('04', 64), 'hex') FROM chips c, landmarks l LIMIT 1",
                          err, sizeof err),
                   0);
  ck_assert_msg(strstr(err, "measurements_v2_columns"), "%s", err);

  /* New rows are protocol 2 and re-verify; the old ones read back as what
   * they are. */
  cl_store_row rows[3];
  uint64_t t = now_unix_ns();
  for (int i = 0; i < 3; i++) make_row(&rows[i], lm, chip, chip_id, (uint64_t)i, t + (uint64_t)i);
  ck_assert_msg(cl_store_insert_measurements(s, lm_id, rows, 3, err, sizeof err) == CL_OK, "%s",
                err);
  long long bad = -1;
  ck_assert_int_eq(reverify_sql(ci, STORED_MEASUREMENTS " WHERE m.protocol = 2", &bad, &rows[2]),
                   3);
  ck_assert_int_eq(bad, 0);
  PGconn *c = PQconnectdb(ci);
  ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
  PGresult *r = query_binary(c, STORED_MEASUREMENTS " WHERE m.protocol = 1");
  ck_assert_int_eq(PQntuples(r), 2);
  cl_store_cols cols = cl_store_cols_at(S_REC);
  cl_measurement m;
  ck_assert_int_eq(cl_store_row_measurement(r, 0, &cols, cl_key_public(lm), cl_key_public(chip),
                                            &m, err, sizeof err),
                   CL_EMALFORMED);
  ck_assert_msg(strstr(err, "column protocol is 1: not a protocol 2 record"), "%s", err);
  PQclear(r);
  PQfinish(c);
  /* The view `chiploc measurements` reads shows protocol 2 rows only. */
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM measurement_log"), 3);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT min(rtt_ns) FROM measurement_log"),
                   (long long)rows[0].m.rtt_ns);

  /* A partition made later takes the protocol 1 row of the default
   * partition over unchanged. */
  ck_assert_int_eq(tu_sql_int(ci, "SELECT chiploc_ensure_partitions(9)"), 6);
  ck_assert_int_eq(count_rows(ci, "measurements_default"), 0);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM measurements WHERE protocol = 1"
                                  " AND nonce = decode(repeat('12', 32), 'hex')"
                                  " AND challenge_sig IS NOT NULL"),
                   1);
  ck_assert_int_eq(count_rows(ci, "measurements"), 5);
  cl_key_destroy(&lm);
  cl_key_destroy(&peer);
  cl_key_destroy(&chip);
  cl_store_destroy(&s);
  free(ci);
}
END_TEST

/* ---- enrolment ----------------------------------------------------------- */

START_TEST(test_landmark_add_find) {
  char *ci = NULL;
  cl_store *s = fresh_db("cl_store_landmarks", &ci);
  cl_key *a = NULL, *b = NULL, *c = NULL;
  ck_assert_int_eq(cl_key_generate(&a), CL_OK);
  ck_assert_int_eq(cl_key_generate(&b), CL_OK);
  ck_assert_int_eq(cl_key_generate(&c), CL_OK);
  int64_t ida = add_landmark(s, "lm-paris", a, 48.8566, 2.3522);
  int64_t idb = add_landmark(s, "lm-sydney", b, -33.8688, 151.2093);
  ck_assert_int_ne(ida, idb);

  int64_t found = 0;
  char err[512] = "";
  ck_assert_int_eq(cl_store_landmark_find(s, cl_key_public(a), &found, err, sizeof err), CL_OK);
  ck_assert_int_eq(found, ida);
  ck_assert_int_eq(cl_store_landmark_find(s, cl_key_public(b), &found, err, sizeof err), CL_OK);
  ck_assert_int_eq(found, idb);
  ck_assert_int_eq(cl_store_landmark_find(s, cl_key_public(c), &found, err, sizeof err),
                   CL_ENOTFOUND);
  /* The position is stored as given. */
  char *lat = sql_text(ci, "SELECT lat FROM landmarks WHERE id = %" PRId64, idb);
  ck_assert_double_eq(strtod(lat, NULL), -33.8688);
  free(lat);

  /* Same name with another key, and same key with another name. */
  int64_t id = 0;
  err[0] = '\0';
  ck_assert_int_eq(
      cl_store_landmark_add(s, "lm-paris", cl_key_public(c), 1, 2, &id, err, sizeof err),
      CL_EEXIST);
  ck_assert_msg(strstr(err, "landmark lm-paris already exists (key ") != NULL, "%s", err);
  ck_assert_int_eq(
      cl_store_landmark_add(s, "lm-other", cl_key_public(a), 1, 2, &id, err, sizeof err),
      CL_EEXIST);
  ck_assert_msg(strstr(err, " already belongs to landmark lm-paris; one key, one landmark") != NULL,
                "%s", err);
  /* Bad keys and names. */
  uint8_t zero[CL_PK_LEN] = {0};
  ck_assert_int_eq(cl_store_landmark_add(s, "lm-zero", zero, 1, 2, &id, err, sizeof err),
                   CL_EINVAL);
  ck_assert_int_eq(cl_store_landmark_add(s, "", cl_key_public(c), 1, 2, &id, err, sizeof err),
                   CL_EINVAL);
  ck_assert_int_eq(count_rows(ci, "landmarks"), 2);
  /* The connection is still usable after the failures. */
  add_landmark(s, "lm-third", c, 0, 0);
  ck_assert_int_eq(count_rows(ci, "landmarks"), 3);

  cl_key_destroy(&a);
  cl_key_destroy(&b);
  cl_key_destroy(&c);
  cl_store_destroy(&s);
  free(ci);
}
END_TEST

START_TEST(test_bad_coordinates) {
  char *ci = NULL;
  cl_store *s = fresh_db("cl_store_coords", &ci);
  cl_key *k = NULL;
  ck_assert_int_eq(cl_key_generate(&k), CL_OK);
  static const double bad[][2] = {{91, 0},     {-90.0001, 0}, {0, 180.5},    {0, -181},
                                  {NAN, 0},    {0, NAN},      {INFINITY, 0}, {0, -INFINITY}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t id = 0;
    char err[512] = "";
    int rc =
        cl_store_landmark_add(s, "lm-bad", cl_key_public(k), bad[i][0], bad[i][1], &id, err,
                              sizeof err);
    ck_assert_msg(rc == CL_EINVAL, "landmark (%g, %g): %d", bad[i][0], bad[i][1], rc);
    ck_assert_msg(strstr(err, "itude") != NULL, "message does not name the value: %s", err);
    rc = cl_store_chip_enroll(s, cl_key_public(k), "S-bad", "op", bad[i][0], bad[i][1], &id, err,
                              sizeof err);
    ck_assert_msg(rc == CL_EINVAL, "chip (%g, %g): %d", bad[i][0], bad[i][1], rc);
  }
  char err[512] = "";
  int64_t id = 0;
  cl_store_landmark_add(s, "lm-bad", cl_key_public(k), 91, 0, &id, err, sizeof err);
  ck_assert_msg(strstr(err, "91") != NULL, "%s", err);
  ck_assert_int_eq(count_rows(ci, "landmarks"), 0);
  ck_assert_int_eq(count_rows(ci, "chips"), 0);
  /* The limits themselves are valid, and the schema refuses what C would. */
  add_landmark(s, "lm-pole", k, 90, -180);
  ck_assert_int_ne(tu_sql(ci,
                          "INSERT INTO chips (public_key, serial, operator, site_lat, site_lon) "
                          "VALUES (decode(repeat('ab', 32), 'hex'), 's', 'o', 'NaN', 0)",
                          err, sizeof err),
                   0);
  ck_assert_msg(strstr(err, "check constraint") != NULL, "%s", err);
  ck_assert_int_ne(tu_sql(ci,
                          "INSERT INTO chips (public_key, serial, operator, site_lat, site_lon) "
                          "VALUES (decode(repeat('ab', 31), 'hex'), 's', 'o', 0, 0)",
                          err, sizeof err),
                   0);
  cl_key_destroy(&k);
  cl_store_destroy(&s);
  free(ci);
}
END_TEST

START_TEST(test_chip_enroll_load) {
  char *ci = NULL;
  cl_store *s = fresh_db("cl_store_chips", &ci);
  cl_store_chip *chips = NULL;
  size_t n = 99;
  char err[512] = "";
  ck_assert_int_eq(cl_store_load_chips(s, &chips, &n, err, sizeof err), CL_OK);
  ck_assert_uint_eq(n, 0);
  free(chips);

  cl_key *a = NULL, *b = NULL, *c = NULL;
  ck_assert_int_eq(cl_key_generate(&a), CL_OK);
  ck_assert_int_eq(cl_key_generate(&b), CL_OK);
  ck_assert_int_eq(cl_key_generate(&c), CL_OK);
  int64_t ida = enroll_chip(s, "A-0001", a);
  int64_t idb = enroll_chip(s, "B-0002", b);

  int64_t id = 0;
  ck_assert_int_eq(cl_store_chip_enroll(s, cl_key_public(a), "A-other", "op", 1, 2, &id, err,
                                        sizeof err),
                   CL_EEXIST);
  ck_assert_int_eq(cl_store_chip_enroll(s, cl_key_public(c), "A-0001", "op", 1, 2, &id, err,
                                        sizeof err),
                   CL_EEXIST);
  ck_assert_int_eq(cl_store_chip_enroll(s, cl_key_public(c), "", "op", 1, 2, &id, err, sizeof err),
                   CL_EINVAL);
  ck_assert_int_eq(cl_store_chip_enroll(s, cl_key_public(c), "C", "", 1, 2, &id, err, sizeof err),
                   CL_EINVAL);
  assert_allowed(ci, "UPDATE chips SET active = false WHERE serial = 'B-0002'");

  ck_assert_int_eq(cl_store_load_chips(s, &chips, &n, err, sizeof err), CL_OK);
  ck_assert_uint_eq(n, 2);
  ck_assert_int_eq(chips[0].id, ida);
  ck_assert_mem_eq(chips[0].pk, cl_key_public(a), CL_PK_LEN);
  ck_assert_int_eq(chips[0].active, 1);
  ck_assert_int_eq(chips[1].id, idb);
  ck_assert_mem_eq(chips[1].pk, cl_key_public(b), CL_PK_LEN);
  ck_assert_int_eq(chips[1].active, 0);
  free(chips);

  char *site = sql_text(ci, "SELECT site_lat || ',' || site_lon || ',' || operator FROM chips "
                            "WHERE serial = 'A-0001'");
  ck_assert_str_eq(site, "50.11,8.68,Example Operator");
  free(site);

  cl_key_destroy(&a);
  cl_key_destroy(&b);
  cl_key_destroy(&c);
  cl_store_destroy(&s);
  free(ci);
}
END_TEST

/* ---- measurements -------------------------------------------------------- */

#define BATCH 200

START_TEST(test_insert_batch_reverifies) {
  world w;
  world_init(&w, "cl_store_batch");
  static cl_store_row rows[BATCH];
  /* Nanosecond times that are not whole microseconds, as a clock gives. */
  uint64_t t0 = now_unix_ns() - (uint64_t)BATCH * 1000003u;
  for (int i = 0; i < BATCH; i++)
    make_row(&rows[i], w.lm, i % 2 ? w.chip_b : w.chip_a, i % 2 ? w.b_id : w.a_id,
             (uint64_t)i + 1, t0 + (uint64_t)i * 1000003u + 789u);
  char err[512] = "";
  ck_assert_msg(cl_store_insert_measurements(w.s, w.lm_id, rows, BATCH, err, sizeof err) == CL_OK,
                "%s", err);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), BATCH);
  /* Empty batches are a no-op. */
  ck_assert_int_eq(cl_store_insert_measurements(w.s, w.lm_id, rows, 0, err, sizeof err), CL_OK);

  long long bad = -1;
  ck_assert_int_eq(reverify(w.conninfo, &bad, &rows[41]), BATCH);
  ck_assert_int_eq(bad, 0);
  /* measured_at is the signed time truncated to the microsecond. */
  char *ts = sql_text(w.conninfo,
                      "SELECT count(*) FROM measurements WHERE "
                      "(extract(epoch FROM measured_at) * 1000000)::bigint = "
                      "measured_at_ns / 1000");
  ck_assert_str_eq(ts, "200");
  free(ts);

  world_fini(&w);
}
END_TEST

START_TEST(test_insert_all_or_nothing) {
  world w;
  world_init(&w, "cl_store_atomic");
  enum { N = 50 };
  static cl_store_row rows[N];
  uint64_t t = now_unix_ns();
  for (int i = 0; i < N; i++)
    make_row(&rows[i], w.lm, w.chip_a, w.a_id, (uint64_t)i, t + (uint64_t)i);
  char err[512] = "";

  /* A row naming a chip that does not exist sinks the whole batch. */
  rows[37].chip_id = w.b_id + 1000;
  ck_assert_int_eq(cl_store_insert_measurements(w.s, w.lm_id, rows, N, err, sizeof err),
                   CL_ENOTFOUND);
  ck_assert_msg(strstr(err, "inserting measurements") && strstr(err, "chip"), "%s", err);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 0);
  rows[37].chip_id = w.a_id;

  /* A nonce twice in one batch: nothing is stored either. */
  cl_store_row dup[2] = {rows[0], rows[0]};
  ck_assert_int_eq(cl_store_insert_measurements(w.s, w.lm_id, dup, 2, err, sizeof err), CL_EEXIST);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 0);

  /* The connection is usable after the failures, and the batch goes in. */
  ck_assert_int_eq(cl_store_ok(w.s), 1);
  ck_assert_msg(cl_store_insert_measurements(w.s, w.lm_id, rows, N, err, sizeof err) == CL_OK,
                "%s", err);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), N);

  /* Replaying a committed batch, or a batch overlapping it, adds nothing. */
  ck_assert_int_eq(cl_store_insert_measurements(w.s, w.lm_id, rows, N, err, sizeof err),
                   CL_EEXIST);
  cl_store_row more[2];
  make_row(&more[0], w.lm, w.chip_b, w.b_id, 1000, t);
  more[1] = rows[N - 1];
  ck_assert_int_eq(cl_store_insert_measurements(w.s, w.lm_id, more, 2, err, sizeof err),
                   CL_EEXIST);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), N);
  world_fini(&w);
}
END_TEST

START_TEST(test_insert_refuses_bad_rows) {
  world w;
  world_init(&w, "cl_store_badrows");
  cl_store_row rows[3];
  uint64_t t = now_unix_ns();
  for (int i = 0; i < 3; i++)
    make_row(&rows[i], w.lm, w.chip_a, w.a_id, (uint64_t)i, t + (uint64_t)i);
  char err[512] = "";
  cl_store_row keep = rows[2];

  /* Each refusal names the row and the field. */
  static const struct {
    int field;
    const char *needle;
  } cases[] = {
      {0, "rtt_ns 0 is not the smallest"},
      {1, "exceeds 2^63-1"},
      {2, "est_speed"},
      {3, "count 0 is not within 1..16"},
      {4, "count 17 is not within 1..16"},
      {5, "suite 7 is unknown"},
      {6, "probes_sent 2 is below count 3"},
      {7, "does not follow"},
      {8, "chip id must be positive"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    rows[2] = keep;
    cl_measurement *m = &rows[2].m;
    switch (cases[c].field) {
    case 0: m->rtt_ns = 0; break;
    case 1: /* the fastest probe's seq goes to a bigint column */
      m->probes[1].seq = (uint64_t)INT64_MAX + 1u;
      m->probes[2].seq = (uint64_t)INT64_MAX + 2u;
      break;
    case 2: rows[2].est_speed = CL_SPEED_C * 1.5; break;
    case 3: m->count = 0; break;
    case 4: m->count = CL_MAX_BURST + 1; break;
    case 5: m->hs.suite = 7; break;
    case 6: m->probes_sent = 2; break;
    case 7: m->probes[2].seq = m->probes[1].seq; break;
    default: rows[2].chip_id = 0; break;
    }
    err[0] = '\0';
    ck_assert_int_eq(cl_store_insert_measurements(w.s, w.lm_id, rows, 3, err, sizeof err),
                     CL_EINVAL);
    ck_assert_msg(strstr(err, "measurement 2: ") && strstr(err, cases[c].needle), "case %zu: %s",
                  c, err);
  }
  rows[2] = keep;

  /* Records signed by another landmark's key, in the batch or under an id. */
  cl_key *other = NULL;
  ck_assert_int_eq(cl_key_generate(&other), CL_OK);
  int64_t other_id = add_landmark(w.s, "lm-other", other, 1, 1);
  make_row(&rows[2], other, w.chip_a, w.a_id, 2, t);
  ck_assert_int_eq(cl_store_insert_measurements(w.s, w.lm_id, rows, 3, err, sizeof err),
                   CL_EINVAL);
  rows[2] = keep;
  ck_assert_int_eq(cl_store_insert_measurements(w.s, other_id, rows, 3, err, sizeof err),
                   CL_EINVAL);
  ck_assert_int_eq(cl_store_insert_measurements(w.s, other_id + 100, rows, 3, err, sizeof err),
                   CL_ENOTFOUND);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 0);
  ck_assert_msg(cl_store_insert_measurements(w.s, w.lm_id, rows, 3, err, sizeof err) == CL_OK,
                "%s", err);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 3);
  cl_key_destroy(&other);
  world_fini(&w);
}
END_TEST

START_TEST(test_links_reverify) {
  /* Landmark links take the same records, with the probed landmark's key in
   * the chip's part. */
  world w;
  world_init(&w, "cl_store_links");
  cl_key *peer = NULL;
  ck_assert_int_eq(cl_key_generate(&peer), CL_OK);
  int64_t peer_id = add_landmark(w.s, "lm-paris", peer, 48.8566, 2.3522);
  cl_store_row rows[4];
  uint64_t t = now_unix_ns();
  for (int i = 0; i < 4; i++) {
    make_row(&rows[i], w.lm, peer, peer_id, (uint64_t)i, t + (uint64_t)i);
    rows[i].is_link = 1;
  }
  char err[512] = "";
  ck_assert_msg(cl_store_insert_links(w.s, w.lm_id, rows, 4, err, sizeof err) == CL_OK, "%s",
                err);
  ck_assert_int_eq(count_rows(w.conninfo, "landmark_links"), 4);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 0);
  long long bad = -1;
  ck_assert_int_eq(reverify_sql(w.conninfo, STORED_LINKS, &bad, &rows[3]), 4);
  ck_assert_int_eq(bad, 0);
  ck_assert_int_eq(tu_sql_int(w.conninfo, "SELECT count(*) FROM landmark_links WHERE protocol = 2"
                                          " AND issued_at_ns IS NULL AND chip_sig IS NULL"),
                   4);
  /* Replayed: refused as stored already. */
  ck_assert_int_eq(cl_store_insert_links(w.s, w.lm_id, rows, 1, err, sizeof err), CL_EEXIST);
  cl_key_destroy(&peer);
  world_fini(&w);
}
END_TEST

/* Reads row 0 of "SELECT <landmark key>, <chip key>, <exprs>" over the
 * stored measurements, whose ten record columns are exprs[0..9], with
 * cl_store_row_measurement into *m; binary or text results. */
static int read_variant(const char *conninfo, const char *const exprs[CL_STORE_RECORD_NCOLS],
                        int binary, int protocol_col, cl_measurement *m, char *err,
                        size_t errlen) {
  char sql[2048];
  int k = snprintf(sql, sizeof sql, "SELECT l.public_key, ch.public_key");
  for (int i = 0; i < CL_STORE_RECORD_NCOLS; i++)
    k += snprintf(sql + k, sizeof sql - (size_t)k, ", %s", exprs[i]);
  snprintf(sql + k, sizeof sql - (size_t)k,
           " FROM measurements m JOIN landmarks l ON l.id = m.landmark_id"
           " JOIN chips ch ON ch.id = m.chip_id LIMIT 1");
  PGconn *c = PQconnectdb(conninfo);
  ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, binary);
  ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
  ck_assert_int_eq(PQntuples(r), 1);
  cl_store_cols cols = cl_store_cols_at(2);
  cols.protocol = protocol_col;
  uint8_t lpk[CL_PK_LEN], cpk[CL_PK_LEN];
  memset(lpk, 0, sizeof lpk);
  memset(cpk, 0, sizeof cpk);
  if (binary) {
    memcpy(lpk, PQgetvalue(r, 0, 0), CL_PK_LEN);
    memcpy(cpk, PQgetvalue(r, 0, 1), CL_PK_LEN);
  }
  err[0] = '\0';
  int rc = cl_store_row_measurement(r, 0, &cols, lpk, cpk, m, err, errlen);
  PQclear(r);
  PQfinish(c);
  return rc;
}

START_TEST(test_row_measurement_strict) {
  /* Every record column is checked for NULL, format, length and range, and
   * the message names the column. */
  world w;
  world_init(&w, "cl_store_strict");
  cl_store_row row;
  make_row(&row, w.lm, w.chip_a, w.a_id, 1, now_unix_ns());
  char err[512] = "";
  ck_assert_msg(cl_store_insert_measurements(w.s, w.lm_id, &row, 1, err, sizeof err) == CL_OK,
                "%s", err);
  const char *const good[CL_STORE_RECORD_NCOLS] = {
      "m.protocol", "m.suite",       "m.handshake",   "m.probes",      "m.transcript_sig",
      "m.landmark_sig", "m.rtt_ns", "m.probe_count", "m.probes_sent", "m.measured_at_ns"};
  cl_measurement m;
  ck_assert_msg(read_variant(w.conninfo, good, 1, 2, &m, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_int_eq(cl_measurement_verify(&m), CL_OK);
  ck_assert_mem_eq(m.sig, row.m.sig, CL_SIG_LEN);
  /* Text results are refused, not misread. */
  ck_assert_int_eq(read_variant(w.conninfo, good, 0, 2, &m, err, sizeof err), CL_EMALFORMED);
  ck_assert_msg(strstr(err, "column protocol is not in binary format"), "%s", err);

  static const struct {
    int col;
    const char *expr, *needle;
  } bad[] = {
      {0, "1::smallint AS protocol", "column protocol is 1: not a protocol 2 record"},
      {0, "m.protocol::integer AS protocol", "column protocol is 4 bytes, expected 2"},
      {1, "NULL::integer AS suite", "column suite is NULL"},
      {1, "-1 AS suite", "column suite is -1, outside [0, 2147483647]"},
      {2, "substring(m.handshake from 2) AS handshake",
       "column handshake is 255 bytes, expected 256"},
      {3, "m.probes || '\\x00'::bytea AS probes", "column probes is 241 bytes, expected 240"},
      {3, "substring(m.probes from 81) AS probes", "column probes is 160 bytes, expected 240"},
      {4, "NULL::bytea AS transcript_sig", "column transcript_sig is NULL"},
      {5, "substring(m.landmark_sig from 1 for 32) AS landmark_sig",
       "column landmark_sig is 32 bytes, expected 64"},
      {6, "m.rtt_ns::integer AS rtt_ns", "column rtt_ns is 4 bytes, expected 8"},
      {6, "-m.rtt_ns AS rtt_ns", "column rtt_ns is -"},
      {7, "17 AS probe_count", "column probe_count is 17, outside [1, 16]"},
      {7, "0 AS probe_count", "column probe_count is 0, outside [1, 16]"},
      {7, "2 AS probe_count", "column probes is 240 bytes, expected 160"},
      {8, "NULL::integer AS probes_sent", "column probes_sent is NULL"},
      {9, "-1::bigint AS measured_at_ns", "column measured_at_ns is -1"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *exprs[CL_STORE_RECORD_NCOLS];
    memcpy(exprs, good, sizeof exprs);
    exprs[bad[i].col] = bad[i].expr;
    ck_assert_int_eq(read_variant(w.conninfo, exprs, 1, 2, &m, err, sizeof err), CL_EMALFORMED);
    ck_assert_msg(strstr(err, bad[i].needle), "case %zu (%s): %s", i, bad[i].expr, err);
  }
  const char *exprs[CL_STORE_RECORD_NCOLS];
  memcpy(exprs, good, sizeof exprs);
  /* A query that selects protocol 2 rows only need not name the protocol. */
  exprs[0] = "1::smallint AS protocol";
  ck_assert_msg(read_variant(w.conninfo, exprs, 1, -1, &m, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_int_eq(cl_measurement_verify(&m), CL_OK);
  /* A changed entry reads, but no longer verifies. */
  exprs[0] = good[0];
  exprs[3] = "overlay(m.probes placing '\\xff'::bytea from 100) AS probes";
  ck_assert_msg(read_variant(w.conninfo, exprs, 1, 2, &m, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_int_eq(cl_measurement_verify(&m), CL_EBADSIG);
  /* Column numbers outside the result, a row outside it. */
  PGconn *c = PQconnectdb(w.conninfo);
  PGresult *r = query_binary(c, "SELECT " CL_STORE_RECORD_COLUMNS("m") " FROM measurements m");
  cl_store_cols cols = cl_store_cols_at(0);
  ck_assert_int_eq(cl_store_row_measurement(r, 0, &cols, cl_key_public(w.lm),
                                            cl_key_public(w.chip_a), &m, err, sizeof err),
                   CL_OK);
  cols.measured_at_ns = CL_STORE_RECORD_NCOLS;
  ck_assert_int_eq(cl_store_row_measurement(r, 0, &cols, cl_key_public(w.lm),
                                            cl_key_public(w.chip_a), &m, err, sizeof err),
                   CL_EINVAL);
  cols = cl_store_cols_at(0);
  ck_assert_int_eq(cl_store_row_measurement(r, 1, &cols, cl_key_public(w.lm),
                                            cl_key_public(w.chip_a), &m, err, sizeof err),
                   CL_EINVAL);
  PQclear(r);
  PQfinish(c);
  world_fini(&w);
}
END_TEST

START_TEST(test_lost_connection) {
  world w;
  world_init(&w, "cl_store_lost");
  cl_store_row row;
  make_row(&row, w.lm, w.chip_a, w.a_id, 1, now_unix_ns());
  /* The server ends our session, as a restart would. */
  char sql[256], err[512] = "";
  snprintf(sql, sizeof sql,
           "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = "
           "'cl_store_lost' AND pid <> pg_backend_pid()");
  ck_assert_msg(tu_sql(w.conninfo, sql, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(cl_store_insert_measurements(w.s, w.lm_id, &row, 1, err, sizeof err), CL_EDB);
  ck_assert_int_eq(cl_store_ok(w.s), 0);
  ck_assert_int_eq(cl_store_reset(w.s), CL_OK);
  ck_assert_int_eq(cl_store_ok(w.s), 1);
  ck_assert_msg(cl_store_insert_measurements(w.s, w.lm_id, &row, 1, err, sizeof err) == CL_OK,
                "%s", err);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 1);
  /* A database that is not there is CL_EDB with libpq's reason. */
  cl_store *none = NULL;
  ck_assert_int_eq(cl_store_connect(&none, "host=/nonexistent dbname=x", err, sizeof err), CL_EDB);
  ck_assert_ptr_null(none);
  ck_assert_msg(strstr(err, "/nonexistent") != NULL, "%s", err);
  world_fini(&w);
}
END_TEST

/* ---- roles --------------------------------------------------------------- */

START_TEST(test_landmark_role) {
  world w;
  world_init(&w, "cl_store_role_lm");
  char *lm = login_member(w.conninfo, "lm_test", "chiploc_landmark");
  char err[512] = "";

  /* A login not bound to its landmark writes nothing, and says how to fix
   * it. */
  cl_store *s = connect_or_fail(lm);
  ck_assert_int_eq(cl_store_landmark_may_write(s, w.lm_id, err, sizeof err), CL_EPERM);
  ck_assert_msg(strstr(err, "chiploc landmark bind --name lm-frankfurt --db-role lm_test"), "%s",
                err);
  ck_assert_int_eq(cl_store_landmark_bind(w.s, "lm-nowhere", "lm_test", err, sizeof err),
                   CL_ENOTFOUND);
  /* A group role is refused: each of its members could SET ROLE to it. */
  ck_assert_int_eq(cl_store_landmark_bind(w.s, "lm-frankfurt", "chiploc_landmark", err,
                                          sizeof err),
                   CL_EINVAL);
  ck_assert_msg(strstr(err, "cannot log in"), "%s", err);
  ck_assert_int_eq(cl_store_landmark_bind(w.s, "lm-frankfurt", "no_such_role_x", err, sizeof err),
                   CL_ENOTFOUND);
  ck_assert_msg(cl_store_landmark_bind(w.s, "lm-frankfurt", "lm_test", err, sizeof err) == CL_OK,
                "%s", err);
  ck_assert_int_eq(cl_store_landmark_may_write(s, w.lm_id, err, sizeof err), CL_OK);

  /* What a landmark does: read the enrolled chips and landmarks, and append
   * measurements with COPY. */
  cl_store_chip *chips = NULL;
  size_t n = 0;
  ck_assert_msg(cl_store_load_chips(s, &chips, &n, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_uint_eq(n, 2);
  free(chips);
  int64_t found = 0;
  ck_assert_int_eq(cl_store_landmark_find(s, cl_key_public(w.lm), &found, err, sizeof err), CL_OK);
  ck_assert_int_eq(found, w.lm_id);
  cl_store_row rows[10];
  uint64_t t = now_unix_ns();
  for (int i = 0; i < 10; i++)
    make_row(&rows[i], w.lm, w.chip_a, w.a_id, (uint64_t)i, t + (uint64_t)i);
  ck_assert_msg(cl_store_insert_measurements(s, w.lm_id, rows, 10, err, sizeof err) == CL_OK, "%s",
                err);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 10);
  assert_allowed(lm, "SELECT count(*) FROM chips");
  assert_allowed(lm, "SELECT count(*) FROM landmarks");
  assert_allowed(lm, "INSERT INTO measurements (" V2_COLUMNS ") SELECT c.id, l.id, "
                     V2_VALUES("01") " FROM chips c, landmarks l LIMIT 1");
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 11);

  /* The attack of a landmark login writing in another landmark's name: the
   * guard refuses rows naming any landmark but its own, by COPY and by
   * INSERT, and links from any landmark but itself. */
  cl_key *other = NULL;
  ck_assert_int_eq(cl_key_generate(&other), CL_OK);
  int64_t other_id = add_landmark(w.s, "lm-paris", other, 48.8566, 2.3522);
  cl_store_row forged;
  make_row(&forged, other, w.chip_a, w.a_id, 99, t);
  ck_assert_int_eq(cl_store_insert_measurements(s, other_id, &forged, 1, err, sizeof err),
                   CL_EPERM);
  ck_assert_msg(strstr(err, "may not write measurements of landmark"), "%s", err);
  char sql2[1024];
  snprintf(sql2, sizeof sql2,
           "INSERT INTO measurements (" V2_COLUMNS ") VALUES (%" PRId64 ", %" PRId64 ","
           V2_VALUES("01") ")",
           w.a_id, other_id);
  ck_assert_int_ne(tu_sql(lm, sql2, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "may not write measurements of landmark"), "%s", err);
  snprintf(sql2, sizeof sql2,
           "INSERT INTO landmark_links (" V2_LINK_COLUMNS ") VALUES (%" PRId64 ", %" PRId64 ","
           V2_LINK_VALUES("01") ")",
           other_id, w.lm_id);
  ck_assert_int_ne(tu_sql(lm, sql2, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "may not write links of landmark"), "%s", err);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 11);
  ck_assert_int_eq(count_rows(w.conninfo, "landmark_links"), 0);

  /* Protocol 1 rows are refused: the landmark may not even name the
   * challenge columns, and a row marked protocol 1 is refused by the guard,
   * whoever inserts it. */
  assert_denied(lm, "INSERT INTO measurements (chip_id, landmark_id, nonce, seq, issued_at_ns,"
                    " challenge_sig, chip_sig, rtt_ns, bound_m, est_speed_m_s, est_bound_m,"
                    " probe_count, measured_at, measured_at_ns, landmark_sig)"
                    " SELECT c.id, l.id, decode(repeat('07', 32), 'hex'), 1, 1,"
                    " decode(repeat('02', 64), 'hex'), decode(repeat('03', 64), 'hex'), 5, 1,"
                    " 2e8, 1, 1, now(), 1, decode(repeat('04', 64), 'hex')"
                    " FROM chips c, landmarks l WHERE l.name = 'lm-frankfurt' LIMIT 1");
  static const char v1_marked[] =
      "INSERT INTO measurements (chip_id, landmark_id, protocol, nonce, seq, rtt_ns, bound_m,"
      " est_speed_m_s, est_bound_m, probe_count, measured_at, measured_at_ns, landmark_sig)"
      " SELECT c.id, l.id, 1, decode(repeat('07', 32), 'hex'), 1, 5, 1, 2e8, 1, 1, now(), 1,"
      " decode(repeat('04', 64), 'hex')"
      " FROM chips c, landmarks l WHERE l.name = 'lm-frankfurt' LIMIT 1";
  ck_assert_int_ne(tu_sql(lm, v1_marked, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "protocol 1 measurements are refused"), "%s", err);
  ck_assert_int_ne(tu_sql(w.conninfo,
                          "INSERT INTO measurements (chip_id, landmark_id, protocol, nonce, seq,"
                          " issued_at_ns, challenge_sig, chip_sig, rtt_ns, bound_m,"
                          " est_speed_m_s, est_bound_m, probe_count, measured_at,"
                          " measured_at_ns, landmark_sig)"
                          " SELECT c.id, l.id, 1, decode(repeat('07', 32), 'hex'), 1, 1,"
                          " decode(repeat('02', 64), 'hex'), decode(repeat('03', 64), 'hex'),"
                          " 5, 1, 2e8, 1, 1, now(), 1, decode(repeat('04', 64), 'hex')"
                          " FROM chips c, landmarks l WHERE l.name = 'lm-frankfurt' LIMIT 1",
                          err, sizeof err),
                   0);
  ck_assert_msg(strstr(err, "protocol 1 measurements are refused"), "%s", err);
  snprintf(sql2, sizeof sql2,
           "INSERT INTO landmark_links (from_landmark_id, to_landmark_id, protocol, nonce, seq,"
           " issued_at_ns, challenge_sig, chip_sig, rtt_ns, bound_m, probe_count, measured_at,"
           " measured_at_ns, landmark_sig) VALUES (%" PRId64 ", %" PRId64 ", 1,"
           " decode(repeat('07', 32), 'hex'), 1, 1, decode(repeat('02', 64), 'hex'),"
           " decode(repeat('03', 64), 'hex'), 5, 1, 1, now(), 1, decode(repeat('04', 64), 'hex'))",
           w.lm_id, other_id);
  ck_assert_int_ne(tu_sql(w.conninfo, sql2, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "protocol 1 links are refused"), "%s", err);

  /* A protocol 2 row is all its columns, each of its length: the checks
   * refuse the rest, for the landmark and the owner alike. */
  static const struct {
    const char *sql, *check;
  } unchecked[] = {
      /* three entries announced, 239 bytes of them */
      {"INSERT INTO measurements (" V2_COLUMNS ") SELECT c.id, l.id, 2, 1,"
       " decode(repeat('08', 32), 'hex'), 1, decode(repeat('02', 256), 'hex'),"
       " decode(repeat('03', 239), 'hex'), decode(repeat('04', 64), 'hex'), 5, 1, 2e8, 1, 3, 5,"
       " now(), 1, decode(repeat('05', 64), 'hex')" LM_FRANKFURT,
       "measurements_v2_probes"},
      /* seventeen entries, one more than a burst holds */
      {"INSERT INTO measurements (" V2_COLUMNS ") SELECT c.id, l.id, 2, 1,"
       " decode(repeat('08', 32), 'hex'), 1, decode(repeat('02', 256), 'hex'),"
       " decode(repeat('03', 17 * 80), 'hex'), decode(repeat('04', 64), 'hex'), 5, 1, 2e8, 1,"
       " 17, 17, now(), 1, decode(repeat('05', 64), 'hex')" LM_FRANKFURT,
       "measurements_v2_probes"},
      /* a handshake one byte short */
      {"INSERT INTO measurements (" V2_COLUMNS ") SELECT c.id, l.id, 2, 1,"
       " decode(repeat('08', 32), 'hex'), 1, decode(repeat('02', 255), 'hex'),"
       " decode(repeat('03', 240), 'hex'), decode(repeat('04', 64), 'hex'), 5, 1, 2e8, 1, 3, 5,"
       " now(), 1, decode(repeat('05', 64), 'hex')" LM_FRANKFURT,
       "measurements_v2_columns"},
      /* no transcript signature */
      {"INSERT INTO measurements (" V2_COLUMNS ") SELECT c.id, l.id, 2, 1,"
       " decode(repeat('08', 32), 'hex'), 1, decode(repeat('02', 256), 'hex'),"
       " decode(repeat('03', 240), 'hex'), NULL, 5, 1, 2e8, 1, 3, 5,"
       " now(), 1, decode(repeat('05', 64), 'hex')" LM_FRANKFURT,
       "measurements_v2_columns"},
      /* probes_sent unknown: it is part of the signed record */
      {"INSERT INTO measurements (" V2_COLUMNS ") SELECT c.id, l.id, 2, 1,"
       " decode(repeat('08', 32), 'hex'), 1, decode(repeat('02', 256), 'hex'),"
       " decode(repeat('03', 240), 'hex'), decode(repeat('04', 64), 'hex'), 5, 1, 2e8, 1, 3,"
       " NULL, now(), 1, decode(repeat('05', 64), 'hex')" LM_FRANKFURT,
       "measurements_v2_columns"},
      /* a link with a transcript signature of 63 bytes */
      {"INSERT INTO landmark_links (" V2_LINK_COLUMNS ") SELECT l.id, p.id, 2, 1,"
       " decode(repeat('08', 32), 'hex'), 1, decode(repeat('02', 256), 'hex'),"
       " decode(repeat('03', 240), 'hex'), decode(repeat('04', 63), 'hex'), 5, 1, 3, 5,"
       " now(), 1, decode(repeat('05', 64), 'hex') FROM landmarks l, landmarks p"
       " WHERE l.name = 'lm-frankfurt' AND p.name = 'lm-paris'",
       "landmark_links_v2_columns"},
  };
  for (size_t i = 0; i < sizeof unchecked / sizeof unchecked[0]; i++) {
    const char *who[2] = {lm, w.conninfo};
    for (int k = 0; k < 2; k++) {
      ck_assert_int_ne(tu_sql(who[k], unchecked[i].sql, err, sizeof err), 0);
      ck_assert_msg(strstr(err, "violates check constraint") && strstr(err, unchecked[i].check),
                    "case %zu: %s", i, err);
    }
  }
  /* The owner may not add the challenge columns to a protocol 2 row. */
  ck_assert_int_ne(tu_sql(w.conninfo,
                          "INSERT INTO measurements (" V2_COLUMNS ", chip_sig) SELECT c.id, l.id,"
                          V2_VALUES("08") ", decode(repeat('09', 64), 'hex')" LM_FRANKFURT,
                          err, sizeof err),
                   0);
  ck_assert_msg(strstr(err, "measurements_v2_columns"), "%s", err);
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 11);
  ck_assert_int_eq(count_rows(w.conninfo, "landmark_links"), 0);
  cl_key_destroy(&other);

  /* Ids and insert times come from the database: a landmark may not name
   * them, and what an owner names is replaced. */
  assert_denied(lm, "INSERT INTO measurements (id, " V2_COLUMNS ") SELECT 1, c.id, l.id,"
                    V2_VALUES("05") LM_FRANKFURT);
  assert_denied(lm, "INSERT INTO measurements (inserted_at, " V2_COLUMNS ")"
                    " SELECT now() - interval '1 day', c.id, l.id," V2_VALUES("05") LM_FRANKFURT);
  ck_assert_msg(tu_sql(w.conninfo,
                       "INSERT INTO measurements (id, inserted_at, inserted_by, " V2_COLUMNS ")"
                       " SELECT 1, '2000-01-01', 'someone', c.id, l.id," V2_VALUES("06")
                       LM_FRANKFURT,
                       err, sizeof err) == 0,
                "%s", err);
  ck_assert_int_eq(tu_sql_int(w.conninfo, "SELECT count(*) FROM measurements WHERE id = 1 OR"
                                          " inserted_at < now() - interval '1 hour' OR"
                                          " inserted_by = 'someone'"),
                   0);
  ck_assert_int_eq(tu_sql_int(w.conninfo, "SELECT count(*) FROM measurements WHERE"
                                          " inserted_by = 'lm_test'"),
                   11);
  ck_assert_int_eq(tu_sql(w.conninfo, "DELETE FROM measurements WHERE nonce ="
                                      " decode(repeat('06', 32), 'hex')", err, sizeof err), 0);

  /* Nothing else: no rewriting history, no enrolment, no reading back. */
  assert_denied(lm, "UPDATE measurements SET rtt_ns = 1");
  assert_denied(lm, "DELETE FROM measurements");
  assert_denied(lm, "TRUNCATE measurements");
  assert_denied(lm, "SELECT count(*) FROM measurements");
  assert_denied(lm, "DELETE FROM chips");
  assert_denied(lm, "UPDATE chips SET active = false");
  assert_denied(lm, "INSERT INTO chips (public_key, serial, operator, site_lat, site_lon)"
                    " VALUES (decode(repeat('ab', 32), 'hex'), 'X', 'o', 0, 0)");
  assert_denied(lm, "DELETE FROM landmarks");
  assert_denied(lm, "DELETE FROM measurements_default");
  char part[64], sql[256];
  partition_name(part, sizeof part, 0);
  snprintf(sql, sizeof sql, "DELETE FROM %s", part);
  assert_denied(lm, sql);
  assert_denied(lm, "SELECT chiploc_ensure_partitions(1)");
  ck_assert_int_eq(count_rows(w.conninfo, "measurements"), 11);
  ck_assert_int_eq(count_rows(w.conninfo, "chips"), 2);

  /* The store reports refusals as CL_EPERM. */
  cl_key *k = NULL;
  ck_assert_int_eq(cl_key_generate(&k), CL_OK);
  int64_t id = 0;
  ck_assert_int_eq(cl_store_chip_enroll(s, cl_key_public(k), "X-1", "op", 0, 0, &id, err,
                                        sizeof err),
                   CL_EPERM);
  ck_assert_msg(strstr(err, "permission denied") != NULL, "%s", err);
  ck_assert_int_eq(cl_store_landmark_add(s, "lm-x", cl_key_public(k), 0, 0, &id, err, sizeof err),
                   CL_EPERM);
  cl_key_destroy(&k);
  cl_store_destroy(&s);
  free(lm);
  world_fini(&w);
}
END_TEST

START_TEST(test_admin_role) {
  world w;
  world_init(&w, "cl_store_role_admin");
  char *adm = login_member(w.conninfo, "admin_test", "chiploc_admin");
  cl_store *s = connect_or_fail(adm);
  cl_key *k = NULL, *ck = NULL;
  ck_assert_int_eq(cl_key_generate(&k), CL_OK);
  ck_assert_int_eq(cl_key_generate(&ck), CL_OK);
  add_landmark(s, "lm-admin", k, 10, 10);
  enroll_chip(s, "C-0003", ck);
  cl_store_row row;
  make_row(&row, w.lm, w.chip_a, w.a_id, 1, now_unix_ns());
  char err[512] = "";
  ck_assert_msg(cl_store_insert_measurements(s, w.lm_id, &row, 1, err, sizeof err) == CL_OK, "%s",
                err);
  assert_allowed(adm, "SELECT count(*) FROM measurements");
  assert_allowed(adm, "UPDATE chips SET active = false WHERE serial = 'C-0003'");
  assert_allowed(adm, "SELECT chiploc_ensure_partitions(4)");
  assert_allowed(adm, "DELETE FROM measurements");
  /* Nobody else: PUBLIC has no grants on chiploc tables. */
  char *nobody = login_member(w.conninfo, "nobody_test", "pg_monitor");
  assert_denied(nobody, "SELECT count(*) FROM chips");
  assert_denied(nobody, "SELECT count(*) FROM landmarks");
  free(nobody);
  cl_key_destroy(&k);
  cl_key_destroy(&ck);
  cl_store_destroy(&s);
  free(adm);
  world_fini(&w);
}
END_TEST

/* Runs sql and asserts the server refuses it with a message containing
 * `needle`. */
static void assert_denied_sqlstate(const char *conninfo, const char *sql, const char *needle) {
  char err[512] = "";
  ck_assert_msg(tu_sql(conninfo, sql, err, sizeof err) != 0, "allowed: %s", sql);
  ck_assert_msg(strstr(err, needle) != NULL, "%s: %s", sql, err);
}

/* ---- regions ------------------------------------------------------------- */

/* Two regions: AAA (a square with a hole, and a triangle from a second
 * feature) and BBB (a square). */
static const char *const regions_geojson =
    "{\"type\":\"FeatureCollection\",\"features\":["
    "{\"type\":\"Feature\",\"properties\":{\"code\":\"AAA\"},\"geometry\":{\"type\":\"Polygon\","
    "\"coordinates\":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}},"
    "{\"type\":\"Feature\",\"properties\":{\"code\":\"BBB\"},\"geometry\":{\"type\":\"MultiPolygon\","
    "\"coordinates\":[[[[20,0],[30,0],[30,10],[20,10],[20,0]]]]}},"
    "{\"type\":\"Feature\",\"properties\":{\"code\":\"AAA\"},\"geometry\":{\"type\":\"Polygon\","
    "\"coordinates\":[[[-10,-10],[-5,-10],[-5,-5],[-10,-10]]]}}]}";

/* Parses text and stores every region through the library, in one
 * transaction. Returns the number of regions. */
static size_t put_regions(cl_store *s, const char *text) {
  cl_region_set set;
  char err[512] = "";
  int rc = cl_region_set_parse_geojson(&set, text, strlen(text), "code", err, sizeof err);
  ck_assert_msg(rc == CL_OK, "%s", err);
  ck_assert_msg(cl_store_begin(s, err, sizeof err) == CL_OK, "%s", err);
  for (size_t i = 0; i < set.n; i++) {
    char *json = NULL;
    ck_assert_int_eq(cl_region_to_geojson(set.regions[i], &json, NULL), CL_OK);
    rc = cl_store_region_put(s, cl_region_code(set.regions[i]), json,
                             cl_region_vertex_count(set.regions[i]), err, sizeof err);
    ck_assert_msg(rc == CL_OK, "%s", err);
    free(json);
  }
  ck_assert_msg(cl_store_commit(s, err, sizeof err) == CL_OK, "%s", err);
  size_t n = set.n;
  cl_region_set_free(&set);
  return n;
}

START_TEST(test_regions) {
  world w;
  world_init(&w, "cl_store_regions");
  char err[512] = "";
  ck_assert_uint_eq(put_regions(w.s, regions_geojson), 2);
  ck_assert_int_eq(count_rows(w.conninfo, "regions"), 2);
  ck_assert_int_eq(tu_sql_int(w.conninfo, "SELECT vertex_count FROM regions WHERE code = 'AAA'"),
                   11);
  char *v = tu_sql_value(w.conninfo, "SELECT geojson->>'type' || ' '"
                                     " || jsonb_array_length(geojson->'coordinates')"
                                     " || ' ' || (imported_at <= now()) FROM regions"
                                     " WHERE code = 'AAA'");
  ck_assert_str_eq(v, "MultiPolygon 2 true");
  free(v);
  /* The stored geometry reads back as the same region. */
  char *json = tu_sql_value(w.conninfo, "SELECT geojson::text FROM regions WHERE code = 'AAA'");
  ck_assert_ptr_nonnull(json);
  cl_region_set back;
  ck_assert_msg(cl_region_set_parse_geojson(&back, json, strlen(json), "code", err, sizeof err) ==
                    CL_OK,
                "%s", err);
  ck_assert_uint_eq(cl_region_vertex_count(back.regions[0]), 11);
  ck_assert_int_eq(cl_region_contains(back.regions[0], 1, 1), 1);
  ck_assert_int_eq(cl_region_contains(back.regions[0], 5, 5), 0);
  ck_assert_int_eq(cl_region_contains(back.regions[0], -8, -9), 1);
  cl_region_set_free(&back);
  free(json);

  /* Importing again replaces geometries (an upsert) and keeps names. */
  assert_allowed(w.conninfo, "UPDATE regions SET name = 'A land' WHERE code = 'AAA'");
  const char *smaller = "{\"type\":\"Feature\",\"properties\":{\"code\":\"AAA\"},\"geometry\":"
                        "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}}";
  ck_assert_uint_eq(put_regions(w.s, smaller), 1);
  ck_assert_int_eq(count_rows(w.conninfo, "regions"), 2);
  ck_assert_int_eq(tu_sql_int(w.conninfo, "SELECT vertex_count FROM regions WHERE code = 'AAA'"),
                   3);
  v = tu_sql_value(w.conninfo, "SELECT name FROM regions WHERE code = 'AAA'");
  ck_assert_str_eq(v, "A land");
  free(v);

  /* Refused geometries and arguments. */
  ck_assert_int_eq(cl_store_region_put(w.s, "CCC", "{\"type\":\"Polygon\",\"coordinates\":[]}", 3,
                                       err, sizeof err),
                   CL_EINVAL);
  ck_assert_int_eq(cl_store_region_put(w.s, "CCC", "{not json", 3, err, sizeof err), CL_EINVAL);
  ck_assert_int_eq(cl_store_region_put(w.s, "", "{}", 3, err, sizeof err), CL_EINVAL);
  ck_assert_int_eq(cl_store_region_put(w.s, "CCC", "{}", 2, err, sizeof err), CL_EINVAL);
  ck_assert_int_eq(count_rows(w.conninfo, "regions"), 2);

  /* A rolled-back transaction leaves nothing; a failed one cannot commit. */
  const char *mp = "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[0,0],[1,0],[1,1],[0,0]]]]}";
  ck_assert_int_eq(cl_store_begin(w.s, err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_store_begin(w.s, err, sizeof err), CL_EINVAL);
  ck_assert_int_eq(cl_store_region_put(w.s, "DDD", mp, 3, err, sizeof err), CL_OK);
  cl_store_rollback(w.s);
  ck_assert_int_eq(count_rows(w.conninfo, "regions"), 2);
  ck_assert_int_eq(cl_store_begin(w.s, err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_store_region_put(w.s, "DDD", mp, 3, err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_store_region_put(w.s, "EEE", "[]", 3, err, sizeof err), CL_EINVAL);
  ck_assert_int_eq(cl_store_commit(w.s, err, sizeof err), CL_EDB);
  ck_assert_int_eq(count_rows(w.conninfo, "regions"), 2);
  ck_assert_int_eq(cl_store_ok(w.s), 1);

  /* Allowed regions of a chip. */
  ck_assert_msg(cl_store_chip_allow(w.s, w.a_id, "AAA", err, sizeof err) == CL_OK, "%s", err);
  ck_assert_int_eq(cl_store_chip_allow(w.s, w.a_id, "AAA", err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_store_chip_allow(w.s, w.a_id, "BBB", err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_store_chip_allow(w.s, w.a_id, "ZZZ", err, sizeof err), CL_ENOTFOUND);
  ck_assert_msg(strstr(err, "no region with code \"ZZZ\"") != NULL, "%s", err);
  ck_assert_int_eq(cl_store_chip_allow(w.s, 999999, "AAA", err, sizeof err), CL_ENOTFOUND);
  ck_assert_msg(strstr(err, "no chip with id 999999") != NULL, "%s", err);
  ck_assert_int_eq(count_rows(w.conninfo, "chip_regions"), 2);
  /* A region in use stays; a chip's rows go with the chip. */
  assert_denied_sqlstate(w.conninfo, "DELETE FROM regions WHERE code = 'AAA'", "foreign key");
  assert_allowed(w.conninfo, "DELETE FROM chips WHERE serial = 'A-0001'");
  ck_assert_int_eq(count_rows(w.conninfo, "chip_regions"), 0);

  /* Roles: a landmark reads regions, an admin manages them. */
  ck_assert_int_eq(cl_store_chip_allow(w.s, w.b_id, "BBB", err, sizeof err), CL_OK);
  char *lm = login_member(w.conninfo, "lm_test", "chiploc_landmark");
  assert_allowed(lm, "SELECT count(*) FROM regions");
  assert_allowed(lm, "SELECT count(*) FROM chip_regions");
  assert_denied(lm, "DELETE FROM chip_regions");
  assert_denied(lm, "UPDATE regions SET name = 'x'");
  assert_denied(lm, "INSERT INTO regions (code, geojson, vertex_count) VALUES ('Q', "
                    "'{\"type\":\"MultiPolygon\",\"coordinates\":[]}', 3)");
  cl_store *ls = connect_or_fail(lm);
  ck_assert_int_eq(cl_store_region_put(ls, "DDD", mp, 3, err, sizeof err), CL_EPERM);
  cl_store_destroy(&ls);
  char *adm = login_member(w.conninfo, "admin_test", "chiploc_admin");
  assert_allowed(adm, "UPDATE regions SET name = 'B land' WHERE code = 'BBB'");
  assert_allowed(adm, "DELETE FROM chip_regions");
  char *nobody = login_member(w.conninfo, "nobody_test", "pg_monitor");
  assert_denied(nobody, "SELECT count(*) FROM regions");
  assert_denied(nobody, "SELECT count(*) FROM chip_regions");
  free(nobody);
  free(adm);
  free(lm);
  world_fini(&w);
}
END_TEST

/* ---- the CLI as a separate process ---------------------------------------- */

/* Runs `chiploc ARGS...` (NULL-terminated) with output to a fresh log file;
 * returns the exit status, and the output through *out (malloc'd). */
static int cli(char **out, const char *dir, ...) {
  static int runs;
  char *argv[32];
  char *bin = tu_bin("server/chiploc");
  int argc = 0;
  argv[argc++] = bin;
  va_list ap;
  va_start(ap, dir);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && argc < 31) argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  char log[512];
  snprintf(log, sizeof log, "%s/run%d.log", dir, runs++);
  int rc = tu_run(argv, log);
  *out = tu_read_file(log);
  ck_assert_ptr_nonnull(*out);
  free(bin);
  return rc;
}

#define EXPECT_CLI(code, needle, ...)                                                         \
  do {                                                                                        \
    char *o_ = NULL;                                                                          \
    int rc_ = cli(&o_, dir, __VA_ARGS__, NULL);                                               \
    ck_assert_msg(rc_ == (code), "exit %d, wanted %d: %s", rc_, (code), o_);                  \
    ck_assert_msg(strstr(o_, (needle)) != NULL, "output lacks \"%s\": %s", (needle), o_);     \
    free(o_);                                                                                 \
  } while (0)

START_TEST(test_cli) {
  char *ci = tu_db_create("cl_store_cli");
  char *dir = tu_tmpdir("cl-store-cli");
  char *db = ci;
  char applied[128];
  snprintf(applied, sizeof applied, "applied %d migration(s); schema at %s",
           cl_schema_migration_count, cl_schema_migrations[cl_schema_migration_count - 1].name);
  EXPECT_CLI(0, applied, "db", "migrate", "--db", db);
  EXPECT_CLI(0, "schema is current", "db", "migrate", "--db", db);
  EXPECT_CLI(0, "usage: chiploc db migrate", "db", "--help");
  EXPECT_CLI(2, "chiploc: db: unknown subcommand", "db", "frob");

  cl_key *lm = NULL, *chip = NULL;
  ck_assert_int_eq(cl_key_generate(&lm), CL_OK);
  ck_assert_int_eq(cl_key_generate(&chip), CL_OK);
  char lhex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(lm), lhex);
  EXPECT_CLI(0, "landmark lm-paris id=1", "landmark", "add", "--db", db, "--name", "lm-paris",
             "--pubkey", lhex, "--lat", "48.8566", "--lon", "2.3522");
  EXPECT_CLI(1, "already belongs to landmark lm-paris; one key, one landmark", "landmark", "add",
             "--db", db, "--name", "lm-paris2", "--pubkey", lhex, "--site", "48.8566,2.3522");
  /* Bad values are refused before connecting (the database does not exist). */
  EXPECT_CLI(2, "chiploc: --lat 91: latitude must be in [-90, 90]", "landmark", "add", "--db",
             "dbname=none", "--name", "x", "--pubkey", lhex, "--lat", "91", "--lon", "0");
  EXPECT_CLI(2, "chiploc: --lon 200: longitude must be in [-180, 180]", "landmark", "add", "--db",
             "dbname=none", "--name", "x", "--pubkey", lhex, "--lat", "1", "--lon", "200");
  EXPECT_CLI(2, "chiploc: --lat 1e: not a number", "landmark", "add", "--db", "dbname=none",
             "--name", "x", "--pubkey", lhex, "--lat", "1e", "--lon", "2");
  EXPECT_CLI(2, "chiploc: --site 1;2: expected LAT,LON", "landmark", "add", "--db", "dbname=none",
             "--name", "x", "--pubkey", lhex, "--site", "1;2");
  EXPECT_CLI(2, "chiploc: --pubkey abc: expected 64 hex characters", "landmark", "add", "--db",
             "dbname=none", "--name", "x", "--pubkey", "abc", "--site", "1,2");
  EXPECT_CLI(2, "unknown option --frob", "landmark", "add", "--frob");

  /* Enrolment from a key file, and from a hex key. */
  char keyfile[512];
  snprintf(keyfile, sizeof keyfile, "%s/chip.key", dir);
  ck_assert_int_eq(cl_key_save(chip, keyfile), CL_OK);
  EXPECT_CLI(0, "chip A-0001 id=1", "chip", "enroll", "--db", db, "--pubkey-file", keyfile,
             "--serial", "A-0001", "--operator", "Example Operator", "--site", "50.11,8.68");
  EXPECT_CLI(1, "already belongs to chip A-0001 (operator Example Operator); one key, one chip",
             "chip", "enroll", "--db", db, "--pubkey-file", keyfile, "--serial", "A-0002",
             "--operator", "Example Operator", "--site", "50.11,8.68");
  EXPECT_CLI(2, "chiploc: --site 91,8: latitude must be in [-90, 90]", "chip", "enroll", "--db",
             db, "--pubkey", lhex, "--serial", "B", "--operator", "o", "--site", "91,8");
  EXPECT_CLI(2, "--pubkey", "chip", "enroll", "--db", db, "--serial", "B", "--operator", "o",
             "--site", "1,8");

  /* --db may come from the environment. */
  EXPECT_CLI(0, "(no measurements)", "measurements", "--db", db);
  setenv("CHIPLOC_DB", db, 1);
  cl_key *c2 = NULL;
  ck_assert_int_eq(cl_key_generate(&c2), CL_OK);
  char chex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(c2), chex);
  EXPECT_CLI(0, "chip B-0002 id=", "chip", "enroll", "--pubkey", chex, "--serial", "B-0002",
             "--operator", "o", "--lat", "-33.9", "--lon", "151.2");

  /* The table after real inserts. */
  cl_store *s = connect_or_fail(ci);
  cl_store_row rows[5];
  uint64_t t = now_unix_ns();
  for (int i = 0; i < 5; i++) {
    make_row(&rows[i], lm, chip, 1, (uint64_t)i, t + (uint64_t)i);
    /* The fastest is 12345.678 us, a bound of 1850.570 km at c. */
    uint64_t rtt[2] = {30000000u, i == 3 ? 12345678u : 20000000u + (uint64_t)i};
    ck_assert_int_eq(tu_record(&rows[i].m, lm, chip, (uint64_t)i * 2u, 2, rtt, t + (uint64_t)i),
                     CL_OK);
    rows[i].bound_m = (uint64_t)(CL_SPEED_C * (double)rows[i].m.rtt_ns / 2e9);
  }
  char err[512] = "";
  ck_assert_msg(cl_store_insert_measurements(s, 1, rows, 5, err, sizeof err) == CL_OK, "%s", err);
  cl_store_destroy(&s);
  char *o = NULL;
  ck_assert_int_eq(cli(&o, dir, "measurements", "--since", "600", NULL), 0);
  ck_assert_msg(strstr(o, "CHIP") == o, "no header first: %s", o);
  ck_assert_msg(strstr(o, "A-0001  lm-paris") != NULL, "%s", o);
  ck_assert_msg(strstr(o, "12345.678") != NULL, "%s", o);
  ck_assert_msg(strstr(o, "1850.570") != NULL, "%s", o);
  ck_assert_msg(strstr(o, "(no measurements)") == NULL, "%s", o);
  /* Two lines, header and one row, whose columns line up. */
  char *nl = strchr(o, '\n');
  ck_assert_ptr_nonnull(nl);
  *nl = '\0';
  char *row = nl + 1;
  char *end = strchr(row, '\n');
  ck_assert_ptr_nonnull(end);
  ck_assert_str_eq(end, "\n");
  *end = '\0';
  ck_assert_uint_eq(strlen(o), strlen(row) - strlen("2026-01-01T00:00:00Z") +
                                   strlen("LAST_MEASURED_UTC"));
  ck_assert_int_eq((int)(strstr(o, "LAST_MEASURED_UTC") - o), (int)(strrchr(row, ' ') + 1 - row));
  free(o);
  EXPECT_CLI(2, "chiploc: --since -5:", "measurements", "--since", "-5");
  unsetenv("CHIPLOC_DB");
  EXPECT_CLI(2, "CHIPLOC_DB", "measurements");
  EXPECT_CLI(1, "chiploc: cannot connect to the database", "measurements", "--db",
             "host=/nonexistent dbname=none");

  cl_key_destroy(&lm);
  cl_key_destroy(&chip);
  cl_key_destroy(&c2);
  unlink(keyfile); /* a secret key does not stay behind in /tmp */
  free(dir);
  free(ci);
}
END_TEST

START_TEST(test_region_cli) {
  char *ci = tu_db_create("cl_store_region_cli");
  char *dir = tu_tmpdir("cl-store-region-cli");
  char *db = ci;
  EXPECT_CLI(0, "applied", "db", "migrate", "--db", db);
  char *good = tu_write_file(dir, "regions.geojson", regions_geojson);
  char want[600];
  snprintf(want, sizeof want, "imported 2 region(s) from %s", good);
  EXPECT_CLI(0, want, "region", "import", good, "--code-property", "code", "--db", db);
  ck_assert_int_eq(count_rows(ci, "regions"), 2);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT vertex_count FROM regions WHERE code = 'BBB'"), 4);
  /* Again, with BBB changed and a new CCC: an upsert. */
  char *second = tu_write_file(
      dir, "more.geojson",
      "{\"type\":\"FeatureCollection\",\"features\":["
      "{\"type\":\"Feature\",\"properties\":{\"code\":\"BBB\"},\"geometry\":{\"type\":\"Polygon\","
      "\"coordinates\":[[[20,0],[30,0],[25,5],[20,0]]]}},"
      "{\"type\":\"Feature\",\"properties\":{\"code\":\"CCC\"},\"geometry\":{\"type\":\"Polygon\","
      "\"coordinates\":[[[40,0],[50,0],[45,5],[40,0]]]}}]}");
  snprintf(want, sizeof want, "imported 2 region(s) from %s", second);
  setenv("CHIPLOC_DB", db, 1);
  EXPECT_CLI(0, want, "region", "import", "--code-property", "code", second);
  unsetenv("CHIPLOC_DB");
  ck_assert_int_eq(count_rows(ci, "regions"), 3);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT vertex_count FROM regions WHERE code = 'BBB'"), 3);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT vertex_count FROM regions WHERE code = 'AAA'"), 11);

  /* A malformed file imports nothing, not even its good features. */
  char *bad = tu_write_file(
      dir, "bad.geojson",
      "{\"type\":\"FeatureCollection\",\"features\":["
      "{\"type\":\"Feature\",\"properties\":{\"code\":\"DDD\"},\"geometry\":{\"type\":\"Polygon\","
      "\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}},"
      "{\"type\":\"Feature\",\"properties\":{\"code\":\"EEE\"},\"geometry\":{\"type\":\"Polygon\","
      "\"coordinates\":[[[0,0],[1,0],[1,95.5],[0,0]]]}}]}");
  EXPECT_CLI(1, "feature 1 (code \"EEE\"): geometry.coordinates[0][2]: latitude 95.5 out of range",
             "region", "import", bad, "--code-property", "code", "--db", db);
  EXPECT_CLI(1, "nothing was imported", "region", "import", bad, "--code-property", "code",
             "--db", db);
  EXPECT_CLI(1, "feature 0: property \"A3\" missing or not a string", "region", "import", good,
             "--code-property", "A3", "--db", db);
  char *syntax = tu_write_file(dir, "syntax.geojson", "{\"type\":\n\"FeatureCollection\",,}");
  EXPECT_CLI(1, "JSON syntax error at line 2", "region", "import", syntax, "--code-property",
             "code", "--db", db);
  ck_assert_int_eq(count_rows(ci, "regions"), 3);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM regions WHERE code = 'DDD'"), 0);
  /* A database that refuses the writes: still nothing. */
  char *lm = login_member(ci, "lm_region_cli", "chiploc_landmark");
  char *fresh = tu_write_file(
      dir, "fresh.geojson",
      "{\"type\":\"Feature\",\"properties\":{\"code\":\"FFF\"},\"geometry\":{\"type\":\"Polygon\","
      "\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}}");
  EXPECT_CLI(1, "permission denied", "region", "import", fresh, "--code-property", "code", "--db",
             lm);
  ck_assert_int_eq(count_rows(ci, "regions"), 3);
  /* Usage errors, before any file or database is touched. */
  EXPECT_CLI(2, "--code-property is required", "region", "import", good, "--db", db);
  EXPECT_CLI(2, "no GeoJSON file given", "region", "import", "--code-property", "code");
  EXPECT_CLI(2, "unexpected argument", "region", "import", good, good, "--code-property", "code");
  EXPECT_CLI(2, "CHIPLOC_DB", "region", "import", good, "--code-property", "code");
  EXPECT_CLI(2, "unknown option --frob", "region", "import", "--frob");
  EXPECT_CLI(2, "unknown subcommand", "region", "export");
  EXPECT_CLI(0, "usage: chiploc region import", "region", "--help");
  char missing[600];
  snprintf(missing, sizeof missing, "%s/none.geojson", dir);
  EXPECT_CLI(1, "cannot open", "region", "import", missing, "--code-property", "code", "--db", db);

  /* chip enroll --allowed: known codes are recorded with the chip. */
  cl_key *k1 = NULL, *k2 = NULL;
  ck_assert_int_eq(cl_key_generate(&k1), CL_OK);
  ck_assert_int_eq(cl_key_generate(&k2), CL_OK);
  char h1[CL_PK_HEX_LEN + 1], h2[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(k1), h1);
  cl_pk_to_hex(cl_key_public(k2), h2);
  EXPECT_CLI(0, "chip R-1 allowed in AAA,CCC", "chip", "enroll", "--db", db, "--pubkey", h1,
             "--serial", "R-1", "--operator", "o", "--site", "5,1", "--allowed", "AAA,CCC");
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM chip_regions r JOIN chips c"
                                  " ON c.id = r.chip_id WHERE c.serial = 'R-1'"
                                  " AND r.region_code IN ('AAA', 'CCC')"),
                   2);
  /* An unknown code is named, and the chip is not enrolled. */
  EXPECT_CLI(1, "chiploc: chip R-2: no region with code \"XYZ\"", "chip", "enroll", "--db", db,
             "--pubkey", h2, "--serial", "R-2", "--operator", "o", "--site", "5,1", "--allowed",
             "AAA,XYZ");
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM chips WHERE serial = 'R-2'"), 0);
  ck_assert_int_eq(count_rows(ci, "chip_regions"), 2);
  EXPECT_CLI(2, "--allowed AAA,,CCC: empty region code", "chip", "enroll", "--db", db, "--pubkey",
             h2, "--serial", "R-2", "--operator", "o", "--site", "5,1", "--allowed", "AAA,,CCC");
  EXPECT_CLI(2, "--allowed ,: empty region code", "chip", "enroll", "--db", db, "--pubkey", h2,
             "--serial", "R-2", "--operator", "o", "--site", "5,1", "--allowed", ",");
  /* Without --allowed, enrolment is as before. */
  EXPECT_CLI(0, "chip R-2 id=", "chip", "enroll", "--db", db, "--pubkey", h2, "--serial", "R-2",
             "--operator", "o", "--site", "5,1");
  ck_assert_int_eq(count_rows(ci, "chip_regions"), 2);

  cl_key_destroy(&k1);
  cl_key_destroy(&k2);
  free(lm);
  free(good);
  free(second);
  free(bad);
  free(syntax);
  free(fresh);
  free(dir);
  free(ci);
}
END_TEST

/* ---- connecting: failures classified, defaults that a conninfo overrides -- */

/* cl_store_connect's code for conninfo, with its message in err. */
static int try_connect(const char *conninfo, char *err, size_t errlen) {
  cl_store *s = NULL;
  int rc = cl_store_connect(&s, conninfo, err, errlen);
  ck_assert_msg((rc == CL_OK) == (s != NULL), "rc %d with store %p", rc, (void *)s);
  cl_store_destroy(&s);
  return rc;
}

#define EXPECT_CONNECT(conninfo, code, needle)                                               \
  do {                                                                                      \
    char e_[512] = "";                                                                      \
    int rc_ = try_connect((conninfo), e_, sizeof e_);                                       \
    ck_assert_msg(rc_ == (code), "%s: rc %d, wanted %d: %s", (conninfo), rc_, (code), e_);  \
    ck_assert_msg(strstr(e_, (needle)) != NULL, "%s: err lacks \"%s\": %s", (conninfo),    \
                  (needle), e_);                                                            \
  } while (0)

START_TEST(test_connect_classified) {
  /* A login the database refuses is a configuration error (CL_EPERM, with
   * what to change); a server that is not there, or turns the connection
   * away for now, an outage (CL_EDB). Roles are cluster-wide: the names
   * are this test's own. */
  char *ci = tu_db_create("cl_store_connect");
  char err[512] = "";
  ck_assert_msg(tu_sql(ci,
                       "DO $$ BEGIN "
                       "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cl_conn_group') "
                       "THEN CREATE ROLE cl_conn_group NOLOGIN; END IF; "
                       "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cl_conn_noconnect') "
                       "THEN CREATE ROLE cl_conn_noconnect LOGIN; END IF; "
                       "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cl_conn_full') "
                       "THEN CREATE ROLE cl_conn_full LOGIN CONNECTION LIMIT 0; END IF; END $$; "
                       "REVOKE CONNECT ON DATABASE cl_store_connect FROM PUBLIC",
                       err, sizeof err) == 0,
                "%s", err);
  char *group = tu_conninfo_as(ci, "cl_conn_group");
  char *missing_role = tu_conninfo_as(ci, "cl_conn_no_such_role");
  char *noconnect = tu_conninfo_as(ci, "cl_conn_noconnect");
  char *full = tu_conninfo_as(ci, "cl_conn_full");
  char *missing_db = tu_fmt("%s dbname=cl_store_no_such_db", ci);
  char *nologin_dir = tu_tmpdir("cl-store-no-server");
  char *no_server = tu_fmt("host=%s dbname=x", nologin_dir);

  EXPECT_CONNECT(ci, CL_OK, "");
  /* A group role (NOLOGIN), as the example conninfo once named. */
  EXPECT_CONNECT(group, CL_EPERM,
                 "database login failed: role \"cl_conn_group\" is not permitted to log in (a "
                 "group role? log in with a member of it, see chiploc(1)); this is a "
                 "configuration error");
  EXPECT_CONNECT(missing_role, CL_EPERM, "role \"cl_conn_no_such_role\" does not exist");
  EXPECT_CONNECT(missing_db, CL_EPERM, "database \"cl_store_no_such_db\" does not exist");
  EXPECT_CONNECT(missing_db, CL_EPERM, "createdb");
  EXPECT_CONNECT(noconnect, CL_EPERM, "permission denied for database");
  /* Too many connections (53300) is the server answering "not now". */
  EXPECT_CONNECT(full, CL_EDB, "cannot connect to the database:");
  EXPECT_CONNECT(full, CL_EDB, "too many connections for role \"cl_conn_full\"");
  /* No server: a socket directory without a socket, a path that does not
   * exist. */
  EXPECT_CONNECT(no_server, CL_EDB, nologin_dir);
  EXPECT_CONNECT("host=/nonexistent dbname=x", CL_EDB, "/nonexistent");
  /* A conninfo that does not parse is not retried, and its text (which may
   * hold a password) is not shown; neither is it with a server's refusal. */
  char *bad = tu_fmt("%s password=hunter2 junk", ci);
  EXPECT_CONNECT(bad, CL_EPERM, "invalid database connection string");
  ck_assert_int_eq(try_connect(bad, err, sizeof err), CL_EPERM);
  ck_assert_msg(strstr(err, "hunter2") == NULL, "%s", err);
  char *secret = tu_fmt("%s password=hunter2", missing_role);
  ck_assert_int_eq(try_connect(secret, err, sizeof err), CL_EPERM);
  ck_assert_msg(strstr(err, "hunter2") == NULL && strstr(err, "host=") == NULL, "%s", err);

  /* The CLI: exit 2 for a configuration error, 1 for an outage. */
  char *dir = tu_tmpdir("cl-store-connect-cli");
  EXPECT_CLI(2, "chiploc: database login failed: role \"cl_conn_group\"", "measurements", "--db",
             group);
  EXPECT_CLI(2, "does not exist", "audit", "--db", missing_db);
  EXPECT_CLI(1, "chiploc: cannot connect to the database", "measurements", "--db", no_server);
  /* The verifier: a refused login stops it with exit 2, in one round or
   * following. */
  char *key = tu_keygen(dir, "verifier", tu_fmt("%s/keygen.log", dir));
  EXPECT_CLI(2, "database login failed", "verify", "--db", group, "--key", key);
  EXPECT_CLI(2, "msg=\"database login refused\"", "verify", "--db", missing_db, "--key", key,
             "--follow");

  free(dir);
  rmdir(nologin_dir);
  free(nologin_dir);
  free(full);
  free(noconnect);
  free(missing_role);
  free(group);
  free(ci);
  tu_release();
}
END_TEST

/* The value libpq uses for keyword on this connection, "" if unset. */
static char *option_of(cl_store *s, const char *keyword) {
  PQconninfoOption *opts = PQconninfo(cl_store_pgconn(s));
  char *v = NULL;
  for (PQconninfoOption *o = opts; o && o->keyword; o++)
    if (strcmp(o->keyword, keyword) == 0) v = strdup(o->val ? o->val : "");
  PQconninfoFree(opts);
  ck_assert_msg(v != NULL, "libpq has no %s", keyword);
  return tu_own(v);
}

START_TEST(test_connect_defaults) {
  /* Every connection gets keepalives, tcp_user_timeout and connect_timeout
   * unless its conninfo (key=value or URI) or $PGCONNECT_TIMEOUT sets them. */
  char *ci = tu_db_create("cl_store_connect_defaults");
  cl_store *s = connect_or_fail(ci);
  ck_assert_str_eq(option_of(s, "connect_timeout"), "10");
  ck_assert_str_eq(option_of(s, "keepalives"), "1");
  ck_assert_str_eq(option_of(s, "keepalives_idle"), "10");
  ck_assert_str_eq(option_of(s, "keepalives_interval"), "5");
  ck_assert_str_eq(option_of(s, "keepalives_count"), "3");
  ck_assert_str_eq(option_of(s, "tcp_user_timeout"), "30000");
  cl_store_destroy(&s);

  s = connect_or_fail(tu_fmt("%s tcp_user_timeout=0 keepalives=0 connect_timeout=3", ci));
  ck_assert_str_eq(option_of(s, "tcp_user_timeout"), "0");
  ck_assert_str_eq(option_of(s, "keepalives"), "0");
  ck_assert_str_eq(option_of(s, "connect_timeout"), "3");
  ck_assert_str_eq(option_of(s, "keepalives_idle"), "10"); /* the rest stay */
  ck_assert_str_eq(option_of(s, "dbname"), "cl_store_connect_defaults");
  cl_store_destroy(&s);

  const char *pg = getenv("CHIPLOC_TEST_PG_DIR");
  ck_assert_ptr_nonnull(pg);
  char *root = tu_read_file(tu_fmt("%s/pgroot", pg));
  ck_assert_ptr_nonnull(root);
  root[strcspn(root, "\n")] = '\0';
  tu_own(root);
  s = connect_or_fail(tu_fmt("postgresql:///cl_store_connect_defaults?host=%s&port=5432&user="
                             "postgres&keepalives_idle=77&tcp_user_timeout=1234",
                             root));
  ck_assert_str_eq(option_of(s, "keepalives_idle"), "77");
  ck_assert_str_eq(option_of(s, "tcp_user_timeout"), "1234");
  ck_assert_str_eq(option_of(s, "keepalives_count"), "3");
  cl_store_destroy(&s);

  setenv("PGCONNECT_TIMEOUT", "4", 1);
  s = connect_or_fail(ci);
  ck_assert_str_eq(option_of(s, "connect_timeout"), "4");
  ck_assert_str_eq(option_of(s, "tcp_user_timeout"), "30000");
  cl_store_destroy(&s);
  unsetenv("PGCONNECT_TIMEOUT");
  free(ci);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *su = suite_create("store");
  TCase *tc = tcase_create("postgres");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_migrate_twice);
  tcase_add_test(tc, test_migrate_concurrent);
  tcase_add_test(tc, test_partitions_take_over_default_rows);
  tcase_add_test(tc, test_upgrade_keeps_v1_rows);
  tcase_add_test(tc, test_landmark_add_find);
  tcase_add_test(tc, test_bad_coordinates);
  tcase_add_test(tc, test_chip_enroll_load);
  tcase_add_test(tc, test_insert_batch_reverifies);
  tcase_add_test(tc, test_insert_all_or_nothing);
  tcase_add_test(tc, test_insert_refuses_bad_rows);
  tcase_add_test(tc, test_links_reverify);
  tcase_add_test(tc, test_row_measurement_strict);
  tcase_add_test(tc, test_lost_connection);
  tcase_add_test(tc, test_landmark_role);
  tcase_add_test(tc, test_admin_role);
  tcase_add_test(tc, test_regions);
  suite_add_tcase(su, tc);
  TCase *cli_tc = tcase_create("cli");
  tcase_set_timeout(cli_tc, 60);
  tcase_add_test(cli_tc, test_cli);
  tcase_add_test(cli_tc, test_region_cli);
  tcase_add_test(cli_tc, test_connect_classified);
  tcase_add_test(cli_tc, test_connect_defaults);
  suite_add_tcase(su, cli_tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
