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
 * F_sphere is covered by longitude/latitude cells refined where needed. A cell
 * is dropped only when provably outside some cap (its centre's angle to the
 * landmark minus an upper bound on the cell's angular radius exceeds the
 * cap), so the kept cells always cover F.
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

typedef struct {
  double lat, lon; /* degrees */
  double bound_m;  /* distance bound r = v * rtt / 2, metres; <= 0 or NAN: unusable */
} cl_geo_landmark;

typedef struct {
  size_t min_landmarks; /* fewer usable landmarks -> INSUFFICIENT; default 3 */
  double min_cell_km;   /* finest cell radius; default 1 km, allowed [0.01, 1000] */
  double rel_precision; /* refine F's boundary until cells are this fraction of F;
                         * default 0.05, allowed [0.001, 0.5] */
} cl_geo_params;

void cl_geo_params_default(cl_geo_params *p);

typedef enum {
  CL_GEO_CONSISTENT = 0,
  CL_GEO_INSUFFICIENT, /* fewer than min_landmarks usable landmarks */
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
  uint8_t certain; /* 1: inside every cap of F_sphere (the sound relaxation of F,
                    * not F itself: such a cell may still reach a few km past a
                    * true bound) */
} cl_geo_cell;

typedef struct {
  cl_geo_consistency consistency;
  size_t n_usable; /* landmarks with a finite positive bound */
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
/* Distance bound in metres for an RTT in seconds at a speed (m/s). */
double cl_geo_bound_m(double rtt_s, double speed_m_per_s);

const char *cl_geo_consistency_name(cl_geo_consistency c);
const char *cl_geo_site_name(cl_geo_site_verdict v);
const char *cl_geo_region_name(cl_geo_region_verdict v);

#endif
