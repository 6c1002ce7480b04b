/*
 * Verifiers that share one database's chips (`chiploc verify --pool`,
 * schema 0010), run as real `chiploc verify --follow` processes against the
 * PostgreSQL of the run, each with its own key and its own login bound to
 * it.
 *
 * Three members attest 48 chips every 2 s: every chip is attested exactly
 * once per round, by the member that claimed its bucket, and every chain
 * passes the audit. One member is killed (SIGKILL, so nothing of it runs on
 * the way out): from the first round that starts after its death on, the
 * two others attest all of its chips, again exactly once. A lease forged in
 * the database (a claim no member made) makes its chips go unattested for
 * that round, and the pool's coverage check says so two rounds later. A
 * lease erased after its round lets a second member attest the same chips
 * again: two attestations of one round, and the chains still audit clean,
 * since each member's chain of a chip links only its own records.
 *
 * Without --pool, one verifier attests every chip in one transaction as it
 * always did, and claims nothing.
 */
#include "cl_audit.h"
#include "cl_err.h"
#include "cl_probe.h"
#include "cl_store.h"
#include "testutil.h"
#include "tu_record.h"

#include <check.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define N_CHIPS 48
#define N_VERIFIERS 3
#define INTERVAL_S 2
#define INTERVAL_NS (INTERVAL_S * 1000000000ull)
#define POOL "p-scaleout"

enum { PAR, FRA, LON, N_LM };
static const struct {
  const char *name;
  double lat, lon;
  uint64_t rtt_ns; /* from a chip in Paris: above the light-speed minimum */
} LM[N_LM] = {
    {"lm-par", 48.8566, 2.3522, 500000u},
    {"lm-fra", 50.1109, 8.6821, 4000000u},
    {"lm-lon", 51.5074, -0.1278, 3000000u},
};

/* France, roughly: the allowed region. */
static const char FRANCE[] =
    "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[-4.8,42.3],[8.2,42.3],[8.2,51.1],"
    "[-4.8,51.1],[-4.8,42.3]]]]}";

typedef struct {
  char *conninfo, *dir, *log;
  cl_store *s;
  int64_t chip_ids[N_CHIPS];
  char *vkey[N_VERIFIERS];   /* key files */
  char *vlogin[N_VERIFIERS]; /* each verifier's own login's conninfo */
  int64_t vid[N_VERIFIERS];
  cl_key *lm[N_LM];
  int64_t lm_id[N_LM];
  cl_key *chip1; /* the first chip's key */
} world;

static world W;

static void sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sqlf(const char *fmt, ...) {
  char sql[4096], err[512] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  ck_assert_msg(tu_sql(W.conninfo, sql, err, sizeof err) == 0, "%s: %s", sql, err);
}

static long long intf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long intf(const char *fmt, ...) {
  char sql[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  long long v = tu_sql_int(W.conninfo, sql);
  ck_assert_msg(v >= 0, "%s failed", sql);
  return v;
}

/*
 * A migrated database with three landmarks, France, n chips in Paris allowed
 * in France (ids 1 … n, so chip id mod 64 is its bucket), each with one
 * genuine record from every landmark measured ago_s seconds ago, and
 * n_verifiers verifiers v1 … with their keys, each bound to a login of its
 * own.
 */
static void world_init(const char *db, int n_chips, int n_verifiers, int ago_s) {
  memset(&W, 0, sizeof W);
  W.conninfo = tu_own(tu_db_create(db));
  W.dir = tu_own(tu_tmpdir("cl-scaleout"));
  W.log = tu_fmt("%s/cli.log", W.dir);
  char err[512] = "";
  ck_assert_msg(cl_store_connect(&W.s, W.conninfo, err, sizeof err) == CL_OK, "%s", err);
  int applied = 0;
  ck_assert_msg(cl_store_migrate(W.s, &applied, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_msg(cl_store_region_put(W.s, "FRA", FRANCE, 5, err, sizeof err) == CL_OK, "%s", err);
  cl_key **lm = W.lm;
  int64_t *lm_id = W.lm_id;
  for (int i = 0; i < N_LM; i++) {
    ck_assert_int_eq(cl_key_generate(&lm[i]), CL_OK);
    ck_assert_msg(cl_store_landmark_add(W.s, LM[i].name, cl_key_public(lm[i]), LM[i].lat,
                                        LM[i].lon, &lm_id[i], err, sizeof err) == CL_OK,
                  "%s", err);
  }
  cl_store_row *rows[N_LM];
  for (int i = 0; i < N_LM; i++) rows[i] = calloc((size_t)n_chips, sizeof *rows[i]);
  uint64_t measured = tu_unix_ns() - (uint64_t)ago_s * 1000000000ull;
  for (int c = 0; c < n_chips; c++) {
    cl_key *ck = NULL;
    ck_assert_int_eq(cl_key_generate(&ck), CL_OK);
    char serial[32];
    snprintf(serial, sizeof serial, "S-%03d", c + 1);
    ck_assert_msg(cl_store_chip_enroll(W.s, cl_key_public(ck), serial, "op-scale", 48.8566,
                                       2.3522, &W.chip_ids[c], err, sizeof err) == CL_OK,
                  "%s", err);
    ck_assert_msg(cl_store_chip_allow(W.s, W.chip_ids[c], "FRA", err, sizeof err) == CL_OK, "%s",
                  err);
    for (int i = 0; i < N_LM; i++) {
      cl_store_row *r = &rows[i][c];
      ck_assert_int_eq(tu_record_rtt(&r->m, lm[i], ck, LM[i].rtt_ns, measured), CL_OK);
      r->chip_id = W.chip_ids[c];
      r->bound_m = cl_bound_m(r->m.rtt_ns, CL_SPEED_C);
      r->est_speed = 2e8;
      r->est_bound_m = cl_bound_m(r->m.rtt_ns, 2e8);
      r->probes_sent = r->m.count;
    }
    if (c == 0) W.chip1 = ck;
    else cl_key_destroy(&ck);
  }
  for (int i = 0; i < N_LM; i++) {
    ck_assert_msg(cl_store_insert_measurements(W.s, lm_id[i], rows[i], (size_t)n_chips, err,
                                               sizeof err) == CL_OK,
                  "%s", err);
    free(rows[i]);
  }
  for (int v = 0; v < n_verifiers; v++) {
    char name[16], role[32];
    snprintf(name, sizeof name, "v%d", v + 1);
    snprintf(role, sizeof role, "scaleout_v%d", v + 1);
    W.vkey[v] = tu_keygen(W.dir, name, W.log);
    ck_assert_int_eq(tu_cli(W.log, "verifier", "add", "--db", W.conninfo, "--name", name,
                            "--pubkey", tu_key_hex(W.vkey[v]), NULL),
                     0);
    sqlf("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN"
         " CREATE ROLE %s LOGIN; END IF; END $$; GRANT chiploc_verifier TO %s",
         role, role, role);
    ck_assert_int_eq(tu_cli(W.log, "verifier", "bind", "--db", W.conninfo, "--name", name,
                            "--db-role", role, NULL),
                     0);
    W.vlogin[v] = tu_own(tu_conninfo_as(W.conninfo, role));
    W.vid[v] = intf("SELECT id FROM verifiers WHERE name = '%s'", name);
  }
}

static void world_fini(void) {
  for (int i = 0; i < N_LM; i++) cl_key_destroy(&W.lm[i]);
  cl_key_destroy(&W.chip1);
  cl_store_destroy(&W.s);
  tu_release();
}

/* `chiploc verify --follow --pool POOL` as verifier v, every 2 s. */
static pid_t member_start(int v, const char *log) {
  char *argv[] = {tu_own(tu_bin("server/chiploc")), "verify", "--db", W.vlogin[v], "--key",
                  W.vkey[v], "--follow", "--pool", POOL, "--interval", "2", "--settle", "0",
                  "--window", "3600", "--max-chip-speed", "0", "--min-landmarks", "3", NULL};
  return tu_spawn(argv, log);
}

/* One round of `chiploc verify --pool POOL` as verifier v, ending at
 * round_end (unix seconds); returns its exit status. */
static int member_once(int v, uint64_t round_end_s, const char *log) {
  char end[24];
  snprintf(end, sizeof end, "%llu", (unsigned long long)round_end_s);
  return tu_cli(log, "verify", "--db", W.vlogin[v], "--key", W.vkey[v], "--pool", POOL,
                "--round-end", end, "--interval", "2", "--settle", "0", "--window", "3600",
                "--max-chip-speed", "0", "--min-landmarks", "3", "--quiet", NULL);
}

/* The rounds of the pool that every bucket was claimed for, from `from_ns`
 * on: how many, and how many (chip, round) pairs of them have not exactly
 * one attestation. */
static long long full_rounds(uint64_t from_ns) {
  return intf("SELECT count(*) FROM (SELECT round_end_ns FROM verifier_claims WHERE pool = '" POOL
              "' AND round_end_ns >= %llu GROUP BY 1 HAVING count(*) = 64) r",
              (unsigned long long)from_ns);
}

static long long not_once(uint64_t from_ns) {
  return intf("WITH r AS (SELECT round_end_ns FROM verifier_claims WHERE pool = '" POOL
              "' AND round_end_ns >= %llu GROUP BY 1 HAVING count(*) = 64) "
              "SELECT count(*) FROM r CROSS JOIN chips c WHERE (SELECT count(*) FROM "
              "attestations a WHERE a.chip_id = c.id AND a.round_end_ns = r.round_end_ns) <> 1",
              (unsigned long long)from_ns);
}

/* Rounds of the pool from `from_ns` on that did not get all 64 claims,
 * before the newest one (which may still be running). */
static long long partial_rounds(uint64_t from_ns) {
  return intf("SELECT count(*) FROM (SELECT round_end_ns FROM verifier_claims WHERE pool = '" POOL
              "' AND round_end_ns >= %llu GROUP BY 1 HAVING count(*) < 64) r "
              "WHERE r.round_end_ns < (SELECT max(round_end_ns) FROM verifier_claims)",
              (unsigned long long)from_ns);
}

/* The audit of the whole database: no finding, this many chains, and
 * `gaps` pool gaps, among them (when any) chip `serial` in round `round`. */
static void audit_gaps(long long chains, long long gaps, const char *serial, uint64_t round) {
  char err[512] = "";
  cl_audit_report rep;
  ck_assert_msg(cl_audit_run(W.s, &rep, err, sizeof err) == CL_OK, "%s", err);
  for (size_t i = 0; i < rep.n_findings; i++)
    fprintf(stderr, "finding: %s id=%lld %s\n", cl_audit_table_name(rep.findings[i].table),
            (long long)rep.findings[i].id, cl_audit_problem_name(rep.findings[i].problem));
  ck_assert_int_eq(rep.n_findings, 0);
  ck_assert_int_eq(rep.pool_gaps, gaps);
  ck_assert_int_eq(rep.problems, gaps);
  ck_assert_int_eq(rep.chains, chains);
  int found = !serial;
  for (size_t i = 0; i < rep.n_gaps; i++)
    if (serial && strcmp(rep.gaps[i].serial, serial) == 0 &&
        rep.gaps[i].round_end_ns == (int64_t)round)
      found = 1;
  ck_assert_msg(found, "the audit lists no gap of %s in round %llu", serial,
                (unsigned long long)round);
  cl_audit_report_free(&rep);
}

static void audit_clean(long long chains) { audit_gaps(chains, 0, NULL, 0); }

/* The (round, chip) pairs without an attestation, in the pool's claimed
 * rounds before its newest (every chip is enrolled before the first). */
static long long unattested(void) {
  return intf("SELECT count(*) FROM (SELECT DISTINCT round_end_ns FROM verifier_claims WHERE "
              "round_end_ns < (SELECT max(round_end_ns) FROM verifier_claims)) r CROSS JOIN "
              "chips c WHERE NOT EXISTS (SELECT 1 FROM attestations a WHERE a.chip_id = c.id "
              "AND a.round_end_ns = r.round_end_ns)");
}

/* Waits until the pool has `want` full rounds from from_ns on. */
static void wait_full_rounds(uint64_t from_ns, long long want) {
  for (int i = 0; i < 600 && full_rounds(from_ns) < want; i++) tu_sleep_ms(100);
  ck_assert_int_ge(full_rounds(from_ns), want);
}

START_TEST(test_pool_shares_chips) {
  world_init("cl_scaleout", N_CHIPS, N_VERIFIERS, 30);
  char *log[N_VERIFIERS];
  pid_t pid[N_VERIFIERS];
  for (int v = 0; v < N_VERIFIERS; v++) {
    log[v] = tu_fmt("%s/v%d.log", W.dir, v + 1);
    pid[v] = member_start(v, log[v]);
  }
  /* Four full rounds of the three: each chip exactly once a round, by the
   * member that claimed its bucket, none left half done. */
  wait_full_rounds(0, 4);
  ck_assert_int_eq(not_once(0), 0);
  ck_assert_int_eq(partial_rounds(0), 0);
  ck_assert_int_eq(intf("SELECT count(*) FROM attestations a JOIN verifier_claims k ON k.pool = '"
                        POOL "' AND k.round_end_ns = a.round_end_ns AND k.bucket = a.chip_id %% 64"
                        " WHERE k.verifier_id <> a.verifier_id"),
                   0);
  ck_assert_int_eq(intf("SELECT count(*) FROM attestations a WHERE NOT EXISTS (SELECT 1 FROM "
                        "verifier_claims k WHERE k.round_end_ns = a.round_end_ns "
                        "AND k.bucket = a.chip_id %% 64)"),
                   0);
  /* Each member's log names the pool and its share. */
  for (int v = 0; v < N_VERIFIERS; v++)
    ck_assert_int_eq(tu_wait_log(log[v], "pool=" POOL, 1, 20000), 0);

  /* Verifier v2 dies without a word. */
  ck_assert_int_eq(kill(pid[1], SIGKILL), 0);
  ck_assert_int_eq(tu_stop(pid[1], 0, 10000), 128 + SIGKILL);
  /* The round that ran while it died may lack its batch; every round that
   * starts later is the others' whole. */
  uint64_t died = tu_unix_ns() / INTERVAL_NS * INTERVAL_NS;
  uint64_t after = died + INTERVAL_NS;
  wait_full_rounds(after, 3);
  ck_assert_int_eq(not_once(after), 0);
  ck_assert_int_eq(partial_rounds(after), 0);
  ck_assert_int_eq(intf("SELECT count(*) FROM attestations WHERE verifier_id = %lld AND "
                        "round_end_ns >= %llu",
                        (long long)W.vid[1], (unsigned long long)after),
                   0);
  /* The round of the death: no chip twice. */
  ck_assert_int_eq(intf("SELECT count(*) FROM (SELECT chip_id FROM attestations WHERE "
                        "round_end_ns = %llu GROUP BY chip_id HAVING count(*) > 1) d",
                        (unsigned long long)died),
                   0);
  /* v2's chips were picked up: every chip attested in the rounds since. */
  ck_assert_int_eq(intf("SELECT count(DISTINCT chip_id) FROM attestations WHERE round_end_ns >= %llu",
                        (unsigned long long)after),
                   N_CHIPS);

  /* A lease the database forged for a round not yet run: bucket 7 (chip
   * 7) of that round is skipped, and the coverage check of a later round
   * names it. */
  uint64_t forged = (tu_unix_ns() / INTERVAL_NS + 3) * INTERVAL_NS;
  sqlf("INSERT INTO verifier_claims (pool, round_end_ns, bucket, verifier_id, interval_ns) "
       "VALUES ('" POOL "', %llu, 7, %lld, %llu)",
       (unsigned long long)forged, (long long)W.vid[1], (unsigned long long)INTERVAL_NS);
  char *gap = tu_fmt("msg=\"chips not attested\" pool=" POOL " round_end_ns=%llu chips=1 "
                     "first=\"S-007\"",
                     (unsigned long long)forged);
  int seen = 0;
  for (int i = 0; i < 300 && !seen; i++) {
    seen = tu_count_in_file(log[0], gap) + tu_count_in_file(log[2], gap);
    if (!seen) tu_sleep_ms(100);
  }
  ck_assert_msg(seen == 1, "no member reported the skipped chip once (%d)", seen);
  ck_assert_int_eq(intf("SELECT count(*) FROM attestations WHERE round_end_ns = %llu",
                        (unsigned long long)forged),
                   N_CHIPS - 1);

  ck_assert_int_eq(tu_stop(pid[0], SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(pid[2], SIGTERM, 10000), 0);
  /* Every chain of every member links, the dead one's included. The audit
   * counts the forged claim's chip as a pool gap, and any other chip left
   * out of a round (v2's batch when it died, if no one took it then). */
  long long chains = intf("SELECT count(*) FROM (SELECT DISTINCT chip_id, verifier_id FROM "
                          "attestations) c");
  ck_assert_int_ge(unattested(), 1);
  audit_gaps(chains, unattested(), "S-007", forged);

  /* A lease erased after its round: a round no one ran yet, done by v1,
   * its claims deleted, done again by v3. Two attestations of each chip in
   * that round, one per member's chain, and the audit is still clean. */
  tu_sleep_ms(2 * INTERVAL_S * 1000);
  uint64_t again = tu_unix_ns() / INTERVAL_NS * INTERVAL_NS;
  char *olog = tu_fmt("%s/once.log", W.dir);
  ck_assert_int_eq(member_once(0, again / 1000000000ull, olog), 0);
  ck_assert_int_eq(intf("SELECT count(*) FROM attestations WHERE round_end_ns = %llu "
                        "AND verifier_id = %lld",
                        (unsigned long long)again, (long long)W.vid[0]),
                   N_CHIPS);
  /* Run again, it finds every bucket claimed and writes nothing. */
  ck_assert_int_eq(member_once(2, again / 1000000000ull, olog), 0);
  ck_assert_int_eq(intf("SELECT count(*) FROM attestations WHERE round_end_ns = %llu",
                        (unsigned long long)again),
                   N_CHIPS);
  sqlf("DELETE FROM verifier_claims WHERE round_end_ns = %llu", (unsigned long long)again);
  ck_assert_int_eq(member_once(2, again / 1000000000ull, olog), 0);
  ck_assert_int_eq(intf("SELECT count(*) FROM (SELECT chip_id FROM attestations WHERE "
                        "round_end_ns = %llu GROUP BY chip_id HAVING count(*) = 2) d",
                        (unsigned long long)again),
                   N_CHIPS);
  chains = intf("SELECT count(*) FROM (SELECT DISTINCT chip_id, verifier_id FROM attestations) c");
  audit_gaps(chains, unattested(), "S-007", forged);
  world_fini();
}
END_TEST

/*
 * A chip that moves while its rounds pass from one member to another:
 * v1 attests it near Paris, v2 three minutes later near London. v2 has no
 * record of the chip in its own chain, and still raises chip_moved: the
 * previous region is the pool's, not only its own.
 */
START_TEST(test_moved_chip_between_members) {
  world_init("cl_scaleout_moved", 1, 2, 200);
  static const uint64_t london_rtt[N_LM] = {3000000u, 5000000u, 500000u};
  cl_store_row row;
  char err[512] = "";
  for (int i = 0; i < N_LM; i++) {
    memset(&row, 0, sizeof row);
    ck_assert_int_eq(tu_record_rtt(&row.m, W.lm[i], W.chip1, london_rtt[i],
                                   tu_unix_ns() - 30000000000ull),
                     CL_OK);
    row.chip_id = W.chip_ids[0];
    row.bound_m = cl_bound_m(row.m.rtt_ns, CL_SPEED_C);
    row.est_speed = 2e8;
    row.est_bound_m = cl_bound_m(row.m.rtt_ns, 2e8);
    row.probes_sent = row.m.count;
    ck_assert_msg(cl_store_insert_measurements(W.s, W.lm_id[i], &row, 1, err, sizeof err) == CL_OK,
                  "%s", err);
  }
  /* Rounds of 10 s with a 60 s window: the Paris rows (200 s old) are in
   * the round three minutes back only, the London rows (30 s old) in the
   * latest only. */
  uint64_t r2 = tu_unix_ns() / 10000000000ull * 10, r1 = r2 - 180;
  char *log = tu_fmt("%s/moved.log", W.dir);
  for (int v = 0; v < 2; v++) {
    char end[24];
    snprintf(end, sizeof end, "%llu", (unsigned long long)(v ? r2 : r1));
    ck_assert_int_eq(tu_cli(log, "verify", "--db", W.vlogin[v], "--key", W.vkey[v], "--pool",
                            POOL, "--round-end", end, "--interval", "10", "--window", "60",
                            "--max-chip-speed", "0", "--quiet", NULL),
                     0);
  }
  ck_assert_int_eq(intf("SELECT count(*) FROM attestations WHERE consistency = 0"), 2);
  ck_assert_int_eq(intf("SELECT count(*) FROM attestations WHERE verifier_id = %lld "
                        "AND prev_hash = '\\x%064d'",
                        (long long)W.vid[1], 0),
                   1);
  ck_assert_int_eq(intf("SELECT count(*) FROM alerts WHERE kind = 'chip_moved' "
                        "AND cleared_at IS NULL"),
                   1);
  audit_clean(2);
  world_fini();
}
END_TEST

START_TEST(test_claims_are_the_members_own) {
  world_init("cl_scaleout_grants", 4, 2, 30);
  char err[512] = "";
  /* v1's login claims for v1 only: not in v2's name, and it can neither
   * change nor remove a claim. */
  char *sql = tu_fmt("INSERT INTO verifier_claims (pool, round_end_ns, bucket, verifier_id, "
                     "interval_ns) VALUES ('" POOL "', 1000000000, 1, %lld, 1000000000)",
                     (long long)W.vid[1]);
  ck_assert_int_ne(tu_sql(W.vlogin[0], sql, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "may not claim chips for verifier") != NULL, "%s", err);
  sql = tu_fmt("INSERT INTO verifier_claims (pool, round_end_ns, bucket, verifier_id, "
               "interval_ns) VALUES ('" POOL "', 1000000000, 1, %lld, 1000000000)",
               (long long)W.vid[0]);
  ck_assert_msg(tu_sql(W.vlogin[0], sql, err, sizeof err) == 0, "%s", err);
  ck_assert_int_ne(tu_sql(W.vlogin[0], "UPDATE verifier_claims SET verifier_id = verifier_id",
                          err, sizeof err),
                   0);
  ck_assert_int_ne(tu_sql(W.vlogin[0], "DELETE FROM verifier_claims", err, sizeof err), 0);
  ck_assert_int_ne(tu_sql(W.vlogin[0],
                          "INSERT INTO verifier_claims (pool, round_end_ns, bucket, verifier_id, "
                          "interval_ns, claimed_at) VALUES ('" POOL "', 2000000000, 1, 1, "
                          "1000000000, now())",
                          err, sizeof err),
                   0);
  ck_assert_int_eq(intf("SELECT count(*) FROM verifier_claims"), 1);
  /* A member whose interval differs from the pool's is refused a round. */
  char *log = tu_fmt("%s/v2.log", W.dir);
  char end[24];
  snprintf(end, sizeof end, "%llu", (unsigned long long)(tu_unix_ns() / 1000000000ull - 10));
  sqlf("INSERT INTO verifier_claims (pool, round_end_ns, bucket, verifier_id, interval_ns) "
       "VALUES ('" POOL "', %s000000000 - 10000000000, 3, %lld, 5000000000)",
       end, (long long)W.vid[0]);
  ck_assert_int_eq(tu_cli(log, "verify", "--db", W.vlogin[1], "--key", W.vkey[1], "--pool", POOL,
                          "--round-end", end, "--interval", "2", "--quiet", NULL),
                   1);
  ck_assert_int_eq(tu_count_in_file(log, "the members of a pool must use the same --interval"), 1);
  /* A pool name is checked before anything runs. */
  ck_assert_int_eq(tu_cli(log, "verify", "--db", W.vlogin[1], "--key", W.vkey[1], "--pool",
                          "no spaces", NULL),
                   2);
  world_fini();
}
END_TEST

START_TEST(test_single_verifier_unchanged) {
  world_init("cl_scaleout_single", 10, 1, 30);
  char *log = tu_fmt("%s/v1.log", W.dir);
  /* Without --pool: one transaction for every chip, no claim, and the same
   * round twice writes nothing the second time. */
  ck_assert_int_eq(tu_cli(log, "verify", "--db", W.vlogin[0], "--key", W.vkey[0], "--interval",
                          "2", "--window", "3600", "--max-chip-speed", "0", NULL),
                   0);
  ck_assert_int_eq(tu_count_in_file(log, "10 chip(s), 10 attested, 0 already attested"), 1);
  ck_assert_int_eq(tu_count_in_file(log, "pool round"), 0);
  ck_assert_int_eq(intf("SELECT count(*) FROM verifier_claims"), 0);
  long long end = intf("SELECT max(round_end_ns) / 1000000000 FROM attestations");
  char e[24];
  snprintf(e, sizeof e, "%lld", end);
  ck_assert_int_eq(tu_cli(log, "verify", "--db", W.vlogin[0], "--key", W.vkey[0], "--interval",
                          "2", "--window", "3600", "--max-chip-speed", "0", "--round-end", e,
                          NULL),
                   0);
  ck_assert_int_eq(tu_count_in_file(log, "10 chip(s), 0 attested, 10 already attested"), 1);
  audit_clean(10);
  world_fini();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("scaleout");
  TCase *tc = tcase_create("pool");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_pool_shares_chips);
  tcase_add_test(tc, test_moved_chip_between_members);
  tcase_add_test(tc, test_claims_are_the_members_own);
  tcase_add_test(tc, test_single_verifier_unchanged);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
