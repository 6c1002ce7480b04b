/*
 * One chip's verification round, pure: from the per-landmark minimum RTTs of
 * the window to a signed, chained attestation and the alert states. The
 * verifier's database shell (cl_vstore.c, server/chiploc_verify.c) loads the
 * inputs and writes the outputs.
 *
 * A round is three steps, each callable alone: cl_verify_locate runs the
 * engine on the minima, cl_verify_attest fills and signs the attestation from
 * the engine's result, and cl_verify_alerts decides the alert states from the
 * round's verdicts and the chip's previous state. cl_verify_chip_round is
 * their composition, the one the verifier calls; tests drive the steps
 * separately (tests/test_verify.c).
 */
#ifndef CL_VERIFY_H
#define CL_VERIFY_H

#include "cl_attest.h"
#include "cl_geo.h"
#include "cl_key.h"
#include "cl_region.h"

#include <stddef.h>
#include <stdint.h>

/*
 * Default of max_chip_speed_m_per_s: 40 m/s (144 km/h), a server rack on a
 * lorry, a train or a ship. A chip on an aircraft needs about 250 m/s. Each
 * cap grows by window * speed: 12 km with the default 300 s window
 * (docs/THREAT_MODEL.md, "Physical assumptions").
 */
#define CL_VERIFY_MAX_CHIP_SPEED_DEFAULT 40.0
/* The largest max_chip_speed_m_per_s accepted (faster than any airliner). */
#define CL_VERIFY_MAX_CHIP_SPEED_LIMIT 1000.0

typedef struct {
  uint64_t window_ns;      /* measurements considered: (round_end - window, round_end] */
  double speed_m_per_s;    /* speed of the bounds; c unless configured */
  size_t min_landmarks;    /* fewer fresh landmarks: INSUFFICIENT */
  uint64_t dark_after_ns;  /* chip_dark when not sufficiently measured for this long */
  /* The fastest a powered, connected chip may travel (m/s), in
   * [0, CL_VERIFY_MAX_CHIP_SPEED_LIMIT]: every cap grows by window_ns times
   * it, so that F holds the chip's position at every moment of the window
   * although each landmark measured it at a different one. 0 assumes a
   * chip that does not move. */
  double max_chip_speed_m_per_s;
} cl_verify_params;

/* One landmark's fastest measurement of the chip in the window. */
typedef struct {
  int64_t measurement_id;
  int64_t landmark_id;
  uint8_t landmark_pk[CL_PK_LEN];
  double lat, lon;
  uint64_t rtt_ns;
  uint8_t landmark_sig[CL_SIG_LEN];
  /* The landmark's name, for the alerts' texts (operators read names, not
   * ids); NULL: the text gives the id. Not signed, not copied: it must
   * outlive the round. */
  const char *landmark_name;
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
  /* cl_region_digest of each allowed region, parallel to allowed_codes, or
   * NULL: cl_verify_attest then computes them from allowed->members. */
  const uint8_t (*region_digests)[CL_HASH_LEN];
  /* Fastest measurement per landmark in the window. */
  const cl_verify_min *mins;
  size_t n_mins;
  /* Chain state from the chip's latest attestation by this verifier. */
  int has_prev;
  uint8_t prev_hash[CL_HASH_LEN];
  /* The latest CONSISTENT attestation (prev_consistent 0 if there is none):
   * its cap, which chip_moved compares with. */
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

/* Size of one alert's detail text, NUL included. */
#define CL_VERIFY_DETAIL_LEN 160

typedef struct {
  cl_attestation a; /* signed */
  uint8_t hash[CL_HASH_LEN];
  int64_t site_landmark_id; /* 0: none */
  int64_t excluded_ids[CL_GEO_MAX_EXCLUDED];
  /* Their cl_verify_min.landmark_name (may be NULL), for the alerts. */
  const char *site_landmark_name;
  const char *excluded_names[CL_GEO_MAX_EXCLUDED];
  size_t n_excluded;
  size_t landmarks_used; /* places with a usable landmark (cl_geo_result.n_usable) */
  /* Minima left out because the chip had more than CL_GEO_MAX_LANDMARKS
   * (the loosest bounds go; the attestation still binds them all). */
  size_t minima_dropped;
  double radius_km, centre_lat, centre_lon;
  /* Desired state of each chip alert this round: 1 open, 0 clear. */
  int alert[CL_ALERT__CHIP_KINDS];
  char detail[CL_ALERT__CHIP_KINDS][CL_VERIFY_DETAIL_LEN];
  /* Time spent (CLOCK_MONOTONIC, ns): the location engine, and the digests,
   * signature and chain hash. For the verifier's round log only. */
  uint64_t engine_ns, sign_ns;
} cl_verify_out;

/*
 * What the alert decision needs of one round's engine result: the verdicts
 * and a cap containing the feasible region F, with landmarks named by their
 * database ids (cl_verify_min.landmark_id) rather than by engine indices.
 * Plain data: a test may fill it by hand.
 */
typedef struct {
  cl_geo_consistency consistency;
  cl_geo_site_verdict site;
  cl_geo_region_verdict region;
  size_t n_usable; /* landmarks with a usable bound */
  /* The engine's cap containing F; meaningful when consistency is
   * CL_GEO_CONSISTENT, the only case in which chip_moved looks at it. */
  double centre_lat, centre_lon, radius_km;
  /* site CL_SITE_EXCLUDED: the landmark excluding the declared site by the
   * widest margin, and that margin (geodesic distance minus bound). */
  int64_t site_landmark_id;
  double site_margin_km;
  /* consistency CL_GEO_INCONSISTENT: the landmarks whose removal makes F
   * non-empty. */
  int64_t excluded_ids[CL_GEO_MAX_EXCLUDED];
  size_t n_excluded;
  /* Names of site_landmark_id and of each excluded_ids[i] for the texts;
   * NULL (as after memset) names a landmark by its id. */
  const char *site_landmark_name;
  const char *excluded_names[CL_GEO_MAX_EXCLUDED];
} cl_verify_verdicts;

/*
 * The geodesic bound, in metres, of one minimum of rtt_ns: the static
 * chip's cl_geo_bound_m at p->speed_m_per_s, plus the distance the chip may
 * travel within the window, window_ns * max_chip_speed_m_per_s. 0 for an
 * RTT of 0 (unusable).
 */
double cl_verify_bound_m(const cl_verify_params *p, uint64_t rtt_ns);

/* Minima the engine leaves out of a chip with n_mins of them. */
static inline size_t cl_verify_minima_dropped(size_t n_mins) {
  return n_mins > CL_GEO_MAX_LANDMARKS ? n_mins - CL_GEO_MAX_LANDMARKS : 0;
}

/*
 * Runs the location engine on the chip's minima: each RTT becomes the bound
 * cl_verify_bound_m, with the declared site and the allowed regions (none
 * when in->n_allowed is 0) and at least p->min_landmarks places. Of more
 * than CL_GEO_MAX_LANDMARKS minima, the CL_GEO_MAX_LANDMARKS shortest RTTs
 * are used (ties: the earlier minimum): leaving bounds out only enlarges F,
 * so the verdicts stay sound, and the tightest bounds decide them. r's
 * indices (excluded, site_landmark) name in->mins whichever were used. *r
 * is valid until the next call with the same geo context. Returns 0,
 * CL_EINVAL (a speed that is not positive, a chip speed outside [0,
 * CL_VERIFY_MAX_CHIP_SPEED_LIMIT], or an argument the engine refuses, such
 * as a landmark position off the globe) or CL_ENOMEM.
 */
int cl_verify_locate(cl_geo_ctx *geo, const cl_verify_params *p, const cl_verify_chip *in,
                     cl_geo_result *r);

/*
 * Fills and signs the attestation of the round ending at round_end_ns from
 * the engine's result r for chip in (r indexes in->mins), chained to
 * in->prev_hash when in->has_prev, and the attested summary beside it:
 * out->a, hash, site_landmark_id, excluded_ids, n_excluded, landmarks_used,
 * and radius_km, centre_lat and centre_lon (0 unless r is consistent), and
 * minima_dropped. The attestation binds every minimum of in, also those the
 * engine left out. All of *out is overwritten: alert, detail, engine_ns and
 * sign_ns are zero. Nothing is allocated that outlives the call. Returns 0,
 * CL_EINVAL (an index of r outside in->mins, too many excluded landmarks, a
 * speed that is not positive) or CL_ENOMEM.
 */
int cl_verify_attest(const cl_verify_params *p, const cl_key *verifier, uint64_t round_end_ns,
                     const cl_verify_chip *in, const cl_geo_result *r, cl_verify_out *out);

/*
 * Decides the state of every chip alert for the round ending at
 * round_end_ns, from this round's verdicts v, the chip's state before the
 * round in prev (enrolled_ns, last_sufficient_ns, has_prev, prev_consistent,
 * prev_lat_e7, prev_lon_e7 and prev_radius_m; nothing else of it is read)
 * and the parameters' dark_after_ns and min_landmarks:
 *   chip_dark       more than dark_after_ns since the last sufficient round
 *                   (this one if v is not INSUFFICIENT; the enrolment if
 *                   there never was one);
 *   chip_moved      v is consistent, the chip has an earlier CONSISTENT
 *                   attestation (the latest one, across INCONSISTENT or
 *                   INSUFFICIENT rounds since), and the two caps are
 *                   disjoint;
 *   site_excluded   v->site is CL_SITE_EXCLUDED;
 *   outside_region  v->region is CL_REGION_OUTSIDE;
 *   inconsistent    v->consistency is CL_GEO_INCONSISTENT.
 * alert[k] becomes 1 (open) or 0 (clear) and detail[k] the alert's text, all
 * zero bytes for a clear one. Returns 0, or CL_EINVAL when v->n_excluded
 * exceeds CL_GEO_MAX_EXCLUDED (nothing is written then).
 */
int cl_verify_alerts(const cl_verify_params *p, uint64_t round_end_ns, const cl_verify_chip *prev,
                     const cl_verify_verdicts *v, int alert[CL_ALERT__CHIP_KINDS],
                     char detail[CL_ALERT__CHIP_KINDS][CL_VERIFY_DETAIL_LEN]);

/*
 * The whole round: cl_verify_locate, cl_verify_attest and cl_verify_alerts,
 * with the time the engine and the signing took. Returns 0, CL_EINVAL or
 * CL_ENOMEM; on error *out is not a usable result.
 */
int cl_verify_chip_round(cl_geo_ctx *geo, const cl_verify_params *p, const cl_key *verifier,
                         uint64_t round_end_ns, const cl_verify_chip *in, cl_verify_out *out);

#endif
