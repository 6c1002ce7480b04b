/*
 * Restarts and network faults with the real landmarkd and chipagent as
 * separate processes on loopback and a real PostgreSQL. One agent holds two
 * chips; the landmark probes them every second. In turn:
 *
 *   a. the landmark restarts (SIGTERM, 2 s down, started again on the same
 *      port): the agent reconnects and re-registers by itself;
 *   b. the agent restarts;
 *   c. the agent vanishes without closing (SIGSTOP): landmarkd cuts it by
 *      its idle timeout; after SIGCONT the agent sees the closed connection
 *      and reconnects;
 *   d. the landmark vanishes without closing (SIGSTOP): the agent cuts it by
 *      its own idle timeout and starts reconnecting; after SIGCONT the
 *      landmark serves the waiting connection;
 *   e. the landmark stays down for 10 s: the agent's connection attempts
 *      follow the capped exponential backoff.
 *
 * After each fault, new measurements of both chips (measured after the
 * fault ended) must reach the database within 10 s. The backoff is read
 * from the agent's log: the delay it announces for attempt n lies in
 * [backoff_min_ms, min(backoff_max_ms, backoff_min_ms * 2^(n-1))], the next
 * attempt starts that long after, and no two consecutive attempts are
 * further apart than backoff_max_ms plus a small margin.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define INTERVAL_S 1
#define BURST 2
#define BURST_GAP_MS 50
#define DEADLINE_MS 300
#define LM_IDLE_S 5
#define AG_IDLE_S 4
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define MARGIN_MS 300           /* scheduling slack allowed on a backoff delay */
#define RESUME_MS 10000         /* measurements of both chips must be back within this */
#define STABLE_SESSION_MS 10000 /* client/agent.c: such a session resets the backoff */

static struct {
  char *dir, *db, *lconf, *aconf, *clilog;
  int port, mport;
  pid_t lm, ag;
  int lm_runs, ag_runs;
  char lmlog[512], aglog[512];
} W;

static uint64_t unix_ms(void) { return tu_unix_ns() / 1000000u; }

/* ---- logs ------------------------------------------------------------------ */

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* The ts= field of a log line in ms since the epoch; 0 when there is none. */
static uint64_t line_ts_ms(const char *line) {
  const char *p = strstr(line, "ts=");
  if (!p) return 0;
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  long us = 0;
  if (sscanf(p, "ts=%d-%d-%dT%d:%d:%d.%6ldZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec, &us) != 7)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (uint64_t)timegm(&tm) * 1000u + (uint64_t)us / 1000u;
}

/* Lines of path from byte offset off, each NUL-terminated in one malloc'd
 * buffer (*buf, to free); returns the count, lines in out (up to max). */
static int lines_after(const char *path, long off, char **buf, char **out, int max) {
  *buf = tu_read_file(path);
  ck_assert_msg(*buf != NULL, "cannot read %s", path);
  size_t len = strlen(*buf);
  char *p = *buf + ((size_t)off < len ? (size_t)off : len);
  int n = 0;
  while (*p && n < max) {
    char *nl = strchr(p, '\n');
    if (!nl) break; /* a line still being written */
    *nl = '\0';
    out[n++] = p;
    p = nl + 1;
  }
  return n;
}

static int count_after(const char *path, long off, const char *needle) {
  char *buf, *lines[4096];
  int n = lines_after(path, off, &buf, lines, 4096), c = 0;
  for (int i = 0; i < n; i++) c += strstr(lines[i], needle) != NULL;
  free(buf);
  return c;
}

/* Waits for a line holding needle after offset off; returns its ts. */
static uint64_t wait_line_after(const char *path, long off, const char *needle, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 50) {
    char *buf, *lines[4096];
    int n = lines_after(path, off, &buf, lines, 4096);
    for (int i = 0; i < n; i++) {
      if (strstr(lines[i], needle)) {
        uint64_t ts = line_ts_ms(lines[i]);
        free(buf);
        return ts;
      }
    }
    free(buf);
    tu_sleep_ms(50);
  }
  ck_abort_msg("no line with %s in %s within %d ms", needle, path, timeout_ms);
  return 0;
}

/* ts of the last line of path holding needle; 0 if none. */
static uint64_t last_line_ts(const char *path, const char *needle) {
  char *buf, *lines[16384];
  int n = lines_after(path, 0, &buf, lines, 16384);
  uint64_t ts = 0;
  for (int i = 0; i < n; i++)
    if (strstr(lines[i], needle)) ts = line_ts_ms(lines[i]);
  free(buf);
  return ts;
}

/* ---- the processes ------------------------------------------------------------ */

static void landmark_start(void) {
  W.lm_runs++;
  snprintf(W.lmlog, sizeof W.lmlog, "%s/landmarkd-%d.log", W.dir, W.lm_runs);
  W.lm = tu_landmarkd_start(W.lconf, W.lmlog);
}

static void landmark_stop(void) {
  ck_assert_int_eq(tu_stop(W.lm, SIGTERM, 15000), 0);
  W.lm = 0;
}

static void agent_start(void) {
  W.ag_runs++;
  snprintf(W.aglog, sizeof W.aglog, "%s/chipagent-%d.log", W.dir, W.ag_runs);
  W.ag = tu_chipagent_start(W.aconf, W.aglog, NULL);
}

static void agent_stop(void) {
  ck_assert_int_eq(tu_stop(W.ag, SIGTERM, 10000), 0);
  W.ag = 0;
}

/* Waits until both chips have a measurement taken after since_ms; returns
 * the wait in ms, and fails the test beyond RESUME_MS after from_ms. */
static uint64_t wait_both_measured(uint64_t since_ms, uint64_t from_ms, const char *what) {
  char q[256];
  snprintf(q, sizeof q,
           "SELECT count(DISTINCT chip_id) FROM measurements WHERE measured_at_ns > %llu",
           (unsigned long long)since_ms * 1000000ull);
  for (;;) {
    long long n = tu_sql_int(W.db, q);
    uint64_t now = unix_ms();
    if (n == 2) return now - from_ms;
    ck_assert_msg(now - from_ms <= RESUME_MS, "%s: %lld of 2 chips measured %llu ms after it ended",
                  what, n, (unsigned long long)(now - from_ms));
    tu_sleep_ms(50);
  }
}

/* landmarkd's metrics snapshot is rendered once a second. */
static double lm_metric(const char *series) {
  int status = 0;
  char *body = tu_http_get(W.mport, "/metrics", 5000, &status);
  ck_assert_msg(body != NULL && status == 200, "GET /metrics: status %d", status);
  double v = tu_metric(body, series);
  free(body);
  ck_assert_msg(v >= 0, "no series %s", series);
  return v;
}

/* ---- the agent's backoff, from its log -------------------------------------------- */

typedef struct {
  int attempts;          /* connection attempts before the next registration */
  uint64_t max_gap_ms;   /* longest time between two consecutive attempts */
  uint64_t max_delay_ms; /* longest announced delay */
  unsigned max_attempt;  /* highest attempt number */
  uint64_t first_delay_ms;
} backoff_seen;

/*
 * Reads the agent's log from offset off up to its next registration and
 * checks every reconnection on the way: the announced delay of attempt n
 * lies in [min, min(max, min * 2^(n-1))], the attempt starts that long after
 * the announcement (within MARGIN_MS), and consecutive attempts are at most
 * max + MARGIN_MS apart.
 */
static backoff_seen check_backoff(const char *log, long off) {
  backoff_seen s;
  memset(&s, 0, sizeof s);
  char *buf, *lines[4096];
  int n = lines_after(log, off, &buf, lines, 4096);
  uint64_t sched_ts = 0, sched_delay = 0, prev_connect = 0;
  int registered = 0;
  for (int i = 0; i < n && !registered; i++) {
    const char *l = lines[i];
    if (strstr(l, "msg=\"reconnect scheduled\"")) {
      long long d = tu_line_value(l, "delay_ms"), a = tu_line_value(l, "attempt");
      ck_assert_msg(d >= 0 && a >= 1, "unparsable line: %s", l);
      uint64_t env = BACKOFF_MIN_MS;
      for (long long k = 1; k < a && env < BACKOFF_MAX_MS; k++) env *= 2;
      if (env > BACKOFF_MAX_MS) env = BACKOFF_MAX_MS;
      ck_assert_msg((uint64_t)d >= BACKOFF_MIN_MS && (uint64_t)d <= env,
                    "attempt %lld: delay %lld ms outside [%d, %llu]", a, d, BACKOFF_MIN_MS,
                    (unsigned long long)env);
      if (s.first_delay_ms == 0) s.first_delay_ms = (uint64_t)d;
      if ((uint64_t)d > s.max_delay_ms) s.max_delay_ms = (uint64_t)d;
      if ((unsigned)a > s.max_attempt) s.max_attempt = (unsigned)a;
      sched_ts = line_ts_ms(l);
      sched_delay = (uint64_t)d;
    } else if (strstr(l, "msg=connecting ")) {
      uint64_t ts = line_ts_ms(l);
      ck_assert_msg(sched_ts != 0, "an attempt without an announced delay: %s", l);
      /* Timers run on the monotonic clock, log stamps on the wall clock:
       * allow a few ms early for the rounding of both. */
      ck_assert_msg(ts + 5 >= sched_ts + sched_delay && ts <= sched_ts + sched_delay + MARGIN_MS,
                    "attempt started %lld ms after a delay of %llu ms was announced",
                    (long long)(ts - sched_ts), (unsigned long long)sched_delay);
      if (prev_connect) {
        uint64_t gap = ts - prev_connect;
        ck_assert_msg(gap <= BACKOFF_MAX_MS + MARGIN_MS,
                      "%llu ms between two connection attempts, cap %d ms", (unsigned long long)gap,
                      BACKOFF_MAX_MS);
        if (gap > s.max_gap_ms) s.max_gap_ms = gap;
      }
      prev_connect = ts;
      sched_ts = 0;
      s.attempts++;
    } else if (strstr(l, "msg=registered ")) {
      registered = 1;
    }
  }
  free(buf);
  ck_assert_msg(registered, "no registration after the reconnections in %s", log);
  return s;
}

/* Waits until the agent's current session has lasted STABLE_SESSION_MS, so
 * that its next reconnection starts the backoff from attempt 1. */
static void wait_stable_session(void) {
  uint64_t reg = last_line_ts(W.aglog, "msg=registered ");
  ck_assert(reg != 0);
  uint64_t until = reg + STABLE_SESSION_MS + 500;
  uint64_t now = unix_ms();
  if (until > now) tu_sleep_ms((int)(until - now));
}

/* ---- the cases ---------------------------------------------------------------------- */

/* a. SIGTERM to landmarkd, 2 s down, started again on the same port. */
static void case_landmark_restart(void) {
  long off = file_size(W.aglog);
  int reg0 = tu_count_in_file(W.aglog, "msg=registered ");
  landmark_stop();
  tu_sleep_ms(2000);
  landmark_start();
  uint64_t up = unix_ms();
  uint64_t wait = wait_both_measured(up, up, "landmark restart");
  ck_assert_int_ge(count_after(W.aglog, off, "msg=disconnected "), 1);
  ck_assert_int_ge(count_after(W.aglog, off, "msg=\"reconnect scheduled\""), 1);
  ck_assert_int_gt(tu_count_in_file(W.aglog, "msg=registered "), reg0);
  backoff_seen b = check_backoff(W.aglog, off);
  ck_assert_uint_eq(b.first_delay_ms, BACKOFF_MIN_MS);
  fprintf(stderr,
          "a. landmark restart: %d attempts while down, longest gap %llu ms, both chips measured "
          "%llu ms after the new landmarkd listened\n",
          b.attempts, (unsigned long long)b.max_gap_ms, (unsigned long long)wait);
}

/* b. SIGTERM to chipagent, started again. */
static void case_agent_restart(void) {
  agent_stop();
  ck_assert_int_ge(tu_count_in_file(W.aglog, "msg=stopped exit=0"), 1);
  agent_start();
  uint64_t up = unix_ms();
  uint64_t wait = wait_both_measured(up, up, "agent restart");
  ck_assert_int_eq(tu_wait_log(W.aglog, "msg=registered ", 1, 1000), 0);
  fprintf(stderr, "b. agent restart: both chips measured %llu ms after the new agent started\n",
          (unsigned long long)wait);
}

/* c. The agent stops without closing: landmarkd's idle timeout cuts it. */
static void case_agent_vanishes(void) {
  const char *idle = "chiploc_timeouts_total{kind=\"idle\"}";
  double idle0 = lm_metric(idle);
  long agoff = file_size(W.aglog);
  long lmoff = file_size(W.lmlog);
  ck_assert_int_eq(kill(W.ag, SIGSTOP), 0);
  uint64_t stopped = unix_ms();
  /* The connection stays open (no FIN); only the idle timeout ends it. */
  uint64_t cut =
      wait_line_after(W.lmlog, lmoff, "msg=rejected reason=idle_timeout ", (LM_IDLE_S + 10) * 1000);
  wait_line_after(W.lmlog, lmoff, "msg=\"connection closed\"", 2000);
  double idle1 = idle0;
  for (int i = 0; i < 50 && idle1 < idle0 + 1; i++) {
    idle1 = lm_metric(idle);
    if (idle1 < idle0 + 1) tu_sleep_ms(100);
  }
  ck_assert_msg(idle1 >= idle0 + 1, "%s stayed at %g", idle, idle1);
  ck_assert_msg(cut - stopped >= (LM_IDLE_S - 2) * 1000u,
                "landmarkd cut the stopped agent after %llu ms, before its idle timeout",
                (unsigned long long)(cut - stopped));
  tu_sleep_ms(500); /* the stats line follows every second */
  ck_assert_int_ge(tu_last_stat(W.lmlog, "idle_timeouts"), 1);
  ck_assert_int_eq(kill(W.ag, SIGCONT), 0);
  uint64_t resumed = unix_ms();
  uint64_t wait = wait_both_measured(resumed, resumed, "agent stopped");
  /* The agent learnt of the close from the landmark (its Error frame, the
   * FIN or a reset), not from its own idle timeout: its first idle check
   * after SIGCONT is put off until the waiting input has been read. */
  ck_assert_int_ge(count_after(W.aglog, agoff, "msg=disconnected "), 1);
  ck_assert_int_eq(count_after(W.aglog, agoff, "msg=\"landmark idle; reconnecting\""), 0);
  ck_assert_int_ge(count_after(W.aglog, agoff, "msg=registered "), 1);
  fprintf(stderr,
          "c. agent stopped: landmarkd cut it %llu ms after SIGSTOP (idle_timeout_s=%d); both "
          "chips measured %llu ms after SIGCONT\n",
          (unsigned long long)(cut - stopped), LM_IDLE_S, (unsigned long long)wait);
}

/* d. landmarkd stops without closing: the agent's idle timeout cuts it. */
static void case_landmark_vanishes(void) {
  long off = file_size(W.aglog);
  int idle0 = tu_count_in_file(W.aglog, "msg=\"landmark idle; reconnecting\"");
  ck_assert_int_eq(kill(W.lm, SIGSTOP), 0);
  uint64_t stopped = unix_ms();
  uint64_t idle_ts =
      wait_line_after(W.aglog, off, "msg=\"landmark idle; reconnecting\"", (AG_IDLE_S + 10) * 1000);
  uint64_t seen = unix_ms();
  ck_assert_int_eq(tu_count_in_file(W.aglog, "msg=\"landmark idle; reconnecting\""), idle0 + 1);
  ck_assert_msg(seen - stopped >= (AG_IDLE_S - 2) * 1000u,
                "the agent gave up on the landmark %llu ms after SIGSTOP, before its idle timeout",
                (unsigned long long)(seen - stopped));
  /* It reconnects: the attempt hangs (a stopped process's listener still
   * completes handshakes into its backlog) or fails; either is fine. */
  wait_line_after(W.aglog, off, "msg=connecting ", BACKOFF_MAX_MS + 2000);
  tu_sleep_ms(1000);
  int hung = count_after(W.aglog, off, "msg=connected ");
  int failed = count_after(W.aglog, off, "msg=\"connect failed\"");
  ck_assert_int_ge(hung + failed, 1);
  ck_assert_int_eq(kill(W.lm, SIGCONT), 0);
  uint64_t resumed = unix_ms();
  uint64_t wait = wait_both_measured(resumed, resumed, "landmark stopped");
  ck_assert_int_ge(count_after(W.aglog, off, "msg=registered "), 1);
  fprintf(stderr,
          "d. landmark stopped: the agent declared it idle %llu ms after SIGSTOP "
          "(idle_timeout_s=%d); reconnection %s; both chips measured %llu ms after SIGCONT\n",
          (unsigned long long)(idle_ts - stopped), AG_IDLE_S,
          hung ? "connected into the stopped landmark's backlog" : "failed",
          (unsigned long long)wait);
}

/* e. landmarkd down for 10 s: the backoff grows, then stays capped. */
static void case_backoff_capped(void) {
  wait_stable_session();
  long off = file_size(W.aglog);
  landmark_stop();
  tu_sleep_ms(10000);
  landmark_start();
  uint64_t up = unix_ms();
  uint64_t wait = wait_both_measured(up, up, "landmark down for 10 s");
  backoff_seen b = check_backoff(W.aglog, off);
  /* After a stable session the backoff starts again at its minimum... */
  ck_assert_uint_eq(b.first_delay_ms, BACKOFF_MIN_MS);
  /* ...and grows: in 10 s the envelope reaches the cap (attempt 6 has
   * min * 2^5 = 3200 > 2000) and some delay goes well above the minimum. */
  ck_assert_uint_ge(b.max_attempt, 6);
  ck_assert_uint_ge(b.attempts, 6);
  ck_assert_uint_ge(b.max_delay_ms, 4 * BACKOFF_MIN_MS);
  fprintf(stderr,
          "e. landmark down 10 s: %d attempts up to attempt %u, longest delay %llu ms, longest "
          "gap %llu ms (cap %d + margin %d); both chips measured %llu ms after it listened\n",
          b.attempts, b.max_attempt, (unsigned long long)b.max_delay_ms,
          (unsigned long long)b.max_gap_ms, BACKOFF_MAX_MS, MARGIN_MS, (unsigned long long)wait);
}

/* ---- the run ----------------------------------------------------------------------- */

START_TEST(test_restarts_and_faults) {
  /* A failed assertion exits the test process: testutil then kills the
   * daemons, a stopped one too, so that no run leaves them behind. */
  memset(&W, 0, sizeof W);
  W.dir = tu_own(tu_tmpdir("chiploc-restart"));
  W.clilog = tu_fmt("%s/cli.log", W.dir);
  W.db = tu_own(tu_db_create("chiploc_restart"));
  ck_assert_int_eq(tu_cli(W.clilog, "db", "migrate", "--db", W.db, NULL), 0);
  char *lkey = tu_keygen(W.dir, "landmark", W.clilog);
  char *k0 = tu_keygen(W.dir, "chip-0", W.clilog);
  char *k1 = tu_keygen(W.dir, "chip-1", W.clilog);
  char *lhex = tu_key_hex(lkey);
  ck_assert_int_eq(tu_cli(W.clilog, "landmark", "add", "--db", W.db, "--name", "lm-paris", "--pubkey",
                       lhex, "--lat", "48.8566", "--lon", "2.3522", NULL),
                   0);
  ck_assert_int_eq(tu_cli(W.clilog, "chip", "enroll", "--db", W.db, "--pubkey-file", k0, "--serial",
                       "R-0000", "--operator", "dc", "--site", "48.85,2.35", NULL),
                   0);
  ck_assert_int_eq(tu_cli(W.clilog, "chip", "enroll", "--db", W.db, "--pubkey-file", k1, "--serial",
                       "R-0001", "--operator", "dc", "--site", "48.85,2.35", NULL),
                   0);

  W.port = tu_free_port();
  W.mport = tu_free_port();
  tu_landmark_opts lo = tu_landmark_defaults();
  lo.key = lkey;
  lo.port = W.port;
  lo.conninfo = W.db;
  lo.refresh_interval_s = 0; /* landmarkd's default */
  lo.interval_s = INTERVAL_S;
  lo.burst = BURST;
  lo.burst_gap_ms = BURST_GAP_MS;
  lo.deadline_ms = DEADLINE_MS;
  lo.idle_timeout_s = LM_IDLE_S;
  lo.metrics_port = W.mport;
  W.lconf = tu_landmark_conf(W.dir, &lo);
  tu_agent_opts ao = {.name = "restart-host", .backoff_min_ms = BACKOFF_MIN_MS,
                      .backoff_max_ms = BACKOFF_MAX_MS, .idle_timeout_s = AG_IDLE_S,
                      .landmarks = {{"paris", W.port, lhex}},
                      .chips = {{"gpu0", k0}, {"gpu1", k1}}};
  W.aconf = tu_agent_conf(W.dir, &ao);

  landmark_start();
  agent_start();
  uint64_t t0 = unix_ms();
  ck_assert_int_eq(tu_wait_log(W.aglog, "msg=registered ", 1, 10000), 0);
  ck_assert_int_ge(tu_count_in_file(W.aglog, "idle_timeout_s=4"), 1);
  wait_both_measured(t0, t0, "first start");

  case_landmark_restart();
  case_agent_restart();
  case_agent_vanishes();
  case_landmark_vanishes();
  case_backoff_capped();

  /* The agent's counters: one idle timeout (case d), and reconnections. */
  agent_stop();
  ck_assert_int_eq(tu_last_stat(W.aglog, "idle_timeouts"), 1);
  ck_assert_int_ge(tu_last_stat(W.aglog, "reconnects"), 3);
  ck_assert_int_ge(tu_last_stat(W.aglog, "answered"), 1);
  landmark_stop();
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  signal(SIGPIPE, SIG_IGN);
  Suite *s = suite_create("restart");
  TCase *tc = tcase_create("processes");
  tcase_set_timeout(tc, 280);
  tcase_add_test(tc, test_restarts_and_faults);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
