/*
 * cl_metrics: histogram buckets, the Prometheus text the builder writes
 * (checked byte for byte), label and help escaping, and the HTTP endpoint
 * on a real loopback socket: GET /metrics serves the last published
 * snapshot with the 0.0.4 content type, other paths and methods are
 * refused, and publishing while scrapers read is safe. /healthz and
 * /readyz: 503 "starting" before the first publish, 200 "ok" while the
 * publishes are fresh (and, for /readyz, say ready), 503 with the owner's
 * reason when not ready, 503 "stale" once a publish is overdue.
 */
#define _GNU_SOURCE
#include "cl_err.h"
#include "cl_metrics.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

START_TEST(histogram_buckets) {
  cl_histogram h;
  const double bad[] = {1, 1, 2};
  ck_assert_int_eq(cl_histogram_init(&h, bad, 3), CL_EINVAL);
  ck_assert_int_eq(cl_histogram_init(&h, bad, 0), CL_EINVAL);
  double many[CL_HIST_MAX_BUCKETS + 1];
  for (int i = 0; i <= CL_HIST_MAX_BUCKETS; i++) many[i] = i;
  ck_assert_int_eq(cl_histogram_init(&h, many, CL_HIST_MAX_BUCKETS + 1), CL_EINVAL);
  ck_assert_int_eq(cl_histogram_init(&h, many, CL_HIST_MAX_BUCKETS), CL_OK);

  const double le[] = {0.001, 0.01, 0.1};
  ck_assert_int_eq(cl_histogram_init(&h, le, 3), CL_OK);
  cl_histogram_observe(&h, 0.0005);
  cl_histogram_observe(&h, 0.001); /* a bound is inclusive */
  cl_histogram_observe(&h, 0.05);
  cl_histogram_observe(&h, 2.0); /* only in +Inf */
  ck_assert_uint_eq(h.count[0], 2);
  ck_assert_uint_eq(h.count[1], 0);
  ck_assert_uint_eq(h.count[2], 1);
  ck_assert_uint_eq(h.total, 4);
  ck_assert_double_eq_tol(h.sum, 2.0515, 1e-12);

  cl_mtext t;
  cl_mtext_init(&t);
  cl_mtext_family(&t, "x_seconds", "histogram", "A test.");
  cl_mtext_histogram(&t, "x_seconds", NULL, &h);
  cl_mtext_histogram(&t, "y", "a=\"b\"", &h);
  ck_assert_int_eq(cl_mtext_ok(&t), CL_OK);
  ck_assert_str_eq(t.buf, "# HELP x_seconds A test.\n"
                          "# TYPE x_seconds histogram\n"
                          "x_seconds_bucket{le=\"0.001\"} 2\n"
                          "x_seconds_bucket{le=\"0.01\"} 2\n"
                          "x_seconds_bucket{le=\"0.1\"} 3\n"
                          "x_seconds_bucket{le=\"+Inf\"} 4\n"
                          "x_seconds_sum 2.0515\n"
                          "x_seconds_count 4\n"
                          "y_bucket{a=\"b\",le=\"0.001\"} 2\n"
                          "y_bucket{a=\"b\",le=\"0.01\"} 2\n"
                          "y_bucket{a=\"b\",le=\"0.1\"} 3\n"
                          "y_bucket{a=\"b\",le=\"+Inf\"} 4\n"
                          "y_sum{a=\"b\"} 2.0515\n"
                          "y_count{a=\"b\"} 4\n");
  cl_mtext_fini(&t);
}
END_TEST

START_TEST(text_samples_and_escapes) {
  cl_mtext t;
  cl_mtext_init(&t);
  cl_mtext_family(&t, "a_total", "counter", "Line one\nback\\slash");
  cl_mtext_u64(&t, "a_total", NULL, 18446744073709551615ull);
  cl_mtext_u64(&t, "a_total", "reason=\"late\"", 0);
  cl_mtext_double(&t, "g", "", 0.25);
  ck_assert_str_eq(t.buf, "# HELP a_total Line one\\nback\\\\slash\n"
                          "# TYPE a_total counter\n"
                          "a_total 18446744073709551615\n"
                          "a_total{reason=\"late\"} 0\n"
                          "g 0.25\n");
  cl_mtext_reset(&t);
  ck_assert_uint_eq(t.len, 0);
  /* Growth past the first buffer keeps every line. */
  for (int i = 0; i < 5000; i++) cl_mtext_u64(&t, "series_with_a_long_name_total", NULL, (uint64_t)i);
  ck_assert_int_eq(cl_mtext_ok(&t), CL_OK);
  ck_assert_double_eq(tu_metric(t.buf, "series_with_a_long_name_total"), 0);
  ck_assert_ptr_nonnull(strstr(t.buf, "series_with_a_long_name_total 4999\n"));
  cl_mtext_fini(&t);

  char out[16];
  ck_assert_str_eq(cl_mtext_label_value(out, sizeof out, "a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  /* Cut at a whole escape: never a lone backslash at the end. */
  ck_assert_str_eq(cl_mtext_label_value(out, 4, "ab\"c"), "ab");
  ck_assert_str_eq(cl_mtext_label_value(out, sizeof out, NULL), "");
}
END_TEST

/* The whole HTTP answer (headers and body) to a raw request. */
static char *raw_request(int port, const char *req) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  char *buf = calloc(1, 65536);
  size_t len = 0;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_msg(poll(&p, 1, 5000) == 1, "no answer within 5 s");
    ssize_t r = read(fd, buf + len, 65535 - len);
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  return buf;
}

static const cl_metrics_health fresh = {.stale_after_ms = 60000, .ready = 1};

START_TEST(http_endpoint) {
  cl_metrics_server *m = NULL;
  char err[256];
  ck_assert_int_eq(cl_metrics_server_start(&m, "localhost", 0, err, sizeof err), CL_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "not a numeric IP address"));
  ck_assert_ptr_null(m);
  ck_assert_int_eq(cl_metrics_server_start(&m, "127.0.0.1", 0, err, sizeof err), CL_OK);
  int port = cl_metrics_server_port(m);
  ck_assert_int_gt(port, 0);
  /* A second server on the same port fails with the reason. */
  cl_metrics_server *m2 = NULL;
  ck_assert_int_eq(cl_metrics_server_start(&m2, "127.0.0.1", port, err, sizeof err), CL_EIO);
  ck_assert_ptr_nonnull(strstr(err, "cannot serve metrics on 127.0.0.1:"));

  int status = 0;
  char *body = tu_http_get(port, "/metrics", 5000, &status);
  ck_assert_ptr_nonnull(body);
  ck_assert_int_eq(status, 200);
  ck_assert_str_eq(body, ""); /* nothing published yet */
  free(body);

  const char *text = "# TYPE up gauge\nup 1\n";
  ck_assert_int_eq(cl_metrics_server_publish(m, text, strlen(text), &fresh), CL_OK);
  char *all = raw_request(port, "GET /metrics HTTP/1.0\r\n\r\n");
  ck_assert_msg(strncmp(all, "HTTP/1.0 200", 12) == 0 || strncmp(all, "HTTP/1.1 200", 12) == 0,
                "%s", all);
  ck_assert_ptr_nonnull(strstr(all, "text/plain; version=0.0.4; charset=utf-8"));
  ck_assert_ptr_nonnull(strstr(all, "\r\n\r\n# TYPE up gauge\nup 1\n"));
  free(all);

  body = tu_http_get(port, "/", 5000, &status);
  ck_assert_int_eq(status, 404);
  free(body);
  all = raw_request(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
  ck_assert_ptr_nonnull(strstr(all, " 405 "));
  free(all);

  /* Publishing again and again while scraping: every answer is one whole
   * snapshot, never a mix or freed memory. */
  char snap[64];
  for (int i = 0; i < 200; i++) {
    int n = snprintf(snap, sizeof snap, "n %d\nend 1\n", i);
    ck_assert_int_eq(cl_metrics_server_publish(m, snap, (size_t)n, &fresh), CL_OK);
    if (i % 10 == 0) {
      body = tu_http_get(port, "/metrics", 5000, &status);
      ck_assert_int_eq(status, 200);
      ck_assert_double_eq(tu_metric(body, "n"), i);
      ck_assert_double_eq(tu_metric(body, "end"), 1);
      free(body);
    }
  }
  cl_metrics_server_stop(&m);
  ck_assert_ptr_null(m);
  cl_metrics_server_stop(&m); /* NULL is fine */
  /* The port is released. */
  ck_assert_int_eq(cl_metrics_server_start(&m, "127.0.0.1", port, err, sizeof err), CL_OK);
  cl_metrics_server_stop(&m);
}
END_TEST

/* GET path; asserts the status and the body's text. */
static void expect_get(int port, const char *path, int want_status, const char *want_body) {
  int status = 0;
  char *body = tu_http_get(port, path, 5000, &status);
  ck_assert_msg(body != NULL, "no answer to %s", path);
  ck_assert_msg(status == want_status, "%s: status %d, want %d (%s)", path, status, want_status,
                body);
  ck_assert_msg(strcmp(body, want_body) == 0, "%s: body '%s', want '%s'", path, body, want_body);
  free(body);
}

START_TEST(health_endpoints) {
  cl_metrics_server *m = NULL;
  char err[256];
  ck_assert_int_eq(cl_metrics_server_start(&m, "127.0.0.1", 0, err, sizeof err), CL_OK);
  int port = cl_metrics_server_port(m);
  expect_get(port, "/healthz", 503, "starting\n");
  expect_get(port, "/readyz", 503, "starting\n");

  /* A health without a staleness limit is refused; nothing changes. */
  cl_metrics_health h = {.stale_after_ms = 0, .ready = 1};
  ck_assert_int_eq(cl_metrics_server_publish(m, "a 1\n", 4, &h), CL_EINVAL);
  ck_assert_int_eq(cl_metrics_server_publish(m, "a 1\n", 4, NULL), CL_EINVAL);
  expect_get(port, "/healthz", 503, "starting\n");

  /* Alive but not ready: the reason, on one line. */
  h = (cl_metrics_health){.stale_after_ms = 60000, .ready = 0,
                          .why = "no landmark\nregistered"};
  ck_assert_int_eq(cl_metrics_server_publish(m, "a 1\n", 4, &h), CL_OK);
  expect_get(port, "/healthz", 200, "ok\n");
  expect_get(port, "/readyz", 503, "not ready: no landmark registered\n");
  expect_get(port, "/metrics", 200, "a 1\n");

  h.ready = 1;
  ck_assert_int_eq(cl_metrics_server_publish(m, "a 2\n", 4, &h), CL_OK);
  expect_get(port, "/healthz", 200, "ok\n");
  expect_get(port, "/readyz", 200, "ok\n");

  /* The owner promised a publish within 200 ms and none came: both fail,
   * ready or not, until it publishes again. */
  h.stale_after_ms = 200;
  ck_assert_int_eq(cl_metrics_server_publish(m, "a 3\n", 4, &h), CL_OK);
  tu_sleep_ms(600);
  int status = 0;
  char *body = tu_http_get(port, "/healthz", 5000, &status);
  ck_assert_int_eq(status, 503);
  ck_assert_msg(strncmp(body, "stale: nothing published for ", 29) == 0, "%s", body);
  ck_assert_ptr_nonnull(strstr(body, "(limit 0.2 s)\n"));
  free(body);
  body = tu_http_get(port, "/readyz", 5000, &status);
  ck_assert_int_eq(status, 503);
  ck_assert_msg(strncmp(body, "stale: ", 7) == 0, "%s", body);
  free(body);
  h.stale_after_ms = 60000;
  ck_assert_int_eq(cl_metrics_server_publish(m, "a 4\n", 4, &h), CL_OK);
  expect_get(port, "/healthz", 200, "ok\n");
  expect_get(port, "/readyz", 200, "ok\n");

  /* Plain text, as Prometheus' own /-/healthy. */
  char *all = raw_request(port, "GET /readyz HTTP/1.0\r\n\r\n");
  ck_assert_ptr_nonnull(strstr(all, "text/plain; charset=utf-8"));
  free(all);
  cl_metrics_server_stop(&m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, histogram_buckets);
  tcase_add_test(tc, text_samples_and_escapes);
  tcase_add_test(tc, http_endpoint);
  tcase_add_test(tc, health_endpoints);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
