/*
 * The read-only web server of cl_httpd.h: libmicrohttpd with a pool of
 * threads, the owner's handler first, then the assets directory, the same
 * headers on every answer.
 */
#include "cl_httpd.h"
#include "cl_err.h"
#include "cl_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define JSON_TYPE "application/json"
/* Bodies of the server's own refusals: constant JSON. */
#define NOT_FOUND_BODY "{\"error\":\"not found\"}\n"
#define NOT_ALLOWED_BODY "{\"error\":\"method not allowed: only GET and HEAD\"}\n"
/* Longest path looked up in the assets directory, and its depth. */
#define ASSET_PATH_MAX 256
#define ASSET_DEPTH_MAX 4

struct cl_httpd {
  struct MHD_Daemon *d;
  int port;
  char *root; /* the assets directory, resolved (realpath), or NULL */
  size_t root_len;
  cl_httpd_handler handler;
  void *ctx;
  /* libmicrohttpd's last error message while starting (its logger). */
  char start_err[256];
};

struct cl_httpd_req {
  struct MHD_Connection *conn;
};

const char *cl_httpd_arg(const cl_httpd_req *req, const char *key) {
  if (!req || !key) return NULL;
  return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

/* ---- answers ------------------------------------------------------------------- */

static void add_headers(struct MHD_Response *r, const char *ctype, const char *cache) {
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
  MHD_add_response_header(r, "Content-Security-Policy", CL_HTTPD_CSP);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(r, "X-Frame-Options", "DENY");
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
}

/* Queues r (which it destroys) and logs the request at debug level. */
static enum MHD_Result send_response(struct MHD_Connection *conn, const char *method,
                                     const char *url, unsigned status, struct MHD_Response *r) {
  if (!r) {
    cl_log(CL_LOG_WARN, "no memory for a response", "status=%u", status);
    return MHD_NO;
  }
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  if (cl_log_get_level() <= CL_LOG_DEBUG) {
    char qm[48], qp[300];
    cl_log(CL_LOG_DEBUG, "request", "method=%s path=%s status=%u",
           cl_log_quote(qm, sizeof qm, method, strlen(method)),
           cl_log_quote(qp, sizeof qp, url, strlen(url)), status);
  }
  return ret;
}

static enum MHD_Result send_const(struct MHD_Connection *conn, const char *method,
                                  const char *url, unsigned status, const char *body) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
  if (r) add_headers(r, JSON_TYPE, "no-store");
  return send_response(conn, method, url, status, r);
}

/* ---- files ---------------------------------------------------------------------- */

static const struct {
  const char *ext, *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".png", "image/png"},
    {".svg", "image/svg+xml"},
    {".json", "application/json"},
    {".geojson", "application/geo+json"},
    {".ico", "image/x-icon"},
};

/* The Content-Type of a file name, or NULL for one not served. */
static const char *type_of(const char *name) {
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < sizeof TYPES / sizeof TYPES[0]; i++)
    if (strcmp(dot, TYPES[i].ext) == 0) return TYPES[i].type;
  return NULL;
}

/* 1 when path (starting with '/') may name a file: segments of letters,
 * digits, '.', '_' and '-' that do not start with '.', none empty, at most
 * ASSET_DEPTH_MAX of them. */
static int asset_path_ok(const char *path) {
  size_t n = strlen(path), depth = 0;
  if (n < 2 || n >= ASSET_PATH_MAX || path[0] != '/') return 0;
  for (const char *p = path; *p;) {
    p++; /* the '/' */
    size_t seg = strcspn(p, "/");
    if (seg == 0 || p[0] == '.' || ++depth > ASSET_DEPTH_MAX) return 0;
    for (size_t i = 0; i < seg; i++) {
      char c = p[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-'))
        return 0;
    }
    p += seg;
  }
  return 1;
}

/* Opens the file for path inside the assets directory: the fd with its size
 * and type, or -1 when there is no such file to serve. */
static int open_asset(const cl_httpd *h, const char *path, off_t *size, const char **type) {
  if (!h->root || !asset_path_ok(path) || !(*type = type_of(path))) return -1;
  char joined[PATH_MAX], real[PATH_MAX];
  if (snprintf(joined, sizeof joined, "%s%s", h->root, path) >= (int)sizeof joined) return -1;
  /* Symbolic links are resolved first: the file they lead to must be in
   * the directory too. */
  if (!realpath(joined, real) || strncmp(real, h->root, h->root_len) != 0 ||
      real[h->root_len] != '/')
    return -1;
  int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return -1;
  }
  *size = st.st_size;
  return fd;
}

/* ---- requests ------------------------------------------------------------------- */

/* Runs on one of the server's threads. A GET has no body, so the answer is
 * queued on the first call for the request. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls) {
  cl_httpd *h = cls;
  (void)version;
  (void)upload_data;
  (void)req_cls;
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
    *upload_data_size = 0;
    return send_const(conn, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, NOT_ALLOWED_BODY);
  }
  if (h->handler) {
    cl_httpd_req req = {conn};
    cl_httpd_reply rep = {0, NULL, NULL, 0};
    if (h->handler(h->ctx, &req, url, &rep)) {
      struct MHD_Response *r = NULL;
      if (rep.body || rep.len == 0)
        r = MHD_create_response_from_buffer(rep.len, rep.body ? rep.body : (char *)"",
                                            rep.body ? MHD_RESPMEM_MUST_FREE
                                                     : MHD_RESPMEM_PERSISTENT);
      if (!r) {
        free(rep.body);
        return send_const(conn, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "{\"error\":\"out of memory\"}\n");
      }
      add_headers(r, rep.content_type ? rep.content_type : JSON_TYPE, "no-store");
      return send_response(conn, method, url, rep.status, r);
    }
  }
  off_t size = 0;
  const char *type = NULL;
  int fd = open_asset(h, strcmp(url, "/") == 0 ? "/index.html" : url, &size, &type);
  if (fd < 0) return send_const(conn, method, url, MHD_HTTP_NOT_FOUND, NOT_FOUND_BODY);
  struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)size, fd); /* takes fd */
  if (!r) close(fd);
  else add_headers(r, type, "no-cache");
  return send_response(conn, method, url, MHD_HTTP_OK, r);
}

/* Percent-decoding of the path and of query arguments, in place, as
 * libmicrohttpd's own but for %00: a NUL would end the text early
 * (`/index.html%00.png` read as `/index.html`), so it stays as written,
 * and such a path names no file or chip. Other malformed escapes stay as
 * written too. Returns the new length. */
static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static size_t unescape(void *cls, struct MHD_Connection *conn, char *s) {
  (void)cls;
  (void)conn;
  char *o = s;
  for (const char *p = s; *p; p++) {
    int hi = p[0] == '%' ? hex_digit(p[1]) : -1, lo = hi >= 0 ? hex_digit(p[2]) : -1;
    if (lo >= 0 && (hi | lo) != 0) {
      *o++ = (char)(hi << 4 | lo);
      p += 2;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return (size_t)(o - s);
}

/* libmicrohttpd's error messages while starting, kept for err. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  cl_httpd *h = cls;
  vsnprintf(h->start_err, sizeof h->start_err, fmt, ap);
  size_t n = strlen(h->start_err);
  while (n > 0 && (h->start_err[n - 1] == '\n' || h->start_err[n - 1] == ' '))
    h->start_err[--n] = '\0';
}

int cl_httpd_start(cl_httpd **out, const cl_httpd_opts *o, char *err, size_t errlen) {
  if (!out || !o || !o->host) return CL_EINVAL;
  *out = NULL;
  if (o->port < 0 || o->port > 65535 || o->threads < 1 || o->threads > 16 ||
      o->max_connections < 1 || o->max_connections > 1024 || o->per_ip_connections < 1 ||
      o->per_ip_connections > o->max_connections || o->timeout_s < 1 || o->timeout_s > 3600) {
    cl_err_set(err, errlen, "web server options out of range");
    return CL_EINVAL;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  int v6 = 0;
  if (inet_pton(AF_INET, o->host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)o->port);
  } else if (inet_pton(AF_INET6, o->host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)o->port);
    v6 = 1;
  } else {
    cl_err_set(err, errlen, "%s is not a numeric IP address", o->host);
    return CL_EINVAL;
  }
  cl_httpd *h = calloc(1, sizeof *h);
  if (!h) {
    cl_err_set(err, errlen, "out of memory");
    return CL_ENOMEM;
  }
  h->handler = o->handler;
  h->ctx = o->ctx;
  if (o->assets_dir) {
    struct stat st;
    if (!(h->root = realpath(o->assets_dir, NULL)) || stat(h->root, &st) != 0 ||
        !S_ISDIR(st.st_mode)) {
      cl_err_set(err, errlen, "assets directory %s: %s", o->assets_dir,
                 h->root ? "not a directory" : strerror(errno));
      free(h->root);
      free(h);
      return CL_EINVAL;
    }
    h->root_len = strlen(h->root);
  }
  /* epoll or poll (MHD_USE_AUTO), never select; a pool of threads so that
   * files are served while a handler waits for the database. */
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
  h->d = MHD_start_daemon(
      flags, (uint16_t)o->port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
      h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
      (unsigned int)o->threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)o->max_connections,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)o->per_ip_connections,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)o->timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_UNESCAPE_CALLBACK, unescape,
      NULL, MHD_OPTION_END);
  if (!h->d) {
    cl_err_set(err, errlen, "cannot serve on %s:%d: %s", o->host, o->port,
               h->start_err[0] ? h->start_err : "libmicrohttpd refused to start");
    free(h->root);
    free(h);
    return CL_EIO;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
  h->port = info ? (int)info->port : o->port;
  *out = h;
  return CL_OK;
}

int cl_httpd_port(const cl_httpd *h) { return h ? h->port : 0; }

void cl_httpd_stop(cl_httpd **ph) {
  if (!ph || !*ph) return;
  cl_httpd *h = *ph;
  MHD_stop_daemon(h->d); /* joins the threads and closes the listening socket */
  free(h->root);
  free(h);
  *ph = NULL;
}
