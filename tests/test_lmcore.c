/*
 * The landmark's protocol core (lib/wire/cl_lmcore.h) and its timer queue
 * (lib/core/cl_tq.h), driven directly: events in as function calls with
 * their times, actions out through a recording cl_lm_io. Every frame the
 * core sends is decoded as an agent would decode it. Covers the handshake,
 * registration and its refusals, the probe cycle with exact RTTs from the
 * shell's send stamp, every rejection reason, deadlines, limits, deferral,
 * a chip taken over by a newer connection, enrolment changes, the worker
 * path (jobs back, orphaned, cancelled), the per-connection limit on Error
 * replies, a write queue the shell reports full, and the per-address key
 * (IPv6 by /64). The timer queue is checked against a plain list over
 * random operations.
 */
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
#define MAX_OUT 512

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

/* ---- the core with a recording shell -------------------------------------- */

typedef struct {
  int conn; /* index of the test connection */
  cl_msg m;
  uint64_t t_sent;
} out_frame;

typedef struct {
  cl_key *landmark, *chip[3]; /* chips 0, 1 enrolled; 2 not */
  cl_lm_params p;
  cl_lm_io io;
  cl_lm *lm;
  int conn_ud[4];
  cl_lm_conn *conn[4];
  int closed[4];
  out_frame *out;
  size_t n_out;
  cl_lm_record rec[16];
  size_t n_rec;
  cl_lm_work work[64];
  size_t n_work;
  int refuse_work;
  int fail_send_after;  /* > 0: the send of that many more frames succeeds, the next fails */
  int fail_send_rc;     /* what that failing send returns; 0: CL_EIO */
  int drop_measurements;
  uint64_t stamp_offset; /* the shell's send stamp: now + this */
  uint64_t now;
  uint64_t rng;
  int n_accepted_events, n_expired_events, n_rejected_events;
} world;

static world W;

static int conn_of(void *ud) {
  for (int i = 0; i < 4; i++)
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
  ck_assert_uint_lt(W.n_work, 64);
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
  for (int k = 0; k < 3; k++) {
    memset(seed, 0x21 + k, sizeof seed);
    ck_assert_int_eq(cl_key_from_seed(&W.chip[k], seed), CL_OK);
  }
  W.out = calloc(MAX_OUT, sizeof *W.out);
  ck_assert_ptr_nonnull(W.out);
  W.p = (cl_lm_params){.interval_s = 60,
                       .jitter = 0.1,
                       .burst = 3,
                       .burst_gap_ms = 100,
                       .deadline_ms = 1000,
                       .speed_m_per_s = CL_SPEED_FIBRE,
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
  for (int k = 0; k < 3; k++) cl_key_destroy(&W.chip[k]);
  free(W.out);
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

static void feed(int ci, const cl_msg *m) {
  uint8_t buf[CL_FRAME_MAX];
  size_t len = 0;
  ck_assert_int_eq(cl_msg_encode(m, buf, sizeof buf, &len), CL_OK);
  cl_lm_conn_read(W.lm, W.conn[ci], buf, len, W.now);
}

/* Registers chips ks[0..n) on ci with valid proofs over its Hello's nonce. */
static void register_chips(int ci, const int *ks, size_t n) {
  const out_frame *hello = last_of(ci, CL_MSG_HELLO);
  ck_assert_ptr_nonnull(hello);
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER;
  snprintf(m.u.reg.agent, sizeof m.u.reg.agent, "test");
  m.u.reg.n = n;
  for (size_t i = 0; i < n; i++) {
    memcpy(m.u.reg.chips[i].chip, cl_key_public(W.chip[ks[i]]), CL_PK_LEN);
    cl_register_sign(cl_key_public(W.landmark), hello->m.u.hello.session_nonce, W.chip[ks[i]],
                     m.u.reg.chips[i].proof);
  }
  feed(ci, &m);
}

/* Moves time to t and runs what came due. */
static void advance_to(uint64_t t) {
  W.now = t;
  cl_lm_run_timers(W.lm, W.now);
}

/* Runs timers until a challenge goes out (at most one interval and a bit). */
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

static void answer(int ci, int k, const cl_challenge *ch, int corrupt) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_RESPONSE;
  memcpy(m.u.response.chip, cl_key_public(W.chip[k]), CL_PK_LEN);
  memcpy(m.u.response.nonce, ch->nonce, CL_NONCE_LEN);
  cl_response_sign(ch, W.chip[k], m.u.response.sig);
  if (corrupt) m.u.response.sig[0] ^= 1;
  feed(ci, &m);
}

static const cl_lm_stats *stats(void) { return cl_lm_get_stats(W.lm); }

START_TEST(hello_register_burst_measurement) {
  start();
  ck_assert_ptr_nonnull(open_conn(0));
  const out_frame *hello = last_of(0, CL_MSG_HELLO);
  ck_assert_ptr_nonnull(hello);
  ck_assert_mem_eq(hello->m.u.hello.landmark, cl_key_public(W.landmark), CL_PK_LEN);
  static const int zero[] = {0};
  register_chips(0, zero, 1);
  const out_frame *res = last_of(0, CL_MSG_REGISTER_RESULT);
  ck_assert_ptr_nonnull(res);
  ck_assert_uint_eq(res->m.u.reg_result.n, 1);
  ck_assert(res->m.u.reg_result.r[0].accepted);
  ck_assert(cl_lm_conn_registered(W.conn[0]));
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  /* The shell's stamp, not the core's clock, starts the RTT. */
  W.stamp_offset = 7 * MS;
  uint64_t rtts[3] = {30 * MS, 12 * MS, 20 * MS};
  for (int j = 0; j < 3; j++) {
    const out_frame *f = next_challenge(0);
    /* The first burst starts within one interval of registration. */
    ck_assert_uint_le(W.now, T0 + 60000 * MS + 2 * 100 * MS);
    ck_assert_int_eq(cl_challenge_verify(&f->m.u.challenge), CL_OK);
    ck_assert_mem_eq(f->m.u.challenge.chip, cl_key_public(W.chip[0]), CL_PK_LEN);
    W.now = f->t_sent + rtts[j];
    answer(0, 0, &f->m.u.challenge, 0);
  }
  ck_assert_uint_eq(stats()->probes_sent, 3);
  ck_assert_uint_eq(stats()->responses_accepted, 3);
  ck_assert_int_eq(W.n_accepted_events, 3);
  ck_assert_uint_eq(stats()->rtt.total, 3);
  /* Each challenge went out at its timer's due time; the lag is exactly the
   * shell's stamp past it. */
  ck_assert_uint_eq(stats()->lag.total, 3);
  ck_assert_double_eq_tol(stats()->lag.sum, 3 * 0.007, 1e-12);
  ck_assert_uint_eq(W.n_rec, 1);
  const cl_lm_record *r = &W.rec[0];
  ck_assert_int_eq(cl_measurement_verify(&r->m), CL_OK);
  ck_assert_uint_eq(r->m.rtt_ns, 12 * MS);
  ck_assert_uint_eq(r->m.probe_count, 3);
  ck_assert_int_eq(r->chip_id, 100);
  ck_assert_uint_eq(r->bound_m, cl_bound_m(12 * MS, CL_SPEED_C));
  ck_assert_uint_eq(r->est_bound_m, cl_bound_m(12 * MS, CL_SPEED_FIBRE));
  ck_assert_uint_eq(r->probes_sent, 3);
  ck_assert_int_eq(r->is_link, 0);
  ck_assert_uint_eq(stats()->measurements, 1);
  /* The next burst is one jittered interval later. */
  uint64_t end = W.now;
  const out_frame *f = next_challenge(0);
  ck_assert_uint_ge(f->t_sent, end + 54000 * MS);
  ck_assert_uint_le(f->t_sent, end + 66000 * MS + 7 * MS);
}
END_TEST

START_TEST(registration_refusals) {
  start();
  open_conn(0);
  const out_frame *hello = last_of(0, CL_MSG_HELLO);
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER;
  m.u.reg.n = 4;
  int ks[4] = {0, 0, 1, 2};
  for (int i = 0; i < 4; i++) {
    memcpy(m.u.reg.chips[i].chip, cl_key_public(W.chip[ks[i]]), CL_PK_LEN);
    cl_register_sign(cl_key_public(W.landmark), hello->m.u.hello.session_nonce, W.chip[ks[i]],
                     m.u.reg.chips[i].proof);
  }
  m.u.reg.chips[0].proof[3] ^= 1; /* chip 0: bad proof; its second claim a duplicate */
  /* Chip 1 deactivated before it registers. */
  cl_lm_target *t = calloc(2, sizeof *t);
  for (int k = 0; k < 2; k++) {
    memcpy(t[k].pk, cl_key_public(W.chip[k]), CL_PK_LEN);
    t[k].id = 100 + k;
    t[k].active = k == 0;
  }
  cl_lm_set_enrolled(W.lm, t, 2, W.now);
  feed(0, &m);
  const out_frame *res = last_of(0, CL_MSG_REGISTER_RESULT);
  ck_assert_ptr_nonnull(res);
  ck_assert_int_eq(res->m.u.reg_result.r[0].reason, CL_REFUSE_BAD_PROOF);
  ck_assert_int_eq(res->m.u.reg_result.r[1].reason, CL_REFUSE_DUPLICATE);
  ck_assert_int_eq(res->m.u.reg_result.r[2].reason, CL_REFUSE_INACTIVE);
  ck_assert_int_eq(res->m.u.reg_result.r[3].reason, CL_REFUSE_NOT_ENROLLED);
  ck_assert_uint_eq(stats()->register_refused[CL_REFUSE_BAD_PROOF], 1);
  /* Nothing accepted: the connection is closed. */
  ck_assert(W.closed[0]);
  ck_assert_uint_eq(cl_lm_conn_count(W.lm), 0);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 0);
}
END_TEST

START_TEST(every_rejection_reason) {
  start();
  open_conn(0);
  static const int both[] = {0, 1};
  register_chips(0, both, 2);
  const out_frame *f = next_challenge(0);
  cl_challenge ch = f->m.u.challenge;
  int k = memcmp(ch.chip, cl_key_public(W.chip[0]), CL_PK_LEN) == 0 ? 0 : 1;
  W.now += 5 * MS;
  /* The other chip answers this chip's nonce: wrong chip. */
  answer(0, 1 - k, &ch, 0);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_WRONG_CHIP], 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_UNKNOWN_NONCE);
  /* A nonce never issued. */
  cl_challenge bogus = ch;
  bogus.nonce[0] ^= 0xff;
  answer(0, k, &bogus, 0);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_UNKNOWN_NONCE], 1);
  /* A bad signature uses the probe up. */
  answer(0, k, &ch, 1);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_BAD_SIGNATURE], 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_BAD_SIGNATURE);
  /* Answered once properly on the next probe, then again: a replay. */
  f = next_challenge(0);
  ch = f->m.u.challenge;
  k = memcmp(ch.chip, cl_key_public(W.chip[0]), CL_PK_LEN) == 0 ? 0 : 1;
  W.now += 3 * MS;
  answer(0, k, &ch, 0);
  answer(0, k, &ch, 0);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_REPLAY], 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_REPLAY);
  /* A probe left unanswered expires at its deadline; its answer is late. */
  f = next_challenge(0);
  ch = f->m.u.challenge;
  k = memcmp(ch.chip, cl_key_public(W.chip[0]), CL_PK_LEN) == 0 ? 0 : 1;
  uint64_t deadline = f->t_sent + 1000 * MS;
  advance_to(deadline - 1);
  ck_assert_uint_eq(stats()->probe_timeouts, 0);
  advance_to(deadline);
  ck_assert_uint_eq(stats()->probe_timeouts, 1);
  answer(0, k, &ch, 0);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_LATE], 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_LATE);
  ck_assert_int_eq(W.n_expired_events, 1);
  /* A chip that is not registered on this connection. */
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_RESPONSE;
  memcpy(m.u.response.chip, cl_key_public(W.chip[2]), CL_PK_LEN);
  feed(0, &m);
  ck_assert_uint_eq(stats()->rejected_not_registered, 1);
  ck_assert_int_eq(last_of(0, CL_MSG_ERROR)->m.u.error.code, CL_ERR_NOT_REGISTERED);
  /* None of these closes the connection. */
  ck_assert(!W.closed[0]);
  ck_assert_uint_eq(stats()->responses_accepted, 1);
  /* wrong chip, unknown nonce, bad signature, replay, late */
  ck_assert_int_eq(W.n_rejected_events, 5);
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
  /* A message not allowed in this state. */
  open_conn(1);
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_RESPONSE;
  feed(1, &m);
  ck_assert(W.closed[1]);
  ck_assert_uint_eq(stats()->unexpected_msg, 1);
  ck_assert_int_eq(last_of(1, CL_MSG_ERROR)->m.u.error.code, CL_ERR_UNEXPECTED);
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
  /* No Register within the handshake timeout. */
  static const int zero[] = {0};
  register_chips(0, zero, 1);
  advance_to(T0 + 10000 * MS - 1);
  ck_assert(!W.closed[1]);
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
  static const int both[] = {0, 1};
  register_chips(0, both, 2);
  /* A measurement the writer cannot take is counted as dropped. */
  W.drop_measurements = 1;
  for (int done = 0; stats()->measurements + stats()->measurements_dropped == 0 && done < 20;
       done++) {
    const out_frame *f = next_challenge(0);
    int k = memcmp(f->m.u.challenge.chip, cl_key_public(W.chip[0]), CL_PK_LEN) == 0 ? 0 : 1;
    W.now = f->t_sent + MS;
    answer(0, k, &f->m.u.challenge, 0);
  }
  ck_assert_uint_eq(stats()->measurements_dropped, 1);
  ck_assert_uint_eq(stats()->measurements, 0);
  ck_assert_uint_eq(W.n_rec, 0);
  /* The next challenge's write fails: the connection closes, both chips
   * leave, and the challenge still counts as sent and in the lag. */
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
  /* The closed connections gave their address's slots back. */
  ck_assert_ptr_nonnull(open_conn(2));
  ck_assert_ptr_nonnull(open_conn(3));
  ck_assert_uint_eq(stats()->conns_refused_per_address, 0);
}
END_TEST

START_TEST(deferral_by_pending_limit) {
  W.p.max_pending_challenges = 1;
  W.p.interval_s = 1;
  start();
  open_conn(0);
  static const int both[] = {0, 1};
  register_chips(0, both, 2);
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

START_TEST(takeover_by_newer_connection) {
  start();
  open_conn(0);
  open_conn(1);
  static const int zero[] = {0};
  register_chips(0, zero, 1);
  register_chips(1, zero, 1);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  /* Probes go to the newer connection only; the old one stays open. */
  const out_frame *f = next_challenge(1);
  ck_assert_int_eq(f->conn, 1);
  ck_assert_uint_eq(count_of(0, CL_MSG_CHALLENGE), 0);
  ck_assert(!W.closed[0]);
  /* An answer on the old connection is for a chip not registered there. */
  W.now += MS;
  answer(0, 0, &f->m.u.challenge, 0);
  ck_assert_uint_eq(stats()->rejected_not_registered, 1);
  answer(1, 0, &f->m.u.challenge, 0);
  ck_assert_uint_eq(stats()->responses_accepted, 1);
}
END_TEST

START_TEST(takeover_mid_probe) {
  W.p.max_pending_challenges = 1;
  start();
  open_conn(0);
  static const int both[] = {0, 1}, zero[] = {0};
  register_chips(0, both, 2);
  /* Until chip 0's challenge is the one outstanding on connection 0 (the
   * one slot), chip 1's are answered. */
  const out_frame *f;
  for (;;) {
    f = next_challenge(0);
    if (memcmp(f->m.u.challenge.chip, cl_key_public(W.chip[0]), CL_PK_LEN) == 0) break;
    W.now = f->t_sent + MS;
    answer(0, 1, &f->m.u.challenge, 0);
  }
  cl_challenge old = f->m.u.challenge;
  /* A new connection takes chip 0 over. */
  ck_assert_ptr_nonnull(open_conn(1));
  register_chips(1, zero, 1);
  W.now += MS;
  answer(0, 0, &old, 0);
  ck_assert_uint_eq(stats()->rejected_not_registered, 1);
  /* The new registration starts with an empty ring. */
  answer(1, 0, &old, 0);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_UNKNOWN_NONCE], 1);
  /* Connection 0 got its slot back with the chip: chip 1 is probed there
   * again (a leaked count would put it off for ever). */
  size_t before = count_of(0, CL_MSG_CHALLENGE);
  uint64_t until = W.now + 70000 * MS;
  while (count_of(0, CL_MSG_CHALLENGE) == before && W.now < until)
    advance_to(cl_lm_next_due(W.lm));
  ck_assert_uint_gt(count_of(0, CL_MSG_CHALLENGE), before);
  ck_assert_mem_eq(last_of(0, CL_MSG_CHALLENGE)->m.u.challenge.chip, cl_key_public(W.chip[1]),
                   CL_PK_LEN);
}
END_TEST

START_TEST(unenrolled_chip_dropped) {
  start();
  open_conn(0);
  static const int both[] = {0, 1};
  register_chips(0, both, 2);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 2);
  /* Chip 1 deactivated, chip 0 renumbered. */
  cl_lm_target *t = calloc(2, sizeof *t);
  memcpy(t[0].pk, cl_key_public(W.chip[0]), CL_PK_LEN);
  t[0].id = 500;
  t[0].active = 1;
  memcpy(t[1].pk, cl_key_public(W.chip[1]), CL_PK_LEN);
  t[1].id = 101;
  cl_lm_set_enrolled(W.lm, t, 2, W.now);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 1);
  ck_assert(!W.closed[0]);
  for (int j = 0; j < 3; j++) {
    const out_frame *f = next_challenge(0);
    ck_assert_mem_eq(f->m.u.challenge.chip, cl_key_public(W.chip[0]), CL_PK_LEN);
    W.now += MS;
    answer(0, 0, &f->m.u.challenge, 0);
  }
  ck_assert_uint_eq(W.n_rec, 1);
  ck_assert_int_eq(W.rec[0].chip_id, 500);
}
END_TEST

/* Hands every queued job back, run or cancelled. */
static void finish_work(int cancel) {
  while (W.n_work > 0) {
    cl_lm_work w = W.work[0];
    memmove(W.work, W.work + 1, (W.n_work - 1) * sizeof *W.work);
    W.n_work--;
    if (!cancel) cl_lm_work_run(&w, W.landmark);
    cl_lm_work_done(W.lm, &w, cancel ? -1 : 0, W.now);
  }
}

START_TEST(workers_sign_and_verify) {
  W.p.async_signatures = 1;
  start();
  open_conn(0);
  static const int zero[] = {0};
  register_chips(0, zero, 1);
  /* The challenge goes out only once its signature comes back. */
  while (W.n_work == 0) advance_to(cl_lm_next_due(W.lm));
  ck_assert_int_eq(W.work[0].kind, CL_LM_WORK_SIGN);
  /* No probe timer runs while the chip waits for its signature. */
  advance_to(W.now + 10000 * MS);
  ck_assert_uint_eq(count_of(0, CL_MSG_CHALLENGE), 0);
  ck_assert_uint_eq(W.n_work, 1);
  finish_work(0);
  const out_frame *f = last_of(0, CL_MSG_CHALLENGE);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(cl_challenge_verify(&f->m.u.challenge), CL_OK);
  ck_assert_uint_eq(stats()->sign_queued, 1);
  /* The answer's check goes to a worker; a second answer meanwhile is a
   * replay; the deadline no longer applies. */
  W.now = f->t_sent + 4 * MS;
  answer(0, 0, &f->m.u.challenge, 0);
  ck_assert_uint_eq(W.n_work, 1);
  ck_assert_int_eq(W.work[0].kind, CL_LM_WORK_VERIFY);
  ck_assert_uint_eq(W.work[0].rtt_ns, 4 * MS);
  answer(0, 0, &f->m.u.challenge, 0);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_REPLAY], 1);
  advance_to(f->t_sent + 5000 * MS);
  ck_assert_uint_eq(stats()->probe_timeouts, 0);
  finish_work(0);
  ck_assert_uint_eq(stats()->responses_accepted, 1);
  /* A forged answer is refused when its check comes back. */
  while (W.n_work == 0) advance_to(cl_lm_next_due(W.lm));
  finish_work(0);
  f = last_of(0, CL_MSG_CHALLENGE);
  W.now = f->t_sent + MS;
  answer(0, 0, &f->m.u.challenge, 1);
  finish_work(0);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_BAD_SIGNATURE], 1);
  /* A cancelled signature job: the chip tries again a gap later. */
  while (W.n_work == 0) advance_to(cl_lm_next_due(W.lm));
  size_t sent = count_of(0, CL_MSG_CHALLENGE);
  uint64_t t = W.now;
  finish_work(1);
  ck_assert_uint_eq(stats()->pool_orphaned, 1);
  advance_to(t + 100 * MS - 1);
  ck_assert_uint_eq(W.n_work, 0);
  advance_to(t + 100 * MS);
  ck_assert_uint_eq(W.n_work, 1);
  finish_work(0);
  ck_assert_uint_eq(count_of(0, CL_MSG_CHALLENGE), sent + 1);
  /* A job that returns after its connection closed is orphaned. */
  f = last_of(0, CL_MSG_CHALLENGE);
  W.now = f->t_sent + MS;
  answer(0, 0, &f->m.u.challenge, 0);
  ck_assert_uint_eq(W.n_work, 1);
  cl_lm_conn_close(W.lm, W.conn[0], W.now);
  finish_work(0);
  ck_assert_uint_eq(stats()->pool_orphaned, 2);
  /* A shell that cannot take jobs: the core does them itself. */
  W.refuse_work = 1;
  open_conn(1);
  register_chips(1, zero, 1);
  f = next_challenge(1);
  ck_assert_uint_eq(W.n_work, 0);
  W.now = f->t_sent + MS;
  answer(1, 0, &f->m.u.challenge, 0);
  ck_assert_uint_eq(W.n_work, 0);
  ck_assert_uint_eq(stats()->responses_accepted, 2);
}
END_TEST

/* A Response whose nonce was never issued, for chip k on connection ci. */
static void answer_bogus(int ci, int k) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_RESPONSE;
  memcpy(m.u.response.chip, cl_key_public(W.chip[k]), CL_PK_LEN);
  W.rng++;
  memcpy(m.u.response.nonce, &W.rng, sizeof W.rng);
  feed(ci, &m);
}

START_TEST(error_replies_rate_limited) {
  W.p.max_error_replies_per_s = 3;
  start();
  open_conn(0);
  open_conn(1);
  static const int zero[] = {0}, one[] = {1};
  register_chips(0, zero, 1);
  register_chips(1, one, 1);
  /* A flood of unknown nonces at one instant: the bucket's 3 replies, then
   * nothing; every answer is still rejected and counted. */
  for (int i = 0; i < 50; i++) answer_bogus(0, 0);
  ck_assert_uint_eq(stats()->rejected[CL_ACCEPT_UNKNOWN_NONCE], 50);
  ck_assert_uint_eq(count_of(0, CL_MSG_ERROR), 3);
  ck_assert_uint_eq(stats()->error_replies_suppressed, 47);
  /* Answers for a chip not registered here draw from the same bucket. */
  answer_bogus(0, 1);
  ck_assert_uint_eq(stats()->rejected_not_registered, 1);
  ck_assert_uint_eq(count_of(0, CL_MSG_ERROR), 3);
  /* The bucket is per connection: the other one still gets its replies. */
  answer_bogus(1, 1);
  ck_assert_uint_eq(count_of(1, CL_MSG_ERROR), 1);
  /* It refills at 3 per second. */
  W.now += 1000 * MS;
  for (int i = 0; i < 10; i++) answer_bogus(0, 0);
  ck_assert_uint_eq(count_of(0, CL_MSG_ERROR), 6);
  ck_assert_uint_eq(stats()->error_replies_suppressed, 47 + 1 + 7);
  /* The flood kept the session: a real answer is still accepted. */
  ck_assert(!W.closed[0]);
  const out_frame *f = next_challenge(0);
  cl_challenge ch = f->m.u.challenge;
  W.now = f->t_sent + 2 * MS;
  answer(0, 0, &ch, 0);
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
  register_chips(0, zero, 1);
  register_chips(1, one, 1);
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
  register_chips(0, zero, 1);
  ck_assert(W.closed[0]);
  ck_assert_uint_eq(stats()->write_queue_overflows, 2);
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

START_TEST(close_all_and_destroy) {
  start();
  open_conn(0);
  open_conn(1);
  static const int zero[] = {0}, one[] = {1};
  register_chips(0, zero, 1);
  register_chips(1, one, 1);
  cl_lm_close_all(W.lm, W.now);
  ck_assert(W.closed[0] && W.closed[1]);
  ck_assert_uint_eq(cl_lm_conn_count(W.lm), 0);
  ck_assert_uint_eq(cl_lm_live_count(W.lm), 0);
  ck_assert_uint_eq(cl_lm_next_due(W.lm), UINT64_MAX);
  ck_assert_uint_eq(stats()->conns_closed, 2);
  /* Closed: a new connection is refused at once. */
  ck_assert_ptr_null(open_conn(2));
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
  tcase_add_test(c, hello_register_burst_measurement);
  tcase_add_test(c, registration_refusals);
  tcase_add_test(c, every_rejection_reason);
  tcase_add_test(c, frame_errors_close);
  tcase_add_test(c, limits_and_timeouts);
  tcase_add_test(c, failed_writes_and_dropped_measurements);
  tcase_add_test(c, deferral_by_pending_limit);
  tcase_add_test(c, takeover_by_newer_connection);
  tcase_add_test(c, takeover_mid_probe);
  tcase_add_test(c, unenrolled_chip_dropped);
  tcase_add_test(c, workers_sign_and_verify);
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
