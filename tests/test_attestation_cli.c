/*
 * `chiploc attestation export` and `chiploc attestation check` of the real
 * binary (server/chiploc_attestation.c, lib/io/cl_eat.c, lib/io/cl_jws.c,
 * cl_audit_chain_walk of lib/db/cl_audit.c), end to end.
 *
 * The world: three landmarks (Paris, Frankfurt, London) with genuine signed
 * protocol 2 records (tests/tu_record.c) of two chips a minute or two ago:
 * S-PARIS declared in Paris and allowed in France, S-TOKYO declared in
 * Tokyo (its site is excluded). The real `chiploc verify` attests them in
 * three rounds, so each chip has a chain of three records. Then:
 *
 *  - the export of each chip (latest, and a given round), checked by
 *    `chiploc attestation check` and by tests/test_attestation_jwt.py, which
 *    uses Debian's python3-jwt and python3-cryptography only;
 *  - wrong keys, a tampered document, usage errors;
 *  - the database owner's edits, each of which the export must refuse:
 *    a record's signature corrupted, a verdict changed, a forged record
 *    appended with another verdict, a hash replaced, a record deleted from
 *    the middle of the chain.
 */
#include "testutil.h"
#include "tu_record.h"

#include "cl_err.h"
#include "cl_key.h"
#include "cl_probe.h"
#include "cl_store.h"

#include <check.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PAR, FRA, LON, N_LM };
static const struct {
  const char *name;
  double lat, lon;
} LM[N_LM] = {{"lm-par", 48.8566, 2.3522}, {"lm-fra", 50.1109, 8.6821},
              {"lm-lon", 51.5074, -0.1278}};

static const char FRANCE[] =
    "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[-4.8,42.3],[8.2,42.3],[8.2,51.1],"
    "[-4.8,51.1],[-4.8,42.3]]]]}";

/* Round trips (ns) per measuring landmark, and how many seconds before the
 * seeding each was measured. */
static const struct {
  int lm;
  uint64_t rtt_ns;
  uint64_t ago_s;
} ROWS[] = {{PAR, 150000, 100}, {PAR, 140000, 80}, {FRA, 3300000, 70}, {LON, 2400000, 75}};
#define N_ROWS (sizeof ROWS / sizeof ROWS[0])
#define N_ROUNDS 3

typedef struct {
  char *conninfo, *dir, *log, *vkey, *vhex;
  cl_store *s;
  cl_key *lm[N_LM];
  int64_t lm_id[N_LM];
  uint64_t now_ns;
  long long round0; /* the first round's end, unix seconds; rounds every 10 s */
  char *out, *err;  /* of the latest cli() */
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

/* Runs the built chiploc with the NULL-terminated arguments; stdout and
 * stderr land in W.out and W.err (and the log). Returns the exit status,
 * -1 when it did not exit. */
static int cli(const char *first, ...) {
  char *argv[40];
  int n = 0;
  argv[n++] = tu_bin("server/chiploc");
  argv[n++] = (char *)first;
  va_list ap;
  va_start(ap, first);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 38) argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  free(W.out);
  free(W.err);
  int rc = tu_run_capture(argv, W.dir, &W.out, &W.err, W.log);
  free(argv[0]);
  return rc;
}

/* Enrols a chip and stores its genuine records of ROWS. */
static void chip_with_rows(const char *serial, double lat, double lon, const char *allowed) {
  cl_key *key = NULL;
  ck_assert_int_eq(cl_key_generate(&key), CL_OK);
  char err[512] = "";
  int64_t id = 0;
  ck_assert_msg(cl_store_chip_enroll(W.s, cl_key_public(key), serial, "op-a", lat, lon, &id, err,
                                     sizeof err) == CL_OK,
                "%s", err);
  if (allowed)
    ck_assert_msg(cl_store_chip_allow(W.s, id, allowed, err, sizeof err) == CL_OK, "%s", err);
  for (size_t i = 0; i < N_ROWS; i++) {
    cl_store_row row;
    memset(&row, 0, sizeof row);
    ck_assert_int_eq(tu_record_rtt(&row.m, W.lm[ROWS[i].lm], key, ROWS[i].rtt_ns,
                                   W.now_ns - ROWS[i].ago_s * 1000000000ull),
                     CL_OK);
    row.chip_id = id;
    row.bound_m = cl_bound_m(ROWS[i].rtt_ns, CL_SPEED_C);
    row.est_speed = CL_SPEED_FIBRE;
    row.est_bound_m = cl_bound_m(ROWS[i].rtt_ns, CL_SPEED_FIBRE);
    ck_assert_msg(cl_store_insert_measurements(W.s, W.lm_id[ROWS[i].lm], &row, 1, err,
                                               sizeof err) == CL_OK,
                  "%s", err);
  }
  cl_key_destroy(&key);
}

static char *round_end(int k) { return tu_fmt("%lld", W.round0 + 10LL * k); }

static void world_init(const char *db) {
  memset(&W, 0, sizeof W);
  W.conninfo = tu_own(tu_db_create(db));
  W.dir = tu_own(tu_tmpdir("cl-attestation"));
  W.log = tu_fmt("%s/cli.log", W.dir);
  fprintf(stderr, "test_attestation_cli: commands and their output in %s\n", W.log);
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
  chip_with_rows("S-PARIS", 48.8566, 2.3522, "FRA");
  chip_with_rows("S-TOKYO", 35.6762, 139.6503, NULL);
  /* Every row is older than the first round's end and within the 300 s
   * window of all three rounds. */
  W.round0 = (long long)(W.now_ns / 1000000000ull) / 10 * 10 - 30;
  W.vkey = tu_keygen(W.dir, "verifier", W.log);
  W.vhex = tu_key_hex(W.vkey);
  ck_assert_int_eq(cli("verifier", "add", "--name", "v-treaty", "--pubkey", W.vhex, "--db",
                       W.conninfo, NULL),
                   0);
  for (int k = 0; k < N_ROUNDS; k++) {
    int rc = cli("verify", "--key", W.vkey, "--window", "300", "--interval", "10",
                 "--round-end", round_end(k), "--quiet", "--db", W.conninfo, NULL);
    ck_assert_msg(rc == 0, "verify round %d: exit %d: %s", k, rc, W.err);
  }
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT count(*) FROM attestations"), 2 * N_ROUNDS);
}

static void world_fini(void) {
  for (int i = 0; i < N_LM; i++) cl_key_destroy(&W.lm[i]);
  cl_store_destroy(&W.s);
  free(W.out);
  free(W.err);
  W.out = W.err = NULL;
  tu_release();
}

/* Exports serial's attestation (extra: NULL-terminated further options,
 * up to two) into W.dir/name; returns the exit status. */
static int export_to(const char *serial, const char *name, const char *o1, const char *o2) {
  char *path = tu_fmt("%s/%s", W.dir, name);
  return cli("attestation", "export", serial, "--key", W.vkey, "--db", W.conninfo, "--out", path,
             o1, o2, NULL);
}

/* `chiploc attestation check --json` of W.dir/name under W.vhex: must be
 * valid; the caller json_decrefs the result. */
static json_t *check_json(const char *name) {
  char *path = tu_fmt("%s/%s", W.dir, name);
  int rc = cli("attestation", "check", path, "--verifier-key", W.vhex, "--json", NULL);
  ck_assert_msg(rc == 0, "check %s: exit %d: %s", name, rc, W.err);
  json_error_t e;
  json_t *j = json_loads(W.out, 0, &e);
  ck_assert_msg(j != NULL, "not JSON (%s): %s", e.text, W.out);
  ck_assert(json_is_true(json_object_get(j, "valid")));
  return j;
}

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  ck_assert_msg(s != NULL, "%s is not a string", k);
  return s;
}

/* Runs the independent check of tests/test_attestation_jwt.py on
 * W.dir/name. Debian's python3-jwt is a package of Debian's interpreter,
 * /usr/bin/python3, which another python3 earlier on PATH would not see. */
static int python_check(const char *name) {
  char *argv[] = {"/usr/bin/python3", tu_src("tests/test_attestation_jwt.py"),
                  tu_fmt("%s/%s", W.dir, name), W.vhex, NULL};
  int rc = tu_run(argv, W.log);
  free(argv[1]);
  return rc;
}

/* The export is refused (exit 1) with `why` in its message, and writes no
 * file. */
static void export_refused(const char *serial, const char *why) {
  char *path = tu_fmt("%s/refused.jwt", W.dir);
  unlink(path);
  int rc = export_to(serial, "refused.jwt", NULL, NULL);
  ck_assert_msg(rc == 1, "%s: exit %d, want 1: %s", serial, rc, W.err);
  ck_assert_msg(strstr(W.err, why), "%s: want '%s' in: %s", serial, why, W.err);
  ck_assert_int_eq(access(path, F_OK), -1);
}

START_TEST(test_export_and_check) {
  world_init("chiploc_test_attestation");
  /* The latest record of S-PARIS: the third of its chain. */
  ck_assert_msg(export_to("S-PARIS", "paris.jwt", "--latest", NULL) == 0, "%s", W.err);
  ck_assert_msg(strstr(W.out, "record 3 of verifier v-treaty's chain"), "%s", W.out);
  json_t *j = check_json("paris.jwt");
  ck_assert_str_eq(jstr(j, "issuer"), "v-treaty");
  ck_assert_str_eq(jstr(j, "serial"), "S-PARIS");
  ck_assert_str_eq(jstr(j, "verifier"), W.vhex);
  ck_assert_str_eq(jstr(j, "consistency"), "CONSISTENT");
  ck_assert_str_eq(jstr(j, "site_verdict"), "SITE_CONSISTENT");
  ck_assert_str_eq(jstr(j, "region_verdict"), "INSIDE");
  ck_assert_int_eq(json_integer_value(json_object_get(j, "position")), 3);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "round_end_ns")),
                   (W.round0 + 20) * 1000000000LL);
  /* The hash it states is the one the verifier stored for that record. */
  char *hash = tu_own(tu_sql_value(
      W.conninfo, "SELECT encode(a.hash, 'hex') FROM attestations a JOIN chips c ON "
                  "c.id = a.chip_id WHERE c.serial = 'S-PARIS' ORDER BY round_end_ns DESC LIMIT 1"));
  ck_assert_str_eq(jstr(j, "hash"), hash);
  json_decref(j);
  /* The same document read from stdin, as text. */
  char *paris = tu_fmt("%s/paris.jwt", W.dir);
  char *argv_sh[] = {"/bin/sh", "-c",
                     tu_fmt("%s attestation check - --verifier-key %s < %s > %s/text 2>&1",
                            tu_own(tu_bin("server/chiploc")), W.vhex, paris, W.dir),
                     NULL};
  ck_assert_int_eq(tu_run(argv_sh, W.log), 0);
  char *text = tu_own(tu_read_file(tu_fmt("%s/text", W.dir)));
  ck_assert_msg(strstr(text, "consistency     CONSISTENT\n"), "%s", text);
  ck_assert_msg(strstr(text, "serial          S-PARIS\n"), "%s", text);
  /* Debian's python3-jwt verifies it too, and refuses it tampered. */
  ck_assert_int_eq(python_check("paris.jwt"), 0);

  /* A given round: the first. */
  ck_assert_msg(export_to("S-TOKYO", "tokyo1.jwt", "--round-end", round_end(0)) == 0, "%s",
                W.err);
  j = check_json("tokyo1.jwt");
  ck_assert_str_eq(jstr(j, "site_verdict"), "SITE_EXCLUDED");
  ck_assert_int_eq(json_integer_value(json_object_get(j, "position")), 1);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "round_end_ns")),
                   W.round0 * 1000000000LL);
  json_decref(j);
  ck_assert_int_eq(python_check("tokyo1.jwt"), 0);
  /* To stdout by default. */
  ck_assert_int_eq(cli("attestation", "export", "S-TOKYO", "--key", W.vkey, "--db", W.conninfo,
                       NULL),
                   0);
  ck_assert_msg(strncmp(W.out, "eyJ", 3) == 0 && strchr(W.out, '\n') == W.out + strlen(W.out) - 1,
                "%s", W.out);
  ck_assert_msg(strstr(W.err, "written to stdout"), "%s", W.err);

  /* Tampered with: one character of the payload changed. Both checkers
   * refuse it (so the Python check is one that can fail). */
  char *tok = tu_own(tu_read_file(paris));
  char *dot = strchr(tok, '.');
  ck_assert(dot != NULL);
  dot[20] = dot[20] == 'A' ? 'B' : 'A';
  tu_own(tu_write_file(W.dir, "tampered.jwt", tok));
  ck_assert_int_eq(cli("attestation", "check", tu_fmt("%s/tampered.jwt", W.dir), "--verifier-key",
                       W.vhex, NULL),
                   1);
  ck_assert_msg(strstr(W.err, "invalid"), "%s", W.err);
  ck_assert_int_eq(python_check("tampered.jwt"), 1);
  world_fini();
}
END_TEST

START_TEST(test_refusals) {
  world_init("chiploc_test_attestation_refusals");
  ck_assert_msg(export_to("S-PARIS", "paris.jwt", NULL, NULL) == 0, "%s", W.err);
  char *paris = tu_fmt("%s/paris.jwt", W.dir);
  /* Checked under another key: the kid says whose it is. */
  char *other = tu_keygen(W.dir, "other", W.log);
  char *other_hex = tu_key_hex(other);
  ck_assert_int_eq(cli("attestation", "check", paris, "--verifier-key", other_hex, NULL), 1);
  ck_assert_msg(strstr(W.err, "invalid: JWS header: kid"), "%s", W.err);
  ck_assert_int_eq(cli("attestation", "check", tu_fmt("%s/none", W.dir), "--verifier-key",
                       W.vhex, NULL),
                   1);
  ck_assert_msg(strstr(W.err, "cannot read"), "%s", W.err);
  /* A key that is no verifier, and one that never attested this chip. */
  ck_assert_int_eq(cli("attestation", "export", "S-PARIS", "--key", other, "--db", W.conninfo,
                       NULL),
                   1);
  ck_assert_msg(strstr(W.err, "no verifier with public key"), "%s", W.err);
  ck_assert_int_eq(cli("verifier", "add", "--name", "v-other", "--pubkey", other_hex, "--db",
                       W.conninfo, NULL),
                   0);
  ck_assert_int_eq(cli("attestation", "export", "S-PARIS", "--key", other, "--db", W.conninfo,
                       NULL),
                   1);
  ck_assert_msg(strstr(W.err, "has no attestation by verifier v-other"), "%s", W.err);
  /* A chip that does not exist; a round without a record. */
  export_refused("S-NOWHERE", "no chip with serial S-NOWHERE");
  char *between = tu_fmt("%lld", W.round0 + 15);
  ck_assert_int_eq(export_to("S-PARIS", "between.jwt", "--round-end", between), 1);
  ck_assert_msg(strstr(W.err, "no attestation by verifier v-treaty at round_end"), "%s", W.err);
  ck_assert_int_eq(export_to("S-PARIS", "before.jwt", "--round-end", "1000"), 1);
  ck_assert_msg(strstr(W.err, "at or before --round-end"), "%s", W.err);
  /* Usage. */
  ck_assert_int_eq(cli("attestation", "export", "--key", W.vkey, "--db", W.conninfo, NULL), 2);
  ck_assert_int_eq(cli("attestation", "export", "S-PARIS", "--db", W.conninfo, NULL), 2);
  ck_assert_int_eq(export_to("S-PARIS", "x.jwt", "--latest", "--round-end"), 2);
  ck_assert_int_eq(cli("attestation", "export", "S-PARIS", "--key", W.vkey, "--db", W.conninfo,
                       "--round-end", "yesterday", NULL),
                   2);
  ck_assert_int_eq(cli("attestation", "check", paris, NULL), 2);
  ck_assert_int_eq(cli("attestation", "check", paris, "--verifier-key", "abc", NULL), 2);
  ck_assert_int_eq(cli("attestation", "check", "--verifier-key", W.vhex, NULL), 2);
  ck_assert_int_eq(cli("attestation", "frobnicate", NULL), 2);
  /* A read-only auditor login may export: it reads what the walk needs. */
  char err[512] = "";
  ck_assert_msg(tu_sql(W.conninfo,
                       "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                       "'d3x_auditor') THEN CREATE ROLE d3x_auditor LOGIN; END IF; END $$; "
                       "GRANT chiploc_auditor TO d3x_auditor",
                       err, sizeof err) == 0,
                "%s", err);
  char *auditor = tu_own(tu_conninfo_as(W.conninfo, "d3x_auditor"));
  ck_assert_msg(cli("attestation", "export", "S-TOKYO", "--key", W.vkey, "--db", auditor, "--out",
                    tu_fmt("%s/tokyo.jwt", W.dir), NULL) == 0,
                "%s", W.err);
  world_fini();
}
END_TEST

/* The id of serial's record at place k (0-based) of its chain. */
static long long record_id(const char *serial, int k) {
  char *sql = tu_fmt("SELECT a.id FROM attestations a JOIN chips c ON c.id = a.chip_id WHERE "
                     "c.serial = '%s' ORDER BY a.round_end_ns, a.id OFFSET %d LIMIT 1",
                     serial, k);
  long long id = tu_sql_int(W.conninfo, sql);
  ck_assert_int_gt(id, 0);
  return id;
}

START_TEST(test_owner_edits_refused) {
  world_init("chiploc_test_attestation_edits");
  long long mid = record_id("S-PARIS", 1), last = record_id("S-PARIS", 2);
  long long tokyo_last = record_id("S-TOKYO", 2);
  char *before_mid = round_end(0), *last_round = round_end(2);

  /* A signature corrupted in the middle of the chain: the latest record is
   * refused (its chain does not hold), the first is still exported. */
  sqlf("UPDATE attestations SET signature = set_byte(signature, 0, get_byte(signature, 0) # 1)"
       " WHERE id = %lld",
       mid);
  export_refused("S-PARIS", tu_fmt("attestation id=%lld (record 2 of the chain of verifier "
                                   "v-treaty) fails: attestation signature",
                                   mid));
  ck_assert_msg(export_to("S-PARIS", "first.jwt", "--round-end", before_mid) == 0, "%s", W.err);
  sqlf("UPDATE attestations SET signature = set_byte(signature, 0, get_byte(signature, 0) # 1)"
       " WHERE id = %lld",
       mid);
  ck_assert_msg(export_to("S-PARIS", "ok.jwt", NULL, NULL) == 0, "%s", W.err);

  /* A verdict changed: S-TOKYO's site made consistent. */
  sqlf("UPDATE attestations SET site_verdict = 1 WHERE id = %lld", tokyo_last);
  export_refused("S-TOKYO", "fails: attestation signature");
  sqlf("UPDATE attestations SET site_verdict = 2 WHERE id = %lld", tokyo_last);
  ck_assert_msg(export_to("S-TOKYO", "ok.jwt", NULL, NULL) == 0, "%s", W.err);

  /* A forged record appended by the owner: the next round, INCONSISTENT,
   * linked to the true head, with the head's signature copied. */
  sqlf("INSERT INTO attestations (chip_id, verifier_id, round_end_ns, round_end, window_ns,"
       " consistency, site_verdict, region_verdict, speed_m_s, centre_lat_e7, centre_lon_e7,"
       " radius_m, site_landmark_id, site_margin_m, allowed_regions, excluded_landmark_ids,"
       " landmarks_used, measurement_ids, prev_hash, hash, signature, layout_version,"
       " measurement_sigs, site_digest, landmarks_digest, regions_digest)"
       " SELECT chip_id, verifier_id, round_end_ns + 10000000000, round_end + interval '10 s',"
       " window_ns, 2, site_verdict, 3, speed_m_s, 0, 0, 0, site_landmark_id, site_margin_m,"
       " allowed_regions, excluded_landmark_ids, landmarks_used, measurement_ids, hash,"
       " sha256(hash), signature, layout_version, measurement_sigs, site_digest,"
       " landmarks_digest, regions_digest FROM attestations WHERE id = %lld",
       last);
  export_refused("S-PARIS", "(record 4 of the chain of verifier v-treaty) fails: attestation "
                            "signature");
  /* The genuine records before it are still exported. */
  ck_assert_msg(export_to("S-PARIS", "last.jwt", "--round-end", last_round) == 0, "%s", W.err);
  sqlf("DELETE FROM attestations WHERE id > %lld AND chip_id = (SELECT chip_id FROM attestations"
       " WHERE id = %lld)",
       last, last);

  /* Only a hash replaced. */
  sqlf("UPDATE attestations SET hash = sha256(hash) WHERE id = %lld", mid);
  export_refused("S-PARIS", "fails: hash mismatch");
  /* Restored: the next record's prev_hash is the true hash. */
  sqlf("UPDATE attestations SET hash = (SELECT prev_hash FROM attestations WHERE id = %lld)"
       " WHERE id = %lld",
       last, mid);
  ck_assert_msg(export_to("S-PARIS", "ok.jwt", NULL, NULL) == 0, "%s", W.err);

  /* A record deleted from the middle: the next one no longer links. */
  sqlf("CREATE TABLE saved AS SELECT * FROM attestations WHERE id = %lld;"
       " DELETE FROM attestations WHERE id = %lld",
       mid, mid);
  export_refused("S-PARIS", tu_fmt("attestation id=%lld (record 2 of the chain of verifier "
                                   "v-treaty) fails: chain break",
                                   last));
  sqlf("INSERT INTO attestations SELECT * FROM saved; DROP TABLE saved");
  /* The first record deleted: the chain no longer starts. */
  long long first = record_id("S-PARIS", 0);
  sqlf("CREATE TABLE saved AS SELECT * FROM attestations WHERE id = %lld;"
       " DELETE FROM attestations WHERE id = %lld",
       first, first);
  export_refused("S-PARIS", "fails: chain start");
  sqlf("INSERT INTO attestations SELECT * FROM saved; DROP TABLE saved");
  ck_assert_msg(export_to("S-PARIS", "ok.jwt", NULL, NULL) == 0, "%s", W.err);
  json_t *j = check_json("ok.jwt");
  ck_assert_int_eq(json_integer_value(json_object_get(j, "position")), 3);
  json_decref(j);
  world_fini();
}
END_TEST

static void tests(Suite *s) {
  TCase *tc = tcase_create("e2e");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_export_and_check);
  tcase_add_test(tc, test_refusals);
  tcase_add_test(tc, test_owner_edits_refused);
  suite_add_tcase(s, tc);
}

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("attestation_cli");
  tests(s);
  return tu_run_suite(s);
}
