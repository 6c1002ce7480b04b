/*
 * A database host that vanishes without resetting the connection. The real
 * landmarkd writes to the test PostgreSQL through a network: the server's
 * Unix socket is forwarded (tests/pgfwd.py) from 10.77.N.2, inside a
 * network namespace joined to this one by a veth pair. Taking the
 * namespace's end of the link down makes the host vanish: packets are no
 * longer delivered and nothing answers, as with a power loss or a
 * partition. With the connection defaults of cl_store_connect
 * (tcp_user_timeout, keepalives, connect_timeout) the writer notices within
 * a bound, where the kernel's retransmissions alone would block it for
 * about 15 minutes, and spools; after the link comes back every accepted
 * measurement is in the database, once.
 *
 * Namespaces need root: the test fails (it does not skip) without it. The
 * namespace and the veth pair are named after the test's pid; the fixture
 * removes them in the parent process, also when the test fails, and
 * removes those a killed run left behind.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define N_CHIPS 3
/* Bound on noticing the vanished host: tcp_user_timeout (30 s) for the
 * statement in flight, one connect_timeout (10 s) for a reconnect attempt,
 * and slack for a loaded machine. The kernel's default retransmissions
 * (tcp_retries2 = 15) take about 924 s. */
#define NOTICE_BOUND_S 90
/* The database server's port on the forwarded address. */
#define FWD_PORT 5432
#define NS_PREFIX "clnet"
#define VETH_PREFIX "clva"

/* The namespace and link of this run: NS_PREFIX<pid>, VETH_PREFIX<pid>
 * (interface names are at most 15 characters). */
static char g_ns[32], g_veth[32], g_host_ip[32], g_db_ip[32];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs `ip ARGS...`; the exit status (output into log, or discarded). */
static int ip_run(const char *log, ...) {
  char *argv[24];
  int argc = 0;
  argv[argc++] = "/usr/sbin/ip";
  if (access(argv[0], X_OK) != 0) argv[0] = "/sbin/ip";
  va_list ap;
  va_start(ap, log);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && argc < 23) argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  return tu_run(argv, log ? log : "/dev/null");
}

/* Removes the namespace and link of a run of this test. */
static void net_remove(const char *ns, const char *veth) {
  ip_run(NULL, "netns", "del", ns, NULL);
  ip_run(NULL, "link", "del", veth, NULL);
}

/* Removes what runs killed before their teardown left: namespaces of this
 * test whose pid is gone. */
static void net_remove_stale(void) {
  DIR *d = opendir("/run/netns");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, NS_PREFIX, strlen(NS_PREFIX)) != 0) continue;
    char *end = NULL;
    long pid = strtol(e->d_name + strlen(NS_PREFIX), &end, 10);
    if (!end || *end || pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
      char veth[32];
      snprintf(veth, sizeof veth, VETH_PREFIX "%ld", pid);
      net_remove(e->d_name, veth);
    }
  }
  closedir(d);
}

/* Whether some interface of this host already has an address in 10.77.n.0/24. */
static int subnet_used(int n) {
  char *dir = tu_tmpdir("chiploc-dbnet-ip");
  char *log = tu_fmt("%s/addr", dir);
  ip_run(log, "-4", "-o", "addr", "show", NULL);
  char *text = tu_read_file(log);
  char needle[32];
  snprintf(needle, sizeof needle, " 10.77.%d.", n);
  int used = text && strstr(text, needle) != NULL;
  free(text);
  unlink(log);
  rmdir(dir);
  free(dir);
  return used;
}

/* Unchecked fixture, in the parent process: creates the "database host"
 * namespace and the veth pair, 10.77.N.1 here and 10.77.N.2 there. */
static void net_setup(void) {
  if (geteuid() != 0) {
    fprintf(stderr, "test_dbnet: needs root (network namespaces and veth links); CI runs "
                    "as root\n");
    return; /* the test itself fails on the missing namespace */
  }
  net_remove_stale();
  snprintf(g_ns, sizeof g_ns, NS_PREFIX "%d", (int)getpid());
  snprintf(g_veth, sizeof g_veth, VETH_PREFIX "%d", (int)getpid());
  int n = 20 + (int)(getpid() % 200);
  for (int tries = 0; tries < 200 && subnet_used(n); tries++) n = 20 + (n - 20 + 1) % 200;
  snprintf(g_host_ip, sizeof g_host_ip, "10.77.%d.1", n);
  snprintf(g_db_ip, sizeof g_db_ip, "10.77.%d.2", n);
  char host_cidr[40], db_cidr[40];
  snprintf(host_cidr, sizeof host_cidr, "%s/24", g_host_ip);
  snprintf(db_cidr, sizeof db_cidr, "%s/24", g_db_ip);
  if (ip_run(NULL, "netns", "add", g_ns, NULL) != 0 ||
      ip_run(NULL, "link", "add", g_veth, "type", "veth", "peer", "name", "vb", "netns", g_ns,
             NULL) != 0 ||
      ip_run(NULL, "addr", "add", host_cidr, "dev", g_veth, NULL) != 0 ||
      ip_run(NULL, "link", "set", g_veth, "up", NULL) != 0 ||
      ip_run(NULL, "-n", g_ns, "addr", "add", db_cidr, "dev", "vb", NULL) != 0 ||
      ip_run(NULL, "-n", g_ns, "link", "set", "vb", "up", NULL) != 0 ||
      ip_run(NULL, "-n", g_ns, "link", "set", "lo", "up", NULL) != 0) {
    fprintf(stderr, "test_dbnet: cannot set up namespace %s\n", g_ns);
    net_remove(g_ns, g_veth);
    g_ns[0] = '\0';
  }
}

static void net_teardown(void) {
  if (g_ns[0]) net_remove(g_ns, g_veth);
}

/* The "database host" link: up, or down so that the host vanishes. */
static void db_link(const char *state) {
  ck_assert_int_eq(ip_run(NULL, "-n", g_ns, "link", "set", "vb", state, NULL), 0);
}

/* The run's PostgreSQL socket directory (tests/pgtest.sh writes it). */
static char *pg_socket_dir(void) {
  const char *dir = getenv("CHIPLOC_TEST_PG_DIR");
  ck_assert_msg(dir != NULL, "CHIPLOC_TEST_PG_DIR is not set");
  char *root = tu_read_file(tu_fmt("%s/pgroot", dir));
  ck_assert_ptr_nonnull(root);
  root[strcspn(root, "\n")] = '\0';
  return tu_own(root);
}

/* Waits until tu_last_stat(log, key) >= min; returns the value seen. */
static long long wait_stat(const char *log, const char *key, long long min, int timeout_ms) {
  long long v = -1;
  for (int waited = 0; waited <= timeout_ms; waited += 200) {
    if ((v = tu_last_stat(log, key)) >= min) break;
    tu_sleep_ms(200);
  }
  return v;
}

START_TEST(test_vanished_db_host) {
  ck_assert_msg(geteuid() == 0,
                "test_dbnet needs root (network namespaces and veth links); run it as root");
  ck_assert_msg(g_ns[0] != '\0', "no network namespace (see the fixture's message)");
  char *dir = tu_own(tu_tmpdir("dbnet"));
  char *cli_log = tu_fmt("%s/cli.log", dir), *lm_log = tu_fmt("%s/landmarkd.log", dir);
  char *ag_log = tu_fmt("%s/chipagent.log", dir), *fwd_log = tu_fmt("%s/pgfwd.log", dir);

  /* The forwarder, inside the namespace, to the server's socket. */
  char *sock = tu_fmt("%s/.s.PGSQL.5432", pg_socket_dir());
  char *fwd = tu_src("tests/pgfwd.py");
  char port[16];
  snprintf(port, sizeof port, "%d", FWD_PORT);
  char *ip = access("/usr/sbin/ip", X_OK) == 0 ? "/usr/sbin/ip" : "/sbin/ip";
  char *fargv[] = {ip, "netns", "exec", g_ns, "python3", fwd, g_db_ip, port, sock, NULL};
  pid_t fw = tu_spawn(fargv, fwd_log);
  ck_assert_msg(tu_wait_log(fwd_log, "listening", 1, 15000) == 0, "pgfwd did not start");

  /* A database, its landmark and chips, set up over the socket; the
   * landmark itself reaches it over the network only. */
  char *db = tu_own(tu_db_create("chiploc_dbnet"));
  ck_assert_int_eq(tu_cli(cli_log, "db", "migrate", "--db", db, NULL), 0);
  char *lkey = tu_keygen(dir, "landmark", cli_log);
  char *lhex = tu_key_hex(lkey);
  ck_assert_int_eq(tu_cli(cli_log, "landmark", "add", "--db", db, "--name", "lm-paris", "--pubkey",
                          lhex, "--lat", "48.8566", "--lon", "2.3522", NULL),
                   0);
  int lport = tu_free_port();
  tu_agent_opts ao = {.name = "dbnet-host", .backoff_min_ms = 50, .backoff_max_ms = 1000,
                      .landmarks = {{"paris", lport, lhex}}};
  for (int i = 0; i < N_CHIPS; i++) {
    char *k = tu_keygen(dir, tu_fmt("chip-%d", i), cli_log);
    ck_assert_int_eq(tu_cli(cli_log, "chip", "enroll", "--db", db, "--pubkey-file", k, "--serial",
                            tu_fmt("NET-%04d", i), "--operator", "dbnet-dc", "--site",
                            "48.85,2.35", NULL),
                     0);
    ao.chips[i] = (tu_agent_chip){tu_fmt("c%d", i), k};
  }
  char *ag_conf = tu_agent_conf(dir, &ao);
  tu_landmark_opts lo = tu_landmark_defaults();
  lo.key = lkey;
  lo.port = lport;
  /* No keepalive or timeout keyword: the defaults are under test. */
  lo.conninfo = tu_fmt("host=%s port=%d user=postgres dbname=chiploc_dbnet sslmode=disable",
                       g_db_ip, FWD_PORT);
  lo.flush_interval_ms = 500;
  lo.spool_max_mb = 16;
  char *lm_conf = tu_landmark_conf(dir, &lo);

  pid_t lm = tu_landmarkd_start(lm_conf, lm_log);
  pid_t ag = tu_chipagent_start(ag_conf, ag_log, NULL);
  long long before = 0;
  for (int i = 0; i < 150 && (before = tu_sql_int(db, "SELECT count(*) FROM measurements")) <
                                 2 * N_CHIPS;
       i++)
    tu_sleep_ms(100);
  ck_assert_msg(before >= 2 * N_CHIPS, "only %lld measurements over the network", before);
  ck_assert_int_eq(tu_count_in_file(lm_log, "msg=\"database unavailable; spooling rows\""), 0);

  /* The host vanishes. */
  db_link("down");
  double t0 = now_s();
  ck_assert_msg(tu_wait_log(lm_log, "msg=\"database unavailable; spooling rows\"", 1,
                            NOTICE_BOUND_S * 1000) == 0,
                "landmarkd did not notice the vanished database host within %d s", NOTICE_BOUND_S);
  double noticed = now_s() - t0;
  long long spooled = wait_stat(lm_log, "rows_spooled", 1, 15000);
  ck_assert_int_gt(spooled, 0);

  /* Back: the spool drains and nothing is lost. */
  db_link("up");
  ck_assert_msg(tu_wait_log(lm_log, "msg=\"spool drained\"", 1, 120000) == 0,
                "the spool was not drained after the link came back");
  tu_sleep_ms(3000);
  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);
  tu_stop(fw, SIGTERM, 5000);

  long long accepted = tu_last_stat(lm_log, "measurements");
  ck_assert_int_eq(tu_last_stat(lm_log, "measurements_dropped"), 0);
  ck_assert_int_eq(tu_last_stat(lm_log, "spool_dropped"), 0);
  ck_assert_int_eq(tu_last_stat(lm_log, "spool_rows"), 0);
  ck_assert_int_eq(tu_count_in_file(lm_log, "rows_unwritten=0"), 1);
  long long stored = tu_sql_int(db, "SELECT count(*) FROM measurements");
  long long distinct = tu_sql_int(db, "SELECT count(DISTINCT nonce) FROM measurements");
  fprintf(stderr, "test_dbnet: noticed after %.1f s; accepted %lld, stored %lld, spooled %lld\n",
          noticed, accepted, stored, spooled);
  ck_assert_int_eq(stored, accepted);
  ck_assert_int_eq(distinct, stored);
  free(fwd);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("dbnet");
  TCase *tc = tcase_create("dbnet");
  tcase_add_unchecked_fixture(tc, net_setup, net_teardown);
  tcase_set_timeout(tc, 400);
  tcase_add_test(tc, test_vanished_db_host);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
