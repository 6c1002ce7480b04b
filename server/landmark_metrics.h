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

#endif
