/*
 * Chip agent core: one `peer` per configured landmark, each with at most one
 * live `conn` (a TCP connection and its timer), and one chip session
 * (cl_chipsess) per chip and landmark.
 *
 * Per connection (protocol 2, docs/PROTOCOL.md): the landmark sends Hello;
 * we check its id against the pinned key and its cipher suite against the
 * ones we implement, and send Register with a fresh offer per chip. The
 * landmark answers RegisterResult; for each accepted chip we check the
 * landmark's handshake signature under the pinned key and derive the
 * session key (cl_chipsess_accept), the chips sign their side of the
 * handshakes, and one Confirm per RegisterResult carries those signatures.
 * Then the timed phase: a Challenge is answered at once with a MAC under the
 * session key (one keyed BLAKE2b, on the loop). After a burst the landmark
 * sends BurstEnd; the chip signs the transcript of the probes it answered
 * and we send Transcript. On Rekey the chip gets a fresh offer in a Register
 * of its own (the old key is wiped there), then RegisterResult and Confirm
 * as above; it answers nothing in between.
 *
 * Identity-key signatures (handshakes, transcripts) never run on the event
 * loop: they go to libuv's thread pool, so that a slow signer (a hardware
 * root of trust takes milliseconds) never delays the timed answers of other
 * chips or landmarks. A job holds copies of what it signs and finds its
 * connection again by the peer's connection number: peers live as long as
 * the agent, and uv_run does not return while a job is pending.
 *
 * Session keys: one sodium_malloc block holds a slot of CL_SESSION_KEY_LEN
 * bytes for every (landmark, chip) pair, slot peer * n_chips + chip. A
 * session's slot is wiped when the session ends (connection closed, new
 * offer) and the block is freed with sodium_free at exit. It stays readable
 * between uses: the answers must be fast.
 *
 * Ownership: the agent owns the peers (an array freed in agent_destroy once
 * the loop has finished); a conn is malloc'd per attempt and freed in the
 * close callback of its last handle. Any close or failure leads to
 * peer_after_close, which tries the next resolved address or schedules a
 * reconnect with backoff.
 *
 * Dead landmarks: a landmark only sends when it probes, so a registered
 * connection that brings no complete frame for idle_timeout_s is taken for
 * a landmark that vanished without closing (a stopped process, a host gone
 * from the network) and is closed and re-established. TCP keepalive covers
 * the same case at the kernel level when the peer host itself is gone.
 */
#include "agent.h"
#include "cl_chipsess.h"
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_log.h"
#include "cl_msg.h"

#include <assert.h>
#include <netdb.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HANDSHAKE_TIMEOUT_MS 15000u /* connect + Hello + RegisterResult */
#define STATS_INTERVAL_MS 60000u
#define STABLE_SESSION_MS 10000u    /* a session this long resets the backoff */
#define KEEPALIVE_S 30u
#define IDLE_CHECK_MIN_MS 100u      /* idle checks: a quarter of the timeout, within these */
#define IDLE_CHECK_MAX_MS 5000u
#define MAX_WRITE_QUEUE (1u << 20)  /* bytes queued for a landmark that does not read */
#define READ_BUF (64u * 1024u)
#define ADDR_TEXT (CL_CONFIG_HOST_MAX + 10)
#define CHIP_HEX_LEN 16             /* a chip in log lines: its key's first 8 bytes */
/* A log line's chip fields: chip=NAME chip_key=HEX (chip_fields). */
#define CHIP_FIELDS_LEN (CL_CONFIG_NAME_MAX + CHIP_HEX_LEN + 32)
/*
 * A chip the landmark moved to another connection (ERROR_CHIP_TAKEN_OVER: a
 * second agent holds its key) is not offered to that landmark for this
 * long. One agent per chip is the rule; two that both offer it would take
 * it from each other at every reconnect, each time with a gap in its
 * measurements. With the hold the chip changes hands at most once an hour
 * per landmark, each time logged as an error here and a warning at the
 * landmark, and an agent whose rival is gone (a host being replaced, a
 * test instance stopped) takes its chip back within the hour without a
 * restart.
 */
#define TAKEOVER_HOLD_MS 3600000u

typedef enum {
  CONN_CONNECTING = 0,
  CONN_WAIT_HELLO,
  CONN_WAIT_RESULT,
  CONN_REGISTERED,
} conn_state;

struct peer;

typedef struct conn {
  struct peer *peer;
  uv_tcp_t tcp;
  uv_timer_t timer; /* handshake deadline, then idle checks */
  uv_connect_t connect_req;
  int open_handles; /* the conn is freed when this drops to 0 */
  int closing;
  int connected;
  conn_state state;
  uint32_t suite;         /* the landmark's, from its Hello */
  uint64_t registered_ms; /* uv_now when the first RegisterResult arrived */
  uint64_t last_rx_ms;    /* uv_now after the last complete frame */
  uint64_t last_check_ms; /* uv_now of the last idle check */
  int check_deferred;     /* the last idle check was put off: the loop had stalled */
  size_t n_offered;       /* chips offered in the first Register */
  uint64_t gen; /* the peer's connection number: a late job result finds it by this */
  uint64_t t_read_ns; /* uv_hrtime at the start of the last read: an answer's latency */
  cl_frame_asm fa;
  uint8_t rbuf[READ_BUF];
} conn;

typedef struct peer {
  agent *ag;
  const cl_agent_landmark *cfg;
  char addr[ADDR_TEXT]; /* "host:port" for logs */
  uv_timer_t timer;     /* reconnect backoff */
  uv_getaddrinfo_t gai;
  int gai_active;
  struct addrinfo *ai;      /* last resolution */
  struct addrinfo *ai_next; /* next address to try */
  conn *conn;
  uint64_t conn_gen; /* connections opened so far */
  unsigned attempt;
  cl_ratelimit rl;   /* warnings about what this landmark sends */
  cl_chipsess *sess; /* one per chip of the agent, same index; ended with the conn */
  /* Per chip, same index: uv_now (ms) until which the chip is not offered
   * here (TAKEOVER_HOLD_MS after an ERROR_CHIP_TAKEN_OVER); 0 when it is. */
  uint64_t *held_until;
  agent_landmark_stats st; /* its counters; name, registered and sessions filled when read */
} peer;

typedef struct {
  const char *name; /* points into the agent's config copy */
  cl_key *key;
  const uint8_t *pk;
  char hex[CHIP_HEX_LEN + 1];
} agent_chip;

struct agent {
  uv_loop_t *loop;
  cl_agent_config cfg;
  size_t n_chips;
  agent_chip chips[CL_CONFIG_MAX_CHIPS];
  size_t n_peers;
  peer *peers;
  uint8_t *session_keys; /* sodium_malloc: n_peers * n_chips slots */
  unsigned sign_delay_ms;
  uv_timer_t stats_timer;
  int started;
  int stopping;
  agent_stats st;
};

/* Writes with a heap copy of the data, freed in the callback. */
typedef struct {
  uv_write_t req;
  size_t len;
  uint8_t data[];
} wreq;

static void peer_connect(peer *p);
static void peer_try_next(peer *p);
static void conn_close(conn *c, cl_log_level level, const char *why, const char *detail);

/* ---- helpers ------------------------------------------------------------ */

static void log_stats(const agent *a, const char *when) {
  cl_log(CL_LOG_INFO, "stats",
         "challenges=%llu answered=%llu no_session=%llu unknown_chip=%llu transcripts=%llu "
         "transcripts_refused=%llu rekeys=%llu bad_landmark_sig=%llu wrong_landmark=%llu "
         "reconnects=%llu idle_timeouts=%llu when=%s",
         (unsigned long long)a->st.challenges, (unsigned long long)a->st.answered,
         (unsigned long long)a->st.no_session, (unsigned long long)a->st.unknown_chip,
         (unsigned long long)a->st.transcripts, (unsigned long long)a->st.transcripts_refused,
         (unsigned long long)a->st.rekeys, (unsigned long long)a->st.bad_landmark_sig,
         (unsigned long long)a->st.wrong_landmark, (unsigned long long)a->st.reconnects,
         (unsigned long long)a->st.idle_timeouts, when);
}

/* Index of the chip with public key id, or -1 when this agent has none. */
static int chip_index(const agent *a, const uint8_t id[CL_PK_LEN]) {
  for (size_t i = 0; i < a->n_chips; i++)
    if (memcmp(a->chips[i].pk, id, CL_PK_LEN) == 0) return (int)i;
  return -1;
}

static void chip_hex(const uint8_t id[CL_PK_LEN], char out[CHIP_HEX_LEN + 1]) {
  cl_hex_encode(out, id, CHIP_HEX_LEN / 2);
}

/* The fields that name a chip in a log line: chip= its [chip.NAME] (for a
 * chip this agent does not hold, its key's first 8 bytes in hex) and
 * chip_key= those hex digits, which the landmark's lines carry too.
 * Returns out. */
static const char *chip_fields(const agent *a, const uint8_t id[CL_PK_LEN],
                               char out[CHIP_FIELDS_LEN]) {
  char hex[CHIP_HEX_LEN + 1];
  chip_hex(id, hex);
  int ci = chip_index(a, id);
  snprintf(out, CHIP_FIELDS_LEN, "chip=%s chip_key=%s", ci >= 0 ? a->chips[ci].name : hex, hex);
  return out;
}

/* 1 when chip ci may be offered to p now: no hold, or its hold is over. */
static int chip_offerable(const peer *p, size_t ci) {
  return p->held_until[ci] <= uv_now(p->ag->loop);
}

/* Milliseconds until p has a chip it may offer: 0 when it has one now. */
static uint64_t peer_hold_left_ms(const peer *p) {
  uint64_t now = uv_now(p->ag->loop), first = UINT64_MAX;
  for (size_t i = 0; i < p->ag->n_chips; i++) {
    if (p->held_until[i] <= now) return 0;
    if (p->held_until[i] < first) first = p->held_until[i];
  }
  return first == UINT64_MAX ? 0 : first - now;
}

/* Returns 1 if a warning about peer p may be logged now; *supp gets the
 * number of lines suppressed since the last one. */
static int peer_may_warn(peer *p, uint64_t *supp) {
  return cl_ratelimit_allow(&p->rl, uv_hrtime(), supp);
}

/* 1 when some chip of p has its session with p in state. */
static int peer_has_state(const peer *p, cl_chipsess_state state) {
  for (size_t i = 0; i < p->ag->n_chips; i++)
    if (p->sess[i].state == state) return 1;
  return 0;
}

/* ---- writing ------------------------------------------------------------ */

static void on_written(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  conn *c = req->handle->data;
  free(w);
  if (status < 0 && status != UV_ECANCELED) conn_close(c, CL_LOG_WARN, "write failed", uv_strerror(status));
}

/* Queues a copy of buf behind whatever is already queued. 0 or CL_E*. */
static int conn_write_copy(conn *c, const uint8_t *buf, size_t len) {
  if (c->tcp.write_queue_size + len > MAX_WRITE_QUEUE) {
    conn_close(c, CL_LOG_WARN, "landmark is not reading", "write queue full");
    return CL_ETOOBIG;
  }
  wreq *w = malloc(sizeof *w + len);
  if (!w) {
    conn_close(c, CL_LOG_ERROR, "out of memory", "write");
    return CL_ENOMEM;
  }
  w->len = len;
  memcpy(w->data, buf, len);
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)len);
  int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
  if (r < 0) {
    free(w);
    conn_close(c, CL_LOG_WARN, "write failed", uv_strerror(r));
    return CL_EIO;
  }
  return CL_OK;
}

/*
 * Sends a whole frame now if the socket takes it, queueing only the unwritten
 * tail. uv_try_write refuses (UV_EAGAIN) while earlier data is queued, so
 * frames never overtake each other. Returns 0 or CL_E* (conn is closing).
 */
static int conn_send(conn *c, const uint8_t *buf, size_t len) {
  if (c->closing) return CL_EIO;
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
  if (n < 0) {
    conn_close(c, CL_LOG_WARN, "write failed", uv_strerror(n));
    return CL_EIO;
  }
  if ((size_t)n == len) return CL_OK;
  return conn_write_copy(c, buf + n, len - (size_t)n);
}

/* Best effort: tell the landmark why we hang up, then the caller closes. */
static void conn_send_error(conn *c, cl_wire_error code, const char *text) {
  uint8_t buf[CL_MAX_ERROR_TEXT + 64];
  size_t len = 0;
  if (c->closing || cl_msg_encode_error(code, text, buf, sizeof buf, &len) != CL_OK) return;
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
}

/* Encodes m and sends it (conn_send). Register and Confirm, the largest
 * messages the agent sends, fit CL_FRAME_MAX_UNREGISTERED. 0 or CL_E*
 * (the conn is closing). */
static int conn_send_msg(conn *c, const cl_msg *m) {
  uint8_t buf[CL_FRAME_MAX_UNREGISTERED];
  size_t len = 0;
  int rc = cl_msg_encode(m, buf, sizeof buf, &len);
  if (rc != CL_OK) {
    conn_close(c, CL_LOG_ERROR, "cannot encode", cl_msg_type_name(m->type));
    return rc;
  }
  return conn_send(c, buf, len);
}

/* ---- closing and reconnecting ------------------------------------------- */

static void on_backoff_timer(uv_timer_t *t) { peer_connect(t->data); }

/* Schedules the next connection attempt: delay drawn uniformly from
 * [backoff_min, min(backoff_max, backoff_min * 2^attempt)], or later, when
 * the first chip's hold ends, if every chip is held (nothing to offer). */
static void peer_backoff(peer *p) {
  agent *a = p->ag;
  if (a->stopping) return;
  uint64_t lo = a->cfg.backoff_min_ms, hi = a->cfg.backoff_max_ms;
  unsigned shift = p->attempt < 32 ? p->attempt : 32;
  uint64_t cap = lo << shift;
  if (cap > hi || cap < lo) cap = hi;
  uint64_t delay = lo + randombytes_uniform((uint32_t)(cap - lo + 1));
  uint64_t held = peer_hold_left_ms(p);
  if (held > delay) delay = held;
  p->attempt++;
  a->st.reconnects++;
  p->st.reconnects++;
  cl_log(CL_LOG_INFO, "reconnect scheduled", "landmark=%s addr=%s delay_ms=%llu attempt=%u",
         p->cfg->name, p->addr, (unsigned long long)delay, p->attempt);
  uv_timer_start(&p->timer, on_backoff_timer, delay, 0);
}

/* Called when a conn has fully closed; decides what happens next. */
static void peer_after_close(peer *p, int was_connected, uint64_t registered_for_ms) {
  agent *a = p->ag;
  if (a->stopping) return;
  if (!was_connected && p->ai_next) {
    peer_try_next(p);
    return;
  }
  if (p->ai) {
    uv_freeaddrinfo(p->ai);
    p->ai = p->ai_next = NULL;
  }
  if (registered_for_ms >= STABLE_SESSION_MS) p->attempt = 0;
  peer_backoff(p);
}

static void on_conn_closed(uv_handle_t *h) {
  conn *c = h->data;
  if (--c->open_handles > 0) return;
  peer *p = c->peer;
  int was_connected = c->connected;
  uint64_t registered_for =
      c->state == CONN_REGISTERED ? uv_now(p->ag->loop) - c->registered_ms : 0;
  p->conn = NULL;
  cl_frame_asm_fini(&c->fa);
  free(c);
  peer_after_close(p, was_connected, registered_for);
}

/*
 * Closes the connection (idempotent) and logs why: `why` is the event,
 * `detail` (may be NULL) a short reason. Every session on it ends now (keys
 * wiped); the conn is freed in the close callback, which then reconnects.
 */
static void conn_close(conn *c, cl_log_level level, const char *why, const char *detail) {
  if (c->closing) return;
  c->closing = 1;
  peer *p = c->peer;
  if (c->connected)
    cl_log(level, "disconnected", "landmark=%s addr=%s reason=\"%s%s%s\"", p->cfg->name, p->addr,
           why, detail ? ": " : "", detail ? detail : "");
  else
    cl_log(level, "connect failed", "landmark=%s addr=%s reason=\"%s%s%s\"", p->cfg->name, p->addr,
           why, detail ? ": " : "", detail ? detail : "");
  for (size_t i = 0; i < p->ag->n_chips; i++) cl_chipsess_end(&p->sess[i]);
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_handshake_timeout(uv_timer_t *t) {
  conn *c = t->data;
  conn_close(c, CL_LOG_WARN, "handshake timeout",
             c->state == CONN_CONNECTING ? "no connection" : "no registration");
}

/*
 * Periodic check once registered: a landmark that sent no complete frame for
 * idle_timeout_s has stopped probing us, most likely because it is gone
 * without having closed the connection (a FIN never came). Hang up and let
 * peer_after_close reconnect with the usual backoff.
 */
static void on_idle_check(uv_timer_t *t) {
  conn *c = t->data;
  peer *p = c->peer;
  agent *a = p->ag;
  if (c->closing) return;
  uint64_t now = uv_now(a->loop);
  /* A check far behind its schedule means this process was not running (a
   * stopped or paused agent), and frames that came meanwhile may be waiting
   * unread: libuv runs timers before it polls, so look again one period
   * later, once they are read. Never twice in a row. */
  int stalled = now - c->last_check_ms > 2 * uv_timer_get_repeat(t);
  c->last_check_ms = now;
  if (stalled && !c->check_deferred) {
    c->check_deferred = 1;
    return;
  }
  c->check_deferred = 0;
  /* A chip's hold is over: it can be offered only in the Register of a new
   * connection. */
  for (size_t i = 0; i < a->n_chips; i++) {
    if (p->held_until[i] == 0 || p->held_until[i] > now) continue;
    char cf[CHIP_FIELDS_LEN];
    cl_log(CL_LOG_INFO, "offering a chip taken over again; reconnecting", "%s landmark=%s addr=%s",
           chip_fields(a, a->chips[i].pk, cf), p->cfg->name, p->addr);
    conn_close(c, CL_LOG_INFO, "reconnecting", "to offer a chip whose hold is over");
    return;
  }
  uint64_t idle_ms = (uint64_t)a->cfg.idle_timeout_s * 1000u;
  uint64_t silent_ms = now - c->last_rx_ms;
  if (silent_ms < idle_ms) return;
  a->st.idle_timeouts++;
  cl_log(CL_LOG_WARN, "landmark idle; reconnecting",
         "landmark=%s addr=%s idle_timeout_s=%u silent_ms=%llu", p->cfg->name, p->addr,
         a->cfg.idle_timeout_s, (unsigned long long)silent_ms);
  conn_send_error(c, CL_ERR_LIMIT, "idle timeout: no challenge from the landmark");
  conn_close(c, CL_LOG_WARN, "idle timeout", NULL);
}

/* ---- identity-key signatures, on the thread pool ------------------------ */

/* The live connection a job was made for, or NULL when it has closed since
 * (its sessions ended with it: the job's result is dropped). */
static conn *job_conn(peer *p, uint64_t gen) {
  conn *c = p->conn;
  return c && c->gen == gen && !c->closing && !p->ag->stopping ? c : NULL;
}

/* One accepted handshake, for its chip to sign. */
typedef struct {
  size_t chip;     /* index into the agent's chips */
  cl_handshake hs; /* as cl_chipsess_accept filled it; the worker adds chip_sig */
} confirm_item;

/* The handshakes one RegisterResult accepted: signed together, sent in one
 * Confirm. */
typedef struct {
  uv_work_t req;
  peer *p;
  uint64_t gen;
  unsigned delay_ms;
  size_t n;
  confirm_item item[CL_MAX_CHIPS_PER_REGISTER];
} confirm_job;

/* One burst's transcript, for its chip to sign. */
typedef struct {
  uv_work_t req;
  peer *p;
  uint64_t gen;
  unsigned delay_ms;
  size_t chip;
  cl_handshake hs; /* the session the burst ran in */
  size_t n;
  cl_probe_entry e[CL_MAX_BURST];
  uint8_t sig[CL_SIG_LEN];
} transcript_job;

static void confirm_work(uv_work_t *req) {
  confirm_job *j = req->data;
  const agent *a = j->p->ag;
  for (size_t i = 0; i < j->n; i++) {
    if (j->delay_ms) uv_sleep(j->delay_ms);
    /* The suite was checked at the Hello and the handshake names this chip. */
    int rc = cl_hs_sign_chip(&j->item[i].hs, a->chips[j->item[i].chip].key);
    assert(rc == CL_OK);
    (void)rc;
  }
}

static void confirm_done(uv_work_t *req, int status) {
  confirm_job *j = req->data;
  peer *p = j->p;
  conn *c = job_conn(p, j->gen);
  if (status == 0 && c) {
    cl_msg m;
    m.type = CL_MSG_CONFIRM;
    m.u.confirm.n = 0;
    for (size_t i = 0; i < j->n; i++) {
      const confirm_item *it = &j->item[i];
      cl_chipsess *s = &p->sess[it->chip];
      /* A Rekey meanwhile made a new offer: this handshake is void. */
      if (s->state != CL_CHIPSESS_ESTABLISHED ||
          memcmp(s->hs.chip_eph, it->hs.chip_eph, CL_EPH_LEN) != 0)
        continue;
      cl_chipsess_confirmed(s, it->hs.chip_sig);
      cl_chip_confirm *cc = &m.u.confirm.chips[m.u.confirm.n++];
      memcpy(cc->chip, it->hs.chip, CL_PK_LEN);
      memcpy(cc->sig, it->hs.chip_sig, CL_SIG_LEN);
    }
    if (m.u.confirm.n > 0 && conn_send_msg(c, &m) == CL_OK)
      cl_log(CL_LOG_INFO, "confirm sent", "landmark=%s addr=%s chips=%zu", p->cfg->name, p->addr,
             m.u.confirm.n);
  }
  free(j);
}

static void transcript_work(uv_work_t *req) {
  transcript_job *j = req->data;
  if (j->delay_ms) uv_sleep(j->delay_ms);
  /* n was checked by the decoder, the suite at the Hello. */
  int rc = cl_transcript_sign(&j->hs, j->e, j->n, j->p->ag->chips[j->chip].key, j->sig);
  assert(rc == CL_OK);
  (void)rc;
}

static void transcript_done(uv_work_t *req, int status) {
  transcript_job *j = req->data;
  peer *p = j->p;
  conn *c = job_conn(p, j->gen);
  if (status == 0 && c) {
    cl_msg m;
    m.type = CL_MSG_TRANSCRIPT;
    memcpy(m.u.transcript.chip, j->hs.chip, CL_PK_LEN);
    m.u.transcript.first_seq = j->e[0].seq;
    memcpy(m.u.transcript.sig, j->sig, CL_SIG_LEN);
    if (conn_send_msg(c, &m) == CL_OK) {
      p->ag->st.transcripts++;
      p->st.transcripts++;
      char cf[CHIP_FIELDS_LEN];
      cl_log(CL_LOG_DEBUG, "transcript sent", "landmark=%s %s first_seq=%llu probes=%zu",
             p->cfg->name, chip_fields(p->ag, j->hs.chip, cf), (unsigned long long)j->e[0].seq,
             j->n);
    }
  }
  free(j);
}

/* Queues a job made for c; on failure frees it and closes c. */
static void conn_queue(conn *c, uv_work_t *req, void *job, uv_work_cb work, uv_after_work_cb done) {
  req->data = job;
  int r = uv_queue_work(c->peer->ag->loop, req, work, done);
  if (r < 0) {
    free(job);
    conn_close(c, CL_LOG_ERROR, "cannot queue a signature", uv_strerror(r));
  }
}

/* ---- message handlers --------------------------------------------------- */

/*
 * THE TIMED PATH. Everything between the read callback and the write is
 * here: find the chip, MAC under its session key, encode, write.
 */
static void on_challenge(conn *c, const cl_msg *m) {
  peer *p = c->peer;
  agent *a = p->ag;
  a->st.challenges++;
  int ci = chip_index(a, m->u.challenge.chip);
  cl_msg r;
  if (ci >= 0 && cl_chipsess_answer(&p->sess[ci], m->u.challenge.seq, m->u.challenge.nonce,
                                    r.u.response.mac) == CL_OK) {
    r.type = CL_MSG_RESPONSE;
    memcpy(r.u.response.chip, m->u.challenge.chip, CL_PK_LEN);
    r.u.response.seq = m->u.challenge.seq;
    uint8_t buf[256];
    size_t len = 0;
    if (cl_msg_encode(&r, buf, sizeof buf, &len) != CL_OK) {
      conn_close(c, CL_LOG_ERROR, "cannot encode", "Response");
      return;
    }
    if (conn_send(c, buf, len) != CL_OK) return;
    a->st.answered++;
    p->st.answered++;
    cl_histogram_observe(&a->st.answer_seconds, (double)(uv_hrtime() - c->t_read_ns) / 1e9);
    return;
  }
  uint64_t supp = 0;
  char cf[CHIP_FIELDS_LEN];
  chip_fields(a, m->u.challenge.chip, cf);
  if (ci < 0) {
    a->st.unknown_chip++;
    if (peer_may_warn(p, &supp))
      cl_log(CL_LOG_WARN, "challenge for unknown chip not answered",
             "landmark=%s addr=%s %s seq=%llu suppressed=%llu", p->cfg->name, p->addr, cf,
             (unsigned long long)m->u.challenge.seq, (unsigned long long)supp);
  } else {
    /* Refused, or between a Rekey's offer and its RegisterResult. */
    a->st.no_session++;
    if (peer_may_warn(p, &supp))
      cl_log(CL_LOG_WARN, "challenge for chip without session not answered",
             "landmark=%s addr=%s %s seq=%llu suppressed=%llu", p->cfg->name, p->addr, cf,
             (unsigned long long)m->u.challenge.seq, (unsigned long long)supp);
  }
}

/*
 * Sends a Register with a fresh offer for the chips chips[0..count) (indexes
 * into the agent's chips); each offer ends that chip's previous session
 * with this landmark and wipes its key. 0 or CL_E* (the conn is closing).
 */
static int conn_send_register(conn *c, const size_t *chips, size_t count) {
  peer *p = c->peer;
  agent *a = p->ag;
  cl_msg reg;
  reg.type = CL_MSG_REGISTER;
  snprintf(reg.u.reg.agent, sizeof reg.u.reg.agent, "%s", a->cfg.name);
  reg.u.reg.suite = c->suite;
  reg.u.reg.n = count;
  for (size_t i = 0; i < count; i++) {
    /* The suite was checked at the Hello. */
    int rc = cl_chipsess_offer(&p->sess[chips[i]], c->suite, p->cfg->pk, a->chips[chips[i]].pk,
                               &reg.u.reg.chips[i]);
    assert(rc == CL_OK);
    (void)rc;
  }
  return conn_send_msg(c, &reg);
}

static void on_hello(conn *c, const cl_msg *m) {
  peer *p = c->peer;
  agent *a = p->ag;
  if (memcmp(m->u.hello.landmark, p->cfg->pk, CL_PK_LEN) != 0) {
    a->st.wrong_landmark++;
    char want[CL_PK_HEX_LEN + 1], got[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(p->cfg->pk, want);
    cl_pk_to_hex(m->u.hello.landmark, got);
    cl_log(CL_LOG_ERROR, "landmark key mismatch", "landmark=%s addr=%s pinned=%s presented=%s",
           p->cfg->name, p->addr, want, got);
    conn_send_error(c, CL_ERR_BAD_LANDMARK, "landmark id is not the pinned key");
    conn_close(c, CL_LOG_ERROR, "landmark key mismatch", NULL);
    return;
  }
  uint32_t suite = m->u.hello.suite;
  if (!cl_suite_known(suite)) {
    char text[CL_MAX_ERROR_TEXT + 1];
    snprintf(text, sizeof text, "cipher suite %u is unknown; this agent speaks %u (%s)", suite,
             CL_SUITE_ED25519_X25519, cl_suite_name(CL_SUITE_ED25519_X25519));
    cl_log(CL_LOG_ERROR, "unknown cipher suite", "landmark=%s addr=%s suite=%u ours=%u",
           p->cfg->name, p->addr, suite, CL_SUITE_ED25519_X25519);
    conn_send_error(c, CL_ERR_SUITE, text);
    conn_close(c, CL_LOG_ERROR, "unknown cipher suite", NULL);
    return;
  }
  c->suite = suite;
  /* Every chip but those held since another connection took them here. */
  size_t offer[CL_CONFIG_MAX_CHIPS], n = 0;
  for (size_t i = 0; i < a->n_chips; i++) {
    if (!chip_offerable(p, i)) continue;
    p->held_until[i] = 0;
    offer[n++] = i;
  }
  if (n == 0) {
    /* The hold began while this connection was being made. */
    conn_close(c, CL_LOG_INFO, "nothing to offer",
               "every chip is taken over by another connection");
    return;
  }
  if (conn_send_register(c, offer, n) != CL_OK) return;
  c->n_offered = n;
  c->state = CONN_WAIT_RESULT;
  /* The results carry the landmark's half of each handshake: for many chips
   * more than the limit before registration. */
  cl_frame_asm_set_max(&c->fa, CL_FRAME_MAX);
  char name[CL_CONFIG_NAME_MAX * 4 + 3];
  cl_log_quote(name, sizeof name, a->cfg.name, strlen(a->cfg.name));
  cl_log(CL_LOG_INFO, "register sent", "landmark=%s addr=%s agent=%s chips=%zu suite=%u",
         p->cfg->name, p->addr, name, n, suite);
}

/* Registered: the handshake deadline is met; from now on the timer watches
 * for a landmark that has gone silent. */
static void conn_registered(conn *c) {
  agent *a = c->peer->ag;
  c->state = CONN_REGISTERED;
  c->registered_ms = uv_now(a->loop);
  c->last_rx_ms = c->registered_ms;
  c->last_check_ms = c->registered_ms;
  uint64_t check_ms = (uint64_t)a->cfg.idle_timeout_s * 1000u / 4;
  if (check_ms < IDLE_CHECK_MIN_MS) check_ms = IDLE_CHECK_MIN_MS;
  if (check_ms > IDLE_CHECK_MAX_MS) check_ms = IDLE_CHECK_MAX_MS;
  uv_timer_start(&c->timer, on_idle_check, check_ms, check_ms);
}

/*
 * The landmark's half of the handshakes offered (after the Hello, or after
 * a Rekey). Each accepted chip's session is established at once (the
 * landmark's signature checked under the pinned key, the key derived); a
 * worker then signs the chips' halves for one Confirm. A landmark signature
 * that fails closes the connection: whoever answered is not the pinned
 * landmark.
 */
static void on_register_result(conn *c, const cl_msg *m) {
  peer *p = c->peer;
  agent *a = p->ag;
  int initial = c->state == CONN_WAIT_RESULT;
  confirm_job *j = malloc(sizeof *j);
  if (!j) {
    conn_close(c, CL_LOG_ERROR, "out of memory", "confirm");
    return;
  }
  j->p = p;
  j->gen = c->gen;
  j->delay_ms = a->sign_delay_ms;
  j->n = 0;
  size_t refused = 0;
  for (size_t i = 0; i < m->u.reg_result.n; i++) {
    const cl_chip_result *r = &m->u.reg_result.r[i];
    int ci = chip_index(a, r->chip);
    char hex[CHIP_HEX_LEN + 1], cf[CHIP_FIELDS_LEN];
    chip_hex(r->chip, hex);
    chip_fields(a, r->chip, cf);
    if (ci < 0 || p->sess[ci].state != CL_CHIPSESS_OFFERED) {
      uint64_t supp = 0;
      if (peer_may_warn(p, &supp))
        cl_log(CL_LOG_WARN, "result for a chip not offered ignored",
               "landmark=%s addr=%s %s suppressed=%llu", p->cfg->name, p->addr, cf,
               (unsigned long long)supp);
      continue;
    }
    cl_chipsess *s = &p->sess[ci];
    if (!r->accepted) {
      refused++;
      cl_chipsess_end(s);
      char detail[CL_MAX_DETAIL * 4 + 3];
      cl_log_quote(detail, sizeof detail, r->detail, strlen(r->detail));
      cl_log(CL_LOG_WARN, "chip refused", "landmark=%s addr=%s %s reason=%s detail=%s",
             p->cfg->name, p->addr, cf, cl_refuse_reason_name(r->reason), detail);
      continue;
    }
    confirm_item *it = &j->item[j->n];
    if (cl_chipsess_accept(s, r, &it->hs) != CL_OK) {
      free(j);
      a->st.bad_landmark_sig++;
      cl_log(CL_LOG_ERROR, "bad landmark signature", "landmark=%s addr=%s %s", p->cfg->name,
             p->addr, cf);
      char text[CL_MAX_ERROR_TEXT + 1];
      snprintf(text, sizeof text,
               "chip %s: the landmark's handshake signature does not verify under the pinned key",
               hex);
      conn_send_error(c, CL_ERR_BAD_LANDMARK, text);
      conn_close(c, CL_LOG_ERROR, "bad landmark signature", NULL);
      return;
    }
    it->chip = (size_t)ci;
    j->n++;
    p->st.handshakes++;
    cl_log(CL_LOG_INFO, "chip accepted", "landmark=%s addr=%s %s", p->cfg->name, p->addr, cf);
  }
  size_t accepted = j->n;
  if (accepted > 0)
    conn_queue(c, &j->req, j, confirm_work, confirm_done);
  else
    free(j);
  if (c->closing) return;
  if (!initial) {
    /* A refused rekey may leave nothing to be measured here. */
    if (!peer_has_state(p, CL_CHIPSESS_ESTABLISHED) && !peer_has_state(p, CL_CHIPSESS_OFFERED))
      conn_close(c, CL_LOG_WARN, "no chip accepted", "rekey refused");
    return;
  }
  if (m->u.reg_result.n != c->n_offered)
    cl_log(CL_LOG_WARN, "register result count differs", "landmark=%s addr=%s sent=%zu results=%zu",
           p->cfg->name, p->addr, c->n_offered, m->u.reg_result.n);
  if (accepted == 0) {
    /* Nothing to be measured here; retry later, the chips may be enrolled by then. */
    conn_close(c, CL_LOG_WARN, "no chip accepted", NULL);
    return;
  }
  conn_registered(c);
  cl_log(CL_LOG_INFO, "registered", "landmark=%s addr=%s accepted=%zu refused=%zu", p->cfg->name,
         p->addr, accepted, refused);
}

/* After a burst: the chip signs the transcript of the probes the landmark
 * accepted, but only if it answered every one of them in this session. */
static void on_burst_end(conn *c, const cl_msg *m) {
  peer *p = c->peer;
  agent *a = p->ag;
  int ci = chip_index(a, m->u.burst_end.chip);
  char cf[CHIP_FIELDS_LEN];
  chip_fields(a, m->u.burst_end.chip, cf);
  uint64_t supp = 0;
  if (ci < 0 || p->sess[ci].state != CL_CHIPSESS_ESTABLISHED) {
    a->st.transcripts_refused++;
    if (peer_may_warn(p, &supp))
      cl_log(CL_LOG_WARN, "burst end for chip without session not signed",
             "landmark=%s addr=%s %s suppressed=%llu", p->cfg->name, p->addr, cf,
             (unsigned long long)supp);
    return;
  }
  transcript_job *j = malloc(sizeof *j);
  if (!j) {
    conn_close(c, CL_LOG_ERROR, "out of memory", "transcript");
    return;
  }
  const cl_chipsess *s = &p->sess[ci];
  if (cl_chipsess_transcript(s, m->u.burst_end.seqs, m->u.burst_end.n, j->e) != CL_OK) {
    free(j);
    a->st.transcripts_refused++;
    if (peer_may_warn(p, &supp))
      cl_log(CL_LOG_WARN, "burst end names a probe the chip did not answer; not signed",
             "landmark=%s addr=%s %s first_seq=%llu probes=%zu suppressed=%llu",
             p->cfg->name, p->addr, cf, (unsigned long long)m->u.burst_end.seqs[0],
             m->u.burst_end.n, (unsigned long long)supp);
    return;
  }
  j->p = p;
  j->gen = c->gen;
  j->delay_ms = a->sign_delay_ms;
  j->chip = (size_t)ci;
  j->hs = s->hs;
  j->n = m->u.burst_end.n;
  conn_queue(c, &j->req, j, transcript_work, transcript_done);
}

/* The landmark wants a new session key for a chip: a fresh offer, in a
 * Register of its own. The chip answers nothing until it is accepted. */
static void on_rekey(conn *c, const cl_msg *m) {
  peer *p = c->peer;
  agent *a = p->ag;
  int ci = chip_index(a, m->u.rekey.chip);
  char cf[CHIP_FIELDS_LEN];
  chip_fields(a, m->u.rekey.chip, cf);
  if (ci < 0) {
    uint64_t supp = 0;
    if (peer_may_warn(p, &supp))
      cl_log(CL_LOG_WARN, "rekey for unknown chip ignored",
             "landmark=%s addr=%s %s suppressed=%llu", p->cfg->name, p->addr, cf,
             (unsigned long long)supp);
    return;
  }
  if (p->sess[ci].state == CL_CHIPSESS_OFFERED) {
    /* A second offer would void the one the landmark is answering. */
    cl_log(CL_LOG_DEBUG, "rekey already under way", "landmark=%s addr=%s %s", p->cfg->name,
           p->addr, cf);
    return;
  }
  size_t one = (size_t)ci;
  if (conn_send_register(c, &one, 1) != CL_OK) return;
  a->st.rekeys++;
  p->st.rekeys++;
  cl_log(CL_LOG_INFO, "rekey offer sent", "landmark=%s addr=%s %s", p->cfg->name, p->addr, cf);
}

/* The chip an Error's text names: landmarks begin the text of an error
 * about one chip with "chip <16 hex>:". "-" when it names none. */
static void error_chip(const char *text, char out[CHIP_HEX_LEN + 1]) {
  snprintf(out, CHIP_HEX_LEN + 1, "-");
  if (strncmp(text, "chip ", 5) != 0) return;
  for (size_t i = 0; i < CHIP_HEX_LEN; i++)
    if (!strchr("0123456789abcdef", text[5 + i]) || text[5 + i] == '\0') return;
  if (text[5 + CHIP_HEX_LEN] != ':') return;
  memcpy(out, text + 5, CHIP_HEX_LEN);
  out[CHIP_HEX_LEN] = '\0';
}

/* The chip an Error names (error_chip) as log fields: chip=NAME chip_key=HEX
 * for a chip of this agent, chip=HEX chip_key=HEX for another, chip=- when
 * the Error names none. *ci receives the chip's index, or -1. */
static const char *error_chip_fields(const agent *a, const char *hex, int *ci,
                                     char out[CHIP_FIELDS_LEN]) {
  *ci = -1;
  for (size_t i = 0; i < a->n_chips; i++)
    if (strcmp(a->chips[i].hex, hex) == 0) *ci = (int)i;
  if (*ci >= 0)
    snprintf(out, CHIP_FIELDS_LEN, "chip=%s chip_key=%s", a->chips[*ci].name, hex);
  else if (strcmp(hex, "-") != 0)
    snprintf(out, CHIP_FIELDS_LEN, "chip=%s chip_key=%s", hex, hex);
  else
    snprintf(out, CHIP_FIELDS_LEN, "chip=-");
  return out;
}

/*
 * ERROR_CHIP_TAKEN_OVER: the landmark moved chip ci's session to another
 * connection, one whose handshake the chip's key signed: another agent
 * holds that key. The session here is over, and the chip is not offered to
 * this landmark again for TAKEOVER_HOLD_MS (see there). The connection
 * stays for the other chips; with none left the landmark closes it, and
 * the reconnection waits for the hold. fields: error_chip_fields; text:
 * the Error's, quoted.
 */
static void chip_taken_over(conn *c, int ci, const char *fields, const char *text) {
  peer *p = c->peer;
  agent *a = p->ag;
  uint64_t supp = 0;
  if (ci < 0) {
    if (peer_may_warn(p, &supp))
      cl_log(CL_LOG_WARN, "landmark error",
             "landmark=%s addr=%s code=%s %s text=%s suppressed=%llu", p->cfg->name, p->addr,
             cl_wire_error_name(CL_ERR_CHIP_TAKEN_OVER), fields, text, (unsigned long long)supp);
    return;
  }
  /* Once per move: a repeat for a chip already held is logged rate-limited. */
  int repeat = p->held_until[ci] != 0;
  p->held_until[ci] = uv_now(a->loop) + TAKEOVER_HOLD_MS;
  cl_chipsess_end(&p->sess[ci]);
  if (!repeat || peer_may_warn(p, &supp))
    cl_log(CL_LOG_ERROR, "chip taken over by another connection",
           "%s landmark=%s addr=%s hold_s=%u text=%s", fields, p->cfg->name, p->addr,
           TAKEOVER_HOLD_MS / 1000u, text);
}

static void on_error_msg(conn *c, const cl_msg *m) {
  peer *p = c->peer;
  cl_wire_error code = m->u.error.code;
  unsigned slot = (unsigned)code;
  p->ag->st.errors[slot >= 1 && slot < AGENT_ERROR_SLOTS - 1 ? slot : AGENT_ERROR_SLOTS - 1]++;
  char text[CL_MAX_ERROR_TEXT * 4 + 3], hex[CHIP_HEX_LEN + 1], chip[CHIP_FIELDS_LEN];
  cl_log_quote(text, sizeof text, m->u.error.text, strlen(m->u.error.text));
  error_chip(m->u.error.text, hex);
  int ci;
  error_chip_fields(p->ag, hex, &ci, chip);
  switch (code) {
  case CL_ERR_CHIP_TAKEN_OVER:
    chip_taken_over(c, ci, chip, text);
    return;
  case CL_ERR_UNKNOWN_PROBE:
  case CL_ERR_REPLAY:
  case CL_ERR_LATE:
  case CL_ERR_BAD_MAC:
  case CL_ERR_NOT_REGISTERED:
  case CL_ERR_BAD_HANDSHAKE:
  case CL_ERR_BAD_TRANSCRIPT: {
    /* About one message or one chip (the text names it); the session goes on. */
    uint64_t supp = 0;
    if (peer_may_warn(p, &supp))
      cl_log(CL_LOG_WARN, "landmark error",
             "landmark=%s addr=%s code=%s %s text=%s suppressed=%llu", p->cfg->name, p->addr,
             cl_wire_error_name(code), chip, text, (unsigned long long)supp);
    return;
  }
  default:
    /* Version, malformed, too large, unexpected, bad landmark, limit, suite,
     * or a code we do not know: the landmark hangs up after these. */
    cl_log(CL_LOG_ERROR, "landmark error", "landmark=%s addr=%s code=%s %s text=%s",
           p->cfg->name, p->addr, cl_wire_error_name(code), chip, text);
    conn_close(c, CL_LOG_WARN, "landmark sent error", cl_wire_error_name(code));
    return;
  }
}

static void conn_on_frame(conn *c, const uint8_t *frame, size_t len) {
  peer *p = c->peer;
  cl_msg m;
  char err[160];
  int rc = cl_msg_decode(frame, len, &m, err, sizeof err);
  if (rc == CL_OK && m.type == CL_MSG_CHALLENGE && c->state == CONN_REGISTERED) {
    on_challenge(c, &m);
    return;
  }
  if (rc == CL_EVERSION) {
    cl_log(CL_LOG_ERROR, "protocol version mismatch", "landmark=%s addr=%s theirs=%u ours=%u",
           p->cfg->name, p->addr, m.version, CL_PROTOCOL_VERSION);
    conn_close(c, CL_LOG_ERROR, "protocol version mismatch", NULL);
    return;
  }
  if (rc == CL_EUNKNOWNMSG) {
    uint64_t supp = 0;
    if (peer_may_warn(p, &supp))
      cl_log(CL_LOG_WARN, "unknown message ignored", "landmark=%s addr=%s err=\"%s\" suppressed=%llu",
             p->cfg->name, p->addr, err, (unsigned long long)supp);
    return;
  }
  if (rc != CL_OK) {
    char sample[64];
    cl_log_quote(sample, sizeof sample, frame, len < 16 ? len : 16);
    cl_log(CL_LOG_ERROR, "malformed frame", "landmark=%s addr=%s err=\"%s\" len=%zu sample=%s",
           p->cfg->name, p->addr, err, len, sample);
    conn_close(c, CL_LOG_ERROR, "malformed frame", NULL);
    return;
  }
  int registered = c->state == CONN_REGISTERED;
  switch (m.type) {
  case CL_MSG_ERROR:
    on_error_msg(c, &m);
    return;
  case CL_MSG_HELLO:
    if (c->state != CONN_WAIT_HELLO) break;
    on_hello(c, &m);
    return;
  case CL_MSG_REGISTER_RESULT:
    /* Once registered, only in answer to the offers of a Rekey. */
    if (c->state != CONN_WAIT_RESULT && !(registered && peer_has_state(p, CL_CHIPSESS_OFFERED)))
      break;
    on_register_result(c, &m);
    return;
  case CL_MSG_BURST_END:
    if (!registered) break;
    on_burst_end(c, &m);
    return;
  case CL_MSG_REKEY:
    if (!registered) break;
    on_rekey(c, &m);
    return;
  default:
    break;
  }
  cl_log(CL_LOG_ERROR, "unexpected message", "landmark=%s addr=%s type=%s state=%d", p->cfg->name,
         p->addr, cl_msg_type_name(m.type), (int)c->state);
  conn_send_error(c, CL_ERR_UNEXPECTED, cl_msg_type_name(m.type));
  conn_close(c, CL_LOG_ERROR, "unexpected message", cl_msg_type_name(m.type));
}

/* ---- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn *c = h->data;
  (void)suggested;
  buf->base = (char *)c->rbuf;
  buf->len = sizeof c->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = s->data;
  c->t_read_ns = uv_hrtime();
  if (nread == 0) return; /* EAGAIN: not EOF */
  if (nread < 0) {
    if (nread == UV_EOF)
      conn_close(c, CL_LOG_WARN, "landmark closed the connection", NULL);
    else
      conn_close(c, CL_LOG_WARN, "read failed", uv_strerror((int)nread));
    return;
  }
  const uint8_t *data = (const uint8_t *)buf->base;
  size_t left = (size_t)nread;
  int got_frame = 0;
  while (left > 0 && !c->closing) {
    size_t used = 0, flen = 0;
    const uint8_t *frame = NULL;
    int r = cl_frame_asm_feed(&c->fa, data, left, &used, &frame, &flen);
    data += used;
    left -= used;
    if (r == 0) break;
    if (r < 0) {
      char detail[64];
      if (r == CL_ETOOBIG)
        snprintf(detail, sizeof detail, "length %u above %zu", c->fa.last_len, c->fa.max);
      else
        snprintf(detail, sizeof detail, "%s", cl_strerror(r));
      conn_close(c, CL_LOG_ERROR, "bad frame", detail);
      break;
    }
    conn_on_frame(c, frame, flen);
    got_frame = 1;
  }
  /* Only a complete frame shows the landmark alive: bytes of a frame that
   * never completes do not put off the idle timeout. Taken after the
   * answers are out, off the timed path. */
  if (got_frame) c->last_rx_ms = uv_now(c->peer->ag->loop);
}

/* ---- connecting --------------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status) {
  conn *c = req->data;
  peer *p = c->peer;
  if (status == UV_ECANCELED) return; /* closing already */
  if (status < 0) {
    conn_close(c, CL_LOG_WARN, "connect", uv_strerror(status));
    return;
  }
  c->connected = 1;
  c->state = CONN_WAIT_HELLO;
  /* The remaining addresses are not needed; the next attempt resolves anew. */
  uv_freeaddrinfo(p->ai);
  p->ai = p->ai_next = NULL;
  uv_tcp_nodelay(&c->tcp, 1);
  uv_tcp_keepalive(&c->tcp, 1, KEEPALIVE_S);
  int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (r < 0) {
    conn_close(c, CL_LOG_WARN, "read start", uv_strerror(r));
    return;
  }
  cl_log(CL_LOG_INFO, "connected", "landmark=%s addr=%s", p->cfg->name, p->addr);
}

/*
 * Starts one connection attempt to addr. The conn reports back through
 * peer_after_close whatever happens. Returns 0, or CL_EIO/CL_ENOMEM when not
 * even the handles could be set up (nothing to clean up then).
 */
static int conn_open(peer *p, const struct sockaddr *addr) {
  agent *a = p->ag;
  conn *c = calloc(1, sizeof *c);
  if (!c) return CL_ENOMEM;
  c->peer = p;
  int r = uv_tcp_init(a->loop, &c->tcp);
  if (r < 0) {
    free(c);
    return CL_EIO;
  }
  c->tcp.data = c;
  uv_timer_init(a->loop, &c->timer); /* cannot fail */
  c->timer.data = c;
  c->connect_req.data = c;
  c->open_handles = 2;
  c->state = CONN_CONNECTING;
  c->gen = ++p->conn_gen;
  cl_frame_asm_init(&c->fa, CL_FRAME_MAX_UNREGISTERED);
  p->conn = c;
  char ip[64] = "?";
  if (addr->sa_family == AF_INET)
    uv_ip4_name((const struct sockaddr_in *)addr, ip, sizeof ip);
  else if (addr->sa_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)addr, ip, sizeof ip);
  cl_log(CL_LOG_INFO, "connecting", "landmark=%s addr=%s ip=%s", p->cfg->name, p->addr, ip);
  uv_tcp_nodelay(&c->tcp, 1);
  uv_timer_start(&c->timer, on_handshake_timeout, HANDSHAKE_TIMEOUT_MS, 0);
  r = uv_tcp_connect(&c->connect_req, &c->tcp, addr, on_connect);
  if (r < 0) conn_close(c, CL_LOG_WARN, "connect", uv_strerror(r));
  return CL_OK;
}

/* Tries the next resolved address, or backs off when there is none. */
static void peer_try_next(peer *p) {
  while (p->ai_next) {
    struct addrinfo *ai = p->ai_next;
    p->ai_next = ai->ai_next;
    if (conn_open(p, ai->ai_addr) == CL_OK) return;
  }
  uv_freeaddrinfo(p->ai);
  p->ai = NULL;
  peer_backoff(p);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  peer *p = req->data;
  p->gai_active = 0;
  if (p->ag->stopping) {
    uv_freeaddrinfo(res); /* NULL-safe */
    return;
  }
  if (status < 0) {
    cl_log(CL_LOG_WARN, "resolve failed", "landmark=%s addr=%s err=\"%s\"", p->cfg->name, p->addr,
           uv_strerror(status));
    peer_backoff(p);
    return;
  }
  uv_freeaddrinfo(p->ai);
  p->ai = p->ai_next = res;
  peer_try_next(p);
}

/* Starts a new attempt: resolve the landmark's host, then connect. */
static void peer_connect(peer *p) {
  if (p->ag->stopping) return;
  char port[8];
  snprintf(port, sizeof port, "%d", p->cfg->port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  int r = uv_getaddrinfo(p->ag->loop, &p->gai, on_resolved, p->cfg->host, port, &hints);
  if (r < 0) {
    cl_log(CL_LOG_WARN, "resolve failed", "landmark=%s addr=%s err=\"%s\"", p->cfg->name, p->addr,
           uv_strerror(r));
    peer_backoff(p);
    return;
  }
  p->gai_active = 1;
}

/* ---- public API --------------------------------------------------------- */

static void on_stats_timer(uv_timer_t *t) { log_stats(t->data, "periodic"); }

int agent_create(agent **out, uv_loop_t *loop, const cl_agent_config *cfg, char *err,
                 size_t errlen) {
  if (!out || !loop || !cfg) return CL_EINVAL;
  *out = NULL;
  agent *a = calloc(1, sizeof *a);
  if (!a) return CL_ENOMEM;
  a->loop = loop;
  a->cfg = *cfg;
  /* 5 us to 100 ms: a MAC and a write take microseconds; a loop held up by
   * other work shows in the upper buckets. */
  static const double answer_le[] = {5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
                                     1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1};
  cl_histogram_init(&a->st.answer_seconds, answer_le, sizeof answer_le / sizeof answer_le[0]);
  a->peers = calloc(cfg->n_landmarks ? cfg->n_landmarks : 1, sizeof *a->peers);
  if (!a->peers) {
    free(a);
    return CL_ENOMEM;
  }
  a->n_peers = cfg->n_landmarks;
  for (size_t i = 0; i < a->n_peers; i++) {
    peer *p = &a->peers[i];
    p->ag = a;
    p->cfg = &a->cfg.landmarks[i];
    if (strchr(p->cfg->host, ':'))
      snprintf(p->addr, sizeof p->addr, "[%s]:%d", p->cfg->host, p->cfg->port);
    else
      snprintf(p->addr, sizeof p->addr, "%s:%d", p->cfg->host, p->cfg->port);
    cl_ratelimit_init(&p->rl, 5, 0.2);
  }
  for (size_t i = 0; i < cfg->n_chips; i++) {
    const cl_agent_chip *cc = &a->cfg.chips[i];
    char kerr[200] = "";
    cl_key *k = NULL;
    int rc = cl_key_load(&k, cc->key_path, kerr, sizeof kerr);
    if (rc != CL_OK) {
      cl_err_set(err, errlen, "chip %s: key file %s: %s", cc->name, cc->key_path,
                 kerr[0] ? kerr : cl_strerror(rc));
      agent_destroy(&a);
      return rc;
    }
    agent_chip *ch = &a->chips[a->n_chips++];
    ch->name = cc->name;
    ch->key = k;
    ch->pk = cl_key_public(k);
    chip_hex(ch->pk, ch->hex);
    for (size_t j = 0; j + 1 < a->n_chips; j++) {
      if (memcmp(a->chips[j].pk, ch->pk, CL_PK_LEN) == 0) {
        cl_err_set(err, errlen, "chips %s and %s have the same key", a->chips[j].name,
                   ch->name);
        agent_destroy(&a);
        return CL_EINVAL;
      }
    }
    char hex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(ch->pk, hex);
    cl_log(CL_LOG_INFO, "chip key loaded", "chip=%s chip_key=%s chip_id=%s", ch->name, ch->hex,
           hex);
  }
  /* Every session key in one guarded, locked block (at most 64 x 64 slots
   * of 32 bytes): slot peer * n_chips + chip. */
  size_t slots = a->n_peers * a->n_chips;
  a->session_keys = sodium_malloc(slots ? slots * CL_SESSION_KEY_LEN : 1);
  if (!a->session_keys) {
    agent_destroy(&a);
    return CL_ENOMEM;
  }
  for (size_t i = 0; i < a->n_peers; i++) {
    peer *p = &a->peers[i];
    p->sess = calloc(a->n_chips ? a->n_chips : 1, sizeof *p->sess);
    p->held_until = calloc(a->n_chips ? a->n_chips : 1, sizeof *p->held_until);
    if (!p->sess || !p->held_until) {
      agent_destroy(&a);
      return CL_ENOMEM;
    }
    for (size_t c = 0; c < a->n_chips; c++)
      cl_chipsess_init(&p->sess[c], a->session_keys + (i * a->n_chips + c) * CL_SESSION_KEY_LEN);
  }
  *out = a;
  return CL_OK;
}

void agent_set_sign_delay(agent *a, unsigned ms) { a->sign_delay_ms = ms; }

int agent_start(agent *a) {
  if (!a || a->started) return CL_EINVAL;
  a->started = 1;
  uv_timer_init(a->loop, &a->stats_timer);
  a->stats_timer.data = a;
  for (size_t i = 0; i < a->n_peers; i++) {
    uv_timer_init(a->loop, &a->peers[i].timer);
    a->peers[i].timer.data = &a->peers[i];
    a->peers[i].gai.data = &a->peers[i];
  }
  int r = uv_timer_start(&a->stats_timer, on_stats_timer, STATS_INTERVAL_MS, STATS_INTERVAL_MS);
  if (r < 0) return CL_EIO;
  char name[CL_CONFIG_NAME_MAX * 4 + 3];
  cl_log_quote(name, sizeof name, a->cfg.name, strlen(a->cfg.name));
  cl_log(CL_LOG_INFO, "agent started",
         "agent=%s landmarks=%zu chips=%zu backoff_min_ms=%u backoff_max_ms=%u idle_timeout_s=%u "
         "sign_delay_ms=%u",
         name, a->n_peers, a->n_chips, a->cfg.backoff_min_ms, a->cfg.backoff_max_ms,
         a->cfg.idle_timeout_s, a->sign_delay_ms);
  for (size_t i = 0; i < a->n_peers; i++) peer_connect(&a->peers[i]);
  return CL_OK;
}

void agent_stop(agent *a) {
  if (!a || a->stopping) return;
  a->stopping = 1;
  if (!a->started) return;
  log_stats(a, "exit");
  uv_close((uv_handle_t *)&a->stats_timer, NULL);
  for (size_t i = 0; i < a->n_peers; i++) {
    peer *p = &a->peers[i];
    uv_close((uv_handle_t *)&p->timer, NULL);
    if (p->gai_active) uv_cancel((uv_req_t *)&p->gai);
    if (p->conn) conn_close(p->conn, CL_LOG_INFO, "shutting down", NULL);
  }
}

void agent_get_stats(const agent *a, agent_stats *out) { *out = a->st; }

size_t agent_landmark_count(const agent *a) { return a->n_peers; }

void agent_get_landmark_stats(const agent *a, size_t i, agent_landmark_stats *out) {
  const peer *p = &a->peers[i];
  *out = p->st;
  out->name = p->cfg->name;
  out->registered = p->conn && !p->conn->closing && p->conn->state == CONN_REGISTERED;
  out->sessions = 0;
  for (size_t k = 0; k < a->n_chips; k++)
    if (p->sess[k].state == CL_CHIPSESS_ESTABLISHED) out->sessions++;
}

void agent_destroy(agent **ap) {
  if (!ap || !*ap) return;
  agent *a = *ap;
  for (size_t i = 0; i < a->n_peers; i++) {
    peer *p = &a->peers[i];
    uv_freeaddrinfo(p->ai);
    if (p->sess)
      for (size_t c = 0; c < a->n_chips; c++) cl_chipsess_end(&p->sess[c]);
    free(p->sess);
    free(p->held_until);
  }
  sodium_free(a->session_keys); /* NULL-safe; wipes the block */
  for (size_t i = 0; i < a->n_chips; i++) cl_key_destroy(&a->chips[i].key);
  free(a->peers);
  sodium_memzero(a, sizeof *a);
  free(a);
  *ap = NULL;
}
