/*
 * One chip's verification round, pure: from the per-landmark minimum RTTs of
 * the window to a signed, chained attestation and the alert states. The
 * verifier's database shell (cl_vstore.c, server/chiploc_verify.c) loads the
 * inputs and writes the outputs; tests call this directly.
 */
#ifndef CL_VERIFY_H
#define CL_VERIFY_H

#include "cl_attest.h"
#include "cl_geo.h"
#include "cl_key.h"
#include "cl_region.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t window_ns;      /* measurements considered: (round_end - window, round_end] */
  double speed_m_per_s;    /* speed of the bounds; c unless configured */
  size_t min_landmarks;    /* fewer fresh landmarks: INSUFFICIENT */
  uint64_t dark_after_ns;  /* chip_dark when not sufficiently measured for this long */
} cl_verify_params;

/* One landmark's fastest measurement of the chip in the window. */
typedef struct {
  int64_t measurement_id;
  int64_t landmark_id;
  uint8_t landmark_pk[CL_PK_LEN];
  double lat, lon;
  uint64_t rtt_ns;
  uint8_t landmark_sig[CL_SIG_LEN];
} cl_verify_min;

typedef struct {
  int64_t chip_id;
  uint8_t pk[CL_PK_LEN];
  double site_lat, site_lon;
  int64_t enrolled_ns;
  /* Allowed regions (may be empty: no region verdict). */
  const char *const *allowed_codes;
  size_t n_allowed;
  const cl_region_union *allowed;
  /* Fastest measurement per landmark in the window. */
  const cl_verify_min *mins;
  size_t n_mins;
  /* Chain state from the chip's latest attestation by this verifier. */
  int has_prev;
  uint8_t prev_hash[CL_HASH_LEN];
  int prev_consistent;
  int32_t prev_lat_e7, prev_lon_e7;
  uint64_t prev_radius_m;
  int64_t last_sufficient_ns; /* round_end of the last non-INSUFFICIENT attestation, 0 if none */
} cl_verify_chip;

enum {
  CL_ALERT_CHIP_DARK = 0,
  CL_ALERT_CHIP_MOVED,
  CL_ALERT_SITE_EXCLUDED,
  CL_ALERT_OUTSIDE_REGION,
  CL_ALERT_INCONSISTENT,
  CL_ALERT__CHIP_KINDS,
};

/* The alerts table's `kind` text of each CL_ALERT_* value. */
const char *cl_alert_kind_name(int kind);

typedef struct {
  cl_attestation a; /* signed */
  uint8_t hash[CL_HASH_LEN];
  int64_t site_landmark_id; /* 0: none */
  int64_t excluded_ids[CL_GEO_MAX_EXCLUDED];
  size_t n_excluded;
  size_t landmarks_used;
  double radius_km, centre_lat, centre_lon;
  /* Desired state of each chip alert this round: 1 open, 0 clear. */
  int alert[CL_ALERT__CHIP_KINDS];
  char detail[CL_ALERT__CHIP_KINDS][160];
  /* Time spent (CLOCK_MONOTONIC, ns): the location engine, and the digests,
   * signature and chain hash. For the verifier's round log only. */
  uint64_t engine_ns, sign_ns;
} cl_verify_out;

/*
 * Runs the engine on the chip's minima and fills a signed attestation chained
 * to in->prev_hash, plus the alert states. Returns 0, CL_EINVAL or CL_ENOMEM.
 */
int cl_verify_chip_round(cl_geo_ctx *geo, const cl_verify_params *p, const cl_key *verifier,
                         uint64_t round_end_ns, const cl_verify_chip *in, cl_verify_out *out);

#endif
