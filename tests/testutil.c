/* Test helpers: database of the run, temporary files, configs, child
 * processes and their logs, the wire protocol. */
#define _GNU_SOURCE
#include "testutil.h"
#include "cl_err.h"
#include "cl_layout.h"
#include "cl_probe.h"
#include "cl_schema.h"
#include "cl_store.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *tu_pg_conninfo(void) {
  static char conninfo[1024];
  if (conninfo[0]) return conninfo;
  const char *dir = getenv("CHIPLOC_TEST_PG_DIR");
  ck_assert_msg(dir != NULL, "CHIPLOC_TEST_PG_DIR is not set: run this test through ctest");
  char path[1024];
  snprintf(path, sizeof path, "%s/conninfo", dir);
  char *c = tu_read_file(path);
  ck_assert_msg(c != NULL, "no %s: the pg_start fixture did not run", path);
  c[strcspn(c, "\n")] = '\0';
  snprintf(conninfo, sizeof conninfo, "%s", c);
  free(c);
  return conninfo;
}

static char *replace_kv(const char *conninfo, const char *key, const char *value) {
  /* Appending a key later in a conninfo string overrides the earlier one. */
  size_t n = strlen(conninfo) + strlen(key) + strlen(value) + 8;
  char *out = malloc(n);
  snprintf(out, n, "%s %s=%s", conninfo, key, value);
  return out;
}

char *tu_db_create(const char *name) {
  const char *base = tu_pg_conninfo();
  char sql[512], err[512];
  snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
  ck_assert_msg(tu_sql(base, sql, err, sizeof err) == 0, "%s: %s", sql, err);
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
  ck_assert_msg(tu_sql(base, sql, err, sizeof err) == 0, "%s: %s", sql, err);
  return replace_kv(base, "dbname", name);
}

char *tu_conninfo_as(const char *conninfo, const char *user) {
  return replace_kv(conninfo, "user", user);
}

int tu_sql(const char *conninfo, const char *sql, char *err, size_t errlen) {
  PGconn *c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    if (err) snprintf(err, errlen, "%s", PQerrorMessage(c));
    PQfinish(c);
    return -1;
  }
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  int rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : -1;
  if (rc && err) snprintf(err, errlen, "%s", PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(c);
  return rc;
}

char *tu_sql_value(const char *conninfo, const char *sql) {
  PGconn *c = PQconnectdb(conninfo);
  char *out = NULL;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
      out = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  PQfinish(c);
  return out;
}

long long tu_sql_int(const char *conninfo, const char *sql) {
  char *v = tu_sql_value(conninfo, sql);
  if (!v) return -1;
  long long n = strtoll(v, NULL, 10);
  free(v);
  return n;
}

char *tu_tmpdir(const char *prefix) {
  char *p = NULL;
  if (asprintf(&p, "/tmp/%s.XXXXXX", prefix) < 0) return NULL;
  ck_assert_msg(mkdtemp(p) != NULL, "mkdtemp: %s", strerror(errno));
  return p;
}

char *tu_write_file(const char *dir, const char *name, const char *content) {
  char *p = NULL;
  ck_assert(asprintf(&p, "%s/%s", dir, name) > 0);
  FILE *f = fopen(p, "w");
  ck_assert_msg(f != NULL, "cannot write %s", p);
  fputs(content, f);
  fclose(f);
  return p;
}

char *tu_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t r;
  while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += r;
    if (cap - n < 2) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
  }
  fclose(f);
  buf[n] = '\0';
  return buf;
}

static char *env_path(const char *var, const char *rel) {
  const char *base = getenv(var);
  ck_assert_msg(base != NULL, "%s is not set: run this test through ctest", var);
  char *p = NULL;
  ck_assert(asprintf(&p, "%s/%s", base, rel) > 0);
  return p;
}

char *tu_bin(const char *rel) { return env_path("CHIPLOC_BIN_DIR", rel); }
char *tu_src(const char *rel) { return env_path("CHIPLOC_SOURCE_DIR", rel); }

/* ---- child processes ------------------------------------------------------- */

/* The processes tu_spawn started and nobody has reaped yet, oldest first. */
#define MAX_CHILDREN 256
static pid_t g_children[MAX_CHILDREN];
static int g_nchildren;

static void forget_child(pid_t pid) {
  for (int i = 0; i < g_nchildren; i++)
    if (g_children[i] == pid) {
      memmove(&g_children[i], &g_children[i + 1],
              (size_t)(g_nchildren - i - 1) * sizeof *g_children);
      g_nchildren--;
      return;
    }
}

/* atexit: the test process is ending with children still running (a failed
 * assertion exited it): kill them, stopped ones included. */
static void kill_children(void) {
  while (g_nchildren > 0) {
    pid_t pid = g_children[--g_nchildren];
    kill(pid, SIGCONT);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
  }
}

pid_t tu_spawn(char *const argv[], const char *logfile) {
  static int cleanup_registered;
  if (!cleanup_registered) {
    ck_assert(atexit(kill_children) == 0);
    cleanup_registered = 1;
  }
  ck_assert_msg(g_nchildren < MAX_CHILDREN, "more than %d child processes", MAX_CHILDREN);
  pid_t parent = getpid();
  pid_t pid = fork();
  ck_assert(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127); /* the test process is gone already */
    int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  g_children[g_nchildren++] = pid;
  return pid;
}

static int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

int tu_run(char *const argv[], const char *logfile) {
  pid_t pid = tu_spawn(argv, logfile);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  forget_child(pid);
  int rc = decode_status(st);
  return rc >= 128 ? -1 : rc;
}

int tu_run_capture(char *const argv[], const char *dir, char **out, char **err,
                   const char *logfile) {
  char outp[PATH_MAX], errp[PATH_MAX];
  snprintf(outp, sizeof outp, "%s/out", dir);
  snprintf(errp, sizeof errp, "%s/err", dir);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) ck_assert_int_eq(errno, EINTR);
  *out = tu_read_file(outp);
  *err = tu_read_file(errp);
  ck_assert(*out && *err);
  FILE *log = logfile ? fopen(logfile, "a") : NULL;
  if (log) {
    fprintf(log, "$");
    for (size_t i = 0; argv[i]; i++) fprintf(log, " %s", argv[i]);
    fprintf(log, "\n%s%s", *out, *err);
    fclose(log);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tu_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

int tu_stop(pid_t pid, int sig, int timeout_ms) {
  int st = 0;
  kill(pid, sig);
  for (int waited = 0; waited <= timeout_ms; waited += 20) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      forget_child(pid);
      return decode_status(st);
    }
    tu_sleep_ms(20);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  forget_child(pid);
  return -1;
}

int tu_stop_all(int timeout_ms) {
  int bad = 0;
  while (g_nchildren > 0) {
    pid_t pid = g_children[g_nchildren - 1];
    int rc = tu_stop(pid, SIGTERM, timeout_ms);
    if (rc != 0) {
      fprintf(stderr, "process %d exited with %d\n", (int)pid, rc);
      bad++;
    }
  }
  return bad;
}

int tu_count_in_file(const char *path, const char *needle) {
  char *s = tu_read_file(path);
  if (!s) return 0;
  int n = 0;
  for (char *p = strstr(s, needle); p; p = strstr(p + strlen(needle), needle)) n++;
  free(s);
  return n;
}

int tu_wait_log(const char *logfile, const char *needle, int count, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 50) {
    if (tu_count_in_file(logfile, needle) >= count) return 0;
    tu_sleep_ms(50);
  }
  return -1;
}

int tu_free_port(void) {
  /* The kernel may hand the same free port out again once it is closed, and
   * a test that takes many ports before starting anything (test_world takes
   * a hundred) must not get one twice: remember what was returned. */
  static uint8_t given[65536 / 8];
  for (int tries = 0; tries < 1000; tries++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    int port = ntohs(a.sin_port);
    if (given[port / 8] & (1u << (port % 8))) continue;
    given[port / 8] |= (uint8_t)(1u << (port % 8));
    return port;
  }
  ck_abort_msg("no free port that was not handed out before");
  return -1;
}

char *tu_http_get(int port, const char *path, int timeout_ms, int *status) {
  if (status) *status = 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return NULL;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return NULL;
  }
  char req[512];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
  if (write(fd, req, (size_t)n) != n) {
    close(fd);
    return NULL;
  }
  /* HTTP/1.0: the server closes after the answer. */
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0) {
      free(buf);
      close(fd);
      return NULL;
    }
    if (cap - len < 4096) buf = realloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + len, cap - len - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = '\0';
  char *body = strstr(buf, "\r\n\r\n");
  if (strncmp(buf, "HTTP/1.", 7) != 0 || !body) {
    free(buf);
    return NULL;
  }
  if (status) *status = atoi(buf + 9);
  char *out = strdup(body + 4);
  free(buf);
  return out;
}

double tu_metric(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *line = text; line && *line;) {
    if (*line != '#' && strncmp(line, series, n) == 0 && line[n] == ' ')
      return strtod(line + n + 1, NULL);
    line = strchr(line, '\n');
    if (line) line++;
  }
  return -1;
}

void tu_migrate_before(const char *conninfo, const char *first_left_out) {
  char err[512] = "";
  ck_assert_msg(tu_sql(conninfo,
                       "CREATE TABLE chiploc_schema_migrations (name text PRIMARY KEY,"
                       " applied_at timestamptz NOT NULL DEFAULT now())",
                       err, sizeof err) == 0,
                "%s", err);
  for (int i = 0; i < cl_schema_migration_count; i++) {
    const cl_schema_migration *m = &cl_schema_migrations[i];
    if (strcmp(m->name, first_left_out) >= 0) break;
    ck_assert_msg(tu_sql(conninfo, m->sql, err, sizeof err) == 0, "%s: %s", m->name, err);
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO chiploc_schema_migrations (name) VALUES ('%s')",
             m->name);
    ck_assert_msg(tu_sql(conninfo, sql, err, sizeof err) == 0, "%s", err);
  }
}

long long tu_verify_measurements(const char *conninfo, uint64_t max_rtt_ns, long long *bad) {
  PGconn *c = PQconnectdb(conninfo);
  ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
  PGresult *res = PQexecParams(c,
                               "SELECT l.public_key, ch.public_key, m.bound_m, "
                               CL_STORE_RECORD_COLUMNS("m") " FROM measurements m "
                               "JOIN landmarks l ON l.id = m.landmark_id "
                               "JOIN chips ch ON ch.id = m.chip_id WHERE m.protocol = 2",
                               0, NULL, NULL, NULL, NULL, 1);
  ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
  long long n = PQntuples(res);
  cl_store_cols cols = cl_store_cols_at(3);
  *bad = 0;
  for (int i = 0; i < n; i++) {
    static cl_measurement m;
    char err[160] = "";
    ck_assert_int_eq(PQgetlength(res, i, 0), 32);
    ck_assert_int_eq(PQgetlength(res, i, 1), 32);
    int rc = cl_store_row_measurement(res, i, &cols, (const uint8_t *)PQgetvalue(res, i, 0),
                                      (const uint8_t *)PQgetvalue(res, i, 1), &m, err, sizeof err);
    ck_assert_msg(rc == CL_OK, "row %d: %s", i, err);
    uint64_t bound = cl_get_be64((const uint8_t *)PQgetvalue(res, i, 2));
    /* All four signatures: record, transcript, both handshake halves. */
    if (cl_measurement_verify(&m) != CL_OK) (*bad)++;
    ck_assert_uint_eq(bound, cl_bound_m(m.rtt_ns, CL_SPEED_C));
    ck_assert_uint_gt(m.rtt_ns, 0);
    if (max_rtt_ns) ck_assert_uint_lt(m.rtt_ns, max_rtt_ns);
  }
  PQclear(res);
  PQfinish(c);
  return n;
}

int tu_cli(const char *log, ...) {
  char *argv[32];
  int n = 0;
  argv[n++] = tu_bin("server/chiploc");
  va_list ap;
  va_start(ap, log);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 31) argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  int rc = tu_run(argv, log);
  free(argv[0]);
  return rc;
}

/* ---- keys, configs and the real daemons ------------------------------------ */

char *tu_keygen(const char *dir, const char *name, const char *log) {
  char *path = tu_fmt("%s/%s.key", dir, name);
  ck_assert_int_eq(tu_cli(log, "keygen", "--out", path, NULL), 0);
  return path;
}

cl_key *tu_key_load(const char *path) {
  cl_key *k = NULL;
  char err[200] = "";
  ck_assert_msg(cl_key_load(&k, path, err, sizeof err) == CL_OK, "%s: %s", path, err);
  return k;
}

char *tu_key_hex(const char *path) {
  cl_key *k = tu_key_load(path);
  char *hex = tu_own(malloc(CL_PK_HEX_LEN + 1));
  cl_pk_to_hex(cl_key_public(k), hex);
  cl_key_destroy(&k);
  return hex;
}

tu_landmark_opts tu_landmark_defaults(void) {
  tu_landmark_opts o = {
      .name = "lm-paris",
      .lat = 48.8566,
      .lon = 2.3522,
      .flush_interval_ms = 100,
      .refresh_interval_s = 1,
      .interval_s = 1,
      .jitter = 0.1,
      .burst = 3,
      .burst_gap_ms = 20,
      .deadline_ms = 300,
      .idle_timeout_s = 30,
      .stats_interval_s = 1,
  };
  return o;
}

char *tu_landmark_conf(const char *dir, const tu_landmark_opts *o) {
  char *path = tu_conf_landmark_write(dir, o);
  ck_assert_msg(path != NULL, "cannot write a landmarkd config in %s: %s", dir, strerror(errno));
  return tu_own(path);
}

char *tu_agent_conf(const char *dir, const tu_agent_opts *o) {
  char *path = tu_conf_agent_write(dir, o);
  ck_assert_msg(path != NULL, "cannot write a chipagent config in %s: %s", dir, strerror(errno));
  return tu_own(path);
}

/* Starts the built binary rel with --config conf and one optional option
 * pair, and waits up to 30 s for one more `ready` line in log than it held
 * before; fails the test at once when the process exits meanwhile. */
static pid_t start_daemon(const char *rel, const char *conf, const char *log, const char *ready,
                          const char *opt, const char *optval) {
  char *bin = tu_bin(rel);
  char *argv[] = {bin, "--config", (char *)conf, (char *)opt, (char *)optval, NULL};
  int before = tu_count_in_file(log, ready);
  pid_t pid = tu_spawn(argv, log);
  free(bin);
  for (int waited = 0;; waited += 50) {
    if (tu_count_in_file(log, ready) > before) return pid;
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      forget_child(pid);
      ck_abort_msg("%s exited (status %d) before logging %s; see %s", rel, decode_status(st),
                   ready, log);
    }
    ck_assert_msg(waited < 30000, "%s did not log %s within 30 s; see %s", rel, ready, log);
    tu_sleep_ms(50);
  }
}

pid_t tu_landmarkd_start(const char *conf, const char *log) {
  return start_daemon("server/landmarkd", conf, log, "msg=listening", NULL, NULL);
}

pid_t tu_chipagent_start(const char *conf, const char *log, const char *log_level) {
  return start_daemon("client/chipagent", conf, log, "msg=\"agent started\"",
                      log_level ? "--log-level" : NULL, log_level);
}

/* ---- logs ------------------------------------------------------------------- */

long long tu_line_value(const char *line, const char *key) {
  char needle[64];
  snprintf(needle, sizeof needle, " %s=", key);
  const char *at = strstr(line, needle);
  return at ? strtoll(at + strlen(needle), NULL, 10) : -1;
}

long long tu_last_stat(const char *log, const char *key) {
  char *s = tu_read_file(log);
  if (!s) return -1;
  char *last = NULL;
  /* Complete lines only: the last one may still be being written. */
  for (char *line = s, *eol; (eol = strchr(line, '\n')) != NULL; line = eol + 1) {
    *eol = '\0';
    if (strstr(line, "msg=stats")) last = line;
  }
  long long v = -1;
  if (last) {
    v = tu_line_value(last, key);
    ck_assert_msg(v >= 0, "no %s in the last stats line of %s: %s", key, log, last);
  }
  free(s);
  return v;
}

int tu_run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- owned allocations ---------------------------------------------------- */

static void **g_owned;
static size_t g_nowned, g_owned_cap;

char *tu_own(char *p) {
  ck_assert(p != NULL);
  if (g_nowned == g_owned_cap) {
    size_t cap = g_owned_cap ? g_owned_cap * 2 : 64;
    void **v = realloc(g_owned, cap * sizeof *v);
    ck_assert(v != NULL);
    g_owned = v;
    g_owned_cap = cap;
  }
  g_owned[g_nowned++] = p;
  return p;
}

char *tu_fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *s = NULL;
  ck_assert(vasprintf(&s, f, ap) >= 0);
  va_end(ap);
  return tu_own(s);
}

void tu_release(void) {
  while (g_nowned > 0) free(g_owned[--g_nowned]);
  free(g_owned);
  g_owned = NULL;
  g_owned_cap = 0;
}

long tu_proc_rss_kb(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  char *s = tu_read_file(path);
  if (!s) return -1;
  const char *at = strstr(s, "\nVmRSS:");
  long kb = at ? strtol(at + strlen("\nVmRSS:"), NULL, 10) : -1;
  free(s);
  return kb;
}

static uint64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t tu_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t tu_unix_ns(void) { return clock_ns(CLOCK_REALTIME); }

/* ---- the wire --------------------------------------------------------------- */

int tu_listen_local(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
  socklen_t al = sizeof a;
  ck_assert(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
  ck_assert(listen(fd, 4) == 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static void wire_setup(tu_wire *w, int fd) {
  memset(w, 0, sizeof *w);
  w->fd = fd;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  cl_frame_asm_init(&w->fa, CL_FRAME_MAX);
}

int tu_wire_connect(tu_wire *w, const char *src, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  if (src) {
    struct sockaddr_in s = {.sin_family = AF_INET};
    ck_assert_int_eq(inet_pton(AF_INET, src, &s.sin_addr), 1);
    ck_assert_msg(bind(fd, (struct sockaddr *)&s, sizeof s) == 0, "bind %s: %s", src,
                  strerror(errno));
  }
  wire_setup(w, fd);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  return connect(fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : -1;
}

int tu_wire_accept(tu_wire *w, int lfd, int timeout_ms) {
  struct pollfd p = {.fd = lfd, .events = POLLIN};
  if (poll(&p, 1, timeout_ms) != 1) return -1;
  int fd = accept(lfd, NULL, NULL);
  ck_assert(fd >= 0);
  wire_setup(w, fd);
  return 0;
}

void tu_wire_send_raw(tu_wire *w, const void *data, size_t len) {
  ck_assert_int_eq(send(w->fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

void tu_wire_send_all(tu_wire *w, const cl_msg *m, size_t n) {
  size_t cap = n * (CL_FRAME_MAX + 16), len = 0; /* room for n frames of any size */
  uint8_t *buf = malloc(cap);
  ck_assert(buf != NULL);
  for (size_t i = 0; i < n; i++) {
    size_t one = 0;
    ck_assert_int_eq(cl_msg_encode(&m[i], buf + len, cap - len, &one), CL_OK);
    len += one;
  }
  tu_wire_send_raw(w, buf, len);
  free(buf);
}

void tu_wire_send(tu_wire *w, const cl_msg *m) { tu_wire_send_all(w, m, 1); }

void tu_wire_respond(tu_wire *w, const uint8_t chip[CL_PK_LEN], uint64_t seq,
                     const uint8_t mac[CL_MAC_LEN]) {
  cl_msg m;
  m.type = CL_MSG_RESPONSE;
  memcpy(m.u.response.chip, chip, CL_PK_LEN);
  m.u.response.seq = seq;
  memcpy(m.u.response.mac, mac, CL_MAC_LEN);
  tu_wire_send(w, &m);
}

int tu_wire_recv(tu_wire *w, cl_msg *m, int timeout_ms) {
  uint64_t end = tu_mono_ns() + (uint64_t)timeout_ms * 1000000u;
  for (;;) {
    if (w->off < w->have) {
      const uint8_t *frame = NULL;
      size_t flen = 0, used = 0;
      int rc = cl_frame_asm_feed(&w->fa, w->buf + w->off, w->have - w->off, &used, &frame, &flen);
      ck_assert_int_ge(rc, 0);
      w->off += used;
      if (rc == 1) {
        char err[160];
        ck_assert_msg(cl_msg_decode(frame, flen, m, err, sizeof err) == CL_OK, "%s", err);
        return 0;
      }
    }
    /* Poll even when the time is up, so that what has arrived is read. */
    uint64_t now = tu_mono_ns();
    int left = now >= end ? 0 : (int)((end - now) / 1000000u) + 1;
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    if (poll(&p, 1, left) <= 0) {
      if (tu_mono_ns() >= end) return TU_WIRE_TIMEOUT;
      continue;
    }
    ssize_t n = read(w->fd, w->buf, sizeof w->buf);
    if (n <= 0) return TU_WIRE_EOF;
    w->have = (size_t)n;
    w->off = 0;
  }
}

void tu_wire_close(tu_wire *w) {
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  cl_frame_asm_fini(&w->fa);
}

/* ---- the chip side ---------------------------------------------------------- */

#define TU_CHIP_WAIT_MS 5000

/* Index of the chip with public key id; the test fails when it is not one
 * of chips. */
static size_t chip_find(cl_key *const *chips, size_t n, const uint8_t id[CL_PK_LEN]) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(cl_key_public(chips[i]), id, CL_PK_LEN) == 0) return i;
  char hex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(id, hex);
  ck_abort_msg("the landmark names chip %s, not one of the test's %zu", hex, n);
  return n;
}

/* Sends a Register with a fresh offer for each chip of idx[0..k). */
static void chip_offer(tu_wire *w, const uint8_t landmark[CL_PK_LEN], cl_key *const *chips,
                       cl_chipsess *sess, const size_t *idx, size_t k) {
  ck_assert(k >= 1 && k <= CL_MAX_CHIPS_PER_REGISTER);
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER;
  snprintf(m.u.reg.agent, sizeof m.u.reg.agent, "%s", TU_CHIP_AGENT);
  m.u.reg.suite = CL_SUITE_ED25519_X25519;
  m.u.reg.n = k;
  for (size_t i = 0; i < k; i++)
    ck_assert_int_eq(cl_chipsess_offer(&sess[idx[i]], CL_SUITE_ED25519_X25519, landmark,
                                       cl_key_public(chips[idx[i]]), &m.u.reg.chips[i]),
                     CL_OK);
  tu_wire_send(w, &m);
}

/* The chip side of a RegisterResult: accepted chips establish their session
 * and go into one Confirm, refused ones end theirs. Returns the accepted
 * count. */
static size_t chip_confirm(tu_wire *w, cl_key *const *chips, size_t n, cl_chipsess *sess,
                           const cl_msg *res) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CONFIRM;
  for (size_t k = 0; k < res->u.reg_result.n; k++) {
    const cl_chip_result *r = &res->u.reg_result.r[k];
    size_t i = chip_find(chips, n, r->chip);
    ck_assert_msg(sess[i].state == CL_CHIPSESS_OFFERED, "a result for chip %zu, not offered", i);
    if (!r->accepted) {
      cl_chipsess_end(&sess[i]);
      continue;
    }
    cl_handshake hs;
    ck_assert_msg(cl_chipsess_accept(&sess[i], r, &hs) == CL_OK,
                  "the landmark's handshake signature for chip %zu does not verify", i);
    ck_assert_int_eq(cl_hs_sign_chip(&hs, chips[i]), CL_OK);
    cl_chipsess_confirmed(&sess[i], hs.chip_sig);
    cl_chip_confirm *cc = &m.u.confirm.chips[m.u.confirm.n++];
    memcpy(cc->chip, hs.chip, CL_PK_LEN);
    memcpy(cc->sig, hs.chip_sig, CL_SIG_LEN);
  }
  if (m.u.confirm.n > 0) tu_wire_send(w, &m);
  return m.u.confirm.n;
}

uint32_t tu_chip_hello(tu_wire *w, uint8_t landmark[CL_PK_LEN]) {
  cl_msg m;
  ck_assert_msg(tu_wire_recv(w, &m, TU_CHIP_WAIT_MS) == 0, "no Hello from the landmark");
  ck_assert_msg(m.type == CL_MSG_HELLO, "%s instead of Hello", cl_msg_type_name(m.type));
  if (landmark) memcpy(landmark, m.u.hello.landmark, CL_PK_LEN);
  return m.u.hello.suite;
}

size_t tu_chip_register(tu_wire *w, const uint8_t landmark[CL_PK_LEN], cl_key *const *chips,
                        size_t n, cl_chipsess *sess, cl_msg *res) {
  size_t idx[CL_MAX_CHIPS_PER_REGISTER];
  ck_assert(n >= 1 && n <= CL_MAX_CHIPS_PER_REGISTER);
  for (size_t i = 0; i < n; i++) idx[i] = i;
  chip_offer(w, landmark, chips, sess, idx, n);
  cl_msg *m = malloc(sizeof *m);
  ck_assert(m != NULL);
  ck_assert_msg(tu_wire_recv(w, m, TU_CHIP_WAIT_MS) == 0, "no RegisterResult");
  ck_assert_msg(m->type == CL_MSG_REGISTER_RESULT, "%s instead of RegisterResult",
                cl_msg_type_name(m->type));
  size_t accepted = chip_confirm(w, chips, n, sess, m);
  if (res) *res = *m;
  free(m);
  return accepted;
}

size_t tu_chip_handshake(tu_wire *w, cl_key *const *chips, size_t n, cl_chipsess *sess,
                         uint8_t *keys) {
  for (size_t i = 0; i < n; i++) cl_chipsess_init(&sess[i], keys + i * CL_SESSION_KEY_LEN);
  uint8_t landmark[CL_PK_LEN];
  tu_chip_hello(w, landmark);
  return tu_chip_register(w, landmark, chips, n, sess, NULL);
}

int tu_chip_handle(tu_wire *w, cl_key *const *chips, size_t n, cl_chipsess *sess,
                   const cl_msg *m, tu_chip_stats *st) {
  tu_chip_stats scratch;
  if (!st) {
    memset(&scratch, 0, sizeof scratch);
    st = &scratch;
  }
  switch (m->type) {
  case CL_MSG_CHALLENGE: {
    size_t i = chip_find(chips, n, m->u.challenge.chip);
    uint8_t mac[CL_MAC_LEN];
    if (cl_chipsess_answer(&sess[i], m->u.challenge.seq, m->u.challenge.nonce, mac) != CL_OK) {
      st->unanswered++;
      return 1;
    }
    tu_wire_respond(w, m->u.challenge.chip, m->u.challenge.seq, mac);
    st->answered++;
    return 1;
  }
  case CL_MSG_BURST_END: {
    size_t i = chip_find(chips, n, m->u.burst_end.chip);
    cl_probe_entry e[CL_MAX_BURST];
    if (cl_chipsess_transcript(&sess[i], m->u.burst_end.seqs, m->u.burst_end.n, e) != CL_OK) {
      st->refused++;
      return 1;
    }
    cl_msg t;
    memset(&t, 0, sizeof t);
    t.type = CL_MSG_TRANSCRIPT;
    memcpy(t.u.transcript.chip, m->u.burst_end.chip, CL_PK_LEN);
    t.u.transcript.first_seq = e[0].seq;
    ck_assert_int_eq(
        cl_transcript_sign(&sess[i].hs, e, m->u.burst_end.n, chips[i], t.u.transcript.sig),
        CL_OK);
    tu_wire_send(w, &t);
    st->transcripts++;
    return 1;
  }
  case CL_MSG_REKEY: {
    size_t i = chip_find(chips, n, m->u.rekey.chip);
    ck_assert_msg(sess[i].state != CL_CHIPSESS_NONE, "Rekey for chip %zu, which has no session", i);
    uint8_t landmark[CL_PK_LEN];
    memcpy(landmark, sess[i].hs.landmark, CL_PK_LEN);
    chip_offer(w, landmark, chips, sess, &i, 1);
    st->rekeys++;
    return 1;
  }
  case CL_MSG_REGISTER_RESULT:
    chip_confirm(w, chips, n, sess, m);
    st->confirms++;
    return 1;
  case CL_MSG_ERROR:
    st->errors++;
    st->last_error = m->u.error.code;
    return 1;
  default:
    return 0;
  }
}

int tu_chip_serve(tu_wire *w, cl_key *const *chips, size_t n, cl_chipsess *sess, int ms,
                  tu_chip_stats *st) {
  uint64_t end = tu_mono_ns() + (uint64_t)ms * 1000000u;
  cl_msg *m = malloc(sizeof *m);
  ck_assert(m != NULL);
  int rc = 0;
  uint64_t now;
  while ((now = tu_mono_ns()) < end) {
    int left = (int)((end - now) / 1000000u) + 1;
    int r = tu_wire_recv(w, m, left);
    if (r == TU_WIRE_EOF) {
      rc = TU_WIRE_EOF;
      break;
    }
    if (r == TU_WIRE_TIMEOUT) continue;
    ck_assert_msg(tu_chip_handle(w, chips, n, sess, m, st) == 1, "the landmark sent %s",
                  cl_msg_type_name(m->type));
  }
  free(m);
  return rc;
}
