/*
 * Writes the seed corpus of fuzz_landmark into a directory: short agent
 * sessions against the harness's fixed world (landmark_harness.h). Each
 * session is built frame by frame: after every frame the input so far runs
 * through the same harness the target uses, so the generator learns the
 * Hello's session nonce and every challenge the landmark core sent, and
 * answers them as an agent would (or as a cheat would). The sessions: a
 * registration; full bursts of valid answers (also cut into random reads,
 * with worker threads, with cancelled worker jobs); a replay, an answer for
 * the wrong chip, a bad signature, a late answer, a chip not registered, an
 * unknown nonce; refused registrations; Error frames; a second Register, a
 * Response before Register, a Hello from the agent; the handshake and idle
 * timeouts; over-limit prefixes before and after Register, a zero prefix,
 * garbage; a chip taken over by a second connection; tight limits
 * (deferral, a refused connection); a hang-up with jobs on the workers; and
 * failing writes with dropped measurements.
 *
 * Run once by hand; the files are kept in tests/fuzz/corpus/landmark/.
 * `FUZZ_LANDMARK_TRACE=1 fuzz_landmark FILE` shows what the target makes of
 * one.
 *
 * Usage: fuzz_gen_landmark DIR
 */
#include "landmark_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Clock steps (see lh_step_ns). */
#define STEP_200MS (0x80 | 1)
#define STEP_1S 0xC0
#define STEP_9S (0xC0 | 8)
#define STEP_64S 0xFF

#define MAX_WAIT 400 /* filler frames before giving up on an awaited event */

static const char *g_dir;
static lh g_h;
static uint8_t g_buf[65536];
static size_t g_len;
static unsigned g_reads; /* frames so far: with LH_OPT_TWO, read i goes to conn i % 2 */
static uint64_t g_answered[LH_MAX_SENT];
static size_t g_n_answered;

static void begin(uint8_t mode, uint8_t step, uint8_t opts) {
  g_buf[0] = mode;
  g_buf[1] = step;
  g_buf[2] = opts;
  g_len = LH_HEADER;
  g_reads = 0;
  g_n_answered = 0;
}

static void add_raw(const void *p, size_t n) {
  if (n > sizeof g_buf - g_len) {
    fprintf(stderr, "session too long\n");
    exit(EXIT_FAILURE);
  }
  memcpy(g_buf + g_len, p, n);
  g_len += n;
}

/* Runs the input so far; the caller looks at g_h, then calls done(). */
static void state(void) { lh_run(&g_h, g_buf, g_len, 0); }
static void done(void) { lh_end(&g_h); }

static void add_msg(const cl_msg *m) {
  size_t n = 0;
  if (cl_msg_encode(m, g_buf + g_len, sizeof g_buf - g_len, &n) != CL_OK) {
    fprintf(stderr, "encode failed\n");
    exit(EXIT_FAILURE);
  }
  g_len += n;
  g_reads++;
}

static void add_error(cl_wire_error code, const char *text) {
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_ERROR;
  m.u.error.code = code;
  snprintf(m.u.error.text, sizeof m.u.error.text, "%s", text);
  add_msg(&m);
}

/* An Error frame as a no-op: the clock moves one step. */
static void filler(void) { add_error(CL_ERR_LATE, "tick"); }

/* With two connections, makes the next frame go to connection ci. */
static void to_conn(int ci) {
  if ((g_buf[2] & LH_OPT_TWO) && (int)(g_reads % 2) != ci) filler();
}

/* A Register of chips ks[0..n) on connection ci, each with its valid proof
 * over that connection's session nonce. */
static void add_register_on(int ci, const int *ks, size_t n) {
  state();
  uint8_t session[CL_NONCE_LEN];
  memcpy(session, g_h.conn[ci].session, sizeof session);
  done();
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER;
  snprintf(m.u.reg.agent, sizeof m.u.reg.agent, "agent-%d", ci + 1);
  m.u.reg.n = n;
  for (size_t i = 0; i < n; i++) {
    memcpy(m.u.reg.chips[i].chip, cl_key_public(g_h.chip[ks[i]]), CL_PK_LEN);
    cl_register_sign(cl_key_public(g_h.landmark), session, g_h.chip[ks[i]],
                     m.u.reg.chips[i].proof);
  }
  to_conn(ci);
  add_msg(&m);
}

static void add_register_both(void) {
  static const int both[] = {0, 1};
  add_register_on(0, both, 2);
}

/* The Response of chip k (its key signs) to challenge ch. */
static void response(cl_msg *m, int k, const cl_challenge *ch) {
  memset(m, 0, sizeof *m);
  m->type = CL_MSG_RESPONSE;
  memcpy(m->u.response.chip, cl_key_public(g_h.chip[k]), CL_PK_LEN);
  memcpy(m->u.response.nonce, ch->nonce, CL_NONCE_LEN);
  cl_response_sign(ch, g_h.chip[k], m->u.response.sig);
}

/* Waits (with fillers on conn ci) until chip k was sent its challenge j;
 * returns a copy of it. */
static cl_challenge await_challenge(int k, int j, int ci) {
  for (int tries = 0; tries < MAX_WAIT; tries++) {
    state();
    int seen = 0;
    for (size_t i = 0; i < g_h.n_sent; i++) {
      if (g_h.sent[i].chip != k) continue;
      if (seen++ == j) {
        cl_challenge ch = g_h.sent[i].ch;
        done();
        return ch;
      }
    }
    done();
    to_conn(ci);
    filler();
  }
  fprintf(stderr, "chip %d was never sent challenge %d\n", k, j);
  exit(EXIT_FAILURE);
}

static int answered(uint64_t seq) {
  for (size_t i = 0; i < g_n_answered; i++)
    if (g_answered[i] == seq) return 1;
  return 0;
}

/* An honest agent: answers every live challenge, oldest first, at the next
 * read, until `want` measurements were made (or, with `frames`, for that
 * many frames whatever happens). */
static void answer_for(uint64_t want, int frames) {
  for (int tries = 0; tries < (frames ? frames : MAX_WAIT); tries++) {
    state();
    if (!frames && g_h.measurements >= want) {
      done();
      return;
    }
    const lh_sent *pick = NULL;
    for (size_t i = 0; i < g_h.n_sent && !pick; i++) {
      const lh_sent *s = &g_h.sent[i];
      if (!answered(s->ch.seq) && g_h.now < s->sent_ns + lh_params.deadline_ms * 1000000ull)
        pick = s;
    }
    lh_sent copy;
    if (pick) copy = *pick;
    done();
    if (!pick) {
      filler();
      continue;
    }
    cl_msg m;
    response(&m, copy.chip, &copy.ch);
    to_conn(copy.conn);
    add_msg(&m);
    g_answered[g_n_answered++] = copy.ch.seq;
  }
  if (frames) return;
  fprintf(stderr, "no %llu measurements\n", (unsigned long long)want);
  exit(EXIT_FAILURE);
}

static void answer_until(uint64_t want) { answer_for(want, 0); }

static void save(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(g_buf, 1, g_len, f) != g_len || fclose(f) != 0) {
    perror(path);
    exit(EXIT_FAILURE);
  }
  /* Every seed passes the target's own checks. */
  lh_run(&g_h, g_buf, g_len, 1);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fuzz_gen_landmark DIR\n");
    return EXIT_FAILURE;
  }
  g_dir = argv[1];
  lh_init(&g_h);
  cl_msg m;
  cl_challenge ch;
  uint8_t hdr[CL_FRAME_HDR_LEN];

  /* Registration of both active chips, nothing more. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  add_register_both();
  save("register");

  /* Both chips answer every challenge at the next read until each has
   * finished a burst with a measurement. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  add_register_both();
  answer_until(2);
  save("session");
  /* The same stream cut into pseudo-random reads. */
  g_buf[0] = LH_MODE_RANDOM | (9 << 2);
  save("session_random_reads");

  /* The same with the signatures on worker threads, and with every worker
   * job cancelled (challenges never go out; the chips try again). */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_ASYNC);
  add_register_both();
  answer_until(2);
  save("session_async");
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_ASYNC | LH_OPT_CANCEL);
  add_register_both();
  for (int i = 0; i < 20; i++) filler();
  save("async_cancelled");

  /* Chip 0's first answer twice: the second is a replay. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  add_register_both();
  ch = await_challenge(0, 0, 0);
  response(&m, 0, &ch);
  add_msg(&m);
  add_msg(&m);
  save("replay");

  /* Chip 1 answers with the nonce issued to chip 0. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  add_register_both();
  ch = await_challenge(0, 0, 0);
  response(&m, 1, &ch);
  add_msg(&m);
  save("wrong_chip");

  /* A corrupted signature uses the probe up; the next one is answered. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  add_register_both();
  ch = await_challenge(0, 0, 0);
  response(&m, 0, &ch);
  m.u.response.sig[5] ^= 0x20;
  add_msg(&m);
  ch = await_challenge(0, 1, 0);
  response(&m, 0, &ch);
  add_msg(&m);
  save("bad_signature");

  /* One second between reads: the probe expires before the answer is
   * read. */
  begin(LH_MODE_FRAMES, STEP_1S, 0);
  add_register_both();
  ch = await_challenge(0, 0, 0);
  filler();
  response(&m, 0, &ch);
  add_msg(&m);
  save("late");

  /* An answer for a chip that is not registered here, then a good one. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  {
    static const int one[] = {0};
    add_register_on(0, one, 1);
  }
  ch = await_challenge(0, 0, 0);
  response(&m, 1, &ch);
  add_msg(&m);
  response(&m, 0, &ch);
  add_msg(&m);
  save("not_registered");

  /* An answer with a nonce never issued. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  add_register_both();
  ch = await_challenge(0, 0, 0);
  ch.nonce[0] ^= 0xff;
  response(&m, 0, &ch);
  add_msg(&m);
  save("unknown_nonce");

  /* Nothing acceptable: a bad proof, a duplicate, an inactive and an
   * unknown chip. The landmark closes the connection. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  {
    static const int refused[] = {0, 0, LH_INACTIVE, LH_UNKNOWN};
    state();
    uint8_t session[CL_NONCE_LEN];
    memcpy(session, g_h.conn[0].session, sizeof session);
    done();
    static cl_msg r;
    memset(&r, 0, sizeof r);
    r.type = CL_MSG_REGISTER;
    snprintf(r.u.reg.agent, sizeof r.u.reg.agent, "agent \"2\"\n");
    r.u.reg.n = 4;
    for (int i = 0; i < 4; i++) {
      memcpy(r.u.reg.chips[i].chip, cl_key_public(g_h.chip[refused[i]]), CL_PK_LEN);
      cl_register_sign(cl_key_public(g_h.landmark), session, g_h.chip[refused[i]],
                       r.u.reg.chips[i].proof);
    }
    r.u.reg.chips[0].proof[0] ^= 1;
    add_msg(&r);
  }
  filler();
  save("register_refused");

  /* An Error is allowed before and after Register; a second Register is
   * not. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  add_error(CL_ERR_BAD_LANDMARK, "landmark key \x01 mismatch");
  add_register_both();
  add_error(CL_ERR_LATE, "late");
  add_register_both();
  save("error_and_register_twice");

  /* A Response before Register. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  memset(&ch, 0, sizeof ch);
  response(&m, 0, &ch);
  add_msg(&m);
  add_register_both();
  save("response_before_register");

  /* An agent sending a Hello. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_HELLO;
  memcpy(m.u.hello.landmark, cl_key_public(g_h.landmark), CL_PK_LEN);
  add_msg(&m);
  save("hello_from_agent");

  /* Registered, then a frame that never completes, 9 s per byte: the
   * idle timeout closes the connection. */
  begin(LH_MODE_FRAMES, STEP_9S, 0);
  add_register_both();
  cl_frame_put_header(hdr, 100);
  add_raw(hdr, sizeof hdr);
  add_raw("\x08\x01\x2a\x62\x0a\x20\x00\x00\x00\x00", 10);
  save("idle_timeout");

  /* Register arriving after the handshake deadline. */
  begin(LH_MODE_FRAMES, STEP_64S, 0);
  add_register_both();
  save("handshake_timeout");

  /* Length prefixes: just over the limit before Register, then after. */
  begin(LH_MODE_BYTES, 0, 0);
  cl_frame_put_header(hdr, CL_FRAME_MAX_UNREGISTERED + 1);
  add_raw(hdr, sizeof hdr);
  add_raw("\x08\x01", 2);
  save("oversized_prefix");
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  add_register_both();
  cl_frame_put_header(hdr, CL_FRAME_MAX + 1);
  add_raw(hdr, sizeof hdr);
  add_raw("\x08\x01", 2);
  save("oversized_after_register");

  /* A zero length prefix, and bytes that are no Envelope. */
  begin(LH_MODE_FIXED | (2 << 2), STEP_200MS, 0);
  add_raw("\0\0\0\0\x08\x01", 6);
  save("zero_prefix");
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  add_register_both();
  add_raw("\0\0\0\x07garbage", 11);
  save("garbage_after_register");

  /* Two connections: chip 0 registers on the first, then on the second,
   * which takes it over; it answers there. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_TWO);
  {
    static const int zero[] = {0};
    static const int both[] = {0, 1};
    add_register_on(0, zero, 1);
    add_register_on(1, both, 2);
  }
  answer_until(2);
  save("takeover");

  /* One pending challenge per connection: the two chips' probes take turns
   * (deferral); a second connection from the same address is refused. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_TIGHT | LH_OPT_TWO);
  add_register_both();
  answer_until(2);
  save("tight_limits");

  /* Answers under checking on the workers when the agent hangs up. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_ASYNC | LH_OPT_HANGUP);
  add_register_both();
  ch = await_challenge(0, 0, 0);
  response(&m, 0, &ch);
  add_msg(&m);
  save("hangup_async");

  /* Writes that fail (the connection closes) and measurements dropped. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_FAULTS | LH_OPT_TWO);
  add_register_both();
  {
    static const int one[] = {1};
    add_register_on(1, one, 1);
  }
  answer_for(0, 40);
  save("faults");

  for (int k = 0; k < LH_CHIPS; k++) cl_key_destroy(&g_h.chip[k]);
  cl_key_destroy(&g_h.landmark);
  return EXIT_SUCCESS;
}
