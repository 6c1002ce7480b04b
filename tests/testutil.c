/* Test helpers: database of the run, temporary files, child processes. */
#define _GNU_SOURCE
#include "testutil.h"
#include "cl_err.h"
#include "cl_layout.h"
#include "cl_probe.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

pid_t tu_spawn(char *const argv[], const char *logfile) {
  pid_t pid = fork();
  ck_assert(pid >= 0);
  if (pid == 0) {
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
  int rc = decode_status(st);
  return rc >= 128 ? -1 : rc;
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
    if (r == pid) return decode_status(st);
    tu_sleep_ms(20);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return -1;
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

long long tu_verify_measurements(const char *conninfo, uint64_t max_rtt_ns, long long *bad) {
  PGconn *c = PQconnectdb(conninfo);
  ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
  PGresult *res = PQexecParams(
      c,
      "SELECT l.public_key, ch.public_key, m.nonce, m.issued_at_ns, m.seq, m.challenge_sig, "
      "m.chip_sig, m.rtt_ns, m.probe_count, m.measured_at_ns, m.landmark_sig, m.bound_m "
      "FROM measurements m JOIN landmarks l ON l.id = m.landmark_id "
      "JOIN chips ch ON ch.id = m.chip_id",
      0, NULL, NULL, NULL, NULL, 1);
  ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
  long long n = PQntuples(res);
  *bad = 0;
  for (int i = 0; i < n; i++) {
    cl_measurement m;
    memset(&m, 0, sizeof m);
    ck_assert_int_eq(PQgetlength(res, i, 0), 32);
    memcpy(m.ch.landmark, PQgetvalue(res, i, 0), 32);
    memcpy(m.ch.chip, PQgetvalue(res, i, 1), 32);
    memcpy(m.ch.nonce, PQgetvalue(res, i, 2), 32);
    m.ch.issued_unix_ns = cl_get_be64((const uint8_t *)PQgetvalue(res, i, 3));
    m.ch.seq = cl_get_be64((const uint8_t *)PQgetvalue(res, i, 4));
    memcpy(m.ch.sig, PQgetvalue(res, i, 5), 64);
    memcpy(m.chip_sig, PQgetvalue(res, i, 6), 64);
    m.rtt_ns = cl_get_be64((const uint8_t *)PQgetvalue(res, i, 7));
    m.probe_count = cl_get_be32((const uint8_t *)PQgetvalue(res, i, 8));
    m.measured_unix_ns = cl_get_be64((const uint8_t *)PQgetvalue(res, i, 9));
    memcpy(m.sig, PQgetvalue(res, i, 10), 64);
    uint64_t bound = cl_get_be64((const uint8_t *)PQgetvalue(res, i, 11));
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

uint64_t tu_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the wire --------------------------------------------------------------- */

void tu_wire_send_all(tu_wire *w, const cl_msg *m, size_t n) {
  size_t cap = n * (CL_FRAME_MAX + 16), len = 0; /* room for n frames of any size */
  uint8_t *buf = malloc(cap);
  ck_assert(buf != NULL);
  for (size_t i = 0; i < n; i++) {
    size_t one = 0;
    ck_assert_int_eq(cl_msg_encode(&m[i], buf + len, cap - len, &one), CL_OK);
    len += one;
  }
  ck_assert_int_eq(write(w->fd, buf, len), (ssize_t)len);
  free(buf);
}

void tu_wire_send(tu_wire *w, const cl_msg *m) { tu_wire_send_all(w, m, 1); }

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
    uint64_t now = tu_mono_ns();
    if (now >= end) return TU_WIRE_TIMEOUT;
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) <= 0) continue;
    ssize_t n = read(w->fd, w->buf, sizeof w->buf);
    if (n <= 0) return TU_WIRE_EOF;
    w->have = (size_t)n;
    w->off = 0;
  }
}

void tu_wire_close(tu_wire *w) {
  close(w->fd);
  w->fd = -1;
  cl_frame_asm_fini(&w->fa);
}
