/*
 * What the verifier believes of a protocol-2 record read from the database:
 * a measurement or landmark-link row counts only when it is not dated
 * after the database received it, the key of the landmark it names was in
 * force when it was measured and received, the record is consistent in
 * itself (cl_measurement_check: a known suite, 1..CL_MAX_BURST entries in
 * increasing seq, rtt_ns the smallest of their RTTs), the landmark's record
 * signature verifies under the named landmark's key, and the chip's
 * transcript signature verifies under the named chip's key (a link: the
 * probed landmark's). The handshake signatures are not needed: the
 * transcript covers the session id, a hash of the whole handshake; the
 * audit checks them (cl_measurement_verify). docs/PROTOCOL.md §11 is the
 * normative rule.
 *
 * Rows are immutable, so each is verified once: a cache remembers the
 * outcome per digest of the row's signed bytes (the whole measurement
 * layout and the record signature), for the rows seen in the current and
 * the previous round. A row whose bytes differ in any way has another
 * digest and is verified anew. Pure: no I/O.
 */
#ifndef CL_EVIDENCE_H
#define CL_EVIDENCE_H

#include "cl_layout.h"

#include <stddef.h>
#include <stdint.h>

/* Why a row was not used. Stable names: cl_ev_reason_name. */
typedef enum {
  CL_EV_OK = 0,
  CL_EV_BAD_SIGNATURE,      /* the record signature fails under the named landmark's key */
  CL_EV_BAD_CHIP_SIGNATURE, /* the transcript signature fails under the named chip's (peer's) key */
  CL_EV_RETIRED,            /* measured after the landmark was retired or revoked */
  CL_EV_REVOKED,            /* received by the database after the landmark's key was revoked */
  CL_EV_FUTURE,             /* dated after its insert time plus CL_EV_FUTURE_SLACK_NS */
  CL_EV_MALFORMED,          /* fails cl_measurement_check: no record a landmark signs */
  CL_EV__COUNT,
} cl_ev_reason;

/* How far a row's signed time may lie after the database's insert time
 * (clock differences between a landmark and the database). */
#define CL_EV_FUTURE_SLACK_NS 10000000000ULL

const char *cl_ev_reason_name(cl_ev_reason r);

/* The named landmark's lifecycle as the verifier loaded it. */
typedef struct {
  uint64_t retired_ns; /* 0: in force */
  int revoked;         /* retired_ns is a revocation */
} cl_ev_key_state;

/* Checks 2 and 3 alone: CL_EV_OK while the key counted for a row measured
 * at measured_ns and received at inserted_ns, else CL_EV_RETIRED or
 * CL_EV_REVOKED. The verifier (for the signer and, of a link, the probed
 * landmark) and the audit both judge lifecycles with it. */
cl_ev_reason cl_ev_key_check(const cl_ev_key_state *k, uint64_t measured_ns,
                             uint64_t inserted_ns);
/* Checks 1 to 3, the ones that need no signature: CL_EV_FUTURE, then as
 * cl_ev_key_check. The audit judges protocol 1 rows, which this version
 * cannot verify, by these alone. */
cl_ev_reason cl_ev_time_check(const cl_ev_key_state *k, uint64_t measured_ns,
                              uint64_t inserted_ns);

typedef struct cl_evcache cl_evcache;

/* NULL when out of memory. */
cl_evcache *cl_evcache_new(void);
void cl_evcache_free(cl_evcache **c);
/* Starts a round: outcomes not looked up in the last round are forgotten,
 * so the cache holds at most two rounds' rows. */
void cl_evcache_round(cl_evcache *c);
/* Signature checks done and outcomes served from the cache since creation. */
uint64_t cl_evcache_verified(const cl_evcache *c);
uint64_t cl_evcache_hits(const cl_evcache *c);

/*
 * Judges one row: m as rebuilt from the row with m->hs.landmark and
 * m->hs.chip set to the keys of the landmark and chip (or peer) the row
 * names, the landmark's state, and the database's insert time of the row
 * (unix ns). The signatures are checked (or their outcome taken from the
 * cache, which may be NULL) only after the cheap checks pass. Returns
 * CL_EV_OK or the first reason that applies, in the order: future, retired,
 * revoked, malformed, bad signature (check 4), bad chip signature (check 5).
 */
cl_ev_reason cl_evidence_judge(cl_evcache *c, const cl_measurement *m, const cl_ev_key_state *k,
                               uint64_t inserted_ns);

#endif
