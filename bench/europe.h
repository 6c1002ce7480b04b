/*
 * The European data model shared by the verifier benchmark's fixture
 * (bench/vfixture.c) and the engine-alone benchmark (bench/engine.c): the
 * landmark cities, the countries chips run in, how a chip's position is
 * drawn, the extra delay law, and the deterministic generator behind them.
 * Both programs see the same chips for the same seed.
 */
#ifndef BENCH_EUROPE_H
#define BENCH_EUROPE_H

#include "cl_region.h"

#include <math.h>
#include <stdint.h>

typedef struct {
  const char *name;
  double lat, lon;
} place;

/* Landmark cities (city-centre coordinates). */
static const place LANDMARKS[] = {
    {"paris", 48.8566, 2.3522},      {"frankfurt", 50.1109, 8.6821},
    {"london", 51.5074, -0.1278},    {"madrid", 40.4168, -3.7038},
    {"warsaw", 52.2297, 21.0122},    {"rome", 41.9028, 12.4964},
    {"stockholm", 59.3293, 18.0686}, {"helsinki", 60.1699, 24.9384},
    {"bucharest", 44.4268, 26.1025}, {"amsterdam", 52.3676, 4.9041},
    {"vienna", 48.2082, 16.3738},    {"zurich", 47.3769, 8.5417},
    {"lisbon", 38.7223, -9.1393},    {"dublin", 53.3498, -6.2603},
    {"prague", 50.0755, 14.4378},    {"athens", 37.9838, 23.7275},
    {"oslo", 59.9139, 10.7522},      {"copenhagen", 55.6761, 12.5683},
    {"budapest", 47.4979, 19.0402},  {"milan", 45.4642, 9.1900},
};
#define N_LANDMARKS (sizeof LANDMARKS / sizeof LANDMARKS[0])

/* Countries the chips run in (ISO 3166-1 alpha-3, property A3). */
static const char *COUNTRIES[] = {"FRA", "DEU", "GBR", "ESP", "ITA", "POL", "SWE", "NLD",
                                  "BEL", "CHE", "AUT", "CZE", "PRT", "IRL", "DNK", "NOR",
                                  "FIN", "ROU", "HUN", "GRC"};
#define N_COUNTRIES (sizeof COUNTRIES / sizeof COUNTRIES[0])

/* Sampling box: mainland Europe and its islands, not overseas territories. */
#define EU_LON0 -11.0
#define EU_LON1 32.0
#define EU_LAT0 34.0
#define EU_LAT1 71.5

/* Extra delay on top of the light-speed RTT: fixed + exponential (ns). */
#define EXTRA_FIXED_NS 100000.0
#define EXTRA_MEAN_NS 400000.0

/* xorshift64*: a small deterministic generator; seed it through rng_state. */
static uint64_t rng_state;
static inline uint64_t rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}
static inline double rng_unit(void) { return (double)(rng_next() >> 11) / 9007199254740992.0; }

/* The generator's state for a seed. */
static inline uint64_t rng_seed_state(uint64_t seed) { return seed * 0x9E3779B97F4A7C15ull + 1; }

/* A uniform point (on the sphere) of region r within the sampling box, into
 * *lat and *lon. 0, or -1 when 100 000 draws found none. */
static inline int europe_point_in(const cl_region *r, double *lat, double *lon) {
  double x0, y0, x1, y1;
  cl_region_bbox(r, &x0, &y0, &x1, &y1);
  x0 = fmax(x0, EU_LON0), x1 = fmin(x1, EU_LON1), y0 = fmax(y0, EU_LAT0), y1 = fmin(y1, EU_LAT1);
  /* Uniform on the sphere: latitude by the sine. */
  double s0 = sin(y0 * M_PI / 180), s1 = sin(y1 * M_PI / 180);
  for (int tries = 0; tries <= 100000; tries++) {
    *lon = x0 + (x1 - x0) * rng_unit();
    *lat = asin(s0 + (s1 - s0) * rng_unit()) * 180 / M_PI;
    if (cl_region_contains(r, *lon, *lat)) return 0;
  }
  return -1;
}

/* One extra delay (ns) of the law above. */
static inline double europe_extra_ns(void) {
  return EXTRA_FIXED_NS - EXTRA_MEAN_NS * log(1.0 - rng_unit());
}

#endif
