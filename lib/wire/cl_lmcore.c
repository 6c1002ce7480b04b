/*
 * The landmark's protocol core: connections, registration, the probe cycle
 * of every chip, the acceptance checks of every answer, bursts and limits,
 * with no I/O of its own. See cl_lmcore.h for the events and actions, and
 * docs/PROTOCOL.md for the protocol this implements.
 *
 * Ownership: the core owns connections (a list) and a connection owns its
 * registered chips. Each chip has one timer in the core's queue driving its
 * probe cycle (idle -> probe -> wait for answer or deadline -> gap -> probe
 * ... -> idle), so scheduling costs O(log n) and never scans chips. A
 * closed connection or a detached chip goes to a graveyard and is freed
 * when the public call that closed it returns, so that no caller up the
 * stack is left holding freed memory.
 *
 * Limits, all from cl_lm_params (docs/PROTOCOL.md §5.5): connections in
 * total and per IP address (per_addr, taken at open and given back in
 * conn_close), challenges outstanding per connection (n_pending), the
 * handshake deadline and the idle timeout (the connection's timer; only a
 * complete frame counts as activity), frame sizes (the assembler's max),
 * Error replies to rejected Responses (a token bucket per connection,
 * err_rl) and the shell's write queue (io->send refusing a frame with
 * CL_ETOOBIG closes the connection). Every refusal is counted in
 * cl_lm_stats and logged rate-limited.
 */
#include "cl_lmcore.h"
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_log.h"
#include "cl_pkmap.h"
#include "cl_tq.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS 1000000ull

/* PH_SIGNING: the next challenge is being signed by a worker; no timer runs
 * meanwhile (sign_result sends it). */
typedef enum { PH_IDLE, PH_WAIT, PH_GAP, PH_SIGNING } chip_phase;

typedef enum { CONN_HELLO, CONN_REGISTERED } conn_state;

/* A timer of the queue and what it belongs to. */
typedef enum { TIMER_CHIP, TIMER_CONN } timer_kind;
typedef struct {
  cl_tq_entry e; /* first member: a popped entry is its lm_timer */
  timer_kind kind;
} lm_timer;

typedef struct lm_chip {
  lm_timer timer;
  uint8_t pk[CL_PK_LEN];
  int64_t db_id;
  int is_landmark; /* a peer landmark: its bursts go to landmark_links */
  cl_lm *lm;
  cl_lm_conn *conn; /* NULL once detached */
  cl_probe ring[CL_LM_PROBE_RING];
  unsigned ring_next;
  cl_probe *cur; /* the outstanding probe, or NULL */
  uint32_t burst_left;
  cl_burst burst;
  chip_phase phase;
  uint64_t due_ns;      /* when the timer was due: for the probe lag */
  uint64_t signing_seq; /* seq of the challenge being signed in PH_SIGNING, else 0 */
  struct lm_chip *dead_next;
} lm_chip;

struct cl_lm_conn {
  lm_timer timer; /* handshake deadline, then idle checks */
  void *ud;
  cl_lm *lm;
  cl_frame_asm fa;
  uint8_t session_nonce[CL_NONCE_LEN];
  conn_state state;
  int closing;
  lm_chip *chips[CL_MAX_CHIPS_PER_REGISTER];
  size_t n_chips;
  uint64_t last_rx_ns;   /* receive time of the last complete frame */
  uint32_t n_pending;    /* probes outstanding on this connection */
  int announced;         /* "connection accepted" was logged */
  int addr_counted;      /* holds one count in lm->per_addr under addr_key */
  uint8_t addr_key[CL_PK_LEN];
  cl_ratelimit err_rl;   /* Error replies that keep the connection */
  char peer[64];
  cl_lm_conn *prev, *next, *dead_next;
};

/* Connections open from one IP address (an IPv6 /64). */
typedef struct {
  uint32_t n;
} addr_count;

struct cl_lm {
  const cl_lm_params *p;
  const cl_key *key;
  const cl_lm_io *io;
  void *ctx;
  cl_tq tq;
  size_t n_timers; /* chips and connections alive: each may have its timer armed */
  cl_pkmap *enrolled; /* pk -> cl_lm_target* inside enrolled_arr */
  cl_lm_target *enrolled_arr;
  cl_pkmap *live; /* pk -> lm_chip* */
  cl_lm_conn *conns;
  size_t n_conns;
  cl_pkmap *per_addr; /* address key -> addr_count (malloc'd; freed when it drops to 0) */
  uint64_t seq;
  uint64_t now; /* monotonic time of the event being handled */
  uint64_t idle_check_ns; /* period of a registered connection's idle checks */
  cl_lm_stats st;
  cl_ratelimit rl;
  cl_ratelimit rl_overflow; /* write queue overflows: not drowned by the rejections before them */
  int closing;
  int depth; /* 1 inside a public call: the graveyard is emptied when it returns */
  lm_chip *dead_chips;
  cl_lm_conn *dead_conns;
  cl_msg scratch; /* decode target; messages are handled one at a time */
};

static void conn_close(cl_lm_conn *c);
static void chip_schedule(lm_chip *ch, uint64_t delay_ms, chip_phase phase);

static void short_hex(const uint8_t *pk, char out[17]) { cl_hex_encode(out, pk, 8); }

/* ---- entry and exit of every public call --------------------------------- */

static void enter(cl_lm *lm, uint64_t now_ns) {
  /* The shell's callbacks never call back into the core. */
  assert(lm->depth == 0);
  lm->depth++;
  if (now_ns > lm->now) lm->now = now_ns;
}

/* Frees what was closed during the call, once the outermost call ends. */
static void leave(cl_lm *lm) {
  assert(lm->depth == 1);
  lm->depth = 0;
  while (lm->dead_chips) {
    lm_chip *ch = lm->dead_chips;
    lm->dead_chips = ch->dead_next;
    free(ch);
  }
  while (lm->dead_conns) {
    cl_lm_conn *c = lm->dead_conns;
    lm->dead_conns = c->dead_next;
    cl_frame_asm_fini(&c->fa);
    free(c);
  }
}

/* ---- randomness ------------------------------------------------------------ */

/* Uniform in [0, upper), without modulo bias (as randombytes_uniform). */
static uint32_t uniform(cl_lm *lm, uint32_t upper) {
  if (upper < 2) return 0;
  uint32_t min = (1U + ~upper) % upper; /* 2^32 mod upper */
  uint32_t r;
  do {
    lm->io->random(lm->ctx, &r, sizeof r);
  } while (r < min);
  return r % upper;
}

static uint64_t jittered_interval_ms(cl_lm *lm) {
  double u = (double)uniform(lm, 1000001) / 1e6; /* [0, 1] */
  double f = 1.0 + lm->p->jitter * (2.0 * u - 1.0);
  double ms = (double)lm->p->interval_s * 1000.0 * f;
  return ms < 1 ? 1 : (uint64_t)ms;
}

/* ---- rejection logging ------------------------------------------------------ */

/* Logs a peer's misbehaviour through the limiter rl, so that a flood cannot
 * turn into a log flood. */
static void log_reject_rl(cl_lm *lm, cl_ratelimit *rl, cl_lm_conn *c, const char *what,
                          const char *detail) {
  uint64_t suppressed = 0;
  if (!cl_ratelimit_allow(rl, lm->now, &suppressed)) return;
  char q[160];
  cl_log_quote(q, sizeof q, detail, strlen(detail));
  cl_log(CL_LOG_WARN, "rejected", "reason=%s peer=%s detail=%s suppressed=%llu", what, c->peer, q,
         (unsigned long long)suppressed);
}

/* The same through the one limiter of every rejection of the landmark. */
static void log_reject(cl_lm *lm, cl_lm_conn *c, const char *what, const char *detail) {
  log_reject_rl(lm, &lm->rl, c, what, detail);
}

/* ---- sending ----------------------------------------------------------------- */

/*
 * The shell's write queue for this connection is full: the peer does not
 * read what it is sent (or far too slowly). Counted and logged with the
 * peer and its chips, through a limiter of its own: the flood of rejected
 * answers that usually comes first has used up the common one. The caller
 * closes the connection.
 */
static void write_queue_overflow(cl_lm_conn *c) {
  cl_lm *lm = c->lm;
  lm->st.write_queue_overflows++;
  char detail[160];
  int n = snprintf(detail, sizeof detail, "write queue full, the peer does not read; chips");
  for (size_t i = 0; i < c->n_chips && i < 4 && n > 0 && (size_t)n < sizeof detail; i++) {
    char hex[17];
    short_hex(c->chips[i]->pk, hex);
    n += snprintf(detail + n, sizeof detail - (size_t)n, " %s", hex);
  }
  if (n > 0 && (size_t)n < sizeof detail) {
    if (c->n_chips == 0)
      snprintf(detail + n, sizeof detail - (size_t)n, " none");
    else if (c->n_chips > 4)
      snprintf(detail + n, sizeof detail - (size_t)n, " and %zu more", c->n_chips - 4);
  }
  log_reject_rl(lm, &lm->rl_overflow, c, "write_queue_full", detail);
}

/* Sends a complete frame through the shell (t_sent: see cl_lm_io.send).
 * Returns 0, or an error after closing the connection. */
static int send_frame(cl_lm_conn *c, const uint8_t *buf, size_t len, uint64_t *t_sent) {
  if (c->closing) return CL_EIO;
  int rc = c->lm->io->send(c->lm->ctx, c->ud, buf, len, t_sent);
  if (rc != CL_OK) {
    if (rc == CL_ETOOBIG) write_queue_overflow(c);
    conn_close(c);
    return rc < 0 ? rc : CL_EIO;
  }
  return CL_OK;
}

static void send_error(cl_lm_conn *c, cl_wire_error code, const char *text) {
  uint8_t buf[512];
  size_t len;
  if (cl_msg_encode_error(code, text, buf, sizeof buf, &len) == CL_OK)
    send_frame(c, buf, len, NULL);
}

/*
 * An Error reply that keeps the connection (a rejected Response): at most
 * max_error_replies_per_s per connection, so that a peer flooding bad
 * answers gets a bounded trickle of replies instead of one per answer (a
 * peer that does not read would otherwise fill our write queue with them).
 * A reply over the limit is dropped and counted; the rejection itself is
 * counted by the caller either way.
 */
static void reply_error(cl_lm_conn *c, cl_wire_error code, const char *text) {
  if (!cl_ratelimit_allow(&c->err_rl, c->lm->now, NULL)) {
    c->lm->st.error_replies_suppressed++;
    return;
  }
  send_error(c, code, text);
}

/* Sends an Error frame and closes: for protocol violations. */
static void fail_conn(cl_lm_conn *c, cl_wire_error code, const char *what, const char *text) {
  log_reject(c->lm, c, what, text);
  send_error(c, code, text);
  conn_close(c);
}

/* ---- chips --------------------------------------------------------------------- */

static void probe_event(cl_lm *lm, const lm_chip *ch, const cl_probe *p, const uint8_t *sig,
                        cl_accept_result r, int expired, uint64_t rtt) {
  if (!lm->io->probe) return;
  cl_lm_probe_event e = {.chip = ch->pk,
                         .ch = p ? &p->ch : NULL,
                         .sig = sig,
                         .result = r,
                         .expired = expired,
                         .rtt_ns = rtt};
  lm->io->probe(lm->ctx, &e);
}

/* Forgets the chip's outstanding probe, if any, in its connection's count
 * of pending challenges. */
static void clear_outstanding(lm_chip *ch) {
  if (ch->cur && ch->conn && ch->conn->n_pending > 0) ch->conn->n_pending--;
  ch->cur = NULL;
}

/* Removes a chip from its connection and the live map; it is freed when the
 * public call returns. */
static void chip_detach(lm_chip *ch) {
  cl_lm *lm = ch->lm;
  cl_lm_conn *c = ch->conn;
  if (!c) return;
  clear_outstanding(ch);
  for (size_t i = 0; i < c->n_chips; i++) {
    if (c->chips[i] == ch) {
      c->chips[i] = c->chips[--c->n_chips];
      break;
    }
  }
  if (cl_pkmap_get(lm->live, ch->pk) == ch) cl_pkmap_del(lm->live, ch->pk);
  ch->conn = NULL;
  cl_tq_stop(&lm->tq, &ch->timer.e);
  lm->n_timers--;
  ch->dead_next = lm->dead_chips;
  lm->dead_chips = ch;
}

static void finish_burst(lm_chip *ch) {
  cl_lm *lm = ch->lm;
  if (ch->burst.accepted > 0) {
    cl_lm_record rec;
    memset(&rec, 0, sizeof rec);
    cl_burst_to_measurement(&ch->burst, lm->io->unix_ns(lm->ctx), &rec.m);
    cl_measurement_sign(&rec.m, lm->key);
    rec.chip_id = ch->db_id;
    rec.is_link = ch->is_landmark;
    rec.probes_sent = lm->p->burst;
    rec.bound_m = cl_bound_m(rec.m.rtt_ns, CL_SPEED_C);
    rec.est_speed = lm->p->speed_m_per_s;
    rec.est_bound_m = cl_bound_m(rec.m.rtt_ns, lm->p->speed_m_per_s);
    if (lm->io->measurement(lm->ctx, &rec) == CL_OK)
      lm->st.measurements++;
    else
      lm->st.measurements_dropped++;
    char hex[17];
    short_hex(ch->pk, hex);
    cl_log(CL_LOG_DEBUG, "measurement", "chip=%s rtt_ns=%llu bound_m=%llu probes=%u", hex,
           (unsigned long long)rec.m.rtt_ns, (unsigned long long)rec.bound_m,
           rec.m.probe_count);
  }
  cl_burst_reset(&ch->burst);
  chip_schedule(ch, jittered_interval_ms(lm), PH_IDLE);
}

/* Called when the current probe is settled (answered, failed or expired). */
static void probe_settled(lm_chip *ch) {
  clear_outstanding(ch);
  if (ch->burst_left > 0)
    chip_schedule(ch, ch->lm->p->burst_gap_ms, PH_GAP);
  else
    finish_burst(ch);
}

/*
 * When the chip's connection already has max_pending_challenges unanswered
 * challenges, puts the probe off for a moment without using up a probe of
 * the burst, and returns 1.
 */
static int deferred_for_room(lm_chip *ch) {
  cl_lm *lm = ch->lm;
  if (ch->conn->n_pending < lm->p->max_pending_challenges) return 0;
  lm->st.probes_deferred++;
  uint64_t retry_ms = lm->p->deadline_ms < 50 ? lm->p->deadline_ms : 50;
  chip_schedule(ch, retry_ms, PH_GAP);
  return 1;
}

/*
 * Sends one signed challenge: takes a slot of the chip's ring, encodes and
 * writes; the shell stamps the send time immediately before its write.
 * Everything costly (the nonce, the signature, the encoding) happens before
 * that; the deadline timer is armed after it. `due_ns` is when the probe
 * was scheduled, for the lag histogram.
 */
static void send_signed(lm_chip *ch, const cl_challenge *chal, uint64_t due_ns) {
  cl_lm *lm = ch->lm;
  cl_lm_conn *c = ch->conn;
  /* Other chips of the connection may have taken the room meanwhile. */
  if (deferred_for_room(ch)) return;
  cl_probe *p = &ch->ring[ch->ring_next++ % CL_LM_PROBE_RING];
  memset(p, 0, sizeof *p);
  p->ch = *chal;
  cl_msg m;
  m.type = CL_MSG_CHALLENGE;
  m.u.challenge = p->ch;
  uint8_t buf[512];
  size_t len = 0;
  if (cl_msg_encode(&m, buf, sizeof buf, &len) != CL_OK) {
    cl_log(CL_LOG_ERROR, "cannot encode challenge", NULL);
    return;
  }
  p->state = CL_PROBE_OUTSTANDING;
  ch->cur = p;
  c->n_pending++;
  ch->burst_left--;
  ch->phase = PH_WAIT;
  lm->st.probes_sent++;
  /* The clock starts in the shell: nothing but its write lies between. */
  uint64_t t_sent = lm->now;
  int rc = send_frame(c, buf, len, &t_sent);
  /* How late the probe went out against its schedule (every challenge sent
   * counts, written or not). */
  cl_histogram_observe(&lm->st.lag,
                       t_sent > due_ns ? (double)(t_sent - due_ns) / 1e9 : 0.0);
  if (rc != CL_OK) return; /* the connection is closed and the chip detached */
  p->sent_ns = t_sent;
  p->deadline_ns = t_sent + (uint64_t)lm->p->deadline_ms * NS_PER_MS;
  cl_tq_arm(&lm->tq, &ch->timer.e, p->deadline_ns);
}

/*
 * Starts one probe: a fresh challenge, signed by a worker when the shell
 * takes the job (async_signatures), else here, then sent by send_signed.
 */
static void send_probe(lm_chip *ch) {
  cl_lm *lm = ch->lm;
  uint64_t due_ns = ch->due_ns;
  if (deferred_for_room(ch)) return;
  cl_challenge chal;
  memset(&chal, 0, sizeof chal);
  memcpy(chal.landmark, cl_key_public(lm->key), CL_PK_LEN);
  memcpy(chal.chip, ch->pk, CL_PK_LEN);
  lm->io->random(lm->ctx, chal.nonce, CL_NONCE_LEN);
  chal.issued_unix_ns = lm->io->unix_ns(lm->ctx);
  chal.seq = ++lm->seq;
  if (lm->p->async_signatures) {
    /* The chip waits for this challenge from now on: sign_result sends it
     * when the job comes back through cl_lm_work_done. */
    chip_phase was = ch->phase;
    ch->phase = PH_SIGNING;
    ch->signing_seq = chal.seq;
    cl_lm_work w = {.kind = CL_LM_WORK_SIGN, .ch = chal, .due_ns = due_ns};
    if (lm->io->work(lm->ctx, &w) == CL_OK) {
      lm->st.sign_queued++;
      return;
    }
    ch->phase = was;
    ch->signing_seq = 0;
  }
  cl_challenge_sign(&chal, lm->key);
  send_signed(ch, &chal, due_ns);
}

static void chip_timer(lm_chip *ch) {
  cl_lm *lm = ch->lm;
  /* A detached chip's timer was stopped with it. */
  assert(ch->conn && !ch->conn->closing);
  switch (ch->phase) {
  case PH_IDLE:
    cl_burst_reset(&ch->burst);
    ch->burst_left = lm->p->burst;
    send_probe(ch);
    break;
  case PH_GAP:
    send_probe(ch);
    break;
  case PH_SIGNING: /* no timer runs in this phase */
    assert(!"chip timer in PH_SIGNING");
    break;
  case PH_WAIT: {
    /* The timer runs for the outstanding probe's deadline itself (and is
     * stopped while its answer is being verified). */
    cl_probe *p = ch->cur;
    assert(p && p->state == CL_PROBE_OUTSTANDING && lm->now >= p->deadline_ns);
    p->state = CL_PROBE_EXPIRED;
    lm->st.probe_timeouts++;
    probe_event(lm, ch, p, NULL, CL_ACCEPT_OK, 1, 0);
    probe_settled(ch);
    break;
  }
  }
}

static void chip_schedule(lm_chip *ch, uint64_t delay_ms, chip_phase phase) {
  cl_lm *lm = ch->lm;
  ch->phase = phase;
  ch->due_ns = lm->now + delay_ms * NS_PER_MS;
  cl_tq_arm(&lm->tq, &ch->timer.e, ch->due_ns);
}

static lm_chip *chip_create(cl_lm_conn *c, const uint8_t pk[CL_PK_LEN], int64_t db_id,
                            int is_landmark) {
  cl_lm *lm = c->lm;
  if (cl_tq_reserve(&lm->tq, lm->n_timers + 1) != CL_OK) return NULL;
  lm_chip *ch = calloc(1, sizeof *ch);
  if (!ch) return NULL;
  memcpy(ch->pk, pk, CL_PK_LEN);
  ch->db_id = db_id;
  ch->is_landmark = is_landmark;
  ch->lm = lm;
  ch->timer.kind = TIMER_CHIP;
  lm_chip *old = NULL;
  if (cl_pkmap_put(lm->live, pk, ch, (void **)&old) != CL_OK) {
    free(ch);
    return NULL;
  }
  ch->conn = c;
  lm->n_timers++;
  if (old) {
    /* A newer proven registration wins: the old connection loses the chip. */
    char hex[17];
    short_hex(pk, hex);
    cl_log(CL_LOG_INFO, "chip re-registered on a new connection", "chip=%s old_peer=%s peer=%s",
           hex, old->conn ? old->conn->peer : "-", c->peer);
    /* chip_detach only removes the map entry if it still points to old. */
    chip_detach(old);
  }
  c->chips[c->n_chips++] = ch;
  /* The first burst comes at a uniformly random time within one interval,
   * so that chips registering together (every agent reconnecting after a
   * landmark restart) load the landmark evenly from the start instead of
   * in one surge that then repeats every interval. */
  uint32_t spread = lm->p->interval_s * 1000u;
  chip_schedule(ch, uniform(lm, spread + 1), PH_IDLE);
  return ch;
}

/* ---- connections ------------------------------------------------------------- */

static void conn_close(cl_lm_conn *c) {
  if (c->closing) return;
  c->closing = 1;
  cl_lm *lm = c->lm;
  while (c->n_chips > 0) chip_detach(c->chips[c->n_chips - 1]);
  if (c->prev)
    c->prev->next = c->next;
  else
    lm->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  lm->n_conns--;
  lm->st.conns_closed++;
  if (c->addr_counted) {
    addr_count *ac = cl_pkmap_get(lm->per_addr, c->addr_key);
    if (ac && --ac->n == 0) {
      cl_pkmap_del(lm->per_addr, c->addr_key);
      free(ac);
    }
    c->addr_counted = 0;
  }
  /* Refused connections were never announced: a flood of them must not
   * turn into a flood of log lines (their refusal is logged rate-limited). */
  if (c->announced) cl_log(CL_LOG_INFO, "connection closed", "peer=%s", c->peer);
  cl_tq_stop(&lm->tq, &c->timer.e);
  lm->n_timers--;
  lm->io->close(lm->ctx, c->ud);
  c->dead_next = lm->dead_conns;
  lm->dead_conns = c;
}

static void conn_timer(cl_lm_conn *c) {
  cl_lm *lm = c->lm;
  assert(!c->closing); /* a closed connection's timer was stopped */
  if (c->state == CONN_HELLO) {
    lm->st.handshake_timeouts++;
    fail_conn(c, CL_ERR_LIMIT, "handshake_timeout", "no Register before the handshake timeout");
    return;
  }
  uint64_t idle_ns = (uint64_t)lm->p->idle_timeout_s * 1000000000ull;
  if (lm->now - c->last_rx_ns > idle_ns) {
    lm->st.idle_timeouts++;
    fail_conn(c, CL_ERR_LIMIT, "idle_timeout",
              "no complete frame from the peer within the idle timeout");
    return;
  }
  cl_tq_arm(&lm->tq, &c->timer.e, lm->now + lm->idle_check_ns);
}

static void handle_register(cl_lm_conn *c, const cl_msg *m) {
  cl_lm *lm = c->lm;
  const uint8_t *lpk = cl_key_public(lm->key);
  cl_msg res;
  memset(&res, 0, sizeof res);
  res.type = CL_MSG_REGISTER_RESULT;
  res.u.reg_result.n = m->u.reg.n;
  size_t accepted = 0;
  char agent_q[CL_MAX_AGENT_NAME * 4 + 3];
  cl_log_quote(agent_q, sizeof agent_q, m->u.reg.agent, strlen(m->u.reg.agent));
  for (size_t i = 0; i < m->u.reg.n; i++) {
    const cl_chip_claim *cl = &m->u.reg.chips[i];
    cl_chip_result *r = &res.u.reg_result.r[i];
    memcpy(r->chip, cl->chip, CL_PK_LEN);
    int dup = 0;
    for (size_t j = 0; j < i; j++)
      if (memcmp(m->u.reg.chips[j].chip, cl->chip, CL_PK_LEN) == 0) dup = 1;
    const cl_lm_target *e = cl_pkmap_get(lm->enrolled, cl->chip);
    if (dup)
      r->reason = CL_REFUSE_DUPLICATE;
    else if (!e)
      r->reason = CL_REFUSE_NOT_ENROLLED;
    else if (!e->active)
      r->reason = CL_REFUSE_INACTIVE;
    else if (cl_register_verify(lpk, c->session_nonce, cl->chip, cl->proof) != CL_OK)
      r->reason = CL_REFUSE_BAD_PROOF;
    else if (!chip_create(c, cl->chip, e->id, e->is_landmark))
      r->reason = CL_REFUSE_INACTIVE; /* out of memory: refuse rather than fail silently */
    else
      r->reason = CL_REFUSE_NONE;
    r->accepted = r->reason == CL_REFUSE_NONE;
    char hex[17];
    short_hex(cl->chip, hex);
    if (r->accepted) {
      accepted++;
      lm->st.chips_registered++;
      cl_log(CL_LOG_INFO, "chip registered", "chip=%s peer=%s agent=%s", hex, c->peer, agent_q);
    } else {
      lm->st.register_refused[r->reason]++;
      snprintf(r->detail, sizeof r->detail, "%s", cl_refuse_reason_name(r->reason));
      /* Up to 64 refusals per Register: rate-limited like any rejection. */
      char detail[CL_MAX_AGENT_NAME + 96];
      snprintf(detail, sizeof detail, "chip %s refused at registration, agent %s", hex,
               m->u.reg.agent);
      log_reject(lm, c, cl_refuse_reason_name(r->reason), detail);
    }
  }
  uint8_t buf[CL_FRAME_MAX_UNREGISTERED * 2];
  size_t len;
  if (cl_msg_encode(&res, buf, sizeof buf, &len) != CL_OK) {
    conn_close(c);
    return;
  }
  if (send_frame(c, buf, len, NULL) != CL_OK) return;
  if (accepted == 0) {
    /* Nothing to measure on this connection. */
    conn_close(c);
    return;
  }
  c->state = CONN_REGISTERED;
  cl_frame_asm_set_max(&c->fa, lm->p->max_frame_bytes);
  cl_tq_arm(&lm->tq, &c->timer.e, lm->now + lm->idle_check_ns);
}

static cl_wire_error wire_code(cl_accept_result r) {
  switch (r) {
  case CL_ACCEPT_REPLAY: return CL_ERR_REPLAY;
  case CL_ACCEPT_LATE: return CL_ERR_LATE;
  case CL_ACCEPT_BAD_SIGNATURE: return CL_ERR_BAD_SIGNATURE;
  default: return CL_ERR_UNKNOWN_NONCE;
  }
}

static cl_probe *find_probe(lm_chip *ch, const uint8_t nonce[CL_NONCE_LEN]) {
  for (unsigned i = 0; i < CL_LM_PROBE_RING; i++)
    if (ch->ring[i].state != CL_PROBE_FREE &&
        memcmp(ch->ring[i].ch.nonce, nonce, CL_NONCE_LEN) == 0)
      return &ch->ring[i];
  return NULL;
}

/* An answer that passed every check: counted, kept for its burst, and the
 * chip moves on. */
static void response_accepted(lm_chip *ch, cl_probe *p, const uint8_t sig[CL_SIG_LEN],
                              uint64_t rtt) {
  cl_lm *lm = ch->lm;
  p->state = CL_PROBE_ANSWERED;
  lm->st.responses_accepted++;
  cl_histogram_observe(&lm->st.rtt, (double)rtt / 1e9);
  cl_burst_add(&ch->burst, &p->ch, sig, rtt);
  if (cl_log_get_level() <= CL_LOG_DEBUG) {
    char hex[17];
    short_hex(ch->pk, hex);
    cl_log(CL_LOG_DEBUG, "probe accepted", "chip=%s seq=%llu rtt_ns=%llu", hex,
           (unsigned long long)p->ch.seq, (unsigned long long)rtt);
  }
  probe_event(lm, ch, p, sig, CL_ACCEPT_OK, 0, rtt);
  if (ch->cur == p) probe_settled(ch);
}

static void response_rejected(cl_lm *lm, cl_lm_conn *c, const uint8_t chip[CL_PK_LEN],
                              cl_accept_result r) {
  lm->st.rejected[r]++;
  char detail[96];
  char hex[17];
  short_hex(chip, hex);
  snprintf(detail, sizeof detail, "chip %s", hex);
  log_reject(lm, c, cl_accept_result_name(r), detail);
  reply_error(c, wire_code(r), cl_accept_result_name(r));
}

/* A signature failure uses the probe up: one check per issued probe. */
static void response_bad_signature(lm_chip *ch, cl_probe *p) {
  p->state = CL_PROBE_EXPIRED;
  probe_event(ch->lm, ch, p, NULL, CL_ACCEPT_BAD_SIGNATURE, 0, 0);
  if (ch->cur == p) probe_settled(ch);
}

/* Hands the signature check of an answer that passed checks 1 to 4 to a
 * worker. Returns 0, or an error when the check must run here instead. */
static int verify_async(lm_chip *ch, cl_probe *p, const uint8_t sig[CL_SIG_LEN], uint64_t rtt) {
  cl_lm *lm = ch->lm;
  cl_lm_work w = {.kind = CL_LM_WORK_VERIFY, .ch = p->ch, .rtt_ns = rtt};
  memcpy(w.sig, sig, CL_SIG_LEN);
  /* The answer came in time: the deadline no longer applies, and the chip
   * waits for the check's result (verify_result settles the probe). */
  p->state = CL_PROBE_VERIFYING;
  if (ch->cur == p) cl_tq_stop(&lm->tq, &ch->timer.e);
  if (lm->io->work(lm->ctx, &w) != CL_OK) {
    p->state = CL_PROBE_OUTSTANDING;
    return CL_ENOMEM;
  }
  lm->st.verify_queued++;
  return CL_OK;
}

static void handle_response(cl_lm_conn *c, const cl_msg *m, uint64_t t_recv) {
  cl_lm *lm = c->lm;
  lm_chip *ch = NULL;
  for (size_t i = 0; i < c->n_chips && !ch; i++)
    if (memcmp(c->chips[i]->pk, m->u.response.chip, CL_PK_LEN) == 0) ch = c->chips[i];
  if (!ch) {
    lm->st.rejected_not_registered++;
    log_reject(lm, c, "not_registered", "response for a chip not registered on this connection");
    reply_error(c, CL_ERR_NOT_REGISTERED, "chip not registered on this connection");
    return;
  }
  cl_probe *p = find_probe(ch, m->u.response.nonce);
  /* A nonce unknown for this chip may belong to another chip here: the
   * acceptance check then reports it as answered for the wrong chip. */
  for (size_t i = 0; i < c->n_chips && !p; i++) p = find_probe(c->chips[i], m->u.response.nonce);
  uint64_t rtt = 0;
  cl_accept_result r = cl_probe_check(p, m->u.response.chip, m->u.response.nonce, t_recv, &rtt);
  if (r == CL_ACCEPT_OK && lm->p->async_signatures &&
      verify_async(ch, p, m->u.response.sig, rtt) == CL_OK)
    return;
  if (r == CL_ACCEPT_OK && cl_response_verify(&p->ch, m->u.response.sig) != CL_OK) {
    r = CL_ACCEPT_BAD_SIGNATURE;
    response_bad_signature(ch, p);
  }
  if (r == CL_ACCEPT_OK) {
    response_accepted(ch, p, m->u.response.sig, rtt);
  } else {
    if (r != CL_ACCEPT_BAD_SIGNATURE) probe_event(lm, ch, p, NULL, r, 0, 0);
    response_rejected(lm, c, m->u.response.chip, r);
  }
}

static void handle_frame(cl_lm_conn *c, const uint8_t *frame, size_t len, uint64_t t_recv) {
  cl_lm *lm = c->lm;
  cl_msg *m = &lm->scratch;
  char err[160];
  int rc = cl_msg_decode(frame, len, m, err, sizeof err);
  if (rc == CL_EVERSION) {
    lm->st.version_mismatch++;
    fail_conn(c, CL_ERR_VERSION, "version", err);
    return;
  }
  if (rc == CL_EUNKNOWNMSG) {
    lm->st.frames_unknown_type++;
    fail_conn(c, CL_ERR_MALFORMED, "unknown_type", err);
    return;
  }
  if (rc != CL_OK) {
    lm->st.frames_malformed++;
    fail_conn(c, CL_ERR_MALFORMED, "malformed", err);
    return;
  }
  if (c->state == CONN_HELLO && m->type == CL_MSG_REGISTER) {
    handle_register(c, m);
  } else if (c->state == CONN_REGISTERED && m->type == CL_MSG_RESPONSE) {
    handle_response(c, m, t_recv);
  } else if (m->type == CL_MSG_ERROR) {
    /* Allowed in every state and it keeps the connection, so a peer could
     * send these without end: counted, and logged rate-limited. */
    lm->st.peer_errors++;
    uint64_t suppressed = 0;
    if (cl_ratelimit_allow(&lm->rl, lm->now, &suppressed)) {
      char q[CL_MAX_ERROR_TEXT * 4 + 3];
      cl_log_quote(q, sizeof q, m->u.error.text, strlen(m->u.error.text));
      cl_log(CL_LOG_WARN, "peer reported an error", "peer=%s code=%s text=%s suppressed=%llu",
             c->peer, cl_wire_error_name(m->u.error.code), q, (unsigned long long)suppressed);
    }
  } else {
    lm->st.unexpected_msg++;
    snprintf(err, sizeof err, "%s not allowed %s", cl_msg_type_name(m->type),
             c->state == CONN_HELLO ? "before Register" : "after Register");
    fail_conn(c, CL_ERR_UNEXPECTED, "unexpected", err);
  }
}

/* ---- public: connections ------------------------------------------------------ */

int cl_lm_addr_key(const uint8_t *ip, size_t len, uint8_t key[CL_PK_LEN]) {
  static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!ip || !key || (len != 4 && len != 16)) return CL_EINVAL;
  memset(key, 0, CL_PK_LEN);
  if (len == 16 && memcmp(ip, v4mapped, sizeof v4mapped) == 0) {
    ip += 12;
    len = 4;
  }
  if (len == 4) {
    key[0] = 4;
    memcpy(key + 1, ip, 4);
  } else {
    /* The /64 prefix: the interface identifier (the low 64 bits) is the
     * holder's to choose, so it identifies nothing. */
    key[0] = 6;
    memcpy(key + 1, ip, 8);
  }
  return CL_OK;
}

/*
 * The connection limits, checked as a connection opens (it is linked and
 * counted already): refuses it with an Error and returns 0 when the
 * landmark is closing or a limit is reached; else takes one count of its
 * address (addr_key may be NULL: not counted) and returns 1.
 */
static int admit(cl_lm_conn *c, const uint8_t *addr_key) {
  cl_lm *lm = c->lm;
  if (lm->closing) {
    conn_close(c);
    return 0;
  }
  if (lm->n_conns > lm->p->max_connections) {
    lm->st.conns_refused_limit++;
    fail_conn(c, CL_ERR_LIMIT, "connection_limit", "too many connections");
    return 0;
  }
  if (!addr_key) return 1;
  addr_count *ac = cl_pkmap_get(lm->per_addr, addr_key);
  if (ac && ac->n >= lm->p->max_connections_per_address) {
    lm->st.conns_refused_per_address++;
    fail_conn(c, CL_ERR_LIMIT, "per_address_limit", "too many connections from this address");
    return 0;
  }
  if (!ac) {
    /* The first connection from this address. */
    ac = calloc(1, sizeof *ac);
    if (!ac || cl_pkmap_put(lm->per_addr, addr_key, ac, NULL) != CL_OK) {
      free(ac);
      conn_close(c);
      return 0;
    }
  }
  ac->n++;
  memcpy(c->addr_key, addr_key, CL_PK_LEN);
  c->addr_counted = 1;
  return 1;
}

cl_lm_conn *cl_lm_conn_open(cl_lm *lm, void *ud, const uint8_t *addr_key, const char *peer,
                            uint64_t now_ns) {
  enter(lm, now_ns);
  cl_lm_conn *c = calloc(1, sizeof *c);
  if (!c || cl_tq_reserve(&lm->tq, lm->n_timers + 1) != CL_OK) {
    free(c);
    lm->io->close(lm->ctx, ud);
    leave(lm);
    return NULL;
  }
  c->lm = lm;
  c->ud = ud;
  c->timer.kind = TIMER_CONN;
  snprintf(c->peer, sizeof c->peer, "%s", peer ? peer : "?");
  cl_frame_asm_init(&c->fa, CL_FRAME_MAX_UNREGISTERED);
  cl_ratelimit_init(&c->err_rl, lm->p->max_error_replies_per_s,
                    lm->p->max_error_replies_per_s);
  lm->n_timers++;
  /* Link first so that conn_close can always unlink. */
  c->next = lm->conns;
  if (lm->conns) lm->conns->prev = c;
  lm->conns = c;
  lm->n_conns++;
  cl_lm_conn *result = NULL;
  if (admit(c, addr_key)) {
    lm->st.conns_accepted++;
    lm->io->random(lm->ctx, c->session_nonce, CL_NONCE_LEN);
    c->state = CONN_HELLO;
    c->last_rx_ns = lm->now;
    c->announced = 1;
    cl_log(CL_LOG_INFO, "connection accepted", "peer=%s", c->peer);
    cl_tq_arm(&lm->tq, &c->timer.e, lm->now + (uint64_t)lm->p->handshake_timeout_ms * NS_PER_MS);
    cl_msg hello;
    hello.type = CL_MSG_HELLO;
    memcpy(hello.u.hello.landmark, cl_key_public(lm->key), CL_PK_LEN);
    memcpy(hello.u.hello.session_nonce, c->session_nonce, CL_NONCE_LEN);
    uint8_t buf[256];
    size_t len;
    if (cl_msg_encode(&hello, buf, sizeof buf, &len) == CL_OK) send_frame(c, buf, len, NULL);
    if (!c->closing) result = c;
  }
  leave(lm);
  return result;
}

void cl_lm_conn_read(cl_lm *lm, cl_lm_conn *c, const uint8_t *data, size_t n, uint64_t t_recv) {
  enter(lm, t_recv);
  size_t off = 0;
  while (off < n && !c->closing) {
    const uint8_t *frame = NULL;
    size_t flen = 0, used = 0;
    int rc = cl_frame_asm_feed(&c->fa, data + off, n - off, &used, &frame, &flen);
    if (rc == CL_ETOOBIG) {
      lm->st.frames_too_large++;
      char why[96];
      snprintf(why, sizeof why, "frame length %u above limit %zu", c->fa.last_len, c->fa.max);
      fail_conn(c, CL_ERR_TOO_LARGE, "too_large", why);
      break;
    }
    if (rc < 0) {
      lm->st.frames_malformed++;
      fail_conn(c, CL_ERR_MALFORMED, "malformed", "zero-length frame");
      break;
    }
    off += used;
    if (rc == 0) break;
    /* Only a complete frame counts as activity: a peer that trickles the
     * bytes of a frame it never finishes is still idle. */
    c->last_rx_ns = t_recv;
    handle_frame(c, frame, flen, t_recv);
  }
  leave(lm);
}

void cl_lm_conn_close(cl_lm *lm, cl_lm_conn *c, uint64_t now_ns) {
  enter(lm, now_ns);
  conn_close(c);
  leave(lm);
}

void cl_lm_close_all(cl_lm *lm, uint64_t now_ns) {
  enter(lm, now_ns);
  lm->closing = 1;
  while (lm->conns) conn_close(lm->conns);
  leave(lm);
}

int cl_lm_conn_registered(const cl_lm_conn *c) { return c->state == CONN_REGISTERED; }

/* ---- public: timers and workers ------------------------------------------------- */

uint64_t cl_lm_next_due(const cl_lm *lm) { return cl_tq_next_due(&lm->tq); }

void cl_lm_run_timers(cl_lm *lm, uint64_t now_ns) {
  enter(lm, now_ns);
  uint64_t mark = cl_tq_mark(&lm->tq);
  cl_tq_entry *e;
  while ((e = cl_tq_pop_due(&lm->tq, lm->now, mark)) != NULL) {
    lm_timer *t = (lm_timer *)e;
    if (t->kind == TIMER_CHIP)
      chip_timer((lm_chip *)((char *)t - offsetof(lm_chip, timer)));
    else
      conn_timer((cl_lm_conn *)((char *)t - offsetof(cl_lm_conn, timer)));
  }
  leave(lm);
}

void cl_lm_work_run(cl_lm_work *w, const cl_key *landmark) {
  if (w->kind == CL_LM_WORK_SIGN)
    cl_challenge_sign(&w->ch, landmark);
  else
    w->ok = cl_response_verify(&w->ch, w->sig) == CL_OK;
}

/* A SIGN job's result: the chip, still waiting for this very challenge,
 * sends it. A job that was cancelled without running leaves the chip
 * waiting for nothing: it tries the probe again after a burst gap. */
static void sign_result(cl_lm *lm, const cl_lm_work *w, int status) {
  lm_chip *ch = lm->closing ? NULL : cl_pkmap_get(lm->live, w->ch.chip);
  int waiting = ch && ch->phase == PH_SIGNING && ch->signing_seq == w->ch.seq && ch->conn &&
                !ch->conn->closing;
  if (waiting && status == 0) {
    ch->signing_seq = 0;
    send_signed(ch, &w->ch, w->due_ns);
    return;
  }
  lm->st.pool_orphaned++;
  if (waiting) {
    ch->signing_seq = 0;
    chip_schedule(ch, lm->p->burst_gap_ms, PH_GAP);
  }
}

/* A VERIFY job's result: the probe, still VERIFYING, is accepted or
 * rejected. A job cancelled before it ran counts as a failed check. */
static void verify_result(cl_lm *lm, const cl_lm_work *w, int status) {
  lm_chip *ch = lm->closing ? NULL : cl_pkmap_get(lm->live, w->ch.chip);
  cl_probe *p = NULL;
  for (unsigned i = 0; ch && i < CL_LM_PROBE_RING && !p; i++)
    if (ch->ring[i].state == CL_PROBE_VERIFYING && ch->ring[i].ch.seq == w->ch.seq)
      p = &ch->ring[i];
  if (!p || !ch->conn || ch->conn->closing) {
    lm->st.pool_orphaned++;
  } else if (status == 0 && w->ok) {
    response_accepted(ch, p, w->sig, w->rtt_ns);
  } else {
    cl_lm_conn *c = ch->conn;
    response_bad_signature(ch, p);
    response_rejected(lm, c, w->ch.chip, CL_ACCEPT_BAD_SIGNATURE);
  }
}

void cl_lm_work_done(cl_lm *lm, const cl_lm_work *w, int status, uint64_t now_ns) {
  enter(lm, now_ns);
  if (w->kind == CL_LM_WORK_SIGN)
    sign_result(lm, w, status);
  else
    verify_result(lm, w, status);
  leave(lm);
}

/* ---- public: the enrolled set ------------------------------------------------------ */

typedef struct {
  lm_chip *drop[256];
  size_t n;
  cl_lm *lm;
} drop_walk;

static void collect_unenrolled(void *arg, const uint8_t *key, void *value) {
  drop_walk *w = arg;
  const cl_lm_target *e = cl_pkmap_get(w->lm->enrolled, key);
  lm_chip *ch = value;
  if (e) {
    ch->db_id = e->id;
    ch->is_landmark = e->is_landmark;
  }
  if ((!e || !e->active) && w->n < sizeof w->drop / sizeof w->drop[0]) w->drop[w->n++] = ch;
}

void cl_lm_set_enrolled(cl_lm *lm, cl_lm_target *targets, size_t n, uint64_t now_ns) {
  enter(lm, now_ns);
  cl_pkmap *m = NULL;
  if (cl_pkmap_create(&m, n) != CL_OK) {
    free(targets);
    leave(lm);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (cl_pkmap_put(m, targets[i].pk, &targets[i], NULL) != CL_OK) {
      cl_pkmap_destroy(&m);
      free(targets);
      leave(lm);
      return;
    }
  }
  cl_pkmap_destroy(&lm->enrolled);
  free(lm->enrolled_arr);
  lm->enrolled = m;
  lm->enrolled_arr = targets;
  /* Drop live chips that were unenrolled or deactivated, in rounds of up to
   * 256 so that the walk never sees the map change under it. */
  drop_walk w = {.n = 0, .lm = lm};
  do {
    w.n = 0;
    cl_pkmap_each(lm->live, collect_unenrolled, &w);
    for (size_t i = 0; i < w.n; i++) {
      char hex[17];
      short_hex(w.drop[i]->pk, hex);
      cl_log(CL_LOG_INFO, "chip no longer enrolled; dropped", "chip=%s", hex);
      chip_detach(w.drop[i]);
    }
  } while (w.n == sizeof w.drop / sizeof w.drop[0]);
  cl_log(CL_LOG_DEBUG, "enrolled set refreshed", "chips=%zu live=%zu", n,
         cl_pkmap_count(lm->live));
  leave(lm);
}

/* ---- public: life cycle and state ------------------------------------------------------ */

int cl_lm_create(cl_lm **out, const cl_lm_params *params, const cl_key *key, const cl_lm_io *io,
                 void *ctx) {
  if (!out || !params || !key || !io || !io->send || !io->close || !io->measurement ||
      !io->random || !io->unix_ns || (params->async_signatures && !io->work) ||
      params->burst == 0 || params->max_pending_challenges == 0 ||
      params->max_error_replies_per_s == 0)
    return CL_EINVAL;
  cl_lm *lm = calloc(1, sizeof *lm);
  if (!lm) return CL_ENOMEM;
  lm->p = params;
  lm->key = key;
  lm->io = io;
  lm->ctx = ctx;
  cl_tq_init(&lm->tq);
  if (cl_pkmap_create(&lm->live, 1024) != CL_OK || cl_pkmap_create(&lm->enrolled, 16) != CL_OK ||
      cl_pkmap_create(&lm->per_addr, 1024) != CL_OK) {
    cl_pkmap_destroy(&lm->live);
    cl_pkmap_destroy(&lm->enrolled);
    free(lm);
    return CL_ENOMEM;
  }
  /* 10 us (a loopback round trip) to 1 s (beyond any sane deadline). */
  static const double rtt_le[] = {1e-5,   2.5e-5, 5e-5, 1e-4,  2.5e-4, 5e-4, 1e-3, 2.5e-3,
                                  5e-3,   0.01,   0.025, 0.05, 0.1,    0.25, 0.5,  1.0};
  cl_histogram_init(&lm->st.rtt, rtt_le, sizeof rtt_le / sizeof rtt_le[0]);
  /* 1 ms (the timer clock's resolution) to 10 s (a landmark far behind). */
  static const double lag_le[] = {1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
                                  5.0,  10.0};
  cl_histogram_init(&lm->st.lag, lag_le, sizeof lag_le / sizeof lag_le[0]);
  cl_ratelimit_init(&lm->rl, 20, 2);
  cl_ratelimit_init(&lm->rl_overflow, 20, 2);
  /* A quarter of the idle timeout, within 100 ms and 5 s: an idle peer is
   * cut at most a quarter of the timeout late. */
  uint64_t check_ms = (uint64_t)params->idle_timeout_s * 1000ull / 4;
  if (check_ms < 100) check_ms = 100;
  if (check_ms > 5000) check_ms = 5000;
  lm->idle_check_ns = check_ms * NS_PER_MS;
  *out = lm;
  return CL_OK;
}

static void free_addr_count(void *arg, const uint8_t *key, void *value) {
  (void)arg;
  (void)key;
  free(value);
}

void cl_lm_destroy(cl_lm **plm) {
  if (!plm || !*plm) return;
  cl_lm *lm = *plm;
  assert(lm->depth == 0);
  /* The queue first: it writes to the entries it still holds. */
  cl_tq_fini(&lm->tq);
  /* Whatever is still open goes without a word to the shell. */
  while (lm->conns) {
    cl_lm_conn *c = lm->conns;
    while (c->n_chips > 0) {
      lm_chip *ch = c->chips[--c->n_chips];
      free(ch);
    }
    lm->conns = c->next;
    cl_frame_asm_fini(&c->fa);
    free(c);
  }
  cl_pkmap_each(lm->per_addr, free_addr_count, NULL);
  cl_pkmap_destroy(&lm->per_addr);
  cl_pkmap_destroy(&lm->live);
  cl_pkmap_destroy(&lm->enrolled);
  free(lm->enrolled_arr);
  free(lm);
  *plm = NULL;
}

const cl_lm_stats *cl_lm_get_stats(const cl_lm *lm) { return &lm->st; }
size_t cl_lm_conn_count(const cl_lm *lm) { return lm->n_conns; }
size_t cl_lm_live_count(const cl_lm *lm) { return cl_pkmap_count(lm->live); }
