/*
 * No peer can grow landmarkd's memory: the real landmarkd (metrics on) and a
 * real chipagent with one honest chip run as separate processes against a
 * real PostgreSQL, while the test registers another enrolled chip on a raw
 * socket from 127.0.0.2 (a complete protocol-2 handshake, then its first
 * Challenge, so that the chip is active) and then, never reading a byte,
 * writes Responses{chip, seq, mac} for seqs the landmark never issued, with
 * random MACs, as fast as the socket takes them, for FLOOD_S seconds. Each
 * Response is rejected (unknown_probe); before the fix each rejection
 * queued an Error frame for a peer that never reads, and landmarkd grew
 * from 8 MiB to 1 GiB in six seconds.
 *
 * Three runs of landmarkd, one flood each:
 *   1. the defaults: the Error replies are rate-limited per connection, so
 *      almost all are dropped (error_replies_suppressed);
 *   2. replies unlimited (max_error_replies_per_s at its maximum): the
 *      write queue fills, and the connection is no longer read once it
 *      passes a quarter of max_write_queue_bytes (reads_paused), without
 *      being closed; its queue is given back when the flooder leaves;
 *   3. replies unlimited, max_write_queue_bytes at its minimum and
 *      FLOOD_CHIPS chips on the flooder's connection: once reading has
 *      paused, the challenges of its chips go on filling the queue, which
 *      overflows, and the landmark closes the connection
 *      (write_queue_overflows), logging the peer and its chips.
 *
 * Throughout each flood landmarkd's resident size (VmRSS) is sampled every
 * 100 ms and must stay below RSS_BOUND_KB (64 MiB; with AddressSanitizer,
 * whose shadow memory and quarantine inflate it, the growth over the size
 * before the flood must), and the honest chip must go on being measured:
 * at least FLOOD_S / 2 measurements inside the flood, and one more after
 * it (the log gives how many were full bursts, and the slowest RTT).
 */
#define _GNU_SOURCE
#include "cl_chipsess.h"
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_msg.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define INTERVAL_S 1
#define BURST 3
#define FLOOD_S 6
#define RSS_BOUND_KB (64 * 1024)
#define FLOOD_ADDR "127.0.0.2"
#define FLOOD_FRAMES 750 /* Responses per buffer written in a loop (86 bytes each): 63 KiB */
#define REPLIES_UNLIMITED 100000
#define QUEUE_MIN 65536
#define FLOOD_CHIPS 16 /* run 3: 48 challenges a second that nobody reads */

#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_BUILD 1
#endif
#endif
#ifndef ASAN_BUILD
#define ASAN_BUILD 0
#endif

static struct {
  char *dir, *db, *lkey, *lhex, *clilog;
  cl_key *flood_chip[FLOOD_CHIPS];
  int port, mport;
  char *lmlog;
  pid_t lm;
} W;

/* ---- metrics ------------------------------------------------------------- */

static double metric(const char *series) {
  int status = 0;
  char *t = tu_http_get(W.mport, "/metrics", 5000, &status);
  ck_assert_msg(t != NULL && status == 200, "GET /metrics: status %d", status);
  double v = tu_metric(t, series);
  free(t);
  ck_assert_msg(v >= 0, "no series %s on /metrics", series);
  return v;
}

/* The snapshot is rendered once a second: waits up to 5 s for the series
 * to satisfy want (as `v >= want` or, with eq, `v == want`). */
static double await_metric(const char *series, double want, int eq) {
  double v = -1;
  for (int i = 0; i < 50; i++) {
    v = metric(series);
    if (eq ? v == want : v >= want) return v;
    tu_sleep_ms(100);
  }
  ck_abort_msg("%s is %g, want %s %g", series, v, eq ? "==" : ">=", want);
  return v;
}

/* ---- the landmark and the honest chip ------------------------------------- */

/* Measurements of the honest chip with at least min_probes accepted probes
 * measured in [from_ns, to_ns] (Unix ns); *max_rtt_ns (may be NULL)
 * receives the slowest one's RTT. */
static long long honest_measured(uint64_t from_ns, uint64_t to_ns, int min_probes,
                                 long long *max_rtt_ns) {
  char where[320], q[400];
  snprintf(where, sizeof where,
           "FROM measurements m JOIN chips c ON c.id = m.chip_id WHERE c.serial = 'A-0001' "
           "AND m.probe_count >= %d AND m.measured_at_ns BETWEEN %llu AND %llu",
           min_probes, (unsigned long long)from_ns, (unsigned long long)to_ns);
  if (max_rtt_ns) {
    snprintf(q, sizeof q, "SELECT coalesce(max(m.rtt_ns), 0) %s", where);
    *max_rtt_ns = tu_sql_int(W.db, q);
  }
  snprintf(q, sizeof q, "SELECT count(*) %s", where);
  return tu_sql_int(W.db, q);
}

/* The first line of the log holding needle also holds want. */
static void expect_log_line_has(const char *log, const char *needle, const char *want) {
  char *text = tu_read_file(log);
  ck_assert_ptr_nonnull(text);
  char *at = strstr(text, needle);
  ck_assert_msg(at != NULL, "no log line \"%s\"", needle);
  char *eol = strchr(at, '\n');
  if (eol) *eol = '\0';
  ck_assert_msg(strstr(at, want) != NULL, "log line without \"%s\": %s", want, at);
  free(text);
}

/* Waits up to 20 s for a measurement of the honest chip taken after
 * `since` (Unix ns). */
static void await_honest(uint64_t since, const char *when) {
  for (int i = 0; i < 200; i++) {
    if (honest_measured(since, UINT64_MAX / 2, 1, NULL) > 0) return;
    tu_sleep_ms(100);
  }
  ck_abort_msg("honest chip not measured %s", when);
}

/* Starts landmarkd run `run` on the shared port, with a metrics port of its
 * own; 0 leaves a setting at its default. */
static void landmark_start(int run, int replies_per_s, int queue_bytes) {
  W.mport = tu_free_port();
  tu_landmark_opts lo = tu_landmark_defaults();
  lo.file = tu_fmt("landmarkd-%d.conf", run);
  lo.key = W.lkey;
  lo.port = W.port;
  lo.conninfo = W.db;
  lo.interval_s = INTERVAL_S;
  lo.burst = BURST;
  lo.metrics_port = W.mport;
  lo.max_error_replies_per_s = replies_per_s;
  lo.max_write_queue_bytes = queue_bytes;
  W.lmlog = tu_fmt("%s/landmarkd-%d.log", W.dir, run);
  W.lm = tu_landmarkd_start(tu_landmark_conf(W.dir, &lo), W.lmlog);
}

static void landmark_stop(void) {
  ck_assert_int_eq(tu_stop(W.lm, SIGTERM, 15000), 0);
  W.lm = 0;
}

/* ---- the flooder ------------------------------------------------------------ */

typedef struct {
  tu_wire w;
  cl_chipsess sess[FLOOD_CHIPS];
  uint8_t keys[FLOOD_CHIPS * CL_SESSION_KEY_LEN];
  uint64_t bytes;           /* Response bytes the socket took */
  long rss_before_kb, rss_max_kb;
  int closed;               /* the landmark closed (reset) the connection */
  uint64_t t0_ns, t1_ns;    /* the flood, Unix ns */
} flood;

/* Connects from FLOOD_ADDR and registers n flood chips (every handshake
 * completes), then waits for the first Challenge of flood chip 0: it is
 * active, and its Responses are checked as answers. From then on the test
 * never reads from this socket. */
static void flooder_register(flood *f, size_t n) {
  memset(f, 0, sizeof *f);
  ck_assert_int_eq(tu_wire_connect(&f->w, FLOOD_ADDR, W.port), 0);
  ck_assert_uint_eq(tu_chip_handshake(&f->w, W.flood_chip, n, f->sess, f->keys), n);
  cl_msg m;
  for (;;) {
    ck_assert_msg(tu_wire_recv(&f->w, &m, 5000) == 0, "no Challenge for flood chip 0 in 5 s");
    if (m.type == CL_MSG_CHALLENGE &&
        memcmp(m.u.challenge.chip, cl_key_public(W.flood_chip[0]), CL_PK_LEN) == 0)
      break;
  }
}

/* landmarkd's RSS now; the test fails once it passes the bound. */
static void sample_rss(flood *f) {
  long kb = tu_proc_rss_kb(W.lm);
  ck_assert_msg(kb > 0, "no VmRSS for landmarkd (pid %d): did it die?", (int)W.lm);
  if (kb > f->rss_max_kb) f->rss_max_kb = kb;
  long limit = ASAN_BUILD ? f->rss_before_kb + RSS_BOUND_KB : RSS_BOUND_KB;
  ck_assert_msg(kb < limit,
                "landmarkd grew to %ld KiB (%ld KiB before the flood, %llu bytes flooded so far); "
                "the bound is %ld KiB",
                kb, f->rss_before_kb, (unsigned long long)f->bytes, limit);
}

/* Writes Responses for seqs never issued for FLOOD_S seconds, as fast as
 * the socket takes them, sampling landmarkd's RSS every 100 ms. */
static void flooder_run(flood *f) {
  size_t cap = FLOOD_FRAMES * 256, len = 0;
  uint8_t *buf = malloc(cap);
  ck_assert_ptr_nonnull(buf);
  for (int i = 0; i < FLOOD_FRAMES; i++) {
    cl_msg m;
    memset(&m, 0, sizeof m);
    m.type = CL_MSG_RESPONSE;
    memcpy(m.u.response.chip, cl_key_public(W.flood_chip[0]), CL_PK_LEN);
    m.u.response.seq = (1ull << 62) + (uint64_t)i; /* the landmark's seqs count from 1 */
    randombytes_buf(m.u.response.mac, CL_MAC_LEN);
    size_t one = 0;
    ck_assert_int_eq(cl_msg_encode(&m, buf + len, cap - len, &one), CL_OK);
    len += one;
  }
  int fl = fcntl(f->w.fd, F_GETFL);
  ck_assert_int_eq(fcntl(f->w.fd, F_SETFL, fl | O_NONBLOCK), 0);
  f->rss_before_kb = f->rss_max_kb = tu_proc_rss_kb(W.lm);
  f->t0_ns = tu_unix_ns();
  uint64_t start = tu_mono_ns(), end = start + FLOOD_S * 1000000000ull, next_sample = start;
  size_t off = 0;
  for (uint64_t now = start; now < end; now = tu_mono_ns()) {
    if (now >= next_sample) {
      sample_rss(f);
      next_sample += 100000000ull;
    }
    if (f->closed) {
      tu_sleep_ms(20);
      continue;
    }
    ssize_t n = send(f->w.fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off = (off + (size_t)n) % len;
      f->bytes += (uint64_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {.fd = f->w.fd, .events = POLLOUT};
      poll(&p, 1, 10);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      ck_assert_msg(n < 0 && (errno == EPIPE || errno == ECONNRESET), "send: %s",
                    n < 0 ? strerror(errno) : "returned 0");
      f->closed = 1;
    }
  }
  sample_rss(f);
  f->t1_ns = tu_unix_ns();
  free(buf);
}

/* Waits up to ms for the landmark to reset the flooder's connection (it
 * does not read, so the landmark's close comes as a reset). */
static void flooder_await_closed(flood *f, int ms) {
  for (int waited = 0; !f->closed && waited < ms; waited += 50) {
    struct pollfd p = {.fd = f->w.fd, .events = POLLRDHUP};
    if (poll(&p, 1, 50) == 1 && (p.revents & (POLLERR | POLLHUP | POLLRDHUP))) f->closed = 1;
  }
}

/* The socket, and the flood chips' session keys. */
static void flooder_close(flood *f) {
  tu_wire_close(&f->w);
  for (size_t i = 0; i < FLOOD_CHIPS; i++)
    if (f->sess[i].key) cl_chipsess_end(&f->sess[i]);
}

/* The honest chip was measured all through the flood and after it. */
static void expect_honest_measured(const flood *f, const char *run) {
  await_honest(f->t1_ns, "after the flood");
  long long max_rtt = 0;
  long long n = honest_measured(f->t0_ns, f->t1_ns, 1, &max_rtt);
  long long full = honest_measured(f->t0_ns, f->t1_ns, BURST, NULL);
  fprintf(stderr,
          "test_flood: %s: %llu bytes of Responses, landmarkd RSS %ld KiB before, %ld KiB at "
          "most; honest chip: %lld measurements (%lld full bursts) in %d s, slowest %.3f ms\n",
          run, (unsigned long long)f->bytes, f->rss_before_kb, f->rss_max_kb, n, full, FLOOD_S,
          (double)max_rtt / 1e6);
  ck_assert_msg(n >= FLOOD_S / 2, "%s: honest chip measured %lld times in a %d s flood", run, n,
                FLOOD_S);
}

/* ---- the runs -------------------------------------------------------------- */

/* 1. Defaults: replies rate-limited. The flood is read and rejected, and
 * almost every reply dropped; nothing piles up. */
static void run_defaults(void) {
  landmark_start(1, 0, 0);
  uint64_t t = tu_unix_ns();
  await_honest(t, "before the flood");
  double rejected0 = metric("chiploc_responses_rejected_total{reason=\"unknown_probe\"}");
  flood f;
  flooder_register(&f, 1);
  flooder_run(&f);
  ck_assert_msg(!f.closed, "defaults: the flooder was closed");
  double rejected = await_metric("chiploc_responses_rejected_total{reason=\"unknown_probe\"}",
                                 rejected0 + 1000, 0);
  double suppressed = await_metric("chiploc_error_replies_suppressed_total", rejected - 100, 0);
  fprintf(stderr, "test_flood: defaults: %.0f responses rejected, %.0f replies suppressed\n",
          rejected - rejected0, suppressed);
  ck_assert_double_eq(metric("chiploc_write_queue_overflows_total"), 0);
  expect_honest_measured(&f, "defaults");
  flooder_close(&f);
  ck_assert_int_eq(tu_wait_log(W.lmlog, "msg=stats", 1, 5000), 0);
  tu_sleep_ms(1200);
  ck_assert_int_gt(tu_last_stat(W.lmlog, "error_replies_suppressed"), 0);
  landmark_stop();
}

/* 2. Replies unlimited: the write queue fills until the landmark stops
 * reading the connection; the connection stays, and its queue is given
 * back when the flooder leaves. */
static void run_paused(void) {
  landmark_start(2, REPLIES_UNLIMITED, 0);
  uint64_t t = tu_unix_ns();
  await_honest(t, "before the flood");
  flood f;
  flooder_register(&f, 1);
  flooder_run(&f);
  ck_assert_msg(!f.closed, "paused: the flooder was closed");
  await_metric("chiploc_reads_paused_total", 1, 0);
  await_metric("chiploc_connections_read_paused", 1, 1);
  double queued = metric("chiploc_write_queue_bytes");
  fprintf(stderr, "test_flood: paused: %.0f bytes queued for the flooder\n", queued);
  ck_assert_double_gt(queued, 262144 / 4);
  ck_assert_double_le(queued, 262144);
  ck_assert_double_eq(metric("chiploc_write_queue_overflows_total"), 0);
  expect_honest_measured(&f, "paused");
  /* The flooder leaves: its queue and its pause go with it. */
  flooder_close(&f);
  await_metric("chiploc_connections_read_paused", 0, 1);
  await_metric("chiploc_connections", 1, 1);
  await_metric("chiploc_write_queue_bytes", 0, 1);
  tu_sleep_ms(1200);
  ck_assert_int_gt(tu_last_stat(W.lmlog, "reads_paused"), 0);
  landmark_stop();
}

/* 3. Replies unlimited, smallest write queue, many chips: the queue
 * overflows, and the landmark closes the connection and names the peer and
 * its chips. */
static void run_overflow(void) {
  landmark_start(3, REPLIES_UNLIMITED, QUEUE_MIN);
  uint64_t t = tu_unix_ns();
  await_honest(t, "before the flood");
  flood f;
  flooder_register(&f, FLOOD_CHIPS);
  flooder_run(&f);
  flooder_await_closed(&f, 10000);
  ck_assert_msg(f.closed, "overflow: the flooder was not closed");
  await_metric("chiploc_write_queue_overflows_total", 1, 0);
  char hex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(W.flood_chip[0]), hex);
  hex[16] = '\0';
  char *needle = tu_fmt("msg=rejected reason=write_queue_full peer=" FLOOD_ADDR ":");
  ck_assert_msg(tu_wait_log(W.lmlog, needle, 1, 5000) == 0, "no log line \"%s\"", needle);
  expect_log_line_has(W.lmlog, needle, hex);
  expect_honest_measured(&f, "overflow");
  flooder_close(&f);
  await_metric("chiploc_write_queue_bytes", 0, 1);
  tu_sleep_ms(1200);
  ck_assert_int_gt(tu_last_stat(W.lmlog, "write_queue_overflows"), 0);
  landmark_stop();
}

START_TEST(test_flood_bounded) {
  W.dir = tu_own(tu_tmpdir("chiploc-flood"));
  W.clilog = tu_fmt("%s/cli.log", W.dir);
  char *aglog = tu_fmt("%s/chipagent.log", W.dir);
  W.db = tu_own(tu_db_create("chiploc_flood"));
  ck_assert_int_eq(tu_cli(W.clilog, "db", "migrate", "--db", W.db, NULL), 0);
  W.lkey = tu_keygen(W.dir, "landmark", W.clilog);
  char *akey = tu_keygen(W.dir, "chip-a", W.clilog);
  W.lhex = tu_key_hex(W.lkey);
  ck_assert_int_eq(tu_cli(W.clilog, "landmark", "add", "--db", W.db, "--name", "lm-paris",
                          "--pubkey", W.lhex, "--lat", "48.8566", "--lon", "2.3522", NULL),
                   0);
  for (int i = 0; i <= FLOOD_CHIPS; i++) {
    char *key = i == 0 ? akey : tu_keygen(W.dir, tu_fmt("chip-f%d", i), W.clilog);
    char *serial = i == 0 ? tu_fmt("A-0001") : tu_fmt("F-%04d", i);
    ck_assert_int_eq(tu_cli(W.clilog, "chip", "enroll", "--db", W.db, "--pubkey-file", key,
                            "--serial", serial, "--operator", "dc", "--site", "48.85,2.35", NULL),
                     0);
    if (i > 0) W.flood_chip[i - 1] = tu_key_load(key);
  }
  W.port = tu_free_port();
  /* One honest agent for all three runs: it reconnects to each landmarkd
   * on the same port by itself. */
  tu_agent_opts ao = {.name = "honest-host", .backoff_min_ms = 50, .backoff_max_ms = 500,
                      .landmarks = {{"paris", W.port, W.lhex}}, .chips = {{"a", akey}}};
  pid_t ag = tu_chipagent_start(tu_agent_conf(W.dir, &ao), aglog, NULL);

  run_defaults();
  run_paused();
  run_overflow();

  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  for (int i = 0; i < FLOOD_CHIPS; i++) cl_key_destroy(&W.flood_chip[i]);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  signal(SIGPIPE, SIG_IGN);
  if (ASAN_BUILD) {
    /* Freed memory waits in ASan's quarantine (256 MiB by default) before
     * it is reused: keep it small so that RSS shows what landmarkd holds. */
    const char *o = getenv("ASAN_OPTIONS");
    char *opts = NULL;
    if (asprintf(&opts, "%s%squarantine_size_mb=16", o ? o : "", o && *o ? ":" : "") > 0)
      setenv("ASAN_OPTIONS", opts, 1);
    free(opts);
  }
  Suite *s = suite_create("flood");
  TCase *tc = tcase_create("processes");
  tcase_set_timeout(tc, 280);
  tcase_add_test(tc, test_flood_bounded);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
