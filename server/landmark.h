/*
 * The landmark node's network side: the libuv shell around the protocol
 * core (lib/wire/cl_lmcore.h). It accepts agent connections, feeds the
 * core their bytes with the receive timestamp, writes what the core sends
 * (stamping a challenge's send time immediately before uv_try_write), arms
 * one timer for all of the core's timers, runs the core's jobs (the
 * landmark's half of each session handshake, the check of each chip's
 * Confirm and of each burst's transcript, the record signature) on libuv's
 * thread pool, and hands each burst's signed measurement to the writer.
 *
 * Timed window of one probe: the challenge is built and encoded first; the
 * send timestamp is taken immediately before uv_try_write; the receive
 * timestamp is the first statement of the read callback. Both are
 * CLOCK_MONOTONIC_RAW (cl_clock_raw_ns), out of NTP's reach. The answer's
 * MAC (one keyed hash under the session key), logging and queueing happen
 * after that timestamp; nothing asymmetric happens between the two. With
 * [probe] verify_threads > 0 the asymmetric work of the sessions (X25519,
 * Ed25519 signatures and their checks) runs on libuv's thread pool; with 0,
 * on the loop, outside any probe's timed window all the same.
 */
#ifndef LM_LANDMARK_H
#define LM_LANDMARK_H

#include "cl_config.h"
#include "cl_key.h"
#include "cl_lmcore.h"
#include "writer.h"

#include <stdint.h>
#include <uv.h>

typedef struct lm_server lm_server;

/* What the landmark's metrics and stats line report (landmark_metrics.c). */
typedef struct {
  const cl_lm_stats *core; /* the protocol core's counters and histograms */
  size_t conns;            /* agent connections open */
  size_t chips_live;       /* chips with a verified session on them */
  uint64_t pool_inflight;  /* jobs queued or running on the thread pool */
  uint64_t reads_paused;   /* times a connection was no longer read: its write queue was full */
  size_t conns_read_paused; /* connections not being read now, until their queue drains */
  size_t write_queue_bytes; /* bytes held for writing to all connections, requests included */
} lm_server_view;

/*
 * Creates the server. key (the landmark identity), cfg and writer are
 * borrowed and must outlive it. Nothing listens until lm_server_listen.
 */
int lm_server_create(lm_server **out, uv_loop_t *loop, const cl_landmark_config *cfg,
                     const cl_key *key, lm_writer *writer);
/* Binds and listens on cfg->listen_host:listen_port. 0 or CL_EIO. */
int lm_server_listen(lm_server *s, char *err, size_t errlen);
/* Replaces the enrolled set (takes ownership of targets). Chips that are no
 * longer enrolled and active are dropped from their connections. */
void lm_server_set_enrolled(lm_server *s, cl_lm_target *targets, size_t n);
int lm_server_is_listening(const lm_server *s);
/* The current counters (loop thread only; valid until the next event). */
void lm_server_view_get(const lm_server *s, lm_server_view *v);
/* Closes the listener, every connection and timer; `done` runs on the loop
 * once every handle is closed and every thread pool job has returned. */
void lm_server_close(lm_server *s, void (*done)(void *arg), void *arg);
void lm_server_destroy(lm_server **s);

#endif
