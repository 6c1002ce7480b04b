/*
 * Writes the seed corpus of fuzz_landmark into a directory: agent sessions
 * against the harness's fixed world (landmark_harness.h). Each session is
 * built frame by frame: after every frame the input so far runs through the
 * same harness the target uses, so the generator learns what the landmark
 * core sent (RegisterResults, challenges, BurstEnds, Rekeys) and answers as
 * an agent would, or as a cheat would.
 *
 * The agent here is written out of the protocol's primitives so that every
 * seed is the same on every run: each offer's ephemeral secret and nonce
 * are hashes of (connection, chip, offer number), its public key
 * crypto_scalarmult_base of the secret (cl_chipsess_offer draws them from
 * randombytes_buf). From a RegisterResult it checks the landmark's
 * handshake signature, derives the session key from the chip's side (and
 * requires it to equal the key the harness derived from the landmark's
 * side), signs the Confirm (cl_hs_sign_chip), answers challenges with
 * cl_answer_mac and signs the transcript of each BurstEnd's seqs
 * (cl_transcript_sign).
 *
 * The sessions: a handshake; answered bursts with their transcripts and
 * records (also cut into random reads, with worker threads, with every
 * second job cancelled, through a rekey); a rekey retried after a refused
 * offer, and one ignored; every rejection of an answer (replay, a probe of
 * another chip, a bad MAC, late, a chip not registered, an unknown probe,
 * and a flood of them whose Error replies are held back), of an offer (a
 * small-order key, a duplicate, inactive, unknown, not asked, an unknown
 * suite), of a Confirm (a bad signature, none awaited, cancelled), of a
 * transcript (a bad signature, the wrong first seq, none awaited, none
 * sent in time, one way and the other); Error frames; messages out of
 * order or the landmark's own; the handshake, chip handshake and idle
 * timeouts; over-limit prefixes before and after registration, a zero
 * prefix, garbage, another version, an unknown message; a chip taken over
 * by a second connection; tight limits (deferral, a refused connection);
 * a second Register while the first one's jobs are out; a chip made
 * inactive while active and during its handshake; hang-ups with jobs on
 * the workers; and failing writes with dropped measurements.
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
#define STEP_20MS (0x40 | 1)
#define STEP_200MS (0x80 | 1)
#define STEP_1S 0xC0
#define STEP_4S (0xC0 | 3)
#define STEP_64S 0xFF

#define MAX_WAIT 600 /* frames before giving up on an awaited event */
#define MAX_LOG 256  /* answers the agent remembers per chip */

/* What the agent does with each BurstEnd. */
typedef enum { TX_GOOD, TX_NONE, TX_BAD_SIG, TX_WRONG_FIRST, TX_TWICE } tx_mode;

/* The agent's side of one chip on one connection. */
typedef struct {
  unsigned offers; /* offers made: each from its own secret */
  uint8_t eph_sk[CL_EPH_SK_LEN];
  cl_chip_offer offer;
  uint64_t hs_taken; /* the harness's handshakes of this pair already answered */
  int have;          /* a session */
  cl_handshake hs;
  uint8_t key[CL_SESSION_KEY_LEN];
  cl_probe_entry log[MAX_LOG];
  size_t n_log;
} agent_chip;

static const char *g_dir;
static lh g_h;
static cl_lm_stats g_st; /* the core's counters at the end of the input so far */
static int g_open[2];    /* the connections still open then */
static uint8_t g_buf[65536];
static size_t g_len;
static unsigned g_reads; /* frames so far: with LH_OPT_TWO, read i goes to conn i % 2 */
static agent_chip g_a[2][LH_CHIPS];
static size_t g_events_done;
static uint64_t g_answered[8192];
static size_t g_n_answered;
static int g_ignore_rekey;
static const tx_mode *g_tx_plan; /* per BurstEnd in turn; TX_GOOD after its end */
static size_t g_tx_plan_len, g_tx_next;

/* Stops with the input built so far in $TMPDIR/fuzz_gen_landmark.failed
 * (outside the corpus), to look at with FUZZ_LANDMARK_TRACE=1
 * fuzz_landmark FILE. */
static _Noreturn void fail(const char *what) {
  char path[1024];
  const char *tmp = getenv("TMPDIR");
  snprintf(path, sizeof path, "%s/fuzz_gen_landmark.failed", tmp && *tmp ? tmp : "/tmp");
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(g_buf, 1, g_len, f);
    fclose(f);
  }
  fprintf(stderr, "fuzz_gen_landmark: %s (the input so far: %s)\n", what, path);
  exit(EXIT_FAILURE);
}

static void begin(uint8_t mode, uint8_t step, uint8_t opts) {
  g_buf[0] = mode;
  g_buf[1] = step;
  g_buf[2] = opts;
  g_len = LH_HEADER;
  g_reads = 0;
  memset(g_a, 0, sizeof g_a);
  g_events_done = 0;
  g_n_answered = 0;
  g_ignore_rekey = 0;
  g_tx_plan = NULL;
  g_tx_plan_len = g_tx_next = 0;
}

static void add_raw(const void *p, size_t n) {
  if (n > sizeof g_buf - g_len) fail("session too long");
  memcpy(g_buf + g_len, p, n);
  g_len += n;
}

/* Runs the input so far; g_h, g_st and g_open then tell what happened. */
static void state(void) {
  lh_run(&g_h, g_buf, g_len, 0);
  g_st = *cl_lm_get_stats(g_h.lm);
  for (int i = 0; i < 2; i++) g_open[i] = g_h.conn[i].c != NULL;
  lh_end(&g_h);
}

static void add_msg(const cl_msg *m) {
  size_t n = 0;
  if (cl_msg_encode(m, g_buf + g_len, sizeof g_buf - g_len, &n) != CL_OK) fail("encode failed");
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

static const uint8_t *chip_pk(int k) { return cl_key_public(g_h.chip[k]); }

/* ---- the handshake ----------------------------------------------------------- */

/* A fresh offer of chip k on connection ci, from secrets of its own. */
static void make_offer(int ci, int k, cl_chip_offer *o) {
  agent_chip *a = &g_a[ci][k];
  uint8_t in[8] = {'e', 'p', 'h', (uint8_t)ci, (uint8_t)k, (uint8_t)(++a->offers),
                   (uint8_t)(a->offers >> 8), 0};
  crypto_generichash(a->eph_sk, sizeof a->eph_sk, in, sizeof in, NULL, 0);
  in[7] = 'n';
  memcpy(a->offer.chip, chip_pk(k), CL_PK_LEN);
  if (crypto_scalarmult_base(a->offer.eph, a->eph_sk) != 0) fail("ephemeral key");
  crypto_generichash(a->offer.nonce, CL_NONCE_LEN, in, sizeof in, NULL, 0);
  *o = a->offer;
}

static void register_msg(cl_msg *m, int ci, uint32_t suite) {
  memset(m, 0, sizeof *m);
  m->type = CL_MSG_REGISTER;
  snprintf(m->u.reg.agent, sizeof m->u.reg.agent, "agent-%d", ci + 1);
  m->u.reg.suite = suite;
}

/* A Register of fresh offers for chips ks[0..n) on connection ci. */
static void add_register(int ci, const int *ks, size_t n) {
  static cl_msg m;
  register_msg(&m, ci, CL_SUITE_ED25519_X25519);
  m.u.reg.n = n;
  for (size_t i = 0; i < n; i++) make_offer(ci, ks[i], &m.u.reg.chips[i]);
  to_conn(ci);
  add_msg(&m);
}

/*
 * Waits (with fillers) for the landmark's answer to chip k's last offer on
 * connection ci, and takes it as the chip does: checks the landmark's
 * signature, derives the session key, signs the chip's half. The harness
 * derived the key from the landmark's side; both must agree.
 */
static void await_accept(int ci, int k) {
  agent_chip *a = &g_a[ci][k];
  for (int tries = 0; tries < MAX_WAIT; tries++) {
    state();
    const lh_pair *p = &g_h.conn[ci].pair[k];
    if (p->n_hs > a->hs_taken) {
      a->hs_taken = p->n_hs;
      const lh_hs *x = &p->hs[(p->n_hs - 1) % LH_HS];
      cl_handshake hs;
      memset(&hs, 0, sizeof hs);
      hs.suite = CL_SUITE_ED25519_X25519;
      memcpy(hs.landmark, cl_key_public(g_h.landmark), CL_PK_LEN);
      memcpy(hs.chip, chip_pk(k), CL_PK_LEN);
      memcpy(hs.landmark_eph, x->hs.landmark_eph, CL_EPH_LEN);
      memcpy(hs.landmark_nonce, x->hs.landmark_nonce, CL_NONCE_LEN);
      memcpy(hs.landmark_sig, x->hs.landmark_sig, CL_SIG_LEN);
      memcpy(hs.chip_eph, a->offer.eph, CL_EPH_LEN);
      memcpy(hs.chip_nonce, a->offer.nonce, CL_NONCE_LEN);
      if (cl_hs_verify_landmark(&hs) != CL_OK) fail("the landmark's handshake signature");
      if (cl_session_key(&hs, CL_SIDE_CHIP, a->eph_sk, a->key) != CL_OK)
        fail("the chip's session key");
      if (memcmp(a->key, x->key, CL_SESSION_KEY_LEN) != 0)
        fail("the harness derived another session key");
      if (cl_hs_sign_chip(&hs, g_h.chip[k]) != CL_OK) fail("the chip's handshake signature");
      a->hs = hs;
      a->have = 1;
      return;
    }
    if (!g_open[ci]) fail("the connection closed before the RegisterResult");
    filler();
  }
  fail("no RegisterResult accepting the chip");
}

/* A Confirm of chips ks[0..n) on connection ci; the signature of the chips
 * in bit mask `corrupt` is damaged. */
static void add_confirm(int ci, const int *ks, size_t n, unsigned corrupt) {
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CONFIRM;
  m.u.confirm.n = n;
  for (size_t i = 0; i < n; i++) {
    memcpy(m.u.confirm.chips[i].chip, chip_pk(ks[i]), CL_PK_LEN);
    memcpy(m.u.confirm.chips[i].sig, g_a[ci][ks[i]].hs.chip_sig, CL_SIG_LEN);
    if (corrupt & (1u << i)) m.u.confirm.chips[i].sig[7] ^= 0x10;
  }
  to_conn(ci);
  add_msg(&m);
}

/* Register, RegisterResult, Confirm: chips ks[0..n) begin a session. */
static void establish(int ci, const int *ks, size_t n) {
  add_register(ci, ks, n);
  for (size_t i = 0; i < n; i++) await_accept(ci, ks[i]);
  add_confirm(ci, ks, n, 0);
}

/* ---- the timed phase and the transcripts ---------------------------------------- */

static void response_msg(cl_msg *m, int ci, int k, uint64_t seq, const uint8_t *nonce) {
  agent_chip *a = &g_a[ci][k];
  memset(m, 0, sizeof *m);
  m->type = CL_MSG_RESPONSE;
  memcpy(m->u.response.chip, chip_pk(k), CL_PK_LEN);
  m->u.response.seq = seq;
  cl_answer_mac(a->key, a->hs.suite, a->hs.landmark, a->hs.chip, seq, nonce, m->u.response.mac);
  if (a->n_log < MAX_LOG) {
    cl_probe_entry *e = &a->log[a->n_log++];
    memset(e, 0, sizeof *e);
    e->seq = seq;
    memcpy(e->nonce, nonce, CL_NONCE_LEN);
    memcpy(e->mac, m->u.response.mac, CL_MAC_LEN);
  }
}

static int answered(uint64_t seq) {
  for (size_t i = 0; i < g_n_answered; i++)
    if (g_answered[i] == seq) return 1;
  return 0;
}

static void note_answered(uint64_t seq) {
  if (g_n_answered == sizeof g_answered / sizeof g_answered[0]) fail("too many answers");
  g_answered[g_n_answered++] = seq;
}

/* The challenge j (0 first) sent to chip k, waiting for it with fillers. */
static lh_sent await_challenge(int k, int j) {
  for (int tries = 0; tries < MAX_WAIT; tries++) {
    state();
    int seen = 0;
    for (uint64_t i = 0; i < g_h.n_sent && i < LH_MAX_SENT; i++)
      if (g_h.sent[i].chip == k && seen++ == j) return g_h.sent[i];
    filler();
  }
  fail("the chip was never sent the challenge awaited");
}

/* The chip's transcript of a BurstEnd, as the plan says. */
static void send_transcript(const lh_event *ev) {
  tx_mode mode = g_tx_next < g_tx_plan_len ? g_tx_plan[g_tx_next] : TX_GOOD;
  g_tx_next++;
  if (mode == TX_NONE) return;
  agent_chip *a = &g_a[ev->conn][ev->chip];
  cl_probe_entry e[CL_MAX_BURST];
  for (size_t i = 0; i < ev->n; i++) {
    size_t j = 0;
    while (j < a->n_log && a->log[j].seq != ev->seqs[i]) j++;
    if (j == a->n_log) fail("a BurstEnd names a seq the chip did not answer");
    e[i] = a->log[j];
  }
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_TRANSCRIPT;
  memcpy(m.u.transcript.chip, chip_pk(ev->chip), CL_PK_LEN);
  m.u.transcript.first_seq = ev->seqs[0];
  if (cl_transcript_sign(&a->hs, e, ev->n, g_h.chip[ev->chip], m.u.transcript.sig) != CL_OK)
    fail("transcript signature");
  if (mode == TX_BAD_SIG) m.u.transcript.sig[3] ^= 0x01;
  if (mode == TX_WRONG_FIRST) m.u.transcript.first_seq++;
  to_conn(ev->conn);
  add_msg(&m);
  if (mode == TX_TWICE) {
    to_conn(ev->conn);
    add_msg(&m);
  }
}

/* The landmark asked chip k on connection ci for a new session. */
static void rekey(int ci, int k) {
  static const int ks[LH_CHIPS] = {0, 1, 2, 3};
  add_register(ci, &ks[k], 1);
  await_accept(ci, k);
  add_confirm(ci, &ks[k], 1, 0);
}

/*
 * One step of an honest agent: the landmark's Rekeys and BurstEnds in the
 * order they came, else the oldest challenge still answerable at the next
 * read, else a filler.
 */
static void agent_step(void) {
  state();
  while (g_events_done < g_h.n_events) {
    lh_event ev = g_h.events[g_events_done++];
    if (!g_open[ev.conn]) continue;
    if (ev.type == CL_MSG_REKEY && !g_ignore_rekey) {
      rekey(ev.conn, ev.chip);
      return;
    }
    if (ev.type == CL_MSG_BURST_END) {
      size_t before = g_len;
      send_transcript(&ev);
      if (g_len != before) return;
    }
  }
  uint64_t next_read = g_h.now + g_h.step;
  const lh_sent *pick = NULL;
  for (uint64_t i = 0; i < g_h.n_sent && i < LH_MAX_SENT && !pick; i++) {
    const lh_sent *s = &g_h.sent[i];
    if (!answered(s->seq) && g_open[s->conn] && g_a[s->conn][s->chip].have &&
        next_read <= s->sent_ns + lh_params.deadline_ms * 1000000ull)
      pick = s;
  }
  if (!pick) {
    filler();
    return;
  }
  cl_msg m;
  response_msg(&m, pick->conn, pick->chip, pick->seq, pick->nonce);
  note_answered(pick->seq);
  to_conn(pick->conn);
  add_msg(&m);
}

/* Honest steps until the core made `want` measurements (records it tried
 * to emit, dropped ones included). */
static void run_until_records(uint64_t want) {
  for (int tries = 0; tries < MAX_WAIT; tries++) {
    agent_step();
    state();
    if (g_st.measurements + g_st.measurements_dropped >= want) return;
  }
  fail("too few measurements");
}

/* Honest steps until cond holds of the input so far. */
#define STEP_UNTIL(cond, what)                                                   \
  do {                                                                           \
    int tries_ = 0;                                                              \
    for (state(); !(cond); state()) {                                            \
      if (++tries_ > MAX_WAIT) fail(what);                                       \
      agent_step();                                                              \
    }                                                                            \
  } while (0)

static void run_frames(int frames) {
  for (int i = 0; i < frames; i++) agent_step();
}

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

/* ---- the seeds ------------------------------------------------------------------------ */

static const int BOTH[] = {0, 1};
static const int ZERO[] = {0};

static void seeds_sessions(void) {
  /* The handshake of both active chips, until both are active. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, BOTH, 2);
  state();
  if (g_st.chips_registered != 2) fail("handshake: chips not active");
  save("handshake");

  /* Both chips answer every challenge and sign every transcript until the
   * core made a record for each. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, BOTH, 2);
  run_until_records(2);
  save("session");
  /* The same with the stream cut into pseudo-random reads (a frame may
   * take more than one read, a read hold more than one frame). */
  begin(LH_MODE_RANDOM | (9 << 2), STEP_200MS, 0);
  establish(0, BOTH, 2);
  run_until_records(2);
  save("session_random_reads");

  /* The same with the jobs on worker threads. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_ASYNC);
  establish(0, BOTH, 2);
  run_until_records(2);
  save("session_async");

  /* Every second job cancelled: chip 1's handshake (refused), the first
   * transcript (no record); chip 0's session goes on to a record. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_ASYNC | LH_OPT_CANCEL);
  add_register(0, BOTH, 2);
  await_accept(0, 0);
  add_confirm(0, ZERO, 1, 0);
  run_until_records(1);
  save("async_cancelled");
  /* A cancelled Confirm check: the chip is dropped, the connection closes. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_ASYNC | LH_OPT_CANCEL);
  add_register(0, ZERO, 1);
  await_accept(0, 0);
  add_confirm(0, ZERO, 1, 0);
  filler();
  save("async_cancelled_confirm");

  /* A session past its lifetime: the landmark asks for a rekey, the agent
   * offers again, and the bursts go on under the new key. */
  begin(LH_MODE_FRAMES, STEP_1S, 0);
  establish(0, ZERO, 1);
  STEP_UNTIL(g_st.rekeys_done == 1, "rekey: no rekey");
  run_until_records(g_st.measurements + 1);
  save("rekey");

  /* The same chip ignoring the Rekey: dropped at the handshake timeout,
   * and the connection with it. */
  begin(LH_MODE_FRAMES, STEP_4S, 0);
  establish(0, ZERO, 1);
  g_ignore_rekey = 1;
  STEP_UNTIL(!g_open[0], "rekey_ignored: the connection stays");
  if (g_st.rekeys_failed != 1) fail("rekey_ignored: no failed rekey");
  save("rekey_ignored");

  /* A rekey offer with an ephemeral key of small order (refused), then a
   * good one. */
  begin(LH_MODE_FRAMES, STEP_1S, 0);
  establish(0, ZERO, 1);
  g_ignore_rekey = 1;
  STEP_UNTIL(g_st.rekeys_asked == 1, "rekey_retry: no Rekey");
  {
    static cl_msg m;
    register_msg(&m, 0, CL_SUITE_ED25519_X25519);
    m.u.reg.n = 1;
    memcpy(m.u.reg.chips[0].chip, chip_pk(0), CL_PK_LEN);
    add_msg(&m);
  }
  rekey(0, 0);
  filler();
  state();
  if (g_st.rekeys_done != 1) fail("rekey_retry: no rekey");
  save("rekey_retry");

  /* Registers after registration: offers not asked for are refused, the
   * session goes on. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, ZERO, 1);
  add_register(0, BOTH, 2);
  run_until_records(1);
  save("register_not_asked");
}

static void seeds_answers(void) {
  cl_msg m;
  lh_sent s;

  /* Chip 0's first answer twice: the second is a replay. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, BOTH, 2);
  s = await_challenge(0, 0);
  response_msg(&m, 0, 0, s.seq, s.nonce);
  add_msg(&m);
  add_msg(&m);
  save("replay");

  /* Chip 1 answers the probe sent to chip 0. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, BOTH, 2);
  s = await_challenge(0, 0);
  response_msg(&m, 0, 1, s.seq, s.nonce);
  add_msg(&m);
  save("wrong_chip");

  /* A damaged MAC uses the probe up; the next probe is answered. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, BOTH, 2);
  s = await_challenge(0, 0);
  response_msg(&m, 0, 0, s.seq, s.nonce);
  m.u.response.mac[5] ^= 0x20;
  add_msg(&m);
  s = await_challenge(0, 1);
  response_msg(&m, 0, 0, s.seq, s.nonce);
  add_msg(&m);
  save("bad_mac");

  /* One second between reads: the probe expires before the answer is
   * read. */
  begin(LH_MODE_FRAMES, STEP_1S, 0);
  establish(0, BOTH, 2);
  s = await_challenge(0, 0);
  filler();
  response_msg(&m, 0, 0, s.seq, s.nonce);
  add_msg(&m);
  save("late");

  /* An answer and a transcript for a chip not registered here, then a
   * good answer. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, ZERO, 1);
  s = await_challenge(0, 0);
  g_a[0][1] = g_a[0][0];
  response_msg(&m, 0, 1, s.seq, s.nonce);
  add_msg(&m);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_TRANSCRIPT;
  memcpy(m.u.transcript.chip, chip_pk(1), CL_PK_LEN);
  m.u.transcript.first_seq = s.seq;
  add_msg(&m);
  response_msg(&m, 0, 0, s.seq, s.nonce);
  add_msg(&m);
  save("not_registered");

  /* A hundred answers to a probe never issued, a millisecond apart: most
   * get no Error reply (the bucket holds 10), every one is counted. */
  begin(LH_MODE_FRAMES, 0, 0);
  establish(0, ZERO, 1);
  memset(s.nonce, 0, sizeof s.nonce);
  response_msg(&m, 0, 0, 1000, s.nonce);
  for (int i = 0; i < 100; i++) add_msg(&m);
  state();
  if (g_st.rejected[CL_ACCEPT_UNKNOWN_PROBE] != 100 || g_st.error_replies_suppressed < 80)
    fail("error_flood: replies not held back");
  save("error_flood");

  /* An answer to a seq never issued. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, BOTH, 2);
  s = await_challenge(0, 0);
  response_msg(&m, 0, 0, s.seq + 1000, s.nonce);
  add_msg(&m);
  save("unknown_probe");
}

static void seeds_handshakes(void) {
  static cl_msg m;

  /* Nothing acceptable: an ephemeral key of small order, a duplicate, an
   * inactive and an unknown chip. The landmark closes the connection. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  {
    static const int ks[] = {0, 0, LH_INACTIVE, LH_UNKNOWN};
    register_msg(&m, 0, CL_SUITE_ED25519_X25519);
    snprintf(m.u.reg.agent, sizeof m.u.reg.agent, "agent \"2\"\n");
    m.u.reg.n = 4;
    for (int i = 0; i < 4; i++) make_offer(0, ks[i], &m.u.reg.chips[i]);
    memset(m.u.reg.chips[0].eph, 0, CL_EPH_LEN);
    add_msg(&m);
  }
  filler();
  save("register_refused");

  /* A suite this landmark does not know. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  register_msg(&m, 0, 7);
  m.u.reg.n = 1;
  make_offer(0, 0, &m.u.reg.chips[0]);
  add_msg(&m);
  save("bad_suite");

  /* Chip 1's Confirm does not verify: chip 1 is dropped, chip 0's session
   * goes on to a record. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  add_register(0, BOTH, 2);
  await_accept(0, 0);
  await_accept(0, 1);
  g_a[0][1].have = 0;
  add_confirm(0, BOTH, 2, 2);
  run_until_records(1);
  save("bad_handshake");

  /* Confirms no handshake awaits: chip 0's again, and an unknown chip's. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, ZERO, 1);
  add_confirm(0, ZERO, 1, 0);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CONFIRM;
  m.u.confirm.n = 1;
  memcpy(m.u.confirm.chips[0].chip, chip_pk(LH_UNKNOWN), CL_PK_LEN);
  add_msg(&m);
  run_until_records(1);
  save("confirm_unexpected");

  /* Chip 1 never confirms: dropped at its handshake timeout while chip 0
   * is active; the connection stays. */
  begin(LH_MODE_FRAMES, STEP_1S, 0);
  add_register(0, BOTH, 2);
  await_accept(0, 0);
  await_accept(0, 1);
  g_a[0][1].have = 0;
  add_confirm(0, ZERO, 1, 0);
  STEP_UNTIL(g_st.handshake_timeouts == 1, "chip_handshake_timeout: none");
  run_frames(2);
  save("chip_handshake_timeout");

  /* A second Register while the first one's handshake jobs are out: both
   * in one read (the first read sizes that put them together). */
  for (unsigned x = 0;; x++) {
    if (x == 64) fail("register_while_pending: no read holds both Registers");
    begin(LH_MODE_RANDOM | (uint8_t)(x << 2), STEP_200MS, LH_OPT_ASYNC);
    add_register(0, ZERO, 1);
    add_register(0, &BOTH[1], 1);
    state();
    if (g_st.unexpected_msg == 1 && g_h.conn[0].pair[0].n_hs == 0) break;
  }
  save("register_while_pending");

  /* Chip 1 made inactive while both chips are active: it is dropped, chip
   * 0's session goes on to a record. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_ENROLL);
  establish(0, BOTH, 2);
  STEP_UNTIL(g_h.reloads >= 1 && g_st.measurements >= 1, "enrolled_set: no record");
  save("enrolled_set");
  /* ... and between its RegisterResult and its Confirm: dropped when the
   * Confirm verifies (and never probed in the interval that follows). */
  begin(LH_MODE_FRAMES, STEP_1S, LH_OPT_ENROLL);
  for (int i = 1; i < LH_RELOAD_EVERY - 1; i++) filler();
  establish(0, BOTH, 2);
  run_frames(LH_RELOAD_EVERY - 2);
  state();
  if (g_st.chips_registered != 1 || g_st.handshakes_ok != 2)
    fail("unenrolled_in_handshake: chip 1 not dropped at its Confirm");
  save("unenrolled_in_handshake");

  /* No Register before the handshake deadline. */
  begin(LH_MODE_FRAMES, STEP_64S, 0);
  filler();
  save("handshake_timeout");
}

static void seeds_transcripts(void) {
  /* A transcript with a bad signature, one naming the wrong first seq,
   * then a good one (a record) sent twice (the second awaits nothing). */
  static const tx_mode plan[] = {TX_BAD_SIG, TX_WRONG_FIRST, TX_TWICE};
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, ZERO, 1);
  g_tx_plan = plan;
  g_tx_plan_len = sizeof plan / sizeof plan[0];
  run_until_records(1);
  run_frames(2);
  save("bad_transcript");

  /* No transcripts: each burst's times out, by its timer (bursts take
   * longer than the transcript timeout)... */
  static const tx_mode none[] = {TX_NONE, TX_NONE, TX_NONE};
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, ZERO, 1);
  g_tx_plan = none;
  g_tx_plan_len = 2;
  STEP_UNTIL(g_st.transcript_timeouts == 1, "transcript_timeout: none");
  run_until_records(1);
  save("transcript_timeout");
  /* ... or by the next burst ending first (fast answers). */
  begin(LH_MODE_FRAMES, STEP_20MS, 0);
  establish(0, ZERO, 1);
  g_tx_plan = none;
  g_tx_plan_len = 3;
  STEP_UNTIL(g_st.transcript_timeouts == 2, "transcript_replaced: none");
  save("transcript_replaced");
}

static void seeds_protocol(void) {
  static cl_msg m;
  uint8_t hdr[CL_FRAME_HDR_LEN];

  /* An Error is allowed before and after Register; a second Register
   * before registration is not. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  add_error(CL_ERR_BAD_LANDMARK, "landmark key \x01 mismatch");
  add_register(0, BOTH, 2);
  add_error(CL_ERR_LATE, "late");
  add_register(0, BOTH, 2);
  save("error_and_register_twice");

  /* Messages out of order: a Response, a Confirm, a Transcript before
   * Register; the landmark's own messages from the agent. */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_RESPONSE;
  memcpy(m.u.response.chip, chip_pk(0), CL_PK_LEN);
  add_msg(&m);
  save("response_before_register");
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CONFIRM;
  m.u.confirm.n = 1;
  memcpy(m.u.confirm.chips[0].chip, chip_pk(0), CL_PK_LEN);
  add_msg(&m);
  save("confirm_before_register");
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_TRANSCRIPT;
  memcpy(m.u.transcript.chip, chip_pk(0), CL_PK_LEN);
  add_msg(&m);
  save("transcript_before_register");
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_HELLO;
  memcpy(m.u.hello.landmark, cl_key_public(g_h.landmark), CL_PK_LEN);
  m.u.hello.suite = CL_SUITE_ED25519_X25519;
  add_msg(&m);
  save("hello_from_agent");
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, ZERO, 1);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_BURST_END;
  memcpy(m.u.burst_end.chip, chip_pk(0), CL_PK_LEN);
  m.u.burst_end.n = 2;
  m.u.burst_end.seqs[0] = 1;
  m.u.burst_end.seqs[1] = 2;
  add_msg(&m);
  save("burst_end_from_agent");
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, ZERO, 1);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REKEY;
  memcpy(m.u.rekey.chip, chip_pk(0), CL_PK_LEN);
  add_msg(&m);
  save("rekey_from_agent");

  /* Another protocol version, and an unknown message (envelope field 12). */
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  register_msg(&m, 0, CL_SUITE_ED25519_X25519);
  m.u.reg.n = 1;
  make_offer(0, 0, &m.u.reg.chips[0]);
  {
    size_t n = 0;
    if (cl_msg_encode_version(&m, 1, g_buf + g_len, sizeof g_buf - g_len, &n) != CL_OK)
      fail("encode");
    g_len += n;
  }
  save("version1");
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, ZERO, 1);
  add_raw("\0\0\0\x04\x08\x02\x62\x00", 8);
  save("unknown_msg");

  /* Registered, then a frame that never completes, a byte a second: the
   * idle timeout closes the connection. */
  begin(LH_MODE_FRAMES, STEP_1S, 0);
  establish(0, BOTH, 2);
  cl_frame_put_header(hdr, 100);
  add_raw(hdr, sizeof hdr);
  {
    uint8_t body[30];
    memset(body, 0, sizeof body);
    memcpy(body, "\x08\x02\x32\x62\x0a\x20", 6);
    add_raw(body, sizeof body);
  }
  save("idle_timeout");

  /* Length prefixes: just over the limit before registration, then after. */
  begin(LH_MODE_BYTES, 0, 0);
  cl_frame_put_header(hdr, CL_FRAME_MAX_UNREGISTERED + 1);
  add_raw(hdr, sizeof hdr);
  add_raw("\x08\x02", 2);
  save("oversized_prefix");
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, BOTH, 2);
  cl_frame_put_header(hdr, CL_FRAME_MAX + 1);
  add_raw(hdr, sizeof hdr);
  add_raw("\x08\x02", 2);
  save("oversized_after_register");

  /* A zero length prefix, and bytes that are no Envelope. */
  begin(LH_MODE_FIXED | (2 << 2), STEP_200MS, 0);
  add_raw("\0\0\0\0\x08\x02", 6);
  save("zero_prefix");
  begin(LH_MODE_FRAMES, STEP_200MS, 0);
  establish(0, BOTH, 2);
  add_raw("\0\0\0\x07garbage", 11);
  save("garbage_after_register");
}

static void seeds_shell(void) {
  /* Two connections: chip 0 begins a session on the first, then both
   * chips on the second, which takes chip 0 over; records follow there. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_TWO);
  establish(0, ZERO, 1);
  establish(1, BOTH, 2);
  g_a[0][0].have = 0;
  run_until_records(2);
  save("takeover");

  /* One pending challenge per connection: the two chips' probes take turns
   * (deferral); a second connection from the same address is refused. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_TIGHT | LH_OPT_TWO);
  establish(0, BOTH, 2);
  run_until_records(2);
  save("tight_limits");

  /* A transcript under checking on a worker when the agent hangs up... */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_ASYNC | LH_OPT_HANGUP);
  establish(0, BOTH, 2);
  STEP_UNTIL(g_h.n_events > g_events_done, "hangup_async: no BurstEnd");
  agent_step();
  save("hangup_async");
  /* ... and handshakes. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_ASYNC | LH_OPT_HANGUP);
  add_register(0, BOTH, 2);
  save("hangup_register");

  /* Writes that fail (the connection closes; the second one as a full
   * write queue), and every second record dropped. */
  begin(LH_MODE_FRAMES, STEP_200MS, LH_OPT_FAULTS | LH_OPT_TWO);
  establish(0, ZERO, 1);
  establish(1, &BOTH[1], 1);
  STEP_UNTIL(!g_open[0] && !g_open[1], "faults: a connection stays");
  if (g_st.write_queue_overflows != 1 || g_st.measurements_dropped == 0)
    fail("faults: no full write queue or no record dropped");
  save("faults");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fuzz_gen_landmark DIR\n");
    return EXIT_FAILURE;
  }
  g_dir = argv[1];
  lh_init(&g_h);
  seeds_sessions();
  seeds_answers();
  seeds_handshakes();
  seeds_transcripts();
  seeds_protocol();
  seeds_shell();
  for (int k = 0; k < LH_CHIPS; k++) cl_key_destroy(&g_h.chip[k]);
  cl_key_destroy(&g_h.landmark);
  return EXIT_SUCCESS;
}
