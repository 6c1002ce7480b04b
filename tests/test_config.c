/*
 * Tests of the config loader (lib/conf/cl_config.c): golden files for landmarkd
 * and chipagent whose every value and default is checked, then one defect at
 * a time, each expecting the exact error text (file, line, section, key,
 * value and allowed range).
 */
#define _GNU_SOURCE /* asprintf */
#include "cl_config.h"
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_key.h"
#include "cl_probe.h"
#include "testutil.h"

#include <check.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *g_dir;                       /* temp dir holding the config files */
static char g_real_dir[PATH_MAX];         /* its realpath, as relative paths resolve to it */
static char g_pk_hex[CL_PK_HEX_LEN + 1];  /* a valid landmark public key */
static uint8_t g_pk[CL_PK_LEN];
static char g_pk2_hex[CL_PK_HEX_LEN + 1];
static uint8_t g_pk2[CL_PK_LEN];

static char *cat(const char *a, const char *b) {
  char *s = NULL;
  ck_assert(asprintf(&s, "%s%s", a, b) > 0);
  return s;
}

/* ---- landmarkd ---------------------------------------------------------- */

/*
 * A minimal valid landmarkd config of exactly 9 lines, with section `last`
 * moved to the end so that `extra` (lines to append to it) starts on line 10.
 */
static char *lm_text(const char *last, const char *extra) {
  static const char *secs[][2] = {
      {"landmark", "[landmark]\nname = fra-1\nkey = landmark.key\nlat = 50.1109\nlon = 8.6821\n"},
      {"database", "[database]\nconninfo = host=/tmp dbname=chiploc\n"},
      {"probe", "[probe]\n"},
      {"limits", "[limits]\n"},
  };
  char *out = strdup("");
  const char *tail = NULL;
  for (size_t i = 0; i < 4; i++) {
    if (last && strcmp(secs[i][0], last) == 0) {
      tail = secs[i][1];
      continue;
    }
    char *n = cat(out, secs[i][1]);
    free(out);
    out = n;
  }
  if (tail) {
    char *n = cat(out, tail);
    free(out);
    out = n;
  }
  char *n = cat(out, extra ? extra : "");
  free(out);
  return n;
}

/* Loads text as a landmarkd config; returns the code, err gets the message. */
static int lm_load(const char *text, cl_landmark_config *cfg, char *err, size_t errlen,
                   char **path_out) {
  char *path = tu_write_file(g_dir, "landmarkd.conf", text);
  int rc = cl_landmark_config_load(path, cfg, err, errlen);
  if (path_out)
    *path_out = path;
  else
    free(path);
  return rc;
}

/* Expects CL_EMALFORMED and exactly "PATH:" + suffix. */
static void lm_expect(const char *text, const char *suffix) {
  cl_landmark_config *cfg = malloc(sizeof *cfg);
  char err[512], *path = NULL, want[1024];
  int rc = lm_load(text, cfg, err, sizeof err, &path);
  snprintf(want, sizeof want, "%s:%s", path, suffix);
  ck_assert_msg(rc == CL_EMALFORMED, "rc=%d err=%s", rc, err);
  ck_assert_str_eq(err, want);
  free(path);
  free(cfg);
}

static void lm_expect_extra(const char *sec, const char *extra, const char *suffix) {
  char *t = lm_text(sec, extra);
  lm_expect(t, suffix);
  free(t);
}

START_TEST(lm_golden_full) {
  const char *text =
      "; every key of landmarkd.conf, none at its default\n"
      "[landmark]\n"
      "name = Frankfurt 1\n"
      "key = /etc/chiploc/landmark.key\n"
      "listen = [::1]:7500\n"
      "lat = 50.1109   ; degrees north\n"
      "lon = -8.6821\n"
      "\n"
      "[database]\n"
      "conninfo = host=/run/postgresql dbname=chiploc user=landmark\n"
      "batch_size = 1000\n"
      "flush_interval_ms = 250\n"
      "refresh_interval_s = 5\n"
      "# hash comments too\n"
      "[probe]\n"
      "  interval_s = 120\n"
      "  jitter = 0.25\n"
      "  burst = 8\n"
      "  burst_gap_ms = 0\n"
      "  deadline_ms = 2500\n"
      "  speed = fibre\n"
      "  transcript_timeout_ms = 100\n"
      "  session_lifetime_s = 86400\n"
      "[limits]\n"
      "max_connections = 1000000\n"
      "handshake_timeout_ms = 100\n"
      "idle_timeout_s = 86400\n"
      "stats_interval_s = 1\n"
      "max_connections_per_address = 100000\n"
      "max_pending_challenges = 1\n"
      "max_frame_bytes = 1024\n"
      "max_write_queue_bytes = 65536\n"
      "max_error_replies_per_s = 100000\n"
      "[metrics]\n"
      "listen = [::1]:9464\n";
  cl_landmark_config *c = malloc(sizeof *c);
  char err[512];
  ck_assert_msg(lm_load(text, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_str_eq(c->name, "Frankfurt 1");
  ck_assert_str_eq(c->key_path, "/etc/chiploc/landmark.key");
  ck_assert_str_eq(c->listen_host, "::1");
  ck_assert_int_eq(c->listen_port, 7500);
  ck_assert_double_eq(c->lat, 50.1109);
  ck_assert_double_eq(c->lon, -8.6821);
  ck_assert_str_eq(c->conninfo, "host=/run/postgresql dbname=chiploc user=landmark");
  ck_assert_uint_eq(c->batch_size, 1000);
  ck_assert_uint_eq(c->flush_interval_ms, 250);
  ck_assert_uint_eq(c->refresh_interval_s, 5);
  ck_assert_uint_eq(c->interval_s, 120);
  ck_assert_double_eq(c->jitter, 0.25);
  ck_assert_uint_eq(c->burst, 8);
  ck_assert_uint_eq(c->burst_gap_ms, 0);
  ck_assert_uint_eq(c->deadline_ms, 2500);
  ck_assert_double_eq(c->speed_m_per_s, CL_SPEED_FIBRE);
  ck_assert_str_eq(c->speed_text, "fibre");
  ck_assert_uint_eq(c->transcript_timeout_ms, 100);
  ck_assert_uint_eq(c->session_lifetime_s, 86400);
  ck_assert_uint_eq(c->max_connections, 1000000);
  ck_assert_uint_eq(c->handshake_timeout_ms, 100);
  ck_assert_uint_eq(c->idle_timeout_s, 86400);
  ck_assert_uint_eq(c->stats_interval_s, 1);
  ck_assert_uint_eq(c->max_connections_per_address, 100000);
  ck_assert_uint_eq(c->max_pending_challenges, 1);
  ck_assert_uint_eq(c->max_frame_bytes, 1024);
  ck_assert_uint_eq(c->max_write_queue_bytes, 65536);
  ck_assert_uint_eq(c->max_error_replies_per_s, 100000);
  ck_assert_str_eq(c->metrics_host, "::1");
  ck_assert_int_eq(c->metrics_port, 9464);
  free(c);
}
END_TEST

START_TEST(lm_golden_defaults) {
  char *t = lm_text(NULL, NULL);
  cl_landmark_config *c = malloc(sizeof *c);
  char err[512];
  ck_assert_msg(lm_load(t, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_str_eq(c->name, "fra-1");
  char want[PATH_MAX + 32];
  snprintf(want, sizeof want, "%s/landmark.key", g_real_dir);
  ck_assert_str_eq(c->key_path, want); /* relative to the config file */
  ck_assert_str_eq(c->listen_host, "0.0.0.0");
  ck_assert_int_eq(c->listen_port, 7400);
  ck_assert_double_eq(c->lat, 50.1109);
  ck_assert_double_eq(c->lon, 8.6821);
  ck_assert_str_eq(c->conninfo, "host=/tmp dbname=chiploc");
  ck_assert_uint_eq(c->batch_size, 500);
  ck_assert_uint_eq(c->flush_interval_ms, 1000);
  ck_assert_uint_eq(c->refresh_interval_s, 30);
  ck_assert_uint_eq(c->interval_s, 60);
  ck_assert_double_eq(c->jitter, 0.1);
  ck_assert_uint_eq(c->burst, 5);
  ck_assert_uint_eq(c->burst_gap_ms, 100);
  ck_assert_uint_eq(c->deadline_ms, 1000);
  ck_assert_double_eq(c->speed_m_per_s, CL_SPEED_C);
  ck_assert_str_eq(c->speed_text, "c");
  ck_assert_uint_eq(c->verify_threads, 2);
  ck_assert_uint_eq(c->transcript_timeout_ms, 10000);
  ck_assert_uint_eq(c->session_lifetime_s, 3600);
  ck_assert_uint_eq(c->max_connections, 20000);
  ck_assert_uint_eq(c->handshake_timeout_ms, 10000);
  ck_assert_uint_eq(c->idle_timeout_s, 300);
  ck_assert_uint_eq(c->stats_interval_s, 60);
  ck_assert_uint_eq(c->max_connections_per_address, 64);
  ck_assert_uint_eq(c->max_pending_challenges, 64);
  ck_assert_uint_eq(c->max_frame_bytes, CL_FRAME_MAX);
  ck_assert_uint_eq(c->max_write_queue_bytes, 262144); /* 256 KiB */
  ck_assert_uint_eq(c->max_error_replies_per_s, 10);
  ck_assert_str_eq(c->metrics_host, ""); /* no metrics endpoint */
  ck_assert_int_eq(c->metrics_port, 0);
  free(c);
  free(t);
}
END_TEST

/*
 * A valid landmarkd config like lm_text's, with `probe` appended to [probe]
 * and `limits` to [limits], for the settings that are checked against each
 * other.
 */
static char *lm_text_probe_limits(const char *probe, const char *limits) {
  char *s = NULL;
  ck_assert(asprintf(&s,
                     "[landmark]\nname = fra-1\nkey = landmark.key\nlat = 50.1109\nlon = 8.6821\n"
                     "[database]\nconninfo = host=/tmp dbname=chiploc\n[probe]\n%s[limits]\n%s",
                     probe, limits) > 0);
  return s;
}

START_TEST(lm_range_limits_accepted) {
  /* Both ends of every range are valid. interval_s = 86400 passes its range
   * check, but no idle_timeout_s exceeds that cycle (lm_idle_timeout_vs_cycle),
   * so the ends of the burst settings are tried with a shorter interval. */
  char *t = lm_text_probe_limits("interval_s = 82000\njitter = 0\nburst = 16\n"
                                 "burst_gap_ms = 60000\ndeadline_ms = 1\nspeed = 299792458\n"
                                 "transcript_timeout_ms = 60000\nsession_lifetime_s = 60\n",
                                 "idle_timeout_s = 86400\n"
                                 "max_write_queue_bytes = 67108864\n"
                                 "max_error_replies_per_s = 1\n");
  cl_landmark_config *c = malloc(sizeof *c);
  char err[512];
  ck_assert_msg(lm_load(t, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_uint_eq(c->burst, CL_MAX_BURST);
  ck_assert_double_eq(c->jitter, 0);
  ck_assert_uint_eq(c->transcript_timeout_ms, 60000);
  ck_assert_uint_eq(c->session_lifetime_s, 60);
  ck_assert_double_eq(c->speed_m_per_s, CL_SPEED_C);
  /* The other ends of these two are in lm_golden_full. */
  ck_assert_uint_eq(c->max_write_queue_bytes, 67108864);
  ck_assert_uint_eq(c->max_error_replies_per_s, 1);
  free(t);
  t = lm_text("landmark", "listen = 127.0.0.1:1\n");
  ck_assert_msg(lm_load(t, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_int_eq(c->listen_port, 1);
  free(t);
  free(c);
}
END_TEST

START_TEST(lm_out_of_range) {
  /* A record holds at most CL_MAX_BURST (16) probes. */
  lm_expect_extra("probe", "burst = 0\n", "10: [probe] burst = 0: must be an integer in [1, 16]");
  lm_expect_extra("probe", "burst = 17\n",
                  "10: [probe] burst = 17: must be an integer in [1, 16]");
  lm_expect_extra("probe", "transcript_timeout_ms = 99\n",
                  "10: [probe] transcript_timeout_ms = 99: must be an integer in [100, 60000]");
  lm_expect_extra("probe", "transcript_timeout_ms = 60001\n",
                  "10: [probe] transcript_timeout_ms = 60001: must be an integer in [100, 60000]");
  lm_expect_extra("probe", "session_lifetime_s = 59\n",
                  "10: [probe] session_lifetime_s = 59: must be an integer in [60, 86400]");
  lm_expect_extra("probe", "session_lifetime_s = 86401\n",
                  "10: [probe] session_lifetime_s = 86401: must be an integer in [60, 86400]");
  lm_expect_extra("probe", "jitter = 0.6\n",
                  "10: [probe] jitter = 0.6: must be a number in [0, 0.5]");
  lm_expect_extra("database", "batch_size = 100001\n",
                  "10: [database] batch_size = 100001: must be an integer in [1, 100000]");
  lm_expect_extra("database", "flush_interval_ms = 9\n",
                  "10: [database] flush_interval_ms = 9: must be an integer in [10, 600000]");
  lm_expect_extra("limits", "handshake_timeout_ms = 99\n",
                  "10: [limits] handshake_timeout_ms = 99: must be an integer in [100, 600000]");
  lm_expect_extra("limits", "max_connections = 4294967296\n",
                  "10: [limits] max_connections = 4294967296: must be an integer in [1, 1000000]");
  lm_expect_extra("limits", "max_connections_per_address = 0\n",
                  "10: [limits] max_connections_per_address = 0: must be an integer in [1, 100000]");
  lm_expect_extra("limits", "max_pending_challenges = 1025\n",
                  "10: [limits] max_pending_challenges = 1025: must be an integer in [1, 1024]");
  lm_expect_extra("limits", "max_frame_bytes = 1023\n",
                  "10: [limits] max_frame_bytes = 1023: must be an integer in [1024, 65536]");
  lm_expect_extra("limits", "max_frame_bytes = 65537\n",
                  "10: [limits] max_frame_bytes = 65537: must be an integer in [1024, 65536]");
  lm_expect_extra(
      "limits", "max_write_queue_bytes = 65535\n",
      "10: [limits] max_write_queue_bytes = 65535: must be an integer in [65536, 67108864]");
  lm_expect_extra(
      "limits", "max_write_queue_bytes = 67108865\n",
      "10: [limits] max_write_queue_bytes = 67108865: must be an integer in [65536, 67108864]");
  lm_expect_extra("limits", "max_error_replies_per_s = 0\n",
                  "10: [limits] max_error_replies_per_s = 0: must be an integer in [1, 100000]");
  lm_expect_extra(
      "limits", "max_error_replies_per_s = 100001\n",
      "10: [limits] max_error_replies_per_s = 100001: must be an integer in [1, 100000]");
  lm_expect("[landmark]\nname = x\nkey = k\nlat = 90.5\nlon = 0\n",
            "4: [landmark] lat = 90.5: must be a number in [-90, 90]");
  lm_expect("[landmark]\nname = x\nkey = k\nlat = 0\nlon = -180.01\n",
            "5: [landmark] lon = -180.01: must be a number in [-180, 180]");
}
END_TEST

START_TEST(lm_not_a_number) {
  lm_expect_extra("probe", "interval_s = soon\n",
                  "10: [probe] interval_s = soon: must be an integer in [1, 86400]");
  lm_expect_extra("probe", "deadline_ms = -1\n",
                  "10: [probe] deadline_ms = -1: must be an integer in [1, 60000]");
  lm_expect_extra("probe", "deadline_ms = 1.5\n",
                  "10: [probe] deadline_ms = 1.5: must be an integer in [1, 60000]");
  lm_expect_extra("probe", "deadline_ms =\n",
                  "10: [probe] deadline_ms = \"\": must be an integer in [1, 60000]");
  lm_expect_extra("probe", "jitter = nan\n",
                  "10: [probe] jitter = nan: must be a number in [0, 0.5]");
}
END_TEST

START_TEST(lm_trailing_garbage) {
  lm_expect_extra("probe", "interval_s = 5x\n",
                  "10: [probe] interval_s = 5x: must be an integer in [1, 86400]");
  lm_expect_extra("limits", "idle_timeout_s = 30 s\n",
                  "10: [limits] idle_timeout_s = 30 s: must be an integer in [1, 86400]");
  /* '#' is not an inline comment (only "; " is), so it is garbage here. */
  lm_expect_extra("probe", "burst = 5 # five\n",
                  "10: [probe] burst = 5 # five: must be an integer in [1, 16]");
  lm_expect_extra("probe", "jitter = 0.1x\n",
                  "10: [probe] jitter = 0.1x: must be a number in [0, 0.5]");
}
END_TEST

START_TEST(lm_metrics_listen) {
  /* Empty means off, like an absent key; anything else is HOST:PORT. */
  char *t = lm_text(NULL, "[metrics]\nlisten =\n");
  cl_landmark_config *c = malloc(sizeof *c);
  char err[512];
  ck_assert_msg(lm_load(t, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_str_eq(c->metrics_host, "");
  ck_assert_int_eq(c->metrics_port, 0);
  free(t);
  t = lm_text(NULL, "[metrics]\nlisten = 127.0.0.1:9464\n");
  ck_assert_msg(lm_load(t, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_str_eq(c->metrics_host, "127.0.0.1");
  ck_assert_int_eq(c->metrics_port, 9464);
  free(t);
  free(c);
  lm_expect_extra(NULL, "[metrics]\nlisten = 9464\n",
                  "11: [metrics] listen = 9464: must be HOST:PORT or [IPV6]:PORT with a port in "
                  "[1, 65535]");
}
END_TEST

START_TEST(lm_unknown_key_and_section) {
  lm_expect_extra("probe", "bursts = 5\n", "10: [probe] bursts: unknown key");
  lm_expect_extra("landmark", "address = 1.2.3.4:5\n", "10: [landmark] address: unknown key");
  lm_expect_extra(NULL, "[prob]\nburst = 3\n",
                  "10: unknown section [prob] (expected [landmark], [database], [probe], "
                  "[limits], [metrics])");
  /* An unknown section is an error even when it is empty. */
  lm_expect_extra(NULL, "[agent]\n",
                  "10: unknown section [agent] (expected [landmark], [database], [probe], "
                  "[limits], [metrics])");
  lm_expect("burst = 5\n[landmark]\n", "1: burst = 5: setting outside of any section");
}
END_TEST

START_TEST(lm_duplicates) {
  lm_expect_extra("probe", "burst = 5\nburst = 6\n",
                  "11: [probe] burst: duplicate key (first set on line 10)");
  /* Indented lines are keys, not continuation lines. */
  lm_expect_extra("probe", "burst = 5\n    burst = 6\n",
                  "11: [probe] burst: duplicate key (first set on line 10)");
  lm_expect_extra(NULL, "[probe]\n", "10: section [probe] appears twice (first on line 8)");
}
END_TEST

START_TEST(lm_missing_required) {
  lm_expect("[landmark]\nname = x\nkey = k\nlon = 0\n[database]\nconninfo = x\n",
            " [landmark] lat is required");
  lm_expect("[landmark]\nname = x\nkey = k\nlat = 0\nlon = 0\n", " [database] conninfo is required");
  lm_expect("", " [landmark] name is required");
  lm_expect("[landmark]\nname = x\nlat = 0\nlon = 0\n[database]\nconninfo = x\n",
            " [landmark] key is required");
}
END_TEST

START_TEST(lm_bad_values) {
  lm_expect_extra("landmark", "listen = 7400\n",
                  "10: [landmark] listen = 7400: must be HOST:PORT or [IPV6]:PORT with a port in "
                  "[1, 65535]");
  lm_expect_extra("landmark", "listen = 0.0.0.0:0\n",
                  "10: [landmark] listen = 0.0.0.0:0: must be HOST:PORT or [IPV6]:PORT with a "
                  "port in [1, 65535]");
  lm_expect_extra("probe", "speed = 4e8\n",
                  "10: [probe] speed = 4e8: must be c, fibre, or metres per second in (0, "
                  "299792458]");
  lm_expect_extra("probe", "speed = light\n",
                  "10: [probe] speed = light: must be c, fibre, or metres per second in (0, "
                  "299792458]");
  lm_expect_extra("database", "conninfo = more\n",
                  "10: [database] conninfo: duplicate key (first set on line 9)");
  lm_expect("[landmark]\nname =\n", "2: [landmark] name = \"\": must be 1 to 64 printable ASCII "
                                    "characters");
  lm_expect("[landmark\nname = x\n", "1: section header without a closing ']': [landmark");
  lm_expect("[landmark]\nname x\n", "2: expected [section] or key = value: name x");
}
END_TEST

START_TEST(lm_long_line) {
  /* Longer than inih's 200-byte line buffer: still read whole. */
  char conninfo[600];
  memset(conninfo, 0, sizeof conninfo);
  strcpy(conninfo, "host=/tmp dbname=chiploc application_name=");
  size_t n = strlen(conninfo);
  memset(conninfo + n, 'a', 400);
  char extra[700];
  snprintf(extra, sizeof extra, "[database]\nconninfo = %s   ; a comment\n", conninfo);
  char *t = cat("[landmark]\nname = x\nkey = k\nlat = 1\nlon = 2\n", extra);
  cl_landmark_config *c = malloc(sizeof *c);
  char err[512];
  ck_assert_msg(lm_load(t, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_str_eq(c->conninfo, conninfo);
  free(t);
  /* A long bad value is reported on its own line. */
  char longnum[300];
  memset(longnum, '9', sizeof longnum - 1);
  longnum[sizeof longnum - 1] = '\0';
  snprintf(extra, sizeof extra, "burst = %s\n", longnum);
  t = lm_text("probe", extra);
  ck_assert_int_eq(lm_load(t, c, err, sizeof err, NULL), CL_EMALFORMED);
  ck_assert_msg(strstr(err, ":10: [probe] burst = 999") != NULL, "%s", err);
  ck_assert_msg(strstr(err, "must be an integer in [1, 16]") != NULL, "%s", err);
  free(t);
  free(c);
}
END_TEST

/*
 * Cross-field rule: [limits] idle_timeout_s must exceed one probe cycle,
 * interval_s * (1 + jitter) + burst * (deadline_ms + burst_gap_ms) / 1000
 * seconds. The error names the file but no line, since every setting
 * involved may be a default.
 */
static void lm_expect_idle(const char *probe, const char *limits, const char *suffix) {
  char *t = lm_text_probe_limits(probe, limits);
  lm_expect(t, suffix);
  free(t);
}

static void lm_expect_idle_ok(const char *probe, const char *limits, uint32_t idle_s) {
  char *t = lm_text_probe_limits(probe, limits);
  cl_landmark_config *c = malloc(sizeof *c);
  char err[512];
  ck_assert_msg(lm_load(t, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_uint_eq(c->idle_timeout_s, idle_s);
  free(c);
  free(t);
}

#define CYCLE_RULE "interval_s * (1 + jitter) + burst * (deadline_ms + burst_gap_ms))"

START_TEST(lm_idle_timeout_vs_cycle) {
  /* The defaults make a cycle of 66 + 5.5 s: one second less is refused. */
  lm_expect_idle("", "idle_timeout_s = 71\n",
                 " [limits] idle_timeout_s = 71 must exceed one probe cycle (71.5 s: " CYCLE_RULE);
  lm_expect_idle_ok("", "idle_timeout_s = 72\n", 72);
  /* Equal is not enough: a cycle of exactly 101 s. */
  const char *whole = "interval_s = 100\njitter = 0\nburst = 1\nburst_gap_ms = 0\n";
  lm_expect_idle(whole, "idle_timeout_s = 101\n",
                 " [limits] idle_timeout_s = 101 must exceed one probe cycle (101.0 s: " CYCLE_RULE);
  lm_expect_idle_ok(whole, "idle_timeout_s = 102\n", 102);
  /* Probe settings alone break the default idle timeout of 300 s; the
   * jitter counts: 268 s * 1.1 + 5.5 s, where 268 s + 5.5 s would fit. */
  lm_expect_idle("interval_s = 268\n", "",
                 " [limits] idle_timeout_s = 300 must exceed one probe cycle (300.3 s: " CYCLE_RULE);
  lm_expect_idle_ok("interval_s = 267\n", "", 300);
  /* So does the burst: 16 probes of 1000 + 100 ms after 60 s. */
  lm_expect_idle("jitter = 0\nburst = 16\n", "idle_timeout_s = 77\n",
                 " [limits] idle_timeout_s = 77 must exceed one probe cycle (77.6 s: " CYCLE_RULE);
  lm_expect_idle_ok("jitter = 0\nburst = 16\n", "idle_timeout_s = 78\n", 78);
  /* interval_s = 86400 is in its range but no idle_timeout_s can exceed it. */
  lm_expect_idle("interval_s = 86400\njitter = 0\nburst = 1\nburst_gap_ms = 0\ndeadline_ms = 1\n",
                 "idle_timeout_s = 86400\n",
                 " [limits] idle_timeout_s = 86400 must exceed one probe cycle (86400.0 s: "
                 CYCLE_RULE);
}
END_TEST

START_TEST(lm_missing_file) {
  cl_landmark_config *c = malloc(sizeof *c);
  char err[512], path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/nonexistent.conf", g_dir);
  ck_assert_int_eq(cl_landmark_config_load(path, c, err, sizeof err), CL_EIO);
  char want[PATH_MAX + 100];
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
  ck_assert_str_eq(err, want);
  free(c);
}
END_TEST

/* ---- chipagent ---------------------------------------------------------- */

/* A valid agent config of exactly 6 lines; `last` moved to the end so that
 * `extra` starts on line 7. Sections: agent, landmark.fra, chip.gpu0. */
static char *ag_text(const char *last, const char *extra) {
  char lm[300];
  snprintf(lm, sizeof lm, "[landmark.fra]\naddress = fra.example.org:7400\npublic_key = %s\n",
           g_pk_hex);
  const char *secs[][2] = {
      {"agent", "[agent]\n"},
      {"landmark.fra", lm},
      {"chip.gpu0", "[chip.gpu0]\nkey = keys/gpu0.key\n"},
  };
  char *out = strdup("");
  const char *tail = NULL;
  for (size_t i = 0; i < 3; i++) {
    if (last && strcmp(secs[i][0], last) == 0) {
      tail = secs[i][1];
      continue;
    }
    char *n = cat(out, secs[i][1]);
    free(out);
    out = n;
  }
  if (tail) {
    char *n = cat(out, tail);
    free(out);
    out = n;
  }
  char *n = cat(out, extra ? extra : "");
  free(out);
  return n;
}

static int ag_load(const char *text, cl_agent_config *cfg, char *err, size_t errlen,
                   char **path_out) {
  char *path = tu_write_file(g_dir, "chipagent.conf", text);
  int rc = cl_agent_config_load(path, cfg, err, errlen);
  if (path_out)
    *path_out = path;
  else
    free(path);
  return rc;
}

static void ag_expect(const char *text, const char *suffix) {
  cl_agent_config *cfg = malloc(sizeof *cfg);
  char err[512], *path = NULL, want[1024];
  int rc = ag_load(text, cfg, err, sizeof err, &path);
  snprintf(want, sizeof want, "%s:%s", path, suffix);
  ck_assert_msg(rc == CL_EMALFORMED, "rc=%d err=%s", rc, err);
  ck_assert_str_eq(err, want);
  free(path);
  free(cfg);
}

static void ag_expect_extra(const char *sec, const char *extra, const char *suffix) {
  char *t = ag_text(sec, extra);
  ag_expect(t, suffix);
  free(t);
}

START_TEST(ag_golden_full) {
  char text[2048];
  snprintf(text, sizeof text,
           "[agent]\n"
           "name = dc1-host17\n"
           "backoff_min_ms = 250\n"
           "backoff_max_ms = 60000\n"
           "idle_timeout_s = 900\n"
           "[landmark.fra]\n"
           "address = fra.example.org:7400\n"
           "public_key = %s\n"
           "[landmark.ams-2]\n"
           "address = [2001:db8::7]:7401\n"
           "public_key = %s\n"
           "[chip.gpu0]\n"
           "key = /var/lib/chiploc/gpu0.key\n"
           "[chip.gpu1]\n"
           "key = keys/gpu1.key\n",
           g_pk_hex, g_pk2_hex);
  cl_agent_config *c = malloc(sizeof *c);
  char err[512];
  ck_assert_msg(ag_load(text, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_str_eq(c->name, "dc1-host17");
  ck_assert_uint_eq(c->backoff_min_ms, 250);
  ck_assert_uint_eq(c->backoff_max_ms, 60000);
  ck_assert_uint_eq(c->idle_timeout_s, 900);
  ck_assert_uint_eq(c->n_landmarks, 2);
  ck_assert_str_eq(c->landmarks[0].name, "fra");
  ck_assert_str_eq(c->landmarks[0].host, "fra.example.org");
  ck_assert_int_eq(c->landmarks[0].port, 7400);
  ck_assert_mem_eq(c->landmarks[0].pk, g_pk, CL_PK_LEN);
  ck_assert_str_eq(c->landmarks[1].name, "ams-2");
  ck_assert_str_eq(c->landmarks[1].host, "2001:db8::7");
  ck_assert_int_eq(c->landmarks[1].port, 7401);
  ck_assert_mem_eq(c->landmarks[1].pk, g_pk2, CL_PK_LEN);
  ck_assert_uint_eq(c->n_chips, 2);
  ck_assert_str_eq(c->chips[0].name, "gpu0");
  ck_assert_str_eq(c->chips[0].key_path, "/var/lib/chiploc/gpu0.key");
  ck_assert_str_eq(c->chips[1].name, "gpu1");
  char want[PATH_MAX + 32];
  snprintf(want, sizeof want, "%s/keys/gpu1.key", g_real_dir);
  ck_assert_str_eq(c->chips[1].key_path, want);
  free(c);
}
END_TEST

START_TEST(ag_golden_defaults) {
  char *t = ag_text(NULL, NULL);
  cl_agent_config *c = malloc(sizeof *c);
  char err[512];
  ck_assert_msg(ag_load(t, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  char host[256] = "";
  gethostname(host, sizeof host);
  host[CL_CONFIG_NAME_MAX] = '\0';
  ck_assert_str_eq(c->name, host);
  ck_assert_uint_eq(c->backoff_min_ms, 500);
  ck_assert_uint_eq(c->backoff_max_ms, 30000);
  ck_assert_uint_eq(c->idle_timeout_s, 300);
  ck_assert_uint_eq(c->n_landmarks, 1);
  ck_assert_uint_eq(c->n_chips, 1);
  free(t);
  /* Both ends of the idle timeout's range are accepted. */
  static const char *const idle_ok[][2] = {{"idle_timeout_s = 1\n", "1"},
                                          {"idle_timeout_s = 86400\n", "86400"}};
  for (size_t i = 0; i < 2; i++) {
    t = ag_text("agent", idle_ok[i][0]);
    ck_assert_msg(ag_load(t, c, err, sizeof err, NULL) == CL_OK, "%s", err);
    ck_assert_uint_eq(c->idle_timeout_s, strtoul(idle_ok[i][1], NULL, 10));
    free(t);
  }
  /* The [agent] section may be left out entirely. */
  char text[512];
  snprintf(text, sizeof text,
           "[landmark.a]\naddress = 127.0.0.1:7400\npublic_key = %s\n[chip.c]\nkey = /k\n",
           g_pk_hex);
  ck_assert_msg(ag_load(text, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_str_eq(c->name, host);
  ck_assert_str_eq(c->landmarks[0].host, "127.0.0.1");
  free(c);
}
END_TEST

START_TEST(ag_relative_paths) {
  cl_agent_config *c = malloc(sizeof *c);
  char err[512], want[PATH_MAX + 64];
  char *t = ag_text("chip.gpu0", "[chip.gpu1]\nkey = ../elsewhere/gpu1.key\n[chip.gpu2]\nkey = "
                                 "/abs/gpu2.key\n[chip.gpu3]\nkey = gpu3.key\n");
  ck_assert_msg(ag_load(t, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_uint_eq(c->n_chips, 4);
  snprintf(want, sizeof want, "%s/keys/gpu0.key", g_real_dir);
  ck_assert_str_eq(c->chips[0].key_path, want);
  snprintf(want, sizeof want, "%s/../elsewhere/gpu1.key", g_real_dir);
  ck_assert_str_eq(c->chips[1].key_path, want);
  ck_assert_str_eq(c->chips[2].key_path, "/abs/gpu2.key");
  snprintf(want, sizeof want, "%s/gpu3.key", g_real_dir);
  ck_assert_str_eq(c->chips[3].key_path, want);
  free(t);

  /* A config path without a directory resolves against the current one. */
  char cwd[PATH_MAX];
  ck_assert(getcwd(cwd, sizeof cwd) != NULL);
  ck_assert_int_eq(chdir(g_dir), 0);
  ck_assert_msg(cl_agent_config_load("chipagent.conf", c, err, sizeof err) == CL_OK, "%s", err);
  snprintf(want, sizeof want, "%s/gpu3.key", g_real_dir);
  ck_assert_str_eq(c->chips[3].key_path, want);
  ck_assert_int_eq(chdir(cwd), 0);
  free(c);
}
END_TEST

START_TEST(ag_errors) {
  ag_expect_extra("agent", "backoff_min_ms = 5\n",
                  "7: [agent] backoff_min_ms = 5: must be an integer in [10, 600000]");
  ag_expect_extra("agent", "backoff_max_ms = 3600001\n",
                  "7: [agent] backoff_max_ms = 3600001: must be an integer in [100, 3600000]");
  ag_expect_extra("agent", "backoff_max_ms = 1000x\n",
                  "7: [agent] backoff_max_ms = 1000x: must be an integer in [100, 3600000]");
  ag_expect_extra("agent", "backoff_min_ms = 5000\nbackoff_max_ms = 1000\n",
                  "8: [agent] backoff_max_ms = 1000: must be >= backoff_min_ms (5000)");
  ag_expect_extra("agent", "backoff_min_ms = 60000\n",
                  "7: [agent] backoff_min_ms = 60000: must be <= backoff_max_ms (30000)");
  ag_expect_extra("agent", "idle_timeout_s = 0\n",
                  "7: [agent] idle_timeout_s = 0: must be an integer in [1, 86400]");
  ag_expect_extra("agent", "idle_timeout_s = 86401\n",
                  "7: [agent] idle_timeout_s = 86401: must be an integer in [1, 86400]");
  ag_expect_extra("agent", "idle_timeout_s = -5\n",
                  "7: [agent] idle_timeout_s = -5: must be an integer in [1, 86400]");
  ag_expect_extra("agent", "retry = 1\n", "7: [agent] retry: unknown key");
  ag_expect_extra("landmark.fra", "port = 1\n", "7: [landmark.fra] port: unknown key");
  ag_expect_extra("chip.gpu0", "key = other.key\n",
                  "7: [chip.gpu0] key: duplicate key (first set on line 6)");
  ag_expect_extra(NULL, "[landmark]\n",
                  "7: unknown section [landmark] (expected [agent], [landmark.NAME], "
                  "[chip.NAME], [metrics])");
  ag_expect_extra(NULL, "[chips.x]\n",
                  "7: unknown section [chips.x] (expected [agent], [landmark.NAME], "
                  "[chip.NAME], [metrics])");
  ag_expect_extra(NULL, "[chip.]\n",
                  "7: section [chip.]: the name after 'chip.' must be 1 to 64 letters, digits, "
                  "'-', '_' or '.'");
  ag_expect_extra(NULL, "[chip.a b]\n",
                  "7: section [chip.a b]: the name after 'chip.' must be 1 to 64 letters, "
                  "digits, '-', '_' or '.'");
  ag_expect_extra(NULL, "[chip.gpu0]\n", "7: section [chip.gpu0] appears twice (first on line 5)");
  ag_expect_extra(NULL, "[agent]\n", "7: section [agent] appears twice (first on line 1)");
  /* A chip section without its key. */
  ag_expect_extra(NULL, "[chip.gpu1]\n", " [chip.gpu1] key is required");
  ag_expect_extra(NULL, "[landmark.ams]\npublic_key = 00\n",
                  "8: [landmark.ams] public_key = 00: must be 64 hex characters (an Ed25519 "
                  "public key)");
}
END_TEST

START_TEST(ag_bad_public_key) {
  char extra[300], want[400];
  /* Not hex. */
  char bad[CL_PK_HEX_LEN + 1];
  memcpy(bad, g_pk_hex, sizeof bad);
  bad[10] = 'g';
  snprintf(extra, sizeof extra, "[landmark.ams]\naddress = a:1\npublic_key = %s\n", bad);
  snprintf(want, sizeof want,
           "9: [landmark.ams] public_key = %s: must be 64 hex characters (an Ed25519 public key)",
           bad);
  ag_expect_extra(NULL, extra, want);
  /* 62 characters. */
  bad[10] = g_pk_hex[10];
  bad[62] = '\0';
  snprintf(extra, sizeof extra, "[landmark.ams]\naddress = a:1\npublic_key = %s\n", bad);
  snprintf(want, sizeof want,
           "9: [landmark.ams] public_key = %s: must be 64 hex characters (an Ed25519 public key)",
           bad);
  ag_expect_extra(NULL, extra, want);
  /* Well-formed hex but a small-order point (the identity). */
  const char *ident = "0100000000000000000000000000000000000000000000000000000000000000";
  snprintf(extra, sizeof extra, "[landmark.ams]\naddress = a:1\npublic_key = %s\n", ident);
  snprintf(want, sizeof want,
           "9: [landmark.ams] public_key = %s: not a usable Ed25519 public key", ident);
  ag_expect_extra(NULL, extra, want);
  /* Missing key. */
  ag_expect_extra(NULL, "[landmark.ams]\naddress = a:1\n", " [landmark.ams] public_key is required");
}
END_TEST

START_TEST(ag_bad_address) {
  static const char *bad[] = {"fra.example.org",  "fra.example.org:",   ":7400",
                              "host:0",           "host:65536",         "host:7400x",
                              "::1:7400",         "[::1]7400",          "[]:7400",
                              "[::1:7400",        "ho st:7400",         "host:-1",
                              "host:+80",         "[1.2.3.4]:80"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char extra[300], want[400];
    snprintf(extra, sizeof extra, "[landmark.ams]\naddress = %s\npublic_key = %s\n", bad[i],
             g_pk2_hex);
    snprintf(want, sizeof want,
             "8: [landmark.ams] address = %s: must be HOST:PORT or [IPV6]:PORT with a port in "
             "[1, 65535]",
             bad[i]);
    ag_expect_extra(NULL, extra, want);
  }
  ag_expect_extra(NULL, "[landmark.ams]\npublic_key = 11\n[chip.x]\n",
                  "8: [landmark.ams] public_key = 11: must be 64 hex characters (an Ed25519 "
                  "public key)");
}
END_TEST

START_TEST(ag_counts) {
  char text[1024];
  snprintf(text, sizeof text, "[landmark.a]\naddress = h:1\npublic_key = %s\n", g_pk_hex);
  ag_expect(text, " at least 1 [chip.NAME] section is required");
  ag_expect("[chip.a]\nkey = k\n", " at least 1 [landmark.NAME] section is required");

  /* 65 landmarks: the 65th header is refused. */
  size_t cap = 65 * 200 + 100, o = 0;
  char *big = malloc(cap);
  for (int i = 0; i < 65; i++)
    o += (size_t)snprintf(big + o, cap - o, "[landmark.l%d]\naddress = h:1\npublic_key = %s\n", i,
                          g_pk_hex);
  snprintf(big + o, cap - o, "[chip.a]\nkey = k\n");
  char want[100];
  snprintf(want, sizeof want, "%d: too many [landmark.NAME] sections: at most 64", 64 * 3 + 1);
  ag_expect(big, want);
  /* 64 are fine. */
  o = 0;
  for (int i = 0; i < 64; i++)
    o += (size_t)snprintf(big + o, cap - o, "[landmark.l%d]\naddress = h:1\npublic_key = %s\n", i,
                          g_pk_hex);
  snprintf(big + o, cap - o, "[chip.a]\nkey = k\n");
  cl_agent_config *c = malloc(sizeof *c);
  char err[512];
  ck_assert_msg(ag_load(big, c, err, sizeof err, NULL) == CL_OK, "%s", err);
  ck_assert_uint_eq(c->n_landmarks, 64);
  ck_assert_str_eq(c->landmarks[63].name, "l63");
  free(c);
  free(big);
}
END_TEST

START_TEST(ag_missing_file) {
  cl_agent_config *c = malloc(sizeof *c);
  char err[512];
  ck_assert_int_eq(cl_agent_config_load("/nonexistent/chipagent.conf", c, err, sizeof err),
                   CL_EIO);
  ck_assert_str_eq(err, "/nonexistent/chipagent.conf: cannot open: No such file or directory");
  free(c);
}
END_TEST

/* ---- cl_parse_hostport -------------------------------------------------- */

START_TEST(hostport) {
  char host[CL_CONFIG_HOST_MAX];
  int port = 0;
  ck_assert_int_eq(cl_parse_hostport("[::1]:7400", host, sizeof host, &port), CL_OK);
  ck_assert_str_eq(host, "::1");
  ck_assert_int_eq(port, 7400);
  ck_assert_int_eq(cl_parse_hostport("[fe80::1%eth0]:65535", host, sizeof host, &port), CL_OK);
  ck_assert_str_eq(host, "fe80::1%eth0");
  ck_assert_int_eq(port, 65535);
  ck_assert_int_eq(cl_parse_hostport("landmark-1.example.org:1", host, sizeof host, &port), CL_OK);
  ck_assert_str_eq(host, "landmark-1.example.org");
  ck_assert_int_eq(port, 1);
  /* Host longer than the buffer. */
  char small[4];
  ck_assert_int_eq(cl_parse_hostport("abcd:1", small, sizeof small, &port), CL_EMALFORMED);
  ck_assert_int_eq(cl_parse_hostport("abc:1", small, sizeof small, &port), CL_OK);
  ck_assert_int_eq(cl_parse_hostport("abc:100000", host, sizeof host, &port), CL_EMALFORMED);
}
END_TEST

/* ---- the example configs in deploy/ ------------------------------------- */

/*
 * Copies deploy/NAME into the temp dir twice: as is, and with every
 * commented-out setting (";key = value") turned on. Both must load, and
 * since the commented values are the documented defaults, to the same
 * struct.
 */
static void example_pair(const char *name, char **plain, char **uncommented) {
  char rel[128];
  snprintf(rel, sizeof rel, "deploy/%s", name);
  char *src = tu_src(rel);
  char *text = tu_read_file(src);
  ck_assert_msg(text != NULL, "cannot read %s", src);
  size_t n = strlen(text);
  char *on = malloc(n + 1);
  size_t o = 0;
  for (char *line = text; *line;) {
    char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
    int setting = line[0] == ';' && line[1] >= 'a' && line[1] <= 'z' &&
                  memmem(line, len, " = ", 3) != NULL;
    memcpy(on + o, line + setting, len - (size_t)setting);
    o += len - (size_t)setting;
    line += len;
  }
  on[o] = '\0';
  *plain = tu_write_file(g_dir, "example-plain.conf", text);
  *uncommented = tu_write_file(g_dir, "example-on.conf", on);
  free(src);
  free(text);
  free(on);
}

START_TEST(example_landmarkd) {
  char *plain, *on, err[512];
  example_pair("landmarkd.conf.example", &plain, &on);
  cl_landmark_config *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  ck_assert_msg(cl_landmark_config_load(plain, a, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_msg(cl_landmark_config_load(on, b, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_str_eq(a->listen_host, "0.0.0.0");
  ck_assert_uint_eq(a->batch_size, 500);
  ck_assert_mem_eq(a, b, sizeof *a);
  free(a);
  free(b);
  free(plain);
  free(on);
}
END_TEST

START_TEST(example_chipagent) {
  char *plain, *on, err[512];
  example_pair("chipagent.conf.example", &plain, &on);
  cl_agent_config *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  ck_assert_msg(cl_agent_config_load(plain, a, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_msg(cl_agent_config_load(on, b, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_uint_eq(a->n_landmarks, 2);
  ck_assert_uint_eq(a->n_chips, 2);
  ck_assert_str_eq(b->name, "dc1-host17"); /* the one example that is not the default */
  memcpy(b->name, a->name, sizeof b->name);
  ck_assert_mem_eq(a, b, sizeof *a);
  free(a);
  free(b);
  free(plain);
  free(on);
}
END_TEST

static Suite *config_suite(void) {
  Suite *s = suite_create("config");
  TCase *lm = tcase_create("landmarkd");
  tcase_set_timeout(lm, 30);
  tcase_add_test(lm, lm_golden_full);
  tcase_add_test(lm, lm_golden_defaults);
  tcase_add_test(lm, lm_range_limits_accepted);
  tcase_add_test(lm, lm_out_of_range);
  tcase_add_test(lm, lm_not_a_number);
  tcase_add_test(lm, lm_trailing_garbage);
  tcase_add_test(lm, lm_metrics_listen);
  tcase_add_test(lm, lm_unknown_key_and_section);
  tcase_add_test(lm, lm_duplicates);
  tcase_add_test(lm, lm_missing_required);
  tcase_add_test(lm, lm_bad_values);
  tcase_add_test(lm, lm_long_line);
  tcase_add_test(lm, lm_idle_timeout_vs_cycle);
  tcase_add_test(lm, lm_missing_file);
  suite_add_tcase(s, lm);
  TCase *ag = tcase_create("chipagent");
  tcase_set_timeout(ag, 30);
  tcase_add_test(ag, ag_golden_full);
  tcase_add_test(ag, ag_golden_defaults);
  tcase_add_test(ag, ag_relative_paths);
  tcase_add_test(ag, ag_errors);
  tcase_add_test(ag, ag_bad_public_key);
  tcase_add_test(ag, ag_bad_address);
  tcase_add_test(ag, ag_counts);
  tcase_add_test(ag, ag_missing_file);
  suite_add_tcase(s, ag);
  TCase *ex = tcase_create("examples");
  tcase_add_test(ex, example_landmarkd);
  tcase_add_test(ex, example_chipagent);
  suite_add_tcase(s, ex);
  TCase *hp = tcase_create("hostport");
  tcase_add_test(hp, hostport);
  suite_add_tcase(s, hp);
  return s;
}

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  /* Not tu_tmpdir: Check assertions may only run inside a test. */
  g_dir = strdup("/tmp/test_config.XXXXXX");
  if (!g_dir || !mkdtemp(g_dir)) return EXIT_FAILURE;
  if (!realpath(g_dir, g_real_dir)) return EXIT_FAILURE;
  uint8_t seed[32];
  cl_key *k = NULL;
  memset(seed, 7, sizeof seed);
  if (cl_key_from_seed(&k, seed) != CL_OK) return EXIT_FAILURE;
  memcpy(g_pk, cl_key_public(k), CL_PK_LEN);
  cl_pk_to_hex(g_pk, g_pk_hex);
  cl_key_destroy(&k);
  memset(seed, 9, sizeof seed);
  if (cl_key_from_seed(&k, seed) != CL_OK) return EXIT_FAILURE;
  memcpy(g_pk2, cl_key_public(k), CL_PK_LEN);
  cl_pk_to_hex(g_pk2, g_pk2_hex);
  cl_key_destroy(&k);

  SRunner *sr = srunner_create(config_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);

  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/landmarkd.conf", g_dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/chipagent.conf", g_dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/example-plain.conf", g_dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/example-on.conf", g_dir);
  unlink(path);
  rmdir(g_dir);
  free(g_dir);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
