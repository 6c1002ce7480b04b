/*
 * The real chipagent against a landmark written in the test.
 *
 * The test listens on loopback and speaks the wire protocol itself: Hello
 * with a session nonce, the Register proofs checked, RegisterResult, then
 * Challenges it signs (or corrupts) and Responses it checks. chipagent runs
 * as a separate process with two chips, each key made by `chiploc keygen`.
 *
 * The agent answers a challenge before it checks the landmark's signature
 * over it, and checks the signatures of the challenges of one read together
 * on libuv's thread pool. So a challenge with a bad landmark signature, and
 * every other challenge that came with it, is answered; only then does the
 * agent send ERROR_BAD_LANDMARK, hang up, count and log it, and reconnect
 * with its backoff.
 *
 * test_valid_challenges: challenges to both chips, alone and several in one
 * write, are answered with valid chip signatures, and the connection stays.
 *
 * test_bad_landmark_signature: a corrupted challenge to chip a and a valid
 * one to chip b in one write are both answered, then the Error arrives and
 * the agent closes; it reconnects, registers again and answers again; its
 * log names the bad challenge and its exit stats count it.
 *
 * test_bad_landmark_in_long_batch: 20 challenges in one write, more than
 * the agent checks in one job, the bad one among the last: all 20 are
 * answered before the Error.
 */
#define _GNU_SOURCE
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_msg.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AGENT_NAME "agent-under-test"
#define WAIT_MS 10000  /* for anything the agent must do: generous, never asserted as a time */
#define QUIET_MS 500   /* a wait in which nothing may arrive */

/* ---- the test's landmark and the agent ------------------------------------- */

typedef struct {
  char *dir, *log;
  cl_key *lk;             /* the landmark's key, made here */
  cl_key *chip[2];        /* chips a and b, loaded from their key files */
  int lfd;                /* the landmark's listening socket */
  pid_t agent;            /* killed by testutil should an assertion fail */
  uint64_t seq;           /* last challenge seq sent */
  unsigned sessions;      /* connections accepted */
} world;

/* Keys, a listening socket, the config, and the agent started. */
static void world_start(world *W, const char *name) {
  memset(W, 0, sizeof *W);
  W->dir = tu_own(tu_tmpdir(name));
  W->log = tu_fmt("%s/chipagent.log", W->dir);
  char *clilog = tu_fmt("%s/chiploc.log", W->dir);
  char *keyfile[2] = {tu_keygen(W->dir, "chip-a", clilog), tu_keygen(W->dir, "chip-b", clilog)};
  for (int i = 0; i < 2; i++) W->chip[i] = tu_key_load(keyfile[i]);
  ck_assert_int_eq(cl_key_generate(&W->lk), CL_OK);
  char lhex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(W->lk), lhex);

  int port = 0;
  W->lfd = tu_listen_local(&port);
  tu_agent_opts ao = {.name = AGENT_NAME, .backoff_min_ms = 50, .backoff_max_ms = 500,
                      .landmarks = {{"rogue", port, lhex}},
                      .chips = {{"a", keyfile[0]}, {"b", keyfile[1]}}};
  W->agent = tu_chipagent_start(tu_agent_conf(W->dir, &ao), W->log, "debug");
}

/* Accepts the agent's next connection and registers both chips on it: the
 * Register must carry the agent's name and a valid proof over this session's
 * nonce for each chip. */
static void world_session(world *W, tu_wire *w) {
  ck_assert_msg(tu_wire_accept(w, W->lfd, WAIT_MS) == 0, "chipagent did not connect (session %u)",
                W->sessions + 1);
  W->sessions++;

  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_HELLO;
  memcpy(m.u.hello.landmark, cl_key_public(W->lk), CL_PK_LEN);
  randombytes_buf(m.u.hello.session_nonce, CL_NONCE_LEN);
  uint8_t session[CL_NONCE_LEN];
  memcpy(session, m.u.hello.session_nonce, CL_NONCE_LEN);
  tu_wire_send(w, &m);

  ck_assert_int_eq(tu_wire_recv(w, &m, WAIT_MS), 0);
  ck_assert_int_eq(m.type, CL_MSG_REGISTER);
  ck_assert_str_eq(m.u.reg.agent, AGENT_NAME);
  ck_assert_int_eq(m.u.reg.n, 2);
  int seen[2] = {0, 0};
  for (size_t i = 0; i < m.u.reg.n; i++) {
    const cl_chip_claim *cc = &m.u.reg.chips[i];
    int which = -1;
    for (int k = 0; k < 2; k++)
      if (memcmp(cc->chip, cl_key_public(W->chip[k]), CL_PK_LEN) == 0) which = k;
    ck_assert_msg(which >= 0, "Register names a chip that is not configured");
    seen[which]++;
    ck_assert_int_eq(cl_register_verify(cl_key_public(W->lk), session, cc->chip, cc->proof),
                     CL_OK);
  }
  ck_assert(seen[0] == 1 && seen[1] == 1);

  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER_RESULT;
  m.u.reg_result.n = 2;
  for (int k = 0; k < 2; k++) {
    memcpy(m.u.reg_result.r[k].chip, cl_key_public(W->chip[k]), CL_PK_LEN);
    m.u.reg_result.r[k].accepted = 1;
  }
  tu_wire_send(w, &m);
}

/* A challenge from the test's landmark to chip `which`, its landmark
 * signature corrupted (one bit flipped) when `corrupt` is set. */
static void world_challenge(world *W, int which, int corrupt, cl_challenge *ch) {
  memset(ch, 0, sizeof *ch);
  memcpy(ch->landmark, cl_key_public(W->lk), CL_PK_LEN);
  memcpy(ch->chip, cl_key_public(W->chip[which]), CL_PK_LEN);
  randombytes_buf(ch->nonce, CL_NONCE_LEN);
  ch->seq = ++W->seq;
  ch->issued_unix_ns = 1700000000000000000ull + ch->seq;
  cl_challenge_sign(ch, W->lk);
  if (corrupt) ch->sig[5] ^= 0x40;
  ck_assert_int_eq(cl_challenge_verify(ch), corrupt ? CL_EBADSIG : CL_OK);
}

/* Sends the n challenges in one write. */
static void send_challenges(tu_wire *w, const cl_challenge *ch, size_t n) {
  cl_msg *m = calloc(n, sizeof *m);
  ck_assert(m != NULL);
  for (size_t i = 0; i < n; i++) {
    m[i].type = CL_MSG_CHALLENGE;
    m[i].u.challenge = ch[i];
  }
  tu_wire_send_all(w, m, n);
  free(m);
}

/* The next message must be the Response to ch: its chip, its nonce, and a
 * chip signature that verifies over it. */
static void expect_response(tu_wire *w, const cl_challenge *ch) {
  cl_msg m;
  int rc = tu_wire_recv(w, &m, WAIT_MS);
  ck_assert_msg(rc == 0, "no answer to challenge seq=%llu (%s)", (unsigned long long)ch->seq,
                rc == TU_WIRE_EOF ? "connection closed" : "timeout");
  ck_assert_msg(m.type == CL_MSG_RESPONSE, "seq=%llu answered with %s", (unsigned long long)ch->seq,
                cl_msg_type_name(m.type));
  ck_assert_int_eq(memcmp(m.u.response.chip, ch->chip, CL_PK_LEN), 0);
  ck_assert_int_eq(memcmp(m.u.response.nonce, ch->nonce, CL_NONCE_LEN), 0);
  ck_assert_msg(cl_response_verify(ch, m.u.response.sig) == CL_OK,
                "bad chip signature on the answer to seq=%llu", (unsigned long long)ch->seq);
}

/* After the answers: ERROR_BAD_LANDMARK, then the agent closes. */
static void expect_bad_landmark_close(tu_wire *w) {
  cl_msg m;
  ck_assert_int_eq(tu_wire_recv(w, &m, WAIT_MS), 0);
  ck_assert_msg(m.type == CL_MSG_ERROR, "got %s, not Error", cl_msg_type_name(m.type));
  ck_assert_int_eq(m.u.error.code, CL_ERR_BAD_LANDMARK);
  ck_assert_int_eq(tu_wire_recv(w, &m, WAIT_MS), TU_WIRE_EOF);
}

/* SIGTERM: the agent must exit with status 0. */
static void world_stop(world *W) {
  ck_assert_int_eq(tu_stop(W->agent, SIGTERM, WAIT_MS), 0);
  W->agent = 0;
  close(W->lfd);
  cl_key_destroy(&W->lk);
  cl_key_destroy(&W->chip[0]);
  cl_key_destroy(&W->chip[1]);
}

/* Copy of the first line of the file that contains both needles (the
 * second may be NULL), owned by the test; NULL if there is none. */
static char *find_line(const char *path, const char *needle, const char *and_needle) {
  char *s = tu_read_file(path);
  if (!s) return NULL;
  char *found = NULL;
  for (char *line = s; line && *line && !found;) {
    char *eol = strchr(line, '\n');
    if (eol) *eol = '\0';
    if (strstr(line, needle) && (!and_needle || strstr(line, and_needle))) found = strdup(line);
    line = eol ? eol + 1 : NULL;
  }
  free(s);
  return found ? tu_own(found) : NULL;
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), t = strlen(tail);
  return n >= t && strcmp(s + n - t, tail) == 0;
}

/* The stats line the agent logs when it exits. */
static char *exit_stats(const world *W) {
  char *line = find_line(W->log, "msg=stats", " when=exit");
  ck_assert_msg(line != NULL, "no exit stats line in %s", W->log);
  return line;
}

/* ---- the tests ------------------------------------------------------------- */

START_TEST(test_valid_challenges) {
  world W;
  tu_wire w;
  world_start(&W, "chiploc-agent-valid");
  world_session(&W, &w);
  cl_challenge ch[4];
  /* One at a time, to each chip. */
  for (int i = 0; i < 2; i++) {
    world_challenge(&W, i, 0, &ch[0]);
    send_challenges(&w, ch, 1);
    expect_response(&w, &ch[0]);
  }
  /* Several in one write, both chips mixed: answered in order. */
  for (int i = 0; i < 4; i++) world_challenge(&W, i % 2, 0, &ch[i]);
  send_challenges(&w, ch, 4);
  for (int i = 0; i < 4; i++) expect_response(&w, &ch[i]);
  /* Nothing else comes, the connection stays open. */
  cl_msg m;
  ck_assert_int_eq(tu_wire_recv(&w, &m, QUIET_MS), TU_WIRE_TIMEOUT);
  ck_assert_int_eq(W.sessions, 1);
  tu_wire_close(&w);
  world_stop(&W);

  ck_assert_int_eq(tu_count_in_file(W.log, "bad landmark signature"), 0);
  char *st = exit_stats(&W);
  ck_assert_int_eq(tu_line_value(st, "challenges"), 6);
  ck_assert_int_eq(tu_line_value(st, "answered"), 6);
  ck_assert_int_eq(tu_line_value(st, "bad_landmark_sig"), 0);
  ck_assert_int_eq(tu_line_value(st, "unknown_chip"), 0);
  ck_assert_int_eq(tu_line_value(st, "wrong_landmark"), 0);
  tu_release();
}
END_TEST

START_TEST(test_bad_landmark_signature) {
  world W;
  tu_wire w;
  world_start(&W, "chiploc-agent-badsig");
  world_session(&W, &w);
  cl_challenge ch[2];
  /* A normal exchange first. */
  world_challenge(&W, 0, 0, &ch[0]);
  send_challenges(&w, ch, 1);
  expect_response(&w, &ch[0]);

  /* In one write: chip a's challenge with a bad landmark signature, then a
   * valid one to chip b. Both are answered before the check drops us. */
  world_challenge(&W, 0, 1, &ch[0]);
  world_challenge(&W, 1, 0, &ch[1]);
  uint64_t bad_seq = ch[0].seq;
  send_challenges(&w, ch, 2);
  expect_response(&w, &ch[0]);
  expect_response(&w, &ch[1]);
  expect_bad_landmark_close(&w);
  tu_wire_close(&w);

  /* The agent reconnects on its own, registers again and answers again. */
  world_session(&W, &w);
  world_challenge(&W, 0, 0, &ch[0]);
  world_challenge(&W, 1, 0, &ch[1]);
  send_challenges(&w, ch, 2);
  expect_response(&w, &ch[0]);
  expect_response(&w, &ch[1]);
  cl_msg m;
  ck_assert_int_eq(tu_wire_recv(&w, &m, QUIET_MS), TU_WIRE_TIMEOUT);
  tu_wire_close(&w);

  /* The log names the challenge that failed, once. */
  ck_assert_int_eq(tu_wait_log(W.log, "msg=\"bad landmark signature\"", 1, WAIT_MS), 0);
  ck_assert_int_eq(tu_count_in_file(W.log, "msg=\"bad landmark signature\""), 1);
  char *bad = find_line(W.log, "msg=\"bad landmark signature\"", NULL);
  ck_assert(bad != NULL);
  ck_assert_ptr_nonnull(strstr(bad, " level=error "));
  ck_assert_ptr_nonnull(strstr(bad, " landmark=rogue "));
  ck_assert_msg(ends_with(bad, tu_fmt(" seq=%llu", (unsigned long long)bad_seq)), "%s", bad);
  /* And the hang-up that followed it. */
  ck_assert_ptr_nonnull(find_line(W.log, "msg=disconnected", "reason=\"bad landmark signature\""));
  world_stop(&W);

  char *st = exit_stats(&W);
  ck_assert_int_eq(tu_line_value(st, "bad_landmark_sig"), 1);
  ck_assert_int_eq(tu_line_value(st, "challenges"), 5);
  ck_assert_int_eq(tu_line_value(st, "answered"), 5);
  ck_assert_int_ge(tu_line_value(st, "reconnects"), 1);
  tu_release();
}
END_TEST

START_TEST(test_bad_landmark_in_long_batch) {
  enum { N = 20, BAD = 17 };
  world W;
  tu_wire w;
  world_start(&W, "chiploc-agent-batch");
  world_session(&W, &w);
  cl_challenge ch[N];
  for (int i = 0; i < N; i++) world_challenge(&W, i % 2, i == BAD, &ch[i]);
  send_challenges(&w, ch, N);
  for (int i = 0; i < N; i++) expect_response(&w, &ch[i]);
  expect_bad_landmark_close(&w);
  tu_wire_close(&w);
  world_session(&W, &w); /* reconnected */
  tu_wire_close(&w);
  ck_assert_int_eq(tu_wait_log(W.log, "msg=\"bad landmark signature\"", 1, WAIT_MS), 0);
  char *bad = find_line(W.log, "msg=\"bad landmark signature\"", NULL);
  ck_assert(bad != NULL);
  ck_assert_msg(ends_with(bad, tu_fmt(" seq=%llu", (unsigned long long)ch[BAD].seq)), "%s", bad);
  world_stop(&W);
  char *st = exit_stats(&W);
  ck_assert_int_eq(tu_line_value(st, "bad_landmark_sig"), 1);
  ck_assert_int_eq(tu_line_value(st, "answered"), N);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("agent");
  TCase *tc = tcase_create("rogue landmark");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_valid_challenges);
  tcase_add_test(tc, test_bad_landmark_signature);
  tcase_add_test(tc, test_bad_landmark_in_long_batch);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
