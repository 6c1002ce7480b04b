/*
 * Unit tests of one chip's verification round (lib/engine/cl_verify.h).
 *
 * The alert decision (cl_verify_alerts) is driven by hand-made verdicts and
 * previous states, without the engine: every alert kind is opened, cleared
 * in a later round, and held shut on the near side of its boundary. Then
 * the attestation step (cl_verify_attest) is checked against the composed
 * round (cl_verify_chip_round) on fixed measurements: same layout, signature
 * and chain hash; and the composed round is run over consecutive rounds of
 * a chip that moves, so that chip_moved is raised from real measurements
 * too. Finally the bounds: every cap grows by window * max_chip_speed (a
 * chip on a lorry is consistent with it, inconsistent without), two
 * landmark entries at one place count once towards min_landmarks, and a
 * chip with more minima than the engine takes is attested from the
 * tightest ones.
 *
 * Keys come from fixed seeds (all bytes 0x11 for the chip, 0x22 for the
 * verifier as in test_attest.c, 0x31 + i for landmark i). Measurements are
 * round trips at the speed of light over the exact WGS84 distance plus a
 * slack, so the true chip position always obeys physics, as in test_geo.c.
 * Nothing is random.
 */
#include "cl_attest.h"
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_key.h"
#include "cl_probe.h"
#include "cl_verify.h"

#include <check.h>
#include <geodesic.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUND_END_NS 1700000100000000000ull
#define SECOND_NS 1000000000ull
#define WINDOW_NS (300 * SECOND_NS)
#define DARK_AFTER_NS (600 * SECOND_NS)
#define MIN_LANDMARKS 3
#define SLACK_M 30000.0

/* SHA-256 of the empty string: the digest of no keys and of no codes. */
static const char EMPTY_DIGEST_HEX[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

typedef struct {
  double lat, lon;
} place;

static const place BRUSSELS = {50.8503, 4.3517};
static const place PARIS = {48.8566, 2.3522};
static const place LONDON = {51.5074, -0.1278};
static const place FRANKFURT = {50.1109, 8.6821};
static const place BERLIN = {52.5200, 13.4050};
static const place MILAN = {45.4642, 9.1900};
static const place MADRID = {40.4168, -3.7038};

enum { I_PARIS, I_LONDON, I_FRANKFURT, I_BERLIN, I_MILAN, I_MADRID, N_LM };
static const place *const LANDMARKS[N_LM] = {&PARIS, &LONDON, &FRANKFURT,
                                             &BERLIN, &MILAN, &MADRID};
/* Database ids of the landmarks: 101 + index, so an id names its landmark. */
#define LM_ID(i) (101 + (int64_t)(i))

static cl_key *g_verifier, *g_chip, *g_lm[N_LM];
static cl_geo_ctx *g_geo;

static cl_key *key_from_byte(uint8_t b) {
  uint8_t seed[32];
  memset(seed, b, sizeof seed);
  cl_key *k = NULL;
  ck_assert_int_eq(cl_key_from_seed(&k, seed), CL_OK);
  return k;
}

static void setup(void) {
  g_verifier = key_from_byte(0x22);
  g_chip = key_from_byte(0x11);
  for (int i = 0; i < N_LM; i++) g_lm[i] = key_from_byte((uint8_t)(0x31 + i));
  ck_assert_int_eq(cl_geo_ctx_create(&g_geo), CL_OK);
}

static void teardown(void) {
  cl_geo_ctx_destroy(&g_geo);
  for (int i = 0; i < N_LM; i++) cl_key_destroy(&g_lm[i]);
  cl_key_destroy(&g_chip);
  cl_key_destroy(&g_verifier);
}

static cl_verify_params params(void) {
  cl_verify_params p = {.window_ns = WINDOW_NS,
                        .speed_m_per_s = CL_SPEED_C,
                        .min_landmarks = MIN_LANDMARKS,
                        .dark_after_ns = DARK_AFTER_NS,
                        .max_chip_speed_m_per_s = CL_VERIFY_MAX_CHIP_SPEED_DEFAULT};
  return p;
}

static int32_t e7(double deg) { return (int32_t)llround(deg * 1e7); }

static void assert_hex(const uint8_t *got, size_t len, const char *want_hex) {
  char hex[2 * CL_HASH_LEN + 1];
  ck_assert_uint_le(len, CL_HASH_LEN);
  cl_hex_encode(hex, got, len);
  ck_assert_str_eq(hex, want_hex);
}

/* ---- the alert decision, on hand-made verdicts ----------------------------- */

/* Alert bits, one per CL_ALERT_* kind. */
#define DARK (1 << CL_ALERT_CHIP_DARK)
#define MOVED (1 << CL_ALERT_CHIP_MOVED)
#define SITE (1 << CL_ALERT_SITE_EXCLUDED)
#define OUTSIDE (1 << CL_ALERT_OUTSIDE_REGION)
#define INCONSISTENT (1 << CL_ALERT_INCONSISTENT)

typedef struct {
  int alert[CL_ALERT__CHIP_KINDS];
  char detail[CL_ALERT__CHIP_KINDS][CL_VERIFY_DETAIL_LEN];
} decision;

/* A chip enrolled an hour before the round, last sufficiently measured a
 * minute before it, with no previous attestation. */
static cl_verify_chip chip_state(void) {
  cl_verify_chip c;
  memset(&c, 0, sizeof c);
  c.chip_id = 7;
  c.enrolled_ns = (int64_t)(ROUND_END_NS - 3600 * SECOND_NS);
  c.last_sufficient_ns = (int64_t)(ROUND_END_NS - 60 * SECOND_NS);
  return c;
}

/* The same chip whose previous attestation was consistent, with this cap. */
static cl_verify_chip chip_after(place centre, uint64_t radius_m) {
  cl_verify_chip c = chip_state();
  c.has_prev = 1;
  c.prev_consistent = 1;
  c.prev_lat_e7 = e7(centre.lat);
  c.prev_lon_e7 = e7(centre.lon);
  c.prev_radius_m = radius_m;
  return c;
}

/* A consistent round whose feasible region lies in the given cap, the
 * declared site inside it and no region policy. */
static cl_verify_verdicts consistent(place centre, double radius_km) {
  cl_verify_verdicts v;
  memset(&v, 0, sizeof v);
  v.consistency = CL_GEO_CONSISTENT;
  v.site = CL_SITE_CONSISTENT;
  v.region = CL_REGION_UNKNOWN;
  v.n_usable = 5;
  v.centre_lat = centre.lat;
  v.centre_lon = centre.lon;
  v.radius_km = radius_km;
  return v;
}

static decision decide_at(uint64_t round_end_ns, const cl_verify_chip *prev,
                          const cl_verify_verdicts *v) {
  cl_verify_params p = params();
  decision d;
  memset(&d, 0x55, sizeof d); /* so that a field left unwritten shows */
  ck_assert_int_eq(cl_verify_alerts(&p, round_end_ns, prev, v, d.alert, d.detail), CL_OK);
  return d;
}

static decision decide(const cl_verify_chip *prev, const cl_verify_verdicts *v) {
  return decide_at(ROUND_END_NS, prev, v);
}

/* Exactly the alerts in `open` are open, and a clear one has no text. */
static void assert_open(const decision *d, int open) {
  static const char zeros[CL_VERIFY_DETAIL_LEN];
  for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++) {
    int want = (open >> k) & 1;
    ck_assert_msg(d->alert[k] == want, "%s: %d, want %d (detail \"%.*s\")", cl_alert_kind_name(k),
                  d->alert[k], want, CL_VERIFY_DETAIL_LEN, d->detail[k]);
    if (!want)
      ck_assert_msg(memcmp(d->detail[k], zeros, sizeof zeros) == 0, "%s: detail of a clear alert",
                    cl_alert_kind_name(k));
  }
}

START_TEST(alerts_none_for_a_located_chip) {
  cl_verify_chip prev = chip_after(BRUSSELS, 80000);
  cl_verify_verdicts v = consistent(BRUSSELS, 76.8);
  decision d = decide(&prev, &v);
  assert_open(&d, 0);
}
END_TEST

START_TEST(alerts_chip_dark) {
  cl_verify_chip prev = chip_state();
  cl_verify_verdicts v;
  memset(&v, 0, sizeof v);
  v.consistency = CL_GEO_INSUFFICIENT;
  v.n_usable = 2;

  /* Last sufficient 601 s before the round end, dark after 600 s: opens. */
  prev.last_sufficient_ns = (int64_t)(ROUND_END_NS - 601 * SECOND_NS);
  decision d = decide(&prev, &v);
  assert_open(&d, DARK);
  ck_assert_str_eq(d.detail[CL_ALERT_CHIP_DARK],
                   "2 fresh landmark(s), need 3; last sufficient 601 s before the round end");

  /* Exactly 600 s: not yet dark. */
  prev.last_sufficient_ns = (int64_t)(ROUND_END_NS - 600 * SECOND_NS);
  d = decide(&prev, &v);
  assert_open(&d, 0);

  /* Never sufficiently measured: timed from the enrolment. */
  prev.last_sufficient_ns = 0;
  prev.enrolled_ns = (int64_t)(ROUND_END_NS - 700 * SECOND_NS);
  d = decide(&prev, &v);
  assert_open(&d, DARK);
  ck_assert_str_eq(d.detail[CL_ALERT_CHIP_DARK],
                   "2 fresh landmark(s), need 3; last sufficient 700 s before the round end");
  prev.enrolled_ns = (int64_t)(ROUND_END_NS - 100 * SECOND_NS);
  d = decide(&prev, &v);
  assert_open(&d, 0);

  /* Clearing: the next round, still with the old state, is sufficient. A
   * round is sufficient when it is inconsistent too: the landmarks answered. */
  prev.last_sufficient_ns = (int64_t)(ROUND_END_NS - 601 * SECOND_NS);
  cl_verify_verdicts ok = consistent(BRUSSELS, 76.8);
  d = decide_at(ROUND_END_NS + WINDOW_NS, &prev, &ok);
  assert_open(&d, 0);
  cl_verify_verdicts bad;
  memset(&bad, 0, sizeof bad);
  bad.consistency = CL_GEO_INCONSISTENT;
  d = decide_at(ROUND_END_NS + WINDOW_NS, &prev, &bad);
  assert_open(&d, INCONSISTENT);
  /* And an insufficient round soon after a sufficient one is not dark. */
  prev.last_sufficient_ns = (int64_t)ROUND_END_NS;
  d = decide_at(ROUND_END_NS + WINDOW_NS, &prev, &v);
  assert_open(&d, 0);
}
END_TEST

START_TEST(alerts_chip_moved) {
  /* The previous cap: 50 km around Brussels. The new one around Paris,
   * about 264 km away. */
  cl_verify_chip prev = chip_after(BRUSSELS, 50000);
  double d_m = cl_geo_distance_m(prev.prev_lat_e7 / 1e7, prev.prev_lon_e7 / 1e7, PARIS.lat,
                                 PARIS.lon);
  ck_assert(d_m > 250000 && d_m < 280000);

  /* Disjoint caps of 50 km each: moved, by the gap between them. */
  cl_verify_verdicts v = consistent(PARIS, 50.0);
  decision d = decide(&prev, &v);
  assert_open(&d, MOVED);
  char want[CL_VERIFY_DETAIL_LEN];
  snprintf(want, sizeof want,
           "feasible region moved: %.1f km between the previous and the new region",
           (d_m - 100000.0) / 1000.0);
  ck_assert_str_eq(d.detail[CL_ALERT_CHIP_MOVED], want);

  /* The boundary: caps 1 m apart are disjoint, caps overlapping by 1 m are not. */
  v = consistent(PARIS, (d_m - 50000.0 - 1.0) / 1000.0);
  d = decide(&prev, &v);
  assert_open(&d, MOVED);
  ck_assert_str_eq(d.detail[CL_ALERT_CHIP_MOVED],
                   "feasible region moved: 0.0 km between the previous and the new region");
  v = consistent(PARIS, (d_m - 50000.0 + 1.0) / 1000.0);
  d = decide(&prev, &v);
  assert_open(&d, 0);
  /* A region inside the previous one has not moved either. */
  v = consistent(BRUSSELS, 10.0);
  d = decide(&prev, &v);
  assert_open(&d, 0);

  /* The first attestation has nothing to have moved from. */
  v = consistent(PARIS, 50.0);
  cl_verify_chip first = chip_state();
  first.prev_lat_e7 = prev.prev_lat_e7; /* stale values must not count */
  first.prev_lon_e7 = prev.prev_lon_e7;
  first.prev_radius_m = prev.prev_radius_m;
  first.prev_consistent = 1;
  d = decide(&first, &v);
  assert_open(&d, 0);
  /* Nor does a previous attestation that located nothing. */
  cl_verify_chip unlocated = prev;
  unlocated.prev_consistent = 0;
  d = decide(&unlocated, &v);
  assert_open(&d, 0);
  /* Nor a round that locates nothing, whatever its cap fields hold. */
  cl_verify_verdicts insufficient = v;
  insufficient.consistency = CL_GEO_INSUFFICIENT;
  insufficient.site = CL_SITE_UNKNOWN;
  d = decide(&prev, &insufficient);
  assert_open(&d, 0);

  /* Clearing: the next round finds the chip where it moved to. */
  cl_verify_chip after = chip_after(PARIS, 50000);
  d = decide_at(ROUND_END_NS + WINDOW_NS, &after, &v);
  assert_open(&d, 0);
}
END_TEST

START_TEST(alerts_site_excluded) {
  cl_verify_chip prev = chip_after(BRUSSELS, 80000);
  cl_verify_verdicts v = consistent(BRUSSELS, 76.8);
  v.site = CL_SITE_EXCLUDED;
  v.site_landmark_id = LM_ID(I_BERLIN);
  v.site_margin_km = 1234.56;
  decision d = decide(&prev, &v);
  assert_open(&d, SITE);
  ck_assert_str_eq(d.detail[CL_ALERT_SITE_EXCLUDED],
                   "declared site 1234.6 km beyond landmark 104's bound");
  /* With its name known, the text names the landmark as operators do. */
  v.site_landmark_name = "berlin-1";
  d = decide(&prev, &v);
  ck_assert_str_eq(d.detail[CL_ALERT_SITE_EXCLUDED],
                   "declared site 1234.6 km beyond landmark berlin-1's bound");
  v.site_landmark_name = NULL;

  /* Clearing: the site is consistent again, or not evaluated. */
  v.site = CL_SITE_CONSISTENT;
  d = decide_at(ROUND_END_NS + WINDOW_NS, &prev, &v);
  assert_open(&d, 0);
  v.site = CL_SITE_UNKNOWN;
  d = decide_at(ROUND_END_NS + WINDOW_NS, &prev, &v);
  assert_open(&d, 0);
}
END_TEST

START_TEST(alerts_outside_region) {
  cl_verify_chip prev = chip_after(BRUSSELS, 80000);
  cl_verify_verdicts v = consistent(BRUSSELS, 76.84);
  v.region = CL_REGION_OUTSIDE;
  decision d = decide(&prev, &v);
  assert_open(&d, OUTSIDE);
  ck_assert_str_eq(d.detail[CL_ALERT_OUTSIDE_REGION],
                   "feasible region (radius 76.8 km) does not meet the allowed region(s)");

  /* Clearing: inside; and a region that may meet both is no alert either. */
  static const cl_geo_region_verdict clear[] = {CL_REGION_INSIDE, CL_REGION_UNDETERMINED,
                                                CL_REGION_UNKNOWN};
  for (size_t i = 0; i < sizeof clear / sizeof clear[0]; i++) {
    v.region = clear[i];
    d = decide_at(ROUND_END_NS + WINDOW_NS, &prev, &v);
    assert_open(&d, 0);
  }
}
END_TEST

START_TEST(alerts_inconsistent) {
  cl_verify_chip prev = chip_after(BRUSSELS, 80000);
  cl_verify_verdicts v;
  memset(&v, 0, sizeof v);
  v.consistency = CL_GEO_INCONSISTENT;
  v.n_usable = 5;
  v.excluded_ids[0] = LM_ID(I_BERLIN);
  v.excluded_ids[1] = LM_ID(I_MILAN);
  v.n_excluded = 2;
  decision d = decide(&prev, &v);
  assert_open(&d, INCONSISTENT);
  ck_assert_str_eq(d.detail[CL_ALERT_INCONSISTENT],
                   "no point satisfies every bound; remove landmark(s) 104 105");
  v.excluded_names[1] = "milan-1";
  d = decide(&prev, &v);
  ck_assert_str_eq(d.detail[CL_ALERT_INCONSISTENT],
                   "no point satisfies every bound; remove landmark(s) 104 milan-1");
  v.excluded_names[1] = NULL;

  /* Sixteen long ids do not fit: the text is cut, never overrun. */
  v.n_excluded = CL_GEO_MAX_EXCLUDED;
  for (size_t i = 0; i < CL_GEO_MAX_EXCLUDED; i++) v.excluded_ids[i] = INT64_MAX - (int64_t)i;
  d = decide(&prev, &v);
  assert_open(&d, INCONSISTENT);
  const char *t = d.detail[CL_ALERT_INCONSISTENT];
  ck_assert_uint_eq(strnlen(t, CL_VERIFY_DETAIL_LEN), CL_VERIFY_DETAIL_LEN - 1);
  const char *head = "no point satisfies every bound; remove landmark(s) 9223372036854775807 "
                     "9223372036854775806 ";
  ck_assert(strncmp(t, head, strlen(head)) == 0);

  /* More excluded landmarks than an attestation can name: refused, and
   * nothing written. */
  v.n_excluded = CL_GEO_MAX_EXCLUDED + 1;
  cl_verify_params p = params();
  decision untouched;
  memset(&untouched, 0x55, sizeof untouched);
  decision got = untouched;
  ck_assert_int_eq(cl_verify_alerts(&p, ROUND_END_NS, &prev, &v, got.alert, got.detail),
                   CL_EINVAL);
  ck_assert(memcmp(&got, &untouched, sizeof got) == 0);

  /* Clearing: the next round is consistent. */
  cl_verify_verdicts ok = consistent(BRUSSELS, 76.8);
  d = decide_at(ROUND_END_NS + WINDOW_NS, &prev, &ok);
  assert_open(&d, 0);
}
END_TEST

START_TEST(alerts_several_at_once) {
  /* Moved to Paris, outside the allowed regions, and the declared site in
   * Brussels excluded: three alerts in one round, each with its text. */
  cl_verify_chip prev = chip_after(BRUSSELS, 50000);
  cl_verify_verdicts v = consistent(PARIS, 50.0);
  v.site = CL_SITE_EXCLUDED;
  v.site_landmark_id = LM_ID(I_PARIS);
  v.site_margin_km = 200.0;
  v.region = CL_REGION_OUTSIDE;
  decision d = decide(&prev, &v);
  assert_open(&d, MOVED | SITE | OUTSIDE);
  ck_assert_str_eq(d.detail[CL_ALERT_SITE_EXCLUDED],
                   "declared site 200.0 km beyond landmark 101's bound");
  ck_assert_str_eq(d.detail[CL_ALERT_OUTSIDE_REGION],
                   "feasible region (radius 50.0 km) does not meet the allowed region(s)");
}
END_TEST

/* ---- the attestation and the composed round, on measurements ---------------- */

/* One chip's minima as measured from every landmark, and its state. */
typedef struct {
  cl_verify_min mins[N_LM];
  cl_verify_chip in;
} chip_round;

/* Measurements of a chip at `at` declaring `site`; no previous attestation. */
static void measure(chip_round *c, place at, place site) {
  memset(c, 0, sizeof *c);
  for (int i = 0; i < N_LM; i++) {
    cl_verify_min *m = &c->mins[i];
    m->measurement_id = 1001 + i;
    m->landmark_id = LM_ID(i);
    memcpy(m->landmark_pk, cl_key_public(g_lm[i]), CL_PK_LEN);
    m->lat = LANDMARKS[i]->lat;
    m->lon = LANDMARKS[i]->lon;
    double d = cl_geo_distance_m(at.lat, at.lon, m->lat, m->lon) + SLACK_M;
    m->rtt_ns = (uint64_t)ceil(2.0 * d / CL_SPEED_C * 1e9);
    memset(m->landmark_sig, 0xa0 + i, CL_SIG_LEN);
  }
  cl_verify_chip *in = &c->in;
  in->chip_id = 7;
  memcpy(in->pk, cl_key_public(g_chip), CL_PK_LEN);
  in->site_lat = site.lat;
  in->site_lon = site.lon;
  in->enrolled_ns = (int64_t)(ROUND_END_NS - 3600 * SECOND_NS);
  in->mins = c->mins;
  in->n_mins = N_LM;
}

/* Chains c to the attestation a round produced. */
static void chain(chip_round *c, const cl_verify_out *prev) {
  cl_verify_chip *in = &c->in;
  in->has_prev = 1;
  memcpy(in->prev_hash, prev->hash, CL_HASH_LEN);
  in->prev_consistent = prev->a.consistency == CL_ATT_CONSISTENT;
  in->prev_lat_e7 = prev->a.centre_lat_e7;
  in->prev_lon_e7 = prev->a.centre_lon_e7;
  in->prev_radius_m = prev->a.radius_m;
  if (prev->a.consistency != CL_ATT_INSUFFICIENT)
    in->last_sufficient_ns = (int64_t)prev->a.round_end_ns;
}

static void round_of(uint64_t round_end_ns, const cl_verify_chip *in, cl_verify_out *out) {
  cl_verify_params p = params();
  ck_assert_int_eq(cl_verify_chip_round(g_geo, &p, g_verifier, round_end_ns, in, out), CL_OK);
}

static void round_at(uint64_t round_end_ns, const chip_round *c, cl_verify_out *out) {
  round_of(round_end_ns, &c->in, out);
}

/* The attestation step alone gives the composed round's bytes, and the
 * summary beside them; the round adds only the alerts and the timings. */
static void assert_attest_matches_round(const chip_round *c, const cl_verify_out *round,
                                        cl_geo_result *r) {
  cl_verify_params p = params();
  ck_assert_int_eq(cl_verify_locate(g_geo, &p, &c->in, r), CL_OK);
  cl_verify_out *att = malloc(sizeof *att);
  ck_assert_ptr_nonnull(att);
  memset(att, 0x55, sizeof *att);
  ck_assert_int_eq(cl_verify_attest(&p, g_verifier, ROUND_END_NS, &c->in, r, att), CL_OK);
  uint8_t want[CL_ATTESTATION_LAYOUT_LEN], got[CL_ATTESTATION_LAYOUT_LEN];
  ck_assert_uint_eq(cl_attest_layout(want, &round->a), CL_ATTESTATION_LAYOUT_LEN);
  ck_assert_uint_eq(cl_attest_layout(got, &att->a), CL_ATTESTATION_LAYOUT_LEN);
  ck_assert_mem_eq(got, want, CL_ATTESTATION_LAYOUT_LEN);
  ck_assert_mem_eq(att->a.sig, round->a.sig, CL_SIG_LEN);
  ck_assert_mem_eq(att->hash, round->hash, CL_HASH_LEN);
  ck_assert_int_eq(att->site_landmark_id, round->site_landmark_id);
  ck_assert_uint_eq(att->n_excluded, round->n_excluded);
  ck_assert_mem_eq(att->excluded_ids, round->excluded_ids, sizeof att->excluded_ids);
  ck_assert_uint_eq(att->landmarks_used, round->landmarks_used);
  ck_assert_double_eq(att->radius_km, round->radius_km);
  ck_assert_double_eq(att->centre_lat, round->centre_lat);
  ck_assert_double_eq(att->centre_lon, round->centre_lon);
  /* The rest of *out is the other steps' business: zero. */
  static const char zeros[sizeof att->detail];
  for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++) ck_assert_int_eq(att->alert[k], 0);
  ck_assert(memcmp(att->detail, zeros, sizeof zeros) == 0);
  ck_assert_uint_eq(att->engine_ns, 0);
  ck_assert_uint_eq(att->sign_ns, 0);
  free(att);
}

START_TEST(attest_matches_round) {
  /* A chip in Brussels declaring Brussels, chained to a fixed previous hash
   * whose cap overlaps this round's. */
  chip_round c;
  measure(&c, BRUSSELS, BRUSSELS);
  c.in.has_prev = 1;
  memset(c.in.prev_hash, 0x5a, CL_HASH_LEN);
  c.in.prev_consistent = 1;
  c.in.prev_lat_e7 = e7(BRUSSELS.lat);
  c.in.prev_lon_e7 = e7(BRUSSELS.lon);
  c.in.prev_radius_m = 80000;
  c.in.last_sufficient_ns = (int64_t)(ROUND_END_NS - WINDOW_NS);
  cl_verify_out *round = malloc(sizeof *round);
  ck_assert_ptr_nonnull(round);
  round_at(ROUND_END_NS, &c, round);
  cl_geo_result r;
  assert_attest_matches_round(&c, round, &r);

  /* What the attestation says, from the inputs rather than from the code. */
  const cl_attestation *a = &round->a;
  ck_assert_int_eq(cl_attest_verify(a), CL_OK);
  uint8_t h[CL_HASH_LEN];
  cl_attest_hash(a, h);
  ck_assert_mem_eq(h, round->hash, CL_HASH_LEN);
  ck_assert_mem_eq(a->chip, cl_key_public(g_chip), CL_PK_LEN);
  ck_assert_mem_eq(a->verifier, cl_key_public(g_verifier), CL_PK_LEN);
  uint8_t prev_hash[CL_HASH_LEN];
  memset(prev_hash, 0x5a, sizeof prev_hash);
  ck_assert_mem_eq(a->prev_hash, prev_hash, CL_HASH_LEN);
  ck_assert_uint_eq(a->round_end_ns, ROUND_END_NS);
  ck_assert_uint_eq(a->window_ns, WINDOW_NS);
  ck_assert_uint_eq(a->speed_m_per_s, 299792458u);
  ck_assert_uint_eq(a->consistency, CL_ATT_CONSISTENT);
  ck_assert_uint_eq(a->site, CL_ATT_SITE_CONSISTENT);
  ck_assert_uint_eq(a->region, CL_ATT_REGION_UNKNOWN);
  ck_assert_uint_eq(round->landmarks_used, N_LM);
  /* The cap holds the chip, and its radius is the engine's rounded up. */
  ck_assert_uint_eq(a->radius_m, (uint64_t)ceil(r.radius_km * 1000.0));
  ck_assert_int_eq(a->centre_lat_e7, e7(r.centre_lat));
  ck_assert_int_eq(a->centre_lon_e7, e7(r.centre_lon));
  ck_assert(cl_geo_distance_m(a->centre_lat_e7 / 1e7, a->centre_lon_e7 / 1e7, BRUSSELS.lat,
                              BRUSSELS.lon) <= (double)a->radius_m);
  ck_assert(a->radius_m > 1000 && a->radius_m < 150000);
  ck_assert_uint_eq(a->n_excluded, 0);
  assert_hex(a->excluded_digest, CL_HASH_LEN, EMPTY_DIGEST_HEX);
  assert_hex(a->allowed_digest, CL_HASH_LEN, EMPTY_DIGEST_HEX);
  ck_assert_uint_eq(a->n_measurements, N_LM);
  uint8_t sigs[N_LM][CL_SIG_LEN], digest[CL_HASH_LEN];
  for (int i = 0; i < N_LM; i++) memcpy(sigs[i], c.mins[i].landmark_sig, CL_SIG_LEN);
  ck_assert_int_eq(cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])sigs, N_LM, digest), CL_OK);
  ck_assert_mem_eq(a->measurements_digest, digest, CL_HASH_LEN);
  /* A chip where it says it is, where it was: no alert. */
  for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++) ck_assert_int_eq(round->alert[k], 0);

  /* Another verifier key signs other bytes: the comparison above can fail. */
  cl_key *other = key_from_byte(0x23);
  cl_verify_params p = params();
  cl_verify_out *att = malloc(sizeof *att);
  ck_assert_ptr_nonnull(att);
  ck_assert_int_eq(cl_verify_attest(&p, other, ROUND_END_NS, &c.in, &r, att), CL_OK);
  ck_assert(memcmp(att->hash, round->hash, CL_HASH_LEN) != 0);
  cl_key_destroy(&other);
  free(att);
  free(round);
}
END_TEST

START_TEST(attest_site_excluded) {
  /* A chip in Brussels declaring Madrid: the attestation names the
   * landmark that excludes Madrid by the widest margin, by key, and the
   * alert by id. */
  chip_round c;
  measure(&c, BRUSSELS, MADRID);
  cl_verify_out *round = malloc(sizeof *round);
  ck_assert_ptr_nonnull(round);
  round_at(ROUND_END_NS, &c, round);
  cl_geo_result r;
  assert_attest_matches_round(&c, round, &r);
  ck_assert_int_eq(r.site, CL_SITE_EXCLUDED);
  size_t widest = 0;
  double widest_m = -INFINITY;
  for (size_t i = 0; i < N_LM; i++) {
    cl_verify_params p = params();
    double bound = cl_verify_bound_m(&p, c.mins[i].rtt_ns);
    double m = cl_geo_distance_m(MADRID.lat, MADRID.lon, c.mins[i].lat, c.mins[i].lon) - bound;
    if (m > widest_m) widest_m = m, widest = i;
  }
  ck_assert_uint_eq(r.site_landmark, widest);
  const cl_attestation *a = &round->a;
  ck_assert_uint_eq(a->site, CL_ATT_SITE_EXCLUDED);
  ck_assert_mem_eq(a->site_landmark, cl_key_public(g_lm[widest]), CL_PK_LEN);
  ck_assert_int_eq(a->site_margin_m, (int64_t)floor(r.site_margin_km * 1000.0));
  ck_assert(a->site_margin_m > 500000);
  ck_assert_int_eq(round->site_landmark_id, LM_ID(widest));
  ck_assert_int_eq(round->alert[CL_ALERT_SITE_EXCLUDED], 1);
  char want[CL_VERIFY_DETAIL_LEN];
  snprintf(want, sizeof want, "declared site %.1f km beyond landmark %lld's bound",
           r.site_margin_km, (long long)LM_ID(widest));
  ck_assert_str_eq(round->detail[CL_ALERT_SITE_EXCLUDED], want);
  for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++)
    if (k != CL_ALERT_SITE_EXCLUDED) ck_assert_int_eq(round->alert[k], 0);
  free(round);
}
END_TEST

START_TEST(attest_inconsistent) {
  /* Berlin's round trip says 100 km while the chip is in Brussels: the
   * attestation excludes Berlin by key, the alert names it by id. */
  chip_round c;
  measure(&c, BRUSSELS, BRUSSELS);
  c.mins[I_BERLIN].rtt_ns = (uint64_t)ceil(2.0 * 100000.0 / CL_SPEED_C * 1e9);
  c.in.last_sufficient_ns = (int64_t)(ROUND_END_NS - WINDOW_NS);
  cl_verify_out *round = malloc(sizeof *round);
  ck_assert_ptr_nonnull(round);
  round_at(ROUND_END_NS, &c, round);
  cl_geo_result r;
  assert_attest_matches_round(&c, round, &r);
  const cl_attestation *a = &round->a;
  ck_assert_uint_eq(a->consistency, CL_ATT_INCONSISTENT);
  ck_assert_uint_eq(a->site, CL_ATT_SITE_UNKNOWN);
  ck_assert_uint_eq(a->radius_m, 0);
  ck_assert_int_eq(a->centre_lat_e7, 0);
  ck_assert_int_eq(a->centre_lon_e7, 0);
  ck_assert_uint_eq(a->n_excluded, 1);
  ck_assert_uint_eq(round->n_excluded, 1);
  ck_assert_int_eq(round->excluded_ids[0], LM_ID(I_BERLIN));
  uint8_t berlin[1][CL_PK_LEN], digest[CL_HASH_LEN];
  memcpy(berlin[0], cl_key_public(g_lm[I_BERLIN]), CL_PK_LEN);
  ck_assert_int_eq(cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN])berlin, 1, digest), CL_OK);
  ck_assert_mem_eq(a->excluded_digest, digest, CL_HASH_LEN);
  ck_assert_int_eq(round->alert[CL_ALERT_INCONSISTENT], 1);
  ck_assert_str_eq(round->detail[CL_ALERT_INCONSISTENT],
                   "no point satisfies every bound; remove landmark(s) 104");
  for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++)
    if (k != CL_ALERT_INCONSISTENT) ck_assert_int_eq(round->alert[k], 0);
  free(round);
}
END_TEST

START_TEST(attest_refuses_foreign_result) {
  /* A result whose indices do not name this chip's minima is refused
   * rather than signed. */
  chip_round c;
  measure(&c, BRUSSELS, BRUSSELS);
  cl_verify_params p = params();
  cl_geo_result r;
  ck_assert_int_eq(cl_verify_locate(g_geo, &p, &c.in, &r), CL_OK);
  cl_verify_out *out = malloc(sizeof *out);
  ck_assert_ptr_nonnull(out);
  cl_geo_result bad = r;
  bad.site = CL_SITE_EXCLUDED;
  bad.site_landmark = N_LM;
  ck_assert_int_eq(cl_verify_attest(&p, g_verifier, ROUND_END_NS, &c.in, &bad, out), CL_EINVAL);
  bad = r;
  bad.consistency = CL_GEO_INCONSISTENT;
  bad.n_excluded = 1;
  bad.excluded[0] = N_LM;
  ck_assert_int_eq(cl_verify_attest(&p, g_verifier, ROUND_END_NS, &c.in, &bad, out), CL_EINVAL);
  bad.n_excluded = CL_GEO_MAX_EXCLUDED + 1;
  ck_assert_int_eq(cl_verify_attest(&p, g_verifier, ROUND_END_NS, &c.in, &bad, out), CL_EINVAL);
  /* One past the last index is refused; the last one is signed. */
  bad.n_excluded = 1;
  bad.excluded[0] = N_LM - 1;
  ck_assert_int_eq(cl_verify_attest(&p, g_verifier, ROUND_END_NS, &c.in, &bad, out), CL_OK);
  ck_assert_int_eq(out->excluded_ids[0], LM_ID(N_LM - 1));
  free(out);
}
END_TEST

START_TEST(round_chip_moved) {
  /* Round 1: the chip in Brussels, its first attestation. */
  chip_round c;
  measure(&c, BRUSSELS, BRUSSELS);
  cl_verify_out *o1 = malloc(sizeof *o1), *o2 = malloc(sizeof *o2), *o3 = malloc(sizeof *o3);
  ck_assert(o1 && o2 && o3);
  round_at(ROUND_END_NS, &c, o1);
  ck_assert_uint_eq(o1->a.consistency, CL_ATT_CONSISTENT);
  for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++) ck_assert_int_eq(o1->alert[k], 0);

  /* Round 2: the same chip, declaring Brussels still, measured in Madrid. */
  measure(&c, MADRID, BRUSSELS);
  chain(&c, o1);
  round_at(ROUND_END_NS + WINDOW_NS, &c, o2);
  ck_assert_mem_eq(o2->a.prev_hash, o1->hash, CL_HASH_LEN);
  ck_assert_uint_eq(o2->a.consistency, CL_ATT_CONSISTENT);
  ck_assert_int_eq(o2->alert[CL_ALERT_CHIP_MOVED], 1);
  ck_assert_int_eq(o2->alert[CL_ALERT_SITE_EXCLUDED], 1);
  ck_assert_int_eq(o2->alert[CL_ALERT_CHIP_DARK], 0);
  ck_assert_int_eq(o2->alert[CL_ALERT_OUTSIDE_REGION], 0);
  ck_assert_int_eq(o2->alert[CL_ALERT_INCONSISTENT], 0);
  /* The gap the text gives is the distance between the caps. */
  double d = cl_geo_distance_m(o1->a.centre_lat_e7 / 1e7, o1->a.centre_lon_e7 / 1e7,
                               o2->centre_lat, o2->centre_lon);
  char want[CL_VERIFY_DETAIL_LEN];
  snprintf(want, sizeof want,
           "feasible region moved: %.1f km between the previous and the new region",
           (d - (double)o1->a.radius_m - o2->radius_km * 1000.0) / 1000.0);
  ck_assert_str_eq(o2->detail[CL_ALERT_CHIP_MOVED], want);
  ck_assert(d > 1000000.0);

  /* Round 3: still in Madrid, so it has not moved since round 2. */
  chain(&c, o2);
  round_at(ROUND_END_NS + 2 * WINDOW_NS, &c, o3);
  ck_assert_int_eq(o3->alert[CL_ALERT_CHIP_MOVED], 0);
  ck_assert_int_eq(o3->alert[CL_ALERT_SITE_EXCLUDED], 1);

  /* Back to Brussels after round 1 instead: overlapping caps, no move. */
  measure(&c, BRUSSELS, BRUSSELS);
  chain(&c, o1);
  round_at(ROUND_END_NS + WINDOW_NS, &c, o2);
  for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++) ck_assert_int_eq(o2->alert[k], 0);
  free(o1);
  free(o2);
  free(o3);
}
END_TEST

START_TEST(round_chip_dark) {
  /* Two landmarks answer, three are needed: insufficient. */
  chip_round c;
  measure(&c, BRUSSELS, BRUSSELS);
  c.in.n_mins = 2;
  c.in.last_sufficient_ns = (int64_t)(ROUND_END_NS - 900 * SECOND_NS);
  cl_verify_out *o = malloc(sizeof *o);
  ck_assert_ptr_nonnull(o);
  round_at(ROUND_END_NS, &c, o);
  ck_assert_uint_eq(o->a.consistency, CL_ATT_INSUFFICIENT);
  ck_assert_uint_eq(o->a.n_measurements, 2);
  ck_assert_int_eq(o->alert[CL_ALERT_CHIP_DARK], 1);
  ck_assert_str_eq(o->detail[CL_ALERT_CHIP_DARK],
                   "2 fresh landmark(s), need 3; last sufficient 900 s before the round end");
  /* All six answer in the next round: the alert clears. */
  c.in.n_mins = N_LM;
  round_at(ROUND_END_NS + WINDOW_NS, &c, o);
  ck_assert_uint_eq(o->a.consistency, CL_ATT_CONSISTENT);
  for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++) ck_assert_int_eq(o->alert[k], 0);
  free(o);
}
END_TEST

/* ---- the bounds: a moving chip, colocated entries, too many minima ---------- */

START_TEST(bound_moving_chip) {
  /* Every cap grows by window * max_chip_speed: 300 s * 40 m/s = 12 km. */
  cl_verify_params still = params(), moving = params();
  still.max_chip_speed_m_per_s = 0;
  ck_assert_double_eq(CL_VERIFY_MAX_CHIP_SPEED_DEFAULT, 40.0);
  const uint64_t rtts[] = {1000, 100000, 3000000, 40000000};
  for (size_t i = 0; i < sizeof rtts / sizeof rtts[0]; i++) {
    ck_assert_double_eq(cl_verify_bound_m(&still, rtts[i]),
                        cl_geo_bound_m((double)rtts[i] / 1e9, CL_SPEED_C));
    ck_assert_double_eq_tol(cl_verify_bound_m(&moving, rtts[i]) - cl_verify_bound_m(&still, rtts[i]),
                            12000.0, 1e-6);
  }
  ck_assert_double_eq(cl_verify_bound_m(&moving, 0), 0); /* still unusable */

  /* The verifier's caps are those: a site excluded by a margin of m km at
   * speed 0 is excluded by m - 12 km at 40 m/s, by the same landmark. */
  chip_round c;
  measure(&c, BRUSSELS, MADRID);
  cl_geo_result r0, r40;
  ck_assert_int_eq(cl_verify_locate(g_geo, &still, &c.in, &r0), CL_OK);
  size_t lm0 = r0.site_landmark;
  double m0 = r0.site_margin_km, rad0 = r0.radius_km;
  ck_assert_int_eq(cl_verify_locate(g_geo, &moving, &c.in, &r40), CL_OK);
  ck_assert_int_eq(r0.site, CL_SITE_EXCLUDED);
  ck_assert_int_eq(r40.site, CL_SITE_EXCLUDED);
  ck_assert_uint_eq(r40.site_landmark, lm0);
  ck_assert_double_eq_tol(m0 - r40.site_margin_km, 12.0, 1e-6);
  ck_assert_double_gt(r40.radius_km, rad0);
  printf("moving chip: site margin %.3f km at 0 m/s, %.3f km at 40 m/s; radius %.1f -> %.1f km\n",
         m0, r40.site_margin_km, rad0, r40.radius_km);

  /* A chip on a lorry driving 10 km from Brussels towards Berlin: Paris,
   * London and Madrid, behind it, measured it at the start, Milan half way,
   * Frankfurt and Berlin, ahead, at the end; each at the exact distance.
   * Taken as static, these honest measurements contradict each other
   * (INCONSISTENT, and a landmark is blamed); with the default 40 m/s
   * (12 km in the window) every point of the drive is in F and consistent
   * with every bound. */
  static const double km_at[N_LM] = {[I_PARIS] = 0, [I_LONDON] = 0, [I_MADRID] = 0,
                                     [I_MILAN] = 5, [I_FRANKFURT] = 10, [I_BERLIN] = 10};
  struct geod_geodesic g;
  geod_init(&g, CL_WGS84_A, CL_WGS84_F);
  double azi;
  geod_inverse(&g, BRUSSELS.lat, BRUSSELS.lon, BERLIN.lat, BERLIN.lon, NULL, &azi, NULL);
  place at[N_LM];
  for (int i = 0; i < N_LM; i++) {
    geod_direct(&g, BRUSSELS.lat, BRUSSELS.lon, azi, 1000.0 * km_at[i], &at[i].lat, &at[i].lon,
                NULL);
    double d = cl_geo_distance_m(at[i].lat, at[i].lon, c.mins[i].lat, c.mins[i].lon);
    c.mins[i].rtt_ns = (uint64_t)ceil(2.0 * d / CL_SPEED_C * 1e9);
  }
  c.in.site_lat = BRUSSELS.lat, c.in.site_lon = BRUSSELS.lon;
  ck_assert_int_eq(cl_verify_locate(g_geo, &still, &c.in, &r0), CL_OK);
  ck_assert_int_eq(r0.consistency, CL_GEO_INCONSISTENT);
  ck_assert_uint_ge(r0.n_excluded, 1);
  for (int k = 0; k < N_LM; k++) {
    c.in.site_lat = at[k].lat, c.in.site_lon = at[k].lon;
    ck_assert_int_eq(cl_verify_locate(g_geo, &moving, &c.in, &r40), CL_OK);
    ck_assert_int_eq(r40.consistency, CL_GEO_CONSISTENT);
    ck_assert_msg(r40.site == CL_SITE_CONSISTENT, "drive point %d excluded by %.3f km", k,
                  r40.site_margin_km);
    ck_assert(cl_geo_distance_m(r40.centre_lat, r40.centre_lon, at[k].lat, at[k].lon) <=
              r40.radius_km * 1000.0);
  }

  /* The speed is checked: below 0, above the limit, NaN. */
  const double bad[] = {-1.0, CL_VERIFY_MAX_CHIP_SPEED_LIMIT + 1, NAN};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    moving.max_chip_speed_m_per_s = bad[i];
    ck_assert_int_eq(cl_verify_locate(g_geo, &moving, &c.in, &r40), CL_EINVAL);
  }
  moving.max_chip_speed_m_per_s = CL_VERIFY_MAX_CHIP_SPEED_LIMIT;
  ck_assert_int_eq(cl_verify_locate(g_geo, &moving, &c.in, &r40), CL_OK);
}
END_TEST

START_TEST(round_same_place_counts_once) {
  /* Three minima, three landmark entries, but two of the entries are one
   * landmark (its key rotated: another id and key, the same position, or
   * 300 m off after a re-survey): two witnesses, below the three needed. */
  chip_round c;
  measure(&c, BRUSSELS, BRUSSELS);
  c.mins[I_LONDON] = c.mins[I_PARIS];
  c.mins[I_LONDON].landmark_id = 999;
  c.mins[I_LONDON].measurement_id = 1999;
  memcpy(c.mins[I_LONDON].landmark_pk, cl_key_public(g_lm[I_LONDON]), CL_PK_LEN);
  c.mins[I_LONDON].rtt_ns += 1000;
  c.in.n_mins = 3; /* Paris, Paris again, Frankfurt */
  c.in.last_sufficient_ns = (int64_t)(ROUND_END_NS - 900 * SECOND_NS);
  cl_verify_out *o = malloc(sizeof *o);
  ck_assert_ptr_nonnull(o);
  for (int moved = 0; moved < 2; moved++) {
    if (moved) {
      struct geod_geodesic g;
      geod_init(&g, CL_WGS84_A, CL_WGS84_F);
      geod_direct(&g, PARIS.lat, PARIS.lon, 200.0, 300.0, &c.mins[I_LONDON].lat,
                  &c.mins[I_LONDON].lon, NULL);
    }
    round_at(ROUND_END_NS, &c, o);
    ck_assert_uint_eq(o->a.consistency, CL_ATT_INSUFFICIENT);
    ck_assert_uint_eq(o->landmarks_used, 2);
    ck_assert_uint_eq(o->a.n_measurements, 3); /* all three are bound */
    ck_assert_int_eq(o->alert[CL_ALERT_CHIP_DARK], 1);
    ck_assert_str_eq(o->detail[CL_ALERT_CHIP_DARK],
                     "2 fresh landmark(s), need 3; last sufficient 900 s before the round end");
  }
  /* A third place makes it sufficient. */
  c.mins[3] = c.mins[I_BERLIN];
  c.in.n_mins = 4;
  round_at(ROUND_END_NS, &c, o);
  ck_assert_uint_eq(o->a.consistency, CL_ATT_CONSISTENT);
  ck_assert_uint_eq(o->landmarks_used, 3);
  ck_assert_int_eq(o->alert[CL_ALERT_CHIP_DARK], 0);
  free(o);
}
END_TEST

/* A chip with more minima than the engine takes: the six landmarks' honest
 * minima at the end of the array, after `extra` loose ones from landmarks
 * spread over Europe (all within 2 600 km of Brussels) whose RTTs allow
 * 5 000 km and more, growing with the index: the last extras are the
 * loosest. */
typedef struct {
  cl_verify_min *mins;
  cl_verify_chip in;
} big_round;

static void measure_many(big_round *b, size_t extra, place site) {
  chip_round c;
  measure(&c, BRUSSELS, site);
  size_t n = extra + N_LM;
  b->mins = calloc(n, sizeof *b->mins);
  ck_assert_ptr_nonnull(b->mins);
  for (size_t i = 0; i < extra; i++) {
    cl_verify_min *m = &b->mins[i];
    m->measurement_id = 5000 + (int64_t)i;
    m->landmark_id = 5000 + (int64_t)i;
    memset(m->landmark_pk, (int)(i & 0xff), CL_PK_LEN);
    m->lat = 36.0 + (double)(i % 32) * 0.6;
    m->lon = -9.0 + (double)(i / 32) * 0.9;
    ck_assert_double_lt(cl_geo_distance_m(BRUSSELS.lat, BRUSSELS.lon, m->lat, m->lon), 2.6e6);
    m->rtt_ns = (uint64_t)ceil(2.0 * 5.0e6 / CL_SPEED_C * 1e9) + 1000 * i;
    memset(m->landmark_sig, 0x10 + (int)(i % 64), CL_SIG_LEN);
  }
  memcpy(b->mins + extra, c.mins, sizeof c.mins);
  b->in = c.in;
  b->in.mins = b->mins;
  b->in.n_mins = n;
}

START_TEST(round_too_many_minima) {
  /* 1 074 minima, 50 more than the engine takes: the round still attests
   * the chip, from the 1 024 tightest bounds, and binds all 1 074. */
  const size_t extra = CL_GEO_MAX_LANDMARKS + 50 - N_LM;
  big_round b;
  measure_many(&b, extra, BRUSSELS);
  size_t n = b.in.n_mins;
  ck_assert_uint_eq(n, CL_GEO_MAX_LANDMARKS + 50);
  ck_assert_uint_eq(cl_verify_minima_dropped(n), 50);
  ck_assert_uint_eq(cl_verify_minima_dropped(CL_GEO_MAX_LANDMARKS), 0);
  cl_verify_out *o = malloc(sizeof *o);
  ck_assert_ptr_nonnull(o);
  round_of(ROUND_END_NS, &b.in, o);
  ck_assert_uint_eq(o->minima_dropped, 50);
  ck_assert_uint_eq(o->a.consistency, CL_ATT_CONSISTENT);
  ck_assert_uint_eq(o->a.site, CL_ATT_SITE_CONSISTENT);
  ck_assert_uint_eq(o->a.n_measurements, n);
  ck_assert_uint_eq(o->landmarks_used, CL_GEO_MAX_LANDMARKS);
  uint8_t(*sigs)[CL_SIG_LEN] = malloc(n * sizeof *sigs);
  ck_assert_ptr_nonnull(sigs);
  for (size_t i = 0; i < n; i++) memcpy(sigs[i], b.mins[i].landmark_sig, CL_SIG_LEN);
  uint8_t digest[CL_HASH_LEN];
  ck_assert_int_eq(cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])sigs, n, digest), CL_OK);
  ck_assert_mem_eq(o->a.measurements_digest, digest, CL_HASH_LEN);
  free(sigs);

  /* The engine got exactly the tightest 1 024 (the 50 loosest left out):
   * the same result as the engine on them directly. */
  cl_verify_params p = params();
  cl_geo_landmark *lms = calloc(CL_GEO_MAX_LANDMARKS, sizeof *lms);
  ck_assert_ptr_nonnull(lms);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (i < extra && i >= extra - 50) continue; /* the loosest: the last extras */
    lms[k++] = (cl_geo_landmark){b.mins[i].lat, b.mins[i].lon, cl_verify_bound_m(&p, b.mins[i].rtt_ns)};
  }
  ck_assert_uint_eq(k, CL_GEO_MAX_LANDMARKS);
  cl_geo_params gp;
  cl_geo_params_default(&gp);
  cl_geo_result want;
  double site[2] = {BRUSSELS.lat, BRUSSELS.lon};
  ck_assert_int_eq(cl_geo_locate(g_geo, lms, k, &gp, site, NULL, &want), CL_OK);
  ck_assert_double_eq(o->radius_km, want.radius_km);
  ck_assert_double_eq(o->centre_lat, want.centre_lat);
  ck_assert_double_eq(o->centre_lon, want.centre_lon);
  free(lms);

  /* The engine's indices come back as the chip's: Madrid declared, Berlin
   * lying; both named among the last minima, by id and key. */
  free(b.mins);
  measure_many(&b, extra, MADRID);
  round_of(ROUND_END_NS, &b.in, o);
  ck_assert_uint_eq(o->a.site, CL_ATT_SITE_EXCLUDED);
  ck_assert_int_ge(o->site_landmark_id, LM_ID(0));
  ck_assert_int_le(o->site_landmark_id, LM_ID(N_LM - 1));
  ck_assert_mem_eq(o->a.site_landmark, cl_key_public(g_lm[o->site_landmark_id - LM_ID(0)]),
                   CL_PK_LEN);
  b.mins[extra + I_BERLIN].rtt_ns = (uint64_t)ceil(2.0 * 100000.0 / CL_SPEED_C * 1e9);
  round_of(ROUND_END_NS, &b.in, o);
  ck_assert_uint_eq(o->a.consistency, CL_ATT_INCONSISTENT);
  ck_assert_uint_eq(o->n_excluded, 1);
  ck_assert_int_eq(o->excluded_ids[0], LM_ID(I_BERLIN));
  ck_assert_str_eq(o->detail[CL_ALERT_INCONSISTENT],
                   "no point satisfies every bound; remove landmark(s) 104");
  free(b.mins);
  free(o);
}
END_TEST

static Suite *verify_suite(void) {
  Suite *s = suite_create("verify");
  TCase *al = tcase_create("alerts");
  tcase_add_checked_fixture(al, setup, teardown);
  tcase_set_timeout(al, 30);
  tcase_add_test(al, alerts_none_for_a_located_chip);
  tcase_add_test(al, alerts_chip_dark);
  tcase_add_test(al, alerts_chip_moved);
  tcase_add_test(al, alerts_site_excluded);
  tcase_add_test(al, alerts_outside_region);
  tcase_add_test(al, alerts_inconsistent);
  tcase_add_test(al, alerts_several_at_once);
  suite_add_tcase(s, al);
  TCase *at = tcase_create("attest");
  tcase_add_checked_fixture(at, setup, teardown);
  tcase_set_timeout(at, 60);
  tcase_add_test(at, attest_matches_round);
  tcase_add_test(at, attest_site_excluded);
  tcase_add_test(at, attest_inconsistent);
  tcase_add_test(at, attest_refuses_foreign_result);
  tcase_add_test(at, round_chip_moved);
  tcase_add_test(at, round_chip_dark);
  suite_add_tcase(s, at);
  TCase *bd = tcase_create("bounds");
  tcase_add_checked_fixture(bd, setup, teardown);
  tcase_set_timeout(bd, 120);
  tcase_add_test(bd, bound_moving_chip);
  tcase_add_test(bd, round_same_place_counts_once);
  tcase_add_test(bd, round_too_many_minima);
  suite_add_tcase(s, bd);
  return s;
}

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  SRunner *sr = srunner_create(verify_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
