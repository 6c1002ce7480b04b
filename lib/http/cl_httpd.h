/*
 * A small read-only web server (libmicrohttpd, on its own threads) for a
 * page and the JSON behind it: the owner's handler answers the paths it
 * knows with a body it has built, and every other path is a file of one
 * assets directory or a 404. It knows nothing of what it serves; it holds
 * the rules every answer follows:
 *
 *   - only GET and HEAD (405 with `Allow: GET, HEAD` otherwise);
 *   - every response carries CL_HTTPD_CSP as Content-Security-Policy,
 *     `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
 *     `X-Frame-Options: DENY`; the handler's answers also
 *     `Cache-Control: no-store`, files `Cache-Control: no-cache`;
 *   - a file is served only when every segment of the path is made of
 *     letters, digits, '.', '_' and '-' and does not start with '.', its
 *     name ends in a known extension (.html, .js, .css, .png, .svg, .json,
 *     .geojson, .ico), and the path, symbolic links resolved, stays inside
 *     the assets directory; `/` is `/index.html`. Anything else is 404.
 *     Paths and query arguments are percent-decoded, except %00, which
 *     stays as written (a NUL would cut the text short);
 *   - bounded: at most max_connections at once (per_ip of them from one
 *     address), each closed after timeout_s idle seconds, request headers
 *     within libmicrohttpd's per-connection memory (32 KiB).
 *
 * Each request is logged at debug level (`msg=request`, method, path
 * quoted, status).
 */
#ifndef CL_HTTPD_H
#define CL_HTTPD_H

#include <stddef.h>

/* The Content-Security-Policy of every response: nothing from elsewhere,
 * no inline script or style, no plug-ins, forms or framing. */
#define CL_HTTPD_CSP                                                                          \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

typedef struct cl_httpd cl_httpd;
/* One request, for cl_httpd_arg; valid during the handler's call only. */
typedef struct cl_httpd_req cl_httpd_req;

/* The handler's answer. */
typedef struct {
  unsigned status;          /* an HTTP status, e.g. 200 */
  const char *content_type; /* a static string */
  char *body;               /* malloc'd; the server frees it (also when it fails) */
  size_t len;
} cl_httpd_reply;

/*
 * The owner's handler: path is the request's path without its query,
 * percent-decoded. Returns 1 with *out filled when the path is the
 * handler's (any status), 0 when it is not (the path is then looked up in
 * the assets directory). Runs on the server's threads, several at once.
 */
typedef int (*cl_httpd_handler)(void *ctx, const cl_httpd_req *req, const char *path,
                                cl_httpd_reply *out);

/* The value of query argument `key`, percent-decoded; NULL when absent
 * (an argument without '=' has the value ""). */
const char *cl_httpd_arg(const cl_httpd_req *req, const char *key);

typedef struct {
  const char *host;       /* a numeric IPv4 or IPv6 address */
  int port;               /* 0: a free port (cl_httpd_port) */
  const char *assets_dir; /* the files; NULL: none */
  cl_httpd_handler handler;
  void *ctx;
  unsigned threads;          /* 1 to 16 */
  unsigned max_connections;  /* 1 to 1024 */
  unsigned per_ip_connections; /* 1 to max_connections */
  unsigned timeout_s;        /* 1 to 3600 */
} cl_httpd_opts;

/*
 * Starts serving. Returns 0; CL_EINVAL (an option out of range, host not a
 * numeric address, an assets directory that is not one) or CL_EIO (cannot
 * bind or listen: err holds the reason). err names the address or the
 * directory.
 */
int cl_httpd_start(cl_httpd **out, const cl_httpd_opts *o, char *err, size_t errlen);
/* The port bound. */
int cl_httpd_port(const cl_httpd *h);
/* Stops the threads (answers in progress finish), closes and frees; NULLs *h. */
void cl_httpd_stop(cl_httpd **h);

#endif
