/*
 * Logging helpers (lib/core/cl_log.h, lib/core/cl_err.h): cl_log_quote scrubbing of
 * peer-controlled bytes and its truncation, the token-bucket rate limiter
 * (burst, suppression count, refill, cap), level parsing and filtering, the
 * logfmt line shape, the text of every error code, and cl_err_set, the
 * formatter every module writes its error messages with.
 */
#include "cl_err.h"
#include "cl_log.h"
#include "testutil.h"

#include <check.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Runs cl_log with stderr redirected to a file and returns the output. */
static char *capture(cl_log_level level, const char *msg, const char *kv) {
  char *dir = tu_tmpdir("chiploc-test-log");
  char path[512];
  snprintf(path, sizeof path, "%s/stderr", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(fd, 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  close(fd);
  if (kv && *kv)
    cl_log(level, msg, "%s", kv);
  else
    cl_log(level, msg, NULL);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  char *out = tu_read_file(path);
  unlink(path);
  rmdir(dir);
  free(dir);
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
  o = capture(CL_LOG_ERROR, "a\"b\\c\nd", NULL);
  ck_assert_ptr_nonnull(strstr(o, "msg=\"a\\\"b\\\\c\\x0ad\"\n"));
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
