/*
 * landmarkd's counters as text: the `msg=stats` log line and the
 * Prometheus exposition (docs/METRICS.md), rendered from a snapshot of the
 * server's and the writer's counters. Pure formatting: no I/O but the log
 * line.
 */
#ifndef LM_LANDMARK_METRICS_H
#define LM_LANDMARK_METRICS_H

#include "cl_metrics.h"
#include "landmark.h"
#include "writer.h"

/* Writes one `msg=stats` log line with every counter. */
void lm_stats_log(const lm_server_view *v, const lm_writer_stats *ws);

/*
 * Renders every counter, gauge and histogram of the server and of its
 * writer in Prometheus text format into t (appended; docs/METRICS.md lists
 * them); name is the landmark's name for the info series. Returns 0 or
 * CL_ENOMEM.
 */
int lm_metrics_render(const lm_server_view *v, const lm_writer_stats *ws, const char *name,
                      cl_mtext *t);

/*
 * /readyz of landmarkd: ready once it listens (the enrolled set was loaded
 * once), and until it shuts down. A database outage alone leaves it ready:
 * it goes on measuring into the spool (chiploc_database_connected shows the
 * outage); it is not ready while the database is down and the spool is full
 * (at least 99% of spool_max_bytes), when measurements are being lost.
 * Returns 1, or 0 with why (one line).
 */
int lm_ready(int listening, int stopping, const lm_writer_stats *ws, uint64_t spool_max_bytes,
             char *why, size_t whylen);

#endif
