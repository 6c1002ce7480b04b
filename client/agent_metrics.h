/*
 * chipagent's counters as Prometheus text (docs/METRICS.md, "chipagent"),
 * and its readiness. Pure formatting, on the agent's loop thread.
 */
#ifndef AGENT_METRICS_H
#define AGENT_METRICS_H

#include "agent.h"
#include "cl_metrics.h"

#include <stddef.h>

/*
 * Renders every series of the agent into t (appended); name is the agent's
 * name for the info series. Returns 0 or CL_ENOMEM.
 */
int agent_metrics_render(const agent *a, const char *name, cl_mtext *t);

/*
 * The agent is ready while at least one landmark has registered it (a
 * connection up with at least one chip's session agreed): it is then being
 * measured. Returns 1, or 0 with why (one line) naming how many landmarks
 * are configured.
 */
int agent_ready(const agent *a, char *why, size_t whylen);

#endif
