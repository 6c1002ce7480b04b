/*
 * Logging helpers (lib/core/cl_log.h, lib/core/cl_err.h): cl_log_quote scrubbing of
 * peer-controlled bytes and its truncation, the token-bucket rate limiter
 * (burst, suppression count, refill, cap), level parsing and filtering, the
 * logfmt line shape, every value escaped so that lines parse (a strict
 * logfmt parser reads them back: libpq's multi-line messages with quotes,
 * control bytes, cl_log_quote's output, pre-formatted pairs, each printf
 * conversion, truncated lines), the text of every error code, and cl_err_set, the
 * formatter every module writes its error messages with.
 */
#include "cl_err.h"
#include "cl_log.h"
#include "testutil.h"

#include <check.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

START_TEST(test_quote_scrubs) {
  char out[128];
  const uint8_t in[] = {'a', 'b', ' ', '"', 'c', '\\', '\n', 0x01, 0x7f, 0xff, 0x00, '='};
  ck_assert_ptr_eq(cl_log_quote(out, sizeof out, in, sizeof in), out);
  ck_assert_str_eq(out, "\"ab \\x22c\\x5c\\x0a\\x01\\x7f\\xff\\x00=\"");
  ck_assert_str_eq(cl_log_quote(out, sizeof out, "", 0), "\"\"");
  ck_assert_str_eq(cl_log_quote(out, sizeof out, "plain text", 10), "\"plain text\"");
}
END_TEST

START_TEST(test_quote_truncates) {
  /* Every output size: always NUL-terminated inside outlen, always closed
   * with a quote once there is room for one, never a half escape. */
  const uint8_t in[] = {'a', 0x00, 'b', 'c', 0xff, 0xfe, 'd', '"'};
  for (size_t outlen = 0; outlen < 40; outlen++) {
    char out[64];
    memset(out, 'Z', sizeof out);
    cl_log_quote(out, outlen, in, sizeof in);
    for (size_t i = outlen; i < sizeof out; i++) ck_assert_msg(out[i] == 'Z', "wrote past %zu", outlen);
    if (outlen == 0) continue;
    size_t n = strlen(out);
    ck_assert_uint_lt(n, outlen);
    if (outlen < 3) {
      ck_assert_uint_eq(n, 0);
      continue;
    }
    ck_assert_uint_ge(n, 2);
    ck_assert_int_eq(out[0], '"');
    ck_assert_int_eq(out[n - 1], '"');
    /* The inner part is a prefix of the full rendering that ends between
     * two whole characters or escapes. */
    const char *full = "\"a\\x00bc\\xff\\xfed\\x22\"";
    ck_assert_int_eq(strncmp(out, full, n - 1), 0);
    static const size_t cuts[] = {0, 1, 5, 6, 7, 11, 15, 16, 20};
    int at_cut = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) at_cut |= (n - 2 == cuts[i]);
    ck_assert_msg(at_cut, "outlen %zu cut inside an escape: %s", outlen, out);
  }
  char out[4];
  ck_assert_str_eq(cl_log_quote(out, sizeof out, "abc", 3), "\"a\"");
}
END_TEST

START_TEST(test_ratelimit) {
  cl_ratelimit rl;
  cl_ratelimit_init(&rl, 3, 1.0); /* burst 3, one line per second */
  uint64_t sup = 999;
  const uint64_t s = 1000000000ull;
  /* The burst. */
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(cl_ratelimit_allow(&rl, 10 * s, &sup), 1);
    ck_assert_uint_eq(sup, 0);
  }
  /* Then suppression, counted. */
  sup = 999;
  for (int i = 0; i < 5; i++) ck_assert_int_eq(cl_ratelimit_allow(&rl, 10 * s, &sup), 0);
  ck_assert_uint_eq(sup, 999); /* only written when a line is allowed */
  ck_assert_uint_eq(rl.suppressed, 5);
  /* Half a second refills half a token: still suppressed. */
  ck_assert_int_eq(cl_ratelimit_allow(&rl, 10 * s + s / 2, &sup), 0);
  /* After one second in total, one line, reporting the 6 suppressed. */
  ck_assert_int_eq(cl_ratelimit_allow(&rl, 11 * s, &sup), 1);
  ck_assert_uint_eq(sup, 6);
  ck_assert_uint_eq(rl.suppressed, 0);
  ck_assert_int_eq(cl_ratelimit_allow(&rl, 11 * s, &sup), 0);
  /* A long pause refills to the burst, not beyond. */
  int allowed = 0;
  for (int i = 0; i < 10; i++) allowed += cl_ratelimit_allow(&rl, 1000 * s, &sup);
  ck_assert_int_eq(allowed, 3);
  /* NULL for the count is accepted. */
  ck_assert_int_eq(cl_ratelimit_allow(&rl, 2000 * s, NULL), 1);
}
END_TEST

START_TEST(test_ratelimit_steady_rate) {
  /* 10 lines/s offered at 100/s for 10 s lets through burst + ~100. */
  cl_ratelimit rl;
  cl_ratelimit_init(&rl, 5, 10.0);
  int allowed = 0;
  uint64_t total_sup = 0, sup = 0;
  for (int i = 1; i <= 1000; i++) {
    if (cl_ratelimit_allow(&rl, (uint64_t)i * 10000000ull, &sup)) {
      allowed++;
      total_sup += sup;
    }
  }
  ck_assert_int_ge(allowed, 100);
  ck_assert_int_le(allowed, 106);
  ck_assert_uint_eq(total_sup + rl.suppressed + (uint64_t)allowed, 1000);
}
END_TEST

START_TEST(test_levels) {
  cl_log_level l = CL_LOG_ERROR;
  ck_assert_int_eq(cl_log_parse_level("debug", &l), CL_OK);
  ck_assert_int_eq(l, CL_LOG_DEBUG);
  ck_assert_int_eq(cl_log_parse_level("INFO", &l), CL_OK);
  ck_assert_int_eq(l, CL_LOG_INFO);
  ck_assert_int_eq(cl_log_parse_level("warn", &l), CL_OK);
  ck_assert_int_eq(l, CL_LOG_WARN);
  ck_assert_int_eq(cl_log_parse_level("error", &l), CL_OK);
  ck_assert_int_eq(l, CL_LOG_ERROR);
  ck_assert_int_eq(cl_log_parse_level("warning", &l), CL_EINVAL);
  ck_assert_int_eq(cl_log_parse_level("", &l), CL_EINVAL);
  ck_assert_int_eq(l, CL_LOG_ERROR);
}
END_TEST

/* stderr goes to a file between capture_begin and capture_end, which
 * returns what was written. */
typedef struct {
  char *dir;
  char path[512];
  int saved;
} capture_state;

static void capture_begin(capture_state *c) {
  c->dir = tu_tmpdir("chiploc-test-log");
  snprintf(c->path, sizeof c->path, "%s/stderr", c->dir);
  int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(fd, 0);
  fflush(stderr);
  c->saved = dup(2);
  dup2(fd, 2);
  close(fd);
}

static char *capture_end(capture_state *c) {
  fflush(stderr);
  dup2(c->saved, 2);
  close(c->saved);
  char *out = tu_read_file(c->path);
  unlink(c->path);
  rmdir(c->dir);
  free(c->dir);
  return out;
}

/* The output of one cl_log call with these arguments. */
#define CAPTURE(out, ...)                                                                     \
  do {                                                                                        \
    capture_state c_;                                                                         \
    capture_begin(&c_);                                                                       \
    cl_log(__VA_ARGS__);                                                                      \
    (out) = capture_end(&c_);                                                                 \
  } while (0)

/* Runs cl_log with kv as the whole key=value part. */
static char *capture(cl_log_level level, const char *msg, const char *kv) {
  char *out = NULL;
  if (kv && *kv)
    CAPTURE(out, level, msg, "%s", kv);
  else
    CAPTURE(out, level, msg, NULL);
  return out;
}

START_TEST(test_line_shape) {
  cl_log_set_level(CL_LOG_INFO);
  cl_log_set_prog("landmarkd");
  char *o = capture(CL_LOG_WARN, "probe rejected", "reason=late chip=ab12");
  ck_assert_ptr_nonnull(o);
  ck_assert_int_eq(strncmp(o, "ts=", 3), 0);
  ck_assert_ptr_nonnull(strstr(o, " level=warn prog=landmarkd msg=\"probe rejected\" reason=late chip=ab12\n"));
  ck_assert_ptr_eq(strchr(o, '\n'), o + strlen(o) - 1); /* one line */
  free(o);
  /* Quotes, backslashes and control characters in msg are escaped. */
  o = capture(CL_LOG_ERROR, "a\"b\\c\nd\te", NULL);
  ck_assert_ptr_nonnull(strstr(o, "msg=\"a\\\"b\\\\c\\nd\\x09e\"\n"));
  free(o);
  /* A plain word is not quoted; below the level nothing is written. */
  o = capture(CL_LOG_INFO, "started", "");
  ck_assert_ptr_nonnull(strstr(o, " msg=started\n"));
  free(o);
  o = capture(CL_LOG_DEBUG, "hidden", "x=1");
  ck_assert_str_eq(o, "");
  free(o);
  cl_log_set_level(CL_LOG_DEBUG);
  ck_assert_int_eq(cl_log_get_level(), CL_LOG_DEBUG);
  o = capture(CL_LOG_DEBUG, "shown", "x=1");
  ck_assert_ptr_nonnull(strstr(o, "level=debug prog=landmarkd msg=shown x=1\n"));
  free(o);
  /* A very long line is cut but stays one line. */
  char big[4000];
  memset(big, 'v', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  o = capture(CL_LOG_ERROR, "long", big);
  ck_assert_uint_le(strlen(o), 2048);
  ck_assert_ptr_eq(strchr(o, '\n'), o + strlen(o) - 1);
  ck_assert_ptr_nonnull(strstr(o, " msg=long truncated=true\n"));
  free(o);
  cl_log_set_prog(NULL);
  cl_log_set_level(CL_LOG_INFO);
}
END_TEST

START_TEST(test_strerror) {
  static const int codes[] = {CL_OK,        CL_EINVAL,   CL_EMALFORMED, CL_ETOOBIG,  CL_EBADSIG,
                              CL_EIO,       CL_EDB,      CL_ENOMEM,     CL_EEXIST,   CL_ENOTFOUND,
                              CL_EVERSION,  CL_EAGAIN,   CL_EPERM,      CL_EUNKNOWNMSG};
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    ck_assert_str_ne(cl_strerror(codes[i]), "unknown error");
    for (size_t j = 0; j < i; j++) ck_assert_str_ne(cl_strerror(codes[i]), cl_strerror(codes[j]));
  }
  ck_assert_str_eq(cl_strerror(CL_EBADSIG), "bad signature");
  ck_assert_str_eq(cl_strerror(-99), "unknown error");
  ck_assert_str_eq(cl_strerror(1), "unknown error");
}
END_TEST

START_TEST(test_err_set_formats) {
  char err[64];
  cl_err_set(err, sizeof err, "%s:%zu: column %s: %g", "fleet.csv", (size_t)7, "lat", 91.5);
  ck_assert_str_eq(err, "fleet.csv:7: column lat: 91.5");
  /* A message replaces what the buffer held before, it does not append. */
  cl_err_set(err, sizeof err, "plain");
  ck_assert_str_eq(err, "plain");
  cl_err_set(err, sizeof err, "%s", "");
  ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_err_set_truncates) {
  /* Every buffer size: the text is the start of the full message, cut to
   * errlen - 1 bytes, NUL-terminated, and nothing past errlen is touched. */
  const char *full = "spool /var/lib/x: cannot read: Permission denied";
  size_t flen = strlen(full);
  for (size_t errlen = 1; errlen < flen + 8; errlen++) {
    char err[96];
    memset(err, 'Z', sizeof err);
    cl_err_set(err, errlen, "spool %s: cannot read: %s", "/var/lib/x", "Permission denied");
    size_t want = errlen - 1 < flen ? errlen - 1 : flen;
    ck_assert_uint_eq(strlen(err), want);
    ck_assert_int_eq(strncmp(err, full, want), 0);
    for (size_t i = errlen; i < sizeof err; i++)
      ck_assert_msg(err[i] == 'Z', "errlen %zu: wrote at %zu", errlen, i);
  }
}
END_TEST

START_TEST(test_err_set_no_buffer) {
  /* Callers pass their own err through unchecked: NULL or errlen 0 means
   * "no text wanted", and the buffer is then not touched at all. */
  cl_err_set(NULL, 0, "ignored %d", 1);
  cl_err_set(NULL, 64, "ignored %d", 2);
  char err[8];
  memset(err, 'Z', sizeof err);
  cl_err_set(err, 0, "ignored %d", 3);
  for (size_t i = 0; i < sizeof err; i++) ck_assert_int_eq(err[i], 'Z');
}
END_TEST

/* A wrapper of the kind cl_config and cl_region_geojson have: a prefix, then
 * the caller's message through cl_err_vset. */
static void prefixed(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void prefixed(char *err, size_t errlen, const char *fmt, ...) {
  char msg[40];
  va_list ap;
  va_start(ap, fmt);
  cl_err_vset(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cl_err_set(err, errlen, "landmarkd.conf:%d: %s", 12, msg);
}

START_TEST(test_err_vset) {
  char err[64];
  prefixed(err, sizeof err, "port %d is outside [%d, %d]", 70000, 1, 65535);
  ck_assert_str_eq(err, "landmarkd.conf:12: port 70000 is outside [1, 65535]");
  /* The inner buffer cuts the message before the prefix is added. */
  prefixed(err, sizeof err, "%s%s", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
  ck_assert_str_eq(err, "landmarkd.conf:12: abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM");
  prefixed(NULL, 0, "nothing %s", "happens");
}
END_TEST

/* ---- logfmt: every line parses ------------------------------------------ */

/* One key=value pair of a parsed line; values are unescaped. */
typedef struct {
  char key[64];
  char val[2048];
  size_t vlen;
} lf_pair;

/*
 * A strict logfmt parser: one line ending in its only newline, pairs
 * separated by one space, keys of [a-z0-9_], a value bare (no space, quote,
 * '=', backslash or control byte) or quoted with the escapes \" \\ \n and
 * \xNN only. Returns the number of pairs, or -1 (why in *why) if the line
 * does not parse.
 */
static int logfmt_parse(const char *line, lf_pair *pairs, int max, const char **why) {
  size_t n = strlen(line);
  *why = "no newline at the end";
  if (n == 0 || line[n - 1] != '\n') return -1;
  *why = "more than one line";
  if (strchr(line, '\n') != line + n - 1) return -1;
  const char *p = line;
  int np = 0;
  while (*p != '\n') {
    *why = "too many pairs";
    if (np == max) return -1;
    lf_pair *pr = &pairs[np++];
    size_t k = 0;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_') {
      if (k + 1 >= sizeof pr->key) return -1;
      pr->key[k++] = *p++;
    }
    pr->key[k] = '\0';
    *why = "a key without '='";
    if (k == 0 || *p++ != '=') return -1;
    pr->vlen = 0;
    if (*p == '"') {
      p++;
      for (;;) {
        unsigned char c = (unsigned char)*p++;
        *why = "an unterminated or raw control byte in a quoted value";
        if (c < 0x20 || c == 0x7f) return -1;
        if (c == '"') break;
        if (c == '\\') {
          c = (unsigned char)*p++;
          if (c == 'n') {
            c = '\n';
          } else if (c == 'x') {
            unsigned v = 0;
            *why = "a bad \\x escape";
            if (sscanf(p, "%2x", &v) != 1 || !isxdigit((unsigned char)p[0]) ||
                !isxdigit((unsigned char)p[1]))
              return -1;
            p += 2;
            c = (unsigned char)v;
          } else if (c != '"' && c != '\\') {
            *why = "an unknown escape";
            return -1;
          }
        }
        if (pr->vlen + 1 >= sizeof pr->val) return -1;
        pr->val[pr->vlen++] = (char)c;
      }
    } else {
      while (*p != ' ' && *p != '\n') {
        unsigned char c = (unsigned char)*p++;
        *why = "a bare value with a quote, '=', backslash or control byte";
        if (c < 0x20 || c == 0x7f || c == '"' || c == '=' || c == '\\') return -1;
        if (pr->vlen + 1 >= sizeof pr->val) return -1;
        pr->val[pr->vlen++] = (char)c;
      }
    }
    pr->val[pr->vlen] = '\0';
    *why = "pairs not separated by one space";
    if (*p == ' ') {
      p++;
      if (*p == ' ' || *p == '\n') return -1;
    } else if (*p != '\n') {
      return -1;
    }
  }
  return np;
}

/* Parses o (failing the test if it does not parse) into pairs. */
static int parse_or_fail(const char *o, lf_pair *pairs, int max) {
  const char *why = "";
  int n = logfmt_parse(o, pairs, max, &why);
  ck_assert_msg(n >= 0, "not logfmt (%s): %s", why, o);
  return n;
}

/* The value of key in pairs, NULL if absent; *len its length. */
static const char *lf_get(const lf_pair *pairs, int n, const char *key, size_t *len) {
  for (int i = 0; i < n; i++)
    if (strcmp(pairs[i].key, key) == 0) {
      if (len) *len = pairs[i].vlen;
      return pairs[i].val;
    }
  return NULL;
}

#define ASSERT_VALUE(pairs, n, key, want)                                                     \
  do {                                                                                        \
    size_t l_ = 0;                                                                            \
    const char *v_ = lf_get((pairs), (n), (key), &l_);                                        \
    ck_assert_msg(v_ != NULL, "no %s", (key));                                                \
    ck_assert_msg(l_ == strlen(want) && memcmp(v_, (want), l_) == 0, "%s=[%s], wanted [%s]",  \
                  (key), v_, (want));                                                         \
  } while (0)

/* What libpq hands over when a login fails: quotes, a doubled space, a tab,
 * a backslash and several lines. */
static const char LIBPQ_MSG[] =
    "connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  role "
    "\"chiploc_landmark\" is not permitted to log in\nDETAIL:  see C:\\pg\\hba\tnow\nHINT:  x=1\n";

START_TEST(test_logfmt_libpq_message) {
  cl_log_set_level(CL_LOG_INFO);
  cl_log_set_prog("landmarkd");
  lf_pair pr[32];
  char *o = NULL;
  /* Quoted in the format, as the daemons write errors. */
  CAPTURE(o, CL_LOG_WARN, "database unavailable", "err=\"%.300s\" rows=%zu", LIBPQ_MSG,
          (size_t)7);
  int n = parse_or_fail(o, pr, 32);
  ck_assert_int_eq(n, 6);
  ck_assert_str_eq(pr[0].key, "ts");
  ASSERT_VALUE(pr, n, "level", "warn");
  ASSERT_VALUE(pr, n, "prog", "landmarkd");
  ASSERT_VALUE(pr, n, "msg", "database unavailable");
  ASSERT_VALUE(pr, n, "err", LIBPQ_MSG);
  ASSERT_VALUE(pr, n, "rows", "7");
  ck_assert_msg(strstr(o, "\\n") != NULL && strstr(o, "\\x09") != NULL, "%s", o);
  free(o);
  /* Bare in the format: quoted all the same. */
  CAPTURE(o, CL_LOG_ERROR, "stopped", "err=%s exit=%d", LIBPQ_MSG, 2);
  n = parse_or_fail(o, pr, 32);
  ASSERT_VALUE(pr, n, "err", LIBPQ_MSG);
  ASSERT_VALUE(pr, n, "exit", "2");
  free(o);
  /* Inside a quoted value with literal text around it, and cut by the
   * precision before escaping. */
  CAPTURE(o, CL_LOG_ERROR, "x", "why=\"first: %.23s (retry)\"", LIBPQ_MSG);
  n = parse_or_fail(o, pr, 32);
  ASSERT_VALUE(pr, n, "why", "first: connection to server on (retry)");
  free(o);
  cl_log_set_prog(NULL);
}
END_TEST

START_TEST(test_logfmt_values) {
  cl_log_set_level(CL_LOG_INFO);
  lf_pair pr[32];
  char *o = NULL;
  /* A value made of a conversion and literal text, holding a space. */
  CAPTURE(o, CL_LOG_INFO, "listening", "addr=%s:%d path=%s.tmp", "a b", 7400, "/x=y");
  int n = parse_or_fail(o, pr, 32);
  ASSERT_VALUE(pr, n, "addr", "a b:7400");
  ASSERT_VALUE(pr, n, "path", "/x=y.tmp");
  ck_assert_msg(strstr(o, " addr=\"a b:7400\" path=\"/x=y.tmp\"\n") != NULL, "%s", o);
  free(o);
  /* Plain values stay bare unless the format quotes them; an empty one
   * is "". */
  CAPTURE(o, CL_LOG_INFO, "m", "chip=%s n=%llu e=%s q=\"%s\"", "ab12", 5ull, "", "plain");
  ck_assert_msg(strstr(o, " chip=ab12 n=5 e=\"\" q=\"plain\"\n") != NULL, "%s", o);
  parse_or_fail(o, pr, 32);
  free(o);
  /* Control bytes, DEL, quotes, backslashes, '=' and UTF-8. */
  const char raw[] = "a\x01" "b\x7f" "c\"d\\e=f\r\n\xc3\xa9";
  CAPTURE(o, CL_LOG_INFO, "m", "v=%s", raw);
  n = parse_or_fail(o, pr, 32);
  ASSERT_VALUE(pr, n, "v", raw);
  ck_assert_msg(strstr(o, " v=\"a\\x01b\\x7fc\\\"d\\\\e=f\\x0d\\n\xc3\xa9\"\n") != NULL, "%s", o);
  free(o);
  /* cl_log_quote's output, already quoted, is kept as it is; the parser
   * gets the peer's bytes back. */
  const uint8_t peer[] = {'h', 'i', ' ', '"', 0x00, 0xff, '\\'};
  char q[64];
  cl_log_quote(q, sizeof q, peer, sizeof peer);
  CAPTURE(o, CL_LOG_INFO, "m", "sample=%s len=%zu", q, sizeof peer);
  n = parse_or_fail(o, pr, 32);
  ck_assert_msg(strstr(o, q) != NULL, "%s", o);
  size_t l = 0;
  const char *v = lf_get(pr, n, "sample", &l);
  ck_assert_ptr_nonnull(v);
  ck_assert_uint_eq(l, sizeof peer);
  ck_assert_int_eq(memcmp(v, peer, sizeof peer), 0);
  free(o);
  /* A value that only looks quoted is escaped like any other. */
  CAPTURE(o, CL_LOG_INFO, "m", "v=%s w=%s", "\"a\"b\"", "\"c\\\"");
  n = parse_or_fail(o, pr, 32);
  ASSERT_VALUE(pr, n, "v", "\"a\"b\"");
  ASSERT_VALUE(pr, n, "w", "\"c\\\"");
  free(o);
  /* Pairs formatted elsewhere, where a key belongs, stay pairs; a newline
   * in them cannot end the line. */
  CAPTURE(o, CL_LOG_WARN, "rows refused", "landmark=%s rows=%llu %s", "lm-1", 3ull,
          "late=2 bad_sig=1");
  n = parse_or_fail(o, pr, 32);
  ASSERT_VALUE(pr, n, "late", "2");
  ASSERT_VALUE(pr, n, "bad_sig", "1");
  free(o);
  CAPTURE(o, CL_LOG_WARN, "m", "%s", "a=1\nb=2");
  ck_assert_ptr_eq(strchr(o, '\n'), o + strlen(o) - 1);
  free(o);
}
END_TEST

START_TEST(test_logfmt_conversions) {
  /* Each conversion renders as printf renders it. */
  char want[256];
  char *o = NULL;
  void *ptr = &want;
  snprintf(want, sizeof want,
           " a=%5.2f b=%*d c=%-4s| d=%.*s e=%llu f=%zu g=%x h=%c i=%% j=%ld k=%hhu l=%g m=%p "
           "n=%jd o=%zd p=%td q=%Lg\n",
           3.14159, 6, 42, "ab", 3, "abcdef", 18446744073709551615ull, (size_t)12, 255u, 'z', -7L,
           (unsigned char)200, 1e-9, ptr, (intmax_t)-9, (ssize_t)-3, (ptrdiff_t)-4,
           (long double)2.5);
  CAPTURE(o, CL_LOG_ERROR, "m",
          "a=%5.2f b=%*d c=%-4s| d=%.*s e=%llu f=%zu g=%x h=%c i=%% j=%ld k=%hhu l=%g m=%p n=%jd "
          "o=%zd p=%td q=%Lg",
          3.14159, 6, 42, "ab", 3, "abcdef", 18446744073709551615ull, (size_t)12, 255u, 'z', -7L,
          (unsigned char)200, 1e-9, ptr, (intmax_t)-9, (ssize_t)-3, (ptrdiff_t)-4,
          (long double)2.5);
  /* a, b and c hold spaces from the padding, so they come quoted. */
  char fixed[256];
  snprintf(fixed, sizeof fixed, " a=\" 3.14\" b=\"    42\" c=\"ab  |\"%s", strstr(want, " d="));
  ck_assert_msg(strstr(o, fixed) != NULL, "%s\nlacks\n%s", o, fixed);
  free(o);
}
END_TEST

START_TEST(test_logfmt_truncation) {
  /* Lines above the limit keep whole pairs only and say that they were
   * cut; every length parses. */
  lf_pair pr[400];
  char val[700];
  memset(val, 'q', sizeof val - 1);
  val[sizeof val - 1] = '\0';
  for (int k = 1; k < 6; k++) {
    char *o = NULL;
    CAPTURE(o, CL_LOG_ERROR, "m", "a=%s b=\"%s\" c=%s d=%s", val + 699 - 100 * k, LIBPQ_MSG,
            val + 699 - 130 * k, val);
    ck_assert_uint_le(strlen(o), 2048);
    int n = parse_or_fail(o, pr, 400);
    const char *t = lf_get(pr, n, "truncated", NULL);
    if (t) {
      ck_assert_str_eq(t, "true");
      ck_assert_str_eq(pr[n - 1].key, "truncated");
    } else {
      ck_assert_ptr_nonnull(lf_get(pr, n, "d", NULL));
    }
    for (int i = 0; i < n; i++)
      if (strcmp(pr[i].key, "b") == 0) ck_assert_str_eq(pr[i].val, LIBPQ_MSG);
    free(o);
  }
  /* Many pairs: cut between two of them, the ones before kept whole. */
  const char *v = val + 699 - 90;
  char *o = NULL;
  CAPTURE(o, CL_LOG_ERROR, "m",
          "a=%s b=%s c=%s d=%s e=%s f=%s g=%s h=%s i=%s j=%s k=%s l=%s m=%s n=%s o=%s p=%s q=%s "
          "r=%s s=%s t=%s u=%s v=%s w=%s x=%s y=%s z=%s",
          v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v);
  int n = parse_or_fail(o, pr, 400);
  ck_assert_int_gt(n, 10);
  ck_assert_str_eq(pr[n - 1].key, "truncated");
  for (int i = 3; i < n - 1; i++) {
    ck_assert_int_eq(pr[i].key[0], 'a' + (i - 3));
    ck_assert_str_eq(pr[i].val, v);
  }
  free(o);
  /* A message too long is cut, and the line says so. */
  char msg[600];
  memset(msg, 'm', sizeof msg - 1);
  msg[sizeof msg - 1] = '\0';
  CAPTURE(o, CL_LOG_ERROR, msg, "x=%d", 1);
  n = parse_or_fail(o, pr, 400);
  ck_assert_str_eq(pr[n - 1].key, "truncated");
  free(o);
}
END_TEST

static Suite *log_suite(void) {
  Suite *s = suite_create("log");
  TCase *tc = tcase_create("log");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_quote_scrubs);
  tcase_add_test(tc, test_quote_truncates);
  tcase_add_test(tc, test_ratelimit);
  tcase_add_test(tc, test_ratelimit_steady_rate);
  tcase_add_test(tc, test_levels);
  tcase_add_test(tc, test_line_shape);
  tcase_add_test(tc, test_logfmt_libpq_message);
  tcase_add_test(tc, test_logfmt_values);
  tcase_add_test(tc, test_logfmt_conversions);
  tcase_add_test(tc, test_logfmt_truncation);
  tcase_add_test(tc, test_strerror);
  tcase_add_test(tc, test_err_set_formats);
  tcase_add_test(tc, test_err_set_truncates);
  tcase_add_test(tc, test_err_set_no_buffer);
  tcase_add_test(tc, test_err_vset);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(log_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
