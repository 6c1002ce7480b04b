/*
 * Pure logic of one probe: the acceptance checks a response must pass, and
 * the reduction of a burst to its fastest accepted probe. No I/O, no clocks:
 * callers pass timestamps in (uv_hrtime nanoseconds), so tests call these
 * directly.
 */
#ifndef CL_PROBE_H
#define CL_PROBE_H

#include "cl_layout.h"

#include <stdint.h>

/* Speed of light in vacuum, m/s. */
#define CL_SPEED_C 299792458.0
/* Typical speed in optical fibre, 2/3 c. */
#define CL_SPEED_FIBRE (CL_SPEED_C * 2.0 / 3.0)

typedef enum {
  CL_PROBE_FREE = 0,    /* slot unused */
  CL_PROBE_OUTSTANDING, /* challenge sent, no valid answer yet */
  CL_PROBE_ANSWERED,    /* accepted once; any further answer is a replay */
  CL_PROBE_EXPIRED,     /* deadline passed without a valid answer */
  CL_PROBE_VERIFYING,   /* answered in time; its signature is being checked */
} cl_probe_state;

typedef struct {
  cl_challenge ch;      /* what was sent, signature included */
  uint64_t sent_ns;     /* uv_hrtime() immediately before the write */
  uint64_t deadline_ns; /* sent_ns + response deadline */
  cl_probe_state state;
} cl_probe;

typedef enum {
  CL_ACCEPT_OK = 0,
  CL_ACCEPT_UNKNOWN_NONCE, /* no probe with this nonce was issued */
  CL_ACCEPT_WRONG_CHIP,    /* the nonce was issued to a different chip */
  CL_ACCEPT_REPLAY,        /* the probe was already answered */
  CL_ACCEPT_LATE,          /* received after the deadline */
  CL_ACCEPT_BAD_SIGNATURE, /* chip signature does not verify */
  CL_ACCEPT__COUNT
} cl_accept_result;

const char *cl_accept_result_name(cl_accept_result r);

/*
 * Decides whether a response is accepted. `probe` is the probe whose nonce
 * matches (NULL if none was found); resp_chip/resp_nonce/sig come from the
 * response; recv_ns is the receive timestamp. On CL_ACCEPT_OK sets *rtt_ns.
 * Does not change the probe: the caller marks it answered.
 */
cl_accept_result cl_probe_accept(const cl_probe *probe, const uint8_t resp_chip[CL_PK_LEN],
                                 const uint8_t resp_nonce[CL_NONCE_LEN],
                                 const uint8_t sig[CL_SIG_LEN], uint64_t recv_ns,
                                 uint64_t *rtt_ns);

/*
 * Tests 1 to 4 of cl_probe_accept, everything but the signature: cheap, so
 * the event loop runs them at once and hands the signature check (test 5,
 * cl_response_verify over probe->ch) to a worker. A probe in
 * CL_PROBE_VERIFYING counts as answered (a second answer is a replay). On
 * CL_ACCEPT_OK sets *rtt_ns. Does not change the probe.
 */
cl_accept_result cl_probe_check(const cl_probe *probe, const uint8_t resp_chip[CL_PK_LEN],
                                const uint8_t resp_nonce[CL_NONCE_LEN], uint64_t recv_ns,
                                uint64_t *rtt_ns);

/* The fastest accepted probe of a burst so far. */
typedef struct {
  uint32_t accepted;
  uint64_t min_rtt_ns;
  cl_challenge min_ch;
  uint8_t min_sig[CL_SIG_LEN];
} cl_burst;

void cl_burst_reset(cl_burst *b);
void cl_burst_add(cl_burst *b, const cl_challenge *ch, const uint8_t sig[CL_SIG_LEN],
                  uint64_t rtt_ns);
/* Fills an unsigned measurement record from the burst (accepted must be > 0). */
void cl_burst_to_measurement(const cl_burst *b, uint64_t measured_unix_ns, cl_measurement *m);

/*
 * Distance bound in metres for a round-trip time at a propagation speed:
 * r = v * rtt / 2, rounded up so that the bound never shrinks.
 */
uint64_t cl_bound_m(uint64_t rtt_ns, double speed_m_per_s);

/* Parses "c", "fibre" (or "fiber"), or a positive number of metres per second
 * not above c. Returns 0 or CL_EINVAL. */
int cl_speed_parse(const char *text, double *out);

#endif
