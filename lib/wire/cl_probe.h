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
  CL_PROBE_EXPIRED,     /* deadline passed without a valid answer, or a bad MAC */
} cl_probe_state;

/* One probe as the landmark sent it. */
typedef struct {
  uint64_t seq;
  uint8_t nonce[CL_NONCE_LEN];
  uint64_t sent_ns;     /* monotonic clock immediately before the write */
  uint64_t deadline_ns; /* sent_ns + response deadline */
  cl_probe_state state;
} cl_probe;

typedef enum {
  CL_ACCEPT_OK = 0,
  CL_ACCEPT_UNKNOWN_PROBE, /* no probe with this seq was issued to this chip (or remembered) */
  CL_ACCEPT_REPLAY,        /* the probe was already answered */
  CL_ACCEPT_LATE,          /* received after the deadline */
  CL_ACCEPT_BAD_MAC,       /* the MAC does not verify under the session key */
  CL_ACCEPT__COUNT
} cl_accept_result;

const char *cl_accept_result_name(cl_accept_result r);

/*
 * Checks 1 to 3 of an answer (docs/PROTOCOL.md §7): `probe` is the chip's
 * probe with the answer's seq (NULL if none is remembered); recv_ns is the
 * receive timestamp. On CL_ACCEPT_OK sets *rtt_ns. Does not change the
 * probe. The caller then checks the MAC (check 4, cl_answer_check), after
 * the receive timestamp, and marks the probe answered or expired.
 */
cl_accept_result cl_probe_check(const cl_probe *probe, uint64_t recv_ns, uint64_t *rtt_ns);

/* Checks 1 to 4: cl_probe_check, then the MAC under the session key. */
cl_accept_result cl_probe_accept(const cl_probe *probe, const uint8_t key[CL_SESSION_KEY_LEN],
                                 uint32_t suite, const uint8_t landmark[CL_PK_LEN],
                                 const uint8_t chip[CL_PK_LEN], const uint8_t mac[CL_MAC_LEN],
                                 uint64_t recv_ns, uint64_t *rtt_ns);

/* The accepted probes of a burst so far, in the order they were sent. */
typedef struct {
  uint32_t accepted;
  uint32_t sent; /* probes of the burst sent so far, answered or not */
  cl_probe_entry e[CL_MAX_BURST];
} cl_burst;

void cl_burst_reset(cl_burst *b);
/* Adds an accepted probe (ignored beyond CL_MAX_BURST; seqs must increase). */
void cl_burst_add(cl_burst *b, uint64_t seq, const uint8_t nonce[CL_NONCE_LEN],
                  const uint8_t mac[CL_MAC_LEN], uint64_t rtt_ns);
/* The smallest RTT of the burst (accepted must be > 0). */
uint64_t cl_burst_min_rtt(const cl_burst *b);
/*
 * Fills an unsigned measurement record from the burst (accepted must be
 * > 0): the session's handshake, the entries, the chip's transcript
 * signature, the minimum RTT, the probes sent and the wall-clock time.
 */
void cl_burst_to_measurement(const cl_burst *b, const cl_handshake *hs,
                             const uint8_t transcript_sig[CL_SIG_LEN], uint64_t measured_unix_ns,
                             cl_measurement *m);

/*
 * Distance bound in metres for a round-trip time at a propagation speed:
 * r = v * rtt / 2, rounded up so that the bound never shrinks.
 */
uint64_t cl_bound_m(uint64_t rtt_ns, double speed_m_per_s);

/* Parses "c", "fibre" (or "fiber"), or a positive number of metres per second
 * not above c. Returns 0 or CL_EINVAL. */
int cl_speed_parse(const char *text, double *out);

#endif
