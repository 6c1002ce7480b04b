/*
 * delayproxy: a user-space TCP proxy that delays every byte by a fixed
 * one-way latency (plus optional jitter), to stand in for the distance
 * between two landmarks on a machine without traffic shaping.
 *
 *     delayproxy --listen HOST:PORT --connect HOST:PORT --delay-ms X [--jitter-ms Y]
 *     delayproxy --listen HOST:PORT --connect HOST:PORT --from LAT,LON --to LAT,LON ...
 *
 * With --from and --to, X is the one-way time between the two places at the
 * speed of light, from the library's WGS84 geodesic distance, rounded up to
 * the microsecond plus one: the formula tests/test_world.c uses, so a link
 * never looks shorter than the geography it stands for.
 *
 * Each accepted connection gets its own upstream connection. Bytes read on
 * one side are kept as a chunk stamped with a release time of
 * read time + X + uniform(0, Y) ms, never earlier than the previous chunk of
 * the same direction, so jitter never reorders bytes; a per-direction timer
 * writes each chunk to the other side when its time has come. Buffering is
 * bounded: a direction holding more than MAX_BUFFERED bytes stops reading
 * until it has drained to half of that. When one side closes, what it sent
 * is still delivered (after its delay), then both sides are closed. SIGTERM
 * or SIGINT closes everything and exits 0. The bytes are never parsed: every
 * frame of the protocol (handshake, challenges and answers, transcripts)
 * takes the same delay, whatever the protocol version.
 *
 * This is a test tool under tests/sim/: no production binary links it.
 */
#define _GNU_SOURCE
#include "cl_config.h"
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_log.h"
#include "cl_probe.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define MAX_DELAY_MS 60000.0
#define MAX_BUFFERED (1u << 20) /* bytes per direction, read but not yet written */
#define READ_BUF (64u * 1024u)
#define LISTEN_BACKLOG 1024

struct pair;

/* Bytes read from one side, waiting for their release time or being written. */
typedef struct chunk {
  uv_write_t req; /* first member: the write callback gets the chunk back */
  struct chunk *next;
  struct dir *d;
  uint64_t due_ns;
  size_t len;
  uint8_t data[];
} chunk;

/* One direction of a proxied connection: src is read, dst written. */
typedef struct dir {
  struct pair *p;
  uv_tcp_t *src, *dst;
  uv_timer_t timer;
  chunk *head, *tail; /* waiting for release, in order */
  size_t buffered;    /* bytes read and not yet fully written */
  unsigned in_flight; /* write requests submitted, callback not yet run */
  uint64_t last_due;
  int paused; /* reading stopped: buffered reached MAX_BUFFERED */
  int eof;    /* src has closed its sending side */
} dir;

typedef struct pair {
  struct proxy *px;
  struct pair *prev, *next;
  uint64_t id;
  uv_tcp_t down; /* accepted from the client */
  uv_tcp_t up;   /* to the upstream server */
  uv_connect_t creq;
  dir d[2];    /* d[0]: down -> up, d[1]: up -> down */
  int handles; /* open handles; the pair is freed when this reaches 0 */
  int closing;
} pair;

typedef struct proxy {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_signal_t sigterm, sigint;
  struct sockaddr_storage upstream;
  uint64_t delay_ns, jitter_ns;
  pair *pairs;
  uint64_t next_id;
  int stopping;
  uint64_t accepted, bytes_up, bytes_down;
} proxy;

static uint8_t g_rbuf[READ_BUF]; /* consumed before each read callback returns */

static void pair_close(pair *p, const char *why);

/* ---- closing ---------------------------------------------------------------- */

/* Counts down the pair's open handles; the last close frees it. */
static void pair_handle_closed(pair *p) {
  if (--p->handles > 0) return;
  proxy *px = p->px;
  if (p->prev)
    p->prev->next = p->next;
  else
    px->pairs = p->next;
  if (p->next) p->next->prev = p->prev;
  free(p);
}

static void on_stream_closed(uv_handle_t *h) { pair_handle_closed(h->data); }

/* A timer's data is its direction, not the pair. */
static void on_timer_closed(uv_handle_t *h) { pair_handle_closed(((dir *)h->data)->p); }

static void dir_free_waiting(dir *d) {
  while (d->head) {
    chunk *c = d->head;
    d->head = c->next;
    d->buffered -= c->len;
    free(c);
  }
  d->tail = NULL;
}

/* Closes both sides and both timers (idempotent). Chunks not yet submitted
 * are freed here; submitted ones come back through on_written. */
static void pair_close(pair *p, const char *why) {
  if (p->closing) return;
  p->closing = 1;
  cl_log(CL_LOG_DEBUG, "connection closed", "id=%llu reason=\"%s\"", (unsigned long long)p->id,
         why);
  for (int i = 0; i < 2; i++) {
    dir_free_waiting(&p->d[i]);
    uv_close((uv_handle_t *)&p->d[i].timer, on_timer_closed);
  }
  uv_close((uv_handle_t *)&p->down, on_stream_closed);
  uv_close((uv_handle_t *)&p->up, on_stream_closed);
}

/* A direction whose source has closed and whose bytes are all delivered
 * ends the connection. */
static void dir_maybe_finish(dir *d) {
  if (d->eof && !d->head && d->in_flight == 0) pair_close(d->p, "peer closed");
}

/* ---- writing on time ------------------------------------------------------ */

static void on_dir_timer(uv_timer_t *t);

/* Arms the timer for the first waiting chunk. Timers run on the loop's
 * cached millisecond clock, so the wait is rounded up to whole milliseconds
 * and the callback re-checks against uv_hrtime(), re-arming while the chunk
 * is not due: a chunk never leaves early, and at most about a millisecond
 * late. (A 0 ms re-arm for a chunk not yet due would spin inside libuv's
 * timer phase, so it is only used for chunks already due.) */
static void dir_arm(dir *d) {
  if (!d->head) return;
  uint64_t now = uv_hrtime(), due = d->head->due_ns;
  uint64_t ms = due > now ? (due - now + 999999u) / 1000000u : 0;
  uv_update_time(d->p->px->loop);
  uv_timer_start(&d->timer, on_dir_timer, ms, 0);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = (char *)g_rbuf;
  buf->len = sizeof g_rbuf;
}

static void on_written(uv_write_t *req, int status) {
  chunk *c = (chunk *)req;
  dir *d = c->d;
  d->buffered -= c->len;
  d->in_flight--;
  free(c);
  if (d->p->closing) return;
  if (status < 0) {
    pair_close(d->p, uv_strerror(status));
    return;
  }
  if (d->paused && !d->eof && d->buffered < MAX_BUFFERED / 2) {
    d->paused = 0;
    int r = uv_read_start((uv_stream_t *)d->src, on_alloc, on_read);
    if (r < 0) {
      pair_close(d->p, uv_strerror(r));
      return;
    }
  }
  dir_maybe_finish(d);
}

/* Submits every chunk that is due, in order, then re-arms for the next. */
static void on_dir_timer(uv_timer_t *t) {
  dir *d = t->data;
  uint64_t now = uv_hrtime();
  while (d->head && d->head->due_ns <= now && !d->p->closing) {
    chunk *c = d->head;
    d->head = c->next;
    if (!d->head) d->tail = NULL;
    uv_buf_t b = uv_buf_init((char *)c->data, (unsigned)c->len);
    int r = uv_write(&c->req, (uv_stream_t *)d->dst, &b, 1, on_written);
    if (r < 0) {
      d->buffered -= c->len;
      free(c);
      pair_close(d->p, uv_strerror(r));
      return;
    }
    d->in_flight++;
    proxy *px = d->p->px;
    if (d == &d->p->d[0])
      px->bytes_up += c->len;
    else
      px->bytes_down += c->len;
  }
  if (!d->p->closing) dir_arm(d);
}

/* ---- reading ---------------------------------------------------------------- */

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  uint64_t now = uv_hrtime(); /* the delay counts from here */
  pair *p = st->data;
  dir *d = st == (uv_stream_t *)&p->down ? &p->d[0] : &p->d[1];
  if (nread == 0 || p->closing) return;
  if (nread < 0) {
    if (nread != UV_EOF) {
      pair_close(p, uv_strerror((int)nread));
      return;
    }
    d->eof = 1;
    uv_read_stop(st);
    dir_maybe_finish(d);
    return;
  }
  chunk *c = malloc(sizeof *c + (size_t)nread);
  if (!c) {
    pair_close(p, "out of memory");
    return;
  }
  proxy *px = p->px;
  uint64_t jitter = 0;
  if (px->jitter_ns > 0)
    jitter = (uint64_t)((double)randombytes_random() / 4294967295.0 * (double)px->jitter_ns);
  c->next = NULL;
  c->d = d;
  c->len = (size_t)nread;
  memcpy(c->data, buf->base, c->len);
  c->due_ns = now + px->delay_ns + jitter;
  if (c->due_ns < d->last_due) c->due_ns = d->last_due; /* never overtake earlier bytes */
  d->last_due = c->due_ns;
  d->buffered += c->len;
  int was_empty = d->head == NULL;
  if (d->tail)
    d->tail->next = c;
  else
    d->head = c;
  d->tail = c;
  if (d->buffered >= MAX_BUFFERED && !d->paused) {
    d->paused = 1;
    uv_read_stop(st);
  }
  if (was_empty) dir_arm(d);
}

/* ---- accepting and connecting ---------------------------------------------- */

static void on_upstream(uv_connect_t *req, int status) {
  pair *p = req->data;
  if (status == UV_ECANCELED || p->closing) return;
  if (status < 0) {
    cl_log(CL_LOG_WARN, "upstream connect failed", "id=%llu err=\"%s\"", (unsigned long long)p->id,
           uv_strerror(status));
    pair_close(p, "upstream connect failed");
    return;
  }
  uv_tcp_nodelay(&p->up, 1);
  int r = uv_read_start((uv_stream_t *)&p->down, on_alloc, on_read);
  if (r == 0) r = uv_read_start((uv_stream_t *)&p->up, on_alloc, on_read);
  if (r < 0) pair_close(p, uv_strerror(r));
}

static void on_connection(uv_stream_t *server, int status) {
  proxy *px = server->data;
  if (status < 0) {
    cl_log(CL_LOG_WARN, "accept failed", "err=\"%s\"", uv_strerror(status));
    return;
  }
  pair *p = calloc(1, sizeof *p);
  if (!p) {
    cl_log(CL_LOG_ERROR, "out of memory", "what=connection");
    return;
  }
  p->px = px;
  p->id = ++px->next_id;
  uv_tcp_init(px->loop, &p->down); /* cannot fail: no socket yet */
  uv_tcp_init(px->loop, &p->up);
  p->down.data = p->up.data = p;
  for (int i = 0; i < 2; i++) {
    uv_timer_init(px->loop, &p->d[i].timer);
    p->d[i].timer.data = &p->d[i];
    p->d[i].p = p;
  }
  p->d[0].src = p->d[1].dst = &p->down;
  p->d[0].dst = p->d[1].src = &p->up;
  p->handles = 4;
  p->next = px->pairs;
  if (px->pairs) px->pairs->prev = p;
  px->pairs = p;
  int r = uv_accept(server, (uv_stream_t *)&p->down);
  if (r < 0) {
    pair_close(p, uv_strerror(r));
    return;
  }
  px->accepted++;
  uv_tcp_nodelay(&p->down, 1);
  p->creq.data = p;
  r = uv_tcp_connect(&p->creq, &p->up, (const struct sockaddr *)&px->upstream, on_upstream);
  if (r < 0) {
    cl_log(CL_LOG_WARN, "upstream connect failed", "id=%llu err=\"%s\"", (unsigned long long)p->id,
           uv_strerror(r));
    pair_close(p, "upstream connect failed");
    return;
  }
  cl_log(CL_LOG_DEBUG, "connection accepted", "id=%llu", (unsigned long long)p->id);
}

/* ---- set-up and shutdown ---------------------------------------------------- */

static void proxy_stop(proxy *px) {
  if (px->stopping) return;
  px->stopping = 1;
  cl_log(CL_LOG_INFO, "stats", "accepted=%llu bytes_up=%llu bytes_down=%llu when=exit",
         (unsigned long long)px->accepted, (unsigned long long)px->bytes_up,
         (unsigned long long)px->bytes_down);
  uv_close((uv_handle_t *)&px->listener, NULL);
  uv_close((uv_handle_t *)&px->sigterm, NULL);
  uv_close((uv_handle_t *)&px->sigint, NULL);
  for (pair *p = px->pairs; p; p = p->next) pair_close(p, "shutting down");
}

static void on_signal(uv_signal_t *h, int signum) {
  cl_log(CL_LOG_INFO, "shutting down", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  proxy_stop(h->data);
}

/* Resolves HOST:PORT into *out (first address). 0, or CL_EMALFORMED / CL_EIO
 * with a message in err. */
static int resolve(const char *text, int passive, struct sockaddr_storage *out, char *err,
                   size_t errlen) {
  char host[CL_CONFIG_HOST_MAX];
  int port = 0;
  if (cl_parse_hostport(text, host, sizeof host, &port) != CL_OK) {
    snprintf(err, errlen, "%s is not HOST:PORT", text);
    return CL_EMALFORMED;
  }
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%d", port);
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  int g = getaddrinfo(host, portstr, &hints, &ai);
  if (g != 0 || !ai) {
    snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(g));
    return CL_EIO;
  }
  memcpy(out, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);
  return CL_OK;
}

static void usage(FILE *f) {
  fprintf(f, "usage: delayproxy --listen HOST:PORT --connect HOST:PORT\n"
             "                  (--delay-ms X | --from LAT,LON --to LAT,LON)\n"
             "                  [--jitter-ms Y] [--log-level debug|info|warn|error]\n"
             "\n"
             "Forwards every accepted connection to --connect, releasing each chunk of\n"
             "bytes X ms (one way; plus uniform 0..Y ms, never reordering) after it was\n"
             "read. --from and --to give X as the one-way time between two places at\n"
             "the speed of light: ceil(geodesic distance / c, to the microsecond) + 1 us.\n"
             "A test tool: no production binary contains it.\n");
}

/* Parses "LAT,LON" into out[0], out[1] (cl_geo_parse_position). Returns 0,
 * or -1 after a message naming the option. */
static int parse_position(const char *opt, const char *text, double out[2]) {
  if (cl_geo_parse_position(text, &out[0], &out[1]) == CL_OK) return 0;
  fprintf(stderr,
          "delayproxy: %s %s: must be LAT,LON in degrees (lat in [-90, 90], lon in "
          "[-180, 180])\n",
          opt, text);
  return -1;
}

/* One-way delay in ms between two places at the speed of light: the WGS84
 * geodesic distance (cl_geo_distance_m) over c, rounded up to the
 * microsecond, plus one microsecond. The same formula as tests/test_world.c,
 * so a landmark link is never shorter than the geography it simulates. */
static double oneway_ms(const double from[2], const double to[2], double *distance_m) {
  double d = cl_geo_distance_m(from[0], from[1], to[0], to[1]);
  *distance_m = d;
  return ceil(d / CL_SPEED_C * 1e6) / 1e3 + 0.001;
}

static int parse_ms(const char *opt, const char *text, double *out) {
  char *end = NULL;
  *out = strtod(text, &end);
  if (end == text || *end || !(*out >= 0 && *out <= MAX_DELAY_MS)) {
    fprintf(stderr, "delayproxy: %s %s: must be a number of milliseconds in [0, %g]\n", opt, text,
            MAX_DELAY_MS);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"listen", required_argument, NULL, 'L'},
      {"connect", required_argument, NULL, 'c'},
      {"delay-ms", required_argument, NULL, 'd'},
      {"from", required_argument, NULL, 'f'},
      {"to", required_argument, NULL, 't'},
      {"jitter-ms", required_argument, NULL, 'j'},
      {"log-level", required_argument, NULL, 'l'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  cl_log_set_prog("delayproxy");
  if (sodium_init() < 0) {
    fprintf(stderr, "delayproxy: libsodium initialisation failed\n");
    return EXIT_RUNTIME;
  }
  const char *listen_at = NULL, *connect_to = NULL, *delay_text = NULL, *from_text = NULL,
             *to_text = NULL;
  double delay_ms = -1, jitter_ms = 0, from[2] = {0, 0}, to[2] = {0, 0};
  int ch;
  while ((ch = getopt_long(argc, argv, "L:c:d:f:t:j:l:h", opts, NULL)) != -1) {
    switch (ch) {
    case 'L': listen_at = optarg; break;
    case 'c': connect_to = optarg; break;
    case 'd':
      if (parse_ms("--delay-ms", optarg, &delay_ms) != 0) return EXIT_USAGE;
      delay_text = optarg;
      break;
    case 'f':
      if (parse_position("--from", optarg, from) != 0) return EXIT_USAGE;
      from_text = optarg;
      break;
    case 't':
      if (parse_position("--to", optarg, to) != 0) return EXIT_USAGE;
      to_text = optarg;
      break;
    case 'j':
      if (parse_ms("--jitter-ms", optarg, &jitter_ms) != 0) return EXIT_USAGE;
      break;
    case 'l': {
      cl_log_level level;
      if (cl_log_parse_level(optarg, &level) != CL_OK) {
        fprintf(stderr, "delayproxy: --log-level %s: must be debug, info, warn or error\n", optarg);
        return EXIT_USAGE;
      }
      cl_log_set_level(level);
      break;
    }
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "delayproxy: unexpected argument %s\n", argv[optind]);
    usage(stderr);
    return EXIT_USAGE;
  }
  int have_pos = from_text || to_text;
  if (delay_text && have_pos) {
    fprintf(stderr, "delayproxy: --delay-ms %s and --%s %s: give either --delay-ms or --from and "
                    "--to, not both\n",
            delay_text, from_text ? "from" : "to", from_text ? from_text : to_text);
    return EXIT_USAGE;
  }
  if (have_pos && !(from_text && to_text)) {
    fprintf(stderr, "delayproxy: --%s %s: --%s is missing (--from and --to go together)\n",
            from_text ? "from" : "to", from_text ? from_text : to_text, from_text ? "to" : "from");
    return EXIT_USAGE;
  }
  if (!listen_at || !connect_to || (delay_ms < 0 && !have_pos)) {
    fprintf(stderr,
            "delayproxy: --listen, --connect and either --delay-ms or --from and --to are "
            "required\n");
    usage(stderr);
    return EXIT_USAGE;
  }
  double distance_m = -1;
  if (have_pos) {
    delay_ms = oneway_ms(from, to, &distance_m);
    /* Half the Earth's circumference is about 67 ms at c: always in range. */
    assert(delay_ms >= 0 && delay_ms <= MAX_DELAY_MS);
  }
  signal(SIGPIPE, SIG_IGN);
  proxy px;
  memset(&px, 0, sizeof px);
  /* Rounded to the nanosecond: truncating would turn 1.235 ms into 1234999 ns. */
  px.delay_ns = (uint64_t)llround(delay_ms * 1e6);
  px.jitter_ns = (uint64_t)(jitter_ms * 1e6);
  struct sockaddr_storage listen_sa;
  char err[400];
  if (resolve(listen_at, 1, &listen_sa, err, sizeof err) != CL_OK ||
      resolve(connect_to, 0, &px.upstream, err, sizeof err) != CL_OK) {
    fprintf(stderr, "delayproxy: %s\n", err);
    return EXIT_USAGE;
  }
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return EXIT_RUNTIME;
  px.loop = &loop;
  uv_tcp_init(&loop, &px.listener);
  uv_signal_init(&loop, &px.sigterm);
  uv_signal_init(&loop, &px.sigint);
  px.listener.data = px.sigterm.data = px.sigint.data = &px;
  int status = 0;
  int r = uv_tcp_bind(&px.listener, (const struct sockaddr *)&listen_sa, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&px.listener, LISTEN_BACKLOG, on_connection);
  if (r == 0) r = uv_signal_start(&px.sigterm, on_signal, SIGTERM);
  if (r == 0) r = uv_signal_start(&px.sigint, on_signal, SIGINT);
  if (r < 0) {
    cl_log(CL_LOG_ERROR, "cannot listen", "listen=%s err=\"%s\"", listen_at, uv_strerror(r));
    status = EXIT_RUNTIME;
    proxy_stop(&px);
  } else {
    if (distance_m >= 0)
      cl_log(CL_LOG_INFO, "listening",
             "listen=%s connect=%s delay_ms=%.3f jitter_ms=%g from=%s to=%s distance_m=%.1f",
             listen_at, connect_to, delay_ms, jitter_ms, from_text, to_text, distance_m);
    else
      cl_log(CL_LOG_INFO, "listening", "listen=%s connect=%s delay_ms=%g jitter_ms=%g", listen_at,
             connect_to, delay_ms, jitter_ms);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) status = EXIT_RUNTIME;
  if (status == 0) cl_log(CL_LOG_INFO, "stopped", "exit=0");
  return status;
}
