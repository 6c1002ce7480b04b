/*
 * The landmark node's network side: a libuv TCP server that accepts agent
 * connections, registers their enrolled chips, probes each chip in jittered
 * bursts, times every probe with uv_hrtime, checks each response, and hands
 * one signed measurement per burst to the writer.
 *
 * Timed window of one probe: the challenge is built, signed and encoded
 * first; the send timestamp is taken immediately before uv_try_write; the
 * receive timestamp is the first statement of the read callback. Signature
 * verification, logging and queueing happen after that timestamp. With
 * [probe] verify_threads > 0 both Ed25519 operations of a probe run on
 * libuv's thread pool: the challenge is signed there before it is sent, and
 * the answer's signature is checked there after its receive timestamp, so
 * the loop only reads, writes and stamps; the probe is accepted (or
 * rejected) when the check returns.
 */
#ifndef LM_LANDMARK_H
#define LM_LANDMARK_H

#include "cl_config.h"
#include "cl_key.h"
#include "cl_metrics.h"
#include "cl_probe.h"
#include "cl_store.h"
#include "writer.h"

#include <stdint.h>
#include <uv.h>

typedef struct lm_server lm_server;

/* Counters, all monotonic since start. */
typedef struct {
  uint64_t conns_accepted, conns_refused_limit, conns_refused_per_address, conns_closed;
  uint64_t frames_too_large, frames_malformed, frames_unknown_type, version_mismatch,
      unexpected_msg, handshake_timeouts, idle_timeouts;
  uint64_t chips_registered;
  uint64_t register_refused[5]; /* by cl_refuse_reason */
  uint64_t probes_sent, probe_timeouts, responses_accepted;
  uint64_t probes_deferred; /* a probe postponed by max_pending_challenges */
  uint64_t peer_errors;     /* Error frames received from agents */
  uint64_t rejected[CL_ACCEPT__COUNT]; /* by cl_accept_result (index 0 unused) */
  uint64_t rejected_not_registered;
  uint64_t measurements, measurements_dropped;
  uint64_t verify_queued; /* response signature checks handed to the thread pool */
  uint64_t sign_queued;   /* challenge signatures handed to the thread pool */
  uint64_t pool_orphaned; /* pool jobs whose chip or connection was gone when they returned */
} lm_stats;

/*
 * Creates the server. key (the landmark identity), cfg and writer are
 * borrowed and must outlive it. Nothing listens until lm_server_listen.
 */
int lm_server_create(lm_server **out, uv_loop_t *loop, const cl_landmark_config *cfg,
                     const cl_key *key, lm_writer *writer);
/* Binds and listens on cfg->listen_host:listen_port. 0 or CL_EIO. */
int lm_server_listen(lm_server *s, char *err, size_t errlen);
/* Replaces the enrolled set (takes ownership of chips). Chips that are no
 * longer enrolled and active are dropped from their connections. */
void lm_server_set_enrolled(lm_server *s, cl_store_chip *chips, size_t n);
int lm_server_is_listening(const lm_server *s);
const lm_stats *lm_server_stats(const lm_server *s);
/* Writes one `msg=stats` log line with every counter. */
void lm_server_log_stats(lm_server *s);
/*
 * Renders every counter, gauge and histogram of the server and of its
 * writer in Prometheus text format into t (appended; docs/METRICS.md lists
 * them). Loop thread only. Returns 0 or CL_ENOMEM.
 */
int lm_server_render_metrics(lm_server *s, cl_mtext *t);
/* Closes the listener, every connection and timer; `done` runs on the loop
 * once every handle is closed. */
void lm_server_close(lm_server *s, void (*done)(void *arg), void *arg);
void lm_server_destroy(lm_server **s);

#endif
