/*
 * chipagent --check-config. Blocking sockets and plain poll(2): it runs
 * before, and instead of, the event loop. See agent_check.h.
 */
#include "agent_check.h"
#include "cl_config.h"
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_metrics.h"
#include "cl_msg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Milliseconds left until deadline, for poll(2); 0 once it has passed. */
static int left_ms(uint64_t deadline) {
  uint64_t now = mono_ms();
  return now >= deadline ? 0 : (int)(deadline - now);
}

/* Connects to one address before deadline. The socket, or -1 with why set. */
static int connect_one(const struct addrinfo *ai, uint64_t deadline, char *why, size_t whylen) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
  if (fd < 0) {
    cl_err_set(why, whylen, "socket: %s", strerror(errno));
    return -1;
  }
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
    cl_err_set(why, whylen, "connect: %s", strerror(errno));
    close(fd);
    return -1;
  }
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  int r = poll(&p, 1, left_ms(deadline));
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (r == 0) {
    cl_err_set(why, whylen, "connect: no answer within the timeout");
  } else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
    cl_err_set(why, whylen, "connect: %s", strerror(errno));
  } else if (soerr != 0) {
    cl_err_set(why, whylen, "connect: %s", strerror(soerr));
  } else {
    return fd;
  }
  close(fd);
  return -1;
}

/* Reads the landmark's first frame into *m before deadline. 0, or -1 with
 * why set. */
static int read_first_msg(int fd, uint64_t deadline, cl_msg *m, char *why, size_t whylen) {
  cl_frame_asm fa;
  cl_frame_asm_init(&fa, CL_FRAME_MAX_UNREGISTERED);
  int rc = -1;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, left_ms(deadline));
    if (r == 0) {
      cl_err_set(why, whylen, "connected, but no Hello within the timeout");
      break;
    }
    uint8_t buf[4096];
    ssize_t n = r > 0 ? read(fd, buf, sizeof buf) : -1;
    if (n == 0) {
      cl_err_set(why, whylen, "connected, but the peer closed before sending a Hello");
      break;
    }
    if (n < 0) {
      cl_err_set(why, whylen, "read: %s", strerror(errno));
      break;
    }
    size_t used = 0, flen = 0;
    const uint8_t *frame = NULL;
    int f = cl_frame_asm_feed(&fa, buf, (size_t)n, &used, &frame, &flen);
    if (f == 0) continue;
    if (f < 0) {
      cl_err_set(why, whylen, "the peer's first frame is not a chiploc frame (%s)",
                 cl_strerror(f));
      break;
    }
    char derr[160] = "";
    int d = cl_msg_decode(frame, flen, m, derr, sizeof derr);
    if (d == CL_EVERSION)
      cl_err_set(why, whylen, "the peer speaks protocol %u, this agent %u", m->version,
                 CL_PROTOCOL_VERSION);
    else if (d != CL_OK)
      cl_err_set(why, whylen, "the peer's first frame does not decode: %s",
                 derr[0] ? derr : cl_strerror(d));
    else
      rc = 0;
    break;
  }
  cl_frame_asm_fini(&fa);
  return rc;
}

/* One landmark: connect, read its Hello, compare it with the config.
 * 0, or -1 with why set. */
static int check_landmark(const cl_agent_landmark *l, unsigned timeout_ms, char *why,
                          size_t whylen) {
  char port[8];
  snprintf(port, sizeof port, "%d", l->port);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  int g = getaddrinfo(l->host, port, &hints, &res);
  if (g != 0) {
    cl_err_set(why, whylen, "resolve: %s", gai_strerror(g));
    return -1;
  }
  uint64_t deadline = mono_ms() + timeout_ms;
  int fd = -1;
  for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
    fd = connect_one(ai, deadline, why, whylen);
  freeaddrinfo(res);
  if (fd < 0) return -1;
  cl_msg *m = malloc(sizeof *m);
  int rc = -1;
  if (!m) {
    cl_err_set(why, whylen, "out of memory");
  } else if (read_first_msg(fd, deadline, m, why, whylen) == 0) {
    if (m->type == CL_MSG_ERROR) {
      cl_err_set(why, whylen, "the landmark refused the connection: %s: %.200s",
                 cl_wire_error_name(m->u.error.code), m->u.error.text);
    } else if (m->type != CL_MSG_HELLO) {
      cl_err_set(why, whylen, "the peer's first message is %s, not hello",
                 cl_msg_type_name(m->type));
    } else if (memcmp(m->u.hello.landmark, l->pk, CL_PK_LEN) != 0) {
      char got[CL_PK_HEX_LEN + 1];
      cl_pk_to_hex(m->u.hello.landmark, got);
      cl_err_set(why, whylen, "the landmark presents key %s, not the pinned public_key", got);
    } else if (!cl_suite_known(m->u.hello.suite)) {
      cl_err_set(why, whylen, "the landmark's cipher suite %u is unknown to this agent",
                 m->u.hello.suite);
    } else {
      cl_err_set(why, whylen, "protocol %u, pinned key, suite %u (%s)", CL_PROTOCOL_VERSION,
                 m->u.hello.suite, cl_suite_name(m->u.hello.suite));
      rc = 0;
    }
  }
  free(m);
  close(fd);
  return rc;
}

/* 1 when the metrics endpoint at host:port is this very agent's (a
 * running chipagent of the same name holds the address), else 0. */
static int metrics_are_ours(const char *host, int port, const char *name, unsigned timeout_ms) {
  char portbuf[8], why[200];
  snprintf(portbuf, sizeof portbuf, "%d", port);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;
  if (getaddrinfo(host, portbuf, &hints, &res) != 0) return 0;
  uint64_t deadline = mono_ms() + timeout_ms;
  int fd = connect_one(res, deadline, why, sizeof why);
  freeaddrinfo(res);
  if (fd < 0) return 0;
  static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
  size_t cap = 1u << 20, len = 0;
  char *buf = malloc(cap + 1);
  if (buf && write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
    for (;;) {
      struct pollfd p = {.fd = fd, .events = POLLIN};
      if (len == cap || poll(&p, 1, left_ms(deadline)) <= 0) break;
      ssize_t n = read(fd, buf + len, cap - len);
      if (n <= 0) break;
      len += (size_t)n;
    }
  }
  close(fd);
  int ours = 0;
  if (buf) {
    buf[len] = '\0';
    char q[CL_CONFIG_NAME_MAX * 2 + 1], want[CL_CONFIG_NAME_MAX * 2 + 40];
    snprintf(want, sizeof want, "chiploc_agent_info{agent=\"%s\",",
             cl_mtext_label_value(q, sizeof q, name));
    ours = strstr(buf, want) != NULL;
  }
  free(buf);
  return ours;
}

static void line_ok(const char *what, const char *detail) {
  printf("ok   %s%s%s\n", what, detail && *detail ? ": " : "", detail ? detail : "");
}

static void line_fail(const char *what, const char *why) { printf("FAIL %s: %s\n", what, why); }

int agent_check_config(const char *path, unsigned timeout_ms) {
  cl_agent_config *cfg = malloc(sizeof *cfg);
  if (!cfg) {
    fprintf(stderr, "chipagent: out of memory\n");
    return EXIT_RUNTIME;
  }
  /* A check names a chip and its key file, a landmark and its address, or
   * the config file: room for a whole path. */
  char err[600] = "", what[PATH_MAX + CL_CONFIG_HOST_MAX + CL_CONFIG_NAME_MAX + 64];
  int rc = cl_agent_config_load(path, cfg, err, sizeof err);
  if (rc != CL_OK) {
    snprintf(what, sizeof what, "config %s", path);
    line_fail(what, err[0] ? err : cl_strerror(rc));
    free(cfg);
    return EXIT_USAGE;
  }
  snprintf(what, sizeof what, "config %s", path);
  snprintf(err, sizeof err, "%zu landmark(s), %zu chip(s)", cfg->n_landmarks, cfg->n_chips);
  line_ok(what, err);
  int status = 0;

  /* The keys, as agent_create loads them. */
  uint8_t pks[CL_CONFIG_MAX_CHIPS][CL_PK_LEN];
  for (size_t i = 0; i < cfg->n_chips; i++) {
    const cl_agent_chip *c = &cfg->chips[i];
    snprintf(what, sizeof what, "chip %s key %s", c->name, c->key_path);
    cl_key *k = NULL;
    char kerr[300] = "";
    rc = cl_key_load(&k, c->key_path, kerr, sizeof kerr);
    if (rc != CL_OK) {
      line_fail(what, kerr[0] ? kerr : cl_strerror(rc));
      status = EXIT_USAGE;
      continue;
    }
    memcpy(pks[i], cl_key_public(k), CL_PK_LEN);
    cl_key_destroy(&k);
    size_t same = i;
    for (size_t j = 0; j < i; j++)
      if (memcmp(pks[j], pks[i], CL_PK_LEN) == 0) same = j;
    char hex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(pks[i], hex);
    if (same != i) {
      snprintf(err, sizeof err, "the same key as chip %s", cfg->chips[same].name);
      line_fail(what, err);
      status = EXIT_USAGE;
    } else {
      snprintf(err, sizeof err, "chip id %s", hex);
      line_ok(what, err);
    }
  }

  if (cfg->metrics_host[0]) {
    snprintf(what, sizeof what, "metrics listen %s%s%s:%d", strchr(cfg->metrics_host, ':') ? "[" : "",
             cfg->metrics_host, strchr(cfg->metrics_host, ':') ? "]" : "", cfg->metrics_port);
    cl_metrics_server *ms = NULL;
    char merr[300] = "";
    if (cl_metrics_server_start(&ms, cfg->metrics_host, cfg->metrics_port, merr, sizeof merr) ==
        CL_OK) {
      cl_metrics_server_stop(&ms);
      line_ok(what, "bindable");
    } else if (metrics_are_ours(cfg->metrics_host, cfg->metrics_port, cfg->name, timeout_ms)) {
      /* Checking before a restart: the running agent frees it on exit. */
      line_ok(what, "held by the running chipagent of this name");
    } else {
      line_fail(what, merr);
      status = EXIT_USAGE;
    }
  }

  int landmarks_failed = 0;
  for (size_t i = 0; i < cfg->n_landmarks; i++) {
    const cl_agent_landmark *l = &cfg->landmarks[i];
    snprintf(what, sizeof what, "landmark %s %s%s%s:%d", l->name, strchr(l->host, ':') ? "[" : "",
             l->host, strchr(l->host, ':') ? "]" : "", l->port);
    if (check_landmark(l, timeout_ms, err, sizeof err) == 0) {
      line_ok(what, err);
    } else {
      line_fail(what, err);
      landmarks_failed = 1;
    }
  }
  free(cfg);
  if (status == 0 && landmarks_failed) status = EXIT_RUNTIME;
  return status;
}
