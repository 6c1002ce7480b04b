/*
 * What the verifier believes of a signed row read from the database: a
 * measurement or landmark-link record counts only when the landmark's
 * signature over the measurement layout verifies under the key of the
 * landmark the row names, the chip's (or peer landmark's) signature inside
 * it verifies under the named chip's key, the landmark's key was in force
 * when the row was measured and received, and the row is not dated after
 * the database received it. docs/PROTOCOL.md §7 is the normative rule.
 *
 * Rows are immutable, so each is verified once: a cache remembers the
 * outcome per digest of the row's signed bytes (layout and signature), for
 * the rows seen in the current and the previous round. A row whose bytes
 * differ in any way has another digest and is verified anew. Pure: no I/O.
 */
#ifndef CL_EVIDENCE_H
#define CL_EVIDENCE_H

#include "cl_layout.h"

#include <stddef.h>
#include <stdint.h>

/* Why a row was not used. Stable names: cl_ev_reason_name. */
typedef enum {
  CL_EV_OK = 0,
  CL_EV_BAD_SIGNATURE,      /* the landmark signature fails under the named landmark's key */
  CL_EV_BAD_CHIP_SIGNATURE, /* the chip's (or peer's) signature inside the record fails */
  CL_EV_RETIRED,            /* measured after the landmark was retired or revoked */
  CL_EV_REVOKED,            /* received by the database after the landmark's key was revoked */
  CL_EV_FUTURE,             /* dated after its insert time plus CL_EV_FUTURE_SLACK_NS */
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
 * Judges one row: m as rebuilt from the row with m->ch.landmark and
 * m->ch.chip set to the keys of the landmark and chip (or peer) the row
 * names, the landmark's state, and the database's insert time of the row
 * (unix ns). The signatures are checked (or their outcome taken from the
 * cache, which may be NULL) only after the cheap checks pass. Returns
 * CL_EV_OK or the first reason that applies, in the order: future, retired,
 * revoked, bad signature, bad chip signature.
 */
cl_ev_reason cl_evidence_judge(cl_evcache *c, const cl_measurement *m, const cl_ev_key_state *k,
                               uint64_t inserted_ns);

#endif
