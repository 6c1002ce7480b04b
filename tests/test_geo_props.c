/*
 * Randomized property tests of the location engine against brute force,
 * with fixed seeds.
 *
 * Each scenario puts a chip at a true position P and k landmarks around it,
 * with bounds r_i = s(P, L_i) * (1 + u_i) + e_i, u_i, e_i >= 0 and s the
 * exact WGS84 geodesic distance: the measurements obey physics, so the chip
 * could be at P. The engine must then never say INCONSISTENT, and every
 * point of the true feasible region F (sampled densely and tested with exact
 * geodesics, independently of the engine's cells) must lie in a returned
 * cell, within radius_km of the returned centre, inside the region when the
 * verdict is INSIDE and outside it when the verdict is OUTSIDE. A declared
 * site is excluded only if it really violates a bound.
 *
 * Regions are random star polygons (8-60 vertices, with holes sometimes,
 * vertices snapped to the engine's cell grid sometimes) built in the
 * longitude/latitude plane and split at the antimeridian and clipped at the
 * poles as RFC 7946 asks, unions of two of them, and, when the country
 * borders are present, real countries. Membership of samples is decided by an
 * independent even-odd test on the rings, cross-checked against
 * cl_region_contains away from edges.
 *
 * Precision is measured, not just sanity-checked: how often the engine says
 * UNDETERMINED when the samples put F clearly on one side of the border,
 * and how much larger radius_km is than the farthest feasible sample. Both
 * are printed per batch and pinned with margin.
 *
 * Batches vary the chip's placement (anywhere, near the poles, near the
 * antimeridian, on land), the landmark distances, exact bounds, a landmark
 * on the chip with a bound of metres, and random engine parameters. One
 * batch draws signal paths no shorter than the chord through the Earth and
 * turns them into caps with cl_geo_cap_of_path_m, as the verifier does, and
 * test_chord_bound checks that conversion alone against exact geodesics.
 *
 * Any violation prints the whole scenario (batch, seed, landmarks, bounds,
 * parameters, site, polygons) to stderr, so it can be replayed.
 */
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_region.h"
#include "cl_region_geojson.h"

#include <check.h>
#include <geodesic.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define D2R (M_PI / 180.0)
#define R2D (180.0 / M_PI)

/* Radii that bracket the WGS84 radii of curvature (b^2/a = 6335439 m,
 * a^2/b = 6399594 m) with room to spare: for two points whose normals make
 * the angle theta, R_LO * theta <= s <= R_HI * theta (checked below by
 * test_normal_sphere_bounds). The brute force uses them only to skip exact
 * geodesics that cannot change a decision, and audits that shortcut. */
#define R_LO 6330000.0
#define R_HI 6405000.0

#define MAXK 13          /* up to 12 landmarks and one that imposes nothing */
#define GRID 101         /* brute-force grid side */
#define N_UNIFORM 3000   /* brute-force uniform sphere samples */
#define MARGIN_KM 1.0    /* "clearly on one side": sampled F this far from the border */
#define NOT_PINNED 1e9   /* a precision figure printed but not asserted */

static struct geod_geodesic G;

/* ---- random numbers ------------------------------------------------------- */

typedef struct {
  uint64_t s;
} rng_t;

static uint64_t rng_u64(rng_t *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static double rng_unit(rng_t *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }
static double rng_range(rng_t *r, double a, double b) { return a + (b - a) * rng_unit(r); }
static int rng_int(rng_t *r, int a, int b) { return a + (int)(rng_u64(r) % (uint64_t)(b - a + 1)); }

/* ---- unit vectors ----------------------------------------------------------- */

typedef struct {
  double x, y, z;
} vec3;

static vec3 v_ll(double lat, double lon) {
  double p = lat * D2R, l = lon * D2R;
  return (vec3){cos(p) * cos(l), cos(p) * sin(l), sin(p)};
}
static void v_to_ll(vec3 v, double *lat, double *lon) {
  *lat = atan2(v.z, sqrt(v.x * v.x + v.y * v.y)) * R2D;
  *lon = atan2(v.y, v.x) * R2D;
}
static double v_dot(vec3 a, vec3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
static vec3 v_cross(vec3 a, vec3 b) {
  return (vec3){a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
static double v_norm(vec3 a) { return sqrt(v_dot(a, a)); }
static vec3 v_lin(double s, vec3 a, double t, vec3 b) {
  return (vec3){s * a.x + t * b.x, s * a.y + t * b.y, s * a.z + t * b.z};
}
static double v_angle(vec3 a, vec3 b) { return atan2(v_norm(v_cross(a, b)), v_dot(a, b)); }
static vec3 v_unit(vec3 a) { return v_lin(1.0 / v_norm(a), a, 0, a); }

/* Tangent frame at p: exponential and logarithm maps of the unit sphere. */
typedef struct {
  vec3 p, e1, e2;
} frame;

static frame frame_at(vec3 p) {
  vec3 h = fabs(p.z) < 0.9 ? (vec3){0, 0, 1} : (vec3){1, 0, 0};
  frame f = {p, v_unit(v_cross(h, p)), {0, 0, 0}};
  f.e2 = v_cross(p, f.e1);
  return f;
}
static vec3 frame_exp(const frame *f, double u, double v) {
  double t = sqrt(u * u + v * v);
  if (t < 1e-300) return f->p;
  vec3 d = v_lin(u / t, f->e1, v / t, f->e2);
  return v_unit(v_lin(cos(t), f->p, sin(t), d));
}
static void frame_log(const frame *f, vec3 q, double *u, double *v) {
  double t = v_angle(f->p, q);
  double a = v_dot(q, f->e1), b = v_dot(q, f->e2), n = sqrt(a * a + b * b);
  if (n < 1e-300) {
    *u = *v = 0;
    return;
  }
  *u = t * a / n;
  *v = t * b / n;
}

/* ---- scenarios --------------------------------------------------------------- */

typedef enum { PLACE_UNIFORM, PLACE_POLAR, PLACE_ANTIMERIDIAN, PLACE_LAND } placement;

/* Variations on the landmarks and the engine parameters. */
enum {
  VAR_NONE = 0,
  VAR_COLOCATED = 1, /* one landmark within 2 km of the chip, bound a few metres more */
  VAR_PARAMS = 2,    /* random engine parameters (cell size, precision) */
};

typedef struct {
  const char *name;
  uint64_t seed;
  int n;
  placement place;
  double dmin_km, dmax_km;
  int tight;               /* every bound exactly the true distance */
  int variant;             /* VAR_* */
  int chord;               /* bounds are path lengths >= the chord, turned into caps by
                            * cl_geo_cap_of_path_m (what the verifier does) */
  double max_undet_rate;   /* pinned: UNDETERMINED among clear cases */
  double max_median_ratio; /* pinned: median radius_km / sampled radius */
  int maritime;            /* PLACE_LAND: the maritime borders ($CHIPLOC_BORDERS), not land */
} batch_cfg;

typedef struct {
  const batch_cfg *cfg;
  int index;
  uint64_t seed;
  double plat, plon;
  size_t k;
  cl_geo_landmark lm[MAXK];
  vec3 lv[MAXK];
  double site[2];
  const char *site_kind;
  cl_geo_params prm;
} scenario;

static int usable(const cl_geo_landmark *l) { return l->bound_m > 0 && isfinite(l->bound_m); }

/* Usable landmarks. The engine counts places (landmarks within
 * CL_GEO_SAME_PLACE_M of each other count once); no two landmarks of these
 * scenarios come within 2 km of each other (asserted), so the counts agree. */
static size_t n_usable(const scenario *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->k; i++) {
    n += (size_t)usable(&s->lm[i]);
    for (size_t j = 0; j < i; j++)
      ck_assert_msg(v_angle(s->lv[i], s->lv[j]) * R_LO > 2.0 * CL_GEO_SAME_PLACE_M,
                    "batch %s index %d: landmarks %zu and %zu within 2 km", s->cfg->name,
                    s->index, j, i);
  }
  return n;
}

static void uniform_point(rng_t *r, double *lat, double *lon) {
  *lat = asin(rng_range(r, -1, 1)) * R2D;
  *lon = rng_range(r, -180, 180);
}

/* The chip position for a batch (land placement is done by the caller). */
static void place_chip(const batch_cfg *c, rng_t *r, double *lat, double *lon) {
  uniform_point(r, lat, lon);
  if (c->place == PLACE_POLAR) {
    double t = rng_unit(r);
    *lat = t < 0.05 ? 90.0 : 80.0 + 10.0 * rng_unit(r);
    if (rng_unit(r) < 0.5) *lat = -*lat;
  } else if (c->place == PLACE_ANTIMERIDIAN) {
    double t = rng_unit(r);
    *lon = t < 0.05 ? 180.0 : 170.0 + 10.0 * rng_unit(r);
    if (rng_unit(r) < 0.5) *lon = -*lon;
  }
}

/* Earth-centred coordinates of a point on the ellipsoid (height 0). */
static void ecef(double lat, double lon, double xyz[3]) {
  double e2 = CL_WGS84_F * (2 - CL_WGS84_F), p = lat * D2R, l = lon * D2R;
  double n = CL_WGS84_A / sqrt(1 - e2 * sin(p) * sin(p));
  xyz[0] = n * cos(p) * cos(l);
  xyz[1] = n * cos(p) * sin(l);
  xyz[2] = n * (1 - e2) * sin(p);
}

/* The straight line through the Earth: no signal path is shorter. */
static double chord_m(double lat1, double lon1, double lat2, double lon2) {
  double a[3], b[3];
  ecef(lat1, lon1, a);
  ecef(lat2, lon2, b);
  return sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) +
              (a[2] - b[2]) * (a[2] - b[2]));
}

/* Landmarks and bounds around the chip at (s->plat, s->plon). */
static void place_landmarks(scenario *s, rng_t *r) {
  const batch_cfg *c = s->cfg;
  s->k = (size_t)rng_int(r, 3, 12);
  for (size_t i = 0; i < s->k; i++) {
    double az = rng_range(r, -180, 180);
    double d = rng_unit(r) < 0.5 ? rng_range(r, c->dmin_km, c->dmax_km)
                                 : c->dmin_km * pow(c->dmax_km / c->dmin_km, rng_unit(r));
    double lat, lon;
    geod_direct(&G, s->plat, s->plon, az, d * 1000.0, &lat, &lon, NULL);
    double sd = cl_geo_distance_m(s->plat, s->plon, lat, lon);
    double u = 0, e = 0;
    if (!c->tight) {
      double t = rng_unit(r);
      u = t < 0.25 ? 0 : t < 0.6 ? rng_range(r, 0, 0.01) : t < 0.9 ? rng_range(r, 0, 0.05)
                                                                     : rng_range(r, 0, 0.3);
      t = rng_unit(r);
      e = t < 0.3 ? 0 : t < 0.7 ? rng_range(r, 0, 20000.0) : rng_range(r, 0, 200000.0);
    }
    if (c->chord) {
      /* A signal path at least as long as the chord, as the verifier would
       * get it from an RTT: the converted cap must hold P. */
      double path = chord_m(s->plat, s->plon, lat, lon) * (1 + u) + e;
      double b = cl_geo_cap_of_path_m(path);
      ck_assert_msg(sd <= b, "batch %s: cap %.6f m of path %.6f m is below the geodesic %.6f m",
                    c->name, b, path, sd);
      s->lm[i] = (cl_geo_landmark){lat, lon, b};
    } else {
      s->lm[i] = (cl_geo_landmark){lat, lon, sd * (1 + u) + e};
    }
  }
  if (c->variant & VAR_COLOCATED) {
    /* A landmark at (or next to) the chip, with a bound of metres. */
    double lat = s->plat, lon = s->plon, d = 0;
    if (rng_unit(r) < 0.7) {
      d = rng_range(r, 0, 2000.0);
      geod_direct(&G, s->plat, s->plon, rng_range(r, -180, 180), d, &lat, &lon, NULL);
      d = cl_geo_distance_m(s->plat, s->plon, lat, lon);
    }
    s->lm[0] = (cl_geo_landmark){lat, lon, d + rng_range(r, 1.0, 500.0)};
  }
  /* Now and then a landmark that imposes nothing: a bound beyond half the
   * circumference, or an unusable one. */
  if (!c->tight && s->k < MAXK && rng_unit(r) < 0.1) {
    double lat, lon;
    uniform_point(r, &lat, &lon);
    double t = rng_unit(r);
    double b = t < 0.4 ? rng_range(r, 2.0e7, 3.0e7) : t < 0.7 ? 0.0 : NAN;
    s->lm[s->k++] = (cl_geo_landmark){lat, lon, b};
  }
  for (size_t i = 0; i < s->k; i++) s->lv[i] = v_ll(s->lm[i].lat, s->lm[i].lon);
}

/* ---- brute force: is a point within every bound? ------------------------------ */

static struct {
  unsigned long long tests, exact, audits, audit_bad;
} bf;

/* 1 if the point obeys bound i. The shortcut decides only when the normal-
 * sphere bracket settles it; every 61st shortcut decision is audited with an
 * exact geodesic. */
static int obeys(const scenario *s, size_t i, double lat, double lon, vec3 q) {
  const cl_geo_landmark *l = &s->lm[i];
  if (!usable(l)) return 1;
  bf.tests++;
  double th = v_angle(q, s->lv[i]);
  int quick = -1;
  if (R_LO * th > l->bound_m + 1.0)
    quick = 0;
  else if (R_HI * th < l->bound_m - 1.0)
    quick = 1;
  if (quick >= 0 && bf.tests % 61 != 0) return quick;
  bf.exact++;
  int exact = cl_geo_distance_m(lat, lon, l->lat, l->lon) <= l->bound_m;
  if (quick >= 0) {
    bf.audits++;
    if (quick != exact) bf.audit_bad++;
  }
  return exact;
}

static int feasible(const scenario *s, double lat, double lon, vec3 q) {
  for (size_t i = 0; i < s->k; i++)
    if (!obeys(s, i, lat, lon, q)) return 0;
  return 1;
}

typedef struct {
  double lat, lon;
  vec3 v;
} pt;

typedef struct {
  pt *v;
  size_t n, cap;
} ptvec;

static void pv_push(ptvec *p, double lat, double lon, vec3 v) {
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 1024;
    p->v = realloc(p->v, p->cap * sizeof *p->v);
    ck_assert_ptr_nonnull(p->v);
  }
  p->v[p->n++] = (pt){lat, lon, v};
}

static void try_point(const scenario *s, vec3 q, ptvec *out) {
  double lat, lon;
  v_to_ll(q, &lat, &lon);
  if (feasible(s, lat, lon, q)) pv_push(out, lat, lon, q);
}

/*
 * Samples F: uniform points on the sphere; a grid over the smallest cap
 * (its normal-sphere superset, in the tangent plane at its landmark); then
 * a grid over the bounding box, in the tangent plane at P, of everything
 * feasible found so far. P itself is always a sample. *spacing is the last
 * grid's step (radians).
 */
static void sample_F(const scenario *s, rng_t *r, ptvec *out, double *spacing) {
  out->n = 0;
  vec3 P = v_ll(s->plat, s->plon);
  pv_push(out, s->plat, s->plon, P);
  for (int i = 0; i < N_UNIFORM; i++) {
    double lat, lon;
    uniform_point(r, &lat, &lon);
    vec3 q = v_ll(lat, lon);
    if (feasible(s, lat, lon, q)) pv_push(out, lat, lon, q);
  }
  size_t j = s->k;
  for (size_t i = 0; i < s->k; i++)
    if (usable(&s->lm[i]) && (j == s->k || s->lm[i].bound_m < s->lm[j].bound_m)) j = i;
  double alpha = j < s->k ? fmin(s->lm[j].bound_m / R_LO, M_PI) : M_PI;
  frame fj = frame_at(j < s->k ? s->lv[j] : P);
  double hb = 2 * alpha / (GRID - 1);
  for (int a = 0; a < GRID; a++)
    for (int b = 0; b < GRID; b++) {
      double u = -alpha + hb * a, v = -alpha + hb * b;
      if (u * u + v * v > alpha * alpha * 1.0001) continue;
      try_point(s, frame_exp(&fj, u, v), out);
    }
  frame fp = frame_at(P);
  double u0 = 0, u1 = 0, v0 = 0, v1 = 0;
  for (size_t i = 0; i < out->n; i++) {
    double u, v;
    frame_log(&fp, out->v[i].v, &u, &v);
    u0 = fmin(u0, u), u1 = fmax(u1, u), v0 = fmin(v0, v), v1 = fmax(v1, v);
  }
  u0 = fmax(u0 - 2 * hb, -M_PI), u1 = fmin(u1 + 2 * hb, M_PI);
  v0 = fmax(v0 - 2 * hb, -M_PI), v1 = fmin(v1 + 2 * hb, M_PI);
  double hu = (u1 - u0) / (GRID - 1), hv = (v1 - v0) / (GRID - 1);
  for (int a = 0; a < GRID; a++)
    for (int b = 0; b < GRID; b++) try_point(s, frame_exp(&fp, u0 + hu * a, v0 + hv * b), out);
  *spacing = fmax(hu, hv);
}

/* ---- an index of the returned cells ---------------------------------------- */

#define CI_SIDE 64

typedef struct {
  const cl_geo_cell *c;
  size_t n;
  double la0, la1, lo0, lo1, hla, hlo;
  size_t off[CI_SIDE * CI_SIDE + 1];
  uint32_t *idx;
} cell_index;

static int ci_bucket(double x, double x0, double h) {
  int b = h > 0 ? (int)floor((x - x0) / h) : 0;
  return b < 0 ? 0 : b >= CI_SIDE ? CI_SIDE - 1 : b;
}

static void ci_build(cell_index *ci, const cl_geo_result *r) {
  ci->c = r->cells;
  ci->n = r->n_cells;
  ci->la0 = ci->lo0 = INFINITY;
  ci->la1 = ci->lo1 = -INFINITY;
  for (size_t i = 0; i < ci->n; i++) {
    const cl_geo_cell *c = &ci->c[i];
    ci->la0 = fmin(ci->la0, c->lat0), ci->la1 = fmax(ci->la1, c->lat1);
    ci->lo0 = fmin(ci->lo0, c->lon0), ci->lo1 = fmax(ci->lo1, c->lon1);
  }
  ci->hla = (ci->la1 - ci->la0) / CI_SIDE;
  ci->hlo = (ci->lo1 - ci->lo0) / CI_SIDE;
  memset(ci->off, 0, sizeof ci->off);
  for (int pass = 0; pass < 2; pass++) {
    size_t cur[CI_SIDE * CI_SIDE];
    if (pass == 1) {
      for (int b = 0; b < CI_SIDE * CI_SIDE; b++) ci->off[b + 1] += ci->off[b];
      ci->idx = malloc((ci->off[CI_SIDE * CI_SIDE] + 1) * sizeof *ci->idx);
      ck_assert_ptr_nonnull(ci->idx);
      memcpy(cur, ci->off, sizeof cur);
    }
    for (size_t i = 0; i < ci->n; i++) {
      const cl_geo_cell *c = &ci->c[i];
      int a0 = ci_bucket(c->lat0, ci->la0, ci->hla), a1 = ci_bucket(c->lat1, ci->la0, ci->hla);
      int b0 = ci_bucket(c->lon0, ci->lo0, ci->hlo), b1 = ci_bucket(c->lon1, ci->lo0, ci->hlo);
      for (int a = a0; a <= a1; a++)
        for (int b = b0; b <= b1; b++) {
          if (pass == 0)
            ci->off[a * CI_SIDE + b + 1]++;
          else
            ci->idx[cur[a * CI_SIDE + b]++] = (uint32_t)i;
        }
    }
  }
}

static int ci_has1(const cell_index *ci, double lat, double lon) {
  if (ci->n == 0 || lat < ci->la0 || lat > ci->la1 || lon < ci->lo0 || lon > ci->lo1) return 0;
  int a = ci_bucket(lat, ci->la0, ci->hla), b = ci_bucket(lon, ci->lo0, ci->hlo);
  for (size_t k = ci->off[a * CI_SIDE + b]; k < ci->off[a * CI_SIDE + b + 1]; k++) {
    const cl_geo_cell *c = &ci->c[ci->idx[k]];
    if (lat >= c->lat0 && lat <= c->lat1 && lon >= c->lon0 && lon <= c->lon1) return 1;
  }
  return 0;
}

/* Longitude +-180 names one meridian: either name will do. */
static int ci_has(const cell_index *ci, double lat, double lon) {
  return ci_has1(ci, lat, lon) || (fabs(lon) == 180.0 && ci_has1(ci, lat, -lon));
}

static void ci_free(cell_index *ci) {
  free(ci->idx);
  ci->idx = NULL;
}

/* ---- test regions ------------------------------------------------------------ */

#define MAX_RING 256
#define MAX_RINGS 8

typedef struct {
  int poly;
  size_t n;
  double ll[2 * MAX_RING]; /* lon, lat pairs, not closed */
} tring;

typedef struct {
  char desc[80];
  tring rings[MAX_RINGS];
  size_t nr;
  cl_region *reg;
} tregion;

/* Sutherland-Hodgman against one half-plane: keep coordinate `axis` >= c
 * (ge) or <= c; points on the clip line get exactly c. */
static size_t clip_half(const double *in, size_t n, double *out, int axis, double c, int ge) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    const double *a = &in[2 * i], *b = &in[2 * ((i + 1) % n)];
    int ina = ge ? a[axis] >= c : a[axis] <= c;
    int inb = ge ? b[axis] >= c : b[axis] <= c;
    if (ina) {
      out[2 * m] = a[0], out[2 * m + 1] = a[1];
      m++;
    }
    if (ina != inb) {
      double t = (c - a[axis]) / (b[axis] - a[axis]);
      double o = a[1 - axis] + t * (b[1 - axis] - a[1 - axis]);
      out[2 * m + axis] = c;
      out[2 * m + 1 - axis] = o;
      m++;
    }
  }
  return m;
}

static double ring_area2(const double *p, size_t n) {
  double a = 0;
  for (size_t i = 0; i < n; i++) {
    const double *u = &p[2 * i], *w = &p[2 * ((i + 1) % n)];
    a += u[0] * w[1] - w[0] * u[1];
  }
  return a;
}

/* Clips a ring given in unwrapped longitudes to window k (longitudes
 * [-180 + 360k, 180 + 360k], shifted back by -360k) and latitudes [-90, 90].
 * Returns the number of points (0 if nothing of substance is left). */
static size_t clip_ring(const double *in, size_t n, int k, double *out) {
  static double a[4 * MAX_RING], b[4 * MAX_RING];
  size_t m = clip_half(in, n, a, 0, -180.0 + 360.0 * k, 1);
  m = clip_half(a, m, b, 0, 180.0 + 360.0 * k, 0);
  m = clip_half(b, m, a, 1, -90.0, 1);
  m = clip_half(a, m, b, 1, 90.0, 0);
  size_t q = 0;
  for (size_t i = 0; i < m; i++) {
    double lon = b[2 * i] - 360.0 * k, lat = b[2 * i + 1];
    lon = fmin(fmax(lon, -180.0), 180.0);
    lat = fmin(fmax(lat, -90.0), 90.0);
    if (q > 0 && out[2 * (q - 1)] == lon && out[2 * (q - 1) + 1] == lat) continue;
    out[2 * q] = lon, out[2 * q + 1] = lat;
    q++;
  }
  while (q > 1 && out[0] == out[2 * (q - 1)] && out[1] == out[2 * (q - 1) + 1]) q--;
  if (q < 3 || q > MAX_RING || fabs(ring_area2(out, q)) < 1e-9) return 0;
  return q;
}

/* A star polygon around (clat, clon) (longitude unwrapped), radius R degrees
 * of latitude (longitude scaled by 1/cos(clat)), radii in [rlo, rhi] * R. */
static size_t star(rng_t *r, double clat, double clon, double R, double rlo, double rhi, int m,
                   double *out) {
  double sc = 1.0 / fmax(cos(clat * D2R), 0.05);
  for (int j = 0; j < m; j++) {
    double th = 2 * M_PI * (j + rng_range(r, 0, 0.8)) / m;
    double rho = R * rng_range(r, rlo, rhi);
    out[2 * j] = clon + rho * cos(th) * sc;
    out[2 * j + 1] = clat + rho * sin(th);
  }
  return (size_t)m;
}

/* Builds a region from an outer star and an optional hole, split into the
 * windows the longitudes reach. */
static void make_region(tregion *t, rng_t *r, double clat, double clon, double R, int hole,
                        double snap) {
  double outer[2 * MAX_RING], inner[2 * MAX_RING];
  int m = rng_int(r, 8, 60);
  size_t no = star(r, clat, clon, R, 0.5, 1.0, m, outer);
  size_t ni = hole ? star(r, clat, clon, R, 0.1, 0.3, rng_int(r, 8, 30), inner) : 0;
  /* Vertices on the engine's cell grid (multiples of 22.5 / 2^L degrees)
   * put edges exactly on cell sides. */
  for (size_t i = 0; snap > 0 && i < 2 * no; i++) outer[i] = snap * round(outer[i] / snap);
  for (size_t i = 0; snap > 0 && i < 2 * ni; i++) inner[i] = snap * round(inner[i] / snap);
  t->nr = 0;
  int poly = 0;
  for (int k = -1; k <= 1; k++) {
    tring *o = &t->rings[t->nr];
    o->n = clip_ring(outer, no, k, o->ll);
    if (o->n == 0) continue;
    o->poly = poly;
    t->nr++;
    if (ni) {
      tring *h = &t->rings[t->nr];
      h->n = clip_ring(inner, ni, k, h->ll);
      if (h->n) {
        h->poly = poly;
        t->nr++;
      }
    }
    poly++;
  }
  ck_assert_uint_gt(t->nr, 0);
  ck_assert_int_eq(cl_region_create(&t->reg, t->desc), CL_OK);
  for (size_t i = 0; i < t->nr; i++)
    ck_assert_int_eq(cl_region_add_ring(t->reg, t->rings[i].poly, t->rings[i].ll, t->rings[i].n),
                     CL_OK);
  ck_assert_int_eq(cl_region_finish(t->reg), CL_OK);
}

/* Independent even-odd membership: in some polygon with an odd count of
 * crossings over its rings. */
static int treg_contains(const tregion *t, double lon, double lat) {
  int odd[MAX_RINGS] = {0};
  for (size_t i = 0; i < t->nr; i++) {
    const tring *g = &t->rings[i];
    for (size_t a = 0, b = g->n - 1; a < g->n; b = a++) {
      double xa = g->ll[2 * a], ya = g->ll[2 * a + 1], xb = g->ll[2 * b], yb = g->ll[2 * b + 1];
      if ((ya > lat) != (yb > lat) && lon < xa + (xb - xa) * (lat - ya) / (yb - ya))
        odd[g->poly] ^= 1;
    }
  }
  for (int p = 0; p < MAX_RINGS; p++)
    if (odd[p]) return 1;
  return 0;
}

/* Distance from (lon, lat) to segment (x0, y0)-(x1, y1) in a plane whose x
 * is scaled by sx. */
static double seg_dist(double lon, double lat, double sx, double x0, double y0, double x1,
                       double y1) {
  double ax = (x0 - lon) * sx, ay = y0 - lat, bx = (x1 - lon) * sx, by = y1 - lat;
  double dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
  double t = l2 > 0 ? -(ax * dx + ay * dy) / l2 : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  double px = ax + t * dx, py = ay + t * dy;
  return sqrt(px * px + py * py);
}

/* Seams of the plane (splits at +-180, clips at +-90) are not borders. */
static int is_seam(double x0, double y0, double x1, double y1) {
  return (x0 == x1 && fabs(x0) == 180.0) || (y0 == y1 && fabs(y0) == 90.0);
}

/* Planar distance (degrees) to the nearest edge, seams included. */
static double treg_dist_deg(const tregion *t, double lon, double lat) {
  double dmin = INFINITY;
  for (size_t i = 0; i < t->nr; i++) {
    const tring *g = &t->rings[i];
    for (size_t a = 0, b = g->n - 1; a < g->n; b = a++)
      dmin = fmin(dmin, seg_dist(lon, lat, 1.0, g->ll[2 * b], g->ll[2 * b + 1], g->ll[2 * a],
                                 g->ll[2 * a + 1]));
  }
  return dmin;
}

/*
 * 1 if some point of the edge (x0, y0)-(x1, y1) (a straight line in the
 * longitude/latitude plane) may lie within angle thr of a sample. The edge
 * lies in its bounding rectangle, every point of which is within rho (the
 * engine's cell bound) of the rectangle's centre, the edge's midpoint; far
 * pieces are skipped, near ones bisected down to thr / 4.
 */
static int edge_near(const ptvec *F, vec3 P, double reach, double thr, double x0, double y0,
                     double x1, double y1, int depth) {
  double lo = fmin(y0, y1), hi = fmax(y0, y1);
  double phimin = lo <= 0 && hi >= 0 ? 0 : fmin(fabs(lo), fabs(hi)) * D2R;
  double rho = (hi - lo) * D2R / 2 + cos(phimin) * fabs(x1 - x0) * D2R / 2;
  double mx = (x0 + x1) / 2, my = (y0 + y1) / 2;
  vec3 m = v_ll(my, mx);
  if (v_angle(P, m) - rho > reach + thr) return 0;
  if (rho > thr / 4 && depth < 48)
    return edge_near(F, P, reach, thr, x0, y0, mx, my, depth + 1) ||
           edge_near(F, P, reach, thr, mx, my, x1, y1, depth + 1);
  for (size_t i = 0; i < F->n; i++)
    if (v_angle(m, F->v[i].v) <= thr + rho) return 1;
  return 0;
}

/* 1 if the border of t (seams left out) comes within thr of the samples. */
static int border_near(const tregion *t, const ptvec *F, double reach, double thr) {
  for (size_t i = 0; i < t->nr; i++) {
    const tring *g = &t->rings[i];
    for (size_t a = 0, b = g->n - 1; a < g->n; b = a++) {
      double x0 = g->ll[2 * b], y0 = g->ll[2 * b + 1], x1 = g->ll[2 * a], y1 = g->ll[2 * a + 1];
      if (!is_seam(x0, y0, x1, y1) && edge_near(F, F->v[0].v, reach, thr, x0, y0, x1, y1, 0))
        return 1;
    }
  }
  return 0;
}

/* ---- reporting --------------------------------------------------------------- */

static void dump_scenario(FILE *f, const scenario *s, const tregion *const *regs, size_t nregs) {
  fprintf(f, "=== scenario: batch %s index %d seed 0x%016llx\n", s->cfg->name, s->index,
          (unsigned long long)s->seed);
  fprintf(f, "chip P = (%.17g, %.17g)\n", s->plat, s->plon);
  fprintf(f, "params: min_landmarks %zu, min_cell_km %.17g, rel_precision %.17g\n",
          s->prm.min_landmarks, s->prm.min_cell_km, s->prm.rel_precision);
  fprintf(f, "site (%s) = (%.17g, %.17g)\n", s->site_kind ? s->site_kind : "-", s->site[0],
          s->site[1]);
  fprintf(f, "landmarks (lat, lon, bound_m, true distance from P):\n");
  for (size_t i = 0; i < s->k; i++)
    fprintf(f, "  {%.17g, %.17g, %.17g}, /* s(P) = %.3f m */\n", s->lm[i].lat, s->lm[i].lon,
            s->lm[i].bound_m,
            cl_geo_distance_m(s->plat, s->plon, s->lm[i].lat, s->lm[i].lon));
  for (size_t j = 0; j < nregs; j++) {
    const tregion *t = regs[j];
    fprintf(f, "region %zu (%s): %zu rings\n", j, t->desc, t->nr);
    for (size_t i = 0; i < t->nr; i++) {
      fprintf(f, "  polygon %d ring %zu (%zu points, lon lat):", t->rings[i].poly, i,
              t->rings[i].n);
      for (size_t p = 0; p < t->rings[i].n; p++)
        fprintf(f, " %.17g %.17g,", t->rings[i].ll[2 * p], t->rings[i].ll[2 * p + 1]);
      fprintf(f, "\n");
    }
  }
  fflush(f);
}

static void violation(const scenario *s, const tregion *const *regs, size_t nregs,
                      const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "SOUNDNESS VIOLATION: %s\n", msg);
  dump_scenario(stderr, s, regs, nregs);
  ck_abort_msg("batch %s scenario %d (seed 0x%016llx): %s (scenario on stderr)", s->cfg->name,
               s->index, (unsigned long long)s->seed, msg);
}

/* ---- statistics ---------------------------------------------------------- */

typedef struct {
  int scenarios, calls, insufficient;
  int verdicts[4];
  int sites[3];
  int clear, clear_undet, mixed;
  int undet_cause[3]; /* clear but UNDETERMINED: relaxation, seam, other */
  double *ratios;
  int nratios;
  unsigned long long feasible_samples;
  unsigned long long certain_checked, certain_bad;
  unsigned long long contains_checked, on_edge;
  double engine_s;
  int country_calls, country_verdicts[4];
  int union_calls, union_verdicts[4]; /* allowed sets of a country and a neighbour */
} stats;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static cl_geo_ctx *ctx;

static int locate(stats *st, const scenario *s, const double *site, const cl_region_union *u,
                  cl_geo_result *r) {
  double t0 = now_s();
  int rc = cl_geo_locate(ctx, s->lm, s->k, &s->prm, site, u, r);
  st->engine_s += now_s() - t0;
  st->calls++;
  return rc;
}

/* Checks common to every call: consistency, cells and cap cover F. */
static void check_cover(const scenario *s, const cl_geo_result *r, const ptvec *F,
                        const tregion *const *regs, size_t nregs) {
  if (r->consistency != CL_GEO_CONSISTENT)
    violation(s, regs, nregs, "consistency %s although the chip at P obeys every bound",
              cl_geo_consistency_name(r->consistency));
  cell_index ci = {0};
  ci_build(&ci, r);
  vec3 c = v_ll(r->centre_lat, r->centre_lon);
  double rad = r->radius_km * 1000.0;
  for (size_t i = 0; i < F->n; i++) {
    const pt *p = &F->v[i];
    if (!ci_has(&ci, p->lat, p->lon)) {
      ci_free(&ci);
      violation(s, regs, nregs, "feasible point (%.12f, %.12f)%s lies in no cell (%zu cells)",
                p->lat, p->lon, i == 0 ? " (P)" : "", r->n_cells);
    }
    if (R_HI * v_angle(c, p->v) < rad - 1.0) continue;
    double d = cl_geo_distance_m(r->centre_lat, r->centre_lon, p->lat, p->lon);
    if (d > rad) {
      ci_free(&ci);
      violation(s, regs, nregs,
                "feasible point (%.12f, %.12f) is %.4f km from the centre (%.9f, %.9f), radius "
                "%.4f km",
                p->lat, p->lon, d / 1000.0, r->centre_lat, r->centre_lon, r->radius_km);
    }
  }
  ci_free(&ci);
}

/* Largest exact distance from the centre to a sample (metres). */
static double sampled_radius(const cl_geo_result *r, const ptvec *F) {
  vec3 c = v_ll(r->centre_lat, r->centre_lon);
  double tmax = 0;
  for (size_t i = 0; i < F->n; i++) tmax = fmax(tmax, v_angle(c, F->v[i].v));
  double best = 0;
  for (size_t i = 0; i < F->n; i++) {
    if (R_HI * v_angle(c, F->v[i].v) < R_LO * tmax) continue;
    best = fmax(best, cl_geo_distance_m(r->centre_lat, r->centre_lon, F->v[i].lat, F->v[i].lon));
  }
  return best;
}

/* "certain" cells claim to lie inside every cap: probe corners and centre. */
static void probe_certain(stats *st, const scenario *s, const cl_geo_result *r) {
  size_t nc = 0;
  for (size_t i = 0; i < r->n_cells; i++) nc += r->cells[i].certain;
  if (nc == 0) return;
  size_t stride = nc > 200 ? nc / 200 : 1, seen = 0;
  for (size_t i = 0; i < r->n_cells; i++) {
    const cl_geo_cell *c = &r->cells[i];
    if (!c->certain || seen++ % stride) continue;
    double pts[5][2] = {{c->lat0, c->lon0}, {c->lat0, c->lon1}, {c->lat1, c->lon0},
                        {c->lat1, c->lon1}, {(c->lat0 + c->lat1) / 2, (c->lon0 + c->lon1) / 2}};
    int bad = 0;
    for (int k = 0; k < 5 && !bad; k++)
      bad = !feasible(s, pts[k][0], pts[k][1], v_ll(pts[k][0], pts[k][1]));
    st->certain_checked++;
    st->certain_bad += (unsigned long long)bad;
  }
}

/* The declared-site verdict against exact geodesics. */
static void check_site(const scenario *s, const cl_geo_result *r, const double *site, int is_p) {
  size_t widest = s->k;
  double widest_m = -INFINITY;
  for (size_t i = 0; i < s->k; i++) {
    if (!usable(&s->lm[i])) continue;
    double m = cl_geo_distance_m(site[0], site[1], s->lm[i].lat, s->lm[i].lon) - s->lm[i].bound_m;
    if (m > widest_m) widest_m = m, widest = i;
  }
  if (r->site == CL_SITE_EXCLUDED) {
    if (is_p) violation(s, NULL, 0, "the true position P is SITE_EXCLUDED");
    if (r->site_landmark >= s->k || !usable(&s->lm[r->site_landmark]))
      violation(s, NULL, 0, "site excluded by landmark %zu, not a usable one", r->site_landmark);
    const cl_geo_landmark *l = &s->lm[r->site_landmark];
    double m = cl_geo_distance_m(site[0], site[1], l->lat, l->lon) - l->bound_m;
    if (!(m > 0))
      violation(s, NULL, 0, "site excluded by landmark %zu, but it is %.6f m inside its bound",
                r->site_landmark, -m);
    if (fabs(m - r->site_margin_km * 1000.0) > 0.001 || m < widest_m - 0.001)
      violation(s, NULL, 0, "site margin %.6f km by landmark %zu; exact %.6f km, widest %.6f km",
                r->site_margin_km, r->site_landmark, m / 1000.0, widest_m / 1000.0);
  } else if (r->site == CL_SITE_CONSISTENT) {
    ck_assert_msg(widest_m <= 0.02, "site consistent but %.4f m beyond bound %zu", widest_m,
                  widest);
  } else {
    violation(s, NULL, 0, "no site verdict (%s)", cl_geo_site_name(r->site));
  }
}

/*
 * Where does a clear case the engine left UNDETERMINED sit? 0: the
 * normal-sphere relaxation of F (caps of angle r / (b^2/a)) reaches across
 * the border, so the border runs through the band where the engine needs
 * its finer tests (the cap brackets and exact geodesics, down to the cell
 * floor); 1: that relaxed region touches a seam (an edge along longitude
 * +-180 or latitude +-90); 2: neither at the sampling step: a partial cell
 * reaching across the border from nearer than the sampling grid shows.
 */
static int undet_cause(const scenario *s, const ptvec *F, int side_in, double spacing,
                       const tregion *const *regs, size_t nregs) {
  double b = CL_WGS84_A * (1 - CL_WGS84_F), rmin = b * b / CL_WGS84_A;
  frame fp = frame_at(F->v[0].v);
  /* The relaxed caps reach at most 1 % of a bound beyond the true ones. */
  double u0 = 0, u1 = 0, v0 = 0, v1 = 0, grow = 2 * spacing, bmax = 0;
  for (size_t i = 0; i < s->k; i++)
    if (usable(&s->lm[i]) && s->lm[i].bound_m < M_PI * rmin) bmax = fmax(bmax, s->lm[i].bound_m);
  grow += 0.011 * bmax / rmin;
  for (size_t i = 0; i < F->n; i++) {
    double u, v;
    frame_log(&fp, F->v[i].v, &u, &v);
    u0 = fmin(u0, u), u1 = fmax(u1, u), v0 = fmin(v0, v), v1 = fmax(v1, v);
  }
  u0 -= grow, u1 += grow, v0 -= grow, v1 += grow;
  double step_deg = fmax(u1 - u0, v1 - v0) * R2D / (GRID - 1);
  int seam = 0;
  for (int a = 0; a < GRID; a++)
    for (int c = 0; c < GRID; c++) {
      vec3 q = frame_exp(&fp, u0 + (u1 - u0) * a / (GRID - 1), v0 + (v1 - v0) * c / (GRID - 1));
      int ok = 1;
      for (size_t i = 0; i < s->k && ok; i++)
        if (usable(&s->lm[i])) ok = v_angle(q, s->lv[i]) <= s->lm[i].bound_m / rmin;
      if (!ok) continue;
      double lat, lon;
      v_to_ll(q, &lat, &lon);
      int in = 0;
      for (size_t j = 0; j < nregs; j++) {
        in |= treg_contains(regs[j], lon, lat);
        for (size_t g = 0; g < regs[j]->nr; g++) {
          const tring *t = &regs[j]->rings[g];
          for (size_t e = 0, f = t->n - 1; e < t->n; f = e++) {
            double x0 = t->ll[2 * f], y0 = t->ll[2 * f + 1];
            double x1 = t->ll[2 * e], y1 = t->ll[2 * e + 1];
            if (is_seam(x0, y0, x1, y1) &&
                seg_dist(lon, lat, cos(lat * D2R), x0, y0, x1, y1) < 1.5 * step_deg)
              seam = 1;
          }
        }
      }
      if (in != side_in) return 0;
    }
  return seam ? 1 : 2;
}

/* Region verdict against the samples; updates the precision counters. */
static void check_region(stats *st, const scenario *s, const cl_geo_result *r, const ptvec *F,
                         double spacing_km, const tregion *const *regs, size_t nregs) {
  const cl_region *members[2];
  for (size_t j = 0; j < nregs; j++) members[j] = regs[j]->reg;
  cl_region_union u = {members, nregs};
  size_t n_in = 0, n_out = 0, first_in = SIZE_MAX, first_out = SIZE_MAX;
  for (size_t i = 0; i < F->n; i++) {
    const pt *p = &F->v[i];
    int in = 0;
    double near_deg = INFINITY;
    for (size_t j = 0; j < nregs; j++) {
      near_deg = fmin(near_deg, treg_dist_deg(regs[j], p->lon, p->lat));
      in |= treg_contains(regs[j], p->lon, p->lat);
    }
    if (near_deg > 1e-7) {
      st->contains_checked++;
      if (cl_region_union_contains(&u, p->lon, p->lat) != in)
        violation(s, regs, nregs, "cl_region_union_contains(%.12f, %.12f) = %d, even-odd says %d",
                  p->lon, p->lat, !in, in);
    }
    /* A point on an edge (a seam included, e.g. P at longitude 180 next to
     * a polygon split there) or at a pole may go either way. */
    if (near_deg <= 1e-9 || fabs(p->lat) == 90.0) {
      st->on_edge++;
      continue;
    }
    if (in && first_in == SIZE_MAX) first_in = i;
    if (!in && first_out == SIZE_MAX) first_out = i;
    n_in += (size_t)in;
    n_out += (size_t)!in;
  }
  if (r->region == CL_REGION_INSIDE && n_out > 0)
    violation(s, regs, nregs, "INSIDE, but feasible point (%.12f, %.12f)%s is outside the region",
              F->v[first_out].lat, F->v[first_out].lon, first_out == 0 ? " (P)" : "");
  if (r->region == CL_REGION_OUTSIDE && n_in > 0)
    violation(s, regs, nregs, "OUTSIDE, but feasible point (%.12f, %.12f)%s is inside the region",
              F->v[first_in].lat, F->v[first_in].lon, first_in == 0 ? " (P)" : "");
  if (r->region == CL_REGION_UNKNOWN) violation(s, regs, nregs, "no region verdict");
  st->verdicts[r->region]++;
  if (n_in && n_out) st->mixed++;
  int clear = !n_in || !n_out;
  if (clear) {
    /* Clearly on one side: no border point within the margin of a sample. */
    double reach = 0, thr = fmax(MARGIN_KM, 2 * spacing_km) * 1000.0 / R_LO;
    for (size_t i = 0; i < F->n; i++) reach = fmax(reach, v_angle(F->v[0].v, F->v[i].v));
    for (size_t j = 0; j < nregs && clear; j++) clear = !border_near(regs[j], F, reach, thr);
  }
  if (clear) {
    st->clear++;
    if (r->region == CL_REGION_UNDETERMINED) {
      st->clear_undet++;
      int cause = undet_cause(s, F, n_in > 0, spacing_km * 1000.0 / R_HI, regs, nregs);
      st->undet_cause[cause]++;
      /* CHIPLOC_GEO_PROPS_VERBOSE=1 prints the cases neither cause explains. */
      if (cause == 2 && getenv("CHIPLOC_GEO_PROPS_VERBOSE")) {
        dump_scenario(stdout, s, regs, nregs);
        printf("UNDETERMINED, cause unexplained: %zu samples, %zu cells\n", F->n, r->n_cells);
      }
    }
  }
}

/* ---- countries ------------------------------------------------------------------ */

static cl_region_set countries;
static int have_countries;

/* The land borders ($CHIPLOC_COUNTRIES, property A3) or, with maritime, the
 * maritime ones ($CHIPLOC_BORDERS, property isoA3), into `countries`. */
static void load_countries(int maritime) {
  const char *path = getenv(maritime ? "CHIPLOC_BORDERS" : "CHIPLOC_COUNTRIES");
  char buf[4096];
  if (!path) {
    const char *bin = getenv("CHIPLOC_BIN_DIR");
    snprintf(buf, sizeof buf, "%s/data/%s", bin ? bin : ".",
             maritime ? "borders-maritime-1000m.geo.json" : "countries-land-10km.geo.json");
    path = buf;
  }
  FILE *f = fopen(path, "r");
  if (!f) {
    printf("countries: %s not found, country checks skipped\n", path);
    return;
  }
  fclose(f);
  char err[256];
  int rc = cl_region_set_load_geojson(&countries, path, maritime ? "isoA3" : "A3", err, sizeof err);
  ck_assert_msg(rc == CL_OK, "loading %s: %s", path, err);
  have_countries = 1;
  printf("countries: %zu regions from %s\n", countries.n, path);
}

/* A region other than `not` that holds one of 24 points around P at
 * distance d (metres), or -1: a neighbour across a border F may reach. */
static int neighbour_of(const scenario *s, int not, double d) {
  for (int k = 0; k < 24; k++) {
    double lat, lon;
    geod_direct(&G, s->plat, s->plon, k * 15.0, d, &lat, &lon, NULL);
    for (size_t i = 0; i < countries.n; i++)
      if ((int)i != not && cl_region_contains(countries.regions[i], lon, lat)) return (int)i;
  }
  return -1;
}

/* ---- one scenario ------------------------------------------------------------ */

static void run_scenario(stats *st, const batch_cfg *cfg, int index, ptvec *F) {
  scenario s = {.cfg = cfg, .index = index};
  s.seed = cfg->seed * 0x100000001b3ULL + (uint64_t)index;
  rng_t r = {s.seed};
  rng_u64(&r);
  int country = -1;
  if (cfg->place == PLACE_LAND) {
    for (int tries = 0; country < 0; tries++) {
      ck_assert_int_lt(tries, 10000);
      uniform_point(&r, &s.plat, &s.plon);
      for (size_t i = 0; i < countries.n && country < 0; i++)
        if (cl_region_contains(countries.regions[i], s.plon, s.plat)) country = (int)i;
    }
  } else {
    place_chip(cfg, &r, &s.plat, &s.plon);
  }
  place_landmarks(&s, &r);
  cl_geo_params_default(&s.prm);
  if (cfg->variant & VAR_PARAMS) {
    s.prm.min_cell_km = exp(rng_range(&r, log(0.3), log(50.0)));
    s.prm.rel_precision = exp(rng_range(&r, log(0.01), log(0.3)));
  }
  st->scenarios++;

  if (n_usable(&s) < 3) {
    cl_geo_result res;
    ck_assert_int_eq(locate(st, &s, NULL, NULL, &res), CL_OK);
    if (res.consistency != CL_GEO_INSUFFICIENT)
      violation(&s, NULL, 0, "%zu usable landmarks but %s", n_usable(&s),
                cl_geo_consistency_name(res.consistency));
    st->insufficient++;
    return;
  }

  double spacing;
  sample_F(&s, &r, F, &spacing);
  double spacing_km = spacing * R_HI / 1000.0;
  st->feasible_samples += F->n;
  vec3 P = v_ll(s.plat, s.plon);
  double frad = 0; /* angular radius of the sampled F around P */
  for (size_t i = 0; i < F->n; i++) frad = fmax(frad, v_angle(P, F->v[i].v));
  frad = fmax(frad, spacing);
  double frad_deg = frad * R2D;

  /* Call 1: no region, a declared site. */
  double t = rng_unit(&r);
  if (t < 0.3) {
    s.site[0] = s.plat, s.site[1] = s.plon, s.site_kind = "P";
  } else if (t < 0.7) {
    geod_direct(&G, s.plat, s.plon, rng_range(&r, -180, 180),
                rng_range(&r, 0, 2.0) * frad * R_HI, &s.site[0], &s.site[1], NULL);
    s.site_kind = "near P";
  } else {
    uniform_point(&r, &s.site[0], &s.site[1]);
    s.site_kind = "anywhere";
  }
  cl_geo_result res;
  int rc = locate(st, &s, s.site, NULL, &res);
  if (rc != CL_OK) violation(&s, NULL, 0, "cl_geo_locate returned %d", rc);
  check_cover(&s, &res, F, NULL, 0);
  check_site(&s, &res, s.site, s.site_kind[0] == 'P');
  st->sites[res.site]++;
  probe_certain(st, &s, &res);
  double sr = sampled_radius(&res, F);
  if (sr > 1.0) {
    st->ratios = realloc(st->ratios, (size_t)(st->nratios + 1) * sizeof *st->ratios);
    st->ratios[st->nratios++] = res.radius_km * 1000.0 / sr;
  }

  if (country >= 0) {
    /* The country holding P, another one, and the country with a neighbour
     * F may reach into, as one allowed set (a shared border; where the data
     * leaves a gap between them, the gap is in neither). */
    size_t other = (size_t)rng_int(&r, 0, (int)countries.n - 1);
    int nb = neighbour_of(&s, country, frad * R_HI * rng_range(&r, 0.5, 1.5));
    const cl_region *sets[3][2] = {{countries.regions[country], NULL},
                                   {countries.regions[other], NULL},
                                   {countries.regions[country], nb >= 0 ? countries.regions[nb] : NULL}};
    for (int c = 0; c < 3; c++) {
      size_t nm = sets[c][1] ? 2 : 1;
      if (c == 2 && nm == 1) break;
      cl_region_union u = {sets[c], nm};
      double site[2] = {s.plat, s.plon};
      rc = locate(st, &s, site, &u, &res);
      ck_assert_int_eq(rc, CL_OK);
      check_cover(&s, &res, F, NULL, 0);
      ck_assert_int_eq(res.site, CL_SITE_CONSISTENT);
      st->country_calls++;
      st->country_verdicts[res.region]++;
      if (nm == 2) st->union_calls++, st->union_verdicts[res.region]++;
      for (size_t i = 0; i < F->n; i++) {
        int in = 0;
        for (size_t m = 0; m < nm; m++) in |= cl_region_contains(sets[c][m], F->v[i].lon, F->v[i].lat);
        if ((res.region == CL_REGION_INSIDE && !in) || (res.region == CL_REGION_OUTSIDE && in))
          violation(&s, NULL, 0, "%s for %s%s%s, but feasible point (%.12f, %.12f)%s is %s",
                    cl_geo_region_name(res.region), cl_region_code(sets[c][0]), nm == 2 ? "+" : "",
                    nm == 2 ? cl_region_code(sets[c][1]) : "", F->v[i].lat, F->v[i].lon,
                    i == 0 ? " (P)" : "", in ? "inside" : "outside");
      }
    }
    return;
  }

  /* Calls 2..4: random polygons; sometimes a union of two. */
  tregion regs[3];
  for (int j = 0; j < 3; j++) {
    tregion *g = &regs[j];
    double kind = rng_unit(&r);
    double clat = s.plat, clon = s.plon, R;
    int hole = rng_unit(&r) < 0.3;
    const char *what;
    if (kind < 0.25) { /* big, around P */
      R = fmin(frad_deg * rng_range(&r, 3, 20), 60.0);
      clat += rng_range(&r, -0.3, 0.3) * R;
      clon += rng_range(&r, -0.3, 0.3) * R / fmax(cos(clat * D2R), 0.05);
      what = "big around P";
    } else if (kind < 0.45) { /* about F's size, around P: straddles */
      R = frad_deg * rng_range(&r, 0.3, 1.5);
      what = "small around P";
    } else if (kind < 0.7) { /* next to F */
      R = frad_deg * rng_range(&r, 0.5, 2);
      double off = frad_deg * rng_range(&r, 1, 3), th = rng_range(&r, 0, 2 * M_PI);
      clat += off * sin(th);
      clon += off * cos(th) / fmax(cos(s.plat * D2R), 0.05);
      what = "next to F";
    } else if (kind < 0.85) { /* P in a hole */
      R = fmin(frad_deg * rng_range(&r, 5, 15), 80.0);
      hole = 1;
      what = "P in the hole";
    } else {
      uniform_point(&r, &clat, &clon);
      R = rng_range(&r, 1, 40);
      what = "anywhere";
    }
    clat = fmin(fmax(clat, -89.999), 89.999);
    double snap = 0;
    if (kind < 0.85 && rng_unit(&r) < 0.25) {
      double level = fmin(fmax(round(log2(22.5 / (R / 6))), 3), 18);
      snap = 22.5 / pow(2, level);
    }
    snprintf(g->desc, sizeof g->desc, "%s%s R=%.6g deg%s", what, hole ? " with hole" : "", R,
             snap > 0 ? " snapped to the cell grid" : "");
    make_region(g, &r, clat, clon, R, hole, snap);
  }
  int calls = rng_unit(&r) < 0.3 ? 4 : 3;
  for (int c = 0; c < calls; c++) {
    const tregion *sel[2] = {&regs[c % 3], &regs[(c + 1) % 3]};
    size_t nsel = c == 3 ? 2 : 1;
    const cl_region *members[2] = {sel[0]->reg, sel[1]->reg};
    cl_region_union u = {members, nsel};
    double site[2] = {s.plat, s.plon};
    rc = locate(st, &s, site, &u, &res);
    if (rc != CL_OK) violation(&s, sel, nsel, "cl_geo_locate returned %d", rc);
    check_cover(&s, &res, F, sel, nsel);
    if (res.site != CL_SITE_CONSISTENT) violation(&s, sel, nsel, "P is not SITE_CONSISTENT");
    check_region(st, &s, &res, F, spacing_km, sel, nsel);
  }
  for (int j = 0; j < 3; j++) cl_region_destroy(&regs[j].reg);
}

static void run_batch(const batch_cfg *cfg) {
  stats st = {0};
  ptvec F = {0};
  memset(&bf, 0, sizeof bf);
  ck_assert_int_eq(cl_geo_ctx_create(&ctx), CL_OK);
  double t0 = now_s();
  for (int i = 0; i < cfg->n; i++) run_scenario(&st, cfg, i, &F);
  double total = now_s() - t0;
  cl_geo_ctx_destroy(&ctx);
  free(F.v);

  double med = NAN, p90 = NAN, mx = NAN;
  if (st.nratios > 0) {
    qsort(st.ratios, (size_t)st.nratios, sizeof *st.ratios, cmp_double);
    med = st.ratios[st.nratios / 2];
    p90 = st.ratios[st.nratios * 9 / 10];
    mx = st.ratios[st.nratios - 1];
  }
  double undet = st.clear ? (double)st.clear_undet / st.clear : 0;
  printf("batch %-13s seed 0x%llx: %d scenarios, %d engine calls (%.2f s engine, %.2f s total), "
         "%d insufficient\n",
         cfg->name, (unsigned long long)cfg->seed, st.scenarios, st.calls, st.engine_s, total,
         st.insufficient);
  printf("  feasible samples %llu; brute force: %llu bound tests, %llu exact geodesics, %llu "
         "audits, %llu audit mismatches\n",
         st.feasible_samples, bf.tests, bf.exact, bf.audits, bf.audit_bad);
  printf("  sites: %d consistent, %d excluded\n", st.sites[CL_SITE_CONSISTENT],
         st.sites[CL_SITE_EXCLUDED]);
  if (cfg->place == PLACE_LAND) {
    printf("  countries: %d calls: %d INSIDE, %d OUTSIDE, %d UNDETERMINED; of them %d with a "
           "neighbour as one allowed set: %d INSIDE, %d OUTSIDE, %d UNDETERMINED\n",
           st.country_calls, st.country_verdicts[CL_REGION_INSIDE],
           st.country_verdicts[CL_REGION_OUTSIDE], st.country_verdicts[CL_REGION_UNDETERMINED],
           st.union_calls, st.union_verdicts[CL_REGION_INSIDE],
           st.union_verdicts[CL_REGION_OUTSIDE], st.union_verdicts[CL_REGION_UNDETERMINED]);
  } else {
    printf("  regions: %d INSIDE, %d OUTSIDE, %d UNDETERMINED (%d with F sampled on both sides); "
           "%llu contains cross-checks, %llu samples on an edge\n",
           st.verdicts[CL_REGION_INSIDE], st.verdicts[CL_REGION_OUTSIDE],
           st.verdicts[CL_REGION_UNDETERMINED], st.mixed, st.contains_checked, st.on_edge);
    printf("  precision: UNDETERMINED in %d of %d clear cases (%.1f %%, pinned < %.0f %%): %d "
           "with the relaxed F across the border, %d by a seam, %d by neither at the "
           "sampling step\n",
           st.clear_undet, st.clear, 100 * undet, 100 * cfg->max_undet_rate,
           st.undet_cause[0], st.undet_cause[1], st.undet_cause[2]);
  }
  char pin[32] = "not pinned";
  if (cfg->max_median_ratio < NOT_PINNED)
    snprintf(pin, sizeof pin, "pinned < %.2f", cfg->max_median_ratio);
  printf("  precision: radius / sampled radius: median %.3f (%s), p90 %.3f, max %.3f over %d "
         "scenarios\n",
         med, pin, p90, mx, st.nratios);
  printf("  'certain' cells with an infeasible corner or centre: %llu of %llu probed\n",
         st.certain_bad, st.certain_checked);
  fflush(stdout);
  free(st.ratios);

  ck_assert_msg(bf.audit_bad == 0, "brute-force shortcut disagreed with exact geodesics");
  /* Certain cells lie inside every true cap: every probed point of them is feasible. */
  ck_assert_msg(st.certain_bad == 0, "%llu certain cells with an infeasible point", st.certain_bad);
  if (cfg->place != PLACE_LAND) {
    ck_assert_int_gt(st.clear, 0);
    ck_assert_msg(undet < cfg->max_undet_rate, "UNDETERMINED rate %.3f", undet);
  }
  if (st.nratios > 0) ck_assert_msg(med < cfg->max_median_ratio, "median ratio %.3f", med);
}

/* ---- tests ------------------------------------------------------------------- */

/* The bracket the brute force and the engine rely on: for any two points,
 * (b^2/a) theta <= s <= (a^2/b) theta, theta the angle between normals. */
START_TEST(test_normal_sphere_bounds) {
  rng_t r = {0xB0B0B0B0ULL};
  double b = CL_WGS84_A * (1 - CL_WGS84_F);
  double lo = b * b / CL_WGS84_A, hi = CL_WGS84_A * CL_WGS84_A / b;
  double qmin = INFINITY, qmax = 0;
  for (int i = 0; i < 40000; i++) {
    double la1, lo1, la2, lo2;
    uniform_point(&r, &la1, &lo1);
    int kind = i % 5;
    if (kind == 0) { /* near-antipodal */
      la2 = -la1 + rng_range(&r, -0.5, 0.5);
      lo2 = lo1 + 180 + rng_range(&r, -0.5, 0.5);
    } else if (kind == 1) { /* along a meridian, across a pole sometimes */
      la2 = rng_range(&r, -90, 90);
      lo2 = rng_unit(&r) < 0.5 ? lo1 : lo1 + 180;
    } else if (kind == 2) { /* along the equator */
      la1 = rng_range(&r, -1e-3, 1e-3);
      la2 = rng_range(&r, -1e-3, 1e-3);
      lo2 = lo1 + rng_range(&r, -179.9, 179.9);
    } else if (kind == 3) { /* short */
      la2 = fmin(fmax(la1 + rng_range(&r, -0.01, 0.01), -90), 90);
      lo2 = lo1 + rng_range(&r, -0.01, 0.01);
    } else {
      uniform_point(&r, &la2, &lo2);
    }
    la2 = fmin(fmax(la2, -90), 90);
    lo2 = remainder(lo2, 360.0);
    double s = cl_geo_distance_m(la1, lo1, la2, lo2);
    double th = v_angle(v_ll(la1, lo1), v_ll(la2, lo2));
    if (th < 1e-9) continue;
    double q = s / th;
    qmin = fmin(qmin, q), qmax = fmax(qmax, q);
    ck_assert_msg(q >= lo * (1 - 1e-9) && q <= hi * (1 + 1e-9),
                  "s/theta = %.3f m for (%.9f, %.9f)-(%.9f, %.9f)", q, la1, lo1, la2, lo2);
  }
  printf("normal sphere: s/theta in [%.1f, %.1f] m; bounds b^2/a = %.1f, a^2/b = %.1f\n", qmin,
         qmax, lo, hi);
  ck_assert_double_gt(qmin, R_LO);
  ck_assert_double_lt(qmax, R_HI);
}
END_TEST

/* The chord conversion against exact geodesics: for two points of the
 * ellipsoid with chord d (no signal path is shorter), the cap
 * cl_geo_cap_of_path_m(d) is never below their geodesic distance s. Pairs:
 * near-antipodal (where the chord is longest and the conversion switches to
 * the whole ellipsoid), meridians across the poles, the equator (where the
 * meridian's curvature radius is b^2/a and the bound is tightest), short
 * pairs, and uniform ones. */
START_TEST(test_chord_bound) {
  rng_t r = {0xC40D0001ULL};
  double b = CL_WGS84_A * (1 - CL_WGS84_F), rmin = b * b / CL_WGS84_A;
  double whole = M_PI * CL_WGS84_A * CL_WGS84_A / b;
  double min_gap = INFINITY, min_gap_d = 0, max_ratio = 0, max_d_part = 0, min_d_whole = INFINITY;
  long n = 0, n_whole = 0;
  for (int i = 0; i < 100000; i++) {
    double la1, lo1, la2, lo2;
    uniform_point(&r, &la1, &lo1);
    int kind = i % 6;
    if (kind == 0) { /* near-antipodal */
      la2 = -la1 + rng_range(&r, -0.5, 0.5);
      lo2 = lo1 + 180 + rng_range(&r, -0.5, 0.5);
    } else if (kind == 1) { /* within a few degrees of the antipode */
      la2 = -la1 + rng_range(&r, -6, 6);
      lo2 = lo1 + 180 + rng_range(&r, -6, 6);
    } else if (kind == 2) { /* along a meridian, across a pole sometimes */
      la2 = rng_range(&r, -90, 90);
      lo2 = rng_unit(&r) < 0.5 ? lo1 : lo1 + 180;
    } else if (kind == 3) { /* along the equator, or across it on a meridian */
      la1 = rng_range(&r, -1e-3, 1e-3);
      if (rng_unit(&r) < 0.5) {
        la2 = rng_range(&r, -1e-3, 1e-3);
        lo2 = lo1 + rng_range(&r, -179.9, 179.9);
      } else {
        la2 = rng_range(&r, -30, 30);
        lo2 = lo1;
      }
    } else if (kind == 4) { /* short */
      la2 = la1 + rng_range(&r, -0.5, 0.5);
      lo2 = lo1 + rng_range(&r, -0.5, 0.5);
    } else {
      uniform_point(&r, &la2, &lo2);
    }
    if (la2 > 90) la2 = 180 - la2;
    if (la2 < -90) la2 = -180 - la2;
    lo2 = remainder(lo2, 360.0);
    double d = chord_m(la1, lo1, la2, lo2);
    double s = cl_geo_distance_m(la1, lo1, la2, lo2);
    double cap = cl_geo_cap_of_path_m(d);
    n++;
    ck_assert_msg(s <= cap + 1e-6, "(%.9f, %.9f)-(%.9f, %.9f): chord %.6f m, geodesic %.6f m, "
                  "cap %.6f m", la1, lo1, la2, lo2, d, s, cap);
    ck_assert_double_ge(cap, d);
    if (cap >= whole) {
      n_whole++;
      min_d_whole = fmin(min_d_whole, d);
      continue;
    }
    max_d_part = fmax(max_d_part, d);
    if (s > 1000.0) max_ratio = fmax(max_ratio, s / cap);
    if (cap - s < min_gap) min_gap = cap - s, min_gap_d = d;
  }
  printf("chord: %ld pairs, %ld given the whole ellipsoid (chords from %.1f km); below that "
         "(chords to %.1f km) geodesic / cap at most %.9f, smallest cap - geodesic %.3g m (chord "
         "%.1f km: rounding); 2R = %.1f km\n",
         n, n_whole, min_d_whole / 1000.0, max_d_part / 1000.0, max_ratio, min_gap,
         min_gap_d / 1000.0, 2 * rmin / 1000.0);
  ck_assert_int_gt(n_whole, 0);
  ck_assert_double_le(max_ratio, 1.0);
}
END_TEST

/* Pinned thresholds come from the measured values printed by each batch
 * (see docs/ENGINE.md), with margin. */
static const batch_cfg B_UNIFORM = {.name = "uniform", .seed = 0x5EED0001, .n = 140,
                                    .place = PLACE_UNIFORM, .dmin_km = 100, .dmax_km = 5000,
                                    .max_undet_rate = 0.01, .max_median_ratio = 1.05};
static const batch_cfg B_POLAR = {.name = "polar", .seed = 0x5EED0002, .n = 70,
                                  .place = PLACE_POLAR, .dmin_km = 100, .dmax_km = 5000,
                                  .max_undet_rate = 0.01, .max_median_ratio = 1.05};
static const batch_cfg B_ANTIMERIDIAN = {.name = "antimeridian", .seed = 0x5EED0003, .n = 90,
                                         .place = PLACE_ANTIMERIDIAN, .dmin_km = 100,
                                         .dmax_km = 5000, .max_undet_rate = 0.01,
                                         .max_median_ratio = 1.05};
static const batch_cfg B_GLOBAL = {.name = "global", .seed = 0x5EED0004, .n = 90,
                                   .place = PLACE_UNIFORM, .dmin_km = 100, .dmax_km = 15000,
                                   .max_undet_rate = 0.01, .max_median_ratio = 1.05};
static const batch_cfg B_TIGHT = {.name = "tight", .seed = 0x5EED0005, .n = 90,
                                  .place = PLACE_UNIFORM, .dmin_km = 100, .dmax_km = 5000,
                                  .tight = 1, .max_undet_rate = 0.01,
                                  .max_median_ratio = NOT_PINNED};
static const batch_cfg B_NEAR = {.name = "near", .seed = 0x5EED0006, .n = 90,
                                 .place = PLACE_UNIFORM, .dmin_km = 30, .dmax_km = 600,
                                 .max_undet_rate = 0.01, .max_median_ratio = 1.05};
static const batch_cfg B_COLOCATED = {.name = "colocated", .seed = 0x5EED0008, .n = 60,
                                      .place = PLACE_UNIFORM, .dmin_km = 100, .dmax_km = 5000,
                                      .variant = VAR_COLOCATED, .max_undet_rate = 0.01,
                                      .max_median_ratio = NOT_PINNED};
static const batch_cfg B_PARAMS = {.name = "params", .seed = 0x5EED0009, .n = 60,
                                   .place = PLACE_UNIFORM, .dmin_km = 100, .dmax_km = 5000,
                                   .variant = VAR_PARAMS, .max_undet_rate = 0.01,
                                   .max_median_ratio = 1.05};
static const batch_cfg B_CHORD = {.name = "chord", .seed = 0x5EED000A, .n = 90,
                                  .place = PLACE_UNIFORM, .dmin_km = 100, .dmax_km = 19000,
                                  .chord = 1, .max_undet_rate = 0.01, .max_median_ratio = 1.05};
static const batch_cfg B_LAND = {.name = "countries", .seed = 0x5EED0007, .n = 150,
                                 .place = PLACE_LAND, .dmin_km = 100, .dmax_km = 3000,
                                 .max_undet_rate = 1, .max_median_ratio = 1.05};
/* P anywhere in a country's land or territorial sea (coasts, islands,
 * straits), F reaching 100-3 000 km landmarks. */
static const batch_cfg B_MARITIME = {.name = "maritime", .seed = 0x5EED000B, .n = 150,
                                     .place = PLACE_LAND, .dmin_km = 100, .dmax_km = 3000,
                                     .max_undet_rate = 1, .max_median_ratio = 1.05,
                                     .maritime = 1};

START_TEST(test_batch_uniform) { run_batch(&B_UNIFORM); }
END_TEST
START_TEST(test_batch_polar) { run_batch(&B_POLAR); }
END_TEST
START_TEST(test_batch_antimeridian) { run_batch(&B_ANTIMERIDIAN); }
END_TEST
START_TEST(test_batch_global) { run_batch(&B_GLOBAL); }
END_TEST
START_TEST(test_batch_tight) { run_batch(&B_TIGHT); }
END_TEST
START_TEST(test_batch_near) { run_batch(&B_NEAR); }
END_TEST
START_TEST(test_batch_colocated) { run_batch(&B_COLOCATED); }
END_TEST
START_TEST(test_batch_params) { run_batch(&B_PARAMS); }
END_TEST
START_TEST(test_batch_chord) { run_batch(&B_CHORD); }
END_TEST
START_TEST(test_batch_countries) {
  load_countries(0);
  if (!have_countries) return;
  run_batch(&B_LAND);
  cl_region_set_free(&countries);
}
END_TEST
START_TEST(test_batch_maritime) {
  load_countries(1);
  if (!have_countries) return;
  run_batch(&B_MARITIME);
  cl_region_set_free(&countries);
}
END_TEST

static Suite *props_suite(void) {
  Suite *s = suite_create("geo_props");
  TCase *tc = tcase_create("props");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_normal_sphere_bounds);
  tcase_add_test(tc, test_batch_uniform);
  tcase_add_test(tc, test_batch_polar);
  tcase_add_test(tc, test_batch_antimeridian);
  tcase_add_test(tc, test_batch_global);
  tcase_add_test(tc, test_batch_tight);
  tcase_add_test(tc, test_batch_near);
  tcase_add_test(tc, test_batch_colocated);
  tcase_add_test(tc, test_batch_params);
  tcase_add_test(tc, test_chord_bound);
  tcase_add_test(tc, test_batch_chord);
  tcase_add_test(tc, test_batch_countries);
  tcase_add_test(tc, test_batch_maritime);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  geod_init(&G, CL_WGS84_A, CL_WGS84_F);
  SRunner *sr = srunner_create(props_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
