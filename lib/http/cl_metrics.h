/*
 * Prometheus metrics: a builder for the text exposition format 0.0.4 (with
 * the histograms of cl_hist.h), and a small HTTP server (libmicrohttpd, on
 * its own thread) that answers GET /metrics with the last published
 * snapshot, and GET /healthz and /readyz with the health published with it.
 *
 * Threading contract: the owner (an event loop) keeps its counters to
 * itself, renders them into a cl_mtext on its own thread and publishes the
 * text with its health; the HTTP thread only copies the published snapshot
 * under a mutex. Nothing in this module ever reads the owner's counters, so
 * they need no locking and no atomics.
 *
 * Health: /healthz says the owner's loop is turning. It answers 200 "ok"
 * while the last publish is younger than the stale_after_ms that publish
 * promised, else 503 with how long the owner has been silent (and 503
 * "starting" before the first publish). /readyz answers 200 "ok" when
 * /healthz does and the owner's last publish said ready, else 503 with the
 * owner's reason. Bodies are text/plain, one line.
 */
#ifndef CL_METRICS_H
#define CL_METRICS_H

#include "cl_hist.h"

#include <stddef.h>
#include <stdint.h>

/* ---- text builder ----------------------------------------------------------- */

/* A growable text buffer. After an allocation failure every further append
 * is dropped and cl_mtext_ok reports CL_ENOMEM. */
typedef struct {
  char *buf;
  size_t len, cap;
  int failed;
} cl_mtext;

void cl_mtext_init(cl_mtext *t);
void cl_mtext_fini(cl_mtext *t);
/* Empties the text, keeping the buffer and clearing a failure. */
void cl_mtext_reset(cl_mtext *t);
/* 0, or CL_ENOMEM if an append was lost. */
int cl_mtext_ok(const cl_mtext *t);

/* The `# HELP` and `# TYPE` lines that open a metric family. type is
 * "counter", "gauge", "histogram" or "summary"; help is one line of text
 * (a backslash or newline in it is escaped). */
void cl_mtext_family(cl_mtext *t, const char *name, const char *type, const char *help);
/*
 * One sample line `name{labels} value`. labels is NULL or the inside of the
 * braces, e.g. `reason="late"`; callers build it with values they control,
 * or escape a foreign value with cl_mtext_label_value first.
 */
void cl_mtext_u64(cl_mtext *t, const char *name, const char *labels, uint64_t value);
void cl_mtext_double(cl_mtext *t, const char *name, const char *labels, double value);
/* The cumulative `name_bucket{...,le="..."}` lines, `name_sum` and
 * `name_count` of a histogram. labels may be NULL. */
void cl_mtext_histogram(cl_mtext *t, const char *name, const char *labels,
                        const cl_histogram *h);
/* Escapes a label value (backslash, double quote, newline) into out, always
 * NUL-terminated, cut to outlen - 1 bytes at a whole escape. Returns out. */
char *cl_mtext_label_value(char *out, size_t outlen, const char *value);

/* ---- HTTP server ------------------------------------------------------------ */

typedef struct cl_metrics_server cl_metrics_server;

/* What the owner says of itself with each snapshot. */
typedef struct {
  /* The owner publishes again within this time while its loop turns;
   * /healthz fails once a publish is this much overdue. > 0. */
  uint32_t stale_after_ms;
  /* 1: ready to do its job (/readyz 200); 0: not, for the reason `why`. */
  int ready;
  /* When not ready: one line for /readyz's body, copied (cut to 255 bytes). */
  const char *why;
} cl_metrics_health;

/*
 * Binds host:port (a numeric IPv4 or IPv6 address; port 0 picks a free
 * port) and serves GET /metrics, /healthz and /readyz from its own thread.
 * Returns 0, CL_EINVAL (host not a numeric address) or CL_EIO (cannot bind,
 * listen or start the thread); err names the address and the reason. Until
 * the first cl_metrics_server_publish, /metrics answers with an empty body
 * and /healthz and /readyz with 503 "starting".
 */
int cl_metrics_server_start(cl_metrics_server **out, const char *host, int port, char *err,
                            size_t errlen);
/* The port actually bound (useful after port 0). */
int cl_metrics_server_port(const cl_metrics_server *m);
/* Replaces the served text by a copy of text[0..len) and the health by *h,
 * and notes the time (the start of /healthz's stale_after_ms). Thread-safe;
 * cheap enough for once a second. Returns 0, CL_EINVAL (h NULL or its
 * stale_after_ms 0) or CL_ENOMEM (text and health stay as they were). */
int cl_metrics_server_publish(cl_metrics_server *m, const char *text, size_t len,
                              const cl_metrics_health *h);
/* Stops the thread, closes the socket and frees; NULLs *m. */
void cl_metrics_server_stop(cl_metrics_server **m);

#endif
