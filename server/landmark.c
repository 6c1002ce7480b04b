/*
 * landmarkd's event-loop shell around the protocol core (cl_lmcore): the
 * listener, one TCP handle per connection, the one timer that stands for
 * all of the core's timers, and the thread pool that does the core's
 * jobs (handshakes, Confirm checks, transcript checks and record
 * signatures). Every decision about the protocol is the core's; this
 * file turns libuv events into core events and the core's actions into
 * libuv calls. See landmark.h for the contract.
 *
 * The two timestamps of a probe are taken here and handed to the core as
 * data: the send time immediately before uv_try_write of a challenge
 * (lm_send), the receive time as the first statement of the read callback
 * (on_read). Both, and every `now` the core is given, come from
 * cl_clock_raw_ns (CLOCK_MONOTONIC_RAW), which NTP cannot slew; libuv's
 * own clock (CLOCK_MONOTONIC) only counts down the delay of core_timer.
 *
 * What a peer can make this process hold is bounded: the bytes queued for
 * writing to one connection (write requests included) never exceed [limits]
 * max_write_queue_bytes (the core closes the connection instead), and once
 * they pass a quarter of it the connection is not read until its queue has
 * drained, so a peer that does not read cannot make the landmark work for
 * it either.
 *
 * Ownership: the server owns the shell connections; each is freed in its
 * handle's close callback. The core's connection is the core's: once the
 * core calls lm_close for it the shell drops its pointer at once.
 */
#include "landmark.h"
#include "cl_clock.h"
#include "cl_err.h"
#include "cl_log.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READ_BUF_LEN 65536

/*
 * The thread pool (verify_threads > 0) does the core's jobs (X25519 and
 * Ed25519 work, never anything of the timed window) in batches: the jobs
 * the core hands out while the loop runs one phase's callbacks go together,
 * in pool jobs of up to POOL_BATCH, just before the loop polls (uv_prepare:
 * jobs from timers) and right after (uv_check: jobs from reads and from
 * returning batches). Under load a hand-over serves many jobs; a job on an
 * idle landmark still goes at once.
 */
#define POOL_BATCH 16

typedef struct {
  uv_work_t req;
  lm_server *srv;
  const cl_key *key;
  size_t n;
  cl_lm_work op[POOL_BATCH];
} pool_job;

/* One agent connection's socket. */
typedef struct {
  uv_tcp_t tcp;
  lm_server *srv;
  cl_lm_conn *core; /* NULL once the core closed it */
  int closing;
  int paused;    /* reading stopped until the write queue drains */
  size_t queued; /* bytes held for writing: queued write requests, whole */
} lm_sconn;

struct lm_server {
  uv_loop_t *loop;
  const cl_landmark_config *cfg;
  const cl_key *key;
  lm_writer *writer;
  cl_lm_params params;
  cl_lm_io io;
  cl_lm *core;
  uv_tcp_t listener;
  int listening;
  uv_timer_t core_timer; /* stands for every timer of the core */
  uint64_t armed_due;    /* the core's due time core_timer is armed for, UINT64_MAX: none */
  uint64_t pool_inflight; /* jobs queued or running on the pool */
  uint64_t pool_jobs;     /* pool batches handed over and not yet returned */
  pool_job *filling;      /* the batch being filled, or NULL */
  uv_prepare_t pool_prepare;
  uv_check_t pool_check;
  size_t write_cap;      /* max_write_queue_bytes: more closes the connection */
  size_t pause_above;    /* a quarter of it: more stops reading the connection */
  uint64_t reads_paused; /* times a connection's reading was stopped */
  size_t conns_paused;   /* connections not being read now */
  size_t queued_total;   /* bytes held for writing, all connections */
  int closing;
  int open_handles;
  void (*done)(void *);
  void *done_arg;
  uint8_t rbuf[READ_BUF_LEN];
};

typedef struct {
  uv_write_t req;
  lm_sconn *conn;
  size_t cost; /* what it counts in conn->queued: the request and its data */
  uint8_t data[];
} write_req;

static int pool_add(lm_server *s, const cl_lm_work *w);

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

/* ---- the core's timer ---------------------------------------------------- */

static void on_core_timer(uv_timer_t *t);

/* Arms core_timer for the core's earliest timer: the "arm a timer" action,
 * read after every event handed to the core. */
static void rearm(lm_server *s) {
  if (s->closing) return;
  uint64_t due = cl_lm_next_due(s->core);
  if (due == s->armed_due) return;
  s->armed_due = due;
  if (due == UINT64_MAX) {
    uv_timer_stop(&s->core_timer);
    return;
  }
  /* `due` is on the raw clock, libuv's timers on its loop clock
   * (CLOCK_MONOTONIC in whole milliseconds, cached per iteration): only the
   * delay crosses over, rounded up to a millisecond and counted from the
   * loop clock brought up to date. The loop clock's millisecond steps and
   * its rate (NTP slews it by at most 500 ppm) may still wake the core a
   * little before `due`; it then finds nothing due, and this sets the timer
   * again for the rest. */
  uint64_t now = cl_clock_raw_ns();
  uint64_t delay_ms = due > now ? (due - now + 999999) / 1000000 : 0;
  uv_update_time(s->loop);
  uv_timer_start(&s->core_timer, on_core_timer, delay_ms, 0);
}

static void on_core_timer(uv_timer_t *t) {
  lm_server *s = t->data;
  s->armed_due = UINT64_MAX;
  cl_lm_run_timers(s->core, cl_clock_raw_ns());
  rearm(s);
}

/* ---- the core's actions ---------------------------------------------------- */

static void on_sconn_closed(uv_handle_t *h) {
  lm_sconn *c = h->data;
  lm_server *s = c->srv;
  free(c);
  s->open_handles--;
  maybe_done(s);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* Reading stops and starts again only here; a paused connection is one of
 * conns_paused. */
static void set_paused(lm_sconn *c, int paused) {
  lm_server *s = c->srv;
  if (c->paused == paused) return;
  c->paused = paused;
  if (paused) {
    s->conns_paused++;
    s->reads_paused++;
  } else {
    s->conns_paused--;
  }
}

/* The core closed the connection: close the socket. */
static void lm_close(void *ctx, void *ud) {
  (void)ctx;
  lm_sconn *c = ud;
  c->core = NULL;
  if (c->closing) return;
  c->closing = 1;
  set_paused(c, 0);
  uv_close((uv_handle_t *)&c->tcp, on_sconn_closed);
}

/* A queued write finished, failed or was cancelled by the close. When the
 * last one leaves a paused connection, it is read again. */
static void on_write_done(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  lm_sconn *c = w->conn;
  lm_server *s = c->srv;
  assert(c->queued >= w->cost && s->queued_total >= w->cost);
  c->queued -= w->cost;
  s->queued_total -= w->cost;
  free(w);
  if (!c->core) return;
  if (status < 0 && status != UV_ECANCELED) {
    cl_lm_conn_close(s->core, c->core, cl_clock_raw_ns());
    rearm(s);
    return;
  }
  if (c->paused && c->queued == 0) {
    set_paused(c, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
      cl_lm_conn_close(s->core, c->core, cl_clock_raw_ns());
      rearm(s);
    }
  }
}

/*
 * Sends a complete frame: synchronously with uv_try_write when the socket
 * takes it (the normal case, and the one the RTT timing relies on), else the
 * unwritten tail is queued with uv_write. For a challenge (t_sent) the send
 * timestamp is the statement right before the write; the limits below act
 * after it. A tail that would take the connection's queue over write_cap is
 * refused with CL_ETOOBIG (the core counts, logs and closes); past
 * pause_above the connection is no longer read until the queue is empty.
 */
static int lm_send(void *ctx, void *ud, const uint8_t *buf, size_t len, uint64_t *t_sent) {
  (void)ctx;
  lm_sconn *c = ud;
  lm_server *s = c->srv;
  if (c->closing) return CL_EIO;
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  if (t_sent) *t_sent = cl_clock_raw_ns();
  int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (r == UV_EAGAIN || r == UV_ENOSYS) r = 0;
  if (r < 0) return CL_EIO;
  if ((size_t)r == len) return CL_OK;
  size_t rest = len - (size_t)r;
  size_t cost = sizeof(write_req) + rest;
  if (cost > s->write_cap - c->queued) return CL_ETOOBIG;
  write_req *w = malloc(cost);
  if (!w) return CL_ENOMEM;
  w->conn = c;
  w->cost = cost;
  memcpy(w->data, buf + r, rest);
  uv_buf_t wb = uv_buf_init((char *)w->data, (unsigned)rest);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &wb, 1, on_write_done) != 0) {
    free(w);
    return CL_EIO;
  }
  c->queued += cost;
  s->queued_total += cost;
  if (!c->paused && c->queued > s->pause_above) {
    /* Whatever the peer sends now waits in the kernel's buffers, then in
     * its own: it cannot make us produce more replies until it reads. */
    uv_read_stop((uv_stream_t *)&c->tcp);
    set_paused(c, 1);
  }
  return CL_OK;
}

static int lm_measurement(void *ctx, const cl_lm_record *rec) {
  lm_server *s = ctx;
  return lm_writer_push(s->writer, rec);
}

static int lm_work(void *ctx, const cl_lm_work *w) { return pool_add(ctx, w); }

static void lm_random(void *ctx, void *buf, size_t n) {
  (void)ctx;
  randombytes_buf(buf, n);
}

static uint64_t lm_unix_ns(void *ctx) {
  (void)ctx;
  return cl_clock_unix_ns();
}

/* ---- the thread pool --------------------------------------------------------- */

static void pool_work(uv_work_t *req) {
  pool_job *j = req->data;
  for (size_t i = 0; i < j->n; i++) cl_lm_work_run(&j->op[i], j->key);
}

static void pool_done(uv_work_t *req, int status) {
  pool_job *j = req->data;
  lm_server *s = j->srv;
  s->pool_jobs--;
  uint64_t now = cl_clock_raw_ns();
  for (size_t i = 0; i < j->n; i++) {
    s->pool_inflight--;
    cl_lm_work_done(s->core, &j->op[i], status, now);
  }
  free(j);
  rearm(s);
  maybe_done(s);
}

/* Hands the batch being filled to the pool. uv_queue_work only queues (it
 * refuses nothing but a missing work callback), so the batch's results
 * never come back from inside one of the core's own callbacks. */
static void pool_flush(lm_server *s) {
  pool_job *j = s->filling;
  if (!j) return;
  s->filling = NULL;
  s->pool_jobs++;
  int rc = uv_queue_work(s->loop, &j->req, pool_work, pool_done);
  assert(rc == 0);
  (void)rc;
}

static void on_pool_prepare(uv_prepare_t *h) { pool_flush(h->data); }
static void on_pool_check(uv_check_t *h) { pool_flush(h->data); }

/* Queues one job (copied) for the pool; a full batch goes at once. Returns
 * 0, or CL_ENOMEM when the core must do the job itself. The copy's secrets
 * (a handshake's ephemeral secret and session key) are wiped by the worker
 * and by cl_lm_work_done. */
static int pool_add(lm_server *s, const cl_lm_work *w) {
  if (!s->filling) {
    pool_job *j = malloc(sizeof *j);
    if (!j) return CL_ENOMEM;
    j->req.data = j;
    j->srv = s;
    j->key = s->key;
    j->n = 0;
    s->filling = j;
  }
  s->filling->op[s->filling->n++] = *w;
  s->pool_inflight++;
  if (s->filling->n == POOL_BATCH) pool_flush(s);
  return CL_OK;
}

/* ---- sockets --------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  lm_sconn *c = h->data;
  /* Reads are consumed synchronously in on_read, so one buffer serves all
   * connections; partial frames are copied into each assembler. */
  *buf = uv_buf_init((char *)c->srv->rbuf, READ_BUF_LEN);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  /* Receive timestamp first: everything below is outside the timed window. */
  uint64_t t_recv = cl_clock_raw_ns();
  lm_sconn *c = stream->data;
  lm_server *s = c->srv;
  if (nread == 0 || !c->core) return; /* EAGAIN, not EOF; or closed already */
  if (nread < 0)
    cl_lm_conn_close(s->core, c->core, t_recv);
  else
    cl_lm_conn_read(s->core, c->core, (const uint8_t *)buf->base, (size_t)nread, t_recv);
  rearm(s);
}

/* The key of a peer's IP address for the per-address limit
 * (cl_lm_addr_key: an IPv6 peer counts by its /64, an IPv4-mapped one as
 * its IPv4 address). Returns 1, or 0 for another family. */
static int addr_key_of(const struct sockaddr_storage *ss, uint8_t key[CL_PK_LEN]) {
  if (ss->ss_family == AF_INET)
    return cl_lm_addr_key((const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr, 4,
                          key) == CL_OK;
  if (ss->ss_family == AF_INET6)
    return cl_lm_addr_key(((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr, 16, key) ==
           CL_OK;
  return 0;
}

static void on_connection(uv_stream_t *listener, int status) {
  lm_server *s = listener->data;
  if (status < 0) {
    cl_log(CL_LOG_WARN, "accept failed", "err=%s", uv_strerror(status));
    return;
  }
  lm_sconn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = s;
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  s->open_handles++;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    lm_close(s, c);
    return;
  }
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  uint8_t akey[CL_PK_LEN];
  int have_akey = 0;
  char peer[64] = "?";
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
    snprintf(peer, sizeof peer, "%s:%d", ip, port);
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->core = cl_lm_conn_open(s->core, c, have_akey ? akey : NULL, peer, cl_clock_raw_ns());
  /* The Hello may already have taken the queue over pause_above. */
  if (c->core && !c->paused && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    cl_lm_conn_close(s->core, c->core, cl_clock_raw_ns());
  rearm(s);
}

/* ---- server ---------------------------------------------------------------------- */

/* The core's settings from landmarkd's configuration. */
static void params_of(const cl_landmark_config *cfg, cl_lm_params *p) {
  memset(p, 0, sizeof *p);
  p->interval_s = cfg->interval_s;
  p->jitter = cfg->jitter;
  p->burst = cfg->burst;
  p->burst_gap_ms = cfg->burst_gap_ms;
  p->deadline_ms = cfg->deadline_ms;
  p->speed_m_per_s = cfg->speed_m_per_s;
  p->async_signatures = cfg->verify_threads > 0;
  p->transcript_timeout_ms = cfg->transcript_timeout_ms;
  p->session_lifetime_s = cfg->session_lifetime_s;
  p->max_connections = cfg->max_connections;
  p->max_connections_per_address = cfg->max_connections_per_address;
  p->max_pending_challenges = cfg->max_pending_challenges;
  p->handshake_timeout_ms = cfg->handshake_timeout_ms;
  p->idle_timeout_s = cfg->idle_timeout_s;
  p->max_frame_bytes = cfg->max_frame_bytes;
  p->max_error_replies_per_s = cfg->max_error_replies_per_s;
}

int lm_server_create(lm_server **out, uv_loop_t *loop, const cl_landmark_config *cfg,
                     const cl_key *key, lm_writer *writer) {
  lm_server *s = calloc(1, sizeof *s);
  if (!s) return CL_ENOMEM;
  s->loop = loop;
  s->cfg = cfg;
  s->key = key;
  s->writer = writer;
  params_of(cfg, &s->params);
  s->write_cap = cfg->max_write_queue_bytes;
  s->pause_above = cfg->max_write_queue_bytes / 4;
  s->io = (cl_lm_io){.send = lm_send,
                     .close = lm_close,
                     .measurement = lm_measurement,
                     .work = lm_work,
                     .random = lm_random,
                     .unix_ns = lm_unix_ns};
  int rc = cl_lm_create(&s->core, &s->params, key, &s->io, s);
  if (rc != CL_OK) {
    free(s);
    return rc;
  }
  s->armed_due = UINT64_MAX;
  uv_timer_init(loop, &s->core_timer);
  s->core_timer.data = s;
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

void lm_server_set_enrolled(lm_server *s, cl_lm_target *targets, size_t n) {
  cl_lm_set_enrolled(s->core, targets, n, cl_clock_raw_ns());
  rearm(s);
}

void lm_server_view_get(const lm_server *s, lm_server_view *v) {
  v->core = cl_lm_get_stats(s->core);
  v->conns = cl_lm_conn_count(s->core);
  v->chips_live = cl_lm_live_count(s->core);
  v->pool_inflight = s->pool_inflight;
  v->reads_paused = s->reads_paused;
  v->conns_read_paused = s->conns_paused;
  v->write_queue_bytes = s->queued_total;
}

void lm_server_close(lm_server *s, void (*done)(void *arg), void *arg) {
  uint64_t now = cl_clock_raw_ns();
  s->done = done;
  s->done_arg = arg;
  cl_lm_close_all(s->core, now);
  s->closing = 1;
  /* Every chip is gone: the jobs of a batch not yet handed over have
   * nothing to serve, and the core counts them as orphaned. */
  if (s->filling) {
    for (size_t i = 0; i < s->filling->n; i++) {
      s->pool_inflight--;
      cl_lm_work_done(s->core, &s->filling->op[i], UV_ECANCELED, now);
    }
    free(s->filling);
    s->filling = NULL;
  }
  uv_close((uv_handle_t *)&s->pool_prepare, on_server_handle_closed);
  uv_close((uv_handle_t *)&s->pool_check, on_server_handle_closed);
  uv_close((uv_handle_t *)&s->core_timer, on_server_handle_closed);
  if (s->listening) uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
  maybe_done(s);
}

void lm_server_destroy(lm_server **ps) {
  if (!ps || !*ps) return;
  lm_server *s = *ps;
  cl_lm_destroy(&s->core);
  free(s);
  *ps = NULL;
}
