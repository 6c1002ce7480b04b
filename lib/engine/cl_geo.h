/*
 * The location engine: from landmark positions and distance bounds to the
 * feasible region F of a chip and verdicts that are never wrong when the
 * measurements obey physics. Pure: no I/O; the verifier, the CLI and the
 * tests call it directly.
 *
 * Geometry. Each landmark i with bound r_i (metres, on the WGS84 ellipsoid)
 * constrains the chip to the cap {P : s(P, L_i) <= r_i}, s the geodesic
 * distance. The engine works on the unit sphere of surface normals (a point's
 * geodetic latitude and longitude taken as spherical coordinates). On the
 * ellipsoid ds^2 = M^2 dphi^2 + N^2 cos^2(phi) dlambda^2 with both radii of
 * curvature M and N in [b^2/a, a^2/b], so for any two points
 *     (b^2/a) * theta <= s <= (a^2/b) * theta,
 * theta the angle between their normals. Hence the spherical cap of angle
 * r_i / (b^2/a) contains the ellipsoidal cap, and F_sphere (the intersection
 * of those caps) contains F: every verdict drawn from F_sphere is sound. The
 * declared-site test uses exact WGS84 geodesics (PROJ).
 *
 * F is covered by longitude/latitude cells refined where needed. A cell is
 * dropped only when provably outside some cap: outside the spherical cap
 * above, or outside a tighter one from the radii of curvature where the
 * cap's edge runs, or, for cells small enough, by an exact geodesic to its
 * centre and the triangle inequality (docs/ENGINE.md). So the kept cells
 * always cover F, and they follow F itself, not F_sphere.
 *
 * From an RTT to a bound (cl_geo_bound_m, docs/ENGINE.md "From a round trip
 * to a cap"). An RTT t at speed v bounds the signal's path, with the clock's
 * rate error allowed for: D = v t (1 + CL_CLOCK_RATE_MARGIN) / 2. A path is
 * no shorter than the straight chord through the Earth, so D bounds the
 * chord, not the surface distance; cl_geo_cap_of_path_m turns it into the
 * geodesic radius of the cap, 2 R asin(D / 2R) with R = b^2/a.
 */
#ifndef CL_GEO_H
#define CL_GEO_H

#include "cl_region.h"

#include <stddef.h>
#include <stdint.h>

/* WGS84 */
#define CL_WGS84_A 6378137.0
#define CL_WGS84_F (1.0 / 298.257223563)

#define CL_GEO_MAX_LANDMARKS 1024
#define CL_GEO_MAX_EXCLUDED 16

/*
 * How much slower than true time the clock that timed an RTT may run: a
 * measured interval may be short by up to this fraction. Landmarks time
 * RTTs with CLOCK_MONOTONIC_RAW (lib/core/cl_clock.h), out of NTP's reach,
 * so what is left is the oscillator: crystals are specified at +-20 to
 * +-100 ppm over temperature and years of ageing, and the kernel's
 * calibration of the counter adds a few ppm. 200 ppm is twice the worst
 * common specification; it costs 200 m per 1 000 km of bound
 * (docs/ENGINE.md).
 */
#define CL_CLOCK_RATE_MARGIN 200e-6

/* Usable landmarks closer than this (geodesic, metres) to each other are
 * one place: they count once towards min_landmarks (two entries of one
 * landmark after a key rotation are not two witnesses). */
#define CL_GEO_SAME_PLACE_M 1000.0

typedef struct {
  double lat, lon; /* degrees */
  double bound_m;  /* geodesic distance bound, metres (cl_geo_bound_m of an RTT);
                    * <= 0, NAN or infinite: unusable */
} cl_geo_landmark;

typedef struct {
  size_t min_landmarks; /* fewer usable places (n_usable) -> INSUFFICIENT; default 3 */
  double min_cell_km;   /* finest cell radius; default 1 km, allowed [0.01, 1000] */
  double rel_precision; /* refine F's boundary until cells are this fraction of F;
                         * default 0.05, allowed [0.001, 0.5] */
} cl_geo_params;

void cl_geo_params_default(cl_geo_params *p);

typedef enum {
  CL_GEO_CONSISTENT = 0,
  CL_GEO_INSUFFICIENT, /* fewer than min_landmarks places with a usable landmark */
  CL_GEO_INCONSISTENT, /* F is provably empty */
} cl_geo_consistency;

typedef enum {
  CL_SITE_UNKNOWN = 0, /* no site given, or not evaluated */
  CL_SITE_CONSISTENT,  /* the site lies within every bound */
  CL_SITE_EXCLUDED,    /* some landmark's bound excludes the site */
} cl_geo_site_verdict;

typedef enum {
  CL_REGION_UNKNOWN = 0,  /* no region given, or not evaluated */
  CL_REGION_INSIDE,       /* F is inside the allowed region */
  CL_REGION_OUTSIDE,      /* F does not meet the allowed region */
  CL_REGION_UNDETERMINED, /* F may meet both */
} cl_geo_region_verdict;

/* One cell of the cover of F: a longitude/latitude rectangle. */
typedef struct {
  double lat0, lat1, lon0, lon1;
  uint8_t certain; /* 1: inside every true (ellipsoidal) cap: every point of the
                    * cell is feasible */
} cl_geo_cell;

typedef struct {
  cl_geo_consistency consistency;
  /* Places with a usable landmark: landmarks with a finite positive bound,
   * those within CL_GEO_SAME_PLACE_M of each other (transitively) counted
   * once. This is what min_landmarks is compared with. */
  size_t n_usable;
  size_t n_colocated; /* usable landmarks that n_usable leaves out as colocated */
  /* INCONSISTENT: indices of the smallest set of landmarks whose removal
   * makes F non-empty (excluded_minimal = 0 if the search gave up and the
   * set is only sufficient, not proven smallest). */
  size_t excluded[CL_GEO_MAX_EXCLUDED];
  size_t n_excluded;
  int excluded_minimal;
  /* Precision: a cap that contains F (valid when consistency is CONSISTENT). */
  double centre_lat, centre_lon;
  double radius_km; /* upper bound on the geodesic distance from the centre to any point of F */
  /* Declared site. */
  cl_geo_site_verdict site;
  size_t site_landmark;  /* EXCLUDED: the landmark that excludes it by the widest margin */
  double site_margin_km; /* EXCLUDED: geodesic distance minus bound for that landmark */
  /* Region policy. */
  cl_geo_region_verdict region;
  /* The cover of F (consistent only); valid until the next call with the
   * same context. */
  const cl_geo_cell *cells;
  size_t n_cells;
} cl_geo_result;

typedef struct cl_geo_ctx cl_geo_ctx;

int cl_geo_ctx_create(cl_geo_ctx **out);
void cl_geo_ctx_destroy(cl_geo_ctx **ctx);

/*
 * Computes F and the verdicts. site may be NULL (lat, lon degrees); allowed
 * may be NULL or an empty union (no region verdict). When the result is
 * INSUFFICIENT or INCONSISTENT, site and region verdicts are not evaluated
 * (UNKNOWN). When more than CL_GEO_MAX_EXCLUDED landmarks would have to go,
 * or the search for the smallest set runs out of budget, the named set is
 * found greedily and excluded_minimal is 0. radius_km is an upper bound whose
 * slack depends on rel_precision; it does not always shrink when a landmark
 * is added. Returns 0, CL_EINVAL (n > CL_GEO_MAX_LANDMARKS, bad coordinates,
 * parameters out of range) or CL_ENOMEM.
 */
int cl_geo_locate(cl_geo_ctx *ctx, const cl_geo_landmark *lms, size_t n, const cl_geo_params *p,
                  const double *site_latlon, const cl_region_union *allowed, cl_geo_result *out);

/* Parses a position written "LAT,LON" in degrees (no spaces; lat in
 * [-90, 90], lon in [-180, 180], both finite). Returns 0 with *lat and *lon
 * set, or CL_EMALFORMED (nothing set); the caller names the value in its
 * message. */
int cl_geo_parse_position(const char *text, double *lat, double *lon);

/* Exact WGS84 geodesic distance in metres (PROJ geod_inverse). */
double cl_geo_distance_m(double lat1, double lon1, double lat2, double lon2);
/*
 * The bound of a round trip, in the three steps below; everything that turns
 * an RTT into a cap (the verifier, chiploc locate, the benchmarks) calls
 * cl_geo_bound_m.
 *
 * cl_geo_path_m: the longest signal path, in metres, that an RTT of rtt_s
 * seconds (as measured) allows at speed_m_per_s: speed * rtt * (1 +
 * CL_CLOCK_RATE_MARGIN) / 2.
 *
 * cl_geo_cap_of_path_m: the geodesic cap radius, in metres, that a path of
 * at most path_m metres allows between two points of the ellipsoid (at or
 * above it): the path is no shorter than the chord, and a chord d allows a
 * geodesic of up to 2R asin(d / 2R), R = b^2/a the smallest radius of
 * curvature (docs/ENGINE.md gives the proof). From a chord of about
 * 12 669 km on it returns pi a^2/b, more than any geodesic: the whole
 * ellipsoid. Never less than path_m. 0, negative, NaN and infinite inputs
 * come back unchanged (the engine ignores such bounds).
 *
 * cl_geo_bound_m: cl_geo_cap_of_path_m(cl_geo_path_m(rtt_s, speed)), the
 * bound_m of a cl_geo_landmark for a chip that does not move.
 */
double cl_geo_path_m(double rtt_s, double speed_m_per_s);
double cl_geo_cap_of_path_m(double path_m);
double cl_geo_bound_m(double rtt_s, double speed_m_per_s);

const char *cl_geo_consistency_name(cl_geo_consistency c);
const char *cl_geo_site_name(cl_geo_site_verdict v);
const char *cl_geo_region_name(cl_geo_region_verdict v);

#endif
