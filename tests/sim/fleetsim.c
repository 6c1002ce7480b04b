/*
 * fleetsim: a chip fleet simulator for tests and benchmarks. One libuv
 * process answers for many simulated chips (thousands to about 100,000),
 * speaking the agent side of wire protocol version 2 (docs/PROTOCOL.md) to
 * real landmarkd processes: per chip and landmark a session (the chip's
 * offer, the landmark's handshake signature checked under the pinned key,
 * the chip's own in a Confirm), the timed answers (a MAC under the session
 * key), a transcript signature after every burst, and a fresh offer on
 * Rekey.
 *
 * There is no traffic shaping on the machines this runs on, so distance is
 * simulated here, in user space: every chip has true coordinates, and each
 * answer to a landmark's challenge is computed at once but held back for the
 * round trip light would need in the configured medium, plus jitter and an
 * optional cheating delay, before it is written. An answer is never released
 * early: the hold is checked against uv_hrtime(), not the loop's cached clock.
 * A signature by a chip's identity key (handshake and transcript) is
 * computed at once too and held for --sign-delay-ms, the time a slow
 * hardware root of trust would take, on the same clock and in the same heap,
 * so a slow signature never holds up an answer.
 *
 * A chip may move: the fleet file may give it a destination, and on SIGUSR1
 * every such chip answers from its destination from then on (a chip carried
 * elsewhere while its declared site stays the same). Its sessions go on; only
 * the held time changes, at once.
 *
 * Layout in memory, sized for 100,000 chips: a flat array of small chip
 * records, one sodium_malloc'd array of raw Ed25519 secret keys, and per
 * landmark ceil(chips / K) connection slots, each carrying up to K chips
 * (with each chip's session towards that landmark) with its own timer
 * (reconnect backoff, handshake deadline) and a small binary heap of held
 * frames. A shared heap of wake-ups drives one timerfd that releases frames
 * when due. Nothing scans all chips or all connections per event; chip
 * lookup on a message scans the K slots of its connection.
 *
 * The session keys live in plain memory, in the connection slots, not in a
 * guarded sodium_malloc block as chipagent keeps its own: this simulates
 * 100,000 chips with keys that are test material anyway (the identity keys
 * derive from a public seed).
 *
 * This is a test tool under tests/sim/: no production binary links it.
 * docs/SIMULATOR.md describes the file formats, the key derivation and the
 * delay model.
 */
#define _GNU_SOURCE
#include "cl_chipsess.h"
#include "cl_config.h"
#include "cl_csv.h"
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_geo.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_log.h"
#include "cl_msg.h"
#include "cl_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* Key derivation context: seed_i = SHA-256(CTX || u64be(fleet_seed) || u64be(i)). */
#define SIM_KEY_CONTEXT "chiploc-sim chip"
#define SIM_KEY_CONTEXT_LEN (sizeof SIM_KEY_CONTEXT - 1)

#define MAX_CHIPS 1000000u
#define MAX_LANDMARKS 64u
#define MAX_KEYS_COUNT 10000000ull
#define DEFAULT_CHIPS_PER_CONN 8u
#define MAX_CHIPS_PER_CONN CL_MAX_CHIPS_PER_REGISTER
#define DEFAULT_JITTER_MS 0.2
#define MAX_JITTER_MS 1000.0
#define MAX_SIGN_DELAY_MS 60000.0
#define MAX_EXTRA_DELAY_MS 60000.0
#define MAX_DARK_AFTER_S 1e6
#define DEFAULT_CONNECT_RATE 2000u /* new connections per second at start-up */
#define HANDSHAKE_TIMEOUT_MS 15000u
#define BACKOFF_MIN_MS 250u
#define BACKOFF_MAX_MS 15000u
#define STABLE_SESSION_MS 10000u /* a session this long resets the backoff */
#define STATS_INTERVAL_MS 10000u
/* Held frames per connection: every probe of a burst of every chip at
 * once, plus one transcript and one handshake signature each. */
#define MAX_HELD ((CL_MAX_BURST + 2u) * MAX_CHIPS_PER_CONN)
#define MAX_WRITE_QUEUE (256u * 1024u)
#define READ_BUF (64u * 1024u)
#define ADDR_TEXT (CL_CONFIG_HOST_MAX + 10)
#define NEVER UINT64_MAX
#define LATE_RELEASE_NS 1000000u /* a release this late means the simulator is overloaded */

typedef enum {
  MODE_HONEST = 0,
  MODE_SMUGGLED, /* answers from its true position; the operator declared another */
  MODE_RELAY,    /* simulated exactly like smuggled: only the story differs */
  MODE_DELAY,    /* adds extra_delay_ms to every answer */
  MODE_DARK,     /* stops answering after dark_after_s */
} chip_mode;

static const char *const MODE_NAMES[] = {"honest", "smuggled", "relay", "delay", "dark"};

/* One simulated chip. Its secret key is sim.sk[i * CL_SK_LEN], public key the
 * last 32 bytes of it (libsodium's Ed25519 secret key is seed || pk). */
typedef struct {
  double lat, lon;         /* true position, degrees */
  double to_lat, to_lon;   /* its destination, if it moves */
  uint64_t key_index;      /* the `index` column: input of the key derivation */
  uint64_t dark_after_ms;  /* NEVER unless mode is dark */
  uint32_t extra_delay_us; /* added to every answer (mode delay) */
  uint8_t mode;
  uint8_t moves; /* has a destination: answers from there after SIGUSR1 */
} sim_chip;

typedef struct {
  char name[CL_CONFIG_NAME_MAX + 1];
  char addr[ADDR_TEXT]; /* as given, for logs */
  struct sockaddr_storage sa;
  uint8_t pk[CL_PK_LEN];
  double lat, lon;
} sim_landmark;

typedef enum {
  HELD_ANSWER = 0, /* a Response: the MAC, until the simulated arrival time */
  HELD_CONFIRM,    /* one chip's handshake signature, after the signing delay */
  HELD_TRANSCRIPT, /* a Transcript, after the signing delay */
} held_kind;

/* The content of a frame, computed at once and held until its time. */
typedef struct {
  uint64_t due_ns; /* uv_hrtime() at which it may be written */
  uint64_t order;  /* arrival order: ties leave first-in first-out */
  /* answer: the challenge's seq; transcript: the burst's first seq;
   * confirm: the RegisterResult it answers (one Confirm per batch) */
  uint64_t seq;
  uint8_t kind;             /* held_kind */
  uint8_t slot;             /* the chip's slot on the connection */
  uint8_t data[CL_SIG_LEN]; /* answer: the MAC; confirm, transcript: the signature */
} held;

/* A wake-up: at due_ns, release what is due on connection `conn`. One per
 * held frame; an entry whose frames have gone (released with an earlier
 * entry, or dropped by a close) finds nothing to do. */
typedef struct {
  uint64_t due_ns;
  uint32_t conn;
} wake;

typedef enum {
  C_IDLE = 0, /* no socket; the timer schedules the next attempt */
  C_CONNECTING,
  C_WAIT_HELLO,
  C_WAIT_RESULT,
  C_REGISTERED, /* at least one chip accepted; Challenges, BurstEnds and Rekeys */
  C_RETIRED,    /* every chip went dark: never reconnects */
} conn_state;

typedef struct {
  uint32_t chip;    /* index into sim.chips */
  uint64_t rtt_ns;  /* physical round trip to this connection's landmark, rounded up */
  uint64_t rtt_moved_ns; /* the same from the chip's destination (chips that move) */
  cl_chipsess sess; /* the chip's session with this connection's landmark */
  uint8_t key[CL_SESSION_KEY_LEN]; /* its session key, in plain memory (see the top) */
} conn_slot;

struct sim;

/*
 * One connection slot: a fixed group of up to K chips towards one landmark.
 * It outlives its TCP connections: each attempt re-initialises `tcp`, while
 * `timer` stays for the whole run and serves, by state, as reconnect backoff
 * (IDLE) or handshake deadline (CONNECTING..WAIT_RESULT). Held frames are
 * kept in `heap`, ordered by release time; the sim's wake-up timer releases
 * them. Every close ends the chips' sessions.
 */
typedef struct sconn {
  struct sim *s;
  uint32_t index; /* global connection number: picks the source address */
  uint16_t lm;
  uint8_t n_slots;
  uint8_t state;
  uint8_t tcp_live; /* tcp initialised and its close callback not yet run */
  uint8_t closing;
  uint8_t connected;
  uint8_t retire; /* do not reconnect after this close */
  unsigned attempt;
  uint32_t suite;    /* the landmark's, from its Hello */
  uint64_t claimed;  /* slots offered in the first Register (bit i = slot i) */
  uint64_t accepted; /* slots with a session the landmark accepted on this connection */
  uint64_t registered_ms;
  uint64_t order;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t creq;
  cl_frame_asm fa;
  held *heap;
  uint32_t n_held, cap_held;
  conn_slot slots[];
} sconn;

typedef struct {
  uint64_t challenges, answered, bad_landmark_sig, refused, unknown_chip;
  uint64_t dark_ignored, dropped, reconnects, retired;
  uint64_t rejected;      /* Error frames from the landmark about one chip or answer */
  uint64_t confirmed;     /* chip handshake signatures sent */
  uint64_t transcripts;   /* transcript signatures sent */
  uint64_t burst_refused; /* BurstEnds naming a probe the chip did not answer */
  uint64_t rekeys;        /* fresh offers sent on Rekey */
  uint64_t late_releases; /* frames written more than LATE_RELEASE_NS after their due time */
  uint64_t max_lag_ns;    /* largest release lag since the last stats line */
  uint64_t connections;   /* connected now */
  uint64_t registered;    /* chip registrations accepted and live now */
  uint64_t held_now;
} sim_stats;

typedef struct sim {
  uv_loop_t *loop;
  /* options */
  const char *fleet_path, *landmarks_path;
  uint64_t seed;
  double speed;
  double jitter_ms;
  double sign_delay_ms;
  unsigned k;
  int bind;           /* bind each connection to a local source address */
  uint32_t bind_base; /* host byte order */
  unsigned bind_count;
  unsigned connect_rate;
  double duration_s;
  /* fleet */
  size_t n_chips;
  sim_chip *chips;
  uint8_t *sk; /* n_chips * CL_SK_LEN, sodium_malloc */
  size_t n_lm;
  sim_landmark *lms;
  size_t n_conns;
  sconn **conns;
  /* run */
  uint64_t start_ms;
  uint64_t jitter_ns;
  uint64_t sign_delay_ns;
  uint64_t confirm_batch; /* numbers the batches of handshake signatures */
  /* Release timing. libuv timers tick in milliseconds of a cached loop
   * clock, and re-arming one for 0 ms inside its callback spins within the
   * timer phase, so held frames are released by one timerfd
   * (CLOCK_MONOTONIC, the clock of uv_hrtime, nanosecond resolution) armed
   * for the earliest wake-up of a heap shared by all connections. */
  int tfd;
  uv_poll_t tpoll;
  wake *wakes;
  size_t n_wakes, cap_wakes;
  uint64_t armed_ns; /* expiry programmed into tfd, NEVER if none */
  uv_timer_t stats_timer, stop_timer;
  uv_signal_t sigterm, sigint, sigusr1;
  int stopping;
  int moved; /* SIGUSR1 came: the chips with a destination answer from there */
  sim_stats st;
  cl_ratelimit rl;
} sim;

typedef struct {
  uv_write_t req;
  size_t len;
  uint8_t data[];
} wreq;

/* Scratch space for the single-threaded loop: the read buffer (consumed
 * before the read callback returns), decoded messages and encoded frames. */
static uint8_t g_rbuf[READ_BUF];
static cl_msg g_msg; /* decoded frames */
static cl_msg g_out; /* a Register or Confirm being built (g_msg may hold the frame answered) */
static cl_msg g_one; /* a Response or Transcript */
static uint8_t g_frame[CL_FRAME_MAX + CL_FRAME_HDR_LEN];
static held g_release[MAX_HELD];

static void conn_close(sconn *c, cl_log_level level, const char *why, const char *detail);
static void conn_open(sconn *c);

/* ---- key derivation ------------------------------------------------------- */

/* seed = SHA-256("chiploc-sim chip" || u64be(fleet_seed) || u64be(index)). */
static void derive_seed(uint64_t fleet_seed, uint64_t index, uint8_t seed[32]) {
  uint8_t in[SIM_KEY_CONTEXT_LEN + 16];
  memcpy(in, SIM_KEY_CONTEXT, SIM_KEY_CONTEXT_LEN);
  cl_put_be64(in + SIM_KEY_CONTEXT_LEN, fleet_seed);
  cl_put_be64(in + SIM_KEY_CONTEXT_LEN + 8, index);
  crypto_hash_sha256(seed, in, sizeof in);
}

static const uint8_t *chip_sk(const sim *s, uint32_t chip) {
  return s->sk + (size_t)chip * CL_SK_LEN;
}
static const uint8_t *chip_pk(const sim *s, uint32_t chip) { return chip_sk(s, chip) + 32; }

/* Signs a layout with a chip's identity key: raw libsodium over the
 * library's layout, with keys from one flat array (cl_key's guarded
 * allocation per key would cost ~16 KiB per chip). */
static void chip_sign(const sim *s, uint32_t chip, const uint8_t *layout, size_t len,
                      uint8_t sig[CL_SIG_LEN]) {
  crypto_sign_detached(sig, NULL, layout, len, chip_sk(s, chip));
}

/* ---- small helpers ---------------------------------------------------------- */

static int may_warn(sim *s, uint64_t *supp) {
  return cl_ratelimit_allow(&s->rl, uv_hrtime(), supp);
}

static const sim_landmark *conn_lm(const sconn *c) { return &c->s->lms[c->lm]; }

static int chip_is_dark(const sim *s, uint32_t chip) {
  const sim_chip *ch = &s->chips[chip];
  return ch->mode == MODE_DARK && uv_now(s->loop) - s->start_ms >= ch->dark_after_ms;
}

static unsigned popcount64(uint64_t v) { return (unsigned)__builtin_popcountll(v); }

/* Logs the stats line; resets the per-interval maximum lag. */
static void log_stats(sim *s, const char *when) {
  cl_log(CL_LOG_INFO, "stats",
         "chips=%zu connections=%llu registered=%llu challenges=%llu answered=%llu held_now=%llu "
         "confirmed=%llu transcripts=%llu burst_refused=%llu rekeys=%llu "
         "bad_landmark_sig=%llu refused=%llu unknown_chip=%llu dark_ignored=%llu dropped=%llu "
         "reconnects=%llu retired=%llu rejected=%llu late_releases=%llu max_lag_us=%llu "
         "when=%s",
         s->n_chips, (unsigned long long)s->st.connections, (unsigned long long)s->st.registered,
         (unsigned long long)s->st.challenges, (unsigned long long)s->st.answered,
         (unsigned long long)s->st.held_now, (unsigned long long)s->st.confirmed,
         (unsigned long long)s->st.transcripts, (unsigned long long)s->st.burst_refused,
         (unsigned long long)s->st.rekeys, (unsigned long long)s->st.bad_landmark_sig,
         (unsigned long long)s->st.refused, (unsigned long long)s->st.unknown_chip,
         (unsigned long long)s->st.dark_ignored, (unsigned long long)s->st.dropped,
         (unsigned long long)s->st.reconnects, (unsigned long long)s->st.retired,
         (unsigned long long)s->st.rejected, (unsigned long long)s->st.late_releases,
         (unsigned long long)(s->st.max_lag_ns / 1000u), when);
  s->st.max_lag_ns = 0;
}

/* ---- the heap of held frames ----------------------------------------------- */

static int held_before(const held *a, const held *b) {
  return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->order < b->order);
}

/* Adds a frame. Returns 0, CL_ETOOBIG (MAX_HELD reached) or CL_ENOMEM. */
static int heap_push(sconn *c, const held *h) {
  if (c->n_held == c->cap_held) {
    if (c->cap_held >= MAX_HELD) return CL_ETOOBIG;
    uint32_t cap = c->cap_held ? c->cap_held * 2 : (c->n_slots < 4 ? 4u : c->n_slots);
    if (cap > MAX_HELD) cap = MAX_HELD;
    held *nh = realloc(c->heap, cap * sizeof *nh);
    if (!nh) return CL_ENOMEM;
    c->heap = nh;
    c->cap_held = cap;
  }
  uint32_t i = c->n_held++;
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!held_before(h, &c->heap[parent])) break;
    c->heap[i] = c->heap[parent];
    i = parent;
  }
  c->heap[i] = *h;
  return CL_OK;
}

/* Removes the earliest frame into *out (the heap must not be empty). */
static void heap_pop(sconn *c, held *out) {
  *out = c->heap[0];
  held last = c->heap[--c->n_held];
  uint32_t i = 0, n = c->n_held;
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    const held *best = &last;
    if (l < n && held_before(&c->heap[l], best)) {
      m = l;
      best = &c->heap[l];
    }
    if (r < n && held_before(&c->heap[r], best)) m = r;
    if (m == i) break;
    c->heap[i] = c->heap[m];
    i = m;
  }
  if (n > 0) c->heap[i] = last;
}

static void conn_drop_held(sconn *c) {
  c->s->st.held_now -= c->n_held;
  c->n_held = 0;
}
/* ---- writing ------------------------------------------------------------ */

static void on_written(uv_write_t *req, int status) {
  sconn *c = req->handle->data;
  free(req);
  if (status < 0 && status != UV_ECANCELED)
    conn_close(c, CL_LOG_WARN, "write failed", uv_strerror(status));
}

/*
 * Sends a whole frame: as much as the socket takes now, the rest copied into
 * a write request behind what is already queued (uv_try_write refuses while
 * a queue exists, so frames never overtake each other). Returns 0 or CL_E*
 * after closing the connection.
 */
static int conn_send(sconn *c, const uint8_t *buf, size_t len) {
  if (c->closing || !c->tcp_live) return CL_EIO;
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
  if (n < 0) {
    conn_close(c, CL_LOG_WARN, "write failed", uv_strerror(n));
    return CL_EIO;
  }
  if ((size_t)n == len) return CL_OK;
  size_t rest = len - (size_t)n;
  if (c->tcp.write_queue_size + rest > MAX_WRITE_QUEUE) {
    conn_close(c, CL_LOG_WARN, "landmark is not reading", "write queue full");
    return CL_ETOOBIG;
  }
  wreq *w = malloc(sizeof *w + rest);
  if (!w) {
    conn_close(c, CL_LOG_ERROR, "out of memory", "write");
    return CL_ENOMEM;
  }
  w->len = rest;
  memcpy(w->data, buf + n, rest);
  b = uv_buf_init((char *)w->data, (unsigned)rest);
  int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
  if (r < 0) {
    free(w);
    conn_close(c, CL_LOG_WARN, "write failed", uv_strerror(r));
    return CL_EIO;
  }
  return CL_OK;
}

/* Best effort: tells the landmark why we hang up; the caller closes. */
static void conn_send_error(sconn *c, cl_wire_error code, const char *text) {
  uint8_t buf[CL_MAX_ERROR_TEXT + 64];
  size_t len = 0;
  if (c->closing || !c->tcp_live || cl_msg_encode_error(code, text, buf, sizeof buf, &len) != CL_OK)
    return;
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
}

/* ---- closing and reconnecting --------------------------------------------- */

static void on_conn_timer(uv_timer_t *t);

/* Schedules the next attempt after a random delay in
 * [BACKOFF_MIN_MS, min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2^attempt)]. */
static void conn_backoff(sconn *c) {
  uint64_t lo = BACKOFF_MIN_MS, hi = BACKOFF_MAX_MS;
  unsigned shift = c->attempt < 16 ? c->attempt : 16;
  uint64_t cap = lo << shift;
  if (cap > hi) cap = hi;
  uint64_t delay = lo + randombytes_uniform((uint32_t)(cap - lo + 1));
  c->attempt++;
  c->s->st.reconnects++;
  c->state = C_IDLE;
  cl_log(CL_LOG_DEBUG, "reconnect scheduled", "landmark=%s conn=%u delay_ms=%llu attempt=%u",
         conn_lm(c)->name, c->index, (unsigned long long)delay, c->attempt);
  uv_timer_start(&c->timer, on_conn_timer, delay, 0);
}

static void on_tcp_closed(uv_handle_t *h) {
  sconn *c = h->data;
  sim *s = c->s;
  c->tcp_live = 0;
  c->closing = 0;
  cl_frame_asm_fini(&c->fa);
  uint64_t registered_for = c->state == C_REGISTERED ? uv_now(s->loop) - c->registered_ms : 0;
  if (s->stopping) return;
  if (c->retire) {
    c->state = C_RETIRED;
    s->st.retired++;
    return;
  }
  if (registered_for >= STABLE_SESSION_MS) c->attempt = 0;
  conn_backoff(c);
}

/*
 * Closes the current TCP connection (idempotent), drops its held frames,
 * ends the chips' sessions (wiping their keys) and logs why. The close callback schedules a
 * reconnect unless the simulator is stopping or the slot is retiring.
 */
static void conn_close(sconn *c, cl_log_level level, const char *why, const char *detail) {
  if (!c->tcp_live || c->closing) return;
  sim *s = c->s;
  c->closing = 1;
  uv_timer_stop(&c->timer);
  conn_drop_held(c);
  for (unsigned i = 0; i < c->n_slots; i++) cl_chipsess_end(&c->slots[i].sess);
  s->st.registered -= popcount64(c->accepted);
  c->accepted = c->claimed = 0;
  if (c->connected) {
    c->connected = 0;
    s->st.connections--;
  }
  uint64_t supp = 0;
  if (level < CL_LOG_WARN || s->stopping || may_warn(s, &supp))
    cl_log(level, "disconnected", "landmark=%s conn=%u reason=\"%s%s%s\" suppressed=%llu",
           conn_lm(c)->name, c->index, why, detail ? ": " : "", detail ? detail : "",
           (unsigned long long)supp);
  uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

/* ---- releasing held frames ---------------------------------------------- */

/* Programs the timerfd to expire at due_ns (absolute, CLOCK_MONOTONIC). */
static void wake_program(sim *s, uint64_t due_ns) {
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  if (due_ns == 0) due_ns = 1; /* 0 would disarm it */
  its.it_value.tv_sec = (time_t)(due_ns / 1000000000u);
  its.it_value.tv_nsec = (long)(due_ns % 1000000000u);
  if (timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0) s->armed_ns = due_ns;
}

/* Makes room for one more wake-up. 0 or CL_ENOMEM. */
static int wake_reserve(sim *s) {
  if (s->n_wakes < s->cap_wakes) return CL_OK;
  size_t cap = s->cap_wakes ? s->cap_wakes * 2 : 1024;
  wake *nw = realloc(s->wakes, cap * sizeof *nw);
  if (!nw) return CL_ENOMEM;
  s->wakes = nw;
  s->cap_wakes = cap;
  return CL_OK;
}

/* Adds a wake-up (room must have been reserved) and re-programs the timerfd
 * when it is the new earliest. */
static void wake_push(sim *s, uint64_t due_ns, uint32_t conn) {
  size_t i = s->n_wakes++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (s->wakes[parent].due_ns <= due_ns) break;
    s->wakes[i] = s->wakes[parent];
    i = parent;
  }
  s->wakes[i].due_ns = due_ns;
  s->wakes[i].conn = conn;
  if (due_ns < s->armed_ns) wake_program(s, due_ns);
}

static wake wake_pop(sim *s) {
  wake top = s->wakes[0], last = s->wakes[--s->n_wakes];
  size_t i = 0, n = s->n_wakes;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    uint64_t best = last.due_ns;
    if (l < n && s->wakes[l].due_ns < best) {
      m = l;
      best = s->wakes[l].due_ns;
    }
    if (r < n && s->wakes[r].due_ns < best) m = r;
    if (m == i) break;
    s->wakes[i] = s->wakes[m];
    i = m;
  }
  if (n > 0) s->wakes[i] = last;
  return top;
}

static const char *const HELD_NAMES[] = {"answer", "handshake signature", "transcript"};

/* Holds a frame's content until h->due_ns. 0, or CL_ETOOBIG / CL_ENOMEM
 * after counting it as dropped. */
static int conn_hold(sconn *c, held *h) {
  sim *s = c->s;
  h->order = c->order++;
  int rc = wake_reserve(s);
  if (rc == CL_OK) rc = heap_push(c, h);
  if (rc != CL_OK) {
    uint64_t supp = 0;
    s->st.dropped++;
    if (may_warn(s, &supp))
      cl_log(CL_LOG_WARN, "frame dropped",
             "landmark=%s conn=%u what=\"%s\" err=%s held=%u suppressed=%llu", conn_lm(c)->name,
             c->index, HELD_NAMES[h->kind], cl_strerror(rc), c->n_held, (unsigned long long)supp);
    return rc;
  }
  s->st.held_now++;
  wake_push(s, h->due_ns, c->index);
  return CL_OK;
}

/* Encodes one message into a frame and sends it. 0 or CL_E* after closing. */
static int conn_send_msg(sconn *c, const cl_msg *m) {
  size_t len = 0;
  int rc = cl_msg_encode(m, g_frame, sizeof g_frame, &len);
  if (rc != CL_OK) {
    conn_close(c, CL_LOG_ERROR, "cannot encode", cl_msg_type_name(m->type));
    return rc;
  }
  return conn_send(c, g_frame, len);
}

/* Sends the Confirm gathered in g_out and empties it. */
static int conn_send_confirm(sconn *c) {
  int rc = conn_send_msg(c, &g_out);
  if (rc == CL_OK) c->s->st.confirmed += g_out.u.confirm.n;
  g_out.u.confirm.n = 0;
  return rc;
}

/*
 * Writes every held frame that is due, in order of time: answers and
 * transcripts one frame each, the handshake signatures of one
 * RegisterResult gathered into one Confirm (they were held together).
 */
static void conn_release(sconn *c) {
  sim *s = c->s;
  uint64_t now = uv_hrtime();
  size_t n = 0;
  while (c->n_held > 0 && c->heap[0].due_ns <= now) {
    heap_pop(c, &g_release[n]);
    uint64_t lag = now - g_release[n].due_ns;
    if (lag > s->st.max_lag_ns) s->st.max_lag_ns = lag;
    if (lag > LATE_RELEASE_NS) s->st.late_releases++;
    n++;
    s->st.held_now--;
  }
  g_out.type = CL_MSG_CONFIRM;
  g_out.u.confirm.n = 0;
  uint64_t batch = 0;
  for (size_t i = 0; i < n && !c->closing; i++) {
    const held *h = &g_release[i];
    if (g_out.u.confirm.n > 0 && (h->kind != HELD_CONFIRM || h->seq != batch) &&
        conn_send_confirm(c) != CL_OK)
      return;
    const uint8_t *chip = chip_pk(s, c->slots[h->slot].chip);
    cl_msg *m = &g_one;
    switch ((held_kind)h->kind) {
    case HELD_ANSWER:
      m->type = CL_MSG_RESPONSE;
      memcpy(m->u.response.chip, chip, CL_PK_LEN);
      m->u.response.seq = h->seq;
      memcpy(m->u.response.mac, h->data, CL_MAC_LEN);
      if (conn_send_msg(c, m) != CL_OK) return;
      s->st.answered++;
      break;
    case HELD_TRANSCRIPT:
      m->type = CL_MSG_TRANSCRIPT;
      memcpy(m->u.transcript.chip, chip, CL_PK_LEN);
      m->u.transcript.first_seq = h->seq;
      memcpy(m->u.transcript.sig, h->data, CL_SIG_LEN);
      if (conn_send_msg(c, m) != CL_OK) return;
      s->st.transcripts++;
      break;
    case HELD_CONFIRM: {
      cl_chip_confirm *cf = &g_out.u.confirm.chips[g_out.u.confirm.n++];
      memcpy(cf->chip, chip, CL_PK_LEN);
      memcpy(cf->sig, h->data, CL_SIG_LEN);
      batch = h->seq;
      if (g_out.u.confirm.n == CL_MAX_CHIPS_PER_REGISTER && conn_send_confirm(c) != CL_OK) return;
      break;
    }
    }
  }
  if (g_out.u.confirm.n > 0 && !c->closing) conn_send_confirm(c);
}

static void conn_release_if_live(sconn *c) {
  if (c->tcp_live && !c->closing && c->n_held > 0) conn_release(c);
}

/* The timerfd expired: serves every wake-up that is due, then re-programs
 * the timerfd for the next (an expiry in the past fires at once). */
static void on_wake(uv_poll_t *h, int status, int events) {
  sim *s = h->data;
  uint64_t expirations;
  (void)events;
  if (status < 0) return;
  while (read(s->tfd, &expirations, sizeof expirations) > 0) {
  }
  s->armed_ns = NEVER;
  uint64_t now = uv_hrtime();
  while (s->n_wakes > 0 && s->wakes[0].due_ns <= now) {
    wake w = wake_pop(s);
    conn_release_if_live(s->conns[w.conn]);
  }
  if (s->n_wakes > 0) wake_program(s, s->wakes[0].due_ns);
}

static void on_conn_timer(uv_timer_t *t) {
  sconn *c = t->data;
  switch ((conn_state)c->state) {
  case C_IDLE: conn_open(c); break;
  case C_CONNECTING:
  case C_WAIT_HELLO:
  case C_WAIT_RESULT:
    conn_close(c, CL_LOG_WARN, "handshake timeout",
               c->state == C_CONNECTING ? "no connection" : "no registration");
    break;
  case C_REGISTERED:
  case C_RETIRED: break;
  }
}

/* ---- message handlers ----------------------------------------------------- */

/* Returns 1 if every chip the landmark accepted on c has gone dark. */
static int conn_all_dark(const sconn *c) {
  for (unsigned i = 0; i < c->n_slots; i++)
    if ((c->accepted >> i & 1) && !chip_is_dark(c->s, c->slots[i].chip)) return 0;
  return 1;
}

/* A dark chip ignores whatever it is sent; once every chip the landmark
 * accepted here is dark, the whole host is: it hangs up and stays away. */
static void dark_ignore(sconn *c) {
  c->s->st.dark_ignored++;
  if (conn_all_dark(c)) {
    c->retire = 1;
    conn_close(c, CL_LOG_INFO, "all chips dark", NULL);
  }
}

/* The slot of a chip with a session the landmark accepted on c, or -1. */
static int conn_find(const sconn *c, const uint8_t chip[CL_PK_LEN]) {
  for (unsigned i = 0; i < c->n_slots; i++)
    if ((c->accepted >> i & 1) && memcmp(chip_pk(c->s, c->slots[i].chip), chip, CL_PK_LEN) == 0)
      return (int)i;
  return -1;
}

/* Counts and logs (rate-limited) a message about a chip that has no
 * session here; it is not answered. */
static void unknown_chip(sconn *c, const char *what, const uint8_t chip[CL_PK_LEN]) {
  sim *s = c->s;
  uint64_t supp = 0;
  s->st.unknown_chip++;
  if (may_warn(s, &supp)) {
    char hex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(chip, hex);
    cl_log(CL_LOG_WARN, "message for a chip without a session not answered",
           "landmark=%s conn=%u what=%s chip_id=%s suppressed=%llu", conn_lm(c)->name, c->index,
           what, hex, (unsigned long long)supp);
  }
}

/*
 * A challenge: the chip's MAC under the session key, computed at once and
 * held until t_recv plus the simulated round trip. A relayed chip's MAC
 * comes from the chip far away (the relay holds no key), so its hold is
 * that of its true position, like a smuggled chip's.
 */
static void on_challenge(sconn *c, const cl_msg *m, uint64_t t_recv) {
  sim *s = c->s;
  s->st.challenges++;
  int slot = conn_find(c, m->u.challenge.chip);
  if (slot < 0) {
    unknown_chip(c, "challenge", m->u.challenge.chip);
    return;
  }
  conn_slot *sl = &c->slots[slot];
  if (chip_is_dark(s, sl->chip)) {
    dark_ignore(c);
    return;
  }
  held h;
  h.kind = HELD_ANSWER;
  h.slot = (uint8_t)slot;
  h.seq = m->u.challenge.seq;
  /* Not established: a rekey is under way, the old key is gone. */
  if (cl_chipsess_answer(&sl->sess, h.seq, m->u.challenge.nonce, h.data) != CL_OK) {
    unknown_chip(c, "challenge", m->u.challenge.chip);
    return;
  }
  const sim_chip *chip = &s->chips[sl->chip];
  uint64_t rtt = s->moved && chip->moves ? sl->rtt_moved_ns : sl->rtt_ns;
  uint64_t hold = rtt + (uint64_t)chip->extra_delay_us * 1000u;
  if (s->jitter_ns > 0) hold += randombytes_uniform((uint32_t)s->jitter_ns + 1); /* <= 1e9 */
  h.due_ns = t_recv + hold;
  conn_hold(c, &h);
}

/*
 * The end of a burst: the chip signs the transcript of the probes named,
 * each with the nonce and MAC it answered with, and the Transcript is held
 * for the signing delay. A BurstEnd naming a probe the chip did not answer
 * in this session is refused: the chip signs only what it answered.
 */
static void on_burst_end(sconn *c, const cl_msg *m) {
  sim *s = c->s;
  int slot = conn_find(c, m->u.burst_end.chip);
  if (slot < 0) {
    unknown_chip(c, "burst_end", m->u.burst_end.chip);
    return;
  }
  conn_slot *sl = &c->slots[slot];
  if (chip_is_dark(s, sl->chip)) {
    dark_ignore(c);
    return;
  }
  cl_probe_entry e[CL_MAX_BURST];
  size_t n = m->u.burst_end.n;
  uint8_t layout[CL_TRANSCRIPT_LAYOUT_MAX];
  size_t llen = 0;
  int rc = cl_chipsess_transcript(&sl->sess, m->u.burst_end.seqs, n, e);
  if (rc == CL_OK && (llen = cl_layout_transcript(layout, &sl->sess.hs, e, n)) == 0) rc = CL_EINVAL;
  if (rc != CL_OK) {
    uint64_t supp = 0;
    s->st.burst_refused++;
    if (may_warn(s, &supp))
      cl_log(CL_LOG_WARN, "burst end refused, no transcript",
             "landmark=%s conn=%u index=%" PRIu64 " first_seq=%" PRIu64
             " probes=%zu err=%s suppressed=%llu",
             conn_lm(c)->name, c->index, s->chips[sl->chip].key_index, m->u.burst_end.seqs[0], n,
             cl_strerror(rc), (unsigned long long)supp);
    return;
  }
  held h;
  h.kind = HELD_TRANSCRIPT;
  h.slot = (uint8_t)slot;
  h.seq = m->u.burst_end.seqs[0];
  chip_sign(s, sl->chip, layout, llen, h.data);
  h.due_ns = uv_hrtime() + s->sign_delay_ns;
  conn_hold(c, &h);
}

/* Sends the Register built in g_out with n offers. 0 or CL_E* after closing. */
static int conn_send_register(sconn *c, size_t n) {
  g_out.type = CL_MSG_REGISTER;
  snprintf(g_out.u.reg.agent, sizeof g_out.u.reg.agent, "fleetsim-%u", c->index);
  g_out.u.reg.suite = c->suite;
  g_out.u.reg.n = n;
  return conn_send_msg(c, &g_out);
}

/* Rekey: a fresh offer for the chip (its old session and key end here),
 * sent at once; an offer is no identity signature. */
static void on_rekey(sconn *c, const cl_msg *m) {
  sim *s = c->s;
  int slot = conn_find(c, m->u.rekey.chip);
  if (slot < 0) {
    unknown_chip(c, "rekey", m->u.rekey.chip);
    return;
  }
  conn_slot *sl = &c->slots[slot];
  if (chip_is_dark(s, sl->chip)) {
    dark_ignore(c);
    return;
  }
  if (cl_chipsess_offer(&sl->sess, c->suite, conn_lm(c)->pk, chip_pk(s, sl->chip),
                        &g_out.u.reg.chips[0]) != CL_OK) {
    conn_close(c, CL_LOG_ERROR, "cannot make an offer", cl_suite_name(c->suite));
    return;
  }
  if (conn_send_register(c, 1) == CL_OK) s->st.rekeys++;
}

static void on_hello(sconn *c, const cl_msg *m) {
  sim *s = c->s;
  const sim_landmark *lm = conn_lm(c);
  if (memcmp(m->u.hello.landmark, lm->pk, CL_PK_LEN) != 0) {
    uint64_t supp = 0;
    if (may_warn(s, &supp)) {
      char want[CL_PK_HEX_LEN + 1], got[CL_PK_HEX_LEN + 1];
      cl_pk_to_hex(lm->pk, want);
      cl_pk_to_hex(m->u.hello.landmark, got);
      cl_log(CL_LOG_ERROR, "landmark key mismatch",
             "landmark=%s conn=%u pinned=%s presented=%s suppressed=%llu", lm->name, c->index, want,
             got, (unsigned long long)supp);
    }
    conn_send_error(c, CL_ERR_BAD_LANDMARK, "landmark id is not the pinned key");
    conn_close(c, CL_LOG_ERROR, "landmark key mismatch", NULL);
    return;
  }
  if (!cl_suite_known(m->u.hello.suite)) {
    char text[CL_MAX_ERROR_TEXT + 1];
    snprintf(text, sizeof text, "cipher suite %" PRIu32 " is unknown; this agent speaks %u (%s)",
             m->u.hello.suite, CL_SUITE_ED25519_X25519, cl_suite_name(CL_SUITE_ED25519_X25519));
    conn_send_error(c, CL_ERR_SUITE, text);
    conn_close(c, CL_LOG_ERROR, "unknown cipher suite", text);
    return;
  }
  c->suite = m->u.hello.suite;
  size_t n = 0;
  for (unsigned i = 0; i < c->n_slots; i++) {
    if (!(c->claimed >> i & 1)) continue;
    conn_slot *sl = &c->slots[i];
    /* Cannot fail: the suite is known. */
    (void)cl_chipsess_offer(&sl->sess, c->suite, lm->pk, chip_pk(s, sl->chip),
                            &g_out.u.reg.chips[n++]);
  }
  if (conn_send_register(c, n) != CL_OK) return;
  c->state = C_WAIT_RESULT;
  cl_frame_asm_set_max(&c->fa, CL_FRAME_MAX);
}

/* Logs (rate-limited) a result that gives the chip no session. */
static void log_refused(sconn *c, const cl_chip_result *r, int slot) {
  sim *s = c->s;
  uint64_t supp = 0;
  if (!may_warn(s, &supp)) return;
  char hex[CL_PK_HEX_LEN + 1], detail[CL_MAX_DETAIL * 4 + 3];
  cl_pk_to_hex(r->chip, hex);
  cl_log_quote(detail, sizeof detail, r->detail, strlen(r->detail));
  long long idx = slot >= 0 ? (long long)s->chips[c->slots[slot].chip].key_index : -1;
  cl_log(CL_LOG_WARN, "chip refused",
         "landmark=%s conn=%u index=%lld chip_id=%s reason=%s detail=%s suppressed=%llu",
         conn_lm(c)->name, c->index, idx, hex,
         r->accepted ? "unknown_result" : cl_refuse_reason_name(r->reason), detail,
         (unsigned long long)supp);
}

/*
 * The landmark's halves of the handshakes offered (after Hello, or after a
 * Rekey). Each accepted chip checks the landmark's handshake signature
 * under the pinned key and derives the session key (cl_chipsess_accept); a
 * bad signature ends the connection with ERROR_BAD_LANDMARK. Then it signs
 * the chip handshake layout; the signatures of this RegisterResult are held
 * together for the signing delay and leave as one Confirm.
 */
static void on_register_result(sconn *c, const cl_msg *m) {
  sim *s = c->s;
  const sim_landmark *lm = conn_lm(c);
  unsigned accepted = 0, refused = 0;
  static held confirms[MAX_CHIPS_PER_CONN];
  size_t n_confirms = 0;
  for (size_t i = 0; i < m->u.reg_result.n; i++) {
    const cl_chip_result *r = &m->u.reg_result.r[i];
    int slot = -1;
    for (unsigned j = 0; j < c->n_slots; j++) {
      if (c->slots[j].sess.state == CL_CHIPSESS_OFFERED &&
          memcmp(chip_pk(s, c->slots[j].chip), r->chip, CL_PK_LEN) == 0) {
        slot = (int)j;
        break;
      }
    }
    uint64_t bit = slot >= 0 ? UINT64_C(1) << slot : 0;
    if (r->accepted && slot >= 0) {
      conn_slot *sl = &c->slots[slot];
      cl_handshake hs;
      int rc = cl_chipsess_accept(&sl->sess, r, &hs);
      if (rc != CL_OK) {
        char hex[CL_PK_HEX_LEN + 1], text[CL_MAX_ERROR_TEXT + 1];
        cl_pk_to_hex(r->chip, hex);
        snprintf(text, sizeof text, "chip %.16s: landmark handshake signature does not verify",
                 hex);
        s->st.bad_landmark_sig++;
        cl_log(CL_LOG_ERROR, "bad landmark signature",
               "landmark=%s conn=%u index=%" PRIu64 " err=%s", lm->name, c->index,
               s->chips[sl->chip].key_index, cl_strerror(rc));
        conn_send_error(c, CL_ERR_BAD_LANDMARK, text);
        conn_close(c, CL_LOG_ERROR, "bad landmark signature", NULL);
        return;
      }
      uint8_t layout[CL_HS_CHIP_LAYOUT_LEN];
      size_t llen = cl_layout_hs_chip(layout, &hs);
      held *h = &confirms[n_confirms++];
      h->kind = HELD_CONFIRM;
      h->slot = (uint8_t)slot;
      chip_sign(s, sl->chip, layout, llen, h->data);
      cl_chipsess_confirmed(&sl->sess, h->data);
      if (!(c->accepted & bit)) {
        c->accepted |= bit;
        s->st.registered++;
      }
      accepted++;
      continue;
    }
    refused++;
    s->st.refused++;
    if (slot >= 0) {
      cl_chipsess_end(&c->slots[slot].sess);
      if (c->accepted & bit) {
        c->accepted &= ~bit;
        s->st.registered--;
      }
    }
    log_refused(c, r, slot);
  }
  /* Signed one after the other on the loop; all complete sign_delay later. */
  uint64_t due = uv_hrtime() + s->sign_delay_ns, batch = ++s->confirm_batch;
  for (size_t i = 0; i < n_confirms; i++) {
    confirms[i].due_ns = due;
    confirms[i].seq = batch;
    conn_hold(c, &confirms[i]);
  }
  if (c->accepted == 0) {
    conn_close(c, CL_LOG_WARN, "no chip accepted", NULL);
    return;
  }
  if (c->state == C_REGISTERED) return;
  c->state = C_REGISTERED;
  c->registered_ms = uv_now(s->loop);
  uv_timer_stop(&c->timer);
  cl_log(CL_LOG_DEBUG, "registered", "landmark=%s conn=%u accepted=%u refused=%u", lm->name,
         c->index, accepted, refused);
}

static void on_error_msg(sconn *c, const cl_msg *m) {
  sim *s = c->s;
  cl_wire_error code = m->u.error.code;
  char text[CL_MAX_ERROR_TEXT * 4 + 3];
  cl_log_quote(text, sizeof text, m->u.error.text, strlen(m->u.error.text));
  uint64_t supp = 0;
  switch (code) {
  case CL_ERR_UNKNOWN_PROBE:
  case CL_ERR_REPLAY:
  case CL_ERR_LATE:
  case CL_ERR_BAD_MAC:
  case CL_ERR_NOT_REGISTERED:
  case CL_ERR_BAD_HANDSHAKE:
  case CL_ERR_BAD_TRANSCRIPT:
  case CL_ERR_LIMIT:
    /* About one answer, burst or chip (a limit may also be the
     * connection's: then the landmark closes it); the session goes on. */
    s->st.rejected++;
    if (may_warn(s, &supp))
      cl_log(CL_LOG_WARN, "landmark error", "landmark=%s conn=%u code=%s text=%s suppressed=%llu",
             conn_lm(c)->name, c->index, cl_wire_error_name(code), text, (unsigned long long)supp);
    return;
  default:
    if (may_warn(s, &supp))
      cl_log(CL_LOG_WARN, "landmark error", "landmark=%s conn=%u code=%s text=%s suppressed=%llu",
             conn_lm(c)->name, c->index, cl_wire_error_name(code), text, (unsigned long long)supp);
    conn_close(c, CL_LOG_DEBUG, "landmark sent error", cl_wire_error_name(code));
    return;
  }
}

static void conn_on_frame(sconn *c, const uint8_t *frame, size_t len, uint64_t t_recv) {
  cl_msg *m = &g_msg;
  char err[160];
  int rc = cl_msg_decode(frame, len, m, err, sizeof err);
  if (rc == CL_OK && m->type == CL_MSG_CHALLENGE && c->state == C_REGISTERED) {
    on_challenge(c, m, t_recv);
    return;
  }
  uint64_t supp = 0;
  if (rc == CL_EUNKNOWNMSG) {
    if (may_warn(c->s, &supp))
      cl_log(CL_LOG_WARN, "unknown message ignored", "landmark=%s conn=%u suppressed=%llu",
             conn_lm(c)->name, c->index, (unsigned long long)supp);
    return;
  }
  if (rc == CL_EVERSION) {
    char text[CL_MAX_ERROR_TEXT + 1];
    snprintf(text, sizeof text, "protocol version %" PRIu32 ", this side speaks %u", m->version,
             CL_PROTOCOL_VERSION);
    conn_send_error(c, CL_ERR_VERSION, text);
    conn_close(c, CL_LOG_ERROR, "protocol version mismatch", text);
    return;
  }
  if (rc != CL_OK) {
    conn_close(c, CL_LOG_ERROR, "malformed frame", err);
    return;
  }
  switch (m->type) {
  case CL_MSG_ERROR: on_error_msg(c, m); return;
  case CL_MSG_HELLO:
    if (c->state != C_WAIT_HELLO) break;
    on_hello(c, m);
    return;
  case CL_MSG_REGISTER_RESULT:
    if (c->state != C_WAIT_RESULT && c->state != C_REGISTERED) break;
    on_register_result(c, m);
    return;
  case CL_MSG_BURST_END:
    if (c->state != C_REGISTERED) break;
    on_burst_end(c, m);
    return;
  case CL_MSG_REKEY:
    if (c->state != C_REGISTERED) break;
    on_rekey(c, m);
    return;
  default: break;
  }
  conn_send_error(c, CL_ERR_UNEXPECTED, cl_msg_type_name(m->type));
  conn_close(c, CL_LOG_ERROR, "unexpected message", cl_msg_type_name(m->type));
}

/* ---- reading -------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = (char *)g_rbuf;
  buf->len = sizeof g_rbuf;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  uint64_t t_recv = uv_hrtime(); /* first thing: the hold counts from here */
  sconn *c = st->data;
  if (nread == 0) return; /* EAGAIN, not EOF */
  if (nread < 0) {
    conn_close(c, CL_LOG_WARN, nread == UV_EOF ? "landmark closed the connection" : "read failed",
               nread == UV_EOF ? NULL : uv_strerror((int)nread));
    return;
  }
  const uint8_t *data = (const uint8_t *)buf->base;
  size_t left = (size_t)nread;
  while (left > 0 && !c->closing) {
    size_t used = 0, flen = 0;
    const uint8_t *frame = NULL;
    int r = cl_frame_asm_feed(&c->fa, data, left, &used, &frame, &flen);
    data += used;
    left -= used;
    if (r == 0) break;
    if (r < 0) {
      conn_close(c, CL_LOG_ERROR, "bad frame", cl_strerror(r));
      break;
    }
    conn_on_frame(c, frame, flen, t_recv);
  }
}

/* ---- connecting ----------------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status) {
  sconn *c = req->data;
  if (status == UV_ECANCELED || c->closing) return;
  if (status < 0) {
    conn_close(c, CL_LOG_WARN, "connect", uv_strerror(status));
    return;
  }
  c->connected = 1;
  c->s->st.connections++;
  c->state = C_WAIT_HELLO;
  uv_tcp_nodelay(&c->tcp, 1);
  int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (r < 0) conn_close(c, CL_LOG_WARN, "read start", uv_strerror(r));
}

/* Binds the socket to the connection's source address (with the port left
 * to connect(), so ports are only unique per destination). 0 or libuv error. */
static int conn_bind(sconn *c) {
  sim *s = c->s;
  struct sockaddr_in src;
  memset(&src, 0, sizeof src);
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(s->bind_base + c->index % s->bind_count);
  uv_os_fd_t fd;
  int r = uv_fileno((uv_handle_t *)&c->tcp, &fd);
  if (r < 0) return r;
  int one = 1;
  (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  return uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
}

/*
 * One connection attempt for the slot: registers the chips that are not dark
 * yet (none left: the slot retires). Whatever happens, the slot ends up
 * connected, or back in IDLE with a reconnect scheduled.
 */
static void conn_open(sconn *c) {
  sim *s = c->s;
  if (s->stopping) return;
  c->claimed = 0;
  for (unsigned i = 0; i < c->n_slots; i++)
    if (!chip_is_dark(s, c->slots[i].chip)) c->claimed |= UINT64_C(1) << i;
  if (c->claimed == 0) {
    c->state = C_RETIRED;
    s->st.retired++;
    return;
  }
  const sim_landmark *lm = conn_lm(c);
  int r = s->bind ? uv_tcp_init_ex(s->loop, &c->tcp, AF_INET) : uv_tcp_init(s->loop, &c->tcp);
  if (r < 0) {
    uint64_t supp = 0;
    if (may_warn(s, &supp))
      cl_log(CL_LOG_WARN, "cannot create socket", "landmark=%s conn=%u err=\"%s\" suppressed=%llu",
             lm->name, c->index, uv_strerror(r), (unsigned long long)supp);
    conn_backoff(c);
    return;
  }
  c->tcp.data = c;
  c->tcp_live = 1;
  c->closing = 0;
  c->connected = 0;
  c->accepted = 0;
  c->order = 0;
  cl_frame_asm_init(&c->fa, CL_FRAME_MAX_UNREGISTERED);
  c->state = C_CONNECTING;
  uv_timer_start(&c->timer, on_conn_timer, HANDSHAKE_TIMEOUT_MS, 0);
  if (s->bind && (r = conn_bind(c)) < 0) {
    conn_close(c, CL_LOG_WARN, "bind", uv_strerror(r));
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->creq.data = c;
  r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&lm->sa, on_connect);
  if (r < 0) conn_close(c, CL_LOG_WARN, "connect", uv_strerror(r));
}

/* ---- loading the inputs ---------------------------------------------------- */

static int parse_u64(const char *text, uint64_t max, uint64_t *out) {
  if (!text || !*text) return CL_EINVAL;
  for (const char *p = text; *p; p++)
    if (*p < '0' || *p > '9') return CL_EINVAL;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || *end || v > max) return CL_EINVAL;
  *out = v;
  return CL_OK;
}

/* A numeric column that may be left empty (taken as 0). */
static int opt_number(const cl_csv *csv, int col, double max, double *out, char *err,
                      size_t errlen) {
  const char *f = cl_csv_field(csv, col);
  if (f && *f == '\0') {
    *out = 0;
    return CL_OK;
  }
  return cl_csv_number(csv, col, 0, max, 0, out, err, errlen);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/*
 * Reads FLEET.csv (index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s,
 * and optionally move_to_lat,move_to_lon) into s->chips and derives every
 * chip's key into s->sk. Returns 0, or CL_EMALFORMED / CL_EIO / CL_ETOOBIG /
 * CL_ENOMEM with err naming file and line.
 */
static int load_fleet(sim *s, char *err, size_t errlen) {
  cl_csv *csv = NULL;
  int rc = cl_csv_open(&csv, s->fleet_path, err, errlen);
  if (rc != CL_OK) return rc;
  static const char *const cols[] = {"index", "true_lat",       "true_lon",
                                     "mode",  "extra_delay_ms", "dark_after_s"};
  int idx[6];
  rc = cl_csv_require(csv, cols, 6, idx, err, errlen);
  /* The destination columns are optional, but one without the other is a
   * mistake. */
  int to_lat = cl_csv_column(csv, "move_to_lat"), to_lon = cl_csv_column(csv, "move_to_lon");
  if (rc == CL_OK && (to_lat < 0) != (to_lon < 0)) {
    snprintf(err, errlen, "%s:1: header: move_to_lat and move_to_lon go together",
             s->fleet_path);
    rc = CL_EMALFORMED;
  }
  size_t cap = 0;
  while (rc == CL_OK && (rc = cl_csv_next(csv, err, errlen)) == 1) {
    rc = CL_OK;
    const char *name = cl_csv_name(csv);
    size_t line = cl_csv_line(csv);
    if (s->n_chips == MAX_CHIPS) {
      snprintf(err, errlen, "%s:%zu: more than %u chips", name, line, MAX_CHIPS);
      rc = CL_ETOOBIG;
      break;
    }
    if (s->n_chips == cap) {
      size_t ncap = cap ? cap * 2 : 1024;
      sim_chip *nc = realloc(s->chips, ncap * sizeof *nc);
      if (!nc) {
        rc = CL_ENOMEM;
        break;
      }
      s->chips = nc;
      cap = ncap;
    }
    sim_chip *ch = &s->chips[s->n_chips];
    memset(ch, 0, sizeof *ch);
    const char *f = cl_csv_field(csv, idx[0]);
    if (parse_u64(f, INT64_MAX, &ch->key_index) != CL_OK) {
      snprintf(err, errlen, "%s:%zu: column index: \"%.40s\" is not an integer in [0, 2^63)", name,
               line, f);
      rc = CL_EMALFORMED;
      break;
    }
    double extra = 0, dark = 0;
    if ((rc = cl_csv_number(csv, idx[1], -90, 90, 0, &ch->lat, err, errlen)) != CL_OK ||
        (rc = cl_csv_number(csv, idx[2], -180, 180, 0, &ch->lon, err, errlen)) != CL_OK ||
        (rc = opt_number(csv, idx[4], MAX_EXTRA_DELAY_MS, &extra, err, errlen)) != CL_OK ||
        (rc = opt_number(csv, idx[5], MAX_DARK_AFTER_S, &dark, err, errlen)) != CL_OK)
      break;
    f = cl_csv_field(csv, idx[3]);
    int mode = -1;
    for (int m = 0; m < (int)(sizeof MODE_NAMES / sizeof MODE_NAMES[0]); m++)
      if (strcmp(f, MODE_NAMES[m]) == 0) mode = m;
    if (mode < 0) {
      snprintf(err, errlen,
               "%s:%zu: column mode: \"%.40s\" is not one of honest, smuggled, relay, delay, dark",
               name, line, f);
      rc = CL_EMALFORMED;
      break;
    }
    if (extra > 0 && mode != MODE_DELAY) {
      snprintf(err, errlen,
               "%s:%zu: column extra_delay_ms: must be 0 or empty unless mode is delay", name,
               line);
      rc = CL_EMALFORMED;
      break;
    }
    if (dark > 0 && mode != MODE_DARK) {
      snprintf(err, errlen, "%s:%zu: column dark_after_s: must be 0 or empty unless mode is dark",
               name, line);
      rc = CL_EMALFORMED;
      break;
    }
    if (to_lat >= 0) {
      const char *a = cl_csv_field(csv, to_lat), *b = cl_csv_field(csv, to_lon);
      if (*a || *b) {
        if ((rc = cl_csv_number(csv, to_lat, -90, 90, 0, &ch->to_lat, err, errlen)) != CL_OK ||
            (rc = cl_csv_number(csv, to_lon, -180, 180, 0, &ch->to_lon, err, errlen)) != CL_OK)
          break;
        ch->moves = 1;
      }
    }
    ch->mode = (uint8_t)mode;
    ch->extra_delay_us = (uint32_t)ceil(extra * 1000.0);
    ch->dark_after_ms = mode == MODE_DARK ? (uint64_t)ceil(dark * 1000.0) : NEVER;
    s->n_chips++;
  }
  if (rc == 0 && s->n_chips == 0) {
    snprintf(err, errlen, "%s: no chips", s->fleet_path);
    rc = CL_EMALFORMED;
  }
  cl_csv_close(&csv);
  if (rc != CL_OK) {
    if (rc == CL_ENOMEM) snprintf(err, errlen, "%s: out of memory", s->fleet_path);
    return rc;
  }
  /* Two rows with one index would be one chip twice. */
  uint64_t *ix = malloc(s->n_chips * sizeof *ix);
  if (!ix) return CL_ENOMEM;
  for (size_t i = 0; i < s->n_chips; i++) ix[i] = s->chips[i].key_index;
  qsort(ix, s->n_chips, sizeof *ix, cmp_u64);
  for (size_t i = 1; i < s->n_chips; i++) {
    if (ix[i] == ix[i - 1]) {
      snprintf(err, errlen, "%s: index %" PRIu64 " appears twice", s->fleet_path, ix[i]);
      free(ix);
      return CL_EMALFORMED;
    }
  }
  free(ix);
  s->sk = sodium_malloc(s->n_chips * CL_SK_LEN);
  if (!s->sk) return CL_ENOMEM;
  for (size_t i = 0; i < s->n_chips; i++) {
    uint8_t seed[32], pk[CL_PK_LEN];
    derive_seed(s->seed, s->chips[i].key_index, seed);
    crypto_sign_seed_keypair(pk, s->sk + i * CL_SK_LEN, seed);
    sodium_memzero(seed, sizeof seed);
  }
  return CL_OK;
}

/*
 * Reads LANDMARKS.csv (name,address,public_key,lat,lon) and resolves each
 * address once. Returns 0 or CL_EMALFORMED / CL_EIO / CL_ENOMEM with err.
 */
static int load_landmarks(sim *s, char *err, size_t errlen) {
  cl_csv *csv = NULL;
  int rc = cl_csv_open(&csv, s->landmarks_path, err, errlen);
  if (rc != CL_OK) return rc;
  static const char *const cols[] = {"name", "address", "public_key", "lat", "lon"};
  int idx[5];
  rc = cl_csv_require(csv, cols, 5, idx, err, errlen);
  if (rc == CL_OK) {
    s->lms = calloc(MAX_LANDMARKS, sizeof *s->lms);
    if (!s->lms) rc = CL_ENOMEM;
  }
  while (rc == CL_OK && (rc = cl_csv_next(csv, err, errlen)) == 1) {
    rc = CL_EMALFORMED;
    const char *name = cl_csv_name(csv);
    size_t line = cl_csv_line(csv);
    if (s->n_lm == MAX_LANDMARKS) {
      snprintf(err, errlen, "%s:%zu: more than %u landmarks", name, line, MAX_LANDMARKS);
      break;
    }
    sim_landmark *lm = &s->lms[s->n_lm];
    const char *f = NULL;
    if (cl_csv_name_field(csv, idx[0], &f, err, errlen) != CL_OK) break;
    if (strlen(f) > CL_CONFIG_NAME_MAX) {
      snprintf(err, errlen, "%s:%zu: column name: longer than %d characters", name, line,
               CL_CONFIG_NAME_MAX);
      break;
    }
    snprintf(lm->name, sizeof lm->name, "%s", f);
    int dup = 0;
    for (size_t j = 0; j < s->n_lm; j++) dup |= strcmp(s->lms[j].name, lm->name) == 0;
    if (dup) {
      snprintf(err, errlen, "%s:%zu: column name: landmark %s appears twice", name, line, lm->name);
      break;
    }
    f = cl_csv_field(csv, idx[1]);
    char host[CL_CONFIG_HOST_MAX];
    int port = 0;
    if (cl_parse_hostport(f, host, sizeof host, &port) != CL_OK) {
      snprintf(err, errlen, "%s:%zu: column address: \"%.80s\" is not HOST:PORT", name, line, f);
      break;
    }
    snprintf(lm->addr, sizeof lm->addr, "%s", f);
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = s->bind ? AF_INET : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, portstr, &hints, &ai);
    if (g != 0 || !ai) {
      snprintf(err, errlen, "%s:%zu: column address: cannot resolve %s: %s", name, line, host,
               gai_strerror(g));
      rc = CL_EIO;
      break;
    }
    memcpy(&lm->sa, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    f = cl_csv_field(csv, idx[2]);
    if (cl_pk_from_hex(f, lm->pk) != CL_OK || cl_pk_check(lm->pk) != CL_OK) {
      snprintf(err, errlen, "%s:%zu: column public_key: not a valid Ed25519 public key in hex",
               name, line);
      break;
    }
    if (cl_csv_number(csv, idx[3], -90, 90, 0, &lm->lat, err, errlen) != CL_OK ||
        cl_csv_number(csv, idx[4], -180, 180, 0, &lm->lon, err, errlen) != CL_OK)
      break;
    s->n_lm++;
    rc = CL_OK;
  }
  if (rc == 0 && s->n_lm == 0) {
    snprintf(err, errlen, "%s: no landmarks", s->landmarks_path);
    rc = CL_EMALFORMED;
  }
  if (rc == CL_ENOMEM) snprintf(err, errlen, "%s: out of memory", s->landmarks_path);
  cl_csv_close(&csv);
  return rc;
}

/* ---- set-up and shutdown ------------------------------------------------------ */

/* The physical round trip from (lat, lon) to landmark lm at the simulated
 * speed, rounded up to the nanosecond, into *out. Returns 0, or CL_EINVAL
 * (err says why) beyond an hour. */
static int round_trip_ns(const sim *s, const sim_chip *ch, double lat, double lon,
                         const sim_landmark *lm, uint64_t *out, char *err, size_t errlen) {
  double d = cl_geo_distance_m(lat, lon, lm->lat, lm->lon);
  double rtt = ceil(2.0 * d / s->speed * 1e9);
  if (!(rtt >= 0) || rtt > 3600e9) {
    snprintf(err, errlen, "chip index %" PRIu64 ": round trip to %s of %g s is out of range",
             ch->key_index, lm->name, rtt / 1e9);
    return CL_EINVAL;
  }
  *out = (uint64_t)rtt;
  return CL_OK;
}

/* Creates every connection slot: per landmark, chips [j*K, (j+1)*K) on slot j.
 * Returns 0 or CL_ENOMEM / CL_EINVAL (err says why). */
static int build_conns(sim *s, char *err, size_t errlen) {
  size_t per_lm = (s->n_chips + s->k - 1) / s->k;
  s->n_conns = per_lm * s->n_lm;
  if (s->n_conns > UINT32_MAX) return CL_EINVAL;
  s->conns = calloc(s->n_conns, sizeof *s->conns);
  if (!s->conns) return CL_ENOMEM;
  size_t gi = 0;
  /* Interleave landmarks so that start-up opens towards all of them at once. */
  for (size_t j = 0; j < per_lm; j++) {
    for (size_t l = 0; l < s->n_lm; l++) {
      size_t first = j * s->k, n = s->n_chips - first < s->k ? s->n_chips - first : s->k;
      sconn *c = calloc(1, sizeof *c + n * sizeof(conn_slot));
      if (!c) return CL_ENOMEM;
      s->conns[gi] = c;
      c->s = s;
      c->index = (uint32_t)gi;
      c->lm = (uint16_t)l;
      c->n_slots = (uint8_t)n;
      const sim_landmark *lm = &s->lms[l];
      for (size_t i = 0; i < n; i++) {
        const sim_chip *ch = &s->chips[first + i];
        conn_slot *sl = &c->slots[i];
        int rc = round_trip_ns(s, ch, ch->lat, ch->lon, lm, &sl->rtt_ns, err, errlen);
        if (rc == CL_OK && ch->moves)
          rc = round_trip_ns(s, ch, ch->to_lat, ch->to_lon, lm, &sl->rtt_moved_ns, err, errlen);
        if (rc != CL_OK) return rc;
        c->slots[i].chip = (uint32_t)(first + i);
        cl_chipsess_init(&c->slots[i].sess, c->slots[i].key);
      }
      uv_timer_init(s->loop, &c->timer);
      c->timer.data = c;
      gi++;
    }
  }
  return CL_OK;
}

static void on_stats_timer(uv_timer_t *t) { log_stats(t->data, "periodic"); }

/* Stops everything: the loop ends once every handle has closed. */
static void sim_stop(sim *s) {
  if (s->stopping) return;
  s->stopping = 1;
  log_stats(s, "exit");
  uv_close((uv_handle_t *)&s->stats_timer, NULL);
  uv_close((uv_handle_t *)&s->stop_timer, NULL);
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_close((uv_handle_t *)&s->sigusr1, NULL);
  uv_close((uv_handle_t *)&s->tpoll, NULL);
  for (size_t i = 0; i < s->n_conns; i++) {
    sconn *c = s->conns[i];
    if (!c) continue;
    conn_close(c, CL_LOG_DEBUG, "shutting down", NULL);
    uv_close((uv_handle_t *)&c->timer, NULL);
  }
}

static void on_signal(uv_signal_t *h, int signum) {
  cl_log(CL_LOG_INFO, "shutting down", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  sim_stop(h->data);
}

/* SIGUSR1: the chips with a destination are there from now on. Once: a
 * later SIGUSR1 is logged and changes nothing. */
static void on_move_signal(uv_signal_t *h, int signum) {
  (void)signum;
  sim *s = h->data;
  if (s->moved) {
    cl_log(CL_LOG_WARN, "chips already moved", "signal=SIGUSR1");
    return;
  }
  s->moved = 1;
  size_t n = 0;
  for (size_t i = 0; i < s->n_chips; i++) n += s->chips[i].moves;
  cl_log(CL_LOG_INFO, "chips moved", "chips=%zu signal=SIGUSR1", n);
}

static void on_stop_timer(uv_timer_t *t) {
  cl_log(CL_LOG_INFO, "shutting down", "reason=duration");
  sim_stop(t->data);
}

static void sim_free(sim *s) {
  for (size_t i = 0; s->conns && i < s->n_conns; i++) {
    if (!s->conns[i]) continue;
    cl_frame_asm_fini(&s->conns[i]->fa);
    free(s->conns[i]->heap);
    free(s->conns[i]);
  }
  free(s->conns);
  free(s->wakes);
  free(s->chips);
  free(s->lms);
  if (s->sk) sodium_free(s->sk);
}

/* Raises the open-file limit to its hard maximum: one descriptor per connection. */
static void raise_nofile(size_t need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
    cl_log(CL_LOG_WARN, "open file limit below the number of connections",
           "limit=%llu connections=%zu", (unsigned long long)rl.rlim_cur, need);
}

/* ---- commands ------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f, "usage: fleetsim keys --seed N --count M\n"
             "       fleetsim run --fleet FLEET.csv --landmarks LANDMARKS.csv --seed N\n"
             "                    [--speed c|fibre|M_PER_S] [--jitter-ms X] [--chips-per-conn K]\n"
             "                    [--bind-base IPV4 --bind-count B] [--connect-rate N]\n"
             "                    [--sign-delay-ms N] [--duration-s S]\n"
             "                    [--log-level debug|info|warn|error]\n"
             "\n"
             "keys prints `index,public_key_hex` for chips 0..M-1 of fleet seed N (no header).\n"
             "run answers for every chip of FLEET.csv at every landmark of LANDMARKS.csv,\n"
             "holding each answer for the simulated round trip and each chip signature\n"
             "for --sign-delay-ms (default 0). On SIGUSR1 the chips given a destination\n"
             "(move_to_lat, move_to_lon) answer from there. See docs/SIMULATOR.md.\n"
             "A test tool: no production binary contains it.\n");
}

static int cmd_keys(int argc, char **argv) {
  static const struct option opts[] = {
      {"seed", required_argument, NULL, 's'},
      {"count", required_argument, NULL, 'n'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  uint64_t seed = 0, count = 0;
  int have_seed = 0, have_count = 0, ch;
  while ((ch = getopt_long(argc, argv, "s:n:h", opts, NULL)) != -1) {
    switch (ch) {
    case 's':
      if (parse_u64(optarg, UINT64_MAX, &seed) != CL_OK) {
        fprintf(stderr, "fleetsim keys: --seed %s: must be an unsigned integer\n", optarg);
        return EXIT_USAGE;
      }
      have_seed = 1;
      break;
    case 'n':
      if (parse_u64(optarg, MAX_KEYS_COUNT, &count) != CL_OK) {
        fprintf(stderr, "fleetsim keys: --count %s: must be an integer in [0, %llu]\n", optarg,
                MAX_KEYS_COUNT);
        return EXIT_USAGE;
      }
      have_count = 1;
      break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return EXIT_USAGE;
    }
  }
  if (!have_seed || !have_count || optind != argc) {
    usage(stderr);
    return EXIT_USAGE;
  }
  for (uint64_t i = 0; i < count; i++) {
    uint8_t sd[32];
    derive_seed(seed, i, sd);
    cl_key *k = NULL;
    int rc = cl_key_from_seed(&k, sd);
    sodium_memzero(sd, sizeof sd);
    if (rc != CL_OK) {
      fprintf(stderr, "fleetsim keys: %s\n", cl_strerror(rc));
      return EXIT_RUNTIME;
    }
    char hex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(cl_key_public(k), hex);
    cl_key_destroy(&k);
    printf("%" PRIu64 ",%s\n", i, hex);
  }
  return fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
}

/* Parses the options of `run` into s. Returns 0, -1 after printing the help,
 * or EXIT_USAGE after a message. */
static int run_options(sim *s, int argc, char **argv) {
  static const struct option opts[] = {
      {"fleet", required_argument, NULL, 'f'},
      {"landmarks", required_argument, NULL, 'L'},
      {"seed", required_argument, NULL, 's'},
      {"speed", required_argument, NULL, 'v'},
      {"jitter-ms", required_argument, NULL, 'j'},
      {"chips-per-conn", required_argument, NULL, 'k'},
      {"bind-base", required_argument, NULL, 'b'},
      {"bind-count", required_argument, NULL, 'B'},
      {"connect-rate", required_argument, NULL, 'r'},
      {"duration-s", required_argument, NULL, 'd'},
      {"sign-delay-ms", required_argument, NULL, 'S'},
      {"log-level", required_argument, NULL, 'l'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int have_seed = 0, ch, have_base = 0;
  uint64_t v = 0;
  s->speed = CL_SPEED_FIBRE;
  s->jitter_ms = DEFAULT_JITTER_MS;
  s->k = DEFAULT_CHIPS_PER_CONN;
  s->bind_base = INADDR_LOOPBACK;
  s->bind_count = 1;
  s->connect_rate = DEFAULT_CONNECT_RATE;
  while ((ch = getopt_long(argc, argv, "f:L:s:v:j:k:b:B:r:d:S:l:h", opts, NULL)) != -1) {
    char *end = NULL;
    switch (ch) {
    case 'f': s->fleet_path = optarg; break;
    case 'L': s->landmarks_path = optarg; break;
    case 's':
      if (parse_u64(optarg, UINT64_MAX, &s->seed) != CL_OK) {
        fprintf(stderr, "fleetsim run: --seed %s: must be an unsigned integer\n", optarg);
        return EXIT_USAGE;
      }
      have_seed = 1;
      break;
    case 'v':
      if (cl_speed_parse(optarg, &s->speed) != CL_OK) {
        fprintf(stderr, "fleetsim run: --speed %s: must be c, fibre, or m/s in (0, %.0f]\n", optarg,
                CL_SPEED_C);
        return EXIT_USAGE;
      }
      break;
    case 'j':
      s->jitter_ms = strtod(optarg, &end);
      if (end == optarg || *end || !(s->jitter_ms >= 0 && s->jitter_ms <= MAX_JITTER_MS)) {
        fprintf(stderr, "fleetsim run: --jitter-ms %s: must be a number in [0, %g]\n", optarg,
                MAX_JITTER_MS);
        return EXIT_USAGE;
      }
      break;
    case 'k':
      if (parse_u64(optarg, MAX_CHIPS_PER_CONN, &v) != CL_OK || v < 1) {
        fprintf(stderr, "fleetsim run: --chips-per-conn %s: must be an integer in [1, %d]\n",
                optarg, MAX_CHIPS_PER_CONN);
        return EXIT_USAGE;
      }
      s->k = (unsigned)v;
      break;
    case 'b': {
      struct in_addr a;
      if (inet_pton(AF_INET, optarg, &a) != 1) {
        fprintf(stderr, "fleetsim run: --bind-base %s: must be an IPv4 address\n", optarg);
        return EXIT_USAGE;
      }
      s->bind_base = ntohl(a.s_addr);
      have_base = 1;
      break;
    }
    case 'B':
      if (parse_u64(optarg, 65536, &v) != CL_OK || v < 1) {
        fprintf(stderr, "fleetsim run: --bind-count %s: must be an integer in [1, 65536]\n",
                optarg);
        return EXIT_USAGE;
      }
      s->bind_count = (unsigned)v;
      break;
    case 'r':
      if (parse_u64(optarg, 1000000, &v) != CL_OK || v < 1) {
        fprintf(stderr, "fleetsim run: --connect-rate %s: must be an integer in [1, 1000000]\n",
                optarg);
        return EXIT_USAGE;
      }
      s->connect_rate = (unsigned)v;
      break;
    case 'd':
      s->duration_s = strtod(optarg, &end);
      if (end == optarg || *end || !(s->duration_s >= 0 && s->duration_s <= 1e7)) {
        fprintf(stderr,
                "fleetsim run: --duration-s %s: must be a number in [0, 1e7] (0: forever)\n",
                optarg);
        return EXIT_USAGE;
      }
      break;
    case 'S':
      s->sign_delay_ms = strtod(optarg, &end);
      if (end == optarg || *end ||
          !(s->sign_delay_ms >= 0 && s->sign_delay_ms <= MAX_SIGN_DELAY_MS)) {
        fprintf(stderr, "fleetsim run: --sign-delay-ms %s: must be a number in [0, %g]\n", optarg,
                MAX_SIGN_DELAY_MS);
        return EXIT_USAGE;
      }
      break;
    case 'l': {
      cl_log_level level;
      if (cl_log_parse_level(optarg, &level) != CL_OK) {
        fprintf(stderr, "fleetsim run: --log-level %s: must be debug, info, warn or error\n",
                optarg);
        return EXIT_USAGE;
      }
      cl_log_set_level(level);
      break;
    }
    case 'h': usage(stdout); return -1;
    default: usage(stderr); return EXIT_USAGE;
    }
  }
  if (optind != argc || !s->fleet_path || !s->landmarks_path || !have_seed) {
    fprintf(stderr, "fleetsim run: --fleet, --landmarks and --seed are required\n");
    return EXIT_USAGE;
  }
  if ((uint64_t)s->bind_base + s->bind_count - 1 > UINT32_MAX) {
    fprintf(stderr, "fleetsim run: --bind-base plus --bind-count runs past 255.255.255.255\n");
    return EXIT_USAGE;
  }
  s->bind = have_base || s->bind_count > 1;
  s->jitter_ns = (uint64_t)(s->jitter_ms * 1e6);
  s->sign_delay_ns = (uint64_t)llround(s->sign_delay_ms * 1e6);
  return 0;
}

static int cmd_run(int argc, char **argv) {
  sim *s = calloc(1, sizeof *s);
  if (!s) return EXIT_RUNTIME;
  int status = run_options(s, argc, argv);
  if (status != 0) {
    free(s);
    return status < 0 ? 0 : status;
  }
  char err[512] = "";
  int rc = load_fleet(s, err, sizeof err);
  if (rc == CL_OK) rc = load_landmarks(s, err, sizeof err);
  if (rc != CL_OK) {
    fprintf(stderr, "fleetsim run: %s\n", err[0] ? err : cl_strerror(rc));
    sim_free(s);
    free(s);
    return rc == CL_ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
  }
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) {
    sim_free(s);
    free(s);
    return EXIT_RUNTIME;
  }
  s->loop = &loop;
  /* Wake-ups as close to their time as the kernel allows (default slack 50 us). */
  (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  s->armed_ns = NEVER;
  s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (s->tfd < 0 || uv_poll_init(&loop, &s->tpoll, s->tfd) != 0) {
    fprintf(stderr, "fleetsim run: timerfd: %s\n", strerror(errno));
    if (s->tfd >= 0) close(s->tfd);
    uv_loop_close(&loop);
    sim_free(s);
    free(s);
    return EXIT_RUNTIME;
  }
  s->tpoll.data = s;
  rc = build_conns(s, err, sizeof err);
  if (rc != CL_OK) {
    fprintf(stderr, "fleetsim run: %s\n", err[0] ? err : cl_strerror(rc));
    status = rc == CL_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
  }
  raise_nofile(s->n_conns + 64);
  cl_ratelimit_init(&s->rl, 20, 2);
  uv_timer_init(&loop, &s->stats_timer);
  uv_timer_init(&loop, &s->stop_timer);
  uv_signal_init(&loop, &s->sigterm);
  uv_signal_init(&loop, &s->sigint);
  uv_signal_init(&loop, &s->sigusr1);
  s->stats_timer.data = s->stop_timer.data = s->sigterm.data = s->sigint.data = s;
  s->sigusr1.data = s;
  if (status == 0 && (uv_signal_start(&s->sigterm, on_signal, SIGTERM) != 0 ||
                      uv_signal_start(&s->sigint, on_signal, SIGINT) != 0 ||
                      uv_signal_start(&s->sigusr1, on_move_signal, SIGUSR1) != 0 ||
                      uv_poll_start(&s->tpoll, UV_READABLE, on_wake) != 0))
    status = EXIT_RUNTIME;
  if (status == 0) {
    s->start_ms = uv_now(&loop);
    uv_timer_start(&s->stats_timer, on_stats_timer, STATS_INTERVAL_MS, STATS_INTERVAL_MS);
    if (s->duration_s > 0)
      uv_timer_start(&s->stop_timer, on_stop_timer, (uint64_t)(s->duration_s * 1000.0), 0);
    char speed[32];
    snprintf(speed, sizeof speed, "%.0f", s->speed);
    cl_log(CL_LOG_INFO, "started",
           "chips=%zu landmarks=%zu connections=%zu chips_per_conn=%u speed_m_s=%s jitter_ms=%g "
           "sign_delay_ms=%g bind_count=%u",
           s->n_chips, s->n_lm, s->n_conns, s->k, speed, s->jitter_ms, s->sign_delay_ms,
           s->bind ? s->bind_count : 0);
    for (size_t i = 0; i < s->n_conns; i++) {
      sconn *c = s->conns[i];
      uv_timer_start(&c->timer, on_conn_timer, (uint64_t)i * 1000u / s->connect_rate, 0);
    }
  } else {
    cl_log(CL_LOG_ERROR, "cannot start", "exit=%d", status);
  }
  if (status != 0) sim_stop(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) {
    cl_log(CL_LOG_ERROR, "event loop still busy at exit", "exit=%d", EXIT_RUNTIME);
    status = EXIT_RUNTIME;
  }
  close(s->tfd);
  sim_free(s);
  free(s);
  if (status == 0) cl_log(CL_LOG_INFO, "stopped", "exit=0");
  return status;
}

int main(int argc, char **argv) {
  cl_log_set_prog("fleetsim");
  if (sodium_init() < 0) {
    fprintf(stderr, "fleetsim: libsodium initialisation failed\n");
    return EXIT_RUNTIME;
  }
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (strcmp(argv[1], "keys") == 0) return cmd_keys(argc - 1, argv + 1);
  if (strcmp(argv[1], "run") == 0) return cmd_run(argc - 1, argv + 1);
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "fleetsim: unknown command %s\n", argv[1]);
  usage(stderr);
  return EXIT_USAGE;
}
