/*
 * libFuzzer target for the landmark's handling of one agent connection
 * (server/landmark.c), without sockets or libuv: the same pure pieces the
 * daemon calls, in the same order, on the same state.
 *
 *   bytes -> cl_frame_asm (CL_FRAME_MAX_UNREGISTERED, then max_frame_bytes,
 *   default CL_FRAME_MAX, once a Register was accepted) -> cl_msg_decode ->
 *   the connection state machine:
 *     HELLO:      Register -> duplicate check, enrolled lookup (cl_pkmap),
 *                 active check, cl_register_verify, chips go live;
 *                 nothing accepted -> close
 *     REGISTERED: Response -> chip lookup on this connection, probe lookup
 *                 in that chip's ring and then the others', cl_probe_accept,
 *                 ANSWERED on ok, EXPIRED on a bad signature, cl_burst_add
 *     either:     Error -> quoted and logged, nothing else
 *   anything else, a frame error or a decode error ends the connection; the
 *   rest of the input is ignored.
 *
 * Time is virtual. Before each read the clock moves on (see
 * landmark_fixture.h) and the timers that came due fire in order, as libuv
 * runs due timers before polling: the handshake deadline, then the idle
 * check (only a complete frame counts as activity), and per chip the probe
 * cycle idle -> probe -> wait for answer or deadline -> gap -> probe, with
 * landmarkd's default limits, burst, gap, deadline and interval. The first
 * burst of a chip starts right after its registration (the daemon spreads
 * it over up to 2 s at random). A probe sends the chip's next fixed
 * challenge from landmark_fixture.h, so that inputs can answer it with a
 * valid signature; once a chip's fixed challenges are used up its cycle
 * stops. With at most two chips live, max_pending_challenges (64) never
 * defers a probe; the count of outstanding probes is kept and checked.
 *
 * Checked on every input, beyond the sanitizers:
 *  - a proof verifies exactly when it is the chip's valid proof, and a
 *    response is accepted exactly once per challenge, only with the chip's
 *    valid signature, only within its deadline, with rtt = receive - send;
 *  - every RegisterResult and Error the landmark would send encodes;
 *  - every finished burst gives a measurement that, once signed, verifies.
 *
 * FUZZ_LANDMARK_TRACE=1 in the environment prints what happens (to check
 * the seed corpus by hand).
 */
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_log.h"
#include "cl_msg.h"
#include "cl_pkmap.h"
#include "cl_probe.h"
#include "cl_store.h"
#include "landmark_fixture.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) \
  do {              \
    if (!(cond)) abort(); \
  } while (0)

#define PROBE_RING 8 /* as in server/landmark.c */
#define T0_NS 1000000000000ull

static int g_trace;
#define TRACE(...)                                  \
  do {                                              \
    if (g_trace) {                                  \
      fprintf(stderr, "[%8.3f ms] ", g_now_ms());   \
      fprintf(stderr, __VA_ARGS__);                 \
      fputc('\n', stderr);                          \
    }                                               \
  } while (0)

typedef enum { PH_IDLE, PH_WAIT, PH_GAP, PH_STOPPED } chip_phase;
typedef enum { CONN_HELLO, CONN_REGISTERED } conn_state;

/* A live chip: lm_chip of landmark.c with its uv_timer_t as (due, phase). */
typedef struct {
  int k; /* fixture chip index */
  const uint8_t *pk;
  int64_t db_id;
  cl_probe ring[PROBE_RING];
  unsigned ring_next;
  cl_probe *cur;
  uint32_t burst_left;
  cl_burst burst;
  chip_phase phase;
  uint64_t due_ns;
  int next_ch; /* next fixture challenge to send */
} fz_chip;

typedef struct {
  conn_state state;
  int closed;
  cl_frame_asm fa;
  uint64_t now;          /* virtual uv_hrtime() */
  uint64_t handshake_ns; /* deadline of the Hello -> Register handshake */
  uint64_t idle_from_ns; /* registration: the idle checks run from here on */
  uint64_t last_rx_ns;   /* receive time of the last complete frame */
  uint32_t n_pending;    /* probes outstanding on this connection */
  fz_chip chips[CL_MAX_CHIPS_PER_REGISTER];
  fz_chip *live[CL_MAX_CHIPS_PER_REGISTER]; /* c->chips of landmark.c */
  size_t n_chips;
  int accepted[LM_FX_ACTIVE][LM_FX_CHALLENGES];
} fz_conn;

static lm_fixture g_fx;
#define N_ENROLLED 3 /* fixture chips 0..2 are enrolled, chip 3 is not */
static cl_store_chip g_enrolled_arr[N_ENROLLED];
static cl_pkmap *g_enrolled; /* pk -> cl_store_chip*, as lm_server_set_enrolled builds it */
static cl_pkmap *g_live;     /* pk -> fz_chip* */
static cl_msg g_msg;         /* decode target, as lm_server.scratch */
static fz_conn g_conn;

static double g_now_ms(void) { return (double)(g_conn.now - T0_NS) / 1e6; }

static void init_once(void) {
  static int done;
  if (done) return;
  done = 1;
  g_trace = getenv("FUZZ_LANDMARK_TRACE") != NULL;
  lm_fx_init(&g_fx);
  for (int k = 0; k < N_ENROLLED; k++) {
    memcpy(g_enrolled_arr[k].pk, cl_key_public(g_fx.chip[k]), CL_PK_LEN);
    g_enrolled_arr[k].id = 100 + k;
    g_enrolled_arr[k].active = k != LM_FX_INACTIVE;
  }
  CHECK(cl_pkmap_create(&g_enrolled, N_ENROLLED) == CL_OK);
  for (int k = 0; k < N_ENROLLED; k++)
    CHECK(cl_pkmap_put(g_enrolled, g_enrolled_arr[k].pk, &g_enrolled_arr[k], NULL) == CL_OK);
  CHECK(cl_pkmap_create(&g_live, 64) == CL_OK);
}

/* Fixture chip index of a public key, or -1. */
static int fixture_chip(const uint8_t *pk) {
  for (int k = 0; k < LM_FX_CHIPS; k++)
    if (memcmp(pk, cl_key_public(g_fx.chip[k]), CL_PK_LEN) == 0) return k;
  return -1;
}

/* send_error of landmark.c: the frame must encode. */
static void send_error(cl_wire_error code, const char *text) {
  uint8_t buf[512];
  size_t len = 0;
  CHECK(cl_msg_encode_error(code, text, buf, sizeof buf, &len) == CL_OK);
  CHECK(len > CL_FRAME_HDR_LEN && len <= sizeof buf);
  TRACE("send Error %s: %s", cl_wire_error_name(code), text);
}

/* log_reject's quoting of the detail, then the Error frame. */
static void reject(cl_wire_error code, const char *what, const char *detail) {
  char q[160];
  cl_log_quote(q, sizeof q, detail, strlen(detail));
  CHECK(memchr(q, '\0', sizeof q) != NULL);
  TRACE("reject %s %s", what, q);
  send_error(code, detail);
}

/* fail_conn: an Error frame, then the connection closes. */
static void fail_conn(fz_conn *c, cl_wire_error code, const char *what, const char *text) {
  reject(code, what, text);
  c->closed = 1;
  TRACE("connection closed");
}

/* ---- the probe cycle of one chip ---------------------------------------- */

static void chip_schedule(fz_chip *ch, uint64_t at_ns, chip_phase phase) {
  ch->phase = phase;
  ch->due_ns = at_ns;
}

static void finish_burst(fz_chip *ch, uint64_t t) {
  if (ch->burst.accepted > 0) {
    cl_measurement m;
    cl_burst_to_measurement(&ch->burst, LM_FX_UNIX_NS + t, &m);
    CHECK(m.probe_count == ch->burst.accepted && m.probe_count <= LM_FX_BURST);
    CHECK(m.rtt_ns <= (uint64_t)LM_FX_DEADLINE_MS * 1000000ull);
    CHECK(memcmp(m.ch.chip, ch->pk, CL_PK_LEN) == 0);
    cl_measurement_sign(&m, g_fx.landmark);
    CHECK(cl_measurement_verify(&m) == CL_OK);
    uint64_t bound = cl_bound_m(m.rtt_ns, CL_SPEED_C);
    CHECK(bound >= m.rtt_ns / 7); /* c/2 is about 0.15 m/ns */
    TRACE("chip %d: burst done, %u accepted, rtt %llu ns, bound %llu m", ch->k, m.probe_count,
          (unsigned long long)m.rtt_ns, (unsigned long long)bound);
  }
  cl_burst_reset(&ch->burst);
  chip_schedule(ch, t + (uint64_t)LM_FX_INTERVAL_MS * 1000000ull, PH_IDLE);
}

static void probe_settled(fz_chip *ch, uint64_t t) {
  /* clear_outstanding */
  CHECK(ch->cur != NULL && g_conn.n_pending > 0);
  g_conn.n_pending--;
  ch->cur = NULL;
  if (ch->burst_left > 0)
    chip_schedule(ch, t + (uint64_t)LM_FX_GAP_MS * 1000000ull, PH_GAP);
  else
    finish_burst(ch, t);
}

/* send_probe at time t, with the chip's next fixed challenge. */
static void send_probe(fz_chip *ch, uint64_t t) {
  if (ch->k < 0 || ch->k >= LM_FX_ACTIVE || ch->next_ch >= LM_FX_CHALLENGES) {
    ch->phase = PH_STOPPED;
    TRACE("chip %d: no challenges left", ch->k);
    return;
  }
  const cl_challenge *fc = &g_fx.ch[ch->k][ch->next_ch++];
  cl_probe *p = &ch->ring[ch->ring_next++ % PROBE_RING];
  memset(p, 0, sizeof *p);
  p->ch = *fc;
  cl_msg m;
  m.type = CL_MSG_CHALLENGE;
  m.u.challenge = p->ch;
  uint8_t buf[512];
  size_t len = 0;
  CHECK(cl_msg_encode(&m, buf, sizeof buf, &len) == CL_OK);
  p->state = CL_PROBE_OUTSTANDING;
  ch->cur = p;
  g_conn.n_pending++;
  CHECK(g_conn.n_pending <= g_conn.n_chips && g_conn.n_pending <= LM_FX_MAX_PENDING);
  ch->burst_left--;
  p->sent_ns = t;
  p->deadline_ns = t + (uint64_t)LM_FX_DEADLINE_MS * 1000000ull;
  chip_schedule(ch, p->deadline_ns, PH_WAIT);
  TRACE("chip %d: challenge seq %llu sent", ch->k, (unsigned long long)p->ch.seq);
}

/* on_chip_timer, fired at its due time t. */
static void chip_timer(fz_chip *ch, uint64_t t) {
  switch (ch->phase) {
  case PH_IDLE:
    cl_burst_reset(&ch->burst);
    ch->burst_left = LM_FX_BURST;
    send_probe(ch, t);
    break;
  case PH_GAP:
    send_probe(ch, t);
    break;
  case PH_WAIT: {
    cl_probe *p = ch->cur;
    CHECK(p != NULL && t >= p->deadline_ns);
    p->state = CL_PROBE_EXPIRED;
    TRACE("chip %d: challenge seq %llu expired", ch->k, (unsigned long long)p->ch.seq);
    probe_settled(ch, t);
    break;
  }
  case PH_STOPPED:
    break;
  }
}

/* Fires every timer due by c->now, each chip's in order. */
static void run_timers(fz_conn *c) {
  if (c->state == CONN_HELLO && c->handshake_ns <= c->now) {
    fail_conn(c, CL_ERR_LIMIT, "handshake_timeout", "no Register before the handshake timeout");
    return;
  }
  if (c->state == CONN_REGISTERED) {
    /* on_conn_timer every check_ms from registration; last_rx_ns has not
     * moved since the last read, so the latest check due decides. */
    uint64_t check_ns = (uint64_t)LM_FX_IDLE_S * 1000000000ull / 4;
    if (check_ns < 100000000ull) check_ns = 100000000ull;
    if (check_ns > 5000000000ull) check_ns = 5000000000ull;
    uint64_t k = (c->now - c->idle_from_ns) / check_ns;
    uint64_t t = c->idle_from_ns + k * check_ns;
    if (k > 0 && t > c->last_rx_ns &&
        t - c->last_rx_ns > (uint64_t)LM_FX_IDLE_S * 1000000000ull) {
      fail_conn(c, CL_ERR_LIMIT, "idle_timeout",
                "no complete frame from the peer within the idle timeout");
      return;
    }
  }
  for (size_t i = 0; i < c->n_chips; i++) {
    fz_chip *ch = c->live[i];
    while (ch->phase != PH_STOPPED && ch->due_ns <= c->now) chip_timer(ch, ch->due_ns);
  }
}

/* ---- messages ----------------------------------------------------------- */

static void handle_register(fz_conn *c, const cl_msg *m) {
  const uint8_t *lpk = cl_key_public(g_fx.landmark);
  static cl_msg res;
  memset(&res, 0, sizeof res);
  res.type = CL_MSG_REGISTER_RESULT;
  res.u.reg_result.n = m->u.reg.n;
  size_t accepted = 0;
  char agent_q[CL_MAX_AGENT_NAME * 4 + 3];
  cl_log_quote(agent_q, sizeof agent_q, m->u.reg.agent, strlen(m->u.reg.agent));
  CHECK(memchr(agent_q, '\0', sizeof agent_q) != NULL);
  for (size_t i = 0; i < m->u.reg.n; i++) {
    const cl_chip_claim *cl = &m->u.reg.chips[i];
    cl_chip_result *r = &res.u.reg_result.r[i];
    memcpy(r->chip, cl->chip, CL_PK_LEN);
    int dup = 0;
    for (size_t j = 0; j < i; j++)
      if (memcmp(m->u.reg.chips[j].chip, cl->chip, CL_PK_LEN) == 0) dup = 1;
    const cl_store_chip *e = cl_pkmap_get(g_enrolled, cl->chip);
    int k = fixture_chip(cl->chip);
    CHECK(e == NULL || (k >= 0 && k != LM_FX_UNKNOWN));
    if (dup) {
      r->reason = CL_REFUSE_DUPLICATE;
    } else if (!e) {
      r->reason = CL_REFUSE_NOT_ENROLLED;
    } else if (!e->active) {
      r->reason = CL_REFUSE_INACTIVE;
    } else {
      int ok = cl_register_verify(lpk, g_fx.session, cl->chip, cl->proof) == CL_OK;
      /* Ed25519 as libsodium checks it admits one signature per message. */
      CHECK(ok == (memcmp(cl->proof, g_fx.proof[k], CL_SIG_LEN) == 0));
      if (!ok) {
        r->reason = CL_REFUSE_BAD_PROOF;
      } else {
        /* chip_create: a new live chip, first burst due now. */
        fz_chip *ch = &c->chips[c->n_chips];
        memset(ch, 0, sizeof *ch);
        ch->k = k;
        ch->pk = g_enrolled_arr[k].pk;
        ch->db_id = e->id;
        void *old = NULL;
        CHECK(cl_pkmap_put(g_live, cl->chip, ch, &old) == CL_OK);
        CHECK(old == NULL); /* one connection, duplicates refused */
        c->live[c->n_chips++] = ch;
        chip_schedule(ch, c->now, PH_IDLE);
        r->reason = CL_REFUSE_NONE;
      }
    }
    r->accepted = r->reason == CL_REFUSE_NONE;
    if (r->accepted) {
      accepted++;
      TRACE("chip %d registered (agent %s)", k, agent_q);
    } else {
      snprintf(r->detail, sizeof r->detail, "%s", cl_refuse_reason_name(r->reason));
      char hex[17], detail[CL_MAX_AGENT_NAME + 96], q[160];
      cl_hex_encode(hex, cl->chip, 8);
      snprintf(detail, sizeof detail, "chip %s refused at registration, agent %s", hex,
               m->u.reg.agent);
      cl_log_quote(q, sizeof q, detail, strlen(detail));
      TRACE("chip %d refused: %s %s", k, r->detail, q);
    }
  }
  CHECK(cl_pkmap_count(g_live) == c->n_chips);
  static uint8_t buf[CL_FRAME_MAX_UNREGISTERED * 2];
  size_t len = 0;
  /* The daemon closes the connection if this fails: it never should. */
  CHECK(cl_msg_encode(&res, buf, sizeof buf, &len) == CL_OK);
  if (accepted == 0) {
    c->closed = 1;
    TRACE("nothing accepted: connection closed");
    return;
  }
  c->state = CONN_REGISTERED;
  cl_frame_asm_set_max(&c->fa, CL_FRAME_MAX); /* max_frame_bytes, default CL_FRAME_MAX */
  c->idle_from_ns = c->now;
}

static cl_wire_error wire_code(cl_accept_result r) {
  switch (r) {
  case CL_ACCEPT_REPLAY: return CL_ERR_REPLAY;
  case CL_ACCEPT_LATE: return CL_ERR_LATE;
  case CL_ACCEPT_BAD_SIGNATURE: return CL_ERR_BAD_SIGNATURE;
  default: return CL_ERR_UNKNOWN_NONCE;
  }
}

static cl_probe *find_probe(fz_chip *ch, const uint8_t nonce[CL_NONCE_LEN]) {
  for (unsigned i = 0; i < PROBE_RING; i++)
    if (ch->ring[i].state != CL_PROBE_FREE &&
        memcmp(ch->ring[i].ch.nonce, nonce, CL_NONCE_LEN) == 0)
      return &ch->ring[i];
  return NULL;
}

static void handle_response(fz_conn *c, const cl_msg *m, uint64_t t_recv) {
  fz_chip *ch = NULL;
  for (size_t i = 0; i < c->n_chips && !ch; i++)
    if (memcmp(c->live[i]->pk, m->u.response.chip, CL_PK_LEN) == 0) ch = c->live[i];
  CHECK(ch == cl_pkmap_get(g_live, m->u.response.chip));
  if (!ch) {
    reject(CL_ERR_NOT_REGISTERED, "not_registered",
           "response for a chip not registered on this connection");
    return;
  }
  cl_probe *p = find_probe(ch, m->u.response.nonce);
  for (size_t i = 0; i < c->n_chips && !p; i++) p = find_probe(c->live[i], m->u.response.nonce);
  uint64_t rtt = 0;
  cl_accept_result r =
      cl_probe_accept(p, m->u.response.chip, m->u.response.nonce, m->u.response.sig, t_recv, &rtt);
  CHECK((unsigned)r < CL_ACCEPT__COUNT);
  if (r == CL_ACCEPT_OK) {
    /* Only the chip's own outstanding probe, in time, with the one valid
     * signature, once. */
    CHECK(p >= ch->ring && p < ch->ring + PROBE_RING);
    CHECK(p->state == CL_PROBE_OUTSTANDING && p == ch->cur);
    CHECK(t_recv >= p->sent_ns && t_recv <= p->deadline_ns && rtt == t_recv - p->sent_ns);
    int j = (int)(p->ch.seq - lm_fx_seq(ch->k, 0));
    CHECK(j >= 0 && j < LM_FX_CHALLENGES);
    CHECK(memcmp(m->u.response.sig, g_fx.resp[ch->k][j], CL_SIG_LEN) == 0);
    CHECK(++c->accepted[ch->k][j] == 1);
    p->state = CL_PROBE_ANSWERED;
    cl_burst_add(&ch->burst, &p->ch, m->u.response.sig, rtt);
    TRACE("chip %d: challenge seq %llu answered, rtt %llu ns", ch->k,
          (unsigned long long)p->ch.seq, (unsigned long long)rtt);
    if (ch->cur == p) probe_settled(ch, t_recv);
    return;
  }
  if (r == CL_ACCEPT_BAD_SIGNATURE) {
    /* One signature check per issued probe: a failed answer uses it up. */
    p->state = CL_PROBE_EXPIRED;
    if (ch->cur == p) probe_settled(ch, t_recv);
  }
  char detail[96];
  char hex[17];
  cl_hex_encode(hex, m->u.response.chip, 8);
  snprintf(detail, sizeof detail, "chip %s", hex);
  char q[160];
  cl_log_quote(q, sizeof q, detail, strlen(detail));
  TRACE("response rejected: %s %s", cl_accept_result_name(r), q);
  send_error(wire_code(r), cl_accept_result_name(r));
}

static void handle_frame(fz_conn *c, const uint8_t *frame, size_t len, uint64_t t_recv) {
  cl_msg *m = &g_msg;
  char err[160];
  memset(err, 'X', sizeof err);
  int rc = cl_msg_decode(frame, len, m, err, sizeof err);
  CHECK(memchr(err, '\0', sizeof err) != NULL);
  if (rc == CL_EVERSION) {
    fail_conn(c, CL_ERR_VERSION, "version", err);
    return;
  }
  if (rc == CL_EUNKNOWNMSG) {
    fail_conn(c, CL_ERR_MALFORMED, "unknown_type", err);
    return;
  }
  if (rc != CL_OK) {
    CHECK(rc == CL_EMALFORMED);
    fail_conn(c, CL_ERR_MALFORMED, "malformed", err);
    return;
  }
  TRACE("frame: %s", cl_msg_type_name(m->type));
  if (c->state == CONN_HELLO && m->type == CL_MSG_REGISTER) {
    handle_register(c, m);
  } else if (c->state == CONN_REGISTERED && m->type == CL_MSG_RESPONSE) {
    handle_response(c, m, t_recv);
  } else if (m->type == CL_MSG_ERROR) {
    char q[CL_MAX_ERROR_TEXT * 4 + 3];
    cl_log_quote(q, sizeof q, m->u.error.text, strlen(m->u.error.text));
    CHECK(memchr(q, '\0', sizeof q) != NULL);
    CHECK(cl_wire_error_name(m->u.error.code) != NULL);
    TRACE("peer error %s %s", cl_wire_error_name(m->u.error.code), q);
  } else {
    snprintf(err, sizeof err, "%s not allowed %s", cl_msg_type_name(m->type),
             c->state == CONN_HELLO ? "before Register" : "after Register");
    fail_conn(c, CL_ERR_UNEXPECTED, "unexpected", err);
  }
}

/* on_read: every frame of one read, all with the read's timestamp. */
static void on_read(fz_conn *c, const uint8_t *data, size_t n) {
  uint64_t t_recv = c->now;
  size_t off = 0;
  while (off < n && !c->closed) {
    const uint8_t *frame = NULL;
    size_t flen = 0, used = 0;
    int rc = cl_frame_asm_feed(&c->fa, data + off, n - off, &used, &frame, &flen);
    CHECK(used <= n - off);
    if (rc == CL_ETOOBIG) {
      char why[96];
      snprintf(why, sizeof why, "frame length %u above limit %zu", c->fa.last_len, c->fa.max);
      fail_conn(c, CL_ERR_TOO_LARGE, "too_large", why);
      return;
    }
    if (rc < 0) {
      fail_conn(c, CL_ERR_MALFORMED, "malformed", "zero-length frame");
      return;
    }
    off += used;
    if (rc == 0) break;
    CHECK(rc == 1 && flen > 0 && flen <= c->fa.max);
    /* Only a complete frame counts as activity. */
    c->last_rx_ns = t_recv;
    handle_frame(c, frame, flen, t_recv);
  }
}

/* ---- reads -------------------------------------------------------------- */

/* How the input is cut into reads. */
typedef struct {
  uint8_t mode;
  uint32_t rng;
  int trickle; /* frames mode: the last frame is unfinished, a byte per read */
} reader;

/* Length of the next read at data[off..size). */
static size_t next_read(reader *rd, const uint8_t *data, size_t off, size_t size) {
  size_t left = size - off, n;
  switch (rd->mode & 3) {
  case LM_FX_MODE_FRAMES:
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
  case LM_FX_MODE_BYTES: n = 1; break;
  case LM_FX_MODE_FIXED: n = (size_t)(rd->mode >> 2) + 1; break;
  default:
    rd->rng ^= rd->rng << 13;
    rd->rng ^= rd->rng >> 17;
    rd->rng ^= rd->rng << 5;
    n = 1 + rd->rng % 300;
    break;
  }
  return n < left ? n : left;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  if (size < 2) return 0;
  uint8_t mode = data[0];
  uint64_t step = lm_fx_step_ns(data[1]);
  data += 2;
  size -= 2;

  fz_conn *c = &g_conn;
  memset(c, 0, sizeof *c);
  c->now = T0_NS;
  c->state = CONN_HELLO;
  c->handshake_ns = T0_NS + (uint64_t)LM_FX_HANDSHAKE_MS * 1000000ull;
  c->last_rx_ns = T0_NS;
  cl_frame_asm_init(&c->fa, CL_FRAME_MAX_UNREGISTERED);
  TRACE("connection accepted");
  reader rd = {.mode = mode, .rng = 0x9E3779B9u ^ mode};
  size_t off = 0;
  while (off < size && !c->closed) {
    size_t n = next_read(&rd, data, off, size);
    c->now += step;
    run_timers(c);
    if (c->closed) break;
    TRACE("read of %zu bytes", n);
    on_read(c, data + off, n);
    off += n;
  }
  /* conn_close: the chips leave the live map. */
  for (size_t i = 0; i < c->n_chips; i++)
    CHECK(cl_pkmap_del(g_live, c->live[i]->pk) == c->live[i]);
  CHECK(cl_pkmap_count(g_live) == 0);
  CHECK(c->fa.cap <= CL_FRAME_MAX);
  cl_frame_asm_fini(&c->fa);
  return 0;
}
