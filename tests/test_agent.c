/*
 * The real chipagent against a landmark written in the test (protocol 2).
 *
 * The test listens on loopback and plays the landmark with the tu_wire
 * helpers: Hello, then for each offer of the agent's Register its own half
 * of the handshake (an X25519 key, a nonce, its signature) in the
 * RegisterResult, the chips' handshake signatures of the Confirm checked;
 * then Challenges whose MACs it checks under the session key it derives
 * itself from its side of the handshake (cl_session_key), BurstEnds whose
 * Transcripts it verifies (cl_transcript_verify), Rekeys and Errors.
 * chipagent runs as a separate process with two chips, each key made by
 * `chiploc keygen`.
 *
 * test_answers: both chips are answered with MACs valid under their own
 * session key, one at a time and several in one write; a challenge for a
 * chip the agent does not hold is not answered; the connection stays.
 *
 * test_transcript: the agent signs the transcript of the probes a BurstEnd
 * names (a subset of those it answered); a BurstEnd naming a seq this chip
 * never answered (another chip's, or none at all) gets nothing, a warning
 * in the log, and the session goes on.
 *
 * test_bad_landmark_signature: a RegisterResult whose handshake signature
 * for one chip is another landmark's gets Error(BAD_LANDMARK) and a close,
 * and no Confirm; the agent reconnects and completes the next handshake.
 *
 * test_wrong_pinned_key, test_unknown_suite: a Hello with another key than
 * the pinned one, or a cipher suite the agent does not implement, gets
 * Error(BAD_LANDMARK) or Error(SUITE) and a close, never a Register.
 *
 * test_rekey: on Rekey the agent sends a fresh offer for that chip alone,
 * answers that chip nothing until the new handshake is done (the other chip
 * goes on), then answers under the new key: the old key's MACs no longer
 * verify.
 *
 * test_landmark_errors: Errors about one message or chip leave the session
 * up; ERROR_LIMIT makes the agent hang up and reconnect.
 *
 * test_chip_taken_over: on ERROR_CHIP_TAKEN_OVER naming chip a (another connection
 * took it), the agent logs the error naming the chip, ends chip a's
 * session (its challenges go unanswered) and keeps the connection for
 * chip b; once that connection is gone, its next Register offers chip b
 * alone: chip a is held for an hour.
 *
 * test_slow_signer: with every identity-key signature slowed down to 2 s
 * (CHIPLOC_TEST_SIGN_DELAY_MS), a challenge that arrives while a transcript
 * is being signed is answered at once, long before the transcript comes.
 *
 * The real landmarkd (with PostgreSQL) measuring the agent's two chips:
 *
 * test_metrics_real_landmark: the agent's metrics endpoint counts exactly
 * the answers, transcripts and handshakes the landmark's own endpoint
 * counts, and observes one latency per answer; /healthz and /readyz say ok;
 * SIGHUP logs (and names a changed key) and the agent keeps answering; a
 * landmark restart makes it not ready, counts a reconnect, and it answers
 * again; a second agent taking a chip shows as an Error counted by code.
 *
 * test_check_config: `chipagent --check-config` prints one ok/FAIL line per
 * check: an unreachable landmark and one presenting another key fail with
 * exit 1, a key file others may read and two chips with one key with exit
 * 2, a config that does not load with exit 2; a metrics address held by
 * the running agent of the same name is ok.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AGENT_NAME "agent-under-test"
#define SUITE CL_SUITE_ED25519_X25519
#define WAIT_MS 10000 /* for anything the agent must do: generous, never asserted as a time */
#define QUIET_MS 500  /* a wait in which nothing may arrive */
#define SLOW_SIGN_MS 2000

/* ---- the test's landmark and the agent ------------------------------------- */

/* The test's side of one chip's session. */
typedef struct {
  cl_handshake hs;                 /* as both sides signed it */
  uint8_t key[CL_SESSION_KEY_LEN]; /* derived here, from the landmark's side */
} lm_session;

typedef struct {
  char *dir, *log;
  cl_key *lk;        /* the landmark's key, made here and pinned in the agent's config */
  cl_key *chip[2];   /* chips a and b, loaded from their key files */
  char *hex[2];      /* the chips' keys as log lines give them (chip_key=): 16 hex digits */
  int lfd;           /* the landmark's listening socket */
  pid_t agent;       /* killed by testutil should an assertion fail */
  uint64_t seq;      /* last challenge seq sent */
  unsigned sessions; /* connections accepted */
  lm_session s[2];   /* per chip, the latest handshake */
} world;

/* Keys, a listening socket, the config, and the agent started, its
 * signatures slowed by sign_delay_ms. */
static void world_start_slow(world *W, const char *name, unsigned sign_delay_ms) {
  memset(W, 0, sizeof *W);
  W->dir = tu_own(tu_tmpdir(name));
  W->log = tu_fmt("%s/chipagent.log", W->dir);
  char *clilog = tu_fmt("%s/chiploc.log", W->dir);
  char *keyfile[2] = {tu_keygen(W->dir, "chip-a", clilog), tu_keygen(W->dir, "chip-b", clilog)};
  for (int i = 0; i < 2; i++) {
    W->chip[i] = tu_key_load(keyfile[i]);
    char hex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(cl_key_public(W->chip[i]), hex);
    W->hex[i] = tu_fmt("%.16s", hex);
  }
  ck_assert_int_eq(cl_key_generate(&W->lk), CL_OK);
  char lhex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(W->lk), lhex);

  int port = 0;
  W->lfd = tu_listen_local(&port);
  tu_agent_opts ao = {.name = AGENT_NAME, .backoff_min_ms = 50, .backoff_max_ms = 500,
                      .landmarks = {{"rogue", port, lhex}},
                      .chips = {{"a", keyfile[0]}, {"b", keyfile[1]}}};
  if (sign_delay_ms) setenv("CHIPLOC_TEST_SIGN_DELAY_MS", tu_fmt("%u", sign_delay_ms), 1);
  W->agent = tu_chipagent_start(tu_agent_conf(W->dir, &ao), W->log, "debug");
  unsetenv("CHIPLOC_TEST_SIGN_DELAY_MS");
}

static void world_start(world *W, const char *name) { world_start_slow(W, name, 0); }

static int chip_of(const world *W, const uint8_t id[CL_PK_LEN]) {
  for (int k = 0; k < 2; k++)
    if (memcmp(id, cl_key_public(W->chip[k]), CL_PK_LEN) == 0) return k;
  return -1;
}

static void world_accept(world *W, tu_wire *w) {
  ck_assert_msg(tu_wire_accept(w, W->lfd, WAIT_MS) == 0, "chipagent did not connect (session %u)",
                W->sessions + 1);
  W->sessions++;
}

static void send_hello(tu_wire *w, const uint8_t landmark[CL_PK_LEN], uint32_t suite) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_HELLO;
  memcpy(m.u.hello.landmark, landmark, CL_PK_LEN);
  m.u.hello.suite = suite;
  tu_wire_send(w, &m);
}

/* The next message must be a Register from the agent offering exactly the
 * chips of `want` (a bit per chip), each once, in suite 1. */
static void expect_register(world *W, tu_wire *w, unsigned want, cl_msg *m) {
  int rc = tu_wire_recv(w, m, WAIT_MS);
  ck_assert_msg(rc == 0, "no Register (%s)", rc == TU_WIRE_EOF ? "closed" : "timeout");
  ck_assert_msg(m->type == CL_MSG_REGISTER, "%s instead of Register", cl_msg_type_name(m->type));
  ck_assert_str_eq(m->u.reg.agent, AGENT_NAME);
  ck_assert_uint_eq(m->u.reg.suite, SUITE);
  unsigned seen = 0;
  for (size_t i = 0; i < m->u.reg.n; i++) {
    int k = chip_of(W, m->u.reg.chips[i].chip);
    ck_assert_msg(k >= 0, "Register names a chip that is not configured");
    ck_assert_msg(!(seen & (1u << k)), "chip %d offered twice", k);
    seen |= 1u << k;
  }
  ck_assert_uint_eq(seen, want);
}

/*
 * The landmark's half of the handshake for every offer of reg: accepted,
 * signed with the landmark key; for chip `forge` (-1: none) the signature is
 * made with another landmark's key instead, as a relay would have to. The
 * test keeps each session key, derived from its own ephemeral secret.
 */
static void send_result(world *W, tu_wire *w, const cl_msg *reg, int forge) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER_RESULT;
  m.u.reg_result.n = reg->u.reg.n;
  for (size_t i = 0; i < reg->u.reg.n; i++) {
    const cl_chip_offer *o = &reg->u.reg.chips[i];
    int k = chip_of(W, o->chip);
    lm_session *s = &W->s[k];
    memset(s, 0, sizeof *s);
    s->hs.suite = SUITE;
    memcpy(s->hs.landmark, cl_key_public(W->lk), CL_PK_LEN);
    memcpy(s->hs.chip, o->chip, CL_PK_LEN);
    memcpy(s->hs.chip_eph, o->eph, CL_EPH_LEN);
    memcpy(s->hs.chip_nonce, o->nonce, CL_NONCE_LEN);
    uint8_t eph_sk[CL_EPH_SK_LEN];
    cl_eph_generate(s->hs.landmark_eph, eph_sk);
    randombytes_buf(s->hs.landmark_nonce, CL_NONCE_LEN);
    ck_assert_int_eq(cl_hs_sign_landmark(&s->hs, W->lk), CL_OK);
    if (k == forge) {
      cl_key *other = NULL;
      ck_assert_int_eq(cl_key_generate(&other), CL_OK);
      uint8_t buf[CL_HS_LANDMARK_LAYOUT_LEN];
      cl_key_sign(other, s->hs.landmark_sig, buf, cl_layout_hs_landmark(buf, &s->hs));
      cl_key_destroy(&other);
      ck_assert_int_eq(cl_hs_verify_landmark(&s->hs), CL_EBADSIG);
    }
    ck_assert_int_eq(cl_session_key(&s->hs, CL_SIDE_LANDMARK, eph_sk, s->key), CL_OK);
    sodium_memzero(eph_sk, sizeof eph_sk);
    cl_chip_result *r = &m.u.reg_result.r[i];
    memcpy(r->chip, o->chip, CL_PK_LEN);
    r->accepted = 1;
    memcpy(r->eph, s->hs.landmark_eph, CL_EPH_LEN);
    memcpy(r->nonce, s->hs.landmark_nonce, CL_NONCE_LEN);
    memcpy(r->sig, s->hs.landmark_sig, CL_SIG_LEN);
  }
  tu_wire_send(w, &m);
}

/* The next message must be a Confirm for exactly the chips of `want`, each
 * chip's signature valid over its handshake. */
static void expect_confirm(world *W, tu_wire *w, unsigned want) {
  cl_msg m;
  int rc = tu_wire_recv(w, &m, WAIT_MS);
  ck_assert_msg(rc == 0, "no Confirm (%s)", rc == TU_WIRE_EOF ? "closed" : "timeout");
  ck_assert_msg(m.type == CL_MSG_CONFIRM, "%s instead of Confirm", cl_msg_type_name(m.type));
  unsigned seen = 0;
  for (size_t i = 0; i < m.u.confirm.n; i++) {
    int k = chip_of(W, m.u.confirm.chips[i].chip);
    ck_assert(k >= 0 && !(seen & (1u << k)));
    seen |= 1u << k;
    memcpy(W->s[k].hs.chip_sig, m.u.confirm.chips[i].sig, CL_SIG_LEN);
    ck_assert_msg(cl_hs_verify_chip(&W->s[k].hs) == CL_OK,
                  "chip %d's handshake signature does not verify", k);
  }
  ck_assert_uint_eq(seen, want);
}

/* Accepts the agent's next connection and completes the handshake of both
 * chips on it. */
static void world_session(world *W, tu_wire *w) {
  cl_msg reg;
  world_accept(W, w);
  send_hello(w, cl_key_public(W->lk), SUITE);
  expect_register(W, w, 3, &reg);
  send_result(W, w, &reg, -1);
  expect_confirm(W, w, 3);
}

/* A fresh challenge to chip k. */
static cl_msg challenge(world *W, int k) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CHALLENGE;
  memcpy(m.u.challenge.chip, cl_key_public(W->chip[k]), CL_PK_LEN);
  m.u.challenge.seq = ++W->seq;
  randombytes_buf(m.u.challenge.nonce, CL_NONCE_LEN);
  return m;
}

static int mac_valid(const uint8_t key[CL_SESSION_KEY_LEN], const world *W, const cl_msg *ch,
                     const uint8_t mac[CL_MAC_LEN]) {
  return cl_answer_check(key, SUITE, cl_key_public(W->lk), ch->u.challenge.chip,
                         ch->u.challenge.seq, ch->u.challenge.nonce, mac) == CL_OK;
}

/* The next message must be the Response to ch: its chip, its seq, and a MAC
 * valid under the chip's current session key. e (may be NULL) receives the
 * probe as a transcript entry. */
static void expect_response(world *W, tu_wire *w, const cl_msg *ch, cl_probe_entry *e) {
  cl_msg m;
  unsigned long long seq = (unsigned long long)ch->u.challenge.seq;
  int rc = tu_wire_recv(w, &m, WAIT_MS);
  ck_assert_msg(rc == 0, "no answer to challenge seq=%llu (%s)", seq,
                rc == TU_WIRE_EOF ? "connection closed" : "timeout");
  ck_assert_msg(m.type == CL_MSG_RESPONSE, "seq=%llu answered with %s", seq,
                cl_msg_type_name(m.type));
  ck_assert_int_eq(memcmp(m.u.response.chip, ch->u.challenge.chip, CL_PK_LEN), 0);
  ck_assert_uint_eq(m.u.response.seq, ch->u.challenge.seq);
  int k = chip_of(W, ch->u.challenge.chip);
  ck_assert_msg(mac_valid(W->s[k].key, W, ch, m.u.response.mac),
                "bad MAC on the answer to seq=%llu", seq);
  if (e) {
    e->seq = ch->u.challenge.seq;
    memcpy(e->nonce, ch->u.challenge.nonce, CL_NONCE_LEN);
    memcpy(e->mac, m.u.response.mac, CL_MAC_LEN);
    e->rtt_ns = 0;
  }
}

/* Sends the challenge and checks its answer. */
static void probe(world *W, tu_wire *w, int k, cl_probe_entry *e) {
  cl_msg ch = challenge(W, k);
  tu_wire_send(w, &ch);
  expect_response(W, w, &ch, e);
}

static void send_burst_end(tu_wire *w, const world *W, int k, const uint64_t *seqs, size_t n) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_BURST_END;
  memcpy(m.u.burst_end.chip, cl_key_public(W->chip[k]), CL_PK_LEN);
  m.u.burst_end.n = n;
  memcpy(m.u.burst_end.seqs, seqs, n * sizeof *seqs);
  tu_wire_send(w, &m);
}

/* The next message must be chip k's Transcript of the entries e[0..n): its
 * first seq, and a chip signature that verifies over them in k's session. */
static void expect_transcript(world *W, tu_wire *w, int k, const cl_probe_entry *e, size_t n) {
  cl_msg m;
  int rc = tu_wire_recv(w, &m, WAIT_MS);
  ck_assert_msg(rc == 0, "no Transcript (%s)", rc == TU_WIRE_EOF ? "closed" : "timeout");
  ck_assert_msg(m.type == CL_MSG_TRANSCRIPT, "%s instead of Transcript", cl_msg_type_name(m.type));
  ck_assert_int_eq(memcmp(m.u.transcript.chip, cl_key_public(W->chip[k]), CL_PK_LEN), 0);
  ck_assert_uint_eq(m.u.transcript.first_seq, e[0].seq);
  ck_assert_msg(cl_transcript_verify(&W->s[k].hs, e, n, m.u.transcript.sig) == CL_OK,
                "the transcript signature does not verify");
}

static void send_error(tu_wire *w, cl_wire_error code, const char *text) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_ERROR;
  m.u.error.code = code;
  snprintf(m.u.error.text, sizeof m.u.error.text, "%s", text);
  tu_wire_send(w, &m);
}

/* The next message must be an Error with this code (and this exact text
 * unless NULL), then the agent closes. */
static void expect_error_close(tu_wire *w, cl_wire_error code, const char *text) {
  cl_msg m;
  ck_assert_int_eq(tu_wire_recv(w, &m, WAIT_MS), 0);
  ck_assert_msg(m.type == CL_MSG_ERROR, "got %s, not Error", cl_msg_type_name(m.type));
  ck_assert_msg(m.u.error.code == code, "Error %s, not %s", cl_wire_error_name(m.u.error.code),
                cl_wire_error_name(code));
  if (text) ck_assert_str_eq(m.u.error.text, text);
  ck_assert_int_eq(tu_wire_recv(w, &m, WAIT_MS), TU_WIRE_EOF);
}

/* Nothing arrives for QUIET_MS, and the connection stays open. */
static void expect_quiet(tu_wire *w) {
  cl_msg m;
  int rc = tu_wire_recv(w, &m, QUIET_MS);
  ck_assert_msg(rc == TU_WIRE_TIMEOUT, "%s", rc == 0 ? cl_msg_type_name(m.type) : "closed");
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

/* The stats line the agent logs when it exits. */
static char *exit_stats(const world *W) {
  char *line = find_line(W->log, "msg=stats", " when=exit");
  ck_assert_msg(line != NULL, "no exit stats line in %s", W->log);
  return line;
}

/* ---- the tests ------------------------------------------------------------- */

START_TEST(test_answers) {
  world W;
  tu_wire w;
  world_start(&W, "chiploc-agent-answers");
  world_session(&W, &w);
  /* Each chip under its own key: the other chip's key does not fit. */
  ck_assert_int_ne(memcmp(W.s[0].key, W.s[1].key, CL_SESSION_KEY_LEN), 0);
  probe(&W, &w, 0, NULL);
  probe(&W, &w, 1, NULL);
  /* Several in one write, both chips mixed: answered in order. */
  cl_msg ch[4];
  for (int i = 0; i < 4; i++) ch[i] = challenge(&W, i % 2);
  tu_wire_send_all(&w, ch, 4);
  for (int i = 0; i < 4; i++) expect_response(&W, &w, &ch[i], NULL);
  /* A chip the agent does not hold: no answer, and the session goes on. */
  cl_key *stranger = NULL;
  ck_assert_int_eq(cl_key_generate(&stranger), CL_OK);
  cl_msg sc = challenge(&W, 0);
  memcpy(sc.u.challenge.chip, cl_key_public(stranger), CL_PK_LEN);
  cl_key_destroy(&stranger);
  tu_wire_send(&w, &sc);
  expect_quiet(&w);
  probe(&W, &w, 0, NULL);
  ck_assert_int_eq(W.sessions, 1);
  tu_wire_close(&w);
  world_stop(&W);

  ck_assert_ptr_nonnull(find_line(W.log, "msg=\"challenge for unknown chip not answered\"",
                                  " landmark=rogue "));
  char *st = exit_stats(&W);
  ck_assert_int_eq(tu_line_value(st, "challenges"), 8);
  ck_assert_int_eq(tu_line_value(st, "answered"), 7);
  ck_assert_int_eq(tu_line_value(st, "unknown_chip"), 1);
  ck_assert_int_eq(tu_line_value(st, "no_session"), 0);
  ck_assert_int_eq(tu_line_value(st, "bad_landmark_sig"), 0);
  tu_release();
}
END_TEST

START_TEST(test_transcript) {
  world W;
  tu_wire w;
  world_start(&W, "chiploc-agent-transcript");
  world_session(&W, &w);
  cl_probe_entry a[3], b;
  for (int i = 0; i < 3; i++) probe(&W, &w, 0, &a[i]);
  probe(&W, &w, 1, &b);

  /* The landmark accepted the first and the third probe of chip a. */
  cl_probe_entry acc[2] = {a[0], a[2]};
  uint64_t seqs[2] = {a[0].seq, a[2].seq};
  send_burst_end(&w, &W, 0, seqs, 2);
  expect_transcript(&W, &w, 0, acc, 2);

  /* Chip b's probe named as chip a's, then a seq nobody answered: the chip
   * signs only what it answered, so nothing comes. */
  uint64_t foreign[2] = {a[1].seq, b.seq};
  send_burst_end(&w, &W, 0, foreign, 2);
  expect_quiet(&w);
  uint64_t never[1] = {W.seq + 100};
  send_burst_end(&w, &W, 1, never, 1);
  expect_quiet(&w);

  /* The session goes on: answers, and a transcript of chip b. */
  probe(&W, &w, 1, &b);
  send_burst_end(&w, &W, 1, &b.seq, 1);
  expect_transcript(&W, &w, 1, &b, 1);
  ck_assert_int_eq(W.sessions, 1);
  tu_wire_close(&w);
  world_stop(&W);

  char *warn = find_line(W.log,
                         "msg=\"burst end names a probe the chip did not answer; not signed\"",
                         tu_fmt(" chip=a chip_key=%s ", W.hex[0]));
  ck_assert_msg(warn != NULL, "no warning about the refused burst end of chip a");
  ck_assert_ptr_nonnull(strstr(warn, " level=warn "));
  ck_assert_ptr_nonnull(strstr(warn, " landmark=rogue "));
  ck_assert_ptr_nonnull(strstr(warn, tu_fmt(" first_seq=%llu ", (unsigned long long)a[1].seq)));
  char *st = exit_stats(&W);
  ck_assert_int_eq(tu_line_value(st, "transcripts"), 2);
  ck_assert_int_eq(tu_line_value(st, "transcripts_refused"), 2);
  tu_release();
}
END_TEST

START_TEST(test_bad_landmark_signature) {
  world W;
  tu_wire w;
  world_start(&W, "chiploc-agent-badsig");
  world_accept(&W, &w);
  send_hello(&w, cl_key_public(W.lk), SUITE);
  cl_msg reg;
  expect_register(&W, &w, 3, &reg);
  /* Chip b's half is signed by another landmark: no Confirm for either
   * chip, the Error names chip b, and the agent hangs up. */
  send_result(&W, &w, &reg, 1);
  expect_error_close(&w, CL_ERR_BAD_LANDMARK,
                     tu_fmt("chip %s: the landmark's handshake signature does not verify under "
                            "the pinned key",
                            W.hex[1]));
  tu_wire_close(&w);

  /* The agent reconnects on its own and completes an honest handshake. */
  world_session(&W, &w);
  probe(&W, &w, 0, NULL);
  probe(&W, &w, 1, NULL);
  tu_wire_close(&w);
  world_stop(&W);

  char *bad = find_line(W.log, "msg=\"bad landmark signature\"", NULL);
  ck_assert(bad != NULL);
  ck_assert_ptr_nonnull(strstr(bad, " level=error "));
  ck_assert_ptr_nonnull(strstr(bad, " landmark=rogue "));
  ck_assert_ptr_nonnull(strstr(bad, tu_fmt(" chip=b chip_key=%s", W.hex[1])));
  ck_assert_ptr_nonnull(find_line(W.log, "msg=disconnected", "reason=\"bad landmark signature\""));
  char *st = exit_stats(&W);
  ck_assert_int_eq(tu_line_value(st, "bad_landmark_sig"), 1);
  ck_assert_int_eq(tu_line_value(st, "answered"), 2);
  ck_assert_int_ge(tu_line_value(st, "reconnects"), 1);
  tu_release();
}
END_TEST

START_TEST(test_wrong_pinned_key) {
  world W;
  tu_wire w;
  world_start(&W, "chiploc-agent-pinned");
  world_accept(&W, &w);
  cl_key *other = NULL;
  ck_assert_int_eq(cl_key_generate(&other), CL_OK);
  send_hello(&w, cl_key_public(other), SUITE);
  cl_key_destroy(&other);
  expect_error_close(&w, CL_ERR_BAD_LANDMARK, "landmark id is not the pinned key");
  tu_wire_close(&w);
  /* The next connection, with the pinned key, registers. */
  world_session(&W, &w);
  tu_wire_close(&w);
  world_stop(&W);
  ck_assert_ptr_nonnull(find_line(W.log, "msg=\"landmark key mismatch\"", " landmark=rogue "));
  char *st = exit_stats(&W);
  ck_assert_int_eq(tu_line_value(st, "wrong_landmark"), 1);
  tu_release();
}
END_TEST

START_TEST(test_unknown_suite) {
  world W;
  tu_wire w;
  world_start(&W, "chiploc-agent-suite");
  world_accept(&W, &w);
  send_hello(&w, cl_key_public(W.lk), 7);
  expect_error_close(&w, CL_ERR_SUITE,
                     "cipher suite 7 is unknown; this agent speaks 1 (ed25519-x25519-blake2b)");
  tu_wire_close(&w);
  /* The reserved P-256 suite is not implemented either. */
  world_accept(&W, &w);
  send_hello(&w, cl_key_public(W.lk), CL_SUITE_P256_RESERVED);
  expect_error_close(&w, CL_ERR_SUITE,
                     "cipher suite 2 is unknown; this agent speaks 1 (ed25519-x25519-blake2b)");
  tu_wire_close(&w);
  world_stop(&W);
  char *line = find_line(W.log, "msg=\"unknown cipher suite\"", " suite=7 ");
  ck_assert_msg(line != NULL, "no log line for suite 7");
  ck_assert_ptr_nonnull(strstr(line, " landmark=rogue "));
  tu_release();
}
END_TEST

START_TEST(test_rekey) {
  world W;
  tu_wire w;
  world_start(&W, "chiploc-agent-rekey");
  world_session(&W, &w);
  probe(&W, &w, 0, NULL);
  lm_session old = W.s[0];

  cl_msg rk;
  memset(&rk, 0, sizeof rk);
  rk.type = CL_MSG_REKEY;
  memcpy(rk.u.rekey.chip, cl_key_public(W.chip[0]), CL_PK_LEN);
  tu_wire_send(&w, &rk);
  cl_msg reg;
  expect_register(&W, &w, 1, &reg); /* chip a alone */
  ck_assert_int_ne(memcmp(reg.u.reg.chips[0].eph, old.hs.chip_eph, CL_EPH_LEN), 0);
  ck_assert_int_ne(memcmp(reg.u.reg.chips[0].nonce, old.hs.chip_nonce, CL_NONCE_LEN), 0);

  /* Between the offer and the result chip a answers nothing; b goes on. */
  cl_msg ch[2] = {challenge(&W, 0), challenge(&W, 1)};
  tu_wire_send_all(&w, ch, 2);
  expect_response(&W, &w, &ch[1], NULL);
  expect_quiet(&w);

  send_result(&W, &w, &reg, -1);
  expect_confirm(&W, &w, 1);
  ck_assert_int_ne(memcmp(W.s[0].key, old.key, CL_SESSION_KEY_LEN), 0);
  /* Answered under the new key (expect_response checks it), not the old. */
  cl_msg c = challenge(&W, 0);
  tu_wire_send(&w, &c);
  cl_msg r;
  ck_assert_int_eq(tu_wire_recv(&w, &r, WAIT_MS), 0);
  ck_assert_int_eq(r.type, CL_MSG_RESPONSE);
  ck_assert(mac_valid(W.s[0].key, &W, &c, r.u.response.mac));
  ck_assert(!mac_valid(old.key, &W, &c, r.u.response.mac));
  /* Transcripts are signed in the new session. */
  cl_probe_entry e;
  probe(&W, &w, 0, &e);
  send_burst_end(&w, &W, 0, &e.seq, 1);
  expect_transcript(&W, &w, 0, &e, 1);
  ck_assert_int_eq(W.sessions, 1);
  tu_wire_close(&w);
  world_stop(&W);

  ck_assert_ptr_nonnull(find_line(W.log, "msg=\"rekey offer sent\"",
                                  tu_fmt(" chip=a chip_key=%s", W.hex[0])));
  ck_assert_ptr_nonnull(find_line(W.log, "msg=\"challenge for chip without session not answered\"",
                                  tu_fmt(" chip=a chip_key=%s ", W.hex[0])));
  char *st = exit_stats(&W);
  ck_assert_int_eq(tu_line_value(st, "rekeys"), 1);
  ck_assert_int_eq(tu_line_value(st, "no_session"), 1);
  ck_assert_int_eq(tu_line_value(st, "transcripts"), 1);
  tu_release();
}
END_TEST

START_TEST(test_landmark_errors) {
  world W;
  tu_wire w;
  world_start(&W, "chiploc-agent-errors");
  world_session(&W, &w);
  /* About one message or one chip: logged, the session goes on. */
  static const cl_wire_error minor[] = {CL_ERR_UNKNOWN_PROBE,  CL_ERR_REPLAY,
                                        CL_ERR_LATE,           CL_ERR_BAD_MAC,
                                        CL_ERR_NOT_REGISTERED, CL_ERR_BAD_HANDSHAKE,
                                        CL_ERR_BAD_TRANSCRIPT};
  for (size_t i = 0; i < sizeof minor / sizeof minor[0]; i++) {
    send_error(&w, minor[i], "chip 0011223344556677: about one message");
    probe(&W, &w, (int)(i % 2), NULL);
  }
  /* A limit: the landmark hangs up after it, so does the agent. */
  send_error(&w, CL_ERR_LIMIT, "too many chips");
  cl_msg m;
  ck_assert_int_eq(tu_wire_recv(&w, &m, WAIT_MS), TU_WIRE_EOF);
  tu_wire_close(&w);
  world_session(&W, &w); /* reconnected */
  probe(&W, &w, 0, NULL);
  tu_wire_close(&w);
  world_stop(&W);
  char *minor_line = find_line(W.log, "msg=\"landmark error\"", " code=bad_mac ");
  ck_assert(minor_line != NULL);
  ck_assert_ptr_nonnull(strstr(minor_line, " level=warn "));
  ck_assert_ptr_nonnull(strstr(minor_line, " chip=0011223344556677 chip_key=0011223344556677 "));
  char *limit_line = find_line(W.log, "msg=\"landmark error\"", " code=limit ");
  ck_assert(limit_line != NULL);
  ck_assert_ptr_nonnull(strstr(limit_line, " level=error "));
  ck_assert_ptr_nonnull(strstr(limit_line, " chip=- "));
  ck_assert_ptr_nonnull(
      find_line(W.log, "msg=disconnected", "reason=\"landmark sent error: limit\""));
  tu_release();
}
END_TEST

START_TEST(test_chip_taken_over) {
  world W;
  tu_wire w;
  world_start(&W, "chiploc-agent-moved");
  world_session(&W, &w);
  probe(&W, &w, 0, NULL);
  send_error(&w, CL_ERR_CHIP_TAKEN_OVER,
             tu_fmt("chip %s: now registered on another connection (agent other)", W.hex[0]));
  /* Chip b goes on; chip a has no session left: not answered. */
  probe(&W, &w, 1, NULL);
  cl_msg ch = challenge(&W, 0);
  tu_wire_send(&w, &ch);
  expect_quiet(&w);
  probe(&W, &w, 1, NULL);
  /* The landmark closes; the agent comes back offering chip b only. */
  tu_wire_close(&w);
  cl_msg reg;
  world_accept(&W, &w);
  send_hello(&w, cl_key_public(W.lk), SUITE);
  expect_register(&W, &w, 2, &reg);
  send_result(&W, &w, &reg, -1);
  expect_confirm(&W, &w, 2);
  probe(&W, &w, 1, NULL);
  tu_wire_close(&w);
  world_stop(&W);

  char *line = find_line(W.log, "msg=\"chip taken over by another connection\"", NULL);
  ck_assert_msg(line != NULL, "no log line for the chip taken over");
  ck_assert_ptr_nonnull(strstr(line, " level=error "));
  ck_assert_ptr_nonnull(strstr(line, tu_fmt(" chip=a chip_key=%s ", W.hex[0])));
  ck_assert_ptr_nonnull(strstr(line, " landmark=rogue "));
  ck_assert_ptr_nonnull(strstr(line, " hold_s=3600 "));
  char *st = exit_stats(&W);
  ck_assert_int_eq(tu_line_value(st, "no_session"), 1);
  tu_release();
}
END_TEST

START_TEST(test_slow_signer) {
  world W;
  tu_wire w;
  world_start_slow(&W, "chiploc-agent-slow", SLOW_SIGN_MS);
  world_session(&W, &w);
  cl_probe_entry e[2];
  probe(&W, &w, 0, &e[0]);
  probe(&W, &w, 0, &e[1]);
  uint64_t seqs[2] = {e[0].seq, e[1].seq};

  /* Chip a's transcript goes to be signed, which takes SLOW_SIGN_MS; a
   * moment later a challenge to chip b comes. */
  uint64_t t0 = tu_mono_ns();
  send_burst_end(&w, &W, 0, seqs, 2);
  tu_sleep_ms(300);
  cl_msg ch = challenge(&W, 1);
  uint64_t t1 = tu_mono_ns();
  tu_wire_send(&w, &ch);
  expect_response(&W, &w, &ch, NULL);
  uint64_t answer_ms = (tu_mono_ns() - t1) / 1000000u;
  expect_transcript(&W, &w, 0, e, 2);
  uint64_t transcript_ms = (tu_mono_ns() - t0) / 1000000u;
  /* The transcript really was slow, and the answer did not wait for it: had
   * the signature run on the event loop, the answer would have come after
   * SLOW_SIGN_MS - 300 ms. */
  ck_assert_msg(transcript_ms >= SLOW_SIGN_MS - 100, "transcript after %llu ms",
                (unsigned long long)transcript_ms);
  ck_assert_msg(answer_ms < (SLOW_SIGN_MS - 300) / 2, "answer after %llu ms while signing",
                (unsigned long long)answer_ms);
  tu_wire_close(&w);
  world_stop(&W);
  char *started = find_line(W.log, "msg=\"agent started\"", NULL);
  ck_assert(started != NULL);
  ck_assert_int_eq(tu_line_value(started, "sign_delay_ms"), SLOW_SIGN_MS);
  tu_release();
}
END_TEST

/* ---- the real landmarkd: metrics, health, SIGHUP, --check-config ----------- */

/* One real landmarkd (its database, its metrics endpoint) measuring the two
 * chips of one chipagent whose own metrics endpoint is on. */
typedef struct {
  char *dir, *db, *cli_log, *lm_log, *ag_log, *lm_conf, *ag_conf, *lhex;
  char *key[2];
  int lm_port, lm_mport, ag_mport;
} real;

static void real_make(real *R, const char *name) {
  memset(R, 0, sizeof *R);
  R->dir = tu_own(tu_tmpdir(name));
  R->cli_log = tu_fmt("%s/cli.log", R->dir);
  R->lm_log = tu_fmt("%s/landmarkd.log", R->dir);
  R->ag_log = tu_fmt("%s/chipagent.log", R->dir);
  char dbname[64];
  snprintf(dbname, sizeof dbname, "chiploc_%s", name);
  for (char *p = dbname; *p; p++)
    if (*p == '-') *p = '_';
  R->db = tu_own(tu_db_create(dbname));
  ck_assert_int_eq(tu_cli(R->cli_log, "db", "migrate", "--db", R->db, NULL), 0);
  char *lkey = tu_keygen(R->dir, "landmark", R->cli_log);
  R->lhex = tu_key_hex(lkey);
  ck_assert_int_eq(tu_cli(R->cli_log, "landmark", "add", "--db", R->db, "--name", "lm-paris",
                       "--pubkey", R->lhex, "--lat", "48.8566", "--lon", "2.3522", NULL),
                   0);
  for (int i = 0; i < 2; i++) {
    R->key[i] = tu_keygen(R->dir, tu_fmt("chip-%d", i), R->cli_log);
    ck_assert_int_eq(tu_cli(R->cli_log, "chip", "enroll", "--db", R->db, "--pubkey-file",
                         R->key[i], "--serial", tu_fmt("MET-%d", i), "--operator", "dc",
                         "--site", "48.85,2.35", NULL),
                     0);
  }
  R->lm_port = tu_free_port();
  R->lm_mport = tu_free_port();
  R->ag_mport = tu_free_port();
  tu_landmark_opts lo = tu_landmark_defaults();
  lo.key = lkey;
  lo.port = R->lm_port;
  lo.conninfo = R->db;
  lo.metrics_port = R->lm_mport;
  R->lm_conf = tu_landmark_conf(R->dir, &lo);
  tu_agent_opts ao = {.name = AGENT_NAME, .backoff_min_ms = 50, .backoff_max_ms = 500,
                      .landmarks = {{"paris", R->lm_port, R->lhex}},
                      .chips = {{"a", R->key[0]}, {"b", R->key[1]}}};
  R->ag_conf = tu_agent_conf(R->dir, &ao);
  FILE *f = fopen(R->ag_conf, "a");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "\n[metrics]\nlisten = 127.0.0.1:%d\n", R->ag_mport);
  fclose(f);
}

/* The /metrics text of port, owned; NULL without an answer. */
static char *scrape(int port) {
  int status = 0;
  char *t = tu_http_get(port, "/metrics", 5000, &status);
  if (t && status != 200) {
    free(t);
    return NULL;
  }
  return t ? tu_own(t) : NULL;
}

static double metric_of(int port, const char *series) {
  char *t = scrape(port);
  return t ? tu_metric(t, series) : -1;
}

/* Waits until series on port satisfies value >= min (or == min when exact);
 * returns the last value seen. */
static double wait_metric(int port, const char *series, double min, int exact) {
  double v = -1;
  for (int waited = 0; waited <= 30000; waited += 100) {
    v = metric_of(port, series);
    if (exact ? v == min : v >= min) break;
    tu_sleep_ms(100);
  }
  return v;
}

/* GET path: asserts the status and that the body begins with want. */
static void expect_http(int port, const char *path, int want_status, const char *want) {
  int status = 0;
  char *body = tu_http_get(port, path, 5000, &status);
  ck_assert_msg(body != NULL, "no answer to %s", path);
  ck_assert_msg(status == want_status && strncmp(body, want, strlen(want)) == 0,
                "%s: %d '%s', want %d '%s...'", path, status, body, want_status, want);
  free(body);
}

#define ANSWERED "chiploc_agent_challenges_answered_total{landmark=\"paris\"}"
#define CONNECTED "chiploc_agent_landmark_connected{landmark=\"paris\"}"
#define RECONNECTS "chiploc_agent_reconnects_total{landmark=\"paris\"}"

/* Responses the landmark received and judged: accepted or rejected. */
static double landmark_judged(const char *t) {
  static const char *reasons[] = {"unknown_probe", "replay", "late", "bad_mac",
                                  "not_registered"};
  double n = tu_metric(t, "chiploc_responses_accepted_total");
  for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
    n += tu_metric(t, tu_fmt("chiploc_responses_rejected_total{reason=\"%s\"}", reasons[i]));
  return n;
}

START_TEST(test_metrics_real_landmark) {
  real R;
  real_make(&R, "agent-metrics");
  pid_t lm = tu_landmarkd_start(R.lm_conf, R.lm_log);
  pid_t ag = tu_chipagent_start(R.ag_conf, R.ag_log, NULL);
  ck_assert_double_eq(wait_metric(R.ag_mport, CONNECTED, 1, 1), 1);
  expect_http(R.ag_mport, "/healthz", 200, "ok\n");
  expect_http(R.ag_mport, "/readyz", 200, "ok\n");
  ck_assert_double_eq(wait_metric(R.ag_mport, "chiploc_agent_sessions{landmark=\"paris\"}", 2, 1),
                      2);
  ck_assert_double_ge(wait_metric(R.ag_mport, ANSWERED, 12, 0), 12);

  /* Every answer the agent counts is one the landmark received, and each
   * has its latency observed: equal once no answer is in flight (between
   * bursts), so look until the two agree. */
  int agreed = 0;
  for (int i = 0; i < 300 && !agreed; i++) {
    char *a = scrape(R.ag_mport), *l = scrape(R.lm_mport);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(l);
    double answered = tu_metric(a, ANSWERED);
    /* One snapshot: the histogram counts exactly the answers. */
    ck_assert_double_eq(tu_metric(a, "chiploc_agent_answer_seconds_count"), answered);
    ck_assert_double_eq(tu_metric(a, "chiploc_agent_answer_seconds_bucket{le=\"+Inf\"}"),
                        answered);
    agreed = answered == landmark_judged(l) &&
             tu_metric(a, "chiploc_agent_transcripts_signed_total{landmark=\"paris\"}") ==
                 tu_metric(l, "chiploc_transcripts_total{result=\"ok\"}") &&
             tu_metric(a, "chiploc_agent_handshakes_total{landmark=\"paris\"}") ==
                 tu_metric(l, "chiploc_handshakes_total");
    if (!agreed) tu_sleep_ms(50);
  }
  ck_assert_msg(agreed, "the agent's answers, transcripts and handshakes never matched the "
                        "landmark's counters");
  double reconnects = metric_of(R.ag_mport, RECONNECTS);
  ck_assert_double_eq(reconnects, 0);

  /* SIGHUP: logged, the agent keeps running and answering. */
  double before = metric_of(R.ag_mport, ANSWERED);
  ck_assert_int_eq(kill(ag, SIGHUP), 0);
  ck_assert_int_eq(
      tu_wait_log(R.ag_log, "msg=\"SIGHUP: nothing to reload; the config file is unchanged\"", 1,
                  WAIT_MS),
      0);
  ck_assert_double_gt(wait_metric(R.ag_mport, ANSWERED, before + 6, 0), before);
  ck_assert_int_eq(kill(ag, 0), 0);
  /* A changed file: still running, the changed keys named. */
  FILE *f = fopen(R.ag_conf, "a");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "[landmark.extra]\naddress = 127.0.0.1:%d\npublic_key = %s\n", tu_free_port(),
          R.lhex);
  fclose(f);
  ck_assert_int_eq(kill(ag, SIGHUP), 0);
  ck_assert_int_eq(
      tu_wait_log(R.ag_log, "msg=\"SIGHUP: nothing reloaded; changed settings need a restart\"",
                  1, WAIT_MS),
      0);
  ck_assert_int_eq(tu_count_in_file(R.ag_log, "landmark.extra"), 1);
  before = metric_of(R.ag_mport, ANSWERED);
  ck_assert_double_gt(wait_metric(R.ag_mport, ANSWERED, before + 6, 0), before);

  /* The landmark restarts: the agent is not ready meanwhile, counts the
   * reconnects, and answers again. */
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);
  ck_assert_double_eq(wait_metric(R.ag_mport, CONNECTED, 0, 1), 0);
  expect_http(R.ag_mport, "/readyz", 503, "not ready: registered with no landmark (0 of 1)\n");
  expect_http(R.ag_mport, "/healthz", 200, "ok\n");
  ck_assert_double_ge(wait_metric(R.ag_mport, RECONNECTS, 1, 0), 1);
  lm = tu_landmarkd_start(R.lm_conf, R.lm_log);
  ck_assert_double_eq(wait_metric(R.ag_mport, CONNECTED, 1, 1), 1);
  expect_http(R.ag_mport, "/readyz", 200, "ok\n");
  before = metric_of(R.ag_mport, ANSWERED);
  ck_assert_double_gt(wait_metric(R.ag_mport, ANSWERED, before + 6, 0), before);
  reconnects = metric_of(R.ag_mport, RECONNECTS);
  ck_assert_double_ge(reconnects, 1);

  /* A second agent takes chip a: the landmark's Error reaches the first
   * agent and is counted by its code. */
  const char *taken = "chiploc_agent_errors_received_total{code=\"chip_taken_over\"}";
  ck_assert_double_eq(metric_of(R.ag_mport, taken), 0);
  tu_agent_opts rival = {.file = "rival.conf", .name = "rival", .backoff_min_ms = 50,
                         .backoff_max_ms = 500, .landmarks = {{"paris", R.lm_port, R.lhex}},
                         .chips = {{"a", R.key[0]}}};
  pid_t ag2 = tu_chipagent_start(tu_agent_conf(R.dir, &rival), tu_fmt("%s/rival.log", R.dir),
                                 NULL);
  ck_assert_double_eq(wait_metric(R.ag_mport, taken, 1, 0), 1);
  ck_assert_double_eq(metric_of(R.ag_mport, "chiploc_agent_errors_received_total{code=\"limit\"}"),
                      0);
  ck_assert_int_eq(tu_stop(ag2, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  /* The exit stats line agrees with the endpoint's counter. */
  ck_assert_int_ge(tu_last_stat(R.ag_log, "reconnects"), (long long)reconnects);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);
  tu_release();
}
END_TEST

/* chipagent --check-config on conf: its exit status; its output in *out. */
static int check_config(const real *R, const char *conf, char **out) {
  char *log = tu_fmt("%s/check-%d.log", R->dir, tu_free_port());
  char *argv[] = {tu_own(tu_bin("client/chipagent")), "--check-config", "--config", (char *)conf, NULL};
  int rc = tu_run(argv, log);
  *out = tu_own(tu_read_file(log));
  return rc;
}

static void expect_line(const char *out, const char *line) {
  ck_assert_msg(strstr(out, line) != NULL, "no line '%s' in:\n%s", line, out);
}

START_TEST(test_check_config) {
  real R;
  real_make(&R, "agent-check");
  char *out = NULL;
  /* Before anything runs: the landmark is unreachable, exit 1. */
  ck_assert_int_eq(check_config(&R, R.ag_conf, &out), 1);
  expect_line(out, tu_fmt("ok   config %s: 1 landmark(s), 2 chip(s)\n", R.ag_conf));
  expect_line(out, tu_fmt("ok   chip a key %s: chip id ", R.key[0]));
  expect_line(out, tu_fmt("ok   metrics listen 127.0.0.1:%d: bindable\n", R.ag_mport));
  expect_line(out, tu_fmt("FAIL landmark paris 127.0.0.1:%d: connect: Connection refused\n",
                          R.lm_port));

  pid_t lm = tu_landmarkd_start(R.lm_conf, R.lm_log);
  ck_assert_int_eq(check_config(&R, R.ag_conf, &out), 0);
  expect_line(out, tu_fmt("ok   landmark paris 127.0.0.1:%d: protocol 2, pinned key, suite 1",
                          R.lm_port));
  /* With the agent running, its own metrics address is not a failure. */
  pid_t ag = tu_chipagent_start(R.ag_conf, R.ag_log, NULL);
  ck_assert_double_eq(wait_metric(R.ag_mport, CONNECTED, 1, 1), 1);
  ck_assert_int_eq(check_config(&R, R.ag_conf, &out), 0);
  expect_line(out, tu_fmt("ok   metrics listen 127.0.0.1:%d: held by the running chipagent of "
                          "this name\n",
                          R.ag_mport));
  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);

  /* A second landmark nobody listens for, and one answering with another
   * key than the pinned one: FAIL, exit 1 (the agent would run). */
  char other[CL_PK_HEX_LEN + 1];
  cl_key *ok = NULL;
  ck_assert_int_eq(cl_key_generate(&ok), CL_OK);
  cl_pk_to_hex(cl_key_public(ok), other);
  cl_key_destroy(&ok);
  int dead = tu_free_port();
  tu_agent_opts ao = {.file = "two.conf", .name = AGENT_NAME,
                      .landmarks = {{"paris", R.lm_port, other}, {"nowhere", dead, R.lhex}},
                      .chips = {{"a", R.key[0]}}};
  ck_assert_int_eq(check_config(&R, tu_agent_conf(R.dir, &ao), &out), 1);
  expect_line(out, tu_fmt("FAIL landmark paris 127.0.0.1:%d: the landmark presents key %s, not "
                          "the pinned public_key\n",
                          R.lm_port, R.lhex));
  expect_line(out, tu_fmt("FAIL landmark nowhere 127.0.0.1:%d: connect: Connection refused\n",
                          dead));

  /* A key file others may read, and two chips with one key: exit 2. */
  ck_assert_int_eq(chmod(R.key[1], 0644), 0);
  tu_agent_opts keys = {.file = "keys.conf", .name = AGENT_NAME,
                        .landmarks = {{"paris", R.lm_port, R.lhex}},
                        .chips = {{"a", R.key[0]}, {"b", R.key[1]}, {"c", R.key[0]}}};
  ck_assert_int_eq(check_config(&R, tu_agent_conf(R.dir, &keys), &out), 2);
  expect_line(out, tu_fmt("FAIL chip b key %s: ", R.key[1]));
  expect_line(out, tu_fmt("FAIL chip c key %s: the same key as chip a\n", R.key[0]));
  expect_line(out, tu_fmt("ok   landmark paris 127.0.0.1:%d: ", R.lm_port));
  ck_assert_int_eq(chmod(R.key[1], 0600), 0);

  /* A config that does not load: one FAIL line, exit 2. */
  char *bad = tu_own(tu_write_file(R.dir, "bad.conf", "[agent]\nbackoff_min_ms = 1\n"));
  ck_assert_int_eq(check_config(&R, bad, &out), 2);
  ck_assert_msg(strncmp(out, tu_fmt("FAIL config %s: ", bad), strlen(tu_fmt("FAIL config %s: ", bad))) == 0,
                "%s", out);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("agent");
  TCase *tc = tcase_create("landmark played by the test");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_answers);
  tcase_add_test(tc, test_transcript);
  tcase_add_test(tc, test_bad_landmark_signature);
  tcase_add_test(tc, test_wrong_pinned_key);
  tcase_add_test(tc, test_unknown_suite);
  tcase_add_test(tc, test_rekey);
  tcase_add_test(tc, test_landmark_errors);
  tcase_add_test(tc, test_chip_taken_over);
  tcase_add_test(tc, test_slow_signer);
  suite_add_tcase(s, tc);
  TCase *real_tc = tcase_create("real landmarkd");
  tcase_set_timeout(real_tc, 120);
  tcase_add_test(real_tc, test_metrics_real_landmark);
  tcase_add_test(real_tc, test_check_config);
  suite_add_tcase(s, real_tc);
  return tu_run_suite(s);
}
