/*
 * A chip's and a landmark's life cycle through the real `chiploc` binary
 * against the PostgreSQL of the run, without SQL: enrolment refused for a
 * serial, a landmark name or a key the database holds already, each refusal
 * naming the holder (exit 1, nothing written); one key for one identity
 * across chips, landmarks and verifiers; `chip deactivate SERIAL --reason`
 * takes the chip out of the set landmarks probe (cl_store_load_chips: it
 * stays, inactive) with its time and reason kept and its open alerts
 * cleared, twice is harmless, and `chip reactivate` brings it back; usage
 * errors exit 2.
 */
#include "cl_err.h"
#include "cl_key.h"
#include "cl_store.h"
#include "testutil.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
  char *dir, *db;
  int runs;
  char *out; /* the output of the last run, owned */
} D;

/* The next run's output file. */
static char *next_log(void) { return tu_fmt("%s/run%d.log", D.dir, ++D.runs); }

/* Runs chiploc with the arguments (a NULL is appended), its output going to
 * a file of its own and then to D.out. Evaluates to the exit status. */
#define CLI(...)                                                                               \
  ({                                                                                           \
    char *log_ = next_log();                                                                   \
    int rc_ = tu_cli(log_, __VA_ARGS__, NULL);                                                 \
    D.out = tu_own(tu_read_file(log_));                                                        \
    ck_assert_ptr_nonnull(D.out);                                                              \
    rc_;                                                                                       \
  })

/* The last run exited with `code` and printed `text` (a substring). */
static void expect(int rc, int code, const char *text) {
  ck_assert_msg(rc == code, "exit %d, want %d; output: %s", rc, code, D.out);
  ck_assert_msg(strstr(D.out, text) != NULL, "output lacks \"%s\": %s", text, D.out);
}

/* The first 16 hex digits of a key file's public key, as messages give it. */
static char *short_key(const char *keyfile) { return tu_fmt("%.16s", tu_key_hex(keyfile)); }

/* chip SERIAL's row of the enrolled set landmarks load; the test fails when
 * it is not there. */
static cl_store_chip enrolled(const char *serial) {
  cl_store *s = NULL;
  char err[512] = "";
  ck_assert_msg(cl_store_connect(&s, D.db, err, sizeof err) == CL_OK, "%s", err);
  cl_store_chip *chips = NULL, found;
  memset(&found, 0, sizeof found);
  size_t n = 0;
  ck_assert_msg(cl_store_load_chips(s, &chips, &n, err, sizeof err) == CL_OK, "%s", err);
  cl_store_destroy(&s);
  int hit = 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(chips[i].name, serial) == 0) {
      found = chips[i];
      hit = 1;
    }
  free(chips);
  ck_assert_msg(hit, "chip %s is not in the enrolled set", serial);
  return found;
}

/* tu_sql_value on the test's database, owned. */
static char *sql_value(const char *sql) { return tu_own(tu_sql_value(D.db, sql)); }

static void start(const char *name) {
  memset(&D, 0, sizeof D);
  D.dir = tu_own(tu_tmpdir(name));
  D.db = tu_own(tu_db_create("chiploc_lifecycle"));
  ck_assert_int_eq(tu_cli(tu_fmt("%s/cli.log", D.dir), "db", "migrate", "--db", D.db, NULL), 0);
}

START_TEST(test_duplicates_refused) {
  start("chiploc-lifecycle-dup");
  char *log = tu_fmt("%s/cli.log", D.dir);
  char *c1 = tu_keygen(D.dir, "chip-1", log), *c2 = tu_keygen(D.dir, "chip-2", log);
  char *lk = tu_keygen(D.dir, "landmark", log), *vk = tu_keygen(D.dir, "verifier", log);
  char *c1s = short_key(c1), *lks = short_key(lk), *vks = short_key(vk);
  expect(CLI("chip", "enroll", "--db", D.db, "--pubkey-file", c1, "--serial", "SN1",
             "--operator", "acme", "--site", "48.85,2.35"),
         0, "chip SN1 id=");
  expect(CLI("landmark", "add", "--db", D.db, "--name", "paris", "--pubkey", tu_key_hex(lk),
             "--site", "48.8566,2.3522"),
         0, "landmark paris id=");
  expect(CLI("verifier", "add", "--db", D.db, "--name", "v1", "--pubkey", tu_key_hex(vk)), 0,
         "v1");

  /* The same chip twice, the serial with another key, the key under
   * another serial. */
  expect(CLI("chip", "enroll", "--db", D.db, "--pubkey-file", c1, "--serial", "SN1",
             "--operator", "acme", "--site", "48.85,2.35"),
         1, "chiploc: chip SN1 is already enrolled with this key (operator acme)\n");
  expect(CLI("chip", "enroll", "--db", D.db, "--pubkey-file", c2, "--serial", "SN1",
             "--operator", "other", "--site", "48.85,2.35"),
         1,
         tu_fmt("chiploc: chip SN1 is already enrolled (operator acme, key %s); serials are "
                "unique: to give the chip a new key, deactivate it (chiploc chip deactivate SN1) "
                "and enrol the new key under a new serial\n",
                c1s));
  expect(CLI("chip", "enroll", "--db", D.db, "--pubkey-file", c1, "--serial", "SN2",
             "--operator", "acme", "--site", "48.85,2.35"),
         1,
         tu_fmt("chiploc: key %s already belongs to chip SN1 (operator acme); one key, one chip\n",
                c1s));
  /* A landmark's or a verifier's key as a chip key. */
  expect(CLI("chip", "enroll", "--db", D.db, "--pubkey-file", lk, "--serial", "SN3",
             "--operator", "acme", "--site", "48.85,2.35"),
         1,
         tu_fmt("chiploc: key %s belongs to landmark paris; a chip needs a key of its own "
                "(chiploc keygen makes one)\n",
                lks));
  expect(CLI("chip", "enroll", "--db", D.db, "--pubkey", tu_key_hex(vk), "--serial", "SN4",
             "--operator", "acme", "--site", "48.85,2.35"),
         1, tu_fmt("chiploc: key %s belongs to verifier v1; a chip needs a key of its own", vks));
  /* The landmark's name again, its key under another name, a chip's and a
   * verifier's key as a landmark key. */
  expect(CLI("landmark", "add", "--db", D.db, "--name", "paris", "--pubkey",
             tu_key_hex(c2), "--site", "45.76,4.84"),
         1,
         tu_fmt("chiploc: landmark paris already exists (key %s); names are unique: a new key "
                "for it goes under a new name, and the old entry is retired (chiploc landmark "
                "retire)\n",
                lks));
  expect(CLI("landmark", "add", "--db", D.db, "--name", "lyon", "--pubkey", tu_key_hex(lk),
             "--site", "45.76,4.84"),
         1, tu_fmt("chiploc: key %s already belongs to landmark paris; one key, one landmark\n",
                   lks));
  expect(CLI("landmark", "add", "--db", D.db, "--name", "lyon", "--pubkey", tu_key_hex(c1),
             "--site", "45.76,4.84"),
         1,
         tu_fmt("chiploc: key %s belongs to chip SN1 (operator acme); a landmark needs a key of "
                "its own (chiploc keygen makes one)\n",
                c1s));
  expect(CLI("landmark", "add", "--db", D.db, "--name", "lyon", "--pubkey", tu_key_hex(vk),
             "--site", "45.76,4.84"),
         1, tu_fmt("chiploc: key %s belongs to verifier v1; a landmark needs a key", vks));
  /* A chip's or a landmark's key as a verifier key, and the verifier's
   * name again. */
  expect(CLI("verifier", "add", "--db", D.db, "--name", "v2", "--pubkey", tu_key_hex(c1)),
         1,
         tu_fmt("chiploc: verifier add: key %s belongs to chip SN1 (operator acme); a verifier "
                "needs a key of its own (chiploc keygen makes one)\n",
                c1s));
  expect(CLI("verifier", "add", "--db", D.db, "--name", "v2", "--pubkey", tu_key_hex(lk)), 1,
         tu_fmt("chiploc: verifier add: key %s belongs to landmark paris; a verifier needs", lks));
  expect(CLI("verifier", "add", "--db", D.db, "--name", "v1", "--pubkey", tu_key_hex(c2)), 1,
         "chiploc: verifier add: verifier v1 already exists; names are unique: give the new key "
         "a new name\n");
  /* No refusal wrote anything. */
  ck_assert_int_eq(tu_sql_int(D.db, "SELECT count(*) FROM chips"), 1);
  ck_assert_int_eq(tu_sql_int(D.db, "SELECT count(*) FROM landmarks"), 1);
  ck_assert_int_eq(tu_sql_int(D.db, "SELECT count(*) FROM verifiers"), 1);
  tu_release();
}
END_TEST

START_TEST(test_deactivate_reactivate) {
  start("chiploc-lifecycle-active");
  char *log = tu_fmt("%s/cli.log", D.dir);
  char *c1 = tu_keygen(D.dir, "chip-1", log);
  expect(CLI("chip", "enroll", "--db", D.db, "--pubkey-file", c1, "--serial", "SN1",
             "--operator", "acme", "--site", "48.85,2.35"),
         0, "chip SN1 id=");
  ck_assert_int_eq(enrolled("SN1").active, 1);
  /* An open alert of the chip, as the verifier raises them, and one of the
   * past. */
  char err[256] = "";
  ck_assert_msg(tu_sql(D.db,
                       "INSERT INTO alerts (kind, chip_id, raised_at, cleared_at) SELECT k, id, "
                       "now() - interval '1 hour', c FROM chips, (VALUES ('chip_dark', NULL), "
                       "('inconsistent', now() - interval '30 minutes')) v(k, c)",
                       err, sizeof err) == 0,
                "%s", err);

  expect(CLI("chip", "deactivate", "--db", D.db, "SN1", "--reason", "moved to rack 7"), 0,
         "chip SN1 deactivated; 1 open alert(s) cleared\n");
  ck_assert_int_eq(tu_sql_int(D.db, "SELECT count(*) FROM alerts WHERE cleared_at IS NULL"), 0);
  ck_assert_int_eq(tu_sql_int(D.db, "SELECT count(*) FROM alerts WHERE cleared_at > now() - "
                                    "interval '1 minute'"),
                   1);
  ck_assert_int_eq(enrolled("SN1").active, 0);
  ck_assert_str_eq(sql_value( "SELECT deactivation_reason FROM chips WHERE serial = 'SN1'"),
                   "moved to rack 7");
  ck_assert_int_eq(tu_sql_int(D.db, "SELECT count(*) FROM chips WHERE serial = 'SN1' AND "
                                    "deactivated_at <= now()"),
                   1);
  char *when = sql_value( "SELECT deactivated_at FROM chips WHERE serial = 'SN1'");
  /* Twice: harmless, and the first time and reason stay. */
  expect(CLI("chip", "deactivate", "--db", D.db, "SN1", "--reason", "again"), 0,
         "chip SN1 is deactivated already\n");
  ck_assert_str_eq(sql_value( "SELECT deactivated_at FROM chips WHERE serial = 'SN1'"),
                   when);
  ck_assert_str_eq(sql_value( "SELECT deactivation_reason FROM chips WHERE serial = 'SN1'"),
                   "moved to rack 7");
  /* Enrolling it again says what to do. */
  expect(CLI("chip", "enroll", "--db", D.db, "--pubkey-file", c1, "--serial", "SN1",
             "--operator", "acme", "--site", "48.85,2.35"),
         1,
         "chip SN1 is already enrolled with this key (operator acme); it is deactivated: chiploc "
         "chip reactivate\n");

  expect(CLI("chip", "reactivate", "--db", D.db, "SN1"), 0, "chip SN1 reactivated\n");
  ck_assert_int_eq(enrolled("SN1").active, 1);
  ck_assert_int_eq(tu_sql_int(D.db, "SELECT count(*) FROM chips WHERE serial = 'SN1' AND "
                                    "deactivated_at IS NULL AND deactivation_reason IS NULL"),
                   1);
  expect(CLI("chip", "reactivate", "--db", D.db, "SN1"), 0, "chip SN1 is active already\n");
  /* Without a reason, the reason stays empty. */
  expect(CLI("chip", "deactivate", "--db", D.db, "SN1"), 0,
         "chip SN1 deactivated; 0 open alert(s) cleared\n");
  ck_assert_int_eq(tu_sql_int(D.db, "SELECT count(*) FROM chips WHERE serial = 'SN1' AND "
                                    "deactivation_reason IS NULL AND NOT active"),
                   1);

  /* An unknown serial is the database's refusal (1); usage errors are 2. */
  expect(CLI("chip", "deactivate", "--db", D.db, "NOPE"), 1,
         "chiploc: chip deactivate NOPE: no chip with serial NOPE");
  expect(CLI("chip", "reactivate", "--db", D.db, "NOPE"), 1,
         "chiploc: chip reactivate NOPE: no chip with serial NOPE");
  expect(CLI("chip", "deactivate", "--db", D.db), 2,
         "chip deactivate: the chip's SERIAL is missing");
  expect(CLI("chip", "deactivate", "--db", D.db, "SN1", "SN2"), 2,
         "chip deactivate: unexpected argument SN2");
  expect(CLI("chip", "reactivate", "--db", D.db, "SN1", "--reason", "x"), 2,
         "chip reactivate: --reason does not apply");
  expect(CLI("chip", "deactivate", "--db", D.db, "SN1", "--why", "x"), 2,
         "chip deactivate: unknown option --why");
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("lifecycle_cli");
  TCase *tc = tcase_create("chiploc");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_duplicates_refused);
  tcase_add_test(tc, test_deactivate_reactivate);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
