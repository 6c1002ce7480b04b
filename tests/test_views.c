/*
 * The dashboard views and the least-privilege roles of schema/0003 against
 * the throwaway PostgreSQL of the run.
 *
 * A small fixture (two landmarks, two chips, protocol 2 measurements inside
 * and outside the last hour with known RTTs and answer counts, two
 * attestations of one chip, open and cleared alerts) is written by the
 * database owner; a variant also holds protocol 1 rows stored before
 * migration 0005, which the views must not count. Then, as
 * login members of each group role: the dashboard role reads chip_status,
 * landmark_health and open_alerts and gets exactly the values the fixture
 * implies, and is refused every table and every write; the verifier role
 * reads what a round needs and appends attestations and alerts, clears
 * alerts, and may not rewrite history; the landmark role appends landmark
 * links and nothing of the verifier's. Each test works in its own database.
 */
#include "testutil.h"
#include "tu_record.h"

#include "cl_err.h"
#include "cl_key.h"
#include "cl_probe.h"
#include "cl_schema.h"
#include "cl_store.h"

#include <check.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every table of the schema, none of which the dashboard may read. */
static const char *const TABLES[] = {"chips",        "landmarks", "measurements",
                                     "attestations", "alerts",    "regions",
                                     "chip_regions", "verifiers", "landmark_links",
                                     "measurements_default"};
#define N_TABLES (sizeof TABLES / sizeof TABLES[0])

typedef struct {
  char *conninfo; /* the owner's */
  PGconn *pg;
  int64_t lm_id, quiet_id, chip_id, idle_chip_id, verifier_id;
  int64_t last_probe_unix_us; /* newest measured_at in the last hour */
} fixture;

/* ---- helpers ------------------------------------------------------------------ */

/* Statement with text parameters (NULL for SQL NULL) and text results;
 * asserts success. The caller clears the result. */
static PGresult *q(PGconn *c, const char *sql, int n, const char *const *v) {
  PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(r);
  ck_assert_msg(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "%s: %s", sql,
                PQresultErrorMessage(r));
  return r;
}

static void q_do(PGconn *c, const char *sql, int n, const char *const *v) { PQclear(q(c, sql, n, v)); }

static int64_t q_id(PGconn *c, const char *sql, int n, const char *const *v) {
  PGresult *r = q(c, sql, n, v);
  ck_assert_int_eq(PQntuples(r), 1);
  int64_t id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return id;
}

static void i64s(char *buf, size_t len, int64_t v) { snprintf(buf, len, "%" PRId64, v); }

/* Makes a LOGIN role that is a member of `group` (roles are cluster-wide,
 * so it may remain from an earlier run); returns its conninfo. */
static char *login_member(const char *conninfo, const char *user, const char *group) {
  char sql[512], err[512] = "";
  snprintf(sql, sizeof sql,
           "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN "
           "CREATE ROLE %s LOGIN; END IF; END $$; GRANT %s TO %s",
           user, user, group, user);
  ck_assert_msg(tu_sql(conninfo, sql, err, sizeof err) == 0, "%s: %s", sql, err);
  return tu_conninfo_as(conninfo, user);
}

static void assert_denied(const char *conninfo, const char *sql) {
  char err[512] = "";
  ck_assert_msg(tu_sql(conninfo, sql, err, sizeof err) != 0, "allowed: %s", sql);
  ck_assert_msg(strstr(err, "permission denied") != NULL, "%s: %s", sql, err);
}

static void assert_allowed(const char *conninfo, const char *sql) {
  char err[512] = "";
  ck_assert_msg(tu_sql(conninfo, sql, err, sizeof err) == 0, "%s: %s", sql, err);
}

/* The columns of a protocol 2 row after its two ids, and made-up values of
 * the right lengths for them (three entries); the database cannot check
 * the signatures. */
#define V2_COLUMNS                                                                               \
  "chip_id, landmark_id, protocol, suite, nonce, seq, handshake, probes, transcript_sig,"       \
  " rtt_ns, bound_m, est_speed_m_s, est_bound_m, probe_count, probes_sent, measured_at,"         \
  " measured_at_ns, landmark_sig"
#define V2_VALUES                                                                                \
  " 2, 1, decode(repeat('01', 32), 'hex'), 1, decode(repeat('02', 256), 'hex'),"                 \
  " decode(repeat('03', 240), 'hex'), decode(repeat('04', 64), 'hex'), 5, 1, 2e8, 1, 3, 5,"     \
  " now(), 1, decode(repeat('05', 64), 'hex')"
#define V2_LINK_COLUMNS                                                                          \
  "from_landmark_id, to_landmark_id, protocol, suite, nonce, seq, handshake, probes,"            \
  " transcript_sig, rtt_ns, bound_m, probe_count, probes_sent, measured_at, measured_at_ns,"     \
  " landmark_sig"
#define V2_LINK_VALUES                                                                           \
  " 2, 1, decode(repeat('01', 32), 'hex'), 1, decode(repeat('02', 256), 'hex'),"                 \
  " decode(repeat('03', 240), 'hex'), decode(repeat('04', 64), 'hex'), 5000000, 749481, 3, 5,"  \
  " now(), 1, decode(repeat('05', 64), 'hex')"

/* Builds a statement from a format and test-controlled numbers only. */
static const char *fmt(char *buf, size_t len, const char *f, int64_t a) {
  snprintf(buf, len, f, a);
  return buf;
}

/* ---- the fixture ----------------------------------------------------------------- */

/* A genuine protocol 2 record of `answered` probes out of 5 sent (1 to 5),
 * the fastest taking rtt_ns. */
static cl_store_row signed_row(const cl_key *lm, const cl_key *chip, int64_t chip_id, uint64_t seq,
                               uint64_t rtt_ns, uint32_t answered, uint64_t measured_ns) {
  cl_store_row row;
  memset(&row, 0, sizeof row);
  uint64_t rtts[5];
  for (uint32_t i = 0; i < answered; i++) rtts[i] = rtt_ns + (i == answered / 2 ? 0 : 1000u + i);
  ck_assert_int_eq(tu_record(&row.m, lm, chip, seq * 8u, answered, rtts, measured_ns), CL_OK);
  row.m.probes_sent = 5;
  ck_assert_int_eq(cl_measurement_sign(&row.m, lm), CL_OK);
  ck_assert_uint_eq(row.m.rtt_ns, rtt_ns);
  row.chip_id = chip_id;
  row.bound_m = cl_bound_m(rtt_ns, CL_SPEED_C);
  row.est_speed = CL_SPEED_FIBRE;
  row.est_bound_m = cl_bound_m(rtt_ns, CL_SPEED_FIBRE);
  return row;
}


/* A protocol 1 row as releases before 0005 stored it: faster, newer and
 * better answered than any protocol 2 row of the fixture, so that counting
 * it would change every figure of the views. */
static void insert_v1(PGconn *pg, int64_t chip_id, int64_t landmark_id, const char *nonce) {
  char chip_s[24], lm_s[24];
  i64s(chip_s, sizeof chip_s, chip_id);
  i64s(lm_s, sizeof lm_s, landmark_id);
  const char *v[3] = {chip_s, lm_s, nonce};
  q_do(pg,
       "INSERT INTO measurements (chip_id, landmark_id, nonce, seq, issued_at_ns, challenge_sig,"
       " chip_sig, rtt_ns, bound_m, est_speed_m_s, est_bound_m, probe_count, probes_sent,"
       " measured_at, measured_at_ns, landmark_sig) VALUES ($1::bigint, $2::bigint,"
       " decode(repeat($3::text, 32), 'hex'), 1, 1, decode(repeat('02', 64), 'hex'),"
       " decode(repeat('03', 64), 'hex'), 1000, 150, 2e8, 100, 5, 5, now() - interval '1 minute',"
       " 1, decode(repeat('04', 64), 'hex'))",
       3, v);
}

/*
 * lm-views: three measurements of chip V-0001 in the last hour (RTT 300,
 * 100 and 200 us; 5, 4 and 3 of 5 probes answered) and one two hours ago
 * (RTT 50 us, 1 of 5). lm-quiet: none, and an open landmark_misplaced
 * alert. V-0001: an INSUFFICIENT attestation, then a newer CONSISTENT one;
 * an open site_excluded alert and a cleared chip_dark alert. W-0002:
 * enrolled, never attested. With legacy, the database also holds protocol 1
 * rows stored before migration 0005: one of V-0001 and one of W-0002 by
 * lm-views, one of V-0001 by lm-quiet, all a minute old.
 */
static void fixture_init(fixture *f, const char *dbname, int legacy) {
  memset(f, 0, sizeof *f);
  f->conninfo = tu_db_create(dbname);
  cl_store *s = NULL;
  char err[512] = "";
  ck_assert_msg(cl_store_connect(&s, f->conninfo, err, sizeof err) == CL_OK, "%s", err);
  int applied = 0;
  if (legacy)
    tu_migrate_before(f->conninfo, "0005_protocol_v2.sql");
  else
    ck_assert_msg(cl_store_migrate(s, &applied, err, sizeof err) == CL_OK, "%s", err);
  f->pg = PQconnectdb(f->conninfo);
  ck_assert_int_eq(PQstatus(f->pg), CONNECTION_OK);

  cl_key *lm = NULL, *quiet = NULL, *chip = NULL, *idle = NULL;
  ck_assert_int_eq(cl_key_generate(&lm), CL_OK);
  ck_assert_int_eq(cl_key_generate(&quiet), CL_OK);
  ck_assert_int_eq(cl_key_generate(&chip), CL_OK);
  ck_assert_int_eq(cl_key_generate(&idle), CL_OK);
  ck_assert_int_eq(cl_store_landmark_add(s, "lm-views", cl_key_public(lm), 48.8566, 2.3522,
                                         &f->lm_id, err, sizeof err),
                   CL_OK);
  ck_assert_int_eq(cl_store_landmark_add(s, "lm-quiet", cl_key_public(quiet), 52.52, 13.405,
                                         &f->quiet_id, err, sizeof err),
                   CL_OK);
  ck_assert_int_eq(cl_store_chip_enroll(s, cl_key_public(chip), "V-0001", "Views DC", 50.11, 8.68,
                                        &f->chip_id, err, sizeof err),
                   CL_OK);
  ck_assert_int_eq(cl_store_chip_enroll(s, cl_key_public(idle), "W-0002", "Views DC", 1.5, 2.5,
                                        &f->idle_chip_id, err, sizeof err),
                   CL_OK);
  if (legacy) {
    insert_v1(f->pg, f->chip_id, f->lm_id, "a1");
    insert_v1(f->pg, f->idle_chip_id, f->lm_id, "a2");
    insert_v1(f->pg, f->chip_id, f->quiet_id, "a3");
    ck_assert_msg(cl_store_migrate(s, &applied, err, sizeof err) == CL_OK, "%s", err);
    /* 0005 and every migration after it. */
    ck_assert_int_eq(applied, cl_schema_migration_count - 4);
    ck_assert_int_eq(tu_sql_int(f->conninfo, "SELECT count(*) FROM measurements"
                                             " WHERE protocol = 1"),
                     3);
  }

  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t now_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  uint64_t min = 60000000000ull;
  cl_store_row rows[4] = {
      signed_row(lm, chip, f->chip_id, 1, 300000, 5, now_ns - 30 * min),
      signed_row(lm, chip, f->chip_id, 2, 100000, 4, now_ns - 20 * min),
      signed_row(lm, chip, f->chip_id, 3, 200000, 3, now_ns - 10 * min),
      signed_row(lm, chip, f->chip_id, 4, 50000, 1, now_ns - 120 * min),
  };
  f->last_probe_unix_us = (int64_t)((now_ns - 10 * min) / 1000u);
  ck_assert_msg(cl_store_insert_measurements(s, f->lm_id, rows, 4, err, sizeof err) == CL_OK, "%s",
                err);
  cl_store_destroy(&s);
  char pk[2 + 64 + 1] = "\\x";
  cl_hex_encode(pk + 2, cl_key_public(chip), CL_PK_LEN); /* any 32 bytes will do here */
  const char *vv[1] = {pk};
  f->verifier_id = q_id(f->pg,
                        "INSERT INTO verifiers (name, public_key) VALUES ('verifier-views',"
                        " $1::bytea) RETURNING id",
                        1, vv);
  char chip_s[24], ver_s[24], old_end[24], new_end[24];
  i64s(chip_s, sizeof chip_s, f->chip_id);
  i64s(ver_s, sizeof ver_s, f->verifier_id);
  uint64_t new_round = now_ns / min * min;
  i64s(old_end, sizeof old_end, (int64_t)(new_round - min));
  i64s(new_end, sizeof new_end, (int64_t)new_round);
  /* Values only: the signatures of these rows are the audit's business. */
  static const char insert_att[] =
      "INSERT INTO attestations (chip_id, verifier_id, round_end_ns, round_end, window_ns,"
      " consistency, site_verdict, region_verdict, speed_m_s, centre_lat_e7, centre_lon_e7,"
      " radius_m, landmarks_used, measurement_ids, prev_hash, hash, signature)"
      " VALUES ($1::bigint, $2::bigint, $3::bigint, to_timestamp($3::bigint / 1e9),"
      " 300000000000, $4::smallint, $5::smallint, $6::smallint, 299792458, $7::integer,"
      " $8::integer, $9::bigint, $10::integer, '{}', sha256($3::text::bytea),"
      " sha256(($3::text || 'h')::bytea),"
      " decode(repeat('ab', 64), 'hex')) RETURNING id";
  const char *old_v[10] = {chip_s, ver_s, old_end, "1", "0", "0", "0", "0", "0", "1"};
  q_id(f->pg, insert_att, 10, old_v);
  const char *new_v[10] = {chip_s, ver_s, new_end, "0", "1", "1", "501100000", "86800000",
                           "12345", "3"};
  int64_t att = q_id(f->pg, insert_att, 10, new_v);
  char att_s[24], quiet_s[24];
  i64s(att_s, sizeof att_s, att);
  i64s(quiet_s, sizeof quiet_s, f->quiet_id);
  const char *av[3] = {chip_s, att_s, quiet_s};
  q_do(f->pg,
       "INSERT INTO alerts (kind, chip_id, detail, attestation_id) VALUES"
       " ('site_excluded', $1::bigint, 'declared site 12.3 km beyond', $2::bigint)",
       2, av);
  q_do(f->pg,
       "INSERT INTO alerts (kind, chip_id, raised_at, cleared_at) VALUES"
       " ('chip_dark', $1::bigint, now() - interval '2 hours', now() - interval '1 hour')",
       1, av);
  const char *qv[1] = {quiet_s};
  q_do(f->pg,
       "INSERT INTO alerts (kind, landmark_id, detail) VALUES"
       " ('landmark_misplaced', $1::bigint, 'faster than light to lm-views')",
       1, qv);
  cl_key_destroy(&lm);
  cl_key_destroy(&quiet);
  cl_key_destroy(&chip);
  cl_key_destroy(&idle);
}

static void fixture_fini(fixture *f) {
  PQfinish(f->pg);
  free(f->conninfo);
}

/* Connects as conninfo; the caller finishes the connection. */
static PGconn *connect_as(const char *conninfo) {
  PGconn *c = PQconnectdb(conninfo);
  ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
  return c;
}

/* ---- the dashboard role ---------------------------------------------------------- */

/* What the dashboard role reads of the fixture: the same whether or not
 * the database also holds protocol 1 rows. */
static void check_dashboard(const fixture *f) {
  char *dash = login_member(f->conninfo, "dash_test", "chiploc_dashboard");
  PGconn *c = connect_as(dash);

  /* chip_status: the newest attestation of V-0001, its open alert only. */
  PGresult *r = q(c,
                  "SELECT serial, operator, site_lat, site_lon, active, consistency, site_verdict,"
                  " region_verdict, radius_km::float8, centre_lat::float8, centre_lon::float8,"
                  " landmarks_used, (extract(epoch FROM last_seen) * 1000000)::bigint,"
                  " array_to_string(open_alerts, ','), round_end IS NOT NULL"
                  " FROM chip_status ORDER BY serial",
                  0, NULL);
  ck_assert_int_eq(PQntuples(r), 2);
  ck_assert_str_eq(PQgetvalue(r, 0, 0), "V-0001");
  ck_assert_str_eq(PQgetvalue(r, 0, 1), "Views DC");
  ck_assert_double_eq_tol(strtod(PQgetvalue(r, 0, 2), NULL), 50.11, 1e-9);
  ck_assert_double_eq_tol(strtod(PQgetvalue(r, 0, 3), NULL), 8.68, 1e-9);
  ck_assert_str_eq(PQgetvalue(r, 0, 4), "t");
  ck_assert_str_eq(PQgetvalue(r, 0, 5), "CONSISTENT");
  ck_assert_str_eq(PQgetvalue(r, 0, 6), "SITE_CONSISTENT");
  ck_assert_str_eq(PQgetvalue(r, 0, 7), "INSIDE");
  ck_assert_double_eq_tol(strtod(PQgetvalue(r, 0, 8), NULL), 12.345, 1e-12);
  ck_assert_double_eq_tol(strtod(PQgetvalue(r, 0, 9), NULL), 50.11, 1e-12);
  ck_assert_double_eq_tol(strtod(PQgetvalue(r, 0, 10), NULL), 8.68, 1e-12);
  ck_assert_str_eq(PQgetvalue(r, 0, 11), "3");
  ck_assert_int_eq(strtoll(PQgetvalue(r, 0, 12), NULL, 10), f->last_probe_unix_us);
  ck_assert_str_eq(PQgetvalue(r, 0, 13), "site_excluded");
  ck_assert_str_eq(PQgetvalue(r, 0, 14), "t");
  /* W-0002: enrolled, never measured or attested. */
  ck_assert_str_eq(PQgetvalue(r, 1, 0), "W-0002");
  for (int col = 5; col <= 12; col++)
    ck_assert_msg(PQgetisnull(r, 1, col), "W-0002 column %d: %s", col, PQgetvalue(r, 1, col));
  ck_assert_str_eq(PQgetvalue(r, 1, 13), "");
  PQclear(r);

  /* landmark_health: the last hour only. Answer rate (5+4+3)/(5+5+5),
   * median RTT 200 us. */
  r = q(c,
        "SELECT name, lat, lon, (extract(epoch FROM last_probe) * 1000000)::bigint,"
        " measurements_1h, answer_rate_1h, median_rtt_us_1h, array_to_string(open_alerts, ',')"
        " FROM landmark_health ORDER BY name",
        0, NULL);
  ck_assert_int_eq(PQntuples(r), 2);
  ck_assert_str_eq(PQgetvalue(r, 0, 0), "lm-quiet");
  ck_assert_msg(PQgetisnull(r, 0, 3), "lm-quiet last_probe %s", PQgetvalue(r, 0, 3));
  ck_assert_str_eq(PQgetvalue(r, 0, 4), "0");
  ck_assert(PQgetisnull(r, 0, 5));
  ck_assert(PQgetisnull(r, 0, 6));
  ck_assert_str_eq(PQgetvalue(r, 0, 7), "landmark_misplaced");
  ck_assert_str_eq(PQgetvalue(r, 1, 0), "lm-views");
  ck_assert_double_eq_tol(strtod(PQgetvalue(r, 1, 1), NULL), 48.8566, 1e-9);
  ck_assert_double_eq_tol(strtod(PQgetvalue(r, 1, 2), NULL), 2.3522, 1e-9);
  ck_assert_int_eq(strtoll(PQgetvalue(r, 1, 3), NULL, 10), f->last_probe_unix_us);
  ck_assert_str_eq(PQgetvalue(r, 1, 4), "3");
  ck_assert_double_eq_tol(strtod(PQgetvalue(r, 1, 5), NULL), 0.8, 1e-12);
  ck_assert_double_eq_tol(strtod(PQgetvalue(r, 1, 6), NULL), 200.0, 1e-9);
  ck_assert_str_eq(PQgetvalue(r, 1, 7), "");
  PQclear(r);

  /* open_alerts: the two open ones, not the cleared one. */
  r = q(c,
        "SELECT kind, coalesce(chip_serial, '-'), coalesce(landmark_name, '-'), detail,"
        " raised_at IS NOT NULL FROM open_alerts ORDER BY kind",
        0, NULL);
  ck_assert_int_eq(PQntuples(r), 2);
  ck_assert_str_eq(PQgetvalue(r, 0, 0), "landmark_misplaced");
  ck_assert_str_eq(PQgetvalue(r, 0, 1), "-");
  ck_assert_str_eq(PQgetvalue(r, 0, 2), "lm-quiet");
  ck_assert_str_eq(PQgetvalue(r, 0, 3), "faster than light to lm-views");
  ck_assert_str_eq(PQgetvalue(r, 1, 0), "site_excluded");
  ck_assert_str_eq(PQgetvalue(r, 1, 1), "V-0001");
  ck_assert_str_eq(PQgetvalue(r, 1, 2), "-");
  ck_assert_str_eq(PQgetvalue(r, 1, 3), "declared site 12.3 km beyond");
  ck_assert_str_eq(PQgetvalue(r, 1, 4), "t");
  PQclear(r);
  PQfinish(c);
  free(dash);
}

START_TEST(test_dashboard_reads_views) {
  fixture f;
  fixture_init(&f, "cl_views_dash", 0);
  check_dashboard(&f);
  fixture_fini(&f);
}
END_TEST

START_TEST(test_dashboard_ignores_protocol_1) {
  /* Protocol 1 rows stored before migration 0005 stay in the table but
   * count nowhere: not in last_seen, last_probe, the hour's count, the
   * answer rate or the median. */
  fixture f;
  fixture_init(&f, "cl_views_dash_legacy", 1);
  check_dashboard(&f);
  /* Counted, they would show: the table holds them. */
  ck_assert_int_eq(tu_sql_int(f.conninfo, "SELECT count(*) FROM measurements"
                                          " WHERE measured_at > now() - interval '1 hour'"),
                   6);
  fixture_fini(&f);
}
END_TEST

START_TEST(test_dashboard_sees_views_only) {
  fixture f;
  fixture_init(&f, "cl_views_dash_deny", 0);
  char *dash = login_member(f.conninfo, "dash_test", "chiploc_dashboard");
  char sql[256];
  for (size_t i = 0; i < N_TABLES; i++) {
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", TABLES[i]);
    assert_denied(dash, sql);
    snprintf(sql, sizeof sql, "DELETE FROM %s", TABLES[i]);
    assert_denied(dash, sql);
    snprintf(sql, sizeof sql, "TRUNCATE %s", TABLES[i]);
    assert_denied(dash, sql);
  }
  assert_denied(dash, "UPDATE chips SET active = false");
  assert_denied(dash, "UPDATE alerts SET cleared_at = now()");
  assert_denied(dash, "UPDATE attestations SET region_verdict = 2");
  assert_denied(dash, "INSERT INTO alerts (kind, chip_id) SELECT 'chip_dark', 1");
  assert_denied(dash, "INSERT INTO chips (public_key, serial, operator, site_lat, site_lon)"
                      " VALUES (decode(repeat('ab', 32), 'hex'), 'X', 'o', 0, 0)");
  assert_denied(dash, "INSERT INTO verifiers (name, public_key)"
                      " VALUES ('v', decode(repeat('ab', 32), 'hex'))");
  assert_denied(dash, "SELECT chiploc_ensure_partitions(1)");
  /* The views are read-only to it as well (refused for want of a grant or
   * because they are not updatable: either way nothing changes). */
  static const char *const view_writes[] = {
      "DELETE FROM open_alerts",
      "UPDATE chip_status SET serial = 'X'",
      "INSERT INTO landmark_health (landmark_id) VALUES (1)",
  };
  char err[512];
  for (size_t i = 0; i < sizeof view_writes / sizeof view_writes[0]; i++)
    ck_assert_msg(tu_sql(dash, view_writes[i], err, sizeof err) != 0, "allowed: %s",
                  view_writes[i]);
  ck_assert_int_eq(tu_sql_int(f.conninfo, "SELECT count(*) FROM alerts WHERE cleared_at IS NULL"),
                   2);
  /* A role without the grant sees no view either. */
  char *nobody = login_member(f.conninfo, "nobody_views_test", "pg_monitor");
  assert_denied(nobody, "SELECT count(*) FROM chip_status");
  assert_denied(nobody, "SELECT count(*) FROM landmark_health");
  assert_denied(nobody, "SELECT count(*) FROM open_alerts");
  free(nobody);
  free(dash);
  fixture_fini(&f);
}
END_TEST

/* ---- the verifier role ------------------------------------------------------------- */

START_TEST(test_verifier_role) {
  fixture f;
  fixture_init(&f, "cl_views_verifier", 0);
  char *ver = login_member(f.conninfo, "ver_test", "chiploc_verifier");
  char sql[1024];
  /* What a round reads. */
  static const char *const readable[] = {"measurements", "chips",      "landmarks",
                                         "regions",      "chip_regions", "verifiers",
                                         "attestations", "alerts",     "landmark_links"};
  for (size_t i = 0; i < sizeof readable / sizeof readable[0]; i++) {
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", readable[i]);
    assert_allowed(ver, sql);
  }
  /* What a round writes: an attestation, an alert, clearing an alert. A
   * verifier's login writes attestations only once bound to its verifier. */
  fmt(sql, sizeof sql,
      "INSERT INTO attestations (chip_id, verifier_id, round_end_ns, round_end,"
      " window_ns, consistency, site_verdict, region_verdict, speed_m_s,"
      " centre_lat_e7, centre_lon_e7, radius_m, landmarks_used,"
      " measurement_ids, prev_hash, hash, signature)"
      " SELECT c.id, v.id, 42, to_timestamp(0), 1, 1, 0, 0, 299792458, 0, 0,"
      " 0, 0, '{}', decode(repeat('00', 32), 'hex'), sha256('x'::bytea),"
      " decode(repeat('cd', 64), 'hex') FROM chips c, verifiers v"
      " WHERE c.id = %" PRId64 " RETURNING id",
      f.idle_chip_id);
  char err[512] = "";
  ck_assert_int_ne(tu_sql(ver, sql, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "may not write attestations of verifier"), "%s", err);
  char bind[256];
  assert_allowed(f.conninfo, fmt(bind, sizeof bind, "UPDATE verifiers SET db_role = 'ver_test'"
                                                    " WHERE id > %" PRId64, (int64_t)0));
  assert_allowed(ver, sql);
  assert_allowed(ver, fmt(sql, sizeof sql,
                          "INSERT INTO alerts (kind, chip_id, detail, attestation_id)"
                          " SELECT 'chip_dark', %" PRId64 ", 'no fresh landmarks', max(id)"
                          " FROM attestations RETURNING id",
                          f.idle_chip_id));
  assert_allowed(ver, "UPDATE alerts SET cleared_at = now() WHERE kind = 'chip_dark'"
                      " AND cleared_at IS NULL");
  assert_allowed(ver, "UPDATE alerts SET detail = 'still' WHERE kind = 'site_excluded'");
  ck_assert_int_eq(tu_sql_int(f.conninfo, "SELECT count(*) FROM attestations"), 3);
  ck_assert_int_eq(tu_sql_int(f.conninfo, "SELECT count(*) FROM alerts WHERE kind = 'chip_dark'"
                                          " AND cleared_at IS NOT NULL"),
                   2);
  /* No rewriting history. */
  assert_denied(ver, "UPDATE attestations SET region_verdict = 2");
  assert_denied(ver, "UPDATE attestations SET hash = sha256(hash)");
  assert_denied(ver, "DELETE FROM attestations");
  assert_denied(ver, "TRUNCATE attestations");
  assert_denied(ver, "DELETE FROM measurements");
  assert_denied(ver, "UPDATE measurements SET rtt_ns = 1");
  assert_denied(ver, "TRUNCATE measurements");
  assert_denied(ver, "DELETE FROM measurements_default");
  assert_denied(ver, "INSERT INTO measurements (" V2_COLUMNS ") SELECT c.id, l.id,"
                     V2_VALUES " FROM chips c, landmarks l LIMIT 1");
  assert_denied(ver, "DELETE FROM alerts");
  assert_denied(ver, "UPDATE alerts SET kind = 'chip_moved'");
  assert_denied(ver, "UPDATE alerts SET raised_at = now()");
  assert_denied(ver, "INSERT INTO landmark_links (" V2_LINK_COLUMNS ") SELECT 1, 2,"
                     V2_LINK_VALUES);
  assert_denied(ver, "INSERT INTO verifiers (name, public_key)"
                     " VALUES ('v2', decode(repeat('ef', 32), 'hex'))");
  assert_denied(ver, "UPDATE verifiers SET public_key = decode(repeat('ef', 32), 'hex')");
  assert_denied(ver, "UPDATE chips SET active = false");
  assert_denied(ver, "DELETE FROM chip_regions");
  assert_denied(ver, "UPDATE landmarks SET lat = 0");
  assert_denied(ver, "SELECT chiploc_ensure_partitions(1)");
  ck_assert_int_eq(tu_sql_int(f.conninfo, "SELECT count(*) FROM attestations"), 3);
  ck_assert_int_eq(tu_sql_int(f.conninfo, "SELECT count(*) FROM measurements"), 4);
  free(ver);
  fixture_fini(&f);
}
END_TEST

/* ---- the landmark role ----------------------------------------------------------------- */

START_TEST(test_landmark_role_links) {
  fixture f;
  fixture_init(&f, "cl_views_landmark", 0);
  char *lm = login_member(f.conninfo, "lm_views_test", "chiploc_landmark");
  char sql[1024];
  /* Bound to the landmark it probes from: links from any other are refused. */
  snprintf(sql, sizeof sql, "UPDATE landmarks SET db_role = 'lm_views_test' WHERE id = %" PRId64,
           f.lm_id);
  assert_allowed(f.conninfo, sql);
  snprintf(sql, sizeof sql,
           "INSERT INTO landmark_links (" V2_LINK_COLUMNS ") VALUES (%" PRId64 ", %" PRId64 ","
           V2_LINK_VALUES ")",
           f.lm_id, f.quiet_id);
  assert_allowed(lm, sql);
  /* Not a protocol 1 link: the landmark may not name the challenge. */
  snprintf(sql, sizeof sql,
           "INSERT INTO landmark_links (from_landmark_id, to_landmark_id, nonce, seq,"
           " issued_at_ns, challenge_sig, chip_sig, rtt_ns, bound_m, probe_count, probes_sent,"
           " measured_at, measured_at_ns, landmark_sig) VALUES (%" PRId64 ", %" PRId64 ","
           " decode(repeat('06', 32), 'hex'), 1, 1, decode(repeat('02', 64), 'hex'),"
           " decode(repeat('03', 64), 'hex'), 5000000, 749481, 4, 5, now(), 1,"
           " decode(repeat('04', 64), 'hex'))",
           f.lm_id, f.quiet_id);
  assert_denied(lm, sql);
  ck_assert_int_eq(tu_sql_int(f.conninfo, "SELECT count(*) FROM landmark_links"), 1);
  assert_denied(lm, "SELECT count(*) FROM landmark_links");
  assert_denied(lm, "UPDATE landmark_links SET rtt_ns = 1");
  assert_denied(lm, "DELETE FROM landmark_links");
  assert_denied(lm, "INSERT INTO attestations (chip_id, verifier_id, round_end_ns, round_end,"
                    " window_ns, consistency, site_verdict, region_verdict, speed_m_s,"
                    " centre_lat_e7, centre_lon_e7, radius_m, landmarks_used, measurement_ids,"
                    " prev_hash, hash, signature) SELECT c.id, v.id, 43, to_timestamp(0), 1, 1,"
                    " 0, 0, 299792458, 0, 0, 0, 0, '{}', decode(repeat('00', 32), 'hex'),"
                    " sha256('y'::bytea), decode(repeat('cd', 64), 'hex')"
                    " FROM chips c, verifiers v LIMIT 1");
  assert_denied(lm, "SELECT count(*) FROM attestations");
  assert_denied(lm, "INSERT INTO alerts (kind, landmark_id) VALUES ('landmark_misplaced', 1)");
  assert_denied(lm, "SELECT count(*) FROM alerts");
  assert_denied(lm, "SELECT count(*) FROM verifiers");
  assert_denied(lm, "SELECT count(*) FROM chip_status");
  assert_denied(lm, "SELECT count(*) FROM landmark_health");
  assert_denied(lm, "SELECT count(*) FROM open_alerts");
  free(lm);
  fixture_fini(&f);
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *su = suite_create("views");
  TCase *tc = tcase_create("postgres");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_dashboard_reads_views);
  tcase_add_test(tc, test_dashboard_sees_views_only);
  tcase_add_test(tc, test_dashboard_ignores_protocol_1);
  tcase_add_test(tc, test_verifier_role);
  tcase_add_test(tc, test_landmark_role_links);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
