/* One chip's verification round (see cl_verify.h): the engine step, the
 * attestation and the alert decision, and their composition. Pure but for
 * the composition reading the monotonic clock, which times the engine and
 * the signing for the round log. */
#include "cl_verify.h"
#include "cl_err.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *cl_alert_kind_name(int kind) {
  static const char *names[] = {"chip_dark", "chip_moved", "site_excluded", "outside_region",
                                "inconsistent"};
  if (kind >= 0 && kind < CL_ALERT__CHIP_KINDS) return names[kind];
  return "?";
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int32_t e7(double deg) { return (int32_t)llround(deg * 1e7); }

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

double cl_verify_bound_m(const cl_verify_params *p, uint64_t rtt_ns) {
  double b = cl_geo_bound_m((double)rtt_ns / 1e9, p->speed_m_per_s);
  if (!(b > 0)) return b;
  /* Each cap holds the chip where it was when that landmark measured it; a
   * chip that travels at most v moves at most v * window (along the ground,
   * so in geodesic distance too) between any two moments of the window. */
  return b + (double)p->window_ns / 1e9 * p->max_chip_speed_m_per_s;
}

/* A minimum's place in the order of tightness: by RTT, then by index, a
 * total order, so the minima kept do not depend on qsort. An RTT of 0 (no
 * usable bound) sorts last. */
typedef struct {
  uint64_t rtt;
  size_t idx;
} by_rtt;

static int by_rtt_cmp(const void *a, const void *b) {
  const by_rtt *x = a, *y = b;
  if (x->rtt != y->rtt) return x->rtt < y->rtt ? -1 : 1;
  return (x->idx > y->idx) - (x->idx < y->idx);
}

int cl_verify_locate(cl_geo_ctx *geo, const cl_verify_params *p, const cl_verify_chip *in,
                     cl_geo_result *r) {
  if (!(p->speed_m_per_s > 0) ||
      !(p->max_chip_speed_m_per_s >= 0 &&
        p->max_chip_speed_m_per_s <= CL_VERIFY_MAX_CHIP_SPEED_LIMIT))
    return CL_EINVAL;
  /* use[k]: the minimum behind engine landmark k. All of them, or the
   * CL_GEO_MAX_LANDMARKS shortest RTTs, in their original order. */
  size_t n = in->n_mins;
  size_t use[CL_GEO_MAX_LANDMARKS];
  if (n > CL_GEO_MAX_LANDMARKS) {
    by_rtt *order = malloc(n * sizeof *order);
    if (!order) return CL_ENOMEM;
    for (size_t i = 0; i < n; i++)
      order[i] = (by_rtt){in->mins[i].rtt_ns ? in->mins[i].rtt_ns : UINT64_MAX, i};
    qsort(order, n, sizeof *order, by_rtt_cmp);
    n = CL_GEO_MAX_LANDMARKS;
    for (size_t k = 0; k < n; k++) use[k] = order[k].idx;
    free(order);
    qsort(use, n, sizeof *use, cmp_size);
  } else {
    for (size_t i = 0; i < n; i++) use[i] = i;
  }
  cl_geo_landmark lms[CL_GEO_MAX_LANDMARKS];
  for (size_t k = 0; k < n; k++) {
    const cl_verify_min *m = &in->mins[use[k]];
    lms[k].lat = m->lat;
    lms[k].lon = m->lon;
    lms[k].bound_m = cl_verify_bound_m(p, m->rtt_ns);
  }
  cl_geo_params gp;
  cl_geo_params_default(&gp);
  gp.min_landmarks = p->min_landmarks;
  double site[2] = {in->site_lat, in->site_lon};
  int rc = cl_geo_locate(geo, lms, n, &gp, site, in->n_allowed ? in->allowed : NULL, r);
  if (rc != CL_OK) return rc;
  /* Back from engine indices to the chip's minima. */
  if (r->site == CL_SITE_EXCLUDED) r->site_landmark = use[r->site_landmark];
  for (size_t i = 0; i < r->n_excluded; i++) r->excluded[i] = use[r->excluded[i]];
  return CL_OK;
}

/* The engine's indices must name minima of this chip: a result from another
 * chip's minima would sign the wrong landmarks' keys. */
static int result_fits(const cl_verify_chip *in, const cl_geo_result *r) {
  if (r->n_excluded > CL_GEO_MAX_EXCLUDED) return 0;
  if (r->site == CL_SITE_EXCLUDED && r->site_landmark >= in->n_mins) return 0;
  for (size_t i = 0; i < r->n_excluded; i++)
    if (r->excluded[i] >= in->n_mins) return 0;
  return 1;
}

/* The layout-2 digests of what decided the verdict: the declared site, the
 * keys and positions of the landmarks whose measurements were loaded, and
 * the allowed regions' codes and geometry. */
static int digest_inputs(const cl_verify_chip *in, cl_attestation *a) {
  cl_attest_digest_site(in->site_lat, in->site_lon, a->site_digest);
  cl_attest_landmark *lms = malloc((in->n_mins ? in->n_mins : 1) * sizeof *lms);
  uint8_t(*geo)[CL_HASH_LEN] = malloc((in->n_allowed ? in->n_allowed : 1) * sizeof *geo);
  int rc = lms && geo ? CL_OK : CL_ENOMEM;
  for (size_t i = 0; rc == CL_OK && i < in->n_mins; i++) {
    memcpy(lms[i].pk, in->mins[i].landmark_pk, CL_PK_LEN);
    lms[i].lat = in->mins[i].lat;
    lms[i].lon = in->mins[i].lon;
  }
  if (rc == CL_OK) rc = cl_attest_digest_landmarks(lms, in->n_mins, a->landmarks_digest);
  for (size_t i = 0; rc == CL_OK && i < in->n_allowed; i++) {
    if (in->region_digests) memcpy(geo[i], in->region_digests[i], CL_HASH_LEN);
    else if (!in->allowed || i >= in->allowed->n) rc = CL_EINVAL;
    else rc = cl_region_digest(in->allowed->members[i], geo[i]);
  }
  if (rc == CL_OK)
    rc = cl_attest_digest_regions(in->allowed_codes, (const uint8_t(*)[CL_HASH_LEN])geo,
                                  in->n_allowed, a->regions_digest);
  free(lms);
  free(geo);
  return rc;
}

int cl_verify_attest(const cl_verify_params *p, const cl_key *verifier, uint64_t round_end_ns,
                     const cl_verify_chip *in, const cl_geo_result *r, cl_verify_out *out) {
  memset(out, 0, sizeof *out);
  if (!(p->speed_m_per_s > 0) || !result_fits(in, r)) return CL_EINVAL;
  cl_attestation *a = &out->a;
  memcpy(a->chip, in->pk, CL_PK_LEN);
  memcpy(a->verifier, cl_key_public(verifier), CL_PK_LEN);
  a->round_end_ns = round_end_ns;
  a->window_ns = p->window_ns;
  if (in->has_prev) memcpy(a->prev_hash, in->prev_hash, CL_HASH_LEN);
  a->consistency = r->consistency == CL_GEO_CONSISTENT     ? CL_ATT_CONSISTENT
                   : r->consistency == CL_GEO_INSUFFICIENT ? CL_ATT_INSUFFICIENT
                                                           : CL_ATT_INCONSISTENT;
  a->site = r->site == CL_SITE_CONSISTENT ? CL_ATT_SITE_CONSISTENT
            : r->site == CL_SITE_EXCLUDED ? CL_ATT_SITE_EXCLUDED
                                          : CL_ATT_SITE_UNKNOWN;
  a->region = r->region == CL_REGION_INSIDE         ? CL_ATT_REGION_INSIDE
              : r->region == CL_REGION_OUTSIDE      ? CL_ATT_REGION_OUTSIDE
              : r->region == CL_REGION_UNDETERMINED ? CL_ATT_REGION_UNDETERMINED
                                                    : CL_ATT_REGION_UNKNOWN;
  a->speed_m_per_s = (uint64_t)llround(p->speed_m_per_s);
  out->landmarks_used = r->n_usable;
  out->minima_dropped = cl_verify_minima_dropped(in->n_mins);
  if (r->consistency == CL_GEO_CONSISTENT) {
    a->centre_lat_e7 = e7(r->centre_lat);
    a->centre_lon_e7 = e7(r->centre_lon);
    a->radius_m = (uint64_t)ceil(r->radius_km * 1000.0);
    out->radius_km = r->radius_km;
    out->centre_lat = r->centre_lat;
    out->centre_lon = r->centre_lon;
  }
  if (r->site == CL_SITE_EXCLUDED) {
    const cl_verify_min *m = &in->mins[r->site_landmark];
    memcpy(a->site_landmark, m->landmark_pk, CL_PK_LEN);
    a->site_margin_m = (int64_t)floor(r->site_margin_km * 1000.0);
    out->site_landmark_id = m->landmark_id;
    out->site_landmark_name = m->landmark_name;
  }
  uint8_t keys[CL_GEO_MAX_EXCLUDED][CL_PK_LEN];
  out->n_excluded = r->n_excluded;
  a->n_excluded = (uint8_t)r->n_excluded;
  for (size_t i = 0; i < r->n_excluded; i++) {
    memcpy(keys[i], in->mins[r->excluded[i]].landmark_pk, CL_PK_LEN);
    out->excluded_ids[i] = in->mins[r->excluded[i]].landmark_id;
    out->excluded_names[i] = in->mins[r->excluded[i]].landmark_name;
  }
  int rc;
  if ((rc = cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN])keys, r->n_excluded,
                                  a->excluded_digest)) != CL_OK ||
      (rc = cl_attest_digest_codes(in->allowed_codes, in->n_allowed, a->allowed_digest)) != CL_OK)
    return rc;
  /* One measurement per landmark the verifier loaded (all of them, also
   * those the engine left out): the attestation binds what was considered. */
  if (in->n_mins > UINT32_MAX) return CL_EINVAL;
  uint8_t(*sigs)[CL_SIG_LEN] = malloc((in->n_mins ? in->n_mins : 1) * sizeof *sigs);
  if (!sigs) return CL_ENOMEM;
  for (size_t i = 0; i < in->n_mins; i++) memcpy(sigs[i], in->mins[i].landmark_sig, CL_SIG_LEN);
  a->n_measurements = (uint32_t)in->n_mins;
  rc = cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])sigs, in->n_mins, a->measurements_digest);
  free(sigs);
  if (rc != CL_OK) return rc;
  a->version = CL_ATT_V2;
  if ((rc = digest_inputs(in, a)) != CL_OK) return rc;
  if ((rc = cl_attest_sign(a, verifier)) != CL_OK || (rc = cl_attest_hash(a, out->hash)) != CL_OK)
    return rc;
  return CL_OK;
}

/* A landmark as the alerts name it: its name, or its id when none is known. */
static void landmark_label(char *buf, size_t len, const char *name, int64_t id) {
  if (name && name[0])
    snprintf(buf, len, "%s", name);
  else
    snprintf(buf, len, "%lld", (long long)id);
}

int cl_verify_alerts(const cl_verify_params *p, uint64_t round_end_ns, const cl_verify_chip *prev,
                     const cl_verify_verdicts *v, int alert[CL_ALERT__CHIP_KINDS],
                     char detail[CL_ALERT__CHIP_KINDS][CL_VERIFY_DETAIL_LEN]) {
  if (v->n_excluded > CL_GEO_MAX_EXCLUDED) return CL_EINVAL;
  memset(alert, 0, CL_ALERT__CHIP_KINDS * sizeof alert[0]);
  memset(detail, 0, CL_ALERT__CHIP_KINDS * sizeof detail[0]);
  const size_t len = CL_VERIFY_DETAIL_LEN;
  /* A chip is dark when no round has located it for too long; one that was
   * never sufficiently measured is timed from its enrolment. */
  int sufficient = v->consistency != CL_GEO_INSUFFICIENT;
  int64_t last = sufficient ? (int64_t)round_end_ns : prev->last_sufficient_ns;
  if (last == 0) last = prev->enrolled_ns;
  if ((int64_t)round_end_ns - last > (int64_t)p->dark_after_ns) {
    alert[CL_ALERT_CHIP_DARK] = 1;
    snprintf(detail[CL_ALERT_CHIP_DARK], len,
             "%zu fresh landmark(s), need %zu; last sufficient %.0f s before the round end",
             v->n_usable, p->min_landmarks, ((double)round_end_ns - (double)last) / 1e9);
  }
  if (v->consistency == CL_GEO_CONSISTENT && prev->has_prev && prev->prev_consistent) {
    /* Both caps contain their F: if the caps are disjoint, so are the Fs. */
    double d = cl_geo_distance_m(prev->prev_lat_e7 / 1e7, prev->prev_lon_e7 / 1e7, v->centre_lat,
                                 v->centre_lon);
    double gap = d - (double)prev->prev_radius_m - v->radius_km * 1000.0;
    if (gap > 0) {
      alert[CL_ALERT_CHIP_MOVED] = 1;
      snprintf(detail[CL_ALERT_CHIP_MOVED], len,
               "feasible region moved: %.1f km between the previous and the new region",
               gap / 1000.0);
    }
  }
  if (v->site == CL_SITE_EXCLUDED) {
    alert[CL_ALERT_SITE_EXCLUDED] = 1;
    char who[CL_VERIFY_DETAIL_LEN];
    landmark_label(who, sizeof who, v->site_landmark_name, v->site_landmark_id);
    /* A long name is cut to the detail's length, like the inconsistent
     * case's list below. */
    if (snprintf(detail[CL_ALERT_SITE_EXCLUDED], len, "declared site %.1f km beyond landmark %s's bound",
                 v->site_margin_km, who) < 0)
      detail[CL_ALERT_SITE_EXCLUDED][0] = '\0';
  }
  if (v->region == CL_REGION_OUTSIDE) {
    alert[CL_ALERT_OUTSIDE_REGION] = 1;
    snprintf(detail[CL_ALERT_OUTSIDE_REGION], len,
             "feasible region (radius %.1f km) does not meet the allowed region(s)", v->radius_km);
  }
  if (v->consistency == CL_GEO_INCONSISTENT) {
    alert[CL_ALERT_INCONSISTENT] = 1;
    int n = snprintf(detail[CL_ALERT_INCONSISTENT], len,
                     "no point satisfies every bound; remove landmark(s)");
    for (size_t i = 0; i < v->n_excluded && n > 0 && (size_t)n < len; i++) {
      char who[CL_VERIFY_DETAIL_LEN];
      landmark_label(who, sizeof who, v->excluded_names[i], v->excluded_ids[i]);
      n += snprintf(detail[CL_ALERT_INCONSISTENT] + n, len - (size_t)n, " %s", who);
    }
  }
  return CL_OK;
}

/* The alert decision's view of an engine result, with the landmark ids the
 * attestation step looked up (out->site_landmark_id, out->excluded_ids). */
static void verdicts_of(const cl_geo_result *r, const cl_verify_out *att, cl_verify_verdicts *v) {
  memset(v, 0, sizeof *v);
  v->consistency = r->consistency;
  v->site = r->site;
  v->region = r->region;
  v->n_usable = r->n_usable;
  v->centre_lat = r->centre_lat;
  v->centre_lon = r->centre_lon;
  v->radius_km = r->radius_km;
  v->site_landmark_id = att->site_landmark_id;
  v->site_margin_km = r->site_margin_km;
  v->site_landmark_name = att->site_landmark_name;
  v->n_excluded = att->n_excluded;
  memcpy(v->excluded_ids, att->excluded_ids, sizeof v->excluded_ids);
  memcpy(v->excluded_names, att->excluded_names, sizeof v->excluded_names);
}

int cl_verify_chip_round(cl_geo_ctx *geo, const cl_verify_params *p, const cl_key *verifier,
                         uint64_t round_end_ns, const cl_verify_chip *in, cl_verify_out *out) {
  memset(out, 0, sizeof *out);
  cl_geo_result r;
  uint64_t t0 = mono_ns();
  int rc = cl_verify_locate(geo, p, in, &r);
  uint64_t t1 = mono_ns();
  if (rc != CL_OK) {
    out->engine_ns = t1 - t0;
    return rc;
  }
  rc = cl_verify_attest(p, verifier, round_end_ns, in, &r, out);
  out->engine_ns = t1 - t0;
  if (rc != CL_OK) return rc;
  out->sign_ns = mono_ns() - t1;
  cl_verify_verdicts v;
  verdicts_of(&r, out, &v);
  return cl_verify_alerts(p, round_end_ns, in, &v, out->alert, out->detail);
}
