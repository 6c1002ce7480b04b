/*
 * The operators' read commands and `alerts ack` of the real chiploc binary
 * (server/chiploc_status.c, lib/db/cl_status.c, schema 0006), and the
 * duration parser of their --since, --stale and --window options.
 *
 * The world: five landmarks (Paris, Frankfurt, London measuring; Berlin
 * quiet; Lille retired), three chips measured from Paris, Frankfurt and
 * London with genuine signed protocol 2 records (tests/tu_record.c) a minute
 * or two ago: S-PARIS declared in Paris and allowed in France, S-TOKYO
 * declared in Tokyo (so its site is excluded and an alert opens), S-OFF
 * deactivated; and landmark links. The real `chiploc verify` attests them;
 * S-LATE is enrolled after its round, never attested. Then the real
 * `chiploc` prints what the operators see, as the owner and as dashboard
 * and auditor logins, in tables and in JSON (parsed here with jansson).
 */
#include "chiploc_cli.h"
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
#include <time.h>
#include <unistd.h>

/* ---- the duration parser ------------------------------------------------------- */

START_TEST(test_duration) {
  static const struct {
    const char *text;
    int64_t seconds;
  } ok[] = {{"90", 90},   {"90s", 90},       {"5m", 300},    {"2h", 7200},
            {"7d", 604800}, {"0", 0},        {"007m", 420},  {"3153600000", 3153600000LL},
            {"9223372036854775807", INT64_MAX}, {"106751991167300d", 106751991167300LL * 86400}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int64_t v = -1;
    ck_assert_msg(chiploc_parse_duration(ok[i].text, &v) == CL_OK, "%s", ok[i].text);
    ck_assert_msg(v == ok[i].seconds, "%s: %" PRId64, ok[i].text, v);
  }
  static const char *const malformed[] = {"",   "s",    "5 m", " 5m", "-5",  "+5", "5mm",
                                          "1.5h", "5x", "5M",  "5m ", "0x10", "5sec", "m5"};
  for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
    int64_t v = 42;
    ck_assert_msg(chiploc_parse_duration(malformed[i], &v) == CL_EMALFORMED, "'%s'",
                  malformed[i]);
    ck_assert_int_eq(v, 42);
  }
  static const char *const too_big[] = {"9223372036854775808", "99999999999999999999s",
                                        "106751991167301d", "2562047788015216h",
                                        "153722867280912931m"};
  for (size_t i = 0; i < sizeof too_big / sizeof too_big[0]; i++) {
    int64_t v = 42;
    ck_assert_msg(chiploc_parse_duration(too_big[i], &v) == CL_ETOOBIG, "%s", too_big[i]);
  }
  /* The option form: a range, exit status 2 outside it. */
  int64_t v = 0;
  ck_assert_int_eq(chiploc_duration_arg("--since", "5m", 1, 3600, &v), 0);
  ck_assert_int_eq(v, 300);
  ck_assert_int_eq(chiploc_duration_arg("--since", "2h", 1, 3600, &v), 2);
  ck_assert_int_eq(chiploc_duration_arg("--since", "0", 1, 3600, &v), 2);
  ck_assert_int_eq(chiploc_duration_arg("--since", "5 m", 1, 3600, &v), 2);
  ck_assert_int_eq(v, 300);
}
END_TEST

/* ---- the world ------------------------------------------------------------------- */

enum { PAR, FRA, LON, QUIET, OLD, N_LM };
static const struct {
  const char *name;
  double lat, lon;
} LM[N_LM] = {{"lm-par", 48.8566, 2.3522},    {"lm-fra", 50.1109, 8.6821},
              {"lm-lon", 51.5074, -0.1278},   {"lm-quiet", 52.52, 13.405},
              {"lm-old", 50.6292, 3.0573}};

/* France, roughly: the allowed region of S-PARIS. */
static const char FRANCE[] =
    "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[-4.8,42.3],[8.2,42.3],[8.2,51.1],"
    "[-4.8,51.1],[-4.8,42.3]]]]}";

/* Round trips (ns) of every measured chip, per measuring landmark, and how
 * many seconds before the seeding each was measured. */
static const struct {
  int lm;
  uint64_t rtt_ns;
  uint64_t ago_s;
} ROWS[] = {{PAR, 160000, 100}, {PAR, 140000, 80},  {PAR, 150000, 60},
            {FRA, 3400000, 90}, {FRA, 3300000, 70}, {LON, 2400000, 75}};
#define N_ROWS (sizeof ROWS / sizeof ROWS[0])

typedef struct {
  char *conninfo, *dir, *log, *vkey;
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
  char sql[2048], err[512] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  ck_assert_msg(tu_sql(W.conninfo, sql, err, sizeof err) == 0, "%s: %s", sql, err);
}

/*
 * Runs the built chiploc with the NULL-terminated arguments and, when db is
 * not NULL, --db db; its stdout and stderr land in W.out and W.err (and
 * the log). Returns the exit status, -1 when it did not exit.
 */
static int cli(const char *db, ...) {
  char *argv[40];
  int n = 0;
  argv[n++] = tu_bin("server/chiploc");
  va_list ap;
  va_start(ap, db);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 36) argv[n++] = (char *)a;
  va_end(ap);
  if (db) {
    argv[n++] = "--db";
    argv[n++] = (char *)db;
  }
  argv[n] = NULL;
  free(W.out);
  free(W.err);
  int rc = tu_run_capture(argv, W.dir, &W.out, &W.err, W.log);
  free(argv[0]);
  return rc;
}

/* W.out as JSON (the test fails when it is not one document). */
static json_t *out_json(void) {
  json_error_t e;
  json_t *j = json_loads(W.out, 0, &e);
  ck_assert_msg(j != NULL, "not JSON (%s): %s", e.text, W.out);
  return j;
}

/* The JSON of a command that must succeed; the caller json_decrefs it. */
#define CLI_JSON(db, ...)                                                                       \
  ({                                                                                            \
    int rc_ = cli(db, __VA_ARGS__, "--json", NULL);                                             \
    ck_assert_msg(rc_ == 0, "exit %d: %s", rc_, W.err);                                         \
    ck_assert_msg(W.err[0] == '\0', "stderr: %s", W.err);                                       \
    out_json();                                                                                 \
  })

static const char *jstr(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  ck_assert_msg(json_is_string(v), "%s is not a string", key);
  return json_string_value(v);
}

static long long jint(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
  return (long long)json_integer_value(v);
}

/* A genuine protocol 2 record of `subject` (a chip, or a peer landmark for
 * a link) by landmark lm, fastest round trip rtt_ns. */
static cl_store_row signed_row(const cl_key *lm, const cl_key *subject, int64_t subject_id,
                               uint64_t rtt_ns, uint64_t measured_ns, int link) {
  cl_store_row row;
  memset(&row, 0, sizeof row);
  ck_assert_int_eq(tu_record_rtt(&row.m, lm, subject, rtt_ns, measured_ns), CL_OK);
  row.chip_id = subject_id;
  row.is_link = link;
  row.bound_m = cl_bound_m(rtt_ns, CL_SPEED_C);
  row.est_speed = CL_SPEED_FIBRE;
  row.est_bound_m = cl_bound_m(rtt_ns, CL_SPEED_FIBRE);
  return row;
}

/* Enrols a chip and stores its records of ROWS. */
static int64_t chip_with_rows(const char *serial, const char *op, double lat, double lon,
                              const char *allowed) {
  cl_key *key = NULL;
  ck_assert_int_eq(cl_key_generate(&key), CL_OK);
  char err[512] = "";
  int64_t id = 0;
  ck_assert_msg(cl_store_chip_enroll(W.s, cl_key_public(key), serial, op, lat, lon, &id, err,
                                     sizeof err) == CL_OK,
                "%s", err);
  if (allowed)
    ck_assert_msg(cl_store_chip_allow(W.s, id, allowed, err, sizeof err) == CL_OK, "%s", err);
  for (size_t i = 0; i < N_ROWS; i++) {
    cl_store_row row = signed_row(W.lm[ROWS[i].lm], key, id, ROWS[i].rtt_ns,
                                  W.now_ns - ROWS[i].ago_s * 1000000000ull, 0);
    ck_assert_msg(cl_store_insert_measurements(W.s, W.lm_id[ROWS[i].lm], &row, 1, err,
                                               sizeof err) == CL_OK,
                  "%s", err);
  }
  cl_key_destroy(&key);
  return id;
}

static void link_row(int from, int to, uint64_t rtt_ns, uint64_t ago_s) {
  char err[512] = "";
  cl_store_row row = signed_row(W.lm[from], W.lm[to], W.lm_id[to], rtt_ns,
                                W.now_ns - ago_s * 1000000000ull, 1);
  ck_assert_msg(cl_store_insert_links(W.s, W.lm_id[from], &row, 1, err, sizeof err) == CL_OK, "%s",
                err);
}

/* Runs verifier round k (its end: round0 + 10 k seconds). */
static void verify_round(int k) {
  char end[32];
  snprintf(end, sizeof end, "%lld", W.round0 + 10LL * k);
  int rc = cli(W.conninfo, "verify", "--key", W.vkey, "--window", "300", "--interval", "10",
               "--round-end", end, "--quiet", NULL);
  ck_assert_msg(rc == 0, "verify round %d: exit %d: %s", k, rc, W.err);
}

/* Makes a LOGIN role that is a member of `group` (roles are cluster-wide,
 * so it may remain from an earlier run); returns its conninfo, owned. */
static char *login_member(const char *user, const char *group) {
  sqlf("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN "
       "CREATE ROLE %s LOGIN; END IF; END $$; GRANT %s TO %s",
       user, user, group, user);
  return tu_own(tu_conninfo_as(W.conninfo, user));
}

static void world_init(const char *db) {
  memset(&W, 0, sizeof W);
  W.conninfo = tu_own(tu_db_create(db));
  W.dir = tu_own(tu_tmpdir("cl-status"));
  W.log = tu_fmt("%s/cli.log", W.dir);
  fprintf(stderr, "test_status_cli: commands and their output in %s\n", W.log);
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
  ck_assert_int_eq(cli(W.conninfo, "landmark", "retire", "--name", "lm-old", NULL), 0);
  W.now_ns = tu_unix_ns();
  chip_with_rows("S-PARIS", "op-a", 48.8566, 2.3522, "FRA");
  chip_with_rows("S-TOKYO", "op-b", 35.6762, 139.6503, NULL);
  chip_with_rows("S-OFF", "op-a", 48.8566, 2.3522, NULL);
  sqlf("UPDATE chips SET active = false WHERE serial = 'S-OFF'");
  link_row(PAR, FRA, 5100000, 80);
  link_row(PAR, FRA, 5000000, 70);
  link_row(FRA, PAR, 5200000, 75);
  link_row(LON, PAR, 3000000, 65);
  /* Every row is older than the first round's end, and within the 300 s
   * window of the four rounds. */
  W.round0 = (long long)(W.now_ns / 1000000000ull) / 10 * 10 - 40;
  W.vkey = tu_keygen(W.dir, "verifier", W.log);
  ck_assert_int_eq(cli(W.conninfo, "verifier", "add", "--name", "v-status", "--pubkey",
                       tu_key_hex(W.vkey), NULL),
                   0);
  verify_round(0);
}

static void world_fini(void) {
  for (int i = 0; i < N_LM; i++) cl_key_destroy(&W.lm[i]);
  cl_store_destroy(&W.s);
  free(W.out);
  free(W.err);
  W.out = W.err = NULL;
  tu_release();
}

/* The line of a table whose first cell is `first` (right-aligned cells
 * start with spaces; the test fails without one); returns a pointer into
 * W.out, at the start of the line. */
static const char *table_line(const char *first) {
  size_t n = strlen(first);
  for (const char *p = W.out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    const char *q = p + strspn(p, " ");
    if (strncmp(q, first, n) == 0 && (q[n] == ' ' || q[n] == '\n')) return p;
  }
  ck_abort_msg("no line starting with %s in:\n%s", first, W.out);
  return NULL;
}

/* Column of `word` in the line (the test fails when it is not there). */
static long col_of(const char *line, const char *word) {
  const char *end = strchr(line, '\n');
  const char *p = strstr(line, word);
  ck_assert_msg(p && (!end || p < end), "%s not in %.*s", word, (int)(end ? end - line : 80), line);
  return (long)(p - line);
}

/* ---- the read commands ------------------------------------------------------------ */

static void check_status(const char *db) {
  json_t *j = CLI_JSON(db, "status");
  json_t *chips = json_object_get(j, "chips");
  ck_assert_int_eq(jint(chips, "enrolled"), 4);
  ck_assert_int_eq(jint(chips, "active"), 3);
  ck_assert_int_eq(jint(chips, "inactive"), 1);
  ck_assert_int_eq(jint(chips, "never_attested"), 1);
  ck_assert_int_eq(jint(json_object_get(chips, "consistency"), "CONSISTENT"), 2);
  ck_assert_int_eq(json_object_size(json_object_get(chips, "consistency")), 1);
  json_t *site = json_object_get(chips, "site_verdict");
  ck_assert_int_eq(jint(site, "SITE_CONSISTENT"), 1);
  ck_assert_int_eq(jint(site, "SITE_EXCLUDED"), 1);
  ck_assert_int_eq(jint(json_object_get(chips, "region_verdict"), "INSIDE"), 1);
  json_t *lms = json_object_get(j, "landmarks");
  ck_assert_int_eq(jint(lms, "total"), 5);
  ck_assert_int_eq(jint(lms, "stale_after_s"), 300);
  ck_assert_int_eq(jint(lms, "healthy"), 3);
  ck_assert_int_eq(jint(lms, "stale"), 1);
  ck_assert_int_eq(jint(lms, "retired"), 1);
  ck_assert_int_eq(jint(lms, "revoked"), 0);
  json_t *alerts = json_object_get(j, "alerts");
  ck_assert_int_eq(jint(alerts, "open"), 1);
  ck_assert_int_eq(jint(alerts, "acked"), 0);
  ck_assert_int_eq(jint(json_object_get(json_object_get(alerts, "by_kind"), "site_excluded"),
                        "open"),
                   1);
  json_t *round = json_object_get(j, "last_round");
  char iso[32];
  time_t r0 = (time_t)W.round0;
  struct tm tm;
  strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&r0, &tm));
  ck_assert_str_eq(jstr(round, "round_end"), iso);
  ck_assert_int_ge(jint(round, "age_s"), 30);
  json_decref(j);

  /* --stale: the measuring landmarks' newest rows are a minute old. */
  j = CLI_JSON(db, "status", "--stale", "30s");
  ck_assert_int_eq(jint(json_object_get(j, "landmarks"), "healthy"), 0);
  ck_assert_int_eq(jint(json_object_get(j, "landmarks"), "stale"), 4);
  ck_assert_int_eq(jint(json_object_get(j, "landmarks"), "stale_after_s"), 30);
  json_decref(j);

  ck_assert_int_eq(cli(db, "status", NULL), 0);
  ck_assert_msg(strstr(W.out, "Site verdicts   : SITE_CONSISTENT 1, SITE_EXCLUDED 1\n"), "%s",
                W.out);
  ck_assert_msg(strstr(W.out, "Landmarks       : 5: 3 healthy, 1 stale, 1 retired, 0 revoked"),
                "%s", W.out);
  ck_assert_msg(strstr(W.out, "Open alerts     : 1, 0 acknowledged: site_excluded 1\n"), "%s",
                W.out);
}

static void check_chips(const char *db) {
  json_t *j = CLI_JSON(db, "chip", "list");
  json_t *a = json_object_get(j, "chips");
  ck_assert_int_eq(json_array_size(a), 4);
  static const char *const serials[] = {"S-LATE", "S-OFF", "S-PARIS", "S-TOKYO"};
  for (size_t i = 0; i < 4; i++) ck_assert_str_eq(jstr(json_array_get(a, i), "serial"), serials[i]);
  json_t *late = json_array_get(a, 0), *off = json_array_get(a, 1), *paris = json_array_get(a, 2),
         *tokyo = json_array_get(a, 3);
  ck_assert(json_is_null(json_object_get(late, "consistency")));
  ck_assert(json_is_null(json_object_get(late, "round_end")));
  ck_assert(json_is_false(json_object_get(off, "active")));
  ck_assert(json_is_null(json_object_get(off, "consistency")));
  ck_assert(json_is_true(json_object_get(paris, "active")));
  ck_assert_str_eq(jstr(paris, "operator"), "op-a");
  ck_assert_str_eq(jstr(paris, "consistency"), "CONSISTENT");
  ck_assert_str_eq(jstr(paris, "site_verdict"), "SITE_CONSISTENT");
  ck_assert_str_eq(jstr(paris, "region_verdict"), "INSIDE");
  ck_assert_int_eq(jint(paris, "landmarks_used"), 3);
  double radius = json_real_value(json_object_get(paris, "radius_km"));
  ck_assert_msg(radius > 0 && radius < 40, "radius %g km", radius);
  ck_assert_int_eq(json_array_size(json_object_get(paris, "open_alerts")), 0);
  ck_assert_str_eq(jstr(tokyo, "site_verdict"), "SITE_EXCLUDED");
  ck_assert_str_eq(json_string_value(json_array_get(json_object_get(tokyo, "open_alerts"), 0)),
                   "site_excluded");
  json_decref(j);

  /* Filters. */
  j = CLI_JSON(db, "chip", "list", "--verdict", "site_excluded");
  ck_assert_int_eq(json_array_size(json_object_get(j, "chips")), 1);
  ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "chips"), 0), "serial"), "S-TOKYO");
  json_decref(j);
  j = CLI_JSON(db, "chip", "list", "--verdict", "NONE");
  ck_assert_int_eq(json_array_size(json_object_get(j, "chips")), 2); /* S-LATE, S-OFF */
  json_decref(j);
  j = CLI_JSON(db, "chip", "list", "--operator", "op-a", "--verdict", "CONSISTENT");
  ck_assert_int_eq(json_array_size(json_object_get(j, "chips")), 1);
  ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "chips"), 0), "serial"), "S-PARIS");
  json_decref(j);
  ck_assert_int_eq(cli(db, "chip", "list", "--verdict", "GREEN", NULL), 2);
  ck_assert_msg(strstr(W.err, "--verdict GREEN"), "%s", W.err);

  /* The table: one aligned column per field. */
  ck_assert_int_eq(cli(db, "chip", "list", NULL), 0);
  const char *head = table_line("SERIAL"), *row = table_line("S-TOKYO");
  ck_assert_int_eq(col_of(head, "SITE "), col_of(row, "SITE_EXCLUDED"));
  ck_assert_int_eq(col_of(head, "OPERATOR"), col_of(row, "op-b"));
  ck_assert_int_eq(col_of(head, "ALERTS"), col_of(row, "site_excluded"));
  row = table_line("S-OFF");
  ck_assert_int_eq(col_of(head, "STATE"), col_of(row, "inactive"));

  /* chip show: the attestation, the round trips per landmark by name. */
  j = CLI_JSON(db, "chip", "show", "S-PARIS");
  json_t *c = json_object_get(j, "chip");
  ck_assert_str_eq(jstr(c, "serial"), "S-PARIS");
  ck_assert_str_eq(jstr(c, "region_verdict"), "INSIDE");
  ck_assert_str_eq(jstr(c, "verifier"), "v-status");
  ck_assert_int_eq(jint(c, "chain_position"), 1);
  ck_assert_int_eq(strlen(jstr(c, "attestation_hash")), 64);
  ck_assert_double_eq_tol(json_number_value(json_object_get(c, "window_s")), 300, 1e-9);
  ck_assert_str_eq(jstr(c, "window_end"), jstr(c, "round_end"));
  json_t *lms = json_object_get(j, "landmarks");
  ck_assert_int_eq(json_array_size(lms), 3);
  static const struct {
    const char *name;
    long long records, rtt;
  } want[] = {{"lm-fra", 2, 3300000}, {"lm-lon", 1, 2400000}, {"lm-par", 3, 140000}};
  for (size_t i = 0; i < 3; i++) {
    json_t *l = json_array_get(lms, i);
    ck_assert_str_eq(jstr(l, "landmark"), want[i].name);
    ck_assert_int_eq(jint(l, "records"), want[i].records);
    ck_assert_int_eq(jint(l, "min_rtt_ns"), want[i].rtt);
    ck_assert_int_eq(jint(l, "min_bound_m"), (long long)cl_bound_m(want[i].rtt, CL_SPEED_C));
    ck_assert_msg(json_is_true(json_object_get(l, "used")), "%s not used", want[i].name);
  }
  ck_assert_int_eq(json_array_size(json_object_get(j, "alerts")), 0);
  json_decref(j);
  ck_assert_int_eq(cli(db, "chip", "show", "S-PARIS", NULL), 0);
  ck_assert_msg(strstr(W.out, "Region verdict  : INSIDE\n"), "%s", W.out);
  ck_assert_msg(strstr(W.out, "by verifier v-status, record 1 of its chain"), "%s", W.out);
  row = table_line("lm-par");
  head = table_line("LANDMARK");
  ck_assert_int_eq(col_of(head, "MIN_RTT_US") + (long)strlen("MIN_RTT_US"),
                   col_of(row, "140.000") + (long)strlen("140.000"));
  ck_assert_int_eq(col_of(head, "BOUND_KM_C") + (long)strlen("BOUND_KM_C"),
                   col_of(row, "20.986") + (long)strlen("20.986"));

  /* S-TOKYO's open alert; S-LATE never attested: the last 5 minutes. */
  j = CLI_JSON(db, "chip", "show", "S-TOKYO");
  ck_assert_int_eq(json_array_size(json_object_get(j, "alerts")), 1);
  ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "alerts"), 0), "kind"), "site_excluded");
  json_decref(j);
  j = CLI_JSON(db, "chip", "show", "S-LATE");
  ck_assert(json_is_null(json_object_get(json_object_get(j, "chip"), "consistency")));
  ck_assert_int_eq(json_array_size(json_object_get(j, "landmarks")), 0);
  json_decref(j);
  /* --window: the rows of the last 30 s are none (all are older). */
  j = CLI_JSON(db, "chip", "show", "S-PARIS", "--window", "30s");
  ck_assert_int_eq(json_array_size(json_object_get(j, "landmarks")), 0);
  json_decref(j);
  ck_assert_int_eq(cli(db, "chip", "show", "S-NOPE", NULL), 1);
  ck_assert_msg(strstr(W.err, "S-NOPE"), "%s", W.err);
  ck_assert_int_eq(cli(db, "chip", "show", NULL), 2);
}

static void check_landmarks(const char *db) {
  json_t *j = CLI_JSON(db, "landmark", "list");
  json_t *a = json_object_get(j, "landmarks");
  ck_assert_int_eq(json_array_size(a), 5);
  static const struct {
    const char *name, *state;
    long long records, links, peers;
  } want[] = {{"lm-fra", "healthy", 6, 1, 1},
              {"lm-lon", "healthy", 3, 1, 1},
              {"lm-old", "retired", 0, 0, 0},
              {"lm-par", "healthy", 9, 2, 1},
              {"lm-quiet", "stale", 0, 0, 0}};
  for (size_t i = 0; i < 5; i++) {
    json_t *l = json_array_get(a, i);
    ck_assert_str_eq(jstr(l, "name"), want[i].name);
    ck_assert_str_eq(jstr(l, "state"), want[i].state);
    ck_assert_int_eq(jint(l, "measurements_1h"), want[i].records);
    ck_assert_int_eq(jint(l, "links_1h"), want[i].links);
    ck_assert_int_eq(jint(l, "peers_1h"), want[i].peers);
    ck_assert_int_eq(json_array_size(json_object_get(l, "open_alerts")), 0);
  }
  ck_assert_double_eq_tol(json_real_value(json_object_get(json_array_get(a, 3), "lat")), 48.8566,
                          1e-9);
  ck_assert(json_is_string(json_object_get(json_array_get(a, 2), "retired_at")));
  ck_assert(json_is_null(json_object_get(json_array_get(a, 4), "last_measured")));
  json_decref(j);
  ck_assert_int_eq(cli(db, "landmark", "list", NULL), 0);
  const char *head = table_line("NAME"), *row = table_line("lm-quiet");
  ck_assert_int_eq(col_of(head, "STATE"), col_of(row, "stale"));
  ck_assert_int_eq(cli(db, "landmark", "list", "--stale", "2h", NULL), 2);
}

static void check_measurements(const char *db) {
  json_t *j = CLI_JSON(db, "measurements", "--chip", "S-PARIS", "--since", "5m");
  ck_assert_int_eq(jint(j, "since_s"), 300);
  ck_assert_str_eq(jstr(j, "chip"), "S-PARIS");
  json_t *a = json_object_get(j, "measurements");
  ck_assert_int_eq(json_array_size(a), 3);
  ck_assert_str_eq(jstr(json_array_get(a, 2), "chip"), "S-PARIS");
  ck_assert_str_eq(jstr(json_array_get(a, 2), "landmark"), "lm-par");
  ck_assert_int_eq(jint(json_array_get(a, 2), "records"), 3);
  ck_assert_int_eq(jint(json_array_get(a, 2), "min_rtt_ns"), 140000);
  json_decref(j);
  /* Every chip, inactive ones included; the default window is an hour. */
  j = CLI_JSON(db, "measurements");
  ck_assert_int_eq(jint(j, "since_s"), 3600);
  ck_assert_int_eq(json_array_size(json_object_get(j, "measurements")), 9);
  json_decref(j);
  /* A plain number is seconds: the rows are all older than 30 s. */
  j = CLI_JSON(db, "measurements", "--since", "30");
  ck_assert_int_eq(json_array_size(json_object_get(j, "measurements")), 0);
  json_decref(j);
  ck_assert_int_eq(cli(db, "measurements", "--since", "2h", "--chip", "S-TOKYO", NULL), 0);
  const char *head = table_line("CHIP"), *row = table_line("S-TOKYO");
  ck_assert_int_eq(col_of(head, "LANDMARK"), col_of(row, "lm-fra"));
  ck_assert_int_eq(cli(db, "measurements", "--since", "5x", NULL), 2);
  ck_assert_msg(strstr(W.err, "--since 5x"), "%s", W.err);
  ck_assert_int_eq(cli(db, "measurements", "--chip", "S-NOPE", NULL), 1);

  j = CLI_JSON(db, "links", "--since", "5m");
  a = json_object_get(j, "links");
  ck_assert_int_eq(json_array_size(a), 3);
  ck_assert_str_eq(jstr(json_array_get(a, 0), "from_landmark"), "lm-fra");
  ck_assert_str_eq(jstr(json_array_get(a, 0), "to_landmark"), "lm-par");
  ck_assert_str_eq(jstr(json_array_get(a, 2), "from_landmark"), "lm-par");
  ck_assert_str_eq(jstr(json_array_get(a, 2), "to_landmark"), "lm-fra");
  ck_assert_int_eq(jint(json_array_get(a, 2), "records"), 2);
  ck_assert_int_eq(jint(json_array_get(a, 2), "min_rtt_ns"), 5000000);
  json_decref(j);
  ck_assert_int_eq(cli(db, "links", NULL), 0);
  ck_assert_msg(strstr(table_line("lm-lon"), "lm-par"), "%s", W.out);
}

START_TEST(test_read_commands) {
  world_init("cl_status_read");
  /* Enrolled after the round: never attested. */
  cl_key *late = NULL;
  ck_assert_int_eq(cl_key_generate(&late), CL_OK);
  char err[512] = "";
  int64_t id = 0;
  ck_assert_msg(cl_store_chip_enroll(W.s, cl_key_public(late), "S-LATE", "op-b", 1.5, 2.5, &id,
                                     err, sizeof err) == CL_OK,
                "%s", err);
  cl_key_destroy(&late);

  check_status(W.conninfo);
  check_chips(W.conninfo);
  check_landmarks(W.conninfo);
  check_measurements(W.conninfo);

  /* The read-only roles see the same through the views. */
  const char *roles[2][2] = {{"h3_status_dash", "chiploc_dashboard"},
                             {"h3_status_audit", "chiploc_auditor"}};
  for (int r = 0; r < 2; r++) {
    char *login = login_member(roles[r][0], roles[r][1]);
    check_status(login);
    check_chips(login);
    check_landmarks(login);
    check_measurements(login);
    ck_assert_int_eq(cli(login, "alerts", "--all", NULL), 0);
    ck_assert_msg(strstr(table_line("1"), "chip S-TOKYO"), "%s", W.out);
    /* ... and may not acknowledge. */
    ck_assert_int_eq(cli(login, "alerts", "ack", "1", "--by", "eve", "--reason", "r", NULL), 1);
    ck_assert_msg(strstr(W.err, "chiploc_admin"), "%s", W.err);
  }
  ck_assert_int_eq(tu_sql_int(W.conninfo, "SELECT count(*) FROM alerts WHERE acked_at IS NOT NULL"),
                   0);
  world_fini();
}
END_TEST

/* ---- acknowledgements ------------------------------------------------------------- */

/* The alerts of a listing, as a JSON array the caller json_decrefs. */
static json_t *alerts_of(json_t *doc) {
  json_t *a = json_incref(json_object_get(doc, "alerts"));
  json_decref(doc);
  ck_assert(json_is_array(a));
  return a;
}

START_TEST(test_ack) {
  world_init("cl_status_ack");
  const char *db = W.conninfo;
  json_t *a = alerts_of(CLI_JSON(db, "alerts"));
  ck_assert_int_eq(json_array_size(a), 1);
  json_t *al = json_array_get(a, 0);
  long long first = jint(al, "id");
  char first_s[24];
  snprintf(first_s, sizeof first_s, "%lld", first);
  ck_assert_str_eq(jstr(al, "kind"), "site_excluded");
  ck_assert_str_eq(jstr(al, "state"), "open");
  ck_assert_str_eq(jstr(al, "subject_type"), "chip");
  ck_assert_str_eq(jstr(al, "subject"), "S-TOKYO");
  ck_assert(json_is_null(json_object_get(al, "acked_by")));
  json_decref(a);

  /* Refusals before anything is written. */
  ck_assert_int_eq(cli(db, "alerts", "ack", first_s, "--by", "alice", NULL), 2);
  ck_assert_int_eq(cli(db, "alerts", "ack", "x1", "--by", "alice", "--reason", "r", NULL), 2);
  ck_assert_int_eq(cli(db, "alerts", "ack", "999999", "--by", "alice", "--reason", "r", NULL), 1);
  ck_assert_msg(strstr(W.err, "no alert with id 999999"), "%s", W.err);

  ck_assert_int_eq(cli(db, "alerts", "ack", first_s, "--by", "alice", "--reason",
                       "chip shipped to Tokyo, site update pending", NULL),
                   0);
  ck_assert_msg(strstr(W.out, "acknowledged by alice"), "%s", W.out);
  ck_assert_int_eq(cli(db, "alerts", "ack", first_s, "--by", "bob", "--reason", "again", NULL), 1);
  ck_assert_msg(strstr(W.err, "acknowledged by alice"), "%s", W.err);

  a = alerts_of(CLI_JSON(db, "alerts"));
  al = json_array_get(a, 0);
  ck_assert_str_eq(jstr(al, "state"), "acked");
  ck_assert_str_eq(jstr(al, "acked_by"), "alice");
  ck_assert_str_eq(jstr(al, "ack_reason"), "chip shipped to Tokyo, site update pending");
  ck_assert_str_eq(jstr(al, "acked_login"), "postgres");
  ck_assert(json_is_string(json_object_get(al, "acked_at")));
  json_decref(a);
  json_t *st = CLI_JSON(db, "status");
  ck_assert_int_eq(jint(json_object_get(st, "alerts"), "open"), 1);
  ck_assert_int_eq(jint(json_object_get(st, "alerts"), "acked"), 1);
  json_decref(st);
  ck_assert_int_eq(cli(db, "alerts", NULL), 0);
  ck_assert_msg(strstr(table_line(first_s), "alice: chip shipped"), "%s", W.out);

  /* The next round: still excluded, still acknowledged. */
  verify_round(1);
  a = alerts_of(CLI_JSON(db, "alerts"));
  ck_assert_int_eq(json_array_size(a), 1);
  ck_assert_int_eq(jint(json_array_get(a, 0), "id"), first);
  ck_assert_str_eq(jstr(json_array_get(a, 0), "state"), "acked");
  ck_assert_str_eq(jstr(json_array_get(a, 0), "acked_by"), "alice");
  json_decref(a);

  /* The site is corrected: the alert clears, its acknowledgement kept. */
  sqlf("UPDATE chips SET site_lat = 48.8566, site_lon = 2.3522 WHERE serial = 'S-TOKYO'");
  verify_round(2);
  a = alerts_of(CLI_JSON(db, "alerts"));
  ck_assert_int_eq(json_array_size(a), 0);
  json_decref(a);
  a = alerts_of(CLI_JSON(db, "alerts", "--since", "1h"));
  ck_assert_int_eq(json_array_size(a), 1);
  ck_assert_str_eq(jstr(json_array_get(a, 0), "state"), "cleared");
  ck_assert(json_is_string(json_object_get(json_array_get(a, 0), "cleared_at")));
  ck_assert_str_eq(jstr(json_array_get(a, 0), "acked_by"), "alice");
  json_decref(a);
  ck_assert_int_eq(cli(db, "alerts", "ack", first_s, "--by", "bob", "--reason", "late", NULL), 1);
  ck_assert_msg(strstr(W.err, "was cleared at"), "%s", W.err);

  /* Back to Tokyo: a new alert, not acknowledged. */
  sqlf("UPDATE chips SET site_lat = 35.6762, site_lon = 139.6503 WHERE serial = 'S-TOKYO'");
  verify_round(3);
  a = alerts_of(CLI_JSON(db, "alerts"));
  ck_assert_int_eq(json_array_size(a), 1);
  ck_assert_int_gt(jint(json_array_get(a, 0), "id"), first);
  ck_assert_str_eq(jstr(json_array_get(a, 0), "state"), "open");
  ck_assert(json_is_null(json_object_get(json_array_get(a, 0), "acked_by")));
  json_decref(a);
  a = alerts_of(CLI_JSON(db, "alerts", "--all"));
  ck_assert_int_eq(json_array_size(a), 2);
  ck_assert_int_eq(jint(json_array_get(a, 0), "id"), first);
  json_decref(a);
  a = alerts_of(CLI_JSON(db, "alerts", "--chip", "S-PARIS", "--kind", "site_excluded", "--all"));
  ck_assert_int_eq(json_array_size(a), 0);
  json_decref(a);
  a = alerts_of(CLI_JSON(db, "alerts", "--chip", "S-TOKYO", "--kind", "site_excluded", "--all"));
  ck_assert_int_eq(json_array_size(a), 2);
  json_decref(a);
  ck_assert_int_eq(cli(db, "alerts", "--kind", "chip_on_fire", NULL), 2);
  ck_assert_int_eq(cli(db, "alerts", "--all", "--since", "1h", NULL), 2);
  ck_assert_int_eq(cli(db, "alerts", "--chip", "S-NOPE", NULL), 1);

  json_t *j = CLI_JSON(db, "chip", "show", "S-TOKYO");
  ck_assert_int_eq(jint(json_object_get(j, "chip"), "chain_position"), 4);
  json_decref(j);
  world_fini();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("status_cli");
  TCase *unit = tcase_create("duration");
  tcase_add_test(unit, test_duration);
  suite_add_tcase(s, unit);
  TCase *db = tcase_create("db");
  tcase_set_timeout(db, 240);
  tcase_add_test(db, test_read_commands);
  tcase_add_test(db, test_ack);
  suite_add_tcase(s, db);
  return tu_run_suite(s);
}
