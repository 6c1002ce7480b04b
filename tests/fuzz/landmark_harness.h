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
 * LH_OPT_ASYNC, the jobs handed out so far come back, and, with
 * LH_OPT_ENROLL, the enrolled set may be reloaded; then the read goes to
 * the core with the clock as its receive time. The shell's send stamp is
 * the clock plus LH_STAMP_NS, so that an RTT taken from the core's clock
 * instead of the stamp shows.
 *
 * Because the random source is a function of the input alone, the same
 * input always gives the same landmark ephemeral keys and nonces, the same
 * challenges and the same signatures: the generator runs a growing input
 * through this harness to learn what the landmark sent (RegisterResults,
 * challenges, BurstEnds, Rekeys) and answers it, and the target sees
 * exactly those.
 *
 * The harness follows each session as both ends know it. It decodes what
 * the agent sends (its own frame assembler over the same bytes) and keeps
 * the chips' offers and Confirm signatures; from each RegisterResult entry,
 * the offer it answers and the landmark's ephemeral secret (the io->random
 * draw whose X25519 public key the entry carries) it derives the session
 * key on its own, so that it can check every MAC the core accepts.
 *
 * Checked on every input, beyond the sanitizers (abort on failure):
 *  - every frame the landmark sends is well formed, decodes, is a message
 *    the landmark may send, and only goes to an open connection: first the
 *    Hello (this landmark, suite 1) or the Error refusing the connection,
 *    then RegisterResults, Challenges, BurstEnds, Rekeys and Errors (with a
 *    code the landmark uses);
 *  - every accepted RegisterResult entry is for one of the fixture's
 *    active chips, answers an offer the agent made for it on that
 *    connection, carries a landmark handshake signature that verifies over
 *    it and an ephemeral key drawn from io->random; every refusal gives a
 *    reason;
 *  - every challenge names a chip enrolled and active now, with a session
 *    on that connection (a handshake whose Confirm the agent sent), with a
 *    fresh sequence number, while the chip has no other challenge
 *    outstanding;
 *  - an answer is accepted only for a challenge issued to that chip, once,
 *    with a MAC that verifies under the session key, received at the read
 *    that carried it, with rtt = receive - the shell's send stamp, within
 *    the deadline; a rejection names a challenge of that chip when it
 *    says it is a replay, late, or a bad MAC (which ends the challenge);
 *  - every BurstEnd lists exactly the chip's answers accepted since its
 *    previous BurstEnd, all in one session; every Rekey goes to a chip
 *    whose session is at least session_lifetime_s old;
 *  - a Transcript read in time for the burst awaiting it (as the first
 *    frame of its read), whose signature verifies over the harness's own
 *    record of that burst, gives a record before the core's next event
 *    (unless its job is cancelled or its connection closed);
 *  - every measurement verifies (both handshake signatures, the chip's
 *    transcript signature and the landmark's record signature), is the
 *    session the answers were checked under, holds only answers accepted
 *    for that chip and listed in a BurstEnd, each in one record only, with
 *    their MACs and RTTs, the minimum RTT, the burst's probe count, the
 *    chip's enrolled id, its bound at c and a time within the run;
 *  - every challenge ends at most once (answered, failed its MAC check or
 *    expired), and every challenge sent is in the lag histogram;
 *  - the core's timers never keep it busy at one instant (a pass that
 *    re-arms for "now" forever would be a livelock);
 *  - a connection is closed at most once; when all are closed, no chip is
 *    left live; every job handed out comes back before cl_lm_destroy;
 *  - no connection gets more Error frames than its reply bucket allows
 *    (max_error_replies_per_s at once, then that many per second), plus
 *    one for each chip dropped (LH_ACTIVE at most), plus the one that
 *    closes it; every write the shell refuses as a full queue (CL_ETOOBIG,
 *    LH_OPT_FAULTS) is counted as a write_queue_overflow; the core's
 *    counters of accepted answers, expired probes, measurements and jobs
 *    agree with what the shell saw.
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
#define LH_ACTIVE 2 /* chips 0 .. LH_ACTIVE-1 can have a session */
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
#define LH_OPT_ASYNC 1  /* jobs go to "workers": they come back before the next read */
#define LH_OPT_TWO 2    /* two connections: reads alternate between them */
#define LH_OPT_CANCEL 4 /* with LH_OPT_ASYNC: every second job comes back cancelled */
#define LH_OPT_TIGHT 8  /* one pending challenge per connection, one connection per address */
#define LH_OPT_HANGUP 16 /* the peers hang up after the last read, jobs still out */
#define LH_OPT_FAULTS 32 /* every LH_FAULT_EVERY-th frame fails to write (every second of
                            those as a full write queue); every 2nd measurement is dropped */
/* Rare enough that a connection gets through a burst, its BurstEnd and its
 * record before its write fails (a burst is burst + 1 frames). */
#define LH_FAULT_EVERY 16
#define LH_OPT_ENROLL 64 /* the enrolled set is reloaded before every LH_RELOAD_EVERY-th read,
                            with chip 1 inactive every other time */
#define LH_RELOAD_EVERY 8

#define LH_HEADER 3
#define LH_T0_NS 1000000000000ull
#define LH_STAMP_NS 7000ull /* the shell's send stamp, past the core's clock */
#define LH_UNIX0_NS 1700000000000000000ull
#define LH_MAX_SENT 4096 /* challenges remembered (the newest) */
#define LH_MAX_WORK 256
#define LH_OFFERS 16    /* offers remembered per connection and chip */
#define LH_CONFIRMS 16  /* Confirm signatures remembered per connection and chip */
#define LH_HS 8         /* handshakes remembered per connection and chip */
#define LH_DRAWS 512    /* 32-byte io->random draws remembered */
#define LH_MAX_EVENTS 512

/* The settings of the fuzzed landmark: landmarkd's defaults, but for a
 * short interval, idle timeout, transcript timeout and session lifetime
 * (the shortest allowed), so that seeds stay short. A transcript timeout
 * of 3 s lies between the shortest and the longest time to the end of the
 * chip's next burst, so that a missing transcript is noticed both ways: by
 * its timer, and by the next burst ending first. */
static const cl_lm_params lh_params = {
    .interval_s = 2,
    .jitter = 0.1,
    .burst = 5,
    .burst_gap_ms = 100,
    .deadline_ms = 1000,
    .speed_m_per_s = CL_SPEED_C,
    .transcript_timeout_ms = 3000,
    .session_lifetime_s = 60,
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

/* A challenge the landmark sent, and what became of it. */
typedef struct {
  uint64_t seq;
  uint8_t nonce[CL_NONCE_LEN];
  int chip; /* fixture index */
  int conn;
  uint64_t sent_ns; /* the shell's stamp */
  int accepted;
  int ended;     /* answered, failed its MAC check, or expired */
  int listed;    /* in a BurstEnd */
  int recorded;  /* in a measurement */
  /* Once accepted: the answer's MAC, its RTT, the session it was checked
   * under. */
  uint8_t mac[CL_MAC_LEN];
  uint64_t rtt_ns;
  uint32_t hs_id;
} lh_sent;

/* A chip's offer as the agent sent it (the Register's suite with it). */
typedef struct {
  uint32_t suite;
  uint8_t eph[CL_EPH_LEN];
  uint8_t nonce[CL_NONCE_LEN];
} lh_offer;

typedef struct {
  uint8_t sig[CL_SIG_LEN];
  uint64_t at_ns; /* the read that carried it */
} lh_confirm;

/* A handshake the landmark answered (an accepted RegisterResult entry). */
typedef struct {
  cl_handshake hs; /* chip_sig once a Confirm the agent sent verifies over it */
  uint8_t key[CL_SESSION_KEY_LEN];
  uint32_t id;
  uint64_t result_ns;
  int confirmed;
  uint64_t confirmed_ns; /* no later than the core began the session */
} lh_hs;

/* One chip on one connection. */
typedef struct {
  lh_offer offers[LH_OFFERS];
  uint64_t n_offers;
  lh_confirm confirms[LH_CONFIRMS];
  uint64_t n_confirms;
  lh_hs hs[LH_HS];
  uint64_t n_hs;
  uint64_t listed_to; /* the last seq of its latest BurstEnd */
  uint64_t last_sent; /* 1 + index of its latest challenge in lh.sent, 0: none */
  /* The burst awaiting its transcript as far as the harness can follow it
   * (be_pending), and a valid transcript of it read in time (expect, for
   * the burst beginning at expect_first) that must give a record before
   * the core's next event. */
  int be_pending;
  size_t be_n;
  uint64_t be_seqs[CL_MAX_BURST];
  uint64_t be_ns;
  int tx_later; /* a Transcript behind another frame of this read */
  int expect;
  uint64_t expect_first;
  int contested; /* another connection was answered a handshake of this chip */
} lh_pair;

typedef struct {
  cl_lm_conn *c;
  int opened, closed;
  int have_hello;
  uint64_t frames;  /* frames sent to it */
  uint64_t errors;  /* Error frames sent to it */
  cl_frame_asm rx;  /* the agent's stream as the harness decodes it */
  int rx_dead;
  unsigned rx_read_frames; /* frames completed in the current read */
  lh_pair pair[LH_CHIPS];
} lh_conn;

/* What the landmark sent, for the generator. */
typedef struct {
  cl_msg_type type; /* CL_MSG_BURST_END or CL_MSG_REKEY */
  int conn, chip;
  size_t n;
  uint64_t seqs[CL_MAX_BURST];
} lh_event;

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
  uint8_t draws[LH_DRAWS][32];
  uint64_t n_draws;
  lh_conn conn[2];
  int n_conns;
  uint64_t reads, reloads;
  int chip1_inactive; /* in the enrolled set the core has now */
  lh_sent sent[LH_MAX_SENT]; /* ring: challenge i is at i % LH_MAX_SENT */
  uint64_t n_sent;
  uint64_t last_seq;
  uint32_t hs_ids;
  cl_lm_work work[LH_MAX_WORK];
  size_t n_work;
  uint64_t jobs_handed, jobs_back;
  lh_event events[LH_MAX_EVENTS];
  size_t n_events;
  uint64_t accepted, measurements, dropped, expired;
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

/* The challenge with this seq (and nonce, when not NULL) among the newest
 * LH_MAX_SENT, or NULL. */
static inline lh_sent *lh_find_sent(lh *h, uint64_t seq, const uint8_t *nonce) {
  uint64_t n = h->n_sent < LH_MAX_SENT ? h->n_sent : LH_MAX_SENT;
  for (uint64_t i = 0; i < n; i++) {
    lh_sent *s = &h->sent[(h->n_sent - 1 - i) % LH_MAX_SENT];
    if (s->seq == seq) return !nonce || memcmp(s->nonce, nonce, CL_NONCE_LEN) == 0 ? s : NULL;
    if (s->seq < seq) break; /* seqs only grow */
  }
  return NULL;
}

/* ---- the sessions as the agent and the landmark know them ----------------- */

/*
 * A Confirm signature the agent sent, tried on a handshake the landmark
 * answered. Each is tried on every handshake of its chip and connection
 * not yet confirmed, when it is read and when the handshake is answered
 * (the agent may send it in the read whose Register the landmark answers).
 */
static void lh_try_confirm(lh_hs *x, const lh_confirm *cf) {
  if (x->confirmed) return;
  cl_handshake t = x->hs;
  memcpy(t.chip_sig, cf->sig, CL_SIG_LEN);
  if (cl_hs_verify_chip(&t) != CL_OK) return;
  x->hs = t;
  x->confirmed = 1;
  /* A Confirm read before its RegisterResult went out counts from the
   * result: the core cannot have taken it earlier. */
  x->confirmed_ns = cf->at_ns > x->result_ns ? cf->at_ns : x->result_ns;
}

/* The session of chip k on connection ci: the newest handshake the
 * landmark answered there that a Confirm the agent sent there signs.
 * During a rekey that is still the old one. NULL when there is none. */
static lh_hs *lh_session(lh *h, int ci, int k) {
  lh_pair *p = &h->conn[ci].pair[k];
  uint64_t n = p->n_hs < LH_HS ? p->n_hs : LH_HS;
  for (uint64_t i = 0; i < n; i++) {
    lh_hs *x = &p->hs[(p->n_hs - 1 - i) % LH_HS];
    if (x->confirmed) return x;
  }
  return NULL;
}

static lh_hs *lh_hs_by_id(lh *h, int ci, int k, uint32_t id) {
  lh_pair *p = &h->conn[ci].pair[k];
  uint64_t n = p->n_hs < LH_HS ? p->n_hs : LH_HS;
  for (uint64_t i = 0; i < n; i++) {
    lh_hs *x = &p->hs[(p->n_hs - 1 - i) % LH_HS];
    if (x->id == id) return x;
  }
  return NULL;
}

static int lh_hs_equal(const cl_handshake *a, const cl_handshake *b) {
  uint8_t x[CL_HS_BLOB_LEN], y[CL_HS_BLOB_LEN];
  cl_hs_blob_put(x, a);
  cl_hs_blob_put(y, b);
  return a->suite == b->suite && memcmp(a->landmark, b->landmark, CL_PK_LEN) == 0 &&
         memcmp(a->chip, b->chip, CL_PK_LEN) == 0 && memcmp(x, y, sizeof x) == 0;
}

/* The landmark's ephemeral secret behind eph: the io->random draw next to
 * the one that gave its nonce (the core draws both for one handshake). */
static int lh_find_eph_sk(const lh *h, const uint8_t nonce[CL_NONCE_LEN],
                          const uint8_t eph[CL_EPH_LEN], uint8_t sk[CL_EPH_SK_LEN]) {
  uint64_t n = h->n_draws < LH_DRAWS ? h->n_draws : LH_DRAWS;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t at = h->n_draws - 1 - i;
    if (memcmp(h->draws[at % LH_DRAWS], nonce, CL_NONCE_LEN) != 0) continue;
    for (int d = -1; d <= 1; d += 2) {
      uint64_t j = at + (uint64_t)(int64_t)d;
      if (j >= h->n_draws || h->n_draws - j > LH_DRAWS) continue;
      uint8_t pk[CL_EPH_LEN];
      if (crypto_scalarmult_base(pk, h->draws[j % LH_DRAWS]) == 0 &&
          memcmp(pk, eph, CL_EPH_LEN) == 0) {
        memcpy(sk, h->draws[j % LH_DRAWS], CL_EPH_SK_LEN);
        return 1;
      }
    }
  }
  return 0;
}

/* An accepted RegisterResult entry for chip k on connection ci: the offer
 * it answers, the landmark's signature, the session key. */
static void lh_result_accepted(lh *h, int ci, int k, const cl_chip_result *r) {
  lh_pair *p = &h->conn[ci].pair[k];
  cl_handshake hs;
  int found = 0;
  uint64_t n = p->n_offers < LH_OFFERS ? p->n_offers : LH_OFFERS;
  for (uint64_t i = 0; i < n && !found; i++) {
    const lh_offer *o = &p->offers[(p->n_offers - 1 - i) % LH_OFFERS];
    memset(&hs, 0, sizeof hs);
    hs.suite = o->suite;
    memcpy(hs.landmark, cl_key_public(h->landmark), CL_PK_LEN);
    memcpy(hs.chip, cl_key_public(h->chip[k]), CL_PK_LEN);
    memcpy(hs.landmark_eph, r->eph, CL_EPH_LEN);
    memcpy(hs.chip_eph, o->eph, CL_EPH_LEN);
    memcpy(hs.landmark_nonce, r->nonce, CL_NONCE_LEN);
    memcpy(hs.chip_nonce, o->nonce, CL_NONCE_LEN);
    memcpy(hs.landmark_sig, r->sig, CL_SIG_LEN);
    found = cl_hs_verify_landmark(&hs) == CL_OK;
  }
  LH_CHECK(found);
  uint8_t sk[CL_EPH_SK_LEN];
  LH_CHECK(lh_find_eph_sk(h, r->nonce, r->eph, sk));
  lh_hs *x = &p->hs[p->n_hs++ % LH_HS];
  memset(x, 0, sizeof *x);
  x->hs = hs;
  LH_CHECK(cl_session_key(&hs, CL_SIDE_LANDMARK, sk, x->key) == CL_OK);
  x->id = ++h->hs_ids;
  x->result_ns = h->now;
  uint64_t nc = p->n_confirms < LH_CONFIRMS ? p->n_confirms : LH_CONFIRMS;
  for (uint64_t i = 0; i < nc; i++)
    lh_try_confirm(x, &p->confirms[(p->n_confirms - 1 - i) % LH_CONFIRMS]);
}

static void lh_event_add(lh *h, cl_msg_type type, int ci, int k, const uint64_t *seqs, size_t n) {
  if (h->n_events == LH_MAX_EVENTS) return;
  lh_event *ev = &h->events[h->n_events++];
  ev->type = type;
  ev->conn = ci;
  ev->chip = k;
  ev->n = n;
  if (n) memcpy(ev->seqs, seqs, n * sizeof *seqs);
}

/* ---- the core's actions -------------------------------------------------- */

static void lh_sent_challenge(lh *h, int ci, const cl_msg *m, uint64_t *t_sent) {
  int k = lh_chip_index(h, m->u.challenge.chip);
  LH_CHECK(t_sent != NULL);
  LH_CHECK(k >= 0 && k < LH_ACTIVE && lh_session(h, ci, k) != NULL);
  LH_CHECK(!(k == 1 && h->chip1_inactive));
  LH_CHECK(m->u.challenge.seq > h->last_seq);
  h->last_seq = m->u.challenge.seq;
  /* One challenge outstanding per chip. */
  lh_pair *p = &h->conn[ci].pair[k];
  if (p->last_sent && h->n_sent - (p->last_sent - 1) <= LH_MAX_SENT)
    LH_CHECK(h->sent[(p->last_sent - 1) % LH_MAX_SENT].ended);
  *t_sent = h->now + LH_STAMP_NS;
  lh_sent *s = &h->sent[h->n_sent++ % LH_MAX_SENT];
  memset(s, 0, sizeof *s);
  s->seq = m->u.challenge.seq;
  memcpy(s->nonce, m->u.challenge.nonce, CL_NONCE_LEN);
  s->chip = k;
  s->conn = ci;
  s->sent_ns = *t_sent;
  p->last_sent = h->n_sent;
  LH_TRACE(h, "conn %d: challenge seq %llu to chip %d", ci, (unsigned long long)s->seq, k);
}

static void lh_sent_burst_end(lh *h, int ci, const cl_msg *m) {
  int k = lh_chip_index(h, m->u.burst_end.chip);
  size_t n = m->u.burst_end.n;
  LH_CHECK(k >= 0 && k < LH_ACTIVE && lh_session(h, ci, k) != NULL);
  LH_CHECK(n >= 1 && n <= h->params.burst);
  uint32_t hs_id = 0;
  for (size_t i = 0; i < n; i++) {
    lh_sent *s = lh_find_sent(h, m->u.burst_end.seqs[i], NULL);
    LH_CHECK(s != NULL && s->chip == k && s->conn == ci && s->accepted && !s->listed);
    LH_CHECK(i == 0 || s->hs_id == hs_id);
    hs_id = s->hs_id;
    s->listed = 1;
  }
  /* Nothing the chip answered since its previous BurstEnd is left out. */
  lh_pair *p = &h->conn[ci].pair[k];
  uint64_t span = h->n_sent < LH_MAX_SENT ? h->n_sent : LH_MAX_SENT;
  for (uint64_t i = 0; i < span; i++) {
    const lh_sent *s = &h->sent[(h->n_sent - 1 - i) % LH_MAX_SENT];
    if (s->seq <= p->listed_to) break;
    if (s->chip == k && s->conn == ci && s->accepted) LH_CHECK(s->listed);
  }
  p->listed_to = m->u.burst_end.seqs[n - 1];
  p->be_pending = 1;
  p->be_n = n;
  memcpy(p->be_seqs, m->u.burst_end.seqs, n * sizeof p->be_seqs[0]);
  p->be_ns = h->now;
  lh_event_add(h, CL_MSG_BURST_END, ci, k, m->u.burst_end.seqs, n);
  LH_TRACE(h, "conn %d: BurstEnd to chip %d, %zu seq(s) from %llu", ci, k, n,
           (unsigned long long)m->u.burst_end.seqs[0]);
}

static void lh_sent_register_result(lh *h, int ci, const cl_msg *m) {
  size_t accepted = 0;
  for (size_t i = 0; i < m->u.reg_result.n; i++) {
    const cl_chip_result *r = &m->u.reg_result.r[i];
    int k = lh_chip_index(h, r->chip);
    if (!r->accepted) {
      LH_CHECK(r->reason > CL_REFUSE_NONE && r->reason < CL_REFUSE__COUNT);
      continue;
    }
    LH_CHECK(k >= 0 && k < LH_ACTIVE && r->reason == CL_REFUSE_NONE);
    lh_result_accepted(h, ci, k, r);
    /* Once this session is confirmed, the chip leaves the other connection
     * (with the burst that awaits its transcript there). */
    h->conn[1 - ci].pair[k].contested = 1;
    accepted++;
  }
  LH_TRACE(h, "conn %d: RegisterResult, %zu of %zu chip(s) accepted", ci, accepted,
           m->u.reg_result.n);
}

static int lh_send(void *ctx, void *ud, const uint8_t *buf, size_t len, uint64_t *t_sent) {
  lh *h = ctx;
  int ci = lh_conn_index(h, ud);
  LH_CHECK(ci >= 0 && h->conn[ci].opened && !h->conn[ci].closed);
  lh_conn *cn = &h->conn[ci];
  int fail = (h->opts & LH_OPT_FAULTS) && ++h->sends % LH_FAULT_EVERY == 0;
  LH_CHECK(len > CL_FRAME_HDR_LEN && cl_get_be32(buf) == len - CL_FRAME_HDR_LEN);
  static cl_msg m;
  char err[160];
  LH_CHECK(cl_msg_decode(buf + CL_FRAME_HDR_LEN, len - CL_FRAME_HDR_LEN, &m, err, sizeof err) ==
           CL_OK);
  /* The Hello first (or the Error refusing the connection), then anything
   * else. */
  LH_CHECK((m.type == CL_MSG_HELLO) == (cn->frames == 0) ||
           (m.type == CL_MSG_ERROR && cn->frames == 0));
  cn->frames++;
  if (m.type != CL_MSG_CHALLENGE) LH_CHECK(t_sent == NULL);
  switch (m.type) {
  case CL_MSG_HELLO:
    LH_CHECK(memcmp(m.u.hello.landmark, cl_key_public(h->landmark), CL_PK_LEN) == 0);
    LH_CHECK(m.u.hello.suite == CL_SUITE_ED25519_X25519);
    cn->have_hello = 1;
    LH_TRACE(h, "conn %d: Hello", ci);
    break;
  case CL_MSG_REGISTER_RESULT: lh_sent_register_result(h, ci, &m); break;
  case CL_MSG_CHALLENGE: lh_sent_challenge(h, ci, &m, t_sent); break;
  case CL_MSG_BURST_END: lh_sent_burst_end(h, ci, &m); break;
  case CL_MSG_REKEY: {
    int k = lh_chip_index(h, m.u.rekey.chip);
    LH_CHECK(k >= 0 && k < LH_ACTIVE);
    const lh_hs *s = lh_session(h, ci, k);
    LH_CHECK(s != NULL &&
             h->now >= s->confirmed_ns + (uint64_t)h->params.session_lifetime_s * 1000000000ull);
    /* A rekey that fails drops the chip, with the burst that awaits its
     * transcript. */
    h->conn[ci].pair[k].be_pending = 0;
    lh_event_add(h, CL_MSG_REKEY, ci, k, NULL, 0);
    LH_TRACE(h, "conn %d: Rekey chip %d", ci, k);
    break;
  }
  case CL_MSG_ERROR: {
    LH_CHECK(m.u.error.code > CL_ERR_NONE && m.u.error.code <= CL_ERR_CHIP_TAKEN_OVER &&
             m.u.error.code != CL_ERR_BAD_LANDMARK);
    /* The connections open at the run's start: the bucket, its refill
     * since then, one per chip dropped, and the Error that closes. */
    uint64_t rate = h->params.max_error_replies_per_s;
    LH_CHECK(++cn->errors <=
             rate + rate * ((h->now - LH_T0_NS) / 1000000000ull + 1) + LH_ACTIVE + 1);
    LH_TRACE(h, "conn %d: Error %s: %s", ci, cl_wire_error_name(m.u.error.code), m.u.error.text);
    break;
  }
  default: LH_CHECK(!"the landmark sent a message it may not send");
  }
  if (!fail) return CL_OK;
  if (h->sends % (2 * LH_FAULT_EVERY) == 0) {
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

/* A record (kept or dropped) of the burst a transcript was expected for. */
static void lh_record_made(lh *h, const cl_measurement *m) {
  int k = lh_chip_index(h, m->hs.chip);
  const lh_sent *s = m->count > 0 ? lh_find_sent(h, m->probes[0].seq, NULL) : NULL;
  if (k < 0 || !s) return;
  lh_pair *p = &h->conn[s->conn].pair[k];
  if (p->expect && p->expect_first == m->probes[0].seq) p->expect = 0;
}

static int lh_measurement(void *ctx, const cl_lm_record *rec) {
  lh *h = ctx;
  lh_record_made(h, &rec->m);
  if ((h->opts & LH_OPT_FAULTS) && ++h->measurement_calls % 2 == 0) {
    h->dropped++;
    LH_TRACE(h, "measurement dropped");
    return CL_ENOMEM;
  }
  const cl_measurement *m = &rec->m;
  LH_CHECK(cl_measurement_verify(m) == CL_OK);
  int k = lh_chip_index(h, m->hs.chip);
  LH_CHECK(k >= 0 && k < LH_ACTIVE);
  LH_CHECK(memcmp(m->hs.landmark, cl_key_public(h->landmark), CL_PK_LEN) == 0);
  LH_CHECK(m->count >= 1 && m->count <= h->params.burst);
  /* Every entry an answer accepted for this chip and listed in a
   * BurstEnd, in no other record, as the landmark checked it, in one
   * session: the one the record names. */
  const lh_sent *first = NULL;
  uint64_t min_rtt = UINT64_MAX, last_recv = 0;
  for (uint32_t i = 0; i < m->count; i++) {
    const cl_probe_entry *e = &m->probes[i];
    lh_sent *s = lh_find_sent(h, e->seq, e->nonce);
    LH_CHECK(s != NULL && s->chip == k && s->accepted && s->listed && !s->recorded);
    LH_CHECK(memcmp(s->mac, e->mac, CL_MAC_LEN) == 0 && s->rtt_ns == e->rtt_ns);
    if (first) LH_CHECK(s->conn == first->conn && s->hs_id == first->hs_id);
    if (!first) first = s;
    s->recorded = 1;
    if (e->rtt_ns < min_rtt) min_rtt = e->rtt_ns;
    if (s->sent_ns + s->rtt_ns > last_recv) last_recv = s->sent_ns + s->rtt_ns;
  }
  const lh_hs *x = lh_hs_by_id(h, first->conn, k, first->hs_id);
  LH_CHECK(x != NULL && lh_hs_equal(&m->hs, &x->hs));
  LH_CHECK(m->rtt_ns == min_rtt && m->rtt_ns <= (uint64_t)h->params.deadline_ms * 1000000ull);
  LH_CHECK(m->probes_sent == h->params.burst && rec->probes_sent == m->probes_sent);
  /* Taken when the burst ended: after its last accepted answer, by now. */
  LH_CHECK(m->measured_unix_ns >= LH_UNIX0_NS + (last_recv - LH_T0_NS) &&
           m->measured_unix_ns <= LH_UNIX0_NS + (h->now - LH_T0_NS));
  LH_CHECK(rec->chip_id == 100 + k && !rec->is_link);
  LH_CHECK(rec->bound_m == cl_bound_m(m->rtt_ns, CL_SPEED_C));
  h->measurements++;
  LH_TRACE(h, "chip %d: measurement, %u accepted, rtt %llu ns", k, m->count,
           (unsigned long long)m->rtt_ns);
  return CL_OK;
}

static int lh_work(void *ctx, const cl_lm_work *w) {
  lh *h = ctx;
  if (h->n_work == LH_MAX_WORK) return CL_ENOMEM; /* the core does it itself */
  h->work[h->n_work++] = *w;
  h->jobs_handed++;
  return CL_OK;
}

/* Deterministic: the n-th call's bytes depend on n alone. Draws of 32
 * bytes (nonces, ephemeral secrets) are remembered. */
static void lh_random(void *ctx, void *buf, size_t n) {
  lh *h = ctx;
  uint8_t seed[randombytes_SEEDBYTES];
  memset(seed, 0x5a, sizeof seed);
  uint64_t k = ++h->rng_calls;
  memcpy(seed, &k, sizeof k);
  randombytes_buf_deterministic(buf, n, seed);
  if (n == 32) memcpy(h->draws[h->n_draws++ % LH_DRAWS], buf, 32);
}

static uint64_t lh_unix_ns(void *ctx) {
  lh *h = ctx;
  return LH_UNIX0_NS + (h->now - LH_T0_NS);
}

static void lh_probe(void *ctx, const cl_lm_probe_event *e) {
  lh *h = ctx;
  int k = lh_chip_index(h, e->chip);
  LH_CHECK(k >= 0 && k < LH_ACTIVE);
  lh_sent *s = e->probe ? lh_find_sent(h, e->probe->seq, e->probe->nonce) : NULL;
  uint64_t deadline = (uint64_t)h->params.deadline_ms * 1000000ull;
  if (e->probe) LH_CHECK(s != NULL && s->chip == k && e->probe->sent_ns == s->sent_ns);
  if (e->expired) {
    h->expired++;
    LH_CHECK(s != NULL && !s->ended && h->now >= s->sent_ns + deadline);
    s->ended = 1;
    LH_TRACE(h, "chip %d: challenge seq %llu expired", k, (unsigned long long)s->seq);
    return;
  }
  switch (e->result) {
  case CL_ACCEPT_OK: break;
  case CL_ACCEPT_BAD_MAC:
    /* The probe is used up: its challenge ends here. */
    LH_CHECK(s != NULL && !s->ended && e->mac == NULL);
    s->ended = 1;
    break;
  case CL_ACCEPT_REPLAY: LH_CHECK(s != NULL && s->accepted); break;
  case CL_ACCEPT_LATE:
    LH_CHECK(s != NULL && (s->ended || h->now > s->sent_ns + deadline || h->now < s->sent_ns));
    break;
  default: LH_CHECK(e->result == CL_ACCEPT_UNKNOWN_PROBE && e->probe == NULL); break;
  }
  if (e->result != CL_ACCEPT_OK) {
    LH_TRACE(h, "chip %d: answer rejected: %s", k, cl_accept_result_name(e->result));
    return;
  }
  /* Only a challenge issued to this chip, once, with a MAC under the
   * session key, received at this read, within the deadline. */
  LH_CHECK(s != NULL && !s->ended && e->mac != NULL);
  const lh_hs *x = lh_session(h, s->conn, k);
  LH_CHECK(x != NULL);
  LH_CHECK(cl_answer_check(x->key, x->hs.suite, x->hs.landmark, x->hs.chip, s->seq, s->nonce,
                           e->mac) == CL_OK);
  LH_CHECK(s->sent_ns + e->rtt_ns == h->now && e->rtt_ns <= deadline);
  s->accepted = s->ended = 1;
  memcpy(s->mac, e->mac, CL_MAC_LEN);
  s->rtt_ns = e->rtt_ns;
  s->hs_id = x->id;
  h->accepted++;
  LH_TRACE(h, "chip %d: challenge seq %llu answered, rtt %llu ns", k, (unsigned long long)s->seq,
           (unsigned long long)e->rtt_ns);
}

/* ---- what the agent sends --------------------------------------------------- */

/* Keeps the offers and Confirm signatures of one frame from the agent. */
/*
 * A Transcript from the agent. When it is the first frame of its read the
 * core takes it in the state the harness saw last (the timers and jobs
 * before the read): if it answers the burst awaiting its transcript, in
 * time, with a signature that verifies over the harness's own record of
 * that burst, the core must make a record of it. A Transcript behind other
 * frames of its read may meet a burst the core ends while reading them:
 * the harness forgets the burst awaiting (lh_read).
 */
static void lh_agent_transcript(lh *h, int ci, const cl_msg *m, int first) {
  int k = lh_chip_index(h, m->u.transcript.chip);
  if (k < 0 || k >= LH_ACTIVE) return;
  lh_pair *p = &h->conn[ci].pair[k];
  if (!first) {
    p->tx_later = 1;
    return;
  }
  if (p->be_pending && !p->contested && m->u.transcript.first_seq == p->be_seqs[0] &&
      h->now < p->be_ns + (uint64_t)h->params.transcript_timeout_ms * 1000000ull) {
    cl_probe_entry e[CL_MAX_BURST];
    const lh_hs *x = NULL;
    for (size_t i = 0; i < p->be_n; i++) {
      const lh_sent *s = lh_find_sent(h, p->be_seqs[i], NULL);
      LH_CHECK(s != NULL);
      memset(&e[i], 0, sizeof e[i]);
      e[i].seq = s->seq;
      memcpy(e[i].nonce, s->nonce, CL_NONCE_LEN);
      memcpy(e[i].mac, s->mac, CL_MAC_LEN);
      x = lh_hs_by_id(h, ci, k, s->hs_id);
    }
    if (x && cl_transcript_verify(&x->hs, e, p->be_n, m->u.transcript.sig) == CL_OK) {
      p->expect = 1;
      p->expect_first = p->be_seqs[0];
    }
  }
  /* The core takes the burst awaiting, whatever the Transcript says. */
  p->be_pending = 0;
}

/* Every expected record was made, on the connections still open. */
static void lh_check_expected(lh *h) {
  for (int i = 0; i < h->n_conns; i++)
    for (int k = 0; k < LH_ACTIVE; k++) {
      lh_pair *p = &h->conn[i].pair[k];
      /* A cancelled job, or a connection closed, takes the record along. */
      if (p->expect && h->conn[i].c && !(h->opts & LH_OPT_CANCEL))
        LH_CHECK(!"a valid transcript in time gave no record");
      p->expect = 0;
    }
}

static void lh_agent_frame(lh *h, int ci, const uint8_t *body, size_t len) {
  static cl_msg m;
  lh_conn *cn = &h->conn[ci];
  int first = cn->rx_read_frames++ == 0;
  if (cl_msg_decode(body, len, &m, NULL, 0) != CL_OK) return;
  if (m.type == CL_MSG_TRANSCRIPT) lh_agent_transcript(h, ci, &m, first);
  if (m.type == CL_MSG_REGISTER) {
    int seen[LH_CHIPS] = {0};
    for (size_t i = 0; i < m.u.reg.n; i++) {
      /* The landmark answers a chip's first offer; later ones are duplicates. */
      int k = lh_chip_index(h, m.u.reg.chips[i].chip);
      if (k < 0 || seen[k]++) continue;
      lh_pair *p = &cn->pair[k];
      lh_offer *o = &p->offers[p->n_offers++ % LH_OFFERS];
      o->suite = m.u.reg.suite;
      memcpy(o->eph, m.u.reg.chips[i].eph, CL_EPH_LEN);
      memcpy(o->nonce, m.u.reg.chips[i].nonce, CL_NONCE_LEN);
    }
  } else if (m.type == CL_MSG_CONFIRM) {
    int seen[LH_CHIPS] = {0};
    for (size_t i = 0; i < m.u.confirm.n; i++) {
      /* A chip's first entry is the one its handshake awaits; later ones
       * find it awaiting nothing. */
      int k = lh_chip_index(h, m.u.confirm.chips[i].chip);
      if (k < 0 || seen[k]++) continue;
      lh_pair *p = &cn->pair[k];
      lh_confirm *cf = &p->confirms[p->n_confirms++ % LH_CONFIRMS];
      memcpy(cf->sig, m.u.confirm.chips[i].sig, CL_SIG_LEN);
      cf->at_ns = h->now;
      uint64_t nh = p->n_hs < LH_HS ? p->n_hs : LH_HS;
      for (uint64_t j = 0; j < nh; j++) lh_try_confirm(&p->hs[(p->n_hs - 1 - j) % LH_HS], cf);
    }
  }
}

/* Decodes the bytes of a read as the agent's frames, before the core
 * sees them (its answer to a frame may come while it reads). */
static void lh_agent_bytes(lh *h, int ci, const uint8_t *data, size_t n) {
  lh_conn *cn = &h->conn[ci];
  size_t off = 0;
  cn->rx_read_frames = 0;
  while (off < n && !cn->rx_dead) {
    const uint8_t *f = NULL;
    size_t flen = 0, used = 0;
    int rc = cl_frame_asm_feed(&cn->rx, data + off, n - off, &used, &f, &flen);
    if (rc < 0) {
      cn->rx_dead = 1; /* the core closes the connection on the same prefix */
      break;
    }
    off += used;
    if (rc == 0) break;
    lh_agent_frame(h, ci, f, flen);
  }
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

/* Hands back every job handed out so far: done by a "worker", or, with
 * LH_OPT_CANCEL, every second one cancelled without running. */
static void lh_finish_work(lh *h) {
  /* A job coming back may hand out another: it comes back in this pass. */
  for (size_t i = 0; i < h->n_work; i++) {
    cl_lm_work *w = &h->work[i];
    int status = 0;
    if ((h->opts & LH_OPT_CANCEL) && ++h->jobs_back % 2 == 0)
      status = -1;
    else
      cl_lm_work_run(w, h->landmark);
    cl_lm_work_done(h->lm, w, status, h->now);
  }
  h->n_work = 0;
}

/* Gives the core the fixture's enrolled set: chips 0 .. LH_ENROLLED-1 as
 * ids 100 + k, chip 1 active unless chip1_inactive. */
static void lh_enroll(lh *h, int chip1_inactive) {
  h->chip1_inactive = chip1_inactive;
  cl_lm_target *t = calloc(LH_ENROLLED, sizeof *t);
  LH_CHECK(t != NULL);
  for (int k = 0; k < LH_ENROLLED; k++) {
    memcpy(t[k].pk, cl_key_public(h->chip[k]), CL_PK_LEN);
    t[k].id = 100 + k;
    t[k].active = k != LH_INACTIVE && !(k == 1 && chip1_inactive);
  }
  cl_lm_set_enrolled(h->lm, t, LH_ENROLLED, h->now);
}

/* LH_OPT_ENROLL: chip 1 deactivated (dropped from its connection, with
 * the burst that awaits its transcript) or active again. */
static void lh_reload(lh *h) {
  int inactive = ++h->reloads % 2 == 1;
  LH_TRACE(h, "enrolled set reloaded, chip 1 %s", inactive ? "inactive" : "active");
  lh_enroll(h, inactive);
  if (!inactive) return;
  for (int i = 0; i < h->n_conns; i++) h->conn[i].pair[1].be_pending = 0;
}

/* Starts a run: a fresh core with the fixed enrolled set and its
 * connection(s) open. */
static inline void lh_begin(lh *h, uint8_t opts, uint64_t step) {
  h->opts = opts;
  h->step = step;
  h->now = LH_T0_NS;
  h->rng_calls = h->n_draws = 0;
  h->n_sent = h->last_seq = 0;
  h->hs_ids = 0;
  h->n_work = 0;
  h->jobs_handed = h->jobs_back = 0;
  h->n_events = 0;
  h->reads = h->reloads = 0;
  h->accepted = h->measurements = h->dropped = h->expired = 0;
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
  lh_enroll(h, 0);
  h->n_conns = (opts & LH_OPT_TWO) ? 2 : 1;
  uint8_t addr[CL_PK_LEN];
  memset(addr, 0, sizeof addr);
  addr[0] = 4;
  for (int i = 0; i < h->n_conns; i++) {
    cl_frame_asm_init(&h->conn[i].rx, CL_FRAME_MAX);
    h->conn[i].opened = 1;
    h->conn[i].c = cl_lm_conn_open(h->lm, &h->conn[i], addr, "fuzz", h->now);
    /* With one connection per address the second is refused. */
    int may_fail = i == 1 && (opts & LH_OPT_TIGHT);
    LH_CHECK((h->conn[i].c != NULL && h->conn[i].have_hello) || may_fail);
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
  lh_check_expected(h);
  if ((h->opts & LH_OPT_ENROLL) && ++h->reads % LH_RELOAD_EVERY == 0) lh_reload(h);
  if (!h->conn[ci].c) return;
  LH_TRACE(h, "conn %d: read of %zu bytes", ci, n);
  lh_agent_bytes(h, ci, data, n);
  cl_lm_conn_read(h->lm, h->conn[ci].c, data, n, h->now);
  for (int k = 0; k < LH_ACTIVE; k++) {
    lh_pair *p = &h->conn[ci].pair[k];
    if (p->tx_later) p->be_pending = p->tx_later = 0;
  }
}

/* Ends a run: jobs come back, every connection closes, and the counters
 * must agree with what was seen. */
static inline void lh_end(lh *h) {
  if (h->opts & LH_OPT_HANGUP) {
    for (int i = 0; i < h->n_conns; i++)
      if (h->conn[i].c) cl_lm_conn_close(h->lm, h->conn[i].c, h->now);
  }
  lh_finish_work(h);
  lh_check_expected(h);
  const cl_lm_stats *st = cl_lm_get_stats(h->lm);
  /* Every challenge that went out, written or not, is in the lag
   * histogram, once. */
  LH_CHECK(st->lag.total == h->n_sent);
  LH_CHECK(st->write_queue_overflows == h->queue_full);
  LH_CHECK(st->responses_accepted == h->accepted && st->probe_timeouts == h->expired);
  LH_CHECK(st->measurements == h->measurements && st->measurements_dropped == h->dropped);
  uint64_t queued = 0;
  for (int i = 0; i < CL_LM_WORK__COUNT; i++) queued += st->jobs_queued[i];
  LH_CHECK(queued == h->jobs_handed);
  cl_lm_close_all(h->lm, h->now);
  for (int i = 0; i < h->n_conns; i++) {
    LH_CHECK(h->conn[i].closed);
    cl_frame_asm_fini(&h->conn[i].rx);
  }
  LH_CHECK(cl_lm_conn_count(h->lm) == 0 && cl_lm_live_count(h->lm) == 0);
  LH_CHECK(h->n_work == 0);
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
