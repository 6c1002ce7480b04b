/*
 * libFuzzer target for the configuration loader (lib/conf/cl_config.c): the
 * input is the text of a config file, loaded both as a landmarkd and as a
 * chipagent file.
 *
 * The loader reads a path with inih's stream API, so the input goes into an
 * anonymous in-memory file (memfd) created once per process and rewritten
 * on every run; the loader opens it as /proc/self/fd/N. Nothing is left in
 * the file system, even when the process dies on a crash.
 *
 * Checked on every input, beyond the sanitizers:
 *  - the result is 0 or CL_EMALFORMED; an error message is NUL-terminated
 *    and starts with the path, a success leaves no message;
 *  - a loaded config holds only values within the documented ranges.
 */
#define _GNU_SOURCE /* memfd_create */
#include "cl_config.h"
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_probe.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(cond) \
  do {              \
    if (!(cond)) abort(); \
  } while (0)

static int g_fd = -1;
static char g_path[64];

/* Replaces the memfd's contents with data[0..size). */
static void put_input(const uint8_t *data, size_t size) {
  if (g_fd < 0) {
    g_fd = memfd_create("fuzz_config", MFD_CLOEXEC);
    if (g_fd < 0) {
      perror("memfd_create");
      abort();
    }
    snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
  }
  CHECK(ftruncate(g_fd, 0) == 0);
  size_t off = 0;
  while (off < size) {
    ssize_t n = pwrite(g_fd, data + off, size - off, (off_t)off);
    CHECK(n > 0);
    off += (size_t)n;
  }
}

static int valid_text(const char *s, size_t cap) {
  const char *end = memchr(s, '\0', cap);
  if (!end || end == s) return 0;
  for (const char *p = s; p < end; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) return 0;
  return 1;
}

/* Common checks on a load result and its message. */
static void check_result(int rc, const char *err, size_t errlen) {
  CHECK(rc == CL_OK || rc == CL_EMALFORMED);
  CHECK(memchr(err, '\0', errlen) != NULL);
  if (rc == CL_OK) {
    CHECK(err[0] == '\0');
    return;
  }
  CHECK(strncmp(err, g_path, strlen(g_path)) == 0 && err[strlen(g_path)] == ':');
}

static void check_landmark(void) {
  static cl_landmark_config c;
  char err[600];
  memset(err, 'X', sizeof err);
  int rc = cl_landmark_config_load(g_path, &c, err, sizeof err);
  check_result(rc, err, sizeof err);
  if (rc != CL_OK) return;
  CHECK(valid_text(c.name, sizeof c.name));
  CHECK(memchr(c.key_path, '\0', sizeof c.key_path) && c.key_path[0] == '/');
  CHECK(memchr(c.listen_host, '\0', sizeof c.listen_host) && c.listen_host[0]);
  CHECK(c.listen_port >= 1 && c.listen_port <= 65535);
  CHECK(c.lat >= -90 && c.lat <= 90 && c.lon >= -180 && c.lon <= 180);
  CHECK(memchr(c.conninfo, '\0', sizeof c.conninfo) && c.conninfo[0]);
  CHECK(c.batch_size >= 1 && c.batch_size <= 100000);
  CHECK(c.flush_interval_ms >= 10 && c.flush_interval_ms <= 600000);
  CHECK(c.refresh_interval_s >= 1 && c.refresh_interval_s <= 86400);
  CHECK(c.interval_s >= 1 && c.interval_s <= 86400);
  CHECK(c.jitter >= 0 && c.jitter <= 0.5);
  CHECK(c.burst >= 1 && c.burst <= 64);
  CHECK(c.burst_gap_ms <= 60000);
  CHECK(c.deadline_ms >= 1 && c.deadline_ms <= 60000);
  CHECK(c.speed_m_per_s > 0 && c.speed_m_per_s <= CL_SPEED_C);
  CHECK(memchr(c.speed_text, '\0', sizeof c.speed_text) && c.speed_text[0]);
  CHECK(c.max_connections >= 1 && c.max_connections <= 1000000);
  CHECK(c.handshake_timeout_ms >= 100 && c.handshake_timeout_ms <= 600000);
  CHECK(c.idle_timeout_s >= 1 && c.idle_timeout_s <= 86400);
  CHECK(c.stats_interval_s >= 1 && c.stats_interval_s <= 86400);
  CHECK(memchr(c.spool_path, '\0', sizeof c.spool_path) && c.spool_path[0] == '/');
  CHECK(c.spool_max_mb >= 1 && c.spool_max_mb <= 100000);
  CHECK(c.max_connections_per_address >= 1 && c.max_connections_per_address <= 100000);
  CHECK(c.max_pending_challenges >= 1 && c.max_pending_challenges <= 1024);
  CHECK(c.max_frame_bytes >= 1024 && c.max_frame_bytes <= CL_FRAME_MAX);
  CHECK(memchr(c.metrics_host, '\0', sizeof c.metrics_host));
  if (c.metrics_host[0])
    CHECK(c.metrics_port >= 1 && c.metrics_port <= 65535);
  else
    CHECK(c.metrics_port == 0);
}

static void check_agent(void) {
  static cl_agent_config c;
  char err[600];
  memset(err, 'X', sizeof err);
  int rc = cl_agent_config_load(g_path, &c, err, sizeof err);
  check_result(rc, err, sizeof err);
  if (rc != CL_OK) return;
  CHECK(valid_text(c.name, sizeof c.name));
  CHECK(c.backoff_min_ms >= 10 && c.backoff_min_ms <= 600000);
  CHECK(c.backoff_max_ms >= 100 && c.backoff_max_ms <= 3600000);
  CHECK(c.backoff_max_ms >= c.backoff_min_ms);
  CHECK(c.idle_timeout_s >= 1 && c.idle_timeout_s <= 86400);
  CHECK(c.n_landmarks >= 1 && c.n_landmarks <= CL_CONFIG_MAX_LANDMARKS);
  CHECK(c.n_chips >= 1 && c.n_chips <= CL_CONFIG_MAX_CHIPS);
  for (size_t i = 0; i < c.n_landmarks; i++) {
    const cl_agent_landmark *l = &c.landmarks[i];
    CHECK(valid_text(l->name, sizeof l->name));
    CHECK(memchr(l->host, '\0', sizeof l->host) && l->host[0]);
    CHECK(l->port >= 1 && l->port <= 65535);
    CHECK(cl_pk_check(l->pk) == CL_OK);
    for (size_t j = 0; j < i; j++) CHECK(strcmp(c.landmarks[j].name, l->name) != 0);
  }
  for (size_t i = 0; i < c.n_chips; i++) {
    const cl_agent_chip *ch = &c.chips[i];
    CHECK(valid_text(ch->name, sizeof ch->name));
    CHECK(memchr(ch->key_path, '\0', sizeof ch->key_path) && ch->key_path[0] == '/');
    for (size_t j = 0; j < i; j++) CHECK(strcmp(c.chips[j].name, ch->name) != 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  put_input(data, size);
  check_landmark();
  check_agent();
  return 0;
}
