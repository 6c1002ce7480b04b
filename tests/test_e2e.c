/*
 * End-to-end: the real landmarkd and chipagent binaries as separate
 * processes on loopback, a real PostgreSQL, and an in-test rogue agent that
 * speaks the wire protocol itself. Checks that honest chips are measured and
 * their records verify offline, that an unenrolled chip is refused, and that
 * a bad signature, a replayed response and a late response are each rejected
 * with their own error code and counted, while the honest chip keeps being
 * measured. This landmark checks signatures on its event loop
 * (verify_threads = 0); test_hostile runs the same checks through the
 * verify threads, the default.
 */
#define _GNU_SOURCE
#include "cl_err.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_msg.h"
#include "cl_probe.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEADLINE_MS 300

/* ---- a minimal blocking agent speaking the wire protocol ---------------- */

static void rogue_next_challenge(tu_wire *r, cl_challenge *ch) {
  cl_msg m;
  for (;;) {
    ck_assert_msg(tu_wire_recv(r, &m, 10000) == 0, "no challenge within 10 s");
    if (m.type == CL_MSG_CHALLENGE) break;
    ck_assert_msg(m.type == CL_MSG_ERROR, "unexpected message %s", cl_msg_type_name(m.type));
  }
  *ch = m.u.challenge;
  ck_assert_int_eq(cl_challenge_verify(ch), CL_OK);
}

/* Waits for an Error frame (skipping challenges) and returns its code. */
static cl_wire_error rogue_expect_error(tu_wire *r) {
  cl_msg m;
  for (;;) {
    ck_assert_msg(tu_wire_recv(r, &m, 5000) == 0, "no error frame within 5 s");
    if (m.type == CL_MSG_ERROR) return m.u.error.code;
  }
}

START_TEST(test_honest_and_hostile) {
  ck_assert_int_ge(sodium_init(), 0);
  char *dir = tu_own(tu_tmpdir("chiploc-e2e"));
  char *log = tu_fmt("%s/cli.log", dir), *lmlog = tu_fmt("%s/landmarkd.log", dir),
       *aglog = tu_fmt("%s/chipagent.log", dir);
  char *db = tu_own(tu_db_create("chiploc_e2e"));

  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", db, NULL),
                   0);
  char *lkey = tu_keygen(dir, "landmark", log);
  char *akey = tu_keygen(dir, "chip-a", log);
  char *bkey = tu_keygen(dir, "chip-b", log);
  char *ukey = tu_keygen(dir, "chip-u", log);
  char *lhex = tu_key_hex(lkey);
  ck_assert_int_eq(tu_cli(log, "landmark", "add", "--db", db, "--name", "lm-paris", "--pubkey", lhex,
                       "--lat", "48.8566", "--lon", "2.3522", NULL),
                   0);
  ck_assert_int_eq(tu_cli(log, "chip", "enroll", "--db", db, "--pubkey-file", akey, "--serial",
                       "A-0001", "--operator", "honest-dc", "--site", "48.85,2.35", NULL),
                   0);
  ck_assert_int_eq(tu_cli(log, "chip", "enroll", "--db", db, "--pubkey-file", bkey, "--serial",
                       "B-0001", "--operator", "rogue-dc", "--site", "48.85,2.35", NULL),
                   0);

  int port = tu_free_port();
  tu_landmark_opts lo = tu_landmark_defaults();
  lo.key = lkey;
  lo.port = port;
  lo.conninfo = db;
  lo.deadline_ms = DEADLINE_MS;
  lo.speed = "fibre";
  lo.verify_threads = TU_CONF_ZERO; /* signatures checked on the event loop */
  pid_t lm = tu_landmarkd_start(tu_landmark_conf(dir, &lo), lmlog);
  tu_agent_opts ao = {.name = "e2e-host", .backoff_min_ms = 50, .backoff_max_ms = 1000,
                      .landmarks = {{"paris", port, lhex}}, .chips = {{"a", akey}}};
  pid_t ag = tu_chipagent_start(tu_agent_conf(dir, &ao), aglog, NULL);

  /* The rogue agent: chip B is enrolled, chip U is not. */
  cl_key *bk = tu_key_load(bkey), *uk = tu_key_load(ukey);
  tu_wire r;
  ck_assert_msg(tu_wire_connect(&r, NULL, port) == 0, "connect to landmarkd");
  cl_msg m;
  ck_assert_int_eq(tu_wire_recv(&r, &m, 5000), 0);
  ck_assert_int_eq(m.type, CL_MSG_HELLO);
  uint8_t nonce[CL_NONCE_LEN];
  memcpy(nonce, m.u.hello.session_nonce, CL_NONCE_LEN);
  cl_msg reg;
  memset(&reg, 0, sizeof reg);
  reg.type = CL_MSG_REGISTER;
  snprintf(reg.u.reg.agent, sizeof reg.u.reg.agent, "rogue");
  reg.u.reg.n = 2;
  memcpy(reg.u.reg.chips[0].chip, cl_key_public(bk), CL_PK_LEN);
  cl_register_sign(m.u.hello.landmark, nonce, bk, reg.u.reg.chips[0].proof);
  memcpy(reg.u.reg.chips[1].chip, cl_key_public(uk), CL_PK_LEN);
  cl_register_sign(m.u.hello.landmark, nonce, uk, reg.u.reg.chips[1].proof);
  tu_wire_send(&r, &reg);
  ck_assert_int_eq(tu_wire_recv(&r, &m, 5000), 0);
  ck_assert_int_eq(m.type, CL_MSG_REGISTER_RESULT);
  ck_assert_int_eq(m.u.reg_result.n, 2);
  ck_assert_int_eq(m.u.reg_result.r[0].accepted, 1);
  ck_assert_int_eq(m.u.reg_result.r[1].accepted, 0);
  ck_assert_int_eq(m.u.reg_result.r[1].reason, CL_REFUSE_NOT_ENROLLED);

  cl_challenge ch;
  uint8_t sig[CL_SIG_LEN];
  /* 1: a bad signature. */
  rogue_next_challenge(&r, &ch);
  cl_response_sign(&ch, bk, sig);
  sig[7] ^= 0x01;
  tu_wire_respond(&r, ch.chip, ch.nonce, sig);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_BAD_SIGNATURE);
  /* 2: a valid answer, then the same answer again. */
  rogue_next_challenge(&r, &ch);
  cl_response_sign(&ch, bk, sig);
  tu_wire_respond(&r, ch.chip, ch.nonce, sig);
  tu_wire_respond(&r, ch.chip, ch.nonce, sig);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_REPLAY);
  /* 3: a valid answer after the deadline. */
  rogue_next_challenge(&r, &ch);
  tu_sleep_ms(DEADLINE_MS + 150);
  cl_response_sign(&ch, bk, sig);
  tu_wire_respond(&r, ch.chip, ch.nonce, sig);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_LATE);
  /* 4: an answer for a chip this connection never registered. */
  cl_challenge other = ch;
  memcpy(other.chip, cl_key_public(uk), CL_PK_LEN);
  cl_response_sign(&other, uk, sig);
  tu_wire_respond(&r, other.chip, other.nonce, sig);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_NOT_REGISTERED);

  /* Meanwhile the honest chip keeps being measured. */
  char q[256];
  snprintf(q, sizeof q,
           "SELECT count(*) FROM measurements m JOIN chips c ON c.id = m.chip_id "
           "WHERE c.serial = 'A-0001' AND m.probe_count = 3");
  long long honest = 0;
  for (int i = 0; i < 100 && (honest = tu_sql_int(db, q)) < 4; i++) tu_sleep_ms(100);
  ck_assert_msg(honest >= 4, "honest chip has %lld full-burst measurements", honest);

  tu_wire_close(&r);
  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);

  ck_assert_int_ge(tu_last_stat(lmlog, "rejected_bad_signature"), 1);
  ck_assert_int_ge(tu_last_stat(lmlog, "rejected_replay"), 1);
  ck_assert_int_ge(tu_last_stat(lmlog, "rejected_late"), 1);
  ck_assert_int_ge(tu_last_stat(lmlog, "rejected_not_registered"), 1);
  ck_assert_int_ge(tu_last_stat(lmlog, "refused_not_enrolled"), 1);
  ck_assert_int_ge(tu_count_in_file(lmlog, "reason=bad_signature"), 1);
  /* Everything the landmark measured was written before it exited. */
  long long measured = tu_last_stat(lmlog, "measurements");
  ck_assert_int_gt(measured, 0);
  ck_assert_int_eq(tu_count_in_file(lmlog, "rows_unwritten=0"), 1);
  long long bad = -1;
  long long rows = tu_verify_measurements(db, (uint64_t)DEADLINE_MS * 1000000ull, &bad);
  ck_assert_int_eq(rows, measured);
  ck_assert_int_eq(bad, 0);
  /* The CLI table lists the honest chip at this landmark. */
  char *tlog = tu_fmt("%s/table.log", dir);
  ck_assert_int_eq(tu_cli(tlog, "measurements", "--db", db, NULL),
                   0);
  ck_assert_int_ge(tu_count_in_file(tlog, "A-0001"), 1);
  ck_assert_int_ge(tu_count_in_file(tlog, "lm-paris"), 1);
  cl_key_destroy(&bk);
  cl_key_destroy(&uk);
  tu_release();
}
END_TEST

START_TEST(test_unregistered_landmark_is_fatal) {
  /* A landmark whose key was never added exits with a clear error. */
  char *dir = tu_own(tu_tmpdir("chiploc-e2e-unreg"));
  char *log = tu_fmt("%s/cli.log", dir), *lmlog = tu_fmt("%s/landmarkd.log", dir);
  char *db = tu_own(tu_db_create("chiploc_e2e_unreg"));
  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", db, NULL),
                   0);
  /* Only the required settings (and the port). */
  tu_landmark_opts lo = {.name = "ghost", .key = tu_keygen(dir, "landmark", log),
                         .port = tu_free_port(), .lat = 1, .lon = 2, .conninfo = db};
  char *lmbin = tu_own(tu_bin("server/landmarkd"));
  char *argv[] = {lmbin, "--config", tu_landmark_conf(dir, &lo), NULL};
  ck_assert_int_eq(tu_run(argv, lmlog), 1);
  ck_assert_int_eq(tu_count_in_file(lmlog, "is not registered"), 1);
  tu_release();
}
END_TEST

START_TEST(test_cli_errors) {
  char *dir = tu_own(tu_tmpdir("chiploc-e2e-cli"));
  char *log = tu_fmt("%s/cli.log", dir);
  char *key = tu_keygen(dir, "k", log);
  /* keygen refuses to overwrite. */
  ck_assert_int_eq(tu_cli(log, "keygen", "--out", key, NULL),
                   1);
  ck_assert_int_eq(tu_count_in_file(log, "refusing to overwrite"), 1);
  /* pubkey prints the same key keygen printed. */
  char *hex = tu_key_hex(key);
  ck_assert_int_eq(tu_cli(log, "pubkey", key, NULL),
                   0);
  ck_assert_int_eq(tu_count_in_file(log, hex), 2);
  /* Bad coordinates and keys are named. */
  ck_assert_int_eq(tu_cli(log, "landmark", "add", "--db", "dbname=none", "--name", "x", "--pubkey",
                       hex, "--lat", "91", "--lon", "0", NULL),
                   2);
  ck_assert_int_ge(tu_count_in_file(log, "--lat 91"), 1);
  ck_assert_int_eq(tu_cli(log, "chip", "enroll", "--db", "dbname=none", "--pubkey", "abc", "--serial",
                       "s", "--operator", "o", "--site", "1,2", NULL),
                   2);
  ck_assert_int_ge(tu_count_in_file(log, "--pubkey"), 1);
  ck_assert_int_eq(tu_cli(log, "frobnicate", NULL),
                   2);
  /* Config errors name the file and line: the literal text is the point. */
  char *bad = tu_own(tu_write_file(dir, "bad.conf", "[landmark]\nname = x\n[probe]\nburst = 0\n"));
  char *lmbin = tu_own(tu_bin("server/landmarkd"));
  char *argv[] = {lmbin, "--config", bad, NULL};
  char *lmlog = tu_fmt("%s/lm.log", dir);
  ck_assert_int_eq(tu_run(argv, lmlog), 2);
  ck_assert_int_ge(tu_count_in_file(lmlog, "bad.conf:4"), 1);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("e2e");
  TCase *tc = tcase_create("processes");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_honest_and_hostile);
  tcase_add_test(tc, test_unregistered_landmark_is_fatal);
  tcase_add_test(tc, test_cli_errors);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
