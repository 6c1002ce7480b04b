/*
 * The location engine alone on the verifier benchmark's data model, without
 * a database: 20 landmarks at European cities, chips drawn uniformly inside
 * 20 European countries (bench/europe.h, shared with bench/vfixture.c),
 * each measured by its 8 nearest landmarks with RTT = 2 x geodesic / c +
 * 0.1 ms + an exponential extra delay of mean 0.4 ms, its declared site =
 * its true position, and its own
 * country as the allowed region. Times each cl_geo_locate call and prints
 * one line: chips, mean/median/p90 microseconds, region verdicts, mean
 * cells and mean radius. Deterministic for a seed.
 *
 * usage: engine BORDERS.geojson [CHIPS [CODE_PROPERTY [SEED]]]
 *   (defaults: 2000 chips, property A3, seed 1)
 */
#include "cl_geo.h"
#include "cl_region.h"
#include "cl_region_geojson.h"
#include "europe.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define PER_CHIP 8
#define SPEED_C 299792458.0

typedef struct {
  double d;
  size_t i;
} near;
static int cmp_near(const void *a, const void *b) {
  double x = ((const near *)a)->d, y = ((const near *)b)->d;
  return (x > y) - (x < y);
}
static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 5) {
    fprintf(stderr, "usage: engine BORDERS.geojson [CHIPS [CODE_PROPERTY [SEED]]]\n");
    return 2;
  }
  long n = argc > 2 ? strtol(argv[2], NULL, 10) : 2000;
  const char *prop = argc > 3 ? argv[3] : "A3";
  rng_state = rng_seed_state(argc > 4 ? strtoull(argv[4], NULL, 10) : 1);
  if (n < 1 || n > 10000000) {
    fprintf(stderr, "engine: CHIPS must be 1..10000000, not %s\n", argv[2]);
    return 2;
  }
  cl_region_set set;
  char err[256];
  if (cl_region_set_load_geojson(&set, argv[1], prop, err, sizeof err) != 0) {
    fprintf(stderr, "engine: %s: %s\n", argv[1], err);
    return 1;
  }
  const cl_region *regions[N_COUNTRIES];
  for (size_t i = 0; i < N_COUNTRIES; i++)
    if (!(regions[i] = cl_region_set_find(&set, COUNTRIES[i]))) {
      fprintf(stderr, "engine: %s has no region %s (property %s)\n", argv[1], COUNTRIES[i], prop);
      return 1;
    }
  cl_geo_ctx *ctx = NULL;
  double *us = malloc((size_t)n * sizeof *us);
  if (cl_geo_ctx_create(&ctx) != 0 || !us) {
    fprintf(stderr, "engine: out of memory\n");
    return 1;
  }
  size_t verdicts[4] = {0};
  double cells = 0, radius = 0;
  for (long i = 0; i < n; i++) {
    const cl_region *r = regions[(size_t)i % N_COUNTRIES];
    double lat, lon;
    if (europe_point_in(r, &lat, &lon) != 0) {
      fprintf(stderr, "engine: no point of %s found in the sampling box\n", cl_region_code(r));
      return 1;
    }
    near nl[N_LANDMARKS];
    for (size_t l = 0; l < N_LANDMARKS; l++)
      nl[l] = (near){cl_geo_distance_m(lat, lon, LANDMARKS[l].lat, LANDMARKS[l].lon), l};
    qsort(nl, N_LANDMARKS, sizeof nl[0], cmp_near);
    cl_geo_landmark lms[PER_CHIP];
    for (size_t k = 0; k < PER_CHIP; k++) {
      double extra_ns = europe_extra_ns();
      double rtt_s = ceil(2.0 * nl[k].d / SPEED_C * 1e9 + extra_ns) * 1e-9;
      lms[k] = (cl_geo_landmark){LANDMARKS[nl[k].i].lat, LANDMARKS[nl[k].i].lon,
                                 cl_geo_bound_m(rtt_s, SPEED_C)};
    }
    const cl_region *members[1] = {r};
    cl_region_union allowed = {members, 1};
    double site[2] = {lat, lon};
    cl_geo_result res;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = cl_geo_locate(ctx, lms, PER_CHIP, NULL, site, &allowed, &res);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (rc != 0) {
      fprintf(stderr, "engine: cl_geo_locate failed (%d) for chip %ld\n", rc, i);
      return 1;
    }
    us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
    verdicts[res.region]++;
    cells += (double)res.n_cells;
    radius += res.radius_km;
  }
  double sum = 0;
  for (long i = 0; i < n; i++) sum += us[i];
  qsort(us, (size_t)n, sizeof *us, cmp_double);
  printf("chips=%ld mean_us=%.1f median_us=%.1f p90_us=%.1f inside=%zu outside=%zu "
         "undetermined=%zu cells_mean=%.0f radius_mean_km=%.1f\n",
         n, sum / (double)n, us[n / 2], us[n * 9 / 10], verdicts[CL_REGION_INSIDE],
         verdicts[CL_REGION_OUTSIDE], verdicts[CL_REGION_UNDETERMINED], cells / (double)n,
         radius / (double)n);
  free(us);
  cl_geo_ctx_destroy(&ctx);
  cl_region_set_free(&set);
  return 0;
}
