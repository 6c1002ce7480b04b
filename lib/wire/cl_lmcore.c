/*
 * The landmark's protocol core: connections, the session handshakes of
 * every chip, the probe cycle of every active chip, the acceptance checks of
 * every answer, the transcript of every burst, rekeys and limits, with no
 * I/O of its own. See cl_lmcore.h for the events and actions, and
 * docs/PROTOCOL.md for the protocol (version 2) this implements.
 *
 * Ownership: the core owns connections (a list) and a connection owns its
 * chips, pending (handshake under way) and active (probed). Each chip has
 * two timers in the core's queue: one drives its probe cycle (idle -> probe
 * -> wait for answer or deadline -> gap -> probe ... -> idle) or the
 * deadline of its handshake or rekey, the other the deadline of the
 * transcript its last burst awaits; scheduling costs O(log n) and never
 * scans chips. A closed connection or a detached chip goes to a graveyard
 * and is freed when the public call that closed it returns, so that no
 * caller up the stack is left holding freed memory; a detached chip with
 * jobs still out on workers waits among the zombies until the last one is
 * back.
 *
 * Session keys live in the chip struct and are wiped with sodium_memzero
 * when the chip is freed and when a rekey replaces them. They are not in
 * sodium_malloc memory: that gives every allocation its own guarded pages
 * (about 12 KiB of mappings each), 1.2 GB for 100,000 chips.
 *
 * Limits, all from cl_lm_params (docs/PROTOCOL.md): connections in total
 * and per IP address (per_addr, taken at open and given back in
 * conn_close), challenges outstanding per connection (n_pending), the
 * handshake deadline and the idle timeout (the connection's timer; only a
 * complete frame counts as activity), the deadline of each chip's handshake
 * and rekey, frame sizes (the assembler's max), Error replies that keep the
 * connection (a token bucket per connection, err_rl), one Register answered
 * at a time per connection, one burst awaiting its transcript per chip, and
 * the shell's write queue (io->send refusing a frame with CL_ETOOBIG closes
 * the connection). Every refusal is counted in cl_lm_stats and logged
 * rate-limited.
 */
#include "cl_lmcore.h"
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_log.h"
#include "cl_pkmap.h"
#include "cl_tq.h"

#include <assert.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

/*
 * The chip timer's meaning. PH_HANDSHAKE: a pending chip's deadline to
 * become active; PH_REKEY: an active chip's deadline to complete the rekey
 * it was asked for (no burst runs meanwhile).
 */
typedef enum { PH_IDLE, PH_WAIT, PH_GAP, PH_HANDSHAKE, PH_REKEY } chip_phase;

/* Where the chip's next session stands. */
typedef enum {
  HS_NONE,    /* no handshake under way */
  HS_ASKED,   /* Rekey sent, no offer yet */
  HS_JOB,     /* the landmark's half is being computed (a HANDSHAKE job) */
  HS_CONFIRM, /* RegisterResult sent, waiting for the chip's Confirm */
  HS_VERIFY,  /* the Confirm's signature is being checked (a CONFIRM job) */
} hs_state;

/*
 * CONN_HELLO: Hello sent, waiting for the Register (or its jobs);
 * CONN_HANDSHAKE: a RegisterResult accepted chips, none is active yet;
 * CONN_REGISTERED: a chip is (or was) active here.
 */
typedef enum { CONN_HELLO, CONN_HANDSHAKE, CONN_REGISTERED } conn_state;

/* A timer of the queue and what it belongs to. */
typedef enum { TIMER_CHIP, TIMER_TRANSCRIPT, TIMER_CONN } timer_kind;
typedef struct {
  cl_tq_entry e; /* first member: a popped entry is its lm_timer */
  timer_kind kind;
} lm_timer;

/* A finished burst waiting for the chip's transcript, with the session it
 * ran in (a rekey may complete meanwhile). */
typedef struct {
  cl_burst b;
  cl_handshake hs;
  uint64_t unix_ns; /* wall clock at the burst's end: the record's time */
} lm_pending_tx;

typedef struct lm_chip {
  lm_timer timer;    /* probe cycle, handshake and rekey deadlines */
  lm_timer tx_timer; /* transcript deadline */
  uint8_t pk[CL_PK_LEN];
  int64_t db_id;
  int is_landmark; /* a peer landmark: its bursts go to landmark_links */
  cl_lm *lm;
  cl_lm_conn *conn; /* NULL once detached */
  int active;       /* a verified session: in lm->live, probed */
  /* The current session (active only). */
  cl_handshake hs;
  uint8_t key[CL_SESSION_KEY_LEN]; /* secret */
  uint64_t session_ns;             /* when it began */
  /* The next session, while a handshake is under way. */
  hs_state hstate;
  cl_handshake next_hs;
  uint8_t next_key[CL_SESSION_KEY_LEN]; /* secret, from HS_CONFIRM on */
  uint64_t hs_ticket;                   /* the HANDSHAKE or CONFIRM job out */
  size_t reg_slot;                      /* HS_JOB: its entry in conn->reg_result */
  /* The probe cycle. */
  cl_probe ring[CL_LM_PROBE_RING];
  unsigned ring_next;
  cl_probe *cur; /* the outstanding probe, or NULL */
  uint32_t burst_left;
  cl_burst burst;
  chip_phase phase;
  uint64_t due_ns;   /* when the timer was due: for the probe lag */
  lm_pending_tx *tx; /* the burst awaiting its transcript, or NULL */
  unsigned jobs;     /* jobs out on workers */
  int zombie;        /* detached, in lm->zombies until its last job is back */
  struct lm_chip *dead_next, *zprev, *znext;
} lm_chip;

struct cl_lm_conn {
  lm_timer timer; /* handshake deadline, then idle checks */
  void *ud;
  cl_lm *lm;
  cl_frame_asm fa;
  conn_state state;
  int closing;
  lm_chip *chips[CL_MAX_CHIPS_PER_REGISTER]; /* pending and active */
  size_t n_chips;
  cl_msg *reg_result;  /* the RegisterResult being prepared, or NULL */
  uint32_t reg_waiting; /* its HANDSHAKE jobs not back yet */
  uint64_t last_rx_ns;  /* receive time of the last complete frame */
  uint32_t n_pending;   /* probes outstanding on this connection */
  int announced;        /* "connection accepted" was logged */
  int addr_counted;     /* holds one count in lm->per_addr under addr_key */
  uint8_t addr_key[CL_PK_LEN];
  cl_ratelimit err_rl; /* Error replies that keep the connection */
  char peer[64];
  char agent[CL_MAX_AGENT_NAME + 1]; /* the name its first Register gave, for logs */
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
  size_t n_timers;    /* timers of the chips and connections alive */
  cl_pkmap *enrolled; /* pk -> cl_lm_target* inside enrolled_arr */
  cl_lm_target *enrolled_arr;
  cl_pkmap *live; /* pk -> active lm_chip* */
  cl_lm_conn *conns;
  size_t n_conns;
  cl_pkmap *per_addr; /* address key -> addr_count (malloc'd; freed when it drops to 0) */
  uint64_t seq;
  uint64_t tickets;
  uint64_t now;           /* monotonic time of the event being handled */
  uint64_t idle_check_ns; /* period of a registered connection's idle checks */
  cl_lm_stats st;
  cl_ratelimit rl;
  cl_ratelimit rl_overflow; /* write queue overflows: not drowned by the rejections before them */
  cl_ratelimit rl_takeover; /* chips taken over by another connection: the same */
  int closing;
  int depth; /* 1 inside a public call: the graveyard is emptied when it returns */
  lm_chip *dead_chips;
  lm_chip *zombies; /* detached chips with jobs out */
  cl_lm_conn *dead_conns;
  cl_msg scratch;     /* decode target; messages are handled one at a time */
  cl_msg scratch_out; /* BurstEnd, Rekey and Challenge being built; sends never nest */
  uint8_t out[CL_FRAME_HDR_LEN + CL_FRAME_MAX]; /* send_msg's frame; sends never nest */
};

static void conn_close(cl_lm_conn *c);
static void chip_schedule(lm_chip *ch, uint64_t delay_ms, chip_phase phase);
static void job_done(cl_lm *lm, cl_lm_work *w, int status);

static void short_hex(const uint8_t *pk, char out[17]) { cl_hex_encode(out, pk, 8); }

/* "chip=" and a quoted 64-byte name at 4 bytes a byte, " chip_key=" and 16
 * hex digits. */
#define CHIP_FIELDS_LEN (CL_LM_NAME_MAX * 4 + 40)

/*
 * The fields that name a chip in a log line: `chip=` its serial (a peer
 * landmark's name) from the enrolled set `set`, else its key's first 8
 * bytes in hex, and `chip_key=` those hex digits always, so that a line
 * can be matched with the agent's, which knows the chip by its key and its
 * own name for it. A name is quoted (cl_log_quote) unless every byte is
 * printable ASCII that logfmt takes bare. Returns out.
 */
static const char *chip_fields(const cl_pkmap *set, const uint8_t *pk, char out[CHIP_FIELDS_LEN]) {
  char hex[17], name[CL_LM_NAME_MAX * 4 + 3];
  short_hex(pk, hex);
  const cl_lm_target *e = set ? cl_pkmap_get(set, pk) : NULL;
  snprintf(name, sizeof name, "%s", hex);
  if (e && e->name[0]) {
    size_t n = strnlen(e->name, sizeof e->name);
    int bare = 1;
    for (size_t i = 0; i < n; i++) {
      unsigned char b = (unsigned char)e->name[i];
      if (b <= 0x20 || b >= 0x7f || b == '"' || b == '=' || b == '\\') bare = 0;
    }
    if (bare)
      snprintf(name, sizeof name, "%.*s", (int)n, e->name);
    else
      cl_log_quote(name, sizeof name, e->name, n);
  }
  snprintf(out, CHIP_FIELDS_LEN, "chip=%s chip_key=%s", name, hex);
  return out;
}

/* ---- entry and exit of every public call --------------------------------- */

static void enter(cl_lm *lm, uint64_t now_ns) {
  /* The shell's callbacks never call back into the core. */
  assert(lm->depth == 0);
  lm->depth++;
  if (now_ns > lm->now) lm->now = now_ns;
}

static void chip_free(lm_chip *ch) {
  sodium_memzero(ch->key, sizeof ch->key);
  sodium_memzero(ch->next_key, sizeof ch->next_key);
  free(ch->tx);
  free(ch);
}

static void zombie_unlink(cl_lm *lm, lm_chip *ch) {
  if (ch->zprev)
    ch->zprev->znext = ch->znext;
  else
    lm->zombies = ch->znext;
  if (ch->znext) ch->znext->zprev = ch->zprev;
}

/* Frees what was closed during the call, once the outermost call ends; a
 * chip with jobs out waits for them among the zombies. */
static void leave(cl_lm *lm) {
  assert(lm->depth == 1);
  lm->depth = 0;
  while (lm->dead_chips) {
    lm_chip *ch = lm->dead_chips;
    lm->dead_chips = ch->dead_next;
    if (ch->jobs == 0) {
      chip_free(ch);
      continue;
    }
    ch->zombie = 1;
    ch->zprev = NULL;
    ch->znext = lm->zombies;
    if (lm->zombies) lm->zombies->zprev = ch;
    lm->zombies = ch;
  }
  while (lm->dead_conns) {
    cl_lm_conn *c = lm->dead_conns;
    lm->dead_conns = c->dead_next;
    cl_frame_asm_fini(&c->fa);
    free(c->reg_result);
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
 * turn into a log flood. chip (may be NULL) is the key of the one chip the
 * rejection is about: the line names it (chip_fields). */
static void log_reject_rl(cl_lm *lm, cl_ratelimit *rl, cl_lm_conn *c, const uint8_t *chip,
                          const char *what, const char *detail) {
  uint64_t suppressed = 0;
  if (!cl_ratelimit_allow(rl, lm->now, &suppressed)) return;
  char q[160], cf[CHIP_FIELDS_LEN + 1] = "";
  cl_log_quote(q, sizeof q, detail, strlen(detail));
  if (chip) {
    chip_fields(lm->enrolled, chip, cf);
    strcat(cf, " ");
  }
  cl_log(CL_LOG_WARN, "rejected", "reason=%s peer=%s %sdetail=%s suppressed=%llu", what, c->peer,
         cf, q, (unsigned long long)suppressed);
}

/* The same through the one limiter of every rejection of the landmark. */
static void log_reject(cl_lm *lm, cl_lm_conn *c, const char *what, const char *detail) {
  log_reject_rl(lm, &lm->rl, c, NULL, what, detail);
}

/* The same for a rejection about one chip. */
static void log_reject_chip(cl_lm *lm, cl_lm_conn *c, const uint8_t *chip, const char *what,
                            const char *detail) {
  log_reject_rl(lm, &lm->rl, c, chip, what, detail);
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
  log_reject_rl(lm, &lm->rl_overflow, c, NULL, "write_queue_full", detail);
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

/* Encodes and sends a message that is not a challenge. A message that does
 * not encode is the core's own bug: the connection is closed. */
static int send_msg(cl_lm_conn *c, const cl_msg *m) {
  /* A RegisterResult of 64 accepted chips is about 17 KB. */
  cl_lm *lm = c->lm;
  size_t len = 0;
  if (cl_msg_encode(m, lm->out, sizeof lm->out, &len) != CL_OK) {
    cl_log(CL_LOG_ERROR, "cannot encode a message", "type=%s", cl_msg_type_name(m->type));
    conn_close(c);
    return CL_EINVAL;
  }
  return send_frame(c, lm->out, len, NULL);
}

static void send_error(cl_lm_conn *c, cl_wire_error code, const char *text) {
  uint8_t buf[512];
  size_t len;
  if (cl_msg_encode_error(code, text, buf, sizeof buf, &len) == CL_OK)
    send_frame(c, buf, len, NULL);
}

/*
 * An Error reply that keeps the connection (a rejected Response, a bad
 * transcript, an unexpected Confirm): at most max_error_replies_per_s per
 * connection, so that a peer flooding bad messages gets a bounded trickle
 * of replies instead of one per message (a peer that does not read would
 * otherwise fill our write queue with them). A reply over the limit is
 * dropped and counted; the rejection itself is counted by the caller
 * either way.
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

static void probe_event(cl_lm *lm, const lm_chip *ch, const cl_probe *p, const uint8_t *mac,
                        cl_accept_result r, int expired, uint64_t rtt) {
  if (!lm->io->probe) return;
  cl_lm_probe_event e = {
      .chip = ch->pk, .probe = p, .mac = mac, .result = r, .expired = expired, .rtt_ns = rtt};
  lm->io->probe(lm->ctx, &e);
}

/* The chip of this connection with this key (pending or active), or NULL. */
static lm_chip *conn_chip(const cl_lm_conn *c, const uint8_t pk[CL_PK_LEN]) {
  for (size_t i = 0; i < c->n_chips; i++)
    if (memcmp(c->chips[i]->pk, pk, CL_PK_LEN) == 0) return c->chips[i];
  return NULL;
}

/* Forgets the chip's outstanding probe, if any, in its connection's count
 * of pending challenges. */
static void clear_outstanding(lm_chip *ch) {
  if (ch->cur && ch->conn && ch->conn->n_pending > 0) ch->conn->n_pending--;
  ch->cur = NULL;
}

/* Fills entry `slot` of the RegisterResult being prepared as a refusal. */
static void refuse_slot(cl_lm_conn *c, size_t slot, cl_refuse_reason why, const char *detail) {
  assert(c->reg_result && slot < c->reg_result->u.reg_result.n && why != CL_REFUSE_NONE);
  cl_chip_result *r = &c->reg_result->u.reg_result.r[slot];
  r->accepted = 0;
  r->reason = why;
  snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : cl_refuse_reason_name(why));
  c->lm->st.handshake_refused[why]++;
}

/*
 * One offer of the Register being answered is decided; the RegisterResult
 * goes out once all are. Before registration, a result without an accepted
 * chip leaves nothing to measure: the connection closes. With one, the
 * frame limit becomes max_frame_bytes, but not below the limit before
 * registration, as docs/PROTOCOL.md has it: the peer offered an enrolled,
 * active chip, and its Confirm of up to 64 chips (6.5 KB) must fit.
 */
static void reg_slot_done(cl_lm_conn *c) {
  assert(c->reg_result && c->reg_waiting > 0);
  if (--c->reg_waiting > 0 || c->closing) return;
  cl_lm *lm = c->lm;
  cl_msg *res = c->reg_result;
  c->reg_result = NULL;
  size_t accepted = 0;
  for (size_t i = 0; i < res->u.reg_result.n; i++) accepted += res->u.reg_result.r[i].accepted != 0;
  int rc = send_msg(c, res);
  free(res);
  if (rc != CL_OK || c->state != CONN_HELLO) return;
  if (accepted == 0) {
    conn_close(c);
    return;
  }
  c->state = CONN_HANDSHAKE;
  /* The Confirm of up to 64 chips (6.5 KB) still fits when max_frame_bytes
   * is set below the limit before registration. */
  uint32_t max = lm->p->max_frame_bytes;
  if (max < CL_FRAME_MAX_UNREGISTERED) max = CL_FRAME_MAX_UNREGISTERED;
  cl_frame_asm_set_max(&c->fa, max);
}

/* Removes a chip from its connection and the live map; it is freed when the
 * public call returns (or when its last job is back). */
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
  if (ch->active && cl_pkmap_get(lm->live, ch->pk) == ch) cl_pkmap_del(lm->live, ch->pk);
  ch->conn = NULL;
  cl_tq_stop(&lm->tq, &ch->timer.e);
  cl_tq_stop(&lm->tq, &ch->tx_timer.e);
  lm->n_timers -= 2;
  ch->dead_next = lm->dead_chips;
  lm->dead_chips = ch;
  /* Its offer's answer is no longer coming from the job: it is refused
   * here, so that the RegisterResult still goes out. */
  if (ch->hstate == HS_JOB && c->reg_result && !c->closing) {
    ch->hstate = HS_NONE;
    refuse_slot(c, ch->reg_slot, CL_REFUSE_INACTIVE, "dropped before its handshake completed");
    reg_slot_done(c);
  }
}

/* Drops one chip of a connection with an Error naming it; the connection
 * closes when no chip is left on it, active or pending. */
static void drop_chip(lm_chip *ch, cl_wire_error code, const char *what, const char *text) {
  cl_lm_conn *c = ch->conn;
  assert(c && !c->closing);
  log_reject_chip(ch->lm, c, ch->pk, what, text);
  send_error(c, code, text);
  chip_detach(ch);
  if (!c->closing && c->n_chips == 0) conn_close(c);
}

static void work_wipe(cl_lm_work *w) {
  sodium_memzero(w->eph_sk, sizeof w->eph_sk);
  sodium_memzero(w->key, sizeof w->key);
}

/*
 * Hands a job to a worker when async_signatures is set and the shell takes
 * it, else does it here and now. The chip expects a HANDSHAKE or CONFIRM
 * result under the ticket given here. w's secrets are wiped on return.
 */
static void dispatch(cl_lm *lm, lm_chip *ch, cl_lm_work *w) {
  w->owner = ch;
  w->ticket = ++lm->tickets;
  if (w->kind != CL_LM_WORK_TRANSCRIPT) ch->hs_ticket = w->ticket;
  ch->jobs++;
  if (lm->p->async_signatures && lm->io->work(lm->ctx, w) == CL_OK) {
    lm->st.jobs_queued[w->kind]++;
  } else {
    cl_lm_work_run(w, lm->key);
    job_done(lm, w, 0);
  }
  work_wipe(w);
}

/* The measurement of a burst whose transcript verified. */
static void emit_record(lm_chip *ch, const cl_measurement *m) {
  cl_lm *lm = ch->lm;
  cl_lm_record rec;
  memset(&rec, 0, sizeof rec);
  rec.m = *m;
  rec.chip_id = ch->db_id;
  rec.is_link = ch->is_landmark;
  rec.probes_sent = m->probes_sent;
  rec.bound_m = cl_bound_m(m->rtt_ns, CL_SPEED_C);
  rec.est_speed = lm->p->speed_m_per_s;
  rec.est_bound_m = cl_bound_m(m->rtt_ns, lm->p->speed_m_per_s);
  if (lm->io->measurement(lm->ctx, &rec) == CL_OK)
    lm->st.measurements++;
  else
    lm->st.measurements_dropped++;
  if (cl_log_get_level() <= CL_LOG_DEBUG) {
    char cf[CHIP_FIELDS_LEN];
    cl_log(CL_LOG_DEBUG, "measurement", "%s rtt_ns=%llu bound_m=%llu probes=%u sent=%u",
           chip_fields(lm->enrolled, ch->pk, cf), (unsigned long long)m->rtt_ns,
           (unsigned long long)rec.bound_m, m->count, m->probes_sent);
  }
}

/*
 * The burst is over. Without an accepted probe there is nothing to sign.
 * Else the accepted seqs go to the chip in a BurstEnd and the burst waits
 * for the chip's transcript, with the session it ran in, until the
 * transcript deadline. The next burst comes after the interval either way.
 */
static void finish_burst(lm_chip *ch) {
  cl_lm *lm = ch->lm;
  cl_burst *b = &ch->burst;
  chip_schedule(ch, jittered_interval_ms(lm), PH_IDLE);
  if (b->accepted == 0) {
    lm->st.bursts_empty++;
    cl_burst_reset(b);
    return;
  }
  char hex[17];
  short_hex(ch->pk, hex);
  if (ch->tx) {
    /* The previous burst's transcript never came, and this burst replaces it. */
    lm->st.transcript_timeouts++;
    char detail[96];
    snprintf(detail, sizeof detail, "chip %s: no transcript before the next burst ended", hex);
    log_reject_chip(lm, ch->conn, ch->pk, "transcript_timeout", detail);
  } else if ((ch->tx = malloc(sizeof *ch->tx)) == NULL) {
    lm->st.measurements_dropped++;
    cl_burst_reset(b);
    return;
  }
  ch->tx->b = *b;
  ch->tx->hs = ch->hs;
  ch->tx->unix_ns = lm->io->unix_ns(lm->ctx);
  cl_tq_arm(&lm->tq, &ch->tx_timer.e, lm->now + (uint64_t)lm->p->transcript_timeout_ms * NS_PER_MS);
  cl_msg *m = &lm->scratch_out;
  m->type = CL_MSG_BURST_END;
  memcpy(m->u.burst_end.chip, ch->pk, CL_PK_LEN);
  m->u.burst_end.n = b->accepted;
  for (uint32_t i = 0; i < b->accepted; i++) m->u.burst_end.seqs[i] = b->e[i].seq;
  cl_burst_reset(b);
  send_msg(ch->conn, m);
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
 * Sends one challenge: takes a slot of the chip's ring, draws the nonce,
 * encodes and writes; the shell stamps the send time immediately before its
 * write. Everything that costs (the nonce, the encoding) happens before
 * that; the deadline timer is armed after it.
 */
static void send_probe(lm_chip *ch) {
  cl_lm *lm = ch->lm;
  cl_lm_conn *c = ch->conn;
  if (deferred_for_room(ch)) return;
  cl_probe *p = &ch->ring[ch->ring_next++ % CL_LM_PROBE_RING];
  memset(p, 0, sizeof *p);
  p->seq = ++lm->seq;
  lm->io->random(lm->ctx, p->nonce, CL_NONCE_LEN);
  cl_msg *m = &lm->scratch_out;
  m->type = CL_MSG_CHALLENGE;
  memcpy(m->u.challenge.chip, ch->pk, CL_PK_LEN);
  m->u.challenge.seq = p->seq;
  memcpy(m->u.challenge.nonce, p->nonce, CL_NONCE_LEN);
  uint8_t buf[256];
  size_t len = 0;
  int rc = cl_msg_encode(m, buf, sizeof buf, &len);
  assert(rc == CL_OK); /* fixed-size fields: always fits */
  (void)rc;
  p->state = CL_PROBE_OUTSTANDING;
  ch->cur = p;
  c->n_pending++;
  ch->burst_left--;
  ch->burst.sent++;
  ch->phase = PH_WAIT;
  lm->st.probes_sent++;
  /* The clock starts in the shell: nothing but its write lies between. */
  uint64_t t_sent = lm->now;
  rc = send_frame(c, buf, len, &t_sent);
  /* How late the probe went out against its schedule (every challenge sent
   * counts, written or not). */
  cl_histogram_observe(&lm->st.lag,
                       t_sent > ch->due_ns ? (double)(t_sent - ch->due_ns) / 1e9 : 0.0);
  if (rc != CL_OK) return; /* the connection is closed and the chip detached */
  p->sent_ns = t_sent;
  p->deadline_ns = t_sent + (uint64_t)lm->p->deadline_ms * NS_PER_MS;
  cl_tq_arm(&lm->tq, &ch->timer.e, p->deadline_ns);
}

/* Asks the chip for a new session instead of a burst; it has until the
 * handshake timeout to complete it, with no burst meanwhile. */
static void ask_rekey(lm_chip *ch) {
  cl_lm *lm = ch->lm;
  lm->st.rekeys_asked++;
  ch->hstate = HS_ASKED;
  chip_schedule(ch, lm->p->handshake_timeout_ms, PH_REKEY);
  cl_msg *m = &lm->scratch_out;
  m->type = CL_MSG_REKEY;
  memcpy(m->u.rekey.chip, ch->pk, CL_PK_LEN);
  send_msg(ch->conn, m);
}

static void chip_timer(lm_chip *ch) {
  cl_lm *lm = ch->lm;
  /* A detached chip's timer was stopped with it. */
  assert(ch->conn && !ch->conn->closing);
  char hex[17], text[96];
  short_hex(ch->pk, hex);
  switch (ch->phase) {
  case PH_IDLE:
    assert(ch->active && ch->hstate == HS_NONE);
    if (lm->now - ch->session_ns >= (uint64_t)lm->p->session_lifetime_s * NS_PER_S) {
      ask_rekey(ch);
      break;
    }
    cl_burst_reset(&ch->burst);
    ch->burst_left = lm->p->burst;
    send_probe(ch);
    break;
  case PH_GAP:
    send_probe(ch);
    break;
  case PH_WAIT: {
    /* The timer runs for the outstanding probe's deadline itself. */
    cl_probe *p = ch->cur;
    assert(p && p->state == CL_PROBE_OUTSTANDING && lm->now >= p->deadline_ns);
    p->state = CL_PROBE_EXPIRED;
    lm->st.probe_timeouts++;
    probe_event(lm, ch, p, NULL, CL_ACCEPT_OK, 1, 0);
    probe_settled(ch);
    break;
  }
  case PH_HANDSHAKE:
    lm->st.handshake_timeouts++;
    snprintf(text, sizeof text, "chip %s: handshake not completed", hex);
    drop_chip(ch, CL_ERR_LIMIT, "handshake_timeout", text);
    break;
  case PH_REKEY:
    lm->st.rekeys_failed++;
    snprintf(text, sizeof text, "chip %s: rekey not completed", hex);
    drop_chip(ch, CL_ERR_LIMIT, "rekey_timeout", text);
    break;
  }
}

/* The transcript of the chip's last burst did not come in time. */
static void transcript_timer(lm_chip *ch) {
  cl_lm *lm = ch->lm;
  assert(ch->conn && ch->tx);
  lm->st.transcript_timeouts++;
  char hex[17], detail[64];
  short_hex(ch->pk, hex);
  snprintf(detail, sizeof detail, "chip %s: no transcript in time", hex);
  log_reject_chip(lm, ch->conn, ch->pk, "transcript_timeout", detail);
  free(ch->tx);
  ch->tx = NULL;
}

static void chip_schedule(lm_chip *ch, uint64_t delay_ms, chip_phase phase) {
  cl_lm *lm = ch->lm;
  ch->phase = phase;
  ch->due_ns = lm->now + delay_ms * NS_PER_MS;
  cl_tq_arm(&lm->tq, &ch->timer.e, ch->due_ns);
}

/* A pending chip of the connection: its handshake has until the handshake
 * timeout to complete. NULL when out of memory. */
static lm_chip *chip_create(cl_lm_conn *c, const cl_lm_target *e) {
  cl_lm *lm = c->lm;
  if (c->n_chips >= CL_MAX_CHIPS_PER_REGISTER) return NULL;
  if (cl_tq_reserve(&lm->tq, lm->n_timers + 2) != CL_OK) return NULL;
  lm_chip *ch = calloc(1, sizeof *ch);
  if (!ch) return NULL;
  memcpy(ch->pk, e->pk, CL_PK_LEN);
  ch->db_id = e->id;
  ch->is_landmark = e->is_landmark;
  ch->lm = lm;
  ch->timer.kind = TIMER_CHIP;
  ch->tx_timer.kind = TIMER_TRANSCRIPT;
  ch->conn = c;
  lm->n_timers += 2;
  c->chips[c->n_chips++] = ch;
  chip_schedule(ch, lm->p->handshake_timeout_ms, PH_HANDSHAKE);
  return ch;
}

/*
 * One connection speaks for a chip: the newer verified session, on
 * connection `to`, takes chip `old` away from the connection it was active
 * on. That connection is told, with ERROR_CHIP_TAKEN_OVER naming the chip, so
 * that its agent stops offering the chip here instead of finding its
 * probing ended without a word; it closes when no chip is left on it.
 * Counted and logged as a warning with both agents and addresses: two
 * agents holding one chip key is a misconfiguration or a copied key
 * (unless the old connection is one its agent left without the landmark
 * noticing; the Error then goes nowhere). The log has a limiter of its
 * own, as a move takes a verified handshake, not a flood of bad frames.
 */
static void chip_taken_over(lm_chip *old, cl_lm_conn *to) {
  cl_lm *lm = old->lm;
  cl_lm_conn *from = old->conn;
  assert(from && from != to && !from->closing);
  lm->st.chip_takeovers++;
  uint64_t suppressed = 0;
  if (cl_ratelimit_allow(&lm->rl_takeover, lm->now, &suppressed)) {
    char cf[CHIP_FIELDS_LEN], old_agent[CL_MAX_AGENT_NAME * 4 + 3],
        agent[CL_MAX_AGENT_NAME * 4 + 3];
    cl_log_quote(old_agent, sizeof old_agent, from->agent, strlen(from->agent));
    cl_log_quote(agent, sizeof agent, to->agent, strlen(to->agent));
    cl_log(CL_LOG_WARN, "chip taken over by another connection",
           "%s old_agent=%s old_peer=%s agent=%s peer=%s suppressed=%llu",
           chip_fields(lm->enrolled, old->pk, cf), old_agent, from->peer, agent, to->peer,
           (unsigned long long)suppressed);
  }
  char hex[17], text[CL_MAX_ERROR_TEXT + 1];
  short_hex(old->pk, hex);
  snprintf(text, sizeof text, "chip %s: now registered on another connection (agent %s)", hex,
           to->agent);
  send_error(from, CL_ERR_CHIP_TAKEN_OVER, text);
  chip_detach(old);
  if (!from->closing && from->n_chips == 0) conn_close(from);
}

/*
 * The chip's Confirm verified: its new session begins. A rekey replaces the
 * old key (wiped) and runs the burst it put off. A first session makes the
 * chip active; a chip active on another connection moves here only now,
 * when this connection has proven it speaks for the chip (chip_taken_over).
 */
static void session_begin(lm_chip *ch, const uint8_t chip_sig[CL_SIG_LEN]) {
  cl_lm *lm = ch->lm;
  cl_lm_conn *c = ch->conn;
  char cf[CHIP_FIELDS_LEN], agent[CL_MAX_AGENT_NAME * 4 + 3];
  chip_fields(lm->enrolled, ch->pk, cf);
  memcpy(ch->next_hs.chip_sig, chip_sig, CL_SIG_LEN);
  ch->hstate = HS_NONE;
  lm->st.handshakes_ok++;
  ch->hs = ch->next_hs;
  memcpy(ch->key, ch->next_key, CL_SESSION_KEY_LEN);
  sodium_memzero(ch->next_key, sizeof ch->next_key);
  ch->session_ns = lm->now;
  if (ch->active) {
    lm->st.rekeys_done++;
    cl_log(CL_LOG_DEBUG, "session rekeyed", "%s peer=%s", cf, c->peer);
    chip_schedule(ch, 0, PH_IDLE);
    return;
  }
  const cl_lm_target *e = cl_pkmap_get(lm->enrolled, ch->pk);
  lm_chip *old = NULL;
  if (!e || !e->active || cl_pkmap_put(lm->live, ch->pk, ch, (void **)&old) != CL_OK) {
    cl_log(CL_LOG_INFO, "chip no longer enrolled; dropped", "%s peer=%s", cf, c->peer);
    chip_detach(ch);
    if (!c->closing && c->n_chips == 0) conn_close(c);
    return;
  }
  ch->db_id = e->id;
  ch->is_landmark = e->is_landmark;
  ch->active = 1;
  lm->st.chips_registered++;
  if (old) chip_taken_over(old, c);
  cl_log_quote(agent, sizeof agent, c->agent, strlen(c->agent));
  cl_log(CL_LOG_INFO, "chip registered", "%s peer=%s agent=%s", cf, c->peer, agent);
  if (c->state != CONN_REGISTERED) {
    c->state = CONN_REGISTERED;
    cl_tq_arm(&lm->tq, &c->timer.e, lm->now + lm->idle_check_ns);
  }
  /* The first burst comes at a uniformly random time within one interval,
   * so that chips registering together (every agent reconnecting after a
   * landmark restart) load the landmark evenly from the start instead of
   * in one surge that then repeats every interval. */
  uint32_t spread = lm->p->interval_s * 1000u;
  chip_schedule(ch, uniform(lm, spread + 1), PH_IDLE);
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
  if (c->state != CONN_REGISTERED) {
    lm->st.handshake_timeouts++;
    fail_conn(c, CL_ERR_LIMIT, "handshake_timeout",
              "no chip completed its handshake before the handshake timeout");
    return;
  }
  uint64_t idle_ns = (uint64_t)lm->p->idle_timeout_s * NS_PER_S;
  if (lm->now - c->last_rx_ns > idle_ns) {
    lm->st.idle_timeouts++;
    fail_conn(c, CL_ERR_LIMIT, "idle_timeout",
              "no complete frame from the peer within the idle timeout");
    return;
  }
  cl_tq_arm(&lm->tq, &c->timer.e, lm->now + lm->idle_check_ns);
}

/* Starts the landmark's half of a handshake for an offer the landmark
 * accepts: fresh nonce and ephemeral secret from io->random, the rest in a
 * HANDSHAKE job; its result fills entry `slot` of the RegisterResult. */
static void start_handshake(lm_chip *ch, const cl_chip_offer *o, uint32_t suite, size_t slot) {
  cl_lm *lm = ch->lm;
  cl_lm_work w;
  memset(&w, 0, sizeof w);
  w.kind = CL_LM_WORK_HANDSHAKE;
  w.hs.suite = suite;
  memcpy(w.hs.landmark, cl_key_public(lm->key), CL_PK_LEN);
  memcpy(w.hs.chip, o->chip, CL_PK_LEN);
  memcpy(w.hs.chip_eph, o->eph, CL_EPH_LEN);
  memcpy(w.hs.chip_nonce, o->nonce, CL_NONCE_LEN);
  lm->io->random(lm->ctx, w.hs.landmark_nonce, CL_NONCE_LEN);
  lm->io->random(lm->ctx, w.eph_sk, CL_EPH_SK_LEN);
  ch->hstate = HS_JOB;
  ch->reg_slot = slot;
  ch->conn->reg_waiting++;
  dispatch(lm, ch, &w);
}

/*
 * A Register: before registration, the chips the agent offers; after it,
 * fresh offers for chips the landmark asked to rekey (any other offer is
 * refused NOT_ASKED). Each offer is refused (duplicate, not enrolled,
 * inactive) or gets a handshake job; the one RegisterResult goes out when
 * every job of this Register is back (reg_slot_done). An unknown suite
 * closes the connection: nothing else could be agreed in it.
 */
static void handle_register(cl_lm_conn *c, const cl_msg *m) {
  cl_lm *lm = c->lm;
  char text[160];
  if (!cl_suite_known(m->u.reg.suite)) {
    lm->st.suite_refused++;
    snprintf(text, sizeof text, "cipher suite %u is unknown; this landmark speaks %u (%s)",
             m->u.reg.suite, CL_SUITE_ED25519_X25519, cl_suite_name(CL_SUITE_ED25519_X25519));
    fail_conn(c, CL_ERR_SUITE, "suite", text);
    return;
  }
  if (c->reg_result) {
    lm->st.unexpected_msg++;
    fail_conn(c, CL_ERR_UNEXPECTED, "unexpected", "Register while the last one is unanswered");
    return;
  }
  int rekey = c->state == CONN_REGISTERED;
  if (!rekey) snprintf(c->agent, sizeof c->agent, "%s", m->u.reg.agent);
  cl_msg *res = calloc(1, sizeof *res);
  if (!res) {
    conn_close(c);
    return;
  }
  res->type = CL_MSG_REGISTER_RESULT;
  res->u.reg_result.n = m->u.reg.n;
  c->reg_result = res;
  /* Held until every offer is decided: a job done here comes back within
   * the loop and must not send the result early. */
  c->reg_waiting = 1;
  for (size_t i = 0; i < m->u.reg.n && !c->closing; i++) {
    const cl_chip_offer *o = &m->u.reg.chips[i];
    memcpy(res->u.reg_result.r[i].chip, o->chip, CL_PK_LEN);
    int dup = 0;
    for (size_t j = 0; j < i; j++)
      if (memcmp(m->u.reg.chips[j].chip, o->chip, CL_PK_LEN) == 0) dup = 1;
    lm_chip *ch = NULL;
    cl_refuse_reason why = CL_REFUSE_NONE;
    if (dup) {
      why = CL_REFUSE_DUPLICATE;
    } else if (rekey) {
      ch = conn_chip(c, o->chip);
      if (!ch || !ch->active || ch->hstate != HS_ASKED) why = CL_REFUSE_NOT_ASKED;
    } else {
      const cl_lm_target *e = cl_pkmap_get(lm->enrolled, o->chip);
      if (!e)
        why = CL_REFUSE_NOT_ENROLLED;
      else if (!e->active)
        why = CL_REFUSE_INACTIVE;
      else if (!(ch = chip_create(c, e)))
        why = CL_REFUSE_INACTIVE; /* out of memory: refuse rather than fail silently */
    }
    if (why != CL_REFUSE_NONE) {
      refuse_slot(c, i, why, NULL);
      char hex[17], detail[CL_MAX_AGENT_NAME + 96];
      short_hex(o->chip, hex);
      /* Up to 64 refusals per Register: rate-limited like any rejection
       * (which quotes the agent's name). */
      snprintf(detail, sizeof detail, "chip %s refused at registration, agent %s", hex,
               m->u.reg.agent);
      log_reject_chip(lm, c, o->chip, cl_refuse_reason_name(why), detail);
      continue;
    }
    start_handshake(ch, o, m->u.reg.suite, i);
  }
  if (!c->closing) reg_slot_done(c);
}

/*
 * A Confirm: each chip's signature over the handshake the landmark
 * answered goes to a CONFIRM job. An entry for a chip with no handshake
 * awaiting a Confirm (unknown here, answered already, or a Confirm replayed
 * from an earlier session) is refused with an Error; the others stand.
 */
static void handle_confirm(cl_lm_conn *c, const cl_msg *m) {
  cl_lm *lm = c->lm;
  for (size_t i = 0; i < m->u.confirm.n && !c->closing; i++) {
    const cl_chip_confirm *cf = &m->u.confirm.chips[i];
    lm_chip *ch = conn_chip(c, cf->chip);
    if (!ch || ch->hstate != HS_CONFIRM) {
      lm->st.confirms_unexpected++;
      char hex[17], text[96];
      short_hex(cf->chip, hex);
      snprintf(text, sizeof text, "chip %s: no handshake awaits a Confirm", hex);
      log_reject_chip(lm, c, cf->chip, "unexpected_confirm", text);
      /* Not ERROR_UNEXPECTED, on which an agent closes: the connection's
       * other chips stand. */
      reply_error(c, CL_ERR_NOT_REGISTERED, text);
      continue;
    }
    cl_lm_work w;
    memset(&w, 0, sizeof w);
    w.kind = CL_LM_WORK_CONFIRM;
    w.hs = ch->next_hs;
    memcpy(w.hs.chip_sig, cf->sig, CL_SIG_LEN);
    ch->hstate = HS_VERIFY;
    dispatch(lm, ch, &w);
  }
}

static cl_wire_error wire_code(cl_accept_result r) {
  switch (r) {
  case CL_ACCEPT_REPLAY: return CL_ERR_REPLAY;
  case CL_ACCEPT_LATE: return CL_ERR_LATE;
  case CL_ACCEPT_BAD_MAC: return CL_ERR_BAD_MAC;
  default: return CL_ERR_UNKNOWN_PROBE;
  }
}

static cl_probe *find_probe(lm_chip *ch, uint64_t seq) {
  for (unsigned i = 0; i < CL_LM_PROBE_RING; i++)
    if (ch->ring[i].state != CL_PROBE_FREE && ch->ring[i].seq == seq) return &ch->ring[i];
  return NULL;
}

/* The active chip of this connection with this key, or NULL. */
static lm_chip *active_chip(const cl_lm_conn *c, const uint8_t pk[CL_PK_LEN]) {
  lm_chip *ch = conn_chip(c, pk);
  return ch && ch->active ? ch : NULL;
}

static void not_registered(cl_lm_conn *c, const uint8_t chip[CL_PK_LEN], const char *what) {
  c->lm->st.rejected_not_registered++;
  char text[96];
  snprintf(text, sizeof text, "%s for a chip not active on this connection", what);
  log_reject_chip(c->lm, c, chip, "not_registered", text);
  reply_error(c, CL_ERR_NOT_REGISTERED, "chip not registered on this connection");
}

/* An answer that passed every check: counted, kept for its burst, and the
 * chip moves on. */
static void response_accepted(lm_chip *ch, cl_probe *p, const uint8_t mac[CL_MAC_LEN],
                              uint64_t rtt) {
  cl_lm *lm = ch->lm;
  p->state = CL_PROBE_ANSWERED;
  lm->st.responses_accepted++;
  cl_histogram_observe(&lm->st.rtt, (double)rtt / 1e9);
  cl_burst_add(&ch->burst, p->seq, p->nonce, mac, rtt);
  if (cl_log_get_level() <= CL_LOG_DEBUG) {
    char cf[CHIP_FIELDS_LEN];
    cl_log(CL_LOG_DEBUG, "probe accepted", "%s seq=%llu rtt_ns=%llu",
           chip_fields(lm->enrolled, ch->pk, cf), (unsigned long long)p->seq,
           (unsigned long long)rtt);
  }
  probe_event(lm, ch, p, mac, CL_ACCEPT_OK, 0, rtt);
  if (ch->cur == p) probe_settled(ch);
}

static void response_rejected(cl_lm_conn *c, const uint8_t chip[CL_PK_LEN], uint64_t seq,
                              cl_accept_result r) {
  cl_lm *lm = c->lm;
  lm->st.rejected[r]++;
  char detail[96];
  char hex[17];
  short_hex(chip, hex);
  snprintf(detail, sizeof detail, "chip %s seq %llu", hex, (unsigned long long)seq);
  log_reject_chip(lm, c, chip, cl_accept_result_name(r), detail);
  reply_error(c, wire_code(r), cl_accept_result_name(r));
}

/*
 * A Response, received at t_recv: checks 1 to 4 (cl_probe_accept: a probe
 * of this chip's ring, not answered, in time, then its MAC under the
 * session key), here on the loop (one keyed hash) and after t_recv. A bad
 * MAC uses the probe up: one MAC check per issued probe.
 */
static void handle_response(cl_lm_conn *c, const cl_msg *m, uint64_t t_recv) {
  cl_lm *lm = c->lm;
  lm_chip *ch = active_chip(c, m->u.response.chip);
  if (!ch) {
    not_registered(c, m->u.response.chip, "response");
    return;
  }
  cl_probe *p = find_probe(ch, m->u.response.seq);
  uint64_t rtt = 0;
  cl_accept_result r = cl_probe_accept(p, ch->key, ch->hs.suite, ch->hs.landmark, ch->pk,
                                       m->u.response.mac, t_recv, &rtt);
  if (r == CL_ACCEPT_BAD_MAC) {
    p->state = CL_PROBE_EXPIRED;
    probe_event(lm, ch, p, NULL, r, 0, 0);
    if (ch->cur == p) probe_settled(ch);
  } else if (r != CL_ACCEPT_OK) {
    probe_event(lm, ch, p, NULL, r, 0, 0);
  }
  if (r == CL_ACCEPT_OK)
    response_accepted(ch, p, m->u.response.mac, rtt);
  else
    response_rejected(c, m->u.response.chip, m->u.response.seq, r);
}

/* A bad transcript of chip `chip`: the burst is dropped, the session goes
 * on. */
static void transcript_bad(cl_lm_conn *c, const uint8_t chip[CL_PK_LEN], const char *text) {
  c->lm->st.transcripts_bad++;
  log_reject_chip(c->lm, c, chip, "bad_transcript", text);
  reply_error(c, CL_ERR_BAD_TRANSCRIPT, text);
}

/*
 * A Transcript for the chip's burst awaiting one: matched by its first
 * seq, checked by a TRANSCRIPT job over the landmark's own record of the
 * burst (the seqs, the nonces it sent, the MACs it checked), which also
 * signs the measurement.
 */
static void handle_transcript(cl_lm_conn *c, const cl_msg *m) {
  cl_lm *lm = c->lm;
  lm_chip *ch = active_chip(c, m->u.transcript.chip);
  if (!ch) {
    not_registered(c, m->u.transcript.chip, "transcript");
    return;
  }
  char hex[17], text[160];
  short_hex(ch->pk, hex);
  lm_pending_tx *tx = ch->tx;
  if (!tx) {
    snprintf(text, sizeof text, "chip %s: no burst awaits a transcript", hex);
    transcript_bad(c, ch->pk, text);
    return;
  }
  ch->tx = NULL;
  cl_tq_stop(&lm->tq, &ch->tx_timer.e);
  if (m->u.transcript.first_seq != tx->b.e[0].seq) {
    snprintf(text, sizeof text, "chip %s: transcript first_seq %llu, the burst begins at %llu",
             hex, (unsigned long long)m->u.transcript.first_seq,
             (unsigned long long)tx->b.e[0].seq);
    free(tx);
    transcript_bad(c, ch->pk, text);
    return;
  }
  cl_lm_work w;
  memset(&w, 0, sizeof w);
  w.kind = CL_LM_WORK_TRANSCRIPT;
  w.hs = tx->hs;
  w.burst = tx->b;
  w.measured_unix_ns = tx->unix_ns;
  memcpy(w.transcript_sig, m->u.transcript.sig, CL_SIG_LEN);
  free(tx);
  dispatch(lm, ch, &w);
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
  int hello = c->state == CONN_HELLO, reg = c->state == CONN_REGISTERED;
  if (m->type == CL_MSG_REGISTER && (hello || reg)) {
    handle_register(c, m);
  } else if (m->type == CL_MSG_CONFIRM && !hello) {
    handle_confirm(c, m);
  } else if (m->type == CL_MSG_RESPONSE && reg) {
    handle_response(c, m, t_recv);
  } else if (m->type == CL_MSG_TRANSCRIPT && reg) {
    handle_transcript(c, m);
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
    static const char *const when[] = {
        [CONN_HELLO] = "before Register",
        [CONN_HANDSHAKE] = "before a chip's Confirm verified",
        [CONN_REGISTERED] = "after registration",
    };
    lm->st.unexpected_msg++;
    snprintf(err, sizeof err, "%s not allowed %s", cl_msg_type_name(m->type), when[c->state]);
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
    c->state = CONN_HELLO;
    c->last_rx_ns = lm->now;
    c->announced = 1;
    cl_log(CL_LOG_INFO, "connection accepted", "peer=%s", c->peer);
    cl_tq_arm(&lm->tq, &c->timer.e, lm->now + (uint64_t)lm->p->handshake_timeout_ms * NS_PER_MS);
    cl_msg *hello = &lm->scratch_out;
    hello->type = CL_MSG_HELLO;
    memcpy(hello->u.hello.landmark, cl_key_public(lm->key), CL_PK_LEN);
    hello->u.hello.suite = CL_SUITE_ED25519_X25519;
    send_msg(c, hello);
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
    switch (t->kind) {
    case TIMER_CHIP: chip_timer((lm_chip *)((char *)t - offsetof(lm_chip, timer))); break;
    case TIMER_TRANSCRIPT:
      transcript_timer((lm_chip *)((char *)t - offsetof(lm_chip, tx_timer)));
      break;
    case TIMER_CONN: conn_timer((cl_lm_conn *)((char *)t - offsetof(cl_lm_conn, timer))); break;
    }
  }
  leave(lm);
}

void cl_lm_work_run(cl_lm_work *w, const cl_key *landmark) {
  switch (w->kind) {
  case CL_LM_WORK_HANDSHAKE:
    /* X25519 clamps the 32 random bytes into a secret scalar itself. */
    w->rc = crypto_scalarmult_base(w->hs.landmark_eph, w->eph_sk) == 0 ? CL_OK : CL_EINVAL;
    /* The key first: a chip key of small order fails it (CL_EBADSIG), and
     * then there is nothing to sign. */
    if (w->rc == CL_OK) w->rc = cl_session_key(&w->hs, CL_SIDE_LANDMARK, w->eph_sk, w->key);
    if (w->rc == CL_OK) w->rc = cl_hs_sign_landmark(&w->hs, landmark);
    sodium_memzero(w->eph_sk, sizeof w->eph_sk);
    if (w->rc != CL_OK) sodium_memzero(w->key, sizeof w->key);
    break;
  case CL_LM_WORK_CONFIRM: w->rc = cl_hs_verify_chip(&w->hs); break;
  case CL_LM_WORK_TRANSCRIPT:
    w->rc = cl_transcript_verify(&w->hs, w->burst.e, w->burst.accepted, w->transcript_sig);
    if (w->rc != CL_OK) break;
    cl_burst_to_measurement(&w->burst, &w->hs, w->transcript_sig, w->measured_unix_ns, &w->m);
    w->rc = cl_measurement_sign(&w->m, landmark);
    break;
  }
}

/* A HANDSHAKE job's result: the chip's entry of the RegisterResult. A
 * failed or cancelled job refuses the offer; a rekeying chip may offer
 * again until its rekey deadline. */
static void handshake_result(lm_chip *ch, const cl_lm_work *w, int status) {
  cl_lm *lm = ch->lm;
  cl_lm_conn *c = ch->conn;
  assert(c->reg_result && ch->reg_slot < c->reg_result->u.reg_result.n);
  if (status != 0 || w->rc != CL_OK) {
    if (status != 0) lm->st.jobs_orphaned++;
    ch->hstate = ch->active ? HS_ASKED : HS_NONE;
    if (status != 0)
      refuse_slot(c, ch->reg_slot, CL_REFUSE_INACTIVE, "the landmark is shutting down");
    else {
      char hex[17], detail[96];
      short_hex(ch->pk, hex);
      snprintf(detail, sizeof detail, "chip %s: ephemeral key of small order", hex);
      refuse_slot(c, ch->reg_slot, CL_REFUSE_BAD_PROOF, "ephemeral key of small order");
      log_reject_chip(lm, c, ch->pk, cl_refuse_reason_name(CL_REFUSE_BAD_PROOF), detail);
    }
    if (!ch->active) chip_detach(ch);
  } else {
    cl_chip_result *r = &c->reg_result->u.reg_result.r[ch->reg_slot];
    r->accepted = 1;
    r->reason = CL_REFUSE_NONE;
    memcpy(r->eph, w->hs.landmark_eph, CL_EPH_LEN);
    memcpy(r->nonce, w->hs.landmark_nonce, CL_NONCE_LEN);
    memcpy(r->sig, w->hs.landmark_sig, CL_SIG_LEN);
    ch->next_hs = w->hs;
    memcpy(ch->next_key, w->key, CL_SESSION_KEY_LEN);
    ch->hstate = HS_CONFIRM;
  }
  reg_slot_done(c);
}

/* A CONFIRM job's result: the session begins, or the chip is dropped. */
static void confirm_result(lm_chip *ch, const cl_lm_work *w, int status) {
  cl_lm *lm = ch->lm;
  char hex[17], text[96];
  short_hex(ch->pk, hex);
  if (status != 0) {
    lm->st.jobs_orphaned++;
    snprintf(text, sizeof text, "chip %s: handshake not completed", hex);
    drop_chip(ch, CL_ERR_LIMIT, "handshake_cancelled", text);
  } else if (w->rc != CL_OK) {
    lm->st.bad_handshake_sigs++;
    snprintf(text, sizeof text, "chip %s: handshake signature does not verify", hex);
    drop_chip(ch, CL_ERR_BAD_HANDSHAKE, "bad_handshake", text);
  } else {
    session_begin(ch, w->hs.chip_sig);
  }
}

/* A TRANSCRIPT job's result: the record, or a bad transcript. */
static void transcript_result(lm_chip *ch, const cl_lm_work *w, int status) {
  cl_lm *lm = ch->lm;
  if (status != 0) {
    lm->st.jobs_orphaned++;
    return;
  }
  if (w->rc != CL_OK) {
    char hex[17], text[96];
    short_hex(ch->pk, hex);
    snprintf(text, sizeof text, "chip %s: transcript signature does not verify", hex);
    transcript_bad(ch->conn, ch->pk, text);
    return;
  }
  lm->st.transcripts_ok++;
  emit_record(ch, &w->m);
}

static void job_done(cl_lm *lm, cl_lm_work *w, int status) {
  lm_chip *ch = w->owner;
  assert(ch && ch->jobs > 0);
  ch->jobs--;
  int current = ch->conn != NULL;
  if (current && w->kind == CL_LM_WORK_HANDSHAKE)
    current = ch->hstate == HS_JOB && ch->hs_ticket == w->ticket;
  if (current && w->kind == CL_LM_WORK_CONFIRM)
    current = ch->hstate == HS_VERIFY && ch->hs_ticket == w->ticket;
  if (!current) {
    lm->st.jobs_orphaned++;
    if (!ch->conn && ch->jobs == 0 && ch->zombie) {
      zombie_unlink(lm, ch);
      chip_free(ch);
    }
    return;
  }
  switch (w->kind) {
  case CL_LM_WORK_HANDSHAKE: handshake_result(ch, w, status); break;
  case CL_LM_WORK_CONFIRM: confirm_result(ch, w, status); break;
  case CL_LM_WORK_TRANSCRIPT: transcript_result(ch, w, status); break;
  }
}

void cl_lm_work_done(cl_lm *lm, cl_lm_work *w, int status, uint64_t now_ns) {
  enter(lm, now_ns);
  job_done(lm, w, status);
  work_wipe(w);
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
  /* The old set names the chips dropped below: an unenrolled one is not in
   * the new one. */
  cl_pkmap *old = lm->enrolled;
  cl_lm_target *old_arr = lm->enrolled_arr;
  lm->enrolled = m;
  lm->enrolled_arr = targets;
  /* Drop live chips that were unenrolled or deactivated, in rounds of up to
   * 256 so that the walk never sees the map change under it. */
  drop_walk w = {.n = 0, .lm = lm};
  do {
    w.n = 0;
    cl_pkmap_each(lm->live, collect_unenrolled, &w);
    for (size_t i = 0; i < w.n; i++) {
      char cf[CHIP_FIELDS_LEN];
      const cl_lm_target *e = cl_pkmap_get(m, w.drop[i]->pk);
      cl_log(CL_LOG_INFO, e ? "chip deactivated; dropped" : "chip no longer enrolled; dropped",
             "%s peer=%s", chip_fields(old, w.drop[i]->pk, cf), w.drop[i]->conn->peer);
      chip_detach(w.drop[i]);
    }
  } while (w.n == sizeof w.drop / sizeof w.drop[0]);
  cl_pkmap_destroy(&old);
  free(old_arr);
  cl_log(CL_LOG_DEBUG, "enrolled set refreshed", "chips=%zu live=%zu", n,
         cl_pkmap_count(lm->live));
  leave(lm);
}

/* ---- public: life cycle and state ------------------------------------------------------ */

int cl_lm_create(cl_lm **out, const cl_lm_params *params, const cl_key *key, const cl_lm_io *io,
                 void *ctx) {
  if (!out || !params || !key || !io || !io->send || !io->close || !io->measurement ||
      !io->random || !io->unix_ns || (params->async_signatures && !io->work) ||
      params->burst == 0 || params->burst > CL_MAX_BURST || params->max_pending_challenges == 0 ||
      params->max_error_replies_per_s == 0 || params->transcript_timeout_ms == 0 ||
      params->session_lifetime_s == 0)
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
  cl_ratelimit_init(&lm->rl_takeover, 20, 2);
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
    while (c->n_chips > 0) chip_free(c->chips[--c->n_chips]);
    lm->conns = c->next;
    cl_frame_asm_fini(&c->fa);
    free(c->reg_result);
    free(c);
  }
  /* Chips whose jobs never came back (the shell owes them; see
   * cl_lm_work_done). */
  while (lm->zombies) {
    lm_chip *ch = lm->zombies;
    lm->zombies = ch->znext;
    chip_free(ch);
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
