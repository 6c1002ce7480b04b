/*
 * Baseline for landmark throughput: a plain C request/response server on a
 * libuv loop, with the frame sizes, connection count and probes in flight
 * of the landmark benchmark, and no protocol, no parsing beyond the length
 * prefix and no cryptography. Its answers per server CPU-second are what
 * landmarkd's verified answers per CPU-second are set against (as a ratio,
 * in the same run).
 *
 *   reqresp [--conns C] [--inflight K] [--seconds S] [--warmup S]
 *           [--burst B --interval-ms I] [--server-cpu N] [--client-cpu N]
 *
 * The process forks. The child is the client: C connections to the parent,
 * each answering every complete request frame at once with a reply frame.
 * The parent is the server: on each connection it keeps K requests in
 * flight (one per simulated chip), and on each complete reply it takes the
 * receive time, counts the answer and writes the next request, its send
 * time taken immediately before the write, as landmarkd does. With --burst,
 * each of the K slots of a connection is a simulated chip probed the way
 * landmarkd probes: B requests back to back (the next when the previous is
 * answered), then nothing until I ms (±10 %) after its burst began, its
 * first burst at a random time within the first interval. Request and
 * reply are a real protocol-2 Challenge and Response frame (cl_msg_encode);
 * each request carries a fresh counter where the nonce goes. After WARMUP
 * seconds the server counts answers and its own CPU time (getrusage) for S
 * seconds and prints one line:
 *
 *   answers=N seconds=S answers_per_s=R server_cpu_s=X answers_per_cpu_s=A
 *   rtt_median_us=M request_bytes=Q reply_bytes=P conns=C inflight=K burst=B
 *   interval_ms=I
 *
 * With --server-cpu and --client-cpu each process pins itself to that CPU
 * (sched_setaffinity), like the landmark benchmark's taskset.
 */
#define _GNU_SOURCE
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_msg.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MAX_RTTS 2000000

static void die(const char *what, int err) {
  fprintf(stderr, "reqresp: %s: %s\n", what, err ? uv_strerror(err) : strerror(errno));
  exit(EXIT_FAILURE);
}

static unsigned long parse_num(const char *opt, const char *text, unsigned long min,
                               unsigned long max) {
  char *end = NULL;
  errno = 0;
  unsigned long v = strtoul(text ? text : "", &end, 10);
  if (errno || !text || end == text || *end || v < min || v > max) {
    fprintf(stderr, "reqresp: %s %s: must be an integer in [%lu, %lu]\n", opt,
            text ? text : "(missing)", min, max);
    exit(2);
  }
  return v;
}

static void pin(long cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET((int)cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity", 0);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint8_t req_frame[256], reply_frame[256];
static size_t req_len, reply_len;

struct conn;

/* Burst mode: one simulated chip of a server connection. */
typedef struct {
  uv_timer_t timer;
  struct conn *c;
  unsigned idx;     /* its slot among the connection's chips */
  unsigned left;    /* requests of the current burst still to send */
  uint64_t start;   /* loop time (ms) its current burst began */
} chip;

/* One connection of either side: frames are fixed-size, so a read only
 * counts bytes towards the next frame boundary. */
typedef struct conn {
  uv_tcp_t tcp;
  size_t want;     /* bytes of one incoming frame */
  size_t have;     /* bytes of the current incoming frame so far */
  int server;      /* 1: the landmark-like side */
  uint64_t *sent;  /* server: send time per in-flight request, FIFO by arrival */
  unsigned *who;   /* server: the chip of each in-flight request, same FIFO */
  chip *chips;     /* server, burst mode: its K chips */
  unsigned head, n_inflight, cap;
  uint64_t counter;
} conn;

static struct {
  uint64_t answers;
  int counting;
  uint64_t *rtts;
  size_t n_rtts;
} st;

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  static char slab[65536];
  *buf = uv_buf_init(slab, sizeof slab);
}

static void write_frame(conn *c, const uint8_t *frame, size_t len) {
  uv_buf_t b = uv_buf_init((char *)frame, (unsigned)len);
  int rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (rc != (int)len) die("uv_try_write (the benchmark expects short writes to complete)", rc < 0 ? rc : UV_EAGAIN);
}

static unsigned g_inflight, g_burst, g_interval_ms;

/* Server: a new request for chip `who` with a fresh counter where the nonce
 * lies. */
static void send_request(conn *c, unsigned who) {
  c->counter++;
  memcpy(req_frame + req_len - CL_NONCE_LEN, &c->counter, sizeof c->counter);
  unsigned slot = (c->head + c->n_inflight) % c->cap;
  c->n_inflight++;
  c->who[slot] = who;
  c->sent[slot] = now_ns();
  write_frame(c, req_frame, req_len);
}

static void burst_cb(uv_timer_t *t) {
  chip *ch = t->data;
  ch->start = uv_now(t->loop);
  ch->left = g_burst - 1;
  send_request(ch->c, ch->idx);
}

/* The chip's next burst: the interval from its last one's start, ±10 %. */
static void schedule_burst(chip *ch) {
  double f = 0.9 + 0.2 * (double)rand() / RAND_MAX;
  uint64_t due = ch->start + (uint64_t)(f * g_interval_ms);
  uint64_t now = uv_now(ch->timer.loop);
  uv_timer_start(&ch->timer, burst_cb, due > now ? due - now : 0, 0);
}

static void on_frame(conn *c, uint64_t t_recv) {
  if (!c->server) {
    write_frame(c, reply_frame, reply_len);
    return;
  }
  uint64_t t_sent = c->sent[c->head];
  unsigned who = c->who[c->head];
  c->head = (c->head + 1) % c->cap;
  c->n_inflight--;
  if (st.counting) {
    st.answers++;
    if (st.n_rtts < MAX_RTTS) st.rtts[st.n_rtts++] = t_recv - t_sent;
  }
  if (!g_burst) {
    send_request(c, who);
    return;
  }
  chip *ch = &c->chips[who];
  if (ch->left > 0) {
    ch->left--;
    send_request(c, who);
  } else {
    schedule_burst(ch);
  }
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  uint64_t t_recv = now_ns();
  conn *c = (conn *)s;
  if (n < 0) {
    uv_close((uv_handle_t *)s, NULL);
    return;
  }
  (void)buf;
  size_t left = (size_t)n;
  while (left > 0) {
    size_t take = c->want - c->have < left ? c->want - c->have : left;
    c->have += take;
    left -= take;
    if (c->have == c->want) {
      c->have = 0;
      on_frame(c, t_recv);
    }
  }
}

static void set_nodelay(conn *c) { uv_tcp_nodelay(&c->tcp, 1); }

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) die("listen", status);
  conn *c = calloc(1, sizeof *c);
  if (!c) die("calloc", 0);
  uv_tcp_init(server->loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) die("accept", 0);
  set_nodelay(c);
  c->server = 1;
  c->want = reply_len;
  c->cap = g_inflight;
  c->sent = calloc(g_inflight, sizeof *c->sent);
  c->who = calloc(g_inflight, sizeof *c->who);
  if (!c->sent || !c->who) die("calloc", 0);
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  if (!g_burst) {
    for (unsigned i = 0; i < g_inflight; i++) send_request(c, i);
    return;
  }
  c->chips = calloc(g_inflight, sizeof *c->chips);
  if (!c->chips) die("calloc", 0);
  for (unsigned i = 0; i < g_inflight; i++) {
    chip *ch = &c->chips[i];
    ch->c = c;
    ch->idx = i;
    uv_timer_init(server->loop, &ch->timer);
    ch->timer.data = ch;
    uv_timer_start(&ch->timer, burst_cb, (uint64_t)rand() % g_interval_ms, 0);
  }
}

static void on_connect(uv_connect_t *req, int status) {
  if (status < 0) die("connect", status);
  conn *c = (conn *)req->handle;
  set_nodelay(c);
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  free(req);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static struct {
  double warmup, seconds, cpu0;
  unsigned long conns;
  uint64_t t0;
  uv_timer_t timer;
  int phase;
} run;

static void timer_cb(uv_timer_t *t) {
  if (run.phase == 0) {
    st.counting = 1;
    run.cpu0 = cpu_s();
    run.t0 = now_ns();
    run.phase = 1;
    uv_timer_start(t, timer_cb, (uint64_t)(run.seconds * 1000), 0);
    return;
  }
  double cpu = cpu_s() - run.cpu0;
  double secs = (double)(now_ns() - run.t0) / 1e9;
  st.counting = 0;
  qsort(st.rtts, st.n_rtts, sizeof *st.rtts, cmp_u64);
  double med = st.n_rtts ? (double)st.rtts[st.n_rtts / 2] / 1e3 : 0;
  printf("answers=%llu seconds=%.3f answers_per_s=%.0f server_cpu_s=%.3f answers_per_cpu_s=%.0f "
         "rtt_median_us=%.3f request_bytes=%zu reply_bytes=%zu conns=%lu inflight=%u burst=%u "
         "interval_ms=%u\n",
         (unsigned long long)st.answers, secs, (double)st.answers / secs, cpu,
         cpu > 0 ? (double)st.answers / cpu : 0.0, med, req_len, reply_len, run.conns,
         g_inflight, g_burst, g_interval_ms);
  fflush(stdout);
  uv_stop(t->loop);
}

int main(int argc, char **argv) {
  unsigned long inflight = 8;
  long server_cpu = -1, client_cpu = -1;
  run.conns = 250;
  run.seconds = 10;
  run.warmup = 2;
  /* Every option takes a value: options and values come in pairs. */
  for (int i = 1; i < argc; i += 2) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--conns") == 0)
      run.conns = parse_num("--conns", v, 1, 20000);
    else if (strcmp(argv[i], "--inflight") == 0)
      inflight = parse_num("--inflight", v, 1, 64);
    else if (strcmp(argv[i], "--seconds") == 0)
      run.seconds = (double)parse_num("--seconds", v, 1, 3600);
    else if (strcmp(argv[i], "--warmup") == 0)
      run.warmup = (double)parse_num("--warmup", v, 0, 600);
    else if (strcmp(argv[i], "--burst") == 0)
      g_burst = (unsigned)parse_num("--burst", v, 1, 1000000);
    else if (strcmp(argv[i], "--interval-ms") == 0)
      g_interval_ms = (unsigned)parse_num("--interval-ms", v, 1, 3600000);
    else if (strcmp(argv[i], "--server-cpu") == 0)
      server_cpu = (long)parse_num("--server-cpu", v, 0, 4095);
    else if (strcmp(argv[i], "--client-cpu") == 0)
      client_cpu = (long)parse_num("--client-cpu", v, 0, 4095);
    else {
      fprintf(stderr, "usage: reqresp [--conns C] [--inflight K] [--seconds S] [--warmup S] "
                      "[--burst B --interval-ms I] [--server-cpu N] [--client-cpu N]\n");
      return 2;
    }
  }
  if (!g_burst != !g_interval_ms) {
    fprintf(stderr, "reqresp: --burst and --interval-ms go together\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  g_inflight = (unsigned)inflight;

  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CHALLENGE;
  memset(m.u.challenge.chip, 0x22, CL_PK_LEN);
  m.u.challenge.seq = 1000000;
  memset(m.u.challenge.nonce, 0x33, CL_NONCE_LEN);
  if (cl_msg_encode(&m, req_frame, sizeof req_frame, &req_len) != CL_OK) die("encode", 0);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_RESPONSE;
  memset(m.u.response.chip, 0x22, CL_PK_LEN);
  m.u.response.seq = 1000000;
  memset(m.u.response.mac, 0x55, CL_MAC_LEN);
  if (cl_msg_encode(&m, reply_frame, sizeof reply_frame, &reply_len) != CL_OK) die("encode", 0);

  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t listener;
  uv_tcp_init(loop, &listener);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  int rc = uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0);
  if (rc) die("bind", rc);
  if ((rc = uv_listen((uv_stream_t *)&listener, 4096, on_connection))) die("listen", rc);
  int alen = sizeof addr;
  uv_tcp_getsockname(&listener, (struct sockaddr *)&addr, &alen);

  pid_t pid = fork();
  if (pid < 0) die("fork", 0);
  if (pid == 0) {
    /* The client: a fresh loop in the child (the parent's is not reused). */
    pin(client_cpu);
    uv_loop_t cl;
    uv_loop_init(&cl);
    for (unsigned long i = 0; i < run.conns; i++) {
      conn *c = calloc(1, sizeof *c);
      uv_connect_t *req = malloc(sizeof *req);
      if (!c || !req) die("malloc", 0);
      uv_tcp_init(&cl, &c->tcp);
      c->want = req_len;
      if ((rc = uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&addr, on_connect)))
        die("connect", rc);
    }
    uv_run(&cl, UV_RUN_DEFAULT);
    _exit(EXIT_SUCCESS);
  }
  pin(server_cpu);
  st.rtts = malloc(MAX_RTTS * sizeof *st.rtts);
  if (!st.rtts) die("malloc", 0);
  uv_timer_init(loop, &run.timer);
  uv_timer_start(&run.timer, timer_cb, (uint64_t)(run.warmup * 1000), 0);
  uv_run(loop, UV_RUN_DEFAULT);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  free(st.rtts);
  return EXIT_SUCCESS;
}
