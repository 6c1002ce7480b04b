/*
 * Prometheus text exposition (format 0.0.4) and the HTTP endpoint that
 * serves it, with /healthz and /readyz. See cl_metrics.h for the threading
 * contract: the served text and health are a snapshot the owner publishes;
 * the HTTP thread copies them under `mu` and touches nothing else.
 */
#include "cl_metrics.h"
#include "cl_err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* ---- text builder ----------------------------------------------------------- */

void cl_mtext_init(cl_mtext *t) { memset(t, 0, sizeof *t); }

void cl_mtext_fini(cl_mtext *t) {
  free(t->buf);
  memset(t, 0, sizeof *t);
}

void cl_mtext_reset(cl_mtext *t) {
  t->len = 0;
  t->failed = 0;
  if (t->buf) t->buf[0] = '\0';
}

int cl_mtext_ok(const cl_mtext *t) { return t->failed ? CL_ENOMEM : CL_OK; }

static void append(cl_mtext *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(cl_mtext *t, const char *fmt, ...) {
  if (t->failed) return;
  for (;;) {
    size_t room = t->cap - t->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->failed = 1;
      return;
    }
    if ((size_t)n < room) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap ? t->cap * 2 : 4096;
    while (cap - t->len <= (size_t)n) cap *= 2;
    char *nb = realloc(t->buf, cap);
    if (!nb) {
      t->failed = 1;
      return;
    }
    t->buf = nb;
    t->cap = cap;
  }
}

void cl_mtext_family(cl_mtext *t, const char *name, const char *type, const char *help) {
  /* HELP text escapes only backslash and newline (format 0.0.4). */
  char esc[512];
  size_t o = 0;
  for (const char *p = help; *p && o + 3 < sizeof esc; p++) {
    if (*p == '\\' || *p == '\n') {
      esc[o++] = '\\';
      esc[o++] = *p == '\n' ? 'n' : '\\';
    } else {
      esc[o++] = *p;
    }
  }
  esc[o] = '\0';
  append(t, "# HELP %s %s\n# TYPE %s %s\n", name, esc, name, type);
}

void cl_mtext_u64(cl_mtext *t, const char *name, const char *labels, uint64_t value) {
  if (labels && *labels)
    append(t, "%s{%s} %llu\n", name, labels, (unsigned long long)value);
  else
    append(t, "%s %llu\n", name, (unsigned long long)value);
}

void cl_mtext_double(cl_mtext *t, const char *name, const char *labels, double value) {
  if (labels && *labels)
    append(t, "%s{%s} %.10g\n", name, labels, value);
  else
    append(t, "%s %.10g\n", name, value);
}

void cl_mtext_histogram(cl_mtext *t, const char *name, const char *labels,
                        const cl_histogram *h) {
  const char *sep = labels && *labels ? "," : "";
  const char *lab = labels ? labels : "";
  uint64_t cum = 0;
  for (size_t i = 0; i < h->n; i++) {
    cum += h->count[i];
    append(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, lab, sep, h->le[i],
           (unsigned long long)cum);
  }
  append(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lab, sep, (unsigned long long)h->total);
  const char *lb = labels && *labels ? "{" : "", *rb = labels && *labels ? "}" : "";
  append(t, "%s_sum%s%s%s %.10g\n", name, lb, lab, rb, h->sum);
  append(t, "%s_count%s%s%s %llu\n", name, lb, lab, rb, (unsigned long long)h->total);
}

char *cl_mtext_label_value(char *out, size_t outlen, const char *value) {
  if (!out || outlen == 0) return out;
  size_t o = 0;
  for (const char *p = value ? value : ""; *p; p++) {
    int two = *p == '\\' || *p == '"' || *p == '\n';
    if (o + (two ? 2u : 1u) >= outlen) break;
    if (two) {
      out[o++] = '\\';
      out[o++] = *p == '\n' ? 'n' : *p;
    } else {
      out[o++] = *p;
    }
  }
  out[o] = '\0';
  return out;
}

/* ---- HTTP server ------------------------------------------------------------ */

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define PLAIN "text/plain; charset=utf-8"
#define WHY_MAX 256

struct cl_metrics_server {
  struct MHD_Daemon *d;
  int port;
  uv_mutex_t mu;
  /* guarded by mu */
  char *text;
  size_t len;
  uint64_t published_ns; /* uv_hrtime of the last publish; 0: none yet */
  uint32_t stale_after_ms;
  int ready;
  char why[WHY_MAX];
};

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *body,
                               size_t len, const char *ctype) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* /healthz, or /readyz when `ready_too`: 200 "ok", or 503 with the reason.
 * Runs on the HTTP thread. */
static enum MHD_Result respond_health(cl_metrics_server *m, struct MHD_Connection *conn,
                                      int ready_too) {
  char body[WHY_MAX + 128];
  unsigned status = MHD_HTTP_SERVICE_UNAVAILABLE;
  uv_mutex_lock(&m->mu);
  uint64_t now = uv_hrtime();
  if (!m->published_ns) {
    snprintf(body, sizeof body, "starting\n");
  } else if (now - m->published_ns > (uint64_t)m->stale_after_ms * 1000000ull) {
    snprintf(body, sizeof body, "stale: nothing published for %.1f s (limit %.1f s)\n",
             (double)(now - m->published_ns) / 1e9, (double)m->stale_after_ms / 1e3);
  } else if (ready_too && !m->ready) {
    snprintf(body, sizeof body, "not ready: %s\n", m->why);
  } else {
    status = MHD_HTTP_OK;
    snprintf(body, sizeof body, "ok\n");
  }
  uv_mutex_unlock(&m->mu);
  return respond(conn, status, body, strlen(body), PLAIN);
}

/* Runs on the HTTP thread. A GET has no body, so the answer is queued on
 * the first call for the request. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls) {
  cl_metrics_server *m = cls;
  (void)version;
  (void)upload_data;
  (void)req_cls;
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
    static const char msg[] = "only GET and HEAD\n";
    *upload_data_size = 0;
    return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, msg, sizeof msg - 1, "text/plain");
  }
  int healthz = strcmp(url, "/healthz") == 0, readyz = strcmp(url, "/readyz") == 0;
  if (healthz || readyz) return respond_health(m, conn, readyz);
  if (strcmp(url, "/metrics") != 0) {
    static const char msg[] = "not found: try /metrics, /healthz or /readyz\n";
    return respond(conn, MHD_HTTP_NOT_FOUND, msg, sizeof msg - 1, "text/plain");
  }
  uv_mutex_lock(&m->mu);
  enum MHD_Result ret = respond(conn, MHD_HTTP_OK, m->text ? m->text : "", m->len, CONTENT_TYPE);
  uv_mutex_unlock(&m->mu);
  return ret;
}

/* Binds and listens itself so that errors are precise (errno), and so that
 * port 0 can be read back. Returns the socket or -1 with err set. */
static int open_listener(const char *host, int port, int *v6, int *bound_port, char *err,
                         size_t errlen) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    sl = sizeof *a4;
    *v6 = 0;
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    sl = sizeof *a6;
    *v6 = 1;
  } else {
    snprintf(err, errlen, "metrics address %s is not a numeric IP address", host);
    errno = EINVAL;
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "metrics socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 64) != 0) {
    snprintf(err, errlen, "cannot serve metrics on %s:%d: %s", host, port, strerror(errno));
    close(fd);
    return -1;
  }
  sl = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &sl);
  *bound_port = ntohs(*v6 ? a6->sin6_port : a4->sin_port);
  return fd;
}

int cl_metrics_server_start(cl_metrics_server **out, const char *host, int port, char *err,
                            size_t errlen) {
  if (!out || !host || port < 0 || port > 65535) return CL_EINVAL;
  *out = NULL;
  int v6 = 0, bound = 0;
  int fd = open_listener(host, port, &v6, &bound, err, errlen);
  if (fd < 0) return errno == EINVAL ? CL_EINVAL : CL_EIO;
  cl_metrics_server *m = calloc(1, sizeof *m);
  if (!m || uv_mutex_init(&m->mu) != 0) {
    free(m);
    close(fd);
    snprintf(err, errlen, "out of memory");
    return CL_ENOMEM;
  }
  m->port = bound;
  /* epoll or poll (MHD_USE_AUTO), never select: landmarkd's descriptors
   * may run far above FD_SETSIZE. Few, short-lived scrapers. */
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | (v6 ? MHD_USE_IPv6 : 0);
  m->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m, MHD_OPTION_LISTEN_SOCKET, fd,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned int)32,
                          MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)8,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
  if (!m->d) {
    snprintf(err, errlen, "cannot start the metrics HTTP server on %s:%d", host, bound);
    close(fd);
    uv_mutex_destroy(&m->mu);
    free(m);
    return CL_EIO;
  }
  *out = m;
  return CL_OK;
}

int cl_metrics_server_port(const cl_metrics_server *m) { return m ? m->port : 0; }

int cl_metrics_server_publish(cl_metrics_server *m, const char *text, size_t len,
                              const cl_metrics_health *h) {
  if (!m || (!text && len) || !h || h->stale_after_ms == 0) return CL_EINVAL;
  char *copy = malloc(len + 1);
  if (!copy) return CL_ENOMEM;
  if (len) memcpy(copy, text, len);
  copy[len] = '\0';
  uv_mutex_lock(&m->mu);
  char *old = m->text;
  m->text = copy;
  m->len = len;
  m->published_ns = uv_hrtime();
  m->stale_after_ms = h->stale_after_ms;
  m->ready = h->ready;
  /* One line: a newline in the reason would end the body early. */
  size_t o = 0;
  for (const char *p = h->ready || !h->why ? "" : h->why; *p && o + 1 < sizeof m->why; p++)
    m->why[o++] = *p == '\n' || *p == '\r' ? ' ' : *p;
  m->why[o] = '\0';
  uv_mutex_unlock(&m->mu);
  free(old);
  return CL_OK;
}

void cl_metrics_server_stop(cl_metrics_server **pm) {
  if (!pm || !*pm) return;
  cl_metrics_server *m = *pm;
  MHD_stop_daemon(m->d); /* joins the thread and closes the listening socket */
  uv_mutex_destroy(&m->mu);
  free(m->text);
  free(m);
  *pm = NULL;
}
