/*
 * Prometheus metrics: a builder for the text exposition format 0.0.4 (with
 * the histograms of cl_hist.h), and a small HTTP server (libmicrohttpd, on
 * its own thread) that answers GET /metrics with the last published
 * snapshot.
 *
 * Threading contract: the owner (an event loop) keeps its counters to
 * itself, renders them into a cl_mtext on its own thread and publishes the
 * text; the HTTP thread only copies the published snapshot under a mutex.
 * Nothing in this module ever reads the owner's counters, so they need no
 * locking and no atomics.
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

/*
 * Binds host:port (a numeric IPv4 or IPv6 address; port 0 picks a free
 * port) and serves GET /metrics from its own thread. Returns 0, CL_EINVAL
 * (host not a numeric address) or CL_EIO (cannot bind, listen or start the
 * thread); err names the address and the reason. Until the first
 * cl_metrics_server_publish, /metrics answers with an empty body.
 */
int cl_metrics_server_start(cl_metrics_server **out, const char *host, int port, char *err,
                            size_t errlen);
/* The port actually bound (useful after port 0). */
int cl_metrics_server_port(const cl_metrics_server *m);
/* Replaces the served text by a copy of text[0..len). Thread-safe; cheap
 * enough for once a second. Returns 0 or CL_ENOMEM (the old text stays). */
int cl_metrics_server_publish(cl_metrics_server *m, const char *text, size_t len);
/* Stops the thread, closes the socket and frees; NULLs *m. */
void cl_metrics_server_stop(cl_metrics_server **m);

#endif
