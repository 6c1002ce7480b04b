/*
 * The verifier believes only what signatures by active, enrolled keys
 * prove (docs/THREAT_MODEL.md, "Database tampering"). Each case is an attack
 * that changed a verdict before: rows written into the database, by a
 * landmark's login or by whoever holds more rights there, that the real
 * `chiploc verify` must refuse, count and alert on, leaving every verdict
 * what the honest rows alone give.
 *
 * The chips really answer from New York. Honest rows come from Frankfurt,
 * Paris and London with long round trips (CONSISTENT / SITE_CONSISTENT /
 * UNDETERMINED for a site declared in Paris and France allowed). One short
 * round trip believed from near Paris would make it INSIDE France.
 *
 * Every row is a protocol 2 record (tests/tu_record.c); a protocol 1 row
 * left from before the upgrade is no candidate at all: not believed, not
 * refused, no alert.
 */
#include "cl_err.h"
#include "cl_layout.h"
#include "cl_probe.h"
#include "cl_store.h"
#include "cl_vstore.h"
#include "testutil.h"
#include "tu_record.h"

#include <check.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NYC, FRA, PAR, LON, PAR2, PAR3, LIL, N_LM };
static const struct {
  const char *name;
  double lat, lon;
} LM[N_LM] = {
    {"lm-nyc", 40.7128, -74.0060},      {"lm-fra", 50.1109, 8.6821},
    {"lm-par", 48.8566, 2.3522},        {"lm-lon", 51.5074, -0.1278},
    {"lm-versailles", 48.8049, 2.1204}, {"lm-orly", 48.7262, 2.3652},
    {"lm-lille", 50.6292, 3.0573},
};

/* France, roughly: the allowed region. */
static const char FRANCE[] =
    "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[-4.8,42.3],[8.2,42.3],[8.2,51.1],"
    "[-4.8,51.1],[-4.8,42.3]]]]}";

typedef struct {
  char *conninfo, *dir, *log;
  cl_store *s;
  cl_key *lm[N_LM];
  int64_t lm_id[N_LM];
  uint64_t now_ns;
} world;

static world W;

static void sqlf(const char *conninfo, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sqlf(const char *conninfo, const char *fmt, ...) {
  char sql[16384], err[512] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  ck_assert_msg(tu_sql(conninfo, sql, err, sizeof err) == 0, "%s: %s", sql, err);
}

/* A chip row: key (the chip's secret, which the test holds) and id. */
typedef struct {
  cl_key *key;
  int64_t id;
} chip;

static chip enroll(const char *serial) {
  chip c;
  ck_assert_int_eq(cl_key_generate(&c.key), CL_OK);
  char err[512] = "";
  ck_assert_msg(cl_store_chip_enroll(W.s, cl_key_public(c.key), serial, "op-trust", 48.8566,
                                     2.3522, &c.id, err, sizeof err) == CL_OK,
                "%s", err);
  ck_assert_msg(cl_store_chip_allow(W.s, c.id, "FRA", err, sizeof err) == CL_OK, "%s", err);
  return c;
}

/*
 * A record of chip c (a probe target: a chip, or a landmark's key for a
 * link) that landmark `signer` made (NULL: all-zero signatures) in the name
 * of landmark key `named`, fastest RTT rtt_ns, measured at measured_ns.
 */
static cl_measurement record(const chip *c, const cl_key *signer, const cl_key *named,
                             uint64_t rtt_ns, uint64_t measured_ns) {
  cl_measurement m;
  ck_assert_int_eq(tu_record_rtt(&m, signer ? signer : named, c->key, rtt_ns, measured_ns),
                   CL_OK);
  if (!signer) {
    memset(m.hs.landmark_sig, 0, CL_SIG_LEN);
    memset(m.hs.chip_sig, 0, CL_SIG_LEN);
    memset(m.transcript_sig, 0, CL_SIG_LEN);
    memset(m.sig, 0, CL_SIG_LEN);
  }
  return m;
}

/* Size of an INSERT of one row (the blobs in hex). */
#define ROW_SQL_LEN 8192

/*
 * The INSERT of a protocol 2 row as the landmark writes it: a measurement
 * (link = 0) of chip `subject` naming landmark `signer`, or a link
 * (link = 1) from landmark `signer` to landmark `subject` (ids). nonce and
 * seq are the fastest probe's.
 */
static void row_sql(char *sql, size_t len, int link, int64_t subject, int64_t signer,
                    const cl_measurement *m) {
  uint8_t hs[CL_HS_BLOB_LEN], probes[CL_PROBES_BLOB_MAX];
  cl_hs_blob_put(hs, &m->hs);
  size_t np = cl_probes_blob_put(probes, m->probes, m->count);
  const cl_probe_entry *f = &m->probes[cl_measurement_fastest(m)];
  char nonce[2 * CL_NONCE_LEN + 1], hs_hex[2 * CL_HS_BLOB_LEN + 1],
      probes_hex[2 * CL_PROBES_BLOB_MAX + 1], ts[2 * CL_SIG_LEN + 1], ls[2 * CL_SIG_LEN + 1];
  cl_hex_encode(nonce, f->nonce, CL_NONCE_LEN);
  cl_hex_encode(hs_hex, hs, CL_HS_BLOB_LEN);
  cl_hex_encode(probes_hex, probes, np);
  cl_hex_encode(ts, m->transcript_sig, CL_SIG_LEN);
  cl_hex_encode(ls, m->sig, CL_SIG_LEN);
  int n = snprintf(
      sql, len,
      "INSERT INTO %s, suite, nonce, seq, handshake, probes, transcript_sig, rtt_ns, bound_m,"
      "%s probe_count, probes_sent, measured_at, measured_at_ns, landmark_sig) VALUES (%" PRId64
      ", %" PRId64 ", %" PRIu32 ", '\\x%s', %" PRIu64 ", '\\x%s', '\\x%s', '\\x%s', %" PRIu64
      ", %" PRIu64 ",%s %" PRIu32 ", %" PRIu32 ", to_timestamp(%" PRIu64 " / 1e9), %" PRIu64
      ", '\\x%s')",
      link ? "landmark_links (to_landmark_id, from_landmark_id"
           : "measurements (chip_id, landmark_id",
      link ? "" : " est_speed_m_s, est_bound_m,", subject, signer, m->hs.suite, nonce, f->seq,
      hs_hex, probes_hex, ts, m->rtt_ns, cl_bound_m(m->rtt_ns, CL_SPEED_C),
      link ? "" : " 2e8, 1,", m->count, m->probes_sent, m->measured_unix_ns, m->measured_unix_ns,
      ls);
  ck_assert_int_lt(n, (int)len);
}

/*
 * The INSERT of a protocol 1 row as landmarks wrote them before the
 * upgrade (measurement or link as in row_sql), with random signature bytes:
 * this version can check none of them. Only with triggers off (the guard
 * refuses protocol 1 rows since migration 0005); such rows stay in an
 * upgraded database.
 */
static void legacy_sql(char *sql, size_t len, int link, int64_t subject, int64_t signer,
                       uint64_t rtt_ns, uint64_t measured_ns) {
  uint8_t b[CL_NONCE_LEN + 3 * CL_SIG_LEN];
  randombytes_buf(b, sizeof b);
  char hex[2 * sizeof b + 1];
  cl_hex_encode(hex, b, sizeof b);
  snprintf(sql, len,
           "SET session_replication_role = replica; INSERT INTO %s, protocol, nonce, seq,"
           " issued_at_ns, challenge_sig, chip_sig, rtt_ns, bound_m,%s probe_count, probes_sent,"
           " measured_at, measured_at_ns, landmark_sig) VALUES (%" PRId64 ", %" PRId64 ", 1,"
           " '\\x%.64s', 1, %" PRIu64 ", '\\x%.128s', '\\x%.128s', %" PRIu64 ", %" PRIu64 ",%s 3,"
           " 3, to_timestamp(%" PRIu64 " / 1e9), %" PRIu64 ", '\\x%.128s');"
           " SET session_replication_role = DEFAULT",
           link ? "landmark_links (to_landmark_id, from_landmark_id"
                : "measurements (chip_id, landmark_id",
           link ? "" : " est_speed_m_s, est_bound_m,", subject, signer, hex,
           measured_ns - 100000000u, hex + 64, hex + 192, rtt_ns,
           cl_bound_m(rtt_ns, CL_SPEED_C), link ? "" : " 2e8, 1,", measured_ns, measured_ns,
           hex + 320);
}

static void insert_sql(char *sql, size_t len, int64_t chip_id, int64_t landmark_id,
                       const cl_measurement *m) {
  row_sql(sql, len, 0, chip_id, landmark_id, m);
}

static void insert_link_sql(char *sql, size_t len, int from, int to, const cl_measurement *m) {
  row_sql(sql, len, 1, W.lm_id[to], W.lm_id[from], m);
}

/* Inserts as the database's owner: what a login with more rights than a
 * landmark's (or the database itself) can do. */
static void insert_owner(const chip *c, int lm, const cl_measurement *m) {
  char sql[ROW_SQL_LEN];
  insert_sql(sql, sizeof sql, c->id, W.lm_id[lm], m);
  sqlf(W.conninfo, "%s", sql);
}

/* The honest rows: long round trips from Frankfurt, Paris and London. */
static void honest(const chip *c) {
  static const int who[3] = {FRA, PAR, LON};
  static const uint64_t rtt[3] = {85000000u, 80000000u, 78000000u};
  for (int i = 0; i < 3; i++) {
    cl_measurement m = record(c, W.lm[who[i]], W.lm[who[i]], rtt[i], W.now_ns - 150000000000ull);
    insert_owner(c, who[i], &m);
  }
}

/* Short round trips that put the chip within ~20 km of Paris. */
static const uint64_t SHORT_RTT[N_LM] = {0,       3300000u, 140000u, 2400000u,
                                         150000u, 160000u,  1400000u};

/* "consistency/site/region" of the chip's latest attestation. */
static char *verdict(const chip *c) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT consistency || '/' || site_verdict || '/' || region_verdict FROM attestations"
           " WHERE chip_id = %" PRId64 " ORDER BY round_end_ns DESC LIMIT 1",
           c->id);
  char *v = tu_sql_value(W.conninfo, sql);
  ck_assert_msg(v != NULL, "chip %" PRId64 " has no attestation", c->id);
  return v;
}

static long long open_alerts(const char *kind, int lm) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM alerts WHERE kind = '%s' AND landmark_id = %" PRId64
           " AND cleared_at IS NULL",
           kind, W.lm_id[lm]);
  return tu_sql_int(W.conninfo, sql);
}

static void world_init(const char *db) {
  W.conninfo = tu_db_create(db);
  W.dir = tu_tmpdir("cl-trust");
  W.log = malloc(strlen(W.dir) + 16);
  sprintf(W.log, "%s/cli.log", W.dir);
  char err[512] = "";
  ck_assert_msg(cl_store_connect(&W.s, W.conninfo, err, sizeof err) == CL_OK, "%s", err);
  int applied = 0;
  ck_assert_msg(cl_store_migrate(W.s, &applied, err, sizeof err) == CL_OK, "%s", err);
  for (int i = 0; i < N_LM; i++) {
    ck_assert_int_eq(cl_key_generate(&W.lm[i]), CL_OK);
    ck_assert_msg(cl_store_landmark_add(W.s, LM[i].name, cl_key_public(W.lm[i]), LM[i].lat,
                                        LM[i].lon, &W.lm_id[i], err, sizeof err) == CL_OK,
                  "%s", err);
  }
  ck_assert_msg(cl_store_region_put(W.s, "FRA", FRANCE, 5, err, sizeof err) == CL_OK, "%s", err);
  W.now_ns = tu_unix_ns();
}

static void world_fini(void) {
  for (int i = 0; i < N_LM; i++) cl_key_destroy(&W.lm[i]);
  cl_store_destroy(&W.s);
  free(W.conninfo);
  free(W.dir);
  free(W.log);
}

/* Makes and registers the verifier's key; returns the key file (owned). */
static char *verifier_key(void) {
  char *vkey = tu_keygen(W.dir, "verifier", W.log);
  char *vhex = tu_key_hex(vkey);
  ck_assert_int_eq(tu_cli(W.log, "verifier", "add", "--db", W.conninfo, "--name", "v-trust",
                          "--pubkey", vhex, NULL),
                   0);
  return vkey;
}

/* Runs one round of the real verifier (window 300 s, 3 landmarks). */
static void verify_round(const char *vlog) {
  char *vkey = verifier_key();
  ck_assert_int_eq(tu_cli(vlog, "verify", "--db", W.conninfo, "--key", vkey, "--window", "300",
                          "--min-landmarks", "3", NULL),
                   0);
}

START_TEST(test_forged_rows_change_nothing) {
  world_init("cl_trust");
  char err[512] = "", sql[ROW_SQL_LEN];
  /* The New York landmark's own database login, bound to it. */
  sqlf(W.conninfo,
       "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lm_trust_nyc') THEN"
       " CREATE ROLE lm_trust_nyc LOGIN; END IF; END $$; GRANT chiploc_landmark TO lm_trust_nyc");
  ck_assert_int_eq(tu_cli(W.log, "landmark", "bind", "--db", W.conninfo, "--name", "lm-nyc",
                          "--db-role", "lm_trust_nyc", NULL),
                   0);
  char *nyc_login = tu_conninfo_as(W.conninfo, "lm_trust_nyc");

  chip honest_only = enroll("T-HONEST");
  honest(&honest_only);

  /* 1. The review's attack: New York's login writes rows naming Frankfurt,
   * Paris and London, short round trips, all-zero signatures. The database
   * refuses them; with more rights than a landmark's (the owner here) they
   * get in, and the verifier refuses them. */
  chip named = enroll("T-NAMED");
  honest(&named);
  static const int victims[3] = {FRA, PAR, LON};
  for (int i = 0; i < 3; i++) {
    int v = victims[i];
    cl_measurement m = record(&named, NULL, W.lm[v], SHORT_RTT[v], W.now_ns - 120000000000ull);
    insert_sql(sql, sizeof sql, named.id, W.lm_id[v], &m);
    ck_assert_int_ne(tu_sql(nyc_login, sql, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "may not write measurements of landmark"), "%s", err);
    insert_owner(&named, v, &m);
  }

  /* 2. New York's login, all-zero signatures in its own name: the database
   * cannot check Ed25519 and takes them; the verifier does not. */
  chip zero_own = enroll("T-ZERO-OWN");
  honest(&zero_own);
  cl_measurement z = record(&zero_own, NULL, W.lm[NYC], 50000u, W.now_ns - 120000000000ull);
  insert_sql(sql, sizeof sql, zero_own.id, W.lm_id[NYC], &z);
  ck_assert_msg(tu_sql(nyc_login, sql, err, sizeof err) == 0, "%s", err);

  /* 3. A genuine signature by New York's key on a row naming Paris. */
  chip wrong_key = enroll("T-WRONG-KEY");
  honest(&wrong_key);
  cl_measurement wk = record(&wrong_key, W.lm[NYC], W.lm[NYC], SHORT_RTT[PAR],
                             W.now_ns - 120000000000ull);
  insert_owner(&wrong_key, PAR, &wk);

  /* 4. A row dated after the database received it (a landmark clock ahead,
   * or a signer preparing rows for later): Paris's genuine signature, but
   * inserted ten minutes before its signed time. */
  chip future = enroll("T-FUTURE");
  honest(&future);
  cl_measurement fu = record(&future, W.lm[PAR], W.lm[PAR], SHORT_RTT[PAR],
                             W.now_ns - 120000000000ull);
  char fsql[ROW_SQL_LEN + 256];
  insert_sql(sql, sizeof sql, future.id, W.lm_id[PAR], &fu);
  /* Triggers off, as a superuser may: the insert time is then the client's. */
  snprintf(fsql, sizeof fsql,
           "SET session_replication_role = replica; %s; UPDATE measurements SET inserted_at ="
           " now() - interval '10 minutes' WHERE chip_id = %" PRId64 " AND rtt_ns = %" PRIu64,
           sql, future.id, SHORT_RTT[PAR]);
  sqlf(W.conninfo, "%s", fsql);

  /* 5. A retired landmark's genuine rows measured after its retirement, and
   * a revoked one's received after its revocation. */
  chip retired = enroll("T-RETIRED");
  honest(&retired);
  cl_measurement re = record(&retired, W.lm[PAR2], W.lm[PAR2], SHORT_RTT[PAR2],
                             W.now_ns - 120000000000ull);
  insert_owner(&retired, PAR2, &re);
  ck_assert_int_eq(tu_cli(W.log, "landmark", "retire", "--db", W.conninfo, "--name",
                          "lm-versailles", "--at", "1970-01-01 00:10:00+00", NULL),
                   0);
  /* Revoking it afterwards (its old key may be stolen, say) keeps the
   * earlier time: no command moves a cut-off later and brings rows back. */
  ck_assert_int_eq(tu_cli(W.log, "landmark", "retire", "--db", W.conninfo, "--name",
                          "lm-versailles", "--revoke", NULL),
                   0);
  ck_assert_int_eq(tu_cli(W.log, "landmark", "retire", "--db", W.conninfo, "--name",
                          "lm-versailles", "--at", "2030-01-01", NULL),
                   0);
  char *cut = tu_sql_value(W.conninfo, "SELECT retired_at = '1970-01-01 00:10:00+00' AND"
                                       " retire_kind = 'revoked' FROM landmarks"
                                       " WHERE name = 'lm-versailles'");
  ck_assert_msg(cut && strcmp(cut, "t") == 0, "retirement moved: %s", cut ? cut : "(none)");
  free(cut);
  /* An infinite time is refused, before it can reach a round. */
  ck_assert_int_eq(tu_cli(W.log, "landmark", "retire", "--db", W.conninfo, "--name", "lm-orly",
                          "--at", "-infinity", NULL),
                   2);
  chip revoked = enroll("T-REVOKED");
  honest(&revoked);
  char at[64];
  snprintf(at, sizeof at, "%" PRIu64, (uint64_t)((W.now_ns - 60000000000ull) / 1000000000ull));
  char *at_ts = NULL;
  {
    char q[128];
    snprintf(q, sizeof q, "SELECT to_timestamp(%s)::text", at);
    at_ts = tu_sql_value(W.conninfo, q);
  }
  ck_assert_int_eq(tu_cli(W.log, "landmark", "retire", "--db", W.conninfo, "--name", "lm-orly",
                          "--revoke", "--at", at_ts, NULL),
                   0);
  /* Measured before the revocation, received after it: the database no
   * longer takes rows of a revoked landmark, from anyone; one that got in
   * anyway (triggers off, as a superuser may) is refused by the verifier. */
  cl_measurement rv = record(&revoked, W.lm[PAR3], W.lm[PAR3], SHORT_RTT[PAR3],
                             W.now_ns - 120000000000ull);
  insert_sql(sql, sizeof sql, revoked.id, W.lm_id[PAR3], &rv);
  ck_assert_int_ne(tu_sql(W.conninfo, sql, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "is revoked"), "%s", err);
  snprintf(fsql, sizeof fsql, "SET session_replication_role = replica; %s", sql);
  sqlf(W.conninfo, "%s", fsql);

  /* The insert time is the row's, not its transaction's start (which the
   * writer chooses): a transaction held open cannot date rows earlier. */
  cl_measurement late = record(&honest_only, W.lm[FRA], W.lm[FRA], 90000000u,
                               W.now_ns - 150000000000ull);
  insert_sql(sql, sizeof sql, honest_only.id, W.lm_id[FRA], &late);
  snprintf(fsql, sizeof fsql,
           "BEGIN; CREATE TABLE xact_start AS SELECT now() AS t; SELECT pg_sleep(1.2); %s; COMMIT",
           sql);
  sqlf(W.conninfo, "%s", fsql);
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT count(*) FROM measurements m, xact_start x"
                                          " WHERE m.rtt_ns = 90000000"
                                          " AND m.inserted_at >= x.t + interval '1 second'"),
                   1);

  /* 7. Garbage rows in Paris's name, faster than its genuine short row:
   * more than the one candidate read first. The deeper read finds the
   * genuine row, so the chip keeps its honest verdict, which here is INSIDE
   * (the garbage alone would have taken Paris's bound out of the round). */
  chip junk = enroll("T-JUNK");
  honest(&junk);
  cl_measurement genuine_short = record(&junk, W.lm[PAR], W.lm[PAR], SHORT_RTT[PAR],
                                        W.now_ns - 120000000000ull);
  insert_owner(&junk, PAR, &genuine_short);
  for (int i = 0; i < 6; i++) {
    cl_measurement g = record(&junk, NULL, W.lm[PAR], SHORT_RTT[PAR] - 1000u - (uint64_t)i,
                              W.now_ns - 110000000000ull);
    insert_owner(&junk, PAR, &g);
  }

  /* 8. Genuine short records of Paris edited after signing: the entries
   * reordered, the slowest entry dropped, the fastest entry dropped. The
   * first and the last are no record a landmark signs (seqs out of order,
   * rtt_ns not the smallest entry's: malformed), the second no longer what
   * Paris signed (bad_signature). */
  chip edited = enroll("T-EDITED");
  honest(&edited);
  for (int k = 0; k < 3; k++) {
    cl_measurement e = record(&edited, W.lm[PAR], W.lm[PAR], SHORT_RTT[PAR],
                              W.now_ns - 100000000000ull);
    /* tu_record_rtt's entries: slower, fastest, slowest. */
    ck_assert_uint_eq(cl_measurement_fastest(&e), 1);
    if (k == 0) {
      cl_probe_entry t = e.probes[0];
      e.probes[0] = e.probes[2];
      e.probes[2] = t;
    } else if (k == 1) {
      e.count = 2;
    } else {
      e.probes[1] = e.probes[2];
      e.count = 2;
    }
    insert_owner(&edited, PAR, &e);
  }

  /* 9. Protocol 1 rows kept from before the upgrade, for Lille, which has no
   * other row: a measurement short enough to make a chip INSIDE and a link
   * to Paris faster than light. The verifier reads neither: not believed,
   * not refused, no alert on Lille. */
  chip legacy = enroll("T-LEGACY");
  honest(&legacy);
  legacy_sql(sql, sizeof sql, 0, legacy.id, W.lm_id[LIL], SHORT_RTT[LIL],
             W.now_ns - 120000000000ull);
  sqlf(W.conninfo, "%s", sql);
  legacy_sql(sql, sizeof sql, 1, W.lm_id[PAR], W.lm_id[LIL], 1000u, W.now_ns - 120000000000ull);
  sqlf(W.conninfo, "%s", sql);
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT (SELECT count(*) FROM measurements WHERE"
                                          " protocol = 1) + (SELECT count(*) FROM landmark_links"
                                          " WHERE protocol = 1)"),
                   2);

  /* 6. Forged landmark links: Frankfurt to Paris faster than light, zero
   * signatures, which would blame a landmark as misplaced. From New York's
   * login the database refuses a link from another landmark. */
  chip par_key = {W.lm[PAR], 0};
  cl_measurement fl = record(&par_key, NULL, W.lm[FRA], 1000u, W.now_ns - 120000000000ull);
  insert_link_sql(sql, sizeof sql, FRA, PAR, &fl);
  ck_assert_int_ne(tu_sql(nyc_login, sql, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "may not write links of landmark"), "%s", err);
  sqlf(W.conninfo, "%s", sql);
  /* A genuinely signed link, Frankfurt to the retired Versailles, faster
   * than light: the probed landmark's key no longer counts either. */
  chip peer = {W.lm[PAR2], 0};
  cl_measurement gl = record(&peer, W.lm[FRA], W.lm[FRA], 1000u, W.now_ns - 120000000000ull);
  insert_link_sql(sql, sizeof sql, FRA, PAR2, &gl);
  sqlf(W.conninfo, "%s", sql);

  char vlog[512];
  snprintf(vlog, sizeof vlog, "%s/verify.log", W.dir);
  verify_round(vlog);

  /* Every chip keeps the honest verdict: CONSISTENT / SITE_CONSISTENT /
   * UNDETERMINED. Before, each of these became INSIDE (or, for the zero
   * rows in New York's name, an OUTSIDE near New York). */
  const chip *all[] = {&honest_only, &named,   &zero_own, &wrong_key, &future,
                       &retired,     &revoked, &edited,  &legacy};
  const char *names[] = {"honest",  "named",   "zero_own", "wrong_key", "future",
                         "retired", "revoked", "edited",   "legacy"};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    char *v = verdict(all[i]);
    ck_assert_msg(strcmp(v, "0/1/3") == 0, "chip %s: verdict %s, want 0/1/3", names[i], v);
    free(v);
  }
  char *jv = verdict(&junk);
  ck_assert_msg(strcmp(jv, "0/1/1") == 0, "chip junk: verdict %s, want 0/1/1 (INSIDE)", jv);
  free(jv);
  /* Refused rows are alerted on, naming the landmark the rows name. */
  ck_assert_int_eq(open_alerts("landmark_bad_records", PAR), 1);
  ck_assert_int_eq(open_alerts("landmark_bad_records", FRA), 1);
  ck_assert_int_eq(open_alerts("landmark_bad_records", LON), 1);
  ck_assert_int_eq(open_alerts("landmark_bad_records", NYC), 1);
  ck_assert_int_eq(open_alerts("landmark_bad_records", PAR2), 1);
  ck_assert_int_eq(open_alerts("landmark_bad_records", PAR3), 1);
  /* The protocol 1 rows are no refusals. */
  ck_assert_int_eq(open_alerts("landmark_bad_records", LIL), 0);
  /* The forged link blames nobody. */
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT count(*) FROM alerts WHERE kind ="
                                          " 'landmark_misplaced'"),
                   0);
  /* And each refusal is in the log, by reason. */
  char *text = tu_read_file(vlog);
  ck_assert_ptr_nonnull(text);
  /* One line per landmark: the reasons are on the landmark's own line. */
  static const char *const lines[][2] = {
      {"msg=\"rows refused\" landmark=\"lm-par\"", "future=1"},
      {"msg=\"rows refused\" landmark=\"lm-par\"", "malformed=2"},
      {"msg=\"rows refused\" landmark=\"lm-versailles\"", "retired=2"},
      {"msg=\"rows refused\" landmark=\"lm-orly\"", "revoked=1"},
      {"msg=\"rows refused\" landmark=\"lm-nyc\"", "bad_signature=1"},
  };
  for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
    const char *line = strstr(text, lines[i][0]);
    ck_assert_msg(line, "no line %s in %s", lines[i][0], text);
    const char *eol = strchr(line, '\n');
    const char *reason = strstr(line, lines[i][1]);
    ck_assert_msg(reason && (!eol || reason < eol), "%s: no %s on its line", lines[i][0],
                  lines[i][1]);
  }
  char detail_sql[256];
  snprintf(detail_sql, sizeof detail_sql,
           "SELECT detail FROM alerts WHERE kind = 'landmark_bad_records' AND landmark_id = %" PRId64,
           W.lm_id[PAR]);
  char *detail = tu_sql_value(W.conninfo, detail_sql);
  ck_assert_msg(detail && strstr(detail, "bad_signature=9") && strstr(detail, "future=1") &&
                    strstr(detail, "malformed=2"),
                "%s", detail ? detail : "(none)");
  free(detail);
  ck_assert_msg(!strstr(text, "landmark=\"lm-lille\""), "Lille named in %s", text);
  free(text);
  free(at_ts);
  free(nyc_login);
  world_fini();
}
END_TEST

/* A verifier whose clock runs ahead of the database's would attest chips
 * before their measurements exist, then skip the rounds it attested early:
 * the round is refused and verifier_clock raised, and cleared by the next
 * round that runs. */
START_TEST(test_clock_ahead) {
  world_init("cl_trust_clock");
  chip c = enroll("T-CLOCK");
  honest(&c);
  char *vkey = verifier_key();
  char vlog[512], ahead[32];
  snprintf(vlog, sizeof vlog, "%s/verify-clock.log", W.dir);
  snprintf(ahead, sizeof ahead, "%llu", (unsigned long long)(tu_unix_ns() / 1000000000ull + 3600));
  ck_assert_int_eq(tu_cli(vlog, "verify", "--db", W.conninfo, "--key", vkey, "--round-end", ahead,
                          NULL),
                   1);
  char *text = tu_read_file(vlog);
  ck_assert_msg(text && strstr(text, "verifier clock ahead of the database"), "%s", text);
  free(text);
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT count(*) FROM attestations"), 0);
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT count(*) FROM alerts WHERE kind ="
                                          " 'verifier_clock' AND cleared_at IS NULL"
                                          " AND verifier_id IS NOT NULL"),
                   1);
  /* Refused again: still one open alert. */
  ck_assert_int_eq(tu_cli(vlog, "verify", "--db", W.conninfo, "--key", vkey, "--round-end", ahead,
                          NULL),
                   1);
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT count(*) FROM alerts WHERE kind ="
                                          " 'verifier_clock'"),
                   1);
  /* Clocks agree again: the round runs and the alert is cleared. */
  ck_assert_int_eq(tu_cli(vlog, "verify", "--db", W.conninfo, "--key", vkey, NULL), 0);
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT count(*) FROM attestations"), 1);
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT count(*) FROM alerts WHERE kind ="
                                          " 'verifier_clock' AND cleared_at IS NOT NULL"),
                   1);
  /* Migration 0004 kept the rule that an alert is not cleared before it
   * was raised. */
  char err[512] = "";
  ck_assert_int_ne(tu_sql(W.conninfo, "UPDATE alerts SET cleared_at = raised_at - interval '1 s'",
                          err, sizeof err),
                   0);
  ck_assert_msg(strstr(err, "alerts_check"), "%s", err);
  /* --round-end is refused with --follow, and must be a time. */
  ck_assert_int_eq(tu_cli(vlog, "verify", "--db", W.conninfo, "--key", vkey, "--round-end", ahead,
                          "--follow", NULL),
                   2);
  ck_assert_int_eq(tu_cli(vlog, "verify", "--db", W.conninfo, "--key", vkey, "--round-end",
                          "yesterday", NULL),
                   2);
  world_fini();
}
END_TEST

/* A verifier's login writes only its own verifier's attestations, after
 * `chiploc verifier bind`; the verifier checks its binding before a round.
 * And what the verifier loads of a landmark's lifecycle: in force is 0. */
START_TEST(test_verifier_binding) {
  world_init("cl_trust_bind");
  chip c = enroll("T-BIND");
  honest(&c);
  sqlf(W.conninfo,
       "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vtrust_login') THEN"
       " CREATE ROLE vtrust_login LOGIN; END IF; END $$; GRANT chiploc_verifier TO vtrust_login");
  char *login = tu_conninfo_as(W.conninfo, "vtrust_login");
  char *vkey = verifier_key();
  char *okey = tu_keygen(W.dir, "other", W.log);
  char *ohex = tu_key_hex(okey);
  ck_assert_int_eq(tu_cli(W.log, "verifier", "add", "--db", W.conninfo, "--name", "v-other",
                          "--pubkey", ohex, NULL),
                   0);
  char vlog[512];
  snprintf(vlog, sizeof vlog, "%s/verify-bind.log", W.dir);
  /* Unbound: refused before any round, naming the fix. */
  ck_assert_int_eq(tu_cli(vlog, "verify", "--db", login, "--key", vkey, NULL), 1);
  char *text = tu_read_file(vlog);
  ck_assert_msg(text && strstr(text, "run: chiploc verifier bind --name v-trust --db-role "
                                     "vtrust_login"),
                "%s", text);
  free(text);
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT count(*) FROM attestations"), 0);
  /* A group role cannot be bound. */
  ck_assert_int_eq(tu_cli(W.log, "verifier", "bind", "--db", W.conninfo, "--name", "v-trust",
                          "--db-role", "chiploc_verifier", NULL),
                   2);
  ck_assert_int_eq(tu_cli(W.log, "verifier", "bind", "--db", W.conninfo, "--name", "v-trust",
                          "--db-role", "vtrust_login", NULL),
                   0);
  ck_assert_int_eq(tu_cli(vlog, "verify", "--db", login, "--key", vkey, NULL), 0);
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT count(*) FROM attestations"), 1);
  /* Not another verifier's chain: no record in v-other's name. */
  char err[512] = "";
  ck_assert_int_ne(tu_sql(login,
                          "INSERT INTO attestations (chip_id, verifier_id, round_end_ns, round_end,"
                          " window_ns, consistency, site_verdict, region_verdict, speed_m_s,"
                          " centre_lat_e7, centre_lon_e7, radius_m, landmarks_used,"
                          " measurement_ids, prev_hash, hash, signature)"
                          " SELECT c.id, v.id, 9000000000000000000, now(), 1, 0, 1, 1, 299792458,"
                          " 0, 0, 0, 3, '{}', decode(repeat('00', 32), 'hex'), sha256('f'::bytea),"
                          " decode(repeat('cd', 64), 'hex') FROM chips c, verifiers v"
                          " WHERE v.name = 'v-other'",
                          err, sizeof err),
                   0);
  ck_assert_msg(strstr(err, "may not write attestations of verifier"), "%s", err);
  /* The lifecycle as loaded: in force is 0, a retirement its time. */
  ck_assert_int_eq(tu_cli(W.log, "landmark", "retire", "--db", W.conninfo, "--name", "lm-orly",
                          "--at", "1970-01-01 00:00:02+00", NULL),
                   0);
  cl_vworld w;
  char lerr[512] = "";
  int64_t vid = 0;
  cl_key *vk = tu_key_load(vkey);
  ck_assert_int_eq(cl_vstore_verifier_find(W.s, cl_key_public(vk), &vid, lerr, sizeof lerr),
                   CL_OK);
  ck_assert_int_eq(cl_store_begin(W.s, lerr, sizeof lerr), CL_OK);
  ck_assert_msg(cl_vstore_load(W.s, vid, W.now_ns, 300000000000ull, NULL, &w, lerr,
                               sizeof lerr) == CL_OK,
                "%s", lerr);
  cl_store_rollback(W.s);
  for (size_t i = 0; i < w.n_landmarks; i++) {
    if (strcmp(w.landmarks[i].name, "lm-orly") == 0)
      ck_assert_uint_eq(w.landmarks[i].key.retired_ns, 2000000000ull);
    else
      ck_assert_msg(w.landmarks[i].key.retired_ns == 0, "%s loaded as retired at %llu",
                    w.landmarks[i].name, (unsigned long long)w.landmarks[i].key.retired_ns);
  }
  ck_assert_uint_eq(w.n_landmarks, N_LM);
  cl_vworld_free(&w);
  cl_key_destroy(&vk);
  free(login);
  world_fini();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("trust");
  TCase *tc = tcase_create("postgres");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_forged_rows_change_nothing);
  tcase_add_test(tc, test_clock_ahead);
  tcase_add_test(tc, test_verifier_binding);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
