/*
 * The landmark's protocol core (lib/wire/cl_lmcore.h) and its timer queue
 * (lib/core/cl_tq.h), driven directly: events in as function calls with
 * their times, actions out through a recording cl_lm_io. Every frame the
 * core sends is decoded as an agent would decode it, and the agent's side
 * is the real one (cl_chipsess: offers, the landmark's handshake signature
 * checked under the pinned key, session keys, MACs, transcripts) with test
 * chip keys. Covers the handshake (refusals, an unknown suite, a v1
 * envelope, a bad or replayed Confirm, a handshake left unfinished), the
 * probe cycle with exact RTTs from the shell's send stamp, every rejection
 * of an answer (unknown probe, replay, late, a bad MAC, a MAC under another
 * session's key or from a session with another landmark), the transcript
 * (verified into a record that cl_measurement_verify accepts; one that
 * omits or reorders probes, is signed by another key, names another burst
 * or never comes), rekeys completed and not, deadlines, limits, deferral,
 * a chip taken over by a newer connection (the old one told with
 * ERROR_CHIP_TAKEN_OVER; a Register without a verified Confirm takes nothing
 * away), enrolment changes, the worker
 * path (jobs back, orphaned, cancelled, secrets wiped), the
 * per-connection limit on Error replies, a write queue the shell reports
 * full, and the per-address key (IPv6 by /64). The timer queue is checked
 * against a plain list over random operations.
 */
#include "cl_chipsess.h"
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_lmcore.h"
#include "cl_log.h"
#include "cl_msg.h"
#include "cl_probe.h"
#include "cl_tq.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ull
#define T0 (1000 * 1000 * MS)
#define MAX_OUT 1024
#define NCONN 4
#define NCHIP 3

/* ---- timer queue -------------------------------------------------------- */

START_TEST(tq_random_against_list) {
  enum { N = 64 };
  cl_tq q;
  cl_tq_init(&q);
  ck_assert_int_eq(cl_tq_reserve(&q, N), CL_OK);
  cl_tq_entry e[N];
  memset(e, 0, sizeof e);
  /* The reference: armed flag, due time, arming order. */
  int armed[N] = {0};
  uint64_t due[N], order[N], next_order = 0;
  uint32_t rng = 12345;
  uint64_t now = 0;
  for (int step = 0; step < 20000; step++) {
    rng = rng * 1103515245u + 12345u;
    int i = (int)((rng >> 8) % N);
    unsigned op = (rng >> 20) % 4;
    if (op == 0 || op == 1) {
      uint64_t d = now + (rng >> 4) % 50;
      cl_tq_arm(&q, &e[i], d);
      armed[i] = 1;
      due[i] = d;
      order[i] = next_order++;
    } else if (op == 2) {
      cl_tq_stop(&q, &e[i]);
      armed[i] = 0;
    } else {
      now += (rng >> 12) % 20;
      uint64_t mark = cl_tq_mark(&q);
      cl_tq_entry *got;
      while ((got = cl_tq_pop_due(&q, now, mark)) != NULL) {
        /* The earliest armed entry by (due, order), and it is due. */
        int best = -1;
        for (int k = 0; k < N; k++)
          if (armed[k] && (best < 0 || due[k] < due[best] ||
                           (due[k] == due[best] && order[k] < order[best])))
            best = k;
        ck_assert_int_ge(best, 0);
        ck_assert_ptr_eq(got, &e[best]);
        ck_assert(due[best] <= now);
        ck_assert(!cl_tq_armed(got));
        armed[best] = 0;
      }
      /* Nothing was armed during the pass: whatever is left is not due. */
      for (int k = 0; k < N; k++) ck_assert(!armed[k] || due[k] > now);
    }
    size_t n = 0;
    uint64_t min = UINT64_MAX;
    for (int k = 0; k < N; k++) {
      ck_assert_int_eq(cl_tq_armed(&e[k]), armed[k]);
      if (armed[k]) {
        n++;
        if (due[k] < min) min = due[k];
      }
    }
    ck_assert_uint_eq(cl_tq_count(&q), n);
    ck_assert_uint_eq(cl_tq_next_due(&q), min);
  }
  cl_tq_fini(&q);
}
END_TEST

START_TEST(tq_pass_skips_rearmed) {
  cl_tq q;
  cl_tq_init(&q);
  ck_assert_int_eq(cl_tq_reserve(&q, 2), CL_OK);
  cl_tq_entry a = {0}, b = {0};
  cl_tq_arm(&q, &a, 10);
  cl_tq_arm(&q, &b, 10);
  uint64_t mark = cl_tq_mark(&q);
  ck_assert_ptr_eq(cl_tq_pop_due(&q, 10, mark), &a);
  /* Re-armed for "now" during the pass: not popped by this pass. */
  cl_tq_arm(&q, &a, 10);
  ck_assert_ptr_eq(cl_tq_pop_due(&q, 10, mark), &b);
  ck_assert_ptr_null(cl_tq_pop_due(&q, 10, mark));
  ck_assert_ptr_eq(cl_tq_pop_due(&q, 10, cl_tq_mark(&q)), &a);
  ck_assert_ptr_null(cl_tq_pop_due(&q, 1000, cl_tq_mark(&q)));
  ck_assert_uint_eq(cl_tq_next_due(&q), UINT64_MAX);
  cl_tq_fini(&q);
}
END_TEST

/* ---- the core with a recording shell and real agents ---------------------- */

typedef struct {
  int conn; /* index of the test connection */
  cl_msg m;
  uint64_t t_sent;
} out_frame;

/* The agent's side of one chip on one connection. */
typedef struct {
  cl_chipsess s;
  uint8_t key[CL_SESSION_KEY_LEN];
  uint8_t confirm_sig[CL_SIG_LEN]; /* the chip_sig of its last Confirm */
} agent_chip;

typedef struct {
  cl_key *landmark, *other_landmark, *chip[NCHIP]; /* chips 0, 1 enrolled; 2 not */
  cl_lm_params p;
  cl_lm_io io;
  cl_lm *lm;
  int conn_ud[NCONN];
  cl_lm_conn *conn[NCONN];
  int closed[NCONN];
  agent_chip ag[NCONN][NCHIP];
  out_frame *out;
  size_t n_out;
  cl_lm_record rec[16];
  size_t n_rec;
  cl_lm_work *work; /* jobs handed out, in order */
  size_t n_work;
  int refuse_work;
  int fail_send_after; /* > 0: the send of that many more frames succeeds, the next fails */
  int fail_send_rc;    /* what that failing send returns; 0: CL_EIO */
  int drop_measurements;
  uint64_t stamp_offset; /* the shell's send stamp: now + this */
  uint64_t now;
  uint64_t rng;
  int n_accepted_events, n_expired_events, n_rejected_events;
} world;

#define MAX_WORK 256

static world W;

static int conn_of(void *ud) {
  for (int i = 0; i < NCONN; i++)
    if (ud == &W.conn_ud[i]) return i;
  ck_abort_msg("unknown connection handle");
  return -1;
}

static int io_send(void *ctx, void *ud, const uint8_t *buf, size_t len, uint64_t *t_sent) {
  (void)ctx;
  int ci = conn_of(ud);
  ck_assert(!W.closed[ci]);
  ck_assert_uint_lt(W.n_out, MAX_OUT);
  out_frame *f = &W.out[W.n_out++];
  f->conn = ci;
  ck_assert_uint_eq(cl_get_be32(buf), len - CL_FRAME_HDR_LEN);
  char err[160];
  ck_assert_int_eq(cl_msg_decode(buf + CL_FRAME_HDR_LEN, len - CL_FRAME_HDR_LEN, &f->m, err,
                                 sizeof err),
                   CL_OK);
  /* Only a challenge is timed. */
  ck_assert_int_eq(t_sent != NULL, f->m.type == CL_MSG_CHALLENGE);
  if (t_sent) *t_sent = f->t_sent = W.now + W.stamp_offset;
  if (W.fail_send_after > 0 && --W.fail_send_after == 0)
    return W.fail_send_rc ? W.fail_send_rc : CL_EIO;
  return CL_OK;
}

static void io_close(void *ctx, void *ud) {
  (void)ctx;
  int ci = conn_of(ud);
  ck_assert(!W.closed[ci]);
  W.closed[ci] = 1;
  W.conn[ci] = NULL;
}

static int io_measurement(void *ctx, const cl_lm_record *rec) {
  (void)ctx;
  if (W.drop_measurements) return CL_ENOMEM;
  ck_assert_uint_lt(W.n_rec, 16);
  W.rec[W.n_rec++] = *rec;
  return CL_OK;
}

static int io_work(void *ctx, const cl_lm_work *w) {
  (void)ctx;
  if (W.refuse_work) return CL_ENOMEM;
  ck_assert_uint_lt(W.n_work, MAX_WORK);
  W.work[W.n_work++] = *w;
  return CL_OK;
}

static void io_random(void *ctx, void *buf, size_t n) {
  (void)ctx;
  uint8_t seed[randombytes_SEEDBYTES] = {0};
  W.rng++;
  memcpy(seed, &W.rng, sizeof W.rng);
  randombytes_buf_deterministic(buf, n, seed);
}

static uint64_t io_unix_ns(void *ctx) {
  (void)ctx;
  return 1700000000000000000ull + W.now;
}

static void io_probe(void *ctx, const cl_lm_probe_event *e) {
  (void)ctx;
  if (e->expired)
    W.n_expired_events++;
  else if (e->result == CL_ACCEPT_OK)
    W.n_accepted_events++;
  else
    W.n_rejected_events++;
}

static void setup(void) {
  memset(&W, 0, sizeof W);
  cl_log_set_level(CL_LOG_ERROR);
  uint8_t seed[32];
  memset(seed, 0x11, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&W.landmark, seed), CL_OK);
  memset(seed, 0x12, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&W.other_landmark, seed), CL_OK);
  for (int k = 0; k < NCHIP; k++) {
    memset(seed, 0x21 + k, sizeof seed);
    ck_assert_int_eq(cl_key_from_seed(&W.chip[k], seed), CL_OK);
  }
  for (int ci = 0; ci < NCONN; ci++)
    for (int k = 0; k < NCHIP; k++) cl_chipsess_init(&W.ag[ci][k].s, W.ag[ci][k].key);
  W.out = calloc(MAX_OUT, sizeof *W.out);
  W.work = calloc(MAX_WORK, sizeof *W.work);
  ck_assert(W.out && W.work);
  W.p = (cl_lm_params){.interval_s = 60,
                       .jitter = 0.1,
                       .burst = 3,
                       .burst_gap_ms = 100,
                       .deadline_ms = 1000,
                       .speed_m_per_s = CL_SPEED_FIBRE,
                       .transcript_timeout_ms = 10000,
                       .session_lifetime_s = 3600,
                       .max_connections = 3,
                       .max_connections_per_address = 2,
                       .max_pending_challenges = 64,
                       .handshake_timeout_ms = 10000,
                       .idle_timeout_s = 300,
                       .max_frame_bytes = CL_FRAME_MAX,
                       .max_error_replies_per_s = 10};
  W.io = (cl_lm_io){.send = io_send,
                    .close = io_close,
                    .measurement = io_measurement,
                    .work = io_work,
                    .random = io_random,
                    .unix_ns = io_unix_ns,
                    .probe = io_probe};
  W.now = T0;
}

static void teardown(void) {
  cl_lm_destroy(&W.lm);
  cl_key_destroy(&W.landmark);
  cl_key_destroy(&W.other_landmark);
  for (int k = 0; k < NCHIP; k++) cl_key_destroy(&W.chip[k]);
  free(W.out);
  free(W.work);
}

/* Creates the core with W.p and enrols chips 0 and 1 (ids 100, 101). */
static void start(void) {
  ck_assert_int_eq(cl_lm_create(&W.lm, &W.p, W.landmark, &W.io, NULL), CL_OK);
  cl_lm_target *t = calloc(2, sizeof *t);
  for (int k = 0; k < 2; k++) {
    memcpy(t[k].pk, cl_key_public(W.chip[k]), CL_PK_LEN);
    t[k].id = 100 + k;
    t[k].active = 1;
  }
  cl_lm_set_enrolled(W.lm, t, 2, W.now);
}

static uint8_t g_addr[CL_PK_LEN] = {4, 127, 0, 0, 1};

static cl_lm_conn *open_conn(int ci) {
  W.conn[ci] = cl_lm_conn_open(W.lm, &W.conn_ud[ci], g_addr, "127.0.0.1:1", W.now);
  return W.conn[ci];
}

static const uint8_t *pk(int k) { return cl_key_public(W.chip[k]); }

static int chip_of(const uint8_t *p) {
  for (int k = 0; k < NCHIP; k++)
    if (memcmp(p, pk(k), CL_PK_LEN) == 0) return k;
  ck_abort_msg("unknown chip");
  return -1;
}

/* The last frame sent to connection ci, of the given type. */
static const out_frame *last_of(int ci, cl_msg_type type) {
  for (size_t i = W.n_out; i-- > 0;)
    if (W.out[i].conn == ci && W.out[i].m.type == type) return &W.out[i];
  return NULL;
}

static size_t count_of(int ci, cl_msg_type type) {
  size_t n = 0;
  for (size_t i = 0; i < W.n_out; i++) n += W.out[i].conn == ci && W.out[i].m.type == type;
  return n;
}

static const cl_lm_stats *stats(void) { return cl_lm_get_stats(W.lm); }

static void feed(int ci, const cl_msg *m) {
  static uint8_t buf[CL_FRAME_HDR_LEN + CL_FRAME_MAX];
  size_t len = 0;
  ck_assert_int_eq(cl_msg_encode(m, buf, sizeof buf, &len), CL_OK);
  cl_lm_conn_read(W.lm, W.conn[ci], buf, len, W.now);
}

/* Hands every queued job back, run or cancelled. */
static void finish_work(int cancel) {
  while (W.n_work > 0) {
    cl_lm_work w = W.work[0];
    memmove(W.work, W.work + 1, (W.n_work - 1) * sizeof *W.work);
    W.n_work--;
    if (!cancel) cl_lm_work_run(&w, W.landmark);
    cl_lm_work_done(W.lm, &w, cancel ? -1 : 0, W.now);
    /* The job's secrets do not outlive it. */
    static const uint8_t zero[CL_SESSION_KEY_LEN];
    ck_assert_mem_eq(w.key, zero, CL_SESSION_KEY_LEN);
    ck_assert_mem_eq(w.eph_sk, zero, CL_EPH_SK_LEN);
  }
}

/* A Register from connection ci offering chips ks[0..n), fresh offers from
 * each chip's agent side, in `suite`. */
static void offer_suite(int ci, const int *ks, size_t n, uint32_t suite) {
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER;
  snprintf(m.u.reg.agent, sizeof m.u.reg.agent, "agent%d", ci);
  m.u.reg.suite = suite;
  m.u.reg.n = n;
  for (size_t i = 0; i < n; i++)
    ck_assert_int_eq(cl_chipsess_offer(&W.ag[ci][ks[i]].s, CL_SUITE_ED25519_X25519,
                                       cl_key_public(W.landmark), pk(ks[i]), &m.u.reg.chips[i]),
                     CL_OK);
  feed(ci, &m);
}

static void offer(int ci, const int *ks, size_t n) {
  offer_suite(ci, ks, n, CL_SUITE_ED25519_X25519);
}

/* Chip k's entry in the last RegisterResult on ci. */
static const cl_chip_result *result_for(int ci, int k) {
  const out_frame *f = last_of(ci, CL_MSG_REGISTER_RESULT);
  ck_assert_ptr_nonnull(f);
  for (size_t i = 0; i < f->m.u.reg_result.n; i++)
    if (memcmp(f->m.u.reg_result.r[i].chip, pk(k), CL_PK_LEN) == 0) return &f->m.u.reg_result.r[i];
  ck_abort_msg("chip not in the RegisterResult");
  return NULL;
}

/* The agent side of chips ks[0..n) takes the last RegisterResult on ci
 * (checking the landmark's signature under its pinned key) and confirms;
 * chips in `corrupt` (a bit mask) send a damaged signature. */
static void confirm_some(int ci, const int *ks, size_t n, unsigned corrupt) {
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CONFIRM;
  m.u.confirm.n = n;
  for (size_t i = 0; i < n; i++) {
    int k = ks[i];
    const cl_chip_result *r = result_for(ci, k);
    ck_assert(r->accepted);
    cl_handshake hs;
    ck_assert_int_eq(cl_chipsess_accept(&W.ag[ci][k].s, r, &hs), CL_OK);
    ck_assert_int_eq(cl_hs_sign_chip(&hs, W.chip[k]), CL_OK);
    if (corrupt & (1u << k)) hs.chip_sig[5] ^= 1;
    cl_chipsess_confirmed(&W.ag[ci][k].s, hs.chip_sig);
    memcpy(W.ag[ci][k].confirm_sig, hs.chip_sig, CL_SIG_LEN);
    memcpy(m.u.confirm.chips[i].chip, pk(k), CL_PK_LEN);
    memcpy(m.u.confirm.chips[i].sig, hs.chip_sig, CL_SIG_LEN);
  }
  feed(ci, &m);
}

/* A Confirm of one chip with the given signature. */
static void confirm_with(int ci, int k, const uint8_t sig[CL_SIG_LEN]) {
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CONFIRM;
  m.u.confirm.n = 1;
  memcpy(m.u.confirm.chips[0].chip, pk(k), CL_PK_LEN);
  memcpy(m.u.confirm.chips[0].sig, sig, CL_SIG_LEN);
  feed(ci, &m);
}

/* The whole handshake of chips ks[0..n) on ci, jobs done as they come. */
static void establish(int ci, const int *ks, size_t n) {
  offer(ci, ks, n);
  finish_work(0);
  confirm_some(ci, ks, n, 0);
  finish_work(0);
  for (size_t i = 0; i < n; i++) ck_assert_int_eq(W.ag[ci][ks[i]].s.state, CL_CHIPSESS_ESTABLISHED);
}

/* Moves time to t and runs what came due. */
static void advance_to(uint64_t t) {
  W.now = t;
  cl_lm_run_timers(W.lm, W.now);
}

/* Runs timers until a challenge goes out on ci (at most one interval and a
 * bit). */
static const out_frame *next_challenge(int ci) {
  size_t before = count_of(ci, CL_MSG_CHALLENGE);
  for (int i = 0; i < 1000; i++) {
    uint64_t due = cl_lm_next_due(W.lm);
    ck_assert(due != UINT64_MAX);
    advance_to(due > W.now ? due : W.now);
    if (count_of(ci, CL_MSG_CHALLENGE) > before) return last_of(ci, CL_MSG_CHALLENGE);
  }
  ck_abort_msg("no challenge");
  return NULL;
}

/* A Response with this MAC. */
static void respond(int ci, int k, uint64_t seq, const uint8_t mac[CL_MAC_LEN]) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_RESPONSE;
  memcpy(m.u.response.chip, pk(k), CL_PK_LEN);
  m.u.response.seq = seq;
  memcpy(m.u.response.mac, mac, CL_MAC_LEN);
  feed(ci, &m);
}

/* Chip k's agent on ci answers a challenge under its session key. */
static void answer(int ci, int k, const out_frame *f) {
  uint8_t mac[CL_MAC_LEN];
  ck_assert_int_eq(cl_chipsess_answer(&W.ag[ci][k].s, f->m.u.challenge.seq,
                                      f->m.u.challenge.nonce, mac),
                   CL_OK);
  respond(ci, k, f->m.u.challenge.seq, mac);
}

/* One burst of chip k on ci answered at these RTTs (the shell's stamp plus
 * rtt); returns the BurstEnd. */
static const out_frame *burst_answered(int ci, int k, const uint64_t *rtt) {
  size_t ends = count_of(ci, CL_MSG_BURST_END);
  for (uint32_t j = 0; j < W.p.burst; j++) {
    const out_frame *f = next_challenge(ci);
    ck_assert_int_eq(chip_of(f->m.u.challenge.chip), k);
    W.now = f->t_sent + rtt[j];
    answer(ci, k, f);
  }
  ck_assert_uint_eq(count_of(ci, CL_MSG_BURST_END), ends + 1);
  const out_frame *e = last_of(ci, CL_MSG_BURST_END);
  ck_assert_int_eq(chip_of(e->m.u.burst_end.chip), k);
  return e;
}

typedef enum { TX_OK, TX_OMIT, TX_REORDER, TX_OTHER_KEY, TX_FIRST_SEQ } tx_mode;

/* The last BurstEnd on ci for chip k. */
static const out_frame *last_burst_end(int ci, int k) {
  for (size_t i = W.n_out; i-- > 0;)
    if (W.out[i].conn == ci && W.out[i].m.type == CL_MSG_BURST_END &&
        memcmp(W.out[i].m.u.burst_end.chip, pk(k), CL_PK_LEN) == 0)
      return &W.out[i];
  return NULL;
}

/* Chip k's agent on ci signs the transcript of its last BurstEnd on ci, or
 * a damaged one, and sends it. */
static void transcript(int ci, int k, tx_mode mode) {
  const out_frame *e = last_burst_end(ci, k);
  ck_assert_ptr_nonnull(e);
  cl_probe_entry ent[CL_MAX_BURST];
  size_t n = e->m.u.burst_end.n;
  const cl_chipsess *s = &W.ag[ci][k].s;
  ck_assert_int_eq(cl_chipsess_transcript(s, e->m.u.burst_end.seqs, n, ent), CL_OK);
  const cl_key *signer = W.chip[k];
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_TRANSCRIPT;
  memcpy(m.u.transcript.chip, pk(k), CL_PK_LEN);
  m.u.transcript.first_seq = ent[0].seq;
  switch (mode) {
  case TX_OK: break;
  case TX_OMIT: n--; break; /* the last probe left out */
  case TX_REORDER: { /* the first two swapped; first_seq still the burst's */
    cl_probe_entry t = ent[0];
    ent[0] = ent[1];
    ent[1] = t;
    break;
  }
  case TX_OTHER_KEY: signer = W.chip[1 - k]; break;
  case TX_FIRST_SEQ: m.u.transcript.first_seq = ent[0].seq + 1000; break;
  }
  /* Over this chip's session, whoever signs. */
  ck_assert_int_eq(cl_transcript_sign(&s->hs, ent, n, signer, m.u.transcript.sig), CL_OK);
  feed(ci, &m);
}

START_TEST(handshake_burst_transcript_record) {
  start();
  ck_assert_ptr_nonnull(open_conn(0));
  const out_frame *hello = last_of(0, CL_MSG_HELLO);
  ck_assert_ptr_nonnull(hello);
  ck_assert_mem_eq(hello->m.u.hello.landmark, cl_key_public(W.landmark), CL_PK_LEN);
  ck_assert_uint_eq(hello->m.u.hello.suite, CL_SUITE_ED25519_X25519);
  static const int zero[] = {0};
  offer(0, zero, 1);
  /* The RegisterResult carries the landmark's half, signed: the agent's
   * check under the pinned key passes in confirm_some. */
  const cl_chip_result *r = result_for(0, 0);
  ck_assert(r->accepted);
  ck_assert_int_eq(r->reason, CL_REFUSE_NONE);
  /* Offered, not yet confirmed: not active, not probed. */
  ck_assert(!cl_lm_conn_registered(W.conn[0]));
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 0);
  confirm_some(0, zero, 1, 0);
  ck_assert(cl_lm_conn_registered(W.conn[0]));
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  ck_assert_uint_eq(stats()->handshakes_ok, 1);
  ck_assert_uint_eq(stats()->chips_registered, 1);
  /* The shell's stamp, not the core's clock, starts the RTT. */
  W.stamp_offset = 7 * MS;
  uint64_t rtts[3] = {30 * MS, 12 * MS, 20 * MS};
  const out_frame *first = next_challenge(0);
  /* The first burst starts within one interval of the session. */
  ck_assert_uint_le(W.now, T0 + 60000 * MS);
  uint64_t seq0 = first->m.u.challenge.seq;
  W.now = first->t_sent + rtts[0];
  answer(0, 0, first);
  const uint64_t rest[2] = {rtts[1], rtts[2]};
  for (int j = 0; j < 2; j++) {
    const out_frame *f = next_challenge(0);
    /* Fresh nonce and the next seq of this landmark. */
    ck_assert_uint_eq(f->m.u.challenge.seq, seq0 + 1 + (uint64_t)j);
    ck_assert(memcmp(f->m.u.challenge.nonce, first->m.u.challenge.nonce, CL_NONCE_LEN) != 0);
    W.now = f->t_sent + rest[j];
    answer(0, 0, f);
  }
  ck_assert_uint_eq(stats()->probes_sent, 3);
  ck_assert_uint_eq(stats()->responses_accepted, 3);
  ck_assert_int_eq(W.n_accepted_events, 3);
  ck_assert_uint_eq(stats()->rtt.total, 3);
  /* Each challenge went out at its timer's due time; the lag is exactly the
   * shell's stamp past it. */
  ck_assert_uint_eq(stats()->lag.total, 3);
  ck_assert_double_eq_tol(stats()->lag.sum, 3 * 0.007, 1e-12);
  /* The burst asks for its transcript: every accepted seq, in order. No
   * record before the chip has signed it. */
  const out_frame *e = last_of(0, CL_MSG_BURST_END);
  ck_assert_ptr_nonnull(e);
  ck_assert_uint_eq(e->m.u.burst_end.n, 3);
  for (int j = 0; j < 3; j++) ck_assert_uint_eq(e->m.u.burst_end.seqs[j], seq0 + (uint64_t)j);
  ck_assert_uint_eq(W.n_rec, 0);
  uint64_t end = W.now;
  W.now += 50 * MS;
  transcript(0, 0, TX_OK);
  ck_assert_uint_eq(stats()->transcripts_ok, 1);
  ck_assert_uint_eq(W.n_rec, 1);
  const cl_lm_record *rec = &W.rec[0];
  /* Everything in it re-verifies offline: both handshake signatures, the
   * chip's transcript signature, the landmark's record signature. */
  ck_assert_int_eq(cl_measurement_verify(&rec->m), CL_OK);
  ck_assert_int_eq(cl_measurement_verify_chip(&rec->m), CL_OK);
  ck_assert_int_eq(cl_measurement_verify_landmark(&rec->m), CL_OK);
  ck_assert_mem_eq(rec->m.hs.chip, pk(0), CL_PK_LEN);
  ck_assert_mem_eq(rec->m.hs.landmark, cl_key_public(W.landmark), CL_PK_LEN);
  ck_assert_mem_eq(rec->m.hs.chip_sig, W.ag[0][0].confirm_sig, CL_SIG_LEN);
  uint8_t sid_rec[CL_SESSION_ID_LEN], sid_chip[CL_SESSION_ID_LEN];
  cl_session_id(&rec->m.hs, sid_rec);
  cl_session_id(&W.ag[0][0].s.hs, sid_chip);
  ck_assert_mem_eq(sid_rec, sid_chip, CL_SESSION_ID_LEN);
  ck_assert_uint_eq(rec->m.count, 3);
  ck_assert_uint_eq(rec->m.probes[0].seq, seq0);
  ck_assert_uint_eq(rec->m.probes[1].rtt_ns, 12 * MS);
  ck_assert_uint_eq(rec->m.rtt_ns, 12 * MS);
  ck_assert_uint_eq(rec->m.probes_sent, 3);
  ck_assert_uint_eq(rec->probes_sent, 3);
  /* Measured when the burst ended, not when the transcript came. */
  ck_assert_uint_eq(rec->m.measured_unix_ns, io_unix_ns(NULL) - 50 * MS);
  ck_assert_int_eq(rec->chip_id, 100);
  ck_assert_uint_eq(rec->bound_m, cl_bound_m(12 * MS, CL_SPEED_C));
  ck_assert_uint_eq(rec->est_bound_m, cl_bound_m(12 * MS, CL_SPEED_FIBRE));
  ck_assert_int_eq(rec->is_link, 0);
  ck_assert_uint_eq(stats()->measurements, 1);
  /* The next burst is one jittered interval after the last one ended. */
  const out_frame *f = next_challenge(0);
  ck_assert_uint_ge(f->t_sent, end + 54000 * MS);
  ck_assert_uint_le(f->t_sent, end + 66000 * MS + 7 * MS);
  ck_assert(!W.closed[0]);
}
END_TEST

START_TEST(partial_burst_and_empty_burst) {
  start();
  open_conn(0);
  static const int zero[] = {0};
  establish(0, zero, 1);
  /* Only the second probe is answered: the BurstEnd names it alone, the
   * record holds one probe of three sent. */
  const out_frame *f = next_challenge(0);
  uint64_t seq0 = f->m.u.challenge.seq;
  f = next_challenge(0);
  W.now = f->t_sent + 4 * MS;
  answer(0, 0, f);
  f = next_challenge(0);
  advance_to(f->t_sent + 1000 * MS); /* the third expires */
  const out_frame *e = last_of(0, CL_MSG_BURST_END);
  ck_assert_ptr_nonnull(e);
  ck_assert_uint_eq(e->m.u.burst_end.n, 1);
  ck_assert_uint_eq(e->m.u.burst_end.seqs[0], seq0 + 1);
  transcript(0, 0, TX_OK);
  ck_assert_uint_eq(W.n_rec, 1);
  ck_assert_int_eq(cl_measurement_verify(&W.rec[0].m), CL_OK);
  ck_assert_uint_eq(W.rec[0].m.count, 1);
  ck_assert_uint_eq(W.rec[0].m.probes_sent, 3);
  ck_assert_uint_eq(W.rec[0].probes_sent, 3);
  ck_assert_uint_eq(stats()->probe_timeouts, 2);
  /* A burst nobody answers: no BurstEnd, no record. */
  for (int j = 0; j < 3; j++) {
    f = next_challenge(0);
    advance_to(f->t_sent + 1000 * MS);
  }
  ck_assert_uint_eq(count_of(0, CL_MSG_BURST_END), 1);
  ck_assert_uint_eq(stats()->bursts_empty, 1);
  ck_assert_uint_eq(W.n_rec, 1);
}
END_TEST

START_TEST(registration_refusals) {
  start();
  open_conn(0);
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER;
  m.u.reg.suite = CL_SUITE_ED25519_X25519;
  m.u.reg.n = 4;
  int ks[4] = {0, 0, 1, 2};
  for (int i = 0; i < 4; i++)
    cl_chipsess_offer(&W.ag[0][ks[i]].s, CL_SUITE_ED25519_X25519, cl_key_public(W.landmark),
                      pk(ks[i]), &m.u.reg.chips[i]);
  /* Chip 0 offers an ephemeral key of small order (all zero): no session
   * key can come of it. Its second offer is a duplicate. */
  memset(m.u.reg.chips[0].eph, 0, CL_EPH_LEN);
  /* Chip 1 deactivated before it registers. */
  cl_lm_target *t = calloc(2, sizeof *t);
  for (int k = 0; k < 2; k++) {
    memcpy(t[k].pk, pk(k), CL_PK_LEN);
    t[k].id = 100 + k;
    t[k].active = k == 0;
  }
  cl_lm_set_enrolled(W.lm, t, 2, W.now);
  feed(0, &m);
  const out_frame *res = last_of(0, CL_MSG_REGISTER_RESULT);
  ck_assert_ptr_nonnull(res);
  ck_assert_uint_eq(res->m.u.reg_result.n, 4);
  ck_assert_int_eq(res->m.u.reg_result.r[0].reason, CL_REFUSE_BAD_PROOF);
  ck_assert_int_eq(res->m.u.reg_result.r[1].reason, CL_REFUSE_DUPLICATE);
  ck_assert_int_eq(res->m.u.reg_result.r[2].reason, CL_REFUSE_INACTIVE);
  ck_assert_int_eq(res->m.u.reg_result.r[3].reason, CL_REFUSE_NOT_ENROLLED);
  for (int i = 0; i < 4; i++) ck_assert(!res->m.u.reg_result.r[i].accepted);
  ck_assert_uint_eq(stats()->handshake_refused[CL_REFUSE_BAD_PROOF], 1);
  ck_assert_uint_eq(stats()->handshake_refused[CL_REFUSE_DUPLICATE], 1);
  ck_assert_uint_eq(stats()->handshake_refused[CL_REFUSE_INACTIVE], 1);
  ck_assert_uint_eq(stats()->handshake_refused[CL_REFUSE_NOT_ENROLLED], 1);
  /* Nothing accepted: the connection is closed. */
  ck_assert(W.closed[0]);
  ck_assert_uint_eq(cl_lm_conn_count(W.lm), 0);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 0);
}
END_TEST

START_TEST(unknown_suite_and_v1_envelope) {
  start();
  open_conn(0);
  static const int zero[] = {0};
  offer_suite(0, zero, 1, 7);
  ck_assert(W.closed[0]);
  const out_frame *e = last_of(0, CL_MSG_ERROR);
  ck_assert_ptr_nonnull(e);
  ck_assert_int_eq(e->m.u.error.code, CL_ERR_SUITE);
  ck_assert_str_eq(e->m.u.error.text,
                   "cipher suite 7 is unknown; this landmark speaks 1 (ed25519-x25519-blake2b)");
  ck_assert_uint_eq(stats()->suite_refused, 1);
  ck_assert_uint_eq(count_of(0, CL_MSG_REGISTER_RESULT), 0);
  /* A protocol-1 envelope: a version error, and the connection closes. */
  open_conn(1);
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_ERROR;
  m.u.error.code = CL_ERR_MALFORMED;
  snprintf(m.u.error.text, sizeof m.u.error.text, "hello from v1");
  uint8_t buf[512];
  size_t len = 0;
  ck_assert_int_eq(cl_msg_encode_version(&m, 1, buf, sizeof buf, &len), CL_OK);
  cl_lm_conn_read(W.lm, W.conn[1], buf, len, W.now);
  ck_assert(W.closed[1]);
  e = last_of(1, CL_MSG_ERROR);
  ck_assert_int_eq(e->m.u.error.code, CL_ERR_VERSION);
  ck_assert_str_eq(e->m.u.error.text, "protocol version 1, this side speaks 2");
  ck_assert_uint_eq(stats()->version_mismatch, 1);
}
END_TEST

/*
 * Chip k's agent side in a session with another landmark (its handshake
 * made here with that landmark's key): what a relay between two landmarks
 * would hold.
 */
static void foreign_session(cl_chipsess *s, uint8_t *slot, int k) {
  cl_chipsess_init(s, slot);
  cl_chip_offer o;
  ck_assert_int_eq(cl_chipsess_offer(s, CL_SUITE_ED25519_X25519, cl_key_public(W.other_landmark),
                                     pk(k), &o),
                   CL_OK);
  cl_handshake hs = s->hs;
  uint8_t sk[CL_EPH_SK_LEN], key[CL_SESSION_KEY_LEN];
  cl_eph_generate(hs.landmark_eph, sk);
  randombytes_buf(hs.landmark_nonce, CL_NONCE_LEN);
  ck_assert_int_eq(cl_hs_sign_landmark(&hs, W.other_landmark), CL_OK);
  ck_assert_int_eq(cl_session_key(&hs, CL_SIDE_LANDMARK, sk, key), CL_OK);
  cl_chip_result r;
  memset(&r, 0, sizeof r);
  memcpy(r.chip, pk(k), CL_PK_LEN);
  r.accepted = 1;
  memcpy(r.eph, hs.landmark_eph, CL_EPH_LEN);
  memcpy(r.nonce, hs.landmark_nonce, CL_NONCE_LEN);
  memcpy(r.sig, hs.landmark_sig, CL_SIG_LEN);
  cl_handshake mine;
  ck_assert_int_eq(cl_chipsess_accept(s, &r, &mine), CL_OK);
}

START_TEST(every_rejection_reason) {
  start();
  open_conn(0);
  static const int both[] = {0, 1};
  establish(0, both, 2);
  const out_frame *f = next_challenge(0);
  int k = chip_of(f->m.u.challenge.chip);
  uint64_t seq = f->m.u.challenge.seq;
  W.now += 5 * MS;
  /* A seq never issued to this chip. */
  uint8_t mac[CL_MAC_LEN];
  cl_chipsess_answer(&W.ag[0][k].s, seq + 100, f->m.u.challenge.nonce, mac);
  respond(0, k, seq + 100, mac);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_UNKNOWN_PROBE], 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_UNKNOWN_PROBE);
  /* The other chip's seq: not one issued to the chip answering. */
  cl_chipsess_answer(&W.ag[0][1 - k].s, seq, f->m.u.challenge.nonce, mac);
  respond(0, 1 - k, seq, mac);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_UNKNOWN_PROBE], 2);
  /* The right seq and nonce, but a MAC under another session's key (the
   * other chip's, on this very connection): the probe is used up. */
  cl_answer_mac(W.ag[0][1 - k].key, CL_SUITE_ED25519_X25519, cl_key_public(W.landmark), pk(k),
                seq, f->m.u.challenge.nonce, mac);
  respond(0, k, seq, mac);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_BAD_MAC], 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_BAD_MAC);
  /* Its genuine answer now comes too late: the probe has expired. */
  answer(0, k, f);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_LATE], 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_LATE);
  /* A MAC from the chip's session with another landmark (a relay). */
  f = next_challenge(0);
  k = chip_of(f->m.u.challenge.chip);
  cl_chipsess foreign;
  uint8_t fkey[CL_SESSION_KEY_LEN];
  foreign_session(&foreign, fkey, k);
  ck_assert_int_eq(
      cl_chipsess_answer(&foreign, f->m.u.challenge.seq, f->m.u.challenge.nonce, mac), CL_OK);
  W.now += MS;
  respond(0, k, f->m.u.challenge.seq, mac);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_BAD_MAC], 2);
  cl_chipsess_end(&foreign);
  /* Answered once properly on the next probe, then again: a replay. */
  f = next_challenge(0);
  k = chip_of(f->m.u.challenge.chip);
  W.now += 3 * MS;
  answer(0, k, f);
  answer(0, k, f);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_REPLAY], 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_REPLAY);
  /* A probe left unanswered expires at its deadline; its answer is late. */
  f = next_challenge(0);
  k = chip_of(f->m.u.challenge.chip);
  uint64_t deadline = f->t_sent + 1000 * MS;
  advance_to(deadline - 1);
  ck_assert_uint_eq(stats()->probe_timeouts, 0);
  advance_to(deadline);
  ck_assert_uint_eq(stats()->probe_timeouts, 1);
  answer(0, k, f);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_LATE], 2);
  ck_assert_int_eq(W.n_expired_events, 1);
  /* A chip that is not registered on this connection. */
  uint8_t zero_mac[CL_MAC_LEN] = {0};
  respond(0, 2, 1, zero_mac);
  ck_assert_uint_eq(stats()->rejected_not_registered, 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_NOT_REGISTERED);
  /* None of these closes the connection. */
  ck_assert(!W.closed[0]);
  ck_assert_uint_eq(stats()->responses_accepted, 1);
  /* unknown x2, bad MAC x2, late x2, replay */
  ck_assert_int_eq(W.n_rejected_events, 7);
}
END_TEST

START_TEST(bad_confirm_signature) {
  start();
  open_conn(0);
  static const int both[] = {0, 1}, zero[] = {0};
  offer(0, both, 2);
  /* Chip 0's signature is damaged, chip 1's good: chip 0 is dropped with
   * an Error naming it, chip 1 goes on, and so does the connection. */
  confirm_some(0, both, 2, 1u << 0);
  ck_assert_uint_eq(stats()->bad_handshake_sigs, 1);
  ck_assert_uint_eq(stats()->handshakes_ok, 1);
  const out_frame *e = last_of(0, CL_MSG_ERROR);
  ck_assert_ptr_nonnull(e);
  ck_assert_int_eq(e->m.u.error.code, CL_ERR_BAD_HANDSHAKE);
  char want[128], hex[17];
  cl_hex_encode(hex, pk(0), 8);
  snprintf(want, sizeof want, "chip %s: handshake signature does not verify", hex);
  ck_assert_str_eq(e->m.u.error.text, want);
  ck_assert(!W.closed[0]);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  const out_frame *f = next_challenge(0);
  ck_assert_int_eq(chip_of(f->m.u.challenge.chip), 1);
  /* A lone chip with a bad signature: nothing is left, the connection
   * closes. */
  open_conn(1);
  offer(1, zero, 1);
  confirm_some(1, zero, 1, 1u << 0);
  ck_assert_uint_eq(stats()->bad_handshake_sigs, 2);
  ck_assert(W.closed[1]);
  ck_assert_int_eq(last_of(1, CL_MSG_ERROR)->m.u.error.code, CL_ERR_BAD_HANDSHAKE);
}
END_TEST

START_TEST(replayed_confirm) {
  start();
  open_conn(0);
  static const int zero[] = {0};
  establish(0, zero, 1);
  uint8_t old_sig[CL_SIG_LEN];
  memcpy(old_sig, W.ag[0][0].confirm_sig, CL_SIG_LEN);
  /* The same Confirm again: no handshake awaits one; refused with an
   * Error, the session stands. */
  confirm_with(0, 0, old_sig);
  ck_assert_uint_eq(stats()->confirms_unexpected, 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_NOT_REGISTERED);
  ck_assert(!W.closed[0]);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  /* Someone replays it on a new connection with a fresh offer for the chip
   * (which it cannot sign): it does not verify over the new handshake.
   * The chip stays where its real session is. */
  open_conn(1);
  offer(1, zero, 1);
  ck_assert(result_for(1, 0)->accepted);
  confirm_with(1, 0, old_sig);
  ck_assert_uint_eq(stats()->bad_handshake_sigs, 1);
  ck_assert(W.closed[1]);
  ck_assert(!W.closed[0]);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  const out_frame *f = next_challenge(0);
  ck_assert_int_eq(chip_of(f->m.u.challenge.chip), 0);
  /* And in a rekey of the real connection: the old Confirm does not
   * verify over the new handshake either; the chip is dropped. */
  W.now = f->t_sent + MS;
  answer(0, 0, f);
  cl_lm_destroy(&W.lm);
  memset(W.closed, 0, sizeof W.closed);
  W.p.session_lifetime_s = 60;
  W.p.interval_s = 100;
  start();
  open_conn(0);
  establish(0, zero, 1);
  memcpy(old_sig, W.ag[0][0].confirm_sig, CL_SIG_LEN);
  while (count_of(0, CL_MSG_REKEY) == 0) advance_to(cl_lm_next_due(W.lm));
  offer(0, zero, 1);
  ck_assert(result_for(0, 0)->accepted);
  confirm_with(0, 0, old_sig);
  ck_assert_uint_eq(stats()->bad_handshake_sigs, 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_BAD_HANDSHAKE);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 0);
  ck_assert(W.closed[0]);
}
END_TEST

START_TEST(handshake_not_completed) {
  start();
  open_conn(0);
  static const int both[] = {0, 1}, one[] = {1};
  offer(0, both, 2);
  /* Only chip 1 confirms; chip 0's handshake runs out of time and it is
   * dropped with an Error naming it; the connection stays for chip 1. */
  W.now += 2000 * MS;
  const out_frame *res = last_of(0, CL_MSG_REGISTER_RESULT);
  (void)res;
  cl_handshake hs;
  ck_assert_int_eq(cl_chipsess_accept(&W.ag[0][0].s, result_for(0, 0), &hs), CL_OK);
  confirm_some(0, one, 1, 0);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  advance_to(T0 + 10000 * MS - 1);
  ck_assert_ptr_null(last_of(0, CL_MSG_ERROR));
  advance_to(T0 + 10000 * MS);
  const out_frame *e = last_of(0, CL_MSG_ERROR);
  ck_assert_ptr_nonnull(e);
  ck_assert_int_eq(e->m.u.error.code, CL_ERR_LIMIT);
  char want[96], hex[17];
  cl_hex_encode(hex, pk(0), 8);
  snprintf(want, sizeof want, "chip %s: handshake not completed", hex);
  ck_assert_str_eq(e->m.u.error.text, want);
  ck_assert_uint_eq(stats()->handshake_timeouts, 1);
  ck_assert(!W.closed[0]);
  /* Its late Confirm finds no handshake. */
  ck_assert_int_eq(cl_hs_sign_chip(&hs, W.chip[0]), CL_OK);
  confirm_with(0, 0, hs.chip_sig);
  ck_assert_uint_eq(stats()->confirms_unexpected, 1);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
}
END_TEST

START_TEST(transcript_refusals) {
  start();
  open_conn(0);
  static const int zero[] = {0};
  establish(0, zero, 1);
  const uint64_t rtt[3] = {5 * MS, 6 * MS, 7 * MS};
  char hex[17], want[96];
  cl_hex_encode(hex, pk(0), 8);
  snprintf(want, sizeof want, "chip %s: transcript signature does not verify", hex);
  /* One that omits a probe, one that reorders two, one signed by another
   * chip's key: each verified against the landmark's own record of the
   * burst, each refused; the burst is dropped, the session goes on. */
  static const tx_mode bad[] = {TX_OMIT, TX_REORDER, TX_OTHER_KEY};
  for (size_t i = 0; i < 3; i++) {
    burst_answered(0, 0, rtt);
    transcript(0, 0, bad[i]);
    ck_assert_uint_eq(stats()->transcripts_bad, i + 1);
    const out_frame *e = last_of(0, CL_MSG_ERROR);
    ck_assert_int_eq(e->m.u.error.code, CL_ERR_BAD_TRANSCRIPT);
    ck_assert_str_eq(e->m.u.error.text, want);
    ck_assert_uint_eq(W.n_rec, 0);
    ck_assert(!W.closed[0]);
  }
  /* One naming another burst (its first seq): refused without a check. */
  burst_answered(0, 0, rtt);
  transcript(0, 0, TX_FIRST_SEQ);
  ck_assert_uint_eq(stats()->transcripts_bad, 4);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_BAD_TRANSCRIPT);
  /* The burst it named is gone: its real transcript now finds none. */
  transcript(0, 0, TX_OK);
  ck_assert_uint_eq(stats()->transcripts_bad, 5);
  ck_assert_uint_eq(W.n_rec, 0);
  /* One that never comes: dropped at the transcript deadline, and a late
   * one finds no burst. */
  burst_answered(0, 0, rtt);
  uint64_t end = W.now;
  advance_to(end + 10000 * MS - 1);
  ck_assert_uint_eq(stats()->transcript_timeouts, 0);
  advance_to(end + 10000 * MS);
  ck_assert_uint_eq(stats()->transcript_timeouts, 1);
  transcript(0, 0, TX_OK);
  ck_assert_uint_eq(stats()->transcripts_bad, 6);
  ck_assert_uint_eq(W.n_rec, 0);
  /* The session is intact: the next burst makes a record. */
  burst_answered(0, 0, rtt);
  transcript(0, 0, TX_OK);
  ck_assert_uint_eq(W.n_rec, 1);
  ck_assert_int_eq(cl_measurement_verify(&W.rec[0].m), CL_OK);
  ck_assert_uint_eq(stats()->transcripts_ok, 1);
  ck_assert(!W.closed[0]);
  /* A transcript for a chip not on this connection. */
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_TRANSCRIPT;
  memcpy(m.u.transcript.chip, pk(1), CL_PK_LEN);
  feed(0, &m);
  ck_assert_uint_eq(stats()->rejected_not_registered, 1);
}
END_TEST

START_TEST(rekey_completes) {
  W.p.session_lifetime_s = 60;
  W.p.interval_s = 100;
  start();
  open_conn(0);
  static const int both[] = {0, 1}, zero[] = {0};
  establish(0, both, 2);
  /* A burst after the session is 60 s old is replaced by a Rekey. Chip 1's
   * bursts are answered meanwhile. */
  while (count_of(0, CL_MSG_REKEY) == 0) {
    size_t before = count_of(0, CL_MSG_CHALLENGE);
    advance_to(cl_lm_next_due(W.lm));
    if (count_of(0, CL_MSG_CHALLENGE) > before) {
      const out_frame *f = last_of(0, CL_MSG_CHALLENGE);
      int k = chip_of(f->m.u.challenge.chip);
      W.now = f->t_sent + MS;
      answer(0, k, f);
    }
  }
  const out_frame *rk = last_of(0, CL_MSG_REKEY);
  int k = chip_of(rk->m.u.rekey.chip);
  ck_assert_uint_ge(W.now, T0 + 60000 * MS);
  ck_assert_uint_eq(stats()->rekeys_asked, 1);
  uint8_t old_key[CL_SESSION_KEY_LEN];
  memcpy(old_key, W.ag[0][k].key, CL_SESSION_KEY_LEN);
  /* Fresh offers: the chip asked, and the other chip, not asked. */
  const int ks[2] = {k, 1 - k};
  offer(0, ks, 2);
  ck_assert(result_for(0, k)->accepted);
  ck_assert(!result_for(0, 1 - k)->accepted);
  ck_assert_int_eq(result_for(0, 1 - k)->reason, CL_REFUSE_NOT_ASKED);
  ck_assert_uint_eq(stats()->handshake_refused[CL_REFUSE_NOT_ASKED], 1);
  ck_assert(!W.closed[0]);
  const int only[1] = {k};
  confirm_some(0, only, 1, 0);
  ck_assert_uint_eq(stats()->rekeys_done, 1);
  ck_assert_uint_eq(stats()->handshakes_ok, 3);
  ck_assert(memcmp(old_key, W.ag[0][k].key, CL_SESSION_KEY_LEN) != 0);
  /* The burst the rekey put off runs now, under the new key: an answer
   * under the old key is a bad MAC, under the new one it counts. */
  const out_frame *f = next_challenge(0);
  ck_assert_int_eq(chip_of(f->m.u.challenge.chip), k);
  uint8_t mac[CL_MAC_LEN];
  cl_answer_mac(old_key, CL_SUITE_ED25519_X25519, cl_key_public(W.landmark), pk(k),
                f->m.u.challenge.seq, f->m.u.challenge.nonce, mac);
  W.now = f->t_sent + 2 * MS;
  respond(0, k, f->m.u.challenge.seq, mac);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_BAD_MAC], 1);
  size_t recs = W.n_rec;
  for (int j = 0; j < 2; j++) {
    f = next_challenge(0);
    if (chip_of(f->m.u.challenge.chip) != k) {
      j--;
      continue;
    }
    W.now = f->t_sent + 2 * MS;
    answer(0, k, f);
  }
  transcript(0, k, TX_OK);
  ck_assert_uint_eq(W.n_rec, recs + 1);
  const cl_lm_record *rec = &W.rec[W.n_rec - 1];
  ck_assert_int_eq(cl_measurement_verify(&rec->m), CL_OK);
  ck_assert_uint_eq(rec->m.count, 2);
  ck_assert_uint_eq(rec->m.probes_sent, 3);
  /* The record names the new session. */
  uint8_t sid_rec[CL_SESSION_ID_LEN], sid_chip[CL_SESSION_ID_LEN];
  cl_session_id(&rec->m.hs, sid_rec);
  cl_session_id(&W.ag[0][k].s.hs, sid_chip);
  ck_assert_mem_eq(sid_rec, sid_chip, CL_SESSION_ID_LEN);
  /* A Register for a chip not asked, outside any rekey: refused, the
   * connection stays. */
  offer(0, zero, 1);
  ck_assert_int_eq(result_for(0, 0)->reason, CL_REFUSE_NOT_ASKED);
  ck_assert(!W.closed[0]);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 2);
}
END_TEST

START_TEST(rekey_not_completed) {
  W.p.session_lifetime_s = 60;
  W.p.interval_s = 100;
  start();
  open_conn(0);
  static const int zero[] = {0};
  establish(0, zero, 1);
  while (count_of(0, CL_MSG_REKEY) == 0) {
    size_t before = count_of(0, CL_MSG_CHALLENGE);
    advance_to(cl_lm_next_due(W.lm));
    if (count_of(0, CL_MSG_CHALLENGE) > before) {
      const out_frame *f = last_of(0, CL_MSG_CHALLENGE);
      W.now = f->t_sent + MS;
      answer(0, 0, f);
    }
  }
  uint64_t asked = W.now;
  size_t challenges = count_of(0, CL_MSG_CHALLENGE);
  /* No offer comes: no burst meanwhile, and at the handshake timeout the
   * chip is dropped with an Error naming it; nothing is left, so the
   * connection closes. */
  advance_to(asked + 10000 * MS - 1);
  ck_assert(!W.closed[0]);
  ck_assert_uint_eq(count_of(0, CL_MSG_CHALLENGE), challenges);
  advance_to(asked + 10000 * MS);
  const out_frame *e = last_of(0, CL_MSG_ERROR);
  ck_assert_ptr_nonnull(e);
  ck_assert_int_eq(e->m.u.error.code, CL_ERR_LIMIT);
  char want[96], hex[17];
  cl_hex_encode(hex, pk(0), 8);
  snprintf(want, sizeof want, "chip %s: rekey not completed", hex);
  ck_assert_str_eq(e->m.u.error.text, want);
  ck_assert_uint_eq(stats()->rekeys_failed, 1);
  ck_assert_uint_eq(stats()->rekeys_done, 0);
  ck_assert(W.closed[0]);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 0);
}
END_TEST

START_TEST(frame_errors_close) {
  start();
  open_conn(0);
  /* Over the limit before registration. */
  uint8_t hdr[CL_FRAME_HDR_LEN];
  cl_frame_put_header(hdr, CL_FRAME_MAX_UNREGISTERED + 1);
  cl_lm_conn_read(W.lm, W.conn[0], hdr, sizeof hdr, W.now);
  ck_assert(W.closed[0]);
  ck_assert_uint_eq(stats()->frames_too_large, 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_TOO_LARGE);
  /* A message not allowed in this state: a Response, a Confirm or a
   * Transcript before Register. */
  static const cl_msg_type early[] = {CL_MSG_RESPONSE, CL_MSG_CONFIRM, CL_MSG_TRANSCRIPT};
  for (int i = 0; i < 3; i++) {
    memset(W.closed, 0, sizeof W.closed);
    open_conn(1);
    cl_msg m;
    memset(&m, 0, sizeof m);
    m.type = early[i];
    if (m.type == CL_MSG_CONFIRM) m.u.confirm.n = 1;
    feed(1, &m);
    ck_assert(W.closed[1]);
    ck_assert_uint_eq(stats()->unexpected_msg, (uint64_t)i + 1);
    ck_assert_int_eq(last_of(1, CL_MSG_ERROR)->m.u.error.code, CL_ERR_UNEXPECTED);
  }
  /* A Response after the RegisterResult but before any Confirm verified. */
  memset(W.closed, 0, sizeof W.closed);
  open_conn(1);
  static const int zero[] = {0};
  offer(1, zero, 1);
  uint8_t mac[CL_MAC_LEN] = {0};
  respond(1, 0, 1, mac);
  ck_assert(W.closed[1]);
  ck_assert_uint_eq(stats()->unexpected_msg, 4);
  /* Garbage. */
  open_conn(2);
  cl_lm_conn_read(W.lm, W.conn[2], (const uint8_t *)"\0\0\0\x03xyz", 7, W.now);
  ck_assert(W.closed[2]);
  ck_assert_uint_eq(stats()->frames_malformed, 1);
  ck_assert_uint_eq(cl_lm_conn_count(W.lm), 0);
}
END_TEST

START_TEST(limits_and_timeouts) {
  start();
  ck_assert_ptr_nonnull(open_conn(0));
  ck_assert_ptr_nonnull(open_conn(1));
  /* A third connection from the same address. */
  ck_assert_ptr_null(open_conn(2));
  ck_assert(W.closed[2]);
  ck_assert_uint_eq(stats()->conns_refused_per_address, 1);
  ck_assert_int_eq(last_of(2, CL_MSG_ERROR)->m.u.error.code, CL_ERR_LIMIT);
  /* From another address: fine, and the fourth is over the total. */
  W.closed[2] = 0;
  W.conn[2] = cl_lm_conn_open(W.lm, &W.conn_ud[2], NULL, "10.0.0.2:1", W.now);
  ck_assert_ptr_nonnull(W.conn[2]);
  W.conn[3] = cl_lm_conn_open(W.lm, &W.conn_ud[3], NULL, "10.0.0.3:1", W.now);
  ck_assert_ptr_null(W.conn[3]);
  ck_assert_uint_eq(stats()->conns_refused_limit, 1);
  /* No chip active within the handshake timeout: connection 1 never
   * registers, connection 2 registers but never confirms. */
  static const int zero[] = {0}, one[] = {1};
  establish(0, zero, 1);
  offer(2, one, 1);
  ck_assert(result_for(2, 1)->accepted);
  advance_to(T0 + 10000 * MS - 1);
  ck_assert(!W.closed[1] && !W.closed[2]);
  advance_to(T0 + 10000 * MS);
  ck_assert(W.closed[1] && W.closed[2] && !W.closed[0]);
  ck_assert_uint_eq(stats()->handshake_timeouts, 2);
  /* Registered but silent (the chip never answers): the idle timeout. A
   * byte that does not finish a frame is no activity. */
  advance_to(T0 + 200000 * MS);
  cl_lm_conn_read(W.lm, W.conn[0], (const uint8_t *)"\0", 1, W.now);
  advance_to(T0 + 290000 * MS);
  ck_assert(!W.closed[0]);
  advance_to(T0 + 306000 * MS);
  ck_assert(W.closed[0]);
  ck_assert_uint_eq(stats()->idle_timeouts, 1);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 0);
}
END_TEST

START_TEST(failed_writes_and_dropped_measurements) {
  start();
  open_conn(0);
  static const int zero[] = {0};
  establish(0, zero, 1);
  /* A measurement the writer cannot take is counted as dropped. */
  W.drop_measurements = 1;
  const uint64_t rtt[3] = {MS, MS, MS};
  burst_answered(0, 0, rtt);
  transcript(0, 0, TX_OK);
  ck_assert_uint_eq(stats()->measurements_dropped, 1);
  ck_assert_uint_eq(stats()->measurements, 0);
  ck_assert_uint_eq(W.n_rec, 0);
  /* The next challenge's write fails: the connection closes, the chip
   * leaves, and the challenge still counts as sent and in the lag. */
  uint64_t sent = stats()->probes_sent;
  W.fail_send_after = 1;
  while (!W.closed[0]) advance_to(cl_lm_next_due(W.lm));
  ck_assert_uint_eq(stats()->probes_sent, sent + 1);
  ck_assert_uint_eq(stats()->lag.total, stats()->probes_sent);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 0);
  ck_assert_uint_eq(cl_lm_conn_count(W.lm), 0);
  ck_assert_uint_eq(cl_lm_next_due(W.lm), UINT64_MAX);
  /* A failed Hello: the connection is refused. */
  W.fail_send_after = 1;
  ck_assert_ptr_null(open_conn(1));
  ck_assert(W.closed[1]);
  /* A failed BurstEnd closes too. */
  ck_assert_ptr_nonnull(open_conn(2));
  establish(2, zero, 1);
  for (int j = 0; j < 2; j++) {
    const out_frame *f = next_challenge(2);
    W.now = f->t_sent + MS;
    answer(2, 0, f);
  }
  const out_frame *f = next_challenge(2);
  W.now = f->t_sent + MS;
  W.fail_send_after = 1;
  answer(2, 0, f);
  ck_assert_ptr_nonnull(last_burst_end(2, 0));
  ck_assert(W.closed[2]);
  /* The closed connections gave their address's slots back. */
  ck_assert_ptr_nonnull(open_conn(3));
  memset(W.closed, 0, sizeof W.closed);
  ck_assert_ptr_nonnull(open_conn(0));
  ck_assert_uint_eq(stats()->conns_refused_per_address, 0);
}
END_TEST

START_TEST(deferral_by_pending_limit) {
  W.p.max_pending_challenges = 1;
  W.p.interval_s = 1;
  start();
  open_conn(0);
  static const int both[] = {0, 1};
  establish(0, both, 2);
  /* Never answered: each chip's probe waits out its deadline while the
   * other chip's probe is put off. */
  for (int i = 0; i < 2000 && stats()->probes_deferred == 0; i++)
    advance_to(cl_lm_next_due(W.lm));
  ck_assert_uint_gt(stats()->probes_deferred, 0);
  /* Never more than one challenge outstanding. */
  for (size_t i = 0; i < W.n_out; i++) {
    if (W.out[i].m.type != CL_MSG_CHALLENGE) continue;
    for (size_t j = i + 1; j < W.n_out; j++) {
      if (W.out[j].m.type != CL_MSG_CHALLENGE) continue;
      ck_assert_uint_ge(W.out[j].t_sent, W.out[i].t_sent + 1000 * MS);
      break;
    }
  }
}
END_TEST

/* The text of ERROR_CHIP_TAKEN_OVER for chip k taken by connection ci's agent. */
static void moved_text(int k, int ci, char *out, size_t len) {
  char hex[17];
  cl_hex_encode(hex, pk(k), 8);
  snprintf(out, len, "chip %s: now registered on another connection (agent agent%d)", hex, ci);
}

START_TEST(takeover_by_newer_connection) {
  start();
  open_conn(0);
  open_conn(1);
  static const int zero[] = {0};
  establish(0, zero, 1);
  /* A new connection's offer and handshake for the same chip: until its
   * Confirm verifies, the chip stays where it is and the old connection
   * hears nothing. */
  offer(1, zero, 1);
  ck_assert(result_for(1, 0)->accepted);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  ck_assert_uint_eq(count_of(0, CL_MSG_ERROR), 0);
  confirm_some(1, zero, 1, 0);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  ck_assert_uint_eq(stats()->chip_takeovers, 1);
  /* The old connection is told, with the chip and the new agent named; it
   * had no other chip, so it is closed. */
  ck_assert_uint_eq(count_of(0, CL_MSG_ERROR), 1);
  const out_frame *e = last_of(0, CL_MSG_ERROR);
  ck_assert_int_eq(e->m.u.error.code, CL_ERR_CHIP_TAKEN_OVER);
  char want[160];
  moved_text(0, 1, want, sizeof want);
  ck_assert_str_eq(e->m.u.error.text, want);
  ck_assert(W.closed[0]);
  ck_assert_uint_eq(count_of(1, CL_MSG_ERROR), 0);
  /* Probes go to the newer connection only. */
  const out_frame *f = next_challenge(1);
  ck_assert_int_eq(f->conn, 1);
  ck_assert_uint_eq(count_of(0, CL_MSG_CHALLENGE), 0);
  W.now = f->t_sent + MS;
  answer(1, 0, f);
  ck_assert_uint_eq(stats()->responses_accepted, 1);
  /* And back: a third connection's verified session takes it again. */
  ck_assert_ptr_nonnull(open_conn(2));
  establish(2, zero, 1);
  ck_assert_uint_eq(stats()->chip_takeovers, 2);
  ck_assert_int_eq(last_of(1, CL_MSG_ERROR)->m.u.error.code, CL_ERR_CHIP_TAKEN_OVER);
  moved_text(0, 2, want, sizeof want);
  ck_assert_str_eq(last_of(1, CL_MSG_ERROR)->m.u.error.text, want);
  ck_assert(W.closed[1]);
  ck_assert(!W.closed[2]);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
}
END_TEST

/* Only a verified handshake moves a chip: an offer for it from a peer
 * that cannot sign with the chip's key (a bad Confirm signature, or no
 * Confirm at all) leaves it, silently, where its session is. */
START_TEST(takeover_needs_a_verified_confirm) {
  start();
  open_conn(0);
  static const int zero[] = {0};
  establish(0, zero, 1);
  open_conn(1);
  offer(1, zero, 1);
  ck_assert(result_for(1, 0)->accepted);
  confirm_some(1, zero, 1, 1u << 0);
  ck_assert_uint_eq(stats()->bad_handshake_sigs, 1);
  ck_assert(W.closed[1]);
  open_conn(2);
  offer(2, zero, 1);
  ck_assert(result_for(2, 0)->accepted);
  advance_to(W.now + W.p.handshake_timeout_ms * MS);
  ck_assert(W.closed[2]);
  ck_assert_uint_eq(stats()->chip_takeovers, 0);
  ck_assert_uint_eq(count_of(0, CL_MSG_ERROR), 0);
  ck_assert(!W.closed[0]);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  const out_frame *f = next_challenge(0);
  ck_assert_int_eq(chip_of(f->m.u.challenge.chip), 0);
  W.now = f->t_sent + MS;
  answer(0, 0, f);
  ck_assert_uint_eq(stats()->responses_accepted, 1);
}
END_TEST

START_TEST(takeover_mid_probe) {
  W.p.max_pending_challenges = 1;
  start();
  open_conn(0);
  static const int both[] = {0, 1}, zero[] = {0};
  establish(0, both, 2);
  /* Until chip 0's challenge is the one outstanding on connection 0 (the
   * one slot), chip 1's are answered. */
  const out_frame *f;
  for (;;) {
    f = next_challenge(0);
    if (chip_of(f->m.u.challenge.chip) == 0) break;
    W.now = f->t_sent + MS;
    answer(0, 1, f);
  }
  out_frame old = *f;
  /* A new connection takes chip 0 over; connection 0 is told and stays,
   * for chip 1. */
  ck_assert_ptr_nonnull(open_conn(1));
  establish(1, zero, 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_CHIP_TAKEN_OVER);
  ck_assert(!W.closed[0]);
  W.now += MS;
  answer(0, 0, &old);
  ck_assert_uint_eq(stats()->rejected_not_registered, 1);
  /* The new session starts with an empty ring. */
  answer(1, 0, &old);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_UNKNOWN_PROBE], 1);
  /* Connection 0 got its slot back with the chip: chip 1 is probed there
   * again (a leaked count would put it off for ever). */
  size_t before = count_of(0, CL_MSG_CHALLENGE);
  uint64_t until = W.now + 70000 * MS;
  while (count_of(0, CL_MSG_CHALLENGE) == before && W.now < until)
    advance_to(cl_lm_next_due(W.lm));
  ck_assert_uint_gt(count_of(0, CL_MSG_CHALLENGE), before);
  ck_assert_int_eq(chip_of(last_of(0, CL_MSG_CHALLENGE)->m.u.challenge.chip), 1);
}
END_TEST

START_TEST(unenrolled_chip_dropped) {
  start();
  open_conn(0);
  static const int both[] = {0, 1};
  establish(0, both, 2);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 2);
  /* Chip 1 deactivated, chip 0 renumbered. */
  cl_lm_target *t = calloc(2, sizeof *t);
  memcpy(t[0].pk, pk(0), CL_PK_LEN);
  t[0].id = 500;
  t[0].active = 1;
  memcpy(t[1].pk, pk(1), CL_PK_LEN);
  t[1].id = 101;
  cl_lm_set_enrolled(W.lm, t, 2, W.now);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  ck_assert(!W.closed[0]);
  const uint64_t rtt[3] = {MS, MS, MS};
  burst_answered(0, 0, rtt);
  transcript(0, 0, TX_OK);
  ck_assert_uint_eq(W.n_rec, 1);
  ck_assert_int_eq(W.rec[0].chip_id, 500);
  /* A chip deactivated between its offer and its Confirm does not become
   * active. */
  open_conn(1);
  static const int one[] = {1};
  t = calloc(2, sizeof *t);
  for (int k = 0; k < 2; k++) {
    memcpy(t[k].pk, pk(k), CL_PK_LEN);
    t[k].id = 100 + k;
    t[k].active = 1;
  }
  cl_lm_set_enrolled(W.lm, t, 2, W.now);
  offer(1, one, 1);
  t = calloc(1, sizeof *t);
  memcpy(t[0].pk, pk(0), CL_PK_LEN);
  t[0].id = 100;
  t[0].active = 1;
  cl_lm_set_enrolled(W.lm, t, 1, W.now);
  confirm_some(1, one, 1, 0);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  ck_assert(W.closed[1]);
}
END_TEST

START_TEST(workers_do_the_jobs) {
  W.p.async_signatures = 1;
  start();
  open_conn(0);
  static const int zero[] = {0}, one[] = {1};
  /* The offer goes to a worker; the RegisterResult waits for it. */
  offer(0, zero, 1);
  ck_assert_uint_eq(W.n_work, 1);
  ck_assert_int_eq(W.work[0].kind, CL_LM_WORK_HANDSHAKE);
  ck_assert_uint_eq(count_of(0, CL_MSG_REGISTER_RESULT), 0);
  /* A second Register before the first is answered closes. */
  open_conn(1);
  offer(1, one, 1);
  offer(1, one, 1);
  ck_assert(W.closed[1]);
  ck_assert_uint_eq(stats()->unexpected_msg, 1);
  finish_work(0); /* connection 1's job comes back orphaned */
  ck_assert_uint_eq(stats()->jobs_orphaned, 1);
  ck_assert(result_for(0, 0)->accepted);
  /* The Confirm's check goes to a worker too. */
  confirm_some(0, zero, 1, 0);
  ck_assert_uint_eq(W.n_work, 1);
  ck_assert_int_eq(W.work[0].kind, CL_LM_WORK_CONFIRM);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 0);
  finish_work(0);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  /* The timed phase has no jobs; the transcript has one, which signs the
   * record. */
  const uint64_t rtt[3] = {2 * MS, 3 * MS, 4 * MS};
  burst_answered(0, 0, rtt);
  ck_assert_uint_eq(W.n_work, 0);
  transcript(0, 0, TX_OK);
  ck_assert_uint_eq(W.n_work, 1);
  ck_assert_int_eq(W.work[0].kind, CL_LM_WORK_TRANSCRIPT);
  ck_assert_uint_eq(W.n_rec, 0);
  finish_work(0);
  ck_assert_uint_eq(W.n_rec, 1);
  ck_assert_int_eq(cl_measurement_verify(&W.rec[0].m), CL_OK);
  ck_assert_uint_eq(stats()->jobs_queued[CL_LM_WORK_HANDSHAKE], 2);
  ck_assert_uint_eq(stats()->jobs_queued[CL_LM_WORK_CONFIRM], 1);
  ck_assert_uint_eq(stats()->jobs_queued[CL_LM_WORK_TRANSCRIPT], 1);
  /* A bad transcript found by a worker. */
  burst_answered(0, 0, rtt);
  transcript(0, 0, TX_OTHER_KEY);
  finish_work(0);
  ck_assert_uint_eq(stats()->transcripts_bad, 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_BAD_TRANSCRIPT);
  /* A cancelled transcript job: no record, counted. */
  burst_answered(0, 0, rtt);
  transcript(0, 0, TX_OK);
  finish_work(1);
  ck_assert_uint_eq(stats()->jobs_orphaned, 2);
  ck_assert_uint_eq(W.n_rec, 1);
  /* A transcript job that returns after its connection closed is
   * orphaned; so is a handshake job. */
  burst_answered(0, 0, rtt);
  transcript(0, 0, TX_OK);
  ck_assert_uint_eq(W.n_work, 1);
  cl_lm_conn_close(W.lm, W.conn[0], W.now);
  finish_work(0);
  ck_assert_uint_eq(stats()->jobs_orphaned, 3);
  ck_assert_uint_eq(W.n_rec, 1);
  memset(W.closed, 0, sizeof W.closed);
  open_conn(0);
  offer(0, zero, 1);
  cl_lm_conn_close(W.lm, W.conn[0], W.now);
  finish_work(0);
  ck_assert_uint_eq(stats()->jobs_orphaned, 4);
  /* A cancelled handshake job refuses the offer. */
  memset(W.closed, 0, sizeof W.closed);
  open_conn(0);
  offer(0, zero, 1);
  finish_work(1);
  ck_assert(!result_for(0, 0)->accepted);
  ck_assert(W.closed[0]);
  /* A shell that cannot take jobs: the core does them itself. */
  W.refuse_work = 1;
  memset(W.closed, 0, sizeof W.closed);
  open_conn(1);
  establish(1, zero, 1);
  ck_assert_uint_eq(W.n_work, 0);
  burst_answered(1, 0, rtt);
  transcript(1, 0, TX_OK);
  ck_assert_uint_eq(W.n_work, 0);
  ck_assert_uint_eq(W.n_rec, 2);
}
END_TEST

/* A Response for a seq never issued, for chip k on connection ci. */
static void answer_bogus(int ci, int k) {
  uint8_t mac[CL_MAC_LEN] = {0};
  W.rng++;
  respond(ci, k, 1000000 + W.rng, mac);
}

START_TEST(error_replies_rate_limited) {
  W.p.max_error_replies_per_s = 3;
  start();
  open_conn(0);
  open_conn(1);
  static const int zero[] = {0}, one[] = {1};
  establish(0, zero, 1);
  establish(1, one, 1);
  /* A flood of unknown probes at one instant: the bucket's 3 replies, then
   * nothing; every answer is still rejected and counted. */
  for (int i = 0; i < 50; i++) answer_bogus(0, 0);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_UNKNOWN_PROBE], 50);
  ck_assert_uint_eq(count_of(0, CL_MSG_ERROR), 3);
  ck_assert_uint_eq(stats()->error_replies_suppressed, 47);
  /* Answers for a chip not registered here draw from the same bucket, and
   * so do transcripts that find no burst. */
  answer_bogus(0, 1);
  ck_assert_uint_eq(stats()->rejected_not_registered, 1);
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_TRANSCRIPT;
  memcpy(m.u.transcript.chip, pk(0), CL_PK_LEN);
  feed(0, &m);
  ck_assert_uint_eq(stats()->transcripts_bad, 1);
  ck_assert_uint_eq(count_of(0, CL_MSG_ERROR), 3);
  /* The bucket is per connection: the other one still gets its replies. */
  answer_bogus(1, 1);
  ck_assert_uint_eq(count_of(1, CL_MSG_ERROR), 1);
  /* It refills at 3 per second. */
  W.now += 1000 * MS;
  for (int i = 0; i < 10; i++) answer_bogus(0, 0);
  ck_assert_uint_eq(count_of(0, CL_MSG_ERROR), 6);
  ck_assert_uint_eq(stats()->error_replies_suppressed, 47 + 2 + 7);
  /* The flood kept the session: a real answer is still accepted. */
  ck_assert(!W.closed[0]);
  const out_frame *f = next_challenge(0);
  W.now = f->t_sent + 2 * MS;
  answer(0, 0, f);
  ck_assert_uint_eq(stats()->responses_accepted, 1);
  /* An Error that closes the connection is never held back, even with the
   * bucket empty. */
  for (int i = 0; i < 20; i++) answer_bogus(0, 0);
  size_t before = count_of(0, CL_MSG_ERROR);
  cl_lm_conn_read(W.lm, W.conn[0], (const uint8_t *)"\0\0\0\x03xyz", 7, W.now);
  ck_assert(W.closed[0]);
  ck_assert_uint_eq(count_of(0, CL_MSG_ERROR), before + 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_MALFORMED);
}
END_TEST

START_TEST(write_queue_overflow_closes) {
  start();
  open_conn(0);
  open_conn(1);
  static const int zero[] = {0}, one[] = {1};
  establish(0, zero, 1);
  establish(1, one, 1);
  /* The shell finds no room for the next frame (a challenge, here): the
   * connection closes, its chip leaves, and the overflow is counted. */
  W.fail_send_after = 1;
  W.fail_send_rc = CL_ETOOBIG;
  while (!W.closed[0] && !W.closed[1]) advance_to(cl_lm_next_due(W.lm));
  int ci = W.closed[0] ? 0 : 1;
  ck_assert_uint_eq(stats()->write_queue_overflows, 1);
  ck_assert_uint_eq(cl_lm_conn_count(W.lm), 1);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  /* The same for an Error reply; another failed write is no overflow. */
  W.fail_send_after = 1;
  W.fail_send_rc = CL_ETOOBIG;
  answer_bogus(1 - ci, 1 - ci);
  ck_assert(W.closed[1 - ci]);
  ck_assert_uint_eq(stats()->write_queue_overflows, 2);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 0);
  W.closed[0] = W.closed[1] = 0;
  open_conn(0);
  W.fail_send_after = 1;
  W.fail_send_rc = CL_EIO;
  offer(0, zero, 1);
  ck_assert(W.closed[0]);
  ck_assert_uint_eq(stats()->write_queue_overflows, 2);
}
END_TEST

START_TEST(rekey_job_outlives_its_deadline) {
  W.p.async_signatures = 1;
  W.p.session_lifetime_s = 60;
  W.p.interval_s = 100;
  start();
  open_conn(0);
  static const int zero[] = {0};
  establish(0, zero, 1);
  while (count_of(0, CL_MSG_REKEY) == 0) advance_to(cl_lm_next_due(W.lm));
  uint64_t asked = W.now;
  /* The rekey's handshake job is still out when the deadline comes: the
   * chip is dropped, and the Register still gets its answer (a refusal)
   * before the connection closes. */
  offer(0, zero, 1);
  ck_assert_uint_eq(W.n_work, 1);
  size_t results = count_of(0, CL_MSG_REGISTER_RESULT);
  advance_to(asked + 10000 * MS);
  ck_assert_uint_eq(stats()->rekeys_failed, 1);
  ck_assert_uint_eq(count_of(0, CL_MSG_REGISTER_RESULT), results + 1);
  ck_assert(!result_for(0, 0)->accepted);
  ck_assert_int_eq(result_for(0, 0)->reason, CL_REFUSE_INACTIVE);
  ck_assert(W.closed[0]);
  uint64_t orphaned = stats()->jobs_orphaned;
  finish_work(0);
  ck_assert_uint_eq(stats()->jobs_orphaned, orphaned + 1);
}
END_TEST

START_TEST(close_all_and_destroy) {
  W.p.async_signatures = 1;
  start();
  open_conn(0);
  open_conn(1);
  static const int zero[] = {0}, one[] = {1};
  establish(0, zero, 1);
  establish(1, one, 1);
  /* A job still out when everything closes: its chip waits for it. */
  const uint64_t rtt[3] = {MS, MS, MS};
  burst_answered(0, 0, rtt);
  transcript(0, 0, TX_OK);
  ck_assert_uint_eq(W.n_work, 1);
  cl_lm_close_all(W.lm, W.now);
  ck_assert(W.closed[0] && W.closed[1]);
  ck_assert_uint_eq(cl_lm_conn_count(W.lm), 0);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 0);
  ck_assert_uint_eq(cl_lm_next_due(W.lm), UINT64_MAX);
  ck_assert_uint_eq(stats()->conns_closed, 2);
  /* Closed: a new connection is refused at once. */
  ck_assert_ptr_null(open_conn(2));
  finish_work(0);
  ck_assert_uint_eq(W.n_rec, 0);
  ck_assert_uint_eq(stats()->jobs_orphaned, 1);
}
END_TEST

/* The per-address key of an IPv4 (len 4) or IPv6 (len 16) address. */
static void addr_key(const char *hex, uint8_t key[CL_PK_LEN]) {
  uint8_t ip[16];
  size_t len = strlen(hex) / 2;
  ck_assert(len == 4 || len == 16);
  for (size_t i = 0; i < len; i++) {
    unsigned v;
    ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
    ip[i] = (uint8_t)v;
  }
  ck_assert_int_eq(cl_lm_addr_key(ip, len, key), CL_OK);
}

START_TEST(addr_key_ipv6_by_prefix) {
  uint8_t a[CL_PK_LEN], b[CL_PK_LEN];
  /* One /64, two interface identifiers: one key. */
  addr_key("20010db8000100020000000000000001", a);
  addr_key("20010db800010002ffffffffffffffff", b);
  ck_assert_mem_eq(a, b, CL_PK_LEN);
  /* The next /64 over, and a neighbour in the same /48: other keys. */
  addr_key("20010db8000100030000000000000001", b);
  ck_assert(memcmp(a, b, CL_PK_LEN) != 0);
  addr_key("20010db8000100020000000000000001", a);
  addr_key("20010db9000100020000000000000001", b);
  ck_assert(memcmp(a, b, CL_PK_LEN) != 0);
  /* IPv4-mapped counts as the IPv4 address; other IPv4 addresses do not
   * share a key, nor does an IPv6 /64 that starts with the same bytes. */
  addr_key("00000000000000000000ffffc0000201", a);
  addr_key("c0000201", b);
  ck_assert_mem_eq(a, b, CL_PK_LEN);
  addr_key("c0000202", a);
  ck_assert(memcmp(a, b, CL_PK_LEN) != 0);
  addr_key("c0000201000000000000000000000000", a);
  ck_assert(memcmp(a, b, CL_PK_LEN) != 0);
  /* ::1 is not IPv4-mapped. */
  addr_key("00000000000000000000000000000001", a);
  ck_assert(memcmp(a, b, CL_PK_LEN) != 0);
  uint8_t ip[16] = {0};
  ck_assert_int_eq(cl_lm_addr_key(ip, 6, a), CL_EINVAL);
  ck_assert_int_eq(cl_lm_addr_key(NULL, 4, a), CL_EINVAL);
}
END_TEST

START_TEST(per_address_limit_counts_ipv6_prefix) {
  W.p.max_connections = 4;
  start();
  uint8_t k[CL_PK_LEN];
  /* Two connections (the limit) from one /64, the second from another
   * address of it; a third address of it is refused. */
  addr_key("20010db8000100020000000000000001", k);
  W.conn[0] = cl_lm_conn_open(W.lm, &W.conn_ud[0], k, "[2001:db8:1:2::1]:1", W.now);
  addr_key("20010db800010002abcdef0123456789", k);
  W.conn[1] = cl_lm_conn_open(W.lm, &W.conn_ud[1], k, "[2001:db8:1:2:abcd:ef01:2345:6789]:1",
                              W.now);
  ck_assert_ptr_nonnull(W.conn[0]);
  ck_assert_ptr_nonnull(W.conn[1]);
  addr_key("20010db80001000200000000deadbeef", k);
  W.conn[2] = cl_lm_conn_open(W.lm, &W.conn_ud[2], k, "[2001:db8:1:2::dead:beef]:1", W.now);
  ck_assert_ptr_null(W.conn[2]);
  ck_assert_uint_eq(stats()->conns_refused_per_address, 1);
  ck_assert_int_eq(last_of(2, CL_MSG_ERROR)->m.u.error.code, CL_ERR_LIMIT);
  /* The next /64 has its own count. */
  addr_key("20010db8000100030000000000000001", k);
  W.conn[3] = cl_lm_conn_open(W.lm, &W.conn_ud[3], k, "[2001:db8:1:3::1]:1", W.now);
  ck_assert_ptr_nonnull(W.conn[3]);
  /* A closed connection gives the /64 its slot back. */
  cl_lm_conn_close(W.lm, W.conn[0], W.now);
  W.closed[2] = 0;
  addr_key("20010db80001000200000000deadbeef", k);
  W.conn[2] = cl_lm_conn_open(W.lm, &W.conn_ud[2], k, "[2001:db8:1:2::dead:beef]:1", W.now);
  ck_assert_ptr_nonnull(W.conn[2]);
  cl_lm_close_all(W.lm, W.now);
  /* IPv4 and IPv4-mapped IPv6: one address, one count (limit 2). */
  cl_lm_destroy(&W.lm);
  memset(W.closed, 0, sizeof W.closed);
  start();
  addr_key("c0000201", k);
  ck_assert_ptr_nonnull(W.conn[0] = cl_lm_conn_open(W.lm, &W.conn_ud[0], k, "192.0.2.1:1", W.now));
  addr_key("00000000000000000000ffffc0000201", k);
  ck_assert_ptr_nonnull(
      W.conn[1] = cl_lm_conn_open(W.lm, &W.conn_ud[1], k, "[::ffff:192.0.2.1]:2", W.now));
  ck_assert_ptr_null(W.conn[2] = cl_lm_conn_open(W.lm, &W.conn_ud[2], k, "[::ffff:192.0.2.1]:3",
                                                 W.now));
  ck_assert_uint_eq(stats()->conns_refused_per_address, 1);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("lmcore");
  TCase *tq = tcase_create("tq");
  tcase_add_test(tq, tq_random_against_list);
  tcase_add_test(tq, tq_pass_skips_rearmed);
  suite_add_tcase(s, tq);
  TCase *c = tcase_create("core");
  tcase_add_checked_fixture(c, setup, teardown);
  tcase_set_timeout(c, 60);
  tcase_add_test(c, handshake_burst_transcript_record);
  tcase_add_test(c, partial_burst_and_empty_burst);
  tcase_add_test(c, registration_refusals);
  tcase_add_test(c, unknown_suite_and_v1_envelope);
  tcase_add_test(c, every_rejection_reason);
  tcase_add_test(c, bad_confirm_signature);
  tcase_add_test(c, replayed_confirm);
  tcase_add_test(c, handshake_not_completed);
  tcase_add_test(c, transcript_refusals);
  tcase_add_test(c, rekey_completes);
  tcase_add_test(c, rekey_not_completed);
  tcase_add_test(c, rekey_job_outlives_its_deadline);
  tcase_add_test(c, frame_errors_close);
  tcase_add_test(c, limits_and_timeouts);
  tcase_add_test(c, failed_writes_and_dropped_measurements);
  tcase_add_test(c, deferral_by_pending_limit);
  tcase_add_test(c, takeover_by_newer_connection);
  tcase_add_test(c, takeover_needs_a_verified_confirm);
  tcase_add_test(c, takeover_mid_probe);
  tcase_add_test(c, unenrolled_chip_dropped);
  tcase_add_test(c, workers_do_the_jobs);
  tcase_add_test(c, close_all_and_destroy);
  tcase_add_test(c, error_replies_rate_limited);
  tcase_add_test(c, write_queue_overflow_closes);
  tcase_add_test(c, addr_key_ipv6_by_prefix);
  tcase_add_test(c, per_address_limit_counts_ipv6_prefix);
  suite_add_tcase(s, c);
  return s;
}

int main(void) {
  if (sodium_init() < 0) return 1;
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
