/*
 * End-to-end: the real landmarkd and chipagent binaries as separate
 * processes on loopback, a real PostgreSQL, and an in-test rogue agent that
 * speaks protocol 2 itself. Checks that honest chips are measured and
 * their records verify offline, that an unenrolled chip is refused at
 * registration, and that an answer with a bad MAC, a replayed answer, a
 * late answer and an answer for a chip the connection never registered are
 * each rejected with their own error code and counted, while the honest
 * chip keeps being measured. The rogue chip then behaves: the records of
 * its bursts (the accepted answers only, signed in its transcripts) are
 * stored and re-verified offline with every other row. This landmark does
 * its handshakes and transcript checks on its event loop
 * (verify_threads = 0); test_hostile runs the same checks through the
 * verify threads, the default.
 */
#define _GNU_SOURCE
#include "cl_chipsess.h"
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

/* The rogue agent's chips: B (enrolled) and U (not). */
typedef struct {
  tu_wire w;
  cl_key *chips[2];
  cl_chipsess sess[2];
  uint8_t keys[2 * CL_SESSION_KEY_LEN];
} rogue;

/* A message the rogue does not wait for: a BurstEnd gets the chip's
 * honest Transcript (tu_chip_handle), an Error is passed over; anything
 * else but a Challenge fails the test. Returns 1 for a Challenge. */
static int rogue_pass(rogue *r, const cl_msg *m) {
  if (m->type == CL_MSG_CHALLENGE) return 1;
  ck_assert_msg(m->type == CL_MSG_BURST_END || m->type == CL_MSG_ERROR, "unexpected message %s",
                cl_msg_type_name(m->type));
  ck_assert_int_eq(tu_chip_handle(&r->w, r->chips, 2, r->sess, m, NULL), 1);
  return 0;
}

/* The next Challenge that arrives after everything already received was
 * read (and dropped): answered at once, it is inside its deadline. */
static void rogue_next_challenge(rogue *r, cl_msg *ch) {
  while (tu_wire_recv(&r->w, ch, 0) == 0) rogue_pass(r, ch);
  for (;;) {
    ck_assert_msg(tu_wire_recv(&r->w, ch, 10000) == 0, "no challenge within 10 s");
    if (rogue_pass(r, ch)) return;
  }
}

/* Waits for an Error frame (passing over the rest) and returns its code. */
static cl_wire_error rogue_expect_error(rogue *r) {
  cl_msg m;
  for (;;) {
    ck_assert_msg(tu_wire_recv(&r->w, &m, 5000) == 0, "no error frame within 5 s");
    if (m.type == CL_MSG_ERROR) return m.u.error.code;
    rogue_pass(r, &m);
  }
}

static void rogue_respond(rogue *r, const cl_msg *ch, const uint8_t mac[CL_MAC_LEN]) {
  tu_wire_respond(&r->w, ch->u.challenge.chip, ch->u.challenge.seq, mac);
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
  lo.verify_threads = TU_CONF_ZERO; /* handshakes and transcripts on the event loop */
  pid_t lm = tu_landmarkd_start(tu_landmark_conf(dir, &lo), lmlog);
  tu_agent_opts ao = {.name = "e2e-host", .backoff_min_ms = 50, .backoff_max_ms = 1000,
                      .landmarks = {{"paris", port, lhex}}, .chips = {{"a", akey}}};
  pid_t ag = tu_chipagent_start(tu_agent_conf(dir, &ao), aglog, NULL);

  /* The rogue agent registers B and U in one Register: B is accepted and
   * completes its handshake, U is refused. */
  static rogue r;
  r.chips[0] = tu_key_load(bkey);
  r.chips[1] = tu_key_load(ukey);
  ck_assert_msg(tu_wire_connect(&r.w, NULL, port) == 0, "connect to landmarkd");
  static cl_msg res;
  for (int i = 0; i < 2; i++) cl_chipsess_init(&r.sess[i], r.keys + i * CL_SESSION_KEY_LEN);
  uint8_t landmark[CL_PK_LEN];
  tu_chip_hello(&r.w, landmark);
  ck_assert_uint_eq(tu_chip_register(&r.w, landmark, r.chips, 2, r.sess, &res), 1);
  ck_assert_int_eq(res.u.reg_result.n, 2);
  ck_assert_int_eq(res.u.reg_result.r[0].accepted, 1);
  ck_assert_int_eq(res.u.reg_result.r[1].accepted, 0);
  ck_assert_int_eq(res.u.reg_result.r[1].reason, CL_REFUSE_NOT_ENROLLED);
  ck_assert_int_eq(r.sess[0].state, CL_CHIPSESS_ESTABLISHED);
  ck_assert_int_eq(r.sess[1].state, CL_CHIPSESS_NONE);

  cl_msg ch;
  uint8_t mac[CL_MAC_LEN];
  /* 1: a MAC with one bit changed. */
  rogue_next_challenge(&r, &ch);
  ck_assert_int_eq(cl_chipsess_answer(&r.sess[0], ch.u.challenge.seq, ch.u.challenge.nonce, mac),
                   CL_OK);
  mac[7] ^= 0x01;
  rogue_respond(&r, &ch, mac);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_BAD_MAC);
  /* 2: a valid answer, then the same answer again. */
  rogue_next_challenge(&r, &ch);
  ck_assert_int_eq(cl_chipsess_answer(&r.sess[0], ch.u.challenge.seq, ch.u.challenge.nonce, mac),
                   CL_OK);
  rogue_respond(&r, &ch, mac);
  rogue_respond(&r, &ch, mac);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_REPLAY);
  /* 3: a valid answer after the deadline. */
  rogue_next_challenge(&r, &ch);
  tu_sleep_ms(DEADLINE_MS + 150);
  ck_assert_int_eq(cl_chipsess_answer(&r.sess[0], ch.u.challenge.seq, ch.u.challenge.nonce, mac),
                   CL_OK);
  rogue_respond(&r, &ch, mac);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_LATE);
  /* 4: an answer for a chip this connection never registered. */
  memcpy(ch.u.challenge.chip, cl_key_public(r.chips[1]), CL_PK_LEN);
  rogue_respond(&r, &ch, mac);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_NOT_REGISTERED);

  /* Then B behaves for a few bursts: every Challenge answered, every
   * BurstEnd signed. */
  tu_chip_stats st;
  memset(&st, 0, sizeof st);
  ck_assert_int_eq(tu_chip_serve(&r.w, r.chips, 2, r.sess, 3000, &st), 0);
  ck_assert_uint_ge(st.answered, 3);
  ck_assert_uint_ge(st.transcripts, 1);
  ck_assert_uint_eq(st.refused, 0);
  ck_assert_uint_eq(st.errors, 0);

  /* Meanwhile the honest chip keeps being measured. */
  char q[256];
  snprintf(q, sizeof q,
           "SELECT count(*) FROM measurements m JOIN chips c ON c.id = m.chip_id "
           "WHERE c.serial = 'A-0001' AND m.probe_count = 3");
  long long honest = 0;
  for (int i = 0; i < 100 && (honest = tu_sql_int(db, q)) < 4; i++) tu_sleep_ms(100);
  ck_assert_msg(honest >= 4, "honest chip has %lld full-burst measurements", honest);
  long long rogue_rows = 0;
  for (int i = 0; i < 50 && rogue_rows < 1; i++) {
    rogue_rows = tu_sql_int(db, "SELECT count(*) FROM measurements m JOIN chips c ON c.id = "
                                "m.chip_id WHERE c.serial = 'B-0001'");
    if (rogue_rows < 1) tu_sleep_ms(100);
  }
  ck_assert_msg(rogue_rows >= 1, "the rogue chip's honest bursts were not stored");

  tu_wire_close(&r.w);
  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);

  ck_assert_int_ge(tu_last_stat(lmlog, "rejected_bad_mac"), 1);
  ck_assert_int_ge(tu_last_stat(lmlog, "rejected_replay"), 1);
  ck_assert_int_ge(tu_last_stat(lmlog, "rejected_late"), 1);
  ck_assert_int_ge(tu_last_stat(lmlog, "rejected_not_registered"), 1);
  ck_assert_int_eq(tu_last_stat(lmlog, "refused_not_enrolled"), 1);
  ck_assert_int_ge(tu_last_stat(lmlog, "transcripts_ok"), 1);
  ck_assert_int_eq(tu_last_stat(lmlog, "transcripts_bad"), 0);
  ck_assert_int_eq(tu_last_stat(lmlog, "jobs_orphaned"), 0);
  ck_assert_int_ge(tu_count_in_file(lmlog, "reason=bad_mac"), 1);
  ck_assert_int_ge(tu_count_in_file(lmlog, "reason=not_enrolled"), 1);
  /* Everything the landmark measured was written before it exited, and
   * every row re-verifies offline: record, transcript and both handshake
   * signatures. */
  long long measured = tu_last_stat(lmlog, "measurements");
  ck_assert_int_gt(measured, 0);
  ck_assert_int_eq(tu_last_stat(lmlog, "transcripts_ok"), measured);
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
  cl_chipsess_end(&r.sess[0]);
  cl_key_destroy(&r.chips[0]);
  cl_key_destroy(&r.chips[1]);
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
  ck_assert_int_eq(tu_run(argv, lmlog), 2);
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
