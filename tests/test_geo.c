/*
 * Unit tests of the location engine (cl_geo_locate) on hand-made cases:
 * landmark counting (colocated entries count once), the bound of an RTT
 * (clock margin, chord), a European case with known answers, inconsistent
 * measurements and the landmarks named for them, caps across the
 * antimeridian and around both poles, bounds that cover the whole sphere,
 * argument checks, and region verdicts on simple polygons (holes and a
 * polygon split at the antimeridian included).
 *
 * Bounds are built from exact WGS84 geodesic distances plus a slack, so the
 * true chip position always obeys physics. The randomized comparison
 * against brute-force sampling lives in test_geo_props.c.
 */
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_region.h"

#include <check.h>
#include <geodesic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  const char *name;
  double lat, lon;
} city;

static const city BRUSSELS = {"Brussels", 50.8503, 4.3517};
static const city PARIS = {"Paris", 48.8566, 2.3522};
static const city LONDON = {"London", 51.5074, -0.1278};
static const city FRANKFURT = {"Frankfurt", 50.1109, 8.6821};
static const city BERLIN = {"Berlin", 52.5200, 13.4050};
static const city MILAN = {"Milan", 45.4642, 9.1900};
static const city MADRID = {"Madrid", 40.4168, -3.7038};
static const city SYDNEY = {"Sydney", -33.8688, 151.2093};
static const city SUVA = {"Suva", -18.1416, 178.4419};
static const city APIA = {"Apia", -13.8333, -171.7500};
static const city AUCKLAND = {"Auckland", -36.8485, 174.7633};
static const city NUKUALOFA = {"Nuku'alofa", -21.1394, -175.2049};
static const city PORT_VILA = {"Port Vila", -17.7333, 168.3167};

#define SLACK_EU_M 30000.0
/* Pinned from the measured value (76.8 km with the default parameters). */
#define EU_RADIUS_MAX_KM 90.0

static cl_geo_ctx *ctx;

static void setup(void) { ck_assert_int_eq(cl_geo_ctx_create(&ctx), CL_OK); }
static void teardown(void) { cl_geo_ctx_destroy(&ctx); }

static struct geod_geodesic geod;
static void geod_setup(void) { geod_init(&geod, CL_WGS84_A, CL_WGS84_F); }

/* The point at geodesic distance s (m) and azimuth az (deg) from (lat, lon). */
static void move(double lat, double lon, double az, double s, double *olat, double *olon) {
  geod_direct(&geod, lat, lon, az, s, olat, olon, NULL);
}

/* Landmarks at the cities, bound = exact distance to the chip + slack. */
static void make_lms(cl_geo_landmark *out, const city *const *cs, size_t n, double chip_lat,
                     double chip_lon, double slack_m) {
  for (size_t i = 0; i < n; i++) {
    out[i].lat = cs[i]->lat;
    out[i].lon = cs[i]->lon;
    out[i].bound_m = cl_geo_distance_m(chip_lat, chip_lon, cs[i]->lat, cs[i]->lon) + slack_m;
  }
}

static const city *const EU[] = {&PARIS, &LONDON, &FRANKFURT, &BERLIN, &MILAN};
#define N_EU 5
enum { I_PARIS, I_LONDON, I_FRANKFURT, I_BERLIN, I_MILAN };

static void eu_lms(cl_geo_landmark *lms) {
  make_lms(lms, EU, N_EU, BRUSSELS.lat, BRUSSELS.lon, SLACK_EU_M);
}

/* Is (lat, lon) in some returned cell (closed rectangles)? */
static int in_some_cell(const cl_geo_result *r, double lat, double lon) {
  for (size_t i = 0; i < r->n_cells; i++) {
    const cl_geo_cell *c = &r->cells[i];
    if (lat >= c->lat0 && lat <= c->lat1 && lon >= c->lon0 && lon <= c->lon1) return 1;
  }
  return 0;
}

/* Is (lat, lon) within every usable bound (exact geodesics)? */
static int feasible(const cl_geo_landmark *lms, size_t n, double lat, double lon) {
  for (size_t i = 0; i < n; i++) {
    if (!(lms[i].bound_m > 0) || !isfinite(lms[i].bound_m)) continue;
    if (cl_geo_distance_m(lat, lon, lms[i].lat, lms[i].lon) > lms[i].bound_m) return 0;
  }
  return 1;
}

static double from_centre_m(const cl_geo_result *r, double lat, double lon) {
  return cl_geo_distance_m(r->centre_lat, r->centre_lon, lat, lon);
}

/* A point known to be in F must be covered by the cells and by the cap. */
static void assert_covered(const cl_geo_result *r, double lat, double lon) {
  ck_assert_msg(in_some_cell(r, lat, lon), "(%.6f, %.6f) is in no cell (%zu cells)", lat, lon,
                r->n_cells);
  double d = from_centre_m(r, lat, lon);
  ck_assert_msg(d <= r->radius_km * 1000.0,
                "(%.6f, %.6f) is %.3f km from the centre, radius %.3f km", lat, lon, d / 1000.0,
                r->radius_km);
}

/* ---- landmark counting -------------------------------------------------- */

START_TEST(test_parse_position) {
  double lat = 1, lon = 2;
  ck_assert_int_eq(cl_geo_parse_position("48.8566,2.3522", &lat, &lon), CL_OK);
  ck_assert_double_eq(lat, 48.8566);
  ck_assert_double_eq(lon, 2.3522);
  ck_assert_int_eq(cl_geo_parse_position("-90,180", &lat, &lon), CL_OK);
  ck_assert(lat == -90 && lon == 180);
  static const char *bad[] = {"", "48.8", ",2", "48.8,", "48.8, 2", " 48.8,2", "48.8,2x",
                              "90.1,0", "0,-180.5", "nan,0", "0,inf", "1e999,0", "1,2,3"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    lat = lon = 7;
    ck_assert_msg(cl_geo_parse_position(bad[i], &lat, &lon) == CL_EMALFORMED, "%s", bad[i]);
    ck_assert(lat == 7 && lon == 7);
  }
}
END_TEST

START_TEST(test_insufficient) {
  cl_geo_landmark lms[N_EU];
  eu_lms(lms);
  cl_geo_result r;
  cl_geo_params p;
  cl_geo_params_default(&p);
  ck_assert_uint_eq(p.min_landmarks, 3);

  /* Two landmarks, default minimum of three. */
  ck_assert_int_eq(cl_geo_locate(ctx, lms, 2, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INSUFFICIENT);
  ck_assert_uint_eq(r.n_usable, 2);
  ck_assert_uint_eq(r.n_cells, 0);

  /* Five landmarks, a minimum of six. */
  p.min_landmarks = 6;
  double site[2] = {MADRID.lat, MADRID.lon};
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, &p, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INSUFFICIENT);
  ck_assert_uint_eq(r.n_usable, 5);
  ck_assert_int_eq(r.site, CL_SITE_UNKNOWN);
  ck_assert_int_eq(r.region, CL_REGION_UNKNOWN);
  p.min_landmarks = 5;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, &p, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);

  /* Bounds of 0, below 0, NaN and infinity do not count. */
  lms[I_PARIS].bound_m = 0;
  lms[I_LONDON].bound_m = -5000;
  lms[I_MILAN].bound_m = NAN;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INSUFFICIENT);
  ck_assert_uint_eq(r.n_usable, 2);
  lms[I_MILAN].bound_m = INFINITY;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INSUFFICIENT);
  ck_assert_uint_eq(r.n_usable, 2);

  /* Zero landmarks. */
  ck_assert_int_eq(cl_geo_locate(ctx, lms, 0, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INSUFFICIENT);
  ck_assert_uint_eq(r.n_usable, 0);
}
END_TEST

START_TEST(test_unusable_ignored) {
  /* Three usable landmarks among five: consistent, and the unusable ones
   * never exclude a site, however far away it is. */
  cl_geo_landmark lms[N_EU];
  eu_lms(lms);
  lms[I_PARIS].bound_m = 0;
  lms[I_MILAN].bound_m = NAN;
  double site[2] = {BRUSSELS.lat, BRUSSELS.lon};
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  ck_assert_uint_eq(r.n_usable, 3);
  ck_assert_int_eq(r.site, CL_SITE_CONSISTENT);
  assert_covered(&r, BRUSSELS.lat, BRUSSELS.lon);
  /* Madrid is excluded by one of the three usable landmarks only. */
  site[0] = MADRID.lat, site[1] = MADRID.lon;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.site, CL_SITE_EXCLUDED);
  ck_assert(r.site_landmark == I_LONDON || r.site_landmark == I_FRANKFURT ||
            r.site_landmark == I_BERLIN);
}
END_TEST

/* ---- the European case --------------------------------------------------- */

START_TEST(test_europe_consistent) {
  cl_geo_landmark lms[N_EU];
  eu_lms(lms);
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  ck_assert_uint_eq(r.n_usable, N_EU);
  ck_assert_uint_gt(r.n_cells, 0);
  ck_assert_int_eq(r.site, CL_SITE_UNKNOWN);
  ck_assert_int_eq(r.region, CL_REGION_UNKNOWN);
  assert_covered(&r, BRUSSELS.lat, BRUSSELS.lon);
  /* Every point within 30 km of Brussels obeys every bound (triangle
   * inequality), so F holds a 30 km disc: the radius cannot be smaller. */
  ck_assert_msg(r.radius_km > 30.0 && r.radius_km < EU_RADIUS_MAX_KM, "radius %.3f km",
                r.radius_km);
  for (int az = 0; az < 360; az += 15) {
    double lat, lon;
    move(BRUSSELS.lat, BRUSSELS.lon, az, 29990.0, &lat, &lon);
    assert_covered(&r, lat, lon);
  }
  /* The centre lies near Brussels. */
  ck_assert_double_lt(from_centre_m(&r, BRUSSELS.lat, BRUSSELS.lon), r.radius_km * 1000.0);
  printf("europe: radius %.2f km, centre (%.4f, %.4f), %zu cells\n", r.radius_km, r.centre_lat,
         r.centre_lon, r.n_cells);
}
END_TEST

START_TEST(test_europe_dense_cover) {
  /* Every feasible point of a 1 km grid around Brussels lies in some cell,
   * within the cap, and the cap is not much larger than F. */
  cl_geo_landmark lms[N_EU];
  eu_lms(lms);
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  size_t n_feasible = 0;
  double far_m = 0;
  for (double dlat = -1.5; dlat <= 1.5; dlat += 0.01) {
    for (double dlon = -2.4; dlon <= 2.4; dlon += 0.015) {
      double lat = BRUSSELS.lat + dlat, lon = BRUSSELS.lon + dlon;
      if (!feasible(lms, N_EU, lat, lon)) continue;
      n_feasible++;
      ck_assert_msg(!(fabs(dlat) > 1.49 || fabs(dlon) > 2.39), "grid too small for F");
      assert_covered(&r, lat, lon);
      double d = from_centre_m(&r, lat, lon);
      if (d > far_m) far_m = d;
    }
  }
  ck_assert_uint_gt(n_feasible, 1000);
  double ratio = r.radius_km * 1000.0 / far_m;
  printf("europe: %zu feasible grid points, farthest %.2f km from the centre, radius/true = %.3f\n",
         n_feasible, far_m / 1000.0, ratio);
  ck_assert_double_ge(ratio, 1.0);
  ck_assert_double_lt(ratio, 1.5);
}
END_TEST

START_TEST(test_europe_site) {
  cl_geo_landmark lms[N_EU];
  eu_lms(lms);
  cl_geo_result r;
  double site[2] = {BRUSSELS.lat, BRUSSELS.lon};
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  ck_assert_int_eq(r.site, CL_SITE_CONSISTENT);

  /* 25 km away in any direction: still within every bound. */
  for (int az = 0; az < 360; az += 45) {
    move(BRUSSELS.lat, BRUSSELS.lon, az, 25000.0, &site[0], &site[1]);
    ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, site, NULL, &r), CL_OK);
    ck_assert_int_eq(r.site, CL_SITE_CONSISTENT);
  }

  /* Madrid: excluded, named by the widest margin. */
  site[0] = MADRID.lat, site[1] = MADRID.lon;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.site, CL_SITE_EXCLUDED);
  size_t widest = 0;
  double widest_m = -INFINITY;
  for (size_t i = 0; i < N_EU; i++) {
    double m = cl_geo_distance_m(MADRID.lat, MADRID.lon, lms[i].lat, lms[i].lon) - lms[i].bound_m;
    if (m > widest_m) widest_m = m, widest = i;
  }
  ck_assert_double_gt(widest_m, 0);
  ck_assert_uint_eq(r.site_landmark, widest);
  ck_assert_double_eq_tol(r.site_margin_km * 1000.0, widest_m, 1.0);

  /* Just outside one bound only: excluded by exactly that landmark. Move
   * from Brussels away from Berlin until the Berlin bound is exceeded by
   * about 2 km (the other landmarks lie in other directions). */
  double az_from_berlin = 0;
  geod_inverse(&geod, BERLIN.lat, BERLIN.lon, BRUSSELS.lat, BRUSSELS.lon, NULL, NULL,
               &az_from_berlin);
  move(BRUSSELS.lat, BRUSSELS.lon, az_from_berlin, SLACK_EU_M + 2000.0, &site[0], &site[1]);
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.site, CL_SITE_EXCLUDED);
  ck_assert_uint_eq(r.site_landmark, I_BERLIN);
  double m = cl_geo_distance_m(site[0], site[1], BERLIN.lat, BERLIN.lon) - lms[I_BERLIN].bound_m;
  ck_assert_double_eq_tol(r.site_margin_km * 1000.0, m, 1.0);
  ck_assert_double_eq_tol(r.site_margin_km, 2.0, 0.01);
}
END_TEST

/* ---- inconsistent measurements ------------------------------------------- */

START_TEST(test_inconsistent_one) {
  cl_geo_landmark lms[N_EU];
  eu_lms(lms);
  lms[I_BERLIN].bound_m = 100000.0; /* true distance about 650 km */
  cl_geo_result r;
  double site[2] = {BRUSSELS.lat, BRUSSELS.lon};
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INCONSISTENT);
  ck_assert_uint_eq(r.n_excluded, 1);
  ck_assert_uint_eq(r.excluded[0], I_BERLIN);
  ck_assert_int_eq(r.excluded_minimal, 1);
  ck_assert_int_eq(r.site, CL_SITE_UNKNOWN);
  ck_assert_int_eq(r.region, CL_REGION_UNKNOWN);
  ck_assert_uint_eq(r.n_cells, 0);

  /* Same with the bad landmark first in the list. */
  cl_geo_landmark rot[N_EU];
  for (size_t i = 0; i < N_EU; i++) rot[i] = lms[(i + I_BERLIN) % N_EU];
  ck_assert_int_eq(cl_geo_locate(ctx, rot, N_EU, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INCONSISTENT);
  ck_assert_uint_eq(r.n_excluded, 1);
  ck_assert_uint_eq(r.excluded[0], 0);

  /* Removing the named landmark restores consistency. */
  lms[I_BERLIN].bound_m = 0;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
}
END_TEST

START_TEST(test_inconsistent_two) {
  cl_geo_landmark lms[N_EU];
  eu_lms(lms);
  lms[I_BERLIN].bound_m = 100000.0;
  lms[I_MILAN].bound_m = 100000.0;
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INCONSISTENT);
  ck_assert_uint_eq(r.n_excluded, 2);
  ck_assert_int_eq(r.excluded_minimal, 1);
  int seen_b = 0, seen_m = 0;
  for (size_t i = 0; i < r.n_excluded; i++) {
    seen_b |= r.excluded[i] == I_BERLIN;
    seen_m |= r.excluded[i] == I_MILAN;
  }
  ck_assert(seen_b && seen_m);

  /* A bound 30 km below the true distance is still consistent: the point
   * 30 km from Brussels towards Berlin obeys every bound (the others have
   * 30 km of slack). The engine must not call that inconsistent. */
  eu_lms(lms);
  lms[I_BERLIN].bound_m -= 2 * SLACK_EU_M;
  double az = 0, lat, lon;
  geod_inverse(&geod, BRUSSELS.lat, BRUSSELS.lon, BERLIN.lat, BERLIN.lon, NULL, &az, NULL);
  move(BRUSSELS.lat, BRUSSELS.lon, az, SLACK_EU_M + 10.0, &lat, &lon);
  ck_assert(feasible(lms, N_EU, lat, lon));
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  assert_covered(&r, lat, lon);
}
END_TEST

START_TEST(test_inconsistent_misplaced_many) {
  /* 197 landmarks 100-200 km around a chip (bound + 200 km) and three
   * "misplaced" ones whose caps (450 km, centred 535 km from the chip at
   * 120 degrees from each other) each meet every other cap but are pairwise
   * disjoint: two of the three must go, and dropping them restores
   * consistency. The three have the largest caps. */
  enum { N = 200 };
  cl_geo_landmark *lms = calloc(N, sizeof *lms);
  ck_assert_ptr_nonnull(lms);
  const double clat = 10, clon = 20;
  for (size_t i = 0; i + 3 < N; i++) {
    double lat, lon;
    move(clat, clon, (double)i * 360.0 / (N - 3), 100000 + 10000.0 * (double)(i % 11), &lat,
         &lon);
    lms[i] = (cl_geo_landmark){lat, lon, cl_geo_distance_m(clat, clon, lat, lon) + 200000};
  }
  for (int k = 0; k < 3; k++) {
    double lat, lon;
    move(clat, clon, 120.0 * k, 535000, &lat, &lon);
    lms[N - 3 + k] = (cl_geo_landmark){lat, lon, 450000};
  }
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INCONSISTENT);
  ck_assert_uint_eq(r.n_excluded, 2);
  ck_assert_int_eq(r.excluded_minimal, 1);
  for (size_t i = 0; i < r.n_excluded; i++) {
    ck_assert_uint_ge(r.excluded[i], N - 3);
    lms[r.excluded[i]].bound_m = NAN;
  }
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  ck_assert_uint_eq(r.n_usable, N - 2);
  free(lms);
}
END_TEST

/* ---- antimeridian and poles ---------------------------------------------- */

static const city *const PACIFIC[] = {&SUVA, &APIA, &AUCKLAND, &NUKUALOFA};
#define N_PACIFIC 4

START_TEST(test_antimeridian) {
  const double chips[][2] = {
      {-17.0, 179.95}, {-16.5, -179.9}, {-17.2, 180.0}, {-17.2, -180.0}, {-20.0, 179.999999}};
  for (size_t c = 0; c < sizeof chips / sizeof chips[0]; c++) {
    double lat = chips[c][0], lon = chips[c][1];
    cl_geo_landmark lms[N_PACIFIC];
    make_lms(lms, PACIFIC, N_PACIFIC, lat, lon, 50000.0);
    cl_geo_result r;
    ck_assert_int_eq(cl_geo_locate(ctx, lms, N_PACIFIC, NULL, chips[c], NULL, &r), CL_OK);
    ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
    ck_assert_int_eq(r.site, CL_SITE_CONSISTENT);
    assert_covered(&r, lat, lon);
    /* The same point named with the other longitude. */
    if (fabs(lon) == 180.0) assert_covered(&r, lat, -lon);
    ck_assert_msg(r.radius_km > 50.0 && r.radius_km < 300.0, "radius %.2f", r.radius_km);
    /* F straddles the antimeridian: cells on both sides of it. */
    int east = 0, west = 0;
    for (size_t i = 0; i < r.n_cells; i++) {
      east |= r.cells[i].lon1 == 180.0;
      west |= r.cells[i].lon0 == -180.0;
    }
    ck_assert(east && west);
    /* Points 49.9 km from the chip on both sides of the line obey every bound. */
    for (int az = 0; az < 360; az += 30) {
      double plat, plon;
      move(lat, lon, az, 49900.0, &plat, &plon);
      assert_covered(&r, plat, plon);
    }
  }
}
END_TEST

START_TEST(test_north_pole) {
  const double chips[][2] = {{89.9, 30.0}, {89.9, -170.0}, {90.0, 0.0}};
  for (size_t c = 0; c < sizeof chips / sizeof chips[0]; c++) {
    double lat = chips[c][0], lon = chips[c][1];
    city ring[5];
    const city *cs[5];
    for (int i = 0; i < 5; i++) {
      ring[i] = (city){"lat80", 80.0, -180.0 + 72.0 * i + 17.0};
      cs[i] = &ring[i];
    }
    cl_geo_landmark lms[5];
    make_lms(lms, cs, 5, lat, lon, 20000.0);
    cl_geo_result r;
    ck_assert_int_eq(cl_geo_locate(ctx, lms, 5, NULL, chips[c], NULL, &r), CL_OK);
    ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
    ck_assert_int_eq(r.site, CL_SITE_CONSISTENT);
    assert_covered(&r, lat, lon);
    ck_assert_msg(r.radius_km > 20.0 && r.radius_km < 150.0, "radius %.2f", r.radius_km);
    /* The pole is feasible (within 11.2 km of the chip): it must be covered
     * whatever longitude names it. */
    ck_assert(feasible(lms, 5, 90.0, 0.0));
    for (double plon = -180; plon <= 180; plon += 7.5) assert_covered(&r, 90.0, plon);
    for (int az = 0; az < 360; az += 20) {
      double plat, plon;
      move(lat, lon, az, 19900.0, &plat, &plon);
      assert_covered(&r, plat, plon);
    }
  }
}
END_TEST

START_TEST(test_south_pole) {
  city ring[3] = {{"a", -80.0, 0.0}, {"b", -80.0, 120.0}, {"c", -80.0, -120.0}};
  const city *cs[3] = {&ring[0], &ring[1], &ring[2]};
  cl_geo_landmark lms[3];
  make_lms(lms, cs, 3, -90.0, 0.0, 20000.0);
  double site[2] = {-90.0, 123.0}; /* the same point named with another longitude */
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, 3, NULL, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  ck_assert_int_eq(r.site, CL_SITE_CONSISTENT);
  for (double plon = -180; plon <= 180; plon += 5) assert_covered(&r, -90.0, plon);
  for (int az = 0; az < 360; az += 10) {
    double plat, plon;
    move(-90.0, 0.0, az, 19900.0, &plat, &plon);
    assert_covered(&r, plat, plon);
  }
  ck_assert_msg(r.radius_km > 20.0 && r.radius_km < 100.0, "radius %.2f", r.radius_km);
  ck_assert_double_lt(r.centre_lat, -89.0);
}
END_TEST

START_TEST(test_pole_colocated) {
  /* A landmark at the North Pole (named with longitude 45) and a chip on
   * it: a bound of 300 m pins F to the pole. */
  cl_geo_landmark lms[6];
  for (int i = 0; i < 5; i++) {
    double lon = -180.0 + 72.0 * i + 17.0;
    lms[i] = (cl_geo_landmark){80.0, lon, cl_geo_distance_m(90, 0, 80, lon) + 20000.0};
  }
  lms[5] = (cl_geo_landmark){90.0, 45.0, 300.0};
  double site[2] = {89.999, 10.0}; /* 112 m from the pole */
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, 6, NULL, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  ck_assert_int_eq(r.site, CL_SITE_CONSISTENT);
  for (double plon = -180; plon <= 180; plon += 2.5) assert_covered(&r, 90.0, plon);
  assert_covered(&r, site[0], site[1]);
  ck_assert_msg(r.radius_km > 0.29 && r.radius_km < 5.0, "radius %.3f km", r.radius_km);
  printf("pole: radius %.3f km, %zu cells\n", r.radius_km, r.n_cells);
  /* 1.1 km from the pole: excluded by the pole landmark. */
  site[0] = 89.99, site[1] = 0.0;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, 6, NULL, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.site, CL_SITE_EXCLUDED);
  ck_assert_uint_eq(r.site_landmark, 5);
  double m = cl_geo_distance_m(89.99, 0.0, 90.0, 45.0) - 300.0;
  ck_assert_double_eq_tol(r.site_margin_km * 1000.0, m, 1.0);
}
END_TEST

/* ---- bounds that cover the sphere ---------------------------------------- */

START_TEST(test_whole_sphere_bound) {
  cl_geo_landmark lms[N_EU + 1];
  eu_lms(lms);
  cl_geo_result a, b;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, NULL, &a), CL_OK);
  double ra = a.radius_km, la = a.centre_lat, oa = a.centre_lon;
  size_t na = a.n_cells;
  /* A landmark in Sydney whose bound exceeds half the circumference. */
  lms[N_EU] = (cl_geo_landmark){SYDNEY.lat, SYDNEY.lon, 25.0e6};
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU + 1, NULL, NULL, NULL, &b), CL_OK);
  ck_assert_int_eq(b.consistency, CL_GEO_CONSISTENT);
  ck_assert_uint_eq(b.n_usable, N_EU + 1);
  ck_assert_double_eq_tol(b.radius_km, ra, 1e-9);
  ck_assert_double_eq_tol(b.centre_lat, la, 1e-9);
  ck_assert_double_eq_tol(b.centre_lon, oa, 1e-9);
  ck_assert_uint_eq(b.n_cells, na);

  /* Only such landmarks: every point is feasible. */
  cl_geo_landmark huge[3] = {{SYDNEY.lat, SYDNEY.lon, 25.0e6},
                             {BERLIN.lat, BERLIN.lon, 21.0e6},
                             {APIA.lat, APIA.lon, 1.0e9}};
  double site[2] = {-SYDNEY.lat, SYDNEY.lon - 180.0}; /* Sydney's antipode */
  ck_assert_int_eq(cl_geo_locate(ctx, huge, 3, NULL, site, NULL, &b), CL_OK);
  ck_assert_int_eq(b.consistency, CL_GEO_CONSISTENT);
  ck_assert_int_eq(b.site, CL_SITE_CONSISTENT);
  /* The cap must reach the point farthest from its centre. */
  ck_assert_double_ge(b.radius_km, 20003.9);
  for (double lat = -90; lat <= 90; lat += 10)
    for (double lon = -180; lon <= 180; lon += 10) assert_covered(&b, lat, lon);
}
END_TEST

/* ---- from a round trip to a bound ----------------------------------------- */

/* Earth-centred coordinates of a point on the ellipsoid (height 0). */
static void ecef(double lat, double lon, double xyz[3]) {
  double e2 = CL_WGS84_F * (2 - CL_WGS84_F), p = lat * M_PI / 180, l = lon * M_PI / 180;
  double n = CL_WGS84_A / sqrt(1 - e2 * sin(p) * sin(p));
  xyz[0] = n * cos(p) * cos(l);
  xyz[1] = n * cos(p) * sin(l);
  xyz[2] = n * (1 - e2) * sin(p);
}

/* The straight line through the Earth between two points of the ellipsoid. */
static double chord_m(double lat1, double lon1, double lat2, double lon2) {
  double a[3], b[3];
  ecef(lat1, lon1, a);
  ecef(lat2, lon2, b);
  return sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
              (a[2] - b[2]) * (a[2] - b[2]));
}

START_TEST(test_bound_of_rtt) {
  const double c = 299792458.0;
  double b = CL_WGS84_A * (1 - CL_WGS84_F), rmin = b * b / CL_WGS84_A;
  double whole = M_PI * CL_WGS84_A * CL_WGS84_A / b; /* no geodesic is longer */

  /* The path: v * rtt / 2, stretched by the clock-rate margin. */
  ck_assert_double_eq_tol(cl_geo_path_m(0.010, c), c * 0.010 / 2 * (1 + 200e-6), 1e-6);
  ck_assert_double_eq_tol(cl_geo_path_m(0.010, c) - c * 0.010 / 2, 299.79, 0.01);
  ck_assert_double_eq(cl_geo_path_m(0, c), 0);

  /* The cap: 2R asin(d / 2R), R = b^2/a. The growth the chord costs. */
  const double d_km[] = {100, 1000, 2000, 5000, 10000};
  const double grow_km[] = {0.0010, 1.041, 8.399, 139.80, 1524.46};
  for (size_t i = 0; i < sizeof d_km / sizeof d_km[0]; i++) {
    double d = d_km[i] * 1000.0, r = cl_geo_cap_of_path_m(d);
    ck_assert_double_eq_tol(r, 2 * rmin * asin(d / (2 * rmin)), 1e-6);
    ck_assert_double_eq_tol((r - d) / 1000.0, grow_km[i], 0.01);
    printf("bound: a path of %.0f km allows %.3f km of geodesic (+%.3f km)\n", d_km[i],
           r / 1000.0, (r - d) / 1000.0);
  }
  /* cl_geo_bound_m is the two steps; never below the old v * rtt / 2. */
  for (double rtt = 1e-5; rtt < 0.2; rtt *= 1.7) {
    ck_assert_double_eq(cl_geo_bound_m(rtt, c), cl_geo_cap_of_path_m(cl_geo_path_m(rtt, c)));
    ck_assert_double_ge(cl_geo_bound_m(rtt, c), c * rtt / 2);
  }
  /* Non-decreasing, never below the path, the whole ellipsoid at the end. */
  double prev = 0;
  for (double d = 1.0; d < 2.0e7; d *= 1.01) {
    double r = cl_geo_cap_of_path_m(d);
    ck_assert_double_ge(r, d);
    ck_assert_double_ge(r, prev);
    prev = r;
  }
  ck_assert_double_lt(cl_geo_cap_of_path_m(12669.0e3), whole);
  ck_assert_double_ge(cl_geo_cap_of_path_m(12670.0e3), whole);
  ck_assert_double_ge(cl_geo_cap_of_path_m(2 * CL_WGS84_A), whole);
  ck_assert_double_eq(cl_geo_cap_of_path_m(3.0e7), 3.0e7);
  /* Unusable inputs stay unusable. */
  ck_assert_double_eq(cl_geo_cap_of_path_m(0), 0);
  ck_assert_double_eq(cl_geo_cap_of_path_m(-5), -5);
  ck_assert(isnan(cl_geo_cap_of_path_m(NAN)));
  ck_assert(isinf(cl_geo_cap_of_path_m(INFINITY)));

  /* The point: a chip in Brussels whose signals travel the straight line at
   * c. With the chord itself as the geodesic bound (the old conversion), the
   * honest Sydney landmark is called a liar; with the cap, nothing is. */
  const city *far[] = {&SYDNEY, &MADRID, &BERLIN};
  cl_geo_landmark lms[3];
  for (int i = 0; i < 3; i++) {
    double d = chord_m(BRUSSELS.lat, BRUSSELS.lon, far[i]->lat, far[i]->lon);
    lms[i] = (cl_geo_landmark){far[i]->lat, far[i]->lon, cl_geo_cap_of_path_m(d)};
    ck_assert_double_ge(lms[i].bound_m,
                        cl_geo_distance_m(BRUSSELS.lat, BRUSSELS.lon, far[i]->lat, far[i]->lon));
  }
  double site[2] = {BRUSSELS.lat, BRUSSELS.lon};
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, 3, NULL, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  ck_assert_int_eq(r.site, CL_SITE_CONSISTENT);
  assert_covered(&r, BRUSSELS.lat, BRUSSELS.lon);
  lms[0].bound_m = chord_m(BRUSSELS.lat, BRUSSELS.lon, SYDNEY.lat, SYDNEY.lon);
  ck_assert_int_eq(cl_geo_locate(ctx, lms, 3, NULL, site, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INCONSISTENT);
  ck_assert_uint_eq(r.n_excluded, 1);
  ck_assert_uint_eq(r.excluded[0], 0);
  printf("bound: Brussels-Sydney chord %.0f km, geodesic %.0f km, cap %.0f km\n",
         lms[0].bound_m / 1000.0,
         cl_geo_distance_m(BRUSSELS.lat, BRUSSELS.lon, SYDNEY.lat, SYDNEY.lon) / 1000.0,
         cl_geo_cap_of_path_m(lms[0].bound_m) / 1000.0);
}
END_TEST

/* ---- places: colocated landmarks count once -------------------------------- */

START_TEST(test_same_place_counts_once) {
  /* Paris, a second entry 500 m away (the same landmark after a key
   * rotation), and London: two places, not three. */
  cl_geo_landmark lms[N_EU + 3];
  eu_lms(lms);
  double lat, lon;
  move(PARIS.lat, PARIS.lon, 30.0, 500.0, &lat, &lon);
  cl_geo_landmark two[3] = {lms[I_PARIS], {lat, lon, lms[I_PARIS].bound_m}, lms[I_LONDON]};
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, two, 3, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INSUFFICIENT);
  ck_assert_uint_eq(r.n_usable, 2);
  ck_assert_uint_eq(r.n_colocated, 1);
  /* The same three at exactly one position, and in any order. */
  two[1].lat = PARIS.lat, two[1].lon = PARIS.lon;
  cl_geo_landmark rev[3] = {two[2], two[1], two[0]};
  ck_assert_int_eq(cl_geo_locate(ctx, rev, 3, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INSUFFICIENT);
  ck_assert_uint_eq(r.n_usable, 2);

  /* The threshold: 990 m apart is one place, 1 100 m is two. */
  cl_geo_landmark pair[2] = {lms[I_PARIS], lms[I_PARIS]};
  cl_geo_params p;
  cl_geo_params_default(&p);
  p.min_landmarks = 1;
  move(PARIS.lat, PARIS.lon, 100.0, 990.0, &pair[1].lat, &pair[1].lon);
  ck_assert_int_eq(cl_geo_locate(ctx, pair, 2, &p, NULL, NULL, &r), CL_OK);
  ck_assert_uint_eq(r.n_usable, 1);
  move(PARIS.lat, PARIS.lon, 100.0, 1100.0, &pair[1].lat, &pair[1].lon);
  ck_assert_int_eq(cl_geo_locate(ctx, pair, 2, &p, NULL, NULL, &r), CL_OK);
  ck_assert_uint_eq(r.n_usable, 2);
  ck_assert_uint_eq(r.n_colocated, 0);

  /* Chains: entries 800 m apart in a row are one place, whatever the order
   * (a count that depended on it could be steered by whoever orders rows). */
  cl_geo_landmark row[4];
  for (int i = 0; i < 4; i++) {
    row[i] = lms[I_PARIS];
    move(PARIS.lat, PARIS.lon, 45.0, 800.0 * i, &row[i].lat, &row[i].lon);
  }
  static const int perms[][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {2, 0, 3, 1}};
  for (size_t k = 0; k < sizeof perms / sizeof perms[0]; k++) {
    cl_geo_landmark q[4];
    for (int i = 0; i < 4; i++) q[i] = row[perms[k][i]];
    ck_assert_int_eq(cl_geo_locate(ctx, q, 4, &p, NULL, NULL, &r), CL_OK);
    ck_assert_uint_eq(r.n_usable, 1);
    ck_assert_uint_eq(r.n_colocated, 3);
  }

  /* Unusable entries are no places; a bound over the whole sphere is one. */
  eu_lms(lms);
  lms[N_EU] = (cl_geo_landmark){PARIS.lat, PARIS.lon, NAN};
  lms[N_EU + 1] = (cl_geo_landmark){SYDNEY.lat, SYDNEY.lon, 25.0e6};
  lms[N_EU + 2] = (cl_geo_landmark){SYDNEY.lat, SYDNEY.lon, 26.0e6};
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU + 3, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  ck_assert_uint_eq(r.n_usable, N_EU + 1);
  ck_assert_uint_eq(r.n_colocated, 1);
  /* Every entry still bounds F: a duplicate with a tighter bound cuts it. */
  double ra = r.radius_km;
  eu_lms(lms);
  lms[N_EU] = lms[I_FRANKFURT];
  lms[N_EU].bound_m -= 20000.0;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU + 1, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  ck_assert_uint_eq(r.n_usable, N_EU);
  ck_assert_double_lt(r.radius_km, ra);
}
END_TEST

/* ---- arguments ----------------------------------------------------------- */

START_TEST(test_einval) {
  cl_geo_landmark lms[N_EU];
  cl_geo_result r;
  const double bad[][2] = {{90.0001, 0}, {-91, 0}, {0, 180.0001}, {0, -181},
                           {NAN, 0},     {0, NAN}, {INFINITY, 0}, {0, -INFINITY}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    eu_lms(lms);
    lms[2].lat = bad[i][0];
    lms[2].lon = bad[i][1];
    ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, NULL, &r), CL_EINVAL);
    /* Bad coordinates are refused even when the bound is unusable. */
    lms[2].bound_m = NAN;
    ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, NULL, &r), CL_EINVAL);
    eu_lms(lms);
    ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, bad[i], NULL, &r), CL_EINVAL);
  }
  /* The extremes of the ranges are fine. */
  eu_lms(lms);
  const double edge[][2] = {{90, 180}, {-90, -180}};
  for (size_t i = 0; i < 2; i++)
    ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, edge[i], NULL, &r), CL_OK);
  /* Too many landmarks. */
  size_t big = CL_GEO_MAX_LANDMARKS + 1;
  cl_geo_landmark *many = calloc(big, sizeof *many);
  ck_assert_ptr_nonnull(many);
  for (size_t i = 0; i < big; i++) many[i] = lms[i % N_EU];
  ck_assert_int_eq(cl_geo_locate(ctx, many, big, NULL, NULL, NULL, &r), CL_EINVAL);
  ck_assert_int_eq(cl_geo_locate(ctx, many, big - 1, NULL, NULL, NULL, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  free(many);
}
END_TEST

/* ---- regions ------------------------------------------------------------- */

/* A region made of lon/lat rectangles: rects[i] = {lon0, lat0, lon1, lat1};
 * poly[i] is the polygon number (rings of the same polygon after the first
 * are holes). */
static cl_region *rect_region(const char *code, const double (*rects)[4], const int *poly,
                              size_t n) {
  cl_region *reg = NULL;
  ck_assert_int_eq(cl_region_create(&reg, code), CL_OK);
  for (size_t i = 0; i < n; i++) {
    const double *q = rects[i];
    double ring[10] = {q[0], q[1], q[2], q[1], q[2], q[3], q[0], q[3], q[0], q[1]};
    ck_assert_int_eq(cl_region_add_ring(reg, poly[i], ring, 5), CL_OK);
  }
  ck_assert_int_eq(cl_region_finish(reg), CL_OK);
  return reg;
}

static cl_geo_region_verdict eu_verdict(const cl_region *const *members, size_t n) {
  cl_geo_landmark lms[N_EU];
  eu_lms(lms);
  cl_region_union u = {members, n};
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, &u, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  assert_covered(&r, BRUSSELS.lat, BRUSSELS.lon);
  return r.region;
}

START_TEST(test_region_simple) {
  static const double big[][4] = {{-10, 40, 20, 60}};
  static const double far[][4] = {{100, 0, 120, 20}};
  static const double half[][4] = {{4.3517, 40, 30, 60}}; /* edge through Brussels */
  static const double near[][4] = {{5.5, 40, 30, 60}};    /* about 80 km east of Brussels */
  static const int p0[] = {0};
  cl_region *rb = rect_region("BIG", big, p0, 1);
  cl_region *rf = rect_region("FAR", far, p0, 1);
  cl_region *rh = rect_region("HALF", half, p0, 1);
  cl_region *rn = rect_region("NEAR", near, p0, 1);

  const cl_region *m[2];
  m[0] = rb;
  ck_assert_int_eq(eu_verdict(m, 1), CL_REGION_INSIDE);
  m[0] = rf;
  ck_assert_int_eq(eu_verdict(m, 1), CL_REGION_OUTSIDE);
  m[0] = rh;
  ck_assert_int_eq(eu_verdict(m, 1), CL_REGION_UNDETERMINED);
  /* Brussels is outside NEAR; F holds a 30 km disc around it, so OUTSIDE
   * or UNDETERMINED are the only sound answers, never INSIDE. */
  m[0] = rn;
  ck_assert_int_ne(eu_verdict(m, 1), CL_REGION_INSIDE);
  /* Unions: INSIDE if one member holds F. */
  m[0] = rf, m[1] = rb;
  ck_assert_int_eq(eu_verdict(m, 2), CL_REGION_INSIDE);
  m[0] = rf, m[1] = rh;
  ck_assert_int_eq(eu_verdict(m, 2), CL_REGION_UNDETERMINED);
  /* An empty union gives no verdict. */
  ck_assert_int_eq(eu_verdict(m, 0), CL_REGION_UNKNOWN);

  /* No verdict when the measurements are inconsistent. */
  cl_geo_landmark lms[N_EU];
  eu_lms(lms);
  lms[I_BERLIN].bound_m = 100000.0;
  cl_region_union u = {m, 1};
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_EU, NULL, NULL, &u, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_INCONSISTENT);
  ck_assert_int_eq(r.region, CL_REGION_UNKNOWN);

  cl_region_destroy(&rb);
  cl_region_destroy(&rf);
  cl_region_destroy(&rh);
  cl_region_destroy(&rn);
}
END_TEST

START_TEST(test_region_hole) {
  static const int p00[] = {0, 0};
  /* F sits in the hole. */
  static const double in_hole[][4] = {{-30, 30, 40, 70}, {-5, 44, 15, 56}};
  /* The hole is far from F. */
  static const double hole_far[][4] = {{-30, 30, 40, 70}, {20, 60, 30, 65}};
  /* The hole's edge runs through Brussels. */
  static const double hole_edge[][4] = {{-30, 30, 40, 70}, {4.3517, 44, 15, 56}};
  cl_region *a = rect_region("A", in_hole, p00, 2);
  cl_region *b = rect_region("B", hole_far, p00, 2);
  cl_region *c = rect_region("C", hole_edge, p00, 2);
  const cl_region *m[1];
  m[0] = a;
  ck_assert_int_eq(eu_verdict(m, 1), CL_REGION_OUTSIDE);
  m[0] = b;
  ck_assert_int_eq(eu_verdict(m, 1), CL_REGION_INSIDE);
  m[0] = c;
  ck_assert_int_eq(eu_verdict(m, 1), CL_REGION_UNDETERMINED);
  /* An island in the hole (a second polygon) holding F: INSIDE. */
  static const double island[][4] = {{-30, 30, 40, 70}, {-5, 44, 15, 56}, {-2, 46, 12, 54}};
  static const int p001[] = {0, 0, 1};
  cl_region *d = rect_region("D", island, p001, 3);
  m[0] = d;
  ck_assert_int_eq(eu_verdict(m, 1), CL_REGION_INSIDE);
  cl_region_destroy(&a);
  cl_region_destroy(&b);
  cl_region_destroy(&c);
  cl_region_destroy(&d);
}
END_TEST

static cl_geo_region_verdict pacific_verdict(const cl_region *const *members, size_t n,
                                             double lat, double lon) {
  cl_geo_landmark lms[N_PACIFIC];
  make_lms(lms, PACIFIC, N_PACIFIC, lat, lon, 50000.0);
  cl_region_union u = {members, n};
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, N_PACIFIC, NULL, NULL, &u, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  assert_covered(&r, lat, lon);
  return r.region;
}

/* Fiji's waters, split at the antimeridian as RFC 7946 asks. */
static const double FIJI_SPLIT[][4] = {{170, -25, 180, -10}, {-180, -25, -170, -10}};
static const int P01[] = {0, 1};

START_TEST(test_region_antimeridian) {
  cl_region *east = rect_region("E", &FIJI_SPLIT[0], P01, 1);
  cl_region *west = rect_region("W", &FIJI_SPLIT[1], P01, 1);
  static const double far[][4] = {{-170, 10, -150, 30}};
  cl_region *rf = rect_region("FAR", far, P01, 1);
  const cl_region *m[2];
  const double lat = -17.0, lon = 179.95;
  /* F straddles the line: either half alone is not enough. */
  m[0] = east;
  ck_assert_int_eq(pacific_verdict(m, 1, lat, lon), CL_REGION_UNDETERMINED);
  m[0] = west;
  ck_assert_int_eq(pacific_verdict(m, 1, lat, lon), CL_REGION_UNDETERMINED);
  m[0] = rf;
  ck_assert_int_eq(pacific_verdict(m, 1, lat, lon), CL_REGION_OUTSIDE);
  /* Never OUTSIDE for the two halves together. */
  m[0] = east, m[1] = west;
  ck_assert_int_ne(pacific_verdict(m, 2, lat, lon), CL_REGION_OUTSIDE);
  /* Far from the line (a chip at Nadi, with Port Vila as a fifth landmark:
   * F spans about 176.9..177.9 E), one half is enough. */
  const city *const west_fiji[] = {&SUVA, &APIA, &AUCKLAND, &NUKUALOFA, &PORT_VILA};
  cl_geo_landmark lms[5];
  make_lms(lms, west_fiji, 5, -17.8, 177.4, 50000.0);
  cl_geo_result r;
  const cl_region *w[2] = {east, west};
  const cl_geo_region_verdict want[3] = {CL_REGION_INSIDE, CL_REGION_OUTSIDE, CL_REGION_INSIDE};
  for (int c = 0; c < 3; c++) {
    cl_region_union u = {c == 1 ? &w[1] : &w[0], c == 2 ? 2 : 1};
    ck_assert_int_eq(cl_geo_locate(ctx, lms, 5, NULL, NULL, &u, &r), CL_OK);
    ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
    assert_covered(&r, -17.8, 177.4);
    ck_assert_int_eq(r.region, want[c]);
  }
  cl_region_destroy(&east);
  cl_region_destroy(&west);
  cl_region_destroy(&rf);
}
END_TEST

START_TEST(test_region_antimeridian_seam) {
  /* F lies well inside Fiji's waters but straddles the line: F is a subset
   * of the region, so the verdict is INSIDE, whether the two halves are two
   * polygons of one region or two regions of a union. The seam at
   * longitude +-180 is not a border on the sphere. */
  cl_region *both = rect_region("FJI", FIJI_SPLIT, P01, 2);
  cl_region *east = rect_region("E", &FIJI_SPLIT[0], P01, 1);
  cl_region *west = rect_region("W", &FIJI_SPLIT[1], P01, 1);
  const cl_region *m[2] = {both, NULL};
  ck_assert_int_eq(pacific_verdict(m, 1, -17.0, 179.95), CL_REGION_INSIDE);
  ck_assert_int_eq(pacific_verdict(m, 1, -16.5, -179.9), CL_REGION_INSIDE);
  m[0] = east, m[1] = west;
  ck_assert_int_eq(pacific_verdict(m, 2, -17.0, 179.95), CL_REGION_INSIDE);
  cl_region_destroy(&both);
  cl_region_destroy(&east);
  cl_region_destroy(&west);
}
END_TEST

/* Five landmarks at latitude 80 and bounds for a chip at (89.9, 30). */
static void polar_lms(cl_geo_landmark *lms) {
  city ring[5];
  const city *cs[5];
  for (int i = 0; i < 5; i++) {
    ring[i] = (city){"lat80", 80.0, -180.0 + 72.0 * i + 17.0};
    cs[i] = &ring[i];
  }
  make_lms(lms, cs, 5, 89.9, 30.0, 20000.0);
}

static cl_geo_region_verdict polar_verdict(const cl_region *reg) {
  cl_geo_landmark lms[5];
  polar_lms(lms);
  const cl_region *m[1] = {reg};
  cl_region_union u = {m, 1};
  cl_geo_result r;
  ck_assert_int_eq(cl_geo_locate(ctx, lms, 5, NULL, NULL, &u, &r), CL_OK);
  ck_assert_int_eq(r.consistency, CL_GEO_CONSISTENT);
  return r.region;
}

START_TEST(test_region_polar) {
  /* F holds the North Pole: half a polar cap leaves it undetermined, a
   * band that stops short of F excludes it, a polar cap never excludes it. */
  static const double cap[][4] = {{-180, 85, 180, 90}};
  static const double half[][4] = {{0, 85, 180, 90}};
  static const double band[][4] = {{-180, 70, 180, 85}};
  static const int p0[] = {0};
  cl_region *rc = rect_region("CAP", cap, p0, 1);
  cl_region *rh = rect_region("HALF", half, p0, 1);
  cl_region *rb = rect_region("BAND", band, p0, 1);
  ck_assert_int_ne(polar_verdict(rc), CL_REGION_OUTSIDE);
  ck_assert_int_eq(polar_verdict(rh), CL_REGION_UNDETERMINED);
  ck_assert_int_eq(polar_verdict(rb), CL_REGION_OUTSIDE);
  cl_region_destroy(&rc);
  cl_region_destroy(&rh);
  cl_region_destroy(&rb);
}
END_TEST

START_TEST(test_region_polar_seam) {
  /* F (radius under 50 km around (89.9, 30)) lies inside the polar cap
   * [-180, 180] x [85, 90]: INSIDE. The edge along latitude 90 and the
   * edges along +-180 are seams of the longitude/latitude plane, not
   * borders. */
  static const double cap[][4] = {{-180, 85, 180, 90}};
  static const int p0[] = {0};
  cl_region *rc = rect_region("CAP", cap, p0, 1);
  ck_assert_int_eq(polar_verdict(rc), CL_REGION_INSIDE);
  cl_region_destroy(&rc);
}
END_TEST

static Suite *geo_suite(void) {
  Suite *s = suite_create("geo");
  TCase *tc = tcase_create("locate");
  tcase_add_unchecked_fixture(tc, geod_setup, NULL);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_parse_position);
  tcase_add_test(tc, test_insufficient);
  tcase_add_test(tc, test_unusable_ignored);
  tcase_add_test(tc, test_europe_consistent);
  tcase_add_test(tc, test_europe_dense_cover);
  tcase_add_test(tc, test_europe_site);
  tcase_add_test(tc, test_inconsistent_one);
  tcase_add_test(tc, test_inconsistent_two);
  tcase_add_test(tc, test_inconsistent_misplaced_many);
  tcase_add_test(tc, test_antimeridian);
  tcase_add_test(tc, test_north_pole);
  tcase_add_test(tc, test_south_pole);
  tcase_add_test(tc, test_pole_colocated);
  tcase_add_test(tc, test_whole_sphere_bound);
  tcase_add_test(tc, test_bound_of_rtt);
  tcase_add_test(tc, test_same_place_counts_once);
  tcase_add_test(tc, test_einval);
  suite_add_tcase(s, tc);

  TCase *tr = tcase_create("region");
  tcase_add_unchecked_fixture(tr, geod_setup, NULL);
  tcase_add_checked_fixture(tr, setup, teardown);
  tcase_set_timeout(tr, 120);
  tcase_add_test(tr, test_region_simple);
  tcase_add_test(tr, test_region_hole);
  tcase_add_test(tr, test_region_antimeridian);
  tcase_add_test(tr, test_region_antimeridian_seam);
  tcase_add_test(tr, test_region_polar);
  tcase_add_test(tr, test_region_polar_seam);
  suite_add_tcase(s, tr);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(geo_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
