/*
 * The operator's chip agent: keeps one outbound TCP connection to every
 * configured landmark, opens a protocol-2 session per chip on it (handshake
 * checked under the pinned landmark key), answers each challenge at once
 * with a MAC under the session key, and has the chip sign the transcript of
 * each burst. Identity-key signatures run on libuv's thread pool, never on
 * the event loop. Lost connections are re-established with capped,
 * jittered exponential backoff.
 *
 * Lifecycle: agent_create (loads the chip keys) -> agent_start -> uv_run ...
 * agent_stop (closes every handle) -> uv_run until it returns ->
 * agent_destroy.
 */
#ifndef AGENT_H
#define AGENT_H

#include "cl_config.h"
#include "cl_hist.h"
#include "cl_msg.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct agent agent;

/* Error frames received, by code: slot k for cl_wire_error k (1 up to
 * CL_ERR_CHIP_TAKEN_OVER, the last code), the last slot for codes this agent
 * does not know (0 included); slot 0 unused. */
#define AGENT_ERROR_SLOTS (CL_ERR_CHIP_TAKEN_OVER + 2)

typedef struct {
  uint64_t challenges;          /* challenge frames received */
  uint64_t answered;            /* responses written (or queued) */
  uint64_t no_session;          /* challenges for a chip without an established session */
  uint64_t unknown_chip;        /* challenges for a chip this agent does not hold */
  uint64_t transcripts;         /* transcripts signed and sent */
  uint64_t transcripts_refused; /* burst ends naming a probe the chip did not answer */
  uint64_t rekeys;              /* fresh offers sent on a landmark's Rekey */
  uint64_t bad_landmark_sig;    /* handshakes whose landmark signature failed */
  uint64_t wrong_landmark;      /* Hellos naming another key than the pinned one */
  uint64_t reconnects;          /* reconnections scheduled after a close or failure */
  uint64_t idle_timeouts;       /* registered connections closed for want of any frame */
  uint64_t errors[AGENT_ERROR_SLOTS]; /* Error frames received, by code */
  /* Seconds from the read of a Challenge to the write of its Response. */
  cl_histogram answer_seconds;
} agent_stats;

/* One landmark's share, for the metrics endpoint. */
typedef struct {
  const char *name;     /* the [landmark.NAME] of the config; valid while the agent is */
  int registered;       /* 1: a connection is up and at least one chip was accepted on it */
  size_t sessions;      /* chips with an established session on it now */
  uint64_t answered;    /* challenges answered */
  uint64_t reconnects;  /* reconnections scheduled after a close or failure */
  uint64_t handshakes;  /* chip sessions agreed (the landmark's signature checked) */
  uint64_t rekeys;      /* fresh offers sent on the landmark's Rekey */
  uint64_t transcripts; /* transcripts signed and sent */
} agent_landmark_stats;

/*
 * Copies cfg, loads every chip key it names (secret keys stay in
 * sodium_malloc memory) and allocates one sodium_malloc block for the
 * session keys of every chip with every landmark. Returns 0, or the cl_key_load code of the first
 * key that fails (CL_EIO, CL_EPERM, CL_EVERSION, CL_EMALFORMED), CL_EINVAL
 * when two chips share a key, CL_ENOMEM. err receives a one-line reason
 * naming the chip and its key file.
 */
int agent_create(agent **out, uv_loop_t *loop, const cl_agent_config *cfg, char *err,
                 size_t errlen);

/*
 * Test hook: every identity-key signature (handshake, transcript) takes ms
 * milliseconds longer on its worker thread, as on a slow hardware signer.
 * chipagent sets it from CHIPLOC_TEST_SIGN_DELAY_MS; 0 (the default) adds
 * nothing. Call before agent_start.
 */
void agent_set_sign_delay(agent *a, unsigned ms);

/* Starts the stats timer and a connection attempt to every landmark.
 * Returns 0 or CL_EIO (a libuv call failed; call agent_stop, run the loop,
 * then agent_destroy). */
int agent_start(agent *a);

/* Starts an orderly shutdown: logs the final stats line, closes every handle
 * and cancels pending requests. Idempotent. Run the loop until it returns
 * before agent_destroy. */
void agent_stop(agent *a);

void agent_get_stats(const agent *a, agent_stats *out);
/* The number of configured landmarks, and landmark i's counters (i below it). */
size_t agent_landmark_count(const agent *a);
void agent_get_landmark_stats(const agent *a, size_t i, agent_landmark_stats *out);

/* Frees the agent and wipes the chip and session keys; sets *a to NULL. Call only when
 * the loop has no handle of the agent left open (after agent_stop and
 * uv_run), or when agent_start was never called. NULL-safe. */
void agent_destroy(agent **a);

#endif
