/*
 * landmarkd's event-loop side: connections, registration, probe scheduling,
 * timing and response checks. See landmark.h for the contract and
 * docs/PROTOCOL.md for the wire protocol this implements.
 *
 * Ownership: the server owns connections (a list); a connection owns its
 * registered chips. Each chip has its own uv_timer_t driving its probe cycle
 * (idle -> probe -> wait for answer or deadline -> gap -> probe ... -> idle),
 * so scheduling costs O(log n) in libuv's timer heap and never scans chips.
 * Memory is released only in close callbacks.
 *
 * Limits, all from [limits] (docs/PROTOCOL.md §5.5): connections in total
 * and per IP address (per_addr, taken at accept and given back in
 * conn_close), challenges outstanding per connection (n_pending), the
 * handshake deadline and the idle timeout (the connection timer; only a
 * complete frame counts as activity), and frame sizes (the assembler's
 * max). Every refusal is counted in lm_stats and logged rate-limited.
 */
#include "landmark.h"
#include "cl_err.h"
#include "cl_log.h"
#include "cl_frame.h"
#include "cl_msg.h"
#include "cl_pkmap.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROBE_RING 8 /* remembered probes per chip: replay detection window */
#define READ_BUF_LEN 65536

/* PH_SIGNING: the next challenge is being signed on the thread pool; no
 * timer runs meanwhile (sign_result sends it). */
typedef enum { PH_IDLE, PH_WAIT, PH_GAP, PH_SIGNING } chip_phase;

typedef struct lm_conn lm_conn;

typedef struct {
  uint8_t pk[CL_PK_LEN];
  int64_t db_id;
  int is_landmark; /* a peer landmark: its bursts go to landmark_links */
  lm_server *srv;
  lm_conn *conn;
  uv_timer_t timer;
  cl_probe ring[PROBE_RING];
  unsigned ring_next;
  cl_probe *cur; /* the outstanding probe, or NULL */
  uint32_t burst_left;
  cl_burst burst;
  chip_phase phase;
  uint64_t due_ms; /* loop time (uv_now) the timer is due at: for the probe lag */
  uint64_t signing_seq; /* seq of the challenge being signed in PH_SIGNING, else 0 */
} lm_chip;

typedef enum { CONN_HELLO, CONN_REGISTERED } conn_state;

struct lm_conn {
  uv_tcp_t tcp;
  uv_timer_t timer; /* handshake deadline, then idle checks */
  lm_server *srv;
  cl_frame_asm fa;
  uint8_t session_nonce[CL_NONCE_LEN];
  conn_state state;
  int closing;
  int open_handles;
  lm_chip *chips[CL_MAX_CHIPS_PER_REGISTER];
  size_t n_chips;
  uint64_t last_rx_ns; /* receive time of the last complete frame */
  uint32_t n_pending;  /* probes outstanding on this connection */
  int announced;       /* "connection accepted" was logged */
  int addr_counted;    /* holds one count in srv->per_addr under addr_key */
  uint8_t addr_key[CL_PK_LEN];
  char peer[64];
  lm_conn *prev, *next;
};

/*
 * The thread pool (verify_threads > 0) does the probe's Ed25519 work in
 * batches: the ops queued while the loop runs one phase's callbacks go
 * together, in jobs of up to POOL_BATCH ops, just before the loop polls
 * (uv_prepare: ops queued by timers) and right after (uv_check: ops queued
 * by reads and by returning jobs). Under load a hand-over serves many ops;
 * an op on an idle landmark still goes at once. Each op finds its chip again
 * by key and its challenge or probe by sequence number when the job returns,
 * so a chip or connection that went away meanwhile is simply not found.
 */
#define POOL_BATCH 16

typedef enum { OP_SIGN, OP_VERIFY } pool_op_kind;

typedef struct {
  pool_op_kind kind;
  cl_challenge ch;         /* SIGN: signed in place; VERIFY: the probe's challenge */
  uint8_t sig[CL_SIG_LEN]; /* VERIFY: the answer's signature */
  uint64_t rtt_ns;         /* VERIFY */
  uint64_t due_ms;         /* SIGN: when the probe was scheduled */
  int ok;                  /* VERIFY: the signature checked out */
} pool_op;

typedef struct {
  uv_work_t req;
  lm_server *srv;
  const cl_key *key;
  size_t n;
  pool_op op[POOL_BATCH];
} pool_job;

struct lm_server {
  uv_loop_t *loop;
  const cl_landmark_config *cfg;
  const cl_key *key;
  lm_writer *writer;
  uv_tcp_t listener;
  int listening;
  uv_timer_t stats_timer;
  cl_pkmap *enrolled; /* pk -> cl_store_chip* inside enrolled_arr */
  cl_store_chip *enrolled_arr;
  cl_pkmap *live; /* pk -> lm_chip* */
  lm_conn *conns;
  size_t n_conns;
  cl_pkmap *per_addr; /* address key -> addr_count (malloc'd; freed when it drops to 0) */
  cl_histogram rtt;   /* accepted probes, seconds */
  cl_histogram lag;   /* probe send time minus its scheduled time, seconds */
  uint64_t pool_inflight; /* ops (signatures, checks) queued or running on the pool */
  uint64_t pool_jobs;     /* jobs handed to the pool and not yet returned */
  pool_job *filling;      /* the batch being filled, or NULL */
  uv_prepare_t pool_prepare;
  uv_check_t pool_check;
  uint64_t seq;
  lm_stats st;
  cl_ratelimit rl;
  int closing;
  int open_handles;
  void (*done)(void *);
  void *done_arg;
  cl_msg scratch; /* decode target; messages are handled one at a time */
  uint8_t rbuf[READ_BUF_LEN];
};

/* Connections open from one IP address. */
typedef struct {
  uint32_t n;
} addr_count;

typedef struct {
  uv_write_t req;
  lm_conn *conn;
  size_t len;
  uint8_t data[];
} write_req;

static void conn_close(lm_conn *c);
static void chip_schedule(lm_chip *ch, uint64_t delay_ms, chip_phase phase);
static int pool_add(lm_server *s, const pool_op *o);

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void short_hex(const uint8_t *pk, char out[17]) { cl_hex_encode(out, pk, 8); }

static void maybe_done(lm_server *s) {
  if (s->closing && s->open_handles == 0 && s->pool_jobs == 0 && s->done) {
    void (*done)(void *) = s->done;
    s->done = NULL;
    done(s->done_arg);
  }
}

static void on_server_handle_closed(uv_handle_t *h) {
  lm_server *s = h->data;
  s->open_handles--;
  maybe_done(s);
}

/* ---- rejection logging ------------------------------------------------ */

/* Logs a peer's misbehaviour, rate-limited across the whole server so that
 * a flood cannot turn into a log flood. */
static void log_reject(lm_server *s, lm_conn *c, const char *what, const char *detail) {
  uint64_t suppressed = 0;
  if (!cl_ratelimit_allow(&s->rl, uv_hrtime(), &suppressed)) return;
  char q[160];
  cl_log_quote(q, sizeof q, detail, strlen(detail));
  cl_log(CL_LOG_WARN, "rejected", "reason=%s peer=%s detail=%s suppressed=%llu", what, c->peer, q,
         (unsigned long long)suppressed);
}

/* ---- writing ------------------------------------------------------------ */

static void on_write_done(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  if (status < 0 && status != UV_ECANCELED) conn_close(w->conn);
  free(w);
}

/*
 * Sends a complete frame: synchronously with uv_try_write when the socket
 * takes it (the normal case, and the one the RTT timing relies on), else the
 * unwritten tail is queued with uv_write. Returns 0 or closes the connection.
 */
static int send_frame(lm_conn *c, const uint8_t *buf, size_t len) {
  if (c->closing) return CL_EIO;
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (r == UV_EAGAIN || r == UV_ENOSYS) r = 0;
  if (r < 0) {
    conn_close(c);
    return CL_EIO;
  }
  if ((size_t)r == len) return CL_OK;
  size_t rest = len - (size_t)r;
  write_req *w = malloc(sizeof *w + rest);
  if (!w) {
    conn_close(c);
    return CL_ENOMEM;
  }
  w->conn = c;
  w->len = rest;
  memcpy(w->data, buf + r, rest);
  uv_buf_t wb = uv_buf_init((char *)w->data, (unsigned)rest);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &wb, 1, on_write_done) != 0) {
    free(w);
    conn_close(c);
    return CL_EIO;
  }
  return CL_OK;
}

static void send_error(lm_conn *c, cl_wire_error code, const char *text) {
  uint8_t buf[512];
  size_t len;
  if (cl_msg_encode_error(code, text, buf, sizeof buf, &len) == CL_OK) send_frame(c, buf, len);
}

/* Sends an Error frame and closes: for protocol violations. */
static void fail_conn(lm_conn *c, cl_wire_error code, const char *what, const char *text) {
  log_reject(c->srv, c, what, text);
  send_error(c, code, text);
  conn_close(c);
}

/* ---- chips ---------------------------------------------------------------- */

static void on_chip_timer_closed(uv_handle_t *h) {
  lm_chip *ch = h->data;
  lm_server *s = ch->srv;
  free(ch);
  s->open_handles--;
  maybe_done(s);
}

/* Forgets the chip's outstanding probe, if any, in its connection's count
 * of pending challenges. */
static void clear_outstanding(lm_chip *ch) {
  if (ch->cur && ch->conn && ch->conn->n_pending > 0) ch->conn->n_pending--;
  ch->cur = NULL;
}

/* Removes a chip from its connection and the live map, and frees it once its
 * timer has closed. */
static void chip_detach(lm_chip *ch) {
  lm_server *s = ch->srv;
  lm_conn *c = ch->conn;
  if (!c) return;
  clear_outstanding(ch);
  for (size_t i = 0; i < c->n_chips; i++) {
    if (c->chips[i] == ch) {
      c->chips[i] = c->chips[--c->n_chips];
      break;
    }
  }
  if (cl_pkmap_get(s->live, ch->pk) == ch) cl_pkmap_del(s->live, ch->pk);
  ch->conn = NULL;
  uv_timer_stop(&ch->timer);
  uv_close((uv_handle_t *)&ch->timer, on_chip_timer_closed);
}

static uint64_t jittered_interval_ms(const cl_landmark_config *cfg) {
  double u = (double)randombytes_uniform(1000001) / 1e6; /* [0, 1] */
  double f = 1.0 + cfg->jitter * (2.0 * u - 1.0);
  double ms = (double)cfg->interval_s * 1000.0 * f;
  return ms < 1 ? 1 : (uint64_t)ms;
}

static void finish_burst(lm_chip *ch) {
  lm_server *s = ch->srv;
  if (ch->burst.accepted > 0) {
    cl_store_row row;
    memset(&row, 0, sizeof row);
    cl_burst_to_measurement(&ch->burst, realtime_ns(), &row.m);
    cl_measurement_sign(&row.m, s->key);
    row.chip_id = ch->db_id;
    row.is_link = ch->is_landmark;
    row.probes_sent = s->cfg->burst;
    row.bound_m = cl_bound_m(row.m.rtt_ns, CL_SPEED_C);
    row.est_speed = s->cfg->speed_m_per_s;
    row.est_bound_m = cl_bound_m(row.m.rtt_ns, s->cfg->speed_m_per_s);
    if (lm_writer_push(s->writer, &row) == CL_OK)
      s->st.measurements++;
    else
      s->st.measurements_dropped++;
    char hex[17];
    short_hex(ch->pk, hex);
    cl_log(CL_LOG_DEBUG, "measurement", "chip=%s rtt_ns=%llu bound_m=%llu probes=%u", hex,
           (unsigned long long)row.m.rtt_ns, (unsigned long long)row.bound_m,
           row.m.probe_count);
  }
  cl_burst_reset(&ch->burst);
  chip_schedule(ch, jittered_interval_ms(s->cfg), PH_IDLE);
}

/* Called when the current probe is settled (answered, failed or expired). */
static void probe_settled(lm_chip *ch) {
  clear_outstanding(ch);
  if (ch->burst_left > 0)
    chip_schedule(ch, ch->srv->cfg->burst_gap_ms, PH_GAP);
  else
    finish_burst(ch);
}

/*
 * When the chip's connection already has max_pending_challenges unanswered
 * challenges, puts the probe off for a moment without using up a probe of
 * the burst, and returns 1.
 */
static int deferred_for_room(lm_chip *ch) {
  lm_server *s = ch->srv;
  if (ch->conn->n_pending < s->cfg->max_pending_challenges) return 0;
  s->st.probes_deferred++;
  uint64_t retry_ms = s->cfg->deadline_ms < 50 ? s->cfg->deadline_ms : 50;
  chip_schedule(ch, retry_ms, PH_GAP);
  return 1;
}

/*
 * Sends one signed challenge: takes a slot of the chip's ring, encodes, arms
 * the deadline and writes. Everything costly (the nonce, the signature, the
 * encoding, the timer) happens before the send timestamp. `due_ms` is when
 * the probe was scheduled, for the lag histogram.
 */
static void send_signed(lm_chip *ch, const cl_challenge *chal, uint64_t due_ms) {
  lm_server *s = ch->srv;
  lm_conn *c = ch->conn;
  /* Other chips of the connection may have taken the room meanwhile. */
  if (deferred_for_room(ch)) return;
  cl_probe *p = &ch->ring[ch->ring_next++ % PROBE_RING];
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
  chip_schedule(ch, s->cfg->deadline_ms, PH_WAIT);
  s->st.probes_sent++;
  /* The clock starts here: nothing but the write lies between. */
  p->sent_ns = uv_hrtime();
  p->deadline_ns = p->sent_ns + (uint64_t)s->cfg->deadline_ms * 1000000ull;
  send_frame(c, buf, len);
  /* How late the probe went out against its schedule (the loop's millisecond
   * clock: up to 1 ms of it is rounding). */
  uint64_t due_ns = due_ms * 1000000ull;
  cl_histogram_observe(&s->lag, p->sent_ns > due_ns ? (double)(p->sent_ns - due_ns) / 1e9 : 0.0);
}

/*
 * Starts one probe: a fresh challenge, signed on the thread pool when there
 * is one (verify_threads > 0), else here, then sent by send_signed.
 */
static void send_probe(lm_chip *ch) {
  lm_server *s = ch->srv;
  uint64_t due_ms = ch->due_ms;
  if (deferred_for_room(ch)) return;
  cl_challenge chal;
  memset(&chal, 0, sizeof chal);
  memcpy(chal.landmark, cl_key_public(s->key), CL_PK_LEN);
  memcpy(chal.chip, ch->pk, CL_PK_LEN);
  randombytes_buf(chal.nonce, CL_NONCE_LEN);
  chal.issued_unix_ns = realtime_ns();
  chal.seq = ++s->seq;
  if (s->cfg->verify_threads > 0) {
    /* The chip waits for this challenge from now on (a batch may even be
     * done before pool_add returns, should libuv refuse it). */
    chip_phase was = ch->phase;
    ch->phase = PH_SIGNING;
    ch->signing_seq = chal.seq;
    pool_op o = {.kind = OP_SIGN, .ch = chal, .due_ms = due_ms};
    if (pool_add(s, &o) == CL_OK) {
      s->st.sign_queued++;
      return;
    }
    ch->phase = was;
    ch->signing_seq = 0;
  }
  cl_challenge_sign(&chal, s->key);
  send_signed(ch, &chal, due_ms);
}

static void on_chip_timer(uv_timer_t *t) {
  lm_chip *ch = t->data;
  if (!ch->conn || ch->conn->closing) return;
  switch (ch->phase) {
  case PH_IDLE:
    cl_burst_reset(&ch->burst);
    ch->burst_left = ch->srv->cfg->burst;
    send_probe(ch);
    break;
  case PH_GAP:
    send_probe(ch);
    break;
  case PH_SIGNING: /* no timer runs in this phase */
    break;
  case PH_WAIT: {
    cl_probe *p = ch->cur;
    if (!p) break;
    uint64_t now = uv_hrtime();
    /* The loop's millisecond clock can run slightly ahead of the precise
     * deadline; wait out the remainder rather than expire early. */
    if (now < p->deadline_ns) {
      chip_schedule(ch, (p->deadline_ns - now) / 1000000ull + 1, PH_WAIT);
      break;
    }
    p->state = CL_PROBE_EXPIRED;
    ch->srv->st.probe_timeouts++;
    probe_settled(ch);
    break;
  }
  }
}

static void chip_schedule(lm_chip *ch, uint64_t delay_ms, chip_phase phase) {
  ch->phase = phase;
  ch->due_ms = uv_now(ch->srv->loop) + delay_ms;
  uv_timer_start(&ch->timer, on_chip_timer, delay_ms, 0);
}

static lm_chip *chip_create(lm_conn *c, const uint8_t pk[CL_PK_LEN], int64_t db_id,
                            int is_landmark) {
  lm_server *s = c->srv;
  lm_chip *ch = calloc(1, sizeof *ch);
  if (!ch) return NULL;
  memcpy(ch->pk, pk, CL_PK_LEN);
  ch->db_id = db_id;
  ch->is_landmark = is_landmark;
  ch->srv = s;
  ch->conn = c;
  uv_timer_init(s->loop, &ch->timer);
  ch->timer.data = ch;
  s->open_handles++;
  lm_chip *old = NULL;
  if (cl_pkmap_put(s->live, pk, ch, (void **)&old) != CL_OK) {
    ch->conn = NULL;
    uv_close((uv_handle_t *)&ch->timer, on_chip_timer_closed);
    return NULL;
  }
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
  uint64_t spread = (uint64_t)s->cfg->interval_s * 1000ull;
  chip_schedule(ch, randombytes_uniform((uint32_t)spread + 1), PH_IDLE);
  return ch;
}

/* ---- connections ----------------------------------------------------------- */

static void on_conn_handle_closed(uv_handle_t *h) {
  lm_conn *c = h->data;
  if (--c->open_handles > 0) return;
  lm_server *s = c->srv;
  cl_frame_asm_fini(&c->fa);
  free(c);
  s->open_handles--;
  maybe_done(s);
}

static void conn_close(lm_conn *c) {
  if (c->closing) return;
  c->closing = 1;
  lm_server *s = c->srv;
  while (c->n_chips > 0) chip_detach(c->chips[c->n_chips - 1]);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->n_conns--;
  s->st.conns_closed++;
  if (c->addr_counted) {
    addr_count *ac = cl_pkmap_get(s->per_addr, c->addr_key);
    if (ac && --ac->n == 0) {
      cl_pkmap_del(s->per_addr, c->addr_key);
      free(ac);
    }
    c->addr_counted = 0;
  }
  /* Refused connections were never announced: a flood of them must not
   * turn into a flood of log lines (their refusal is logged rate-limited). */
  if (c->announced) cl_log(CL_LOG_INFO, "connection closed", "peer=%s", c->peer);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
}

static void on_conn_timer(uv_timer_t *t) {
  lm_conn *c = t->data;
  lm_server *s = c->srv;
  if (c->closing) return;
  if (c->state == CONN_HELLO) {
    s->st.handshake_timeouts++;
    fail_conn(c, CL_ERR_LIMIT, "handshake_timeout", "no Register before the handshake timeout");
    return;
  }
  uint64_t idle_ns = (uint64_t)s->cfg->idle_timeout_s * 1000000000ull;
  if (uv_hrtime() - c->last_rx_ns > idle_ns) {
    s->st.idle_timeouts++;
    fail_conn(c, CL_ERR_LIMIT, "idle_timeout",
              "no complete frame from the peer within the idle timeout");
  }
}

static void handle_register(lm_conn *c, const cl_msg *m) {
  lm_server *s = c->srv;
  const uint8_t *lpk = cl_key_public(s->key);
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
    const cl_store_chip *e = cl_pkmap_get(s->enrolled, cl->chip);
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
      s->st.chips_registered++;
      cl_log(CL_LOG_INFO, "chip registered", "chip=%s peer=%s agent=%s", hex, c->peer, agent_q);
    } else {
      s->st.register_refused[r->reason]++;
      snprintf(r->detail, sizeof r->detail, "%s", cl_refuse_reason_name(r->reason));
      /* Up to 64 refusals per Register: rate-limited like any rejection. */
      char detail[CL_MAX_AGENT_NAME + 96];
      snprintf(detail, sizeof detail, "chip %s refused at registration, agent %s", hex,
               m->u.reg.agent);
      log_reject(s, c, cl_refuse_reason_name(r->reason), detail);
    }
  }
  uint8_t buf[CL_FRAME_MAX_UNREGISTERED * 2];
  size_t len;
  if (cl_msg_encode(&res, buf, sizeof buf, &len) != CL_OK || send_frame(c, buf, len) != CL_OK) {
    conn_close(c);
    return;
  }
  if (accepted == 0) {
    /* Nothing to measure on this connection. */
    conn_close(c);
    return;
  }
  c->state = CONN_REGISTERED;
  cl_frame_asm_set_max(&c->fa, s->cfg->max_frame_bytes);
  uint64_t check_ms = (uint64_t)s->cfg->idle_timeout_s * 1000ull / 4;
  if (check_ms < 100) check_ms = 100;
  if (check_ms > 5000) check_ms = 5000;
  uv_timer_start(&c->timer, on_conn_timer, check_ms, check_ms);
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
  for (unsigned i = 0; i < PROBE_RING; i++)
    if (ch->ring[i].state != CL_PROBE_FREE &&
        memcmp(ch->ring[i].ch.nonce, nonce, CL_NONCE_LEN) == 0)
      return &ch->ring[i];
  return NULL;
}

/* A response that passed tests 1 to 4: counted, kept for its burst, and the
 * chip moves on. */
static void response_accepted(lm_chip *ch, cl_probe *p, const uint8_t sig[CL_SIG_LEN],
                              uint64_t rtt) {
  lm_server *s = ch->srv;
  p->state = CL_PROBE_ANSWERED;
  s->st.responses_accepted++;
  cl_histogram_observe(&s->rtt, (double)rtt / 1e9);
  cl_burst_add(&ch->burst, &p->ch, sig, rtt);
  if (cl_log_get_level() <= CL_LOG_DEBUG) {
    char hex[17];
    short_hex(ch->pk, hex);
    cl_log(CL_LOG_DEBUG, "probe accepted", "chip=%s seq=%llu rtt_ns=%llu", hex,
           (unsigned long long)p->ch.seq, (unsigned long long)rtt);
  }
  if (ch->cur == p) probe_settled(ch);
}

static void response_rejected(lm_server *s, lm_conn *c, const uint8_t chip[CL_PK_LEN],
                              cl_accept_result r) {
  s->st.rejected[r]++;
  char detail[96];
  char hex[17];
  short_hex(chip, hex);
  snprintf(detail, sizeof detail, "chip %s", hex);
  log_reject(s, c, cl_accept_result_name(r), detail);
  send_error(c, wire_code(r), cl_accept_result_name(r));
}

/* A signature failure uses the probe up: one check per issued probe. */
static void response_bad_signature(lm_chip *ch, cl_probe *p) {
  p->state = CL_PROBE_EXPIRED;
  if (ch->cur == p) probe_settled(ch);
}

/* ---- the thread pool: challenge signatures and answer checks ------------ */

/* A SIGN op's result: the chip, still waiting for this very challenge, sends
 * it. */
static void sign_result(lm_server *s, pool_op *o, int status) {
  lm_chip *ch = s->closing ? NULL : cl_pkmap_get(s->live, o->ch.chip);
  if (ch && ch->phase == PH_SIGNING && ch->signing_seq == o->ch.seq && ch->conn &&
      !ch->conn->closing && status == 0) {
    ch->signing_seq = 0;
    send_signed(ch, &o->ch, o->due_ms);
  } else {
    s->st.pool_orphaned++;
  }
}

/* A VERIFY op's result: the probe, still VERIFYING, is accepted or
 * rejected. */
static void verify_result(lm_server *s, pool_op *o, int status) {
  lm_chip *ch = s->closing ? NULL : cl_pkmap_get(s->live, o->ch.chip);
  cl_probe *p = NULL;
  for (unsigned i = 0; ch && i < PROBE_RING && !p; i++)
    if (ch->ring[i].state == CL_PROBE_VERIFYING && ch->ring[i].ch.seq == o->ch.seq)
      p = &ch->ring[i];
  if (!p || !ch->conn || ch->conn->closing) {
    s->st.pool_orphaned++;
  } else if (status == 0 && o->ok) {
    response_accepted(ch, p, o->sig, o->rtt_ns);
  } else {
    lm_conn *c = ch->conn;
    response_bad_signature(ch, p);
    response_rejected(s, c, o->ch.chip, CL_ACCEPT_BAD_SIGNATURE);
  }
}

static void pool_work(uv_work_t *req) {
  pool_job *j = req->data;
  for (size_t i = 0; i < j->n; i++) {
    pool_op *o = &j->op[i];
    if (o->kind == OP_SIGN)
      cl_challenge_sign(&o->ch, j->key);
    else
      o->ok = cl_response_verify(&o->ch, o->sig) == CL_OK;
  }
}

static void pool_done(uv_work_t *req, int status) {
  pool_job *j = req->data;
  lm_server *s = j->srv;
  s->pool_jobs--;
  for (size_t i = 0; i < j->n; i++) {
    s->pool_inflight--;
    if (j->op[i].kind == OP_SIGN)
      sign_result(s, &j->op[i], status);
    else
      verify_result(s, &j->op[i], status);
  }
  free(j);
  maybe_done(s);
}

/* Hands the batch being filled to the pool (or, should libuv refuse it,
 * does its work here). */
static void pool_flush(lm_server *s) {
  pool_job *j = s->filling;
  if (!j) return;
  s->filling = NULL;
  s->pool_jobs++;
  if (uv_queue_work(s->loop, &j->req, pool_work, pool_done) != 0) {
    pool_work(&j->req);
    pool_done(&j->req, 0);
  }
}

static void on_pool_prepare(uv_prepare_t *h) { pool_flush(h->data); }
static void on_pool_check(uv_check_t *h) { pool_flush(h->data); }

/* Queues one op (copied) for the pool. Returns 0, or CL_ENOMEM when it must
 * be done here instead. */
static int pool_add(lm_server *s, const pool_op *o) {
  if (!s->filling) {
    pool_job *j = malloc(sizeof *j);
    if (!j) return CL_ENOMEM;
    j->req.data = j;
    j->srv = s;
    j->key = s->key;
    j->n = 0;
    s->filling = j;
  }
  s->filling->op[s->filling->n++] = *o;
  s->pool_inflight++;
  if (s->filling->n == POOL_BATCH) pool_flush(s);
  return CL_OK;
}

/* Queues the signature check of a response that passed tests 1 to 4.
 * Returns 0, or an error when the check must run here instead. */
static int verify_async(lm_chip *ch, cl_probe *p, const uint8_t sig[CL_SIG_LEN], uint64_t rtt) {
  lm_server *s = ch->srv;
  pool_op o = {.kind = OP_VERIFY, .ch = p->ch, .rtt_ns = rtt};
  memcpy(o.sig, sig, CL_SIG_LEN);
  /* The answer came in time: the deadline no longer applies, and the chip
   * waits for the check's result (verify_result settles the probe). */
  p->state = CL_PROBE_VERIFYING;
  if (ch->cur == p) uv_timer_stop(&ch->timer);
  if (pool_add(s, &o) != CL_OK) {
    p->state = CL_PROBE_OUTSTANDING;
    return CL_ENOMEM;
  }
  s->st.verify_queued++;
  return CL_OK;
}

static void handle_response(lm_conn *c, const cl_msg *m, uint64_t t_recv) {
  lm_server *s = c->srv;
  lm_chip *ch = NULL;
  for (size_t i = 0; i < c->n_chips && !ch; i++)
    if (memcmp(c->chips[i]->pk, m->u.response.chip, CL_PK_LEN) == 0) ch = c->chips[i];
  if (!ch) {
    s->st.rejected_not_registered++;
    log_reject(s, c, "not_registered", "response for a chip not registered on this connection");
    send_error(c, CL_ERR_NOT_REGISTERED, "chip not registered on this connection");
    return;
  }
  cl_probe *p = find_probe(ch, m->u.response.nonce);
  /* A nonce unknown for this chip may belong to another chip here: the
   * acceptance check then reports it as answered for the wrong chip. */
  for (size_t i = 0; i < c->n_chips && !p; i++) p = find_probe(c->chips[i], m->u.response.nonce);
  uint64_t rtt = 0;
  cl_accept_result r = cl_probe_check(p, m->u.response.chip, m->u.response.nonce, t_recv, &rtt);
  if (r == CL_ACCEPT_OK && s->cfg->verify_threads > 0 &&
      verify_async(ch, p, m->u.response.sig, rtt) == CL_OK)
    return;
  if (r == CL_ACCEPT_OK && cl_response_verify(&p->ch, m->u.response.sig) != CL_OK) {
    r = CL_ACCEPT_BAD_SIGNATURE;
    response_bad_signature(ch, p);
  }
  if (r == CL_ACCEPT_OK)
    response_accepted(ch, p, m->u.response.sig, rtt);
  else
    response_rejected(s, c, m->u.response.chip, r);
}

static void handle_frame(lm_conn *c, const uint8_t *frame, size_t len, uint64_t t_recv) {
  lm_server *s = c->srv;
  cl_msg *m = &s->scratch;
  char err[160];
  int rc = cl_msg_decode(frame, len, m, err, sizeof err);
  if (rc == CL_EVERSION) {
    s->st.version_mismatch++;
    fail_conn(c, CL_ERR_VERSION, "version", err);
    return;
  }
  if (rc == CL_EUNKNOWNMSG) {
    s->st.frames_unknown_type++;
    fail_conn(c, CL_ERR_MALFORMED, "unknown_type", err);
    return;
  }
  if (rc != CL_OK) {
    s->st.frames_malformed++;
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
    s->st.peer_errors++;
    uint64_t suppressed = 0;
    if (cl_ratelimit_allow(&s->rl, uv_hrtime(), &suppressed)) {
      char q[CL_MAX_ERROR_TEXT * 4 + 3];
      cl_log_quote(q, sizeof q, m->u.error.text, strlen(m->u.error.text));
      cl_log(CL_LOG_WARN, "peer reported an error", "peer=%s code=%s text=%s suppressed=%llu",
             c->peer, cl_wire_error_name(m->u.error.code), q, (unsigned long long)suppressed);
    }
  } else {
    s->st.unexpected_msg++;
    snprintf(err, sizeof err, "%s not allowed %s", cl_msg_type_name(m->type),
             c->state == CONN_HELLO ? "before Register" : "after Register");
    fail_conn(c, CL_ERR_UNEXPECTED, "unexpected", err);
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  lm_conn *c = h->data;
  /* Reads are consumed synchronously in on_read, so one buffer serves all
   * connections; partial frames are copied into each assembler. */
  *buf = uv_buf_init((char *)c->srv->rbuf, READ_BUF_LEN);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  /* Receive timestamp first: everything below is outside the timed window. */
  uint64_t t_recv = uv_hrtime();
  lm_conn *c = stream->data;
  lm_server *s = c->srv;
  if (nread == 0) return; /* EAGAIN, not EOF */
  if (nread < 0) {
    conn_close(c);
    return;
  }
  const uint8_t *data = (const uint8_t *)buf->base;
  size_t off = 0, n = (size_t)nread;
  while (off < n && !c->closing) {
    const uint8_t *frame = NULL;
    size_t flen = 0, used = 0;
    int rc = cl_frame_asm_feed(&c->fa, data + off, n - off, &used, &frame, &flen);
    if (rc == CL_ETOOBIG) {
      s->st.frames_too_large++;
      char why[96];
      snprintf(why, sizeof why, "frame length %u above limit %zu", c->fa.last_len, c->fa.max);
      fail_conn(c, CL_ERR_TOO_LARGE, "too_large", why);
      return;
    }
    if (rc < 0) {
      s->st.frames_malformed++;
      fail_conn(c, CL_ERR_MALFORMED, "malformed", "zero-length frame");
      return;
    }
    off += used;
    if (rc == 0) break;
    /* Only a complete frame counts as activity: a peer that trickles the
     * bytes of a frame it never finishes is still idle. */
    c->last_rx_ns = t_recv;
    handle_frame(c, frame, flen, t_recv);
  }
}

/* The key of a peer's IP address in per_addr: the family, then the address
 * bytes. An IPv4-mapped IPv6 address (a dual-stack listener) counts as the
 * IPv4 address it carries. Returns 1, or 0 for another family. */
static int addr_key_of(const struct sockaddr_storage *ss, uint8_t key[CL_PK_LEN]) {
  memset(key, 0, CL_PK_LEN);
  if (ss->ss_family == AF_INET) {
    key[0] = 4;
    memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    return 1;
  }
  if (ss->ss_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a)) {
      key[0] = 4;
      memcpy(key + 1, a->s6_addr + 12, 4);
    } else {
      key[0] = 6;
      memcpy(key + 1, a->s6_addr, 16);
    }
    return 1;
  }
  return 0;
}

static void on_connection(uv_stream_t *listener, int status) {
  lm_server *s = listener->data;
  if (status < 0) {
    cl_log(CL_LOG_WARN, "accept failed", "err=%s", uv_strerror(status));
    return;
  }
  lm_conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = s;
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  s->open_handles++;
  snprintf(c->peer, sizeof c->peer, "?");
  /* Link first so that conn_close can always unlink. */
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->n_conns++;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  uint8_t akey[CL_PK_LEN];
  int have_akey = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    have_akey = addr_key_of(&ss, akey);
    char ip[48] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
  }
  if (s->n_conns > s->cfg->max_connections) {
    s->st.conns_refused_limit++;
    fail_conn(c, CL_ERR_LIMIT, "connection_limit", "too many connections");
    return;
  }
  if (have_akey) {
    addr_count *ac = cl_pkmap_get(s->per_addr, akey);
    if (ac && ac->n >= s->cfg->max_connections_per_address) {
      s->st.conns_refused_per_address++;
      fail_conn(c, CL_ERR_LIMIT, "per_address_limit", "too many connections from this address");
      return;
    }
    if (!ac) {
      ac = calloc(1, sizeof *ac);
      if (!ac || cl_pkmap_put(s->per_addr, akey, ac, NULL) != CL_OK) {
        free(ac);
        conn_close(c);
        return;
      }
    }
    ac->n++;
    memcpy(c->addr_key, akey, CL_PK_LEN);
    c->addr_counted = 1;
  }
  s->st.conns_accepted++;
  uv_tcp_nodelay(&c->tcp, 1);
  cl_frame_asm_init(&c->fa, CL_FRAME_MAX_UNREGISTERED);
  randombytes_buf(c->session_nonce, CL_NONCE_LEN);
  c->state = CONN_HELLO;
  c->last_rx_ns = uv_hrtime();
  c->announced = 1;
  cl_log(CL_LOG_INFO, "connection accepted", "peer=%s", c->peer);
  uv_timer_start(&c->timer, on_conn_timer, s->cfg->handshake_timeout_ms, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    conn_close(c);
    return;
  }
  cl_msg hello;
  hello.type = CL_MSG_HELLO;
  memcpy(hello.u.hello.landmark, cl_key_public(s->key), CL_PK_LEN);
  memcpy(hello.u.hello.session_nonce, c->session_nonce, CL_NONCE_LEN);
  uint8_t buf[256];
  size_t len;
  if (cl_msg_encode(&hello, buf, sizeof buf, &len) == CL_OK) send_frame(c, buf, len);
}

/* ---- server ---------------------------------------------------------------- */

static void on_stats_timer(uv_timer_t *t) { lm_server_log_stats(t->data); }

int lm_server_create(lm_server **out, uv_loop_t *loop, const cl_landmark_config *cfg,
                     const cl_key *key, lm_writer *writer) {
  lm_server *s = calloc(1, sizeof *s);
  if (!s) return CL_ENOMEM;
  s->loop = loop;
  s->cfg = cfg;
  s->key = key;
  s->writer = writer;
  if (cl_pkmap_create(&s->live, 1024) != CL_OK || cl_pkmap_create(&s->enrolled, 16) != CL_OK ||
      cl_pkmap_create(&s->per_addr, 1024) != CL_OK) {
    cl_pkmap_destroy(&s->live);
    cl_pkmap_destroy(&s->enrolled);
    free(s);
    return CL_ENOMEM;
  }
  /* 10 us (a loopback round trip) to 1 s (beyond any sane deadline). */
  static const double rtt_le[] = {1e-5,   2.5e-5, 5e-5, 1e-4,  2.5e-4, 5e-4, 1e-3, 2.5e-3,
                                  5e-3,   0.01,   0.025, 0.05, 0.1,    0.25, 0.5,  1.0};
  cl_histogram_init(&s->rtt, rtt_le, sizeof rtt_le / sizeof rtt_le[0]);
  /* 1 ms (the timer clock's resolution) to 10 s (a landmark far behind). */
  static const double lag_le[] = {1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
                                  5.0,  10.0};
  cl_histogram_init(&s->lag, lag_le, sizeof lag_le / sizeof lag_le[0]);
  cl_ratelimit_init(&s->rl, 20, 2);
  uv_timer_init(loop, &s->stats_timer);
  s->stats_timer.data = s;
  s->open_handles++;
  /* Hand the pool's batches over around every poll; unreferenced, so they
   * never keep the loop alive by themselves. */
  uv_prepare_init(loop, &s->pool_prepare);
  uv_check_init(loop, &s->pool_check);
  s->pool_prepare.data = s;
  s->pool_check.data = s;
  s->open_handles += 2;
  uv_prepare_start(&s->pool_prepare, on_pool_prepare);
  uv_check_start(&s->pool_check, on_pool_check);
  uv_unref((uv_handle_t *)&s->pool_prepare);
  uv_unref((uv_handle_t *)&s->pool_check);
  uint64_t every = (uint64_t)cfg->stats_interval_s * 1000ull;
  uv_timer_start(&s->stats_timer, on_stats_timer, every, every);
  *out = s;
  return CL_OK;
}

int lm_server_listen(lm_server *s, char *err, size_t errlen) {
  struct sockaddr_storage addr;
  int r = uv_ip4_addr(s->cfg->listen_host, s->cfg->listen_port, (struct sockaddr_in *)&addr);
  if (r != 0) r = uv_ip6_addr(s->cfg->listen_host, s->cfg->listen_port, (struct sockaddr_in6 *)&addr);
  if (r != 0) {
    snprintf(err, errlen, "listen address %s is not a numeric IP address", s->cfg->listen_host);
    return CL_EINVAL;
  }
  uv_tcp_init(s->loop, &s->listener);
  s->listener.data = s;
  s->open_handles++;
  s->listening = 1;
  r = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
  if (r != 0) {
    snprintf(err, errlen, "cannot listen on %s:%d: %s", s->cfg->listen_host, s->cfg->listen_port,
             uv_strerror(r));
    return CL_EIO;
  }
  return CL_OK;
}

int lm_server_is_listening(const lm_server *s) { return s->listening; }

typedef struct {
  lm_chip *drop[256];
  size_t n;
  lm_server *s;
} drop_walk;

static void collect_unenrolled(void *arg, const uint8_t *key, void *value) {
  drop_walk *w = arg;
  const cl_store_chip *e = cl_pkmap_get(w->s->enrolled, key);
  lm_chip *ch = value;
  if (e) {
    ch->db_id = e->id;
    ch->is_landmark = e->is_landmark;
  }
  if ((!e || !e->active) && w->n < sizeof w->drop / sizeof w->drop[0]) w->drop[w->n++] = ch;
}

void lm_server_set_enrolled(lm_server *s, cl_store_chip *chips, size_t n) {
  cl_pkmap *m = NULL;
  if (cl_pkmap_create(&m, n) != CL_OK) {
    free(chips);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (cl_pkmap_put(m, chips[i].pk, &chips[i], NULL) != CL_OK) {
      cl_pkmap_destroy(&m);
      free(chips);
      return;
    }
  }
  cl_pkmap_destroy(&s->enrolled);
  free(s->enrolled_arr);
  s->enrolled = m;
  s->enrolled_arr = chips;
  /* Drop live chips that were unenrolled or deactivated, in rounds of up to
   * 256 so that the walk never sees the map change under it. */
  drop_walk w = {.n = 0, .s = s};
  do {
    w.n = 0;
    cl_pkmap_each(s->live, collect_unenrolled, &w);
    for (size_t i = 0; i < w.n; i++) {
      char hex[17];
      short_hex(w.drop[i]->pk, hex);
      cl_log(CL_LOG_INFO, "chip no longer enrolled; dropped", "chip=%s", hex);
      chip_detach(w.drop[i]);
    }
  } while (w.n == sizeof w.drop / sizeof w.drop[0]);
  cl_log(CL_LOG_DEBUG, "enrolled set refreshed", "chips=%zu live=%zu", n, cl_pkmap_count(s->live));
}

const lm_stats *lm_server_stats(const lm_server *s) { return &s->st; }

void lm_server_log_stats(lm_server *s) {
  const lm_stats *t = &s->st;
  lm_writer_stats ws;
  lm_writer_get_stats(s->writer, &ws);
  cl_log(CL_LOG_INFO, "stats",
         "conns=%zu conns_accepted=%llu conns_refused_limit=%llu chips_live=%zu "
         "chips_registered=%llu refused_not_enrolled=%llu refused_bad_proof=%llu "
         "refused_duplicate=%llu refused_inactive=%llu probes_sent=%llu accepted=%llu "
         "timeouts=%llu rejected_unknown_nonce=%llu rejected_wrong_chip=%llu "
         "rejected_replay=%llu rejected_late=%llu rejected_bad_signature=%llu "
         "rejected_not_registered=%llu frames_too_large=%llu frames_malformed=%llu "
         "frames_unknown_type=%llu version_mismatch=%llu unexpected_msg=%llu "
         "handshake_timeouts=%llu idle_timeouts=%llu measurements=%llu "
         "measurements_dropped=%llu rows_written=%llu db_queue=%llu db_errors=%llu "
         "conns_refused_per_address=%llu probes_deferred=%llu peer_errors=%llu "
         "rows_spooled=%llu rows_replayed=%llu spool_rows=%llu spool_bytes=%llu "
         "spool_dropped=%llu spool_corrupt=%llu",
         s->n_conns, (unsigned long long)t->conns_accepted,
         (unsigned long long)t->conns_refused_limit, cl_pkmap_count(s->live),
         (unsigned long long)t->chips_registered,
         (unsigned long long)t->register_refused[CL_REFUSE_NOT_ENROLLED],
         (unsigned long long)t->register_refused[CL_REFUSE_BAD_PROOF],
         (unsigned long long)t->register_refused[CL_REFUSE_DUPLICATE],
         (unsigned long long)t->register_refused[CL_REFUSE_INACTIVE],
         (unsigned long long)t->probes_sent, (unsigned long long)t->responses_accepted,
         (unsigned long long)t->probe_timeouts,
         (unsigned long long)t->rejected[CL_ACCEPT_UNKNOWN_NONCE],
         (unsigned long long)t->rejected[CL_ACCEPT_WRONG_CHIP],
         (unsigned long long)t->rejected[CL_ACCEPT_REPLAY],
         (unsigned long long)t->rejected[CL_ACCEPT_LATE],
         (unsigned long long)t->rejected[CL_ACCEPT_BAD_SIGNATURE],
         (unsigned long long)t->rejected_not_registered, (unsigned long long)t->frames_too_large,
         (unsigned long long)t->frames_malformed, (unsigned long long)t->frames_unknown_type,
         (unsigned long long)t->version_mismatch, (unsigned long long)t->unexpected_msg,
         (unsigned long long)t->handshake_timeouts, (unsigned long long)t->idle_timeouts,
         (unsigned long long)t->measurements, (unsigned long long)t->measurements_dropped,
         (unsigned long long)ws.rows_written, (unsigned long long)ws.queue_depth,
         (unsigned long long)ws.db_errors, (unsigned long long)t->conns_refused_per_address,
         (unsigned long long)t->probes_deferred, (unsigned long long)t->peer_errors,
         (unsigned long long)ws.rows_spooled, (unsigned long long)ws.rows_replayed,
         (unsigned long long)ws.spool_rows, (unsigned long long)ws.spool_bytes,
         (unsigned long long)ws.spool_dropped, (unsigned long long)ws.spool_corrupt);
}

/* One counter family with one labelled series per (label value, count). */
static void counter_by(cl_mtext *t, const char *name, const char *help, const char *label,
                       const char *const *values, const uint64_t *counts, size_t n) {
  cl_mtext_family(t, name, "counter", help);
  for (size_t i = 0; i < n; i++) {
    char lab[96];
    snprintf(lab, sizeof lab, "%s=\"%s\"", label, values[i]);
    cl_mtext_u64(t, name, lab, counts[i]);
  }
}

static void counter1(cl_mtext *t, const char *name, const char *help, uint64_t v) {
  cl_mtext_family(t, name, "counter", help);
  cl_mtext_u64(t, name, NULL, v);
}

static void gauge1(cl_mtext *t, const char *name, const char *help, double v) {
  cl_mtext_family(t, name, "gauge", help);
  cl_mtext_double(t, name, NULL, v);
}

int lm_server_render_metrics(lm_server *s, cl_mtext *t) {
  const lm_stats *st = &s->st;
  lm_writer_stats ws;
  lm_writer_get_stats(s->writer, &ws);
  char name_q[CL_CONFIG_NAME_MAX * 2 + 1], lab[CL_CONFIG_NAME_MAX * 2 + 64];
  cl_mtext_label_value(name_q, sizeof name_q, s->cfg->name);
  snprintf(lab, sizeof lab, "landmark=\"%s\",version=\"%s\"", name_q, CHIPLOC_VERSION);
  cl_mtext_family(t, "chiploc_landmark_info", "gauge",
                  "Constant 1, labelled with the landmark name and version.");
  cl_mtext_u64(t, "chiploc_landmark_info", lab, 1);

  counter1(t, "chiploc_probes_sent_total", "Challenges sent.", st->probes_sent);
  counter1(t, "chiploc_responses_accepted_total", "Responses that passed every acceptance check.",
           st->responses_accepted);
  {
    const char *v[] = {"unknown_nonce", "wrong_chip", "replay", "late", "bad_signature",
                       "not_registered"};
    uint64_t n[] = {st->rejected[CL_ACCEPT_UNKNOWN_NONCE], st->rejected[CL_ACCEPT_WRONG_CHIP],
                    st->rejected[CL_ACCEPT_REPLAY],        st->rejected[CL_ACCEPT_LATE],
                    st->rejected[CL_ACCEPT_BAD_SIGNATURE], st->rejected_not_registered};
    counter_by(t, "chiploc_responses_rejected_total", "Responses rejected, by reason.", "reason", v,
               n, 6);
  }
  counter1(t, "chiploc_probes_deferred_total",
           "Probes postponed because the connection had max_pending_challenges outstanding.",
           st->probes_deferred);
  {
    const char *v[] = {"too_large", "malformed", "unknown_type", "version", "unexpected"};
    uint64_t n[] = {st->frames_too_large, st->frames_malformed, st->frames_unknown_type,
                    st->version_mismatch, st->unexpected_msg};
    counter_by(t, "chiploc_frames_rejected_total",
               "Frames rejected (the connection is closed), by reason.", "reason", v, n, 5);
  }
  counter1(t, "chiploc_peer_errors_total", "Error frames received from agents.", st->peer_errors);
  counter1(t, "chiploc_chips_registered_total", "Chip registrations accepted.",
           st->chips_registered);
  {
    const char *v[] = {"not_enrolled", "bad_proof", "duplicate", "inactive"};
    uint64_t n[] = {st->register_refused[CL_REFUSE_NOT_ENROLLED],
                    st->register_refused[CL_REFUSE_BAD_PROOF],
                    st->register_refused[CL_REFUSE_DUPLICATE],
                    st->register_refused[CL_REFUSE_INACTIVE]};
    counter_by(t, "chiploc_registrations_refused_total", "Chip registrations refused, by reason.",
               "reason", v, n, 4);
  }
  gauge1(t, "chiploc_chips_live", "Chips registered on an open connection.",
         (double)cl_pkmap_count(s->live));
  gauge1(t, "chiploc_connections", "Agent connections open.", (double)s->n_conns);
  counter1(t, "chiploc_connections_accepted_total", "Agent connections accepted.",
           st->conns_accepted);
  {
    const char *v[] = {"limit", "per_address"};
    uint64_t n[] = {st->conns_refused_limit, st->conns_refused_per_address};
    counter_by(t, "chiploc_connections_refused_total",
               "Connections refused with ERROR_LIMIT, by limit reached.", "reason", v, n, 2);
  }
  {
    const char *v[] = {"handshake", "idle", "probe"};
    uint64_t n[] = {st->handshake_timeouts, st->idle_timeouts, st->probe_timeouts};
    counter_by(t, "chiploc_timeouts_total",
               "Timeouts: connections cut before registering or when idle, probes unanswered "
               "by the deadline.",
               "kind", v, n, 3);
  }
  cl_mtext_family(t, "chiploc_rtt_seconds", "histogram", "Round-trip time of accepted probes.");
  cl_mtext_histogram(t, "chiploc_rtt_seconds", NULL, &s->rtt);
  cl_mtext_family(t, "chiploc_probe_lag_seconds", "histogram",
                  "How late each challenge was sent against its scheduled time.");
  cl_mtext_histogram(t, "chiploc_probe_lag_seconds", NULL, &s->lag);
  counter1(t, "chiploc_verify_queued_total",
           "Response signature checks handed to the verify threads.", st->verify_queued);
  counter1(t, "chiploc_sign_queued_total", "Challenge signatures handed to the verify threads.",
           st->sign_queued);
  gauge1(t, "chiploc_pool_inflight",
         "Signature checks and challenge signatures queued or running on the verify threads.",
         (double)s->pool_inflight);
  counter1(t, "chiploc_pool_orphaned_total",
           "Signature checks and challenge signatures whose chip or connection was gone when "
           "they finished.",
           st->pool_orphaned);
  counter1(t, "chiploc_measurements_total", "Burst measurements handed to the database writer.",
           st->measurements);
  counter1(t, "chiploc_measurements_dropped_total",
           "Burst measurements lost because the writer queue was full.",
           st->measurements_dropped);
  cl_mtext_family(t, "chiploc_db_batch_seconds", "summary",
                  "Time to write one batch of rows to PostgreSQL (successful batches).");
  cl_mtext_double(t, "chiploc_db_batch_seconds_sum", NULL, (double)ws.batch_ns_total / 1e9);
  cl_mtext_u64(t, "chiploc_db_batch_seconds_count", NULL, ws.batches);
  gauge1(t, "chiploc_db_queue_depth", "Rows waiting to be written.", (double)ws.queue_depth);
  counter1(t, "chiploc_db_rows_written_total", "Rows committed to PostgreSQL.", ws.rows_written);
  counter1(t, "chiploc_db_rows_rejected_total", "Rows refused by the database and set aside.",
           ws.rows_rejected);
  counter1(t, "chiploc_db_errors_total", "Failed batch writes (retried).", ws.db_errors);
  gauge1(t, "chiploc_spool_bytes", "Size of the outage spool file (rows waiting for the database).",
         (double)ws.spool_bytes);
  gauge1(t, "chiploc_spool_rows", "Rows in the outage spool waiting for the database.",
         (double)ws.spool_rows);
  counter1(t, "chiploc_spool_rows_dropped_total", "Rows lost because the spool was full.",
           ws.spool_dropped);
  return cl_mtext_ok(t);
}

void lm_server_close(lm_server *s, void (*done)(void *arg), void *arg) {
  s->closing = 1;
  s->done = done;
  s->done_arg = arg;
  while (s->conns) conn_close(s->conns);
  /* Every chip is gone: a batch not yet handed over has nothing to serve. */
  if (s->filling) {
    s->st.pool_orphaned += s->filling->n;
    s->pool_inflight -= s->filling->n;
    free(s->filling);
    s->filling = NULL;
  }
  uv_close((uv_handle_t *)&s->pool_prepare, on_server_handle_closed);
  uv_close((uv_handle_t *)&s->pool_check, on_server_handle_closed);
  uv_timer_stop(&s->stats_timer);
  uv_close((uv_handle_t *)&s->stats_timer, on_server_handle_closed);
  if (s->listening) uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
  maybe_done(s);
}

static void free_addr_count(void *arg, const uint8_t *key, void *value) {
  (void)arg;
  (void)key;
  free(value);
}

void lm_server_destroy(lm_server **ps) {
  if (!ps || !*ps) return;
  lm_server *s = *ps;
  /* Every connection is closed by now, so per_addr is empty; free any
   * count that is left all the same. */
  cl_pkmap_each(s->per_addr, free_addr_count, NULL);
  cl_pkmap_destroy(&s->per_addr);
  cl_pkmap_destroy(&s->live);
  cl_pkmap_destroy(&s->enrolled);
  free(s->enrolled_arr);
  free(s);
  *ps = NULL;
}
