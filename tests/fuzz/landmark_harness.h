/*
 * The harness of fuzz_landmark, shared with the generator of its seed
 * corpus (gen_landmark.c): it runs one input through the landmark's real
 * protocol core (lib/wire/cl_lmcore.c) with virtual time, a deterministic
 * random source and a fixed world, and checks what the core does.
 *
 * Input layout: byte 0 chooses how the stream is cut into reads
 * (LH_MODE_*), byte 1 how far the clock moves before each read
 * (lh_step_ns), byte 2 options (LH_OPT_*); the rest is the byte stream from
 * the agent(s). Before each read the clock moves on, the core's timers that
 * came due fire (as a libuv loop runs due timers before it polls), and, with
 * LH_OPT_ASYNC, the signature jobs handed out so far come back; then the
 * read goes to the core with the clock as its receive time. The shell's
 * send stamp is the clock plus LH_STAMP_NS, so that an RTT taken from the
 * core's clock instead of the stamp shows.
 *
 * Because the random source is a function of the input alone, the same
 * input always gives the same Hello, the same challenges and the same
 * signatures: the generator runs a growing input through this harness to
 * learn the challenges it must answer, and the target sees exactly those.
 *
 * Checked on every input, beyond the sanitizers (abort on failure):
 *  - every frame the landmark sends is well formed, decodes, is a message
 *    the landmark may send, and only goes to an open connection; every
 *    challenge names this landmark and a registered fixture chip, carries a
 *    valid landmark signature and a fresh sequence number;
 *  - an answer is accepted only for a challenge issued to that chip, once,
 *    with the chip's valid signature, with rtt = receive - send within the
 *    deadline;
 *  - every measurement verifies (all three signatures), carries the
 *    fastest accepted answer of a challenge sent to that chip, its enrolled
 *    id and its bound at c;
 *  - every challenge ends at most once (answered, failed its signature
 *    check or expired), and every challenge sent is in the lag histogram;
 *  - the core's timers never keep it busy at one instant (a pass that
 *    re-arms for "now" forever would be a livelock);
 *  - a connection is closed at most once; when all are closed, no chip is
 *    left live;
 *  - no connection gets more Error frames than its reply bucket allows
 *    (max_error_replies_per_s at once, then that many per second) plus the
 *    one that closes it; every write the shell refuses as a full queue
 *    (CL_ETOOBIG, LH_OPT_FAULTS) is counted as a write_queue_overflow.
 *
 * Include from one .c file only.
 */
#ifndef LANDMARK_HARNESS_H
#define LANDMARK_HARNESS_H

#include "cl_err.h"
#include "cl_frame.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_lmcore.h"
#include "cl_log.h"
#include "cl_msg.h"
#include "cl_probe.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LH_CHECK(cond)                                                                  \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);          \
      abort();                                                                          \
    }                                                                                   \
  } while (0)

/* Chips: 0 and 1 enrolled and active, 2 enrolled but inactive, 3 unknown. */
#define LH_CHIPS 4
#define LH_ENROLLED 3
#define LH_INACTIVE 2
#define LH_UNKNOWN 3

/* Read modes (byte 0 & 3). */
#define LH_MODE_FRAMES 0 /* one read per frame, as the length prefix says; a frame
                            the input does not finish: a byte per read */
#define LH_MODE_BYTES 1  /* one byte per read */
#define LH_MODE_FIXED 2  /* (byte 0 >> 2) + 1 bytes per read */
#define LH_MODE_RANDOM 3 /* 1..300 bytes per read, pseudo-random */

/* Options (byte 2). */
#define LH_OPT_ASYNC 1  /* signatures go to "workers": the jobs come back before the next read */
#define LH_OPT_TWO 2    /* two connections: reads alternate between them */
#define LH_OPT_CANCEL 4 /* with LH_OPT_ASYNC: every job comes back cancelled */
#define LH_OPT_TIGHT 8  /* one pending challenge per connection, one connection per address */
#define LH_OPT_HANGUP 16 /* the peers hang up after the last read, jobs still out */
#define LH_OPT_FAULTS 32 /* every 5th frame fails to write (every 10th as a full write queue);
                            every 2nd measurement is dropped */

#define LH_HEADER 3
#define LH_T0_NS 1000000000000ull
#define LH_STAMP_NS 7000ull /* the shell's send stamp, past the core's clock */
#define LH_UNIX0_NS 1700000000000000000ull
#define LH_MAX_SENT 4096
#define LH_MAX_WORK 256

/* The settings of the fuzzed landmark: landmarkd's defaults, but for a
 * short interval (and so a short idle timeout) so that seeds stay short. */
static const cl_lm_params lh_params = {
    .interval_s = 2,
    .jitter = 0.1,
    .burst = 5,
    .burst_gap_ms = 100,
    .deadline_ms = 1000,
    .speed_m_per_s = CL_SPEED_C,
    .max_connections = 4,
    .max_connections_per_address = 2,
    .max_pending_challenges = 64,
    .handshake_timeout_ms = 10000,
    .idle_timeout_s = 20,
    .max_frame_bytes = CL_FRAME_MAX,
    .max_error_replies_per_s = 10,
};

/* Clock advance before each read: (low 6 bits + 1) units of 1 ms, 10 ms,
 * 100 ms or 1 s (top 2 bits), at most 64 s. */
static inline uint64_t lh_step_ns(uint8_t b) {
  static const uint64_t unit_ms[4] = {1, 10, 100, 1000};
  return ((uint64_t)(b & 63) + 1) * unit_ms[b >> 6] * 1000000ull;
}

typedef struct {
  cl_challenge ch;
  int chip; /* fixture index */
  int conn;
  uint64_t sent_ns;
  int accepted;
  int ended; /* answered, failed its signature check, or expired */
} lh_sent;

typedef struct {
  void *ud_tag; /* &lh.conn[i]: the shell handle given to the core */
  cl_lm_conn *c;
  int opened, closed;
  uint8_t session[CL_NONCE_LEN];
  int have_session;
  uint64_t errors; /* Error frames sent to it */
} lh_conn;

typedef struct {
  cl_key *landmark;
  cl_key *chip[LH_CHIPS];
  /* run state */
  uint8_t opts;
  cl_lm_params params;
  cl_lm_io io;
  cl_lm *lm;
  uint64_t now, step;
  uint64_t rng_calls;
  lh_conn conn[2];
  int n_conns;
  lh_sent sent[LH_MAX_SENT];
  size_t n_sent;
  uint64_t last_seq;
  cl_lm_work work[LH_MAX_WORK];
  size_t n_work;
  uint64_t accepted, measurements, expired;
  uint64_t sends, measurement_calls;
  uint64_t queue_full; /* sends refused with CL_ETOOBIG */
  int trace;
} lh;

#define LH_TRACE(h, ...)                                                        \
  do {                                                                          \
    if ((h)->trace) {                                                           \
      fprintf(stderr, "[%9.3f ms] ", (double)((h)->now - LH_T0_NS) / 1e6);      \
      fprintf(stderr, __VA_ARGS__);                                             \
      fputc('\n', stderr);                                                      \
    }                                                                           \
  } while (0)

static inline int lh_chip_index(const lh *h, const uint8_t *pk) {
  for (int k = 0; k < LH_CHIPS; k++)
    if (memcmp(pk, cl_key_public(h->chip[k]), CL_PK_LEN) == 0) return k;
  return -1;
}

static inline int lh_conn_index(const lh *h, void *ud) {
  for (int i = 0; i < 2; i++)
    if (ud == &h->conn[i]) return i;
  return -1;
}

/* ---- the core's actions -------------------------------------------------- */

static int lh_send(void *ctx, void *ud, const uint8_t *buf, size_t len, uint64_t *t_sent) {
  lh *h = ctx;
  int ci = lh_conn_index(h, ud);
  LH_CHECK(ci >= 0 && h->conn[ci].opened && !h->conn[ci].closed);
  int fail = (h->opts & LH_OPT_FAULTS) && ++h->sends % 5 == 0;
  LH_CHECK(len > CL_FRAME_HDR_LEN && cl_get_be32(buf) == len - CL_FRAME_HDR_LEN);
  static cl_msg m;
  char err[160];
  LH_CHECK(cl_msg_decode(buf + CL_FRAME_HDR_LEN, len - CL_FRAME_HDR_LEN, &m, err, sizeof err) ==
           CL_OK);
  const uint8_t *lpk = cl_key_public(h->landmark);
  switch (m.type) {
  case CL_MSG_HELLO:
    LH_CHECK(t_sent == NULL && !h->conn[ci].have_session);
    LH_CHECK(memcmp(m.u.hello.landmark, lpk, CL_PK_LEN) == 0);
    memcpy(h->conn[ci].session, m.u.hello.session_nonce, CL_NONCE_LEN);
    h->conn[ci].have_session = 1;
    LH_TRACE(h, "conn %d: Hello", ci);
    break;
  case CL_MSG_REGISTER_RESULT:
    LH_CHECK(t_sent == NULL);
    LH_TRACE(h, "conn %d: RegisterResult for %zu chip(s)", ci, m.u.reg_result.n);
    break;
  case CL_MSG_ERROR: {
    LH_CHECK(t_sent == NULL);
    /* The connections open at the run's start: the bucket, its refill
     * since then, and the Error that closes. */
    uint64_t rate = h->params.max_error_replies_per_s;
    LH_CHECK(++h->conn[ci].errors <= rate + rate * ((h->now - LH_T0_NS) / 1000000000ull + 1) + 1);
    LH_TRACE(h, "conn %d: Error %s: %s", ci, cl_wire_error_name(m.u.error.code), m.u.error.text);
    break;
  }
  case CL_MSG_CHALLENGE: {
    const cl_challenge *ch = &m.u.challenge;
    int k = lh_chip_index(h, ch->chip);
    LH_CHECK(t_sent != NULL);
    LH_CHECK(memcmp(ch->landmark, lpk, CL_PK_LEN) == 0);
    LH_CHECK(k >= 0 && k < LH_ENROLLED && k != LH_INACTIVE);
    LH_CHECK(cl_challenge_verify(ch) == CL_OK);
    LH_CHECK(ch->seq > h->last_seq);
    h->last_seq = ch->seq;
    *t_sent = h->now + LH_STAMP_NS;
    if (h->n_sent < LH_MAX_SENT) {
      lh_sent *s = &h->sent[h->n_sent++];
      memset(s, 0, sizeof *s);
      s->ch = *ch;
      s->chip = k;
      s->conn = ci;
      s->sent_ns = *t_sent;
    }
    LH_TRACE(h, "conn %d: challenge seq %llu to chip %d", ci, (unsigned long long)ch->seq, k);
    break;
  }
  default: LH_CHECK(!"the landmark sent a message it may not send");
  }
  if (!fail) return CL_OK;
  if (h->sends % 10 == 0) {
    h->queue_full++;
    LH_TRACE(h, "conn %d: the write queue is full", ci);
    return CL_ETOOBIG;
  }
  LH_TRACE(h, "conn %d: the write fails", ci);
  return CL_EIO;
}

static void lh_close(void *ctx, void *ud) {
  lh *h = ctx;
  int ci = lh_conn_index(h, ud);
  LH_CHECK(ci >= 0 && !h->conn[ci].closed);
  h->conn[ci].closed = 1;
  h->conn[ci].c = NULL;
  LH_TRACE(h, "conn %d: closed", ci);
}

static lh_sent *lh_find_sent(lh *h, const cl_challenge *ch) {
  for (size_t i = 0; i < h->n_sent; i++)
    if (h->sent[i].ch.seq == ch->seq &&
        memcmp(h->sent[i].ch.nonce, ch->nonce, CL_NONCE_LEN) == 0)
      return &h->sent[i];
  return NULL;
}

static int lh_measurement(void *ctx, const cl_lm_record *rec) {
  lh *h = ctx;
  if ((h->opts & LH_OPT_FAULTS) && ++h->measurement_calls % 2 == 0) {
    LH_TRACE(h, "measurement dropped");
    return CL_ENOMEM;
  }
  const cl_measurement *m = &rec->m;
  LH_CHECK(cl_measurement_verify(m) == CL_OK);
  lh_sent *s = lh_find_sent(h, &m->ch);
  LH_CHECK(s != NULL && s->accepted && memcmp(m->ch.chip, s->ch.chip, CL_PK_LEN) == 0);
  LH_CHECK(m->probe_count >= 1 && m->probe_count <= h->params.burst);
  LH_CHECK(m->rtt_ns <= (uint64_t)h->params.deadline_ms * 1000000ull);
  LH_CHECK(rec->chip_id == 100 + s->chip && !rec->is_link);
  LH_CHECK(rec->bound_m == cl_bound_m(m->rtt_ns, CL_SPEED_C));
  LH_CHECK(rec->probes_sent == h->params.burst);
  h->measurements++;
  LH_TRACE(h, "chip %d: measurement, %u accepted, rtt %llu ns", s->chip, m->probe_count,
           (unsigned long long)m->rtt_ns);
  return CL_OK;
}

static int lh_work(void *ctx, const cl_lm_work *w) {
  lh *h = ctx;
  if (h->n_work == LH_MAX_WORK) return CL_ENOMEM; /* the core does it itself */
  h->work[h->n_work++] = *w;
  return CL_OK;
}

/* Deterministic: the n-th call's bytes depend on n alone. */
static void lh_random(void *ctx, void *buf, size_t n) {
  lh *h = ctx;
  uint8_t seed[randombytes_SEEDBYTES];
  memset(seed, 0x5a, sizeof seed);
  uint64_t k = ++h->rng_calls;
  memcpy(seed, &k, sizeof k);
  randombytes_buf_deterministic(buf, n, seed);
}

static uint64_t lh_unix_ns(void *ctx) {
  lh *h = ctx;
  return LH_UNIX0_NS + (h->now - LH_T0_NS);
}

static void lh_probe(void *ctx, const cl_lm_probe_event *e) {
  lh *h = ctx;
  int k = lh_chip_index(h, e->chip);
  LH_CHECK(k >= 0);
  if (e->expired) {
    h->expired++;
    lh_sent *s = e->ch ? lh_find_sent(h, e->ch) : NULL;
    LH_CHECK(s != NULL && s->chip == k && !s->ended);
    LH_CHECK(h->now >= s->sent_ns + (uint64_t)h->params.deadline_ms * 1000000ull);
    s->ended = 1;
    LH_TRACE(h, "chip %d: challenge seq %llu expired", k, (unsigned long long)e->ch->seq);
    return;
  }
  if (e->result == CL_ACCEPT_BAD_SIGNATURE) {
    /* The probe is used up: its challenge ends here. */
    lh_sent *s = e->ch ? lh_find_sent(h, e->ch) : NULL;
    LH_CHECK(s != NULL && s->chip == k && !s->ended);
    s->ended = 1;
  }
  if (e->result != CL_ACCEPT_OK) {
    LH_TRACE(h, "chip %d: answer rejected: %s", k, cl_accept_result_name(e->result));
    return;
  }
  /* Only a challenge issued to this chip, once, with its valid signature,
   * received at one of the reads, within the deadline. */
  lh_sent *s = lh_find_sent(h, e->ch);
  LH_CHECK(s != NULL && s->chip == k && !s->ended);
  LH_CHECK(memcmp(&s->ch, e->ch, sizeof s->ch) == 0);
  LH_CHECK(e->sig != NULL && cl_response_verify(&s->ch, e->sig) == CL_OK);
  uint64_t t_recv = s->sent_ns + e->rtt_ns;
  LH_CHECK(t_recv <= h->now && (t_recv - LH_T0_NS) % h->step == 0);
  LH_CHECK(e->rtt_ns <= (uint64_t)h->params.deadline_ms * 1000000ull);
  s->accepted = s->ended = 1;
  h->accepted++;
  LH_TRACE(h, "chip %d: challenge seq %llu answered, rtt %llu ns", k,
           (unsigned long long)s->ch.seq, (unsigned long long)e->rtt_ns);
}

/* ---- running an input ------------------------------------------------------- */

static inline void lh_init(lh *h) {
  memset(h, 0, sizeof *h);
  if (sodium_init() < 0) abort();
  h->trace = getenv("FUZZ_LANDMARK_TRACE") != NULL;
  if (!h->trace) cl_log_set_level(CL_LOG_ERROR);
  uint8_t seed[32];
  memset(seed, 0x01, sizeof seed);
  LH_CHECK(cl_key_from_seed(&h->landmark, seed) == CL_OK);
  for (int k = 0; k < LH_CHIPS; k++) {
    memset(seed, 0x02 + k, sizeof seed);
    LH_CHECK(cl_key_from_seed(&h->chip[k], seed) == CL_OK);
  }
}

/* Completes every signature job handed out so far. */
static void lh_finish_work(lh *h) {
  while (h->n_work > 0) {
    cl_lm_work w = h->work[0];
    memmove(h->work, h->work + 1, (h->n_work - 1) * sizeof *h->work);
    h->n_work--;
    int status = 0;
    if (h->opts & LH_OPT_CANCEL)
      status = -1;
    else
      cl_lm_work_run(&w, h->landmark);
    cl_lm_work_done(h->lm, &w, status, h->now);
  }
}

/* Starts a run: a fresh core with the fixed enrolled set and its
 * connection(s) open. */
static inline void lh_begin(lh *h, uint8_t opts, uint64_t step) {
  h->opts = opts;
  h->step = step;
  h->now = LH_T0_NS;
  h->rng_calls = 0;
  h->n_sent = 0;
  h->last_seq = 0;
  h->n_work = 0;
  h->accepted = h->measurements = h->expired = 0;
  h->sends = h->measurement_calls = h->queue_full = 0;
  memset(h->conn, 0, sizeof h->conn);
  h->params = lh_params;
  h->params.async_signatures = (opts & LH_OPT_ASYNC) != 0;
  if (opts & LH_OPT_TIGHT) {
    h->params.max_pending_challenges = 1;
    h->params.max_connections_per_address = 1;
  }
  h->io = (cl_lm_io){.send = lh_send,
                     .close = lh_close,
                     .measurement = lh_measurement,
                     .work = lh_work,
                     .random = lh_random,
                     .unix_ns = lh_unix_ns,
                     .probe = lh_probe};
  LH_CHECK(cl_lm_create(&h->lm, &h->params, h->landmark, &h->io, h) == CL_OK);
  cl_lm_target *t = calloc(LH_ENROLLED, sizeof *t);
  LH_CHECK(t != NULL);
  for (int k = 0; k < LH_ENROLLED; k++) {
    memcpy(t[k].pk, cl_key_public(h->chip[k]), CL_PK_LEN);
    t[k].id = 100 + k;
    t[k].active = k != LH_INACTIVE;
  }
  cl_lm_set_enrolled(h->lm, t, LH_ENROLLED, h->now);
  h->n_conns = (opts & LH_OPT_TWO) ? 2 : 1;
  uint8_t addr[CL_PK_LEN];
  memset(addr, 0, sizeof addr);
  addr[0] = 4;
  for (int i = 0; i < h->n_conns; i++) {
    h->conn[i].opened = 1;
    h->conn[i].c = cl_lm_conn_open(h->lm, &h->conn[i], addr, "fuzz", h->now);
    /* With one connection per address the second is refused; with write
     * faults the fifth frame (a Hello) may fail. */
    int may_fail = (i == 1 && (opts & LH_OPT_TIGHT)) || (opts & LH_OPT_FAULTS);
    LH_CHECK((h->conn[i].c != NULL && h->conn[i].have_session) || may_fail);
    LH_CHECK(h->conn[i].c != NULL || h->conn[i].closed);
  }
}

/* One read of n bytes for connection ci, after the clock moved one step. */
static inline void lh_read(lh *h, int ci, const uint8_t *data, size_t n) {
  h->now += h->step;
  /* Every timer due by now, also those the pass itself re-armed for now. */
  for (int pass = 0; cl_lm_next_due(h->lm) <= h->now; pass++) {
    LH_CHECK(pass < 1000);
    cl_lm_run_timers(h->lm, h->now);
  }
  lh_finish_work(h);
  if (!h->conn[ci].c) return;
  LH_TRACE(h, "conn %d: read of %zu bytes", ci, n);
  cl_lm_conn_read(h->lm, h->conn[ci].c, data, n, h->now);
}

/* Ends a run: jobs come back, every connection closes, and the counters
 * must agree with what was seen. */
static inline void lh_end(lh *h) {
  if (h->opts & LH_OPT_HANGUP) {
    for (int i = 0; i < h->n_conns; i++)
      if (h->conn[i].c) cl_lm_conn_close(h->lm, h->conn[i].c, h->now);
  }
  lh_finish_work(h);
  /* Every challenge that went out, written or not, is in the lag
   * histogram, once. */
  const cl_lm_stats *st = cl_lm_get_stats(h->lm);
  LH_CHECK(st->lag.total == h->n_sent || h->n_sent == LH_MAX_SENT);
  LH_CHECK(st->write_queue_overflows == h->queue_full);
  cl_lm_close_all(h->lm, h->now);
  for (int i = 0; i < h->n_conns; i++) LH_CHECK(h->conn[i].closed);
  LH_CHECK(cl_lm_conn_count(h->lm) == 0 && cl_lm_live_count(h->lm) == 0);
  cl_lm_destroy(&h->lm);
}

/* How the input is cut into reads. */
typedef struct {
  uint8_t mode;
  uint32_t rng;
  int trickle; /* frames mode: the last frame is unfinished, a byte per read */
} lh_reader;

/* Length of the next read at data[off..size). */
static inline size_t lh_next_read(lh_reader *rd, const uint8_t *data, size_t off, size_t size) {
  size_t left = size - off, n;
  switch (rd->mode & 3) {
  case LH_MODE_FRAMES:
    if (rd->trickle || left < CL_FRAME_HDR_LEN) {
      n = 1;
    } else {
      uint32_t flen = cl_get_be32(data + off);
      n = flen == 0 ? left : (size_t)flen + CL_FRAME_HDR_LEN;
      if (n > left) {
        /* The input ends inside this frame: it trickles in. */
        rd->trickle = 1;
        n = 1;
      }
    }
    break;
  case LH_MODE_BYTES: n = 1; break;
  case LH_MODE_FIXED: n = (size_t)(rd->mode >> 2) + 1; break;
  default:
    rd->rng ^= rd->rng << 13;
    rd->rng ^= rd->rng >> 17;
    rd->rng ^= rd->rng << 5;
    n = 1 + rd->rng % 300;
    break;
  }
  return n < left ? n : left;
}

/*
 * Runs a whole input: header, then every read. With finish, ends the run
 * (lh_end); without, leaves the core running so that the caller can look
 * at what was sent (the generator does), and the caller calls lh_end.
 */
static inline void lh_run(lh *h, const uint8_t *data, size_t size, int finish) {
  if (size < LH_HEADER) return;
  uint8_t mode = data[0];
  uint64_t step = lh_step_ns(data[1]);
  uint8_t opts = data[2];
  data += LH_HEADER;
  size -= LH_HEADER;
  lh_begin(h, opts, step);
  lh_reader rd = {.mode = mode, .rng = 0x9E3779B9u ^ mode};
  size_t off = 0;
  unsigned reads = 0;
  while (off < size) {
    size_t n = lh_next_read(&rd, data, off, size);
    int ci = h->n_conns == 2 ? (int)(reads % 2) : 0;
    lh_read(h, ci, data + off, n);
    off += n;
    reads++;
    int open = 0;
    for (int i = 0; i < h->n_conns; i++) open += h->conn[i].c != NULL;
    if (!open) break;
  }
  if (finish) lh_end(h);
}

#endif
